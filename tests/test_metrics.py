"""Prometheus metrics (acctwatch/metrics.py): scraped over HTTP from a daemon that read a log, checked against
the log's own counts; the same numbers from ``acctwatch metrics`` (another process, after a restart too)."""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_daemon_support import FakeGeo, make_log, write_config

from acctwatch.cli import main
from acctwatch.config import ConfigError, load
from acctwatch.daemon import Daemon
from acctwatch.metrics import parse_listen
from acctwatch.store import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_over_http_match_the_log_and_survive_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    groups = make_log(30)
    lines = [x for g in groups for x in g] + ["x" * 20000, "Nov 99 99:99:99 mx dovecot: nonsense"]
    log.write_text("\n".join(lines) + "\n")
    port = _free_port()
    cfg = write_config(tmp_path / "c.toml", [str(log)], extra=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    db = f"sqlite:///{tmp_path / 's.db'}"
    d = Daemon(load(cfg), Store(db), config_path=cfg, geo=FakeGeo(), from_start=True)
    d.start_metrics()
    try:
        while d.poll_once()[0]:
            pass
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        d.close()
    m = _samples(text)
    assert m[f'acctwatch_lines_read_total{{source="{log}"}}'] == len(lines)
    logins = sum(1 for x in lines if "Login:" in x)
    assert m['acctwatch_events_total{kind="login"}'] == logins
    assert m[f'acctwatch_lines_skipped_total{{reason="too_long",source="test:file:{log}"}}'] == 1
    incs = Store(db).incidents()
    assert incs and sum(v for k, v in m.items() if k.startswith("acctwatch_incidents_total")) >= len(incs)
    for inc in incs:
        assert m[f'acctwatch_incidents_total{{detector="{inc["detector"]}",level="{inc["action"]}"}}'] >= 1
    assert m["acctwatch_store_up"] == 1 and m["acctwatch_processing_errors_total"] == 0
    assert "acctwatch_log_lag_seconds" in m and m["acctwatch_locks_active{level=\"lock\"}"] == 0
    # the textfile collector's command: the same counters, from the store, in another process
    r = CliRunner().invoke(main, ["metrics", "-c", str(cfg), "--db", db])
    assert r.exit_code == 0, r.output
    again = _samples(r.output)
    for k, v in m.items():
        if k.endswith("_total") or "_total{" in k:
            assert again[k] == v, k
    # a restart continues the counters (they never go back): one more line read
    with log.open("a") as fh:
        fh.write(groups[0][0] + "\n")
    d2 = Daemon(load(cfg), Store(db), config_path=cfg, geo=FakeGeo())
    try:
        d2.poll_once()
    finally:
        d2.close()
    out = tmp_path / "acctwatch.prom"
    assert CliRunner().invoke(main, ["metrics", "-c", str(cfg), "--db", db, "-o", str(out)]).exit_code == 0
    assert _samples(out.read_text())[f'acctwatch_lines_read_total{{source="{log}"}}'] == len(lines) + 1


def test_listen_values() -> None:
    assert parse_listen("127.0.0.1:9419") == ("127.0.0.1", 9419)
    assert parse_listen("[::1]:9419") == ("::1", 9419)
    assert parse_listen(":9419") == ("0.0.0.0", 9419)
    for bad in ("9419", "host:", "host:70000", "localhost:x"):
        with pytest.raises(ConfigError, match=r"\[metrics\] listen: expected host:port"):
            parse_listen(bad)
