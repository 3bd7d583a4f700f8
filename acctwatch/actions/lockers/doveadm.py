"""``doveadm``: end the account's open IMAP/POP3 sessions (``doveadm kick USER``) and, when Dovecot caches
authentication, flush the cache so the lock is seen at once. A database lock alone does not end a
session that is already open; this does. Nothing to undo on unlock except flushing the cache again.
"""

from __future__ import annotations

from typing import Any

from .base import Locker, LockResult, check_account


class DoveadmLocker(Locker):
    kind = "doveadm"
    defaults = {
        "doveadm": ["doveadm"],  # e.g. ["doveadm", "-c", "/etc/dovecot/dovecot.conf"]
        "kick": True,
        "flush_auth_cache": False,
        #: exit codes of ``doveadm kick`` that mean success (68 = EX_NOUSER: no session to end)
        "ok_exit_codes": [0, 68],
        "timeout": 30,
    }

    def _flush(self, account: str) -> tuple[bool, str]:
        code, out = self.run([*self.argv_option("doveadm"), "auth", "cache", "flush", account])
        if code != 0:
            return False, f"auth cache flush failed (exit {code}): {out}"
        return True, "auth cache flushed"

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        argv = self.argv_option("doveadm")
        out = [" ".join([*argv, "auth", "cache", "flush", account or "ACCOUNT"])] if self.options["flush_auth_cache"] \
            else []
        if self.options["kick"]:
            out.append(" ".join([*argv, "kick", account or "ACCOUNT"]))
        return out

    def check(self) -> list[str]:
        return self.check_programs("doveadm")

    def lock(self, account: str | None, incident: Any) -> LockResult:
        if account is None:
            return self.result(False, "no account")
        why = check_account(account)
        if why:
            return self.result(False, why)
        notes: list[str] = []
        ok = True
        if self.options["flush_auth_cache"]:
            fok, msg = self._flush(account)
            ok &= fok
            notes.append(msg)
        if self.options["kick"]:
            code, out = self.run([*self.argv_option("doveadm"), "kick", account])
            if code == 0:
                # doveadm's own text ("USER kicked connections from the following users:") reads garbled
                notes.append("open IMAP/POP3 sessions ended (doveadm kick)")
            elif code in self.options["ok_exit_codes"]:
                notes.append(f"no open IMAP/POP3 session to end (doveadm kick exit {code}"
                             f"{': ' + ' '.join(out.split()) if out else ''})")
            else:
                ok = False
                notes.append(f"doveadm kick failed (exit {code}): {out}")
        return self.result(ok, "; ".join(notes) or "nothing configured", changed=ok)

    def unlock(self, account: str | None, saved_state: dict[str, Any]) -> LockResult:
        if account is None or not self.options["flush_auth_cache"] or check_account(account):
            return self.result(True, "nothing to undo")
        ok, msg = self._flush(account)
        return self.result(ok, msg, changed=ok)
