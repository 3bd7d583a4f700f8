"""``acctwatch purge``: delete what is older than ``[store] retention`` (the daemon does it every hour)."""

from __future__ import annotations

import click

from ..config import ConfigError, load
from ..store import Store
from .common import emit_json


@click.command("purge")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: /etc/acctwatch/acctwatch.toml if it exists).")
@click.option("--db", help="The store (SQLAlchemy URL); default: [general] db of the config.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def cli(config_path: str | None, db: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete incidents, audit rows, sent notifications, bans and feedback older than their retention
    ([store] retention; defaults 365d, 365d, 30d, 30d, 400d). A held or locked account's incidents and audit
    trail are kept while it is held or locked; notifications not sent yet are never deleted."""
    from ..schema import retention

    try:
        cfg = load(config_path)
        keep, _ = retention(cfg.raw)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    store = Store(db or cfg.db_url)
    n = store.purge(keep, dry_run=dry_run)
    store.close()
    if as_json:
        emit_json({"dry_run": dry_run, "deleted" if not dry_run else "would_delete": n,
                   "retention_seconds": keep})
        return
    verb = "would delete" if dry_run else "deleted"
    from ..detectors.base import duration

    for fam, count in n.items():
        click.echo(f"{fam:<14} {verb} {count:>7} (older than {duration(keep[fam])})")
