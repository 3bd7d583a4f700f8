"""The lock backend interface: ``lock(account, incident) -> LockResult`` (with the state needed to undo it),
``unlock(account, saved_state) -> LockResult`` and ``status(account)``.

A backend never raises for an expected failure (missing account, command failed): it returns a
``LockResult`` with ``ok=False`` and a detail an admin can act on. Unexpected exceptions are caught by the
caller and reported the same way, so one failing backend never stops the others.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...config import Config, ConfigError

log = logging.getLogger(__name__)


@dataclass
class LockResult:
    backend: str
    ok: bool
    changed: bool = False  # False: nothing to do (already in the wanted state) or failed
    state: dict[str, Any] = field(default_factory=dict)  # what unlock needs to undo exactly this
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "ok": self.ok, "changed": self.changed, "state": self.state,
                "detail": self.detail}

    @property
    def result(self) -> str:
        return "ok" if self.ok else "failed"


@dataclass
class LockContext:
    """What backends may use besides their options."""

    config: Config
    #: account -> Postfix queue ids known from the log join (the engine's ``engine.join.queue_ids``)
    queue_ids: Callable[[str], list[str]] | None = None


class Locker:
    kind: ClassVar[str] = ""
    #: False for backends that act on the incident's IPs only (they also run for per-IP incidents)
    needs_account: ClassVar[bool] = True
    #: backends that hold mail: their ``unlock`` takes ``delete_held=True`` (delete it instead of releasing)
    holds_mail: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str, options: dict[str, Any], ctx: LockContext) -> None:
        self.name = name
        unknown = set(options) - set(self.defaults) - {"type"}
        if unknown:
            raise ConfigError(f"[lockers.{name}]: unknown option(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(self.defaults)) or '(none)'}, type")
        self.options: dict[str, Any] = {**self.defaults, **options}
        self.ctx = ctx

    def lock(self, account: str | None, incident: Any) -> LockResult:
        raise NotImplementedError

    def unlock(self, account: str | None, saved_state: dict[str, Any]) -> LockResult:
        raise NotImplementedError

    def status(self, account: str) -> dict[str, Any]:
        """``{"locked": True/False/None (unknown), "detail": str}``."""
        return {"locked": None, "detail": "this backend cannot report a status"}

    def close(self) -> None:
        return None

    def check(self) -> list[str]:
        """Whether this backend can work at all, without changing anything: one line per problem (what to
        fix), empty when it can. Run at start and on SIGHUP: in enforce mode a problem stops the daemon
        (better now than at the first incident), in dry-run it is a warning."""
        return []

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        """What ``lock`` would run, as an admin reads it (the statement with its parameters, the commands
        with their arguments), without running anything: for dry-run alerts and ``lock --dry-run``."""
        return [f"the {self.kind} backend"]

    def check_programs(self, *keys: str) -> list[str]:
        """The first word of each argv option *keys* is a program that exists and may be run."""
        out = []
        for key in keys:
            try:
                argv = self.argv_option(key)
            except ConfigError as exc:
                out.append(str(exc))
                continue
            prog = argv[0]
            found = shutil.which(prog)
            if found is None:
                where = "not found" if "/" in prog else "not found in PATH"
                base = prog.rsplit("/", 1)[-1]
                out.append(f"{prog}: {where} (install it, or set {key} = [\"/full/path/{base}\", ...] in "
                           f"[lockers.{self.name}])")
        return out

    # helpers
    def result(self, ok: bool, detail: str, changed: bool = False, **state: Any) -> LockResult:
        return LockResult(self.name, ok, changed, dict(state), detail)

    def argv_option(self, key: str) -> list[str]:
        v = self.options.get(key)
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"[lockers.{self.name}]: {key} must be a non-empty list of strings (an argv), "
                              f"got {v!r}")
        return list(v)

    def run(self, argv: Sequence[str], stdin: str | None = None) -> tuple[int, str]:
        """Run *argv* without a shell; (exit code, stdout+stderr). A missing program is exit code 127."""
        timeout = float(self.options.get("timeout", 30))
        try:
            p = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout,
                               check=False)
        except FileNotFoundError:
            return 127, f"{argv[0]}: command not found (set the argv in [lockers.{self.name}])"
        except PermissionError as exc:
            return 126, f"{argv[0]}: {exc.strerror}"
        except subprocess.TimeoutExpired:
            return 124, f"{' '.join(argv)}: timed out after {timeout:.0f} s"
        out = (p.stdout or "") + (p.stderr or "")
        return p.returncode, out.strip()


_BAD = re.compile(r"[\x00-\x20\x7f]")


def check_account(account: str) -> str | None:
    """Why *account* must not be passed to a command (None when it is fine).

    Account names come from logs, i.e. partly from attackers: no option-like names, no whitespace or
    control characters, nothing longer than an e-mail address can be.
    """
    if not account:
        return "empty account name"
    if account.startswith("-"):
        return f"refusing account name starting with '-': {account!r}"
    if _BAD.search(account):
        return f"refusing account name with whitespace or control characters: {account!r}"
    if len(account) > 320:
        return "refusing account name longer than 320 characters"
    return None


def map_unix_user(account: str, options: dict[str, Any]) -> str:
    """Mail account -> Unix user: ``users`` mapping first, then ``map`` = "localpart" (default) or "same"."""
    users = options.get("users") or {}
    for k, v in users.items():
        if k.lower() == account.lower():
            return str(v)
    how = options.get("map", "localpart")
    if how == "same":
        return account
    if how == "localpart":
        return account.rpartition("@")[0] if "@" in account else account
    raise ConfigError(f"map must be 'localpart' or 'same', got {how!r}")
