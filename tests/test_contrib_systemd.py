"""contrib/systemd/acctwatch.service: runs the daemon the way docs/running.md says, hardened, reloadable."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from acctwatch.cli import main

UNIT = Path(__file__).resolve().parent.parent / "contrib" / "systemd" / "acctwatch.service"


def unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(UNIT)
    return cp


def test_execstart_is_a_real_command_line() -> None:
    svc = unit()["Service"]
    argv = shlex.split(svc["ExecStart"])
    assert Path(argv[0]).name == "acctwatch" and argv[1] == "run"
    # every option the unit passes is one `acctwatch run` accepts
    run = main.get_command(None, "run")  # type: ignore[arg-type]
    assert run is not None
    known = {o for p in run.params for o in p.opts}
    assert all(a in known for a in argv[2:] if a.startswith("-"))
    assert svc["ExecReload"].endswith("-HUP $MAINPID")  # SIGHUP reloads config and patterns
    assert svc["KillSignal"] == "SIGTERM" and svc["Restart"] == "on-failure"


def test_hardening_and_state() -> None:
    svc = unit()["Service"]
    assert svc["ProtectSystem"] == "strict" and svc["NoNewPrivileges"] == "yes" and svc["PrivateTmp"] == "yes"
    assert svc["StateDirectory"] == "acctwatch"  # /var/lib/acctwatch: the default state_dir (SQLite store)
    assert "ACCTWATCH_CACHE_DIR=/var/lib/acctwatch/" in svc["Environment"]
    assert "journal" in svc["StandardError"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed here")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    p = tmp_path / "acctwatch.service"
    p.write_text(UNIT.read_text().replace("/usr/local/bin/acctwatch", shutil.which("true") or "/bin/true"))
    r = subprocess.run(["systemd-analyze", "verify", str(p)], capture_output=True, text=True, timeout=60)
    assert str(p) not in r.stderr, r.stderr  # it warns about unknown keys and bad values (exit code 0)
