"""Notifications delivered to real local servers: SMTP (aiosmtpd) through apprise's mailto:// URL and a
webhook (json://) to a local HTTP server; the outbox retries with backoff and delivers each alert once."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from acctwatch.actions.notify import Notifier, Target, evidence_lines, incident_message, shell_arg
from acctwatch.actions.responder import Responder
from acctwatch.config import ConfigError, from_dict
from acctwatch.engine import Incident
from acctwatch.store import Store, outbox

T0 = datetime(2026, 11, 26, 3, 12, 5, tzinfo=UTC)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SMTPSink:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def url(self, to: str = "admin@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=acctwatch@example.org&to={to}"

    def texts(self) -> list[tuple[str, str, list[str]]]:
        out = []
        for env in self.messages:
            msg = email.message_from_bytes(env.content, policy=policy.default)
            body = "".join(p.get_content() for p in msg.walk() if p.get_content_type() == "text/plain")
            out.append((str(msg["Subject"]), body, list(env.rcpt_tos)))
        return out


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    s = SMTPSink()
    s.controller.start()
    yield s
    s.controller.stop()


class Hook:
    """A local HTTP server recording the JSON bodies POSTed to it."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.posts: list[tuple[str, dict[str, Any]]] = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                hook.posts.append((self.path, json.loads(self.rfile.read(n) or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server: ThreadingHTTPServer | None = None
        self._h = H

    def start(self) -> Hook:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._h)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/acctwatch/hook"


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook().start()
    yield h
    h.stop()


def incident(account: str = "alice@example.org", iid: str = "inc000000000000001") -> Incident:
    ev = {"from": {"ts": "2026-11-26T03:02:00Z", "ip": "81.2.69.142", "service": "imap", "country": "GB",
                   "city": "London", "asn": 20712, "asn_org": "Andrews & Arnold"},
          "to": {"ts": "2026-11-26T03:12:05Z", "ip": "89.160.20.112", "service": "smtp", "country": "SE",
                 "city": "Linköping", "asn": 29518, "asn_org": "Bredband2 AB"},
          "distance_km": 1450.2, "speed_kmh": 8640.0}
    return Incident(iid, account, "impossible_travel", "lock", T0 - timedelta(minutes=10), T0,
                    f"{account}: London, GB then Linköping, SE: 1450 km in 10 min", ev,
                    ["89.160.20.112", "81.2.69.142"])


def config(tmp_path: Path, notify: dict[str, Any], mode: str = "enforce") -> Any:
    return from_dict({"general": {"mode": mode},
                      "response": {"lock": ["ext"], "hold": []},
                      "lockers": {"ext": {"type": "command", "lock": ["true"], "unlock": ["true"]}},
                      "notify": notify})


def test_email_alert_reaches_local_smtp_server(tmp_path: Path, smtp: SMTPSink) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    resp = Responder(config(tmp_path, {"operator": [smtp.url()]}), store)
    resp(incident(), True)
    rep = resp.notifier.deliver_pending()
    assert rep.to_dict() == {"sent": 1, "failed": 0, "pending": 0}
    [(subject, body, rcpts)] = smtp.texts()
    assert rcpts == ["admin@example.org"]
    assert "LOCKED" in subject and "alice@example.org" in subject and "impossible_travel" in subject
    for needle in ("89.160.20.112", "81.2.69.142", "London, GB, AS20712 Andrews & Arnold", "Linköping",
                   "2026-11-26 03:02:00 UTC", "ext: ok", "acctwatch unlock -- alice@example.org",
                   "1450 km in 10 min"):
        assert needle in body, (needle, body)
    assert resp.notifier.deliver_pending().sent == 0  # nothing sent twice


def test_webhook_alert_and_dry_run_wording(tmp_path: Path, hook: Hook) -> None:
    store = Store("sqlite://")
    resp = Responder(config(tmp_path, {"operator": hook.url()}, mode="dry-run"), store)
    resp(incident(), True)
    assert resp.notifier.deliver_pending().sent == 1
    [(path, doc)] = hook.posts
    assert path == "/acctwatch/hook"
    assert "WOULD BE LOCKED (dry-run)" in doc["title"]
    assert "NOTHING was changed" in doc["message"] and "would run ext (lock)" in doc["message"]
    assert "acctwatch unlock" not in doc["message"]  # nothing to undo in dry-run


def test_notifier_down_then_up_each_alert_arrives_exactly_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    hook = Hook()  # not started: the notifier is down
    cfg = config(tmp_path, {"operator": [hook.url()], "retry_base": "30s", "retry_max": "10m"})
    store = Store(url)
    resp = Responder(cfg, store)
    resp(incident(iid="i1"), True)
    resp(incident("bob@example.org", iid="i2"), True)
    resp(incident(iid="i1"), False)  # a later finding of the same incident: no second alert
    now = datetime.now(UTC)
    rep = resp.notifier.deliver_pending(now)
    assert rep.to_dict() == {"sent": 0, "failed": 2, "pending": 2}
    rows = store.outbox_rows()
    assert all(r["attempts"] == 1 and "Connection" in (r["last_error"] or "") for r in rows)
    assert resp.notifier.deliver_pending(now + timedelta(seconds=10)).failed == 0  # backoff: not due yet
    # restart: a new store and notifier on the same database, and the notifier comes up
    store.close()
    store = Store(url)
    n2 = Notifier(cfg, store)
    hook.start()
    try:
        assert n2.deliver_pending(now + timedelta(seconds=31)).to_dict() == {"sent": 2, "failed": 0, "pending": 0}
        assert n2.deliver_pending(now + timedelta(hours=5)).sent == 0
        assert sorted(d["title"].split(": ")[1].split(" ")[0] for _, d in hook.posts) == [
            "alice@example.org", "bob@example.org"]
        assert len(hook.posts) == 2
    finally:
        hook.stop()


def test_backoff_is_exponential_and_capped(tmp_path: Path) -> None:
    store = Store("sqlite://")
    calls: list[str] = []

    def down(title: str, body: str, t: Target) -> tuple[bool, str]:
        calls.append(title)
        return False, "connection refused"

    cfg = config(tmp_path, {"operator": ["json://127.0.0.1:9/x"], "retry_base": "10s", "retry_max": "60s"})
    n = Notifier(cfg, store, sender=down)
    with store.begin() as conn:
        assert n.enqueue_operator(conn, "k1", "t", "b") == 1
        assert n.enqueue_operator(conn, "k1", "t", "b") == 0  # dedupe
    now = datetime.now(UTC) + timedelta(seconds=1)
    delays = []
    for _ in range(5):
        n.deliver_pending(now)
        nxt = store.outbox_rows()[0]["next_attempt"]
        delays.append((nxt - now).total_seconds())
        now = nxt
    assert delays == [10, 20, 40, 60, 60]
    assert len(calls) == 5


def test_no_secret_in_the_store_and_changed_url_still_delivers(tmp_path: Path, hook: Hook) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    secret_url = "json://user:TopSecret@127.0.0.1:9/never"
    resp = Responder(config(tmp_path, {"operator": [secret_url]}), store)
    resp(incident(), True)
    with store.engine.connect() as conn:
        dump = json.dumps([dict(r._mapping) for r in conn.execute(sa.select(outbox))], default=str)
    assert "TopSecret" not in dump
    # the admin fixes the URL in the config and restarts: the queued alert goes to the new target
    n2 = Notifier(config(tmp_path, {"operator": [hook.url()]}), Store(url))
    assert n2.deliver_pending().sent == 1 and len(hook.posts) == 1


def test_user_notice_from_mapping_and_sql_column(tmp_path: Path, smtp: SMTPSink) -> None:
    users = f"sqlite:///{tmp_path / 'mail.db'}"
    eng = sa.create_engine(users)
    hostile = "o'neil@example.org"
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (email TEXT PRIMARY KEY, recovery TEXT)"))
        conn.execute(sa.text("INSERT INTO users VALUES (:e, :r)"), [
            {"e": hostile, "r": "oneil.home@example.net"}, {"e": "bob@example.org", "r": "bob@example.net"}])
    notify = {"operator": [smtp.url()],
              "user": {"url": f"mailto://127.0.0.1:{smtp.port}?from=postmaster@example.org&to={{address}}",
                       "sql_url": users, "sql_query": "SELECT recovery FROM users WHERE email = :account",
                       "addresses": {"Alice@Example.org": "alice.private@example.net"}}}
    store = Store("sqlite://")
    resp = Responder(config(tmp_path, notify), store)
    resp(incident(iid="a1"), True)
    resp(incident(hostile, iid="a2"), True)
    resp(incident("nobody@example.org", iid="a3"), True)
    assert resp.notifier.deliver_pending().to_dict() == {"sent": 5, "failed": 0, "pending": 0}
    by_rcpt: dict[str, list[str]] = {}
    for subject, body, rcpts in smtp.texts():
        for r in rcpts:
            by_rcpt.setdefault(r, []).append(subject + "\n" + body)
    assert len(by_rcpt["admin@example.org"]) == 3
    [alice] = by_rcpt["alice.private@example.net"]
    assert "Was this you?" in alice and "temporarily locked" in alice
    assert len(by_rcpt["oneil.home@example.net"]) == 1
    # dry-run never writes to users
    resp2 = Responder(config(tmp_path, notify, mode="dry-run"), Store("sqlite://"))
    resp2(incident(iid="d1"), True)
    assert resp2.notifier.deliver_pending().sent == 1  # operator only


def test_message_text_is_clean_and_complete() -> None:
    inc = incident("evil\x1b[31m\u202e@example.org")
    title, body = incident_message(inc, "LOCKED", ["sql: ok: value 1 -> 0"], dry_run=False, locked=True)
    assert "\x1b" not in title + body and "\u202e" not in body
    # the real name, pasteable into bash without sending the escape sequence to the terminal
    assert "acctwatch unlock -- $'evil\\x1b[31m\\u202e@example.org'" in body
    assert shell_arg("o'neil@example.org") == "'o'\"'\"'neil@example.org'"
    lines = evidence_lines(inc.evidence)
    assert any("81.2.69.142" in x and "imap" in x and "London" in x for x in lines)
    assert "  speed_kmh: 8640.0" in lines


def test_notify_config_errors() -> None:
    store = Store("sqlite://")
    with pytest.raises(ConfigError, match=r"\{address\}"):
        Notifier(from_dict({"notify": {"user": {"url": "mailto://x"}}}), store)
    with pytest.raises(ConfigError, match=r"\[notify.user\] unknown key 'adresses'; did you mean 'addresses'"):
        Notifier(from_dict({"notify": {"user": {"adresses": {}}}}), store)
    with pytest.raises(ConfigError, match=r"\[notify\] unknown key 'operators'; did you mean 'operator'\?"):
        Notifier(from_dict({"notify": {"operators": ["json://x"]}}), store)


def test_generated_commands_put_hostile_accounts_after_double_dash() -> None:
    from acctwatch.actions.notify import incident_message

    _title, body = incident_message(incident("-rf@example.com", "i-dash"), "LOCKED", ["sql: ok"],
                                    dry_run=False, locked=True)
    assert "acctwatch unlock -- -rf@example.com" in body
    assert "acctwatch unlock --compromised -- -rf@example.com" in body
    assert "acctwatch history -- -rf@example.com" in body


def test_generated_commands_reach_the_daemons_own_config_and_store(tmp_path: Path) -> None:
    """An alert's undo command repeats the daemon's -c (unless it is the default file) and a --db given on its
    command line (password masked: it is not written into mail)."""
    from acctwatch.actions.notify import cli_options, incident_message
    from acctwatch.config import DEFAULT_CONFIG

    cfg = from_dict({"general": {"db": "sqlite:////var/lib/x.db"}}, tmp_path / "mail 2.toml")
    assert cli_options(cfg) == f" -c '{tmp_path}/mail 2.toml'"
    cfg.db = "postgresql://aw:s3cret@db.example/aw"
    assert cli_options(cfg) == f" -c '{tmp_path}/mail 2.toml' --db 'postgresql://aw:***@db.example/aw'"
    assert cli_options(from_dict({}, DEFAULT_CONFIG)) == "" and cli_options(from_dict({})) == ""
    _t, body = incident_message(incident("a@example.org", "i-opts"), "LOCKED", ["sql: ok"], dry_run=False,
                                locked=True, opts=" -c /etc/acctwatch/mail2.toml")
    assert "acctwatch unlock -c /etc/acctwatch/mail2.toml -- a@example.org" in body
    assert "acctwatch history -c /etc/acctwatch/mail2.toml -- a@example.org" in body


def test_unlock_and_manual_lock_notices_are_sanitised(tmp_path: Path) -> None:
    from acctwatch.actions.responder import Responder
    from acctwatch.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    cfg = config(tmp_path, {"operator": ["json://127.0.0.1:9/"]})
    resp = Responder(cfg, store)
    evil = "ev\x1b[31mil\u202e@example.org"
    with store.begin() as conn:
        store.put_lock(conn, account=evil, level="lock", locked_at=T0, incident_id=None, reason="r",
                       backends={"ext": {}}, actor="acctwatch")
    resp.unlock_account(evil, reason="fixed\x1b[0m")
    [row] = [r for r in store.outbox_rows() if "unlocked" in r["title"]]
    assert "\x1b" not in row["title"] and "\u202e" not in row["title"]
    assert "\x1b" not in row["body"] and "\u202e" not in row["body"]


def test_an_endpoint_that_answers_too_late_gets_a_bounded_number_of_copies(tmp_path: Path) -> None:
    """A timeout after the request went out: the receiver may have it. Retried (at least once delivery),
    but only max_unknown_attempts times, then given up with the reason: not a copy on every retry."""
    store = Store("sqlite://")
    calls: list[str] = []

    def slow(title: str, body: str, t: Target) -> tuple[bool, str]:
        calls.append(t.value)
        return False, "Read timed out. (read timeout=15.0)"

    cfg = config(tmp_path, {"operator": ["json://127.0.0.1:9/x"], "retry_base": "10s",
                            "max_unknown_attempts": 3, "timeout": "7s"})
    n = Notifier(cfg, store, sender=slow)
    with store.begin() as conn:
        n.enqueue_operator(conn, "k1", "t", "b")
    now = datetime.now(UTC) + timedelta(seconds=1)
    for _ in range(6):
        n.deliver_pending(now)
        now += timedelta(hours=2)
    assert len(calls) == 3 and all("cto=7&rto=7" in c for c in calls)
    [row] = store.outbox_rows()
    assert row["sent_at"] is None and row["unknown_attempts"] == 3 and row["next_attempt"].year == 9999
    assert row["last_error"].startswith("gave up after 3 attempts whose outcome is unknown")


def test_a_restarted_instance_takes_over_its_unfinished_deliveries(tmp_path: Path) -> None:
    store = Store("sqlite://")
    cfg = config(tmp_path, {"operator": ["json://127.0.0.1:9/x"]})
    n = Notifier(cfg, store, sender=lambda *a: (True, ""))
    with store.begin() as conn:
        n.enqueue_operator(conn, "k1", "t", "b")
    now = datetime.now(UTC)
    [row] = store.outbox_rows()
    assert store.outbox_claim(row["id"], row["next_attempt"], now + timedelta(seconds=300), owner=n.instance)
    assert n.deliver_pending(now + timedelta(seconds=1)).sent == 0  # leased: killed while sending
    other = Notifier(from_dict({"sources": {"instance": "mx2"}}), store, sender=lambda *a: (True, ""))
    assert other.take_over(now) == 0  # another instance's lease is left alone
    assert n.take_over(now) == 1
    assert n.deliver_pending(now + timedelta(seconds=1)).sent == 1


def test_incident_alerts_carry_the_incident_id_in_the_title() -> None:
    from acctwatch.actions.notify import incident_message

    title, body = incident_message(incident(), "LOCKED", [], dry_run=False, locked=True)
    assert title.endswith("#inc000000000") and "Incident:  inc000000000000001" in body


def test_notify_test_sends_a_sample_alert_and_reports_each_target(tmp_path: Path, hook: Hook) -> None:
    from click.testing import CliRunner

    from acctwatch.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[notify]\noperator = ["{hook.url()}", "json://user:pw@127.0.0.1:9/closed"]\ntimeout = "2s"\n')
    r = CliRunner().invoke(main, ["notify", "test", "-c", str(cfg), "--json"])
    assert r.exit_code == 1, r.output  # the second target is closed
    res = json.loads(r.output)["results"]
    assert [x["ok"] for x in res] == [True, False] and res[1]["error"]
    assert all("pw" not in x["where"] for x in res)  # no secret printed
    [(_path, posted)] = hook.posts
    assert "TEST" in posted.get("title", "")
    cfg.write_text(f'[notify]\noperator = ["{hook.url()}"]\n')
    r = CliRunner().invoke(main, ["notify", "test", "-c", str(cfg)])
    assert r.exit_code == 0 and "ok" in r.output
    cfg.write_text("")
    r = CliRunner().invoke(main, ["notify", "test", "-c", str(cfg)])
    assert r.exit_code == 1 and "no notification target is configured" in r.output
