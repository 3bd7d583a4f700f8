"""The Responder: dry-run, enforce, protected accounts, circuit breaker, idempotence (also across a
crash and restart), one failing backend, per-IP incidents, and the engine hook end to end."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from acctwatch.actions.lockers import Locker, LockResult, register
from acctwatch.actions.responder import Responder
from acctwatch.config import ConfigError, from_dict
from acctwatch.detectors import Detector, Finding
from acctwatch.detectors.base import Context
from acctwatch.engine import Engine, Incident
from acctwatch.events import Login
from acctwatch.store import Store

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.users_url = f"sqlite:///{tmp_path / 'mail.db'}"
        self.users = sa.create_engine(self.users_url)
        with self.users.begin() as conn:
            conn.execute(sa.text("CREATE TABLE users (email TEXT PRIMARY KEY, password TEXT, active INT)"))
            conn.execute(sa.text("INSERT INTO users VALUES (:e, 'x', :a)"),
                         [{"e": f"u{i}@example.org", "a": 1} for i in range(10)]
                         + [{"e": "alice@example.org", "a": 2}, {"e": "postmaster@example.org", "a": 1},
                            {"e": "boss@example.org", "a": 1}])
        self.log = tmp_path / "calls.jsonl"
        self.script = tmp_path / "rec"
        self.script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                               f"open({str(self.log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                               "sys.exit(int(sys.argv[1] == 'fail'))\n")
        self.script.chmod(0o755)
        self.store = Store(f"sqlite:///{tmp_path / 'acctwatch.db'}")

    def config(self, mode: str = "enforce", response: dict[str, Any] | None = None, **extra: Any) -> Any:
        data: dict[str, Any] = {
            "general": {"mode": mode, "protected_accounts": ["postmaster", "root"]},
            "allowlist": {"accounts": ["boss@example.org"]},
            "response": {"lock": ["sql", "rec"], "hold": ["rec"], **(response or {})},
            "lockers": {"sql": {"url": self.users_url},
                        "rec": {"type": "command", "lock": [str(self.script), "lock", "{account}"],
                                "unlock": [str(self.script), "unlock", "{account}"]},
                        "broken": {"type": "command", "lock": [str(self.script), "fail", "{account}"]},
                        "ban": {"type": "fail2ban", "client": [str(self.script), "f2b"], "jail": "aw"}},
            "notify": {"operator": ["json://127.0.0.1:9/never"]},
        }
        data.update(extra)
        return from_dict(data)

    def active(self, account: str) -> int:
        with self.users.connect() as conn:
            return int(conn.execute(sa.text("SELECT active FROM users WHERE email = :a"), {"a": account}).scalar())

    def calls(self) -> list[list[str]]:
        return [json.loads(x) for x in self.log.read_text().splitlines()] if self.log.exists() else []

    def summaries(self) -> list[dict[str, Any]]:
        return [r for r in self.store.audit_rows() if r["backend"] is None]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def inc(account: str | None = "alice@example.org", minutes: float = 0, action: str = "lock",
        iid: str | None = None, ips: list[str] | None = None) -> Incident:
    t = T0 + timedelta(minutes=minutes)
    return Incident(iid or f"{account}-{minutes}-{action}", account, "impossible_travel", action, t, t,
                    f"{account}: London, GB then Lagos, NG", {}, ips or ["81.2.69.142"])


def test_dry_run_decides_records_notifies_changes_nothing(env: Env) -> None:
    r = Responder(env.config(mode="dry-run"), env.store)
    d = r(inc(), True)
    assert d is not None and d.outcome == "would-lock" and d.dry_run
    assert env.active("alice@example.org") == 2 and env.calls() == []
    assert env.store.locks() == []
    [s] = env.summaries()
    assert s["result"] == "dry-run" and s["action"] == "lock" and s["account"] == "alice@example.org"
    [o] = env.store.outbox_rows()
    assert "WOULD BE LOCKED (dry-run)" in o["title"]
    # what enforce would do, exactly: the statement with its parameter, the command with its arguments
    assert "would run sql (lock): on sqlite:///" in o["body"]
    assert "UPDATE users SET active = 0 WHERE email = :account with :account = 'alice@example.org'" in o["body"]
    assert f"would run rec (lock): {env.script} lock alice@example.org" in o["body"]


def test_default_mode_is_dry_run(env: Env) -> None:
    cfg = from_dict({"lockers": {"sql": {"url": env.users_url}}})
    assert Responder(cfg, env.store).dry_run


def test_enforce_locks_records_and_unlock_restores(env: Env) -> None:
    r = Responder(env.config(), env.store)
    d = r(inc(), True)
    assert d is not None and d.outcome == "locked", d.detail
    assert env.active("alice@example.org") == 0
    assert env.calls() == [["lock", "alice@example.org"]]
    [lk] = env.store.locks()
    assert lk["account"] == "alice@example.org" and lk["level"] == "lock" and lk["actor"] == "acctwatch"
    assert lk["backends"]["sql"] == {"previous": 2}
    rows = env.store.audit_rows(account="alice@example.org")
    assert [(x["action"], x["backend"], x["result"]) for x in rows] == [
        ("lock", "sql", "ok"), ("lock", "rec", "ok"), ("lock", None, "ok")]
    assert all(x["incident_id"] == "alice@example.org-0-lock" for x in rows)
    [o] = env.store.outbox_rows()
    assert o["title"].startswith("[acctwatch] LOCKED: alice@example.org")
    u = r.unlock_account("alice@example.org", actor="alice-admin", reason="password changed")
    assert u.outcome == "unlocked", u.detail
    assert env.active("alice@example.org") == 2
    assert env.calls()[-1] == ["unlock", "alice@example.org"]
    assert env.store.locks() == []
    last = env.store.audit_rows(account="alice@example.org")[-3:]
    assert [(x["action"], x["backend"], x["actor"]) for x in last] == [
        ("unlock", "rec", "alice-admin"), ("unlock", "sql", "alice-admin"), ("unlock", None, "alice-admin")]


def test_unlock_closes_the_accounts_incidents(env: Env) -> None:
    i = inc()
    with env.store.begin() as conn:
        env.store.upsert_incident(conn, i.row())
    r = Responder(env.config(), env.store)
    r(i, True)
    assert [x["status"] for x in env.store.incidents(account="alice@example.org")] == ["open"]
    assert r.unlock_account("alice@example.org", actor="root").outcome == "unlocked"
    assert [x["status"] for x in env.store.incidents(account="alice@example.org")] == ["closed"]


def test_idempotent_same_incident_and_restart(env: Env) -> None:
    cfg = env.config()
    r = Responder(cfg, env.store)
    i = inc()
    r(i, True)
    i.updated += 1
    assert r(i, False) is None  # a later finding merged into the same incident
    # crash and restart: the same log lines are processed again by a new process
    r2 = Responder(cfg, Store(env.store.url))
    assert r2(inc(), True) is None
    assert len(env.summaries()) == 1 and len(env.store.outbox_rows()) == 1
    assert env.calls() == [["lock", "alice@example.org"]]


def test_new_incident_on_locked_account_changes_nothing_and_sends_no_alert(env: Env) -> None:
    r = Responder(env.config(), env.store)
    r(inc(), True)
    d = r(inc(minutes=30), True)
    assert d is not None and d.outcome == "already"
    assert env.calls() == [["lock", "alice@example.org"]]
    assert env.store.get_lock("alice@example.org")["backends"]["sql"] == {"previous": 2}  # not overwritten by 0
    assert len(env.store.outbox_rows()) == 1
    assert env.summaries()[-1]["result"] == "skipped"


@pytest.mark.parametrize("account", ["postmaster@example.org", "boss@example.org", "vip@example.org", "ROOT"])
def test_protected_and_allowlisted_accounts_are_never_locked(env: Env, account: str) -> None:
    r = Responder(env.config(response={"protected_accounts": ["vip@example.org"]}), env.store)
    d = r(inc(account), True)
    assert d is not None and d.outcome == "protected"
    assert env.calls() == [] and env.store.locks() == []
    [o] = env.store.outbox_rows()
    assert "NOT LOCKED (protected account)" in o["title"]
    if account.startswith("postmaster"):
        assert env.active(account) == 1


def test_circuit_breaker_stops_locking_notifies_loudly_keeps_recording(env: Env) -> None:
    r = Responder(env.config(response={"max_locks_per_hour": 3}), env.store)
    outs = [r(inc(f"u{i}@example.org", minutes=10 * i), True).outcome for i in range(5)]  # type: ignore[union-attr]
    assert outs == ["locked", "locked", "locked", "breaker", "breaker"]
    assert [env.active(f"u{i}@example.org") for i in range(5)] == [0, 0, 0, 1, 1]
    titles = [o["title"] for o in env.store.outbox_rows()]
    assert sum("CIRCUIT BREAKER OPEN" in t for t in titles) == 1
    assert sum("NOT LOCKED (circuit breaker open)" in t for t in titles) == 2
    assert r.breaker_state()["count"] == 3
    # latched: hours later, still no automatic lock, still recorded and notified
    assert r(inc("u6@example.org", minutes=600), True).outcome == "breaker"  # type: ignore[union-attr]
    assert len([s for s in env.summaries() if s["action"] == "lock"]) == 6
    assert r.reset_breaker(actor="ops")
    assert r(inc("u7@example.org", minutes=700), True).outcome == "locked"  # type: ignore[union-attr]


def test_circuit_breaker_counts_log_time_not_processing_time(env: Env) -> None:
    r = Responder(env.config(response={"max_locks_per_hour": 2}), env.store)
    # a backlog processed in one go: 5 locks, but 40 minutes apart in the log
    outs = [r(inc(f"u{i}@example.org", minutes=40 * i), True).outcome for i in range(5)]  # type: ignore[union-attr]
    assert outs == ["locked"] * 5


def test_breaker_in_dry_run_is_separate_from_enforce(env: Env) -> None:
    r = Responder(env.config(mode="dry-run", response={"max_locks_per_hour": 1}), env.store)
    assert [r(inc(f"u{i}@example.org"), True).outcome for i in range(2)] == ["would-lock", "breaker"]  # type: ignore[union-attr]
    r2 = Responder(env.config(response={"max_locks_per_hour": 1}), env.store)
    assert r2(inc("u5@example.org", minutes=1), True).outcome == "locked"  # type: ignore[union-attr]


def test_one_failing_backend_does_not_stop_the_others(env: Env) -> None:
    r = Responder(env.config(response={"lock": ["broken", "sql", "rec"]}), env.store)
    d = r(inc(), True)
    assert d is not None and d.outcome == "partial"
    assert env.active("alice@example.org") == 0
    assert [x.backend for x in d.results if not x.ok] == ["broken"]
    lk = env.store.get_lock("alice@example.org")
    assert set(lk["backends"]) == {"sql", "rec"}
    assert "LOCKED PARTIAL" in env.store.outbox_rows()[0]["title"]
    assert "broken: FAILED" in env.store.outbox_rows()[0]["body"]
    assert r.unlock_account("alice@example.org").outcome == "unlocked"
    assert env.active("alice@example.org") == 2


class Crash(BaseException):
    pass


class Crashy(Locker):
    kind = "crashy"
    crash: ClassVar[bool] = True
    ran: ClassVar[list[str]] = []

    def lock(self, account: str | None, incident: Any) -> LockResult:
        if Crashy.crash:
            raise Crash()
        Crashy.ran.append(str(account))
        return self.result(True, "ok", changed=True)

    def unlock(self, account: str | None, saved_state: dict[str, Any]) -> LockResult:
        return self.result(True, "ok")


def test_crash_mid_response_does_not_redo_finished_backends(env: Env) -> None:
    register("crashy", Crashy)
    cfg = env.config(response={"lock": ["sql", "crashy"]})
    with pytest.raises(Crash):
        Responder(cfg, env.store).handle(inc(), True)
    assert env.active("alice@example.org") == 0
    Crashy.crash = False
    d = Responder(cfg, Store(env.store.url)).handle(inc(), True)
    assert d is not None and d.outcome == "locked"
    assert Crashy.ran == ["alice@example.org"]
    # the value saved before the crash is kept: unlock restores 2, not the 0 seen on re-processing
    assert env.store.get_lock("alice@example.org")["backends"]["sql"] == {"previous": 2}
    assert [x["backend"] for x in env.store.audit_rows() if x["action"] == "lock"] == ["sql", "crashy", None]


def test_per_ip_incident_runs_only_ip_backends(env: Env) -> None:
    r = Responder(env.config(response={"lock": ["sql", "ban"]}), env.store)
    d = r(inc(None, ips=["81.2.69.142"]), True)
    assert d is not None and d.backends == ["ban"] and d.outcome == "locked"
    assert env.calls() == [["f2b", "set", "aw", "banip", "81.2.69.142"]]
    key = "incident:None-0-lock"
    assert env.store.get_lock(key)["backends"]["ban"]["ips"] == ["81.2.69.142"]
    assert r.unlock_account(key).outcome == "unlocked"
    assert env.calls()[-1] == ["f2b", "set", "aw", "unbanip", "81.2.69.142"]


def test_hold_then_lock_escalates(env: Env) -> None:
    r = Responder(env.config(response={"hold": ["rec"], "lock": ["rec", "sql"]}), env.store)
    assert r(inc(action="hold"), True).outcome == "held"  # type: ignore[union-attr]
    d = r(inc(minutes=5, action="lock"), True)
    assert d is not None and d.outcome == "locked"
    assert env.calls() == [["lock", "alice@example.org"]]  # rec not run twice
    assert env.store.get_lock("alice@example.org")["level"] == "lock"
    assert env.active("alice@example.org") == 0


def test_notify_policy_only_alerts(env: Env) -> None:
    r = Responder(env.config(), env.store)
    assert r(inc(action="notify"), True).outcome == "alert"  # type: ignore[union-attr]
    assert env.calls() == [] and "SUSPICIOUS ACTIVITY" in env.store.outbox_rows()[0]["title"]


def test_watch_records_without_alert_and_a_rise_to_notify_alerts_once(env: Env) -> None:
    r = Responder(env.config(), env.store)
    d = r(inc(action="watch", iid="w" * 20), True)
    assert d is not None and d.outcome == "watch" and env.calls() == []
    assert env.store.outbox_rows() == []
    [s] = env.summaries()
    assert (s["action"], s["result"]) == ("watch", "ok")
    assert r(inc(action="watch", iid="w" * 20), False) is None  # the same level again: decided already
    d = r(inc(minutes=3, action="notify", iid="w" * 20), False)
    assert d is not None and d.outcome == "alert"
    [o] = env.store.outbox_rows()
    assert "SUSPICIOUS ACTIVITY" in o["title"]
    sim = Responder(env.config(), None, simulate=True)
    assert sim(inc(action="watch"), True).outcome == "watch"  # type: ignore[union-attr]


def test_enforce_with_incomplete_lock_config_fails_at_start(env: Env) -> None:
    cfg = from_dict({"general": {"mode": "enforce"}, "response": {"lock": ["sql"]}})
    with pytest.raises(ConfigError, match="url is required"):
        Responder(cfg, env.store)
    r = Responder(from_dict({"response": {"lock": ["sql"]}}), env.store)  # dry-run: reported in the alert
    assert "url is required" in r(inc(), True).detail  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"\[response\] unknown key 'lokc'; did you mean 'lock'"):
        Responder(from_dict({"response": {"lokc": []}}), env.store)


def test_simulate_mode_touches_nothing(env: Env) -> None:
    r = Responder(env.config(response={"max_locks_per_hour": 2}), None)
    outs = [r(inc(a, minutes=m), True).outcome for a, m in  # type: ignore[union-attr]
            [("u1@example.org", 0), ("u1@example.org", 1), ("postmaster@example.org", 2), ("u2@example.org", 3),
             ("u3@example.org", 4)]]
    assert outs == ["would-lock", "already", "protected", "would-lock", "breaker"]
    assert env.calls() == [] and env.store.audit_rows() == [] and env.store.outbox_rows() == []


# -- end to end through the engine hook ------------------------------------------------------------
class EveryLogin(Detector):
    name = "test_every_login"
    kinds = ("login",)
    default_policy = "lock"

    def feed(self, ev: Any) -> Iterable[Finding]:
        return [Finding(self.name, ev.account, ev.ts, ev.ts, f"{ev.account} logged in from {ev.ip}",
                        {"login": {"ts": ev.ts.isoformat(), "ip": ev.ip, "service": "imap"}}, [ev.ip])]


def test_engine_hook_end_to_end_and_reprocessing(env: Env) -> None:
    cfg = env.config()
    events = [Login(ts=T0 + timedelta(minutes=m), account=a, ip="81.2.69.142", service="imap")
              for m, a in [(0, "alice@example.org"), (1, "alice@example.org"), (2, "u1@example.org")]]

    def run() -> Engine:
        engine = Engine(cfg, store=Store(env.store.url), geo=None, detectors=[EveryLogin({}, Context(cfg))])
        Responder.attach(engine)
        for ev in events:
            engine.process(ev)
        engine.flush()
        return engine

    run()
    assert env.active("alice@example.org") == 0 and env.active("u1@example.org") == 0
    assert len(env.store.outbox_rows()) == 2
    run()  # the same lines again (e.g. after a crash before the checkpoint)
    assert len(env.store.outbox_rows()) == 2 and len(env.summaries()) == 2
    assert env.calls() == [["lock", "alice@example.org"], ["lock", "u1@example.org"]]


def test_account_reenabled_outside_acctwatch_can_be_locked_again(env: Env) -> None:
    r = Responder(env.config(), env.store)
    r(inc(), True)
    with env.users.begin() as conn:  # the admin re-enables it in the mail admin panel
        conn.execute(sa.text("UPDATE users SET active = 1 WHERE email = 'alice@example.org'"))
    d = r(inc(minutes=120), True)
    assert d is not None and d.outcome == "locked"
    assert env.active("alice@example.org") == 0
    assert env.store.get_lock("alice@example.org")["backends"]["sql"] == {"previous": 1}
    assert any("stale lock record" in a["detail"] for a in env.store.audit_rows())
    assert len(env.store.outbox_rows()) == 2


def test_the_dry_run_breaker_counts_accounts_like_enforce(env: Env) -> None:
    """Several incidents of one account are one lock in enforce (the others are 'already'); dry-run must
    predict the same, not trip the breaker on the repeats."""
    r = Responder(env.config(mode="dry-run", response={"max_locks_per_hour": 2}), env.store)
    outs = [r(inc("u0@example.org", minutes=k, iid=f"a{k}"), True).outcome for k in range(4)]  # type: ignore[union-attr]
    assert outs == ["would-lock"] * 4
    assert r(inc("u1@example.org", minutes=5, iid="b"), True).outcome == "would-lock"  # type: ignore[union-attr]
    assert r(inc("u2@example.org", minutes=6, iid="c"), True).outcome == "breaker"  # type: ignore[union-attr]
