"""``account_risk``: each login judged against what is familiar for its account, one escalating incident.

The engine's familiarity stage (``acctwatch.profiles``) tells for every event whether its network is
familiar to the account (``event.fam``). This detector turns that into levels, the weakest first:

* **no incident** when every network involved is familiar: a VPN laptop on the same foreign exit for weeks
  next to the phone at home is "two countries in a minute" and "impossible travel" all day, and normal;
* **watch** (recorded, no alert; the network stays suspect, so what it does next is judged as such):
  ``new_country`` (an unfamiliar ISP/carrier network in a country new to a mature profile, reachable from
  the last familiar login in the time between them: a trip), ``unfamiliar_gateway`` (a cloud security
  gateway such as Zscaler the account never used: a new work device);
* **notify** (first sighting of an unfamiliar network): ``unfamiliar_datacenter`` (a hosting/cloud/VPN
  network the account never used and that is not a service shared by many accounts, for an account that
  does not habitually log in through such networks), ``impossible_travel`` (an unfamiliar network too far
  from the account's last familiar login for the time between them);
* **lock** ``distributed``: several unfamiliar networks, or several new countries, within ``window``
  (a botnet or a proxy network using the password; stricter thresholds while the profile is learning);
* **hold** ``sends_from_reported``: a network that was reported (or acted on) sends more than
  ``sends_recipients`` recipients or ``sends_messages`` messages within ``sends_window``;
* **lock** ``guessed``: failed logins from a source, then a success from it, from an unfamiliar network:
  any rate once the profile is mature (slow guessing too), a fast run (``fast_failures`` within
  ``fast_window``) always; a slow run on a learning profile only notifies (a device with a stale password);
* **lock** ``banned``: a success from an address fail2ban banned, from an unfamiliar network (from a
  familiar one, e.g. a shared NAT whose phone retried a stale password: notify).

Each level is configurable (``levels = {rule = "watch"|"notify"|"hold"|"lock"}``); ``policy`` caps them all.
Findings of one account merge into one incident whose level rises as evidence comes (``escalations``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..config import LEVELS, ConfigError
from ..events import Event
from ..netclass import HOSTED as _HOSTED
from .auth import source_key
from .base import Detector, Finding, Seen, Sweep, Timeline, duration, iso, max_option, register
from .geo import place_of

#: how often (event time) account_risk sweeps its accounts (it walks them all; the shortest windows are an
#: hour, but what they keep of an idle account is a few items, and its place is kept for days anyway)
SWEEP_EVERY = 86400.0
#: the last familiar login's place is remembered for the longest of these windows
HOME_WINDOWS = ("window", "travel_window", "guess_window", "sends_window")

RULES: dict[str, str] = {
    "unfamiliar_datacenter": "notify",
    "unfamiliar_gateway": "watch",
    "new_country": "watch",
    "impossible_travel": "notify",
    "distributed": "lock",
    "sends_from_reported": "hold",
    "guessed": "lock",
    "banned": "lock",
}


class _Acct:
    __slots__ = ("dist_fired", "fails", "home", "recent", "sends", "sends_fired")

    def __init__(self) -> None:
        self.recent: Timeline[tuple[float, str, str | None, str, bool]] = Timeline()  # t, net, country, ip, new c.
        self.dist_fired = 0  # size of the spread last reported
        # last familiar (located) login: t, lat, lon, acc, coarse, country, ip, label, familiar (False: the
        # previous place while the profile learns)
        self.home: tuple[float, float, float, float, bool, str | None, str, str, bool] | None = None
        # source -> [frontend count, first, last, fast, recent frontend times, ips, backend count, backend times]
        self.fails: dict[str, list[Any]] = {}
        self.sends: Timeline[tuple[float, int, int, str]] = Timeline()  # t, messages, recipients, ip
        self.sends_fired = 0

    def empty(self) -> bool:
        return not (self.recent or self.home or self.fails or self.sends)

    def row(self) -> dict[str, Any]:
        return {"recent": [list(x) for x in self.recent], "dist_fired": self.dist_fired,
                "home": list(self.home) if self.home else None,
                "fails": {k: [v[0], v[1], v[2], v[3], list(v[4]), v[5], v[6], list(v[7])]
                          for k, v in self.fails.items()},
                "sends": [list(x) for x in self.sends], "sends_fired": self.sends_fired}

    @classmethod
    def from_row(cls, d: dict[str, Any]) -> _Acct:
        a = cls()
        a.recent = Timeline((float(x[0]), str(x[1]), x[2], str(x[3]), bool(x[4])) for x in d.get("recent", []))
        a.dist_fired = int(d.get("dist_fired", 0))
        h = d.get("home")
        a.home = (float(h[0]), float(h[1]), float(h[2]), float(h[3]), bool(h[4]), h[5], str(h[6]), str(h[7]),
                  bool(h[8])) if h else None
        a.fails = {k: [int(v[0]), float(v[1]), float(v[2]), bool(v[3]), deque(float(x) for x in v[4]), dict(v[5]),
                       int(v[6]), deque(float(x) for x in v[7])]
                   for k, v in d.get("fails", {}).items()}
        a.sends = Timeline((float(x[0]), int(x[1]), int(x[2]), str(x[3])) for x in d.get("sends", []))
        a.sends_fired = int(d.get("sends_fired", 0))
        return a


@register
class AccountRisk(Detector):
    """Logins judged against the account's familiar networks; levels rise as evidence comes."""

    name = "account_risk"
    kinds = ("login", "message", "queue", "auth_failure", "ban")
    defaults = {
        "window": "1h", "networks": 3, "countries": 2, "learning_networks": 5, "learning_countries": 3,
        "max_speed_kmh": 900, "min_distance_km": 300, "coarse_min_distance_km": 2500, "travel_window": "24h",
        "guess_window": "7d", "guess_failures": 5, "fast_failures": 10, "fast_window": "10m",
        "sends_window": "1h", "sends_recipients": 50, "sends_messages": 10, "ban_window": "24h",
        "prefix_v4": 24, "prefix_v6": 64, "ignore_reasons": ["auth mechanism disallowed"], "levels": {},
    }
    durations = ("window", "travel_window", "guess_window", "fast_window", "sends_window", "ban_window")
    default_policy = "lock"

    def __init__(self, options: dict[str, Any], ctx: Any) -> None:
        super().__init__(options, ctx)
        levels = self.options["levels"]
        if not isinstance(levels, dict):
            raise ConfigError(f"[detectors.{self.name}] levels: expected a table like {{distributed = \"lock\"}}")
        for rule, lvl in levels.items():
            if rule not in RULES:
                import difflib

                close = difflib.get_close_matches(rule, list(RULES), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(RULES)}"
                raise ConfigError(f"[detectors.{self.name}] levels: unknown rule '{rule}'{hint}")
            if lvl not in LEVELS:
                raise ConfigError(f"[detectors.{self.name}] levels.{rule}: expected one of {', '.join(LEVELS)}, "
                                  f"got {lvl!r}")
        self.levels = {**RULES, **levels}
        self._ignore = frozenset(str(r).lower() for r in self.options["ignore_reasons"])
        self.accounts: dict[str, _Acct] = {}
        self.bans: dict[str, tuple[float, str | None]] = {}
        self._dirty: set[str] = set()
        self._sweep = Sweep(SWEEP_EVERY)
        self._ban_span = max_option(self, "ban_window")  # (a ban's account is not known when it comes)
        self._home_default = max(float(self.options[k]) for k in HOME_WINDOWS)

    # -- state -----------------------------------------------------------------------------------
    def _acct(self, acct: str) -> _Acct:
        a = self.accounts.get(acct)
        if a is None:
            a = self.accounts[acct] = _Acct()
        if self.track_changes:
            self._dirty.add(acct)
        return a

    def export_changes(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for acct in self._dirty:
            if acct.startswith("ban:"):  # (no account name has this form: a ban of the address after it)
                b = self.bans.get(acct[4:])
                out[acct] = list(b) if b is not None else None
                continue
            a = self.accounts.get(acct)
            out[acct] = a.row() if a is not None and not a.empty() else None
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        for acct, d in sorted(rows.items()):
            if acct.startswith("ban:"):
                self.bans[acct[4:]] = (float(d[0]), d[1])
            else:
                self.accounts[acct] = _Acct.from_row(d)

    def _home_span(self, acct: str) -> float:
        """How long the last familiar login's place is remembered (the longest of the account's windows)."""
        if not (self._overrides and acct.lower() in self._overrides):
            return self._home_default
        return max(float(self.opt(acct, k)) for k in HOME_WINDOWS)

    def _spans(self, acct: str) -> tuple[float, float, float, float]:
        """(window, sends_window, guess_window, _home_span) of *acct*."""
        return (float(self.opt(acct, "window")), float(self.opt(acct, "sends_window")),
                float(self.opt(acct, "guess_window")), self._home_span(acct))

    def sweep(self, now: float) -> None:
        """Forget what left every window at event time *now* (bounded memory on long runs): only what the
        rules would ignore anyway (each trims its window before reading it; a place older than
        ``_home_span`` counts as none), so a sweep never changes a finding, whenever it runs."""
        track = self.track_changes
        overrides = self._overrides
        default = self._spans("")
        for acct in list(self.accounts):
            a = self.accounts[acct]
            w, sw, gw, hw = self._spans(acct) if overrides and acct.lower() in overrides else default
            changed = False
            recent = a.recent
            if recent and recent[0][0] < now - w:
                _trim(recent, now - w)
                changed = True
            sends = a.sends
            if sends and sends[0][0] < now - sw:
                _trim(sends, now - sw)
                changed = True
            if a.fails:
                gone = [k for k, v in a.fails.items() if now - v[2] > gw]
                for k in gone:
                    del a.fails[k]
                changed = changed or bool(gone)
            if a.home is not None and now - a.home[0] > hw:
                a.home = None
                changed = True
            if a.empty():
                del self.accounts[acct]
                changed = True
            if changed and track:
                self._dirty.add(acct)
        span = self._ban_span
        for ip in [ip for ip, (t, _) in self.bans.items() if now - t > span]:
            del self.bans[ip]
            if track:
                self._dirty.add(f"ban:{ip}")

    # -- events ----------------------------------------------------------------------------------
    def feed(self, ev: Event) -> Iterable[Finding]:
        kind = ev.kind
        t = ev.t
        if t >= self._sweep.next:  # (tested here: this runs for every event)
            self._sweep.tick(t, self.sweep)
        if kind == "ban":
            if ev.ip:
                self.bans[ev.ip] = (t, getattr(ev, "jail", None))
                if self.track_changes:
                    self._dirty.add(f"ban:{ev.ip}")
            return ()
        v = ev.fam
        acct = ev.account
        if v is None or acct is None or ev.ip is None or v.cls == "internal":
            return ()  # no familiarity (disabled, or no address): nothing to judge against
        if kind == "auth_failure":
            reason = getattr(ev, "reason", None)
            if not (reason and reason.lower() in self._ignore):
                self._fail(ev, acct, t)
            return ()
        if kind == "queue":
            r = getattr(ev, "nrcpt", None) or 0
            return self._sent(ev, acct, v, t, 0, r) if r > 0 else ()
        return self._login(ev, acct, v, t)

    def _fail(self, ev: Event, acct: str, t: float) -> None:
        a = self._acct(acct)
        src = source_key(ev.ip or "", int(self.opt(acct, "prefix_v4")), int(self.opt(acct, "prefix_v6")))
        f = a.fails.get(src)
        span = float(self.opt(acct, "guess_window"))
        # one attempt can be logged twice (Dovecot's auth process and its login process, see "Counting failed
        # logins once" in docs/detectors.md): each layer is counted apart and the larger count is used
        back = getattr(ev, "layer", None) == "backend"
        n = 1 if back else int(getattr(ev, "attempts", None) or 1)
        if f is None or t - f[2] > span:
            if len(a.fails) >= 64:  # one account attacked from everywhere: keep the most recent sources
                oldest = min(a.fails, key=lambda k: a.fails[k][2])
                del a.fails[oldest]
            f = a.fails[src] = [0, t, t, False, deque(), {}, 0, deque()]
        if back:
            f[6] += n
        else:
            f[0] += n
        f[2] = t
        q: deque[float] = f[7] if back else f[4]
        for _ in range(min(n, 64)):
            q.append(t)
        fast_n = int(self.opt(acct, "fast_failures"))
        while len(q) > fast_n + 1:
            q.popleft()
        if len(q) > fast_n and q[-1] - q[0] <= float(self.opt(acct, "fast_window")):
            f[3] = True
        ips: dict[str, int] = f[5]
        if ev.ip in ips or len(ips) < 16:
            ips[ev.ip or ""] = ips.get(ev.ip or "", 0) + n

    def _sent(self, ev: Event, acct: str, v: Any, t: float, msgs: int, rcpts: int,
              just_reported: bool = False) -> list[Finding]:
        if not (v.state in ("reported", "acted-on") or just_reported):
            return []
        a = self._acct(acct)
        _trim(a.sends, t - float(self.opt(acct, "sends_window")))
        if not a.sends:
            a.sends_fired = 0  # nothing left in the window: a new run (as after a sweep)
        a.sends.append((t, msgs, rcpts, ev.ip or ""))
        m = sum(x[1] for x in a.sends)
        r = sum(x[2] for x in a.sends)
        need_r = int(self.opt(acct, "sends_recipients"))
        need_m = int(self.opt(acct, "sends_messages"))
        if r <= need_r and m <= need_m:
            a.sends_fired = 0
            return []
        size = m + r
        if a.sends_fired and size < a.sends_fired * 2:
            return []
        a.sends_fired = size
        ips = list(dict.fromkeys(x[3] for x in a.sends if x[3]))
        first = a.sends[0][0]
        summary = (f"{acct} sent {m} message(s) to {r} recipient(s) within {duration(t - first)} from {ev.ip} "
                   f"({_label(ev)}), a network already reported for this account and not familiar to it")
        evidence = {"messages": m, "recipients": r, "limit_messages": need_m, "limit_recipients": need_r,
                    "window_seconds": float(self.opt(acct, "sends_window")), "first": _ts(first),
                    "ips": ips[:20], **self._why(v, ev)}
        return [self._finding(acct, ev, first, "sends_from_reported", summary, evidence, ips, ips)]

    def _login(self, ev: Event, acct: str, v: Any, t: float) -> list[Finding]:
        out: list[Finding] = []
        fam = v.familiar
        a = self.accounts.get(acct)
        if a is not None and a.home is not None and t - a.home[0] > self._home_span(acct):
            a.home = None  # too old to judge by (what a sweep forgets)
            if self.track_changes:
                self._dirty.add(acct)
        where = place_of(self, ev)
        rules: list[tuple[str, str, dict[str, Any]]] = []  # rule, summary, evidence part
        if not fam and not v.reported and v.state != "acted-on":
            # first sighting of an unfamiliar network
            if v.cls in _HOSTED and not _hosted_user(v):
                what = "a cloud security gateway" if v.cls == "gateway" else f"a {v.cls}"
                rules.append(("unfamiliar_gateway" if v.cls == "gateway" else "unfamiliar_datacenter",
                              f"{acct} logged in from {ev.ip} ({_label(ev)}), {what} network ({v.key}) this "
                              f"account never used", {}))
            if v.country_state == "new" and not v.learning and v.cls not in _HOSTED and self._counts(acct, v):
                rules.append(("new_country",
                              f"{acct} logged in from {ev.ip} ({_label(ev)}): {v.country} is new for this account",
                              {"known_countries": _countries(v)}))
            # far from the last familiar login; while the profile learns (nothing familiar yet), a network
            # never seen before far from the account's previous place
            if (where is not None and a is not None and a.home is not None and v.country_state != "reported"
                    and v.cls not in _HOSTED and (a.home[8] or (v.learning and v.state == "new"))):
                trip = self._travel(acct, a.home, where, t, ev)
                if trip is not None:
                    rules.append(trip)
        if not fam:
            if a is None:
                a = self._acct(acct)
            d = self._distributed(acct, a, v, t, ev)
            if d is not None:
                rules.append(d)
        if a is not None and a.fails:
            g = self._guessed(acct, a, v, t, ev)
            if g is not None:
                rules.append(g)
        b = self.bans.get(ev.ip or "")
        if b is not None and 0 <= t - b[0] <= float(self.opt(acct, "ban_window")):
            rules.append(("banned" if not fam else "banned:familiar",
                          f"{acct} logged in from {ev.ip} ({_label(ev)}), which fail2ban banned {duration(t - b[0])} "
                          f"earlier (jail {b[1] or '?'})" + (" (a network familiar to the account)" if fam else ""),
                          {"banned_at": _ts(b[0]), "jail": b[1]}))
        if (where is not None and v.cls not in _HOSTED and v.state != "shared"
                and (fam or (not rules and v.learning and (a is None or a.home is None or not a.home[8])))):
            if a is None:
                a = self._acct(acct)
            elif self.track_changes:
                self._dirty.add(acct)
            a.home = (t, where[0], where[1], where[2], where[3], v.country, ev.ip or "", Seen(ev).label(), fam)
        if rules:
            out.append(self._combine(acct, ev, v, t, rules))
            if ev.kind == "message":
                out.extend(self._sent(ev, acct, v, t, 1, 0, just_reported=True))
        elif ev.kind == "message":
            out.extend(self._sent(ev, acct, v, t, 1, 0))
        return out

    def _travel(self, acct: str, home: tuple[Any, ...], where: tuple[float, float, float, bool], t: float,
                ev: Event) -> tuple[str, str, dict[str, Any]] | None:
        from ..geo import distance_km

        ht, hlat, hlon, hacc, hcoarse, hcountry, hip, hlabel, hfam = home
        dt = t - ht
        if dt < 0 or dt > float(self.opt(acct, "travel_window")):
            return None
        if not hfam and dt < 1.0:
            return None  # the same second as an unfamiliar place: which of the two came first is unknown
        lat, lon, acc, coarse = where
        is_coarse = coarse or hcoarse
        if is_coarse and hcountry == (ev.geo.country if ev.geo is not None else None):
            return None
        raw = distance_km(hlat, hlon, lat, lon)
        dist = raw - acc - hacc
        floor = float(self.opt(acct, "coarse_min_distance_km" if is_coarse else "min_distance_km"))
        if dist < floor:
            return None
        speed = dist / (max(dt, 1.0) / 3600.0)
        limit = float(self.opt(acct, "max_speed_kmh"))
        if speed <= limit:
            return None
        return ("impossible_travel",
                f"{acct}: {hlabel} ({'familiar' if hfam else 'earlier'}) then {Seen(ev).label()} (unfamiliar): "
                f"{dist:.0f} km in {duration(dt)} "
                f"({speed:.0f} km/h > {limit:.0f})",
                {"from_login": {"ts": _ts(ht), "ip": hip, "country": hcountry, "where": hlabel,
                                "familiar": hfam},
                 "distance_km": round(dist, 1), "seconds": dt, "speed_kmh": round(speed, 1), "coarse": is_coarse})

    def _distributed(self, acct: str, a: _Acct, v: Any, t: float, ev: Event) -> tuple[str, str, dict[str, Any]] | None:
        """Several unfamiliar networks or new countries within the window. A datacenter/VPN provider counts
        once however many of its addresses rotate through (a cloud app, a VPN service), and says nothing
        about where the person is (no country). While the profile learns, only networks never seen before
        count, and only once the profile is older than the window (a role mailbox's first hour is many
        networks at once)."""
        if v.state == "trusted":
            return None
        span = float(self.opt(acct, "window"))
        _trim(a.recent, t - span)
        if not a.recent:
            a.dist_fired = 0  # nothing left in the window: a new spread is a new report (as after a sweep)
        if v.learning and (v.state != "new" or v.profile is None or t - v.profile.first < span):
            return None
        hosted = v.cls in _HOSTED
        key = (v.provider or v.key) if hosted else v.key
        a.recent.append((t, key, None if hosted else v.country, ev.ip or "",
                         not hosted and v.country_state in ("new", "reported") and self._counts(acct, v)))
        nets = {x[1] for x in a.recent}
        countries = {x[2] for x in a.recent if x[4] and x[2]}
        if v.learning:
            need_n, need_c = int(self.opt(acct, "learning_networks")), int(self.opt(acct, "learning_countries"))
        else:
            need_n, need_c = int(self.opt(acct, "networks")), int(self.opt(acct, "countries"))
        size = len(nets) + len(countries)
        if len(nets) < need_n and len(countries) < need_c:
            if len(nets) <= 1:
                a.dist_fired = 0
            return None
        if a.dist_fired and size <= a.dist_fired:
            return None
        a.dist_fired = size
        first = a.recent[0][0]
        names = ", ".join(sorted(c for c in countries if c)) or "-"
        return ("distributed",
                f"{acct} logged in from {len(nets)} unfamiliar networks ({len(countries)} new countries: {names}) "
                f"within {duration(t - first)}" + (" (profile still learning)" if v.learning else ""),
                {"unfamiliar_networks": sorted(nets), "new_countries": sorted(c for c in countries if c),
                 "window_seconds": span, "limits": {"networks": need_n, "countries": need_c},
                 "logins": [{"ts": _ts(x[0]), "ip": x[3], "network": x[1], "country": x[2]}
                            for x in a.recent][-30:],
                 "_first": first, "_ips": list(dict.fromkeys(x[3] for x in a.recent))})

    def _guessed(self, acct: str, a: _Acct, v: Any, t: float, ev: Event) -> tuple[str, str, dict[str, Any]] | None:
        src = source_key(ev.ip or "", int(self.opt(acct, "prefix_v4")), int(self.opt(acct, "prefix_v6")))
        f = a.fails.get(src)
        if f is None:
            return None
        del a.fails[src]  # this run of failures is judged now
        if self.track_changes:
            self._dirty.add(acct)
        count, first, last, fast = max(f[0], f[6]), f[1], f[2], f[3]
        if t - last > float(self.opt(acct, "guess_window")) or v.state in ("familiar", "trusted"):
            return None  # e.g. a device with a stale password at home, then the new password typed in
        need = int(self.opt(acct, "guess_failures"))
        if not fast and (count < need or v.state in ("shared", "provider")):
            # slow failures from a network many of this server's accounts use (an office NAT, the big ISP of
            # the region) or from a provider the account uses count as familiar: a device with a stale
            # password; a fast run is no device
            return None
        rule = "guessed" if (fast or not v.learning) else "guessed:weak"
        how = "a fast run" if fast else "slow guessing"
        return (rule,
                f"{acct}: {count} failed logins from {src} ({how}, first {duration(t - first)} before), then a "
                f"successful {ev.service or ev.kind} login from {ev.ip} ({_label(ev)}), a network unfamiliar to "
                f"the account: the password was probably guessed",
                {"source": src, "failures": count, "fast": fast, "first_failure": _ts(first),
                 "last_failure": _ts(last), "failed_from": [{"ip": k, "failures": n} for k, n in f[5].items()],
                 "_first": first, "_ips": list(f[5])})

    def _combine(self, acct: str, ev: Event, v: Any, t: float, rules: list[tuple[str, str, dict[str, Any]]]) -> Finding:
        def level(rule: str) -> str:
            if rule == "guessed:weak" or rule == "banned:familiar":
                return "notify"
            return self.levels[rule]

        rules.sort(key=lambda r: -LEVELS[level(r[0])])
        top = rules[0][0]
        evidence: dict[str, Any] = {"rule": top.split(":")[0], "rules": [r[0].split(":")[0] for r in rules],
                                    "login": Seen(ev).brief(), **self._why(v, ev)}
        first = t
        ips = [ev.ip] if ev.ip else []
        for rule, _s, part in rules:
            part = dict(part)
            first = min(first, float(part.pop("_first", t)))
            ips += part.pop("_ips", [])
            evidence[rule.split(":")[0]] = part
        summary = rules[0][1]
        if len(rules) > 1:
            summary += f" [also: {', '.join(r[0].split(':')[0] for r in rules[1:])}]"
        ips = list(dict.fromkeys(ips))
        f = self._finding(acct, ev, first, top.split(":")[0], summary, evidence, ips, ips)
        f.level = level(top)
        return f

    def _finding(self, acct: str, ev: Event, first: float, rule: str, summary: str, evidence: dict[str, Any],
                 ips: list[str], attackers: list[str]) -> Finding:
        return Finding(self.name, acct, ev.ts, datetime.fromtimestamp(first, tz=UTC), summary, evidence, ips,
                       attackers, level=self.levels.get(rule, "notify"), rule=rule)

    def _counts(self, acct: str, v: Any) -> bool:
        """Whether the login's country can be new: not an allowlisted country, nor one of the account's
        ``extra_countries``."""
        al = self.ctx.config.allowlist
        if not v.country or v.country in al.countries:
            return False
        extra = al.extra_countries.get(acct.lower())
        return not (extra and v.country in extra)

    @staticmethod
    def _why(v: Any, ev: Event) -> dict[str, Any]:
        """Which networks were familiar, since when: the reason a level was (or was not) raised."""
        return {"network": v.to_dict(), "familiar_networks": v.familiar_networks()}


_RENTED = _HOSTED - {"gateway"}  # networks anyone can rent (a company's security gateway is no such thing)


def _hosted_user(v: Any) -> bool:
    """The account habitually logs in through datacenter/VPN networks (a VPN or cloud app user): for it, a
    new one says little by itself (a datacenter's country says nothing about where the person is). A work
    laptop behind a cloud security gateway does not make its owner one."""
    p = v.profile
    if p is None:
        return False
    from ..profiles import TAINTED, TRUSTED

    return any(n.cls in _RENTED and (n.flag == TRUSTED or (n.since and n.flag != TAINTED)) for n in p.nets.values())


def _countries(v: Any) -> list[str]:
    p = v.profile
    if p is None:
        return []
    return sorted(k for k, c in p.countries.items() if c.since)


def _trim(d: Timeline[Any], limit: float) -> None:
    d.drop_before(limit)


def _label(ev: Event) -> str:
    return ev.geo.label() if ev.geo is not None else "unknown location"


def _ts(t: float) -> str:
    return iso(datetime.fromtimestamp(t, tz=UTC))
