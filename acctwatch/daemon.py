"""``acctwatch run``: follow the live logs and run the same engine as ``replay``, with the response policy.

One loop, one thread (plus a reader thread per ``journalctl``):

1. poll every source for complete new lines (files: :mod:`acctwatch.sources.follow`, journal:
   :mod:`acctwatch.sources.journald`);
2. parse them and process the poll's events in event-time order across sources (Postfix's and Dovecot's
   own log files are merged as replay merges them);
3. commit incidents, detector state and every source's new position in **one transaction**
   (:meth:`Engine.flush` with ``also=``).

Crash safety follows from 3: after ``kill -9`` the positions in the store are those of the last committed
batch, and the detector state in the store is the one those positions led to; the lines after it are read
again and meet the same state, so they give the same incidents with the same ids
(:func:`acctwatch.engine.incident_id`). Side effects that already happened for them (a lock, an alert) are
not repeated because the response layer keys them by incident id (audit ``idem_key``, outbox
``dedupe_key``).

Checkpoint keys carry the instance name (``[sources] instance``, default: the host name), so several
instances (one per mail host) can share one PostgreSQL store; two instances that see the same lines
compute the same incident ids and the store's unique keys let only one of them act.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy.exc
from sqlalchemy.engine import Connection

from .config import Config, ConfigError, load, parse_duration
from .detectors import build
from .engine import Engine, Incident, merge_by_time
from .events import Event
from .headers import Clock
from .parsing import LineParser, PatternError, PatternSet
from .sources.follow import FileFollower, Run, expand_globs
from .sources.journald import DEFAULT_UNITS, JournalSource
from .store import Store

log = logging.getLogger(__name__)

DEFAULT_FILES = ("/var/log/mail.log",)
#: detector attributes that come from the config; everything else is learned state kept across SIGHUP
CONFIG_ATTRS = frozenset({"options", "policy", "ctx", "_overrides"})


@dataclass
class Settings:
    """``[sources]``: what to follow and how."""

    files: list[str] = field(default_factory=list)
    journald: bool = False
    journald_units: list[str] = field(default_factory=lambda: list(DEFAULT_UNITS))
    journald_identifiers: list[str] = field(default_factory=list)
    journalctl: str = "journalctl"
    journalctl_args: list[str] = field(default_factory=list)
    poll_interval: float = 0.5
    rotate_grace: float = 1.0
    batch_lines: int = 10_000
    instance: str = ""

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        src = dict(config.sources)
        where = f"{config.path or 'config'}: [sources]"
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(src) - known
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(known))})")
        s = cls()
        for key in ("files", "journald_units", "journald_identifiers", "journalctl_args"):
            if key in src:
                v = src[key]
                v = [v] if isinstance(v, str) else v
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise ConfigError(f"{where}: {key} must be a list of strings, got {v!r}")
                setattr(s, key, list(v))
        if "journald" in src:
            if not isinstance(src["journald"], bool):
                raise ConfigError(f"{where}: journald must be true or false")
            s.journald = src["journald"]
        for key in ("poll_interval", "rotate_grace"):
            if key in src:
                setattr(s, key, parse_duration(src[key], f"{where} {key}"))
        if s.poll_interval <= 0:
            raise ConfigError(f"{where}: poll_interval must be positive")
        if "batch_lines" in src:
            s.batch_lines = int(src["batch_lines"])
        s.journalctl = str(src.get("journalctl", s.journalctl))
        s.instance = config.instance
        if not s.files and not s.journald:
            s.files = list(DEFAULT_FILES)
        return s


def open_geo_or_none(config: Config) -> Any:
    """The configured GeoIP resolver; None (with a warning) when this build has no geo module yet."""
    try:
        from .app import open_geo

        return open_geo(config)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("acctwatch"):
            log.warning("no GeoIP support in this build (%s): geographic detectors see no locations", exc.name)
            return None
        raise


def attach_response(engine: Engine, config: Config, store: Store) -> Any:
    """Attach the response policy to *engine* as incident hooks; returns the Responder (or None).

    * :class:`acctwatch.actions.responder.Responder` (lock / hold / notify, dry-run, breaker);
    * the fail2ban decision log, when ``[decision_log]`` configures one.

    The hooks run while the batch is processed, before it is committed: after a crash the same incident
    comes again with the same id and the responder's idempotency keys (audit ``idem_key``, outbox
    ``dedupe_key``) make it a no-op; the decision log keeps its own (incident, ip) state file.
    """
    try:
        from .actions.responder import Responder
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("acctwatch.actions"):
            log.warning("no response module in this build: incidents are recorded; nothing is locked or notified")
            return None
        raise
    responder = Responder.attach(engine, store)
    try:
        from .actions.decisionlog import DecisionLog
    except ModuleNotFoundError:
        return responder
    dl = DecisionLog.from_config(config)
    if dl is not None:
        engine.hooks.append(dl)  # type: ignore[arg-type]
    return responder


#: while catching up on a backlog, batches are this many times [sources] batch_lines
CATCH_UP_FACTOR = 4
#: while catching up, full batches are committed together at most this often (seconds)
COMMIT_INTERVAL = 5.0


def _file_stamps(paths: list[str]) -> tuple[Any, ...]:
    """(inode, mtime, size) of each file, None when missing: tells a file replaced in place."""
    import os

    out = []
    for p in paths:
        try:
            st = os.stat(Path(p).expanduser())
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def check_response(responder: Any, config: Config, wait: float = 30.0,
                   sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """The response backends' self-checks (``Responder.self_check``): one line per problem. A database that
    does not answer yet (a boot where MariaDB comes up after acctwatch) is re-checked every 5 s for up to
    *wait* seconds; any other problem is reported at once."""
    if responder is None or not hasattr(responder, "self_check"):
        return []
    from .actions.lockers.sql import UNREACHABLE

    t0 = time.monotonic()
    while True:
        problems: list[str] = responder.self_check()
        if not problems or not all(UNREACHABLE in p for p in problems) or time.monotonic() - t0 >= wait:
            return problems
        log.warning("waiting for the lock backends' database: %s", problems[0])
        sleep(5.0)


def refuse_message(problems: list[str]) -> str:
    return ("enforce mode: these lock backends cannot work, so acctwatch does not start (fix them, or set "
            "[general] mode = \"dry-run\" to try without them):\n" + "\n".join(f"  {p}" for p in problems))


class Deliverer(threading.Thread):
    """Sends the queued notifications (outbox) from a thread of its own: a slow or unreachable notification
    service never delays log processing. Woken after each commit that touched an incident."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__(name="acctwatch-notify", daemon=True)
        self.interval = interval
        self.notifier: Any = None
        self.counts: Any = None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._down_logged = -1e9

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(self.interval)
            self.wake.clear()
            n = self.notifier
            if n is None:
                continue
            try:
                rep = n.deliver_pending()
                if self.counts is not None:
                    self.counts.inc("notifications", "sent", by=rep.sent)
                    self.counts.inc("notifications", "failed", by=rep.failed)
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
                now = time.monotonic()  # the store is down: the outbox waits for it (said once a minute)
                if now - self._down_logged >= 60:
                    self._down_logged = now
                    log.warning("notifications wait for the store: %s", str(exc).splitlines()[0][:200])
            except Exception:  # the next round retries; detection goes on
                log.exception("delivering notifications failed")

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()


@dataclass
class _Src:
    key: str  # checkpoint key
    reader: FileFollower | JournalSource
    parser: LineParser
    skipped: dict[str, int] = field(default_factory=dict)  # the parser's skip counts already counted


class StoreDown(RuntimeError):
    """The store was unreachable when the daemon was asked to stop: the last batch is read again at start."""


class Daemon:
    def __init__(self, config: Config, store: Store, *, config_path: str | Path | None = None,
                 from_start: bool = False, once: bool = False, engine: Engine | None = None,
                 patterns: PatternSet | None = None, geo: Any = None, respond: bool = True) -> None:
        self.config = config
        self.config_path = config_path
        self.store = store
        self.settings = Settings.from_config(config)
        self.from_start = from_start
        self.once = once
        self.patterns = patterns if patterns is not None else PatternSet.load(config.patterns_dirs)
        if engine is None:
            engine = Engine(config, store=store, geo=geo if geo is not None else open_geo_or_none(config),
                            scope=self.settings.instance)
        self.engine = engine
        from .metrics import METRICS_KEY, Counts

        self.counts = Counts(store.load_kv(engine.scope, METRICS_KEY))
        self._levels_seen: dict[str, str] = {}  # incident id -> the level last counted
        self.metrics_server: Any = None
        self._geo_stamp = _file_stamps(config.geoip_db)
        self.respond = respond
        self.responder: Any = None
        self._hook_base: list[Any] = [self._log_incident]
        self.engine.hooks[:0] = self._hook_base
        self.deliverer: Deliverer | None = None
        if respond:
            self.responder = attach_response(engine, config, store)
            self._count_actions()
            self._check_backends(config, at_start=True)
            self.deliverer = Deliverer()
            self.deliverer.counts = self.counts
            self.deliverer.notifier = getattr(self.responder, "notifier", None)
            if self.deliverer.notifier is not None:
                self.deliverer.notifier.take_over()
        self.sources: list[_Src] = []
        self._committed: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = False
        self._behind = False  # the last batch was full: reading a backlog
        self._last_commit = time.monotonic()
        self._batch_submissions: set[str] = set()  # queue ids of submissions parsed in this batch
        self.exit_code = 0
        self.on_commit: list[Callable[[list[Incident]], None]] = []
        self._batch_incidents: dict[str, Incident] = {}
        self.lines = 0
        self.events = 0
        self.errors = 0
        from .sdnotify import SdNotify

        self.sd = SdNotify()  # systemd's Type=notify (READY, WATCHDOG, STATUS); nothing without systemd
        self._open_sources()
        from .sources.bans import BanFollower

        # fail2ban's bans (`acctwatch report-ban`, rows in the store) join the event stream live too
        self.bans = BanFollower.resume(store, key=self._key("bans", "fail2ban"))

    # -- sources -----------------------------------------------------------------------------------
    def _key(self, kind: str, name: str) -> str:
        return f"{self.settings.instance}:{kind}:{name}"

    def _parser(self, name: str) -> LineParser:
        """The same parser as replay's: lines that can only give event kinds no detector consumes are dropped
        by the prefilter (the daemon catching up on a backlog reads as fast as a replay)."""
        return LineParser(self.patterns, Clock(zone=self.config.timezone, year=self.config.year), source=name,
                          kinds=self.engine.wanted_kinds(), queue_filter=self._queue_wanted)

    def _queue_wanted(self, queue_id: str) -> bool:
        """Whether a Postfix queue/delivery line matters: its queue id is in the engine's queue join (an
        authenticated submission), or was submitted earlier in this batch (parsed, not yet processed: Postfix
        logs the submission before its queue and delivery lines). Inbound mail, most of an MX's lines, is
        skipped before any regex, as in replay."""
        return queue_id in self.engine.join.table or queue_id in self._batch_submissions

    def _open_sources(self) -> None:
        s = self.settings
        have = {src.key for src in self.sources}
        for path in expand_globs(s.files):
            key = self._key("file", path)
            if key in have:
                continue
            cp = self.store.get_checkpoint(key)
            f = FileFollower(path, cp, from_start=self.from_start, rotate_grace=s.rotate_grace)
            where = ("from its start" if self.from_start else "from its end") if cp is None else \
                f"from the checkpoint (line {f.position()['lineno']})"
            log.info("following %s %s", path, where)
            self.sources.append(_Src(key, f, self._parser(path)))
            if cp is None:  # record where this first start began, before reading anything: a crash
                cp = f.position()  # before the first batch must not turn the next start into a "first" one
                with self.store.begin() as conn:
                    self.store.set_checkpoint(conn, key, cp)
            self._committed[key] = cp
        if s.journald:
            key = self._key("journald", "+".join(s.journald_units + s.journald_identifiers))
            if key not in have:
                cp = self.store.get_checkpoint(key)
                j = JournalSource(cp, from_start=self.from_start, units=s.journald_units,
                                  identifiers=s.journald_identifiers, command=s.journalctl,
                                  extra_args=s.journalctl_args, follow=not self.once)
                log.info("following the journal (%s) %s", " ".join(j.matches) or "all",
                         "after the checkpoint" if cp else ("from the start" if self.from_start else "from now"))
                self.sources.append(_Src(key, j, self._parser("journald")))
                if cp is not None:
                    self._committed[key] = cp

    def _count_actions(self) -> None:
        if self.responder is not None:
            self.responder.on_action = lambda level, backend, result: self.counts.inc(
                "actions", level, backend, result)

    def _log_incident(self, inc: Incident, new: bool) -> None:
        self._batch_incidents[inc.id] = inc
        if self._levels_seen.get(inc.id) != inc.action:  # opened at a level, or raised to one
            self._levels_seen[inc.id] = inc.action
            self.counts.inc("incidents", inc.detector, inc.action)
            if len(self._levels_seen) > 50_000:
                del self._levels_seen[next(iter(self._levels_seen))]
        if new:
            (log.info if inc.action == "watch" else log.warning)(
                "incident %s: %s [%s: %s]", inc.id, inc.summary, inc.detector, inc.action)

    # -- one batch ---------------------------------------------------------------------------------
    def poll_once(self) -> tuple[int, bool]:
        """Read, process and commit one batch. Returns (lines read, whether a source had more)."""
        streams: list[list[Event]] = []
        nlines = 0
        more = False
        # catching up on a backlog (the last batch was full): larger batches, i.e. fewer commits of the same
        # windows and profiles (each batch is still one transaction: a crash loses nothing)
        limit = self.settings.batch_lines * (CATCH_UP_FACTOR if self._behind else 1)
        for src in self.sources:
            runs: list[Run] = src.reader.poll_runs(limit)
            n = sum(len(r.raws) for r in runs)
            if n >= limit:
                more = True
            nlines += n
            parser = src.parser
            evs: list[Event] = []
            kinds: dict[str, int] = {}  # events per kind, counted once per batch (not a locked update per event)
            for run in runs:  # runs of consecutive lines of one file go through the parser's tight loop
                parser.source = run.file
                for ev in parser.iter_events(run.raws, run.lineno):
                    evs.append(ev)
                    kind = ev.kind
                    kinds[kind] = kinds.get(kind, 0) + 1
                    if kind == "message":
                        self._batch_submissions.add(ev.queue_id)  # type: ignore[attr-defined]
                self.counts.inc("lines_read", str(run.file), by=len(run.raws))
            for kind, k in kinds.items():
                self.counts.inc("events", kind, by=k)
            if runs:
                self._count_skips(src)
            if evs:
                streams.append(evs)
        try:
            new_bans = self.bans.poll()
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError):
            new_bans = []  # the store is down: the bans are read once it is back (the commit below waits)
        if new_bans:
            streams.insert(0, list(new_bans))  # (a tie with a log line: the ban first, as in replay)
        self.lines += nlines
        if streams:
            # each source in its own order, sources merged by event time: as replay does
            for ev in merge_by_time(streams):
                try:
                    self.engine.process(ev)
                except Exception:  # a bug must not stop the daemon; the line is named for the report
                    self.errors += 1
                    self.counts.inc("processing_errors")
                    log.exception("error processing %s line %d (skipped)", ev.source, ev.lineno)
                self.events += 1
        self._batch_submissions.clear()  # (processed: the join has them now)
        positions = {src.key: src.reader.position() for src in self.sources}
        changed = {k: v for k, v in positions.items() if self._committed.get(k) != v}
        # reading a backlog: full batches are committed together every COMMIT_INTERVAL seconds (a crash
        # re-reads from the last commit: nothing is lost, the same incidents come again with the same ids
        # and the responder's idempotency keys make them no-ops); otherwise, and when stopping, at once
        if (changed or self.engine._dirty or self.bans.moved) and (
                not more or self._stop.is_set() or time.monotonic() - self._last_commit >= COMMIT_INTERVAL):
            self._commit(changed)
            self._last_commit = time.monotonic()
        self._behind = more
        return nlines, more

    def _commit(self, changed: dict[str, dict[str, Any]]) -> None:
        def also(conn: Connection) -> None:
            for key, pos in changed.items():
                self.store.set_checkpoint(conn, key, pos)
            if self.bans.moved:
                self.bans.save(conn)
            if self.counts.dirty:
                from .metrics import METRICS_KEY

                self.store.save_kv(conn, self.engine.scope, METRICS_KEY, self.counts.row())

        outage: float | None = None  # when the store became unreachable
        last_log = 0.0
        attempt = 0
        while True:
            try:
                self.engine.flush(also=also)
                break
            except sqlalchemy.exc.IntegrityError as exc:
                # another instance wrote the same incident at the same moment: retry (a few times)
                attempt += 1
                if attempt > 5:
                    raise
                log.warning("store write conflicted (%s); retrying", str(exc).splitlines()[0][:200])
                time.sleep(0.05 * 2 ** attempt)
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
                # the database is down or restarting: nothing is lost while we wait (positions, windows and
                # incidents of this batch are committed together once it is back; nothing is read meanwhile)
                now = time.monotonic()
                self.counts.inc("store_errors")
                if outage is None:
                    outage = now
                if now - last_log >= 60.0:
                    last_log = now
                    log.warning("the store %s is unreachable (%s); retrying, nothing is lost",
                                self.store.safe_url, str(exc).splitlines()[0][:200])
                if self._stop.is_set():  # stopping while it is down: the next start re-reads the batch
                    raise StoreDown(str(exc).splitlines()[0][:300]) from exc
                self.sd.watchdog()  # waiting for the store is not hanging
                self.sd.status("waiting for the store (unreachable); nothing is lost")
                attempt += 1
                self._wake.wait(min(10.0, 0.1 * 2 ** min(attempt, 7)))
                self._wake.clear()
        if outage is not None:
            log.warning("the store is reachable again after %.0f s; carrying on", time.monotonic() - outage)
        if self.responder is not None and getattr(self.responder, "deferred", None):
            self.responder.retry_deferred()
        self._committed.update(changed)
        incs = list(self._batch_incidents.values())
        self._batch_incidents.clear()
        if incs and self.deliverer is not None:
            self.deliverer.wake.set()
        for cb in self.on_commit:
            cb(incs)

    # -- loop --------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload = True
        self._wake.set()

    def install_signals(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("%s: finishing the current batch, then exiting", signal.Signals(signum).name)
            self.stop()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _count_skips(self, src: _Src) -> None:
        from .metrics import SKIP_REASONS

        st = src.parser.stats
        for reason in SKIP_REASONS:
            now = int(getattr(st, reason, 0))
            delta = now - src.skipped.get(reason, 0)
            if delta > 0:
                self.counts.inc("lines_skipped", src.key, reason, by=delta)
                src.skipped[reason] = now

    def purge(self) -> dict[str, int]:
        """Apply ``[store] retention`` (at start, then every ``purge_interval``)."""
        from .schema import retention

        keep, _every = retention(self.config.raw)
        try:
            n = self.store.purge(keep)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            log.warning("purge skipped, the store is unreachable: %s", str(exc).splitlines()[0][:200])
            return {}
        if any(n.values()):
            log.info("purged what is older than its retention: %s",
                     ", ".join(f"{v} {k}" for k, v in n.items() if v))
        return n

    def start_metrics(self) -> None:
        """Serve /metrics when ``[metrics] listen`` asks for it."""
        listen = (self.config.metrics or {}).get("listen")
        if not listen or self.metrics_server is not None:
            return
        from .metrics import serve

        try:
            self.metrics_server = serve(self.store, self.engine.scope, self.counts, str(listen))
        except OSError as exc:
            raise ConfigError(f"[metrics] listen = {listen!r}: cannot listen there: {exc.strerror or exc}") from exc
        log.info("serving metrics on http://%s/metrics", listen)

    def run(self) -> int:
        sd = self.sd
        if self.deliverer is not None and not self.once:
            self.deliverer.start()
        log.info("acctwatch running as instance %r, store %s, poll interval %.2f s, mode %s",
                 self.settings.instance, self.store.safe_url, self.settings.poll_interval, self.config.mode)
        sd.ready(f"following {len(self.sources)} source(s), mode {self.config.mode}")
        last_status = 0.0
        import gc

        from .replay import GC_GEN0

        gc.freeze()  # what start-up built lives as long as the daemon: the cyclic collector leaves it alone
        t = gc.get_threshold()
        gc.set_threshold(max(t[0], GC_GEN0), t[1], t[2])
        from .schema import retention

        next_purge = 0.0  # at start, then every purge_interval
        try:
            while not self._stop.is_set():
                sd.watchdog()
                now = time.monotonic()
                if now >= next_purge and not self.once:
                    self.purge()
                    next_purge = now + retention(self.config.raw)[1]
                if sd.enabled and now - last_status >= 30:
                    last_status = now
                    lag = self._lag()
                    sd.status(f"{self.lines} lines, {self.events} events"
                              + (f", {lag:.0f} s behind the log" if lag is not None else "")
                              + f", mode {self.config.mode}")
                try:
                    n, more = self.poll_once()
                except StoreDown as exc:
                    log.error("stopped while the store was unreachable (%s): the last batch will be read "
                              "again at the next start", exc)
                    return 1
                if self._reload:
                    self._reload = False
                    self.reload()
                if self.once and n == 0 and self._finished():
                    break
                if more:
                    continue
                self._wake.wait(self.settings.poll_interval if not self.once else 0.05)
                self._wake.clear()
        finally:
            sd.stopping()
            self.close()
            gc.set_threshold(*t)
            gc.unfreeze()
        log.info("stopped after %d lines, %d events", self.lines, self.events)
        return self.exit_code

    def _lag(self) -> float | None:
        """Seconds between now and the event time of the newest line processed (how far behind the log)."""
        from .store import utcnow

        t = self.engine.last_event_time
        return max(0.0, (utcnow() - t).total_seconds()) if t is not None else None

    def _finished(self) -> bool:
        return all(src.reader.done if isinstance(src.reader, JournalSource) else True for src in self.sources)

    def close(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            self.metrics_server = None
        for src in self.sources:
            src.reader.close()
        if self.deliverer is not None:
            if self.deliverer.is_alive():
                self.deliverer.stop()
                self.deliverer.join(timeout=5)
            elif self.once and self.deliverer.notifier is not None:
                try:  # --once: send what this run queued before exiting
                    self.deliverer.notifier.deliver_pending()
                except Exception:
                    log.exception("delivering notifications failed")

    def _check_backends(self, config: Config, at_start: bool) -> bool:
        """Enforce mode refuses backends that cannot work (at start: ConfigError with one line per problem);
        dry-run says what enforce would refuse. True when all can work."""
        problems = check_response(self.responder, config)
        if self.responder is not None:
            self.responder.known_problems = list(problems)
        if problems and config.mode == "enforce":
            if at_start:
                raise ConfigError(refuse_message(problems))
            for p in problems:
                log.error("lock backend: %s", p)
            return False
        for p in problems:
            log.warning("lock backend (dry-run; enforce mode would refuse to start): %s", p)
        return not problems

    # -- SIGHUP --------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Reload the config and patterns; keep positions and everything the detectors learned."""
        if self.config_path is None:
            log.warning("SIGHUP: no config file to reload (started without one)")
            return
        try:
            cfg = load(self.config_path)
            settings = Settings.from_config(cfg)
            patterns = PatternSet.load(cfg.patterns_dirs)
            dets = build(cfg)
        except (ConfigError, PatternError, OSError) as exc:
            log.error("SIGHUP: reload failed, keeping the running configuration: %s", exc)
            return
        eng = self.engine
        old = {d.name: d for d in eng.detectors}
        for d in dets:
            o = old.get(d.name)
            if o is not None and type(o) is type(d):
                for k, v in vars(o).items():
                    if k not in CONFIG_ATTRS:
                        setattr(d, k, v)
        eng.config = cfg
        eng.detectors = dets
        eng.by_kind = {}
        for d in dets:
            for k in d.kinds:
                eng.by_kind.setdefault(k, []).append(d)
        eng.tracker.cooldown = cfg.incident_cooldown
        # reopened when the config changed or a database file was replaced in place (geoipupdate writes a new
        # file under the same name): read from now on, not the deleted old one the open reader still maps
        stamp = _file_stamps(cfg.geoip_db)
        if (cfg.geoip_db != self.config.geoip_db or stamp != self._geo_stamp
                or cfg.geoip_documentation_public != self.config.geoip_documentation_public):
            old_geo, eng.geo = eng.geo, open_geo_or_none(cfg)
            self._geo_stamp = stamp
            if old_geo is not None and old_geo is not eng.geo and hasattr(old_geo, "close"):
                old_geo.close()
            log.info("SIGHUP: GeoIP databases reopened")
        self.patterns = patterns
        kinds = eng.wanted_kinds()  # (the reloaded detectors may consume other kinds)
        for src in self.sources:
            src.parser.configure(patterns, kinds)
        keep_instance = settings.instance == self.settings.instance
        self.config, self.settings = cfg, settings
        if not keep_instance:
            log.error("SIGHUP: [sources] instance cannot change while running; restart acctwatch for that")
        wanted = {self._key("file", p) for p in expand_globs(settings.files)}
        if settings.journald:
            wanted.add(self._key("journald", "+".join(settings.journald_units + settings.journald_identifiers)))
        for src in [s for s in self.sources if s.key not in wanted]:
            log.info("no longer following %s", src.key)
            src.reader.close()
            self.sources.remove(src)
        self._open_sources()
        if self.respond:
            old_hooks = list(eng.hooks)
            eng.hooks[:] = list(self._hook_base)
            try:
                self.responder = attach_response(eng, cfg, self.store)
            except ConfigError as exc:
                log.error("SIGHUP: the new response configuration is invalid, keeping the old one: %s", exc)
                eng.hooks[:] = old_hooks
            else:
                self._count_actions()
                if not self._check_backends(cfg, at_start=False) and cfg.mode == "enforce":
                    log.error("SIGHUP: enforce mode with lock backends that cannot work: stopping (fix them "
                              "and start acctwatch again)")
                    self.exit_code = 1
                    self._stop.set()
            if self.deliverer is not None:
                self.deliverer.notifier = getattr(self.responder, "notifier", None)
        log.info("SIGHUP: configuration and patterns reloaded (%d detectors, %d sources)",
                 len(dets), len(self.sources))
