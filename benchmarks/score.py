"""Score acctwatch incidents against the ground truth of a simulated population (benchmarks/simpop.py).

``python3 -m benchmarks.score TRUTH.json INCIDENTS.jsonl [--json]``; INCIDENTS is the output of
``acctwatch replay --jsonl`` (one incident per line).

Rules (see benchmarks/README.md):

* an incident's *detections* are its opening (``detected_at``, falling back to ``first_seen``) at its
  opening level and every later level change (``escalations``: ``[{"at": ..., "level": ...}, ...]``, the
  first entry the opening; without the field: one entry ``{"at": first_seen, "level": action}``);
  only detections inside the scoring period count;
* a detection is *true* for attack A when the incident's account is A's victim and it happened within
  [A.start - 1 h, A.end + 24 h]; every other detection is *false* (per-IP incidents, whose account is
  null, are therefore always false and reported in a row of their own);
* per attack type: recall at any level (a true detection of notify or more), recall at hold/lock (a true
  detection of hold or lock), and the time from the attack's start to the first of each (negative times,
  possible within the hour of grace, count as 0);
* per account category: account-days (accounts x days of the scoring period), *false lock/hold
  account-days* (account-days with a false detection at hold or lock) and *false notification
  account-days* (account-days with a false notify-level detection and no false hold/lock), each also per
  1,000 account-days;
* a ``watch`` detection (recorded, no alert sent) is no notification: it counts neither for recall nor as a
  false notification; false watch account-days (no false notification or hold/lock that day) are reported
  in a column of their own.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

RANK = {"watch": 0, "notify": 1, "hold": 2, "lock": 3}
HOUR = 3600.0
DAY = 86400.0
BEFORE = 1 * HOUR  # a detection this long before an attack's start still counts for it
AFTER = 24 * HOUR  # ... and this long after its end
PER_IP = "(per IP)"
UNKNOWN = "(not an account)"


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def load_incidents(path: str | Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def detections(inc: dict[str, Any]) -> list[tuple[float, str]]:
    """(time, level) of an incident's opening and each escalation, in time order."""
    esc = inc.get("escalations")
    if esc:
        out = [(ts(e["at"]), str(e["level"])) for e in esc]
        opened = inc.get("detected_at")
        if opened:  # the opening is the first entry; trust detected_at for its time
            out[0] = (ts(opened), out[0][1])
    else:
        out = [(ts(inc.get("detected_at") or inc["first_seen"]), str(inc["action"]))]
    return sorted(out)


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def score(truth: dict[str, Any], incidents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    p0, p1 = ts(truth["scoring_period"]["start"]), ts(truth["scoring_period"]["end"])
    ndays = max(1, round((p1 - p0) / DAY))
    category = {a: (v["category"] if isinstance(v, dict) else v) for a, v in truth["accounts"].items()}
    attacks = truth["attacks"]
    by_victim: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in attacks:
        by_victim[a["victim"]].append(a)
    windows = {a["id"]: (ts(a["start"]), ts(a["start"]) - BEFORE, ts(a["end"]) + AFTER) for a in attacks}

    first_any: dict[str, float] = {}  # attack id -> time of its first true detection
    first_hold: dict[str, float] = {}
    found_by: dict[str, set[str]] = defaultdict(set)
    false_hold: set[tuple[str, str, int]] = set()  # (row, subject, day)
    false_notify: set[tuple[str, str, int]] = set()
    false_watch: set[tuple[str, str, int]] = set()
    det_rows: dict[str, Counter[str]] = defaultdict(Counter)
    counted = 0
    bots = set((truth.get("noise") or {}).get("guessing_bots", []))
    bot_reports = 0
    for inc in incidents:
        acct = inc.get("account")
        if acct is None:
            row, subject = PER_IP, (inc.get("ips") or [inc.get("id")])[0]
            if subject in bots:  # a password-guessing bot of the background noise: a true per-IP report
                bot_reports += 1
                continue
        else:
            row, subject = category.get(acct, UNKNOWN), acct
        any_true = any_false = any_false_hold = False
        for t, level in detections(inc):
            if not p0 <= t < p1:
                continue
            counted += 1
            rank = RANK.get(level, 1)
            hit = [a for a in by_victim.get(acct or "", []) if windows[a["id"]][1] <= t <= windows[a["id"]][2]]
            if hit and rank == 0:
                continue  # watched, nobody told: not found yet
            if hit:
                any_true = True
                for a in hit:
                    found_by[a["id"]].add(inc.get("detector", "?"))
                    if t < first_any.get(a["id"], float("inf")):
                        first_any[a["id"]] = t
                    if rank >= RANK["hold"] and t < first_hold.get(a["id"], float("inf")):
                        first_hold[a["id"]] = t
                continue
            day = int((t - p0) // DAY)
            if rank == 0:
                false_watch.add((row, subject, day))
                continue
            any_false = True
            if rank >= RANK["hold"]:
                any_false_hold = True
                false_hold.add((row, subject, day))
            else:
                false_notify.add((row, subject, day))
        d = det_rows[inc.get("detector", "?")]
        d["true"] += any_true
        d["false"] += any_false
        d["false_hold_lock"] += any_false_hold
    false_notify -= false_hold
    false_watch -= false_hold | false_notify

    # -- attacks ----------------------------------------------------------------------------------------
    per_type: dict[str, dict[str, Any]] = {}
    instances = []
    for a in attacks:
        start = windows[a["id"]][0]
        ttd = max(0.0, first_any[a["id"]] - start) if a["id"] in first_any else None
        ttd_h = max(0.0, first_hold[a["id"]] - start) if a["id"] in first_hold else None
        instances.append({"id": a["id"], "type": a["type"], "victim": a["victim"], "ttd_s": ttd,
                          "ttd_hold_lock_s": ttd_h, "detectors": sorted(found_by[a["id"]])})
    for kind in dict.fromkeys(a["type"] for a in attacks):
        rows = [i for i in instances if i["type"] == kind]
        t_any = [i["ttd_s"] for i in rows if i["ttd_s"] is not None]
        t_hold = [i["ttd_hold_lock_s"] for i in rows if i["ttd_hold_lock_s"] is not None]
        per_type[kind] = {
            "instances": len(rows), "detected": len(t_any), "held_or_locked": len(t_hold),
            "recall_any": len(t_any) / len(rows), "recall_hold_lock": len(t_hold) / len(rows),
            "ttd_median_s": _median(t_any), "ttd_max_s": max(t_any, default=None),
            "ttd_hold_lock_median_s": _median(t_hold), "ttd_hold_lock_max_s": max(t_hold, default=None),
            "missed": [i["id"] for i in rows if i["ttd_s"] is None],
        }
    all_any = [i["ttd_s"] for i in instances if i["ttd_s"] is not None]
    all_hold = [i["ttd_hold_lock_s"] for i in instances if i["ttd_hold_lock_s"] is not None]
    n = max(1, len(instances))
    attack_total = {"instances": len(instances), "detected": len(all_any), "held_or_locked": len(all_hold),
                     "recall_any": len(all_any) / n, "recall_hold_lock": len(all_hold) / n,
                     "ttd_median_s": _median(all_any), "ttd_max_s": max(all_any, default=None),
                     "ttd_hold_lock_median_s": _median(all_hold), "ttd_hold_lock_max_s": max(all_hold, default=None)}

    # -- false alarms per category ----------------------------------------------------------------------
    accounts_per = Counter(category.values())
    total_days = len(category) * ndays
    cats: dict[str, dict[str, Any]] = {}
    order = list(dict.fromkeys([*truth.get("categories", {}), *sorted(accounts_per)]))
    for row in [*order, PER_IP, UNKNOWN]:
        k_hold = sum(1 for r, _, _ in false_hold if r == row)
        k_notify = sum(1 for r, _, _ in false_notify if r == row)
        k_watch = sum(1 for r, _, _ in false_watch if r == row)
        if row in (PER_IP, UNKNOWN):
            if not k_hold and not k_notify and not k_watch:
                continue
            days, base = None, total_days  # no accounts of their own: rates per 1,000 account-days of all
        else:
            days = accounts_per.get(row, 0) * ndays
            base = days
        cats[row] = {"accounts": accounts_per.get(row), "account_days": days,
                     "false_hold_lock_days": k_hold, "false_notify_days": k_notify, "false_watch_days": k_watch,
                     "false_hold_lock_per_1000": 1000 * k_hold / base if base else None,
                     "false_notify_per_1000": 1000 * k_notify / base if base else None,
                     "false_watch_per_1000": 1000 * k_watch / base if base else None}
    acct_rows = [c for r, c in cats.items() if r not in (PER_IP, UNKNOWN)]
    h = sum(c["false_hold_lock_days"] for c in acct_rows)
    f = sum(c["false_notify_days"] for c in acct_rows)
    w = sum(c["false_watch_days"] for c in acct_rows)
    cat_total = {"accounts": len(category), "account_days": total_days, "false_hold_lock_days": h,
                 "false_notify_days": f, "false_watch_days": w,
                 "false_hold_lock_per_1000": 1000 * h / max(1, total_days),
                 "false_notify_per_1000": 1000 * f / max(1, total_days),
                 "false_watch_per_1000": 1000 * w / max(1, total_days)}
    return {
        "scoring_period": truth["scoring_period"], "days": ndays, "detections_counted": counted,
        "attacks": per_type, "attacks_total": attack_total, "instances": instances,
        "categories": cats, "categories_total": cat_total, "guessing_bot_reports": bot_reports,
        "detectors": {k: dict(v) for k, v in sorted(det_rows.items())},
    }


# ------------------------------------------------------------------------------------------------ table
def dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 90:
        return f"{s:.0f}s"
    if s < 90 * 60:
        return f"{s / 60:.0f}m"
    if s < 36 * HOUR:
        return f"{s / HOUR:.1f}h"
    return f"{s / DAY:.1f}d"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def table(res: dict[str, Any], title: str = "") -> str:
    out = []
    if title:
        out.append(title)
    out.append(f"scoring period {res['scoring_period']['start']} .. {res['scoring_period']['end']} "
               f"({res['days']} days)")
    hdr = (f"{'attack type':<22}{'n':>4}{'any':>6}{'hold+':>7}{'TTD med':>9}{'TTD max':>9}"
           f"{'hold med':>10}{'hold max':>10}")
    out += ["", hdr, "-" * len(hdr)]

    def arow(name: str, r: dict[str, Any]) -> str:
        return (f"{name:<22}{r['instances']:>4}{r['recall_any'] * 100:>5.0f}%{r['recall_hold_lock'] * 100:>6.0f}%"
                f"{dur(r['ttd_median_s']):>9}{dur(r['ttd_max_s']):>9}{dur(r['ttd_hold_lock_median_s']):>10}"
                f"{dur(r['ttd_hold_lock_max_s']):>10}")

    for kind, r in res["attacks"].items():
        out.append(arow(kind, r))
    out.append("-" * len(hdr))
    out.append(arow("all attacks", res["attacks_total"]))
    hdr = (f"{'category':<22}{'accounts':>9}{'acct-days':>10}{'false hold/lock':>16}{'/1000':>8}"
           f"{'false notify':>13}{'/1000':>8}{'watch only':>11}{'/1000':>8}")
    out += ["", hdr, "-" * len(hdr)]

    def crow(name: str, c: dict[str, Any]) -> str:
        acc = "-" if c["accounts"] is None else str(c["accounts"])
        days = "-" if c["account_days"] is None else str(c["account_days"])
        return (f"{name:<22}{acc:>9}{days:>10}{c['false_hold_lock_days']:>16}{_rate(c['false_hold_lock_per_1000']):>8}"
                f"{c['false_notify_days']:>13}{_rate(c['false_notify_per_1000']):>8}"
                f"{c.get('false_watch_days', 0):>11}{_rate(c.get('false_watch_per_1000')):>8}")

    for name, c in res["categories"].items():
        if name not in (PER_IP, UNKNOWN):
            out.append(crow(name, c))
    out.append("-" * len(hdr))
    out.append(crow("all accounts", res["categories_total"]))
    for name in (PER_IP, UNKNOWN):
        if name in res["categories"]:
            out.append(crow(name, res["categories"][name]) + "   (subject-days; per 1,000 account-days of all)")
    if res.get("guessing_bot_reports"):
        out.append(f"(+ {res['guessing_bot_reports']} true per-IP reports of the background's password-guessing bots)")
    if res["detectors"]:
        hdr = f"{'detector':<22}{'true incidents':>15}{'false incidents':>16}{'false hold/lock':>16}"
        out += ["", hdr, "-" * len(hdr)]
        for name, d in res["detectors"].items():
            out.append(f"{name:<22}{d.get('true', 0):>15}{d.get('false', 0):>16}{d.get('false_hold_lock', 0):>16}")
    missed = [m for r in res["attacks"].values() for m in r["missed"]]
    if missed:
        out += ["", "missed: " + ", ".join(missed)]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("truth")
    ap.add_argument("incidents")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args()
    truth = json.loads(Path(a.truth).read_text(encoding="utf-8"))
    res = score(truth, load_incidents(a.incidents))
    print(json.dumps(res, indent=1) if a.json else table(res))


if __name__ == "__main__":
    main()
