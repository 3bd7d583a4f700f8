"""The ``acctwatch`` command line: a thin click layer over the library.

Each command group lives in its own module here and is registered by name in ``COMMANDS``; a module
exposes a click command or group named ``cli``.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

#: command name -> module (relative to acctwatch.cli) holding a click object named ``cli``
COMMANDS: dict[str, str] = {
    "explain": "explain",
    "patterns": "patterns",
    "replay": "replay",
    "geoip": "geoip",
    "run": "run",
    "lock": "response:lock",
    "unlock": "response:unlock",
    "release": "response:release",
    "status": "response:status",
    "history": "response:history",
    "incidents": "response:incidents",
    "report-ban": "fail2ban:report_ban",
    "profile": "profile:profile",
    "notify": "notify",
    "config": "config",
    "metrics": "metrics",
    "purge": "purge",
    "contrib": "contrib",
    "trust": "profile:trust",
}


#: what ``acctwatch --help`` lists for each command (without importing the commands' modules: the list
#: shows in a few milliseconds; each command's own ``--help`` has its whole text)
SUMMARIES: dict[str, str] = {
    "explain": "Parse log files and show what acctwatch understands of them.",
    "patterns": "Inspect and test the log patterns (built-in and your own).",
    "replay": "Replay archived mail logs through the detectors (no action).",
    "geoip": "GeoIP databases: which are used, and what they say of an IP.",
    "run": "The daemon: follow the mail logs and act on incidents.",
    "lock": "Lock ACCOUNT now with the configured backends.",
    "unlock": "Undo what acctwatch did to ACCOUNT.",
    "release": "End the hold of ACCOUNT, and release or delete its held mail.",
    "status": "Active locks, open incidents, the circuit breaker, the daemon.",
    "history": "ACCOUNT's incidents and every action taken on it.",
    "incidents": "Incidents recorded in the store (and what to do with one).",
    "report-ban": "Record that fail2ban banned an IP (fail2ban's action calls it).",
    "profile": "ACCOUNT's familiarity profile: networks, countries, clients.",
    "notify": "Notifications (apprise): check the configured targets.",
    "config": "Check and show the configuration.",
    "metrics": "Print the daemon's Prometheus metrics (or write them to a file).",
    "purge": "Delete old records by the retention settings.",
    "contrib": "The shipped integration files: fail2ban, systemd, logrotate.",
    "trust": "Make NETWORK familiar for ACCOUNT at once.",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (fast ``--help`` and start-up)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`SUMMARIES` (no command module imported)."""
        rows = [(name, SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        """A user's mistake (config, GeoIP file, log path, database URL or driver) is one line saying what to
        fix and exit status 1, never a traceback; ``-v`` shows the traceback (for a bug report)."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            msg = _user_error(exc)
            if msg is None or ctx.params.get("verbose"):
                raise
            raise click.ClickException(msg) from exc

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod_name, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(f".{mod_name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"{__name__}."):
                return None  # command not built yet in this checkout
            raise
        return getattr(mod, attr or "cli", None)


def _user_error(exc: BaseException) -> str | None:
    from ..config import ConfigError
    from ..geo import GeoError
    from ..parsing import PatternError
    from ..sources.files import SourceError
    from ..store import user_error

    if isinstance(exc, ConfigError | GeoError | PatternError | SourceError):
        return str(exc)
    if isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError | NotADirectoryError) \
            and exc.filename:
        return f"{exc.filename}: {exc.strerror} (check the path and that this user may read it)"
    return user_error(exc)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="acctwatch")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
def main(verbose: int) -> None:
    """Find compromised mail accounts in Postfix and Dovecot logs, and stop them."""
    from ..logsetup import setup

    setup(verbose)
