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
``removed``       Postfix removed a queue file (``QUEUEID: removed``): that mail is done
``reject``        Postfix refused something (NOQUEUE/queue-id ``reject:``)
``ban``           an IP banned by fail2ban (reported through ``acctwatch report-ban``)
``client_id``     the IMAP ID a client sent (RFC 2971), as Dovecot logs it with ``imap_id_log``: claimed by
                  the client, evidence only
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
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
    #: ``ts`` as epoch seconds, what the windows of later stages compare (set once: ``ts`` is not changed)
    t: float = field(init=False, default=0.0, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.t = self.ts.timestamp()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            if f.name == "geo" or f.name == "fam" or f.name == "t":
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
class QueueRemoved(Event):
    """Postfix ``qmgr: QUEUEID: removed``: the queue file is gone (every recipient delivered, bounced or
    expired); no later line has this queue id. The queue join forgets it (no detector consumes it)."""

    kind: ClassVar[str] = "removed"
    queue_id: str


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


#: an IMAP ID key as Dovecot logs it in ``key=value, key=value``: a key starts the text or follows ", "
_ID_KEY_RE = re.compile(r"(?:^|, )([A-Za-z0-9_-]{1,30})=")
#: longest client name / version kept (Dovecot itself cuts each value near 80 characters with "...")
MAX_ID_NAME = 64
MAX_ID_VERSION = 32


def clean_id_value(value: str | None, limit: int = MAX_ID_NAME) -> str | None:
    """An IMAP ID value made safe to store and show: control, format (bidi overrides such as U+202E),
    separator and private-use characters become "?", whitespace runs one space, at most *limit* characters
    (then "..."); None when nothing is left or the client sent NIL (Dovecot logs it as the word ``NIL``)."""
    if value is None:
        return None
    out = []
    for ch in value[: limit * 4]:
        if ch.isspace():
            out.append(" ")
        elif ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Co", "Cs"):
            out.append(ch)
        else:
            out.append("?")
    text = " ".join("".join(out).split())
    if not text or text == "NIL":
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."


def id_fields(params: str) -> tuple[str | None, str | None]:
    """(name, version) from Dovecot's ``name=Thunderbird, version=115.3, os=Linux``.

    Dovecot writes keys and values raw (only control characters become "?"), so ", version=9" inside a
    name cannot be told from a real key: the first ``name``/``version`` key (any case) wins, each value runs
    to the next ``, key=``. It is the client's own claim either way; the account never comes from here."""
    found: dict[str, str] = {}
    keys = list(_ID_KEY_RE.finditer(params))
    for i, m in enumerate(keys):
        k = m.group(1).lower()
        if k in ("name", "version") and k not in found:
            end = keys[i + 1].start() if i + 1 < len(keys) else len(params)
            found[k] = params[m.end():end]
    return (clean_id_value(found.get("name"), MAX_ID_NAME),
            clean_id_value(found.get("version"), MAX_ID_VERSION))


@dataclass(slots=True, kw_only=True)
class ClientId(Event):
    """Dovecot ``imap_id_log``: ``ID sent: name=..., version=...``. Before login (``imap-login``) the line has
    the client address and the session but no account (its ``user=<>`` is at most the name of a failed
    attempt, never taken); after login (``imap(user)<pid><session>``) it has the account and the session
    but no address. ``params`` is the logged list as Dovecot wrote it (cut); ``name`` and ``version`` are
    taken from it, cleaned and bounded (:func:`id_fields`)."""

    kind: ClassVar[str] = "client_id"
    session: str | None = None
    local_ip: str | None = None
    params: str | None = None
    name: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if self.params is not None and self.name is None and self.version is None:
            self.name, self.version = id_fields(self.params)
        else:
            self.name = clean_id_value(self.name, MAX_ID_NAME)
            self.version = clean_id_value(self.version, MAX_ID_VERSION)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Login, AuthFailure, Message, QueueEntry, Delivery, QueueRemoved, Reject, Ban,
                              ClientId)
}
EVENT_KINDS = tuple(EVENT_TYPES)

#: Field names each event class accepts from a pattern (besides ts/host/program/pid/source/lineno).
EVENT_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(
        f.name for f in dataclasses.fields(cls) if f.name not in {"ts", "host", "program", "pid", "source",
                                                                   "lineno", "pattern", "geo", "fam", "t"}
    )
    for kind, cls in EVENT_TYPES.items()
}
INT_FIELDS = frozenset({"size", "nrcpt", "attempts", "pid"})
