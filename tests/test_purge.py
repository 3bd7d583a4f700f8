"""Retention (``[store] retention``, ``acctwatch purge``) through CliRunner on SQLite and PostgreSQL: old rows
go, recent ones stay, a held or locked account keeps its incidents and audit trail, pending alerts stay."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from acctwatch.cli import main
from acctwatch.engine import Incident
from acctwatch.store import Store, bans, feedback, incidents, outbox, utcnow


@pytest.fixture(params=["sqlite", "pg"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'aw.db'}"
    return str(request.getfixturevalue("private_pg_url"))


def _seed(store: Store) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=400), now - timedelta(days=2)
    with store.begin() as conn:
        for i, (acct, t) in enumerate([("old@x", old), ("new@x", recent), ("locked@x", old)]):
            inc = Incident(f"i{i}", acct, "account_risk", "notify", t, t, "s", {}, ["192.0.2.1"])
            store.upsert_incident(conn, inc.row())
            store.audit(conn, action="notify", result="ok", account=acct, incident_id=f"i{i}", ts=t)
        store.put_lock(conn, account="locked@x", level="lock", locked_at=old, incident_id="i2", reason="r",
                       backends={"sql": {"previous": 1}}, actor="acctwatch")
        for key, sent in (("sent-old", old), ("sent-new", recent), ("pending-old", None)):
            store.enqueue(conn, dedupe_key=key, target="operator", urls=["json://x"], title=key, body="b", now=old)
            if sent is not None:
                conn.execute(outbox.update().where(outbox.c.dedupe_key == key).values(sent_at=sent))
        store.add_feedback(conn, account="old@x", action="trust", network="192.0.2.1")
        conn.execute(feedback.update().values(ts=now - timedelta(days=200)))
    store.add_ban("203.0.113.9", "sshd", old)
    store.add_ban("203.0.113.10", "sshd", recent)


def _count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def test_purge_applies_the_retention_and_keeps_what_must_stay(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url)
    _seed(store)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[general]\ndb = "{store_url}"\n[store.retention]\nnotifications = "30d"\n')
    r = CliRunner().invoke(main, ["purge", "-c", str(cfg), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    want = {"incidents": 1, "audit": 1, "notifications": 1, "bans": 1, "feedback": 0}
    assert json.loads(r.output)["would_delete"] == want
    assert _count(store, incidents) == 3 and _count(store, bans) == 2  # dry-run: nothing gone
    r = CliRunner().invoke(main, ["purge", "-c", str(cfg)])
    assert r.exit_code == 0 and "incidents      deleted       1 (older than 365.0 days)" in r.output
    assert {i["account"] for i in store.incidents()} == {"new@x", "locked@x"}  # the locked one's story stays
    assert {a["account"] for a in store.audit_rows()} == {"new@x", "locked@x"}
    assert {o["title"] for o in store.outbox_rows()} == {"sent-new", "pending-old"}  # unsent: never deleted
    assert _count(store, bans) == 1 and _count(store, feedback) == 1
    assert store.get_lock("locked@x") is not None
    # the feedback family by its own retention, and again nothing the second time
    cfg.write_text(f'[general]\ndb = "{store_url}"\n[store.retention]\nfeedback = "30d"\n')
    r = CliRunner().invoke(main, ["purge", "-c", str(cfg), "--json"])
    assert json.loads(r.output)["deleted"] == {"incidents": 0, "audit": 0, "notifications": 0, "bans": 0,
                                               "feedback": 1}
    store.close()


def test_a_bad_retention_is_one_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[store.retention]\nincidents = "a year"\n[store]\n')
    r = CliRunner().invoke(main, ["purge", "-c", str(cfg)])
    assert r.exit_code == 1 and "[store.retention] incidents: expected a duration like" in r.output
    cfg.write_text('[store.retention]\nincident = "30d"\n')
    r = CliRunner().invoke(main, ["purge", "-c", str(cfg)])
    assert r.exit_code == 1 and "[store.retention] unknown key 'incident'; did you mean 'incidents'?" in r.output
