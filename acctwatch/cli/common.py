"""Helpers shared by the CLI commands: output formats, progress bars, friendly errors."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


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

