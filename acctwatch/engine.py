"""The pipeline, in the order data flows: events -> geo enrichment -> Postfix queue join -> allowlists ->
detectors -> incidents (deduplicated episodes) -> actions (callbacks) and the store.

The engine is driven by the caller (``replay`` reads archived files, ``run`` follows live ones): both
feed the same events through :meth:`Engine.process` and therefore find the same incidents.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from sys import intern
from typing import TYPE_CHECKING, Any

from .config import LEVELS, Config
from .detectors import Detector, Finding, build
from .events import Event
from .profiles import Profiles

if TYPE_CHECKING:  # (SQLAlchemy is imported only when a store is used: a replay without --db starts fast)
    from sqlalchemy.engine import Connection

    from .store import Store

log = logging.getLogger(__name__)


@dataclass
class Incident:
    id: str
    account: str | None
    detector: str
    action: str  # policy decision: notify, hold, lock
    first_seen: datetime
    last_seen: datetime
    summary: str
    evidence: dict[str, Any]
    ips: list[str] = field(default_factory=list)  # every client IP in the evidence
    updated: int = 0  # findings merged into this incident after the first
    status: str = "open"
    #: the IPs presumed to be the attacker's (what fail2ban may ban): never the owner's presumed own IP;
    #: not given: all of ``ips``
    attackers: list[str] = None  # type: ignore[assignment]
    #: when acctwatch decided: the event time of the finding that opened the incident (not the wall clock)
    detected_at: datetime = None  # type: ignore[assignment]
    #: every level the incident reached, oldest first: {"at", "level", "detector", "rule", "summary"};
    #: the first entry is the opening level
    escalations: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.attackers is None:
            self.attackers = list(self.ips)
        if self.detected_at is None:
            self.detected_at = self.last_seen if self.updated == 0 else self.first_seen
        if not self.escalations:
            self.escalations = [_step(self.detected_at, self.action, self.detector, None, self.summary)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "account": self.account, "detector": self.detector, "action": self.action,
            "detected_at": _iso(self.detected_at), "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen), "summary": self.summary, "ips": self.ips,
            "attacker_ips": self.attackers, "escalations": self.escalations, "evidence": self.evidence,
            "updated": self.updated, "status": self.status,
        }

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "account": self.account, "detector": self.detector, "action": self.action,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "summary": self.summary,
                "evidence": {**self.evidence, "attacker_ips": self.attackers}, "ips": self.ips,
                "updated": self.updated, "detected_at": self.detected_at, "escalations": self.escalations}

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Incident:
        ev = dict(r["evidence"])
        ips = list(r.get("ips") or [])
        attackers = list(ev.pop("attacker_ips", ips))
        return cls(r["id"], r["account"], r["detector"], r["action"], r["first_seen"], r["last_seen"],
                   r["summary"], ev, ips, r.get("updated", 0), r.get("status", "open"), attackers,
                   r.get("detected_at") or r["first_seen"], list(r.get("escalations") or []))

    def escalate(self, level: str, at: datetime, detector: str, rule: str | None, summary: str,
                 lines: list[str] | None = None) -> bool:
        """Raise the level (never lowers it); True when it rose. The change is kept in ``escalations``."""
        if LEVELS.get(level, 0) <= LEVELS.get(self.action, 0):
            return False
        self.action = level
        self.escalations.append(_step(at, level, detector, rule, summary, lines))
        return True



def _step(at: datetime, level: str, detector: str, rule: str | None, summary: str,
          lines: list[str] | None = None) -> dict[str, Any]:
    """One entry of an incident's ``escalations`` (with the log lines its finding cites, ``FILE:N``)."""
    d = {"at": _iso(at), "level": level, "detector": detector, "rule": rule, "summary": summary}
    if lines:
        d["lines"] = lines
    return d


def cited_lines(*objs: Any, limit: int = 40) -> list[str]:
    """The log-line positions (``"FILE:N"``, the values of "line" keys, and "lines" lists) cited anywhere in
    *objs* (evidence, escalations), in order, each once."""
    out: list[str] = []

    def walk(x: Any) -> None:
        if len(out) >= limit:
            return
        if isinstance(x, dict):
            v = x.get("line")
            if isinstance(v, str) and v not in out:
                out.append(v)
            for k, y in x.items():
                if k == "lines" and isinstance(y, list):
                    out.extend(z for z in y if isinstance(z, str) and z not in out)
                else:
                    walk(y)
        elif isinstance(x, list):
            for y in x:
                walk(y)

    for o in objs:
        walk(o)
    return out[:limit]


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def incident_id(account: str | None, detector: str, first_seen: datetime) -> str:
    """Deterministic: the same lines give the same incident ids on every replay and after restarts."""
    raw = f"{account or ''}\x00{detector}\x00{_iso(first_seen)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


class IncidentTracker:
    """One attack is one incident: findings for the same (account, detector) within the cooldown merge."""

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.open: dict[tuple[str | None, str], Incident] = {}
        #: account -> when an operator last unlocked it (``acctwatch unlock``, from the audit trail)
        self.unlocked: dict[str, datetime] = {}

    @staticmethod
    def subject(account: str | None, ips: list[str]) -> str | None:
        """Who an episode is about: the account, or for per-IP findings (no account) the first IP."""
        if account is not None:
            return account
        return f"ip:{ips[0]}" if ips else None

    def add(self, f: Finding, action: str) -> tuple[Incident, bool]:
        """Merge *f* (asking for level *action*) into its open incident, raising the level when it asks for
        more, or open a new one. The first finding's event time is the incident's ``detected_at``."""
        subject = self.subject(f.account, f.ips)
        key = (subject, f.detector)
        cur = self.open.get(key)
        if cur is not None and (f.ts - cur.last_seen).total_seconds() <= self.cooldown and not self._after_unlock(
                cur, f):
            if f.ts > cur.last_seen:
                cur.last_seen = f.ts
            if LEVELS.get(action, 0) >= LEVELS.get(cur.action, 0):
                # the strongest evidence is what the incident is about: a weaker finding merged later does not
                # replace the summary and evidence of the one that raised the level
                cur.summary = f.summary
                cur.evidence = f.evidence
            cur.escalate(action, f.ts, f.detector, f.rule, f.summary, cited_lines(f.evidence, limit=10))
            cur.ips = list(dict.fromkeys([*cur.ips, *f.ips]))
            cur.attackers = list(dict.fromkeys([*cur.attackers, *f.suspects]))
            cur.updated += 1
            return cur, False
        inc = Incident(incident_id(subject, f.detector, f.first_seen), f.account, f.detector, action,
                       f.first_seen, f.ts, f.summary, f.evidence, list(dict.fromkeys(f.ips)),
                       attackers=list(dict.fromkeys(f.suspects)), detected_at=f.ts,
                       escalations=[_step(f.ts, action, f.detector, f.rule, f.summary,
                                          cited_lines(f.evidence, limit=10))])
        self.open[key] = inc
        return inc, True

    def _after_unlock(self, cur: Incident, f: Finding) -> bool:
        """An operator unlocked the account after this incident began, and all of the new finding's evidence
        is newer than the unlock: the attacker is back (the password was not changed), so this is a new
        incident, acted on again. Evidence that still reaches back before the unlock (e.g. a window holding
        the attacker's old login next to the owner's new one) stays part of the old, handled incident."""
        if f.account is None:
            return False
        u = self.unlocked.get(f.account)
        return u is not None and u > cur.first_seen and f.first_seen > u

    def restore(self, incidents: Iterable[Incident]) -> None:
        for inc in incidents:
            key = (self.subject(inc.account, inc.ips), inc.detector)
            cur = self.open.get(key)
            if cur is None or inc.last_seen >= cur.last_seen:
                self.open[key] = inc


class QueueJoin:
    """Links Postfix queue ids to the authenticated account that submitted them (bounded memory).

    ``client=... sasl_username=`` gives queue id -> account; the queue manager's ``nrcpt=`` line and every
    delivery ``status=`` line of that queue id are then attributed to the account. Entries expire after
    *ttl* seconds of event time and the table holds at most *cap* queue ids.
    """

    def __init__(self, ttl: float = 5 * 86400, cap: int = 500_000) -> None:
        self.ttl = ttl
        self.cap = cap
        # qid -> (account, ip, time as epoch seconds, queued), oldest first (a plain dict keeps insertion
        # order; an entry is small: five days of a busy server's submissions are held)
        self.table: dict[str, tuple[str | None, str | None, float, bool]] = {}
        self._dirty: set[str] = set()  # changed since export_changes(): committed with the checkpoints
        #: whether export_changes() is wanted (the daemon saves the join; a replay of archives does not)
        self.track_changes = True
        #: whether queue/delivery lines of a queue id matter (the parser skips the others unparsed): a lookup in
        #: the table, called for most of a busy log's lines (the table itself is never replaced)
        self.wanted: Callable[[str], bool] = self.table.__contains__

    def feed(self, ev: Event) -> bool:
        """Annotate *ev*; False when it is a repeat that detectors must not count again."""
        kind = ev.kind
        if kind == "message":
            qid = ev.queue_id  # type: ignore[attr-defined]
            t = self.table
            if qid in t:
                del t[qid]  # (to the end: the order is the order of submission)
            # the account and address text shared by all of its entries, not one copy per line
            acct = ev.account
            ip = ev.ip
            t[qid] = (intern(acct) if acct is not None else None, intern(ip) if ip is not None else None, ev.t,
                      False)
            if self.track_changes:
                self._dirty.add(qid)
            self._expire(ev.t)
            return True
        if kind == "removed":  # the queue file is gone: no later line has this id (and no detector wants this)
            if self.table.pop(ev.queue_id, None) is not None and self.track_changes:  # type: ignore[attr-defined]
                self._dirty.add(ev.queue_id)  # type: ignore[attr-defined]
            return False
        if kind == "queue" or kind == "delivery":
            ent = self.table.get(ev.queue_id)  # type: ignore[attr-defined]
            if ent is None:
                return True
            if ev.account is None:
                ev.account = ent[0]
            if ev.ip is None:
                ev.ip = ent[1]
            if kind == "queue":
                if ent[3]:
                    return False  # qmgr logs the same queue file again after each deferral
                self.table[ev.queue_id] = (ent[0], ent[1], ent[2], True)  # type: ignore[attr-defined]
                if self.track_changes:
                    self._dirty.add(ev.queue_id)  # type: ignore[attr-defined]
        return True

    def _expire(self, now: float) -> None:
        t = self.table
        limit = now - self.ttl
        while t:
            qid = next(iter(t))
            if t[qid][2] < limit or len(t) > self.cap:
                del t[qid]
                if self.track_changes:
                    self._dirty.add(qid)
            else:
                break

    def export_changes(self) -> dict[str, Any]:
        """{queue id: [account, ip, time, queued] or None (gone)} changed since the last call."""
        out: dict[str, Any] = {}
        for qid in self._dirty:
            e = self.table.get(qid)
            out[qid] = None if e is None else [e[0], e[1], datetime.fromtimestamp(e[2], UTC).isoformat(), e[3]]
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        for qid, (acct, ip, ts, queued) in sorted(rows.items(), key=lambda kv: kv[1][2]):
            self.table[qid] = (acct, ip, datetime.fromisoformat(ts).timestamp(), bool(queued))

    def queue_ids(self, account: str) -> list[str]:
        return [q for q, e in self.table.items() if e[0] == account]


IncidentHook = Callable[[Incident, bool], None]
#: how far (seconds) an event's time may be from the stream's clock before it needs confirmation
MAX_SKEW = 86400.0
#: detector_kv name under which the familiarity profiles are kept (one row per account)
PROFILES_KEY = "_profiles"


class Engine:
    def __init__(self, config: Config, store: Store | None = None, geo: Any = None,
                 detectors: list[Detector] | None = None, scope: str = "") -> None:
        self.config = config
        self.scope = scope  # keyed detector state belongs to this instance
        self.store = store
        self.geo = geo
        self.detectors = detectors if detectors is not None else build(config)
        self.by_kind: dict[str, list[Detector]] = {}
        for d in self.detectors:
            for k in d.kinds:
                self.by_kind.setdefault(k, []).append(d)
        self.join = QueueJoin()
        #: per-account familiarity profiles (enrichment between geo and the detectors); None when disabled
        self.profiles: Profiles | None = None
        if config.familiarity.get("enabled", True) is not False:
            self.profiles = Profiles.from_config(config)
        self._feedback_seen = 0
        self.tracker = IncidentTracker(config.incident_cooldown)
        self.hooks: list[IncidentHook] = []
        self.events = 0
        self.last_event_time: datetime | None = None
        self._held: Event | None = None  # a far-future event waiting for confirmation (see process())
        self._held_saved: tuple[dict[str, Any] | None, str | None] = (None, None)
        self._pending: dict[str, dict[str, Any]] = {}  # change sets not yet committed (see flush())
        #: events skipped because their time was implausibly far from the stream's clock
        self.skewed = 0
        self.incidents: dict[str, Incident] = {}
        self._dirty: dict[str, Incident] = {}
        self._unlock_seen = 0
        self.detector_errors: dict[str, int] = {}
        #: keep the Postfix queue join in the store (live: a restart still attributes deliveries of mail
        #: queued before it); replay turns it off, archives have no such gap worth the writes
        self.persist_join = True
        if store is not None:
            self._load(store)

    def wanted_kinds(self) -> frozenset[str]:
        """Event kinds the detectors consume (plus what the queue join needs): the parser skips the rest."""
        kinds = set(self.by_kind)
        if kinds & {"queue", "delivery"}:
            kinds |= {"message", "removed"}  # (the join: who submitted it, and when it is done)
        if self.profiles is not None:  # (the profiles record the client names of IMAP IDs: evidence)
            kinds.add("client_id")
        return frozenset(kinds)

    def _load(self, store: Store) -> None:
        states = store.load_state()
        for d in self.detectors:
            key = self._state_key(d.name)
            if key not in states and d.name in states:
                key = d.name  # saved before state was kept per instance: adopt it
            if key in states:
                try:
                    d.import_state(states[key])
                except Exception as exc:  # a corrupt state must not stop detection
                    log.warning("ignoring saved state of detector %s: %s", d.name, exc)
        for d in self.detectors:
            rows = store.load_kv(self.scope, d.name) if hasattr(d, "import_rows") else None
            if rows:
                try:
                    d.import_rows(rows)
                except Exception as exc:  # a corrupt row must not stop detection
                    log.warning("ignoring saved windows of detector %s: %s", d.name, exc)
        if self.persist_join:
            self.join.import_rows(store.load_kv(self.scope, "_queue_join"))
        if self.profiles is not None:
            try:
                rows = store.load_kv(self.scope, PROFILES_KEY)
                if not rows and self.scope:
                    # a new deployment warmed up with `acctwatch replay --db` over old logs: adopt what the
                    # replay learned (saved under this instance from the next commit on)
                    rows = store.load_kv("", PROFILES_KEY)
                    if rows:
                        log.info("adopting %d familiarity profile(s) learned by acctwatch replay", len(rows))
                        self.profiles._dirty.update(rows)
                self.profiles.import_rows(rows)
            except Exception as exc:  # a corrupt profile must not stop detection
                log.warning("ignoring saved familiarity profiles: %s", exc)
        saved = store.load_kv(self.scope, "_engine")
        try:
            if saved.get("clock"):
                self.last_event_time = datetime.fromisoformat(str(saved["clock"]).replace("Z", "+00:00"))
            if saved.get("held"):
                self._held = event_from_dict(saved["held"])
            self._held_saved = (_event_row(self._held), saved.get("clock"))
        except Exception as exc:  # a corrupt row must not stop detection
            log.warning("ignoring the saved stream clock: %s", exc)
        self.tracker.restore(Incident.from_row(r) for r in store.incidents(status="open")
                             + store.incidents(status="acknowledged"))
        self.refresh_unlocks()
        self.refresh_feedback()

    def _state_key(self, name: str) -> str:
        """Learned state is per instance (several instances on one store each keep their own)."""
        return f"{self.scope}:{name}" if self.scope else name

    def refresh_unlocks(self) -> None:
        """Learn about ``acctwatch unlock`` runs (another process) from the audit trail, incrementally."""
        if self.store is None:
            return
        import sqlalchemy as sa

        from .store import audit

        q = (sa.select(audit.c.id, audit.c.account, audit.c.ts)
             .where((audit.c.id > self._unlock_seen) & (audit.c.action == "unlock") & audit.c.backend.is_(None))
             .order_by(audit.c.id))
        with self.store.engine.connect() as conn:
            for row in conn.execute(q):
                self._unlock_seen = row.id
                if row.account:
                    prev = self.tracker.unlocked.get(row.account)
                    if prev is None or row.ts > prev:
                        self.tracker.unlocked[row.account] = row.ts

    def refresh_feedback(self) -> None:
        """Apply what operators taught (``acctwatch trust``, ``unlock``, ``incidents false-positive``: rows in
        the store's feedback table, possibly written by another process) to the profiles, incrementally."""
        if self.store is None or self.profiles is None:
            return
        rows = self.store.feedback_since(self._feedback_seen)
        for r in rows:
            self._feedback_seen = r["id"]
            key = self.profiles.network_key(r["network"], self.geo)
            if key is None:
                log.warning("feedback %d: %r is not an IP, network or AS number; ignored", r["id"], r["network"])
                continue
            when = self.last_event_time or r["ts"]
            self.profiles.trust(r["account"], key, when, untrust=r["action"] == "untrust")

    def process(self, ev: Event) -> list[Incident]:
        """Run one event through the pipeline; the incidents it opened or updated.

        The stream's clock only moves forward, and only by plausible steps: an event more than
        ``MAX_SKEW`` ahead of the clock is held until the next one confirms the jump by not being far before
        it (a daemon back after days of downtime, a replay across a gap: both then run, in order); when the
        next one is back near the old clock, the held one is counted in ``skewed`` and skipped (one line
        dated 2099 among today's lines must not stretch every window);
        an event more than ``MAX_SKEW`` behind the clock is counted and skipped too."""
        clock = self.last_event_time
        if clock is not None:
            ahead = (ev.ts - clock).total_seconds()
            if ahead > MAX_SKEW:
                held = self._held
                if held is not None and (ev.ts - held.ts).total_seconds() >= -MAX_SKEW:
                    self._held = None  # confirmed: the log really moved on (the next line is near it, or later)
                    return self._process(held) + self._process(ev)
                if held is not None:
                    self.skewed += 1
                self._held = ev
                return []
            if ahead < -MAX_SKEW:
                self.skewed += 1
                return []
        if self._held is not None:  # a lone far-future line: not confirmed by the stream
            self._held = None
            self.skewed += 1
        return self._process(ev)

    def finish(self) -> list[Incident]:
        """The end of a finite stream (a replay): an event still held for confirmation is the last one, so
        nothing comes after it whose windows it could stretch: run it."""
        held, self._held = self._held, None
        return self._process(held) if held is not None else []

    def _process(self, ev: Event) -> list[Incident]:
        self.events += 1
        if self.last_event_time is None or ev.ts > self.last_event_time:
            self.last_event_time = ev.ts
        if not self.join.feed(ev):  # (first: queue/delivery lines get their client IP from the join)
            return []
        if ev.ip is not None and self.geo is not None and ev.geo is None:
            ev.geo = self.geo.lookup(ev.ip)
        al = self.config.allowlist
        if al.accounts and al.account_allowed(ev.account):
            return []
        if ev.ip is not None and ((al.networks and al.ip_allowed(ev.ip))
                                  or (al.asns and ev.geo is not None and ev.geo.asn in al.asns)):
            return []
        prof = self.profiles
        if prof is not None and ev.account is not None and ev.ip is not None:
            ev.fam = prof.judge(ev)
        out: list[Incident] = []
        for det in self.by_kind.get(ev.kind, ()):
            if ev.account is not None and det._overrides and not det.enabled_for(ev.account):
                continue
            try:
                findings = det.feed(ev)
                if not findings:  # (most events: nothing; a generator is true, and run to its end here)
                    continue
                findings = list(findings)
            except Exception:  # one detector's bug must not stop the others, nor crash-loop the daemon
                self.detector_errors[det.name] = self.detector_errors.get(det.name, 0) + 1
                if self.detector_errors[det.name] <= 3:
                    log.exception("detector %s failed on %s:%s (event skipped for it; reported %d time(s))",
                                  det.name, ev.source, ev.lineno, self.detector_errors[det.name])
                continue
            for f in findings:
                if ev.source and ev.lineno and isinstance(f.evidence, dict) and "line" not in f.evidence:
                    f.evidence["line"] = f"{ev.source}:{ev.lineno}"  # the line that completed the evidence
                out.append(self._finding(det, f))
        if prof is not None and ev.fam is not None:  # learn after judging: a verdict is about the past
            kind = ev.kind
            if kind == "login" or kind == "message":
                prof.learn(ev, ev.fam)
            elif kind == "queue":
                prof.learn_sent(ev, ev.fam, getattr(ev, "nrcpt", None) or 0)
        if prof is not None and (ev.kind == "client_id" or (ev.kind == "login" and prof.pending_ids)):
            prof.learn_client_id(ev)  # (an IMAP ID's client name: evidence in the profile, judged by nobody)
        return out

    def _finding(self, det: Detector, f: Finding) -> Incident:
        cap = str(det.opt(f.account, "policy"))
        action = cap if f.level is None or LEVELS.get(f.level, 0) > LEVELS.get(cap, 0) else f.level
        inc, new = self.tracker.add(f, action)
        if self.profiles is not None and f.account is not None and f.suspects:
            # networks presumed the attacker's never become familiar by coming back (reported: only after a
            # quarantine; acted on: never, unless an operator trusts them)
            self.profiles.mark(f.account, f.suspects, inc.action, f.ts, self.geo)
        self.incidents[inc.id] = inc
        self._dirty[inc.id] = inc
        for hook in self.hooks:
            try:
                hook(inc, new)
            except Exception:  # an action's failure is logged; detection and the other actions go on
                log.exception("action %r failed for incident %s", hook, inc.id)
        return inc

    def flush(self, also: Callable[[Connection], None] | None = None) -> None:
        """Write new/updated incidents and learned state to the store (one transaction).

        *also* runs inside the same transaction: ``acctwatch run`` stores its source checkpoints there, so
        that after a crash the positions, incidents and detector state always match.
        """
        if self.store is None:
            self._dirty.clear()
            self.join.export_changes()
            if self.profiles is not None:
                self.profiles.export_changes()
            return
        self.refresh_unlocks()
        self.refresh_feedback()
        # Every change set is taken out first and kept until a transaction has written it: a failed commit
        # (a database restart, a conflict with another instance) loses nothing, the next flush writes it.
        pending = self._pending
        for d in self.detectors:
            ch = d.export_changes() if hasattr(d, "export_changes") else None
            if ch:
                pending.setdefault(d.name, {}).update(ch)
        if self.profiles is not None:
            ch = self.profiles.export_changes()
            if ch and self.profiles.track_changes:
                pending.setdefault(PROFILES_KEY, {}).update(ch)
        changes = self.join.export_changes()  # (always: keeps the change set bounded)
        if self.persist_join and changes:
            pending.setdefault("_queue_join", {}).update(changes)
        held = _event_row(self._held)
        clock = _iso(self.last_event_time) if self.last_event_time is not None else None
        with self.store.begin() as conn:
            for inc in self._dirty.values():
                self.store.upsert_incident(conn, inc.row())
            for d in self.detectors:
                st = d.export_state()
                if st is not None:
                    self.store.save_state(conn, self._state_key(d.name), st, self.last_event_time)
            for name, ch in pending.items():
                self.store.save_kv(conn, self.scope, name, ch)
            if (held, clock) != self._held_saved:  # the stream's clock and a held event survive a restart
                self.store.save_kv(conn, self.scope, "_engine", {"held": held, "clock": clock})
            if also is not None:
                also(conn)
        self._held_saved = (held, clock)
        pending.clear()
        self._dirty.clear()


def _event_row(ev: Event | None) -> dict[str, Any] | None:
    if ev is None:
        return None
    d = ev.to_dict()
    d.pop("geo", None)
    d.pop("familiarity", None)
    return d


def event_from_dict(d: dict[str, Any]) -> Event:
    """The event :meth:`Event.to_dict` described (without its enrichment)."""
    from .events import EVENT_TYPES

    d = dict(d)
    cls = EVENT_TYPES[d.pop("kind")]
    d.pop("geo", None)
    d.pop("familiarity", None)
    d["ts"] = datetime.fromisoformat(str(d["ts"]).replace("Z", "+00:00"))
    return cls(**d)


def merge_by_time(streams: Sequence[Iterable[Event]]) -> Iterator[Event]:
    """Merge per-file event streams (each in time order) into one stream in time order.

    Ties keep the order of *streams*, so the result is the same on every run.
    """
    if len(streams) == 1:
        yield from streams[0]
        return
    yield from heapq.merge(*streams, key=lambda e: e.ts)
