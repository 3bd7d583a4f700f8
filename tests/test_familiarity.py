"""Familiarity profiles (acctwatch.profiles) and the account_risk detector: learning and forgetting, operator
feedback, restart, and each rule's boundaries. A small fake resolver stands in for GeoIP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from acctwatch.config import ConfigError, from_dict
from acctwatch.engine import PROFILES_KEY, Engine, Incident
from acctwatch.events import AuthFailure, Ban, Event, Login, Message, QueueEntry
from acctwatch.profiles import Profiles
from acctwatch.store import Store
from tests.fakegeo import FakeGeoInfo

T0 = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)

# ip -> (country, asn, org, lat, lon, city)
NETS: dict[str, tuple[str, int, str, float, float, str]] = {
    "91.1.1.1": ("DE", 3320, "Deutsche Telekom AG", 52.52, 13.40, "Berlin"),  # home DSL
    "91.1.1.2": ("DE", 3320, "Deutsche Telekom AG", 52.52, 13.40, "Berlin"),
    "176.1.1.1": ("DE", 3209, "Vodafone GmbH", 52.52, 13.40, "Berlin"),  # the phone
    "185.9.9.9": ("NL", 9009, "M247 Europe SRL", 52.37, 4.90, "Amsterdam"),  # the VPN exit
    "185.9.9.10": ("NL", 9009, "M247 Europe SRL", 52.37, 4.90, "Amsterdam"),
    "5.9.1.1": ("DE", 24940, "Hetzner Online GmbH", 49.45, 11.08, "Nuremberg"),  # a rented server
    "24.1.1.1": ("US", 7922, "Comcast Cable Communications, LLC", 40.71, -74.0, "New York"),
    "200.1.1.1": ("BR", 7162, "Universo Online S.A.", -23.55, -46.63, "Sao Paulo"),
    "41.1.1.1": ("NG", 36873, "Airtel Networks Limited", 6.52, 3.38, "Lagos"),
    "1.1.1.9": ("AU", 1221, "Telstra Limited", -33.87, 151.2, "Sydney"),
    "81.1.1.1": ("FR", 3215, "Orange S.A.", 48.85, 2.35, "Paris"),
    "165.225.1.1": ("DE", 22616, "ZSCALER, INC.", 50.11, 8.68, "Frankfurt"),  # a work laptop's gateway
}


class Geo:
    def lookup(self, ip: str) -> FakeGeoInfo:
        if ip.startswith(("10.", "192.168.")):
            return FakeGeoInfo(ip, True, None)
        c, asn, org, lat, lon, city = NETS[ip]
        return FakeGeoInfo(ip, False, c, city, lat, lon, 10.0, asn, org)


def engine(conf: dict[str, Any] | None = None, store: Store | None = None) -> Engine:
    return Engine(from_dict(conf or {}), store=store, geo=Geo())


def login(acct: str, ip: str, ts: datetime, service: str = "imap") -> Login:
    return Login(ts=ts, account=acct, ip=ip, service=service, program="imap-login")


def send(acct: str, ip: str, ts: datetime, nrcpt: int, qid: str) -> list[Event]:
    return [Message(ts=ts, account=acct, ip=ip, queue_id=qid, service="submission", program="smtpd"),
            QueueEntry(ts=ts + timedelta(milliseconds=5), queue_id=qid, nrcpt=nrcpt, program="qmgr")]


def fail(acct: str, ip: str, ts: datetime) -> AuthFailure:
    return AuthFailure(ts=ts, account=acct, ip=ip, layer="frontend", reason="auth failed", program="imap-login",
                       service="imap")


def judge(eng: Engine, acct: str, ip: str, ts: datetime) -> Any:
    """What the engine's familiarity stage says about a login (without learning it)."""
    ev = login(acct, ip, ts)
    ev.geo = Geo().lookup(ip)
    assert eng.profiles is not None
    return eng.profiles.judge(ev)


def run(eng: Engine, events: list[Event]) -> list[Incident]:
    seen: dict[str, Incident] = {}
    for ev in sorted(events, key=lambda e: e.ts):
        for inc in eng.process(ev):
            seen[inc.id] = inc
    for inc in eng.finish():  # the end of the stream
        seen[inc.id] = inc
    return sorted(seen.values(), key=lambda i: (i.detected_at, i.detector))


def history(acct: str, days: int = 7, ips: tuple[str, ...] = ("91.1.1.1", "176.1.1.1"),
            start_day: int = 0) -> list[Event]:
    """A week of normal use: every network of *ips* several times a day, hours apart."""
    out: list[Event] = []
    for d in range(start_day, start_day + days):
        for h in (7, 12, 18, 22):
            for k, ip in enumerate(ips):
                out.append(login(acct, ip, T0 + timedelta(days=d, hours=h, minutes=7 * k)))
    return out


WEEK = T0 + timedelta(days=7)


# ----------------------------------------------------------------------------------------- profiles
def test_a_network_is_familiar_only_once_it_comes_back_hours_apart() -> None:
    eng = engine()
    p = eng.profiles
    assert p is not None
    for m in (0, 20, 40, 60, 120):  # five logins within two hours: one occasion
        eng.process(login("a@x", "91.1.1.1", T0 + timedelta(minutes=m)))
    v = judge(eng, "a@x", "91.1.1.1", T0 + 3 * H)
    assert v.state == "seen" and not v.familiar
    eng.process(login("a@x", "91.1.1.1", T0 + 4 * H))  # a second occasion, 4 h after the first
    v = judge(eng, "a@x", "91.1.1.1", T0 + 5 * H)
    assert v.state == "familiar" and v.since == (T0 + 4 * H).timestamp()
    assert v.country_state == "familiar" and v.learning  # 6 logins in 4 h: still learning


def test_maturity_needs_time_and_logins() -> None:
    eng = engine({"familiarity": {"learn_period": "3d", "learn_logins": 10}})
    run(eng, history("a@x", days=3))
    # the first login was at day 0 07:00, the last at day 2 22:00: 48 logins, but not yet 3 days
    assert judge(eng, "a@x", "91.1.1.1", T0 + timedelta(days=2, hours=23)).learning
    eng.process(login("a@x", "91.1.1.1", T0 + timedelta(days=3, hours=8)))
    assert not judge(eng, "a@x", "91.1.1.1", T0 + timedelta(days=3, hours=9)).learning
    eng = engine({"familiarity": {"learn_period": "3d", "learn_logins": 10}})
    run(eng, [login("a@x", "91.1.1.1", T0 + timedelta(days=d)) for d in range(5)])  # 5 logins in 4 days
    assert judge(eng, "a@x", "91.1.1.1", T0 + timedelta(days=5)).learning


def test_the_network_key_is_the_asn_for_isps_and_the_24_in_datacenters() -> None:
    eng = engine()
    v1 = judge(eng, "a@x", "91.1.1.1", T0)
    v2 = judge(eng, "a@x", "91.1.1.2", T0)
    dc = judge(eng, "a@x", "5.9.1.1", T0)
    assert v1.key == v2.key == "AS3320" and v1.cls == "eyeball"
    assert dc.key == "5.9.1.0/24" and dc.cls == "datacenter" and dc.provider == "AS24940"


def test_a_network_of_an_acted_on_incident_never_becomes_familiar_by_coming_back() -> None:
    eng = engine()
    run(eng, history("a@x"))
    # botnet: three unfamiliar networks within an hour -> lock, and each of them is acted on
    incs = run(eng, [login("a@x", ip, WEEK + timedelta(minutes=m))
                     for m, ip in ((1, "24.1.1.1"), (3, "200.1.1.1"), (5, "41.1.1.1"))])
    assert [i.action for i in incs] == ["lock"]
    for d in range(5):  # the attacker keeps coming back for days
        eng.process(login("a@x", "200.1.1.1", WEEK + timedelta(days=d, hours=6)))
    v = judge(eng, "a@x", "200.1.1.1", WEEK + timedelta(days=6))
    assert v.state == "acted-on" and not v.familiar


def test_a_reported_network_becomes_familiar_only_after_the_quarantine() -> None:
    eng = engine({"familiarity": {"reported_quarantine": "3d"}})
    run(eng, history("a@x"))
    [inc] = run(eng, [login("a@x", "5.9.1.1", WEEK)])  # a rented server: notified
    assert inc.action == "notify" and inc.escalations[0]["rule"] == "unfamiliar_datacenter"
    for h in (5, 10, 20, 30, 50):
        eng.process(login("a@x", "5.9.1.1", WEEK + timedelta(hours=h)))
    assert judge(eng, "a@x", "5.9.1.1", WEEK + timedelta(hours=60)).state == "reported"
    eng.process(login("a@x", "5.9.1.1", WEEK + timedelta(hours=73)))
    v = judge(eng, "a@x", "5.9.1.1", WEEK + timedelta(hours=74))
    assert v.state == "familiar" and not v.reported


def test_profiles_age_out_after_the_retention() -> None:
    eng = engine({"familiarity": {"retention": "30d"}})
    run(eng, history("a@x", days=2) + history("b@x", days=2))
    later = T0 + timedelta(days=33)
    eng.process(login("b@x", "91.1.1.1", later))  # (a jump of a month: held until the next line confirms it)
    eng.process(login("b@x", "91.1.1.1", later + timedelta(minutes=1)))
    assert "a@x" not in eng.profiles.accounts
    assert judge(eng, "b@x", "176.1.1.1", later).state == "new"  # the phone: forgotten too


def test_familiarity_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="did you mean 'occasion_gap'"):
        Profiles({"ocasion_gap": "4h"})
    with pytest.raises(ConfigError, match="familiar_occasions"):
        Profiles({"familiar_occasions": 0})
    assert engine({"familiarity": {"enabled": False}}).profiles is None


# ------------------------------------------------------------------------------------ account_risk
def test_vpn_laptop_and_home_phone_taking_turns_raise_nothing_once_familiar() -> None:
    """The false positive of the seed rules: 2 countries within a minute, 'impossible travel' all day."""
    eng = engine()
    run(eng, history("v@x", ips=("185.9.9.9", "176.1.1.1")))
    incs = run(eng, [login("v@x", ip, WEEK + timedelta(minutes=m))
                     for m in range(0, 120, 2) for ip in (("185.9.9.9",) if m % 4 else ("176.1.1.1",))])
    assert incs == []
    seed = engine({"general": {"preset": "seed"}})  # the same kind of day under the seed rules: locked
    incs = run(seed, [login("v@x", ip, WEEK + timedelta(seconds=30 * k))
                      for k, ip in enumerate(["176.1.1.1", "185.9.9.9", "176.1.1.1"])])
    assert {i.detector for i in incs if i.action == "lock"} >= {"geo_countries", "impossible_travel"}


def test_another_exit_of_a_familiar_vpn_provider_is_not_new() -> None:
    eng = engine()
    run(eng, history("v@x", ips=("185.9.9.9", "176.1.1.1")))
    v = judge(eng, "v@x", "185.9.9.10", WEEK)
    assert v.state == "familiar"  # same /24
    assert run(eng, [login("v@x", "185.9.9.10", WEEK)]) == []


def test_unfamiliar_datacenter_notifies_once() -> None:
    eng = engine()
    run(eng, history("a@x"))
    incs = run(eng, [login("a@x", "5.9.1.1", WEEK + timedelta(minutes=m)) for m in range(0, 600, 30)])
    [inc] = incs
    assert inc.action == "notify" and inc.detected_at == WEEK and inc.updated == 0
    assert inc.evidence["network"]["state"] == "new"
    assert {n["network"] for n in inc.evidence["familiar_networks"]} == {"AS3320", "AS3209"}


def test_new_country_needs_a_mature_profile() -> None:
    eng = engine()
    run(eng, history("a@x", days=1))  # learning
    assert run(eng, [login("a@x", "81.1.1.1", T0 + timedelta(days=1, hours=2))]) == []
    eng2 = engine()
    run(eng2, history("a@x"))
    incs = run(eng2, [login("a@x", "81.1.1.1", WEEK + 10 * H)])
    assert [(i.action, i.escalations[0]["rule"]) for i in incs] == [("watch", "new_country")]


def test_a_trip_is_watched_and_what_the_trip_network_then_does_is_judged() -> None:
    """A new country within reach of the last familiar login is a trip: recorded at watch level, nobody told;
    the network stays suspect, so bulk mail from it is held and a second new country is distributed use."""
    eng = engine()
    run(eng, history("a@x"))
    t = WEEK + 10 * H
    evs: list[Event] = [login("a@x", "81.1.1.1", t)]
    evs += send("a@x", "81.1.1.1", t + timedelta(minutes=5), 3, "Q1")  # a postcard home: nothing
    [inc] = run(eng, evs)
    assert inc.action == "watch" and inc.evidence["new_country"] == {"known_countries": ["DE"]}
    [inc] = run(eng, send("a@x", "81.1.1.1", t + timedelta(minutes=20), 80, "Q2"))
    assert inc.action == "hold" and [e["level"] for e in inc.escalations] == ["watch", "hold"]
    eng = engine()
    run(eng, history("a@x"))
    incs = run(eng, [login("a@x", "81.1.1.1", t), login("a@x", "200.1.1.1", t + timedelta(minutes=20))])
    assert [i.action for i in incs] == ["lock"]
    assert incs[0].escalations[0]["level"] == "watch"
    # an operator who wants every trip told: one line of config
    eng = engine({"detectors": {"account_risk": {"levels": {"new_country": "notify"}}}})
    run(eng, history("a@x"))
    assert [i.action for i in run(eng, [login("a@x", "81.1.1.1", t)])] == ["notify"]


def test_a_new_work_laptop_behind_a_security_gateway_is_watched_but_its_owner_is_no_vpn_user() -> None:
    eng = engine()
    run(eng, history("a@x"))
    [inc] = run(eng, [login("a@x", "165.225.1.1", WEEK + 10 * H)])
    assert (inc.action, inc.evidence["rule"], inc.evidence["network"]["class"]) == (
        "watch", "unfamiliar_gateway", "gateway")
    # weeks behind the gateway make it familiar, and do not make a rented server ordinary for the account
    days = [WEEK + timedelta(days=d, hours=h) for d in range(1, 6) for h in (9, 15)]
    assert run(eng, [login("a@x", "165.225.1.1", x) for x in days]) == []
    assert eng.profiles is not None
    [inc] = run(eng, [login("a@x", "5.9.1.1", WEEK + timedelta(days=7))])
    assert (inc.action, inc.evidence["rule"]) == ("notify", "unfamiliar_datacenter")


def test_impossible_travel_from_a_familiar_login_notifies() -> None:
    eng = engine()
    run(eng, history("a@x"))
    incs = run(eng, [login("a@x", "91.1.1.1", WEEK), login("a@x", "1.1.1.9", WEEK + timedelta(minutes=30))])
    [inc] = incs
    assert inc.action == "notify" and "impossible_travel" in inc.evidence["rules"]
    assert inc.attackers == ["1.1.1.9"]


@pytest.mark.parametrize(("nets", "action"), [(2, "notify"), (3, "lock")])
def test_distributed_use_locks_at_the_threshold(nets: int, action: str | None) -> None:
    eng = engine({"detectors": {"account_risk": {"countries": 9}}})  # networks only (new_country notifies)
    run(eng, history("a@x"))
    ips = ["24.1.1.1", "200.1.1.1", "41.1.1.1"][:nets]
    incs = run(eng, [login("a@x", ip, WEEK + timedelta(minutes=5 * k)) for k, ip in enumerate(ips)])
    assert max((i.action for i in incs), key=["notify", "hold", "lock"].index, default=None) == action


def test_two_new_countries_within_the_window_lock_but_not_an_hour_apart() -> None:
    eng = engine({"detectors": {"account_risk": {"window": "1h"}}})
    run(eng, history("a@x"))
    incs = run(eng, [login("a@x", "24.1.1.1", WEEK), login("a@x", "200.1.1.1", WEEK + timedelta(minutes=59))])
    assert [i.action for i in incs] == ["lock"]
    assert [e["level"] for e in incs[0].escalations] == ["notify", "lock"]
    eng = engine({"detectors": {"account_risk": {"window": "1h"}}})
    run(eng, history("a@x"))
    incs = run(eng, [login("a@x", "24.1.1.1", WEEK), login("a@x", "200.1.1.1", WEEK + timedelta(minutes=61))])
    assert [i.action for i in incs] == ["notify"]


def test_learning_profiles_need_much_more_to_lock() -> None:
    """A fresh deployment knows little: a VPN user's two countries within minutes only notify; three
    countries (or five networks) never seen before within the window are unambiguous on their own; the
    profile's very first hour (a role mailbox's users all logging in) does not count."""
    def day_one() -> Engine:
        eng = engine()
        run(eng, [login("a@x", "91.1.1.1", T0 + timedelta(hours=h)) for h in (0, 5, 10)])
        return eng

    later = T0 + 12 * H
    eng = day_one()
    incs = run(eng, [login("a@x", ip, later + timedelta(minutes=k)) for k, ip in
                     enumerate(["185.9.9.9", "176.1.1.1", "91.1.1.2"])])
    assert [i.action for i in incs] == ["notify"]
    eng = day_one()
    incs = run(eng, [login("a@x", ip, later + timedelta(minutes=k)) for k, ip in
                     enumerate(["24.1.1.1", "200.1.1.1", "41.1.1.1"])])
    assert [i.action for i in incs] == ["lock"] and incs[0].evidence["rule"] == "distributed"
    assert incs[0].evidence["network"]["profile"] == "learning"
    eng = engine()  # the very first logins of an account: nothing to compare with
    incs = run(eng, [login("a@x", ip, T0 + timedelta(minutes=k)) for k, ip in
                     enumerate(["24.1.1.1", "200.1.1.1", "41.1.1.1"])])
    assert all(i.action == "notify" for i in incs)


@pytest.mark.parametrize(("rcpts", "action"), [(50, "notify"), (51, "hold")])
def test_a_reported_network_that_sends_is_held(rcpts: int, action: str) -> None:
    eng = engine()
    run(eng, history("a@x"))
    evs: list[Event] = [login("a@x", "5.9.1.1", WEEK)]
    evs += send("a@x", "5.9.1.1", WEEK + timedelta(minutes=5), rcpts, "Q1")
    [inc] = run(eng, evs)
    assert inc.action == action
    if action == "hold":
        assert [e["rule"] for e in inc.escalations] == ["unfamiliar_datacenter", "sends_from_reported"]


def test_slow_guessing_then_success_locks_a_mature_profile_but_a_stale_phone_does_not() -> None:
    eng = engine()
    run(eng, history("a@x"))
    evs: list[Event] = [fail("a@x", "41.1.1.1", WEEK + timedelta(minutes=40 * k)) for k in range(6)]
    evs.append(login("a@x", "41.1.1.1", WEEK + 5 * H))
    [inc] = run(eng, evs)
    assert inc.action == "lock" and inc.evidence["rule"] == "guessed"
    # the phone at home retries an old password for hours, then the user types the new one
    evs = [fail("a@x", "176.1.1.1", WEEK + timedelta(days=1, minutes=5 * k)) for k in range(40)]
    evs.append(login("a@x", "176.1.1.1", WEEK + timedelta(days=1, hours=4)))
    assert run(eng, evs) == []


def test_slow_guessing_on_a_learning_profile_only_notifies_but_a_fast_run_locks() -> None:
    eng = engine()
    evs: list[Event] = [fail("a@x", "41.1.1.1", T0 + timedelta(minutes=40 * k)) for k in range(6)]
    evs.append(login("a@x", "41.1.1.1", T0 + 5 * H))
    assert [i.action for i in run(eng, evs)] == ["notify"]
    eng = engine()
    evs = [fail("a@x", "41.1.1.1", T0 + timedelta(seconds=20 * k)) for k in range(12)]
    evs.append(login("a@x", "41.1.1.1", T0 + timedelta(minutes=5)))
    assert [i.action for i in run(eng, evs)] == ["lock"]


def test_a_banned_address_locks_unless_the_network_is_familiar() -> None:
    eng = engine()
    run(eng, history("a@x"))
    ban = Ban(ts=WEEK, ip="24.1.1.1", jail="dovecot")
    [inc] = run(eng, [ban, login("a@x", "24.1.1.1", WEEK + H)])
    assert inc.action == "lock" and "banned" in inc.evidence["rules"]
    eng = engine()
    run(eng, history("a@x"))
    [inc] = run(eng, [Ban(ts=WEEK, ip="91.1.1.2", jail="dovecot"), login("a@x", "91.1.1.2", WEEK + H)])
    assert inc.action == "notify"


def test_levels_are_configurable_and_the_policy_caps_them() -> None:
    eng = engine({"detectors": {"account_risk": {"levels": {"unfamiliar_datacenter": "hold"}}}})
    run(eng, history("a@x"))
    assert [i.action for i in run(eng, [login("a@x", "5.9.1.1", WEEK)])] == ["hold"]
    eng = engine({"detectors": {"account_risk": {"policy": "notify"}}})
    run(eng, history("a@x"))
    incs = run(eng, [login("a@x", ip, WEEK + timedelta(minutes=k)) for k, ip in
                     enumerate(["24.1.1.1", "200.1.1.1", "41.1.1.1"])])
    assert [i.action for i in incs] == ["notify"]
    with pytest.raises(ConfigError, match="did you mean 'distributed'"):
        engine({"detectors": {"account_risk": {"levels": {"distributd": "lock"}}}})


# ------------------------------------------------------------------------------------- bulk mail
def _newsletter(eng: Engine, day: datetime, n: int, ip: str = "91.1.1.1") -> list[Incident]:
    evs: list[Event] = []
    for k in range(n // 100):
        evs += send("news@x", ip, day + timedelta(minutes=k), 100, f"N{day:%d}{k:04d}")
    return run(eng, evs)


def test_a_weekly_newsletter_from_a_familiar_network_is_judged_against_its_own_history() -> None:
    eng = engine()
    run(eng, history("news@x", days=7))
    first = _newsletter(eng, T0 + timedelta(days=7, hours=9), 2000)
    # the first bulk send of an account that never sent in bulk is held, even from its own network
    assert [(i.detector, i.action, i.escalations[0]["rule"]) for i in first] == [
        ("send_burst", "hold", "first_bulk_send")]
    run(eng, history("news@x", days=6, start_day=8))
    assert _newsletter(eng, T0 + timedelta(days=14, hours=9), 2200) == []  # within its own history
    run(eng, history("news@x", days=6, start_day=15))
    assert [i.action for i in _newsletter(eng, T0 + timedelta(days=21, hours=9), 5000)] == ["notify"]


def test_bulk_mail_from_an_unfamiliar_network_is_held() -> None:
    eng = engine()
    run(eng, history("news@x", days=7))
    incs = _newsletter(eng, WEEK + 9 * H, 2000, ip="200.1.1.1")
    assert ("send_burst", "hold") in {(i.detector, i.action) for i in incs}


# ------------------------------------------------------------------------------ feedback, restart
def test_trust_feedback_makes_a_network_familiar_and_unlock_teaches(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    eng = engine(store=store)
    run(eng, history("a@x"))
    [inc] = run(eng, [login("a@x", "5.9.1.1", WEEK)])
    eng.flush()
    with store.begin() as conn:
        store.add_feedback(conn, account="A@x", action="trust", network="5.9.1.1", actor="t")
    eng.flush()  # the daemon reads feedback at every commit
    assert judge(eng, "a@x", "5.9.1.1", WEEK + H).state == "trusted"
    assert run(eng, [login("a@x", "5.9.1.1", WEEK + 2 * H)]) == []

    from acctwatch.actions.responder import Responder

    resp = Responder(from_dict({}), store)
    with store.begin() as conn:
        store.put_lock(conn, account="a@x", level="lock", locked_at=WEEK, incident_id=inc.id, reason="r",
                       backends={}, actor="acctwatch")
    run(eng, [login("a@x", "24.1.1.1", WEEK + 3 * H)])  # a traveller's hotel: notified
    eng.flush()
    d = resp.unlock_account("a@x", reason="it was the user")
    assert d.outcome == "unlocked"
    rows = store.feedback_since(0, "a@x")
    assert {r["network"] for r in rows} >= {"24.1.1.1"} and all(r["action"] == "trust" for r in rows)
    eng.flush()
    assert judge(eng, "a@x", "24.1.1.1", WEEK + 4 * H).familiar


def test_a_profile_survives_a_restart_exactly(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    evs = history("a@x") + history("v@x", ips=("185.9.9.9", "176.1.1.1"))
    attack = [login("a@x", ip, WEEK + timedelta(minutes=k)) for k, ip in
              enumerate(["24.1.1.1", "200.1.1.1", "41.1.1.1"])]
    whole = engine(store=Store("sqlite://"))
    want = [i for i in run(whole, evs + attack) if i.detected_at >= WEEK]
    store = Store(url)
    first = engine(store=store)
    run(first, evs)
    first.flush()
    second = engine(store=Store(url))  # a restart: everything from the store
    assert second.profiles.view("a@x") == first.profiles.view("a@x")
    assert second.profiles.shared == first.profiles.shared
    got = run(second, attack)
    assert [(i.id, i.action, i.evidence) for i in got] == [(i.id, i.action, i.evidence) for i in want]
    assert store.load_kv("", PROFILES_KEY).keys() == {"a@x", "v@x"}


def test_detected_at_and_escalations_are_in_every_output() -> None:
    eng = engine()
    run(eng, history("a@x"))
    evs: list[Event] = [login("a@x", "5.9.1.1", WEEK)]
    evs += send("a@x", "5.9.1.1", WEEK + timedelta(minutes=5), 80, "Q9")
    [inc] = run(eng, evs)
    d = inc.to_dict()
    assert d["detected_at"] == "2026-11-09T08:00:00Z"
    assert [e["level"] for e in d["escalations"]] == ["notify", "hold"]
    assert d["escalations"][1]["at"].startswith("2026-11-09T08:05:00")


def test_slow_failures_from_a_shared_network_are_a_stale_device_but_a_fast_run_locks() -> None:
    """A computer with an old password behind an office NAT (or on the region's big ISP) that many accounts
    use, then the new password: as likely a stale device as a patient guesser."""
    eng = engine()
    others: list[Event] = []
    for k in range(5):
        others += history(f"colleague{k}@x", ips=("91.1.1.1",))
    run(eng, others + history("a@x", ips=("176.1.1.1",)))
    assert judge(eng, "a@x", "91.1.1.2", WEEK).state == "shared"
    evs: list[Event] = [fail("a@x", "91.1.1.2", WEEK + timedelta(minutes=10 * k)) for k in range(12)]
    evs.append(login("a@x", "91.1.1.2", WEEK + 3 * H))
    assert run(eng, evs) == []
    evs = [fail("a@x", "91.1.1.2", WEEK + timedelta(days=1, seconds=20 * k)) for k in range(12)]
    evs.append(login("a@x", "91.1.1.2", WEEK + timedelta(days=1, minutes=5)))
    assert "lock" in [i.action for i in run(eng, evs)]


def test_client_identities_are_learned_and_shown_in_evidence() -> None:
    eng = engine()
    evs: list[Event] = []
    for ev in history("a@x"):
        assert isinstance(ev, Login)
        ev.method = "PLAIN"
        evs.append(ev)
    run(eng, evs)
    ev = login("a@x", "5.9.1.1", WEEK)
    ev.method = "xoauth2"
    [inc] = run(eng, [ev])
    assert inc.evidence["network"]["client"] == "imap/XOAUTH2"
    assert inc.evidence["network"]["client_state"] == "new"
    assert judge(eng, "a@x", "91.1.1.1", WEEK).client_state == "new"  # (no method on this test line)
    ok = login("a@x", "91.1.1.1", WEEK)
    ok.method = "PLAIN"
    ok.geo = Geo().lookup(ok.ip or "")
    assert eng.profiles is not None and eng.profiles.judge(ok).client_state == "familiar"
    view = eng.profiles.view("a@x")
    assert view is not None and view["clients"][0]["client"] == "imap/PLAIN"
