"""Lock backends, one module each, registered by name. ``[lockers.NAME]`` configures one; ``type`` picks
the backend when NAME is not a backend name itself (e.g. two SQL databases: ``[lockers.db2] type = "sql"``).
"""

from __future__ import annotations

import importlib
from typing import Any

from ...config import Config, ConfigError
from .base import LockContext, Locker, LockResult, check_account, map_unix_user

#: backend name -> "module:class" (relative to this package)
BACKENDS: dict[str, str] = {
    "sql": "sql:SqlLocker",
    "passwd": "passwd:PasswdLocker",
    "doveadm": "doveadm:DoveadmLocker",
    "postsuper": "postsuper:PostsuperLocker",
    "sasl_hold": "sasl_hold:SaslHoldLocker",
    "fail2ban": "fail2ban:Fail2banLocker",
    "command": "command:CommandLocker",
}

_extra: dict[str, type[Locker]] = {}


def register(kind: str, cls: type[Locker]) -> None:
    """Register a backend class from outside this package (plugins, tests)."""
    _extra[kind] = cls


def backend_class(kind: str) -> type[Locker]:
    if kind in _extra:
        return _extra[kind]
    target = BACKENDS.get(kind)
    if target is None:
        raise ConfigError(f"unknown lock backend {kind!r}; known: {', '.join(sorted({*BACKENDS, *_extra}))}")
    mod, _, cls = target.partition(":")
    return getattr(importlib.import_module(f".{mod}", __name__), cls)


def build(name: str, config: Config, ctx: LockContext | None = None) -> Locker:
    """The locker configured as ``[lockers.NAME]`` (a backend with defaults when the section is absent)."""
    opts: dict[str, Any] = dict(config.lockers.get(name) or {})
    if not isinstance(config.lockers.get(name, {}), dict):
        raise ConfigError(f"[lockers.{name}] must be a table")
    kind = str(opts.get("type", name))
    return backend_class(kind)(name, opts, ctx or LockContext(config))


__all__ = ["BACKENDS", "LockContext", "LockResult", "Locker", "backend_class", "build", "check_account",
           "map_unix_user", "register"]
