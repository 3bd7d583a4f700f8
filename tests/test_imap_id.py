"""Dovecot's IMAP ID log lines (``imap_id_log = *``): parsing real lines (hostile values included), the client
names recorded in the familiarity profiles (evidence only), their persistence and `acctwatch profile`.

tests/fixtures/parse/dovecot-imap-id.log holds lines a real Dovecot 2.3.19.1 wrote (log_path, loopback):
an ID sent before LOGIN is logged by imap-login with Dovecot's usual tail (``: user=<>, rip=..., lip=...,
secured, session=<...>``), one sent after it by the imap process with the ``imap(user)<pid><session>`` prefix
and no address. Dovecot writes keys and values raw (", user=<other>" survives) except control characters
("?") and cuts each value near 80 characters with "...". Only loopback was connected to; where a test needs
a public address, the lines' ``rip=127.0.0.1`` is replaced by one (89.160.20.112 is on real lines too).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from acctwatch.cli import main
from acctwatch.config import from_dict
from acctwatch.engine import PROFILES_KEY, Engine
from acctwatch.events import MAX_ID_NAME, ClientId, Event, Login, clean_id_value, id_fields
from acctwatch.headers import Clock
from acctwatch.parsing import LineParser, PatternSet, classify_program, cost_problems
from acctwatch.profiles import GLOBAL_ROW, MAX_CLIENT_IDS, PENDING_ID_AGE, Profile, Profiles
from acctwatch.store import Store
from tests.fakegeo import FakeGeoInfo

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "parse" / "dovecot-imap-id.log"
PUBLIC = "89.160.20.112"


@pytest.fixture(scope="module")
def ps() -> PatternSet:
    return PatternSet.load()


def real_lines(public: bool = False) -> list[str]:
    lines = [x for x in FIXTURE.read_text(encoding="utf-8").splitlines() if x and not x.startswith("#")]
    return [x.replace("rip=127.0.0.1", f"rip={PUBLIC}") for x in lines] if public else lines


def parse_all(ps: PatternSet, lines: list[str]) -> list[tuple[str, Event | None]]:
    parser = LineParser(ps, Clock(zone="UTC", year=2026))
    out = [(line, parser.parse(line, n)) for n, line in enumerate(lines, 1)]
    assert parser.stats.internal_errors == 0
    return out


def tail_session(line: str) -> str:
    """Dovecot's own session id: the last session=<...> of an imap-login line, or the prefix's."""
    if "imap-login:" in line:
        return line.rsplit("session=<", 1)[1].rstrip(">")
    return line.split(">: ", 1)[0].rsplit("<", 1)[1]


# ------------------------------------------------------------------------------------------------ parsing
def test_every_real_id_line_becomes_a_client_id_event(ps: PatternSet) -> None:
    seen = 0
    for line, ev in parse_all(ps, real_lines()):
        if "ID sent: " not in line:
            assert ev is None or ev.kind != "client_id", line
            continue
        seen += 1
        assert ev is not None and ev.kind == "client_id", line
        assert isinstance(ev, ClientId)
        assert ev.session == tail_session(line), line
        assert ev.service == "imap"
        if "imap-login:" in line:  # before login: the address and session of Dovecot's tail, no account
            assert ev.account is None, line
            assert ev.ip == line.rsplit("rip=", 1)[1].split(",", 1)[0] and ev.local_ip == "127.0.0.1", line
        else:  # after login: the account of the mail process prefix, no address
            assert ev.account == line.split("imap(", 1)[1].split(")", 1)[0], line
            assert ev.ip is None, line
    assert seen == 22


def test_a_pre_login_id_shares_the_session_of_its_login_line(ps: PatternSet) -> None:
    evs = [ev for _, ev in parse_all(ps, real_lines())]
    pairs = 0
    for i, ev in enumerate(evs):
        if isinstance(ev, ClientId) and ev.account is None:
            login = next((e for e in evs[i + 1:] if isinstance(e, Login)), None)
            if login is not None and login.session == ev.session:
                pairs += 1
                assert login.ip == ev.ip
    assert pairs == 12  # every connection that then logged in (the last one only failed)


@pytest.mark.parametrize(("line", "want"), [
    # values with a whole fake Dovecot tail: the real (rightmost) rip and session are taken, never an account
    ("Dec 02 00:30:06 imap-login: Info: ID sent: name=Evil, user=<grace@example.test>, rip=1.2.3.4, "
     "lip=127.0.0.1, session=<fake>, version=1, user=<grace@example.test>: user=<>, rip=127.0.0.1, "
     "lip=127.0.0.1, secured, session=<SICovpthEJt/AAAB>",
     (None, "127.0.0.1", "SICovpthEJt/AAAB", "Evil", "1")),
    # a failed LOGIN with a forged name first: user=<> holds that name (not an account), then Dovecot's tail
    ("Dec 02 00:30:54 imap-login: Info: ID sent: name=Thunderbird, version=115.3: user=<grace@example.test>, "
     "rip=1.2.3.4, lip=127.0.0.1, secured, session=<fake>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, "
     "secured, session=<UUxewZthytl/AAAB>",
     (None, "127.0.0.1", "UUxewZthytl/AAAB", "Thunderbird", "115.3")),
    # the failed name cut at 80 characters by Dovecot
    ("Dec 02 00:36:39 imap-login: Info: ID sent: name=AfterLongUser: user=<" + "u" * 77 + "...>, method=PLAIN, "
     "rip=127.0.0.1, lip=127.0.0.1, secured, session=<p9331ZthqNp/AAAB>",
     (None, "127.0.0.1", "p9331ZthqNp/AAAB", "AfterLongUser", None)),
    # after login: the account is the prefix's, not the user=<grace...> inside the client's name
    ("Dec 02 00:30:06 imap(frank@example.test)<16967><SICovpthEJt/AAAB>: Info: ID sent: name=Evil, "
     "user=<grace@example.test>, rip=1.2.3.4, lip=127.0.0.1, session=<fake>, version=Q\"uote\\back",
     ("frank@example.test", None, "SICovpthEJt/AAAB", "Evil", 'Q"uote\\back')),
    # control characters (CR LF TAB 0x01 sent in a literal) arrive as "?"; ": user=<" inside the value
    ("Dec 02 00:30:06 imap(frank@example.test)<17011><BJqqvpthIJt/AAAB>: Info: ID sent: "
     "name=Line1??Line2?Tab?ctl: user=<grace@example.test>, version=2",
     ("frank@example.test", None, "BJqqvpthIJt/AAAB", "Line1??Line2?Tab?ctl: user=<grace@example.test>", "2")),
    # keys are raw too ("x, name" was one key): the first name= key is taken
    ("Dec 02 00:31:26 imap-login: Info: ID sent: x, name=Fake, NAME=Upper, name=Real, version=1: user=<>, "
     "rip=127.0.0.1, lip=127.0.0.1, secured, session=<dVhpw5thONR/AAAB>",
     (None, "127.0.0.1", "dVhpw5thONR/AAAB", "Fake", "1")),
    # the RLO mark (valid UTF-8, kept by Dovecot) is not stored; NIL is no value
    ("Dec 02 00:30:07 imap-login: Info: ID sent: name=Th\u00fcnderbird \u202eevil, version=NIL: user=<>, "
     "rip=127.0.0.1, lip=127.0.0.1, secured, session=<JIWuvpthLpt/AAAB>",
     (None, "127.0.0.1", "JIWuvpthLpt/AAAB", "Th\u00fcnderbird ?evil", None)),
    # syslog framing of the same lines
    ("Dec 02 00:30:01 mail dovecot: imap-login: ID sent: name=Thunderbird, version=115.3: user=<>, "
     "rip=::ffff:89.160.20.112, lip=::ffff:192.0.2.1, TLS, session=<JYtTvpthCpt/AAAB>",
     (None, PUBLIC, "JYtTvpthCpt/AAAB", "Thunderbird", "115.3")),
    ("Dec 02 00:30:01 mail dovecot: imap(frank@example.test)<16862><JYtTvpthCpt/AAAB>: ID sent: name=Thunderbird, "
     "version=115.3",
     ("frank@example.test", None, "JYtTvpthCpt/AAAB", "Thunderbird", "115.3")),
])
def test_hostile_values_never_change_account_address_or_session(ps: PatternSet, line: str, want: tuple) -> None:
    [(_, ev)] = parse_all(ps, [line])
    assert isinstance(ev, ClientId), line
    assert (ev.account, ev.ip, ev.session, ev.name, ev.version) == want


@pytest.mark.parametrize("line", [
    # an ID line without Dovecot's tail (not a real shape): nothing, rather than the fake fields in it
    "Dec 02 00:30:06 imap-login: Info: ID sent: name=Evil, user=<grace@example.test>, rip=1.2.3.4, lip=127.0.0.1, "
    "session=<fake>",
    # other processes' ID-like text is not taken
    "Dec 02 00:30:06 pop3(frank@example.test)<1><s>: Info: ID sent: name=x",
    "Dec 02 00:30:06 imap(frank@example.test)<16967><SICovpthEJt/AAAB>: Info: Disconnected: ID sent: name=x",
])
def test_lines_that_are_not_real_id_lines_give_nothing(ps: PatternSet, line: str) -> None:
    [(_, ev)] = parse_all(ps, [line])
    assert ev is None or ev.kind != "client_id"


def test_the_mail_process_prefix_is_kept_only_for_id_lines() -> None:
    assert classify_program("imap(u@x)<1><s>", "Info: ID sent: name=a") == (
        "dovecot", "imap", "imap", "imap(u@x)<1><s>: ID sent: name=a")
    assert classify_program("dovecot", "imap(u@x)<1><s>: ID sent: name=a")[3] == "imap(u@x)<1><s>: ID sent: name=a"
    assert classify_program("imap(u@x)<1><s>", "Info: Disconnected: Logged out")[3] == "Disconnected: Logged out"


def test_names_are_cleaned_and_bounded() -> None:
    assert id_fields("name=Thunderbird, version=115.3, os=Linux") == ("Thunderbird", "115.3")
    assert id_fields("os=iOS, vendor=Apple") == (None, None)
    assert id_fields("name=, version=") == (None, None)
    long = id_fields("name=" + "L" * 300 + ", version=" + "9" * 100)
    assert long[0] is not None and len(long[0]) == MAX_ID_NAME and long[0].endswith("...")
    assert long[1] is not None and len(long[1]) <= 32
    assert clean_id_value("a\u202eb\u200bc\x00d\ue000e\nf \t g") == "a?b?c?d?e f g"
    assert clean_id_value("NIL") is None and clean_id_value("  ") is None
    ev = ClientId(ts=datetime(2026, 1, 1, tzinfo=UTC), name="x\u202e" + "y" * 200, version="1\x1b[31m")
    assert ev.name is not None and len(ev.name) == MAX_ID_NAME and "\u202e" not in ev.name
    assert ev.version == "1?[31m"


def test_matching_time_stays_linear_in_the_client_text(ps: PatternSet) -> None:
    """The cost check now runs on the message the patterns are given (prefixes stripped), so it covers
    the ID patterns; and a pattern without the bound on the failed name would be caught."""
    names = {p.name for p in ps.patterns}
    assert {"dovecot.imap_id.prelogin", "dovecot.imap_id.postlogin"} <= names
    assert [r.pattern for r in cost_problems(ps)] == []
    pre = next(p for p in ps.patterns if p.name == "dovecot.imap_id.prelogin")
    import re

    unbounded = PatternSet([type(pre)(pre.name, pre.family, pre.programs, pre.prefilter,
                                      re.compile(pre.regex.pattern.replace(".{0,160}", ".*")), pre.event,
                                      pre.fields, pre.examples, pre.origin)])
    assert [r.pattern for r in cost_problems(unbounded)] == ["dovecot.imap_id.prelogin"]
    parser = LineParser(ps, Clock(zone="UTC", year=2026))
    for n in (4000, 15000):  # a whole line of separators, no real tail: fails fast
        t0 = time.perf_counter()
        parser.parse("Dec 02 00:30:06 imap-login: Info: ID sent: " + ": user=<" * (n // 8), 1)
        assert time.perf_counter() - t0 < 0.05


# ----------------------------------------------------------------------------------------------- profiles
T0 = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)


class Geo:
    """Every public address is one German ISP (one network), 10.x is internal."""

    def lookup(self, ip: str) -> FakeGeoInfo:
        if ip.startswith(("10.", "127.")):
            return FakeGeoInfo(ip, True, None)
        return FakeGeoInfo(ip, False, "DE", "Berlin", 52.52, 13.40, 10.0, 3320, "Deutsche Telekom AG")


def engine(store: Store | None = None) -> Engine:
    return Engine(from_dict({}), store=store, geo=Geo())


def login(acct: str, ts: datetime, session: str | None = None, ip: str = "91.1.1.1") -> Login:
    return Login(ts=ts, account=acct, ip=ip, service="imap", program="imap-login", method="PLAIN", session=session)


def pre_id(ts: datetime, session: str, name: str | None, ip: str = "91.1.1.1", version: str | None = "1") -> ClientId:
    return ClientId(ts=ts, ip=ip, session=session, name=name, version=version, service="imap", program="imap-login")


def post_id(acct: str, ts: datetime, session: str | None, name: str, version: str | None = "1") -> ClientId:
    return ClientId(ts=ts, account=acct, session=session, name=name, version=version, service="imap",
                    program="imap")


def names(eng: Engine, acct: str) -> dict[str, tuple[str | None, int]]:
    assert eng.profiles is not None
    view = eng.profiles.view(acct)
    return {} if view is None else {c["name"]: (c["version"], c["sessions"]) for c in view["client_names"]}


def test_a_pre_login_id_is_recorded_with_the_login_of_its_session() -> None:
    eng = engine()
    eng.process(login("a@x", T0))  # (the profile exists)
    eng.process(pre_id(T0 + timedelta(hours=5), "S1", "Thunderbird", version="115.3"))
    eng.process(login("a@x", T0 + timedelta(hours=5, seconds=1), "S1"))
    eng.process(post_id("a@x", T0 + timedelta(hours=5, seconds=2), "S1", "Thunderbird", "115.3"))  # same session
    assert names(eng, "a@x") == {"Thunderbird": ("115.3", 1)}
    eng.process(post_id("a@x", T0 + timedelta(hours=9), "S2", "Thunderbird", "128.0"))  # another session
    assert names(eng, "a@x") == {"Thunderbird": ("128.0", 2)}
    assert eng.profiles is not None and eng.profiles.pending_ids == {}


def test_a_pre_login_id_is_never_given_to_another_connection_or_account() -> None:
    eng = engine()
    for acct in ("a@x", "b@x"):
        eng.process(login(acct, T0))
    eng.process(pre_id(T0 + timedelta(hours=1), "S1", "Evil"))
    eng.process(login("b@x", T0 + timedelta(hours=1, seconds=1), "S9"))  # another session
    eng.process(login("b@x", T0 + timedelta(hours=1, seconds=2), "S1", ip="176.1.1.1"))  # same id, other address
    eng.process(login("b@x", T0 + timedelta(hours=1), None))
    assert names(eng, "b@x") == {} and names(eng, "a@x") == {}
    eng.process(login("a@x", T0 + timedelta(hours=1, seconds=3), "S1"))
    assert names(eng, "a@x") == {"Evil": ("1", 1)} and names(eng, "b@x") == {}


def test_a_pre_login_id_waits_a_bounded_time_and_an_id_never_creates_a_profile() -> None:
    eng = engine()
    eng.process(pre_id(T0, "S1", "Thunderbird"))
    eng.process(login("a@x", T0 + timedelta(seconds=PENDING_ID_AGE + 1), "S1"))
    assert names(eng, "a@x") == {}
    eng.process(post_id("nobody@x", T0 + timedelta(hours=1), "S7", "Thunderbird"))
    eng.process(pre_id(T0 + timedelta(hours=1), "S8", "Thunderbird", ip="10.0.0.5"))
    eng.process(login("internal@x", T0 + timedelta(hours=1, seconds=1), "S8", ip="10.0.0.5"))
    assert eng.profiles is not None
    assert "nobody@x" not in eng.profiles.accounts and "internal@x" not in eng.profiles.accounts
    prof = eng.profiles
    for k in range(30):  # scanners that send ID and never log in
        eng.process(pre_id(T0 + timedelta(hours=2, seconds=k), f"Q{k}", "scan"))
    eng.process(pre_id(T0 + timedelta(hours=3), "last", "scan"))
    assert list(prof.pending_ids) == ["last"]


def test_client_names_are_bounded_and_cleaned_in_the_profile() -> None:
    eng = engine()
    eng.process(login("a@x", T0))
    for k in range(MAX_CLIENT_IDS + 5):
        eng.process(post_id("a@x", T0 + timedelta(minutes=k + 1), f"S{k}", f"client {k}\u202e\x07" + "z" * 100))
    got = names(eng, "a@x")
    assert len(got) == MAX_CLIENT_IDS
    assert all(len(n) <= MAX_ID_NAME and "\u202e" not in n and "\x07" not in n for n in got)
    assert not any(n.startswith("client 0?") for n in got)  # the least recently seen went first


def test_the_login_evidence_names_the_client_but_no_rule_uses_it() -> None:
    """The same logins with and without ID lines open the same incidents at the same levels."""
    def week(with_ids: bool) -> list[Event]:
        evs: list[Event] = []
        for d in range(7):
            for h in (7, 18):
                t = T0 + timedelta(days=d, hours=h)
                s = f"D{d}H{h}"
                if with_ids:
                    evs.append(pre_id(t, s, "Thunderbird"))
                evs.append(login("a@x", t + timedelta(seconds=1), s))
        t = T0 + timedelta(days=7, hours=3)
        for k, ip in enumerate(("5.9.1.1", "24.1.1.1", "200.1.1.1")):  # three unfamiliar networks: a lock
            if with_ids:
                evs.append(pre_id(t + timedelta(minutes=k), f"X{k}", "python-imaplib", ip=ip))
            evs.append(login("a@x", t + timedelta(minutes=k, seconds=1), f"X{k}", ip=ip))
        return evs

    class ManyNets(Geo):
        def lookup(self, ip: str) -> FakeGeoInfo:
            if ip == "91.1.1.1":
                return super().lookup(ip)
            c, asn = {"5.9.1.1": ("DE", 24940), "24.1.1.1": ("US", 7922), "200.1.1.1": ("BR", 7162)}[ip]
            return FakeGeoInfo(ip, False, c, None, None, None, None, asn, f"AS{asn} org")

    runs = []
    for with_ids in (False, True):
        eng = Engine(from_dict({}), geo=ManyNets())
        incs = {}
        for ev in week(with_ids):
            for inc in eng.process(ev):
                incs[inc.id] = inc
        runs.append((eng, sorted(incs.values(), key=lambda i: i.id)))
    (plain, a), (ided, b) = runs
    assert a and [(i.id, i.detector, i.action, i.summary) for i in a] == [
        (i.id, i.detector, i.action, i.summary) for i in b]
    assert "client_name" not in json.dumps([i.evidence for i in a], default=str)
    assert '"client_name": "python-imaplib"' in json.dumps([i.evidence for i in b], default=str)
    assert names(ided, "a@x") == {"Thunderbird": ("1", 14), "python-imaplib": ("1", 3)}
    assert plain.profiles is not None and ided.profiles is not None
    va, vb = plain.profiles.view("a@x"), ided.profiles.view("a@x")
    assert va is not None and vb is not None
    va.pop("client_names")
    vb.pop("client_names")
    assert va == vb  # networks, countries, logins, times: untouched by the IDs


def test_a_verdict_says_whether_the_sessions_client_name_is_known() -> None:
    eng = engine()
    eng.process(login("a@x", T0))
    for d in range(2):
        eng.process(post_id("a@x", T0 + timedelta(hours=d + 1), f"S{d}", "Thunderbird"))
    assert eng.profiles is not None
    eng.process(pre_id(T0 + timedelta(hours=5), "N", "Thunderbird"))
    ev = login("a@x", T0 + timedelta(hours=5, seconds=1), "N")
    ev.geo = Geo().lookup("91.1.1.1")
    v = eng.profiles.judge(ev)
    assert (v.client_name, v.client_name_state) == ("Thunderbird", "familiar")
    assert v.to_dict()["client_name"] == "Thunderbird"
    eng.process(pre_id(T0 + timedelta(hours=5, seconds=5), "M", "curl"))
    ev = login("a@x", T0 + timedelta(hours=5, seconds=6), "M")
    ev.geo = Geo().lookup("91.1.1.1")
    assert eng.profiles.judge(ev).client_name_state == "new"
    ev2 = login("a@x", T0 + timedelta(hours=5, seconds=6))
    ev2.geo = ev.geo
    assert "client_name" not in eng.profiles.judge(ev2).to_dict()


# ------------------------------------------------------------------------------------------- persistence
def real_events(ps: PatternSet) -> list[Event]:
    return [ev for _, ev in parse_all(ps, real_lines(public=True)) if ev is not None]


def test_profile_rows_round_trip_exactly_and_old_rows_load() -> None:
    p = Profile(1.5)
    p.ids = {"Thunderbird": [1.5, 2.25, 3, "115.3", "S1"], "K-9 Mail": [2.0, 2.0, 1, None, None]}
    row = json.loads(json.dumps(p.row()))
    assert Profile.from_row(row).row() == p.row()
    assert list(Profile.from_row(row).ids) == ["Thunderbird", "K-9 Mail"]
    old = dict(row)
    del old["ids"]  # a profile saved before client names were recorded
    assert Profile.from_row(old).ids == {}
    assert "ids" not in Profile(1.0).row()  # (rows of accounts without IDs are unchanged)
    prof = Profiles()
    prof.pending_ids = {"S1": [10.0, "91.1.1.1", "Thunderbird", "1"], "S2": [11.0, "91.1.1.2", "x", None]}
    prof._pending_dirty = True
    rows = json.loads(json.dumps(prof.export_changes()))
    again = Profiles()
    again.import_rows(rows)
    assert again.pending_ids == prof.pending_ids and list(again.pending_ids) == ["S1", "S2"]
    assert again.accounts == {} and again.view("") is None
    prof.pending_ids.clear()
    prof._pending_dirty = True
    assert prof.export_changes() == {GLOBAL_ROW: None}  # (the row is deleted when nothing waits)


def test_a_restart_anywhere_in_the_real_lines_records_exactly_the_same(ps: PatternSet, tmp_path: Path) -> None:
    evs = real_events(ps)
    whole = engine(Store(f"sqlite:///{tmp_path / 'whole.db'}"))
    for ev in evs:
        whole.process(ev)
    whole.flush()
    assert whole.store is not None
    want = whole.store.load_kv("", PROFILES_KEY)
    assert "ids" in want["frank@example.test"] and GLOBAL_ROW in want  # (AfterLongUser never logged in)
    assert {c["name"] for c in whole.profiles.view("frank@example.test")["client_names"]} >= {  # type: ignore
        "Thunderbird", "K-9 Mail", "Evil", "Fake"}
    assert [c["name"] for c in whole.profiles.view("grace@example.test")["client_names"]] == [  # type: ignore
        "Thunderbird"]  # (the hostile user=<grace...> values were frank's sessions)
    # cut right after every pre-login ID (waiting for its Login) and at a few other points
    cuts = sorted({i + 1 for i, ev in enumerate(evs) if isinstance(ev, ClientId) and ev.account is None}
                  | {1, len(evs) // 2, len(evs) - 1})
    for cut in cuts:
        url = f"sqlite:///{tmp_path / f'cut{cut}.db'}"
        first = engine(Store(url))
        for ev in evs[:cut]:
            first.process(ev)
        first.flush()
        second = engine(Store(url))  # a restart: everything from the store
        for ev in evs[cut:]:
            second.process(ev)
        second.flush()
        assert second.store is not None
        assert second.store.load_kv("", PROFILES_KEY) == want, f"restart after event {cut}"


# -------------------------------------------------------------------------------------------------- CLI
def test_replay_db_then_profile_shows_the_client_names(tmp_path: Path) -> None:
    log = tmp_path / "dovecot.log"
    log.write_text("\n".join(real_lines(public=True)) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 's.db'}"
    env = {"ACCTWATCH_CONFIG": ""}
    r = CliRunner().invoke(main, ["replay", "--db", url, "--year", "2026", str(log)], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["profile", "frank@example.test", "--db", url], env=env)
    assert r.exit_code == 0, r.output
    assert "Client names (IMAP ID, as the client claims; Dovecot imap_id_log):" in r.output
    assert "  Thunderbird 115.3" in r.output and "K-9 Mail 6.7" in r.output
    assert "\u202e" not in r.output and "\x01" not in r.output
    r = CliRunner().invoke(main, ["profile", "frank@example.test", "--db", url, "--json"], env=env)
    view = json.loads(r.output)["profile"]
    got = {c["name"]: c for c in view["client_names"]}
    assert got["Thunderbird"]["sessions"] == 3 and got["Thunderbird"]["version"] == "115.3"  # (pre+post: once)
    assert "Th\u00fcnderbird ?evil" in got and all(len(n) <= MAX_ID_NAME for n in got)
    r = CliRunner().invoke(main, ["profile", "grace@example.test", "--db", url, "--json"], env=env)
    assert [c["name"] for c in json.loads(r.output)["profile"]["client_names"]] == ["Thunderbird"]


def test_explain_counts_the_id_lines(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["explain", "--json", str(FIXTURE)], env={"ACCTWATCH_CONFIG": ""})
    assert r.exit_code == 0, r.output
    data: Any = json.loads(r.output)
    text = json.dumps(data)
    assert '"client_id": 22' in text
