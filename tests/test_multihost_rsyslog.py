"""Several mail hosts through the syslog daemon they already run (docs/running.md, "Several mail hosts"): two
real rsyslogd "hosts" forward their mail logs over TCP to a third rsyslogd, the collector, which writes one
merged file; acctwatch follows that file. Logins of one account on host A (Dovecot IMAP, Berlin) and host B
(Postfix submission, New York) within seconds are one incident.

Each rsyslogd runs on loopback with a private config, socket and work directory (not the system's), and
the daemons' log lines enter as they do on a real host: syslog(3) datagrams to the host's log socket."""

from __future__ import annotations

import json
import logging.handlers
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import need

from acctwatch.cli import main
from acctwatch.store import Store

GEO = Path(__file__).resolve().parent / "fixtures" / "geo"

#: the collector: receive over TCP, write every mail line to one file (RFC 3339 time stamps, host names)
COLLECTOR_CONF = """\
global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="fromhosts")
ruleset(name="fromhosts") {{
    action(type="omfile" file="{merged}" template="RSYSLOG_FileFormat")
}}
"""

#: a mail host: its daemons log to its socket (/dev/log on a real host); forwarded over TCP, queued on disk
#: while the collector is unreachable
HOST_CONF = """\
global(workDirectory="{work}" localHostname="{name}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}" CreatePath="on")
mail.* action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" template="RSYSLOG_ForwardFormat"
              queue.type="LinkedList" queue.filename="fwd" queue.saveOnShutdown="on"
              action.resumeRetryCount="-1")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rsyslog:
    def __init__(self, tool: str, work: Path, conf: str) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.conf = work / "rsyslog.conf"
        self.conf.write_text(conf)
        self.pid = work / "rsyslogd.pid"
        check = subprocess.run([tool, "-N1", "-f", str(self.conf)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"rsyslogd rejects {self.conf}:\n{check.stdout}{check.stderr}"
        self.proc = subprocess.Popen([tool, "-n", "-f", str(self.conf), "-i", str(self.pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _wait(cond, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _syslog(sock: Path, ident: str, message: str) -> None:
    """What a daemon's syslog(3) call does: one datagram to the host's log socket, facility mail."""
    h = logging.handlers.SysLogHandler(address=str(sock), facility=logging.handlers.SysLogHandler.LOG_MAIL)
    h.ident = ident
    try:
        h.emit(logging.LogRecord("mail", logging.INFO, "", 0, message, None, None))
    finally:
        h.close()


def test_two_hosts_through_one_collector_are_one_account(tmp_path: Path) -> None:
    tool = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    need(Path(tool).exists(), "rsyslogd not installed (apt-get install rsyslog)")
    if Path(tool).exists() and subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("rsyslogd's unix sockets and work directories are set up as root here")
    port = _free_port()
    merged = tmp_path / "collector" / "mail.log"
    procs = [Rsyslog(tool, tmp_path / "collector", COLLECTOR_CONF.format(work=tmp_path / "collector", port=port,
                                                                         merged=merged))]
    socks = {}
    try:
        for name in ("mx-a", "mx-b"):
            work = tmp_path / name
            socks[name] = work / "log.sock"
            procs.append(Rsyslog(tool, work, HOST_CONF.format(work=work, name=name, socket=socks[name],
                                                              port=port)))
        for s in socks.values():
            _wait(s.exists, f"{s} to be created")
        # host A: Dovecot, the owner reads mail in Berlin; host B: Postfix, the same account sends from New
        # York 2 s later; and an unrelated account on host B
        _syslog(socks["mx-a"], "dovecot: ", "imap-login: Login: user=<frank@example.org>, method=PLAIN, "
                "rip=192.0.2.10, lip=192.0.2.1, mpid=101, TLS, session=<aA1>")
        time.sleep(2)
        _syslog(socks["mx-b"], "postfix/submission/smtpd[4242]: ", "4ABCD12345: client=x[198.51.100.20], "
                "sasl_method=PLAIN, sasl_username=frank@example.org")
        _syslog(socks["mx-b"], "dovecot: ", "imap-login: Login: user=<grace@example.org>, method=PLAIN, "
                "rip=192.0.2.11, lip=192.0.2.1, mpid=102, TLS, session=<bB1>")
        text = _wait(lambda: merged.exists() and merged.read_text().count("\n") >= 3 and merged.read_text(),
                     "the collector to write the three lines")
    finally:
        for p in procs:
            p.stop()
    lines = text.splitlines()
    assert {ln.split()[1] for ln in lines} == {"mx-a", "mx-b"}, text  # one file, both hosts
    assert all(ln[:4].isdigit() and "T" in ln.split()[0] for ln in lines)  # RFC 3339 time stamps
    # acctwatch follows the collector's file: one incident, for the account used on both hosts
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text(f"""
[general]
state_dir = "{tmp_path / 'state'}"
[sources]
files = ["{merged}"]
instance = "collector"
[geoip]
databases = ["{GEO / 'test-city.mmdb'}", "{GEO / 'test-asn.mmdb'}"]
documentation_ranges_public = true
""")
    r = CliRunner().invoke(main, ["explain", "--jsonl", str(merged)])
    assert r.exit_code == 0, r.output
    kinds = [json.loads(x)["kind"] for x in r.output.splitlines() if x.startswith("{")]
    assert kinds.count("login") == 2 and kinds.count("message") == 1, r.output
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once", "--from-start"])
    assert r.exit_code == 0, r.output
    incs = Store(f"sqlite:///{tmp_path / 'state' / 'acctwatch.db'}").incidents()
    [inc] = incs
    assert inc["account"] == "frank@example.org" and inc["ips"] == ["198.51.100.20"], inc
    # judged against the login on the other host: Berlin (host A, IMAP) then New York (host B, SMTP)
    assert "192.0.2.10" in json.dumps(inc["evidence"]) and "Berlin" in inc["summary"], inc
