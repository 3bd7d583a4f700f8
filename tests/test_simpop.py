"""The detection-quality benchmark's population simulator (benchmarks/simpop.py) and scorer
(benchmarks/score.py): deterministic output, a complete ground truth, lines acctwatch recognises, addresses
the embedded GeoIP data maps where intended, and the scoring rules on a hand-made incident list."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from acctwatch.geo import GeoResolver
from acctwatch.headers import Clock
from acctwatch.parsing import LineParser, PatternSet
from benchmarks import score, simpop

ACCOUNTS, DAYS = 60, 9


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pop")
    return out, simpop.generate(out, ACCOUNTS, DAYS, seed=1)


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(pop: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = pop
    simpop.generate(tmp_path / "again", ACCOUNTS, DAYS, seed=1)
    simpop.generate(tmp_path / "other", ACCOUNTS, DAYS, seed=2)
    first = _files(out)
    assert set(first) == {"mail-week1.log", "mail-week2.log", "truth.json"}
    assert _files(tmp_path / "again") == first
    other = _files(tmp_path / "other")
    assert set(other) == set(first)
    assert all(other[n] != first[n] for n in first)


def test_truth_has_every_category_and_attack(pop: tuple[Path, dict]) -> None:
    _, truth = pop
    cats = [v["category"] for v in truth["accounts"].values()]
    assert len(cats) == ACCOUNTS
    assert set(cats) == set(simpop.CATEGORIES)
    assert cats.count("normal") > ACCOUNTS / 2
    assert {a["type"] for a in truth["attacks"]} == set(simpop.ATTACKS)
    p0, p1 = (score.ts(truth["scoring_period"][k]) for k in ("start", "end"))
    assert p1 - p0 == (DAYS - 7) * 86400
    victims = [a["victim"] for a in truth["attacks"]]
    assert len(set(victims)) == len(victims)
    for a in truth["attacks"]:
        assert p0 <= score.ts(a["start"]) <= score.ts(a["end"]) < p1, a["id"]
        assert a["attacker_ips"]
        cat = truth["accounts"][a["victim"]]["category"]
        if a["type"] == "vpn_user_compromise":
            assert cat in ("vpn_fixed", "vpn_commercial")
        elif a["type"] == "traveller_compromise":
            assert cat == "traveller"
        else:
            assert cat == "normal"
    assert truth["parameters"] == {"accounts": ACCOUNTS, "days": DAYS, "seed": 1, "instances": 1,
                                   "start": "2026-11-02T00:00:00Z", "domain": "example.org"}


def test_acctwatch_recognises_the_lines(pop: tuple[Path, dict]) -> None:
    out, truth = pop
    ps = PatternSet.load()
    last = ""
    accounts: set[str] = set()
    for name in ("mail-week1.log", "mail-week2.log"):
        parser = LineParser(ps, Clock(zone="UTC"), source=name, track_unmatched=True)
        with open(out / name, "rb") as f:
            for n, raw in enumerate(f, 1):
                line = raw.rstrip(b"\n")
                assert line.decode()[:26] >= last, f"{name}:{n} out of time order"
                last = line.decode()[:26]
                ev = parser.parse_bytes(line, n)
                if ev is not None and ev.kind in ("login", "message") and ev.account:
                    accounts.add(ev.account)
        st = parser.stats
        assert st.relevant_unmatched == 0, st.unmatched_examples
        assert st.no_header == 0 and st.bad_time == 0 and st.internal_errors == 0
        assert {"login", "auth_failure", "message", "queue", "delivery"} <= set(st.events), st.events
    assert accounts <= set(truth["accounts"])  # every login and submission is by a known account
    assert len(accounts) >= 0.9 * ACCOUNTS  # (a light user may not read mail for a week)


def test_catalogue_addresses_geolocate_as_intended() -> None:
    cat = simpop.load_catalogue()
    for asn in (3320, 3209, 6805, 24940, 16276, 16509, 14061, 8075, 9009, 60068, 7922, 2856):
        assert asn in cat, asn
    geo = GeoResolver.open()
    checked = 0
    for asn, rec in sorted(cat.items()):
        for cc, blocks in rec["blocks"].items():
            net = ipaddress.ip_network(blocks[len(blocks) // 2])
            g = geo.lookup(str(net.network_address + net.num_addresses // 2))
            assert g is not None and (g.country, g.asn) == (cc, asn), (asn, cc, net, g)
            checked += 1
    assert checked > 150


# ---------------------------------------------------------------------------------------------- scorer
TRUTH = {
    "scoring_period": {"start": "2026-11-09T00:00:00Z", "end": "2026-11-11T00:00:00Z"},
    "accounts": {"a@x": {"category": "normal"}, "b@x": {"category": "normal"}, "v1@x": {"category": "normal"},
                 "v3@x": {"category": "normal"}, "c@x": {"category": "vpn_fixed"},
                 "v2@x": {"category": "traveller"}},
    "attacks": [
        {"id": "botnet-1", "type": "botnet", "victim": "v1@x", "attacker_ips": ["203.0.113.1"],
         "start": "2026-11-09T10:00:00Z", "end": "2026-11-09T12:00:00Z"},
        {"id": "botnet-2", "type": "botnet", "victim": "v3@x", "attacker_ips": ["203.0.113.2"],
         "start": "2026-11-10T10:00:00Z", "end": "2026-11-10T11:00:00Z"},
        {"id": "quiet_reader-1", "type": "quiet_reader", "victim": "v2@x", "attacker_ips": ["203.0.113.3"],
         "start": "2026-11-09T00:00:00Z", "end": "2026-11-10T00:00:00Z"},
    ],
}


def inc(account: str | None, first_seen: str, action: str, detected_at: str | None = None,
        escalations: list[tuple[str, str]] | None = None, detector: str = "d") -> dict:
    out = {"id": f"{account}-{first_seen}", "account": account, "detector": detector, "action": action,
           "first_seen": first_seen, "last_seen": first_seen, "ips": ["198.51.100.9"], "attacker_ips": []}
    if detected_at:
        out["detected_at"] = detected_at
    if escalations:
        out["escalations"] = [{"at": t, "level": lv} for t, lv in escalations]
    return out


INCIDENTS = [
    # botnet-1: notify 30 min after the start (evidence began at the start), lock after 1 h
    inc("v1@x", "2026-11-09T10:00:00Z", "lock", "2026-11-09T10:30:00Z",
        [("2026-11-09T10:30:00Z", "notify"), ("2026-11-09T11:00:00Z", "lock")]),
    # 90 min before botnet-1's start: outside its grace hour, so a false notification of v1 (normal) on day 0
    inc("v1@x", "2026-11-09T08:30:00Z", "notify"),
    # botnet-2: held 2 h after its start (no detected_at/escalations: first_seen and action)
    inc("v3@x", "2026-11-10T12:00:00Z", "hold"),
    # a: a false lock and a false notification on day 0 -> one false lock/hold day, no notify-only day
    inc("a@x", "2026-11-09T05:00:00Z", "lock"),
    inc("a@x", "2026-11-09T06:00:00Z", "notify", detector="e"),
    # b: a false notification on day 1; a lock before the period (ignored)
    inc("b@x", "2026-11-10T01:00:00Z", "notify"),
    inc("b@x", "2026-11-08T23:00:00Z", "lock"),
    # c (vpn_fixed): notify on day 0 that escalates to hold on day 1
    inc("c@x", "2026-11-09T20:00:00Z", "hold", None,
        [("2026-11-09T20:00:00Z", "notify"), ("2026-11-10T09:00:00Z", "hold")]),
    # a per-IP report
    inc(None, "2026-11-09T03:00:00Z", "notify", detector="auth_failures_ip"),
]


def test_scorer_counts_true_and_false_detections() -> None:
    res = score.score(TRUTH, INCIDENTS)
    b = res["attacks"]["botnet"]
    assert (b["instances"], b["detected"], b["held_or_locked"]) == (2, 2, 2)
    assert b["recall_any"] == 1.0 and b["recall_hold_lock"] == 1.0
    assert b["ttd_median_s"] == (1800 + 7200) / 2 and b["ttd_max_s"] == 7200
    assert b["ttd_hold_lock_median_s"] == (3600 + 7200) / 2
    q = res["attacks"]["quiet_reader"]
    assert (q["detected"], q["recall_any"], q["ttd_median_s"], q["missed"]) == (0, 0.0, None, ["quiet_reader-1"])
    assert res["attacks_total"]["recall_any"] == pytest.approx(2 / 3)

    normal = res["categories"]["normal"]
    assert normal["account_days"] == 4 * 2
    assert normal["false_hold_lock_days"] == 1  # a, day 0
    assert normal["false_notify_days"] == 2  # v1 day 0, b day 1 (a's day 0 is already a lock day)
    assert normal["false_hold_lock_per_1000"] == pytest.approx(125.0)
    assert normal["false_notify_per_1000"] == pytest.approx(250.0)
    vpn = res["categories"]["vpn_fixed"]
    assert (vpn["account_days"], vpn["false_hold_lock_days"], vpn["false_notify_days"]) == (2, 1, 1)
    assert res["categories"]["traveller"]["false_hold_lock_days"] == 0
    assert res["categories"][score.PER_IP]["false_notify_days"] == 1
    assert res["categories_total"]["account_days"] == 12
    assert res["categories_total"]["false_hold_lock_days"] == 2
    assert res["detectors"]["d"] == {"true": 2, "false": 4, "false_hold_lock": 2}
    text = score.table(res)
    assert "botnet" in text and "missed: quiet_reader-1" in text


def test_scorer_reads_replay_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "i.jsonl"
    p.write_text("".join(json.dumps(i) + "\n" for i in INCIDENTS) + "\n", encoding="utf-8")
    assert score.score(TRUTH, score.load_incidents(p)) == score.score(TRUTH, INCIDENTS)
