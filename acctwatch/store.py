"""The one SQL store (SQLAlchemy 2 Core): incidents, per-account history, checkpoints, locks, audit,
notification outbox and fail2ban bans.

SQLite by default (a file under the state directory); PostgreSQL and MariaDB/MySQL through their URLs.
The schema carries a version in ``meta``; :meth:`Store.migrate` creates missing tables and applies
upgrades in order, so a user upgrading keeps their history.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (stored as naive UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store: use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite without type affinity
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


metadata = sa.MetaData()
S = sa.String

meta = sa.Table("meta", metadata,
                sa.Column("key", S(64), primary_key=True),
                sa.Column("value", sa.Text, nullable=False))

incidents = sa.Table(
    "incidents", metadata,
    sa.Column("id", S(64), primary_key=True),  # deterministic: same input, same id
    sa.Column("account", S(320), nullable=True, index=True),
    sa.Column("detector", S(64), nullable=False),
    sa.Column("action", S(16), nullable=False),  # policy decision: notify, hold, lock
    sa.Column("status", S(16), nullable=False, default="open"),  # open, closed
    sa.Column("first_seen", UTCDateTime, nullable=False, index=True),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON
    sa.Column("ips", sa.Text, nullable=False, default="[]"),  # JSON list of attacking IPs
    sa.Column("updated", sa.Integer, nullable=False, default=0),  # how many findings merged
    sa.Column("instance", S(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # v4: when acctwatch decided (event time of the finding that opened it) and every level change (JSON)
    sa.Column("detected_at", UTCDateTime, nullable=True),
    sa.Column("escalations", sa.Text, nullable=True),
)

history = sa.Table(  # (schema v1; learned history now lives in detector_kv, kept so old stores still open)
    "account_history", metadata,
    sa.Column("account", S(320), primary_key=True),
    sa.Column("kind", S(32), primary_key=True),  # country, asn, send_hour, send_day, login
    sa.Column("key", S(64), primary_key=True),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False, default=0),
    sa.Column("value", sa.Float, nullable=True),
)

checkpoints = sa.Table(
    "checkpoints", metadata,
    sa.Column("source", S(512), primary_key=True),
    sa.Column("position", sa.Text, nullable=False),  # JSON: offset/inode/cursor
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

state = sa.Table(
    "detector_state", metadata,
    sa.Column("name", S(64), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),  # JSON
    sa.Column("event_time", UTCDateTime, nullable=True),
)

locks = sa.Table(
    "locks", metadata,
    sa.Column("account", S(320), primary_key=True),
    sa.Column("level", S(16), nullable=False),  # hold, lock
    sa.Column("locked_at", UTCDateTime, nullable=False),
    sa.Column("incident_id", S(64), nullable=True),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("backends", sa.Text, nullable=False, default="{}"),  # JSON: backend -> saved state for unlock
    sa.Column("actor", S(128), nullable=False, default="acctwatch"),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime, nullable=False, index=True),
    sa.Column("account", S(320), nullable=True, index=True),
    sa.Column("action", S(32), nullable=False),  # lock, unlock, hold, release, notify, breaker, dry-run...
    sa.Column("backend", S(64), nullable=True),
    sa.Column("incident_id", S(64), nullable=True),
    sa.Column("result", S(16), nullable=False),  # ok, failed, skipped, dry-run
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("actor", S(128), nullable=False, default="acctwatch"),
    sa.Column("idem_key", S(200), nullable=True, unique=True),  # makes re-processing idempotent
    # v2: the log time of the incident behind an automatic action (circuit breaker counts by it)
    sa.Column("event_time", UTCDateTime, nullable=True, index=True),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedupe_key", S(200), nullable=False, unique=True),
    sa.Column("incident_id", S(64), nullable=True),
    sa.Column("target", S(32), nullable=False),  # operator, user
    sa.Column("urls", sa.Text, nullable=False),  # JSON list of apprise URLs (or config path)
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    # v5: which instance is sending it (its lease), and the attempts whose outcome is unknown (a timeout
    # after the request went out: the receiver may have it)
    sa.Column("lease_owner", S(128), nullable=True),
    sa.Column("unknown_attempts", sa.Integer, nullable=False, default=0, server_default="0"),
)

bans = sa.Table(
    "bans", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ip", S(64), nullable=False, index=True),
    sa.Column("jail", S(128), nullable=False),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("source", S(64), nullable=False, default="fail2ban"),
    sa.UniqueConstraint("ip", "jail", "ts", name="uq_ban"),
)

feedback = sa.Table(
    "feedback", metadata,  # v4: what operators taught the familiarity profiles (trust, unlock, false positive)
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("account", S(320), nullable=False, index=True),
    sa.Column("action", S(16), nullable=False),  # trust, untrust
    sa.Column("network", S(128), nullable=False),  # an IP, a CIDR or a network key ("AS3320", "203.0.113.0/24")
    sa.Column("incident_id", S(64), nullable=True),
    sa.Column("actor", S(128), nullable=False, default="acctwatch"),
    sa.Column("note", sa.Text, nullable=False, default=""),
)

detector_kv = sa.Table(
    "detector_kv", metadata,  # per-key detector windows (e.g. one row per account), written incrementally
    sa.Column("scope", S(128), primary_key=True),  # the instance ([sources] instance), "" for replay
    sa.Column("detector", S(64), primary_key=True),
    sa.Column("key", S(400), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),  # JSON
)


def _v1_to_v2(conn: Connection) -> None:
    """audit.event_time: the incident's log time, so the circuit breaker survives restarts and replays."""
    cols = {c["name"] for c in sa.inspect(conn).get_columns("audit")}
    if "event_time" not in cols:
        typ = audit.c.event_time.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE audit ADD COLUMN event_time {typ} NULL"))
        conn.execute(sa.text("CREATE INDEX ix_audit_event_time ON audit (event_time)"))


#: Upgrades from version N to N+1 (list index N-1). Each gets a Connection inside a transaction.
def _v2_to_v3(conn: Connection) -> None:
    """detector_kv: created by create_all() before migrations run; nothing to convert."""


def _v3_to_v4(conn: Connection) -> None:
    """incidents.detected_at and incidents.escalations (older incidents: detected_at = first_seen);
    the feedback table is created by create_all()."""
    cols = {c["name"] for c in sa.inspect(conn).get_columns("incidents")}
    if "detected_at" not in cols:
        typ = incidents.c.detected_at.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE incidents ADD COLUMN detected_at {typ} NULL"))
        conn.execute(incidents.update().values(detected_at=incidents.c.first_seen))
    if "escalations" not in cols:
        conn.execute(sa.text("ALTER TABLE incidents ADD COLUMN escalations TEXT NULL"))


def _v4_to_v5(conn: Connection) -> None:
    """outbox.lease_owner and outbox.unknown_attempts."""
    cols = {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
    if "lease_owner" not in cols:
        conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN lease_owner VARCHAR(128) NULL"))
    if "unknown_attempts" not in cols:
        conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN unknown_attempts INTEGER NOT NULL DEFAULT 0"))


MIGRATIONS: list[Any] = [_v1_to_v2, _v2_to_v3, _v3_to_v4, _v4_to_v5]


def mask_url(url: str, whole: bool = False) -> str:
    """A URL with its password masked (for messages and logs): ``scheme://user:***@host/...``. With
    *whole* (a notification URL, whose tokens may be anywhere in the path): ``scheme://***``."""
    import re

    if whole and "://" in url:
        return url.split("://", 1)[0] + "://***"
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


#: connection errors that mean "a mistake to fix" (a wrong password, an unknown database, a missing driver),
#: not "the database is not there yet" (refused, timed out: wait for it)
_FATAL_CONNECT = ("password authentication failed", "access denied", "does not exist", "unknown database",
                  "no such module", "authentication failed", "role ")


#: database driver module -> how to install it
DRIVER_HINT = {
    "pymysql": "pip install 'acctwatch[mysql]' (or apt-get install python3-pymysql)",
    "MySQLdb": "pip install mysqlclient (or use mysql+pymysql:// with pip install 'acctwatch[mysql]')",
    "psycopg2": "apt-get install python3-psycopg2 (or use postgresql+psycopg:// with pip install "
                "'acctwatch[postgresql]')",
    "psycopg": "pip install 'acctwatch[postgresql]'",
}


def user_error(exc: BaseException) -> str | None:
    """What a user must fix, in words, when *exc* is a database problem of theirs (a bad URL, a missing
    driver, an unreachable or refusing server); None for anything else (a bug: keep the traceback)."""
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, ModuleNotFoundError) and exc.name in DRIVER_HINT:
        return f"the database driver {exc.name!r} is not installed: {DRIVER_HINT[exc.name]}"
    if isinstance(exc, sa_exc.NoSuchModuleError | sa_exc.ArgumentError):
        return (f"not a usable database URL ({str(exc).splitlines()[0]}): use e.g. "
                "sqlite:////var/lib/acctwatch/acctwatch.db or postgresql+psycopg://user:password@host/db")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        orig = getattr(exc, "orig", None)
        first = str(orig if orig is not None else exc).strip().splitlines()[0][:300]
        return f"the database refused or did not answer: {first}"
    return None


def connect_error_is_fatal(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _FATAL_CONNECT)


#: the next_attempt of a notification given up (never retried; kept for the record until purged)
GAVE_UP = datetime(9999, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)



#: one encoder for every keyed-state row (json.dumps with options builds a new one per call)
_KV_JSON = json.JSONEncoder(default=str, separators=(",", ":"))
_KV_UPSERT: dict[str, Any] = {}


def _kv_upsert(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT/DUPLICATE KEY UPDATE data`` for detector_kv on *dialect*; None where there is
    no such statement (rows are then deleted and inserted)."""
    if dialect not in _KV_UPSERT:
        stmt: Any = None
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            ins = dialect_insert(detector_kv)
            stmt = ins.on_conflict_do_update(index_elements=[detector_kv.c.scope, detector_kv.c.detector,
                                                             detector_kv.c.key], set_={"data": ins.excluded.data})
        elif dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            ins = mysql_insert(detector_kv)
            stmt = ins.on_duplicate_key_update(data=ins.inserted.data)
        _KV_UPSERT[dialect] = stmt
    return _KV_UPSERT[dialect]


class Store:
    def __init__(self, url: str, create: bool = True) -> None:
        self.url = url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kw: dict[str, Any] = {}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kw["poolclass"] = sa.pool.StaticPool
            kw["connect_args"] = {"check_same_thread": False}
        elif url.startswith("sqlite"):
            kw["connect_args"] = {"timeout": 30}
        else:
            kw["pool_pre_ping"] = True
        self.engine: Engine = sa.create_engine(url, **kw)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if create:
            self.migrate()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- schema -----------------------------------------------------------------------------------
    def schema_version(self) -> int | None:
        insp = sa.inspect(self.engine)
        if not insp.has_table("meta"):
            return None
        with self.engine.connect() as conn:
            v = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        return int(v) if v is not None else None

    def migrate(self) -> None:
        """Create missing tables and upgrade the schema. Safe when several processes start at once (the
        daemon and a CLI command, or two instances on one store): a table or version row that another
        process created in the meantime is not an error."""
        for attempt in range(5):
            try:
                self._migrate()
                return
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as exc:
                text = str(exc).lower()
                if attempt == 4 or not any(w in text for w in ("already exists", "duplicate", "unique",
                                                                "locked")):
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _migrate(self) -> None:
        current = self.schema_version()
        metadata.create_all(self.engine)  # creates only the missing tables
        with self.begin() as conn:
            if current is None:
                if conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar() is None:
                    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"the store {self.safe_url} has schema version {current}, newer than this "
                                   f"acctwatch understands ({SCHEMA_VERSION}): upgrade acctwatch")
            for v in range(current, SCHEMA_VERSION):
                log.warning("upgrading store schema %d -> %d", v, v + 1)
                MIGRATIONS[v - 1](conn)
                conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(v + 1)))

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- incidents --------------------------------------------------------------------------------
    def upsert_incident(self, conn: Connection, row: dict[str, Any]) -> bool:
        """Insert or update an incident by id; True if it was new."""
        values = dict(row)
        values["evidence"] = json.dumps(values["evidence"], default=str, sort_keys=True)
        values["ips"] = json.dumps(values.get("ips", []))
        if "escalations" in values:
            values["escalations"] = json.dumps(values["escalations"], default=str)
        exists = conn.execute(sa.select(incidents.c.id).where(incidents.c.id == values["id"])).first()
        if exists:
            upd = {k: values[k] for k in ("last_seen", "summary", "evidence", "ips", "updated", "action",
                                          "escalations") if k in values}
            conn.execute(incidents.update().where(incidents.c.id == values["id"]).values(**upd))
            return False
        values.setdefault("created_at", utcnow())
        values.setdefault("status", "open")
        conn.execute(incidents.insert().values(**values))
        return True

    def incidents(self, since: datetime | None = None, account: str | None = None,
                  status: str | None = None, incident_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(incidents).order_by(incidents.c.first_seen, incidents.c.id)
        if incident_id is not None:
            q = q.where(incidents.c.id == incident_id)
        if since is not None:
            q = q.where(incidents.c.last_seen >= since)
        if account is not None:  # (accounts are matched case-insensitively, as everywhere else)
            q = q.where(sa.func.lower(incidents.c.account) == account.lower())
        if status is not None:
            q = q.where(incidents.c.status == status)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["evidence"] = json.loads(r["evidence"])
            r["ips"] = json.loads(r["ips"])
            r["escalations"] = json.loads(r["escalations"]) if r.get("escalations") else []
            if r.get("detected_at") is None:
                r["detected_at"] = r["first_seen"]
        return rows

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        """One incident by id (or by a unique prefix of at least 6 characters)."""
        q = sa.select(incidents.c.id).where(incidents.c.id.like(f"{incident_id}%")) if len(incident_id) >= 6 \
            else sa.select(incidents.c.id).where(incidents.c.id == incident_id)
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(q.limit(2))]
        if len(ids) != 1:
            return None
        rows = self.incidents(incident_id=ids[0])
        return rows[0] if rows else None

    def set_incident_status(self, conn: Connection, incident_id: str, status: str) -> None:
        conn.execute(incidents.update().where(incidents.c.id == incident_id).values(status=status))

    # -- operator feedback for the familiarity profiles ----------------------------------------------
    def add_feedback(self, conn: Connection, *, account: str, action: str, network: str,
                     incident_id: str | None = None, actor: str = "acctwatch", note: str = "") -> None:
        conn.execute(feedback.insert().values(ts=utcnow(), account=account.lower(), action=action, network=network,
                                              incident_id=incident_id, actor=actor, note=note))

    def feedback_since(self, last_id: int, account: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(feedback).where(feedback.c.id > last_id).order_by(feedback.c.id)
        if account is not None:
            q = q.where(feedback.c.account == account.lower())
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- detector state and checkpoints -------------------------------------------------------------
    def load_state(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return {r.name: json.loads(r.data) for r in conn.execute(sa.select(state))}

    def save_state(self, conn: Connection, name: str, data: Any, event_time: datetime | None) -> None:
        text = json.dumps(data, default=str, separators=(",", ":"))
        res = conn.execute(state.update().where(state.c.name == name).values(data=text, event_time=event_time))
        if res.rowcount == 0:
            conn.execute(state.insert().values(name=name, data=text, event_time=event_time))

    def load_kv(self, scope: str, detector: str) -> dict[str, Any]:
        q = sa.select(detector_kv.c.key, detector_kv.c.data).where(
            (detector_kv.c.scope == scope) & (detector_kv.c.detector == detector))
        with self.engine.connect() as conn:
            return {r.key: json.loads(r.data) for r in conn.execute(q)}

    def save_kv(self, conn: Connection, scope: str, detector: str, changes: dict[str, Any]) -> None:
        """Apply *changes* (key -> JSON-able data, or None to delete) to a detector's keyed state.

        Written rows are upserted in one statement per 1,000 (the dialect's ``ON CONFLICT`` / ``ON
        DUPLICATE KEY``; a delete and an insert on other databases): a daemon catching up writes every
        account's state at once, and this is most of its commit time."""
        if not changes:
            return
        gone = [k for k, v in changes.items() if v is None]
        for i in range(0, len(gone), 500):
            conn.execute(detector_kv.delete().where((detector_kv.c.scope == scope)
                                                    & (detector_kv.c.detector == detector)
                                                    & detector_kv.c.key.in_(gone[i:i + 500])))
        enc = _KV_JSON.encode
        rows = [{"scope": scope, "detector": detector, "key": k, "data": enc(v)}
                for k, v in changes.items() if v is not None]
        if not rows:
            return
        stmt = _kv_upsert(conn.dialect.name)
        for i in range(0, len(rows), 1000):
            part = rows[i:i + 1000]
            if stmt is None:
                conn.execute(detector_kv.delete().where((detector_kv.c.scope == scope)
                                                        & (detector_kv.c.detector == detector)
                                                        & detector_kv.c.key.in_([r["key"] for r in part])))
                conn.execute(detector_kv.insert(), part)
            else:
                conn.execute(stmt, part)

    def get_checkpoint(self, source: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            v = conn.execute(sa.select(checkpoints.c.position).where(checkpoints.c.source == source)).scalar()
        return json.loads(v) if v else None

    def set_checkpoint(self, conn: Connection, source: str, position: dict[str, Any]) -> None:
        text = json.dumps(position, sort_keys=True)
        res = conn.execute(checkpoints.update().where(checkpoints.c.source == source)
                           .values(position=text, updated_at=utcnow()))
        if res.rowcount == 0:
            conn.execute(checkpoints.insert().values(source=source, position=text, updated_at=utcnow()))

    # -- audit ------------------------------------------------------------------------------------
    def audit(self, conn: Connection, *, action: str, result: str, account: str | None = None,
              backend: str | None = None, incident_id: str | None = None, detail: str = "",
              actor: str = "acctwatch", idem_key: str | None = None, ts: datetime | None = None,
              event_time: datetime | None = None) -> bool:
        """Append an audit row; with *idem_key*, a second row with the same key is not written (False)."""
        if idem_key is not None:
            seen = conn.execute(sa.select(audit.c.id).where(audit.c.idem_key == idem_key)).first()
            if seen:
                return False
        conn.execute(audit.insert().values(ts=ts or utcnow(), account=account, action=action, backend=backend,
                                           incident_id=incident_id, result=result, detail=detail, actor=actor,
                                           idem_key=idem_key, event_time=event_time))
        return True

    def audit_rows(self, account: str | None = None, since: datetime | None = None,
                   incident_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(audit).order_by(audit.c.id)
        if account is not None:
            q = q.where(sa.func.lower(audit.c.account) == account.lower())
        if since is not None:
            q = q.where(audit.c.ts >= since)
        if incident_id is not None:
            q = q.where(audit.c.incident_id == incident_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def decided_levels(self, conn: Connection, incident_id: str) -> set[str]:
        """The levels (notify, hold, lock) an incident was already decided at (its summary audit rows)."""
        q = sa.select(audit.c.action).where((audit.c.incident_id == incident_id) & audit.c.backend.is_(None)
                                            & audit.c.idem_key.like(f"inc:{incident_id}:decided%"))
        return {r.action for r in conn.execute(q)}

    def audit_seen(self, conn: Connection, idem_key: str) -> bool:
        return conn.execute(sa.select(audit.c.id).where(audit.c.idem_key == idem_key)).first() is not None

    def count_audit(self, conn: Connection, *, actions: Iterable[str], results: Iterable[str],
                    event_since: datetime, event_until: datetime) -> int:
        """Accounts (or, without one, incidents) with a summary row (backend NULL) of an automatic action
        whose incident time is in [since, until]: several incidents of one account count once, in dry-run
        as in enforce (where the second is "already locked")."""
        who = sa.func.coalesce(audit.c.account, audit.c.incident_id, sa.cast(audit.c.id, sa.String(20)))
        q = (sa.select(sa.func.count(sa.distinct(who))).select_from(audit)
             .where(audit.c.action.in_(list(actions)), audit.c.result.in_(list(results)),
                    audit.c.backend.is_(None), audit.c.event_time >= event_since,
                    audit.c.event_time <= event_until))
        return int(conn.execute(q).scalar() or 0)

    # -- meta (small key/value flags, e.g. the circuit breaker) -----------------------------------
    def get_meta(self, key: str, conn: Connection | None = None) -> str | None:
        q = sa.select(meta.c.value).where(meta.c.key == key)
        if conn is not None:
            return conn.execute(q).scalar()
        with self.engine.connect() as c:
            return c.execute(q).scalar()

    def set_meta(self, conn: Connection, key: str, value: str | None) -> None:
        if value is None:
            conn.execute(meta.delete().where(meta.c.key == key))
            return
        res = conn.execute(meta.update().where(meta.c.key == key).values(value=value))
        if res.rowcount == 0:
            conn.execute(meta.insert().values(key=key, value=value))

    # -- locks ------------------------------------------------------------------------------------
    def get_lock(self, account: str, conn: Connection | None = None) -> dict[str, Any] | None:
        q = sa.select(locks).where(locks.c.account == account)
        if conn is not None:
            r = conn.execute(q).first()
        else:
            with self.engine.connect() as c:
                r = c.execute(q).first()
        if r is None:
            return None
        d = dict(r._mapping)
        d["backends"] = json.loads(d["backends"] or "{}")
        return d

    def put_lock(self, conn: Connection, *, account: str, level: str, locked_at: datetime,
                 incident_id: str | None, reason: str, backends: dict[str, Any], actor: str) -> None:
        """Insert or replace the lock record of *account* (backend -> saved state for unlock)."""
        values = {"level": level, "locked_at": locked_at, "incident_id": incident_id, "reason": reason,
                  "backends": json.dumps(backends, default=str), "actor": actor}  # keeps lock order
        res = conn.execute(locks.update().where(locks.c.account == account).values(**values))
        if res.rowcount == 0:
            conn.execute(locks.insert().values(account=account, **values))

    def delete_lock(self, conn: Connection, account: str) -> bool:
        return bool(conn.execute(locks.delete().where(locks.c.account == account)).rowcount)

    def purge(self, retention: dict[str, float], now: datetime | None = None,
              dry_run: bool = False) -> dict[str, int]:
        """Delete what is older than its family's retention (seconds): ``incidents`` (by last_seen),
        ``audit`` (by time), ``notifications`` (sent or given up), ``bans``, ``feedback``. What a held or
        locked account's undo and story need is kept while it is held or locked (its incidents and audit
        rows); alerts not sent yet are never deleted. Returns rows deleted (or that would be) per family."""
        now = now or utcnow()
        cut = {k: now - timedelta(seconds=float(v)) for k, v in retention.items()}
        out: dict[str, int] = {}
        with self.begin() as conn:
            held = sa.select(locks.c.account)
            where = {
                "incidents": (incidents.c.last_seen < cut["incidents"])
                & ~sa.func.coalesce(incidents.c.account, "").in_(held) if "incidents" in cut else None,
                "audit": (audit.c.ts < cut["audit"]) & ~sa.func.coalesce(audit.c.account, "").in_(held)
                if "audit" in cut else None,
                "notifications": ((outbox.c.sent_at.is_not(None) & (outbox.c.sent_at < cut["notifications"]))
                                  | ((outbox.c.next_attempt >= GAVE_UP) & (outbox.c.created_at
                                                                           < cut["notifications"])))
                if "notifications" in cut else None,
                "bans": bans.c.ts < cut["bans"] if "bans" in cut else None,
                "feedback": feedback.c.ts < cut["feedback"] if "feedback" in cut else None,
            }
            tables = {"incidents": incidents, "audit": audit, "notifications": outbox, "bans": bans,
                      "feedback": feedback}
            for fam, cond in where.items():
                if cond is None:
                    continue
                t = tables[fam]
                n = int(conn.execute(sa.select(sa.func.count()).select_from(t).where(cond)).scalar() or 0)
                if n and not dry_run:
                    conn.execute(t.delete().where(cond))
                out[fam] = n
        return out

    def locks(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(locks).order_by(locks.c.locked_at))]
        for r in rows:
            r["backends"] = json.loads(r["backends"] or "{}")
        return rows

    # -- notification outbox ----------------------------------------------------------------------
    def enqueue(self, conn: Connection, *, dedupe_key: str, target: str, urls: list[str], title: str,
                body: str, incident_id: str | None = None, now: datetime | None = None) -> bool:
        """Queue one notification; False (nothing written) when *dedupe_key* was queued before."""
        seen = conn.execute(sa.select(outbox.c.id).where(outbox.c.dedupe_key == dedupe_key)).first()
        if seen:
            return False
        now = now or utcnow()
        conn.execute(outbox.insert().values(dedupe_key=dedupe_key, incident_id=incident_id, target=target,
                                            urls=json.dumps(urls), title=title, body=body, created_at=now,
                                            attempts=0, next_attempt=now))
        return True

    def outbox_due(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        q = (sa.select(outbox).where(outbox.c.sent_at.is_(None), outbox.c.next_attempt <= now)
             .order_by(outbox.c.next_attempt, outbox.c.id).limit(limit))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["urls"] = json.loads(r["urls"] or "[]")
        return rows

    def outbox_rows(self, pending_only: bool = False) -> list[dict[str, Any]]:
        q = sa.select(outbox).order_by(outbox.c.id)
        if pending_only:
            q = q.where(outbox.c.sent_at.is_(None))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["urls"] = json.loads(r["urls"] or "[]")
        return rows

    def outbox_claim(self, row_id: int, seen_next_attempt: datetime, lease_until: datetime,
                     owner: str | None = None) -> bool:
        """Take a due row for sending (another process delivering at the same time then skips it)."""
        with self.begin() as conn:
            res = conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.sent_at.is_(None),
                                                     outbox.c.next_attempt == seen_next_attempt)
                               .values(next_attempt=lease_until, lease_owner=owner))
            return res.rowcount == 1

    def outbox_take_over(self, owner: str, now: datetime) -> int:
        """At start: this instance's unfinished deliveries (leased by its previous run, killed while sending)
        are due at once instead of when their lease runs out."""
        with self.begin() as conn:
            res = conn.execute(outbox.update().where(outbox.c.lease_owner == owner, outbox.c.sent_at.is_(None),
                                                     outbox.c.next_attempt > now)
                               .values(next_attempt=now, lease_owner=None))
            return int(res.rowcount or 0)

    def outbox_unknown(self, row_id: int, error: str, next_attempt: datetime) -> None:
        """An attempt whose outcome is unknown (timed out after sending): counted apart."""
        with self.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id)
                         .values(attempts=outbox.c.attempts + 1, unknown_attempts=outbox.c.unknown_attempts + 1,
                                 next_attempt=next_attempt, last_error=error[:2000], lease_owner=None))

    def outbox_sent(self, row_id: int, now: datetime) -> None:
        with self.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id)
                         .values(sent_at=now, attempts=outbox.c.attempts + 1, last_error=None, lease_owner=None))

    def outbox_failed(self, row_id: int, error: str, next_attempt: datetime) -> None:
        with self.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id)
                         .values(attempts=outbox.c.attempts + 1, next_attempt=next_attempt,
                                 last_error=error[:2000], lease_owner=None))

    # -- bans -------------------------------------------------------------------------------------
    def add_ban(self, ip: str, jail: str, ts: datetime, source: str = "fail2ban") -> bool:
        with self.begin() as conn:
            seen = conn.execute(sa.select(bans.c.id).where((bans.c.ip == ip) & (bans.c.jail == jail)
                                                           & (bans.c.ts == ts))).first()
            if seen:
                return False
            conn.execute(bans.insert().values(ip=ip, jail=jail, ts=ts, source=source))
            return True

    def bans_since(self, since: datetime) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(bans).where(bans.c.ts >= since))]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
