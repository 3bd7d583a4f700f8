"""The stream's clock only moves forward by plausible steps: a line dated far from its neighbours is counted
and skipped (it must not stretch or invert any window), a real gap in the log (downtime) is followed, and
an event waiting to be confirmed survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from acctwatch.config import from_dict
from acctwatch.engine import Engine
from acctwatch.events import Login
from acctwatch.store import Store
from tests.fakegeo import FakeGeoInfo

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
PLACES = {"192.0.2.1": ("DE", 52.5, 13.4, 3320), "198.51.100.1": ("US", 40.7, -74.0, 7922)}


class Geo:
    def lookup(self, ip: str) -> FakeGeoInfo:
        c, lat, lon, asn = PLACES[ip]
        return FakeGeoInfo(ip, False, c, "X", lat, lon, 10.0, asn, "org")


def login(ip: str, ts: datetime, acct: str = "t@x") -> Login:
    return Login(ts=ts, account=acct, ip=ip, service="imap", program="imap-login")


def test_one_line_dated_2099_is_counted_and_skipped() -> None:
    eng = Engine(from_dict({"general": {"preset": "seed"}}), geo=Geo())
    out = []
    for ev in [login("192.0.2.1", T0), login("198.51.100.1", datetime(2099, 1, 1, tzinfo=UTC)),
               login("192.0.2.1", T0 + timedelta(minutes=1)),
               login("198.51.100.1", T0 + timedelta(hours=12))]:  # a traveller: DE -> US in 12 h
        out += eng.process(ev)
    out += eng.finish()
    assert out == [] and eng.skewed == 1  # no "2 countries within -2306721599 s", no impossible travel
    assert eng.last_event_time == T0 + timedelta(hours=12)


def test_a_line_far_in_the_past_is_counted_and_skipped() -> None:
    eng = Engine(from_dict({"general": {"preset": "seed"}}), geo=Geo())
    out = eng.process(login("192.0.2.1", T0))
    out += eng.process(login("198.51.100.1", T0 - timedelta(days=400)))
    assert out == [] and eng.skewed == 1 and eng.events == 1


def test_a_real_gap_in_the_log_is_followed_in_order() -> None:
    eng = Engine(from_dict({"general": {"preset": "seed"}}), geo=Geo())
    later = T0 + timedelta(days=3)  # the server was down for three days
    assert eng.process(login("192.0.2.1", T0)) == []
    assert eng.process(login("192.0.2.1", later)) == []  # held: one line proves nothing yet
    incs = eng.process(login("198.51.100.1", later + timedelta(seconds=30)))  # confirmed: both run, in order
    assert eng.skewed == 0 and eng.events == 3
    assert {i.detector for i in incs} == {"geo_countries", "impossible_travel"}


def test_an_event_waiting_for_confirmation_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 's.db'}"
    cfg = from_dict({"general": {"preset": "seed"}})
    first = Engine(cfg, store=Store(url), geo=Geo())
    first.process(login("192.0.2.1", T0))
    later = T0 + timedelta(days=3)
    first.process(login("192.0.2.1", later))
    first.flush()  # the checkpoint is past the held line
    second = Engine(cfg, store=Store(url), geo=Geo())
    assert second._held is not None and second._held.ts == later
    incs = second.process(login("198.51.100.1", later + timedelta(seconds=30)))
    assert {i.detector for i in incs} == {"geo_countries", "impossible_travel"}
    second.flush()
    assert Engine(cfg, store=Store(url), geo=Geo())._held is None


def test_logins_of_the_same_second_in_two_countries_blame_nobody() -> None:
    """Postfix's and Dovecot's files with one-second stamps are merged in a fixed order: when the owner's
    login and the attacker's have the same second, which came first is unknown, so neither address is
    given to fail2ban as the attacker's."""
    eng = Engine(from_dict({"general": {"preset": "seed"}}), geo=Geo())
    incs = eng.process(login("198.51.100.1", T0)) + eng.process(login("192.0.2.1", T0))
    [geo] = [i for i in incs if i.detector == "geo_countries"]
    assert geo.action == "lock" and geo.attackers == [] and set(geo.ips) == {"198.51.100.1", "192.0.2.1"}
    eng = Engine(from_dict({"general": {"preset": "seed"}}), geo=Geo())
    incs = eng.process(login("192.0.2.1", T0)) + eng.process(login("198.51.100.1", T0 + timedelta(seconds=1)))
    [geo] = [i for i in incs if i.detector == "geo_countries"]
    assert geo.attackers == ["198.51.100.1"]
