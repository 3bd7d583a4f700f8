"""``acctwatch notify test``: send a sample alert through the configured targets, and say how each fared."""

from __future__ import annotations

import click

from ..config import ConfigError, load
from ..store import Store
from .common import emit_json


@click.group("notify")
def cli() -> None:
    """Notifications (apprise): check the configured targets."""


@cli.command("test")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: /etc/acctwatch/acctwatch.toml if it exists).")
@click.option("--operator", "to_operator", is_flag=True, help="The operator targets (the default).")
@click.option("--user", "user_address", metavar="ADDRESS",
              help="The user-notice URL ([notify.user] url) with this address filled in.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def test_cmd(config_path: str | None, to_operator: bool, user_address: str | None, as_json: bool) -> None:
    """Send a sample alert to each configured target now (not through the outbox) and report each one's
    result; exit 1 when any failed or none is configured."""
    from urllib.parse import quote

    from ..actions.notify import Notifier, Target, apprise_send, with_timeout

    try:
        cfg = load(config_path)
        notifier = Notifier(cfg, Store("sqlite://"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    targets: list[tuple[str, Target]] = []
    if to_operator or not user_address:
        targets += [("operator", t) for t in notifier.targets]
    if user_address:
        if not notifier.user_url:
            raise click.ClickException("no [notify.user] url is configured (e.g. "
                                       "\"mailtos://alerts:pw@smtp.example.org?to={address}\")")
        url = with_timeout(notifier.user_url.replace("{address}", quote(user_address, safe="@+")), notifier.timeout)
        targets.append(("user", Target("user:test", "url", url)))
    if not targets:
        raise click.ClickException("no notification target is configured: set [notify] operator = [\"...\"] "
                                   "(apprise URLs) or operator_config")
    title = "[acctwatch] TEST: this is a test alert"
    body = ("This is a test message from `acctwatch notify test`: if you read it, alerts reach you here.\n"
            "Nothing happened to any account.")
    results = []
    for who, t in targets:
        ok, err = apprise_send(title, body, t)
        shown = t.value.split("://", 1)[0] + "://..." if t.kind == "url" else t.value  # (URLs may hold passwords)
        results.append({"target": who, "kind": t.kind, "where": shown, "ok": ok, "error": err or None})
    if as_json:
        emit_json({"results": results})
    else:
        for r in results:
            click.echo(f"{r['target']:<8} {r['where']:<40} " + ("ok" if r["ok"] else f"FAILED: {r['error']}"))
    if not all(r["ok"] for r in results):
        raise SystemExit(1)
