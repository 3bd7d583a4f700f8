"""Attacker-controlled text in log lines must never change the extracted account or IP.

Shapes follow what real Postfix 3.7 / Dovecot 2.3 write for hostile input (see
/work/shared/notes/real-mail-server.md): Dovecot logs user=<...> raw (">", ",", "=", spaces kept, valid UTF-8
kept, cut near 80 characters with "..."), Postfix appends the raw attempted name after ", sasl_username=",
HELO names keep "[" and "]", MAIL FROM is raw on qmgr lines.
"""

from __future__ import annotations

import pytest

from acctwatch.events import Event
from acctwatch.headers import Clock
from acctwatch.parsing import MAX_LINE, LineParser, PatternSet

REAL_IP = "203.0.113.77"


@pytest.fixture(scope="module")
def ps() -> PatternSet:
    return PatternSet.load()


def parse(ps: PatternSet, line: str) -> Event | None:
    parser = LineParser(ps, Clock(zone="UTC", year=2026))
    ev = parser.parse(line, 1)
    assert parser.stats.internal_errors == 0
    return ev


DOVECOT_FAKE_USERS = [
    "victim@example.org>, method=PLAIN, rip=1.2.3.4, lip=10.0.0.1",
    "x, rip=1.2.3.4",
    "x>, rip=1.2.3.4, lip=10.0.0.1, mpid=1, TLS, session=<abc>",
    "sasl_username=victim@example.org",
    "evil]",
    "a" * 70 + ", rip=1.2.3.4...",
    "\u202evictim@example.org\u202c, rip=1.2.3.4",
    "x (auth failed, 9 attempts): user=<victim>, method=PLAIN, rip=1.2.3.4, lip=10.0.0.1",
]


@pytest.mark.parametrize("user", DOVECOT_FAKE_USERS)
def test_dovecot_login_success_user(ps: PatternSet, user: str) -> None:
    line = (f"Nov 26 07:11:57 mx dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={REAL_IP}, "
            "lip=192.0.2.1, mpid=4242, TLS, session=<abcDEF>")
    ev = parse(ps, line)
    assert ev is not None and ev.kind == "login"
    assert ev.ip == REAL_IP
    assert ev.account == user


@pytest.mark.parametrize("user", DOVECOT_FAKE_USERS)
@pytest.mark.parametrize("shape", [
    "Disconnected (auth failed, 2 attempts in 4 secs): user=<{u}>, method=PLAIN, rip={ip}, lip=192.0.2.1, TLS",
    "Aborted login (auth failed, 2 attempts in 4 secs): user=<{u}>, method=PLAIN, rip={ip}, lip=192.0.2.1, "
    "session=<s1>",
    "Login aborted: Connection closed (auth failed, 2 attempts in 16 secs) (auth_failed): user=<{u}>, "
    "method=PLAIN, rip={ip}, lip=192.0.2.1, TLS, session=<s1>",
])
def test_dovecot_login_failure_user(ps: PatternSet, user: str, shape: str) -> None:
    line = "Nov 26 07:11:57 mx dovecot: pop3-login: " + shape.format(u=user, ip=REAL_IP)
    ev = parse(ps, line)
    assert ev is not None and ev.kind == "auth_failure"
    assert ev.ip == REAL_IP
    assert ev.account == user
    assert ev.attempts == 2


def test_forged_failure_inside_a_no_auth_line(ps: PatternSet) -> None:
    """A username on a plaintext-refused line cannot turn it into a forged '(auth failed, 9 attempts)'."""
    user = "a (auth failed, 9 attempts): user=<victim>, method=PLAIN, rip=1.2.3.4, lip=10.0.0.1"
    line = ("Nov 26 07:11:57 mx dovecot: imap-login: Disconnected (tried to use disallowed plaintext auth): "
            f"user=<{user}>, rip={REAL_IP}, lip=192.0.2.1, session=<s1>")
    ev = parse(ps, line)
    assert ev is not None and ev.kind == "auth_failure"
    assert ev.ip == REAL_IP and ev.account == user
    assert ev.reason == "auth mechanism disallowed" and ev.attempts is None


@pytest.mark.parametrize("user", ["victim@example.org,1.2.3.4", "x,1.2.3.4): Password mismatch",
                                  "victim,1.2.3.4,<sess>", "\u202eroot"])
def test_forged_passdb_prefix(ps: PatternSet, user: str) -> None:
    for tail, reason in (("Password mismatch", "password mismatch"), ("unknown user", "unknown user")):
        line = f"Nov 26 07:11:57 mx dovecot: auth: sql({user},{REAL_IP},<Yx7>): {tail}"
        ev = parse(ps, line)
        assert ev is not None and ev.kind == "auth_failure", line
        assert ev.ip == REAL_IP and ev.account == user and ev.reason == reason


def test_forged_24_prefix_is_never_misattributed(ps: PatternSet) -> None:
    user = "x,1.2.3.4,sasl:plain)<s>: sql: Password mismatch"
    line = f"Nov 26 07:11:57 mx dovecot: auth({user},{REAL_IP},sasl:plain)<s2>: sql: unknown user"
    ev = parse(ps, line)
    assert ev is None or ev.ip == REAL_IP


def test_pam_unix_rhost_injection(ps: PatternSet) -> None:
    user = "a rhost=1.2.3.4  user=b"
    line = ("Nov 26 07:11:57 mx auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 "
            f"tty=dovecot ruser={user} rhost={REAL_IP}  user={user}")
    ev = parse(ps, line)
    assert ev is not None and ev.ip == REAL_IP and ev.account == user


POSTFIX_FAKE_USERS = [
    "x, sasl_username=victim@example.org",
    "victim@example.org]: SASL PLAIN authentication failed: x",
    "a, b = c",
    "unknown[1.2.3.4]",
    "x?n?rwarning: unknown[1.2.3.4]: SASL LOGIN authentication failed: y",
    "\u202evictim",
]


@pytest.mark.parametrize("user", POSTFIX_FAKE_USERS)
def test_postfix_sasl_failure_username(ps: PatternSet, user: str) -> None:
    line = (f"Nov 26 07:11:57 mx postfix/submission/smtpd[1]: warning: unknown[{REAL_IP}]: SASL LOGIN "
            f"authentication failed: authentication failure, sasl_username={user}")
    ev = parse(ps, line)
    assert ev is not None and ev.kind == "auth_failure"
    assert ev.ip == REAL_IP and ev.account == user and ev.service == "submission"


def test_postfix_mechanism_is_attacker_text(ps: PatternSet) -> None:
    line = (f"Nov 26 07:11:57 mx postfix/smtpd[1]: warning: unknown[{REAL_IP}]: SASL [1.2.3.4]: authentication "
            "failed: authentication failure, sasl_username=bob")
    ev = parse(ps, line)
    assert ev is not None and ev.ip == REAL_IP and ev.account == "bob"


def test_client_side_relay_failure_is_not_an_auth_failure(ps: PatternSet) -> None:
    line = ("Nov 26 07:11:57 mx postfix/smtp[1]: 4ABCD12345: SASL authentication failed; server "
            "relay.example.net[192.0.2.1] said: 535 5.7.8 Error: authentication failed: authentication failure")
    assert parse(ps, line) is None


def test_helo_with_brackets_does_not_change_reject_ip(ps: PatternSet) -> None:
    line = (f"Nov 26 07:11:57 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[{REAL_IP}]: 554 5.7.1 "
            "<x@example.net>: Relay access denied; from=<a@evil[1.2.3.4]> to=<x@example.net> proto=ESMTP "
            "helo=<evil[1.2.3.4]>")
    ev = parse(ps, line)
    assert ev is not None and ev.kind == "reject"
    assert ev.ip == REAL_IP and ev.helo == "evil[1.2.3.4]" and ev.recipient == "x@example.net"


def test_sasl_sender_cannot_change_account(ps: PatternSet) -> None:
    line = (f"Nov 26 07:11:57 mx postfix/smtpd[1]: 4ABCD12345: client=h.example.net[{REAL_IP}], sasl_method=PLAIN, "
            "sasl_username=alice@example.org, sasl_sender=x, sasl_username=victim@example.org")
    ev = parse(ps, line)
    assert ev is not None and ev.kind == "message"
    assert ev.account == "alice@example.org" and ev.ip == REAL_IP


def test_mail_from_on_qmgr_line(ps: PatternSet) -> None:
    sender = "x>, size=1, nrcpt=1 (queue active) client=evil[1.2.3.4], sasl_username=victim"
    line = f"Nov 26 07:11:58 mx postfix/qmgr[9]: 4ABCD12345: from=<{sender}>, size=5, nrcpt=3 (queue active)"
    ev = parse(ps, line)
    assert ev is not None and ev.kind == "queue"
    assert ev.sender == sender and ev.size == 5 and ev.nrcpt == 3 and ev.account is None and ev.ip is None


def test_bad_bytes_and_long_lines_are_counted_not_fatal(ps: PatternSet) -> None:
    parser = LineParser(ps, Clock(zone="UTC", year=2026))
    raw = (b"Nov 26 07:11:57 mx dovecot: imap-login: Login: user=<b\xff\xfeob>, method=PLAIN, rip=203.0.113.9, "
           b"lip=192.0.2.1")
    ev = parser.parse_bytes(raw, 1)
    assert ev is not None and ev.ip == "203.0.113.9" and "\ufffd" in (ev.account or "")
    assert parser.stats.invalid_utf8 == 1
    parser.parse_bytes(b"Nov 26 07:11:57 mx dovecot: imap-login: Login: user=<" + b"a" * (MAX_LINE * 2), 2)
    assert parser.stats.too_long == 1
    for junk in (b"", b"\x00" * 100, b"{" * 5000, b"[" * 5000, b'{"MESSAGE":[1,"x",{}]}',
                 b'{"MESSAGE":"x","__REALTIME_TIMESTAMP":[1]}', b"@4000zzzz", b"Nov 99 99:99:99 h postfix/smtpd: x",
                 b"2026-13-45T99:99:99Z h dovecot: auth: sql(a,1.2.3.4): unknown user"):
        parser.parse_bytes(junk, 3)
    assert parser.stats.internal_errors == 0


@pytest.mark.parametrize("line", [
    "Nov 26 07:11:57 mx dovecot: imap-login: Disconnected: " + "a: " * 5000 + "(auth failed, 1 attempts)",
    "Nov 26 07:11:57 mx dovecot: imap-login: Disconnected " + "(x) " * 4000 + ": user=<" + ">" * 3000,
    "Nov 26 07:11:57 mx dovecot: auth: sql(" + ",1.2.3.4" * 2000 + "): Password mismatchX",
    "Nov 26 07:11:57 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[1.2.3.4]: 554 " + "; from=<" * 2000,
])
def test_pathological_lines_finish(ps: PatternSet, line: str) -> None:
    """Would hang (catastrophic backtracking) with a badly written regex; here it returns at once."""
    parse(ps, line)


def test_a_line_cut_at_the_limit_never_becomes_an_event(ps: PatternSet) -> None:
    """An attacker pads a field so that the line is cut right where a forged, complete login line begins:
    the over-long line is counted and skipped, on both parser paths."""
    forged = b"Nov 26 07:11:57 mx dovecot: imap-login: Login: user=<victim@example.org>, method=PLAIN, " \
             b"rip=203.0.113.9, lip=192.0.2.1, mpid=1, TLS, session=<x>"
    pad = b"Nov 26 07:11:57 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[198.51.100.1]: 554 x; helo=<"
    raw = pad + b"A" * (MAX_LINE - len(pad)) + forged
    parser = LineParser(ps, Clock(zone="UTC", year=2026))
    assert parser.parse_bytes(raw, 1) is None and parser.stats.too_long == 1
    fast = LineParser(ps, Clock(zone="UTC", year=2026))
    assert list(fast.iter_events([raw, forged])) != [] and fast.stats.too_long == 1
    assert [e.account for e in fast.iter_events([raw])] == []
