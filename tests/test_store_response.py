"""The store on SQLite, MariaDB and PostgreSQL: schema creation, upgrade from version 1 keeping history,
incident upsert, audit idempotency keys, locks and the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from acctwatch import store as store_mod
from acctwatch.store import SCHEMA_VERSION, Store

T0 = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "mysql", "pg"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty database (created and dropped around the test on the real servers)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = request.getfixturevalue("mysql_url" if request.param == "mysql" else "pg_url")
    name = f"aw_store_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        sa.create_engine(url).dispose()
        with admin.connect() as conn:
            if request.param == "pg":
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def v1_metadata() -> sa.MetaData:
    """The schema as version 1 created it (audit without event_time)."""
    m = sa.MetaData()
    for t in store_mod.metadata.sorted_tables:
        if t.name == "audit":
            cols = [c.copy() for c in t.columns if c.name != "event_time"]
            sa.Table("audit", m, *cols)
        else:
            t.to_metadata(m)
    return m


def test_fresh_schema(db_url: str) -> None:
    s = Store(db_url)
    assert s.schema_version() == SCHEMA_VERSION == 5
    tables = set(sa.inspect(s.engine).get_table_names())
    assert {"meta", "incidents", "audit", "locks", "outbox", "bans", "account_history", "detector_kv",
            "feedback"} <= tables
    assert {"detected_at", "escalations"} <= {c["name"] for c in sa.inspect(s.engine).get_columns("incidents")}
    assert "event_time" in {c["name"] for c in sa.inspect(s.engine).get_columns("audit")}
    Store(db_url)  # opening again changes nothing
    assert s.schema_version() == SCHEMA_VERSION
    s.close()


def test_upgrade_from_v1_keeps_history(db_url: str) -> None:
    eng = sa.create_engine(db_url)
    v1_metadata().create_all(eng)
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO meta (" + ("`key`" if "mysql" in db_url else "key")
                             + ", value) VALUES ('schema_version', '1')"))
        conn.execute(sa.text("INSERT INTO audit (ts, account, action, result, detail, actor, idem_key) VALUES "
                             "(:ts, 'alice@example.org', 'lock', 'ok', 'old row', 'acctwatch', 'k-old')"),
                     {"ts": T0.replace(tzinfo=None)})
        conn.execute(sa.text("INSERT INTO locks (account, level, locked_at, reason, backends, actor) VALUES "
                             "('alice@example.org', 'lock', :ts, 'x', '{\"sql\": {\"previous\": 2}}', 'acctwatch')"),
                     {"ts": T0.replace(tzinfo=None)})
    eng.dispose()
    s = Store(db_url)
    assert s.schema_version() == SCHEMA_VERSION
    [old] = s.audit_rows()
    assert old["detail"] == "old row" and old["event_time"] is None and old["ts"] == T0
    assert s.get_lock("alice@example.org")["backends"] == {"sql": {"previous": 2}}
    with s.begin() as conn:
        assert not s.audit(conn, action="lock", result="ok", idem_key="k-old")
        assert s.audit(conn, action="lock", result="ok", idem_key="k-new", event_time=T0)
        assert s.count_audit(conn, actions=["lock"], results=["ok"], event_since=T0 - timedelta(hours=1),
                             event_until=T0) == 1
    s.close()


def test_upgrade_from_v3_gives_detected_at(db_url: str) -> None:
    m = sa.MetaData()
    for t in store_mod.metadata.sorted_tables:
        if t.name == "feedback":
            continue
        if t.name == "incidents":
            sa.Table("incidents", m, *[c.copy() for c in t.columns if c.name not in ("detected_at", "escalations")])
        else:
            t.to_metadata(m)
    eng = sa.create_engine(db_url)
    m.create_all(eng)
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO meta (" + ("`key`" if "mysql" in db_url else "key")
                             + ", value) VALUES ('schema_version', '3')"))
        conn.execute(sa.text("INSERT INTO incidents (id, account, detector, action, status, first_seen, last_seen, "
                             "summary, evidence, ips, updated, created_at) VALUES ('old', 'a@example.org', "
                             "'geo_countries', 'lock', 'open', :t, :t2, 's', '{}', '[]', 1, :t2)"),
                     {"t": T0.replace(tzinfo=None), "t2": (T0 + timedelta(minutes=3)).replace(tzinfo=None)})
    eng.dispose()
    s = Store(db_url)
    assert s.schema_version() == SCHEMA_VERSION
    [i] = s.incidents()
    assert i["detected_at"] == T0 and i["escalations"] == []
    assert "feedback" in set(sa.inspect(s.engine).get_table_names())
    s.close()


def test_incident_upsert_locks_and_outbox(db_url: str) -> None:
    s = Store(db_url)
    row = {"id": "i1", "account": "jürgen@exämple.org", "detector": "impossible_travel", "action": "lock",
           "first_seen": T0, "last_seen": T0, "summary": "s1", "evidence": {"n": 1}, "ips": ["81.2.69.142"],
           "updated": 0}
    with s.begin() as conn:
        assert s.upsert_incident(conn, row)
        assert not s.upsert_incident(conn, {**row, "last_seen": T0 + timedelta(minutes=5), "summary": "s2",
                                            "updated": 1, "ips": ["81.2.69.142", "89.160.20.112"]})
    [i] = s.incidents(account="jürgen@exämple.org")
    assert i["summary"] == "s2" and i["updated"] == 1 and i["last_seen"] == T0 + timedelta(minutes=5)
    assert i["ips"] == ["81.2.69.142", "89.160.20.112"] and i["status"] == "open"
    with s.begin() as conn:
        s.put_lock(conn, account="a'b@example.org", level="hold", locked_at=T0, incident_id="i1", reason="r",
                   backends={"sql": {"previous": 1}, "doveadm": {}}, actor="acctwatch")
        s.put_lock(conn, account="a'b@example.org", level="lock", locked_at=T0, incident_id="i1", reason="r",
                   backends={"sql": {"previous": 1}, "doveadm": {}, "postsuper": {"queue_ids": ["4F2A81C0A2"]}},
                   actor="acctwatch")
    lk = s.get_lock("a'b@example.org")
    assert lk["level"] == "lock" and list(lk["backends"]) == ["sql", "doveadm", "postsuper"]
    with s.begin() as conn:
        assert s.enqueue(conn, dedupe_key="d1", target="operator", urls=["url:x"], title="t", body="b")
        assert not s.enqueue(conn, dedupe_key="d1", target="operator", urls=["url:x"], title="t", body="b")
        s.set_meta(conn, "breaker:enforce", "{}")
    now = datetime.now(UTC) + timedelta(seconds=1)
    [o] = s.outbox_due(now)
    assert s.outbox_claim(o["id"], o["next_attempt"], now + timedelta(minutes=5))
    assert not s.outbox_claim(o["id"], o["next_attempt"], now + timedelta(minutes=5))  # someone else has it
    s.outbox_sent(o["id"], now)
    assert s.outbox_rows(pending_only=True) == [] and s.get_meta("breaker:enforce") == "{}"
    with s.begin() as conn:
        assert s.delete_lock(conn, "a'b@example.org")
    assert s.locks() == []
    s.close()


def test_responder_on_real_store_and_user_db(db_url: str) -> None:
    """Done-when scenario on each backend: an enforce-mode lock changes the real user table, the audit
    shows it, re-processing writes nothing twice, unlock restores the value."""
    from acctwatch.actions.responder import Responder
    from acctwatch.config import from_dict
    from acctwatch.engine import Incident

    eng = sa.create_engine(db_url)
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (email VARCHAR(320) PRIMARY KEY, password VARCHAR(200), "
                             "active SMALLINT NOT NULL)"))
        conn.execute(sa.text("INSERT INTO users VALUES ('alice@example.org', 'x', 2)"))
    cfg = from_dict({"general": {"mode": "enforce"}, "response": {"lock": ["sql"], "hold": []},
                     "lockers": {"sql": {"url": db_url}}, "notify": {"operator": ["json://127.0.0.1:9/x"]}})
    s = Store(db_url)
    inc = Incident("i-real", "alice@example.org", "impossible_travel", "lock", T0, T0, "s", {}, ["81.2.69.142"])

    def active() -> int:
        with eng.connect() as conn:
            return int(conn.execute(sa.text("SELECT active FROM users")).scalar())

    assert Responder(cfg, s)(inc, True).outcome == "locked"  # type: ignore[union-attr]
    assert active() == 0
    assert Responder(cfg, Store(db_url))(inc, True) is None
    assert [(a["backend"], a["result"]) for a in s.audit_rows()] == [("sql", "ok"), (None, "ok")]
    assert len(s.outbox_rows()) == 1
    assert Responder(cfg, s).unlock_account("alice@example.org", actor="ops").outcome == "unlocked"
    assert active() == 2
    from acctwatch.actions.lockers.sql import _engines

    for e in _engines.values():
        e.dispose()
    eng.dispose()
    s.close()
