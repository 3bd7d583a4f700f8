"""``sql``: the user table Postfix and Dovecot authenticate against (MariaDB/MySQL, PostgreSQL, SQLite).

Statements are configurable and always run with bound parameters (``:account``, ``:previous``,
``:incident_id``, ``:reason``), never string formatting. The default fits the classic virtual-user schema
``users(email, password, active)``. Lock reads the current value first (``select``) and saves it; unlock
writes exactly that value back, so an ``active = 2`` comes back as 2.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ...config import ConfigError
from .base import LockContext, Locker, LockResult

log = logging.getLogger(__name__)

_engines: dict[str, sa.Engine] = {}
#: the start of a self-check line for a database that does not answer (yet): worth waiting for at boot
UNREACHABLE = "cannot connect"
#: an account name no mail system has (the self-check's statements match no row)
PROBE_ACCOUNT = "acctwatch-self-check@invalid."


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _unreachable(exc: BaseException) -> bool:
    """A connection that broke (the server went away), not a statement the server refused."""
    return isinstance(exc, sa.exc.OperationalError) and getattr(exc, "connection_invalidated", False)


def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL for the life of the process."""
    eng = _engines.get(url)
    if eng is None:
        kw: dict[str, Any] = {} if url.startswith("sqlite") else {"pool_pre_ping": True, "pool_recycle": 3600}
        eng = _engines[url] = sa.create_engine(url, **kw)
    return eng


def _params(stmt: sa.TextClause, values: dict[str, Any]) -> dict[str, Any]:
    names = set(stmt._bindparams)
    return {k: v for k, v in values.items() if k in names}


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else str(v)
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


class SqlLocker(Locker):
    kind = "sql"
    defaults = {
        "url": None,
        "select": "SELECT active FROM users WHERE email = :account",
        "lock": "UPDATE users SET active = 0 WHERE email = :account",
        "unlock": "UPDATE users SET active = :previous WHERE email = :account",
        "locked_value": 0,  # the value ``select`` returns for a locked account (status)
        "timeout": 30,
    }

    def __init__(self, name: str, options: dict[str, Any], ctx: LockContext) -> None:
        super().__init__(name, options, ctx)
        url = self.options.get("url")
        if not url or not isinstance(url, str):
            raise ConfigError(f"[lockers.{name}]: url is required: the SQLAlchemy URL of the user database "
                              "Postfix/Dovecot authenticate against, e.g. "
                              "mysql+pymysql://acctwatch:secret@127.0.0.1/mail")
        self.url = url
        self.stmts: dict[str, sa.TextClause] = {}
        for key in ("select", "lock", "unlock"):
            text = self.options.get(key)
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"[lockers.{name}]: {key} must be an SQL statement")
            stmt = sa.text(text)
            if "account" not in stmt._bindparams:
                raise ConfigError(f"[lockers.{name}]: {key} must use the bound parameter :account "
                                  f"(never put values into the SQL text), got {text!r}")
            self.stmts[key] = stmt
        if "previous" not in self.stmts["unlock"]._bindparams:
            raise ConfigError(f"[lockers.{name}]: unlock must restore :previous, the value saved at lock time")

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.url)

    def _values(self, account: str, incident: Any = None, previous: Any = None) -> dict[str, Any]:
        return {"account": account, "previous": previous,
                "incident_id": getattr(incident, "id", None), "reason": getattr(incident, "summary", None)}

    def lock(self, account: str | None, incident: Any) -> LockResult:
        if account is None:
            return self.result(False, "no account to lock")
        vals = self._values(account, incident)
        locked = self.options["locked_value"]
        with self.engine.begin() as conn:
            row = conn.execute(self.stmts["select"], _params(self.stmts["select"], vals)).first()
            if row is None:
                return self.result(False, f"{account!r} not found by select ({self.options['select']}); "
                                          "nothing changed")
            prev = _jsonable(row[0])
            if prev == locked or (prev is not None and str(prev) == str(locked)):
                return self.result(True, f"already locked in the database (value {prev!r})", changed=False,
                                   previous=prev, was_locked=True)
            res = conn.execute(self.stmts["lock"], _params(self.stmts["lock"], vals))
            n = res.rowcount
        if n == 0:
            return self.result(False, "the lock statement changed no row", previous=prev)
        return self.result(True, f"value {prev!r} -> {locked!r} ({n} row{'s' if n != 1 else ''})",
                           changed=True, previous=prev)

    def unlock(self, account: str | None, saved_state: dict[str, Any]) -> LockResult:
        if account is None:
            return self.result(False, "no account to unlock")
        if "previous" not in saved_state:
            return self.result(False, "no saved value to restore (the lock record has no 'previous'): set the "
                                      "column by hand")
        prev = saved_state["previous"]
        if saved_state.get("was_locked"):
            return self.result(True, f"left as it was before acctwatch: value {prev!r} (it was already locked)")
        vals = self._values(account, previous=prev)
        with self.engine.begin() as conn:
            n = conn.execute(self.stmts["unlock"], _params(self.stmts["unlock"], vals)).rowcount
        if n == 0:
            return self.result(False, f"the unlock statement changed no row (account {account!r} gone?)")
        return self.result(True, f"value restored to {prev!r}", changed=True)

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        from ...store import mask_url

        vals = self._values(account or "", incident)
        lock = self.stmts["lock"]
        params = ", ".join(f":{k} = {v!r}" for k, v in _params(lock, vals).items())
        return [f"on {mask_url(self.url)}: {self.options['select']} (the value saved for unlock), then "
                f"{self.options['lock']} with {params}"]

    def check(self) -> list[str]:
        """The driver is installed, the database answers with these credentials, and the select, lock and
        unlock statements run on its table (an account that cannot exist, inside a transaction that is rolled
        back: columns, table and SELECT/UPDATE grants are checked, nothing changes)."""
        from ...store import DRIVER_HINT as _DRIVER_HINT
        from ...store import connect_error_is_fatal, mask_url

        where = f"url {mask_url(self.url)}"
        try:
            eng = self.engine
        except ModuleNotFoundError as exc:
            return [f"{where}: the database driver {exc.name!r} is not installed: "
                    f"{_DRIVER_HINT.get(exc.name or '', 'install it with pip')}"]
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            return [f"{where}: not a usable SQLAlchemy URL ({exc})"]
        probe = self._values(PROBE_ACCOUNT, previous=self.options["locked_value"])
        try:
            with eng.connect() as conn:
                trans = conn.begin()
                try:
                    for key in ("select", "lock", "unlock"):
                        try:
                            conn.execute(self.stmts[key], _params(self.stmts[key], probe))
                        except sa.exc.DBAPIError as exc:
                            if _unreachable(exc):
                                raise
                            return [f"the {key} statement ({self.options[key]}): "
                                    f"{_first_line(exc)} (check the statement, the table and the grants "
                                    f"of the database user)"]
                finally:
                    trans.rollback()
        except ModuleNotFoundError as exc:
            return [f"{where}: the database driver {exc.name!r} is not installed: "
                    f"{_DRIVER_HINT.get(exc.name or '', 'install it with pip')}"]
        except sa.exc.DBAPIError as exc:
            first = _first_line(exc)
            if connect_error_is_fatal(first):
                return [f"{where}: the database refused the connection: {first} (check the user, password "
                        f"and database name in the URL)"]
            return [f"{where}: {UNREACHABLE}: {first}"]
        except Exception as exc:  # anything else the driver raises: still one line, not a traceback
            return [f"{where}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"]
        return []

    def status(self, account: str) -> dict[str, Any]:
        stmt = self.stmts["select"]
        try:
            with self.engine.connect() as conn:
                row = conn.execute(stmt, _params(stmt, self._values(account))).first()
        except Exception as exc:
            return {"locked": None, "detail": f"select failed: {exc}"}
        if row is None:
            return {"locked": None, "detail": "account not found"}
        v = _jsonable(row[0])
        locked = v == self.options["locked_value"] or str(v) == str(self.options["locked_value"])
        return {"locked": locked, "detail": f"value {json.dumps(v)}"}
