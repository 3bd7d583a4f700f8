"""``acctwatch lock | unlock | status | history | incidents``: the operator's side of the response.

Manual ``lock``/``unlock`` act even when the daemon runs in dry-run mode (a human decided); every action
is written to the audit trail with the Unix user who ran it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import click

from ..actions.notify import account_arg, cli_options
from ..config import Config, ConfigError, load
from ..store import Store, utcnow
from ..store import mask_url as _safe
from .common import cut, emit_json, parse_time

_config_opt = click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                           help="Config file (default: /etc/acctwatch/acctwatch.toml if it exists).")
_db_opt = click.option("--db", help="The store (SQLAlchemy URL); default: [general] db of the config.")
_json_opt = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _open(config_path: str | None, db: str | None) -> tuple[Config, Store]:
    try:
        cfg = load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if db:
        cfg.db = db  # (repeated in the commands this one suggests)
    url = cfg.db_url
    try:
        store = Store(url)
    except Exception as exc:
        first = str(exc).splitlines()[0][:300]
        raise click.ClickException(
            f"cannot open the acctwatch store {_safe(url)}: {first}\n"
            "Check [general] db (or state_dir) in the config, or pass --db URL; run as the user the daemon runs "
            "as (usually root).") from exc
    return cfg, store




def _responder(cfg: Config, store: Store) -> Any:
    from ..actions.responder import Responder

    try:
        return Responder(cfg, store)
    except ConfigError as exc:
        raise click.ClickException(f"{exc}\nFix the [response]/[lockers.*]/[notify] sections of the config.") from exc


def _deliver(resp: Any) -> None:
    """Send the notification this command queued now (the daemon retries it if this fails)."""
    if resp.notifier is None or not resp.notifier.configured:
        return
    try:
        rep = resp.notifier.deliver_pending()
    except Exception as exc:
        click.echo(f"warning: notification not sent now ({exc}); the daemon will retry it", err=True)
        return
    if rep.failed:
        click.echo(f"warning: {rep.failed} notification(s) failed; the daemon will retry "
                   "(see `acctwatch status`)", err=True)


def _since(value: str | None, default: float | None = None) -> datetime | None:
    if value is None:
        return utcnow() - timedelta(seconds=default) if default else None
    return parse_time(value, "--since")


def _ts(v: Any) -> str:
    return v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else str(v or "")


def _print_results(d: Any) -> None:
    for r in d.results:
        mark = click.style("ok", fg="green") if r.ok else click.style("FAILED", fg="red", bold=True)
        click.echo(f"  {r.backend}: {mark}: {r.detail}")


def _incident_dict(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v) for k, v in r.items()}


@click.command("lock")
@click.argument("account")
@click.option("--reason", required=True, help="Why (goes to the audit trail and the notification).")
@click.option("--hold", "level", flag_value="hold", help="Only the 'hold' level backends ([response] hold).")
@click.option("--lock", "level", flag_value="lock", default=True, help="The 'lock' level backends (default).")
@click.option("--force", is_flag=True, help="Lock even a protected/allowlisted account.")
@click.option("--dry-run", is_flag=True, help="Show what would run; change nothing.")
@_config_opt
@_db_opt
@_json_opt
def lock(account: str, reason: str, level: str, force: bool, dry_run: bool, config_path: str | None,
         db: str | None, as_json: bool) -> None:
    """Lock ACCOUNT now with the configured backends (recorded with your Unix user name)."""
    cfg, store = _open(config_path, db)
    resp = _responder(cfg, store)
    try:
        d = resp.lock_account(account, reason=reason, level=level, force=force, dry_run=dry_run)
    except ConfigError as exc:
        raise click.ClickException(f"{exc}\nNothing was changed.") from exc
    _deliver(resp)
    if as_json:
        emit_json(d.to_dict())
    else:
        msgs = {"locked": f"{account} locked.", "held": f"Mail of {account} held.",
                "partial": f"{account} only PARTLY locked:", "failed": f"Locking {account} FAILED:",
                "protected": f"{account} is protected: not locked ({d.detail}).",
                "already": f"{account} is already locked ({d.detail}); nothing changed.",
                "would-lock": f"dry-run: would lock {account} with {', '.join(d.backends)}.",
                "would-hold": f"dry-run: would hold the mail of {account} with {', '.join(d.backends)}."}
        click.echo(msgs.get(d.outcome, f"{d.outcome}: {d.detail}"))
        for name, plan in d.plans.items():
            for step in plan:
                click.echo(f"  {name}: would run {step}")
        if d.outcome.startswith("would-") and "would fail" in d.detail:
            click.echo("  " + d.detail.split("; ", 1)[1])
        _print_results(d)
        if d.outcome == "failed" and not d.results:
            click.echo(f"  {d.detail}")
        if d.outcome in ("locked", "held", "partial"):
            click.echo(f"Undo with: acctwatch unlock{cli_options(cfg)} {account_arg(account)}")
    if d.outcome in ("partial", "failed", "protected"):
        raise SystemExit(1)


@click.command("unlock")
@click.argument("account", required=False)
@click.option("--reason", default="", help="Why (goes to the audit trail).")
@click.option("--reset-breaker", is_flag=True, help="Close the circuit breaker: resume automatic locking.")
@click.option("--compromised", is_flag=True,
              help="It was a real compromise (the password has been changed): learn nothing. Without it, the "
              "incident's networks become familiar for ACCOUNT (a false alarm is not raised again).")
@click.option("--delete-held", is_flag=True,
              help="Delete the mail acctwatch held for ACCOUNT (the spam run) instead of releasing it.")
@_config_opt
@_db_opt
@_json_opt
def unlock(account: str | None, reason: str, reset_breaker: bool, compromised: bool, delete_held: bool,
           config_path: str | None, db: str | None, as_json: bool) -> None:
    """Undo what acctwatch did to ACCOUNT (restores saved values, releases held mail, unbans IPs).

    By default the unlock teaches ACCOUNT's familiarity profile that the incident's networks are its
    owner's; pass --compromised after a real attack."""
    if not account and not reset_breaker:
        raise click.UsageError("give the ACCOUNT to unlock (or --reset-breaker)")
    _unlock(account, reason, reset_breaker, compromised, delete_held, config_path, db, as_json)


@click.command("release")
@click.argument("account")
@click.option("--reason", default="", help="Why (goes to the audit trail).")
@click.option("--delete-held", is_flag=True,
              help="Delete the held mail (a spam run) instead of sending it.")
@click.option("--compromised", is_flag=True, help="It was a real compromise: learn nothing (as unlock).")
@_config_opt
@_db_opt
@_json_opt
def release(account: str, reason: str, delete_held: bool, compromised: bool, config_path: str | None,
            db: str | None, as_json: bool) -> None:
    """End the hold of ACCOUNT: new mail flows again, and the mail held meanwhile is sent (or deleted with
    --delete-held). The same as `acctwatch unlock` (which also ends a lock)."""
    _unlock(account, reason, False, compromised, delete_held, config_path, db, as_json)


def _unlock(account: str | None, reason: str, reset_breaker: bool, compromised: bool, delete_held: bool,
            config_path: str | None, db: str | None, as_json: bool) -> None:
    cfg, store = _open(config_path, db)
    resp = _responder(cfg, store)
    out: dict[str, Any] = {}
    if reset_breaker:
        was = resp.reset_breaker()
        out["breaker_reset"] = was
        if not as_json:
            click.echo("Circuit breaker reset: automatic locking resumes." if was
                       else "The circuit breaker was not open.")
    code = 0
    if account:
        d = resp.unlock_account(account, reason=reason, learn=not compromised, delete_held=delete_held)
        out.update(d.to_dict())
        if not as_json:
            if d.outcome == "not-locked":
                click.echo(d.detail)
            elif d.outcome == "unlocked":
                click.echo(f"{account} released: its mail flows again." if d.level == "release"
                           else f"{account} unlocked.")
            else:
                click.echo(f"{account} NOT fully unlocked ({d.outcome}); still locked in the backends marked FAILED:")
            _print_results(d)
        code = 0 if d.outcome == "unlocked" else 1
    _deliver(resp)
    if as_json:
        emit_json(out)
    if code:
        raise SystemExit(code)


def _lock_words(lk: dict[str, Any], resp: Any) -> str:
    """``LOCKED``, ``HELD (its mail is on hold)``, with ``PARTIAL`` and the backends that did not do their
    part (those of the level, as configured now, missing from the lock record)."""
    level = lk["level"]
    words = "LOCKED" if level == "lock" else "HELD (its mail is held)"
    missing = [n for n in getattr(resp, "levels", {}).get(level, []) if n not in lk["backends"]]
    if missing:
        words += f" PARTIAL (not done: {', '.join(missing)}; see `acctwatch history`)"
    return words


@click.command("status")
@click.argument("account", required=False)
@click.option("--since", help="Open incidents since (duration like 24h/7d, or ISO time); default 7d.")
@_config_opt
@_db_opt
@_json_opt
def status(account: str | None, since: str | None, config_path: str | None, db: str | None,
           as_json: bool) -> None:
    """Active locks, open incidents, the circuit breaker and pending notifications (or ACCOUNT's backends)."""
    cfg, store = _open(config_path, db)
    resp = _responder(cfg, store)
    if account:
        st = resp.status(account)
        if as_json:
            emit_json(_incident_dict(st) | {"lock": _incident_dict(st["lock"]) if st["lock"] else None})
            return
        lk = st["lock"]
        click.echo(f"{account}: " + (f"{_lock_words(lk, resp)} by {lk['actor']} at {_ts(lk['locked_at'])} UTC: "
                                     f"{lk['reason']}" if lk else "no acctwatch lock"))
        for name, b in st["backends"].items():
            try:
                holds = resp.locker(name).holds_mail
            except ConfigError:
                holds = False
            words = ("held", "not held") if holds else ("locked", "not locked")
            state = {True: words[0], False: words[1], None: "unknown"}[b.get("locked")]
            click.echo(f"  {name}: {state} ({b.get('detail', '')})")
        return
    locks = store.locks()
    incs = store.incidents(since=_since(since, 7 * 86400), status="open")
    pending = store.outbox_rows(pending_only=True)
    clock = store.load_kv(cfg.instance, "_engine").get("clock")  # the log time the daemon has reached
    lag = None
    if clock:
        lag = max(0.0, (utcnow() - datetime.fromisoformat(str(clock).replace("Z", "+00:00"))).total_seconds())
    data = {"mode": cfg.mode, "instance": cfg.instance, "last_event_time": clock, "lag_seconds": lag,
            "breaker": resp.breaker_state(), "locks": [_incident_dict(x) for x in locks],
            "open_incidents": [_incident_dict(x) for x in incs],
            "pending_notifications": [{"id": p["id"], "title": p["title"], "attempts": p["attempts"],
                                       "next_attempt": p["next_attempt"], "last_error": p["last_error"]}
                                      for p in pending]}
    if as_json:
        emit_json(data)
        return
    click.echo(f"Mode: {cfg.mode}" + ("  (dry-run: nothing is locked automatically)" if cfg.mode != "enforce"
                                     else ""))
    if clock:
        from ..detectors.base import duration

        click.echo(f"Log time reached by instance {cfg.instance!r}: {str(clock)[:19].replace('T', ' ')} UTC"
                   f" ({duration(lag or 0)} behind now)")
    else:
        click.echo(f"Instance {cfg.instance!r} has not processed any line yet (or `acctwatch run` never ran).")
    if data["breaker"]:
        click.echo(click.style(f"CIRCUIT BREAKER OPEN since {data['breaker']['tripped_at']}: automatic locking "
                               "stopped. Reset: acctwatch unlock --reset-breaker", fg="red", bold=True))
    click.echo(f"\nActive locks ({len(locks)}):")
    for x in locks:
        click.echo(f"  {x['account']}: {_lock_words(x, resp)} since {_ts(x['locked_at'])} UTC by {x['actor']} "
                   f"[{', '.join(x['backends'])}]: {cut(x['reason'], 100)}")
    click.echo(f"\nOpen incidents ({len(incs)}):")
    for i in incs:
        click.echo(f"  {_ts(i['first_seen'])} {i['account'] or '(per IP)'} {i['detector']} [{i['action']}]: "
                   f"{cut(i['summary'], 120)}")
    if pending:
        click.echo(f"\nNotifications waiting to be sent ({len(pending)}):")
        for p in pending:
            nxt = p["next_attempt"]
            when = "given up" if nxt is not None and nxt.year >= 9999 else f"next attempt {_ts(nxt)} UTC"
            click.echo(f"  {cut(p['title'], 80)} (attempts {p['attempts']}, {when}, last error: "
                       f"{p['last_error'] or '-'})")


@click.command("history")
@click.argument("account")
@_config_opt
@_db_opt
@_json_opt
def history(account: str, config_path: str | None, db: str | None, as_json: bool) -> None:
    """ACCOUNT's incidents and every action taken on it (the audit trail)."""
    cfg, store = _open(config_path, db)
    audit = store.audit_rows(account=account)
    incs = store.incidents(account=account)
    lk = store.get_lock(account)
    if as_json:
        emit_json({"account": account, "lock": _incident_dict(lk) if lk else None,
                   "incidents": [_incident_dict(i) for i in incs], "audit": [_incident_dict(a) for a in audit]})
        return
    words = _lock_words(lk, _responder(cfg, store)) if lk else ""
    click.echo(f"{account}: " + (f"{words} since {_ts(lk['locked_at'])} UTC" if lk else "not locked"))
    click.echo(f"\nIncidents ({len(incs)}):")
    for i in incs:
        click.echo(f"  {_ts(i['first_seen'])} .. {_ts(i['last_seen'])} {i['detector']} [{i['action']}] "
                   f"{i['id']}: {cut(i['summary'], 120)}")
    click.echo(f"\nAudit ({len(audit)}):")
    for a in audit:
        click.echo(f"  {_ts(a['ts'])} {a['action']:<12} {a['backend'] or '-':<10} {a['result']:<8} "
                   f"by {a['actor']}: {cut(a['detail'], 140)}")
    if not incs and not audit:
        click.echo("\nNothing recorded for this account (check the spelling: accounts are stored as logged).")


@click.group("incidents", invoke_without_command=True)
@click.option("--since", help="Only incidents seen since (duration like 24h/7d, or ISO time).")
@click.option("--account", help="Only this account.")
@click.option("--status", "status_", type=click.Choice(["open", "acknowledged", "closed", "false-positive"]),
              help="Only incidents with this status.")
@_config_opt
@_db_opt
@_json_opt
@click.pass_context
def incidents(ctx: click.Context, since: str | None, account: str | None, status_: str | None,
              config_path: str | None, db: str | None, as_json: bool) -> None:
    """Incidents recorded in the store, oldest first (and, as subcommands, what to do with one)."""
    if ctx.invoked_subcommand is not None:
        return
    _cfg, store = _open(config_path, db)
    rows = store.incidents(since=_since(since), account=account, status=status_)
    if as_json:
        emit_json([_incident_dict(r) for r in rows])
        return
    if not rows:
        click.echo("No incidents" + (f" since {since}" if since else "") + ".")
        return
    for i in rows:
        click.echo(f"{_ts(i['detected_at'])} {i['account'] or '(per IP)'} {i['detector']} [{i['action']}, "
                   f"{i['status']}] {i['id']}\n    {i['summary'][:160]}")
        steps = i.get("escalations") or []
        if len(steps) > 1:
            click.echo("    levels: " + " -> ".join(f"{e.get('level')} at {str(e.get('at', ''))[:19]}"
                                                    + (f" ({e['rule']})" if e.get("rule") else "") for e in steps))
        if i["ips"]:
            click.echo(f"    IPs: {', '.join(i['ips'][:10])}")


@incidents.command("false-positive")
@click.argument("incident_id")
@click.option("--note", default="", help="Why (goes to the audit trail).")
@_config_opt
@_db_opt
@_json_opt
def false_positive(incident_id: str, note: str, config_path: str | None, db: str | None, as_json: bool) -> None:
    """Mark INCIDENT_ID (or a unique prefix of it) a false alarm: it is closed, and its networks become
    familiar for its account, so the same benign pattern does not fire again. A held or locked account is
    not unlocked by this: use `acctwatch unlock ACCOUNT` (which teaches the same)."""
    from ..actions.responder import whoami

    cfg, store = _open(config_path, db)
    inc = store.incident(incident_id)
    if inc is None:
        raise click.ClickException(f"no incident {incident_id!r} (or the prefix is not unique): see "
                                   "`acctwatch incidents`")
    actor = whoami()
    taught: list[str] = []
    with store.begin() as conn:
        store.set_incident_status(conn, inc["id"], "false-positive")
        if inc["account"]:
            for ip in dict.fromkeys(inc["ips"]):
                store.add_feedback(conn, account=inc["account"], action="trust", network=ip,
                                   incident_id=inc["id"], actor=actor, note=note or "false positive")
                taught.append(ip)
        store.audit(conn, action="false-positive", result="ok", account=inc["account"], incident_id=inc["id"],
                    actor=actor, detail=f"marked a false positive; familiar now: {', '.join(taught) or '-'}"
                    + (f"; {note}" if note else ""))
    locked = store.get_lock(inc["account"]) if inc["account"] else None
    if as_json:
        emit_json({"incident_id": inc["id"], "account": inc["account"], "status": "false-positive",
                   "trusted": taught, "still_locked": locked is not None})
        return
    click.echo(f"Incident {inc['id']} marked a false positive.")
    if taught:
        click.echo(f"Familiar for {inc['account']} from now on: {', '.join(taught)} (their networks).")
    if locked is not None:
        click.echo(f"{inc['account']} is still {'locked' if locked['level'] == 'lock' else 'held'}: run "
                   f"`acctwatch unlock{cli_options(cfg)} "
                   f"{account_arg(inc['account'])}`.")


def _one(store: Store, incident_id: str) -> dict[str, Any]:
    inc = store.incident(incident_id)
    if inc is None:
        raise click.ClickException(f"no incident {incident_id!r} (or the prefix is not unique): see "
                                   "`acctwatch incidents`")
    return inc


@incidents.command("show")
@click.argument("incident_id")
@_config_opt
@_db_opt
@_json_opt
def show(incident_id: str, config_path: str | None, db: str | None, as_json: bool) -> None:
    """One incident (INCIDENT_ID or a unique prefix): when it was detected and raised, its evidence, what
    was done about it and which alerts went out."""
    import sqlalchemy as sa

    from ..store import outbox as outbox_table

    _cfg, store = _open(config_path, db)
    inc = _one(store, incident_id)
    actions = store.audit_rows(incident_id=inc["id"])
    with store.engine.connect() as conn:
        alerts = [dict(r._mapping) for r in conn.execute(
            sa.select(outbox_table.c.dedupe_key, outbox_table.c.target, outbox_table.c.title,
                      outbox_table.c.created_at, outbox_table.c.sent_at, outbox_table.c.attempts,
                      outbox_table.c.last_error).where(outbox_table.c.incident_id == inc["id"])
            .order_by(outbox_table.c.id))]
    cited = _log_lines(inc["evidence"], inc.get("escalations") or [])
    if as_json:
        emit_json({"incident": _incident_dict(inc), "actions": [_incident_dict(a) for a in actions],
                   "alerts": [_incident_dict(a) for a in alerts],
                   "log_lines": [{"at": at, "line": text} for at, text in cited]})
        return
    click.echo(f"Incident {inc['id']}: {inc['account'] or '(per IP)'} [{inc['action']}, {inc['status']}]")
    click.echo(f"  {inc['summary']}")
    click.echo(f"  detector:  {inc['detector']}")
    click.echo(f"  detected:  {_ts(inc['detected_at'])} (log time); evidence from {_ts(inc['first_seen'])} "
               f"to {_ts(inc['last_seen'])}, {inc['updated'] + 1} finding(s)")
    for e in inc.get("escalations") or []:
        click.echo(f"  level:     {e.get('level')} at {str(e.get('at', ''))[:19]}"
                   + (f" ({e['rule']})" if e.get("rule") else "") + f": {cut(e.get('summary', ''), 140)}")
    if inc["ips"]:
        click.echo(f"  IPs:       {', '.join(inc['ips'][:20])}")
    click.echo("  evidence:")
    for line in json.dumps(inc["evidence"], indent=2, default=str, ensure_ascii=False).splitlines()[:80]:
        click.echo(f"    {line}")
    if cited:
        click.echo("  log lines:")
        for at, text in cited:
            click.echo(f"    {at}: {text if text is not None else '(no longer in that file: rotated away?)'}")
    click.echo("  actions:" if actions else "  actions:   none recorded")
    for a in actions:
        click.echo(f"    {_ts(a['ts'])} {a['action']:<10} {a['backend'] or '-':<10} {a['result']:<8} "
                   f"{a['actor']}: {cut(a['detail'], 120)}")
    click.echo("  alerts:" if alerts else "  alerts:    none")
    for a in alerts:
        state = f"sent {_ts(a['sent_at'])}" if a["sent_at"] else f"not sent ({a['attempts']} attempts"  \
            + (f", {cut(a['last_error'], 80)}" if a["last_error"] else "") + ")"
        click.echo(f"    {a['target']:<8} {state}: {a['title']}")


def _log_lines(evidence: Any, escalations: Any, limit: int = 40) -> list[tuple[str, str | None]]:
    """The log lines an incident cites ("FILE:N" in its evidence and escalations), each read back from its
    file (None when the file or the line is gone); control characters shown as escapes (attacker text)."""
    from ..engine import cited_lines

    found = cited_lines(evidence, escalations, limit=limit)
    found = found[:limit]
    wanted: dict[str, set[int]] = {}
    for at in found:
        f, _, n = at.rpartition(":")
        if n.isdigit():
            wanted.setdefault(f, set()).add(int(n))
    text: dict[str, str] = {}
    from ..actions.notify import clean
    from ..sources.files import iter_lines

    for f, nums in wanted.items():
        try:
            last = max(nums)
            for i, raw in enumerate(iter_lines(f), 1):
                if i in nums:
                    text[f"{f}:{i}"] = clean(raw.decode("utf-8", "replace"))
                if i >= last:
                    break
        except Exception:  # a file rotated away or unreadable: said per line
            continue
    return [(at, text.get(at)) for at in found]


def _set_status(incident_id: str, status: str, note: str, config_path: str | None, db: str | None,
                as_json: bool) -> None:
    from ..actions.responder import whoami

    _cfg, store = _open(config_path, db)
    inc = _one(store, incident_id)
    with store.begin() as conn:
        store.set_incident_status(conn, inc["id"], status)
        store.audit(conn, action=status, result="ok", account=inc["account"], incident_id=inc["id"],
                    actor=whoami(), detail=f"{inc['status']} -> {status}" + (f": {note}" if note else ""))
    if as_json:
        emit_json({"incident_id": inc["id"], "status": status, "previous": inc["status"]})
        return
    click.echo(f"Incident {inc['id']}: {inc['status']} -> {status}.")


@incidents.command("ack")
@click.argument("incident_id")
@click.option("--note", default="", help="Why (goes to the audit trail).")
@_config_opt
@_db_opt
@_json_opt
def ack(incident_id: str, note: str, config_path: str | None, db: str | None, as_json: bool) -> None:
    """Acknowledge INCIDENT_ID: someone is on it (it stays active: new evidence still joins it)."""
    _set_status(incident_id, "acknowledged", note, config_path, db, as_json)


@incidents.command("close")
@click.argument("incident_id")
@click.option("--note", default="", help="Why (goes to the audit trail).")
@_config_opt
@_db_opt
@_json_opt
def close(incident_id: str, note: str, config_path: str | None, db: str | None, as_json: bool) -> None:
    """Close INCIDENT_ID (handled). To teach the profile that it was a false alarm, use false-positive."""
    _set_status(incident_id, "closed", note, config_path, db, as_json)
