"""``acctwatch patterns``: list the loaded patterns and run their embedded examples."""

from __future__ import annotations

import click

from ..parsing import PatternError, PatternSet, run_examples
from .common import emit_json


@click.group("patterns")
def cli() -> None:
    """Inspect and test the log patterns (built-in and your own)."""


_dirs = click.option("--patterns-dir", "patterns_dirs", multiple=True, type=click.Path(file_okay=False),
                     help="Extra directory of *.toml pattern files (adds to or overrides built-ins).")


@cli.command("test")
@_dirs
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def test_cmd(patterns_dirs: tuple[str, ...], as_json: bool) -> None:
    """Run every pattern's embedded examples; exit 1 if any fails."""
    try:
        ps = PatternSet.load(patterns_dirs)
    except PatternError as exc:
        raise click.ClickException(str(exc)) from exc
    results = run_examples(ps)
    failed = [r for r in results if not r.ok]
    if as_json:
        emit_json({"patterns": len(ps.patterns), "examples": len(results), "failed": len(failed),
                   "failures": [r.__dict__ for r in failed]})
    else:
        for r in failed:
            click.echo(f"FAIL {r.pattern} ({r.origin}): {r.problem}\n     {r.line}")
        click.echo(f"{len(ps.patterns)} patterns, {len(results)} examples, {len(failed)} failed")
    if failed:
        raise SystemExit(1)


@cli.command("list")
@_dirs
@click.option("--json", "as_json", is_flag=True)
def list_cmd(patterns_dirs: tuple[str, ...], as_json: bool) -> None:
    """List the loaded patterns: name, programs, event, where they come from."""
    try:
        ps = PatternSet.load(patterns_dirs)
    except PatternError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = [{"name": p.name, "family": p.family, "programs": list(p.programs), "event": p.event,
             "prefilter": p.prefilter, "origin": p.origin, "examples": len(p.examples)} for p in ps.patterns]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<45} {r['event']:<13} {','.join(r['programs'])}")
