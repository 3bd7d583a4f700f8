"""The README's install recipe for Debian 12 / Ubuntu 24.04 (PEP 668: no pip outside a venv): a venv of its
own, `pip install .` into it, `acctwatch contrib install` from the installed package (no checkout), and the
installed command works. Needs the package index (CI has it); locally it runs with ACCTWATCH_TEST_VENV=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (REQUIRE_SERVICES or os.environ.get("ACCTWATCH_TEST_VENV")),
                    reason="installs into a fresh venv from the package index: CI, or ACCTWATCH_TEST_VENV=1")
def test_the_readme_venv_recipe_works_without_a_checkout(tmp_path: Path) -> None:
    venv = tmp_path / "opt-acctwatch"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True, text=True,
                         timeout=900)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    aw = venv / "bin" / "acctwatch"
    work = tmp_path / "elsewhere"  # not the checkout: everything comes from the installed package
    work.mkdir()
    r = subprocess.run([str(aw), "contrib", "install", "systemd", "fail2ban", "logrotate", "--dest",
                        str(tmp_path / "root")], capture_output=True, text=True, cwd=work, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    unit = (tmp_path / "root/etc/systemd/system/acctwatch.service").read_text()
    assert f"ExecStart={aw} run --config /etc/acctwatch/acctwatch.toml" in unit
    assert f"acctwatch_cmd = {aw}" in (tmp_path / "root/etc/fail2ban/action.d/acctwatch.conf").read_text()
    r = subprocess.run([str(aw), "replay", str(ROOT / "examples" / "mail.log")], capture_output=True, text=True,
                       cwd=work, timeout=120)
    assert r.returncode == 0 and "would hold mail" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([str(aw), "patterns", "test"], capture_output=True, text=True, cwd=work, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
