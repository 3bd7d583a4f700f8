"""``acctwatch explain``: what acctwatch sees in a log (our ``fail2ban-regex``)."""

from __future__ import annotations

import click

from ..headers import Clock
from ..parsing import LineParser, ParseStats, PatternError, PatternSet
from ..sources.files import SourceError, describe, expand, iter_batches, order_oldest_first
from .common import Progress, emit_json, emit_jsonl


@click.command("explain")
@click.argument("files", nargs=-1, type=str)
@click.option("--line", "one_line", help="Explain this one log line instead of files.")
@click.option("--jsonl", is_flag=True, help="Print one JSON object per event (kind, ts, service, account, ip...).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--timezone", "zone", default="local", show_default=True,
              help="Zone for timestamps written without one (e.g. Europe/Berlin, UTC).")
@click.option("--year", type=int, help="Year for syslog lines without one (default: from the file's mtime).")
@click.option("--patterns-dir", "patterns_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra directory of *.toml pattern files.")
@click.option("--examples", default=10, show_default=True, help="How many relevant-unmatched lines to show.")
def cli(files: tuple[str, ...], one_line: str | None, jsonl: bool, as_json: bool, zone: str,
        year: int | None, patterns_dirs: tuple[str, ...], examples: int) -> None:
    """Parse log FILES (or - for stdin) and show what acctwatch understands.

    Prints lines read, events per kind, hits per pattern, and the relevant lines no pattern took
    (they mention auth, login, sasl, reject or password). Nothing is stored or changed.
    """
    try:
        ps = PatternSet.load(patterns_dirs)
    except PatternError as exc:
        raise click.ClickException(str(exc)) from exc
    if one_line is not None:
        _explain_line(ps, one_line, zone, year, as_json or jsonl)
        return
    if not files:
        raise click.UsageError("give log files to read, - for stdin, or --line 'LOG LINE'")
    try:
        names = order_oldest_first(expand(files))
        infos = [describe(n) for n in names]
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    total_stats = None
    bar = Progress(sum(i.size or 0 for i in infos), "Parsing", enabled=None if not jsonl else False)
    for info in infos:
        parser = LineParser(ps, Clock(zone=zone, year=year, reference=info.mtime), source=info.name,
                            track_unmatched=True)
        parser.stats.max_examples = examples
        try:
            n = 1
            for lines in iter_batches(info.name):
                for ev in parser.iter_events(lines, n):
                    if jsonl:
                        emit_jsonl(ev.to_dict())
                n += len(lines)
                bar.update(sum(map(len, lines)) + len(lines))
        except SourceError as exc:
            bar.close()
            raise click.ClickException(str(exc)) from exc
        total_stats = parser.stats if total_stats is None else _merge(total_stats, parser.stats)
    bar.close()
    assert total_stats is not None
    if jsonl:
        return
    if as_json:
        emit_json(total_stats.to_dict())
        return
    _print_summary(total_stats)


def _merge(a: ParseStats, b: ParseStats) -> ParseStats:
    for f in ("lines", "blank", "comments", "invalid_utf8", "too_long", "no_header", "bad_time", "bad_field",
              "prefiltered", "other_program", "unmatched", "ignored", "relevant_unmatched", "relevant_no_header",
              "internal_errors"):
        setattr(a, f, getattr(a, f) + getattr(b, f))
    a.events.update(b.events)
    a.hits.update(b.hits)
    for name in ("unmatched_examples", "no_header_examples"):
        mine, theirs = getattr(a, name), getattr(b, name)
        mine.extend(theirs[:max(a.max_examples - len(mine), 0)])
    return a


def _print_summary(st: ParseStats) -> None:
    echo = click.echo
    echo(f"Lines read:            {st.lines}")
    skipped = {"blank": st.blank, "comment": st.comments, "no recognisable header": st.no_header,
               "unparseable time": st.bad_time, "bad field": st.bad_field}
    echo(f"  not about mail auth: {st.prefiltered + st.other_program + st.unmatched}")
    if st.ignored:
        echo(f"  known, not events:   {st.ignored}")
    for k, v in skipped.items():
        if v:
            echo(f"  {k}: {v}")
    if st.invalid_utf8:
        echo(f"  invalid UTF-8 (decoded with replacement characters): {st.invalid_utf8}")
    if st.too_long:
        echo(f"  too long (cut to 16 KiB): {st.too_long}")
    echo(f"Events:                {sum(st.events.values())}")
    for kind, n in sorted(st.events.items(), key=lambda kv: -kv[1]):
        echo(f"  {kind:<20} {n}")
    echo("Hits per pattern:")
    for name, n in sorted(st.hits.items(), key=lambda kv: -kv[1]):
        echo(f"  {name:<45} {n}")
    echo(f"Relevant but unmatched: {st.relevant_unmatched}")
    for src, n, line in st.unmatched_examples:
        echo(f"  {src}:{n}: {line}")
    if st.relevant_unmatched:
        echo("  (lines that mention auth/login/sasl/reject/password but no pattern took: "
             "add a pattern with --patterns-dir, see docs/patterns.md)")
    if st.relevant_no_header:
        echo(f"Relevant lines without a log header: {st.relevant_no_header}")
        for src, n, line in st.no_header_examples:
            echo(f"  {src}:{n}: {line}")
        echo("  (no syslog, RFC3339, Dovecot log_path or journald framing fits them, e.g. message-only samples "
             "or an unknown log format: see docs/known-limits.md)")
    if st.internal_errors:
        echo(f"Internal errors (lines skipped, please report): {st.internal_errors}")


def _explain_line(ps: PatternSet, line: str, zone: str, year: int | None, as_json: bool = False) -> None:
    from ..headers import split_header
    from ..parsing import classify_program

    parser = LineParser(ps, Clock(zone=zone, year=year), source="--line", track_unmatched=True)
    ev = parser.parse(line, 1)
    hdr = split_header(line.rstrip("\r\n"))
    if as_json:
        cls = classify_program(hdr.program, hdr.msg) if hdr is not None else None
        emit_json({"header": None if hdr is None else {"format": hdr.fmt, "time": hdr.ts, "host": hdr.host,
                                                          "program": hdr.program, "pid": hdr.pid},
                   "program": None if cls is None else {"family": cls[0], "daemon": cls[1], "message": cls[3]},
                   "pattern": ev.pattern if ev is not None else None,
                   "event": ev.to_dict() if ev is not None else None})
        if ev is None:
            raise SystemExit(1)
        return
    if hdr is None:
        click.echo("No known log header (syslog, RFC3339, journald JSON, Dovecot log_path...) fits this line.")
    else:
        click.echo(f"header:   {hdr.fmt}  time={hdr.ts!r} host={hdr.host!r} program={hdr.program!r} pid={hdr.pid}")
        cls = classify_program(hdr.program, hdr.msg)
        if cls is None:
            click.echo("program:  not a Postfix or Dovecot program: ignored")
        else:
            click.echo(f"program:  family={cls[0]} daemon={cls[1]} message={cls[3]!r}")
    if ev is None:
        click.echo("event:    none (no pattern matched)")
        raise SystemExit(1)
    click.echo(f"pattern:  {ev.pattern}")
    for k, v in ev.to_dict().items():
        if v is not None and k not in ("source", "lineno", "pattern"):
            click.echo(f"  {k:<12} {v}")
