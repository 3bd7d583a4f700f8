"""Notifications through apprise, via the store's ``outbox`` table.

Detection and response only *queue* a message (one per incident and target: the dedupe key); the daemon
calls :meth:`Notifier.deliver_pending` periodically, which sends what is due and retries failures with
exponential backoff. A notifier that is down never blocks detection, and a queued alert survives a
restart. No secret is written to the store: operator rows name their target by a hash of its URL, which is
looked up in the current config at delivery time.

Config (all optional)::

    [notify]
    operator = ["mailtos://alerts:secret@smtp.example.org?to=admin@example.org", "json://hooks.example/x"]
    operator_config = "/etc/acctwatch/apprise.yml"   # an apprise config file (more targets, tags)
    retry_base = "30s"    # first retry after 30 s, then 60 s, 120 s, ... up to retry_max
    retry_max = "1h"

    [notify.user]        # optional "was this you?" notice to the user's alternate address
    url = "mailtos://alerts:secret@smtp.example.org?to={address}"
    sql_url = "mysql+pymysql://acctwatch:secret@127.0.0.1/mail"
    sql_query = "SELECT recovery_email FROM users WHERE email = :account"
    addresses = {"alice@example.org" = "alice.private@example.net"}
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from ..config import Config, ConfigError, parse_duration
from ..store import GAVE_UP, Store, utcnow

log = logging.getLogger(__name__)

#: (title, body, url-or-config) -> (ok, error text)
Sender = Callable[[str, str, "Target"], tuple[bool, str]]

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def clean(text: Any) -> str:
    """Log-derived text for a human: no control characters or bidi overrides (shown as '?')."""
    return _CTRL.sub("?", str(text))


def account_arg(account: str) -> str:
    """An account as the last argument of a generated command: after ``--`` and quoted for bash (an account
    named ``-rf@example.com`` or ``--help`` is no option)."""
    return "-- " + shell_arg(account)


def cli_options(config: Any) -> str:
    """The ``-c FILE`` and ``--db URL`` a generated command needs to reach the same config and store as the
    daemon that wrote it (``" -c /etc/acctwatch/mail2.toml"``, or ``""`` for the defaults). A store URL given
    on the daemon's command line is repeated with its password masked (it is not written into mail)."""
    from ..config import DEFAULT_CONFIG
    from ..store import mask_url

    out = ""
    path = getattr(config, "path", None)
    if path is not None and str(path) != str(DEFAULT_CONFIG):
        out += " -c " + shell_arg(str(path))
    db = getattr(config, "db", None)
    raw = (getattr(config, "raw", None) or {}).get("general", {})
    if db and db != (raw.get("db") if isinstance(raw, dict) else None):
        out += " --db " + shell_arg(mask_url(db))
    return out


def shell_arg(text: str) -> str:
    """*text* as one argument an admin can paste into bash; control characters as $'\\xNN' escapes."""
    if not _CTRL.search(text):
        return shlex.quote(text)
    out = []
    for ch in text:
        if _CTRL.match(ch) or ch in "\\'":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


@dataclass(frozen=True)
class Target:
    label: str  # what the outbox row stores
    kind: str  # url, config
    value: str  # the apprise URL or config file path (may hold secrets: never logged or stored)


def _strlist(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise ConfigError(f"{where}: expected a string or a list of strings, got {v!r}")


#: next_attempt of a message given up on (kept in the outbox, with the reason, for the operator to see)


def _label(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:16]}"


def with_timeout(url: str, seconds: float) -> str:
    """*url* with apprise's connect/read timeouts (``cto``, ``rto``) unless it sets them itself."""
    if not seconds or "://" not in url:
        return url
    parts = [f"{k}={seconds:g}" for k in ("cto", "rto") if f"{k}=" not in url.partition("?")[2]]
    if not parts:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(parts)


#: what apprise logs when a request went out but no answer came back in time: the receiver may have it
UNKNOWN_OUTCOME = ("timed out", "timeout", "read operation timed out", "remotedisconnected",
                   "connection aborted")


def apprise_send(title: str, body: str, target: Target) -> tuple[bool, str]:
    """Send one message to one apprise URL or config file; (ok, what went wrong)."""
    import apprise

    ap = apprise.Apprise()
    if target.kind == "config":
        cfg = apprise.AppriseConfig()
        if not cfg.add(target.value):
            return False, f"apprise cannot read the config file {target.value}"
        ap.add(cfg)
    elif not ap.add(target.value):
        scheme = target.value.partition("://")[0] or "?"
        return False, f"apprise does not understand the {scheme}:// URL (check [notify] operator / user.url)"
    if len(ap) == 0:
        return False, "no notification target loaded"
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = ap.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
    errors = captured.getvalue().strip() if hasattr(captured, "getvalue") else ""
    return bool(ok), (errors.splitlines()[-1][:500] if errors else ("" if ok else "apprise reported a failure"))


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    pending: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "pending": self.pending}


class Notifier:
    def __init__(self, config: Config, store: Store, sender: Sender | None = None) -> None:
        n = config.notify
        known_n = {"operator", "operator_config", "retry_base", "retry_max", "user", "timeout",
                   "max_unknown_attempts"}
        unknown_n = set(n) - known_n
        if unknown_n:
            raise ConfigError(f"[notify]: unknown option(s) {', '.join(sorted(unknown_n))}; known: "
                              f"{', '.join(sorted(known_n))}")
        self.config = config
        self.store = store
        self.sender = sender or apprise_send
        self.instance = config.instance
        #: seconds to connect and to wait for an answer, per target (apprise's cto/rto)
        self.timeout = parse_duration(n.get("timeout", "15s"), "notify.timeout")
        mua = n.get("max_unknown_attempts", 3)
        if isinstance(mua, bool) or not isinstance(mua, int) or mua < 1:
            raise ConfigError(f"notify.max_unknown_attempts: expected a whole number >= 1, got {mua!r}")
        #: attempts that timed out after sending (the receiver may have the message) before giving up
        self.max_unknown = mua
        self.targets: list[Target] = []
        for url in _strlist(n.get("operator"), "notify.operator"):
            self.targets.append(Target(_label("url", url), "url", with_timeout(url, self.timeout)))
        for path in _strlist(n.get("operator_config"), "notify.operator_config"):
            self.targets.append(Target(_label("config", path), "config", path))
        self.retry_base = parse_duration(n.get("retry_base", 30), "notify.retry_base")
        self.retry_max = parse_duration(n.get("retry_max", "1h"), "notify.retry_max")
        user = n.get("user") or {}
        if not isinstance(user, dict):
            raise ConfigError("[notify.user] must be a table")
        unknown = set(user) - {"url", "sql_url", "sql_query", "addresses", "enabled"}
        if unknown:
            raise ConfigError(f"[notify.user]: unknown option(s) {', '.join(sorted(unknown))}; "
                              "known: url, sql_url, sql_query, addresses, enabled")
        self.user_url: str | None = user.get("url") if user.get("enabled", True) else None
        if self.user_url is not None and "{address}" not in self.user_url:
            raise ConfigError("notify.user.url must contain {address}, e.g. "
                              "\"mailtos://alerts:pw@smtp.example.org?to={address}\"")
        self.user_map = {str(k).lower(): str(v) for k, v in (user.get("addresses") or {}).items()}
        self.user_sql_url: str | None = user.get("sql_url")
        self.user_sql: sa.TextClause | None = None
        if self.user_sql_url:
            q = sa.text(user.get("sql_query") or "SELECT recovery_email FROM users WHERE email = :account")
            if "account" not in q._bindparams:
                raise ConfigError("notify.user.sql_query must use the bound parameter :account")
            self.user_sql = q

    # -- queueing ---------------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return bool(self.targets)

    def enqueue_operator(self, conn: Any, key: str, title: str, body: str, incident_id: str | None = None) -> int:
        """Queue *title*/*body* for every operator target; returns how many rows were new."""
        if not self.targets:
            log.warning("no [notify] operator target configured: alert %r only recorded in the audit", title)
            return 0
        n = 0
        for t in self.targets:
            n += self.store.enqueue(conn, dedupe_key=f"{key}:{t.label}"[:200], target="operator", urls=[t.label],
                                    title=title, body=body, incident_id=incident_id)
        return n

    def user_address(self, account: str) -> str | None:
        """The account's alternate address: the ``addresses`` mapping, then the SQL column."""
        addr = self.user_map.get(account.lower())
        if addr:
            return addr
        if self.user_sql is not None and self.user_sql_url:
            from .lockers.sql import engine_for

            try:
                with engine_for(self.user_sql_url).connect() as conn:
                    row = conn.execute(self.user_sql, {"account": account}).first()
            except Exception as exc:
                log.warning("user notice: looking up the alternate address of %r failed: %s", account, exc)
                return None
            if row is not None and row[0] and "@" in str(row[0]):
                return str(row[0]).strip()
        return None

    def enqueue_user(self, conn: Any, key: str, account: str, title: str, body: str,
                     incident_id: str | None = None) -> bool:
        if not self.user_url:
            return False
        addr = self.user_address(account)
        if not addr or _CTRL.search(addr) or any(c in addr for c in " ,;<>\"'"):
            return False
        return self.store.enqueue(conn, dedupe_key=key[:200], target="user", urls=[f"user:{addr}"], title=title,
                                  body=body, incident_id=incident_id)

    # -- delivery ---------------------------------------------------------------------------------
    def _resolve(self, label: str) -> list[Target]:
        if label.startswith("user:"):
            if not self.user_url:
                return []
            addr = label.removeprefix("user:")
            return [Target(label, "url", self.user_url.replace("{address}", quote(addr, safe="@+")))]
        for t in self.targets:
            if t.label == label:
                return [t]
        # the target was changed in the config since queueing: send to what is configured now
        return list(self.targets)

    def backoff(self, attempts: int) -> float:
        return min(self.retry_base * (2 ** max(attempts - 1, 0)), self.retry_max)

    def take_over(self, now: datetime | None = None) -> int:
        """The daemon at start: what this instance was sending when it stopped (or was killed) is due now,
        not when its lease runs out."""
        n = self.store.outbox_take_over(self.instance, now or utcnow())
        if n:
            log.info("%d notification(s) left unsent by the previous run are due now", n)
        return n

    def deliver_pending(self, now: datetime | None = None, limit: int = 100) -> DeliveryReport:
        """Send every queued message that is due; failures are retried later with exponential backoff.

        Call it periodically (e.g. every 10 s) from the daemon, ideally from a thread of its own: a slow
        notification service then never delays log processing.
        """
        now = now or utcnow()
        rep = DeliveryReport()
        lease = max(300.0, 3 * self.timeout * max(1, len(self.targets)))
        for row in self.store.outbox_due(now, limit):
            if not self.store.outbox_claim(row["id"], row["next_attempt"], now + timedelta(seconds=lease),
                                           owner=self.instance):
                continue  # another process is sending it
            targets = [t for lab in row["urls"] for t in self._resolve(lab)]
            if not targets:
                self.store.outbox_failed(row["id"], "no target configured for this message (see [notify])",
                                         now + timedelta(seconds=self.retry_max))
                rep.failed += 1
                continue
            errors = []
            for t in targets:
                try:
                    ok, err = self.sender(row["title"], row["body"], t)
                except Exception as exc:  # a broken plugin must not stop the others
                    ok, err = False, f"{type(exc).__name__}: {exc}"
                if not ok:
                    errors.append(err or "failed")
            if errors:
                attempts = int(row["attempts"]) + 1
                nxt = now + timedelta(seconds=self.backoff(attempts))
                text = "; ".join(errors)
                if any(w in text.lower() for w in UNKNOWN_OUTCOME):
                    # the request went out, the answer did not come: it may have arrived. Retried a bounded
                    # number of times (at least once; a duplicate only when an answer was lost)
                    unknown = int(row.get("unknown_attempts") or 0) + 1
                    if unknown >= self.max_unknown:
                        nxt = GAVE_UP
                        text = (f"gave up after {unknown} attempts whose outcome is unknown (the receiver may "
                                f"have the message): {text}")
                    self.store.outbox_unknown(row["id"], text, nxt)
                else:
                    self.store.outbox_failed(row["id"], text, nxt)
                log.warning("notification %s failed (attempt %d, %s): %s", row["dedupe_key"], attempts,
                            "given up" if nxt == GAVE_UP else f"next at {nxt.isoformat(timespec='seconds')}", text)
                rep.failed += 1
            else:
                self.store.outbox_sent(row["id"], now)
                rep.sent += 1
        rep.pending = len(self.store.outbox_rows(pending_only=True))
        return rep


# -- message text -----------------------------------------------------------------------------------
def _fmt_ts(v: Any) -> str:
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return clean(v)
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC)
        return v.strftime("%Y-%m-%d %H:%M:%S UTC")
    return clean(v)


def _where(d: dict[str, Any]) -> str:
    parts = [str(d.get(k)) for k in ("city", "country") if d.get(k)]
    asn = d.get("asn")
    if asn:
        parts.append(f"AS{asn}" + (f" {d['asn_org']}" if d.get("asn_org") else ""))
    return clean(", ".join(parts))


def evidence_lines(evidence: Any, limit: int = 30) -> list[str]:
    """Evidence as indented lines: located events as 'time  ip  service  city, country, ASN', counts as k: v."""
    out: list[str] = []

    def walk(obj: Any, name: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(obj, dict):
            if "ip" in obj and ("ts" in obj or "country" in obj):
                bits = [_fmt_ts(obj["ts"]) if obj.get("ts") else "", clean(obj.get("ip")),
                        clean(obj.get("service") or ""), _where(obj)]
                out.append(f"  {name + ': ' if name else ''}{'  '.join(b for b in bits if b)}")
                return
            for k, v in obj.items():
                walk(v, f"{name}.{k}" if name else str(k))
        elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
            for i, x in enumerate(obj):
                walk(x, f"{name}[{i}]")
        else:
            text = clean(json.dumps(obj, default=str) if isinstance(obj, list | tuple) else obj)
            out.append(f"  {name}: {text[:200]}")

    walk(evidence, "")
    if len(out) >= limit:
        out.append("  ...")
    return out


def incident_message(incident: Any, headline: str, done: list[str], *, dry_run: bool, locked: bool,
                     note: str = "", opts: str = "") -> tuple[str, str]:
    """(title, body) an admin understands at 3 a.m."""
    acct = clean(incident.account) if incident.account else "(no account: attacking IPs)"
    # the incident id in the title too: a receiver (a ticket system, a chat) can tell a repeat from a new one
    title = f"[acctwatch] {headline}: {acct} ({clean(incident.detector)}) #{clean(incident.id)[:12]}"
    lines = [
        f"{headline}: {acct}",
        "",
        f"Why:       {clean(incident.summary)}",
        f"Detector:  {clean(incident.detector)} (policy: {incident.action})",
        f"When:      {_fmt_ts(incident.first_seen)} -> {_fmt_ts(incident.last_seen)}"
        + (f" ({incident.updated + 1} findings)" if getattr(incident, "updated", 0) else ""),
    ]
    detected = getattr(incident, "detected_at", None)
    if detected is not None:
        lines.append(f"Detected:  {_fmt_ts(detected)} (log time of the finding that opened the incident)")
    steps = getattr(incident, "escalations", None) or []
    if len(steps) > 1:
        lines.append("Levels:    " + clean(" -> ".join(
            f"{e.get('level')} at {str(e.get('at', ''))[11:19]}"
            + (f" ({e['rule']})" if e.get("rule") else "") for e in steps)))
    if incident.ips:
        lines.append(f"IPs:       {clean(', '.join(incident.ips[:20]))}" + (" ..." if len(incident.ips) > 20 else ""))
    suspects = getattr(incident, "attackers", None)
    if suspects and list(suspects) != list(incident.ips):
        lines.append(f"Suspects:  {clean(', '.join(suspects[:20]))}" + (" ..." if len(suspects) > 20 else "")
                     + " (presumed attacker; the others presumed the owner's)")
    ev = evidence_lines(incident.evidence)
    if ev:
        lines += ["", "Evidence:", *ev]
    lines += ["", "Done (dry-run: NOTHING was changed, this is what enforce mode would do):" if dry_run else "Done:"]
    lines += [f"  - {clean(d)}" for d in done] or ["  - nothing (notification only)"]
    if note:
        lines += ["", clean(note)]
    if locked and incident.account:
        lines += ["", f"To undo:   acctwatch unlock{opts} " + account_arg(incident.account)
                  + "   (a false alarm: its networks become familiar for the account)",
                  f"           acctwatch unlock --compromised{opts} " + account_arg(incident.account)
                  + "   (after a real compromise and a password change: learns nothing)"]
    elif incident.account:
        lines += ["", f"False alarm? acctwatch incidents false-positive{opts} " + incident.id
                  + "   (its networks become familiar for the account)"]
    lines += [f"Details:   acctwatch history{opts} {account_arg(incident.account)}" if incident.account
              else f"Details:   acctwatch incidents show{opts} {incident.id}", f"Incident:  {incident.id}"]
    return title, "\n".join(lines)


def user_message(incident: Any, locked: bool) -> tuple[str, str]:
    acct = clean(incident.account)
    title = f"Security notice for your mail account {acct}"
    body = "\n".join([
        "Hello,",
        "",
        f"we noticed unusual activity on your mail account {acct}",
        f"around {_fmt_ts(incident.first_seen)}: {clean(incident.summary)}",
        "",
        ("As a precaution the account has been temporarily locked." if locked
         else "As a precaution, outgoing mail from the account has been held."),
        "",
        "Was this you? If not, your password is probably known to someone else. Please contact your mail",
        "administrator to change it and unlock the account. Do not reply with your password.",
    ])
    return title, body
