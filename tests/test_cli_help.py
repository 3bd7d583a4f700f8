"""``acctwatch --help`` lists every command from the summary table, without importing any command."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from acctwatch.cli import COMMANDS, SUMMARIES, LazyGroup, main


def test_every_command_has_a_summary_and_loads() -> None:
    assert set(SUMMARIES) == set(COMMANDS)
    for name in COMMANDS:
        assert LazyGroup._load(name) is not None, name
        assert SUMMARIES[name].endswith(".") and len(SUMMARIES[name]) <= 64, name


def test_help_lists_every_command() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    listed = out.split("Commands:", 1)[1]
    for name, summary in SUMMARIES.items():
        assert f"  {name} " in listed and summary in listed


def test_help_imports_no_command_module() -> None:
    code = ("import sys\nfrom acctwatch.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.startswith('acctwatch.cli.') or m in "
            "('sqlalchemy', 'acctwatch.engine', 'acctwatch.store')]\n"
            "print(','.join(loaded), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stderr.strip() == ""
