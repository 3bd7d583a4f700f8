"""``acctwatch profile ACCOUNT`` and ``acctwatch trust ACCOUNT NETWORK``: what is familiar for an account,
and an operator's word on it."""

from __future__ import annotations

from typing import Any

import click

from ..config import ConfigError
from .common import emit_json
from .response import _config_opt, _db_opt, _json_opt, _open


def _profiles(cfg: Any, store: Any) -> Any:
    from ..daemon import Settings
    from ..engine import PROFILES_KEY
    from ..profiles import Profiles

    try:
        profiles = Profiles.from_config(cfg)
        scope = Settings.from_config(cfg).instance
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = store.load_kv(scope, PROFILES_KEY) or store.load_kv("", PROFILES_KEY)  # "": built by replay --db
    profiles.import_rows(rows)
    return profiles


@click.command("profile")
@click.argument("account")
@_config_opt
@_db_opt
@_json_opt
def profile(account: str, config_path: str | None, db: str | None, as_json: bool) -> None:
    """ACCOUNT's familiarity profile: its networks and countries, which are familiar and since when.

    Profiles are learned from successful logins by `acctwatch run` (and `acctwatch replay --db`, the way
    to start a new deployment warm from old logs)."""
    cfg, store = _open(config_path, db)
    view = _profiles(cfg, store).view(account)
    pending = [r for r in store.feedback_since(0, account)]
    if as_json:
        emit_json({"profile": view, "feedback": [{k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                                  for k, v in r.items()} for r in pending]})
        if view is None:
            raise SystemExit(1)
        return
    if view is None:
        click.echo(f"No profile for {account}: no successful login of it was learned yet "
                   "(or it was forgotten after the retention).")
        if pending:
            click.echo(f"{len(pending)} operator decision(s) are recorded for it and apply once it logs in.")
        raise SystemExit(1)
    click.echo(f"{view['account']}: {view['state']} profile, {view['logins']} logins from "
               f"{view['first_seen'][:16]} to {view['last_seen'][:16]} UTC")
    if view["sending_peak_recipients_per_day"]:
        click.echo(f"  busiest sending day from familiar networks: {view['sending_peak_recipients_per_day']} "
                   "recipients")
    click.echo("\nNetworks (most used first):")
    for n in view["networks"]:
        since = f" since {n['familiar_since'][:16]}" if n["familiar_since"] else ""
        extra = f", {n['country']}" if n.get("country") else ""
        shared = f", familiar to {n['shared_by_accounts']} accounts" if n.get("shared_by_accounts", 0) > 1 else ""
        cls = n["class"] + ("*" if n.get("whole_provider") else "")
        click.echo(f"  {n['key']:<22} {cls:<11} {n['state']:<9}{since:<23} {n['logins']:>6} logins, "
                   f"{n['occasions']} occasions{extra}{shared}")
    if any(n.get("whole_provider") for n in view["networks"]):
        click.echo("  (* a datacenter/VPN provider as a whole: another of its networks is not new)")
    click.echo("\nCountries:")
    for c in view["countries"]:
        since = f" since {c['familiar_since'][:16]}" if c["familiar_since"] else ""
        click.echo(f"  {c['key']:<4} {c['state']:<9}{since:<23} {c['logins']:>6} logins")
    if view["clients"]:
        click.echo("\nClients (service/method):")
        for c in view["clients"]:
            click.echo(f"  {c['client']:<22} {c['logins']:>6} logins, last {c['last_seen'][:16]}")
    if view.get("client_names"):
        click.echo("\nClient names (IMAP ID, as the client claims; Dovecot imap_id_log):")
        for c in view["client_names"]:
            version = f" {c['version']}" if c.get("version") else ""
            click.echo(f"  {c['name'] + version:<30} {c['sessions']:>6} sessions, first {c['first_seen'][:16]}, "
                       f"last {c['last_seen'][:16]}")
    if pending:
        click.echo("\nOperator decisions:")
        for r in pending:
            click.echo(f"  {r['ts']:%Y-%m-%d %H:%M} {r['action']} {r['network']} by {r['actor']}"
                       + (f" ({r['note']})" if r["note"] else ""))


@click.command("trust")
@click.argument("account")
@click.argument("network")
@click.option("--untrust", is_flag=True, help="The opposite: NETWORK is not the owner's (never familiar).")
@click.option("--note", default="", help="Why (kept with the decision).")
@_config_opt
@_db_opt
@_json_opt
def trust(account: str, network: str, untrust: bool, note: str, config_path: str | None, db: str | None,
          as_json: bool) -> None:
    """Make NETWORK familiar for ACCOUNT at once (e.g. a user's new VPN before a trip).

    NETWORK is an IP address (its network is taken: the ASN of an ISP, the /24 in a datacenter), a CIDR,
    or an AS number (AS3320). The running daemon picks it up at its next commit."""
    from ..actions.responder import whoami

    cfg, store = _open(config_path, db)
    profiles = _profiles(cfg, store)
    geo = None
    try:
        from ..app import open_geo

        geo = open_geo(cfg)
    except Exception:  # without a database the key of a bare IP is its /24: still a valid decision
        geo = None
    key = profiles.network_key(network, geo)
    if key is None:
        raise click.ClickException(f"{network!r} is not an IP address, a network (CIDR) or an AS number (AS3320)")
    action = "untrust" if untrust else "trust"
    with store.begin() as conn:
        store.add_feedback(conn, account=account, action=action, network=network, actor=whoami(), note=note)
        store.audit(conn, action=action, result="ok", account=account.lower(), actor=whoami(),
                    detail=f"{network} (network {key})" + (f": {note}" if note else ""))
    if as_json:
        emit_json({"account": account.lower(), "action": action, "network": network, "key": key})
        return
    click.echo(f"{account}: network {key} ({network}) is now " + ("never familiar." if untrust else "familiar."))
