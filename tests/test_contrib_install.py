"""``acctwatch contrib install``: the shipped files installed from the package (the wheel carries contrib/),
with this acctwatch's own path filled in; existing files kept unless --force."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from acctwatch.cli import main
from acctwatch.cli.contrib import KITS, acctwatch_path, contrib_dir

ROOT = Path(__file__).resolve().parents[1]


def test_install_writes_every_kit_with_this_acctwatchs_path(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["contrib", "install", "fail2ban", "systemd", "logrotate", "--dest", str(tmp_path)])
    assert r.exit_code == 0, r.output
    for files in KITS.values():
        for _src, dest in files:
            assert (tmp_path / dest.lstrip("/")).is_file(), dest
    cmd = acctwatch_path()
    unit = (tmp_path / "etc/systemd/system/acctwatch.service").read_text()
    assert f"ExecStart={cmd} run --config /etc/acctwatch/acctwatch.toml" in unit
    action = (tmp_path / "etc/fail2ban/action.d/acctwatch.conf").read_text()
    assert f"\nacctwatch_cmd = {cmd}\n" in action
    filt = (tmp_path / "etc/fail2ban/filter.d/acctwatch.conf").read_text()
    assert filt == (contrib_dir() / "fail2ban/filter.d/acctwatch.conf").read_text()
    # an admin's edit is kept unless --force
    (tmp_path / "etc/logrotate.d/acctwatch").write_text("# mine\n")
    r = CliRunner().invoke(main, ["contrib", "install", "logrotate", "--dest", str(tmp_path)])
    assert "kept" in r.output and (tmp_path / "etc/logrotate.d/acctwatch").read_text() == "# mine\n"
    CliRunner().invoke(main, ["contrib", "install", "logrotate", "--dest", str(tmp_path), "--force"])
    assert "/var/log/acctwatch/decisions.log" in (tmp_path / "etc/logrotate.d/acctwatch").read_text()


def test_the_logrotate_rule_is_valid(tmp_path: Path) -> None:
    tool = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not Path(tool).exists():
        pytest.skip("logrotate not installed")
    rule = (ROOT / "contrib/logrotate/acctwatch").read_text().replace("/var/log/acctwatch", str(tmp_path))
    (tmp_path / "decisions.log").write_text("x\n")
    conf = tmp_path / "acctwatch.logrotate"
    conf.write_text(rule.replace("create 0640 root adm", "create 0640 root root"))
    r = subprocess.run([tool, "-d", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr.lower()


def test_the_wheel_carries_contrib(tmp_path: Path) -> None:
    r = subprocess.run(["python3", "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q",
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    [whl] = tmp_path.glob("acctwatch-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    for files in KITS.values():
        for src, _dest in files:
            assert f"acctwatch/contrib/{src}" in names
