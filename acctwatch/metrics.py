"""Prometheus metrics (the standard client library, ``prometheus_client``).

Two kinds, one collector:

* **counters the daemon counts** as it works: lines read per source, lines skipped per source and reason,
  events per kind, incidents per detector and level reached, lock-backend actions per backend and result,
  notifications sent / failed, processing and store errors. They are kept in :class:`Counts`, saved in the
  store with every commit (key ``_metrics``), so they survive restarts (counters never go back) and
  ``acctwatch metrics`` (another process: the node exporter's textfile collector) prints the same numbers;
* **gauges read from the store** at each scrape: notifications queued, active locks per level, the circuit
  breaker, the log time reached and how far it is behind now (``acctwatch_log_lag_seconds``).

``[metrics] listen = "127.0.0.1:9419"`` serves ``/metrics`` from the daemon (off by default).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

METRICS_KEY = "_metrics"

#: counter name -> (help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lines_read": ("Log lines read, per source", ("source",)),
    "lines_skipped": ("Lines skipped before parsing (too long, invalid UTF-8, no header, bad time or field), "
                      "per source and reason", ("source", "reason")),
    "events": ("Events parsed from the logs, per kind", ("kind",)),
    "incidents": ("Incidents that reached a level (opened at it or raised to it), per detector and level",
                  ("detector", "level")),
    "actions": ("Lock backend actions, per level, backend and result", ("level", "backend", "result")),
    "notifications": ("Notifications delivered, per result (sent, failed)", ("result",)),
    "processing_errors": ("Events whose processing failed (a bug: see the log)", ()),
    "store_errors": ("Commits that failed because the store was unreachable", ()),
}
SKIP_REASONS = ("too_long", "invalid_utf8", "no_header", "bad_time", "bad_field")


class Counts:
    """The daemon's counters: thread-safe (the notification thread counts too), JSON-able for the store."""

    def __init__(self, saved: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, dict[str, float]] = {k: {} for k in COUNTERS}
        for name, series in ((saved or {}).get("counters") or {}).items():
            if name in self.values and isinstance(series, dict):
                self.values[name] = {str(k): float(v) for k, v in series.items() if isinstance(v, int | float)}
        self.dirty = False

    def inc(self, name: str, *labels: str, by: float = 1.0) -> None:
        if not by:
            return
        key = "\x1f".join(labels)
        with self._lock:
            d = self.values[name]
            d[key] = d.get(key, 0.0) + by
            self.dirty = True

    def row(self) -> dict[str, Any]:
        with self._lock:
            self.dirty = False
            return {"counters": {k: dict(v) for k, v in self.values.items()}}

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {k: dict(v) for k, v in self.values.items()}


class Collector:
    """A prometheus_client collector: the counters (live, or as last saved) and the store's gauges."""

    def __init__(self, store: Any, scope: str, counts: Counts | None = None) -> None:
        self.store = store
        self.scope = scope
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        counts = self.counts if self.counts is not None else Counts(self._kv(METRICS_KEY))  # (as last saved)
        values = counts.snapshot()
        for name, (text, labels) in COUNTERS.items():
            fam = CounterMetricFamily(f"acctwatch_{name}", text, labels=list(labels))
            series = values.get(name, {})
            if not labels and not series:
                fam.add_metric([], 0.0)
            for key, v in sorted(series.items()):
                parts = key.split("\x1f") if labels else []
                if len(parts) == len(labels):
                    fam.add_metric(parts, v)
            yield fam
        yield from self._gauges(GaugeMetricFamily)

    def _kv(self, name: str) -> dict[str, Any]:
        try:
            return self.store.load_kv(self.scope, name)
        except Exception:
            return {}

    def _gauges(self, gauge: Any) -> Iterator[Any]:
        from .store import utcnow

        up = gauge("acctwatch_store_up", "1 when the store answered this scrape", labels=[])
        try:
            pending = self.store.outbox_rows(pending_only=True)
            locks = self.store.locks()
            breaker = any(self.store.get_meta(f"breaker:{m}") for m in ("enforce", "dry-run"))  # BREAKER_KEY
        except Exception:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        q = gauge("acctwatch_notifications_queued", "Notifications waiting in the outbox (not sent yet)", labels=[])
        q.add_metric([], float(len(pending)))
        yield q
        lk = gauge("acctwatch_locks_active", "Accounts held or locked now, per level", labels=["level"])
        for level in ("hold", "lock"):
            lk.add_metric([level], float(sum(1 for x in locks if x["level"] == level)))
        yield lk
        b = gauge("acctwatch_breaker_open", "1 while the circuit breaker stops automatic locking", labels=[])
        b.add_metric([], 1.0 if breaker else 0.0)
        yield b
        clock = self._kv("_engine").get("clock")
        if clock:
            t = datetime.fromisoformat(str(clock).replace("Z", "+00:00"))
            last = gauge("acctwatch_last_event_timestamp_seconds", "Event time of the newest line processed",
                         labels=[])
            last.add_metric([], t.timestamp())
            yield last
            lag = gauge("acctwatch_log_lag_seconds", "How far behind now the newest processed line is (seconds)",
                        labels=[])
            lag.add_metric([], max(0.0, (utcnow() - t).total_seconds()))
            yield lag


def registry_for(store: Any, scope: str, counts: Counts | None = None) -> Any:
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Collector(store, scope, counts))  # type: ignore[arg-type]
    return reg


def exposition(store: Any, scope: str, counts: Counts | None = None) -> str:
    """The metrics in Prometheus' text format (what /metrics serves, what the textfile collector reads)."""
    from prometheus_client import generate_latest

    return generate_latest(registry_for(store, scope, counts)).decode("utf-8")


def parse_listen(value: Any, where: str = "[metrics] listen") -> tuple[str, int]:
    """``"127.0.0.1:9419"``, ``"[::1]:9419"`` or ``":9419"`` (all addresses) -> (host, port)."""
    from .config import ConfigError

    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected host:port such as \"127.0.0.1:9419\", got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def serve(store: Any, scope: str, counts: Counts, listen: str) -> Any:
    """Start the /metrics HTTP server in a thread (prometheus_client's own); returns the server."""
    from prometheus_client import start_http_server

    host, port = parse_listen(listen)
    server, _thread = start_http_server(port, addr=host, registry=registry_for(store, scope, counts))
    return server
