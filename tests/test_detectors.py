"""Detectors of issue 3 (spread, volume, auth, history): each threshold just under and just over, per-account
overrides, allowlists, policies and persisted state. Geo data comes from a small fake resolver so these
tests do not depend on any database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from acctwatch.config import ConfigError, from_dict
from acctwatch.detectors import REGISTRY, Context, load_all
from acctwatch.engine import Engine, Incident
from acctwatch.events import AuthFailure, Ban, Delivery, Event, Login, Message, QueueEntry
from acctwatch.store import Store

T0 = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)  # a Monday


@dataclass
class FakeGeo:
    ip: str
    country: str | None = None
    city: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    internal: bool = False
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: float | None = None
    country_name: str | None = None

    def label(self) -> str:
        return ", ".join(str(x) for x in (self.city, self.country, f"AS{self.asn}" if self.asn else None) if x)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FakeResolver:
    """ip -> FakeGeo. Default: one German ISP; override per IP with ``add``; 10/8 and 192.168/16 internal."""

    def __init__(self) -> None:
        self.table: dict[str, FakeGeo] = {}

    def add(self, ip: str, country: str | None, asn: int | None = None, **kw: Any) -> str:
        self.table[ip] = FakeGeo(ip, country, asn=asn, **kw)
        return ip

    def lookup(self, ip: str) -> FakeGeo:
        g = self.table.get(ip)
        if g is not None:
            return g
        if ip.startswith(("10.", "192.168.", "127.")):
            return FakeGeo(ip, internal=True)
        return FakeGeo(ip, "DE", asn=3320, asn_org="Deutsche Telekom")


def engine(conf: dict[str, Any] | None = None, only: str | None = None, geo: FakeResolver | None = None,
           store: Store | None = None) -> Engine:
    """An engine under the seed preset (the thresholds these tests pin are the seed rules: no familiarity
    judging; bruteforce_success, banned_ip_login and new_country enabled), unless *conf* names a preset."""
    conf = dict(conf or {})
    conf["general"] = {"preset": "seed", **conf.get("general", {})}
    cfg = from_dict(conf)
    dets = None
    if only is not None:
        load_all()
        dets = [REGISTRY[only](cfg.detector_options(only), Context(cfg))]
    return Engine(cfg, store=store, geo=geo or FakeResolver(), detectors=dets)


def run(eng: Engine, events: list[Event]) -> list[Incident]:
    seen: dict[str, Incident] = {}
    for ev in events:
        for inc in eng.process(ev):
            seen[inc.id] = inc
    for inc in eng.finish():  # the end of the stream
        seen[inc.id] = inc
    return sorted(seen.values(), key=lambda i: (i.first_seen, i.detector))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def login(acct: str, ip: str, ts: datetime, service: str = "imap") -> Login:
    return Login(ts=ts, account=acct, ip=ip, service=service, program="imap-login")


def fail(ip: str, ts: datetime, acct: str | None = None, layer: str = "frontend", attempts: int | None = None,
         reason: str = "auth failed") -> AuthFailure:
    prog = "auth" if layer == "backend" else "imap-login"
    return AuthFailure(ts=ts, account=acct, ip=ip, layer=layer, attempts=attempts, reason=reason, program=prog,
                       service="imap")


_qid = iter(range(1, 10**9))


def send(acct: str, ip: str, ts: datetime, nrcpt: int = 1) -> list[Event]:
    q = f"Q{next(_qid):08X}"
    return [Message(ts=ts, account=acct, ip=ip, queue_id=q, service="submission", program="smtpd"),
            QueueEntry(ts=ts + timedelta(milliseconds=5), queue_id=q, nrcpt=nrcpt, program="qmgr")]


def deliveries(acct: str, ts: datetime, sent: int, bounced: int, deferred: int = 0) -> list[Event]:
    out: list[Event] = []
    i = 0
    for status, n in (("sent", sent), ("bounced", bounced), ("deferred", deferred)):
        for _ in range(n):
            t = ts + timedelta(seconds=i)
            q = f"D{next(_qid):08X}"
            out.append(Message(ts=t, account=acct, ip="198.51.100.9", queue_id=q, program="smtpd"))
            out.append(Delivery(ts=t + timedelta(milliseconds=50), queue_id=q, recipient=f"r{i}@example.net",
                                relay="mx.example.net[203.0.113.1]:25", status=status,
                                dsn="5.1.1" if status == "bounced" else "2.0.0", program="smtp"))
            i += 1
    return out


def only(incs: list[Incident], detector: str) -> list[Incident]:
    return [i for i in incs if i.detector == detector]


# ---------------------------------------------------------------------------------------------------------
def test_registry_policies_match_the_issue() -> None:
    reg = load_all()
    expected = {"ip_spread": "notify", "send_burst": "hold", "bounce_ratio": "hold",
                "auth_failures_ip": "notify", "auth_failures_account": "notify", "bruteforce_success": "notify",
                "banned_ip_login": "notify", "new_country": "notify", "send_baseline": "notify",
                "geo_countries": "lock", "impossible_travel": "lock"}
    assert {k: v.default_policy for k, v in reg.items() if k in expected} == expected


def test_unknown_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_ipz"):
        engine({"detectors": {"ip_spread": {"max_ipz": 3}}})


# --- ip_spread --------------------------------------------------------------------------------------------
def _spread_geo(n_ips: int, n_asns: int) -> tuple[FakeResolver, list[str]]:
    geo = FakeResolver()
    ips = [geo.add(f"198.51.{i // 200}.{i % 200 + 1}", "DE", asn=64500 + i % n_asns, asn_org=f"Net{i % n_asns}")
           for i in range(n_ips)]
    return geo, ips


@pytest.mark.parametrize(("n", "fires"), [(20, False), (21, True)])
def test_ip_spread_ip_threshold(n: int, fires: bool) -> None:
    geo, ips = _spread_geo(n, 3)
    incs = run(engine(only="ip_spread", geo=geo), [login("a@x.org", ip, at(i * 30)) for i, ip in enumerate(ips)])
    assert bool(incs) is fires
    if fires:
        inc = incs[0]
        assert inc.action == "notify" and inc.account == "a@x.org"
        assert inc.evidence["distinct_ips"] == 21 and inc.evidence["distinct_asns"] == 3
        assert "21 IPs" in inc.summary


def test_ip_spread_mobile_user_in_one_network_is_quiet() -> None:
    geo, ips = _spread_geo(60, 1)  # 60 addresses of one carrier in a day
    assert run(engine(only="ip_spread", geo=geo), [login("m@x.org", ip, at(i * 20)) for i, ip in enumerate(ips)]) == []


def test_ip_spread_outside_window_is_quiet() -> None:
    geo, ips = _spread_geo(21, 3)
    evs = [login("a@x.org", ip, at(i * 75)) for i, ip in enumerate(ips)]  # 25 h for 21 IPs
    assert run(engine(only="ip_spread", geo=geo), evs) == []


@pytest.mark.parametrize(("n_asns", "fires"), [(6, False), (7, True)])
def test_ip_spread_asn_threshold(n_asns: int, fires: bool) -> None:
    geo, ips = _spread_geo(n_asns, n_asns)
    incs = run(engine(only="ip_spread", geo=geo), [login("a@x.org", ip, at(i)) for i, ip in enumerate(ips)])
    assert bool(incs) is fires
    if fires:
        assert incs[0].evidence["distinct_asns"] == 7 and "7 ASNs" in incs[0].summary


def test_ip_spread_per_account_override_and_allowlist() -> None:
    geo, ips = _spread_geo(8, 4)
    conf = {"accounts": {"Strict@x.org": {"detectors": {"ip_spread": {"max_ips": 5, "policy": "lock"}}}},
            "allowlist": {"accounts": ["ok@x.org"]}}
    evs = [login(a, ip, at(i)) for a in ("strict@x.org", "other@x.org", "ok@x.org") for i, ip in enumerate(ips)]
    incs = run(engine(conf, only="ip_spread", geo=geo), evs)
    assert [(i.account, i.action) for i in incs] == [("strict@x.org", "lock")]


# --- send_burst -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rcpts", "fires"), [(500, False), (501, True)])
def test_send_burst_recipients_per_hour(rcpts: int, fires: bool) -> None:
    evs: list[Event] = []
    for i in range(rcpts // 50):  # 50-recipient messages, one a minute
        evs += send("s@x.org", "203.0.113.5", at(i), nrcpt=50)
    if rcpts % 50:
        evs += send("s@x.org", "203.0.113.5", at(59), nrcpt=rcpts % 50)
    incs = run(engine(only="send_burst"), evs)
    assert bool(incs) is fires
    if fires:
        inc = incs[0]
        assert inc.action == "hold" and inc.evidence["recipients_last_hour"] == 501
        assert "501 recipients in the last hour (limit 500)" in inc.summary and inc.ips == ["203.0.113.5"]
        # messages and recipients per IP counted apart (they once added up to recipients + messages)
        n_msgs = rcpts // 50 + (1 if rcpts % 50 else 0)
        assert inc.evidence["ips"] == [{"ip": "203.0.113.5", "messages": n_msgs, "recipients": 501}]


@pytest.mark.parametrize(("rcpts", "fires"), [(1000, False), (1001, True)])
def test_send_burst_recipients_per_day(rcpts: int, fires: bool) -> None:
    evs: list[Event] = []
    per = 100  # 100 recipients every 2 h: never 500 in an hour
    for i in range(rcpts // per):
        evs += send("s@x.org", "203.0.113.5", at(i * 120), nrcpt=per)
    if rcpts % per:
        evs += send("s@x.org", "203.0.113.5", at(23 * 60), nrcpt=rcpts % per)
    incs = run(engine(only="send_burst"), evs)
    assert bool(incs) is fires
    if fires:
        assert incs[0].evidence["recipients_last_day"] == 1001


def test_send_burst_messages_without_qmgr_lines_and_override() -> None:
    conf = {"detectors": {"send_burst": {"messages_per_hour": 30}},
            "accounts": {"news@x.org": {"detectors": {"send_burst": {"messages_per_hour": 1000}}}}}
    evs = [Message(ts=at(i), account=a, ip="203.0.113.5", queue_id=f"M{a[0]}{i}", program="smtpd")
           for i in range(31) for a in ("s@x.org", "news@x.org")]
    evs30 = [Message(ts=at(i), account="t@x.org", ip="203.0.113.5", queue_id=f"T{i}", program="smtpd")
             for i in range(30)]
    incs = run(engine(conf, only="send_burst"), evs + evs30)
    assert [i.account for i in incs] == ["s@x.org"]
    assert "31 messages in the last hour (limit 30)" in incs[0].summary


def test_options_resolved_once_follow_overrides_and_a_reload() -> None:
    """Detector.opts: the options of accounts without an override are resolved once per configuration; an
    account's own override wins; new options (a SIGHUP gives the detector a new options dict) are used."""
    from acctwatch.detectors.volume import _BURST_LIMITS

    conf = {"detectors": {"send_burst": {"messages_per_hour": 30}},
            "accounts": {"News@x.org": {"detectors": {"send_burst": {"messages_per_hour": 1000}}}}}
    det = engine(conf, only="send_burst").detectors[0]
    assert det.opts("s@x.org", _BURST_LIMITS) == (500, 1000, 30, 1000)
    assert det.opts("s@x.org", _BURST_LIMITS) is det.opts(None, _BURST_LIMITS)  # (the same tuple: once)
    assert det.opts("news@X.org", _BURST_LIMITS) == (500, 1000, 1000, 1000)
    det.options = {**det.options, "recipients_per_hour": "20"}
    assert det.opts("s@x.org", _BURST_LIMITS) == (20, 1000, 30, 1000)
    assert det.opts("news@x.org", _BURST_LIMITS) == (20, 1000, 1000, 1000)


def test_send_burst_qmgr_repeat_not_counted_twice() -> None:
    evs: list[Event] = []
    for i in range(10):
        evs += send("s@x.org", "203.0.113.5", at(i), nrcpt=50)  # 500: at the limit
    # qmgr logs the same queue file again after a deferral: must not add 50 more
    q = evs[-1]
    assert isinstance(q, QueueEntry)
    evs.append(QueueEntry(ts=at(30), queue_id=q.queue_id, nrcpt=50, program="qmgr"))
    assert run(engine(only="send_burst"), evs) == []


# --- bounce_ratio -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("bounced", "fires"), [(15, False), (16, True)])
def test_bounce_ratio_share(bounced: int, fires: bool) -> None:
    incs = run(engine(only="bounce_ratio"), deliveries("b@x.org", T0, sent=50 - bounced, bounced=bounced))
    assert bool(incs) is fires
    if fires:
        assert incs[0].action == "hold"
        assert incs[0].evidence["by_status"] == {"bounced": 16, "sent": 34}
        assert "32% of 50 deliveries" in incs[0].summary


def test_bounce_ratio_minimum_count() -> None:
    assert run(engine(only="bounce_ratio"), deliveries("b@x.org", T0, sent=0, bounced=49)) == []
    assert run(engine(only="bounce_ratio"), deliveries("b@x.org", T0, sent=0, bounced=50))


def test_bounce_ratio_deferral_retries_count_once() -> None:
    evs = deliveries("b@x.org", T0, sent=40, bounced=0, deferred=10)  # 20% deferred
    defs = [e for e in evs if isinstance(e, Delivery) and e.status == "deferred"]
    for k in range(1, 4):  # three retries of each deferred recipient
        evs += [Delivery(ts=d.ts + timedelta(minutes=5 * k), queue_id=d.queue_id, recipient=d.recipient,
                         relay=d.relay, status="deferred", dsn="4.7.1", program="smtp") for d in defs]
    assert run(engine(only="bounce_ratio"), evs) == []


# --- auth_failures_ip -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "fires"), [(20, False), (21, True)])
def test_auth_failures_ip_threshold(n: int, fires: bool) -> None:
    evs = [fail("203.0.113.66", at(i * 0.4), acct=f"u{i % 4}@x.org") for i in range(n)]
    incs = run(engine(only="auth_failures_ip"), evs)
    assert bool(incs) is fires
    if fires:
        inc = incs[0]
        assert inc.account is None and inc.ips == ["203.0.113.66"] and inc.action == "notify"
        assert inc.evidence["failures"] == 21 and len(inc.evidence["accounts_tried"]) == 4


def test_auth_failures_ip_one_attempt_logged_twice_counts_once() -> None:
    # Dovecot: 15 attempts, each by the auth process (backend), plus the login process's disconnect lines
    # (frontend) saying "3 attempts" for each of 5 connections: 15 attempts, not 30.
    evs: list[Event] = []
    for c in range(5):
        for k in range(3):
            evs.append(fail("203.0.113.66", at(c + k * 0.1), acct="v@x.org", layer="backend",
                            reason="password mismatch"))
        evs.append(fail("203.0.113.66", at(c + 0.5), acct="v@x.org", attempts=3))
    assert run(engine(only="auth_failures_ip"), evs) == []
    # and frontend "N attempts" is honoured on its own: 7 connections x 3 attempts = 21
    evs = [fail("203.0.113.67", at(c), acct="v@x.org", attempts=3) for c in range(7)]
    assert run(engine(only="auth_failures_ip"), evs)


def test_auth_failures_ip_window_disallowed_mechanism_and_internal() -> None:
    slow = [fail("203.0.113.66", at(i * 0.6)) for i in range(21)]  # 21 in 12 min: never 21 in 10 min
    assert run(engine(only="auth_failures_ip"), slow) == []
    plain = [fail("203.0.113.66", at(i * 0.1), reason="auth mechanism disallowed") for i in range(30)]
    assert run(engine(only="auth_failures_ip"), plain) == []
    lan = [fail("192.168.1.20", at(i * 0.1)) for i in range(30)]
    assert run(engine(only="auth_failures_ip"), lan) == []
    conf = {"detectors": {"auth_failures_ip": {"ignore_internal": False}}}
    assert run(engine(conf, only="auth_failures_ip"), lan)


# --- auth_failures_account --------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "n_ips", "fires"), [(30, 3, False), (31, 3, True), (31, 2, False)])
def test_auth_failures_account(n: int, n_ips: int, fires: bool) -> None:
    evs = [fail(f"203.0.113.{10 + i % n_ips}", at(i), acct="v@x.org", layer="backend") for i in range(n)]
    incs = run(engine(only="auth_failures_account"), evs)
    assert bool(incs) is fires
    if fires:
        assert incs[0].account == "v@x.org" and incs[0].evidence["distinct_ips"] == 3
        assert "31 failed logins from 3 addresses" in incs[0].summary


def test_auth_failures_account_stale_phone_is_quiet() -> None:
    # one device, one IP, a failure every 30 s for 3 hours
    evs = [fail("198.51.100.23", at(i * 0.5), acct="p@x.org") for i in range(360)]
    assert run(engine(only="auth_failures_account"), evs) == []


# --- bruteforce_success -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "fires"), [(10, False), (11, True)])
def test_bruteforce_success_threshold(n: int, fires: bool) -> None:
    evs: list[Event] = [fail("203.0.113.66", at(i * 0.5), acct="v@x.org", layer="backend") for i in range(n)]
    evs.append(login("v@x.org", "203.0.113.67", at(20)))  # same /24
    incs = run(engine(only="bruteforce_success"), evs)
    assert bool(incs) is fires
    if fires:
        inc = incs[0]
        assert inc.ips[:2] == ["203.0.113.67", "203.0.113.66"] and inc.first_seen == at(0)
        assert inc.evidence["source"] == "203.0.113.0/24" and inc.evidence["failures"] == 11
        assert "then a successful imap login from 203.0.113.67" in inc.summary


def test_bruteforce_success_other_source_or_too_late() -> None:
    evs: list[Event] = [fail("203.0.113.66", at(i * 0.2), acct="v@x.org") for i in range(40)]
    other = [*evs, login("v@x.org", "198.51.100.7", at(10))]
    assert run(engine(only="bruteforce_success"), other) == []
    late = [*evs, login("v@x.org", "203.0.113.66", at(8 + 61))]  # more than 1 h after the last failure
    assert run(engine(only="bruteforce_success"), late) == []


def test_bruteforce_success_stale_password_phone_is_quiet() -> None:
    # a phone retrying the old password once a minute for an hour, then the user types the new one
    evs: list[Event] = [fail("198.51.100.23", at(i), acct="p@x.org", attempts=1) for i in range(60)]
    evs.append(login("p@x.org", "198.51.100.23", at(61)))
    assert run(engine(only="bruteforce_success"), evs) == []


def test_bruteforce_success_exact_ip_override() -> None:
    conf = {"accounts": {"v@x.org": {"detectors": {"bruteforce_success": {"prefix_v4": 32}}}}}
    evs: list[Event] = [fail("203.0.113.66", at(i * 0.2), acct="v@x.org") for i in range(20)]
    assert run(engine(conf, only="bruteforce_success"), [*evs, login("v@x.org", "203.0.113.67", at(5))]) == []
    assert run(engine(conf, only="bruteforce_success"), [*evs, login("v@x.org", "203.0.113.66", at(5))])


# --- banned_ip_login --------------------------------------------------------------------------------------
def test_banned_ip_login() -> None:
    ban = Ban(ts=T0, ip="203.0.113.66", jail="dovecot", program="fail2ban")
    incs = run(engine(only="banned_ip_login"), [ban, login("v@x.org", "203.0.113.66", at(120))])
    assert len(incs) == 1 and incs[0].action == "notify" and incs[0].first_seen == T0
    assert "fail2ban banned 2.0 h earlier (jail dovecot)" in incs[0].summary
    late = login("v@x.org", "203.0.113.66", T0 + timedelta(hours=24, seconds=1))
    assert run(engine(only="banned_ip_login"), [ban, late]) == []
    assert run(engine(only="banned_ip_login"), [ban, login("v@x.org", "203.0.113.67", at(1))]) == []


# --- new_country ------------------------------------------------------------------------------------------
def _history(acct: str, days: float, n: int) -> list[Event]:
    step = days * 1440 / max(n - 1, 1)
    return [login(acct, "198.51.100.1", at(i * step)) for i in range(n)]


@pytest.mark.parametrize(("days", "n", "fires"), [(14, 10, True), (13.9, 10, False), (14, 9, False)])
def test_new_country_learning_period(days: float, n: int, fires: bool) -> None:
    geo = FakeResolver()
    geo.add("203.0.113.50", "BR", asn=28573, city="São Paulo")
    evs = [*_history("h@x.org", days, n), login("h@x.org", "203.0.113.50", T0 + timedelta(days=days, hours=1))]
    incs = run(engine(only="new_country", geo=geo), evs)
    assert bool(incs) is fires
    if fires:
        assert incs[0].evidence["country"] == "BR" and incs[0].action == "notify"
        assert "a country new for this account" in incs[0].summary and "DE (10 logins)" in incs[0].summary


def test_new_country_allowlist_and_extra_countries() -> None:
    geo = FakeResolver()
    geo.add("203.0.113.50", "BR")
    geo.add("203.0.113.60", "FR")
    conf = {"allowlist": {"countries": ["FR"]}, "accounts": {"h@x.org": {"extra_countries": ["BR"]}}}
    evs = [*_history("h@x.org", 20, 20), login("h@x.org", "203.0.113.50", at(21 * 1440)),
           login("h@x.org", "203.0.113.60", at(21 * 1440 + 5)),
           *_history("i@x.org", 20, 20), login("i@x.org", "203.0.113.50", at(21 * 1440))]
    incs = run(engine(conf, only="new_country", geo=geo), sorted(evs, key=lambda e: e.ts))
    assert [(i.account, i.evidence["country"]) for i in incs] == [("i@x.org", "BR")]


def test_new_country_state_persists_through_the_store() -> None:
    geo = FakeResolver()
    geo.add("203.0.113.50", "BR")
    store = Store("sqlite://")
    e1 = engine(only="new_country", geo=geo, store=store)
    run(e1, _history("h@x.org", 15, 12))
    e1.flush()
    saved = store.load_kv("", "new_country")  # per account, committed incrementally
    assert set(saved) == {"h@x.org"} and json.loads(json.dumps(saved)) == saved
    e2 = engine(only="new_country", geo=geo, store=store)  # a restart: history comes back from the store
    incs = run(e2, [login("h@x.org", "203.0.113.50", at(16 * 1440))])
    assert len(incs) == 1 and incs[0].evidence["history_logins"] == 12
    e3 = engine(only="new_country", geo=geo)  # no store: nothing learned, nothing to compare with
    assert run(e3, [login("h@x.org", "203.0.113.50", at(16 * 1440))]) == []


def test_new_country_state_is_bounded_by_retention() -> None:
    e = engine(only="new_country")
    run(e, [login("old@x.org", "198.51.100.1", T0), login("new@x.org", "198.51.100.1", at(100 * 1440))])
    ch = e.detectors[0].export_changes()
    assert {k for k, v in ch.items() if v} == {"new@x.org"}  # old@ idle > 90 days: forgotten (row deleted)
    assert "old@x.org" not in e.detectors[0].accounts


def test_history_saved_whole_by_an_older_version_is_adopted() -> None:
    e1 = engine(only="new_country")
    run(e1, _history("h@x.org", 15, 12))
    det = e1.detectors[0]
    old_blob = {"v": 1, "accounts": {a: det._row(a, h) for a, h in det.accounts.items()}}
    e2 = engine(only="new_country", geo=FakeResolver())
    e2.detectors[0].import_state(json.loads(json.dumps(old_blob)))
    assert set(e2.detectors[0].export_changes()) == {"h@x.org"}  # moved to per-account rows at once


# --- send_baseline ----------------------------------------------------------------------------------------
def _daily(acct: str, days: int, per_day: int, start_day: int = 0, every: int = 1) -> list[Event]:
    evs: list[Event] = []
    for d in range(start_day, start_day + days, every):
        for i in range(per_day):
            evs += send(acct, "198.51.100.1", T0 + timedelta(days=d, seconds=20 * i))
    return evs


@pytest.mark.parametrize(("today", "fires"), [(120, False), (121, True)])
def test_send_baseline_factor(today: int, fires: bool) -> None:
    evs = [*_daily("n@x.org", 14, 40), *_daily("n@x.org", 1, today, start_day=14)]
    incs = run(engine(only="send_baseline"), evs)
    assert bool(incs) is fires
    if fires:
        inc = incs[0]
        assert inc.evidence["baseline"]["max_messages_per_hour"] == 40
        assert "121 messages this hour vs at most 40 before" in inc.summary
        assert inc.action == "notify"


def test_send_baseline_learning_period_and_floor() -> None:
    # before 14 days of history nothing is compared
    evs = [*_daily("n@x.org", 5, 2), *_daily("n@x.org", 1, 400, start_day=5)]
    assert run(engine(only="send_baseline"), evs) == []
    # 2 a day then 50 in an hour: more than 3x, but not above the floor of 50
    evs = [*_daily("q@x.org", 14, 2), *_daily("q@x.org", 1, 50, start_day=14)]
    assert run(engine(only="send_baseline"), evs) == []
    evs = [*_daily("q@x.org", 14, 2), *_daily("q@x.org", 1, 51, start_day=14)]
    assert run(engine(only="send_baseline"), evs)


def test_send_baseline_newsletter_on_mondays_is_normal() -> None:
    evs = [*_daily("news@x.org", 21, 3), *_daily("news@x.org", 22, 150, every=7)]
    evs += [e for e in _daily("news@x.org", 1, 150, start_day=28)]  # the next Monday
    evs.sort(key=lambda e: e.ts)
    assert run(engine(only="send_baseline"), evs) == []


def test_send_baseline_state_roundtrip() -> None:
    e1 = engine(only="send_baseline")
    run(e1, _daily("n@x.org", 14, 40))
    st = json.loads(json.dumps(e1.detectors[0].export_changes()))
    e2 = engine(only="send_baseline")
    e2.detectors[0].import_rows(st)
    assert run(e2, _daily("n@x.org", 1, 121, start_day=14))
    with pytest.raises(ValueError):
        e2.detectors[0].import_state({"v": 99})
