"""Detector framework: a detector is a small class fed events in event-time order that returns findings.

Detectors never look at the wall clock: every window is measured in the log's own timestamps, so a live
run and a replay of the same lines find the same things. Options come from ``[detectors.NAME]`` in the
config, with per-account overrides under ``[accounts."user@example.org".detectors.NAME]``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, ClassVar, Generic, TypeVar

from ..config import Config, parse_duration
from ..events import Event

T = TypeVar("T")

REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    REGISTRY[cls.name] = cls
    return cls


@dataclass
class Finding:
    detector: str
    account: str | None  # None for per-IP findings
    ts: datetime  # event time of the event that completed the evidence
    first_seen: datetime  # event time of the oldest evidence
    summary: str  # one line an admin understands at 3 a.m.
    evidence: dict[str, Any] = field(default_factory=dict)
    ips: list[str] = field(default_factory=list)  # the client IPs involved (attacking ones first)
    #: the IPs presumed to be the attacker's (default: all of ``ips``); [] when no IP can be blamed
    attackers: list[str] | None = None
    #: the level this finding asks for (notify, hold, lock); None: the detector's policy. The detector's
    #: ``policy`` option caps it (policy = "notify" makes a detector notify-only).
    level: str | None = None
    #: which rule of the detector raised it (for the evidence and the escalation history)
    rule: str | None = None

    @property
    def suspects(self) -> list[str]:
        return self.ips if self.attackers is None else self.attackers


@dataclass
class Context:
    """What detectors may use besides events: the config (allowlists, per-account options)."""

    config: Config


#: (option, conversion) pairs: what :meth:`Detector.opts` resolves
OptionSpec = tuple[tuple[str, Callable[[Any], Any]], ...]


class Detector:
    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ()
    #: option -> default; "policy" and "enabled" always exist. Durations may be given as "1m", "24h".
    defaults: ClassVar[dict[str, Any]] = {}
    default_policy: ClassVar[str] = "notify"
    durations: ClassVar[tuple[str, ...]] = ()
    #: what :meth:`opts` resolved: (the options it was resolved from, {id(spec): values})
    _resolved: tuple[dict[str, Any], dict[int, tuple[Any, ...]]] | None = None

    def __init__(self, options: dict[str, Any], ctx: Context) -> None:
        unknown = set(options) - set(self.defaults) - {"policy", "enabled"}
        if unknown:
            from ..config import ConfigError

            raise ConfigError(f"[detectors.{self.name}]: unknown option(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(self.defaults))}, policy, enabled")
        self.options = {**self.defaults, "policy": self.default_policy, "enabled": True, **options}
        for k in self.durations:
            self.options[k] = parse_duration(self.options[k], f"detectors.{self.name}.{k}")
        self.policy: str = options.get("policy", self.default_policy)
        self.ctx = ctx
        self._overrides: dict[str, dict[str, Any]] = {}
        for acct, a_opts in ctx.config.accounts.items():
            d = (a_opts.get("detectors") or {}).get(self.name) if isinstance(a_opts, dict) else None
            if d:
                o = dict(d)
                for k in self.durations:
                    if k in o:
                        o[k] = parse_duration(o[k], f"accounts.{acct}.detectors.{self.name}.{k}")
                self._overrides[acct] = o

    def opt(self, account: str | None, key: str) -> Any:
        if account is not None and self._overrides:
            o = self._overrides.get(account.lower())
            if o is not None and key in o:
                return o[key]
        return self.options[key]

    def opts(self, account: str | None, spec: OptionSpec) -> tuple[Any, ...]:
        """``conv(self.opt(account, key))`` for each ``(key, conv)`` of *spec* (a module constant): what a
        detector's hot path asks for on every event, resolved once per configuration for the accounts
        without an override of their own."""
        if account is not None and self._overrides and account.lower() in self._overrides:
            return tuple(conv(self.opt(account, k)) for k, conv in spec)
        cache = self._resolved
        if cache is None or cache[0] is not self.options:  # (a SIGHUP gives the detector new options)
            cache = self._resolved = (self.options, {})
        got = cache[1].get(id(spec))
        if got is None:
            got = cache[1][id(spec)] = tuple(conv(self.options[k]) for k, conv in spec)
        return got

    def enabled_for(self, account: str | None) -> bool:
        return bool(self.opt(account, "enabled"))

    def feed(self, ev: Event) -> Iterable[Finding]:
        raise NotImplementedError

    #: whether export_changes() is wanted (the live daemon); replay of archives turns it off
    track_changes: bool = True

    # Keyed window state (e.g. one row per account), saved incrementally with every commit so that a
    # restart (or a crash) resumes with the same windows: return {key: data or None (delete)} of what
    # changed since the last call.
    def export_changes(self) -> dict[str, Any] | None:
        return None

    def import_rows(self, rows: dict[str, Any]) -> None:
        return None

    # Persistent learned state (history-based detectors); JSON-serialisable.
    def export_state(self) -> Any:
        return None

    def import_state(self, data: Any) -> None:
        return None


class KeyedState:
    """Mixin for a detector whose windows live in one dict (``STATE``: the attribute's name) of key (an
    account, an IP) -> object: saved incrementally with every commit, so that a restart or a crash resumes
    with exactly the same windows. A detector calls ``self._touch(key)`` whenever a key's object changed (or
    was removed) and defines ``_row(obj)`` (JSON-able) and ``_from_row(data)``."""

    STATE: ClassVar[str] = "accounts"
    track_changes: bool

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._dirty: set[str] = set()

    def _touch(self, key: str) -> None:
        if self.track_changes:
            self._dirty.add(key)

    def export_changes(self) -> dict[str, Any] | None:
        table = getattr(self, self.STATE)
        out = {k: (self._row(table[k]) if k in table else None) for k in self._dirty}
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        table = getattr(self, self.STATE)
        for k, d in sorted(rows.items()):
            table[k] = self._from_row(d)

    def _row(self, obj: Any) -> Any:
        raise NotImplementedError

    def _from_row(self, data: Any) -> Any:
        raise NotImplementedError


#: How far (seconds of event time) behind the event that triggers a sweep an event may come and still find
#: everything it would have found without the sweep: a sweep at event time *t* forgets only what every
#: event from ``t - SWEEP_SLACK`` on would treat as expired anyway. Lines of several hosts or files arrive
#: a little out of order; an hour covers that with room to spare, and bounds memory only by an hour more.
SWEEP_SLACK = 3600.0


class Sweep:
    """When to sweep expired keys out of a detector's tables: once every *period* seconds of event time
    (at least ``SWEEP_SLACK``: a sweep walks the whole table, so sweeping more often than keys expire would
    visit each of them many times for nothing).

    Per-key state (an account's windows, a source's failures) is normally trimmed when its key's next event
    comes; a key never seen again would stay forever. Detectors therefore treat a key whose newest event is
    older than its window as absent (a new episode starts from nothing), and sweep such keys out now and
    then. A sweep only removes what is already treated as absent, so findings never depend on when sweeps
    ran (nor on a restart, after which the first event sweeps): detectors stay pure functions of the event
    stream, and memory stays bounded by the windows (a window, plus ``SWEEP_SLACK``, plus one period)."""

    __slots__ = ("next", "period")

    def __init__(self, period: float) -> None:
        self.period = max(float(period), SWEEP_SLACK)
        self.next = float("-inf")

    def due(self, t: float) -> float | None:
        """The sweep's "now" (*t* less ``SWEEP_SLACK``) when a sweep is due at event time *t*, else None."""
        if t < self.next:
            return None
        self.next = t + self.period
        return t - SWEEP_SLACK

    def tick(self, t: float, sweep: Callable[[float], None]) -> None:
        """Call at every event the detector is fed (before any filtering, so that the sweeps follow the
        stream's time, not only its relevant events): runs *sweep(now)* when one is due."""
        now = self.due(t)
        if now is not None:
            sweep(now)


def max_option(det: Detector, key: str) -> float:
    """The largest value of a numeric option over the detector's defaults and every per-account override
    (what a sweep must wait for before forgetting a key whose account it does not know)."""
    v = float(det.options[key])
    for o in det._overrides.values():
        if key in o:
            v = max(v, float(o[key]))
    return v


class Timeline(Generic[T]):
    """What a deque does for a window (append at the end, ``popleft`` the oldest, ``[0]``, ``[-1]``, len,
    iteration) in a plain list and the index of its first live item, compacted as it goes. A deque costs
    768 bytes even when empty; the per-account windows are thousands, most of them with a few items or none.
    An item that left the window is released at once (its slot is None until the list is compacted): a
    window never holds up to twice its items.
    """

    __slots__ = ("_head", "_items")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: list[T] = list(items)
        self._head = 0

    def append(self, item: T) -> None:
        self._items.append(item)

    def popleft(self) -> T:
        items = self._items
        head = self._head
        if head >= len(items):
            raise IndexError("pop from an empty Timeline")
        x = items[head]
        self._move(head + 1)
        return x

    def pop_before(self, limit: float) -> T | None:
        """The oldest item, removed, if its time (``item[0]``) is before *limit*; else None (one call per
        item: the loop of a window's trim is ``while (x := w.pop_before(limit)) is not None``)."""
        items = self._items
        head = self._head
        if head < len(items):
            x = items[head]
            if x[0] < limit:  # type: ignore[index]
                self._move(head + 1)
                return x
        return None

    def drop_before(self, limit: float) -> None:
        """Remove the items whose time (``item[0]``) is before *limit*, oldest first."""
        items = self._items
        head = self._head
        n = len(items)
        while head < n and items[head][0] < limit:  # type: ignore[index]
            head += 1
        if head != self._head:
            self._move(head)

    def _move(self, head: int) -> None:
        items = self._items
        if head >= len(items):
            items.clear()
            head = 0
        elif head >= 16 and head * 2 >= len(items):
            del items[:head]
            head = 0
        else:  # the items behind the head are gone: their slots keep nothing alive until the next compaction
            old = self._head
            if head == old + 1:
                items[old] = None  # type: ignore[call-overload]
            else:
                items[old:head] = [None] * (head - old)  # type: ignore[list-item]
        self._head = head

    def __getitem__(self, i: int) -> T:
        if i < 0:
            if -i > len(self._items) - self._head:
                raise IndexError(i)
            return self._items[i]
        return self._items[self._head + i]

    def __len__(self) -> int:
        return len(self._items) - self._head

    def __bool__(self) -> bool:
        return len(self._items) > self._head

    def __iter__(self) -> Iterator[T]:
        return islice(self._items, self._head, None) if self._head else iter(self._items)


class Window:
    """Items with event times, kept for *span* seconds behind the newest."""

    __slots__ = ("items", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self.items: deque[tuple[datetime, Any]] = deque()

    def add(self, ts: datetime, item: Any) -> None:
        self.items.append((ts, item))
        self.trim(ts)

    def trim(self, now: datetime) -> None:
        items = self.items
        while items and (now - items[0][0]).total_seconds() > self.span:
            items.popleft()

    def __len__(self) -> int:
        return len(self.items)


def login_like(ev: Event) -> bool:
    """A successful authentication: an IMAP/POP3/... login, or a message sent after SMTP AUTH."""
    return (ev.kind == "login" or ev.kind == "message") and ev.account is not None and ev.ip is not None


def sent(ev: Event) -> tuple[str, int, int] | None:
    """(account, messages, recipients) of an authenticated account's ``message`` (1, 0) or ``queue``
    (0, nrcpt) event; None for anything else (or a queue entry without recipients)."""
    acct = ev.account
    if acct is None:
        return None
    if ev.kind == "message":
        return acct, 1, 0
    r = getattr(ev, "nrcpt", None) or 0
    return (acct, 0, r) if r > 0 else None


def geo_brief(ev: Event) -> dict[str, Any]:
    """Time, IP, service and where: how a login appears in evidence."""
    return Seen(ev).brief()


class Seen:
    """A login remembered in a window: its brief (for evidence) and label built only when needed."""

    __slots__ = ("_brief", "_label", "geo", "ip", "line", "service", "ts")

    def __init__(self, ev: Event) -> None:
        self.ts = ev.ts
        self.ip = ev.ip
        self.service = ev.service
        self.geo = ev.geo
        #: where the line is: "FILE:LINE" (the file as read, its line number), for `incidents show`
        self.line = f"{ev.source}:{ev.lineno}" if ev.source and ev.lineno else None
        self._brief: dict[str, Any] | None = None
        self._label: str | None = None

    def brief(self) -> dict[str, Any]:
        if self._brief is None:
            d: dict[str, Any] = {"ts": iso(self.ts), "ip": self.ip, "service": self.service}
            g = self.geo
            if g is not None:
                d.update(country=g.country, city=g.city, asn=g.asn, asn_org=g.asn_org)
            if self.line:
                d["line"] = self.line
            self._brief = d
        return self._brief

    def label(self) -> str:
        if self._label is None:
            self._label = self.geo.label() if self.geo is not None else str(self.ip)
        return self._label

    @classmethod
    def restore(cls, brief: dict[str, Any], label: str | None) -> Seen:
        obj = cls.__new__(cls)
        obj.ts = datetime.fromisoformat(str(brief["ts"]).replace("Z", "+00:00"))
        obj.ip = brief.get("ip")
        obj.service = brief.get("service")
        obj.line = brief.get("line")
        obj.geo = None
        obj._brief = brief
        obj._label = label
        return obj


def duration(secs: float) -> str:
    """A span for a summary a human reads: ``38 s``, ``12 min``, ``3.5 h``, ``2.3 days``."""
    if secs < 120:
        return f"{secs:.0f} s"
    if secs < 7200:
        return f"{secs / 60:.0f} min"
    if secs < 172800:
        return f"{secs / 3600:.1f} h"
    return f"{secs / 86400:.1f} days"


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


class SumWindow:
    """Weighted counts with event times (float seconds), summed over the last *span* seconds."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: deque[tuple[float, int]] = deque()
        self.total = 0

    def row(self) -> list[list[float]]:
        return [[t, n] for t, n in self.items]

    @classmethod
    def from_row(cls, data: list[list[float]]) -> SumWindow:
        w = cls()
        for t, n in data:
            w.items.append((float(t), int(n)))
            w.total += int(n)
        return w

    def add(self, t: float, n: int, span: float) -> int:
        self.items.append((t, n))
        self.total += n
        return self.trim(t, span)

    def trim(self, now: float, span: float) -> int:
        items = self.items
        limit = now - span
        while items and items[0][0] < limit:
            self.total -= items.popleft()[1]
        return self.total

    def first(self) -> float | None:
        return self.items[0][0] if self.items else None
