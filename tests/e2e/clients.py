"""Real SMTP/IMAP/POP3 clients whose logins appear to come from public IP addresses.

Only loopback is ever connected to; the servers' trusted-proxy mechanisms carry the claimed address:

- SMTP submission: ``XCLIENT ADDR=<ip> NAME=[UNAVAILABLE]`` (Postfix ``smtpd_authorized_xclient_hosts``),
  then a fresh EHLO, then exactly one ``AUTH PLAIN`` (``smtplib.login()`` would retry other mechanisms).
- IMAP: ``ID ("x-originating-ip" "<ip>" ...)`` before LOGIN (Dovecot ``login_trusted_networks``).
- POP3: ``XCLIENT ADDR=<ip> PORT=<port>`` before USER/PASS (Dovecot ``login_trusted_networks``; IPv6
  without the ``IPV6:`` prefix Postfix needs).

Use addresses the project's test GeoIP databases know: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32, or MaxMind test-data addresses such as 81.2.69.142 (GB) and 89.160.20.112 (SE).

Login helpers raise :class:`LoginFailed` when the server refuses the credentials; the ``*_login_ok``
variants return a bool instead. Dovecot delays every failed login by about 2 s (longer for repeats from
the same address), so use a distinct address per expected failure.
"""

from __future__ import annotations

import imaplib
import ipaddress
import poplib
import smtplib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

from .mailserver import HOST, MailServer

TIMEOUT = 15.0

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))


#: Address ranges handed out by :func:`fresh_ip`, and what the test GeoIP databases in tests/fixtures/geo
#: say about them. The harness's own tests use addresses outside these ranges, so a test of acctwatch
#: that takes its addresses here never shares one with them.
FRESH_IP_RANGES: dict[str, tuple[str, str]] = {
    "DE": ("192.0.2.64/26", "Berlin, Germany"),
    "DE-Munich": ("192.0.2.192/26", "Munich, Germany (same country, another city)"),
    "US": ("198.51.100.128/25", "New York, United States"),
    "AU": ("203.0.113.128/25", "Sydney, Australia"),
    "FR": ("2001:db8:0:1::/64", "Paris, France (IPv6)"),
}
_fresh_counters: dict[str, int] = {}


def fresh_ip(country: str) -> str:
    """An address in ``country`` (a key of :data:`FRESH_IP_RANGES`) not handed out before in this process.

    Use one per expected login failure (Dovecot slows down repeated failures from one address)."""
    net = ipaddress.ip_network(FRESH_IP_RANGES[country][0])
    n = _fresh_counters.get(country, 0) + 1
    if n >= min(net.num_addresses - 1, 1 << 16):
        raise RuntimeError(f"fresh_ip: range {net} for {country} used up")
    _fresh_counters[country] = n
    return str(net.network_address + n)


class LoginFailed(Exception):
    """The server refused the credentials (SMTP 535, IMAP NO, POP3 -ERR)."""


def _client_port(ip: str) -> int:
    """A stable, plausible client source port for ``ip`` (shown as ``rport=`` in Dovecot's log)."""
    return 40000 + zlib.crc32(ip.encode()) % 20000


def _xclient_addr(ip: str) -> str:
    """Postfix XCLIENT syntax: IPv6 addresses carry an ``IPV6:`` prefix (Dovecot's POP3 XCLIENT wants the
    bare address and answers ``-ERR Invalid parameters`` to the prefix)."""
    return f"IPV6:{ip}" if ipaddress.ip_address(ip).version == 6 else ip


# --- SMTP submission ---------------------------------------------------------------------------------


def smtp_connect(server: MailServer, ip: str, helo: str = "client.example.net") -> smtplib.SMTP:
    """A submission connection whose client address is ``ip`` (XCLIENT), EHLO done, not authenticated."""
    smtp = smtplib.SMTP(HOST, server.submission_port, local_hostname=helo, timeout=TIMEOUT)
    try:
        smtp.ehlo()
        if not smtp.has_extn("xclient"):
            raise RuntimeError("Postfix does not offer XCLIENT to loopback (smtpd_authorized_xclient_hosts)")
        code, msg = smtp.docmd("XCLIENT", f"ADDR={_xclient_addr(ip)} NAME=[UNAVAILABLE]")
        if code != 220:
            raise RuntimeError(f"XCLIENT refused: {code} {msg!r}")
        # XCLIENT resets the session: forget the old EHLO and greet again.
        smtp.ehlo_resp = None
        smtp.esmtp_features = {}
        smtp.does_esmtp = False
        smtp.ehlo(helo)
    except BaseException:
        smtp.close()
        raise
    return smtp


def smtp_auth(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """Exactly one ``AUTH PLAIN`` attempt; :class:`LoginFailed` on 535."""
    smtp.user, smtp.password = user, password
    try:
        smtp.auth("PLAIN", smtp.auth_plain)
    except smtplib.SMTPAuthenticationError as exc:
        raise LoginFailed(f"SMTP AUTH for {user} refused: {exc.smtp_code} {exc.smtp_error!r}") from exc


def smtp_login(server: MailServer, user: str, password: str, ip: str) -> smtplib.SMTP:
    """Connect as from ``ip`` and authenticate; returns the open, authenticated connection."""
    smtp = smtp_connect(server, ip)
    try:
        smtp_auth(smtp, user, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def smtp_login_ok(server: MailServer, user: str, password: str, ip: str) -> bool:
    """Whether SMTP AUTH from ``ip`` succeeds (the connection is closed again, no mail is sent)."""
    try:
        smtp = smtp_login(server, user, password, ip)
    except LoginFailed:
        return False
    _quit(smtp)
    return True


@dataclass
class SendResult:
    queue_ids: list[str] = field(default_factory=list)
    #: per message: recipients the server refused at RCPT (address -> (code, text))
    refused: list[dict[str, tuple[int, bytes]]] = field(default_factory=list)


def make_message(sender: str, recipients: Sequence[str], subject: str = "e2e test", body: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="client.example.net")
    msg.set_content(body or f"Test message for {', '.join(recipients)}.\n")
    return msg


def send_messages(
    server: MailServer,
    user: str,
    password: str,
    ip: str,
    recipients: Sequence[str] | Iterable[Sequence[str]],
    count: int = 1,
    subject: str = "e2e test",
) -> SendResult:
    """Log in once as from ``ip`` and send ``count`` messages, each to all of ``recipients``.

    ``recipients`` may also be a list of recipient lists (one per message; ``count`` is then ignored).
    Mix local users (``bob@example.test``) and remote domains (``x@remote.test`` goes to the relay sink).
    Returns the Postfix queue ids. Raises :class:`LoginFailed` when AUTH fails and
    ``smtplib.SMTPException`` when a message is refused as a whole.
    """
    recipients = list(recipients)
    batches: list[list[str]]
    if recipients and not isinstance(recipients[0], str):
        batches = [list(r) for r in recipients]
    else:
        batches = [list(recipients)] * count  # type: ignore[arg-type]
    result = SendResult()
    smtp = smtp_login(server, user, password, ip)
    try:
        for i, rcpts in enumerate(batches, 1):
            msg = make_message(user, rcpts, f"{subject} {i}/{len(batches)}")
            queue_id, refused = _send_one(smtp, user, rcpts, msg)
            result.queue_ids.append(queue_id)
            result.refused.append(refused)
    finally:
        _quit(smtp)
    return result


def _send_one(
    smtp: smtplib.SMTP, sender: str, rcpts: list[str], msg: EmailMessage
) -> tuple[str, dict[str, tuple[int, bytes]]]:
    """MAIL/RCPT/DATA by hand so that the queue id in the 250 reply is kept."""
    code, resp = smtp.mail(sender)
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for r in rcpts:
        code, resp = smtp.rcpt(r)
        if code not in (250, 251):
            refused[r] = (code, resp)
    if len(refused) == len(rcpts):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]
    code, resp = smtp.data(msg.as_bytes())
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPDataError(code, resp)
    text = resp.decode("ascii", "replace")
    queue_id = text.rsplit("queued as ", 1)[-1].strip() if "queued as " in text else ""
    return queue_id, refused


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


# --- IMAP --------------------------------------------------------------------------------------------


def imap_login(server: MailServer, user: str, password: str, ip: str, port: int = 0,
               select: bool = True) -> imaplib.IMAP4:
    """IMAP LOGIN as from ``ip`` (``ID x-originating-ip``). Returns the open session (INBOX selected);
    keep it to check that it gets killed (:func:`imap_alive`), or call ``.logout()``."""
    conn = imaplib.IMAP4(HOST, server.imap_port, timeout=TIMEOUT)
    try:
        fields = f'"x-originating-ip" "{ip}" "x-originating-port" "{port or _client_port(ip)}"'
        typ, data = conn._simple_command("ID", f"({fields})")
        if typ != "OK":
            raise RuntimeError(f"IMAP ID refused: {typ} {data!r}")
        try:
            conn.login(user, password)
        except imaplib.IMAP4.error as exc:
            raise LoginFailed(f"IMAP LOGIN for {user} refused: {exc}") from exc
        if select:
            conn.select("INBOX")
    except BaseException:
        try:
            conn.shutdown()
        except OSError:
            pass
        raise
    return conn


def imap_login_ok(server: MailServer, user: str, password: str, ip: str) -> bool:
    try:
        conn = imap_login(server, user, password, ip, select=False)
    except LoginFailed:
        return False
    imap_close(conn)
    return True


def imap_alive(conn: imaplib.IMAP4) -> bool:
    """Whether an open IMAP session still answers NOOP (False once the server ended it)."""
    try:
        typ, _ = conn.noop()
    except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError, EOFError):
        return False
    return typ == "OK"


def imap_close(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError, EOFError):
        try:
            conn.shutdown()
        except OSError:
            pass


def imap_inbox_count(server: MailServer, user: str, password: str, ip: str = "192.0.2.5") -> int:
    conn = imap_login(server, user, password, ip, select=False)
    try:
        typ, data = conn.select("INBOX", readonly=True)
        return int(data[0] or 0) if typ == "OK" else 0
    finally:
        imap_close(conn)


# --- POP3 --------------------------------------------------------------------------------------------


def pop3_login(server: MailServer, user: str, password: str, ip: str, port: int = 0) -> poplib.POP3:
    """POP3 USER/PASS as from ``ip`` (``XCLIENT ADDR=... PORT=...``). Returns the open session."""
    conn = poplib.POP3(HOST, server.pop3_port, timeout=TIMEOUT)
    try:
        if b"XCLIENT" not in conn.getwelcome():
            raise RuntimeError(f"Dovecot offers no POP3 XCLIENT to loopback: {conn.getwelcome()!r}")
        conn._shortcmd(f"XCLIENT ADDR={ip} PORT={port or _client_port(ip)}")
        try:
            conn.user(user)
            conn.pass_(password)
        except poplib.error_proto as exc:
            raise LoginFailed(f"POP3 login for {user} refused: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def pop3_login_ok(server: MailServer, user: str, password: str, ip: str) -> bool:
    try:
        conn = pop3_login(server, user, password, ip)
    except LoginFailed:
        return False
    try:
        conn.quit()
    except (poplib.error_proto, OSError):
        conn.close()
    return True
