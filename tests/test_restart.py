"""Restart-exactness as a property: a realistic log cut at many points (inside attacks too), the engine
stopped there (everything committed, as the daemon does at SIGTERM) and a new engine started from the
store, gives exactly the incidents (ids, levels, escalations, evidence) of one uninterrupted run.

Every detector's windows, the familiarity profiles, the queue join and the incident tracker must either be
saved with the commit or rebuilt from the store. Both presets are checked: the default one (familiarity,
account_risk, send_burst, bounce_ratio, ip_spread, auth failures, send_baseline) and `seed` (the single
rules: geo_countries, impossible_travel, bruteforce_success, banned_ip_login, new_country...). Kill -9 at
random points of a real daemon is tests/test_daemon.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from acctwatch.app import open_geo
from acctwatch.config import from_dict
from acctwatch.engine import Engine
from acctwatch.headers import Clock
from acctwatch.parsing import LineParser, PatternSet
from acctwatch.store import Store

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import simpop  # noqa: E402

BATCH = 5000  # events per commit (the daemon commits every batch of lines)


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("pop")
    truth = simpop.generate(out, 50, 9, seed=3)
    lines: list[bytes] = []
    for name in ("mail-week1.log", "mail-week2.log"):
        lines += (out / name).read_bytes().splitlines()
    return lines, truth["attacks"]


@pytest.fixture(scope="module")
def geo() -> Any:
    return open_geo(from_dict({}))


def _run(engine: Engine, lines: list[bytes], patterns: PatternSet, start: int) -> None:
    parser = LineParser(patterns, Clock(zone="UTC", year=2026), source="mail.log",
                        queue_filter=engine.join.wanted, kinds=engine.wanted_kinds())
    for n, ev in enumerate(parser.iter_events(iter(lines), start=start), 1):
        engine.process(ev)
        if n % BATCH == 0:
            engine.flush()
    engine.flush()


def _incidents(url: str) -> dict[str, Any]:
    store = Store(url)
    try:
        return {r["id"]: json.loads(json.dumps(
            {k: r[k] for k in ("account", "detector", "action", "first_seen", "last_seen", "detected_at",
                               "escalations", "evidence", "ips", "summary", "updated")}, default=str))
            for r in store.incidents()}
    finally:
        store.close()


def _cuts(lines: list[bytes], attacks: list[dict[str, Any]], n: int = 2) -> list[int]:
    """Cut points: evenly spread, plus just after the first malicious event of a few attacks."""
    cuts = {len(lines) * (k + 1) // (n + 1) for k in range(n)}
    stamps = [line[:19].decode() for line in lines]
    for a in attacks[::4]:
        start = a["start"][:19]
        i = next((k for k, s in enumerate(stamps) if s >= start), None)
        if i is not None and 0 < i + 3 < len(lines):
            cuts.add(i + 3)
    return sorted(cuts)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["familiarity", "seed"])
def test_a_restart_at_any_point_changes_nothing(preset: str, population: tuple[list[bytes], list[dict[str, Any]]],
                                                geo: Any, tmp_path: Path) -> None:
    lines, attacks = population
    cfg = from_dict({"general": {"preset": preset}})
    patterns = PatternSet.load([])
    whole = f"sqlite:///{tmp_path / 'whole.db'}"
    _run(Engine(cfg, Store(whole), geo=geo), lines, patterns, 1)
    want = _incidents(whole)
    assert len(want) >= 20 and {i["action"] for i in want.values()} >= {"notify", "hold", "lock"}
    for cut in _cuts(lines, attacks):
        url = f"sqlite:///{tmp_path / f'cut{cut}.db'}"
        _run(Engine(cfg, Store(url), geo=geo), lines[:cut], patterns, 1)
        _run(Engine(cfg, Store(url), geo=geo), lines[cut:], patterns, cut + 1)  # a new process
        got = _incidents(url)
        missing, extra = set(want) - set(got), set(got) - set(want)
        assert not missing and not extra, (cut, [want[i]["summary"] for i in missing],
                                           [got[i]["summary"] for i in extra])
        for iid, inc in want.items():
            assert got[iid] == inc, (cut, iid)


def test_a_failed_commit_loses_no_learned_state(population: tuple[list[bytes], list[dict[str, Any]]], geo: Any,
                                                tmp_path: Path) -> None:
    """A transaction that fails (the database restarting, a conflict with another instance) is retried by
    the daemon; what it should have written is kept and written by the next commit."""
    lines, _ = population
    cfg = from_dict({})
    patterns = PatternSet.load([])
    cut = len(lines) // 3
    whole_url = f"sqlite:///{tmp_path / 'whole.db'}"
    whole = Engine(cfg, Store(whole_url), geo=geo)
    _run(whole, lines[:cut], patterns, 1)
    url = f"sqlite:///{tmp_path / 'fail.db'}"
    eng = Engine(cfg, Store(url), geo=geo)
    parser = LineParser(patterns, Clock(zone="UTC", year=2026), source="mail.log",
                        queue_filter=eng.join.wanted, kinds=eng.wanted_kinds())
    for ev in parser.iter_events(iter(lines[:cut])):
        eng.process(ev)

    def boom(_conn: Any) -> None:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        eng.flush(also=boom)  # everything of the first third, rolled back
    eng.flush()  # the retry
    for name in ("_profiles", "account_risk", "send_burst", "ip_spread"):
        assert Store(url).load_kv("", name) == Store(whole_url).load_kv("", name), name
