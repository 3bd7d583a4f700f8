"""The README quick start: ``acctwatch replay examples/mail.log`` shows a real detection offline, with the
embedded country database and no configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from acctwatch.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCTWATCH_CONFIG", raising=False)
    monkeypatch.chdir(EXAMPLES.parent)


def test_quick_start_table() -> None:
    res = CliRunner().invoke(main, ["replay", "examples/mail.log"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "anna@example.org: would lock" in out
    assert "geo_countries" in out and "(BR, DE)" in out
    assert "send_burst" in out and "550 recipients in the last hour" in out
    assert "ben@example.org" not in out and "carla@example.org" not in out
    # anna's own German address is evidence, not the presumed attacker
    assert "presumed attacker: 200.147.67.142" in out and "presumed attacker: 80.133.12.40" not in out


def test_quick_start_jsonl() -> None:
    res = CliRunner().invoke(main, ["replay", "--jsonl", "examples/mail.log"])
    assert res.exit_code == 0, res.output
    incs = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    assert {(i["account"], i["detector"], i["action"]) for i in incs} == {
        ("anna@example.org", "geo_countries", "lock"), ("anna@example.org", "impossible_travel", "lock"),
        ("anna@example.org", "send_burst", "hold")}


def test_example_config_is_valid_and_replays_the_same() -> None:
    res = CliRunner().invoke(main, ["replay", "--jsonl", "-c", "examples/acctwatch.toml", "examples/mail.log"])
    assert res.exit_code == 0, res.output
    incs = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    assert {i["detector"] for i in incs} == {"geo_countries", "impossible_travel", "send_burst"}
