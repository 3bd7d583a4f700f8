"""``acctwatch lock | unlock | status | history | incidents`` through click's CliRunner, on a real SQLite
user table and store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from acctwatch.actions.responder import Responder
from acctwatch.cli import main
from acctwatch.config import load
from acctwatch.engine import Incident
from acctwatch.store import Store


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    users = f"sqlite:///{tmp_path / 'mail.db'}"
    eng = sa.create_engine(users)
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (email TEXT PRIMARY KEY, password TEXT, active INT)"))
        conn.execute(sa.text("INSERT INTO users VALUES ('alice@example.org', 'x', 2), "
                             "('postmaster@example.org', 'x', 1)"))
    db = f"sqlite:///{tmp_path / 'aw.db'}"
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text(f"""
[general]
mode = "dry-run"
db = "{db}"

[response]
lock = ["sql"]
hold = []

[lockers.sql]
url = "{users}"
""")
    return {"cfg": str(cfg), "db": db, "users": eng, "tmp": tmp_path}


def active(eng: sa.Engine, account: str = "alice@example.org") -> int:
    with eng.connect() as conn:
        return int(conn.execute(sa.text("SELECT active FROM users WHERE email = :a"), {"a": account}).scalar())


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_lock_status_history_unlock(setup: dict[str, Any]) -> None:
    c = setup["cfg"]
    r = run("lock", "alice@example.org", "--reason", "phished, user called", "-c", c)
    assert r.exit_code == 0, r.output
    assert "alice@example.org locked." in r.output
    assert f"Undo with: acctwatch unlock -c {c} -- alice@example.org" in r.output  # the same config
    assert active(setup["users"]) == 0  # manual lock acts even though the daemon runs in dry-run
    r = run("lock", "alice@example.org", "--reason", "again", "-c", c)
    assert r.exit_code == 0 and "already locked" in r.output
    r = run("status", "-c", c, "--json")
    data = json.loads(r.output)
    assert data["mode"] == "dry-run" and [x["account"] for x in data["locks"]] == ["alice@example.org"]
    assert data["locks"][0]["reason"] == "phished, user called"
    r = run("status", "alice@example.org", "-c", c)
    assert "sql: locked (value 0)" in r.output
    r = run("history", "alice@example.org", "-c", c, "--json")
    h = json.loads(r.output)
    assert h["lock"]["backends"] == {"sql": {"previous": 2}}
    assert [(a["action"], a["backend"], a["result"]) for a in h["audit"]] == [
        ("lock", "sql", "ok"), ("manual-lock", None, "ok"), ("manual-lock", None, "skipped")]
    assert all(a["actor"] != "acctwatch" for a in h["audit"])  # the Unix user who ran it
    r = run("unlock", "alice@example.org", "--reason", "password reset", "-c", c, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["outcome"] == "unlocked"
    assert active(setup["users"]) == 2
    r = run("unlock", "alice@example.org", "-c", c)
    assert r.exit_code == 1 and "has no lock record" in r.output
    r = run("history", "alice@example.org", "-c", c)
    assert "not locked" in r.output and "password reset" in r.output


def test_lock_protected_needs_force_and_dry_run(setup: dict[str, Any]) -> None:
    c = setup["cfg"]
    r = run("lock", "postmaster@example.org", "--reason", "x", "-c", c)
    assert r.exit_code == 1 and "protected" in r.output and "--force" in r.output
    assert active(setup["users"], "postmaster@example.org") == 1
    r = run("lock", "alice@example.org", "--reason", "x", "--dry-run", "-c", c, "--json")
    assert json.loads(r.output)["outcome"] == "would-lock" and active(setup["users"]) == 2
    r = run("lock", "postmaster@example.org", "--reason", "really", "--force", "-c", c)
    assert r.exit_code == 0 and active(setup["users"], "postmaster@example.org") == 0


def test_incidents_and_status_show_automatic_decisions(setup: dict[str, Any]) -> None:
    cfg = load(setup["cfg"])
    store = Store(setup["db"])
    t = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    inc = Incident("abc123", "alice@example.org", "impossible_travel", "lock", t, t, "London then Lagos",
                   {}, ["81.2.69.142"])
    with store.begin() as conn:
        store.upsert_incident(conn, inc.row())
    Responder(cfg, store)(inc, True)
    r = run("incidents", "-c", setup["cfg"], "--json")
    [i] = json.loads(r.output)
    assert i["id"] == "abc123" and i["ips"] == ["81.2.69.142"]
    r = run("incidents", "-c", setup["cfg"], "--since", "2026-11-27")
    assert "No incidents" in r.output
    r = run("incidents", "-c", setup["cfg"], "--since", "2026-11-25T00:00")
    assert "London then Lagos" in r.output
    r = run("history", "alice@example.org", "-c", setup["cfg"])
    assert "dry-run" in r.output and "would-lock" in r.output
    r = run("status", "-c", setup["cfg"], "--since", "3650d")
    assert "Open incidents (1)" in r.output and "Notifications waiting" not in r.output  # no [notify] target


def test_breaker_reset_and_errors_say_what_to_fix(setup: dict[str, Any], tmp_path: Path) -> None:
    r = run("unlock", "--reset-breaker", "-c", setup["cfg"])
    assert r.exit_code == 0 and "was not open" in r.output
    r = run("unlock", "-c", setup["cfg"])
    assert r.exit_code == 2 and "ACCOUNT" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[general]\nmode = "enforce"\n[response]\nlock = ["sql"]\n')
    r = CliRunner().invoke(main, ["status", "-c", str(bad), "--db", "sqlite://"])
    assert r.exit_code == 1 and "url is required" in r.output and "[lockers.sql]" in r.output
    r = CliRunner().invoke(main, ["history", "a@example.org", "--db", "postgresql+psycopg://u:pw@127.0.0.1:1/x"])
    assert r.exit_code == 1 and "cannot open the acctwatch store" in r.output and "pw" not in r.output
    r = CliRunner().invoke(main, ["incidents", "--since", "yesterday", "--db", "sqlite://"])
    assert r.exit_code == 2 and "duration" in r.output


def test_accounts_that_look_like_options_are_handled_after_double_dash(setup: dict[str, Any]) -> None:
    """An account named --help or -rf@...: the printed undo command puts it after --, and that command
    works (it does not print the help, it unlocks)."""
    c = setup["cfg"]
    with setup["users"].begin() as conn:
        conn.execute(sa.text("INSERT INTO users VALUES ('--help', 'x', 1), ('-rf@example.com', 'x', 1)"))
    for acct in ("--help", "-rf@example.com"):
        r = run("lock", "--reason", "test", "-c", c, "--", acct)
        assert r.exit_code == 0, r.output
        assert f"acctwatch unlock -c {c} -- {acct}" in r.output
        assert active(setup["users"], acct) == 0
        r = run("unlock", "-c", c, "--", acct)
        assert r.exit_code == 0 and f"{acct} unlocked." in r.output, r.output
        assert active(setup["users"], acct) == 1


def test_status_and_history_say_partial_and_held(setup: dict[str, Any]) -> None:
    """A lock whose second backend failed is PARTIAL in status and history (not just "LOCKED"); a hold
    reads HELD."""
    c = setup["cfg"]
    text = Path(c).read_text().replace('lock = ["sql"]\nhold = []', 'lock = ["sql", "fails"]\nhold = ["sql"]')
    Path(c).write_text(text + '\n[lockers.fails]\ntype = "command"\nlock = ["false"]\n')
    r = run("lock", "alice@example.org", "--reason", "test", "-c", c)
    assert r.exit_code == 1 and "only PARTLY locked" in r.output
    r = run("status", "alice@example.org", "-c", c)
    assert "alice@example.org: LOCKED PARTIAL (not done: fails; see `acctwatch history`) by " in r.output
    r = run("history", "alice@example.org", "-c", c)
    assert r.output.startswith("alice@example.org: LOCKED PARTIAL (not done: fails;")
    assert run("unlock", "alice@example.org", "-c", c).exit_code == 0
    r = run("lock", "alice@example.org", "--hold", "--reason", "bulk", "-c", c)
    assert r.exit_code == 0, r.output
    r = run("status", "-c", c)
    assert "alice@example.org: HELD (its mail is held) since" in r.output
    r = run("release", "alice@example.org", "-c", c)
    assert r.exit_code == 0 and "alice@example.org released: its mail flows again." in r.output


def test_lock_dry_run_shows_the_statement_and_commands_and_what_would_fail(setup: dict[str, Any]) -> None:
    c = setup["cfg"]
    text = Path(c).read_text().replace('lock = ["sql"]', 'lock = ["sql", "cmd"]')
    Path(c).write_text(text + '\n[lockers.cmd]\ntype = "command"\nlock = ["/nonexistent/disable-user", "{account}"]\n')
    r = run("lock", "alice@example.org", "--reason", "test", "--dry-run", "-c", c)
    assert r.exit_code == 0, r.output
    assert "sql: would run on sqlite:///" in r.output
    assert "then UPDATE users SET active = 0 WHERE email = :account with :account = 'alice@example.org'" in r.output
    assert "cmd: would run /nonexistent/disable-user alice@example.org" in r.output
    assert "in enforce mode this would fail: [lockers.cmd]: /nonexistent/disable-user: not found" in r.output
    assert active(setup["users"]) == 2  # nothing changed
    r = run("lock", "alice@example.org", "--reason", "test", "--dry-run", "--json", "-c", c)
    assert json.loads(r.output)["plans"]["cmd"] == ["/nonexistent/disable-user alice@example.org"]
