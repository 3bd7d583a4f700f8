"""Replay archived logs through the engine: same input, same incidents, every time; nothing is changed.

Files are grouped into rotation chains (``mail.log.2.gz mail.log.1 mail.log`` is one chain, read oldest
first); several chains (e.g. Postfix's and Dovecot's own log files) are merged by event time.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from .engine import Engine, Incident, merge_by_time
from .events import Event
from .headers import Clock
from .parsing import LineParser, ParseStats, PatternSet
from .sources.files import describe, iter_batches, order_oldest_first, rotation_key

#: the cyclic collector's first-generation threshold during a replay (Python's default is 700)
GC_GEN0 = 50_000


@dataclass
class ReplayResult:
    incidents: list[Incident]
    stats: list[ParseStats] = field(default_factory=list)
    events: int = 0
    #: events skipped because their time was far from the log's clock (see Engine.process)
    skewed: int = 0
    #: the file each of ``stats`` is about (files are read in chains, rotated ones oldest first)
    sources: list[str] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(s.lines for s in self.stats)


def chains(names: list[str]) -> list[list[str]]:
    """Group rotated files by base name, each group oldest first, groups in the order first given."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n if n == "-" else rotation_key(n)[0] + "\x00" + _dir(n), []).append(n)
    return [order_oldest_first(g) for g in groups.values()]


def _dir(name: str) -> str:
    return os.path.dirname(os.path.abspath(name))


def _chain_events(names: list[str], patterns: PatternSet, zone: str, year: int | None,
                  stats: list[ParseStats], progress: Callable[[int], None] | None,
                  since: datetime | None, until: datetime | None,
                  queue_filter: Callable[[str], bool] | None = None,
                  kinds: frozenset[str] | None = None, sources: list[str] | None = None) -> Iterator[Event]:
    for name in names:
        info = describe(name)
        parser = LineParser(patterns, Clock(zone=zone, year=year, reference=info.mtime), source=name,
                            queue_filter=queue_filter, kinds=kinds)
        stats.append(parser.stats)
        if sources is not None:
            sources.append(name)
        batches = iter_batches(name)
        if progress is not None:
            batches = _counting(batches, progress)
        for ev in parser.iter_events(chain.from_iterable(batches)):
            if since is not None and ev.ts < since:
                continue
            if until is not None and ev.ts >= until:
                continue
            yield ev


def _counting(batches: Iterator[list[bytes]], progress: Callable[[int], None]) -> Iterator[list[bytes]]:
    """Pass batches of lines through, reporting the bytes read (with their line endings) to *progress*."""
    for lines in batches:
        yield lines
        progress(sum(map(len, lines)) + len(lines))


def replay(engine: Engine, files: list[str], patterns: PatternSet, zone: str = "local",
           year: int | None = None, since: datetime | None = None, until: datetime | None = None,
           progress: Callable[[int], None] | None = None, flush_every: int | None = None) -> ReplayResult:
    """Run *files* through *engine*. What it learned is written to its store once, at the end (the same rows
    as flushing along the way, in less time: a replay has no crash to survive; *flush_every* events
    flushes along the way)."""
    stats: list[ParseStats] = []
    sources: list[str] = []
    engine.persist_join = False  # archives: no restart to survive
    engine.join.track_changes = False
    engine.last_event_time = None  # (a replay's clock is its own: e.g. older archives replayed after newer)
    if engine.store is None or engine.store.url in ("sqlite://", "sqlite:///:memory:"):
        for d in engine.detectors:  # a private throw-away store: nothing learned needs saving
            d.track_changes = False
        if engine.profiles is not None:
            engine.profiles.track_changes = False
    kinds = engine.wanted_kinds()
    streams = [_chain_events(c, patterns, zone, year, stats, progress, since, until, engine.join.wanted, kinds,
                             sources) for c in chains(files)]
    if engine.store is not None:  # fail2ban bans recorded by `acctwatch report-ban` (first: a tie is a ban)
        from .sources.bans import ban_events, has_bans

        if has_bans(engine.store):
            streams.insert(0, ban_events(engine.store, since, until))
    seen: dict[str, Incident] = {}
    n = 0
    # The objects built at start-up (patterns, detectors, GeoIP readers, profiles loaded from a store) live
    # for the whole run: frozen, the cyclic collector no longer walks them; and it runs less often (most of
    # what a replay allocates is freed by reference counting, not by the collector).
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], GC_GEN0), thresholds[1], thresholds[2])
    try:
        for ev in merge_by_time(streams):
            for inc in engine.process(ev):
                seen[inc.id] = inc
            n += 1
            if flush_every and n % flush_every == 0:
                engine.flush()
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    for inc in engine.finish():
        seen[inc.id] = inc
    engine.flush()
    incidents = sorted(seen.values(), key=lambda i: (i.first_seen, i.account or "", i.detector))
    return ReplayResult(incidents, stats, n, engine.skewed, sources)
