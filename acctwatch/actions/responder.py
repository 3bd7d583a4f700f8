"""The Responder: what acctwatch does about each incident. The engine calls it as a hook
(``engine.hooks.append(responder)``) for every finding merged into an incident.

Per incident it decides once (idempotently, keyed by the incident id in the audit table):

* policy ``notify``: alert the operator;
* policy ``hold`` / ``lock``: run the backends listed in ``[response] hold`` / ``lock`` in order (one failing
  does not stop the others), record the saved state in ``locks`` so ``acctwatch unlock`` can undo exactly
  what was done, alert the operator and, optionally, the user.

Safety, checked in this order: protected/allowlisted accounts are never locked (the operator is told);
an account already locked at that level is left alone without a second alert; the circuit breaker
(more than ``max_locks_per_hour`` holds/locks within ``breaker_window`` of *log* time) stops all further
automatic locking until an operator resets it (``acctwatch unlock --reset-breaker``), with one loud alert;
in ``dry-run`` mode (the default) everything is decided, recorded (audit result ``dry-run``) and notified,
and nothing is changed.

The breaker counts by event (log) time, the incident's ``last_seen``: a daemon catching up on a backlog
after downtime, or a replay, counts the locks per hour of the log, not per hour of processing; live, the
two are the same.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..config import LEVELS, Config, ConfigError, parse_duration
from ..store import Store, utcnow
from ..store import incidents as incidents_table
from . import lockers as lockers_mod
from .lockers import LockContext, Locker, LockResult
from .notify import Notifier, account_arg, clean, cli_options, incident_message, user_message

log = logging.getLogger(__name__)

PAST = {"watch": "watched", "notify": "notified", "hold": "held", "lock": "locked"}
ACTING = ("hold", "lock")  # the levels that run backends
DEFAULT_LEVELS = {"hold": ["postsuper"], "lock": ["sql", "doveadm"]}
BREAKER_KEY = "breaker:{mode}"


def whoami() -> str:
    """The Unix user running a manual command (and who they sudo'ed from)."""
    try:
        me = getpass.getuser()
    except Exception:
        me = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{me} (sudo by {sudo})" if sudo and sudo != me else me


def _strlist(v: Any, where: str) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise ConfigError(f"{where}: expected a list of lock backend names, got {v!r}")


@dataclass
class Decision:
    incident_id: str | None
    account: str | None
    level: str  # notify, hold, lock
    outcome: str  # alert, locked, held, partial, failed, would-lock, would-hold, protected, already, breaker,
    #               not-locked, unlocked
    dry_run: bool
    backends: list[str] = field(default_factory=list)
    results: list[LockResult] = field(default_factory=list)
    detail: str = ""
    actor: str = "acctwatch"
    #: dry-run: backend -> what it would run (the statement with its parameters, the commands)
    plans: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome not in ("failed", "partial")

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "account": self.account, "level": self.level,
                "outcome": self.outcome, "dry_run": self.dry_run, "backends": self.backends,
                "results": [r.to_dict() for r in self.results], "detail": self.detail, "actor": self.actor,
                **({"plans": self.plans} if self.plans else {})}


class Responder:
    """Decide and act on incidents. ``simulate=True`` (replay): decide only, no store, no notification."""

    def __init__(self, config: Config, store: Store | None = None, *, notifier: Notifier | None = None,
                 queue_ids: Callable[[str], list[str]] | None = None, simulate: bool = False) -> None:
        self.config = config
        self.store = store
        self.simulate = simulate or store is None
        self.dry_run = config.mode != "enforce"
        r = config.response
        known = {"hold", "lock", "max_locks_per_hour", "breaker_window", "protected_accounts", "notify_user"}
        unknown = set(r) - known
        if unknown:
            raise ConfigError(f"[response]: unknown option(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        self.levels = {lvl: _strlist(r.get(lvl, DEFAULT_LEVELS[lvl]), f"response.{lvl}") for lvl in ("hold", "lock")}
        self.max_locks = int(r.get("max_locks_per_hour", 10))
        self.window = parse_duration(r.get("breaker_window", "1h"), "response.breaker_window")
        self.protected = frozenset(a.lower() for a in _strlist(r.get("protected_accounts", []),
                                                                "response.protected_accounts"))
        self.notify_user = bool(r.get("notify_user", True))
        self.ctx = LockContext(config, queue_ids)
        self._lockers: dict[str, Locker] = {}
        self.lock_config_error: str | None = None
        #: the backends' self-check problems found at start (the daemon sets them): dry-run alerts name them
        self.known_problems: list[str] = []
        #: called with (level, backend, result) after each backend action (the daemon's metrics)
        self.on_action: Callable[[str, str, str], None] | None = None
        self.notifier = notifier if notifier is not None else (
            Notifier(config, store) if store is not None and not self.simulate else None)
        self.decisions: list[Decision] = []  # simulate mode keeps them here
        #: incidents whose response failed because the store was unreachable (see retry_deferred)
        self.deferred: dict[str, Any] = {}
        self._sim_times: deque[datetime] = deque()
        self._sim_locked: dict[str, str] = {}
        # Fail at start, not at 3 a.m.: in enforce mode every configured backend must build.
        for name in dict.fromkeys(self.levels["hold"] + self.levels["lock"]):
            try:
                self.locker(name)
            except ConfigError as exc:
                if not self.dry_run and not self.simulate:
                    raise
                self.lock_config_error = str(exc)

    def _plans(self, names: list[str], account: str | None, incident: Any) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for n in names:
            try:
                out[n] = self.locker(n).plan(account, incident)
            except Exception as exc:  # a backend that cannot even say what it would do: that is the news
                out[n] = [f"cannot be built: {exc}"]
        return out

    def self_check(self) -> list[str]:
        """Every backend of the hold and lock levels checks that it can work (driver, database, grants,
        programs; nothing is changed): one line per problem, ``"[lockers.NAME]: what to fix"``."""
        out = []
        for name in dict.fromkeys(self.levels["hold"] + self.levels["lock"]):
            try:
                problems = self.locker(name).check()
            except ConfigError as exc:
                problems = [str(exc).removeprefix(f"[lockers.{name}]: ")]
            except Exception as exc:  # a check must never crash the start
                problems = [f"the self-check failed: {type(exc).__name__}: {exc}"]
            out += [f"[lockers.{name}]: {p}" for p in problems]
        return out

    @classmethod
    def attach(cls, engine: Any, store: Store | None = None, **kw: Any) -> Responder:
        """Build a Responder for *engine* (its config, store and queue join) and register it as a hook."""
        resp = cls(engine.config, store if store is not None else engine.store,
                   queue_ids=engine.join.queue_ids, **kw)
        engine.hooks.append(resp)
        return resp

    # -- helpers ----------------------------------------------------------------------------------
    def locker(self, name: str) -> Locker:
        lk = self._lockers.get(name)
        if lk is None:
            lk = self._lockers[name] = lockers_mod.build(name, self.config, self.ctx)
        return lk

    def is_protected(self, account: str) -> bool:
        low = account.lower()
        return (self.config.is_protected(account) or self.config.allowlist.account_allowed(account)
                or low in self.protected or low.partition("@")[0] in self.protected)

    def _needs_account(self, name: str) -> bool:
        try:
            return bool(self.locker(name).needs_account)
        except ConfigError:
            kind = str((self.config.lockers.get(name) or {}).get("type", name))
            return kind != "fail2ban"

    def _backends_for(self, level: str, account: str | None) -> list[str]:
        names = list(self.levels.get(level, []))
        if account is None:
            names = [n for n in names if not self._needs_account(n)]
        return names

    # -- the engine hook --------------------------------------------------------------------------
    def __call__(self, incident: Any, is_new: bool) -> Decision | None:
        try:
            return self.handle(incident, is_new)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:  # the store is down: decided later
            log.warning("the store is unreachable: the response to incident %s (%s) waits for it (%s)",
                        incident.id, incident.account, str(exc).splitlines()[0][:200])
            self.deferred[incident.id] = incident
            return None
        except Exception:  # a broken response must never stop detection
            log.exception("responding to incident %s (%s) failed", incident.id, incident.account)
            return None

    def retry_deferred(self) -> None:
        """Decide what could not be decided while the store was down (idempotent: keyed by incident and
        level). The daemon calls this after every commit."""
        for iid, incident in list(self.deferred.items()):
            del self.deferred[iid]
            self(incident, False)

    def handle(self, incident: Any, is_new: bool = True) -> Decision | None:
        if self.simulate:
            return self._simulate(incident)
        assert self.store is not None
        store = self.store
        level = incident.action if incident.action in LEVELS else "notify"
        with store.begin() as conn:
            done = store.decided_levels(conn, incident.id)
        if done and max(LEVELS.get(x, 0) for x in done) >= LEVELS[level]:
            return None  # already handled (a later finding of the same incident, or re-processing)
        # the first decision of an incident, or an escalation to a higher level (decided once per level)
        suffix = f":{level}" if done else ""
        acct = incident.account
        acting = level in ACTING
        names = self._backends_for(level, acct) if acting else []
        lock_key = acct if acct is not None else f"incident:{incident.id}"
        d = Decision(incident.id, acct, level, "alert", self.dry_run, names)
        existing = store.get_lock(lock_key)
        if existing is not None and acting and not self.dry_run and self._stale(existing, lock_key):
            existing = None
        if level == "watch":
            d.outcome = "watch"
            d.detail = "recorded, no alert (watch level)"
        elif not acting or not names:
            d.outcome = "alert"
            if acting:
                d.detail = f"no backend configured for level {level} ([response] {level} = [...])"
        elif acct is not None and self.is_protected(acct):
            d.outcome = "protected"
            d.detail = "protected/allowlisted account: never locked automatically"
        elif existing is not None and LEVELS.get(existing["level"], 0) >= LEVELS[level] and all(
                n in existing["backends"] for n in names):
            d.outcome = "already"
            d.detail = f"already {PAST[existing['level']]} since {existing['locked_at']:%Y-%m-%d %H:%M} UTC"
        elif self._breaker(incident):
            d.outcome = "breaker"
            d.detail = (f"circuit breaker open (more than {self.max_locks} holds/locks within "
                        f"{self.window / 3600:g} h): not {PAST[level]}; reset with `acctwatch unlock --reset-breaker`")
        elif self.dry_run:
            d.outcome = f"would-{level}"
            d.detail = "dry-run: nothing changed"
            d.plans = self._plans(names, acct, incident)
            if self.lock_config_error:
                d.detail += f"; in enforce mode this would fail: {self.lock_config_error}"
        else:
            self._run_backends(d, incident, lock_key, existing, actor="acctwatch", reason=incident.summary)
        self._record(d, incident, suffix)
        return d

    def _stale(self, existing: dict[str, Any], account: str) -> bool:
        """True when a backend that can tell says the account is no longer locked (re-enabled by hand, e.g. in
        an admin panel, instead of ``acctwatch unlock``): the lock record is then dropped (kept in the audit)
        so that the account can be locked again."""
        assert self.store is not None
        for name, st in existing["backends"].items():
            if st.get("was_locked"):
                continue
            try:
                lk = self.locker(name)
                if lk.kind not in ("sql", "passwd"):
                    continue
                now = lk.status(account)
            except Exception:
                continue
            if now.get("locked") is False:
                with self.store.begin() as conn:
                    self.store.audit(conn, action="lock", result="skipped", account=account, backend=name,
                                     incident_id=existing["incident_id"],
                                     detail="stale lock record dropped: the account was re-enabled outside "
                                            f"acctwatch ({now.get('detail', '')}); record was "
                                            + json.dumps(existing["backends"], default=str))
                    self.store.delete_lock(conn, account)
                return True
        return False

    def _breaker(self, incident: Any) -> bool:
        assert self.store is not None
        key = BREAKER_KEY.format(mode="dry-run" if self.dry_run else "enforce")
        if self.store.get_meta(key):
            return True
        t = incident.last_seen
        results = ["dry-run"] if self.dry_run else ["ok", "partial"]
        with self.store.begin() as conn:
            n = self.store.count_audit(conn, actions=("hold", "lock"), results=results,
                                       event_since=t - timedelta(seconds=self.window), event_until=t)
            if n < self.max_locks:
                return False
            info = {"tripped_at": utcnow().isoformat(), "event_time": t.isoformat(), "count": n}
            self.store.set_meta(conn, key, json.dumps(info))
            self.store.audit(conn, action="breaker", result="tripped", account=incident.account,
                             incident_id=incident.id, event_time=t,
                             detail=f"{n} holds/locks within {self.window:g} s of log time (limit {self.max_locks})",
                             idem_key=f"breaker:{info['tripped_at']}")
            if self.notifier is not None:
                title = f"[acctwatch] CIRCUIT BREAKER OPEN: automatic locking STOPPED after {n} locks"
                o = cli_options(self.config)
                body = "\n".join([
                    f"acctwatch decided {n} holds/locks within {self.window / 3600:g} h of log time "
                    f"(limit {self.max_locks}), the last at {t:%Y-%m-%d %H:%M:%S} UTC.",
                    "That many usually means something is wrong (bad GeoIP data, a NAT gateway or VPN shared by",
                    "many users, a misconfigured detector), not that many accounts were taken over at once.",
                    "",
                    "From now on NO account is locked automatically; incidents are still detected, recorded",
                    "and notified.",
                    "",
                    f"Check recent locks:   acctwatch status{o} ; acctwatch incidents{o} --since {t:%Y-%m-%d}",
                    f"Undo a wrong lock:    acctwatch unlock{o} -- ACCOUNT",
                    f"Resume locking:       acctwatch unlock --reset-breaker{o}",
                ])
                self.notifier.enqueue_operator(conn, f"breaker:{info['tripped_at']}", title, body)
        log.error("circuit breaker open: %d holds/locks within %g s; automatic locking stopped", n, self.window)
        return True

    def reset_breaker(self, actor: str | None = None) -> bool:
        assert self.store is not None
        key = BREAKER_KEY.format(mode="dry-run" if self.dry_run else "enforce")
        with self.store.begin() as conn:
            was = self.store.get_meta(key, conn) is not None
            self.store.set_meta(conn, key, None)
            self.store.audit(conn, action="breaker", result="reset" if was else "skipped", actor=actor or whoami(),
                             detail=f"mode {'dry-run' if self.dry_run else 'enforce'}")
        return was

    def breaker_state(self) -> dict[str, Any] | None:
        if self.store is None:
            return None
        v = self.store.get_meta(BREAKER_KEY.format(mode="dry-run" if self.dry_run else "enforce"))
        return json.loads(v) if v else None

    def _run_backends(self, d: Decision, incident: Any, lock_key: str, existing: dict[str, Any] | None, *,
                      actor: str, reason: str) -> None:
        """Run the level's backends in order; each result is audited and its state saved at once."""
        assert self.store is not None
        store = self.store
        acct = d.account
        states: dict[str, Any] = dict(existing["backends"]) if existing else {}
        level = d.level
        higher = existing is not None and LEVELS.get(existing["level"], 0) > LEVELS[level]
        level_to_store = existing["level"] if existing is not None and higher else level
        iid = incident.id if incident is not None else None
        for name in d.backends:
            if name in states:
                d.results.append(LockResult(name, True, False, states[name], "already done"))
                continue
            idem = f"inc:{iid}:{level}:{name}" if iid else None
            try:
                r = self.locker(name).lock(acct, incident)
            except Exception as exc:  # a broken backend is reported, the others still run
                log.exception("lock backend %s failed", name)
                r = LockResult(name, False, False, {}, f"{type(exc).__name__}: {exc}")
            d.results.append(r)
            if self.on_action is not None:
                self.on_action(level, name, r.result)
            with store.begin() as conn:
                store.audit(conn, action=level, result=r.result, account=acct, backend=name, incident_id=iid,
                            detail=r.detail, actor=actor, idem_key=idem,
                            event_time=incident.last_seen if incident is not None else None)
                if r.ok:
                    states[name] = r.state
                    store.put_lock(conn, account=lock_key, level=level_to_store, locked_at=utcnow(),
                                   incident_id=iid if existing is None else existing["incident_id"] or iid,
                                   reason=reason if existing is None else existing["reason"], backends=states,
                                   actor=actor)
        oks = [r.ok for r in d.results]
        if all(oks):
            d.outcome = "locked" if level == "lock" else "held"
        elif any(oks):
            d.outcome = "partial"
        else:
            d.outcome = "failed"
        d.detail = "; ".join(f"{r.backend}: {'ok' if r.ok else 'FAILED'}: {r.detail}" for r in d.results)

    def _record(self, d: Decision, incident: Any, suffix: str = "") -> None:
        """The summary audit row (the idempotency key of the incident) and the alerts, in one transaction."""
        assert self.store is not None
        result = {"alert": "ok", "watch": "ok", "locked": "ok", "held": "ok", "partial": "partial", "failed": "failed",
                  "would-lock": "dry-run", "would-hold": "dry-run", "protected": "skipped",
                  "already": "skipped", "breaker": "skipped"}[d.outcome]
        with self.store.begin() as conn:
            written = self.store.audit(conn, action=d.level, result=result, account=d.account,
                                       incident_id=d.incident_id, detail=f"{d.outcome}: {d.detail}".strip(": "),
                                       actor=d.actor, idem_key=f"inc:{d.incident_id}:decided{suffix}",
                                       event_time=incident.last_seen)
            if not written or self.notifier is None or d.outcome in ("already", "watch"):
                return
            headline, done, locked = self._describe(d)
            title, body = incident_message(incident, headline, done, dry_run=d.dry_run, locked=locked,
                                           opts=cli_options(self.config),
                                           note=d.detail if d.outcome in ("protected", "breaker") else "")
            self.notifier.enqueue_operator(conn, f"inc:{d.incident_id}:operator{suffix}", title, body, d.incident_id)
            if (self.notify_user and locked and not d.dry_run and d.account
                    and d.outcome in ("locked", "held", "partial")):
                ut, ub = user_message(incident, d.level == "lock")
                self.notifier.enqueue_user(conn, f"inc:{d.incident_id}:user{suffix}", d.account, ut, ub,
                                           d.incident_id)

    def _describe(self, d: Decision) -> tuple[str, list[str], bool]:
        verb = {"lock": "LOCKED", "hold": "MAIL HELD"}.get(d.level, "ALERT")
        if d.outcome == "alert":
            return "SUSPICIOUS ACTIVITY", [d.detail] if d.detail else [], False
        if d.outcome == "protected":
            return f"NOT {verb} (protected account)", [f"{d.level} skipped: protected account"], False
        if d.outcome == "breaker":
            return f"NOT {verb} (circuit breaker open)", [f"{d.level} skipped: circuit breaker open"], False
        if d.outcome.startswith("would-"):
            done = [f"would run {n} ({d.level}): {'; '.join(d.plans.get(n) or ['?'])}" for n in d.backends]
            if self.lock_config_error:
                done.append(f"but the lock configuration is incomplete: {self.lock_config_error}")
            done += [f"but in enforce mode this would fail: {p}" for p in self.known_problems]
            return f"WOULD BE {verb} (dry-run)", done, False
        done = [f"{r.backend}: {'ok' if r.ok else 'FAILED'}: {r.detail}" for r in d.results]
        head = verb if d.outcome in ("locked", "held") else f"{verb} {d.outcome.upper()} (see below)"
        return head, done, any(r.ok for r in d.results)

    def _simulate(self, incident: Any) -> Decision | None:
        level = incident.action if incident.action in LEVELS else "notify"
        if any(x.incident_id == incident.id and LEVELS[x.level] >= LEVELS[level] for x in self.decisions[-200:]):
            return None
        acct = incident.account
        names = self._backends_for(level, acct) if level in ACTING else []
        d = Decision(incident.id, acct, level, "watch" if level == "watch" else "alert", True, names)
        if level in ACTING and names:
            key = acct or f"incident:{incident.id}"
            t = incident.last_seen
            while self._sim_times and (t - self._sim_times[0]).total_seconds() > self.window:
                self._sim_times.popleft()
            if acct is not None and self.is_protected(acct):
                d.outcome = "protected"
            elif LEVELS.get(self._sim_locked.get(key, "notify"), 0) >= LEVELS[level]:
                d.outcome = "already"
            elif len(self._sim_times) >= self.max_locks:
                d.outcome = "breaker"
            else:
                d.outcome = f"would-{level}"
                self._sim_times.append(t)
                self._sim_locked[key] = level
        self.decisions.append(d)
        return d

    # -- manual actions (CLI) ---------------------------------------------------------------------
    def lock_account(self, account: str, *, reason: str, level: str = "lock", actor: str | None = None,
                     force: bool = False, dry_run: bool = False) -> Decision:
        """A lock an operator asked for: acts even when the daemon runs in dry-run (unless *dry_run*);
        protected accounts need *force*; the circuit breaker does not apply."""
        assert self.store is not None
        if level not in ("hold", "lock"):
            raise ValueError("level must be 'hold' or 'lock'")
        actor = actor or whoami()
        names = self._backends_for(level, account)
        d = Decision(None, account, level, "alert", dry_run, names, actor=actor)
        existing = self.store.get_lock(account)
        if not names:
            d.outcome, d.detail = "failed", f"no lock backend configured: set [response] {level} = [\"sql\", ...]"
        elif self.is_protected(account) and not force:
            d.outcome, d.detail = "protected", "protected/allowlisted account: pass --force to lock it anyway"
        elif existing is not None and LEVELS.get(existing["level"], 0) >= LEVELS[level] and all(
                n in existing["backends"] for n in names):
            d.outcome, d.detail = "already", f"already locked since {existing['locked_at']:%Y-%m-%d %H:%M} UTC"
        elif dry_run:
            d.outcome, d.detail = f"would-{level}", "dry-run: nothing changed"
            d.plans = self._plans(names, account, None)
            problems = self.self_check()
            if problems:
                d.detail += "; in enforce mode this would fail: " + "; ".join(problems)
        else:
            for n in names:  # configuration errors are reported before anything changes
                self.locker(n)
            self._run_backends(d, None, account, existing, actor=actor, reason=reason)
        result = {"locked": "ok", "held": "ok", "partial": "partial", "failed": "failed", "protected": "skipped",
                  "already": "skipped"}.get(d.outcome, "dry-run")
        with self.store.begin() as conn:
            self.store.audit(conn, action=f"manual-{level}", result=result, account=account, actor=actor,
                             detail=f"{d.outcome}: reason: {reason}; {d.detail}")
            if self.notifier is not None and d.outcome in ("locked", "held", "partial", "failed"):
                title = f"[acctwatch] {clean(actor)} {PAST[level]} {clean(account)} by hand ({d.outcome})"
                body = "\n".join([f"{clean(actor)} ran `acctwatch lock` on {clean(account)}: {clean(reason)}", "",
                                  *[f"  - {r.backend}: {'ok' if r.ok else 'FAILED'}: {clean(r.detail)}"
                                    for r in d.results],
                                  "", f"To undo: acctwatch unlock{cli_options(self.config)} {account_arg(account)}"])
                self.notifier.enqueue_operator(conn, f"manual:{level}:{account}:{utcnow().isoformat()}", title, body)
        return d

    def unlock_account(self, account: str, *, actor: str | None = None, reason: str = "",
                       learn: bool = True, delete_held: bool = False) -> Decision:
        """Undo exactly what was done (backends in reverse order); failed ones stay in the lock record.

        With *learn* (the default: the lock was a false alarm) the addresses of the account's open incidents
        become familiar networks of its profile, so the same benign pattern does not fire again; after a real
        compromise (``acctwatch unlock --compromised``) nothing is learned and they stay suspect."""
        assert self.store is not None
        actor = actor or whoami()
        row = self.store.get_lock(account)
        d = Decision(None, account, "unlock", "not-locked", False, actor=actor)
        if row is None:
            d.detail = (f"{account} has no lock record: acctwatch did not lock it (or it was unlocked already). "
                        "See `acctwatch history " + account + "`")
            return d
        d.incident_id = row["incident_id"]
        if row["level"] == "hold":
            d.level = "release"  # (the end of a hold: its mail flows again)
        states: dict[str, Any] = dict(row["backends"])
        d.backends = list(states)
        for name in reversed(list(states)):
            try:
                lk = self.locker(name)
                r = (lk.unlock(account, states[name] or {}, delete_held=True)  # type: ignore[call-arg]
                     if delete_held and lk.holds_mail else lk.unlock(account, states[name] or {}))
            except Exception as exc:
                r = LockResult(name, False, False, {}, f"{type(exc).__name__}: {exc}")
            d.results.append(r)
            with self.store.begin() as conn:
                self.store.audit(conn, action="unlock", result=r.result, account=account, backend=name,
                                 incident_id=row["incident_id"], detail=r.detail, actor=actor)
                if r.ok:
                    del states[name]
                    if states:
                        self.store.put_lock(conn, account=account, level=row["level"], locked_at=row["locked_at"],
                                            incident_id=row["incident_id"], reason=row["reason"], backends=states,
                                            actor=row["actor"])
                    else:
                        self.store.delete_lock(conn, account)
        d.outcome = "unlocked" if not states else ("partial" if len(states) < len(d.backends) else "failed")
        d.detail = "; ".join(f"{r.backend}: {'ok' if r.ok else 'FAILED'}: {r.detail}" for r in d.results)
        with self.store.begin() as conn:
            if not states:  # the operator has dealt with it: the account's incidents are closed
                open_q = (incidents_table.c.account == account) & incidents_table.c.status.in_(
                    ["open", "acknowledged"])
                if learn:
                    for iid, ips in conn.execute(sa.select(incidents_table.c.id, incidents_table.c.ips)
                                                 .where(open_q)).all():
                        for ip in dict.fromkeys(json.loads(ips or "[]")):
                            self.store.add_feedback(conn, account=account, action="trust", network=ip,
                                                    incident_id=iid, actor=actor, note="unlock")
                conn.execute(sa.update(incidents_table).where(open_q).values(status="closed"))
            self.store.audit(conn, action="unlock", result="ok" if not states else "failed", account=account,
                             incident_id=row["incident_id"], actor=actor,
                             detail=f"{d.outcome}" + (f": {reason}" if reason else "")
                             + (f"; still locked in: {', '.join(states)}" if states else ""))
            if self.notifier is not None:
                title = (f"[acctwatch] {clean(account)} unlocked by {clean(actor)}"
                         + ("" if not states else " (INCOMPLETE)"))
                body = "\n".join([f"{clean(actor)} ran `acctwatch unlock {account_arg(account)}`"
                                   + (f": {clean(reason)}" if reason else ""),
                                  "", *[f"  - {r.backend}: {'ok' if r.ok else 'FAILED'}: {clean(r.detail)}"
                                        for r in d.results]])
                self.notifier.enqueue_operator(conn, f"unlock:{account}:{utcnow().isoformat()}", title, body)
        return d

    def status(self, account: str) -> dict[str, Any]:
        """What each configured backend reports now, plus the lock record."""
        out: dict[str, Any] = {"account": account, "lock": self.store.get_lock(account) if self.store else None,
                               "backends": {}}
        for name in dict.fromkeys(self.levels["hold"] + self.levels["lock"]):
            try:
                out["backends"][name] = self.locker(name).status(account)
            except Exception as exc:
                out["backends"][name] = {"locked": None, "detail": f"{type(exc).__name__}: {exc}"}
        return out
