"""Geographic detectors: several countries within a window, and impossible travel."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..events import Event
from ..geo import country_centroid, distance_km
from .base import Detector, Finding, Seen, Window, duration, login_like, register


def country_login(det: Detector, ev: Event) -> tuple[str, str] | None:
    """(account, country) of a successful login that counts for geography, else None."""
    if not login_like(ev):
        return None
    country = _counts_as_country(det, ev)
    if country is None:
        return None
    assert ev.account is not None
    return ev.account, country


def _counts_as_country(det: Detector, ev: Event) -> str | None:
    g = ev.geo
    if g is None or g.internal or not g.country:
        return None
    al = det.ctx.config.allowlist
    if g.country in al.countries:
        return None
    extra = al.extra_countries.get((ev.account or "").lower())
    if extra and g.country in extra:
        return None
    return g.country


def place_of(det: Detector, ev: Event) -> tuple[float, float, float, bool] | None:
    """(lat, lon, accuracy km, coarse) of a login that counts for geography: the City database's
    coordinates, else the country's centre (``coarse``); None for internal/unknown/allowlisted places."""
    g = ev.geo
    if g is None or g.internal:
        return None
    if _counts_as_country(det, ev) is None and g.country:
        return None
    if g.latitude is not None and g.longitude is not None and g.city:
        return (g.latitude, g.longitude, float(g.accuracy_km or 0.0), False)
    if g.country:
        c = country_centroid(g.country)
        if c is not None:
            return (c[0], c[1], 0.0, True)
    return None


@register
class GeoCountries(Detector):
    """An account authenticated from N or more countries within a window (seed rule: 2 in 1 minute)."""

    name = "geo_countries"
    kinds = ("login", "message")
    defaults = {"window": "1m", "countries": 2}
    durations = ("window",)
    default_policy = "lock"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        self.windows: dict[str, Window] = {}  # account -> (ts, (country, Seen login))
        self._dirty: set[str] = set()

    def feed(self, ev: Event) -> Iterable[Finding]:
        got = country_login(self, ev)
        if got is None:
            return ()
        acct, country = got
        w = self.windows.get(acct)
        span = float(self.opt(acct, "window"))
        if w is None:
            w = self.windows[acct] = Window(span)
        w.add(ev.ts, (country, Seen(ev)))
        if self.track_changes:
            self._dirty.add(acct)
        # drop idle accounts now and then to keep memory bounded
        if len(self.windows) > 50_000:
            self._gc(ev.ts)
        countries = {c for _, (c, _) in w.items}
        need = int(self.opt(acct, "countries"))
        if len(countries) < need:
            return ()
        logins = [b.brief() for _, (_, b) in w.items]
        first = w.items[0][0]
        names = ", ".join(sorted(countries))
        secs = int((ev.ts - first).total_seconds())
        ips = list(dict.fromkeys(b["ip"] for b in logins if b.get("ip")))
        summary = f"{acct} logged in from {len(countries)} countries ({names}) within {secs} s"
        # The window's first country is presumed to be the owner's; logins from the others are the suspects.
        # Unless the first login of another country has the same time (files with one-second stamps are
        # merged in a fixed order, so which came first is unknown): then nobody is blamed.
        home = w.items[0][1][0]
        t0 = w.items[0][0]
        tied = any(c != home and t == t0 for t, (c, _b) in w.items)
        attackers = [] if tied else list(dict.fromkeys(b.ip for _, (c, b) in w.items if c != home and b.ip))
        return [Finding(self.name, acct, ev.ts, first, summary,
                        {"countries": sorted(countries), "window_seconds": span, "logins": logins}, ips,
                        attackers)]

    def _gc(self, now: datetime) -> None:
        for acct in list(self.windows):
            w = self.windows[acct]
            w.trim(now)
            if not w.items:
                del self.windows[acct]
                if self.track_changes:
                    self._dirty.add(acct)

    def export_changes(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for acct in self._dirty:
            w = self.windows.get(acct)
            out[acct] = ([[c, b.brief(), b.label()] for _, (c, b) in w.items]
                         if w is not None and w.items else None)
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        for acct, items in rows.items():
            w = Window(float(self.opt(acct, "window")))
            for c, b, label in items:
                seen = Seen.restore(b, label)
                w.items.append((seen.ts, (c, seen)))
            self.windows[acct] = w


@register
class ImpossibleTravel(Detector):
    """Consecutive logins of one account further apart than anyone can travel in the time between them.

    Distance is reduced by both locations' accuracy radii. With only country-level data (no coordinates)
    the country centroids are used, and only distances above ``coarse_min_distance_km`` count.
    """

    name = "impossible_travel"
    kinds = ("login", "message")
    defaults = {"max_speed_kmh": 900, "min_distance_km": 300, "coarse_min_distance_km": 2500, "window": "24h"}
    durations = ("window",)
    default_policy = "lock"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        # account -> (ts, ip, country, Seen login, lat, lon, accuracy km, coarse): the last login's place
        self.last: dict[str, tuple[datetime, str | None, str | None, Seen, float, float, float, bool]] = {}
        self._dirty: set[str] = set()

    def export_changes(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for acct in self._dirty:
            p = self.last.get(acct)
            out[acct] = None if p is None else [p[0].isoformat(), p[1], p[2], p[3].brief(), p[3].label(),
                                                *p[4:]]
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        for acct, p in rows.items():
            self.last[acct] = (datetime.fromisoformat(p[0]), p[1], p[2], Seen.restore(p[3], p[4]), float(p[5]),
                               float(p[6]), float(p[7]), bool(p[8]))

    def _where(self, ev: Event) -> tuple[float, float, float, bool] | None:
        return place_of(self, ev)

    def feed(self, ev: Event) -> Iterable[Finding]:
        if not login_like(ev):
            return ()
        where = self._where(ev)
        if where is None:
            return ()
        acct = ev.account
        assert acct is not None
        lat, lon, acc, coarse = where
        prev = self.last.get(acct)
        if prev is not None and prev[1] == ev.ip:  # same address, same place: only the time moves on
            self.last[acct] = (ev.ts, ev.ip, prev[2], Seen(ev), *prev[4:])
            if self.track_changes:
                self._dirty.add(acct)
            return ()
        g = ev.geo
        seen = Seen(ev)
        self.last[acct] = (ev.ts, ev.ip, g.country, seen, lat, lon, acc, coarse)
        if self.track_changes:
            self._dirty.add(acct)
        if len(self.last) > 200_000:  # bounded memory: forget the oldest accounts
            for k in list(self.last)[:50_000]:
                del self.last[k]
                if self.track_changes:
                    self._dirty.add(k)
        if prev is None:
            return ()
        pts, pip, pcountry, pseen, plat, plon, pacc, pcoarse = prev
        dt = (ev.ts - pts).total_seconds()
        if dt > float(self.opt(acct, "window")):
            return ()
        is_coarse = coarse or pcoarse
        if is_coarse and pcountry == g.country:
            return ()
        raw = distance_km(plat, plon, lat, lon)
        dist = raw - acc - pacc
        floor = float(self.opt(acct, "coarse_min_distance_km" if is_coarse else "min_distance_km"))
        if dist < floor:
            return ()
        hours = max(dt, 1.0) / 3600.0
        speed = dist / hours
        limit = float(self.opt(acct, "max_speed_kmh"))
        if speed <= limit:
            return ()
        summary = (f"{acct}: {pseen.label()} then {seen.label()}: {dist:.0f} km in "
                   f"{duration(dt)} ({speed:.0f} km/h > {limit:.0f})")
        evidence = {"from": pseen.brief(), "to": seen.brief(), "distance_km": round(dist, 1),
                    "raw_distance_km": round(raw, 1), "seconds": dt, "speed_kmh": round(speed, 1),
                    "max_speed_kmh": limit, "coarse": is_coarse}
        ips = [x for x in dict.fromkeys([ev.ip, pip]) if x]
        # the earlier place is presumed to be the owner's, the login that cannot be there is the suspect
        return [Finding(self.name, acct, ev.ts, pts, summary, evidence, ips, [ev.ip] if ev.ip else [])]
