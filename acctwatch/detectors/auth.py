"""Authentication detectors: password guessing per IP and per account, a guess that worked (failures then a
success from the same source), and a login from an address fail2ban had banned.

Counting one attempt once: Dovecot logs a failed attempt in its auth process (``layer = "backend"``, one
event per attempt, carries the account) and again when the login process disconnects (``layer =
"frontend"``, one event per connection with ``attempts = N``); Postfix logs one frontend event per attempt,
usually without the account, while Dovecot's auth (Postfix's SASL backend) logs the same attempt with it.
Each counter here therefore keeps the frontend and backend sums separately and uses the larger: when both
layers log the same attempts it is their number, when a layer is missing (no ``auth_verbose``, no frontend
line, Postfix without the account) it is the other's.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from ..events import Event
from ..ipaddr import parse_ip
from .base import (
    Detector,
    Finding,
    KeyedState,
    SumWindow,
    Sweep,
    duration,
    geo_brief,
    iso,
    login_like,
    max_option,
    register,
)


def layer_of(ev: Event) -> str:
    layer = getattr(ev, "layer", None)
    if layer:
        return str(layer)
    prog = ev.program or ""
    return "backend" if prog.startswith("auth") or prog.endswith("auth") else "frontend"


def weight_of(ev: Event) -> int:
    """Attempts one event stands for: a Dovecot login-process line says how many; everything else is one."""
    n = getattr(ev, "attempts", None)
    return n if isinstance(n, int) and n > 1 else 1


def is_internal(ev: Event) -> bool:
    g = ev.geo
    if g is not None:
        return bool(g.internal)
    return _internal_ip(ev.ip or "")


@lru_cache(maxsize=65536)
def _internal_ip(ip: str) -> bool:
    a = parse_ip(ip)
    return a is not None and (a.is_private or a.is_loopback or a.is_link_local)


@lru_cache(maxsize=65536)
def source_key(ip: str, prefix_v4: int = 24, prefix_v6: int = 64) -> str:
    """The attacking "source" of an address: its /24 (IPv4) or /64 (IPv6) network by default."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    plen = prefix_v4 if a.version == 4 else prefix_v6
    return str(ipaddress.ip_network(f"{a}/{plen}", strict=False))


class _Fails:
    """Failures from both layers over a window, plus who/where they came from (bounded)."""

    __slots__ = ("back", "front", "last", "names", "reported")

    def __init__(self) -> None:
        self.front = SumWindow()
        self.back = SumWindow()
        self.names: dict[str, float] = {}  # account names (per IP) or IPs (per account) -> last time
        self.reported = 0
        self.last = 0.0

    def add(self, ev: Event, t: float, span: float, name: str | None) -> int:
        if layer_of(ev) == "backend":
            self.back.add(t, 1, span)
            self.front.trim(t, span)
        else:
            self.front.add(t, weight_of(ev), span)
            self.back.trim(t, span)
        if t > self.last:
            self.last = t  # (the newest failure: an event a little out of order does not make it older)
        if name is not None:
            names = self.names
            names[name] = t
            if len(names) > 512:
                limit = t - span
                self.names = {k: v for k, v in names.items() if v >= limit}
                if len(self.names) > 512:
                    self.names = dict(sorted(self.names.items(), key=lambda kv: -kv[1])[:256])
        return max(self.front.total, self.back.total)

    def first(self) -> float:
        c = [x for x in (self.front.first(), self.back.first()) if x is not None]
        return min(c) if c else self.last

    def row(self) -> Any:
        return {"front": self.front.row(), "back": self.back.row(), "names": self.names,
                "reported": self.reported, "last": self.last}

    @classmethod
    def from_row(cls, d: Any) -> _Fails:
        f = cls()
        f.front, f.back = SumWindow.from_row(d["front"]), SumWindow.from_row(d["back"])
        f.names = {str(k): float(v) for k, v in d["names"].items()}
        f.reported, f.last = int(d["reported"]), float(d["last"])
        return f

    def recent_names(self, t: float, span: float) -> list[str]:
        return [k for k, v in sorted(self.names.items(), key=lambda kv: (-kv[1], kv[0])) if v >= t - span]


class _FailDetector(KeyedState, Detector):
    kinds = ("auth_failure",)
    STATE = "state"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.state: dict[str, _Fails] = {}
        self._sweep = Sweep(max_option(self, "window"))
        self._ignore = frozenset(str(r).lower() for r in self.options["ignore_reasons"])

    def counts(self, ev: Event) -> bool:
        reason = getattr(ev, "reason", None)
        return not (reason and reason.lower() in self._ignore)

    def _span(self, key: str) -> float:
        return float(self.options["window"])

    def _fails(self, key: str, t: float, span: float) -> _Fails:
        """*key*'s failures at event time *t*: a key whose newest failure left the window starts afresh (a
        new episode: nothing of the old one, not even whether it was reported, carries over), which is also
        what a sweep that forgot it gives."""
        f = self.state.get(key)
        if f is None or t - f.last > span:
            f = self.state[key] = _Fails()
        self._touch(key)
        return f

    def sweep(self, now: float) -> None:
        """Forget the keys whose newest failure is older than their window at event time *now*."""
        for k in [k for k, v in self.state.items() if now - v.last > self._span(k)]:
            del self.state[k]
            self._touch(k)

    def _row(self, f: _Fails) -> Any:
        return f.row()

    def _from_row(self, d: Any) -> _Fails:
        return _Fails.from_row(d)


@register
class AuthFailuresIp(_FailDetector):
    """Many failed logins from one address (any accounts): a password-guessing client. Finding without an
    account (``account = None``, ``ips = [ip]``)."""

    name = "auth_failures_ip"
    defaults = {"window": "10m", "failures": 20, "ignore_internal": True,
                "ignore_reasons": ["auth mechanism disallowed"], "skip_familiar": True}
    durations = ("window",)
    default_policy = "notify"

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        ip = ev.ip
        if ip is None or not self.counts(ev):
            return ()
        if self.options["ignore_internal"] and is_internal(ev):
            return ()
        fam = ev.fam
        if fam is not None and self.options["skip_familiar"] and fam.state in ("familiar", "trusted"):
            return ()  # e.g. an office NAT: a colleague's phone with an old password, not a guesser
        span = float(self.options["window"])
        f = self._fails(ip, t, span)
        n = f.add(ev, t, span, ev.account)
        limit = int(self.options["failures"])
        if n <= limit:
            f.reported = 0
            return ()
        if f.reported and n < f.reported * 2:
            return ()
        f.reported = n
        first = datetime.fromtimestamp(f.first(), tz=ev.ts.tzinfo)
        names = f.recent_names(t, span)
        where = f" ({ev.geo.label()})" if ev.geo is not None else ""
        tried = f" against {len(names)} account(s): {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}" \
            if names else ""
        summary = (f"{ip}{where}: {n} failed logins in {duration(t - f.first())} (limit {limit} per "
                   f"{duration(span)}){tried}")
        evidence = {"ip": ip, "failures": n, "limit": limit, "window_seconds": span, "first": iso(first),
                    "last": iso(ev.ts), "accounts_tried": names[:50], "source": geo_brief(ev),
                    "counted_from": "frontend" if f.front.total >= f.back.total else "backend"}
        return [Finding(self.name, None, ev.ts, first, summary, evidence, [ip])]


@register
class AuthFailuresAccount(_FailDetector):
    """Many failed logins for one account from several addresses (distributed guessing). A single device
    with a stale password is one address: it never reaches ``min_ips``."""

    name = "auth_failures_account"
    defaults = {"window": "1h", "failures": 30, "min_ips": 3, "ignore_reasons": ["auth mechanism disallowed"]}
    durations = ("window",)
    default_policy = "notify"

    def _span(self, key: str) -> float:
        return float(self.opt(key, "window"))

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        acct = ev.account
        if acct is None or not self.counts(ev):
            return ()
        span = float(self.opt(acct, "window"))
        f = self._fails(acct, t, span)
        n = f.add(ev, t, span, ev.ip)
        limit = int(self.opt(acct, "failures"))
        if n <= limit:
            f.reported = 0
            return ()
        ips = f.recent_names(t, span)
        min_ips = int(self.opt(acct, "min_ips"))
        if len(ips) < min_ips:
            return ()
        if f.reported and n < f.reported * 2:
            return ()
        f.reported = n
        first = datetime.fromtimestamp(f.first(), tz=ev.ts.tzinfo)
        summary = (f"{acct}: {n} failed logins from {len(ips)} addresses in {duration(t - f.first())} "
                   f"(limit {limit} per {duration(span)} from >= {min_ips} addresses): password guessing")
        evidence = {"failures": n, "limit": limit, "window_seconds": span, "distinct_ips": len(ips),
                    "min_ips": min_ips, "first": iso(first), "last": iso(ev.ts), "ips": ips[:50]}
        return [Finding(self.name, acct, ev.ts, first, summary, evidence, ips[:50])]


class _Src:
    __slots__ = ("back", "front", "ips", "last", "reasons")

    def __init__(self) -> None:
        self.front: deque[tuple[float, int]] = deque()
        self.back: deque[tuple[float, int]] = deque()
        self.ips: dict[str, int] = {}
        self.reasons: dict[str, int] = {}
        self.last = float("-inf")  # the newest failure (its windows always hold it while it counts)


@register
class BruteforceSuccess(KeyedState, Detector):
    """Failed logins for an account, then a successful one from the same source: the guess worked.

    Same source = the same /24 (IPv4) or /64 (IPv6) as the failures (``prefix_v4``/``prefix_v6``; 32/128
    for the exact address). Not the same ASN: a mobile carrier or a big ISP is one ASN for the attacker and
    the real user alike. A rate, not a count, makes it an attack: more than ``failures`` failures within
    ``burst`` at some point in the ``window`` before the success. A phone retrying a stale password once a
    minute, then logging in after the user typed the new one, stays under that rate.
    """

    name = "bruteforce_success"
    kinds = ("auth_failure", "login", "message")
    defaults = {"window": "1h", "burst": "10m", "failures": 10, "prefix_v4": 24, "prefix_v6": 64,
                "ignore_reasons": ["auth mechanism disallowed"]}
    durations = ("window", "burst")
    default_policy = "notify"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.accounts: dict[str, dict[str, _Src]] = {}
        self.last: dict[str, float] = {}  # account -> its newest failure
        self._sweep = Sweep(max_option(self, "window"))
        self._ignore = frozenset(str(r).lower() for r in self.options["ignore_reasons"])

    def _key(self, acct: str, ip: str) -> str:
        return source_key(ip, int(self.opt(acct, "prefix_v4")), int(self.opt(acct, "prefix_v6")))

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        acct = ev.account
        ip = ev.ip
        if acct is None or ip is None:
            return ()
        if ev.kind == "auth_failure":
            reason = getattr(ev, "reason", None)
            if reason and reason.lower() in self._ignore:
                return ()
            self._fail(ev, acct, ip, t)
            return ()
        if not login_like(ev):
            return ()
        srcs = self.accounts.get(acct)
        if not srcs:
            return ()
        key = self._key(acct, ip)
        s = srcs.get(key)
        if s is None:
            return ()
        span = float(self.opt(acct, "window"))
        _trim(s.front, t - span)
        _trim(s.back, t - span)
        burst_span = float(self.opt(acct, "burst"))
        burst = max(_max_burst(s.front, burst_span), _max_burst(s.back, burst_span))
        limit = int(self.opt(acct, "failures"))
        if burst <= limit:
            return ()
        del srcs[key]  # reported: the next success from here is the same story
        self._touch(acct)
        total = max(sum(n for _, n in s.front), sum(n for _, n in s.back))
        first_t = min(x[0][0] for x in (s.front, s.back) if x)
        last_t = max(x[-1][0] for x in (s.front, s.back) if x)
        tz = ev.ts.tzinfo
        first = datetime.fromtimestamp(first_t, tz=tz)
        fail_ips = sorted(s.ips, key=lambda k: (-s.ips[k], k))
        where = f" ({ev.geo.label()})" if ev.geo is not None else ""
        summary = (f"{acct}: {total} failed logins from {key} ({burst} within {duration(burst_span)}), then a "
                   f"successful {ev.service or ev.kind} login from {ip}{where} "
                   f"{duration(t - last_t)} later: the password was probably guessed")
        evidence = {"source": key, "failures": total, "max_burst": burst, "burst_seconds": burst_span,
                    "limit": limit, "first_failure": iso(first),
                    "last_failure": iso(datetime.fromtimestamp(last_t, tz=tz)),
                    "failed_from": [{"ip": k, "failures": s.ips[k]} for k in fail_ips[:20]],
                    "reasons": dict(sorted(s.reasons.items())), "success": geo_brief(ev)}
        ips = list(dict.fromkeys([ip, *fail_ips[:20]]))
        return [Finding(self.name, acct, ev.ts, first, summary, evidence, ips)]

    def _fail(self, ev: Event, acct: str, ip: str, t: float) -> None:
        srcs = self.accounts.get(acct)
        if srcs is None:
            srcs = self.accounts[acct] = {}
        self._touch(acct)
        key = self._key(acct, ip)
        span = float(self.opt(acct, "window"))
        s = srcs.get(key)
        if s is not None and t - s.last > span:
            s = None  # its failures all left the window: a new run (what a sweep that forgot it gives)
        if s is None:
            if len(srcs) > 256:  # one account attacked from everywhere: drop the expired sources, then all
                for k in [k for k, v in srcs.items() if t - v.last > span]:
                    del srcs[k]
                if len(srcs) > 256:
                    srcs.clear()
            s = srcs[key] = _Src()
        if t > s.last:
            s.last = t
        if layer_of(ev) == "backend":
            s.back.append((t, 1))
            _trim(s.back, t - span)
        else:
            s.front.append((t, weight_of(ev)))
            _trim(s.front, t - span)
        if len(s.ips) < 64 or ip in s.ips:
            s.ips[ip] = s.ips.get(ip, 0) + 1
        reason = getattr(ev, "reason", None)
        if reason and len(s.reasons) < 16:
            s.reasons[reason] = s.reasons.get(reason, 0) + 1
        if t > self.last.get(acct, float("-inf")):
            self.last[acct] = t

    def sweep(self, now: float) -> None:
        """Forget the sources whose newest failure is older than their account's window at event time *now*,
        and the accounts left without any."""
        for acct in list(self.accounts):
            srcs = self.accounts[acct]
            span = float(self.opt(acct, "window"))
            gone = [k for k, s in srcs.items() if now - s.last > span]
            for k in gone:
                del srcs[k]
            if gone or not srcs:
                self._touch(acct)
            if not srcs:
                del self.accounts[acct]
                self.last.pop(acct, None)

    def export_changes(self) -> dict[str, Any] | None:
        out = super().export_changes() or {}
        for acct, row in out.items():
            if row is not None:
                row["last"] = self.last.get(acct, 0.0)
        return out

    def _row(self, srcs: dict[str, _Src]) -> Any:
        return {"sources": {k: {"front": [list(x) for x in s.front], "back": [list(x) for x in s.back],
                                "ips": s.ips, "reasons": s.reasons} for k, s in srcs.items()}}

    def _from_row(self, d: Any) -> dict[str, _Src]:
        out: dict[str, _Src] = {}
        for k, v in d["sources"].items():
            s = out[k] = _Src()
            s.front = deque((float(t), int(n)) for t, n in v["front"])
            s.back = deque((float(t), int(n)) for t, n in v["back"])
            s.ips = {str(a): int(b) for a, b in v["ips"].items()}
            s.reasons = {str(a): int(b) for a, b in v["reasons"].items()}
            s.last = max((x[0] for x in (*s.front, *s.back)), default=float("-inf"))
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        super().import_rows(rows)
        for acct, d in rows.items():
            self.last[acct] = float(d.get("last", 0.0))


def _trim(d: deque[tuple[float, int]], limit: float) -> None:
    while d and d[0][0] < limit:
        d.popleft()
    while len(d) > 5000:
        d.popleft()


def _max_burst(d: deque[tuple[float, int]], span: float) -> int:
    """Largest weighted count inside any stretch of *d* shorter than *span* (sorted by time)."""
    best = cur = 0
    items = list(d)
    j = 0
    for t, n in items:
        cur += n
        while items[j][0] <= t - span:
            cur -= items[j][1]
            j += 1
        if cur > best:
            best = cur
    return best


@register
class BannedIpLogin(KeyedState, Detector):
    """A successful login from an address that fail2ban banned shortly before (``ban`` events).

    The ban says the address was guessing passwords; a success from it afterwards (the ban expired, or
    another port/service was not covered by the jail) means a guess probably worked. Policy ``notify`` by
    default: a ban can also hit a NAT gateway shared with honest users (a campus, a hotel, a carrier's
    CGNAT) whose own phone retried a stale password.
    """

    name = "banned_ip_login"
    kinds = ("ban", "login", "message")
    STATE = "bans"
    defaults = {"window": "24h"}
    durations = ("window",)
    default_policy = "notify"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.bans: dict[str, tuple[float, str | None, int]] = {}
        #: a ban counts for the window of the account that logs in, unknown when the ban comes: the longest
        self._span = max_option(self, "window")
        self._sweep = Sweep(self._span)

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        ip = ev.ip
        if ip is None:
            return ()
        if ev.kind == "ban":
            prev = self.bans.get(ip)
            if prev is not None and t - prev[0] > self._span:
                prev = None  # an old ban, out of every window: the count starts again (as after a sweep)
            self.bans[ip] = (t, getattr(ev, "jail", None), (prev[2] + 1) if prev else 1)
            self._touch(ip)
            if len(self.bans) > 100_000:
                self.sweep(t)
                if len(self.bans) > 100_000:  # (bounded even within the window: the most recent half)
                    for k in list(self.bans)[:-50_000]:
                        del self.bans[k]
                        self._touch(k)
            return ()
        if not login_like(ev):
            return ()
        b = self.bans.get(ip)
        if b is None:
            return ()
        acct = ev.account
        bt, jail, count = b
        span = float(self.opt(acct, "window"))
        if t - bt > span or t < bt:
            return ()
        first = datetime.fromtimestamp(bt, tz=ev.ts.tzinfo)
        where = f" ({ev.geo.label()})" if ev.geo is not None else ""
        summary = (f"{acct} logged in ({ev.service or ev.kind}) from {ip}{where}, which fail2ban banned "
                   f"{duration(t - bt)} earlier (jail {jail or '?'}): a password guess probably worked")
        evidence = {"ip": ip, "jail": jail, "banned_at": iso(first), "bans": count, "window_seconds": span,
                    "login": geo_brief(ev)}
        return [Finding(self.name, acct, ev.ts, first, summary, evidence, [ip])]

    def sweep(self, now: float) -> None:
        """Forget the bans older than every window at event time *now*."""
        for k in [k for k, b in self.bans.items() if now - b[0] > self._span]:
            del self.bans[k]
            self._touch(k)

    def _row(self, b: tuple[float, str | None, int]) -> Any:
        return list(b)

    def _from_row(self, d: Any) -> tuple[float, str | None, int]:
        return (float(d[0]), d[1], int(d[2]))
