"""``acctwatch run``: follow the live logs, detect, and respond (the daemon; see acctwatch.daemon)."""

from __future__ import annotations

import logging
import sys

import click

from ..config import ConfigError, load
from ..parsing import PatternError
from ..sources.files import SourceError
from ..store import Store


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
    from ..daemon import Daemon

    root = logging.getLogger()
    if root.level > logging.INFO:  # a daemon says what it follows and what it finds (stderr -> journal)
        root.setLevel(logging.INFO)
    try:
        cfg = load(config_path)
        if db:
            cfg.db = db
        store = Store(cfg.db_url)
        daemon = Daemon(cfg, store, config_path=config_path or cfg.path, from_start=from_start, once=once)
    except (ConfigError, PatternError, SourceError) as exc:
        raise click.ClickException(str(exc)) from exc
    daemon.install_signals()
    rc = daemon.run()
    store.close()
    sys.exit(rc)
