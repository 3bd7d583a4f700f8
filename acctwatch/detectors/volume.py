"""Volume detectors: an account sending far too much (spam run from a stolen password), and an account
whose outgoing mail mostly bounces or is deferred (lists of harvested addresses, blocklisted content).

Messages come from ``message`` events (Postfix ``client=... sasl_username=``); recipients from ``queue``
events (``qmgr ... nrcpt=``), which the engine's queue join attributes to the account that submitted the
message and counts once per queue file. Logs without qmgr lines still give message counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..events import Event
from .base import Detector, Finding, KeyedState, Sweep, Timeline, geo_brief, iso, max_option, register, sent

_FAILED = ("bounced", "deferred", "expired")
HOUR = 3600.0
DAY = 86400.0
#: the shortest time between two sweeps of bounce_ratio's accounts
BOUNCE_SWEEP = 6 * HOUR
_BURST_LIMITS = (("recipients_per_hour", int), ("recipients_per_day", int), ("messages_per_hour", int),
                 ("messages_per_day", int))
_BOUNCE_OPTS = (("window", float), ("min_deliveries", int), ("max_ratio", float))


class _Win:
    """(time, messages, recipients, ip) over a span; totals kept up to date."""

    __slots__ = ("items", "m", "r")

    def __init__(self) -> None:
        self.items: Timeline[tuple[float, int, int, str | None]] = Timeline()
        self.m = 0
        self.r = 0

    def row(self) -> list[list[Any]]:
        return [list(x) for x in self.items]

    @classmethod
    def from_row(cls, data: list[list[Any]]) -> _Win:
        w = cls()
        for t, m, r, ip in data:
            w.items.append((float(t), int(m), int(r), ip))
            w.m += int(m)
            w.r += int(r)
        return w

    def add(self, t: float, m: int, r: int, ip: str | None, span: float) -> None:
        self.items.append((t, m, r, ip))
        self.m += m
        self.r += r
        items = self.items
        limit = t - span
        while (old := items.pop_before(limit)) is not None:
            self.m -= old[1]
            self.r -= old[2]


class _Acct:
    __slots__ = ("day", "hour", "last", "reported")

    def __init__(self) -> None:
        self.hour = _Win()
        self.day = _Win()
        self.reported: dict[str, int] = {}
        self.last = float("-inf")  # the newest event (the day window always holds it while it counts)


@register
class SendBurst(KeyedState, Detector):
    """Messages or recipients per account in the last hour / day above fixed limits ("more than")."""

    name = "send_burst"
    kinds = ("message", "queue")
    defaults = {"recipients_per_hour": 500, "recipients_per_day": 1000, "messages_per_hour": 500,
                "messages_per_day": 1000, "judge_familiar": True, "history_factor": 1.5,
                "bulk_history_recipients": 500}
    default_policy = "hold"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.accounts: dict[str, _Acct] = {}
        self._sweep = Sweep(DAY / 4)

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        got = sent(ev)
        if got is None:
            return ()
        acct, m, r = got
        a = self.accounts.get(acct)
        if a is None or t - a.last > DAY:
            # (nothing left in its day: a new start, nothing of the old one reported; as after a sweep)
            a = self.accounts[acct] = _Acct()
        if t > a.last:
            a.last = t
        a.hour.add(t, m, r, ev.ip, HOUR)
        a.day.add(t, m, r, ev.ip, DAY)
        self._touch(acct)
        rph, rpd, mph, mpd = self.opts(acct, _BURST_LIMITS)
        hr, dr, hm, dm = a.hour.r, a.day.r, a.hour.m, a.day.m
        if hr <= rph and dr <= rpd and hm <= mph and dm <= mpd:
            if a.reported:
                a.reported = {}
            return ()
        over: dict[str, tuple[int, int]] = {}
        for metric, value, limit in (("recipients_per_hour", hr, rph), ("recipients_per_day", dr, rpd),
                                     ("messages_per_hour", hm, mph), ("messages_per_day", dm, mpd)):
            if value > limit:
                over[metric] = (value, limit)
        level = rule = None
        peak = None
        fam = ev.fam
        if fam is not None and self.opt(acct, "judge_familiar"):
            if fam.familiar:
                # a familiar network's regular large sender (a weekly newsletter) is judged against its own
                # history: within it, nothing; above it, a notification. An account that never sent in bulk
                # is held as before, wherever it sends from (a spammer behind the owner's own ISP).
                from ..profiles import Profiles

                peak = Profiles.sending_peak(fam.profile, t)
                if max(a.day.r, a.day.m) <= peak * float(self.opt(acct, "history_factor")):
                    return ()
                if peak >= int(self.opt(acct, "bulk_history_recipients")):
                    level, rule = "notify", "above_own_history"
                else:
                    rule = "first_bulk_send"
            else:
                rule = "unfamiliar_network"
        # one finding at the crossing, then again only when the burst grew by a quarter (bounded output)
        grew = [k for k, (v, _) in over.items() if v >= a.reported.get(k, 0) * 1.25 or k not in a.reported]
        if not grew:
            return ()
        for k, (v, _) in over.items():
            a.reported[k] = v
        f = self._finding(acct, ev, a, over)
        f.level, f.rule = level, rule
        if fam is not None:
            f.evidence["network"] = fam.to_dict()
            if peak is not None:
                f.evidence["own_peak_recipients_per_day"] = peak
                f.summary += (f"; from a familiar network, above this account's own busiest day ({peak} "
                              "recipients)" if rule == "above_own_history" else
                              f"; from a familiar network, but this account never sent in bulk (busiest day: "
                              f"{peak} recipients)")
        return [f]

    def _finding(self, acct: str, ev: Event, a: _Acct, over: dict[str, tuple[int, int]]) -> Finding:
        win = a.hour if any(k.endswith("_hour") for k in over) else a.day
        # messages and recipients are separate events (smtpd/cleanup vs qmgr): count each per IP, rank by
        # recipients, then messages (adding them up would count every message once more than it had recipients)
        msgs: dict[str, int] = {}
        rcpts: dict[str, int] = {}
        for _t, m, r, ip in win.items:
            if ip:
                msgs[ip] = msgs.get(ip, 0) + m
                rcpts[ip] = rcpts.get(ip, 0) + r
        ips = {ip: (rcpts[ip], msgs[ip]) for ip in msgs}
        first_t = win.items[0][0]
        first = datetime.fromtimestamp(first_t, tz=ev.ts.tzinfo)
        parts = []
        for k, (v, lim) in over.items():
            what, _, per = k.partition("_per_")
            parts.append(f"{v} {what} in the last {per} (limit {lim})")
        top = sorted(ips.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        src = ""
        if top:
            src = f" from {top[0][0]}"
            if ev.geo is not None and ev.ip == top[0][0]:
                src += f" ({ev.geo.label()})"
        summary = f"{acct} is sending in bulk: {'; '.join(parts)}{src}"
        evidence = {
            "messages_last_hour": a.hour.m, "recipients_last_hour": a.hour.r,
            "messages_last_day": a.day.m, "recipients_last_day": a.day.r,
            "limits": {k: lim for k, (_v, lim) in over.items()},
            "first_in_window": iso(first), "last": iso(ev.ts),
            "ips": [{"ip": ip, "messages": m, "recipients": r} for ip, (r, m) in top[:10]],
            "last_event": geo_brief(ev),
        }
        return Finding(self.name, acct, ev.ts, first, summary, evidence, [ip for ip, _ in top[:20]])

    def _row(self, a: _Acct) -> Any:
        return {"hour": a.hour.row(), "day": a.day.row(), "reported": a.reported}

    def _from_row(self, d: Any) -> _Acct:
        a = _Acct()
        a.hour, a.day = _Win.from_row(d["hour"]), _Win.from_row(d["day"])
        a.reported = {str(k): int(v) for k, v in d.get("reported", {}).items()}
        a.last = max((x[0] for x in a.day.items), default=float("-inf"))
        return a

    def sweep(self, now: float) -> None:
        """Forget the accounts that sent nothing within the last day at event time *now*."""
        for acct in [k for k, a in self.accounts.items() if now - a.last > DAY]:
            del self.accounts[acct]
            self._touch(acct)


class _Dl:
    __slots__ = ("counts", "deferred", "items", "last", "reported")

    def __init__(self) -> None:
        self.items: Timeline[tuple[float, str, str | None, str | None]] = Timeline()  # t, status, relay, dsn
        self.counts: dict[str, int] = {}
        self.deferred: dict[tuple[str, str | None], float] = {}
        self.reported = 0
        self.last = float("-inf")  # the newest delivery counted (the window always holds it while it counts)


@register
class BounceRatio(KeyedState, Detector):
    """Share of an account's deliveries that bounced, were deferred or expired, above ``max_ratio`` once at
    least ``min_deliveries`` were seen in the window. A deferral is counted once per queue id and recipient
    (Postfix logs every retry)."""

    name = "bounce_ratio"
    kinds = ("delivery",)
    defaults = {"window": "1h", "min_deliveries": 50, "max_ratio": 0.3, "judge_familiar": True}
    durations = ("window",)
    default_policy = "hold"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.accounts: dict[str, _Dl] = {}
        # (every few hours: most accounts' deliveries are an hour's window, the sweep walks all of them)
        self._sweep = Sweep(max(max_option(self, "window"), BOUNCE_SWEEP))

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        acct = ev.account
        status = getattr(ev, "status", None)
        if acct is None or status is None:
            return ()
        span, min_deliveries, max_ratio = self.opts(acct, _BOUNCE_OPTS)
        d = self.accounts.get(acct)
        if d is None or t - d.last > span:
            # (no delivery left in its window, nor a deferral to recognise: a new start, as after a sweep)
            d = self.accounts[acct] = _Dl()
        self._touch(acct)
        if status == "deferred":
            key = (ev.queue_id, ev.recipient)  # type: ignore[attr-defined]
            if key in d.deferred and t - d.deferred[key] <= span:
                return ()
            d.deferred[key] = t
            if len(d.deferred) > 4096:
                d.deferred = {k: v for k, v in d.deferred.items() if t - v <= span}
        d.items.append((t, status, ev.relay, ev.dsn))  # type: ignore[attr-defined]
        if t > d.last:
            d.last = t
        d.counts[status] = d.counts.get(status, 0) + 1
        limit = t - span
        items = d.items
        while (gone := items.pop_before(limit)) is not None:
            d.counts[gone[1]] -= 1
        total = len(items)
        if total < min_deliveries:
            d.reported = 0
            return ()
        failed = sum(d.counts.get(s, 0) for s in _FAILED)
        ratio = failed / total
        if ratio <= max_ratio:
            d.reported = 0
            return ()
        if d.reported and failed < d.reported * 1.25:
            return ()
        d.reported = failed
        first = datetime.fromtimestamp(items[0][0], tz=ev.ts.tzinfo)
        relays: dict[str, int] = {}
        dsns: dict[str, int] = {}
        for _t, s, relay, dsn in items:
            if s in _FAILED:
                if relay:
                    relays[relay] = relays.get(relay, 0) + 1
                if dsn:
                    dsns[dsn] = dsns.get(dsn, 0) + 1
        counts = {s: n for s, n in sorted(d.counts.items()) if n}
        detail = ", ".join(f"{n} {s}" for s, n in counts.items())
        summary = (f"{acct}: {ratio:.0%} of {total} deliveries in {span / 3600:g} h failed ({detail}); "
                   f"limit {max_ratio:.0%}")
        evidence = {"deliveries": total, "failed": failed, "ratio": round(ratio, 3), "max_ratio": max_ratio,
                    "window_seconds": span, "by_status": counts,
                    "top_relays": dict(sorted(relays.items(), key=lambda kv: (-kv[1], kv[0]))[:5]),
                    "top_dsn": dict(sorted(dsns.items(), key=lambda kv: (-kv[1], kv[0]))[:5]),
                    "first": iso(first), "last": iso(ev.ts)}
        f = Finding(self.name, acct, ev.ts, first, summary, evidence, [ev.ip] if ev.ip else [])
        fam = ev.fam
        if fam is not None and self.opt(acct, "judge_familiar") and fam.familiar:
            # sent from the account's own network: an old mailing list, more likely than a stolen password
            f.level, f.rule = "notify", "familiar_network"
            evidence["network"] = fam.to_dict()
        return [f]

    def _row(self, d: _Dl) -> Any:
        return {"items": [list(x) for x in d.items], "deferred": [[q, r, t] for (q, r), t in d.deferred.items()],
                "reported": d.reported}

    def _from_row(self, data: Any) -> _Dl:
        d = _Dl()
        for t, status, relay, dsn in data["items"]:
            d.items.append((float(t), status, relay, dsn))
            d.counts[status] = d.counts.get(status, 0) + 1
        d.deferred = {(q, r): float(t) for q, r, t in data.get("deferred", [])}
        d.reported = int(data.get("reported", 0))
        d.last = max((x[0] for x in d.items), default=float("-inf"))
        return d

    def sweep(self, now: float) -> None:
        """Forget the accounts without a delivery in their window at event time *now*."""
        span = float(self.options["window"])
        ov = self._overrides
        for acct in [k for k, d in self.accounts.items()
                     if now - d.last > (float(self.opt(k, "window")) if ov and k.lower() in ov else span)]:
            del self.accounts[acct]
            self._touch(acct)
