"""The decision log (acctwatch -> fail2ban), report-ban and the ban event source (fail2ban -> acctwatch),
without fail2ban itself (tests/test_fail2ban.py runs the real one)."""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fakegeo import FakeGeoInfo

from acctwatch.actions.decisionlog import DecisionLog, format_line, quote_account
from acctwatch.cli import main
from acctwatch.config import ConfigError, from_dict
from acctwatch.engine import Engine, Incident
from acctwatch.events import Ban, Event, Login
from acctwatch.parsing import PatternSet
from acctwatch.replay import replay
from acctwatch.sources.bans import BanFollower, ban_events, has_bans
from acctwatch.store import Store

T0 = datetime(2026, 11, 26, 7, 11, 40, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 7, 11, 57, tzinfo=UTC)

#: The documented line, as a regex (contrib/fail2ban/README.md, acctwatch/actions/decisionlog.py).
LINE = re.compile(r'^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00) acctwatch\[(?P<pid>\d+)\]: decision '
                  r'incident=(?P<id>[0-9a-f]+) detector=(?P<det>[\w.-]+) action=(?P<action>watch|notify|hold|lock) '
                  r'mode=(?P<mode>enforce|dry-run|replay) '
                  r'first_seen=(?P<first>\S+Z) ip=(?P<ip>[0-9a-f.:]+) account=(?P<acct>-|"(?:[^"\\]|\\.)*")$')


def inc(account: str | None, ips: list[str], action: str = "lock", detector: str = "geo_countries",
        iid: str = "3f2a9c0d1e2b3a4c5d6e") -> Incident:
    return Incident(iid, account, detector, action, T0, T0, "summary", {}, list(ips))


def parse(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = LINE.match(line)
        assert m, f"not the documented format: {line!r}"
        d = m.groupdict()
        d["acct"] = None if d["acct"] == "-" else json.loads(d["acct"])
        out.append(d)
    return out


def test_line_format_is_the_documented_one(tmp_path: Path) -> None:
    p = tmp_path / "log" / "decisions.log"  # the directory is created
    dl = DecisionLog(p, clock=lambda: NOW)
    dl(inc("user@example.org", ["192.0.2.7", "2001:DB8:0::5", "::ffff:198.51.100.4"]), True)
    lines = p.read_text().splitlines()
    assert lines[0] == (f"2026-11-26T07:11:57+00:00 acctwatch[{os.getpid()}]: decision incident=3f2a9c0d1e2b3a4c5d6e "
                        f"detector=geo_countries action=lock mode=enforce first_seen=2026-11-26T07:11:40Z ip=192.0.2.7 "
                        f'account="user@example.org"')
    assert [d["ip"] for d in parse(p)] == ["192.0.2.7", "2001:db8::5", "198.51.100.4"]
    assert oct(p.stat().st_mode & 0o777) == "0o640"


def test_hostile_account_cannot_escape_its_field(tmp_path: Path) -> None:
    p = tmp_path / "d.log"
    dl = DecisionLog(p, clock=lambda: NOW)
    hostile = ['x" ip=10.9.9.9 account="y', "a\nb", "tab\there", "back\\slash", "é\u2028\x00", 'end"', "-", ""]
    for i, acct in enumerate(hostile):
        dl(inc(acct, [f"203.0.113.{i + 1}"], iid=f"{i:020x}"), True)
    dl(inc(None, ["198.51.100.9"], iid="f" * 20), True)
    rows = parse(p)
    assert len(rows) == len(hostile) + 1  # one physical line each: no newline got through
    assert [r["acct"] for r in rows] == [*hostile, None]
    assert [r["ip"] for r in rows] == [f"203.0.113.{i + 1}" for i in range(len(hostile))] + ["198.51.100.9"]
    assert all(c.isascii() and c.isprintable() for c in p.read_text().replace("\n", ""))
    assert quote_account("-") == '"-"' and quote_account(None) == "-"


def test_one_line_per_incident_and_ip_also_after_restart(tmp_path: Path) -> None:
    p, st = tmp_path / "d.log", tmp_path / "state" / "decisionlog.state"
    dl = DecisionLog(p, state=st, clock=lambda: NOW)
    i = inc("a@example.org", ["192.0.2.1"])
    dl(i, True)
    dl(i, False)  # a merged finding with no new IP: nothing
    i.ips.append("192.0.2.2")
    i.attackers.append("192.0.2.2")
    dl(i, False)  # a new IP joined the incident: only it
    dl.close()
    assert [r["ip"] for r in parse(p)] == ["192.0.2.1", "192.0.2.2"]
    dl2 = DecisionLog(p, state=st, clock=lambda: NOW)  # restart: the incident is restored from the store
    i.ips.append("192.0.2.3")
    i.attackers.append("192.0.2.3")
    dl2(i, False)
    dl2(inc("b@example.org", ["192.0.2.1"], iid="0" * 20), True)  # same IP, other incident: written
    assert [r["ip"] for r in parse(p)] == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"]
    assert dl2.written == 2


def test_each_level_of_an_incident_is_written_with_the_mode(tmp_path: Path) -> None:
    """An incident notified, then locked: its IPs are written again at the new level (the jail bans locks);
    the mode is the daemon's, and a replay's file says replay."""
    p = tmp_path / "d.log"
    dl = DecisionLog.from_config(from_dict({"decision_log": {"path": str(p), "state": ""}}))
    assert dl is not None and dl.mode == "dry-run"  # the default mode
    dl(inc("a@example.org", ["192.0.2.1"], action="notify"), True)
    dl(inc("a@example.org", ["192.0.2.1"], action="notify"), False)
    dl(inc("a@example.org", ["192.0.2.1"], action="lock"), False)
    assert [(r["action"], r["mode"]) for r in parse(p)] == [("notify", "dry-run"), ("lock", "dry-run")]
    cfg = from_dict({"decision_log": {"path": str(p), "state": ""}, "general": {"mode": "enforce"}})
    assert DecisionLog.from_config(cfg).mode == "enforce"  # type: ignore[union-attr]
    assert DecisionLog.from_config(cfg, path=str(tmp_path / "r.log"), state="").mode == "replay"  # type: ignore[union-attr]


def test_state_is_bounded(tmp_path: Path) -> None:
    st = tmp_path / "s"
    dl = DecisionLog(tmp_path / "d.log", state=st, state_max=3)
    for n in range(10):
        dl(inc("a@example.org", [f"192.0.2.{n + 1}"], iid=f"{n:020x}"), True)
    dl.close()
    DecisionLog(tmp_path / "d.log", state=st, state_max=3).close()  # compacts on start
    assert len(st.read_text().splitlines()) == 3


def test_logrotate_move_is_followed(tmp_path: Path) -> None:
    p = tmp_path / "d.log"
    dl = DecisionLog(p)
    dl(inc("a@example.org", ["192.0.2.1"]), True)
    p.rename(tmp_path / "d.log.1")
    dl(inc("a@example.org", ["192.0.2.2"], iid="1" * 20), True)
    assert [r["ip"] for r in parse(p)] == ["192.0.2.2"]
    assert [r["ip"] for r in parse(tmp_path / "d.log.1")] == ["192.0.2.1"]


def test_actions_filter_and_bad_ips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "d.log"
    dl = DecisionLog.from_config(from_dict({"decision_log": {"path": str(p), "actions": ["lock"], "state": ""}}))
    assert dl is not None
    dl(inc("a@example.org", ["192.0.2.1"], action="notify"), True)
    dl(inc("a@example.org", ["not-an-ip", "192.0.2.2"], iid="2" * 20), True)
    assert [r["ip"] for r in parse(p)] == ["192.0.2.2"]
    assert "not an IP address" in caplog.text


def test_config_errors_and_defaults(tmp_path: Path) -> None:
    assert DecisionLog.from_config(from_dict({})) is None
    for bad in ({"pth": "x"}, {"path": 3}, {"syslog": "yes"}, {"path": "x", "actions": ["ban"]},
                {"path": "x", "state_max": 0}, {"syslog": True, "syslog_facility": "nope"},
                {"syslog": True, "syslog_address": "nohostport"}):
        with pytest.raises(ConfigError, match="decision_log"):
            DecisionLog.from_config(from_dict({"decision_log": bad, "general": {"state_dir": str(tmp_path)}}))
    cfg = from_dict({"decision_log": {"path": str(tmp_path / "d.log")}, "general": {"state_dir": str(tmp_path)}})
    dl = DecisionLog.from_config(cfg)
    assert dl is not None and dl.seen.path == tmp_path / "decisionlog.state"
    assert dl.actions == {"notify", "hold", "lock"}  # watch-level incidents are nobody's business by default


def test_syslog_output(tmp_path: Path) -> None:
    sock_path = str(tmp_path / "log.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(5)
    try:
        cfg = from_dict({"decision_log": {"syslog": True, "syslog_address": sock_path, "syslog_facility": "auth",
                                          "state": ""}})
        dl = DecisionLog.from_config(cfg)
        assert dl is not None and dl.file is None
        dl(inc('u"@example.org', ["192.0.2.7"]), True)
        msg = srv.recv(4096).decode().rstrip("\x00")
        dl.close()
    finally:
        srv.close()
    # <PRI> = facility auth (4) * 8 + severity warning (4) = 36
    assert msg == (f"<36>acctwatch[{os.getpid()}]: decision incident=3f2a9c0d1e2b3a4c5d6e detector=geo_countries "
                   f'action=lock mode=dry-run first_seen=2026-11-26T07:11:40Z ip=192.0.2.7 account="u\\"@example.org"')


def test_write_failure_is_logged_and_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "d.log"
    dl = DecisionLog(p)
    assert dl.file is not None
    real = dl.file.write

    def broken(line: str) -> None:
        raise OSError(28, "No space left on device")

    dl.file.write = broken  # type: ignore[method-assign]
    i = inc("a@example.org", ["192.0.2.1"])
    dl(i, True)
    assert "No space left" in caplog.text and dl.written == 0
    dl.file.write = real  # type: ignore[method-assign]
    dl(i, False)
    assert [r["ip"] for r in parse(p)] == ["192.0.2.1"]


def test_format_line_pid() -> None:
    assert format_line(inc(None, []), "192.0.2.1", NOW, pid=7).startswith("2026-11-26T07:11:57+00:00 acctwatch[7]: ")


# -- report-ban ---------------------------------------------------------------------------------------
def test_report_ban_records_in_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    r = CliRunner().invoke(main, ["report-ban", "203.0.113.5", "--jail", "postfix-sasl", "--db", url, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["ip"] == "203.0.113.5" and out["jail"] == "postfix-sasl" and out["recorded"] is True
    r = CliRunner().invoke(main, ["report-ban", "::ffff:203.0.113.6", "--jail", "dovecot", "--db", url,
                                  "--at", "2026-11-26T07:00:00+01:00"])
    assert r.exit_code == 0, r.output
    r2 = CliRunner().invoke(main, ["report-ban", "203.0.113.6", "--jail", "dovecot", "--db", url,
                                   "--at", "1795672800"])  # the same instant: already recorded
    assert r2.exit_code == 0 and "already recorded" in r2.output
    store = Store(url)
    rows = sorted(store.bans_since(datetime(2000, 1, 1, tzinfo=UTC)), key=lambda r: r["id"])
    assert [(r["ip"], r["jail"]) for r in rows] == [("203.0.113.5", "postfix-sasl"), ("203.0.113.6", "dovecot")]
    assert rows[1]["ts"] == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    assert abs((rows[0]["ts"] - datetime.now(UTC)).total_seconds()) < 60


def test_report_ban_uses_the_config_store(tmp_path: Path) -> None:
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text(f'[general]\ndb = "sqlite:///{tmp_path / "c.db"}"\n')
    r = CliRunner().invoke(main, ["report-ban", "192.0.2.1", "--jail", "j", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert has_bans(Store(f"sqlite:///{tmp_path / 'c.db'}"))


@pytest.mark.parametrize("args, msg", [
    (["nope", "--jail", "j"], "not an IPv4 or IPv6 address"),
    (["192.0.2.1", "--jail", "a b"], "jail name"),
    (["192.0.2.1", "--jail", "j", "--at", "yesterday"], "ISO 8601"),
    (["192.0.2.1"], "Missing option '--jail'"),
])
def test_report_ban_usage_errors(tmp_path: Path, args: list[str], msg: str) -> None:
    r = CliRunner().invoke(main, ["report-ban", *args, "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert r.exit_code == 2 and msg in r.output


def test_report_ban_store_error_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    r = CliRunner().invoke(main, ["report-ban", "192.0.2.1", "--jail", "j",
                                  "--db", f"sqlite:///{tmp_path / 'f' / 'x.db'}"])
    assert r.exit_code == 1 and "cannot record the ban of 192.0.2.1 (jail j)" in r.output
    r = CliRunner().invoke(main, ["report-ban", "192.0.2.1", "--jail", "j", "--config", str(tmp_path / "none")])
    assert r.exit_code == 2 and "cannot read config" in r.output


# -- bans as events ------------------------------------------------------------------------------------
def _store_with_bans(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    for i, (ip, jail, mins) in enumerate([("192.0.2.1", "sshd", 5), ("192.0.2.2", "dovecot", 1),
                                          ("192.0.2.3", "postfix-sasl", 10)]):
        assert store.add_ban(ip, jail, T0 + timedelta(minutes=mins), source=f"s{i}")
    return store


def test_ban_events_for_replay(tmp_path: Path) -> None:
    store = _store_with_bans(tmp_path)
    evs = list(ban_events(store))
    assert [(e.ip, e.jail, e.kind) for e in evs] == [("192.0.2.2", "dovecot", "ban"), ("192.0.2.1", "sshd", "ban"),
                                                     ("192.0.2.3", "postfix-sasl", "ban")]
    assert isinstance(evs[0], Ban) and evs[0].ts == T0 + timedelta(minutes=1) and evs[0].source == "store:bans"
    window = list(ban_events(store, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=10), batch=1))
    assert [e.ip for e in window] == ["192.0.2.2", "192.0.2.1"]  # [since, until)


def test_ban_follower_polls_new_rows_and_resumes(tmp_path: Path) -> None:
    store = _store_with_bans(tmp_path)
    f = BanFollower.resume(store, now=T0 + timedelta(minutes=30), backfill=timedelta(hours=1))
    assert [e.ip for e in f.poll()] == ["192.0.2.2", "192.0.2.1", "192.0.2.3"]
    assert f.poll() == []
    store.add_ban("198.51.100.1", "dovecot", T0 + timedelta(minutes=20))
    assert [e.ip for e in f.poll()] == ["198.51.100.1"]
    with store.begin() as conn:
        f.save(conn)
    store.add_ban("198.51.100.2", "dovecot", T0 + timedelta(minutes=21))
    f2 = BanFollower.resume(store)
    assert [e.ip for e in f2.poll()] == ["198.51.100.2"]
    # first start, old bans only: start after them
    assert BanFollower.resume(_store_with_bans(tmp_path / "x"), now=T0 + timedelta(days=2)).poll() == []


def _Geo(country: str | None = "DE") -> FakeGeoInfo:
    return FakeGeoInfo("", False, country)


class _GeoDB:
    def lookup(self, ip: str) -> _Geo:
        return _Geo()


class _Recorder:
    """A detector stand-in that only records what the engine fed it."""

    name = "recorder"
    kinds = ("ban", "login")
    _overrides: dict[str, Any] = {}

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def feed(self, ev: Event) -> list[Any]:
        self.seen.append(ev)
        return []

    def export_state(self) -> None:
        return None


def test_replay_merges_bans_from_the_store_by_time(tmp_path: Path) -> None:
    store = _store_with_bans(tmp_path)
    log = tmp_path / "mail.log"
    log.write_text("".join(
        f"2026-11-26T07:{m:02d}:40+00:00 mx dovecot: imap-login: Login: user=<bob@example.org>, method=PLAIN, "
        f"rip=198.51.100.7, lip=192.0.2.100, mpid=1, TLS, session=<s{m}>\n" for m in (12, 14, 16)))
    rec = _Recorder()
    eng = Engine(from_dict({}), store=store, geo=_GeoDB(), detectors=[rec])  # type: ignore[list-item]
    res = replay(eng, [str(log)], PatternSet.load([]), zone="UTC")
    # in time order; at the same second the ban comes first (07:12:40 and 07:16:40)
    assert [(e.kind, e.ip) for e in rec.seen] == [("ban", "192.0.2.2"), ("login", "198.51.100.7"),
                                                  ("login", "198.51.100.7"), ("ban", "192.0.2.1"),
                                                  ("login", "198.51.100.7"), ("ban", "192.0.2.3")]
    assert res.events == 6
    rec2 = _Recorder()
    replay(Engine(from_dict({}), store=store, geo=_GeoDB(), detectors=[rec2]), [str(log)],  # type: ignore[list-item]
           PatternSet.load([]), zone="UTC", since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=6))
    assert [(e.kind, e.ip) for e in rec2.seen] == [("login", "198.51.100.7"), ("ban", "192.0.2.1"),
                                                   ("login", "198.51.100.7")]


def test_replay_without_bans_or_store_is_unchanged(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("2026-11-26T07:12:40+00:00 mx dovecot: imap-login: Login: user=<bob@example.org>, method=PLAIN, "
                   "rip=198.51.100.7, lip=192.0.2.100, mpid=1, TLS, session=<s>\n")
    rec = _Recorder()
    replay(Engine(from_dict({}), store=None, geo=_GeoDB(), detectors=[rec]), [str(log)],  # type: ignore[list-item]
           PatternSet.load([]), zone="UTC")
    assert [e.kind for e in rec.seen] == ["login"] and isinstance(rec.seen[0], Login)


def test_replay_cli_writes_the_decision_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    places = {"192.0.2.1": "DE", "203.0.113.1": "AU"}

    class TwoCountries:
        def lookup(self, ip: str) -> _Geo:
            return _Geo(country=places.get(ip, "DE"))

    monkeypatch.setattr("acctwatch.cli.replay.build_engine",
                        lambda cfg, store: Engine(cfg, store=store, geo=TwoCountries()))
    log = tmp_path / "mail.log"
    log.write_text("".join(
        f"2026-11-26T07:00:{s:02d}+00:00 mx dovecot: imap-login: Login: user=<alice@example.org>, method=PLAIN, "
        f"rip={ip}, lip=192.0.2.100, mpid=1, TLS, session=<s{s}>\n" for s, ip in ((0, "192.0.2.1"),
                                                                               (20, "203.0.113.1"))))
    dl = tmp_path / "out" / "decisions.log"
    r = CliRunner().invoke(main, ["replay", str(log), "--config", str(tmp_path / "none.toml"), "--jsonl"])
    assert r.exit_code != 0  # a missing config file is an error, as before
    cfg = tmp_path / "a.toml"
    cfg.write_text(f'[general]\nstate_dir = "{tmp_path / "state"}"\n')
    r = CliRunner().invoke(main, ["replay", str(log), "--config", str(cfg), "--jsonl", "--decision-log", str(dl)])
    assert r.exit_code == 0, r.output
    incidents = [json.loads(line) for line in r.output.splitlines()]
    rows = parse(dl)
    assert {(d["ip"], d["acct"], d["id"]) for d in rows} == {(ip, i["account"], i["id"]) for i in incidents
                                                              for ip in i["attacker_ips"]}
    assert ("203.0.113.1", "alice@example.org") in {(d["ip"], d["acct"]) for d in rows}
    # alice's own first address is never offered to fail2ban
    assert "192.0.2.1" not in {d["ip"] for d in rows}
    assert not (tmp_path / "state").exists()  # a replay keeps no decision-log state


def test_only_the_presumed_attacker_is_written(tmp_path: Path) -> None:
    """A geo incident involves the owner's own address too: fail2ban must not ban it."""
    p = tmp_path / "d.log"
    dl = DecisionLog(p, state=None, clock=lambda: NOW)
    i = inc("a@example.org", ["192.0.2.1", "198.51.100.7"])
    i.attackers = ["198.51.100.7"]
    dl(i, True)
    dl.close()
    assert [r["ip"] for r in parse(p)] == ["198.51.100.7"]
