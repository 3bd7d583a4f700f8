"""Spread detector: one account used from many addresses and networks at once (credential stuffing through
proxies or a botnet), while a phone hopping between addresses of one mobile network stays quiet."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..events import Event
from .base import Detector, Finding, KeyedState, Sweep, iso, login_like, max_option, register


def network_key(ev: Event) -> str:
    """The network an address belongs to: its ASN, else its country, else its /16 (IPv4) or /32 (IPv6)."""
    g = ev.geo
    if g is not None:
        if g.asn:
            return f"AS{g.asn}"
        if g.country and not g.internal:
            return f"country:{g.country}"
    try:
        addr = ipaddress.ip_address(ev.ip or "")
    except ValueError:
        return f"ip:{ev.ip}"
    plen = 16 if addr.version == 4 else 32
    return f"net:{ipaddress.ip_network(f'{addr}/{plen}', strict=False)}"


class _Seen:
    __slots__ = ("fired_asns", "fired_ips", "ips", "last")

    def __init__(self) -> None:
        # ip -> (last event time, network key, asn, country, asn_org)
        self.ips: dict[str, tuple[float, str, int | None, str | None, str | None]] = {}
        self.fired_ips = 0
        self.fired_asns = 0
        self.last = float("-inf")  # the newest login of any of its addresses


@register
class IpSpread(KeyedState, Detector):
    """Distinct client IPs and distinct ASNs of one account's successful logins within a window.

    Fires when the account was used from more than ``max_ips`` addresses spread over at least
    ``min_networks`` networks (ASN, or country/prefix without ASN data), or from more than ``max_asns``
    distinct ASNs. Many addresses inside one or two networks (a phone on a mobile network, home + mobile) do
    not count: that is how carriers and CGNAT work.
    """

    name = "ip_spread"
    kinds = ("login", "message")
    defaults = {"window": "24h", "max_ips": 20, "min_networks": 3, "max_asns": 6, "skip_familiar": True}
    durations = ("window",)
    default_policy = "notify"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.accounts: dict[str, _Seen] = {}
        self._sweep = Sweep(max_option(self, "window"))

    def feed(self, ev: Event) -> Iterable[Finding]:
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        if not login_like(ev):
            return ()
        acct = ev.account
        ip = ev.ip
        assert acct is not None and ip is not None
        g = ev.geo
        if g is not None and g.internal:
            return ()
        fam = ev.fam
        if fam is not None and fam.familiar and self.opt(acct, "skip_familiar"):
            return ()  # the account's own networks: only unfamiliar ones spread
        span = float(self.opt(acct, "window"))
        s = self.accounts.get(acct)
        if s is None or t - s.last > span:
            # (none of its addresses is in the window any more: the account starts afresh, as after a sweep)
            s = self.accounts[acct] = _Seen()
        self._touch(acct)
        if t > s.last:
            s.last = t
        prev = s.ips.get(ip)
        if prev is not None:
            s.ips[ip] = (t if t > prev[0] else prev[0], prev[1], prev[2], prev[3], prev[4])
            return ()
        key = network_key(ev)
        s.ips[ip] = (t, key, g.asn if g is not None else None, g.country if g is not None else None,
                     g.asn_org if g is not None else None)
        max_ips = int(self.opt(acct, "max_ips"))
        max_asns = int(self.opt(acct, "max_asns"))
        if len(s.ips) <= min(max_ips, max_asns):
            return ()
        limit = t - span
        s.ips = {k: v for k, v in s.ips.items() if v[0] >= limit}
        n_ips = len(s.ips)
        if n_ips <= min(max_ips, max_asns):
            s.fired_ips = s.fired_asns = 0  # the episode is over: a new spread is a new report
            return ()
        networks: dict[str, int] = {}
        asns: dict[int, int] = {}
        for _t, k, asn, _c, _o in s.ips.values():
            networks[k] = networks.get(k, 0) + 1
            if asn:
                asns[asn] = asns.get(asn, 0) + 1
        min_networks = int(self.opt(acct, "min_networks"))
        by_ips = n_ips > max_ips and len(networks) >= min_networks
        by_asns = len(asns) > max_asns
        if not by_ips and not by_asns:
            return ()
        # Report once per growth step: again only when the spread got wider than last reported.
        if n_ips <= s.fired_ips and len(asns) <= s.fired_asns:
            return ()
        s.fired_ips = max(s.fired_ips, n_ips)
        s.fired_asns = max(s.fired_asns, len(asns))
        return [self._finding(acct, ev, s, networks, asns, span, by_ips, by_asns, max_ips, max_asns)]

    def _finding(self, acct: str, ev: Event, s: _Seen, networks: dict[str, int], asns: dict[int, int],
                 span: float, by_ips: bool, by_asns: bool, max_ips: int, max_asns: int) -> Finding:
        entries = sorted(s.ips.items(), key=lambda kv: (kv[1][0], kv[0]))
        first = datetime.fromtimestamp(entries[0][1][0], tz=ev.ts.tzinfo)
        orgs: dict[int, str] = {}
        countries: dict[str, int] = {}
        for _ip, (_t, _k, asn, c, org) in entries:
            if asn and org:
                orgs.setdefault(asn, org)
            if c:
                countries[c] = countries.get(c, 0) + 1
        top_asns = sorted(asns.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        hours = span / 3600
        why = []
        if by_ips:
            why.append(f"{len(s.ips)} IPs (> {max_ips}) in {len(networks)} networks")
        if by_asns:
            why.append(f"{len(asns)} ASNs (> {max_asns})")
        cl = ", ".join(f"{c}:{n}" for c, n in sorted(countries.items(), key=lambda kv: (-kv[1], kv[0]))[:6])
        summary = f"{acct} logged in from {' and '.join(why)} within {hours:g} h" + (f" ({cl})" if cl else "")
        evidence = {
            "distinct_ips": len(s.ips), "distinct_networks": len(networks), "distinct_asns": len(asns),
            "window_seconds": span, "max_ips": max_ips, "max_asns": max_asns,
            "countries": dict(sorted(countries.items())),
            "top_asns": [{"asn": a, "org": orgs.get(a), "ips": n} for a, n in top_asns],
            "ips": [{"ip": ip, "last_seen": iso(datetime.fromtimestamp(t, tz=ev.ts.tzinfo)), "country": c,
                     "asn": asn} for ip, (t, _k, asn, c, _o) in entries[-30:]],
        }
        ips = [ip for ip, _ in reversed(entries)][:50]
        # which of many addresses is the intruder's is unknown: blame none (nothing for fail2ban to ban)
        return Finding(self.name, acct, ev.ts, first, summary, evidence, ips, [])

    def sweep(self, now: float) -> None:
        """Forget the accounts none of whose addresses logged in within the window at event time *now*. (Inside
        an account still in use, addresses that left the window are dropped whenever a new one comes and the
        account has more than a few: its table stays within the window's addresses too.)"""
        for acct in [a for a, s in self.accounts.items() if now - s.last > float(self.opt(a, "window"))]:
            del self.accounts[acct]
            self._touch(acct)

    def _row(self, s: _Seen) -> Any:
        return {"ips": {ip: list(v) for ip, v in s.ips.items()}, "fired": [s.fired_ips, s.fired_asns]}

    def _from_row(self, d: Any) -> _Seen:
        s = _Seen()
        s.ips = {ip: (float(v[0]), str(v[1]), v[2], v[3], v[4]) for ip, v in d["ips"].items()}
        s.fired_ips, s.fired_asns = int(d["fired"][0]), int(d["fired"][1])
        s.last = max((v[0] for v in s.ips.values()), default=float("-inf"))
        return s
