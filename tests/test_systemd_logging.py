"""The daemon under systemd: syslog priorities on stderr when it is the journal, apprise's chatter kept at
debug, one line per failure (tracebacks with -v), and the sd_notify protocol (READY, WATCHDOG, STATUS,
STOPPING) over a real unix datagram socket."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from acctwatch.cli import main
from acctwatch.logsetup import Formatter, stderr_is_journal
from acctwatch.sdnotify import SdNotify


def _record(level: int, msg: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("acctwatch.x", level, __file__, 1, msg, None, exc_info)


def test_journal_lines_carry_their_syslog_priority() -> None:
    f = Formatter(journal=True, tracebacks=False)
    assert f.format(_record(logging.WARNING, "incident 1: a@x ...")).startswith("<4>acctwatch: WARNING: ")
    assert f.format(_record(logging.ERROR, "backend sql failed")).startswith("<3>")
    assert f.format(_record(logging.INFO, "following /var/log/mail.log")).startswith("<6>")
    assert f.format(_record(logging.DEBUG, "x")).startswith("<7>")
    assert not Formatter(journal=False, tracebacks=False).format(_record(logging.WARNING, "x")).startswith("<")


def test_a_failure_is_one_line_without_v_and_a_traceback_with_it() -> None:
    try:
        raise ConnectionRefusedError("connection to 127.0.0.1:3306 refused")
    except ConnectionRefusedError as exc:
        err = exc
    short = Formatter(journal=True, tracebacks=False).format(_record(logging.ERROR, "lock backend sql failed", err))
    assert short == ("<3>acctwatch: ERROR: lock backend sql failed: ConnectionRefusedError: connection to "
                     "127.0.0.1:3306 refused")
    long = Formatter(journal=False, tracebacks=True).format(_record(logging.ERROR, "lock backend sql failed", err))
    assert "Traceback (most recent call last)" in long


def test_stderr_is_the_journal_only_when_journal_stream_names_it(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert not stderr_is_journal()
    fh = open(tmp_path / "err", "w")  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", fh)
    st = os.fstat(fh.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert stderr_is_journal()
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
    assert not stderr_is_journal()
    fh.close()


def test_apprise_chatter_is_kept_at_debug() -> None:
    from acctwatch.logsetup import setup

    setup(0)
    assert logging.getLogger("apprise").getEffectiveLevel() == logging.WARNING
    setup(2)
    assert logging.getLogger("apprise").getEffectiveLevel() == logging.DEBUG
    setup(0)


@pytest.fixture()
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield s
    s.close()


def _messages(s: socket.socket) -> list[str]:
    out = []
    s.settimeout(0.2)
    try:
        while True:
            out.append(s.recv(4096).decode())
    except TimeoutError:
        return out


def test_sd_notify_watchdog_pings_at_half_its_timeout(notify_socket: socket.socket,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    sd = SdNotify()
    assert sd.enabled and sd.watchdog_interval == 1.0
    sd.watchdog()
    sd.watchdog()  # not due again yet
    assert _messages(notify_socket) == ["WATCHDOG=1"]
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert SdNotify().watchdog_interval == 0.0
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not SdNotify().enabled and not SdNotify().send("READY=1")


def test_the_daemon_tells_systemd_it_is_ready_and_stopping(notify_socket: socket.socket, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[general]\nstate_dir = "{tmp_path / "state"}"\n[sources]\nfiles = ["{log}"]\n')
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once"])
    assert r.exit_code == 0, r.output
    msgs = _messages(notify_socket)
    assert msgs[0].startswith("READY=1\nSTATUS=following 1 source(s), mode dry-run")
    assert msgs[-1] == "STOPPING=1"
