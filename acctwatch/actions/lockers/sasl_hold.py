"""``sasl_hold``: a hold that holds. While an account is held, every message it submits goes to Postfix's hold
queue, through Postfix's own ``check_sasl_access`` restriction and an access(5) table acctwatch maintains;
release takes the entry out and puts the account's held mail back in the queue (or deletes it).

``postsuper -h`` (the ``postsuper`` backend) only catches what is queued at the moment of the hold: with a
relay that accepts at once, the rest of a spam run goes out. With this backend in ``[response] hold``
(``hold = ["sasl_hold", "postsuper"]``) the account can still log in, but nothing it sends leaves.

Postfix side (one line, docs/response.md)::

    # main.cf (or -o in master.cf for the submission/submissions services)
    smtpd_sender_restrictions = check_sasl_access hash:/etc/postfix/acctwatch_sasl_hold, ...

    touch /etc/postfix/acctwatch_sasl_hold && postmap hash:/etc/postfix/acctwatch_sasl_hold

acctwatch rewrites the source file (atomically, under a lock file) and runs ``postmap`` after each change;
Postfix daemons notice the new ``.db`` and use it from their next session. Keys are lowercase SASL login
names (the account names of the logs); values ``HOLD acctwatch incident ID``. Lines acctwatch did not write
are kept as they are, so the file may be shared with entries of the admin's own.

Release (``acctwatch unlock`` / ``acctwatch release``) removes the entry acctwatch added and releases
(``postsuper -H``) the messages in the hold queue that this account submitted (SASL login name, from
``postcat -e``, or envelope sender) since the hold began; ``--delete-held`` deletes them instead
(``postsuper -d``). Mail held before the hold began, or by anyone else, is never touched.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from ...config import ConfigError
from .base import LockContext, Locker, LockResult, check_account

_QID = re.compile(r"^[0-9A-Za-z]{6,20}$")
_SECTION = re.compile(r"^\*\*\* ENVELOPE RECORDS \S+?/([0-9A-Za-z]+) \*\*\*$")
MAP_TYPES = ("hash", "lmdb", "btree", "cdb")
#: what a value acctwatch wrote starts with (its own entries, told from the admin's)
MARK = "acctwatch"


class SaslHoldLocker(Locker):
    kind = "sasl_hold"
    holds_mail = True
    defaults = {
        "map": None,  # the access(5) source file, e.g. "/etc/postfix/acctwatch_sasl_hold"
        "map_type": "hash",  # as in main.cf: hash (Debian's default), lmdb, btree, cdb
        "action": "HOLD",  # the access(5) action: HOLD; or e.g. "REJECT 5.7.1 account suspended"
        "postmap": ["postmap"],
        "postsuper": ["postsuper"],
        "postqueue": ["postqueue"],
        "postcat": ["postcat"],
        "config_dir": None,  # adds -c DIR (a non-default Postfix instance)
        "timeout": 60,
    }

    def __init__(self, name: str, options: dict[str, Any], ctx: LockContext) -> None:
        super().__init__(name, options, ctx)
        path = self.options.get("map")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"[lockers.{name}]: map is required: the absolute path of the access(5) file that "
                              "main.cf reads with check_sasl_access, e.g. \"/etc/postfix/acctwatch_sasl_hold\"")
        self.path = Path(path)
        if self.options["map_type"] not in MAP_TYPES:
            raise ConfigError(f"[lockers.{name}]: map_type must be one of {', '.join(MAP_TYPES)}, "
                              f"got {self.options['map_type']!r}")
        action = self.options["action"]
        if not isinstance(action, str) or not action.strip() or "\n" in action:
            raise ConfigError(f"[lockers.{name}]: action must be an access(5) action such as \"HOLD\"")

    # -- helpers -----------------------------------------------------------------------------------
    def _argv(self, key: str) -> list[str]:
        argv = self.argv_option(key)
        if self.options.get("config_dir"):
            argv += ["-c", str(self.options["config_dir"])]
        return argv

    @property
    def table(self) -> str:
        return f"{self.options['map_type']}:{self.path}"

    def _read(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def _write(self, lines: list[str]) -> str | None:
        """Replace the file atomically and rebuild the map; an error text, or None."""
        d = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=d)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.chmod(tmp, self.path.stat().st_mode & 0o777)
            except FileNotFoundError:
                os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return f"cannot write {self.path}: {exc.strerror or exc}"
        code, out = self.run([*self._argv("postmap"), self.table])
        if code != 0:
            return f"postmap {self.table} failed (exit {code}): {out}"
        return None

    def _locked(self) -> Any:
        fh = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115 (closed by the caller)
        fcntl.flock(fh, fcntl.LOCK_EX)
        return fh

    @staticmethod
    def _key(line: str) -> str | None:
        s = line.strip()
        if not s or s.startswith("#"):
            return None
        return s.split(None, 1)[0].lower()

    def _held_mail(self, account: str, since: float) -> tuple[list[str] | None, str]:
        """Queue ids in the hold queue that *account* submitted since *since* (epoch seconds)."""
        code, out = self.run([*self._argv("postqueue"), "-j"])
        if code != 0:
            return None, f"postqueue -j failed (exit {code}): {out}"
        import json

        acct = account.lower()
        mine: list[str] = []
        other: list[str] = []
        for line in out.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            qid = str(e.get("queue_id", ""))
            if e.get("queue_name") != "hold" or not _QID.match(qid):
                continue
            if float(e.get("arrival_time") or 0) < since - 60:  # held before this hold began
                continue
            (mine if str(e.get("sender", "")).lower() == acct else other).append(qid)
        if other:  # a forged envelope sender: the SASL login name in the queue file decides
            code, out = self.run([*self._argv("postcat"), "-e", "-q", *other])
            cur = None
            for line in out.splitlines():
                m = _SECTION.match(line.strip())
                if m:
                    cur = m.group(1)
                elif cur and line.startswith("named_attribute: sasl_username=") and \
                        line.split("=", 1)[1].strip().lower() == acct:
                    mine.append(cur)
        return mine, ""

    # -- the backend -------------------------------------------------------------------------------
    def check(self) -> list[str]:
        out = self.check_programs("postmap", "postsuper", "postqueue", "postcat")
        if not self.path.parent.is_dir():
            out.append(f"{self.path.parent}: no such directory (map = {str(self.path)!r})")
        elif not os.access(self.path.parent, os.W_OK):
            out.append(f"{self.path.parent}: not writable by this user (acctwatch rewrites {self.path} there)")
        elif not self.path.exists():
            out.append(f"{self.path} does not exist: create it (touch {self.path} && postmap {self.table}) and "
                       f"add check_sasl_access {self.table} to smtpd_sender_restrictions in main.cf")
        return out

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        iid = getattr(incident, "id", None) or "manual"
        return [f"add \"{(account or 'ACCOUNT').lower()} {self.options['action']} {MARK} incident {iid}\" to "
                f"{self.path}, then {' '.join(self._argv('postmap'))} {self.table}"]

    def lock(self, account: str | None, incident: Any) -> LockResult:
        if account is None:
            return self.result(False, "no account")
        bad = check_account(account) or ("refusing an account name starting with '#'" if account.startswith("#")
                                         else None)
        if bad:
            return self.result(False, bad)
        key = account.lower()
        iid = getattr(incident, "id", None) or "manual"
        with self._locked():
            lines = self._read()
            if any(self._key(x) == key for x in lines):
                return self.result(True, f"already in {self.table}: new mail stays held", changed=False,
                                   added=False, since=time.time())
            lines.append(f"{key} {self.options['action']} {MARK} incident {iid}")
            err = self._write(lines)
        if err:
            return self.result(False, err)
        return self.result(True, f"new mail held: {key} added to {self.table} (check_sasl_access)", changed=True,
                           added=True, since=time.time())

    def unlock(self, account: str | None, saved_state: dict[str, Any], *, delete_held: bool = False) -> LockResult:
        if account is None:
            return self.result(False, "no account")
        key = account.lower()
        notes = []
        if saved_state.get("added"):
            with self._locked():
                lines = self._read()
                keep = [x for x in lines if not (self._key(x) == key and MARK in x.split(None, 1)[-1])]
                if len(keep) != len(lines):
                    err = self._write(keep)
                    if err:
                        return self.result(False, err)
                    notes.append(f"{key} removed from {self.table}")
        ids, err = self._held_mail(account, float(saved_state.get("since") or 0))
        if ids is None:
            return self.result(False, "; ".join([*notes, err, "held mail left in the hold queue "
                                                  "(release it with postsuper -H)"]))
        if ids:
            flag, verb = ("-d", "deleted") if delete_held else ("-H", "released")
            code, out = self.run([*self._argv("postsuper"), flag, "-"], stdin="\n".join(ids) + "\n")
            if code != 0:
                return self.result(False, "; ".join([*notes, f"postsuper {flag} failed (exit {code}): {out}; "
                                                      f"held ids: {' '.join(ids)}"]))
            notes.append(f"{len(ids)} message(s) held meanwhile {verb}")
        else:
            notes.append("no mail held meanwhile")
        return self.result(True, "; ".join(notes), changed=True)

    def status(self, account: str) -> dict[str, Any]:
        key = account.lower()
        listed = any(self._key(x) == key for x in self._read())
        ids, err = self._held_mail(account, 0.0)
        held = "" if ids is None else f", {len(ids)} message(s) in the hold queue"
        return {"locked": listed, "held_messages": None if ids is None else len(ids),
                "detail": (f"in {self.table}" if listed else f"not in {self.table}") + (held or f"; {err}")}
