"""``postsuper``: put the account's queued mail on hold so a spam run already queued does not go out;
unlock releases exactly the messages acctwatch held (``postsuper -H``).

Queue ids come from the engine's log join (messages the account submitted after SMTP AUTH) and, unless
``postqueue = false``, from ``postqueue -j`` entries whose envelope sender is the account. Messages that were
already on hold are left out, so unlock never releases mail someone else held.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import LockContext, Locker, LockResult

_QID = re.compile(r"^[0-9A-Za-z]{6,20}$")


class PostsuperLocker(Locker):
    kind = "postsuper"
    holds_mail = True
    defaults = {
        "postsuper": ["postsuper"],
        "postqueue": ["postqueue"],  # set to false to use only the queue ids known from the logs
        "config_dir": None,  # adds -c DIR (a non-default Postfix instance)
        "timeout": 60,
    }

    def __init__(self, name: str, options: dict[str, Any], ctx: LockContext) -> None:
        super().__init__(name, options, ctx)

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        q = "" if self.options.get("postqueue") is False else f"{' '.join(self._argv('postqueue'))} -j (its queued " \
            "messages), then "
        return [f"{q}{' '.join(self._argv('postsuper'))} -h - (the queue ids of {account or 'ACCOUNT'}'s queued "
                "messages, on stdin)"]

    def check(self) -> list[str]:
        return self.check_programs("postsuper", *(() if self.options.get("postqueue") is False else ("postqueue",)))

    def _argv(self, key: str) -> list[str]:
        argv = self.argv_option(key)
        if self.options.get("config_dir"):
            argv += ["-c", str(self.options["config_dir"])]
        return argv

    def _queue(self) -> tuple[list[dict[str, Any]] | None, str]:
        if self.options.get("postqueue") is False:
            return [], ""
        code, out = self.run([*self._argv("postqueue"), "-j"])
        if code != 0:
            return None, f"postqueue -j failed (exit {code}): {out}"
        entries = []
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries, ""

    def lock(self, account: str | None, incident: Any) -> LockResult:
        if account is None:
            return self.result(False, "no account")
        known = list(self.ctx.queue_ids(account)) if self.ctx.queue_ids else []
        queue, err = self._queue()
        notes = [err] if err else []
        held_already: set[str] = set()
        present: set[str] | None = None
        if queue is not None and self.options.get("postqueue") is not False:
            present = set()
            for e in queue:
                qid = str(e.get("queue_id", ""))
                present.add(qid)
                if e.get("queue_name") == "hold":
                    held_already.add(qid)
                elif str(e.get("sender", "")).lower() == account.lower():
                    known.append(qid)
        ids = [q for q in dict.fromkeys(known) if _QID.match(q) and q not in held_already
               and (present is None or q in present)]
        if not ids:
            ok = not err
            return self.result(ok, "; ".join([*notes, "no queued mail of this account to hold"]), queue_ids=[])
        code, out = self.run([*self._argv("postsuper"), "-h", "-"], stdin="\n".join(ids) + "\n")
        if code != 0:
            return self.result(False, "; ".join([*notes, f"postsuper -h failed (exit {code}): {out}"]))
        return self.result(True, "; ".join([*notes, f"{len(ids)} queued message(s) put on hold"]),
                           changed=True, queue_ids=ids)

    def unlock(self, account: str | None, saved_state: dict[str, Any], *, delete_held: bool = False) -> LockResult:
        ids = [q for q in saved_state.get("queue_ids") or [] if _QID.match(str(q))]
        if not ids:
            return self.result(True, "no held mail to release")
        if delete_held:  # only those still in the hold queue (a message released by hand is no longer ours)
            queue, _err = self._queue()
            if queue is not None and self.options.get("postqueue") is not False:
                held = {str(e.get("queue_id")) for e in queue if e.get("queue_name") == "hold"}
                ids = [q for q in ids if q in held]
            if not ids:
                return self.result(True, "no held mail left to delete")
        flag, verb = ("-d", "deleted") if delete_held else ("-H", "released")
        code, out = self.run([*self._argv("postsuper"), flag, "-"], stdin="\n".join(ids) + "\n")
        if code != 0:
            return self.result(False, f"postsuper {flag} failed (exit {code}): {out}; held ids: {' '.join(ids)}")
        return self.result(True, f"{len(ids)} held message(s) {verb}", changed=True)

    def status(self, account: str) -> dict[str, Any]:
        queue, err = self._queue()
        if queue is None:
            return {"locked": None, "detail": err}
        held = [e for e in queue if e.get("queue_name") == "hold"
                and str(e.get("sender", "")).lower() == account.lower()]
        return {"locked": bool(held), "detail": f"{len(held)} message(s) from this sender on hold"}
