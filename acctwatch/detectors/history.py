"""History detectors: compare an account with its own past, not with everyone's limits.

* ``new_country``: a login from a country this account has not used before, once the account's history
  is long enough to know where it normally is.
* ``send_baseline``: sending far above what this account normally sends in an hour or a day, once enough
  history exists; catches a compromise that stays under the global ``send_burst`` limits, and leaves alone a
  newsletter account that always sends 500 on Mondays.

Both learn as they go and persist what they learned per account, incrementally (``export_changes`` /
``import_rows``: the engine keeps it in the store's ``detector_kv`` table, committed with the log
positions): bounded by a retention (default 90 days) and by caps per account and on the number of accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..events import Event
from .base import SWEEP_SLACK, Detector, Finding, geo_brief, iso, register, sent
from .geo import country_login

DAY = 86400.0
MAX_ACCOUNTS = 200_000
#: send_baseline's evidence shows this many of the most recent days
SHOWN_DAYS = 14


def _ts(t: float) -> str:
    return iso(datetime.fromtimestamp(t, tz=UTC))


def _sweep(det: Any) -> None:
    """Once per day of event time (from the events, and before every export): forget accounts idle for
    longer than their retention (in memory and, through the change set, in the store), so neither grows
    with every account ever seen. An account idle that long starts afresh at its next event anyway (see
    ``feed``), so when the sweeps run changes nothing but memory."""
    day = int(det.now // DAY)
    if day == det._swept:
        return
    det._swept = day
    now = det.now - SWEEP_SLACK
    for acct, h in list(det.accounts.items()):
        if now - h.last > float(det.opt(acct, "retention")):
            del det.accounts[acct]
            if det.track_changes:
                det._dirty.add(acct)


class _Hist:
    __slots__ = ("countries", "first", "last", "logins")

    def __init__(self, first: float) -> None:
        self.first = first
        self.last = first
        self.logins = 0
        self.countries: dict[str, list[float]] = {}  # country -> [first, last, count]


@register
class NewCountry(Detector):
    """A successful login from a country absent from this account's history (within ``retention``).

    Only once the account is learned: its history spans at least ``learn_period`` AND holds at least
    ``learn_logins`` logins with a country. A few logins on one day say little about where a person
    travels, so both conditions apply (set one to 0 to rely on the other). Allowlisted countries and the
    account's ``extra_countries`` never count as new.
    """

    name = "new_country"
    kinds = ("login", "message")
    defaults = {"learn_period": "14d", "learn_logins": 10, "retention": "90d", "max_countries": 32}
    durations = ("learn_period", "retention")
    default_policy = "notify"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.accounts: dict[str, _Hist] = {}
        self._dirty: set[str] = set()
        self.now = 0.0  # newest event time seen
        self._swept = -1

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t > self.now:
            self.now = t
            if t // DAY != self._swept:
                _sweep(self)
        got = country_login(self, ev)
        if got is None:
            return ()
        acct, country = got
        if self.track_changes:
            self._dirty.add(acct)
        retention = float(self.opt(acct, "retention"))
        h = self.accounts.get(acct)
        if h is not None and t - h.last > retention:
            del self.accounts[acct]  # idle for longer than the retention: no history left (as after a sweep)
            h = None
        if h is None:
            if len(self.accounts) >= MAX_ACCOUNTS:
                self._evict()
            h = self.accounts[acct] = _Hist(t)
        out: tuple[Finding, ...] | list[Finding] = ()
        c = h.countries.get(country)
        if c is not None and t - c[1] > retention:
            del h.countries[country]
            c = None
        if c is None:
            # countries not seen within the retention are no history (forgotten now, as when it is saved)
            for k in [k for k, v in h.countries.items() if t - v[1] > retention]:
                del h.countries[k]
            learned = (t - h.first >= float(self.opt(acct, "learn_period"))
                       and h.logins >= int(self.opt(acct, "learn_logins")))
            if learned and h.countries:
                out = [self._finding(acct, ev, country, h, retention)]
            c = h.countries[country] = [t, t, 0]
            cap = int(self.opt(acct, "max_countries"))
            if len(h.countries) > cap:
                oldest = min(h.countries, key=lambda k: h.countries[k][1])
                del h.countries[oldest]
        if t > c[1]:
            c[1] = t
        c[2] += 1
        h.logins += 1
        if t > h.last:
            h.last = t
        return out

    def _finding(self, acct: str, ev: Event, country: str, h: _Hist, retention: float) -> Finding:
        known = sorted(h.countries.items(), key=lambda kv: (-kv[1][2], kv[0]))
        known_s = ", ".join(f"{k} ({int(v[2])} logins)" for k, v in known[:6])
        days = (ev.t - h.first) / DAY
        label = ev.geo.label() if ev.geo is not None else country
        summary = (f"{acct} logged in from {label} [{ev.ip}], a country new for this account "
                   f"(seen in {days:.0f} days: {known_s})")
        evidence = {"country": country, "login": geo_brief(ev), "history_days": round(days, 1),
                    "history_logins": h.logins, "retention_seconds": retention,
                    "known_countries": [{"country": k, "first_seen": _ts(v[0]), "last_seen": _ts(v[1]),
                                         "logins": int(v[2])} for k, v in known]}
        return Finding(self.name, acct, ev.ts, ev.ts, summary, evidence, [ev.ip] if ev.ip else [])

    def _evict(self) -> None:
        keep = sorted(self.accounts.items(), key=lambda kv: -kv[1].last)[: MAX_ACCOUNTS * 3 // 4]
        gone = set(self.accounts) - {k for k, _ in keep}
        self.accounts = dict(keep)
        if self.track_changes:
            self._dirty |= gone

    # Learned history is saved per account, incrementally (only accounts that changed since the last
    # commit), so a busy daemon does not rewrite everybody's history on every batch.
    def _row(self, acct: str, h: _Hist) -> Any:
        keep = float(self.opt(acct, "retention"))
        cs = {k: [round(v[0]), round(v[1]), int(v[2])] for k, v in h.countries.items() if h.last - v[1] <= keep}
        return [round(h.first), round(h.last), h.logins, cs] if cs else None

    def export_changes(self) -> dict[str, Any] | None:
        _sweep(self)
        out = {}
        for acct in self._dirty:
            h = self.accounts.get(acct)
            out[acct] = None if h is None else self._row(acct, h)
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        for acct, (first, last, logins, cs) in rows.items():
            h = _Hist(float(first))
            h.last = float(last)
            h.logins = int(logins)
            h.countries = {str(k): [float(v[0]), float(v[1]), int(v[2])] for k, v in cs.items()}
            self.accounts[str(acct)] = h

    def import_state(self, data: Any) -> None:
        """History saved whole by acctwatch <= 0.1 (detector_state): adopted, then kept per account."""
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("unknown state format")
        self.import_rows(data["accounts"])
        self._dirty.update(self.accounts)


class _Send:
    __slots__ = ("base", "base_day", "days", "first", "hm", "hour", "hr", "last", "reported")

    def __init__(self, first: float) -> None:
        self.first = first
        self.last = first
        self.days: dict[int, list[int]] = {}  # day number -> [messages, recipients, max/h messages, max/h rcpts]
        self.hour = -1
        self.hm = 0
        self.hr = 0
        self.base_day = -1
        self.base = (0, 0, 0, 0)
        self.reported: dict[str, int] = {}


_BASELINE_PERIODS = (("retention", float), ("learn_period", float))


@register
class SendBaseline(Detector):
    """Messages or recipients in the current hour / day far above this account's own past maximum.

    Baseline = the highest daily total and the highest hourly total of the previous days kept (``retention``).
    Fires when the current value is above ``factor`` times that AND above the floor ``min_per_hour`` /
    ``min_per_day`` (so 3 -> 12 messages is not news), once the account has been watched for
    ``learn_period``. Hours and days are UTC calendar buckets of event time.
    """

    name = "send_baseline"
    kinds = ("message", "queue")
    defaults = {"learn_period": "14d", "factor": 3.0, "min_per_hour": 50, "min_per_day": 100,
                "retention": "90d"}
    durations = ("learn_period", "retention")
    default_policy = "notify"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.accounts: dict[str, _Send] = {}
        self._dirty: set[str] = set()
        self.now = 0.0
        self._swept = -1

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t > self.now:
            self.now = t
            if t // DAY != self._swept:
                _sweep(self)
        got = sent(ev)
        if got is None:
            return ()
        acct, m, r = got
        if self.track_changes:
            self._dirty.add(acct)
        retention, learn_period = self.opts(acct, _BASELINE_PERIODS)
        s = self.accounts.get(acct)
        if s is not None and t - s.last > retention:
            del self.accounts[acct]  # idle for longer than the retention: watched afresh (as after a sweep)
            s = None
        if s is None:
            if len(self.accounts) >= MAX_ACCOUNTS:
                keep = sorted(self.accounts.items(), key=lambda kv: -kv[1].last)[: MAX_ACCOUNTS * 3 // 4]
                if self.track_changes:
                    self._dirty |= set(self.accounts) - {k for k, _ in keep}
                self.accounts = dict(keep)
            s = self.accounts[acct] = _Send(t)
        if t > s.last:
            s.last = t
        hour = int(t // 3600)
        d = hour // 24
        if hour != s.hour:
            s.hour, s.hm, s.hr = hour, 0, 0
        s.hm += m
        s.hr += r
        today = s.days.get(d)
        if today is None:
            today = s.days[d] = [0, 0, 0, 0]
            self._prune(s, d, retention)
            s.reported = {}
        today[0] += m
        today[1] += r
        if s.hm > today[2]:
            today[2] = s.hm
        if s.hr > today[3]:
            today[3] = s.hr
        if t - s.first < learn_period:
            return ()
        if s.base_day != d:
            past = [v for k, v in s.days.items() if k < d]
            s.base = tuple(max((v[i] for v in past), default=0) for i in range(4))  # type: ignore[assignment]
            s.base_day = d
        factor = float(self.opt(acct, "factor"))
        fh = int(self.opt(acct, "min_per_hour"))
        fd = int(self.opt(acct, "min_per_day"))
        bm, br, bhm, bhr = s.base
        over: dict[str, tuple[int, float]] = {}
        for metric, value, base, floor in (("recipients_this_hour", s.hr, bhr, fh),
                                           ("recipients_today", today[1], br, fd),
                                           ("messages_this_hour", s.hm, bhm, fh),
                                           ("messages_today", today[0], bm, fd)):
            if value > floor and value > factor * base:
                over[metric] = (value, base)
        if not over:
            return ()
        if all(v < s.reported.get(k, 0) * 1.25 for k, (v, _) in over.items()):
            return ()
        for k, (v, _) in over.items():
            s.reported[k] = v
        parts = [f"{v} {k.replace('_', ' ')} vs at most {b} before" for k, (v, b) in over.items()]
        days = (t - s.first) / DAY
        summary = f"{acct} sends far above its own normal ({days:.0f} days of history): {'; '.join(parts)}"
        hist = sorted(s.days.items())[-SHOWN_DAYS:]
        evidence = {"factor": factor, "history_days": round(days, 1),
                    "current": {"messages_this_hour": s.hm, "recipients_this_hour": s.hr,
                                "messages_today": today[0], "recipients_today": today[1]},
                    "baseline": {"max_messages_per_day": bm, "max_recipients_per_day": br,
                                 "max_messages_per_hour": bhm, "max_recipients_per_hour": bhr},
                    "recent_days": [{"day": _ts(k * DAY)[:10], "messages": v[0], "recipients": v[1]}
                                    for k, v in hist],
                    "last_event": geo_brief(ev)}
        first = datetime.fromtimestamp(hour * 3600.0 if any(k.endswith("hour") for k in over) else d * DAY,
                                       tz=UTC)
        return [Finding(self.name, acct, ev.ts, first, summary, evidence, [ev.ip] if ev.ip else [])]

    def _prune(self, s: _Send, today: int, retention: float) -> None:
        """At the start of a day: forget the days older than the retention, and those that can no longer be
        the baseline (:meth:`_compact`)."""
        oldest = today - int(retention // DAY)
        days = s.days
        for k in [k for k in days if k < oldest]:
            del days[k]
        self._compact(days, today)

    @staticmethod
    def _compact(days: dict[int, list[int]], today: int) -> None:
        """The baseline is the maximum of each value over the previous days kept. A day whose every value is
        at most the largest of that value among the later (complete) days never sets it again (those days
        outlive it), so it goes, unless it is one of the last ``SHOWN_DAYS`` (the evidence lists them).
        What stays is bounded however long the retention: the shown days and the few record days behind."""
        if len(days) <= SHOWN_DAYS + 1:
            return
        past = sorted(k for k in days if k < today)
        best = [0, 0, 0, 0]
        for k in past[-SHOWN_DAYS:]:
            v = days[k]
            for i in range(4):
                if v[i] > best[i]:
                    best[i] = v[i]
        for k in reversed(past[:-SHOWN_DAYS]):
            v = days[k]
            if v[0] <= best[0] and v[1] <= best[1] and v[2] <= best[2] and v[3] <= best[3]:
                del days[k]
                continue
            for i in range(4):
                if v[i] > best[i]:
                    best[i] = v[i]

    def _row(self, acct: str, s: _Send) -> Any:
        last_day = int(s.last // DAY)
        oldest = last_day - int(float(self.opt(acct, "retention")) // DAY)
        days = {str(k): v for k, v in s.days.items() if k >= oldest}
        return {"first": round(s.first), "last": round(s.last), "days": days, "hour": [s.hour, s.hm, s.hr]}

    def export_changes(self) -> dict[str, Any] | None:
        _sweep(self)
        out = {}
        for acct in self._dirty:
            s = self.accounts.get(acct)
            out[acct] = None if s is None else self._row(acct, s)
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        for acct, a in rows.items():
            s = _Send(float(a["first"]))
            s.last = float(a["last"])
            s.days = {int(k): [int(x) for x in v] for k, v in a["days"].items()}
            s.hour, s.hm, s.hr = (int(x) for x in a["hour"])
            self.accounts[str(acct)] = s

    def import_state(self, data: Any) -> None:
        """History saved whole by acctwatch <= 0.1 (detector_state): adopted, then kept per account."""
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("unknown state format")
        self.import_rows(data["accounts"])
        self._dirty.update(self.accounts)
