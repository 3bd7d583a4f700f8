"""The engine: queue join, incident episodes, allowlists, determinism, and the two geo detectors.

These tests exercise the seed detectors (geo_countries, impossible_travel): the ``engine()`` helper runs
them under ``[general] preset = "seed"`` (the old rules, exactly); the default ``familiarity`` preset turns
them off (tests/test_presets.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakegeo import FakeGeoInfo

from acctwatch.config import from_dict
from acctwatch.detectors.geo import GeoCountries, ImpossibleTravel
from acctwatch.engine import Engine, IncidentTracker, QueueJoin, incident_id, merge_by_time
from acctwatch.events import Delivery, Login, Message, QueueEntry, QueueRemoved
from acctwatch.store import Store

T0 = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)


FakeGeo = FakeGeoInfo


PLACES = {
    "192.0.2.1": FakeGeo("192.0.2.1", False, "DE", "Berlin", 52.52, 13.40, 20, 3320),
    "192.0.2.2": FakeGeo("192.0.2.2", False, "DE", "Munich", 48.14, 11.58, 20, 3320),
    "192.0.2.3": FakeGeo("192.0.2.3", False, "PL", "Szczecin", 53.43, 14.55, 20, 5617),  # ~130 km from Berlin
    "198.51.100.1": FakeGeo("198.51.100.1", False, "US", "New York", 40.71, -74.0, 20, 7922),
    "203.0.113.1": FakeGeo("203.0.113.1", False, "AU", "Sydney", -33.87, 151.21, 20, 1221),
    "203.0.113.9": FakeGeo("203.0.113.9", False, "AU", None, None, None, None, 1221),
    "198.51.100.9": FakeGeo("198.51.100.9", False, "US", None, None, None, None, 7922),
}


class Geo:
    is_embedded = False

    def lookup(self, ip: str) -> FakeGeo:
        return PLACES.get(ip) or FakeGeo(ip, True, None)


def login(acct: str, ip: str, secs: float, service: str = "imap") -> Login:
    return Login(ts=T0 + timedelta(seconds=secs), account=acct, ip=ip, service=service, method="PLAIN")


def seed(cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """*cfg* under the seed preset (unless it names a preset itself)."""
    cfg = dict(cfg or {})
    cfg["general"] = {"preset": "seed", **cfg.get("general", {})}
    return cfg


def engine(cfg: dict[str, Any] | None = None, store: Store | None = None) -> Engine:
    return Engine(from_dict(seed(cfg)), store=store, geo=Geo())


def run(eng: Engine, events: list[Any]) -> list[Any]:
    out = []
    for ev in events:
        out.extend(eng.process(ev))
    out.extend(eng.finish())  # the end of the stream
    eng.flush()
    return out


# -- several countries -------------------------------------------------------------------------------
def test_two_countries_within_a_minute_locks() -> None:
    incs = run(engine(), [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 59)])
    geo = [i for i in incs if i.detector == "geo_countries"]
    assert len(geo) == 1
    assert geo[0].action == "lock" and geo[0].account == "a@x"
    assert geo[0].evidence["countries"] == ["DE", "US"]
    assert set(geo[0].ips) == {"192.0.2.1", "198.51.100.1"}


def test_two_countries_just_over_a_minute_is_not_the_seed_rule() -> None:
    incs = run(engine(), [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 61)])
    assert not [i for i in incs if i.detector == "geo_countries"]


def test_internal_ips_and_allowlisted_countries_never_count() -> None:
    incs = run(engine({"allowlist": {"countries": ["US"]}}),
               [login("a@x", "10.0.0.1", 0), login("a@x", "192.0.2.1", 1), login("a@x", "198.51.100.1", 2)])
    assert not [i for i in incs if i.detector == "geo_countries"]


def test_per_account_extra_country_and_override() -> None:
    cfg = {"accounts": {"a@x": {"extra_countries": ["US"]},
                        "b@x": {"detectors": {"geo_countries": {"countries": 3}}}}}
    incs = run(engine(cfg), [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 1),
                             login("b@x", "192.0.2.1", 0), login("b@x", "198.51.100.1", 1)])
    assert not [i for i in incs if i.detector == "geo_countries"]
    incs = run(engine(cfg), [login("b@x", "192.0.2.1", 0), login("b@x", "198.51.100.1", 1),
                             login("b@x", "203.0.113.1", 2)])
    assert [i.account for i in incs if i.detector == "geo_countries"] == ["b@x"]


def test_allowlisted_account_and_network_are_skipped() -> None:
    cfg = {"allowlist": {"accounts": ["A@X"], "networks": ["198.51.100.0/24"]}}
    incs = run(engine(cfg), [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 1),
                             login("b@x", "192.0.2.1", 0), login("b@x", "198.51.100.1", 1)])
    assert incs == []


def test_policy_from_config() -> None:
    incs = run(engine({"detectors": {"geo_countries": {"policy": "notify"}}}),
               [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 1)])
    assert {i.action for i in incs if i.detector == "geo_countries"} == {"notify"}


# -- impossible travel -------------------------------------------------------------------------------
def test_traveller_de_to_us_in_ten_hours_is_fine() -> None:
    incs = run(engine(), [login("t@x", "192.0.2.1", 0), login("t@x", "198.51.100.1", 10 * 3600)])
    assert incs == []


def test_de_to_us_in_two_hours_is_impossible() -> None:
    incs = run(engine(), [login("t@x", "192.0.2.1", 0), login("t@x", "198.51.100.1", 2 * 3600)])
    assert [i.detector for i in incs] == ["impossible_travel"]
    ev = incs[0].evidence
    assert ev["distance_km"] > 6000 and ev["speed_kmh"] > 900 and ev["coarse"] is False


def test_speed_boundary() -> None:
    # Berlin -> New York is 6385 km; minus 2 x 20 km accuracy = 6345 km; at 900 km/h that is 7.05 h
    just_under = 6345.3 / 900 * 3600 + 60
    just_over = 6345.3 / 900 * 3600 - 60
    assert run(engine(), [login("t@x", "192.0.2.1", 0), login("t@x", "198.51.100.1", just_under)]) == []
    incs = run(engine(), [login("t@x", "192.0.2.1", 0), login("t@x", "198.51.100.1", just_over)])
    assert [i.detector for i in incs] == ["impossible_travel"]


def test_short_hops_below_min_distance_are_ignored() -> None:
    # Berlin -> Szczecin (~130 km) in 1 minute: accuracy radii and the minimum distance absorb it
    incs = run(engine({"detectors": {"geo_countries": {"enabled": False}}}),
               [login("t@x", "192.0.2.1", 0), login("t@x", "192.0.2.3", 60)])
    assert incs == []


def test_coarse_country_only_travel(monkeypatch: pytest.MonkeyPatch) -> None:
    import acctwatch.geo as geo_mod

    monkeypatch.setattr(geo_mod, "country_centroid",
                        lambda c: {"US": (39.8, -98.6), "AU": (-25.7, 134.5), "DE": (51.2, 10.4)}.get(c))
    incs = run(engine({"detectors": {"geo_countries": {"enabled": False}}}),
               [login("t@x", "198.51.100.9", 0), login("t@x", "203.0.113.9", 3600)])
    assert [i.detector for i in incs] == ["impossible_travel"]
    assert incs[0].evidence["coarse"] is True


# -- incidents ---------------------------------------------------------------------------------------
def test_one_attack_is_one_incident_and_ids_are_deterministic() -> None:
    events = [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 10), login("a@x", "192.0.2.1", 20),
              login("a@x", "198.51.100.1", 30)]
    a = [i for i in run(engine(), events) if i.detector == "geo_countries"]
    b = [i for i in run(engine(), events) if i.detector == "geo_countries"]
    assert len({i.id for i in a}) == 1
    assert a[-1].updated == 2 and a[-1].last_seen == T0 + timedelta(seconds=30)
    assert [i.id for i in a] == [i.id for i in b]
    assert a[0].id == incident_id("a@x", "geo_countries", T0)


def test_cooldown_starts_a_new_episode() -> None:
    tr = IncidentTracker(cooldown=3600)
    from acctwatch.detectors import Finding

    f1 = Finding("d", "a@x", T0, T0, "s")
    f2 = Finding("d", "a@x", T0 + timedelta(minutes=30), T0 + timedelta(minutes=30), "s")
    f3 = Finding("d", "a@x", T0 + timedelta(hours=3), T0 + timedelta(hours=3), "s")
    i1, new1 = tr.add(f1, "lock")
    i2, new2 = tr.add(f2, "lock")
    i3, new3 = tr.add(f3, "lock")
    assert (new1, new2, new3) == (True, False, True)
    assert i1.id == i2.id != i3.id


def test_incidents_persist_and_restart_merges_into_the_same_episode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/s.db"
    run(engine(store=Store(url)), [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 10)])
    # a restart: the open incident is restored, a finding minutes later merges into it
    incs = run(engine(store=Store(url)), [login("a@x", "192.0.2.1", 100), login("a@x", "198.51.100.1", 110)])
    st = Store(url)
    rows = [r for r in st.incidents() if r["detector"] == "geo_countries"]
    assert len(rows) == 1 and rows[0]["updated"] == 1
    assert {i.id for i in incs if i.detector == "geo_countries"} == {rows[0]["id"]}


# -- queue join --------------------------------------------------------------------------------------
def test_queue_join_attributes_and_drops_repeats() -> None:
    j = QueueJoin(ttl=3600, cap=10)
    m = Message(ts=T0, queue_id="ABC123", account="a@x", ip="192.0.2.1")
    q = QueueEntry(ts=T0, queue_id="ABC123", sender="a@x", nrcpt=3)
    q2 = QueueEntry(ts=T0 + timedelta(minutes=5), queue_id="ABC123", sender="a@x", nrcpt=1)
    d = Delivery(ts=T0, queue_id="ABC123", recipient="r@y", status="bounced")
    other = Delivery(ts=T0, queue_id="ZZZ999", recipient="r@y", status="sent")
    assert j.feed(m) and j.feed(q) and j.feed(d) and j.feed(other)
    assert not j.feed(q2)  # deferred mail comes back through qmgr: count once
    assert q.account == "a@x" and d.account == "a@x" and d.ip == "192.0.2.1"
    assert other.account is None
    assert j.queue_ids("a@x") == ["ABC123"]


def test_queue_join_forgets_mail_postfix_removed() -> None:
    """qmgr's "QUEUEID: removed" ends a queue id: the join forgets it (and says so in its change set), so
    it holds the mail still in the queue, not five days of submissions; a later reuse of the id is not
    attributed to the old sender."""
    j = QueueJoin()
    m = Message(ts=T0, queue_id="ABC123", account="a@x", ip="192.0.2.1")
    d = Delivery(ts=T0, queue_id="ABC123", recipient="r@y", status="sent")
    assert j.feed(m) and j.feed(d) and d.account == "a@x"
    j.export_changes()
    assert not j.feed(QueueRemoved(ts=T0 + timedelta(seconds=1), queue_id="ABC123"))  # (nothing to detect)
    assert j.table == {} and j.queue_ids("a@x") == [] and j.export_changes() == {"ABC123": None}
    later = Delivery(ts=T0 + timedelta(hours=2), queue_id="ABC123", recipient="r@y", status="bounced")
    assert j.feed(later) and later.account is None
    assert not j.feed(QueueRemoved(ts=T0 + timedelta(hours=3), queue_id="NOPE00"))  # unknown: nothing
    assert j.export_changes() == {}


def test_queue_join_is_bounded() -> None:
    j = QueueJoin(ttl=3600, cap=5)
    for i in range(20):
        j.feed(Message(ts=T0 + timedelta(seconds=i), queue_id=f"Q{i:05d}", account="a@x", ip="192.0.2.1"))
    assert len(j.table) <= 6
    j.feed(Message(ts=T0 + timedelta(hours=2), queue_id="LATE1", account="a@x", ip="192.0.2.1"))
    assert list(j.table) == ["LATE1"]  # older than the ttl: expired


def test_merge_by_time_is_stable() -> None:
    a = [login("a@x", "192.0.2.1", s) for s in (0, 2, 4)]
    b = [login("b@x", "192.0.2.1", s) for s in (0, 1, 4)]
    got = [(e.account, e.ts.second) for e in merge_by_time([iter(a), iter(b)])]
    assert got == [("a@x", 0), ("b@x", 0), ("b@x", 1), ("a@x", 2), ("a@x", 4), ("b@x", 4)]


def test_detectors_unknown_option_is_an_error() -> None:
    from acctwatch.config import ConfigError
    from acctwatch.detectors import Context

    with pytest.raises(ConfigError, match="unknown option"):
        GeoCountries({"windw": "1m"}, Context(from_dict({})))
    with pytest.raises(ConfigError, match="unknown detector"):
        engine({"detectors": {"nope": {}}})
    assert ImpossibleTravel({}, Context(from_dict({}))).policy == "lock"


def test_attacker_back_after_unlock_is_a_new_incident(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After `acctwatch unlock`, the old attack's evidence does not re-lock the owner, but an attack whose
    evidence is entirely newer than the unlock is a new incident (acted on again)."""
    st = Store(f"sqlite:///{tmp_path}/s.db")
    eng = engine(store=st)
    first = run(eng, [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 10)])
    old = {i.id for i in first if i.detector == "geo_countries"}
    with st.begin() as conn:  # what the unlock command records (its final, backend-less audit row)
        st.audit(conn, action="unlock", result="ok", account="a@x", ts=T0 + timedelta(seconds=20), actor="root")
    # the owner logs in from home 10 s after the unlock: the window still holds the attacker's US login
    again = run(eng, [login("a@x", "192.0.2.1", 30)])
    assert {i.id for i in again if i.detector == "geo_countries"} <= old
    # ten minutes later the attacker is back: all the evidence is newer than the unlock
    back = run(eng, [login("a@x", "198.51.100.1", 600), login("a@x", "192.0.2.1", 610)])
    new = {i.id for i in back if i.detector == "geo_countries"}
    assert new and not (new & old)


def test_same_ip_again_moves_the_travel_clock() -> None:
    # Berlin, Berlin again 10 h later, then New York one minute after that: impossible
    incs = run(engine({"detectors": {"geo_countries": {"enabled": False}}}),
               [login("t@x", "192.0.2.1", 0), login("t@x", "192.0.2.1", 36000), login("t@x", "198.51.100.1", 36060)])
    assert [i.detector for i in incs] == ["impossible_travel"]


def test_windows_survive_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Detector windows are committed with every flush: an attack whose two logins fall on either side of
    a restart (or a crash after the commit) is still found, with the same incident ids as one run."""
    events = [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 30)]
    whole = {i.id for i in run(engine(), events)}
    url = f"sqlite:///{tmp_path}/s.db"
    run(engine(store=Store(url)), events[:1])
    after = {i.id for i in run(engine(store=Store(url)), events[1:])}
    assert after == whole and len(after) == 2  # geo_countries and impossible_travel
    # instances keep their own windows
    other = Engine(from_dict(seed()), store=Store(url), geo=Geo(), scope="mx2")
    assert run(other, events[1:]) == []


def test_queue_join_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Mail queued before a restart is still attributed to its account after it (live daemon)."""
    url = f"sqlite:///{tmp_path}/s.db"
    run(engine(store=Store(url)), [Message(ts=T0, queue_id="ABC123", account="a@x", ip="192.0.2.1")])
    eng = engine(store=Store(url))
    d = Delivery(ts=T0 + timedelta(minutes=1), queue_id="ABC123", recipient="r@y", status="bounced")
    q = QueueEntry(ts=T0 + timedelta(minutes=1), queue_id="ABC123", sender="a@x", nrcpt=3)
    run(eng, [q, d])
    assert (q.account, d.account, d.ip) == ("a@x", "a@x", "192.0.2.1")
    # the queue manager's repeat after a deferral is still recognised across a second restart
    eng2 = engine(store=Store(url))
    assert not eng2.join.feed(QueueEntry(ts=T0 + timedelta(hours=1), queue_id="ABC123", sender="a@x", nrcpt=3))
    # expired entries leave the store too
    eng2.join.feed(Message(ts=T0 + timedelta(days=6), queue_id="NEW999", account="b@x", ip="192.0.2.2"))
    eng2.flush()
    assert list(engine(store=Store(url)).join.table) == ["NEW999"]


def test_suspects_are_not_the_owners_first_address() -> None:
    incs = run(engine(), [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 20)])
    by = {i.detector: i for i in incs}
    assert by["geo_countries"].attackers == ["198.51.100.1"]
    assert by["impossible_travel"].attackers == ["198.51.100.1"]
    assert set(by["geo_countries"].ips) == {"192.0.2.1", "198.51.100.1"}
    d = by["geo_countries"].to_dict()
    assert d["attacker_ips"] == ["198.51.100.1"]


def test_learned_state_is_per_instance_and_adopts_the_old_unscoped_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from acctwatch.detectors import Detector

    class Learner(Detector):
        name = "learner"
        kinds = ("login",)

        def __init__(self) -> None:
            from acctwatch.detectors import Context

            super().__init__({}, Context(from_dict({})))
            self.seen: list[str] = []

        def feed(self, ev):  # type: ignore[no-untyped-def]
            self.seen.append(ev.account)
            return ()

        def export_state(self):  # type: ignore[no-untyped-def]
            return self.seen

        def import_state(self, data):  # type: ignore[no-untyped-def]
            self.seen = list(data)

    st = Store(f"sqlite:///{tmp_path}/s.db")
    with st.begin() as conn:  # as an older acctwatch saved it: keyed by detector name only
        st.save_state(conn, "learner", ["old@x"], None)
    a = Learner()
    run(Engine(from_dict({}), store=st, geo=Geo(), detectors=[a], scope="mx1"), [login("a@x", "192.0.2.1", 0)])
    b = Learner()
    run(Engine(from_dict({}), store=st, geo=Geo(), detectors=[b], scope="mx2"), [login("b@x", "192.0.2.1", 0)])
    assert st.load_state()["mx1:learner"] == ["old@x", "a@x"]
    assert st.load_state()["mx2:learner"] == ["old@x", "b@x"]


def test_a_failing_detector_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    eng = engine()
    broken = next(d for d in eng.detectors if d.name == "impossible_travel")

    def boom(ev):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    broken.feed = boom  # type: ignore[method-assign]
    incs = run(eng, [login("a@x", "192.0.2.1", 0), login("a@x", "198.51.100.1", 20)])
    assert [i.detector for i in incs] == ["geo_countries"]
    assert eng.detector_errors == {"impossible_travel": 2}
    assert "detector impossible_travel failed" in caplog.text
