"""``acctwatch replay``: run archived logs through the detectors; report what would be done."""

from __future__ import annotations

import click

from ..app import build_engine, load_patterns
from ..config import LEVELS, ConfigError, load
from ..parsing import PatternError
from ..replay import replay
from ..sources.files import SourceError, describe, expand
from .common import Progress, emit_json, emit_jsonl, parse_time

WOULD = {"lock": "would lock", "hold": "would hold mail", "notify": "would notify",
         "watch": "watched (recorded, no alert)"}




@click.command("replay")
@click.argument("files", nargs=-1, required=True)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: /etc/acctwatch/acctwatch.toml if it exists).")
@click.option("--db", help="Record incidents and learned history in this store (SQLAlchemy URL). "
              "Default: a private in-memory store, so every replay starts from nothing.")
@click.option("--geoip-db", "geoip_dbs", multiple=True, type=click.Path(dir_okay=False),
              help="GeoIP2/GeoLite2/DB-IP .mmdb file (repeatable: City + ASN). Default: the embedded one.")
@click.option("--since", help="Ignore events before this time (ISO 8601, UTC unless a zone is given, or a "
              "duration back from now: 24h, 7d).")
@click.option("--until", help="Ignore events from this time on (same forms).")
@click.option("--timezone", "zone", help="Zone of timestamps written without one (default: config or local).")
@click.option("--year", type=int, help="Year for syslog lines without one (default: from each file's mtime).")
@click.option("--jsonl", is_flag=True, help="One JSON object per incident.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: incidents and parse statistics.")
@click.option("--decision-log", "decision_log", type=click.Path(dir_okay=False),
              help="Also write the decision log (the lines fail2ban's acctwatch filter reads) to this file, "
              "e.g. to test a filter with fail2ban-regex. Appends; do not point it at a file fail2ban watches.")
def cli(files: tuple[str, ...], config_path: str | None, db: str | None, geoip_dbs: tuple[str, ...],
        since: str | None, until: str | None, zone: str | None, year: int | None, jsonl: bool,
        as_json: bool, decision_log: str | None) -> None:
    """Replay archived mail logs (plain, .gz, .bz2, .xz, or - for stdin) through the detectors.

    Rotated files are read oldest first; Postfix and Dovecot files are merged by time. Nothing is locked
    and nobody is notified: the output says what acctwatch would have done, and why.
    """
    try:
        cfg = load(config_path)
        if geoip_dbs:
            cfg.geoip_db = list(geoip_dbs)
        names = expand(files)
        infos = [describe(n) for n in names]
        patterns = load_patterns(cfg)
        store = None
        if db:  # (without --db: no store at all, not even in memory; SQLAlchemy is not even imported)
            from ..store import Store

            store = Store(db)
        engine = build_engine(cfg, store)
        if decision_log:
            from ..actions.decisionlog import DecisionLog

            engine.hooks.append(DecisionLog.from_config(cfg, path=decision_log, state=""))  # type: ignore[arg-type]
    except (ConfigError, PatternError, SourceError) as exc:
        raise click.ClickException(str(exc)) from exc
    total_bytes = sum(i.size or 0 for i in infos)
    bar = Progress(total_bytes or None, "Replaying", enabled=None if not (jsonl or as_json) else False)
    try:
        result = replay(engine, names, patterns, zone=zone or cfg.timezone, year=year or cfg.year,
                        since=parse_time(since, "--since"), until=parse_time(until, "--until"),
                        progress=(lambda n: bar.update(n)) if bar.enabled else None)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    if jsonl:
        for inc in result.incidents:
            emit_jsonl(inc.to_dict())
        return
    if as_json:
        emit_json({"incidents": [i.to_dict() for i in result.incidents], "lines": result.lines,
                   "events": result.events, "skewed_events": result.skewed,
                   "files": [s.to_dict() | {"source": n} for s, n in zip(result.stats, result.sources, strict=True)]})
        return
    _table(result)


def _table(result) -> None:  # type: ignore[no-untyped-def]
    echo = click.echo
    echo(f"Read {result.lines} lines, {result.events} events.")
    if result.skewed:
        echo(f"Skipped {result.skewed} event(s) dated more than a day away from the lines around them "
             "(a wrong clock or year on those lines).")
    if not result.incidents:
        echo("No incidents: no account looks compromised in these logs.")
        return
    by_acct: dict[str, list] = {}
    for inc in result.incidents:
        by_acct.setdefault(inc.account or "(per IP)", []).append(inc)
    echo(f"{len(result.incidents)} incident(s) on {len(by_acct)} account(s):\n")
    for acct, incs in by_acct.items():
        worst = max(incs, key=lambda i: LEVELS.get(i.action, 0))
        echo(click.style(f"{acct}: {WOULD.get(worst.action, worst.action)}", bold=True))
        for inc in incs:
            when = inc.detected_at.strftime("%Y-%m-%d %H:%M:%S")
            echo(f"  [{WOULD.get(inc.action, inc.action)}] {inc.detector} at {when} UTC: {inc.summary}")
            if len(inc.escalations) > 1:
                echo("      levels: " + " -> ".join(
                    f"{e['level']} at {str(e['at'])[11:19]}" + (f" ({e['rule']})" if e.get("rule") else "")
                    for e in inc.escalations))
            if inc.ips:
                echo(f"      IPs: {', '.join(inc.ips[:10])}{' ...' if len(inc.ips) > 10 else ''}")
            if inc.attackers and inc.attackers != inc.ips:
                echo(f"      presumed attacker: {', '.join(inc.attackers[:10])}"
                     f"{' ...' if len(inc.attackers) > 10 else ''}")
        echo("")
    echo("Replay changes nothing. `acctwatch run` in enforce mode would act as shown.")
