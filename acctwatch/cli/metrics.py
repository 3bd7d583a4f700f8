"""``acctwatch metrics``: the daemon's metrics in Prometheus' text format, for the node exporter's textfile
collector (``acctwatch metrics > /var/lib/prometheus/node-exporter/acctwatch.prom``) when ``[metrics]
listen`` is not used."""

from __future__ import annotations

import click

from ..config import ConfigError, load
from ..store import Store


@click.command("metrics")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: /etc/acctwatch/acctwatch.toml if it exists).")
@click.option("--db", help="The store (SQLAlchemy URL); default: [general] db of the config.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write to this file atomically (for the textfile collector) instead of stdout.")
def cli(config_path: str | None, db: str | None, output: str | None) -> None:
    """Print the metrics the daemon serves at /metrics: its counters as last committed and the store's
    gauges (queued notifications, active locks, breaker, log lag)."""
    from ..metrics import exposition

    try:
        cfg = load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    store = Store(db or cfg.db_url)
    text = exposition(store, cfg.instance)
    store.close()
    if output:
        import os
        import tempfile

        d = os.path.dirname(os.path.abspath(output))
        fd, tmp = tempfile.mkstemp(prefix=".acctwatch-metrics.", dir=d)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    else:
        click.echo(text, nl=False)
