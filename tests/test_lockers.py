"""Lock backends against real components: the ``sql`` locker on SQLite, MariaDB and PostgreSQL; ``passwd``
on a real local user; ``doveadm``/``postsuper``/``fail2ban``/``command`` through a fake program that records
its argv (the real daemons are exercised by the e2e tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from acctwatch.actions.lockers import LockContext, build, check_account
from acctwatch.config import Config, ConfigError, from_dict
from acctwatch.engine import Incident

T0 = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
HOSTILE = [
    "x' OR '1'='1",
    "robert'); DROP TABLE {t}; --@example.org",
    'quo"ted@example.org',
    "jürgen@exämple.org",
    "back\\slash@example.org",
    "‮gro.elpmaxe@evil",
]


def incident(account: str | None = "alice@example.org", ips: list[str] | None = None,
             action: str = "lock") -> Incident:
    return Incident(f"inc{uuid.uuid4().hex[:8]}", account, "impossible_travel", action, T0, T0,
                    "impossible travel", {"from": {"ip": "81.2.69.142"}}, ips or ["81.2.69.142"])


def cfg(lockers: dict[str, Any]) -> Config:
    return from_dict({"lockers": lockers})


# -- sql -------------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "mysql", "pg"])
def user_db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """(url, table) with users(email, password, active); a fresh table per test, dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mail.db'}"
    else:
        url = request.getfixturevalue("mysql_url" if request.param == "mysql" else "pg_url")
    table = f"aw_users_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (email VARCHAR(320) PRIMARY KEY, password VARCHAR(200), "
                             "active SMALLINT NOT NULL DEFAULT 1)"))
        rows = [{"e": "alice@example.org", "a": 1}, {"e": "bob@example.org", "a": 2},
                {"e": "carol@example.org", "a": 0}]
        rows += [{"e": h.format(t=table), "a": 1} for h in HOSTILE]
        conn.execute(sa.text(f"INSERT INTO {table} (email, password, active) VALUES (:e, 'x', :a)"), rows)
    yield url, table, eng
    with eng.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    eng.dispose()


def sql_locker(url: str, table: str) -> Any:
    return build("sql", cfg({"sql": {
        "url": url,
        "select": f"SELECT active FROM {table} WHERE email = :account",
        "lock": f"UPDATE {table} SET active = 0 WHERE email = :account",
        "unlock": f"UPDATE {table} SET active = :previous WHERE email = :account",
    }}))


def actives(eng: sa.Engine, table: str) -> dict[str, int]:
    with eng.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(sa.text(f"SELECT email, active FROM {table}"))}


def test_sql_lock_and_unlock_restores_exact_value(user_db: Any) -> None:
    url, table, eng = user_db
    lk = sql_locker(url, table)
    before = actives(eng, table)
    r = lk.lock("bob@example.org", incident("bob@example.org"))
    assert r.ok and r.changed and r.state == {"previous": 2}
    assert actives(eng, table)["bob@example.org"] == 0
    assert lk.status("bob@example.org")["locked"] is True
    state = json.loads(json.dumps(r.state))  # what the locks table keeps
    u = lk.unlock("bob@example.org", state)
    assert u.ok and u.changed
    assert actives(eng, table) == before  # active was 2 -> back to 2, nothing else touched
    assert lk.status("bob@example.org")["locked"] is False


def test_sql_already_locked_stays_locked_on_unlock(user_db: Any) -> None:
    url, table, eng = user_db
    lk = sql_locker(url, table)
    r = lk.lock("carol@example.org", incident("carol@example.org"))
    assert r.ok and not r.changed and r.state["was_locked"]
    assert lk.unlock("carol@example.org", r.state).ok
    assert actives(eng, table)["carol@example.org"] == 0


def test_sql_unknown_account_is_reported_not_changed(user_db: Any) -> None:
    url, table, eng = user_db
    before = actives(eng, table)
    r = sql_locker(url, table).lock("nobody@example.org", incident("nobody@example.org"))
    assert not r.ok and "not found" in r.detail
    assert actives(eng, table) == before


@pytest.mark.parametrize("hostile", HOSTILE)
def test_sql_hostile_account_names_cannot_inject(user_db: Any, hostile: str) -> None:
    url, table, eng = user_db
    name = hostile.format(t=table)
    lk = sql_locker(url, table)
    before = actives(eng, table)
    r = lk.lock(name, incident(name))
    assert r.ok and r.changed, r.detail
    after = actives(eng, table)
    assert after[name] == 0
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != name}
    assert lk.unlock(name, r.state).ok
    assert actives(eng, table) == before


def test_sql_default_statements_fit_classic_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (email TEXT PRIMARY KEY, password TEXT, active INT)"))
        conn.execute(sa.text("INSERT INTO users VALUES ('alice@example.org', 'x', 1)"))
    lk = build("sql", cfg({"sql": {"url": url}}))
    r = lk.lock("alice@example.org", incident())
    assert r.ok and actives(eng, "users")["alice@example.org"] == 0
    assert lk.unlock("alice@example.org", r.state).ok
    assert actives(eng, "users")["alice@example.org"] == 1


def test_sql_config_errors_say_what_to_fix() -> None:
    with pytest.raises(ConfigError, match="url is required"):
        build("sql", cfg({"sql": {}}))
    with pytest.raises(ConfigError, match=":account"):
        build("sql", cfg({"sql": {"url": "sqlite://", "lock": "UPDATE users SET active = 0 WHERE email = 'x'"}}))
    with pytest.raises(ConfigError, match=r"\[lockers.sql\] unknown key 'statment'"):
        build("sql", cfg({"sql": {"url": "sqlite://", "statment": "x"}}))
    with pytest.raises(ConfigError, match="unknown lock backend"):
        build("nope", cfg({}))


# -- passwd ----------------------------------------------------------------------------------------
def _passwd_status(user: str) -> str:
    return subprocess.run(["passwd", "-S", user], capture_output=True, text=True, check=True).stdout.split()[1]


@pytest.mark.parametrize("tool", ["usermod", "passwd"])
def test_passwd_locks_real_local_user(tool: str) -> None:
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("usermod"):
        pytest.skip("needs root and useradd/usermod (CI runs as root)")
    user = f"awt{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", user], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{user}:S3cret-{uuid.uuid4().hex}\n", text=True, check=True)
        assert _passwd_status(user) == "P"
        lk = build("passwd", cfg({"passwd": {"tool": tool}}))
        r = lk.lock(f"{user}@example.org", incident(f"{user}@example.org"))
        assert r.ok and r.changed, r.detail
        assert _passwd_status(user) == "L"
        assert lk.status(f"{user}@example.org")["locked"] is True
        # locking again changes nothing, and unlock then leaves it as it was (locked)
        again = lk.lock(f"{user}@example.org", incident(f"{user}@example.org"))
        assert again.ok and not again.changed and again.state["was_locked"]
        assert lk.unlock(f"{user}@example.org", again.state).ok
        assert _passwd_status(user) == "L"
        u = lk.unlock(f"{user}@example.org", r.state)
        assert u.ok and u.changed, u.detail
        assert _passwd_status(user) == "P"
    finally:
        subprocess.run(["userdel", user], check=False)


def test_passwd_mapping_and_refusals() -> None:
    lk = build("passwd", cfg({"passwd": {"users": {"Boss@Example.org": "chief"}}}))
    assert lk._user("boss@example.org") == ("chief", "")
    assert lk._user("alice@example.org") == ("alice", "")
    assert lk._user("-rf@example.org")[0] is None
    r = lk.lock("a b@example.org", incident())
    assert not r.ok and "whitespace" in r.detail
    assert check_account("ok@example.org") is None


# -- command-style fakes ---------------------------------------------------------------------------
class Fake:
    """A program that appends its argv and stdin to a log, prints a canned output and exits with a code."""

    def __init__(self, d: Path, name: str) -> None:
        self.dir = d
        self.path = d / name
        self.log = d / f"{name}.calls"
        self.out = d / f"{name}.out"
        self.code = d / f"{name}.code"
        self.path.write_text(f"""#!{sys.executable}
import json, sys
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open({str(self.log)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
try:
    sys.stdout.write(open({str(self.out)!r}).read())
except FileNotFoundError:
    pass
try:
    sys.exit(int(open({str(self.code)!r}).read()))
except FileNotFoundError:
    sys.exit(0)
""")
        self.path.chmod(0o755)

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(x) for x in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls()]

    def set(self, output: str = "", code: int = 0) -> None:
        self.out.write_text(output)
        self.code.write_text(str(code))


@pytest.fixture
def fake(tmp_path: Path) -> Any:
    return lambda name="tool": Fake(tmp_path, name)


def test_doveadm_kicks_and_flushes(fake: Any) -> None:
    f = fake("doveadm")
    lk = build("doveadm", cfg({"doveadm": {"doveadm": [str(f.path), "-c", "/etc/dovecot/x.conf"],
                                           "flush_auth_cache": True}}))
    r = lk.lock("alice@example.org", incident())
    assert r.ok, r.detail
    assert f.argvs() == [["-c", "/etc/dovecot/x.conf", "auth", "cache", "flush", "alice@example.org"],
                         ["-c", "/etc/dovecot/x.conf", "kick", "alice@example.org"]]
    assert lk.unlock("alice@example.org", r.state).ok
    assert f.argvs()[-1][-4:] == ["auth", "cache", "flush", "alice@example.org"]


def test_doveadm_kick_detail_reads_well(fake: Any) -> None:
    """Real doveadm 2.3 output (seen in tests/e2e): exit 0 prints the user before its heading, exit 68 when
    there was no session; the alert says what happened in plain words instead."""
    f = fake("doveadm")
    lk = build("doveadm", cfg({"doveadm": {"doveadm": [str(f.path)]}}))
    f.set("alice@example.org kicked connections from the following users:\n\n", 0)
    r = lk.lock("alice@example.org", incident())
    assert r.ok and r.detail == "open IMAP/POP3 sessions ended (doveadm kick)"
    f.set("no users kicked\n", 68)
    r = lk.lock("alice@example.org", incident())
    assert r.ok and r.detail == "no open IMAP/POP3 session to end (doveadm kick exit 68: no users kicked)"


def test_doveadm_failure_and_missing_program_are_reported(fake: Any) -> None:
    f = fake("doveadm")
    f.set("Fatal: Error reading configuration", 89)
    r = build("doveadm", cfg({"doveadm": {"doveadm": [str(f.path)]}})).lock("alice@example.org", incident())
    assert not r.ok and "exit 89" in r.detail and "Fatal" in r.detail
    r = build("doveadm", cfg({"doveadm": {"doveadm": ["/nonexistent/doveadm"]}})).lock("a@example.org", incident())
    assert not r.ok and "command not found" in r.detail
    r = build("doveadm", cfg({"doveadm": {"doveadm": [str(f.path)]}})).lock("--all", incident())
    assert not r.ok and "'-'" in r.detail


def test_postsuper_holds_known_and_queued_mail_and_releases_only_those(fake: Any) -> None:
    ps, pq = fake("postsuper"), fake("postqueue")
    queue = [
        {"queue_name": "active", "queue_id": "4F2A81C0A2", "sender": "alice@example.org"},
        {"queue_name": "deferred", "queue_id": "5B3C92D1B3", "sender": "ALICE@example.org"},
        {"queue_name": "hold", "queue_id": "6C4DA3E2C4", "sender": "alice@example.org"},  # held by someone else
        {"queue_name": "deferred", "queue_id": "7D5EB4F3D5", "sender": "bob@example.org"},
        {"queue_name": "incoming", "queue_id": "8E6FC5A4E6", "sender": "forged@example.net"},
    ]
    pq.set("\n".join(json.dumps(q) for q in queue) + "\n")
    ctx = LockContext(Config(), queue_ids=lambda a: ["8E6FC5A4E6", "GONE123456", "bad id;rm"])
    c = cfg({"postsuper": {"postsuper": [str(ps.path)], "postqueue": [str(pq.path)], "config_dir": "/etc/postfix-out"}})
    lk = build("postsuper", c, ctx)
    r = lk.lock("alice@example.org", incident())
    assert r.ok and r.changed, r.detail
    assert pq.argvs() == [["-c", "/etc/postfix-out", "-j"]]
    assert ps.argvs() == [["-c", "/etc/postfix-out", "-h", "-"]]
    held = ps.calls()[0]["stdin"].split()
    assert held == ["8E6FC5A4E6", "4F2A81C0A2", "5B3C92D1B3"]
    assert r.state["queue_ids"] == held
    u = lk.unlock("alice@example.org", r.state)
    assert u.ok and "3 held" in u.detail
    assert ps.argvs()[-1] == ["-c", "/etc/postfix-out", "-H", "-"]
    assert ps.calls()[-1]["stdin"].split() == held


def test_postsuper_nothing_queued(fake: Any) -> None:
    ps, pq = fake("postsuper"), fake("postqueue")
    lk = build("postsuper", cfg({"postsuper": {"postsuper": [str(ps.path)], "postqueue": [str(pq.path)]}}))
    r = lk.lock("alice@example.org", incident())
    assert r.ok and not r.changed and ps.calls() == []


def test_fail2ban_bans_incident_ips_and_unbans_them(fake: Any) -> None:
    f = fake("fail2ban-client")
    lk = build("fail2ban", cfg({"fail2ban": {"client": [str(f.path)], "jail": "acctwatch"}}))
    inc = incident(ips=["81.2.69.142", "::ffff:89.160.20.112", "127.0.0.1", "not-an-ip; reboot", "81.2.69.142"])
    r = lk.lock(None, inc)  # per-IP incidents have no account
    assert r.ok and r.state == {"jail": "acctwatch", "ips": ["81.2.69.142", "89.160.20.112"]}
    assert f.argvs() == [["set", "acctwatch", "banip", "81.2.69.142"], ["set", "acctwatch", "banip", "89.160.20.112"]]
    assert "not banned: 127.0.0.1, not-an-ip; reboot" in r.detail
    assert lk.unlock(None, r.state).ok
    assert f.argvs()[-2:] == [["set", "acctwatch", "unbanip", "81.2.69.142"],
                              ["set", "acctwatch", "unbanip", "89.160.20.112"]]
    with pytest.raises(ConfigError, match="jail is required"):
        build("fail2ban", cfg({}))


def test_command_templates_without_shell(fake: Any) -> None:
    f = fake("hook")
    lk = build("ext", cfg({"ext": {"type": "command",
                                   "lock": [str(f.path), "lock", "{account}", "--user={user}", "--ips={ips}",
                                            "{incident_id}", "{ips}"],
                                   "unlock": [str(f.path), "unlock", "{account}", "{domain}", "{incident_id}"]}}))
    name = "o'brien$(id)@example.org"
    inc = incident(name, ips=["81.2.69.142", "2001:db8::25"])
    r = lk.lock(name, inc)
    assert r.ok, r.detail
    assert f.argvs() == [["lock", name, "--user=o'brien$(id)", "--ips=81.2.69.142,2001:db8::25", inc.id,
                          "81.2.69.142", "2001:db8::25"]]
    assert lk.unlock(name, r.state).ok
    assert f.argvs()[-1] == ["unlock", name, "example.org", inc.id]
    f.set("boom", 3)
    r = lk.lock(name, inc)
    assert not r.ok and "exited 3" in r.detail and "boom" in r.detail
    with pytest.raises(ConfigError, match="unknown placeholder"):
        build("x", cfg({"x": {"type": "command", "lock": ["/bin/true", "{acount}"]}}))


# -- self-checks (run at start and on SIGHUP; enforce refuses a backend that cannot work) --------------------
def test_sql_self_check_passes_on_a_working_table_and_changes_nothing(user_db: Any) -> None:
    url, table, eng = user_db
    before = actives(eng, table)
    assert sql_locker(url, table).check() == []
    assert actives(eng, table) == before


def test_sql_self_check_names_the_statement_that_cannot_run(user_db: Any) -> None:
    url, table, _eng = user_db
    lk = build("sql", cfg({"sql": {"url": url, "select": f"SELECT active FROM {table} WHERE email = :account",
                                   "lock": f"UPDATE {table} SET enabled = 0 WHERE email = :account",
                                   "unlock": f"UPDATE {table} SET active = :previous WHERE email = :account"}}))
    [p] = lk.check()
    assert p.startswith(f"the lock statement (UPDATE {table} SET enabled = 0") and "enabled" in p
    [p] = sql_locker(url, "no_such_users_table").check()
    assert p.startswith("the select statement") and "no_such_users_table" in p


def test_sql_self_check_missing_driver_and_refused_connection() -> None:
    [p] = build("sql", cfg({"sql": {"url": "mysql+mysqldb://aw:s3cret@127.0.0.1:1/mail"}})).check()
    assert "'MySQLdb' is not installed" in p and "s3cret" not in p and "aw:***@" in p
    [p] = build("sql", cfg({"sql": {"url": "postgresql+psycopg://aw:pw@127.0.0.1:1/mail"}})).check()
    assert p.startswith("url postgresql+psycopg://aw:***@127.0.0.1:1/mail: cannot connect:")


def test_program_backends_check_their_programs(fake: Any) -> None:
    f = fake("doveadm")
    assert build("doveadm", cfg({"doveadm": {"doveadm": [str(f.path)]}})).check() == []
    [p] = build("doveadm", cfg({"doveadm": {"doveadm": ["/nonexistent/doveadm"]}})).check()
    assert p.startswith("/nonexistent/doveadm: not found (install it, or set doveadm = [")
    ps = {"postsuper": [str(f.path)], "postqueue": ["no-such-postqueue"]}
    [p] = build("postsuper", cfg({"postsuper": ps})).check()
    assert p.startswith("no-such-postqueue: not found in PATH")
    assert build("postsuper", cfg({"postsuper": {"postsuper": [str(f.path)], "postqueue": False}})).check() == []
    [p] = build("ban", cfg({"ban": {"type": "fail2ban", "jail": "x", "client": ["nope-f2b"]}})).check()
    assert "nope-f2b" in p
    [p] = build("cmd", cfg({"cmd": {"type": "command", "lock": [str(f.path), "{account}"],
                                    "unlock": ["/no/unlock", "{account}"]}})).check()
    assert p.startswith("/no/unlock: not found")


# -- sasl_hold (check_sasl_access: a hold that also holds what is submitted later) --------------------------
def _sasl_hold(fake: Any, tmp_path: Path, **extra: Any) -> tuple[Any, Any, Any, Any, Any, Path]:
    pm, ps, pq, pc = fake("postmap"), fake("postsuper"), fake("postqueue"), fake("postcat")
    path = tmp_path / "acctwatch_sasl_hold"
    path.write_text("# the admin's own entries stay\nboss@example.org OK\n")
    lk = build("hold", cfg({"hold": {"type": "sasl_hold", "map": str(path), "postmap": [str(pm.path)],
                                     "postsuper": [str(ps.path)], "postqueue": [str(pq.path)],
                                     "postcat": [str(pc.path)], **extra}}))
    return lk, pm, ps, pq, pc, path


def test_sasl_hold_adds_the_account_and_rebuilds_the_map(fake: Any, tmp_path: Path) -> None:
    lk, pm, _ps, _pq, _pc, path = _sasl_hold(fake, tmp_path, map_type="lmdb")
    assert lk.check() == []
    r = lk.lock("Alice@Example.org", incident())
    assert r.ok and r.changed and r.state["added"] is True, r.detail
    assert path.read_text().splitlines()[-1].startswith("alice@example.org HOLD acctwatch incident inc")
    assert path.read_text().startswith("# the admin's own entries stay\nboss@example.org OK\n")
    assert pm.argvs() == [[f"lmdb:{path}"]]
    again = lk.lock("alice@example.org", incident())
    assert again.ok and not again.changed and again.state["added"] is False  # not twice, and not ours to undo
    assert path.read_text().count("alice@example.org") == 1
    for bad in ("-x@example.org", "#x@example.org", "a b@example.org"):
        assert not lk.lock(bad, incident()).ok
    assert "#x" not in path.read_text()


@pytest.mark.parametrize("delete", [False, True])
def test_sasl_hold_release_takes_out_only_its_entry_and_only_the_accounts_later_mail(
        fake: Any, tmp_path: Path, delete: bool) -> None:
    lk, pm, ps, pq, pc, path = _sasl_hold(fake, tmp_path)
    r = lk.lock("alice@example.org", incident())
    since = r.state["since"]
    queue = [
        {"queue_name": "hold", "queue_id": "AAAA111111", "sender": "alice@example.org", "arrival_time": since + 5},
        {"queue_name": "hold", "queue_id": "BBBB222222", "sender": "forged@example.net", "arrival_time": since + 6},
        {"queue_name": "hold", "queue_id": "CCCC333333", "sender": "bob@example.org", "arrival_time": since + 7},
        {"queue_name": "hold", "queue_id": "DDDD444444", "sender": "alice@example.org",
         "arrival_time": since - 3600},  # held before: someone else's decision
        {"queue_name": "deferred", "queue_id": "EEEE555555", "sender": "alice@example.org", "arrival_time": since},
    ]
    pq.set("\n".join(json.dumps(q) for q in queue) + "\n")
    pc.set("*** ENVELOPE RECORDS hold/BBBB222222 ***\nnamed_attribute: sasl_username=alice@example.org\n"
           "sender: forged@example.net\n*** ENVELOPE RECORDS hold/CCCC333333 ***\n"
           "named_attribute: sasl_username=bob@example.org\n")
    u = lk.unlock("alice@example.org", r.state, delete_held=delete)
    assert u.ok, u.detail
    assert "alice@example.org" not in path.read_text() and "boss@example.org OK" in path.read_text()
    assert pc.argvs() == [["-e", "-q", "BBBB222222", "CCCC333333"]]
    assert ps.argvs() == [["-d" if delete else "-H", "-"]]
    assert ps.calls()[0]["stdin"].split() == ["AAAA111111", "BBBB222222"]
    assert f"2 message(s) held meanwhile {'deleted' if delete else 'released'}" in u.detail
    assert pm.argvs()[-1] == [f"hash:{path}"]


def test_sasl_hold_unlock_leaves_an_entry_it_did_not_add(fake: Any, tmp_path: Path) -> None:
    lk, _pm, _ps, _pq, _pc, path = _sasl_hold(fake, tmp_path)
    path.write_text("alice@example.org HOLD the admin's own\n")
    r = lk.lock("alice@example.org", incident())
    assert r.ok and not r.state["added"]
    assert lk.unlock("alice@example.org", r.state).ok
    assert path.read_text() == "alice@example.org HOLD the admin's own\n"


def test_sasl_hold_config_and_self_check(fake: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="map is required"):
        build("hold", cfg({"hold": {"type": "sasl_hold"}}))
    with pytest.raises(ConfigError, match="map_type must be one of"):
        build("hold", cfg({"hold": {"type": "sasl_hold", "map": "/etc/postfix/x", "map_type": "mysql"}}))
    lk, *_ = _sasl_hold(fake, tmp_path)
    missing = build("hold", cfg({"hold": {"type": "sasl_hold", "map": str(tmp_path / "nope"),
                                          "postmap": lk.options["postmap"], "postsuper": lk.options["postsuper"],
                                          "postqueue": lk.options["postqueue"], "postcat": lk.options["postcat"]}}))
    [p] = missing.check()
    assert p.startswith(f"{tmp_path / 'nope'} does not exist: create it (touch ") and "check_sasl_access" in p
