"""The e2e harness works, and the enforcement path works on the real daemons (no acctwatch daemon here).

Proves: logins through the trusted-proxy mechanisms are logged with the claimed public addresses and
acctwatch's parser reads them as such; ``active = 0`` refuses the next SMTP AUTH, IMAP and POP3 login;
``doveadm kick`` ends an open session; remote mail reaches the relay sink (``status=sent``); the operator
sink receives apprise email; ``active = 1`` restores logins.
"""

from __future__ import annotations

import re
import signal
import smtplib
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from . import clients
from .mailserver import (
    BOUNCE_DOMAIN,
    DEFER_DOMAIN,
    REMOTE_DOMAIN,
    BackgroundProcess,
    MailServer,
    OperatorSink,
    explain_events,
    wait_for,
)

pytestmark = [pytest.mark.e2e]


def _pw(server: MailServer, account: str) -> str:
    return server.users[account]


def _events(server: MailServer) -> list[dict[str, Any]]:
    return explain_events(server.postfix_log, server.dovecot_log)


def _find(events: list[dict[str, Any]], **want: Any) -> list[dict[str, Any]]:
    return [e for e in events if all(e.get(k) == v for k, v in want.items())]


def _in_parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run calls concurrently: each refused login costs ~2 s of Dovecot's auth failure delay."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(c) for c in calls]
        return [f.result() for f in futures]


def _refusal(login: Callable[[], Any]) -> str:
    """The LoginFailed message of a refused login ("" when it succeeded; the session is closed)."""
    try:
        conn = login()
    except clients.LoginFailed as exc:
        return str(exc)
    conn.close()
    return ""


def test_logins_come_from_claimed_public_addresses(mailserver: MailServer) -> None:
    user = "alice@example.test"
    pw = _pw(mailserver, user)
    sent = clients.send_messages(mailserver, user, pw, "81.2.69.142", ["bob@example.test"])
    sent6 = clients.send_messages(mailserver, user, pw, "2001:db8::25", ["carol@example.test"])
    clients.imap_login(mailserver, user, pw, "89.160.20.112").logout()
    clients.pop3_login(mailserver, user, pw, "203.0.113.7").quit()
    clients.imap_login(mailserver, user, pw, "2001:db8::143").logout()
    clients.pop3_login(mailserver, user, pw, "2001:db8::110").quit()

    mailserver.wait_for_log(rf"{sent6.queue_ids[0]}: to=<carol@example\.test>.*status=sent", "postfix")
    mailserver.wait_for_log(r"pop3-login: Info: Login: user=<alice@example\.test>.*rip=2001:db8::110,", "dovecot")
    postfix = mailserver.log_text("postfix")
    assert re.search(rf"{sent.queue_ids[0]}: client=unknown\[81\.2\.69\.142\], sasl_method=PLAIN, "
                     rf"sasl_username=alice@example\.test", postfix)
    assert f"{sent6.queue_ids[0]}: client=unknown[2001:db8::25]" in postfix

    events = _events(mailserver)
    msg = _find(events, kind="message", queue_id=sent.queue_ids[0])
    assert msg and msg[0]["account"] == user and msg[0]["ip"] == "81.2.69.142", msg
    assert msg[0]["service"] == "submission"
    msg6 = _find(events, kind="message", queue_id=sent6.queue_ids[0])
    assert msg6 and msg6[0]["account"] == user and msg6[0]["ip"] == "2001:db8::25", msg6
    assert _find(events, kind="login", service="imap", account=user, ip="89.160.20.112")
    assert _find(events, kind="login", service="pop3", account=user, ip="203.0.113.7")
    assert _find(events, kind="login", service="imap", account=user, ip="2001:db8::143")
    assert _find(events, kind="login", service="pop3", account=user, ip="2001:db8::110")
    # Nothing of this user was logged with the loopback address the clients really came from.
    assert not _find(events, kind="login", account=user, ip="127.0.0.1")
    assert not _find(events, kind="message", account=user, ip="127.0.0.1")


def test_wrong_password_is_exactly_one_attempt(mailserver: MailServer) -> None:
    ip = "198.51.100.21"
    assert not clients.smtp_login_ok(mailserver, "erin@example.test", "not-the-password", ip)
    line = r"warning: unknown\[198\.51\.100\.21\]: SASL PLAIN authentication failed.*sasl_username=erin@example\.test"
    mailserver.wait_for_log(line, "postfix")
    assert len(re.findall(line, mailserver.log_text("postfix"))) == 1
    fails = _find(_events(mailserver), kind="auth_failure", service="submission", ip=ip)
    assert [e["account"] for e in fails] == ["erin@example.test"]


def test_lock_refuses_new_logins_and_unlock_restores(fresh_accounts: MailServer) -> None:
    server = fresh_accounts
    user = "carol@example.test"
    pw = _pw(server, user)
    assert clients.smtp_login_ok(server, user, pw, "192.0.2.10")
    since = server.log_sizes()

    server.set_active(user, False)
    assert not server.is_active(user)
    smtp_err, imap_err, pop3_err = _in_parallel(
        lambda: _refusal(lambda: clients.smtp_login(server, user, pw, "192.0.2.11")),
        lambda: _refusal(lambda: clients.imap_login(server, user, pw, "198.51.100.12")),
        lambda: _refusal(lambda: clients.pop3_login(server, user, pw, "203.0.113.13")),
    )
    assert "535" in smtp_err  # a real SMTP AUTH refusal, not a connection problem
    assert "AUTHENTICATIONFAILED" in imap_err or "Authentication failed" in imap_err, imap_err
    assert "-ERR" in pop3_err, pop3_err
    # With the row inactive, Dovecot's SQL passdb no longer finds the user.
    server.wait_for_log(r"sql\(carol@example\.test,198\.51\.100\.12\S*\): unknown user", "dovecot", since)
    assert "sasl_username=carol@example.test" in server.log_text("postfix", since)

    server.set_active(user, True)
    assert _in_parallel(
        lambda: clients.smtp_login_ok(server, user, pw, "192.0.2.15"),
        lambda: clients.imap_login_ok(server, user, pw, "198.51.100.16"),
        lambda: clients.pop3_login_ok(server, user, pw, "203.0.113.17"),
    ) == [True, True, True]

    events = _events(server)
    for ip in ("192.0.2.11", "198.51.100.12", "203.0.113.13"):
        assert any(e["account"] == user for e in _find(events, kind="auth_failure", ip=ip)), ip
    for service, ip in (("imap", "198.51.100.16"), ("pop3", "203.0.113.17")):
        assert _find(events, kind="login", service=service, account=user, ip=ip)


def test_doveadm_kick_ends_open_imap_session(fresh_accounts: MailServer) -> None:
    server = fresh_accounts
    user = "dave@example.test"
    conn = clients.imap_login(server, user, _pw(server, user), "81.2.69.142")
    try:
        assert clients.imap_alive(conn)
        assert user in server.who()
        # A lock alone does not end the session ...
        server.set_active(user, False)
        assert clients.imap_alive(conn)
        # ... doveadm kick does.
        server.doveadm("kick", user)
        wait_for(lambda: not clients.imap_alive(conn), 5, what="the kicked IMAP session to end")
        wait_for(lambda: user not in server.who(), 5, what="doveadm who to forget the session")
    finally:
        clients.imap_close(conn)


def test_remote_mail_reaches_the_sink(mailserver: MailServer) -> None:
    user = "bob@example.test"
    rcpts = [f"r{i}@{REMOTE_DOMAIN}" for i in range(3)] + ["alice@example.test", f"nobody@{BOUNCE_DOMAIN}"]
    sent = clients.send_messages(mailserver, user, _pw(mailserver, user), "89.160.20.112", rcpts, count=2)
    assert len(sent.queue_ids) == 2 and all(sent.queue_ids)
    assert sent.refused == [{}, {}]
    for qid in sent.queue_ids:
        mailserver.wait_for_log(rf"{qid}: to=<nobody@bounce\.test>.*status=bounced", "postfix")
        for r in rcpts[:4]:
            mailserver.wait_for_log(rf"{qid}: to=<{re.escape(r)}>.*status=sent", "postfix")
    log = mailserver.log_text("postfix")
    relay = f"relay=127.0.0.1[127.0.0.1]:{mailserver.relay_sink.port}"
    assert re.search(rf"{sent.queue_ids[0]}: to=<r0@remote\.test>, {re.escape(relay)}, .*status=sent", log)

    events = _events(mailserver)
    for qid in sent.queue_ids:
        assert _find(events, kind="message", queue_id=qid, account=user, ip="89.160.20.112")
        statuses = sorted(e["status"] for e in _find(events, kind="delivery", queue_id=qid))
        assert statuses == ["bounced"] + ["sent"] * 4
        queue = _find(events, kind="queue", queue_id=qid)
        assert queue and queue[0]["nrcpt"] == len(rcpts)


def test_unauthenticated_relay_is_refused(mailserver: MailServer) -> None:
    smtp = clients.smtp_connect(mailserver, "192.0.2.7")
    try:
        smtp.mail("spammer@example.net")
        code, _ = smtp.rcpt(f"victim@{REMOTE_DOMAIN}")
        assert code == 554
    finally:
        smtp.close()


def test_operator_sink_receives_apprise_email(mailserver: MailServer, operator_sink: OperatorSink) -> None:
    apprise = pytest.importorskip("apprise")
    notifier = apprise.Apprise()
    assert notifier.add(operator_sink.apprise_url())
    assert notifier.notify(title="acctwatch: locked alice@example.test", body="evidence: 81.2.69.142 (GB)")
    mail = operator_sink.wait_for_message(lambda m: "alice@example.test" in m.subject)
    assert "81.2.69.142" in mail.text
    assert mail.rcpt_tos == ("ops@example.test",)
    # Plain smtplib works too (the sink accepts anything, no AUTH, no TLS).
    with smtplib.SMTP(operator_sink.host, operator_sink.port, timeout=10) as smtp:
        smtp.sendmail("a@example.test", ["ops@example.test"], b"Subject: second\r\n\r\nhello\r\n")
    assert [m.subject for m in operator_sink.messages()][-1] == "second"


def test_queued_mail_can_be_held_and_released(mailserver: MailServer) -> None:
    user = "erin@example.test"
    sent = clients.send_messages(mailserver, user, _pw(mailserver, user), "198.51.100.44", [f"x@{DEFER_DOMAIN}"],
                                 count=3)
    ids = set(sent.queue_ids)
    wait_for(lambda: ids <= {m["queue_id"] for m in mailserver.queue() if m["queue_name"] == "deferred"}, 10,
             what="the defer.test mail in the deferred queue")
    subprocess.run([*mailserver.postsuper_cmd, "-h", "-"], input="\n".join(ids), text=True, check=True,
                   capture_output=True)
    assert ids <= mailserver.held_queue_ids(sender=user)
    subprocess.run([*mailserver.postsuper_cmd, "-d", "-"], input="\n".join(ids), text=True, check=True,
                   capture_output=True)
    assert not ids & {m["queue_id"] for m in mailserver.queue()}


def test_background_process_is_stopped(background: Callable[..., BackgroundProcess]) -> None:
    code = "import sys, time; print('ready', flush=True); time.sleep(60)"
    proc = background([sys.executable, "-c", code], name="sleeper")
    proc.wait_for_output(r"^ready$|ready")
    assert proc.running()
    assert proc.stop() == -signal.SIGTERM
    assert not proc.running()
    crash = background([sys.executable, "-c", "raise SystemExit('bad config')"], name="crash")
    with pytest.raises(RuntimeError, match="bad config"):
        crash.wait_for_output("never printed", timeout=5)


def test_log_rotation_reopens_both_logs(mailserver: MailServer) -> None:
    """Runs last in this file: later tests (acctwatch's own) start with nearly empty logs."""
    old_postfix, old_dovecot = mailserver.rotate_logs()
    try:
        user = "bob@example.test"
        sent = clients.send_messages(mailserver, user, _pw(mailserver, user), "203.0.113.99", [f"r@{REMOTE_DOMAIN}"])
        clients.imap_login(mailserver, user, _pw(mailserver, user), "203.0.113.98").logout()
        mailserver.wait_for_log(rf"{sent.queue_ids[0]}: to=<r@remote\.test>.*status=sent", "postfix")
        mailserver.wait_for_log(r"imap-login: Info: Login: user=<bob@example\.test>.*rip=203\.0\.113\.98", "dovecot")
        assert sent.queue_ids[0] not in old_postfix.read_text()
        assert "203.0.113.98" not in old_dovecot.read_text()
        assert "Dovecot v2.3" in old_dovecot.read_text()
    finally:
        old_postfix.unlink(missing_ok=True)
        old_dovecot.unlink(missing_ok=True)
