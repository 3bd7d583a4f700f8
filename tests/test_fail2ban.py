"""contrib/fail2ban with the real fail2ban (Debian package; .ci/run installs it).

* acctwatch -> fail2ban: a scenario replayed through the engine with the decision-log hook; ``fail2ban-regex``
  with the shipped filter finds exactly the incidents' IPs and accounts, and a real ``fail2ban-server``
  (private socket, pid, database and config dir; the shipped filter and jail; a ban action that only
  records) bans exactly those IPs;
* fail2ban -> acctwatch: the same server's postfix-sasl jail (Debian's postfix filter, maxretry 2) runs the
  shipped acctwatch action, which records the ban in acctwatch's store with ``acctwatch report-ban``; a
  later login from that IP, replayed with that store, is an ``account_risk`` incident (rule ``banned``).

Nothing touches the firewall or the network: the server talks over a unix socket in a temporary directory.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, need
from fakegeo import FakeGeoInfo

from acctwatch.actions.decisionlog import DecisionLog
from acctwatch.config import from_dict
from acctwatch.engine import Engine, Incident
from acctwatch.parsing import PatternSet
from acctwatch.replay import replay
from acctwatch.store import Store

CONTRIB = ROOT / "contrib" / "fail2ban"
FILTER = CONTRIB / "filter.d" / "acctwatch.conf"
SYSTEM_FILTERS = Path("/etc/fail2ban/filter.d")
T0 = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    need(path is not None, f"{name} not installed (apt-get install fail2ban)")
    assert path is not None
    return path


def _acctwatch_cmd() -> str:
    """The console script of the Python running the tests (the action runs it as fail2ban would)."""
    here = Path(sys.executable).parent / "acctwatch"
    path = str(here) if here.exists() else shutil.which("acctwatch")
    need(path is not None, "the acctwatch console script is not installed (pip install -e .)")
    assert path is not None
    return path


# -- the scenario ------------------------------------------------------------------------------------
FakeGeo = FakeGeoInfo


PLACES = {
    "192.0.2.1": FakeGeo("192.0.2.1", False, "DE", "Berlin", 52.52, 13.40, 20, 3320),
    "192.0.2.2": FakeGeo("192.0.2.2", False, "DE", "Berlin", 52.52, 13.40, 20, 3320),
    "203.0.113.1": FakeGeo("203.0.113.1", False, "AU", "Sydney", -33.87, 151.21, 20, 1221),
    "198.51.100.1": FakeGeo("198.51.100.1", False, "US", "New York", 40.71, -74.0, 20, 7922),
    "2001:db8::7": FakeGeo("2001:db8::7", False, "BR", "São Paulo", -23.55, -46.63, 20, 28573),
    "203.0.113.5": FakeGeo("203.0.113.5", False, "DE", "Berlin", 52.52, 13.40, 20, 3320),
    "192.0.2.9": FakeGeo("192.0.2.9", False, "DE", "Berlin", 52.52, 13.40, 20, 3320),
    "203.0.113.9": FakeGeo("203.0.113.9", False, "AU", "Sydney", -33.87, 151.21, 20, 1221),
}


class Geo:
    is_embedded = False

    def lookup(self, ip: str) -> FakeGeo:
        return PLACES.get(ip) or FakeGeo(ip, True, None)


def _login(ts: datetime, user: str, ip: str, session: str) -> str:
    return (f"{ts.isoformat()} mx dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={ip}, "
            f"lip=192.0.2.100, mpid=1, TLS, session=<{session}>\n")


SCENARIO = [  # (seconds after T0, account, client IP)
    (0, "alice@example.org", "192.0.2.1"),
    (20, "alice@example.org", "203.0.113.1"),  # DE then AU within 20 s
    (300, "bob@example.org", "198.51.100.1"),
    (330, "bob@example.org", "2001:db8::7"),  # US then BR
    (600, "carol@example.org", "192.0.2.2"),
    (900, "carol@example.org", "192.0.2.2"),  # carol: nothing
]


def _replay_scenario(tmp: Path, decision_log: Path, store: Store | None = None,
                     lines: list[tuple[datetime, str, str]] | None = None, mode: str = "enforce",
                     preset: str = "seed") -> list[Incident]:
    """The scenario through the engine with the decision-log hook, as the daemon in *mode* runs it (the seed
    preset: two countries within a minute lock, so that its decisions are locks)."""
    log = tmp / "mail.log"
    rows = lines or [(T0 + timedelta(seconds=s), u, ip) for s, u, ip in SCENARIO]
    log.write_text("".join(_login(ts, u, ip, f"s{i}") for i, (ts, u, ip) in enumerate(rows)))
    cfg = from_dict({"decision_log": {"path": str(decision_log), "state": ""},
                     "general": {"mode": mode, "preset": preset}})
    eng = Engine(cfg, store=store or Store("sqlite://"), geo=Geo())
    hook = DecisionLog.from_config(cfg)
    assert hook is not None
    eng.hooks.append(hook)
    try:
        return replay(eng, [str(log)], PatternSet.load([]), zone="UTC").incidents
    finally:
        hook.close()


def _expected(incidents: list[Incident]) -> set[tuple[str, str | None]]:
    return {(ip, inc.account) for inc in incidents for ip in inc.attackers}


def _regex_rows(log: Path, filt: str) -> list[tuple[str, str | None]]:
    out = subprocess.run([_tool("fail2ban-regex"), "-o", "row", str(log), filt], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    rows = []
    for line in out.splitlines():
        ip, _t, data = ast.literal_eval(line.strip().rstrip(","))
        user = data.get("user")
        rows.append((ip, None if user is None else json.loads(f'"{user}"')))  # F-USER is the JSON-escaped text
    return rows


# -- fail2ban-regex --------------------------------------------------------------------------------------
def test_fail2ban_regex_finds_exactly_the_incidents(tmp_path: Path) -> None:
    dl = tmp_path / "decisions.log"
    incidents = _replay_scenario(tmp_path, dl)
    assert {i.account for i in incidents} == {"alice@example.org", "bob@example.org"}
    # accounts from the logs are attacker text: a hostile one and a per-IP incident go through the same hook
    hook = DecisionLog(dl)
    extra = [Incident("e" * 20, 'mallory" ip=10.9.9.9 account="x', "bruteforce_success", "lock", T0, T0, "", {},
                      ["203.0.113.66"]),
             Incident("f" * 20, None, "auth_failures_ip", "notify", T0, T0, "", {}, ["203.0.113.77"])]
    for inc in extra:
        hook(inc, True)
    hook.close()
    incidents += extra
    every = f'{FILTER}[actions="watch|notify|hold|lock", modes="enforce|dry-run|replay"]'
    rows = _regex_rows(dl, every)
    assert len(rows) == len(dl.read_text().splitlines())  # every line matched, one match each
    assert set(rows) == _expected(incidents)
    assert "10.9.9.9" not in {ip for ip, _ in rows}
    stats = subprocess.run([_tool("fail2ban-regex"), str(dl), every], capture_output=True, text=True,
                           timeout=60, check=True).stdout
    assert f"Lines: {len(rows)} lines, 0 ignored, {len(rows)} matched, 0 missed" in stats
    assert "Year-Month-DayT24hour:Minute:Second" in stats  # the filter's own datepattern, not a guess
    # the defaults: only locks decided in enforce mode ban (the per-IP notify line does not)
    locks = _regex_rows(dl, str(FILTER))
    assert set(locks) == _expected([i for i in incidents if i.action == "lock"])
    assert len(locks) == dl.read_text().count(" action=lock ")
    assert set(_regex_rows(dl, f'{FILTER}[actions="notify|lock"]')) == set(rows)


def test_the_default_filter_bans_nothing_decided_in_dry_run(tmp_path: Path) -> None:
    dl = tmp_path / "decisions.log"
    incidents = _replay_scenario(tmp_path, dl, mode="dry-run")
    assert {i.action for i in incidents} == {"lock"} and "mode=dry-run" in dl.read_text()
    assert _regex_rows(dl, str(FILTER)) == []
    assert set(_regex_rows(dl, f'{FILTER}[modes="enforce|dry-run"]')) == _expected(incidents)


def test_filter_matches_the_syslog_forms(tmp_path: Path) -> None:
    msg = ('acctwatch[4711]: decision incident=3f2a9c0d1e2b3a4c5d6e detector=geo_countries action=lock mode=enforce '
           'first_seen=2026-11-26T07:11:40Z ip=192.0.2.7 account="user@example.org"')
    log = tmp_path / "auth.log"
    log.write_text(f"2026-11-26T07:11:57.123456+01:00 mx {msg}\n"  # rsyslog, Debian 12+ default
                   f"Nov 26 07:11:57 mx {msg}\n"  # traditional syslog
                   f"2026-11-26T07:11:57+00:00 {msg.replace('192.0.2.7', 'mx.example.net')}\n"  # never a name
                   f"2026-11-26T07:11:57+00:00 mx sshd[1]: decision ip=192.0.2.8 account=-\n")  # other program
    assert _regex_rows(log, str(FILTER)) == [("192.0.2.7", "user@example.org")] * 2
    assert _regex_rows(log, f'{FILTER}[detectors="bruteforce_success|geo_countries"]') != []
    assert _regex_rows(log, f'{FILTER}[detectors="bruteforce_success|ip_spread"]') == []


# -- a real fail2ban-server ------------------------------------------------------------------------------
@dataclass
class F2B:
    dir: Path
    sock: Path
    decisions: Path
    maillog: Path
    bans: Path
    store_url: str
    proc: subprocess.Popen[bytes]

    def client(self, *args: str) -> str:
        r = subprocess.run([_tool("fail2ban-client"), "-s", str(self.sock), *args], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"fail2ban-client {' '.join(args)}: {r.stdout}{r.stderr}\n{self.log()}")
        return r.stdout

    def log(self) -> str:
        p = self.dir / "fail2ban.log"
        return p.read_text(errors="replace")[-6000:] if p.exists() else "(no fail2ban log)"

    def banned(self) -> list[tuple[str, str]]:
        if not self.bans.exists():
            return []
        return [tuple(line.split(" ", 1)) for line in self.bans.read_text().splitlines()]  # type: ignore[misc]

    def wait(self, cond: Any, what: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"fail2ban-server exited ({self.proc.returncode}) while waiting for {what}\n"
                                     f"{self.log()}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.log()}")


RECORD_ACTION = """\
# test action: records bans in a file instead of touching the firewall
[Definition]
actionstart =
actionstop =
actioncheck =
actionban = echo '<name> <ip>' >> <banfile>
actionunban =
[Init]
banfile = {banfile}
"""


def _write_conf(d: Path, run: Path, f: F2B, cmd: str) -> None:
    for sub in ("filter.d", "action.d", "jail.d", "fail2ban.d"):
        (d / sub).mkdir(parents=True)
    (d / "fail2ban.conf").write_text(
        f"[Definition]\nloglevel = INFO\nlogtarget = {run / 'fail2ban.log'}\nsyslogsocket = auto\n"
        f"socket = {f.sock}\npidfile = {run / 'fail2ban.pid'}\ndbfile = {run / 'fail2ban.sqlite3'}\n"
        f"dbpurgeage = 1d\nallowipv6 = auto\n")
    # a minimal jail.conf: the DEFAULT a distribution ships, with the recording ban action
    (d / "jail.conf").write_text(
        "[DEFAULT]\nbackend = polling\nusedns = no\nignoreself = true\nignoreip = 127.0.0.1/8 ::1\n"
        "maxretry = 5\nfindtime = 10m\nbantime = 10m\nlogencoding = utf-8\nprotocol = tcp\nchain = INPUT\n"
        "port = 0:65535\nbanaction = record\nbanaction_allports = record\n"
        'action_ = %(banaction)s[name=%(__name__)s, port="%(port)s", protocol="%(protocol)s"]\n'
        "action = %(action_)s\n")
    shutil.copy(CONTRIB / "jail.d" / "acctwatch.conf", d / "jail.d" / "acctwatch.conf")
    shutil.copy(FILTER, d / "filter.d" / "acctwatch.conf")
    shutil.copy(CONTRIB / "action.d" / "acctwatch.conf", d / "action.d" / "acctwatch.conf")
    (d / "action.d" / "record.conf").write_text(RECORD_ACTION.format(banfile=f.bans))
    for name in ("postfix.conf", "common.conf"):  # the distribution's own postfix filter, as users run it
        need((SYSTEM_FILTERS / name).exists(), f"{SYSTEM_FILTERS / name} missing (fail2ban not installed?)")
        shutil.copy(SYSTEM_FILTERS / name, d / "filter.d" / name)
    # the user's jail.local: enable the shipped jail on the decision log, add the shipped action to postfix-sasl
    (d / "jail.local").write_text(
        f"[acctwatch]\nenabled = true\nlogpath = {f.decisions}\n\n"
        f"[postfix-sasl]\nenabled = true\nfilter = postfix[mode=auth]\nlogpath = {f.maillog}\nmaxretry = 2\n"
        f"action = %(action_)s\n"
        f'         acctwatch[acctwatch_cmd="{cmd}", acctwatch_opts="--db {f.store_url}"]\n')


@pytest.fixture(scope="module")
def f2b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[F2B]:
    server = _tool("fail2ban-server")
    _tool("fail2ban-client")
    cmd = _acctwatch_cmd()
    base = tmp_path_factory.mktemp("f2b")
    run = base / "run"
    run.mkdir()
    for name in ("decisions.log", "mail.log"):
        (base / name).write_text("")  # fail2ban refuses a jail whose log file is missing
    proc: subprocess.Popen[bytes] | None = None
    f = F2B(base, run / "fail2ban.sock", base / "decisions.log", base / "mail.log", base / "bans.txt",
            f"sqlite:///{base / 'acctwatch.db'}", proc)  # type: ignore[arg-type]
    conf = base / "conf"
    _write_conf(conf, run, f, cmd)
    f.dir = run
    test = subprocess.run([server, "-c", str(conf), "-s", str(f.sock), "-p", str(run / "fail2ban.pid"), "-t"],
                          capture_output=True, text=True, timeout=60)
    assert test.returncode == 0, f"fail2ban rejects the configuration:\n{test.stdout}{test.stderr}"
    proc = subprocess.Popen([server, "-c", str(conf), "-s", str(f.sock), "-p", str(run / "fail2ban.pid"),
                             "-f", "-x"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    f.proc = proc
    try:
        def up() -> bool:
            r = subprocess.run([_tool("fail2ban-client"), "-s", str(f.sock), "status"], capture_output=True,
                               text=True, timeout=30)
            return r.returncode == 0 and "acctwatch" in r.stdout and "postfix-sasl" in r.stdout

        f.wait(up, "fail2ban-server to start both jails")
        yield f
    finally:
        try:
            subprocess.run([_tool("fail2ban-client"), "-s", str(f.sock), "stop"], capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_fail2ban_bans_the_ips_acctwatch_decided(f2b: F2B, tmp_path: Path) -> None:
    incidents = _replay_scenario(tmp_path, f2b.decisions)
    want = {ip for inc in incidents for ip in inc.attackers}
    # the attackers only: alice's and bob's own first addresses (192.0.2.1, 198.51.100.1) are never banned
    assert want == {"203.0.113.1", "2001:db8::7"}
    f2b.wait(lambda: {ip for jail, ip in f2b.banned() if jail == "acctwatch"} >= want, f"bans of {sorted(want)}")
    time.sleep(1.5)  # one more polling round: nothing else gets banned
    assert sorted(ip for jail, ip in f2b.banned() if jail == "acctwatch") == sorted(want)
    status = f2b.client("status", "acctwatch")
    m = re.search(r"Currently banned:\s+(\d+)", status)
    assert m and int(m.group(1)) == len(want), status
    assert set(status.rpartition("Banned IP list:")[2].split()) == want


def test_the_jail_bans_nobody_for_decisions_made_in_dry_run(f2b: F2B, tmp_path: Path) -> None:
    """An admin who enables the shipped jail during the recommended dry-run week: no bans."""
    before = f2b.banned()
    rows = [(T0, "dave@example.org", "192.0.2.9"), (T0 + timedelta(seconds=15), "dave@example.org", "203.0.113.9")]
    incidents = _replay_scenario(tmp_path, f2b.decisions, lines=rows, mode="dry-run")
    assert {(i.action, tuple(i.attackers)) for i in incidents} == {("lock", ("203.0.113.9",))}
    assert "203.0.113.9 account=\"dave@example.org\"" in f2b.decisions.read_text()
    time.sleep(2.5)  # two polling rounds of the jail (backend polling, 1 s)
    assert f2b.banned() == before
    assert "203.0.113.9" not in f2b.client("status", "acctwatch")


def test_fail2ban_reports_its_bans_to_acctwatch(f2b: F2B, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    attacker = "203.0.113.5"
    with f2b.maillog.open("a") as fh:
        for i in range(2):  # maxretry 2
            fh.write(f"{(now + timedelta(seconds=i)).isoformat()} mx postfix/submission/smtpd[4{i}]: warning: "
                     f"unknown[{attacker}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n")
    store = Store(f2b.store_url)

    def recorded() -> bool:
        return any(b["ip"] == attacker for b in store.bans_since(now - timedelta(minutes=5)))

    f2b.wait(recorded, f"the shipped action to record the ban of {attacker} in acctwatch's store")
    bans = [b for b in store.bans_since(now - timedelta(minutes=5)) if b["ip"] == attacker]
    assert [(b["jail"], b["source"]) for b in bans] == [("postfix-sasl", "fail2ban")]
    assert abs((bans[0]["ts"] - datetime.now(UTC)).total_seconds()) < 120
    assert ("postfix-sasl", attacker) in f2b.banned()  # the jail's own (recording) firewall action ran too
    # acctwatch uses it: a successful login from the banned IP, replayed with that store
    login_at = bans[0]["ts"] + timedelta(minutes=3)
    incidents = _replay_scenario(tmp_path, tmp_path / "d.log", store=store,
                                 lines=[(login_at, "dave@example.org", attacker)], preset="familiarity")
    hits = [i for i in incidents if i.detector == "account_risk" and "banned" in i.evidence["rules"]]
    assert [(i.account, i.ips, i.action) for i in hits] == [("dave@example.org", [attacker], "lock")]
    assert hits[0].evidence["banned"]["jail"] == "postfix-sasl"
