"""``passwd``: local Unix accounts. Lock with ``usermod -L`` (or ``passwd -l``), unlock with ``-U``/``-u``.

The mail account maps to a Unix user through ``users = {"alice@example.org" = "alice"}`` first, then
``map`` = "localpart" (default: strip the domain) or "same". An account that was already locked before
acctwatch touched it stays locked on unlock.
"""

from __future__ import annotations

from typing import Any

from ...config import ConfigError
from .base import LockContext, Locker, LockResult, check_account, map_unix_user


class PasswdLocker(Locker):
    kind = "passwd"
    defaults = {
        "tool": "usermod",  # usermod or passwd
        "usermod": ["usermod"],
        "passwd": ["passwd"],
        "map": "localpart",
        "users": {},
        "timeout": 30,
    }

    def __init__(self, name: str, options: dict[str, Any], ctx: LockContext) -> None:
        super().__init__(name, options, ctx)
        if self.options["tool"] not in ("usermod", "passwd"):
            raise ConfigError(f"[lockers.{name}]: tool must be 'usermod' or 'passwd'")
        if self.options["map"] not in ("localpart", "same"):
            raise ConfigError(f"[lockers.{name}]: map must be 'localpart' or 'same'")

    def _user(self, account: str) -> tuple[str | None, str]:
        user = map_unix_user(account, self.options)
        why = check_account(user)
        return (None, why) if why else (user, "")

    def _locked(self, user: str) -> bool | None:
        code, out = self.run([*self.argv_option("passwd"), "-S", user])
        if code != 0:
            return None
        parts = out.split()
        return len(parts) > 1 and parts[1] in ("L", "LK")

    def _flag(self, lock: bool) -> list[str]:
        if self.options["tool"] == "usermod":
            return [*self.argv_option("usermod"), "-L" if lock else "-U"]
        return [*self.argv_option("passwd"), "-l" if lock else "-u"]

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        user = map_unix_user(account, self.options) if account else "USER"
        return [" ".join([*self._flag(True), user])]

    def check(self) -> list[str]:
        return self.check_programs(str(self.options["tool"]), "passwd")

    def lock(self, account: str | None, incident: Any) -> LockResult:
        if account is None:
            return self.result(False, "no account to lock")
        user, why = self._user(account)
        if user is None:
            return self.result(False, why)
        if self._locked(user):
            return self.result(True, f"Unix user {user} was already locked", user=user, was_locked=True)
        code, out = self.run([*self._flag(True), user])
        if code != 0:
            return self.result(False, f"locking Unix user {user} failed (exit {code}): {out}")
        return self.result(True, f"Unix user {user} locked", changed=True, user=user, was_locked=False)

    def unlock(self, account: str | None, saved_state: dict[str, Any]) -> LockResult:
        if account is None:
            return self.result(False, "no account to unlock")
        user = saved_state.get("user")
        if not user:
            user, why = self._user(account)
            if user is None:
                return self.result(False, why)
        if saved_state.get("was_locked"):
            return self.result(True, f"Unix user {user} left locked (it was locked before acctwatch)")
        code, out = self.run([*self._flag(False), user])
        if code != 0:
            return self.result(False, f"unlocking Unix user {user} failed (exit {code}): {out}")
        return self.result(True, f"Unix user {user} unlocked", changed=True)

    def status(self, account: str) -> dict[str, Any]:
        user, why = self._user(account)
        if user is None:
            return {"locked": None, "detail": why}
        st = self._locked(user)
        return {"locked": st, "detail": f"Unix user {user}" + ("" if st is not None else ": unknown")}
