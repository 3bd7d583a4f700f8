"""``acctwatch run``: follow the live logs, detect, and respond (the daemon; see acctwatch.daemon)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import click

from ..config import ConfigError, load
from ..parsing import PatternError
from ..sources.files import SourceError
from ..store import Store, connect_error_is_fatal
from ..store import mask_url as _safe


@click.command("run")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: /etc/acctwatch/acctwatch.toml if it exists).")
@click.option("--from-start", is_flag=True,
              help="On first start (no checkpoint yet), read the existing content instead of starting at the end.")
@click.option("--db", help="Store URL (SQLAlchemy), overriding general.db (default: SQLite in the state dir).")
@click.option("--once", is_flag=True, help="Read what is there now, process and commit it, then exit.")
def cli(config_path: str | None, from_start: bool, db: str | None, once: bool) -> None:
    """Follow the configured log files and/or the journal and act on compromised accounts.

    Positions are committed with the incidents, so a restart (or a crash) resumes exactly where the last
    batch ended. SIGTERM/SIGINT finish the current batch and exit; SIGHUP reloads the config and patterns.
    """
    root = logging.getLogger()
    if root.level > logging.INFO:  # a daemon says what it follows and what it finds (stderr -> journal)
        root.setLevel(logging.INFO)
    try:
        cfg = load(config_path)
        if db:
            cfg.db = db
        store, daemon = _start(cfg, config_path, from_start, once)
        daemon.start_metrics()
    except (ConfigError, PatternError, SourceError) as exc:
        raise click.ClickException(str(exc)) from exc
    daemon.install_signals()
    rc = daemon.run()
    store.close()
    sys.exit(rc)




def _start(cfg: Any, config_path: str | None, from_start: bool, once: bool) -> tuple[Store, Any]:
    """The store and the daemon; while the database is unreachable, wait for it (logging once, then every
    minute): a daemon started at boot before its PostgreSQL/MariaDB must not crash-loop."""
    import sqlalchemy.exc

    from ..daemon import Daemon
    from ..sdnotify import SdNotify

    sd = SdNotify()
    log = logging.getLogger("acctwatch.run")
    t0 = time.monotonic()
    last = -1e9
    delay = 0.2
    while True:
        store: Store | None = None
        try:
            store = Store(cfg.db_url)
            daemon = Daemon(cfg, store, config_path=config_path or cfg.path, from_start=from_start, once=once)
            if time.monotonic() - t0 > 1:
                log.warning("the store is reachable; starting after %.0f s", time.monotonic() - t0)
            return store, daemon
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            if store is not None:
                store.close()
            first = str(exc.orig if getattr(exc, "orig", None) is not None else exc).splitlines()[0][:300]
            if connect_error_is_fatal(first):
                raise click.ClickException(f"cannot open the store {_safe(cfg.db_url)}: {first}\n"
                                           "Fix [general] db in the config (or --db).") from exc
            now = time.monotonic()
            if now - last >= 60:
                last = now
                log.warning("waiting for the store %s: %s", _safe(cfg.db_url), first)
            # (systemd: still starting, not hung; its start timeout is pushed on while we wait)
            sd.send("EXTEND_TIMEOUT_USEC=30000000", f"STATUS=waiting for the store: {first[:200]}")
            time.sleep(delay)
            delay = min(10.0, delay * 2)
