"""Replay of a generated realistic day (benchmarks/gen_log.py) through the library and the CLI: it finds
exactly the injected compromises, nothing on the benign look-alikes, and the same incidents every time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from acctwatch.app import build_engine
from acctwatch.cli import main
from acctwatch.config import load
from acctwatch.parsing import PatternSet
from acctwatch.replay import replay
from benchmarks.gen_log import Truth, generate

GEO = Path(__file__).resolve().parent / "fixtures" / "geo"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Truth]:
    d = tmp_path_factory.mktemp("replay")
    log = d / "mail.log"
    truth = generate(log, lines=20_000, seed=3)
    cfg = d / "acctwatch.toml"
    cfg.write_text(f'[general]\ntimezone = "UTC"\n\n[geoip]\ndatabases = ["{GEO / "test-city.mmdb"}", '
                   f'"{GEO / "test-asn.mmdb"}"]\ndocumentation_ranges_public = true\n', encoding="utf-8")
    return log, cfg, truth


def _lib(log: Path, cfg: Path) -> list[dict[str, Any]]:
    conf = load(cfg)
    res = replay(build_engine(conf, None), [str(log)], PatternSet.load(), zone="UTC")
    assert res.lines > 15_000 and res.events > 4_000  # rejects are not parsed: no detector consumes them
    return [i.to_dict() for i in res.incidents]


def _check(incs: list[dict[str, Any]], truth: Truth) -> None:
    found: dict[str, set[str]] = {}
    for i in incs:
        if i["account"] is not None:
            found.setdefault(i["account"], set()).add(i["detector"])
    assert found == truth.expected
    per_ip = {i["ips"][0] for i in incs if i["account"] is None}
    assert {i["detector"] for i in incs if i["account"] is None} == {"auth_failures_ip"}
    assert per_ip == truth.per_ip
    locks = {i["account"] for i in incs if i["action"] == "lock"}
    assert locks == {a for a, d in truth.expected.items() if d & {"geo_countries", "impossible_travel"}}
    assert not set(truth.benign) & set(found)
    actions = {(i["account"], i["detector"]): i["action"] for i in incs}
    assert actions[("vps@example.org", "send_burst")] == "hold"
    assert actions[("bf@example.org", "bruteforce_success")] == "notify"


def test_library_replay_finds_exactly_the_injected(day: tuple[Path, Path, Truth]) -> None:
    log, cfg, truth = day
    incs = _lib(log, cfg)
    _check(incs, truth)
    hop = next(i for i in incs if i["detector"] == "impossible_travel")
    assert hop["evidence"]["from"]["city"] == "Berlin" and hop["evidence"]["to"]["country"] == "AU"
    burst = next(i for i in incs if i["detector"] == "send_burst")
    assert burst["evidence"]["recipients_last_hour"] > 500


def test_two_runs_give_identical_incidents(day: tuple[Path, Path, Truth]) -> None:
    log, cfg, _ = day
    assert _lib(log, cfg) == _lib(log, cfg)


def test_cli_jsonl(day: tuple[Path, Path, Truth]) -> None:
    log, cfg, truth = day
    runs = []
    for _ in range(2):
        res = CliRunner().invoke(main, ["replay", "--jsonl", "-c", str(cfg), str(log)])
        assert res.exit_code == 0, res.output
        runs.append([json.loads(line) for line in res.stdout.splitlines() if line.strip()])
    assert runs[0] == runs[1]
    _check(runs[0], truth)
    for i in runs[0]:
        assert {"account", "detector", "action", "first_seen", "last_seen", "evidence"} <= set(i)


def test_cli_table(day: tuple[Path, Path, Truth]) -> None:
    log, cfg, truth = day
    res = CliRunner().invoke(main, ["replay", "-c", str(cfg), str(log)])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "hop@example.org: would lock" in out
    assert "vps@example.org: would hold mail" in out
    assert "bf@example.org: would notify" in out
    assert "[would lock] impossible_travel" in out and "Berlin" in out and "Sydney" in out
    for acct in truth.benign:
        assert acct not in out
    assert "Replay changes nothing" in out


def test_replay_into_a_store_seeds_learned_history(tmp_path: Path) -> None:
    """`acctwatch replay --db URL old-logs...` teaches new_country/send_baseline before going live."""
    from acctwatch.config import from_dict
    from acctwatch.engine import Engine
    from acctwatch.replay import replay
    from acctwatch.store import Store

    log = tmp_path / "old.log"
    log.write_text("".join(
        f"2026-11-{d:02d}T08:00:00+00:00 mx dovecot: imap-login: Login: user=<h@example.org>, method=PLAIN, "
        f"rip=192.0.2.10, lip=192.0.2.1, mpid=1, TLS, session=<s{d}>\n" for d in range(1, 20)))
    url = f"sqlite:///{tmp_path / 's.db'}"
    from acctwatch.geo import GeoResolver

    geo = GeoResolver.open([Path(__file__).resolve().parent / "fixtures" / "geo" / "test-city.mmdb"],
                           treat_documentation_as_public=True)
    replay(Engine(from_dict({}), store=Store(url), geo=geo), [str(log)], PatternSet.load(), zone="UTC")
    saved = Store(url).load_kv("", "new_country")
    assert "h@example.org" in saved and saved["h@example.org"][2] == 19  # 19 logins learned
