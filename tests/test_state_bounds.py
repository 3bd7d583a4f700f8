"""Every per-account and per-source state of the detectors (and the familiarity profiles) is bounded by its
window, however long the stream: keys that are never seen again are swept out by event time, and what is
swept is also deleted from the store. Sweeping never changes a finding: the same stream gives the same
incidents with sweeps after every event, with no sweeps at all, and across restarts at any point.

The stream: 18 days of a busy little server where nothing comes back. Every day 30 new accounts log in
(some travel, some from many networks at once, a few send in bulk into bounces), every hour a new
password-guessing bot from a new /24 tries three names, is banned, and now and then gets in; a few regular
accounts log in and send every day; one slow bot comes back every three hours with one connection of 25
attempts."""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakegeo import FakeGeoInfo

from acctwatch.config import from_dict
from acctwatch.detectors import REGISTRY, Context, load_all
from acctwatch.detectors.base import SWEEP_SLACK, Sweep, Timeline
from acctwatch.detectors.history import SHOWN_DAYS, SendBaseline
from acctwatch.engine import Engine, Incident
from acctwatch.events import AuthFailure, Ban, Delivery, Event, Login, Message, QueueEntry
from acctwatch.store import Store

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 18
NEW_PER_DAY = 30

#: first octet -> (country, city, lat, lon, ASN, organisation)
PLACES: dict[str, tuple[str, str, float, float, int, str]] = {
    "81": ("DE", "Berlin", 52.52, 13.40, 3320, "Deutsche Telekom AG"),
    "45": ("US", "New York", 40.71, -74.0, 7922, "Comcast Cable Communications"),
    "61": ("CN", "Beijing", 39.90, 116.4, 4134, "Chinanet"),
    "177": ("BR", "Sao Paulo", -23.55, -46.63, 28573, "Claro NXT"),
    "5": ("DE", "Nuremberg", 49.45, 11.08, 24940, "Hetzner Online GmbH"),
    "41": ("ZA", "Johannesburg", -26.2, 28.05, 37457, "Telkom SA"),
    "1": ("AU", "Sydney", -33.87, 151.2, 1221, "Telstra"),
}

CONF: dict[str, Any] = {
    # the default preset (familiarity, account_risk) with the single-rule detectors switched on as well
    "detectors": {"bruteforce_success": {}, "banned_ip_login": {}, "geo_countries": {}, "impossible_travel": {},
                  "new_country": {"retention": "3d", "learn_period": "2d", "learn_logins": 3},
                  "send_baseline": {"retention": "4d", "learn_period": "3d", "min_per_day": 50}},
    "familiarity": {"retention": "3d"},
    # longer windows for one account than the detectors' own: a sweep must wait for the longest
    "accounts": {"n3-1@example.org": {"detectors": {"auth_failures_account": {"window": "3h"},
                                                    "bounce_ratio": {"window": "5h"},
                                                    "bruteforce_success": {"window": "4h"}}}},
}


class Geo:
    """Places by the first octet (:data:`PLACES`)."""

    def __init__(self) -> None:
        self.cache: dict[str, FakeGeoInfo] = {}

    def lookup(self, ip: str) -> FakeGeoInfo:
        g = self.cache.get(ip)
        if g is None:
            c, city, lat, lon, asn, org = PLACES[ip.split(".")[0]]
            g = self.cache[ip] = FakeGeoInfo(ip, False, c, city, lat, lon, 20.0, asn, org)
        return g


def _stream(days: int = DAYS) -> list[Event]:
    r = random.Random(15)
    evs: list[Event] = []
    q = iter(range(1, 10**9))

    def send(t: datetime, acct: str, ip: str, rcpts: int, bounced: float = 0.0) -> None:
        qid = f"Q{next(q):09X}"
        evs.append(Message(ts=t, account=acct, ip=ip, queue_id=qid, service="submission", program="smtpd"))
        evs.append(QueueEntry(ts=t + timedelta(milliseconds=5), queue_id=qid, nrcpt=rcpts, program="qmgr"))
        for k in range(rcpts):
            status = "bounced" if r.random() < bounced else ("deferred" if r.random() < 0.05 else "sent")
            evs.append(Delivery(ts=t + timedelta(seconds=1 + k * 0.1), queue_id=qid, recipient=f"x{k}@example.net",
                                relay="mx.example.net[198.51.100.1]:25", status=status,
                                dsn="5.1.1" if status == "bounced" else "2.0.0", program="smtp"))

    def login(t: datetime, acct: str, ip: str, service: str = "imap") -> None:
        evs.append(Login(ts=t, account=acct, ip=ip, service=service, program=f"{service}-login"))

    def fail(t: datetime, acct: str | None, ip: str, attempts: int | None = None) -> None:
        evs.append(AuthFailure(ts=t, account=acct, ip=ip, layer="frontend", attempts=attempts,
                               reason="auth failed", program="imap-login", service="imap"))

    for d in range(days):
        day = T0 + timedelta(days=d)
        for u in range(NEW_PER_DAY):
            acct = f"n{d}-{u}@example.org"
            home = f"81.{d}.{u}.1"
            if u % 4 == 0:  # a typo first
                fail(day + timedelta(hours=7, minutes=59), acct, home)
            for h in (8, 13, 19):
                login(day + timedelta(hours=h, minutes=u), acct, home)
            if u % 5 == 0:  # a login from far away 40 minutes after one at home
                login(day + timedelta(hours=13, minutes=u + 40), acct, f"45.{d}.{u}.9")
            if u % 7 == 0:  # from many networks within the hour
                for k, first in enumerate(("177", "45", "5", "41", "1", "61", "177", "45", "5")):
                    login(day + timedelta(hours=15, minutes=k * 5), acct, f"{first}.{d}.{u}.{k + 10}")
            if u % 3 == 0:
                send(day + timedelta(hours=10, minutes=u), acct, home, 1 + u % 4)
            if u == 1:  # a bulk run into bounces
                for k in range(12):
                    send(day + timedelta(hours=16, minutes=k * 4), acct, f"5.9.{d}.{u}", 50, bounced=0.5)
        # distributed guessing against one new account: 5 addresses, 8 tries each, within 40 minutes
        for k in range(40):
            fail(day + timedelta(hours=4, minutes=k), f"n{d}-29@example.org", f"177.{d}.{k % 5}.77")
        # a new bot every hour, banned after its run; every sixth one gets in
        for h in range(24):
            bot = f"61.{d}.{h}.7"
            t = day + timedelta(hours=h, minutes=20)
            for k in range(36):
                fail(t + timedelta(seconds=3 * k), ("admin", "info", f"n{d}-{h % NEW_PER_DAY}@example.org")[k % 3], bot)
            evs.append(Ban(ts=t + timedelta(minutes=2), ip=bot, jail="dovecot", program="fail2ban.actions"))
            if h % 6 == 0:
                login(t + timedelta(minutes=5), f"n{d}-{h % NEW_PER_DAY}@example.org", bot)
            if h % 3 == 0:  # the slow bot: one connection with 25 attempts, every three hours
                fail(t + timedelta(minutes=30), None, "61.250.0.7", attempts=25)
        for k in range(5):  # regular accounts: every day, one of them once far above its usual
            acct = f"r{k}@example.org"
            for h in (7, 12, 18):
                login(day + timedelta(hours=h, minutes=k), acct, f"81.200.{k}.1")
            if k == 1 and d % 5 == 4:  # a trip
                login(day + timedelta(hours=23, minutes=k), acct, f"45.200.{k}.1")
            n = 300 if (k == 0 and d == 10) else r.randint(1, 12)
            for j in range(0, n, 25):
                send(day + timedelta(hours=11, minutes=k, seconds=j), acct, f"81.200.{k}.1", min(25, n - j))
    evs.sort(key=lambda e: e.ts)
    return evs


@pytest.fixture(scope="module")
def stream() -> list[Event]:
    return _stream()


@pytest.fixture(scope="module")
def want(stream: list[Event]) -> list[dict[str, Any]]:
    """The incidents of one uninterrupted run, sweeping as it does."""
    return _dicts(_run(_engine(), stream))


def _engine(store: Store | None = None) -> Engine:
    return Engine(from_dict(CONF), store=store, geo=Geo())


def _dicts(incs: dict[str, Incident]) -> list[dict[str, Any]]:
    return sorted((i.to_dict() for i in incs.values()), key=lambda d: d["id"])


def _run(eng: Engine, events: list[Event], flush_every: int = 0) -> dict[str, Incident]:
    seen: dict[str, Incident] = {}
    for n, ev in enumerate(events, 1):
        for inc in eng.process(ev):
            seen[inc.id] = inc
        if flush_every and n % flush_every == 0:
            eng.flush()
    for inc in eng.finish():
        seen[inc.id] = inc
    if flush_every:
        eng.flush()
    return seen


def _det(eng: Engine, name: str) -> Any:
    return next(d for d in eng.detectors if d.name == name)


def _sizes(eng: Engine) -> dict[str, int]:
    """The number of keys of every table that grows with accounts or sources."""
    d = {n: _det(eng, n) for n in REGISTRY}
    prof = eng.profiles
    assert prof is not None
    return {
        "auth_failures_ip": len(d["auth_failures_ip"].state),
        "auth_failures_account": len(d["auth_failures_account"].state),
        "bruteforce_success": len(d["bruteforce_success"].accounts),
        "bruteforce_success.sources": sum(len(s) for s in d["bruteforce_success"].accounts.values()),
        "bruteforce_success.last": len(d["bruteforce_success"].last),
        "banned_ip_login": len(d["banned_ip_login"].bans),
        "ip_spread": len(d["ip_spread"].accounts),
        "send_burst": len(d["send_burst"].accounts),
        "bounce_ratio": len(d["bounce_ratio"].accounts),
        "account_risk": len(d["account_risk"].accounts),
        "account_risk.bans": len(d["account_risk"].bans),
        "account_risk.fails": sum(len(a.fails) for a in d["account_risk"].accounts.values()),
        "new_country": len(d["new_country"].accounts),
        "send_baseline": len(d["send_baseline"].accounts),
        "profiles": len(prof.accounts),
    }


H = 3600.0
D = 86400.0
S = SWEEP_SLACK


def _source(ip: str) -> str:
    return ip.rsplit(".", 1)[0]


def _acct(e: Event, q: dict[str, str]) -> str | None:
    return e.account or q.get(getattr(e, "queue_id", None) or "")


def _kinds(name: str) -> tuple[str, ...]:
    load_all()
    return REGISTRY[name.split(".")[0]].kinds if name != "profiles" else ("login", "message")


#: table -> (the events that put a key in it -> that key, how long after its last event the key may stay,
#: in event time of the detector's own events: its window (the longest of any account's), SWEEP_SLACK,
#: and the period of its sweeps)
KEYS: dict[str, tuple[Any, float]] = {
    "auth_failures_ip": (lambda e, q: e.ip if e.kind == "auth_failure" else None, 600 + S + S),
    "auth_failures_account": (lambda e, q: e.account if e.kind == "auth_failure" else None, 3 * H + S + 3 * H),
    "bruteforce_success": (lambda e, q: e.account if e.kind == "auth_failure" else None, 4 * H + S + 4 * H),
    "bruteforce_success.sources": (lambda e, q: (e.account, _source(e.ip)) if e.kind == "auth_failure" and e.account
                                   else None, 4 * H + S + 4 * H),
    "bruteforce_success.last": (lambda e, q: e.account if e.kind == "auth_failure" else None, 4 * H + S + 4 * H),
    "banned_ip_login": (lambda e, q: e.ip if e.kind == "ban" else None, D + S + D),
    "ip_spread": (lambda e, q: e.account if e.kind in ("login", "message") else None, D + S + D),
    "send_burst": (lambda e, q: _acct(e, q) if e.kind in ("message", "queue") else None, D + S + D / 4),
    "bounce_ratio": (lambda e, q: _acct(e, q) if e.kind == "delivery" else None, 5 * H + S + 6 * H),
    # (the place of the last login is kept for the longest window, guess_window: 7 days)
    "account_risk": (lambda e, q: _acct(e, q) if e.kind != "delivery" else None, 7 * D + S + D),
    "account_risk.bans": (lambda e, q: e.ip if e.kind == "ban" else None, D + S + D),
    "account_risk.fails": (lambda e, q: (e.account, _source(e.ip)) if e.kind == "auth_failure" and e.account
                           else None, 7 * D + S + D),
    # history and profiles: their retention, swept once a day
    "new_country": (lambda e, q: e.account if e.kind in ("login", "message") else None, 3 * D + S + D),
    "send_baseline": (lambda e, q: _acct(e, q) if e.kind in ("message", "queue") else None, 4 * D + S + D),
    "profiles": (lambda e, q: e.account if e.kind in ("login", "message", "auth_failure") else None, 4 * D),
}


def test_every_table_stays_within_its_window(stream: list[Event]) -> None:
    """At every hour of the stream, each table holds at most the keys that had an event within its window
    (plus the slack and the period of its sweeps): not every key it ever saw."""
    eng = _engine()
    for d in eng.detectors:  # as in a replay: nothing to save
        d.track_changes = False
    assert eng.profiles is not None
    eng.profiles.track_changes = False
    last: dict[str, dict[Any, float]] = {name: {} for name in KEYS}
    clock: dict[str, float] = {}  # table -> the newest of the events its detector is fed
    kinds = {name: _kinds(name) for name in KEYS}
    queued: dict[str, str] = {}  # queue id -> account (what the engine's queue join knows)
    hour = -1
    incs: dict[str, Incident] = {}
    checked = 0
    for ev in stream:
        t = ev.ts.timestamp()
        if isinstance(ev, Message) and ev.account:
            queued[ev.queue_id] = ev.account
        for name, (key, _) in KEYS.items():
            if ev.kind in kinds[name]:
                clock[name] = max(clock.get(name, t), t)
            k = key(ev, queued)
            if k is not None:
                last[name][k] = t
        for inc in eng.process(ev):
            incs[inc.id] = inc
        h = int((t - T0.timestamp()) // H)
        if h != hour:
            hour = h
            sizes = _sizes(eng)
            for name, (_, horizon) in KEYS.items():
                bound = sum(1 for v in last[name].values() if v >= clock.get(name, t) - horizon)
                assert sizes[name] <= bound, (ev.ts, name, sizes[name], bound)
            checked += 1
    assert checked == DAYS * 24
    # every detector had something to do (the stream exercises all of them) ...
    assert {i.detector for i in incs.values()} >= {
        "auth_failures_ip", "auth_failures_account", "bruteforce_success", "banned_ip_login", "ip_spread",
        "send_burst", "bounce_ratio", "account_risk", "new_country", "send_baseline"}
    # ... and kept only a fraction of the keys it saw
    sizes = _sizes(eng)
    for name in KEYS:
        assert sizes[name] * 2 < len(last[name]), (name, sizes[name], len(last[name]))
    # nothing accumulates in the change sets when nothing is saved
    assert all(not getattr(d, "_dirty", ()) for d in eng.detectors)
    assert not eng.profiles._dirty


@pytest.mark.parametrize("mode", ["every_event", "never"])
def test_when_sweeps_run_changes_no_finding(stream: list[Event], want: list[dict[str, Any]], mode: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(want) > 100

    def due(self: Sweep, t: float) -> float | None:
        return t - SWEEP_SLACK if mode == "every_event" else None

    monkeypatch.setattr(Sweep, "due", due)
    eng = _engine()
    got = _dicts(_run(eng, stream))
    assert got == want
    if mode == "never":  # (and without them the tables do grow: the sweeps are what bounds them)
        assert _sizes(eng)["auth_failures_ip"] > 500


def test_swept_keys_leave_the_store_too_and_a_restart_changes_nothing(stream: list[Event], want: list[dict[str, Any]],
                                                                      tmp_path: Path) -> None:
    whole_url = f"sqlite:///{tmp_path / 'whole.db'}"
    whole = _engine(Store(whole_url))
    _run(whole, stream, flush_every=700)
    store = Store(whole_url)
    # what is saved is what is in memory: a key swept out of a table is deleted from the store as well
    for det in whole.detectors:
        if det.name in ("geo_countries", "impossible_travel"):
            continue
        rows = set(store.load_kv("", det.name))
        table: set[str]
        if det.name == "account_risk":
            table = {k for k, a in det.accounts.items() if not a.empty()} | {f"ban:{ip}" for ip in det.bans}
        elif det.name == "new_country":
            table = {k for k, h in det.accounts.items() if det._row(k, h) is not None}
        else:
            table = set(getattr(det, getattr(det, "STATE", "accounts")))
        assert rows == table, det.name
    assert whole.profiles is not None
    assert set(store.load_kv("", "_profiles")) - {""} == set(whole.profiles.accounts)
    # stopped anywhere (everything committed) and started again from the store: the same incidents
    for cut in (len(stream) // 3, 2 * len(stream) // 3 + 17):
        url = f"sqlite:///{tmp_path / f'cut{cut}.db'}"
        first = _run(_engine(Store(url)), stream[:cut], flush_every=700)
        second = _run(_engine(Store(url)), stream[cut:], flush_every=700)
        got = {**first, **second}
        assert _dicts(got) == [i for i in want if i["id"] in got] and {i["id"] for i in want} == set(got), cut
        # (an incident that goes on after the restart is the one in the store, updated)
        saved = {r["id"]: r for r in Store(url).incidents()}
        assert set(saved) == {i["id"] for i in want}
        for i in want:
            assert saved[i["id"]]["escalations"] == i["escalations"] and saved[i["id"]]["updated"] == i["updated"]


def test_send_baseline_keeps_only_the_days_that_can_still_be_its_baseline() -> None:
    """A year of daily sending: the history holds the shown days and the few record days behind them, not
    90 days; the baseline (and so every finding) is that of the full history."""
    load_all()
    cfg = from_dict({"detectors": {"send_baseline": {"min_per_day": 20, "min_per_hour": 20, "factor": 1.5}}})
    full = SendBaseline(cfg.detector_options("send_baseline"), Context(cfg))
    compact = SendBaseline(cfg.detector_options("send_baseline"), Context(cfg))
    full._compact = lambda days, today: None  # type: ignore[method-assign]
    r = random.Random(3)
    found: list[list[tuple[str, Any]]] = [[], []]
    longest = 0
    bases: set[tuple[int, ...]] = set()
    for d in range(365):
        for h in sorted(r.sample(range(24), r.randint(1, 4))):
            n = r.choice([1, 2, 3, 5, 8, 13]) if r.random() < 0.99 else r.choice([30, 60, 100, 150, 250])
            t = T0 + timedelta(days=d, hours=h)
            qid = f"B{d:03d}{h:02d}"
            for ev in (Message(ts=t, account="a@x.org", ip="81.1.1.1", queue_id=qid),
                       QueueEntry(ts=t + timedelta(seconds=1), account="a@x.org", queue_id=qid, nrcpt=n)):
                for i, det in enumerate((full, compact)):
                    found[i] += [(f.summary, f.evidence) for f in det.feed(ev)]
                a, b = full.accounts["a@x.org"], compact.accounts["a@x.org"]
                assert (a.base, a.base_day) == (b.base, b.base_day)
                bases.add(a.base)
        longest = max(longest, len(compact.accounts["a@x.org"].days))
    assert found[0] == found[1] and len(found[0]) >= 2 and len(bases) > 5
    assert len(full.accounts["a@x.org"].days) > 80
    assert longest <= SHOWN_DAYS + 12
    # saved and restored, the compact history judges the same
    again = SendBaseline(cfg.detector_options("send_baseline"), Context(cfg))
    again.import_rows({"a@x.org": compact._row("a@x.org", compact.accounts["a@x.org"])})
    t = T0 + timedelta(days=366, hours=9)
    ev = QueueEntry(ts=t, account="a@x.org", queue_id="Z", nrcpt=2000)
    assert [f.summary for f in again.feed(ev)] == [f.summary for f in full.feed(ev)] != []


def test_timeline_is_a_deque_for_windows() -> None:
    r = random.Random(5)
    for _ in range(200):
        d: deque[tuple[float]] = deque()
        tl: Timeline[tuple[float]] = Timeline()
        for _ in range(r.randint(0, 300)):
            if r.random() < 0.55:
                x = (r.random(),)  # (a window's items are tuples whose first value is the time)
                d.append(x)
                tl.append(x)
            elif d and r.random() < 0.5:
                assert d.popleft() == tl.popleft()
            elif d and r.random() < 0.5:  # a window's trim: the oldest while it is before a limit
                limit = r.random()
                while (got := tl.pop_before(limit)) is not None:
                    assert got == d.popleft() and got[0] < limit
                assert not d or d[0][0] >= limit
            elif d:
                limit = r.random()
                tl.drop_before(limit)
                while d and d[0][0] < limit:
                    d.popleft()
            else:
                with pytest.raises(IndexError):
                    tl.popleft()
            assert len(d) == len(tl) and bool(d) == bool(tl) and list(d) == list(tl)
            if d:
                k = r.randrange(len(d))
                assert (d[0], d[-1], d[k], d[-k - 1]) == (tl[0], tl[-1], tl[k], tl[-k - 1])
            # what left the window is released at once, and does not pile up
            assert all(x is None for x in tl._items[:tl._head])
        assert len(tl._items) <= 2 * len(tl) + 16


def test_an_idle_key_starts_afresh_whether_or_not_it_was_swept() -> None:
    """A single Dovecot connection with more attempts than the limit, three hours after the source's last
    report: a new episode, reported again (the old report is out of the window, swept or not)."""
    load_all()
    cfg = from_dict({})
    det = REGISTRY["auth_failures_ip"](cfg.detector_options("auth_failures_ip"), Context(cfg))
    geo = Geo()

    def f(t: datetime) -> AuthFailure:
        ev = AuthFailure(ts=t, ip="61.250.0.7", layer="frontend", attempts=25, program="imap-login")
        ev.geo = geo.lookup("61.250.0.7")
        return ev

    assert len(list(det.feed(f(T0)))) == 1
    det._sweep.next = float("inf")  # no sweep: the old state is still there, but out of its window
    assert len(list(det.feed(f(T0 + timedelta(hours=3))))) == 1
    # the same episode goes on: reported again when it doubled (50), not in between (75 < 2 x 50)
    assert [len(list(det.feed(f(T0 + timedelta(hours=3, minutes=m))))) for m in (1, 2)] == [1, 0]
