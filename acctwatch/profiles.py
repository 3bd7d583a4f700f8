"""Per-account familiarity profiles: what is normal for each account (an enrichment stage).

Every successful login (IMAP, POP3, ManageSieve, SMTP AUTH submission) teaches its account's profile the
*network* it came from (``acctwatch.netclass``: the ASN of an ISP or carrier, the /24 or /48 inside a
datacenter), its country and its client identity as far as the logs carry one (service and authentication
method: imap/PLAIN, submission/LOGIN, pop3/XOAUTH2; and the client names of Dovecot's ``imap_id_log`` lines,
Thunderbird, K-9 Mail: shown in evidence, never judged). A network becomes **familiar** only when
it keeps coming back: seen on ``familiar_occasions`` separate occasions at least ``occasion_gap`` apart
(a VPN exit used every day, the home DSL line, the office), and never while it was part of an incident
that was acted on (hold/lock). A network that was part of a notified incident is *reported*: it becomes
familiar only after ``reported_quarantine`` of coming back, and until then mail sent from it is suspicious.
Networks of datacenter/VPN providers are also learned per provider (its ASN), so that a commercial VPN's
rotating exits inside one provider are not new every time. ``acctwatch trust``, ``acctwatch unlock`` and
``acctwatch incidents false-positive`` make networks familiar at once (the ``feedback`` table, read by the
engine).

A profile is **learning** until it spans ``learn_period`` and holds ``learn_logins`` logins; rules that act
on a first sighting wait for a mature profile. A network familiar to ``shared_accounts`` or more accounts
is a shared service (an office NAT, a cloud mail app's datacenter addresses, a webmail): for everybody else
it is not "an unknown datacenter" either.

Before the detectors see an event, :meth:`Profiles.judge` attaches a :class:`Verdict` (``event.fam``); after
them, :meth:`Profiles.learn` updates the profile: the verdict is always about the past, never about the
event itself. Everything is in event time; profiles are saved per account, incrementally, with the log
positions (the engine's ``flush``), and forgotten after ``retention`` without logins.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .config import Config, ConfigError, parse_duration
from .netclass import HOSTED

DEFAULTS: dict[str, Any] = {
    "occasion_gap": "4h",
    "familiar_occasions": 2,
    "reported_quarantine": "3d",
    "learn_period": "3d",
    "learn_logins": 10,
    "retention": "90d",
    "shared_accounts": 5,
    "max_networks": 64,
    "max_countries": 32,
}
DURATIONS = ("occasion_gap", "reported_quarantine", "learn_period", "retention")
DAY = 86400.0
MAX_ACCOUNTS = 500_000
#: IMAP ID client names kept per account (the least recently seen is forgotten)
MAX_CLIENT_IDS = 16
#: an ID sent before login waits this long (event time) for the Login line of its session, and at most
#: this many wait at once (clients that send ID and never log in: scanners)
PENDING_ID_AGE = 600.0
MAX_PENDING_IDS = 10_000
#: the key of the profiles' own state (IDs waiting for their login) among the saved per-account rows: no
#: account is empty (the parser turns an empty user name into no account)
GLOBAL_ROW = ""

# flags of a network in a profile
NONE, REPORTED, TAINTED, TRUSTED = 0, 1, 2, 3
FLAG_NAMES = {NONE: "", REPORTED: "reported", TAINTED: "acted-on", TRUSTED: "trusted"}
FAMILIAR_STATES = frozenset({"familiar", "trusted", "provider", "shared"})


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")


def _client(ev: Any) -> str | None:
    """The client identity a login line carries: its service and authentication method (e.g. imap/PLAIN,
    submission/LOGIN, pop3/XOAUTH2); None when the line has neither."""
    method = getattr(ev, "method", None)
    service = ev.service
    if not method and not service:
        return None
    return f"{service or '?'}/{(method or '?').upper()}"


def _state(n: Net) -> str:
    """A known network's own state: trusted, acted-on, familiar, reported or seen."""
    if n.flag == TRUSTED:
        return "trusted"
    if n.flag == TAINTED:
        return "acted-on"
    if n.since:
        return "familiar"
    return "reported" if n.flag == REPORTED else "seen"


class Net:
    """One network in one account's profile."""

    __slots__ = ("cls", "count", "country", "first", "flag", "flag_t", "last", "occ", "occ_t", "provider",
                 "since")

    def __init__(self, t: float, cls: str, country: str | None, provider: str | None) -> None:
        self.first = t
        self.last = t
        self.count = 0
        self.occ = 0  # occasions (sightings at least occasion_gap apart)
        self.occ_t = -1e18  # start of the current occasion
        self.since = 0.0  # familiar since (0: not familiar)
        self.flag = NONE
        self.flag_t = 0.0
        self.cls = cls
        self.country = country
        self.provider = provider

    def row(self) -> list[Any]:
        # (times exact: a restart must judge exactly as an uninterrupted run)
        return [self.first, self.last, self.count, self.occ, self.occ_t, self.since, self.flag, self.flag_t,
                self.cls, self.country, self.provider]

    @classmethod
    def from_row(cls, r: list[Any]) -> Net:
        n = cls(float(r[0]), str(r[8]), r[9], r[10])
        n.last, n.count, n.occ, n.occ_t, n.since = float(r[1]), int(r[2]), int(r[3]), float(r[4]), float(r[5])
        n.flag, n.flag_t = int(r[6]), float(r[7])
        return n


class Profile:
    __slots__ = ("clients", "countries", "day", "day_bad", "day_sum", "first", "ids", "last", "logins", "nets",
                 "peak_day", "peak_day_t")

    def __init__(self, t: float) -> None:
        self.first = t
        self.last = t
        self.logins = 0
        self.nets: dict[str, Net] = {}
        self.countries: dict[str, Net] = {}  # the same bookkeeping, per country
        # client identities the logs carry: "service/method" (imap/PLAIN, submission/LOGIN, pop3/XOAUTH2)
        self.clients: dict[str, list[float]] = {}  # -> [first, last, count]
        # client names the IMAP ID carries (Dovecot imap_id_log; cleaned, bounded): claimed by the client,
        # evidence only -> [first, last, sessions, last version, last session]
        self.ids: dict[str, list[Any]] = {}
        # sending from familiar networks: recipients per UTC day; the peak of the *completed* days is history
        self.day = -1
        self.day_sum = 0
        self.day_bad = False  # a hold/lock incident today: today's sending is not history
        self.peak_day = 0
        self.peak_day_t = 0.0

    def row(self) -> dict[str, Any]:
        d = {"first": self.first, "last": self.last, "logins": self.logins,
             "nets": {k: n.row() for k, n in self.nets.items()},
             "countries": {k: n.row() for k, n in self.countries.items()},
             "clients": {k: [v[0], v[1], int(v[2])] for k, v in self.clients.items()},
             "send": [self.day, self.day_sum, self.peak_day, self.peak_day_t, self.day_bad]}
        if self.ids:
            d["ids"] = {k: list(v) for k, v in self.ids.items()}
        return d

    @classmethod
    def from_row(cls, d: dict[str, Any]) -> Profile:
        p = cls(float(d["first"]))
        p.last = float(d["last"])
        p.logins = int(d["logins"])
        p.nets = {k: Net.from_row(v) for k, v in d.get("nets", {}).items()}
        p.countries = {k: Net.from_row(v) for k, v in d.get("countries", {}).items()}
        p.clients = {k: [float(v[0]), float(v[1]), float(v[2])] for k, v in d.get("clients", {}).items()}
        p.ids = {str(k): [float(v[0]), float(v[1]), int(v[2]), v[3], v[4]] for k, v in d.get("ids", {}).items()}
        s = d.get("send") or [-1, 0, 0, 0, False]
        p.day, p.day_sum, p.peak_day, p.peak_day_t = int(s[0]), int(s[1]), int(s[2]), float(s[3])
        p.day_bad = bool(s[4]) if len(s) > 4 else False
        return p


class Verdict:
    """How an event's network and country look to its account's profile, before the event is learned.

    ``state``: ``trusted`` (an operator said so), ``familiar`` (kept coming back), ``provider`` (another
    network of the same datacenter/VPN provider is familiar), ``shared`` (familiar to many accounts: an
    office NAT, a cloud mail app), ``seen`` (seen before, not yet familiar), ``reported`` (part of a notified
    incident, not familiar), ``acted-on`` (part of a held/locked incident), ``new`` (never seen).
    """

    __slots__ = ("client", "client_name", "client_name_state", "client_state", "cls", "country", "country_state",
                 "key", "learning", "net", "profile", "provider", "reported", "since", "source", "state")

    def __init__(self, key: str, cls: str, provider: str | None, source: str, country: str | None,
                 state: str, since: float, reported: bool, country_state: str, learning: bool,
                 profile: Profile | None, net: Net | None) -> None:
        self.key = key
        self.cls = cls
        self.provider = provider
        self.source = source
        self.country = country
        self.state = state
        self.since = since
        self.reported = reported
        self.country_state = country_state
        self.learning = learning
        self.profile = profile
        self.net = net
        self.client: str | None = None
        self.client_state = "none"
        #: the client name of the IMAP ID its session sent before login (Dovecot imap_id_log), if any
        self.client_name: str | None = None
        self.client_name_state = "none"

    @property
    def familiar(self) -> bool:
        return self.state in FAMILIAR_STATES

    def to_dict(self) -> dict[str, Any]:
        p = self.profile
        d: dict[str, Any] = {"network": self.key, "class": self.cls, "provider": self.provider,
                             "class_source": self.source, "state": self.state,
                             "familiar_since": _iso(self.since) if self.since else None,
                             "country": self.country, "country_state": self.country_state,
                             "profile": "learning" if self.learning else "mature"}
        if self.reported:
            d["reported"] = True
        if self.client:
            d["client"] = self.client
            d["client_state"] = self.client_state
        if self.client_name:
            d["client_name"] = self.client_name
            d["client_name_state"] = self.client_name_state
        if p is not None:
            d["profile_since"] = _iso(p.first)
            d["profile_logins"] = p.logins
        return d

    def familiar_networks(self, limit: int = 6) -> list[dict[str, Any]]:
        """The account's familiar networks, most used first (for evidence)."""
        p = self.profile
        if p is None:
            return []
        fam = [(k, n) for k, n in p.nets.items() if n.since and n.flag != TAINTED]
        fam.sort(key=lambda kv: (-kv[1].count, kv[0]))
        return [{"network": k, "class": n.cls, "country": n.country, "since": _iso(n.since), "logins": n.count,
                 **({"trusted": True} if n.flag == TRUSTED else {})} for k, n in fam[:limit]]


class Profiles:
    """All accounts' profiles, the shared-network index and the classifier that names networks."""

    def __init__(self, options: dict[str, Any] | None = None, classifier: Any = None,
                 where: str = "[familiarity]") -> None:
        opts = dict(options or {})
        unknown = set(opts) - set(DEFAULTS) - {"enabled"}
        if unknown:
            import difflib

            bad = sorted(unknown)[0]
            close = difflib.get_close_matches(bad, list(DEFAULTS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(DEFAULTS))}"
            raise ConfigError(f"{where}: unknown key '{bad}'{hint}")
        self.enabled = bool(opts.pop("enabled", True))
        o = {**DEFAULTS, **opts}
        for k in DURATIONS:
            o[k] = parse_duration(o[k], f"{where} {k}")
        for k in ("familiar_occasions", "learn_logins", "shared_accounts", "max_networks", "max_countries"):
            v = o[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if k != "learn_logins" else 0):
                raise ConfigError(f"{where} {k}: expected a whole number >= 1, got {v!r}")
        self.gap = float(o["occasion_gap"])
        self.need = int(o["familiar_occasions"])
        self.quarantine = float(o["reported_quarantine"])
        self.learn_period = float(o["learn_period"])
        self.learn_logins = int(o["learn_logins"])
        self.retention = float(o["retention"])
        self.shared_min = int(o["shared_accounts"])
        self.max_nets = int(o["max_networks"])
        self.max_countries = int(o["max_countries"])
        self.options = o
        if classifier is None:
            from .netclass import NetworkClassifier

            classifier = NetworkClassifier()
        self.classifier = classifier
        self.accounts: dict[str, Profile] = {}
        self.shared: dict[str, int] = {}  # network key -> accounts it is familiar to
        self.track_changes = True
        self._dirty: set[str] = set()
        #: IMAP IDs sent before login, waiting for the Login of their session: session -> [t, ip, name, version]
        self.pending_ids: dict[str, list[Any]] = {}
        self._pending_dirty = False
        self.now = 0.0
        self._swept = -1

    @classmethod
    def from_config(cls, config: Config, classifier: Any = None) -> Profiles:
        if classifier is None:
            from .netclass import NetworkClassifier

            classifier = NetworkClassifier.from_config(config)
        return cls(config.familiarity, classifier)

    # -- judging (before the detectors) ----------------------------------------------------------
    def judge(self, ev: Any) -> Verdict:
        info = self.classifier.classify(ev.ip, ev.geo)
        key = info.key
        g = ev.geo
        country = g.country if g is not None and not g.internal else None
        p = self.accounts.get(ev.account.lower() if ev.account else "")
        if p is None:
            v = Verdict(key, info.cls, info.provider, info.source, country, self._unknown(None, key, info),
                        0.0, False, "new", True, None, None)
            if self.pending_ids:
                self._judge_name(v, None, ev)
            return v
        n = p.nets.get(key)
        reported = False
        since = 0.0
        if n is None:
            state = self._unknown(p, key, info)
        else:
            since = n.since
            state = _state(n)
            reported = state == "reported"
            if state == "seen":
                state = self._unknown(p, key, info, "seen")
        if country is None:
            cstate = "none"
        else:
            c = p.countries.get(country)
            if c is None:
                cstate = "new"
            elif c.flag == TRUSTED or (c.since and c.flag != TAINTED):
                cstate = "familiar"
            elif c.flag in (REPORTED, TAINTED):
                cstate = "reported"
            else:
                cstate = "seen"
        learning = (p.last - p.first < self.learn_period) or p.logins < self.learn_logins
        v = Verdict(key, info.cls, info.provider, info.source, country, state, since,
                    reported or state == "reported", cstate, learning, p, n)
        client = _client(ev)
        if client is not None:
            v.client = client
            c = p.clients.get(client)
            v.client_state = "new" if c is None else ("familiar" if c[2] >= self.need else "seen")
        if self.pending_ids:
            self._judge_name(v, p, ev)
        return v

    def _judge_name(self, v: Verdict, p: Profile | None, ev: Any) -> None:
        """The client name the login's session sent in an IMAP ID before login, and whether the account's
        profile knows it (evidence only)."""
        pend = self._pending_for(ev)
        if pend is None:
            return
        v.client_name = pend[2]
        e = p.ids.get(pend[2]) if p is not None else None
        v.client_name_state = "new" if e is None else ("familiar" if e[2] >= self.need else "seen")

    def _pending_for(self, ev: Any) -> list[Any] | None:
        """The IMAP ID sent before login in *ev*'s session from *ev*'s address (a login line), if any."""
        session = getattr(ev, "session", None)
        if not session or ev.kind != "login":
            return None
        pend = self.pending_ids.get(session)
        if pend is None or (pend[1] is not None and pend[1] != ev.ip):
            return None  # (a session id seen from another address: not this connection)
        if pend[0] < ev.t - PENDING_ID_AGE:
            return None  # (too old: forgotten at the next learning step)
        return pend

    def _unknown(self, p: Profile | None, key: str, info: Any, default: str = "new") -> str:
        """State of a network this profile does not know as familiar: a shared service, another network of
        a familiar datacenter/VPN provider, or just new."""
        if info.cls == "internal":
            return "familiar"
        if self.shared.get(key, 0) >= self.shared_min:
            return "shared"
        if p is not None and info.provider and info.cls in HOSTED:
            # a datacenter/VPN provider this account keeps using (a commercial VPN's exits rotate inside it)
            prov = p.nets.get(info.provider)
            if prov is not None and prov.cls == info.cls:
                if prov.flag == TRUSTED or (prov.since and prov.flag != TAINTED):
                    return "provider"
                if prov.flag in (REPORTED, TAINTED):
                    return "reported"  # another network of a provider already reported for this account
        return default

    # -- learning (after the detectors) ----------------------------------------------------------
    def learn(self, ev: Any, verdict: Verdict | None) -> None:
        """Learn a successful login of ``ev.account`` from ``ev.ip``."""
        if verdict is None or verdict.cls == "internal":
            return
        t = ev.t
        if t > self.now:
            self.now = t
            if int(t // DAY) != self._swept:
                self._sweep(t)
        acct = ev.account.lower()
        p = self.accounts.get(acct)
        if p is None:
            if len(self.accounts) >= MAX_ACCOUNTS:
                self._evict()
            p = self.accounts[acct] = Profile(t)
        p.logins += 1
        if t > p.last:
            p.last = t
        n = p.nets.get(verdict.key)
        if n is None:
            n = p.nets[verdict.key] = Net(t, verdict.cls, verdict.country, verdict.provider)
            if len(p.nets) > self.max_nets:
                self._drop_oldest(p.nets, verdict.key, count_shared=True)
        elif n.cls == "unknown" and verdict.cls != "unknown":  # trusted by an operator before it was seen
            n.cls, n.country, n.provider = verdict.cls, n.country or verdict.country, n.provider or verdict.provider
        self._see(n, t, verdict.key, count_shared=True)
        prov = verdict.provider
        if prov and verdict.cls in HOSTED and prov != verdict.key:
            # the provider too, so that another network of a datacenter/VPN provider in use is not "new"
            pn = p.nets.get(prov)
            if pn is None:
                pn = p.nets[prov] = Net(t, verdict.cls, verdict.country, prov)
            self._see(pn, t, prov, count_shared=True)
        client = _client(ev)
        if client is not None:
            cl = p.clients.get(client)
            if cl is None:
                if len(p.clients) >= 16:  # bounded: forget the least recently used
                    del p.clients[min(p.clients, key=lambda k: p.clients[k][1])]
                cl = p.clients[client] = [t, t, 0.0]
            cl[1] = max(cl[1], t)
            cl[2] += 1
        if verdict.country:
            c = p.countries.get(verdict.country)
            if c is None:
                c = p.countries[verdict.country] = Net(t, "country", verdict.country, None)
                if len(p.countries) > self.max_countries:
                    self._drop_oldest(p.countries, verdict.country, count_shared=False)
            self._see(c, t, verdict.country, count_shared=False)
        if self.track_changes:
            self._dirty.add(acct)

    def learn_client_id(self, ev: Any) -> None:
        """Dovecot's ``imap_id_log``: the client name an IMAP ID claims, recorded in its account's profile.

        An ID sent after login (``client_id`` event with the account, from the mail process prefix) goes to
        that account; one sent before login (no account: the line has the address and the session) waits
        for the Login of the same session from the same address (``ev`` a ``login`` event), at most
        ``PENDING_ID_AGE`` of event time. A name is counted once per session (both IDs of one connection
        are one). Only an existing profile records it: an ID never creates a profile nor changes its
        logins, times or networks (what the rules judge), and it is never judged itself."""
        t = ev.t
        pend = self.pending_ids
        if pend:
            self._expire_pending(t)
        if ev.kind == "login":
            hit = self._pending_for(ev)
            if hit is None:
                return
            del pend[ev.session]
            if self.track_changes:
                self._pending_dirty = True
            if ev.account:
                self._record_id(ev.account, hit[2], hit[3], ev.session, t)
            return
        name = getattr(ev, "name", None)
        if name is None:
            return
        if ev.account:
            self._record_id(ev.account, name, ev.version, ev.session, t)
        elif ev.session:
            pend.pop(ev.session, None)  # (re-inserted: the dict stays in time order)
            pend[ev.session] = [t, ev.ip, name, ev.version]
            if len(pend) > MAX_PENDING_IDS:
                del pend[next(iter(pend))]
            if self.track_changes:
                self._pending_dirty = True

    def _expire_pending(self, t: float) -> None:
        pend = self.pending_ids
        limit = t - PENDING_ID_AGE
        while pend:
            first = next(iter(pend))
            if pend[first][0] >= limit:
                break
            del pend[first]
            if self.track_changes:
                self._pending_dirty = True

    def _record_id(self, account: str, name: str, version: str | None, session: str | None, t: float) -> None:
        acct = account.lower()
        p = self.accounts.get(acct)
        if p is None:
            return
        e = p.ids.get(name)
        if e is None:
            if len(p.ids) >= MAX_CLIENT_IDS:  # bounded: forget the least recently seen
                del p.ids[min(p.ids, key=lambda k: p.ids[k][1])]
            e = p.ids[name] = [t, t, 0, None, None]
        if session is None or e[4] != session:
            e[2] += 1
        if t > e[1]:
            e[1] = t
        if version is not None:
            e[3] = version
        e[4] = session
        if self.track_changes:
            self._dirty.add(acct)

    def _see(self, n: Net, t: float, key: str, count_shared: bool) -> None:
        n.count += 1
        if t > n.last:
            n.last = t
        if t - n.occ_t >= self.gap:
            n.occ += 1
            n.occ_t = t
        if n.since or n.flag == TAINTED:
            return
        if n.occ >= self.need and (n.flag != REPORTED or t - n.flag_t >= self.quarantine):
            n.since = t
            if count_shared:
                self.shared[key] = self.shared.get(key, 0) + 1

    def _drop_oldest(self, table: dict[str, Net], keep: str, count_shared: bool) -> None:
        victims = [(n.flag == TRUSTED, n.last, k) for k, n in table.items() if k != keep]
        if not victims:
            return
        _, _, k = min(victims)
        self._forget(table, k, count_shared)

    def _forget(self, table: dict[str, Net], key: str, count_shared: bool) -> None:
        n = table.pop(key)
        if count_shared and n.since and n.flag != TAINTED:
            left = self.shared.get(key, 0) - 1
            if left > 0:
                self.shared[key] = left
            else:
                self.shared.pop(key, None)

    def learn_sent(self, ev: Any, verdict: Verdict | None, recipients: int) -> None:
        """Recipients the account sent: its own sending history (the busiest day, within the retention).
        Mail from acted-on networks, from reported ones once the profile is mature, and days with a hold/lock
        incident from a network not the owner's, are not history."""
        if verdict is None or recipients <= 0 or verdict.state == "acted-on" or (
                verdict.state == "reported" and not verdict.learning):
            return
        acct = ev.account.lower()
        p = self.accounts.get(acct)
        if p is None:
            return
        t = ev.t
        self._roll(p, t)
        p.day_sum += recipients
        if self.track_changes:
            self._dirty.add(acct)

    def _roll(self, p: Profile, t: float) -> None:
        day = int(t // DAY)
        if day == p.day:
            return
        if p.day >= 0 and not p.day_bad and (p.day_sum >= p.peak_day or t - p.peak_day_t > self.retention):
            p.peak_day, p.peak_day_t = p.day_sum, p.day * DAY
        elif p.peak_day and t - p.peak_day_t > self.retention:
            p.peak_day, p.peak_day_t = 0, 0.0
        p.day, p.day_sum, p.day_bad = day, 0, False

    @staticmethod
    def sending_peak(p: Profile | None, t: float) -> int:
        """The most recipients this account sent in one day from familiar networks, before today."""
        if p is None:
            return 0
        peak = p.peak_day
        if 0 <= p.day < int(t // DAY) and not p.day_bad:
            peak = max(peak, p.day_sum)
        return peak

    # -- incidents and operators -----------------------------------------------------------------
    def mark(self, account: str | None, ips: Iterable[str], level: str, ts: datetime, geo: Any = None) -> None:
        """Networks presumed the attacker's in an incident: reported (notify) or acted on (hold/lock).

        Networks already familiar or trusted stay so (a big ISP is the owner's and the attacker's). A
        profile that is still learning knows too little to condemn a network for good: a hold/lock there
        only reports it (familiar again after the quarantine); an operator's unlock or trust settles it."""
        if account is None:
            return
        acct = account.lower()
        p = self.accounts.get(acct)
        t = ts.timestamp()
        acted = level in ("hold", "lock")
        if p is not None and acted and (p.last - p.first < self.learn_period or p.logins < self.learn_logins):
            level = "notify"
            acted = False  # (nor is today's sending struck from the history of a profile still learning)
        for ip in ips:
            info = self.classifier.classify(ip, geo.lookup(ip) if geo is not None else None)
            if info.cls == "internal":
                continue
            if p is None:
                p = self.accounts[acct] = Profile(t)
            n = p.nets.get(info.key)
            if n is None:
                g = geo.lookup(ip) if geo is not None else None
                n = p.nets[info.key] = Net(t, info.cls, getattr(g, "country", None), info.provider)
            if n.flag == TRUSTED or n.since:
                continue
            if acted:  # a held/locked run from a network not the owner's is not sending history
                self._roll(p, t)
                p.day_bad = True
            if level in ("hold", "lock"):
                n.flag, n.flag_t = TAINTED, t
            elif n.flag == NONE:
                n.flag, n.flag_t = REPORTED, t
            prov = info.provider
            if prov and info.cls in HOSTED and prov != info.key:
                pn = p.nets.get(prov)
                if pn is None:
                    pn = p.nets[prov] = Net(t, info.cls, n.country, prov)
                if pn.flag != TRUSTED and not pn.since:
                    pn.flag, pn.flag_t = (TAINTED if level in ("hold", "lock") else max(pn.flag, REPORTED)), t
            if n.country:
                c = p.countries.get(n.country)
                if c is not None and not c.since and c.flag in (NONE, REPORTED):
                    c.flag, c.flag_t = (TAINTED if level in ("hold", "lock") else REPORTED), t
            if self.track_changes:
                self._dirty.add(acct)

    def _unshare(self, key: str) -> None:
        left = self.shared.get(key, 0) - 1
        if left > 0:
            self.shared[key] = left
        else:
            self.shared.pop(key, None)

    def network_key(self, value: str, geo: Any = None) -> str | None:
        """A network key from what an operator typed: an IP (classified), a CIDR, or a key ("AS3320")."""
        v = value.strip()
        if v.upper().startswith("AS") and v[2:].isdigit():
            return f"AS{int(v[2:])}"
        try:
            addr = ipaddress.ip_address(v)
        except ValueError:
            pass
        else:
            return str(self.classifier.classify(str(addr), geo.lookup(str(addr)) if geo is not None else None).key)
        try:
            return str(ipaddress.ip_network(v, strict=False))
        except ValueError:
            return None

    def trust(self, account: str, key: str, ts: datetime, untrust: bool = False) -> None:
        """An operator's word: *key* is (or, with *untrust*, is not) a network of *account*'s owner."""
        acct = account.lower()
        t = ts.timestamp()
        p = self.accounts.get(acct)
        if p is None:
            p = self.accounts[acct] = Profile(t)
        n = p.nets.get(key)
        if n is None:
            if untrust:
                return
            # (not seen yet: an AS number is taken for an ISP, a prefix for an address block of any class)
            n = p.nets[key] = Net(t, "eyeball" if key.startswith("AS") else "unknown", None,
                                  key if key.startswith("AS") else None)
        was = bool(n.since) and n.flag != TAINTED
        if untrust:
            n.flag, n.flag_t = TAINTED, t
            if was:
                n.since = 0.0
                self._unshare(key)
        else:
            n.flag, n.flag_t = TRUSTED, t
            if not n.since:
                n.since = t
            if not was:
                self.shared[key] = self.shared.get(key, 0) + 1
            if n.country and n.country in p.countries:
                c = p.countries[n.country]
                c.flag = TRUSTED
                c.since = c.since or t
        if self.track_changes:
            self._dirty.add(acct)

    # -- retention and persistence ---------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        """Once per day of event time: forget networks and accounts unseen for longer than the retention
        (counted from the start of the day, so that the first login of a day gives the same cut whenever
        it comes: sweeping again that day, e.g. after a restart, forgets nothing more)."""
        day = int(now // DAY)
        self._swept = day
        limit = day * DAY - self.retention
        track = self.track_changes
        for acct in list(self.accounts):
            p = self.accounts[acct]
            if p.last < limit:
                for k in list(p.nets):
                    self._forget(p.nets, k, True)
                del self.accounts[acct]
                if track:
                    self._dirty.add(acct)
                continue
            old = [k for k, n in p.nets.items() if n.last < limit]
            for k in old:
                self._forget(p.nets, k, True)
            gone = [k for k, n in p.countries.items() if n.last < limit]
            for k in gone:
                del p.countries[k]
            if (old or gone) and track:
                self._dirty.add(acct)

    def _evict(self) -> None:
        keep = sorted(self.accounts.items(), key=lambda kv: -kv[1].last)[: MAX_ACCOUNTS * 3 // 4]
        gone = set(self.accounts) - {k for k, _ in keep}
        for acct in gone:
            p = self.accounts[acct]
            for k in list(p.nets):
                self._forget(p.nets, k, True)
            del self.accounts[acct]
        if self.track_changes:
            self._dirty |= gone

    def export_changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for acct in self._dirty:
            if acct == GLOBAL_ROW:
                continue
            p = self.accounts.get(acct)
            out[acct] = None if p is None else p.row()
        if self._pending_dirty or GLOBAL_ROW in self._dirty:
            out[GLOBAL_ROW] = ({"pending_ids": [[k, *v] for k, v in self.pending_ids.items()]}
                               if self.pending_ids else None)
            self._pending_dirty = False
        self._dirty.clear()
        return out

    def import_rows(self, rows: dict[str, Any]) -> None:
        for acct, d in sorted(rows.items()):
            if not isinstance(d, dict):
                continue
            if acct == GLOBAL_ROW:
                self.pending_ids = {str(r[0]): [float(r[1]), r[2], r[3], r[4]] for r in d.get("pending_ids", [])}
                continue
            p = Profile.from_row(d)
            self.accounts[acct] = p
            self.now = max(self.now, p.last)
            for k, n in p.nets.items():
                if n.since and n.flag != TAINTED:
                    self.shared[k] = self.shared.get(k, 0) + 1

    def view(self, account: str) -> dict[str, Any] | None:
        """What ``acctwatch profile ACCOUNT`` shows."""
        p = self.accounts.get(account.lower())
        if p is None:
            return None
        learning = (p.last - p.first < self.learn_period) or p.logins < self.learn_logins

        def entry(k: str, n: Net, shared: bool) -> dict[str, Any]:
            d = {"key": k, "class": n.cls, "state": _state(n), "first_seen": _iso(n.first), "last_seen": _iso(n.last),
                 "logins": n.count, "occasions": n.occ, "familiar_since": _iso(n.since) if n.since else None}
            if n.country and n.cls != "country":
                d["country"] = n.country
            if n.provider:
                d["provider"] = n.provider
                if n.provider == k and n.cls in HOSTED:
                    d["whole_provider"] = True  # (the datacenter/VPN provider as a whole: its ASN)
            if n.flag == REPORTED:
                d["reported_at"] = _iso(n.flag_t)
            if shared:
                d["shared_by_accounts"] = self.shared.get(k, 0)
            return d

        nets = sorted(p.nets.items(), key=lambda kv: (-kv[1].count, kv[0]))
        countries = sorted(p.countries.items(), key=lambda kv: (-kv[1].count, kv[0]))
        return {"account": account.lower(), "state": "learning" if learning else "mature",
                "first_seen": _iso(p.first), "last_seen": _iso(p.last), "logins": p.logins,
                "networks": [entry(k, n, True) for k, n in nets],
                "countries": [entry(k, n, False) for k, n in countries],
                "clients": [{"client": k, "first_seen": _iso(v[0]), "last_seen": _iso(v[1]), "logins": int(v[2])}
                            for k, v in sorted(p.clients.items(), key=lambda kv: -kv[1][2])],
                "client_names": [{"name": k, "version": v[3], "first_seen": _iso(v[0]), "last_seen": _iso(v[1]),
                                  "sessions": int(v[2])}
                                 for k, v in sorted(p.ids.items(), key=lambda kv: (-kv[1][2], kv[0]))],
                "sending_peak_recipients_per_day": self.sending_peak(p, self.now or p.last)}
