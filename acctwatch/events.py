"""Typed events: the contract between parsing and every later stage.

A pattern in ``patterns/*.toml`` names the event kind it emits; its regex's named groups fill the
fields of that kind's class. Every event carries the time it happened (aware, UTC), the host and program
of the log line, and where the line came from (``source``, ``lineno``) so that any decision can be
traced back to the exact line that caused it.

Kinds:

``login``         a successful authentication (SMTP AUTH, IMAP, POP3, ManageSieve, submission)
``auth_failure``  a failed authentication attempt (account when the daemon logged one)
``message``       Postfix accepted a message from an authenticated client (``client=... sasl_username=``)
``queue``         Postfix queue manager entry (``from=<...>, size=..., nrcpt=...``)
``delivery``      a delivery attempt result (``to=<...>, relay=..., dsn=..., status=...``)
``reject``        Postfix refused something (NOQUEUE/queue-id ``reject:``)
``ban``           an IP banned by fail2ban (reported through ``acctwatch report-ban``)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

SERVICES = ("smtp", "submission", "imap", "pop3", "managesieve", "lmtp", "unknown")


@dataclass(slots=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"

    ts: datetime
    host: str | None = None
    program: str = ""
    pid: int | None = None
    service: str | None = None
    account: str | None = None
    ip: str | None = None
    source: str = ""
    lineno: int = 0
    pattern: str = ""
    # Enrichment (filled by acctwatch.geo); None when unknown or internal.
    geo: Any = field(default=None, compare=False, repr=False)
    # Familiarity (filled by acctwatch.profiles): how this event's network looks to its account's profile
    fam: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            if f.name == "geo" or f.name == "fam":
                continue
            v = getattr(self, f.name)
            if isinstance(v, datetime):
                v = v.isoformat().replace("+00:00", "Z")
            d[f.name] = v
        if self.geo is not None:
            d["geo"] = self.geo.to_dict()
        if self.fam is not None:
            d["familiarity"] = self.fam.to_dict()
        return d


@dataclass(slots=True, kw_only=True)
class Login(Event):
    kind: ClassVar[str] = "login"
    method: str | None = None
    session: str | None = None
    local_ip: str | None = None
    #: Set by the Postfix queue join: the queue id of the message this login was seen on.
    queue_id: str | None = None


@dataclass(slots=True, kw_only=True)
class AuthFailure(Event):
    kind: ClassVar[str] = "auth_failure"
    method: str | None = None
    reason: str | None = None
    session: str | None = None
    attempts: int | None = None
    #: Which process logged it, so one attempt seen twice is counted once (see docs/patterns.md):
    #: "frontend" = the protocol daemon (Postfix smtpd: one event per attempt; Dovecot *-login: one event
    #: per connection, ``attempts`` = how many); "backend" = Dovecot's auth process / PAM (one per attempt,
    #: only with auth_verbose; the same attempt as a frontend event). Count frontend events; use backend
    #: ones for the account and reason, or alone when a source has no frontend lines.
    layer: str | None = None


@dataclass(slots=True, kw_only=True)
class Message(Event):
    """Postfix ``QUEUEID: client=host[ip], sasl_method=..., sasl_username=...``."""

    kind: ClassVar[str] = "message"
    queue_id: str
    method: str | None = None
    sasl_sender: str | None = None
    orig_ip: str | None = None
    client_name: str | None = None


@dataclass(slots=True, kw_only=True)
class QueueEntry(Event):
    """Postfix ``qmgr: QUEUEID: from=<...>, size=N, nrcpt=N (queue active)``."""

    kind: ClassVar[str] = "queue"
    queue_id: str
    sender: str | None = None
    size: int | None = None
    nrcpt: int | None = None


@dataclass(slots=True, kw_only=True)
class Delivery(Event):
    kind: ClassVar[str] = "delivery"
    queue_id: str
    recipient: str | None = None
    relay: str | None = None
    status: str | None = None  # sent, deferred, bounced, expired
    dsn: str | None = None


@dataclass(slots=True, kw_only=True)
class Reject(Event):
    kind: ClassVar[str] = "reject"
    queue_id: str | None = None
    stage: str | None = None  # CONNECT, HELO, MAIL, RCPT, DATA, BDAT, END-OF-MESSAGE
    code: str | None = None
    reason: str | None = None
    sender: str | None = None
    recipient: str | None = None
    helo: str | None = None


@dataclass(slots=True, kw_only=True)
class Ban(Event):
    kind: ClassVar[str] = "ban"
    jail: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Login, AuthFailure, Message, QueueEntry, Delivery, Reject, Ban)
}
EVENT_KINDS = tuple(EVENT_TYPES)

#: Field names each event class accepts from a pattern (besides ts/host/program/pid/source/lineno).
EVENT_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(
        f.name for f in dataclasses.fields(cls) if f.name not in {"ts", "host", "program", "pid", "source",
                                                                   "lineno", "pattern", "geo", "fam"}
    )
    for kind, cls in EVENT_TYPES.items()
}
INT_FIELDS = frozenset({"size", "nrcpt", "attempts", "pid"})
