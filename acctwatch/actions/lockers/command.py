"""``command``: argv templates for anything else, run without a shell.

Placeholders: ``{account}``, ``{user}`` (the Unix-user mapping), ``{localpart}``, ``{domain}``,
``{incident_id}``, ``{ips}`` (comma-separated; an argv element that is exactly ``{ips}`` becomes one element
per IP), ``{reason}``. Values are inserted as whole argv elements or parts of one: no shell ever sees them.
"""

from __future__ import annotations

import re
from typing import Any

from ...config import ConfigError
from .base import LockContext, Locker, LockResult, check_account, map_unix_user

_PH = re.compile(r"\{(\w*)\}")
NAMES = ("account", "user", "localpart", "domain", "incident_id", "ips", "reason")


class CommandLocker(Locker):
    kind = "command"
    defaults = {
        "lock": None,  # argv template, e.g. ["/usr/local/sbin/lock-mail-user", "{account}"]
        "unlock": None,
        "status": None,  # exit 0 = locked, 1 = not locked, other = unknown
        "map": "localpart",
        "users": {},
        "needs_account": True,  # false: also run for per-IP incidents (then {account} is empty)
        "timeout": 30,
    }

    def __init__(self, name: str, options: dict[str, Any], ctx: LockContext) -> None:
        super().__init__(name, options, ctx)
        if not self.options.get("lock"):
            raise ConfigError(f"[lockers.{name}]: lock is required: an argv list like "
                              "[\"/usr/local/bin/mail-lock\", \"{account}\"] (no shell)")
        for key in ("lock", "unlock", "status"):
            if self.options.get(key) is None:
                continue
            for part in self.argv_option(key):
                for m in _PH.finditer(part):
                    if m.group(1) not in NAMES:
                        raise ConfigError(f"[lockers.{name}]: {key}: unknown placeholder {{{m.group(1)}}}; "
                                          f"known: {', '.join('{' + n + '}' for n in NAMES)}")
        self.needs_account = bool(self.options["needs_account"])  # type: ignore[misc]

    def _values(self, account: str | None, incident: Any, state: dict[str, Any] | None = None) -> dict[str, Any]:
        acct = account or ""
        ips = list(getattr(incident, "ips", None) or (state or {}).get("ips") or [])
        return {"account": acct, "user": map_unix_user(acct, self.options) if acct else "",
                "localpart": acct.rpartition("@")[0] if "@" in acct else acct,
                "domain": acct.rpartition("@")[2] if "@" in acct else "",
                "incident_id": getattr(incident, "id", None) or (state or {}).get("incident_id") or "",
                "ips": ips, "reason": getattr(incident, "summary", "") or ""}

    def expand(self, key: str, values: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for part in self.argv_option(key):
            if part == "{ips}":
                out.extend(values["ips"])
                continue
            out.append(_PH.sub(lambda m: ",".join(values["ips"]) if m.group(1) == "ips"
                               else str(values[m.group(1)]), part))
        return out

    def _go(self, key: str, account: str | None, values: dict[str, Any], state: dict[str, Any]) -> LockResult:
        if account is not None and check_account(account):
            return self.result(False, str(check_account(account)))
        argv = self.expand(key, values)
        code, out = self.run(argv)
        if code != 0:
            return self.result(False, f"{argv[0]} exited {code}: {out}")
        return self.result(True, out[-500:] or f"{argv[0]} ok", changed=True, **state)

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        import shlex

        return [shlex.join(self.expand("lock", self._values(account, incident)))]

    def check(self) -> list[str]:
        return self.check_programs(*(k for k in ("lock", "unlock", "status") if self.options.get(k)))

    def lock(self, account: str | None, incident: Any) -> LockResult:
        vals = self._values(account, incident)
        return self._go("lock", account, vals, {"incident_id": vals["incident_id"], "ips": vals["ips"]})

    def unlock(self, account: str | None, saved_state: dict[str, Any]) -> LockResult:
        if not self.options.get("unlock"):
            return self.result(True, "no unlock command configured: nothing to undo")
        return self._go("unlock", account, self._values(account, None, saved_state), {})

    def status(self, account: str) -> dict[str, Any]:
        if not self.options.get("status"):
            return super().status(account)
        code, out = self.run(self.expand("status", self._values(account, None)))
        return {"locked": True if code == 0 else False if code == 1 else None, "detail": out[-200:]}
