"""``acctwatch report-ban IP --jail NAME``: record a fail2ban ban in acctwatch's store.

Called by ``contrib/fail2ban/action.d/acctwatch.conf`` for every ban of the jails it is added to. It must
start fast and fail clearly (fail2ban logs its stderr): it imports only the config and the store.
Exit status: 0 recorded (or already recorded), 1 the store failed, 2 bad arguments or configuration.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import click

from ..ipaddr import ip_text

_JAIL = re.compile(r"^[^\x00-\x1f\x7f\s'\"]{1,128}$")


def _parse_ip(value: str) -> str:
    addr = ip_text(value)
    if addr is None:
        raise click.BadParameter(f"{value!r} is not an IPv4 or IPv6 address", param_hint="IP")
    return addr


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        if re.fullmatch(r"\d+(?:\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC).replace(microsecond=0)
        dt = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError) as exc:
        raise click.BadParameter(f"{value!r}: use ISO 8601 (2026-11-26T07:11:57+00:00) or Unix seconds",
                                 param_hint="--at") from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _safe_url(url: str) -> str:
    try:
        import sqlalchemy

        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.rsplit("@", 1)[-1]


@click.command("report-ban")
@click.argument("ip")
@click.option("--jail", required=True, help="The fail2ban jail that banned it (fail2ban's <name>).")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: /etc/acctwatch/acctwatch.toml if it exists); gives the store.")
@click.option("--db", help="Store URL (SQLAlchemy), overriding the config's [general] db.")
@click.option("--at", "at", help="When the ban happened (ISO 8601 or Unix seconds; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded ban as JSON.")
def report_ban(ip: str, jail: str, config_path: str | None, db: str | None, at: str | None,
               as_json: bool) -> None:
    """Record that fail2ban banned IP (from jail NAME), for acctwatch's detectors.

    A later successful login from that IP is strong evidence that the account's password was found by
    brute force. Add contrib/fail2ban/action.d/acctwatch.conf to your jails to call this on every ban.
    """
    addr = _parse_ip(ip)
    jail = jail.strip()
    if not _JAIL.match(jail):
        raise click.BadParameter(f"{jail!r}: a jail name of 1-128 characters without spaces or quotes",
                                 param_hint="--jail")
    ts = _parse_at(at)
    from ..config import ConfigError, load

    try:
        cfg = load(config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    url = db or cfg.db_url
    try:
        from ..store import Store

        store = Store(url)
        try:
            new = store.add_ban(addr, jail, ts)
        finally:
            store.close()
    except Exception as exc:  # any driver/OS error: one clear line for fail2ban's log, exit 1
        safe = _safe_url(url)
        click.echo(f"acctwatch report-ban: cannot record the ban of {addr} (jail {jail}) in {safe}: "
                   f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", err=True)
        raise SystemExit(1) from exc
    if as_json:
        click.echo(json.dumps({"ip": addr, "jail": jail, "ts": ts.isoformat().replace("+00:00", "Z"),
                               "recorded": new}))
    elif not new:
        click.echo(f"ban of {addr} (jail {jail}) at {ts.isoformat()} was already recorded", err=True)
