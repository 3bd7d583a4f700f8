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
@click.option("--no-cost", is_flag=True, help="Skip the check for super-linear matching time.")
def test_cmd(patterns_dirs: tuple[str, ...], as_json: bool, no_cost: bool) -> None:
    """Run every pattern's embedded examples, and check that no attacker-chosen field can make matching
    slower than linear (each field of each example filled with long runs of the daemons' separators,
    at 2,000 and 4,000 characters); exit 1 if anything fails."""
    from ..parsing import cost_problems

    try:
        ps = PatternSet.load(patterns_dirs)
    except PatternError as exc:
        raise click.ClickException(str(exc)) from exc
    results = run_examples(ps)
    costly = [] if no_cost else cost_problems(ps)
    failed = [r for r in results if not r.ok] + costly
    if as_json:
        emit_json({"patterns": len(ps.patterns), "examples": len(results), "failed": len(failed),
                   "super_linear": len(costly), "failures": [r.__dict__ for r in failed]})
    else:
        for r in failed:
            click.echo(f"FAIL {r.pattern} ({r.origin}): {r.problem}\n     {r.line}")
        click.echo(f"{len(ps.patterns)} patterns, {len(results)} examples, {len(failed)} failed"
                   + ("" if no_cost else f" (matching time checked: {len(costly)} super-linear)"))
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
