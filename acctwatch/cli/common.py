"""Helpers shared by the CLI commands: output formats, progress bars, friendly errors."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click


def cut(text: Any, n: int) -> str:
    """*text* shortened to *n* characters, ending in "…" when something was cut."""
    t = str(text)
    return t if len(t) <= n else t[: n - 1] + "…"


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=str, ensure_ascii=False, indent=2, sort_keys=False))


def emit_jsonl(obj: Any) -> None:
    click.echo(json.dumps(obj, default=str, ensure_ascii=False, separators=(",", ":")))


def is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A progress bar on stderr when it is a terminal; silent when piped or in tests."""

    def __init__(self, total: int | None, label: str, enabled: bool | None = None) -> None:
        self.enabled = is_tty() if enabled is None else enabled
        self._bar: Any = None
        if self.enabled and total:
            self._bar = click.progressbar(length=total, label=label, file=sys.stderr,
                                          show_eta=True, show_percent=True)
            self._bar.__enter__()

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None



def parse_time(value: str | None, option: str = "--since") -> datetime | None:
    """A point in time as every command takes it (``--since``, ``--until``): a duration back from now
    (``24h``, ``7d``, ``90m``) or an ISO 8601 date/time (``2026-11-26``, ``2026-11-26T07:00:00+01:00``; UTC
    unless a zone is given). A bad value is a one-line usage error naming the option."""
    if value is None:
        return None
    from ..config import ConfigError, parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ConfigError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: give a duration (24h, 7d) or an ISO 8601 time "
                                 "(2026-11-26, 2026-11-26T07:00:00+01:00)", param_hint=option) from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
