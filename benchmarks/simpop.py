"""A seeded, deterministic multi-day mail population: Postfix + Dovecot logs with a ground truth.

``python3 -m benchmarks.simpop [--accounts 3000] [--days 14] [--seed 1] [--out DIR]`` writes
``DIR/mail-week1.log``, ``DIR/mail-week2.log`` (one file per 7 days, rsyslog RFC3339 lines in UTC, in time
order) and ``DIR/truth.json``. Same arguments, same bytes.

Who is simulated (see benchmarks/README.md for the full description):

* every account has one *category*: ``normal`` (most), or a hard negative: ``vpn_fixed``,
  ``vpn_commercial``, ``cloud_app``, ``traveller``, ``office_nat``, ``stale_device``, ``shared_mailbox``,
  ``newsletter``, ``isp_change``, ``new_device``;
* an account is used by one person (several for a shared mailbox) with a home country (70 % DE), a home
  ISP whose address changes with its lease, a mobile carrier, maybe an office; a phone and/or a computer
  poll IMAP/POP3 every 10-120 min while the person is awake and the device in use, from the network the
  person is on (home, office, out = mobile), and a few messages a day are submitted;
* attacks happen only in the scoring period (day 8 on; the first week is clean history): ``botnet``,
  ``quiet_reader``, ``travel_spam``, ``bruteforce_fast``, ``bruteforce_slow``, ``dc_same_country``,
  ``resproxy_in_country``, ``low_slow_spam``, ``vpn_user_compromise``, ``traveller_compromise``;
* background noise every real server has: password-guessing bots against names that do not exist, and
  password sprays over real account names that never succeed.

Client addresses are real public addresses taken from the embedded GeoIP databases (acctwatch/data), so
acctwatch maps them to the intended country and ASN: a catalogue of /24 blocks per ASN and country is
built once from the databases (about 2 s) and cached next to geo.py's unpacked databases.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import ipaddress
import json
import math
import os
import random
import socket
import string
import struct
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    from benchmarks.gen_log import queue_id
except ModuleNotFoundError:  # run as a script from benchmarks/
    from gen_log import queue_id  # type: ignore[no-redef]

DOMAIN = "example.org"
MX = "mx"
LIP = "192.0.2.1"
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday; no daylight-saving change in the next weeks
T0 = START.timestamp()
DAY = 86400.0
HOUR = 3600.0
MIN = 60.0

# ------------------------------------------------------------------------------------------ networks
#: fixed-line eyeball ISPs per country (ASN)
EYEBALL: dict[str, tuple[int, ...]] = {
    "DE": (3320, 3209, 6805, 8881, 8422), "FR": (3215, 12322, 15557, 5410), "NL": (1136, 33915),
    "AT": (8447, 6830), "CH": (3303, 6730), "IT": (3269, 12874, 30722), "ES": (3352, 12479, 12430),
    "PL": (5617, 12741), "GB": (2856, 5089, 5607), "US": (7922, 20115, 7018, 701), "BE": (5432,),
    "SE": (3301, 1257), "NO": (2119,), "PT": (3243,), "GR": (6799,), "TR": (9121,),
    "TH": (7470, 23969, 45758), "JP": (4713, 2516),
    # where most botnet and proxy traffic comes from
    "BR": (28573, 18881), "IN": (9829, 24560, 55836), "VN": (7552, 45899), "CN": (4134, 4837),
    "ID": (7713,), "RU": (12389,), "EG": (8452,), "AR": (7303,), "MX": (8151,), "PK": (17557,),
    "PH": (9299,), "KR": (4766,), "NG": (29465,),
}
#: mobile carriers per country (in Europe mostly the same ASNs as the incumbents' fixed lines)
MOBILE: dict[str, tuple[int, ...]] = {
    "DE": (3320, 3209, 6805), "FR": (3215, 15557, 5410, 12322), "NL": (50266, 1136, 33915),
    "AT": (8412, 8447), "CH": (3303, 6730), "IT": (30722, 3269), "ES": (12430, 12479, 3352),
    "PL": (12912, 5617), "GB": (25135, 2856), "US": (21928, 22394), "PT": (3243,), "GR": (6799,),
    "TR": (9121,), "TH": (7470,), "JP": (2516,), "BE": (5432,), "SE": (3301,), "NO": (2119,),
}
#: business lines (offices), where they differ from EYEBALL
BUSINESS: dict[str, tuple[int, ...]] = {"DE": (3320, 3209, 8881, 20676, 8422)}
#: datacenters / clouds
HOSTING = (24940, 16276, 16509, 14618, 14061, 8075, 15169, 396982, 63949, 20473, 51167, 8560, 197540, 6724,
           45102, 132203, 60781, 28753, 12876)
#: hosters most commercial VPN exits are in
VPN = (9009, 60068, 147049, 62240, 21859, 39351, 3258)
#: cloud security proxies companies route their laptops through
SECURITY_PROXIES = (62044, 22616, 53813, 55256)  # Zscaler CH/US, Netskope
#: vendors whose servers fetch mail for users' apps: Outlook mobile (IMAP), Gmail's fetcher (POP3)
CLOUD_APPS = ((8075, "imap", ("US", "IE", "NL", "GB")), (15169, "pop3", ("US",)))

#: home countries of the population (weights)
HOMES = {"DE": 70, "AT": 5, "FR": 4, "NL": 4, "CH": 3, "GB": 3, "US": 3, "IT": 3, "ES": 3, "PL": 2}
#: UTC offset of local time in November (hours)
TZ = {"DE": 1, "AT": 1, "FR": 1, "NL": 1, "CH": 1, "IT": 1, "ES": 1, "PL": 1, "BE": 1, "SE": 1, "NO": 1,
      "GB": 0, "PT": 0, "GR": 2, "TR": 3, "TH": 7, "JP": 9, "US": -5}
#: where travellers go
DESTINATIONS = ("US", "ES", "IT", "GR", "PT", "TR", "TH", "JP", "GB", "FR", "AT", "NL", "CH", "DE", "SE")
#: where botnets' and far-away attackers' eyeball addresses are
BOT_COUNTRIES = ("BR", "IN", "VN", "CN", "ID", "RU", "EG", "AR", "MX", "PK", "PH", "KR", "NG", "TR", "TH", "US")
#: neighbours (a colleague of a shared mailbox may live across a border)
NEIGHBOURS = {"DE": ("AT", "CH", "NL", "FR", "PL"), "AT": ("DE", "CH", "IT"), "FR": ("DE", "BE", "ES", "CH"),
              "NL": ("DE", "BE"), "CH": ("DE", "AT", "FR", "IT"), "GB": ("FR", "NL"), "US": ("GB",),
              "IT": ("AT", "CH", "FR"), "ES": ("FR", "PT"), "PL": ("DE",)}

CATEGORY_SHARE = {  # fraction of accounts; the rest is "normal"
    "vpn_fixed": 0.03, "vpn_commercial": 0.03, "cloud_app": 0.04, "traveller": 0.04, "office_nat": 0.04,
    "stale_device": 0.03, "shared_mailbox": 0.02, "newsletter": 0.02, "isp_change": 0.03, "new_device": 0.03,
}
CATEGORIES = ("normal", *CATEGORY_SHARE)
ATTACKS = ("botnet", "quiet_reader", "travel_spam", "bruteforce_fast", "bruteforce_slow", "dc_same_country",
           "resproxy_in_country", "low_slow_spam", "vpn_user_compromise", "traveller_compromise")

CATALOGUE_VERSION = 1


# ----------------------------------------------------------------------------------------- catalogue
def _cache_dir() -> Path:
    for d in (os.environ.get("ACCTWATCH_CACHE_DIR"),
              os.environ.get("XDG_CACHE_HOME") and os.path.join(os.environ["XDG_CACHE_HOME"], "acctwatch"),
              os.environ.get("HOME") and os.path.join(os.environ["HOME"], ".cache", "acctwatch")):
        if d:
            try:
                Path(d).mkdir(parents=True, exist_ok=True)
                if os.access(d, os.W_OK):
                    return Path(d)
            except OSError:
                pass
    return Path(tempfile.gettempdir())


def _wanted_asns() -> list[int]:
    asns = {a for t in (*EYEBALL.values(), *MOBILE.values(), *BUSINESS.values()) for a in t}
    asns.update(HOSTING, VPN, SECURITY_PROXIES, (a for a, _, _ in CLOUD_APPS))
    return sorted(asns)


def load_catalogue() -> dict[int, dict[str, Any]]:
    """{asn: {"org": str, "blocks": {country: ["a.b.c.0/24", ...]}}} from the embedded databases, cached."""
    from acctwatch.geo import DATA_DIR, EMBEDDED_FILES

    h = hashlib.sha256(f"{CATALOGUE_VERSION} {_wanted_asns()}".encode())
    for name in EMBEDDED_FILES:
        h.update((DATA_DIR / name).read_bytes())
    path = _cache_dir() / f"simpop-catalogue-{h.hexdigest()[:16]}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = _build_catalogue()
        fd, tmp = tempfile.mkstemp(prefix=".simpop-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
        os.replace(tmp, path)
    return {int(a): v for a, v in data.items()}


def _build_catalogue(per_asn_networks: int = 300, per_network: int = 3, per_country: int = 200) -> dict[str, Any]:
    """Walk the IPv4 part of the ASN database; sample /24 blocks of the wanted ASNs; keep those whose first
    and last address the country database puts in the same country (and the ASN database in the same AS)."""
    import logging

    from acctwatch.geo import GeoResolver

    logging.getLogger("acctwatch.geo").setLevel(logging.ERROR)  # "embedded database" is what we want here
    geo = GeoResolver.open()
    asn_db = next(d for d in geo.databases if d.kind == "ASN")._raw  # the raw maxminddb readers: fast
    cc_db = next(d for d in geo.databases if d.kind == "Country")._raw
    wanted = set(_wanted_asns())
    nets: dict[int, list[tuple[int, int]]] = {}
    org: dict[int, str] = {}
    ip, end = 1 << 24, 0xE0000000
    while ip < end:
        rec, plen = asn_db.get_with_prefix_len(socket.inet_ntoa(struct.pack("!I", ip)))
        size = 1 << (32 - plen)
        base = ip & ~(size - 1)
        if rec and rec.get("autonomous_system_number") in wanted:
            a = rec["autonomous_system_number"]
            nets.setdefault(a, []).append((base, plen))
            org.setdefault(a, rec.get("autonomous_system_organization") or "")
        ip = base + size

    def ntoa(n: int) -> str:
        return socket.inet_ntoa(struct.pack("!I", n))

    out: dict[str, Any] = {}
    for a in sorted(nets):
        ns = nets[a]
        step = max(1, len(ns) // per_asn_networks)
        blocks: dict[str, list[str]] = {}
        for base, plen in ns[::step]:
            if plen > 29:
                continue
            if plen >= 24:
                cands = [(base, plen)]
            else:
                n24 = 1 << (24 - plen)
                cands = [(base + (i * (n24 - 1) // max(1, per_network - 1)) * 256, 24)
                         for i in range(min(per_network, n24))]
            for b, bl in dict.fromkeys(cands):
                ends = (ntoa(b + 1), ntoa(b + (1 << (32 - bl)) - 2))
                ccs = {_country(cc_db.get(ip)) for ip in ends}
                if len(ccs) != 1 or None in ccs or any(_asn(asn_db.get(ip)) != a for ip in ends):
                    continue
                blocks.setdefault(ccs.pop(), []).append(f"{ntoa(b)}/{bl}")  # type: ignore[arg-type]
        for cc, bs in blocks.items():
            if len(bs) > per_country:
                blocks[cc] = [bs[i * len(bs) // per_country] for i in range(per_country)]
        if blocks:
            out[str(a)] = {"org": org[a], "blocks": dict(sorted(blocks.items()))}
    geo.close()
    return out


def _country(rec: Any) -> str | None:
    """The country of a raw GeoIP2-layout record, as acctwatch.geo reads it (registered country if none)."""
    if not isinstance(rec, dict):
        return None
    return (rec.get("country") or {}).get("iso_code") or (rec.get("registered_country") or {}).get("iso_code")


def _asn(rec: Any) -> int | None:
    return rec.get("autonomous_system_number") if isinstance(rec, dict) else None


@dataclass
class Net:
    """Address blocks of one ASN in one country (a home ISP's regional pool, a carrier, a hoster...)."""

    asn: int
    cc: str
    blocks: list[tuple[int, int]]  # (first address, size)

    def pick(self, h: int) -> str:
        base, size = self.blocks[h % len(self.blocks)]
        return str(ipaddress.IPv4Address(base + 1 + (h >> 24) % (size - 2)))


class Catalogue:
    def __init__(self, data: dict[int, dict[str, Any]]) -> None:
        self.data = data

    def has(self, asn: int, cc: str) -> bool:
        return cc in self.data.get(asn, {}).get("blocks", {})

    def countries(self, asn: int) -> list[str]:
        return list(self.data.get(asn, {}).get("blocks", {}))

    def net(self, r: random.Random, asn: int, cc: str, nblocks: int | None = None) -> Net:
        """*nblocks* random blocks of *asn* in *cc* (all of them with None)."""
        raw = self.data[asn]["blocks"][cc]
        chosen = raw if nblocks is None or nblocks >= len(raw) else r.sample(raw, nblocks)
        blocks = []
        for b in chosen:
            n = ipaddress.IPv4Network(b)
            blocks.append((int(n.network_address), n.num_addresses))
        return Net(asn, cc, blocks)

    def pick_net(self, r: random.Random, asns: tuple[int, ...], cc: str, nblocks: int | None = None) -> Net:
        have = [a for a in asns if self.has(a, cc)]
        return self.net(r, r.choice(have), cc, nblocks)

    def hosting_in(self, cc: str, asns: tuple[int, ...] = HOSTING + VPN) -> list[int]:
        return [a for a in asns if self.has(a, cc)]

    def ip(self, r: random.Random, asn: int, cc: str) -> str:
        return self.net(r, asn, cc, 1).pick(r.getrandbits(40))


# -------------------------------------------------------------------------------------------- people
@dataclass
class Device:
    kind: str  # phone, computer, tablet, cloud
    proto: str  # imap, pop3
    interval: float  # minutes between polls while in use
    since: float = 0.0  # first used (ts)
    via: str | None = None  # "vpn" (fixed exit), "vpn_rotating", "proxy" (a company's cloud proxy), None
    usage: str = "regular"  # light, regular, heavy (how much the device is used)


@dataclass
class Trip:
    dest: str
    depart: float  # ts leaving home (airport)
    arrive: float  # ts landed
    back_depart: float
    back_arrive: float
    hotels: list[tuple[float, str]]  # (from ts, hotel IP)
    local_sim: Net | None  # None: the phone roams through the home carrier (home-routed: home country IP)


@dataclass
class Person:
    id: str
    cc: str
    tz: float
    activity: str  # light, regular, heavy
    home: list[tuple[float, Net, float]]  # (from ts, ISP pool, lease length s): several after a move
    carrier: list[tuple[float, Net]]
    office: list[tuple[float, str | None]] = field(default_factory=lambda: [(0.0, None)])
    devices: list[Device] = field(default_factory=list)
    phone_wifi: bool = True  # phone uses home wifi
    phone_office_wifi: bool = False
    sends: float = 1.5  # messages per day
    partner: tuple[float, Net] | None = None  # new_device "tablet at the partner's": (from ts, ISP pool)


@dataclass
class Account:
    name: str
    category: str
    cc: str
    persons: list[Person]
    stale: list[tuple[float, float, int]] = field(default_factory=list)  # (from, to, device index of person 0)
    trips: list[Trip] = field(default_factory=list)
    vpn_ip: str | None = None
    vpn_exits: list[tuple[float, str]] = field(default_factory=list)
    proxy_ips: list[str] = field(default_factory=list)  # new_device "work laptop": the proxy's exits
    newsletter: tuple[int, float, int] | None = None  # (first day index, local hour, recipients)
    notes: dict[str, Any] = field(default_factory=dict)


def at(series: list[tuple[Any, ...]], ts: float) -> tuple[Any, ...]:
    """The entry of a (from ts, ...) series in effect at *ts*."""
    cur = series[0]
    for e in series[1:]:
        if e[0] <= ts:
            cur = e
    return cur


def iso(ts: float) -> str:
    return datetime.fromtimestamp(round(ts), UTC).isoformat().replace("+00:00", "Z")


# -------------------------------------------------------------------------------------------- output
class Sink:
    """Lines bucketed by UTC day; a day is sorted and written once nothing can be added to it any more."""

    def __init__(self, out: Path, days: int) -> None:
        self.out = out
        self.days = days
        self.buckets: dict[int, list[tuple[float, int, str]]] = {}
        self.seq = 0
        self.lines: dict[str, int] = {}
        self.files: dict[int, Any] = {}
        self._sec = -1
        self._prefix = ""

    def emit(self, t: float, msg: str) -> None:
        b = int((t - T0) // DAY)
        if 0 <= b < self.days:
            self.seq += 1
            self.buckets.setdefault(b, []).append((t, self.seq, msg))

    def flush(self, upto: int) -> None:
        """Write every day before *upto*."""
        for b in sorted(k for k in self.buckets if k < upto):
            week = b // 7 + 1
            name = f"mail-week{week}.log"
            f = self.files.get(week)
            if f is None:
                f = self.files[week] = open(self.out / name, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            rows = self.buckets.pop(b)
            rows.sort()
            buf = []
            for t, _, msg in rows:
                us = round(t * 1e6)
                sec, frac = divmod(us, 1_000_000)
                if sec != self._sec:
                    self._sec = sec
                    self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
                buf.append(f"{self._prefix}.{frac:06d}+00:00 {MX} {msg}\n")
            f.write("".join(buf))
            self.lines[name] = self.lines.get(name, 0) + len(rows)

    def close(self) -> None:
        self.flush(self.days + 1)
        for f in self.files.values():
            f.close()


# ----------------------------------------------------------------------------------------- simulator
class Sim:
    def __init__(self, accounts: int, days: int, seed: int, out: Path, instances: int | None = None) -> None:
        if days < 8:
            raise ValueError("need at least 8 days: week 1 is the clean history, attacks start on day 8")
        self.n, self.days, self.seed = accounts, days, seed
        self.cat = Catalogue(load_catalogue())
        self.sink = Sink(out, days)
        self.r = random.Random(f"{seed}/population")
        self.period = (T0 + 7 * DAY, T0 + days * DAY)
        self.instances = instances if instances is not None else max(1, min(5, accounts // 100))
        self.qn = 0
        self.pidn = 1000
        self.accounts: list[Account] = []
        self.attacks: list[dict[str, Any]] = []
        #: vendor ASN -> (protocol, {country: a dozen server addresses shared by all the vendor's users})
        self.cloud_pools = {asn: (proto, {cc: [self.cat.ip(self.r, asn, cc) for _ in range(12)]
                                          for cc in ccs if self.cat.has(asn, cc)})
                            for asn, proto, ccs in CLOUD_APPS}

    # -- small helpers ----------------------------------------------------------------------------
    def h(self, *parts: object) -> int:
        return _hash(self.seed, "/".join(map(str, parts)))

    def qid(self) -> str:
        self.qn += 1
        return queue_id(self.qn)

    def pid(self) -> int:
        self.pidn = 1000 + (self.pidn * 31 + 7) % 60000
        return self.pidn

    def host(self, ip: str) -> str:
        """A PTR-style client name for most addresses, ``unknown`` for the rest (whoever uses them)."""
        return "unknown" if self.h("ptr", ip) % 10 < 3 else f"ip-{ip.replace('.', '-')}.example.net"

    def weighted(self, r: random.Random, table: dict[str, int]) -> str:
        return r.choices(list(table), weights=list(table.values()))[0]

    # -- log lines ---------------------------------------------------------------------------------
    def login(self, r: random.Random, t: float, user: str, ip: str, proto: str = "imap", big: bool = False) -> None:
        sess = "".join(r.choices(_SESS, k=16))
        mpid = self.pid()
        e = self.sink.emit
        e(t, f"dovecot: {proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={LIP}, mpid={mpid}, "
             f"TLS, session=<{sess}>")
        dur = r.uniform(2, 40) if proto == "pop3" else r.uniform(5, 1800)
        out = r.randint(200_000, 40_000_000) if big else r.randint(500, 90_000)
        if proto == "pop3":
            e(t + dur, f"dovecot: pop3({user})<{mpid}><{sess}>: Disconnected: Logged out top=0/0, "
                       f"retr={r.randint(0, 4)}/{out}, del=0/{r.randint(0, 4)}, size={out}")
        else:
            e(t + dur, f"dovecot: imap({user})<{mpid}><{sess}>: Logged out in={r.randint(50, 900)} out={out} "
                       "deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0")

    def login_fail(self, r: random.Random, t: float, user: str, ip: str, proto: str = "imap") -> None:
        sess = "".join(r.choices(_SESS, k=16))
        e = self.sink.emit
        e(t, f"dovecot: auth: passwd-file({user},{ip},<{sess}>): Password mismatch")
        e(t + r.uniform(1.5, 3), f"dovecot: {proto}-login: Disconnected (auth failed, 1 attempts in 2 secs): "
                                 f"user=<{user}>, method=PLAIN, rip={ip}, lip={LIP}, TLS, session=<{sess}>")

    def smtp_fail(self, r: random.Random, t: float, user: str, ip: str, exists: bool = True) -> None:
        pid, host = self.pid(), self.host(ip)
        sp = f"postfix/submission/smtpd[{pid}]"
        e = self.sink.emit
        e(t, f"{sp}: connect from {host}[{ip}]")
        e(t + 0.9, f"dovecot: auth: passwd-file({user},{ip}): {'Password mismatch' if exists else 'unknown user'}")
        e(t + 1.0, f"{sp}: warning: {host}[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, "
                   f"sasl_username={user}")
        e(t + 1.2, f"{sp}: disconnect from {host}[{ip}] ehlo=1 auth=0/1 rset=1 quit=1 commands=3/4")

    def submit(self, r: random.Random, t: float, user: str, ip: str, nrcpt: int, bounce: float = 0.0,
               defer: float = 0.0, spam: bool = False) -> None:
        pid, q, host = self.pid(), self.qid(), self.host(ip)
        sp = f"postfix/submission/smtpd[{pid}]"
        e = self.sink.emit
        e(t, f"{sp}: connect from {host}[{ip}]")
        e(t + 0.3, f"{sp}: {q}: client={host}[{ip}], sasl_method=PLAIN, sasl_username={user}")
        e(t + 0.35, f"postfix/cleanup[{pid + 1}]: {q}: message-id=<{q.lower()}.{r.getrandbits(32):08x}@{DOMAIN}>")
        e(t + 0.4, f"postfix/qmgr[900]: {q}: from=<{user}>, size={r.randint(2000, 9000 if spam else 400_000)}, "
                   f"nrcpt={nrcpt} (queue active)")
        e(t + 0.45, f"{sp}: disconnect from {host}[{ip}] ehlo=2 starttls=1 auth=1 mail=1 rcpt={nrcpt} data=1 "
                    f"quit=1 commands={6 + nrcpt}")
        te = t + 0.5
        domains = _SPAM_DOMAINS if spam else _DOMAINS
        for _ in range(nrcpt):
            te += r.uniform(0.02, 0.4)
            rc = f"{r.choice(_LOCALS)}{r.randint(1, 9999)}@{r.choice(domains)}"
            mx = f"mx{r.randint(1, 9)}.{rc.split('@')[1]}"
            x = r.random()
            if x < bounce:
                e(te, f"postfix/smtp[{pid + 2}]: {q}: to=<{rc}>, relay={mx}[{_mx_ip(rc)}]:25, delay=1.2, "
                      f"delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host {mx}[{_mx_ip(rc)}] said: 550 5.1.1 "
                      f"<{rc}>: Recipient address rejected: User unknown (in reply to RCPT TO command))")
            elif x < bounce + defer:
                e(te, f"postfix/smtp[{pid + 2}]: {q}: to=<{rc}>, relay={mx}[{_mx_ip(rc)}]:25, delay=2.1, "
                      f"delays=0.1/0/0.5/1.5, dsn=4.7.1, status=deferred (host {mx}[{_mx_ip(rc)}] said: 450 4.7.1 "
                      "Service unavailable, try again later (in reply to RCPT TO command))")
            else:
                e(te, f"postfix/smtp[{pid + 2}]: {q}: to=<{rc}>, relay={mx}[{_mx_ip(rc)}]:25, delay=0.9, "
                      f"delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "
                      f"{r.getrandbits(40):010X})")
        if bounce + defer < 0.05 or r.random() < 0.5:
            e(te + 0.01, f"postfix/qmgr[900]: {q}: removed")

    # -- population --------------------------------------------------------------------------------
    def person(self, r: random.Random, pid: str, cc: str, office: str | None = None,
               activity: str | None = None) -> Person:
        act = activity or r.choices(("light", "regular", "heavy"), weights=(35, 45, 20))[0]
        lease = r.choices((DAY, 7 * DAY, 60 * DAY), weights=(30, 20, 50))[0]
        home = self.cat.pick_net(r, EYEBALL[cc], cc, nblocks=r.randint(2, 6))
        carrier = self.cat.pick_net(r, MOBILE[cc], cc, nblocks=r.randint(8, 20))
        tz = TZ[cc] if cc != "US" else r.choice((-5, -5, -6, -8))
        p = Person(pid, cc, tz, act, [(0.0, home, lease)], [(0.0, carrier)], [(0.0, office)],
                   phone_wifi=r.random() < 0.85, phone_office_wifi=r.random() < 0.4,
                   sends={"light": 0.3, "regular": 1.2, "heavy": 3.0}[act])
        shape = r.choices(("both", "phone", "computer"), weights=(55, 30, 15))[0]
        if shape in ("both", "phone"):
            p.devices.append(Device("phone", "imap", _interval(r, "phone", act), usage=act))
        if shape in ("both", "computer"):
            p.devices.append(Device("computer", "pop3" if r.random() < 0.15 else "imap",
                                    _interval(r, "computer", act), usage=act))
        return p

    def office_ip(self, r: random.Random, cc: str) -> str:
        return self.cat.pick_net(r, BUSINESS.get(cc, EYEBALL[cc]), cc, 1).pick(r.getrandbits(40))

    def build_population(self) -> None:
        r = self.r
        n = self.n
        counts = {c: max(1, round(n * s)) for c, s in CATEGORY_SHARE.items()}
        cats = [c for c, k in counts.items() for _ in range(k)]
        cats += ["normal"] * (n - len(cats))
        r.shuffle(cats)
        small_offices: dict[str, list[list[Any]]] = {}  # cc -> [[ip, free seats]]
        big_offices: list[tuple[str, str]] = []
        nat_total, nat_seen = counts["office_nat"], 0
        per_office = math.ceil(nat_total / max(1, round(nat_total / 30)))  # offices of about 30
        for i, cat in enumerate(cats):
            name = f"user{i + 1:04d}@{DOMAIN}"
            ar = random.Random(f"{self.seed}/plan/{name}")
            cc = self.weighted(ar, HOMES)
            office = None
            if cat == "office_nat":
                if nat_seen % per_office == 0:
                    big_offices.append(("DE", self.office_ip(ar, "DE")))
                nat_seen += 1
                cc, office = big_offices[-1]
            elif ar.random() < 0.45 and cat not in ("vpn_fixed",):
                offs = small_offices.setdefault(cc, [])
                free = [o for o in offs if o[1] > 0]
                if free and ar.random() < 0.6:
                    o = ar.choice(free)
                else:
                    o = [self.office_ip(ar, cc), ar.randint(0, 5)]
                    offs.append(o)
                o[1] -= 1
                office = o[0]
            p = self.person(ar, name, cc, office, ar.choice(("regular", "heavy")) if cat == "office_nat" else None)
            acct = Account(name, cat, cc, [p])
            getattr(self, f"plan_{cat}", lambda a, r: None)(acct, ar)
            self.accounts.append(acct)

    # category plans: what makes each hard negative hard
    def scoring_day(self, r: random.Random) -> int:
        return r.randrange(7, self.days)

    def plan_vpn_fixed(self, a: Account, r: random.Random) -> None:
        p = a.persons[0]
        cc = r.choice([c for c in ("NL", "CH", "SE", "US", "GB", "DE", "FR") if c != a.cc])
        asn = r.choice(self.cat.hosting_in(cc, (*VPN, 60781, 16276, 14061, 24940, 16509)))
        a.vpn_ip = self.cat.ip(r, asn, cc)
        p.devices = [d for d in p.devices if d.kind == "phone"] or [Device("phone", "imap", 60)]
        p.devices.append(Device("computer", "imap", r.choice((15, 20, 30, 45)), via="vpn", usage="heavy"))
        p.office = [(0.0, None)]
        a.notes = {"vpn_exit": a.vpn_ip, "vpn_country": cc, "vpn_asn": asn}

    def plan_vpn_commercial(self, a: Account, r: random.Random) -> None:
        p = a.persons[0]
        providers = r.sample(VPN[:5], r.randint(2, 4))
        ccs = r.sample(["NL", "CH", "SE", "US", "GB", "DE", "FR", "AT", "ES", "IT", "PL", "JP", "SG", "CA"],
                       r.randint(3, 6))
        mean = r.choice((4 * HOUR, 12 * HOUR, DAY, 2 * DAY))
        t = T0 - DAY
        while t < T0 + (self.days + 1) * DAY:
            options = [(asn, cc) for asn in providers for cc in ccs if self.cat.has(asn, cc)] or \
                      [(asn, cc) for asn in VPN for cc in self.cat.countries(asn)][:20]
            asn, cc = r.choice(options)
            a.vpn_exits.append((t, self.cat.ip(r, asn, cc)))
            t += r.expovariate(1 / mean)
        for d in p.devices:
            d.via = "vpn_rotating" if d.kind == "computer" or r.random() < 0.5 else None
        if not any(d.via for d in p.devices):
            p.devices[0].via = "vpn_rotating"
        a.notes = {"providers": providers, "countries": ccs, "mean_exit_hours": mean / HOUR}

    def plan_cloud_app(self, a: Account, r: random.Random) -> None:
        p = a.persons[0]
        asn = 8075 if r.random() < 0.75 else 15169
        proto = self.cloud_pools[asn][0]
        p.devices = [d for d in p.devices if d.kind != "phone"]
        p.devices.append(Device("cloud", proto, r.choice((20, 30, 45, 60)) if asn == 8075 else r.choice((30, 60))))
        regions = sorted(self.cloud_pools[asn][1])
        a.notes = {"vendor_asn": asn, "vendor_countries": r.sample(regions, min(len(regions), r.randint(1, 2)))}

    def plan_traveller(self, a: Account, r: random.Random) -> None:
        a.trips.append(self.make_trip(a, r, r.randrange(4, self.days - 1)))  # abroad in the scoring period
        if r.random() < 0.3 and a.trips[0].depart > T0 + 5 * DAY:
            a.trips.insert(0, self.make_trip(a, r, r.randint(0, 2), short=True))
        a.notes = {"trips": [{"dest": t.dest, "depart": iso(t.depart), "arrive": iso(t.arrive),
                              "back_depart": iso(t.back_depart), "back_arrive": iso(t.back_arrive),
                              "phone": "local_sim" if t.local_sim else "roaming_home_carrier"} for t in a.trips]}

    def make_trip(self, a: Account, r: random.Random, day: int, short: bool = False) -> Trip:
        from acctwatch.geo import country_centroid, distance_km

        p = a.persons[0]
        dest = r.choice([d for d in DESTINATIONS if d != a.cc])
        c1, c2 = country_centroid(a.cc), country_centroid(dest)
        km = distance_km(*c1, *c2) if c1 and c2 else 2000
        flight = (1.5 + km / 800) * HOUR
        depart = T0 + day * DAY + (r.uniform(6, 19) - p.tz) * HOUR
        arrive = depart + 2 * HOUR + flight  # 2 h at the airport, phone in flight mode from boarding
        stay = r.uniform(2, 3) if short else r.uniform(3, 8)
        back_depart = arrive + stay * DAY
        back_arrive = back_depart + 2 * HOUR + flight
        hotels = [(arrive, self.cat.ip(r, r.choice([x for x in EYEBALL[dest] if self.cat.has(x, dest)]), dest))]
        if stay > 4 and r.random() < 0.5:
            hotels.append((arrive + r.uniform(2, stay - 1) * DAY,
                           self.cat.ip(r, r.choice([x for x in EYEBALL[dest] if self.cat.has(x, dest)]), dest)))
        sim = None
        if r.random() < 0.3 and dest in MOBILE:
            sim = self.cat.pick_net(r, MOBILE[dest], dest, nblocks=8)
        return Trip(dest, depart, arrive, back_depart, back_arrive, hotels, sim)

    def plan_stale_device(self, a: Account, r: random.Random) -> None:
        p = a.persons[0]
        for day in sorted({self.scoring_day(r)} | ({r.randrange(1, 7)} if r.random() < 0.4 else set())):
            start = T0 + day * DAY + (r.uniform(7, 20) - p.tz) * HOUR
            a.stale.append((start, start + r.uniform(2, 30) * HOUR, r.randrange(len(p.devices))))
        a.notes = {"stale": [{"from": iso(s), "to": iso(e), "device": p.devices[d].kind} for s, e, d in a.stale]}

    def plan_shared_mailbox(self, a: Account, r: random.Random) -> None:
        k = r.randint(3, 6)
        abroad = r.random() < 0.3
        a.persons = [a.persons[0]] + [
            self.person(r, f"{a.name}#{j}", r.choice(NEIGHBOURS[a.cc]) if abroad and j == k - 1 else a.cc,
                        activity=r.choice(("light", "regular")))
            for j in range(1, k)]
        for p in a.persons[1:]:
            if r.random() < 0.5:
                p.office = [(0.0, self.office_ip(r, p.cc))]
        a.notes = {"users": k, "countries": sorted({p.cc for p in a.persons})}

    def plan_newsletter(self, a: Account, r: random.Random) -> None:
        a.newsletter = (r.randrange(0, min(7, self.days - 7)), r.uniform(9, 20), r.randint(800, 3000))
        a.notes = {"weekday": a.newsletter[0] % 7, "recipients": a.newsletter[2]}

    def plan_isp_change(self, a: Account, r: random.Random) -> None:
        p = a.persons[0]
        t = T0 + self.scoring_day(r) * DAY + (r.uniform(9, 18) - p.tz) * HOUR
        old = p.home[0][1]
        others = [x for x in EYEBALL[p.cc] if x != old.asn and self.cat.has(x, p.cc)] or [old.asn]
        p.home.append((t, self.cat.net(r, r.choice(others), p.cc, r.randint(2, 6)), r.choice((DAY, 60 * DAY))))
        a.notes = {"moved": iso(t), "from_asn": old.asn, "to_asn": p.home[1][1].asn}

    def plan_new_device(self, a: Account, r: random.Random) -> None:
        p = a.persons[0]
        t = T0 + self.scoring_day(r) * DAY + (r.uniform(9, 20) - p.tz) * HOUR
        kind = r.choice(("tablet_at_partner", "carrier_switch", "new_job", "work_laptop_via_proxy"))
        if kind == "tablet_at_partner":
            p.partner = (t, self.cat.pick_net(r, EYEBALL[p.cc], p.cc, 2))
            p.devices.append(Device("tablet", "imap", r.choice((20, 30, 60)), since=t))
        elif kind == "carrier_switch":
            old = p.carrier[0][1].asn
            others = [x for x in MOBILE[p.cc] if x != old and self.cat.has(x, p.cc)] or [old]
            p.carrier.append((t, self.cat.net(r, r.choice(others), p.cc, 12)))
            if not any(d.kind == "phone" for d in p.devices):
                p.devices.append(Device("phone", "imap", 30, since=t))
        elif kind == "new_job":
            p.office.append((t, self.office_ip(r, p.cc)))
            if not any(d.kind == "computer" for d in p.devices):
                p.devices.append(Device("computer", "imap", 15, since=t))
        else:  # the company's laptop reaches the internet through its cloud proxy's nearest nodes
            opts = [(x, c) for x in SECURITY_PROXIES for c in (p.cc, *NEIGHBOURS.get(p.cc, ())) if self.cat.has(x, c)]
            asn, cc = r.choice(opts)
            nodes = [c for c in (cc, *NEIGHBOURS.get(p.cc, ())) if self.cat.has(asn, c)][:2]
            a.proxy_ips = [self.cat.ip(r, asn, r.choice(nodes)) for _ in range(r.randint(2, 6))]
            p.devices.append(Device("computer", "imap", r.choice((10, 15, 30)), since=t, via="proxy"))
        a.notes = {"change": kind, "at": iso(t), **({"proxy_ips": a.proxy_ips} if a.proxy_ips else {})}

    # -- where is a person, which address does a device use ----------------------------------------
    def home_ip(self, p: Person, ts: float) -> str:
        t_from, net, lease = at(p.home, ts)
        idx = int((ts - T0 + self.h(p.id, "phase") % int(lease)) // lease)
        return net.pick(self.h(p.id, "home", t_from, idx))

    def mobile_ip(self, p: Person, ts: float) -> str:
        t_from, net = at(p.carrier, ts)
        return net.pick(self.h(p.id, "mobile", t_from, int(ts // (2 * HOUR))))

    def address(self, a: Account, p: Person, dev: Device, ts: float, ctx: str, trip: Trip | None) -> str:
        if dev.via == "vpn":
            return a.vpn_ip or ""
        if dev.via == "proxy":
            return a.proxy_ips[self.h(a.name, "proxy", int(ts // HOUR)) % len(a.proxy_ips)]
        if dev.via == "vpn_rotating" and (dev.kind == "computer" or ctx != "home"):
            i = bisect.bisect_right(a.vpn_exits, (ts, "\uffff")) - 1
            return a.vpn_exits[max(i, 0)][1]
        if dev.kind == "tablet" and p.partner is not None:
            return p.partner[1].pick(self.h(p.id, "partner", int(ts // (7 * DAY))))
        if trip is not None:
            if ctx == "hotel" and (dev.kind != "phone" or p.phone_wifi):
                return at(trip.hotels, ts)[1]
            if trip.local_sim is not None:
                return trip.local_sim.pick(self.h(p.id, "sim", int(ts // (2 * HOUR))))
            return self.mobile_ip(p, ts)  # roaming: home-routed through the home carrier
        office = at(p.office, ts)[1]
        if ctx == "office" and office and (dev.kind != "phone" or p.phone_office_wifi):
            return office
        if ctx == "home" and (dev.kind != "phone" or p.phone_wifi):
            return self.home_ip(p, ts)
        return self.mobile_ip(p, ts)

    def schedule(self, r: random.Random, p: Person, k: int, abroad: bool) -> tuple[float, float, list]:
        """(wake, sleep, [(from h, to h, ctx)]) for local day *k*; later entries override earlier ones."""
        weekend = k % 7 >= 5
        wake = r.uniform(7.5, 10) if weekend or abroad else r.uniform(5.5, 8)
        sleep = r.uniform(22, 24.5)
        if abroad:
            segs = [(0, 30, "hotel"), (r.uniform(wake + 0.5, 11), r.uniform(17, 21), "out")]
            return wake, sleep, segs
        segs = [(0, 30, "home")]
        office = at(p.office, T0 + k * DAY + 12 * HOUR)[1]
        if office and not weekend and r.random() > 0.06:  # sick, holiday, home office
            leave = wake + r.uniform(0.4, 1.2)
            arrive = leave + r.uniform(0.2, 0.8)
            off = arrive + r.uniform(7.5, 9.5)
            segs += [(leave, arrive, "out"), (arrive, off, "office"), (off, off + r.uniform(0.2, 0.8), "out")]
        for _ in range(r.choice((0, 1, 1, 2, 3) if weekend else (0, 0, 1, 1, 2))):
            s = r.uniform(wake + 1, max(wake + 1.5, sleep - 2))
            segs.append((s, s + r.uniform(0.5, 3), "out"))
        return wake, sleep, segs

    # -- one day of one account ----------------------------------------------------------------------
    def account_day(self, a: Account, k: int) -> None:
        trip = next((t for t in a.trips if t.depart - DAY < T0 + (k + 1) * DAY and t.back_arrive + DAY > T0 + k * DAY),
                    None)
        for p in a.persons:
            self.person_day(a, p, k, None, trip)
            if trip is not None and p is a.persons[0]:
                self.person_day(a, p, k, trip, trip)

    def person_day(self, a: Account, p: Person, k: int, abroad: Trip | None, trip: Trip | None) -> None:
        """Polls and submissions of person *p* on local day *k*; with *abroad*, the day at the destination."""
        r = random.Random(f"{self.seed}/{p.id}/{k}/{'abroad' if abroad else 'home'}")
        tz = TZ.get(abroad.dest, 0) if abroad else p.tz
        base = T0 + k * DAY - tz * HOUR
        wake, sleep, segs = self.schedule(r, p, k, abroad is not None)
        traveller = p is a.persons[0] and trip is not None

        def keep(ts: float) -> bool:
            if abroad is not None:
                return abroad.arrive <= ts < abroad.back_depart
            if traveller:
                return not any(t.depart <= ts < t.back_arrive for t in a.trips)
            return True

        def ctx_at(h: float) -> str:
            ts = base + h * HOUR
            if traveller and abroad is None and any(t.depart - 2 * HOUR <= ts < t.depart for t in a.trips):
                return "out"  # on the way to the airport
            c = "home"
            for s, e, what in segs:
                if s <= h < e:
                    c = what
            return c

        active: list[tuple[float, Device, str]] = []
        for di, dev in enumerate(p.devices):
            if dev.since > base + DAY:
                continue
            for h in self.device_times(r, p, dev, wake, sleep, segs, k):
                ts = base + h * HOUR
                if ts < dev.since or not keep(ts):
                    continue
                ctx = ctx_at(h)
                if dev.kind == "computer" and ctx == "out" and dev.via is None:
                    continue
                ip = self.cloud_ip(r, a) if dev.kind == "cloud" else self.address(a, p, dev, ts, ctx, abroad)
                if self.stale_at(a, p, di, ts):
                    self.login_fail(r, ts, a.name, ip, dev.proto)
                    continue
                if r.random() < 0.004:  # a typo now and then
                    self.login_fail(r, ts - r.uniform(5, 30), a.name, ip, dev.proto)
                self.login(r, ts, a.name, ip, dev.proto)
                if dev.kind != "cloud" or dev.proto == "imap":
                    active.append((ts, dev, ip))
        if p is a.persons[0] and abroad is None:
            self.stale_retries(r, a, p, base, wake, sleep, ctx_at, keep)
        for _ in range(_poisson(r, p.sends * (0.5 if k % 7 >= 5 else 1.0))):
            if not active:
                break
            ts, dev, ip = r.choice(active)
            self.submit(r, ts + r.uniform(20, 900), a.name, ip, _nrcpt(r), bounce=0.01)
        nl = a.newsletter
        if nl and p is a.persons[0] and abroad is None and k >= nl[0] and (k - nl[0]) % 7 == 0:
            self.newsletter(r, a, p, base, a.newsletter[1], a.newsletter[2], ctx_at)

    def device_times(self, r: random.Random, p: Person, dev: Device, wake: float, sleep: float, segs: list,
                     k: int) -> list[float]:
        """Local hours at which *dev* logs in on this day."""
        if dev.kind == "cloud":  # the vendor's servers sync around the clock
            return _polls(r, r.uniform(0, 0.3), 24, dev.interval)
        if dev.kind in ("phone", "tablet"):
            if dev.usage == "light":  # opens the mail app now and then
                return sorted(r.uniform(wake, sleep) for _ in range(r.randint(2, 8)))
            if dev.kind == "tablet":
                return _polls(r, r.uniform(18, 20), sleep, dev.interval) if r.random() < 0.6 else []
            # background fetch is opportunistic (Doze, low-power mode): only some of the slots happen
            return [h for h in _polls(r, wake, sleep, dev.interval) if r.random() < 0.4]
        # computer: the office day, or a few hours at home
        if dev.via in ("vpn", "proxy") and k % 7 < 5:  # the work laptop's day (home office or not)
            return _polls(r, wake + r.uniform(0.5, 1.5), r.uniform(17, 19), dev.interval) + (
                _polls(r, r.uniform(20, 21), sleep - 0.5, dev.interval) if r.random() < 0.4 else [])
        out: list[float] = []
        for s, e, what in segs:
            if what == "office":
                out += _polls(r, s + 0.1, e - 0.1, dev.interval)
        p_home = {"light": 0.25, "regular": 0.5, "heavy": 0.7}[dev.usage]
        if r.random() < p_home:
            s = r.uniform(max(wake, 17.0) if out else wake + 0.5, max(wake + 1, sleep - 1))
            out += _polls(r, s, min(sleep, s + r.uniform(0.5, 3)), dev.interval)
        return out

    def cloud_ip(self, r: random.Random, a: Account) -> str:
        pools = self.cloud_pools[int(a.notes["vendor_asn"])][1]
        return r.choice(pools[r.choice(a.notes["vendor_countries"])])

    def stale_at(self, a: Account, p: Person, di: int, ts: float) -> tuple[float, float, int] | None:
        if p is not a.persons[0]:
            return None
        return next((e for e in a.stale if e[2] == di and e[0] <= ts < e[1]), None)

    def stale_retries(self, r: random.Random, a: Account, p: Person, base: float, wake: float, sleep: float,
                      ctx_at: Any, keep: Any) -> None:
        """The device with the old password retries every few minutes while its owner is awake; after the
        user types the new one it logs in again."""
        for s, e, di in a.stale:
            dev = p.devices[di]
            retry = r.uniform(2, 10)
            h = max(wake, (s - base) / HOUR)
            while h < min(sleep, (e - base) / HOUR):
                ts = base + h * HOUR
                if keep(ts) and (dev.kind != "computer" or ctx_at(h) != "out"):
                    ip = self.address(a, p, dev, ts, ctx_at(h), None)
                    self.login_fail(r, ts, a.name, ip, dev.proto)
                h += retry / 60 * r.uniform(0.8, 1.2)
            if base <= e < base + DAY:
                h = (e - base) / HOUR
                self.login(r, e, a.name, self.address(a, p, dev, e, ctx_at(h), None), dev.proto)

    def newsletter(self, r: random.Random, a: Account, p: Person, base: float, hour: float, rcpts: int,
                   ctx_at: Any) -> None:
        ts = base + hour * HOUR
        dev = next((d for d in p.devices if d.kind == "computer"), p.devices[0])
        ip = self.address(a, p, dev, ts, ctx_at(hour), None)
        self.login(r, ts - r.uniform(30, 300), a.name, ip, dev.proto)
        left = rcpts
        gap = 3000 / max(1, rcpts / r.randint(50, 200))  # the whole list within an hour
        while left > 0:
            n = min(left, r.randint(50, 200))
            self.submit(r, ts, a.name, ip, n, bounce=r.uniform(0.01, 0.05), defer=r.uniform(0.0, 0.02))
            left -= n
            ts += gap * r.uniform(0.5, 1.2)

    # -- background noise ------------------------------------------------------------------------
    def noise_day(self, k: int) -> None:
        r = random.Random(f"{self.seed}/noise/{k}")
        d0 = T0 + k * DAY
        names = ("admin", "info", "test", "sales", "office", "support", "webmaster", "contact", "mail", "user",
                 f"admin@{DOMAIN}", f"info@{DOMAIN}", f"office@{DOMAIN}", f"kontakt@{DOMAIN}")
        for _ in range(r.randint(2, 4)):  # fast dictionary bots: names that do not exist
            ip = self.bot_ip(r)
            self.guessing_bots.add(ip)  # (a per-IP report about one of these is a true one)
            t = d0 + r.uniform(0, DAY - 2 * HOUR)
            for _ in range(r.randint(40, 200)):
                self.smtp_fail(r, t, r.choice(names), ip, exists=False)
                t += r.uniform(3, 25)
        for _ in range(r.randint(5, 10)):  # slow ones
            ip = self.bot_ip(r)
            t = d0 + r.uniform(0, DAY / 2)
            for _ in range(r.randint(3, 12)):
                self.smtp_fail(r, t, r.choice(names), ip, exists=False)
                t += r.uniform(10 * MIN, 90 * MIN)
        for _ in range(r.randint(0, 2)):  # a password spray over real names: one try per account, never right
            ip = self.bot_ip(r)
            t = d0 + r.uniform(0, DAY - 3 * HOUR)
            for a in r.sample(self.accounts, min(len(self.accounts), r.randint(10, 40))):
                self.smtp_fail(r, t, a.name, ip)
                t += r.uniform(20, 200)

    def bot_ip(self, r: random.Random, countries: tuple[str, ...] = BOT_COUNTRIES) -> str:
        cc = r.choice(countries)
        if r.random() < 0.3:
            hs = self.cat.hosting_in(cc, HOSTING)
            if hs:
                return self.cat.ip(r, r.choice(hs), cc)
        return self.cat.ip(r, r.choice([a for a in EYEBALL[cc] if self.cat.has(a, cc)]), cc)

    # -- attacks -----------------------------------------------------------------------------------
    def plan_attacks(self) -> None:
        r = random.Random(f"{self.seed}/attacks")
        used: set[str] = set()

        def victims(cats: tuple[str, ...], n: int, ok: Any = None) -> list[Account]:
            pool = [a for a in self.accounts if a.category in cats and a.name not in used and (ok is None or ok(a))]
            chosen = r.sample(pool, min(n, len(pool)))
            used.update(a.name for a in chosen)
            return chosen

        for kind in ATTACKS:
            if kind == "vpn_user_compromise":
                vs = victims(("vpn_fixed", "vpn_commercial"), self.instances)
            elif kind == "traveller_compromise":
                vs = victims(("traveller",), self.instances,
                             lambda a: any(t.arrive + 6 * HOUR < min(t.back_depart, self.period[1]) - 6 * HOUR
                                           and t.back_depart > self.period[0] + 6 * HOUR for t in a.trips))
            elif kind == "dc_same_country":
                vs = victims(("normal",), self.instances, lambda a: self.cat.hosting_in(a.cc, HOSTING))
            else:
                vs = victims(("normal",), self.instances)
            for j, v in enumerate(vs, 1):
                ar = random.Random(f"{self.seed}/attack/{kind}/{j}")
                rec = {"id": f"{kind}-{j}", "type": kind, "victim": v.name, "victim_category": v.category}
                start, end, ips, notes = getattr(self, f"attack_{kind}")(ar, v)
                rec.update(start=iso(start), end=iso(end), attacker_ips=list(dict.fromkeys(ips)), notes=notes)
                self.attacks.append(rec)

    def attack_window(self, r: random.Random, min_len: float) -> float:
        lo, hi = self.period[0] + HOUR, self.period[1] - min_len - HOUR
        return r.uniform(lo, max(lo, hi))

    def limit(self) -> float:
        return self.period[1] - 30 * MIN

    def awake_time(self, r: random.Random, v: Account, t: float) -> float:
        """*t* moved to the victim's local 9:00-21:00 (the owner is online around then)."""
        tz = v.persons[0].tz
        day = math.floor((t + tz * HOUR - T0) / DAY)
        t2 = T0 + day * DAY + (r.uniform(9, 21) - tz) * HOUR
        if t2 > self.limit() - 3 * HOUR:
            t2 -= DAY
        return max(t2, self.period[0] + HOUR)

    def spam(self, r: random.Random, t: float, v: Account, ips: list[str], n: int, gap: tuple[float, float],
             nrcpt: tuple[int, int] = (20, 100)) -> float:
        """*n* spam messages from *ips* (round robin); returns the time of the last submission."""
        last = t
        for i in range(n):
            if t >= self.limit():
                break
            self.submit(r, t, v.name, ips[i % len(ips)], r.randint(*nrcpt), bounce=r.uniform(0.1, 0.35),
                        defer=r.uniform(0.05, 0.2), spam=True)
            last = t
            t += r.uniform(*gap)
        return last

    def use(self, r: random.Random, t: float, v: Account, ips: list[str], n: int, delay: tuple[float, float],
            gap: tuple[float, float] = (15, 90)) -> tuple[float, float, bool]:
        """Half of the attackers check the password with an IMAP login and start spamming *delay* minutes later;
        the others go straight to SMTP AUTH (the first message is the first login acctwatch sees). Returns
        (first malicious event, last submission, checked)."""
        checked = r.random() < 0.5
        if checked:
            self.login(r, t, v.name, ips[0])
        end = self.spam(r, t + r.uniform(*delay) * MIN if checked else t, v, ips, n, gap)
        return t, end, checked

    def far_country(self, r: random.Random, home: str, exclude: tuple[str, ...] = ()) -> str:
        from acctwatch.geo import country_centroid, distance_km

        hc = country_centroid(home)
        far = [c for c in BOT_COUNTRIES if c != home and c not in exclude and hc and country_centroid(c)
               and distance_km(*hc, *country_centroid(c)) > 5000]  # type: ignore[misc]
        return r.choice(far)

    def attack_botnet(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = start = self.attack_window(r, 6 * HOUR)
        ccs = r.sample(BOT_COUNTRIES, r.randint(5, 10))
        ips = [self.bot_ip(r, (ccs[i % len(ccs)],)) for i in range(r.randint(8, 40))]
        for ip in ips:  # the credential is checked from everywhere within minutes
            self.login(r, t, v.name, ip)
            t += r.uniform(5, 40)
        t += r.uniform(10 * MIN, 3 * HOUR)
        senders = r.sample(ips, min(len(ips), r.randint(3, 15)))
        end = self.spam(r, t, v, senders, r.randint(40, 100), (10, 90))
        return start, end, ips, {"countries": ccs}

    def attack_quiet_reader(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = start = self.attack_window(r, 12 * HOUR)
        cc = r.choice([c for c in ("US", "NL", "DE", "FR", "GB", "SG", "FI", v.cc) if self.cat.hosting_in(c, HOSTING)])
        asn = r.choice(self.cat.hosting_in(cc, HOSTING))
        ip = self.cat.ip(r, asn, cc)
        until = min(self.limit(), t + r.uniform(2, 5) * DAY)
        end = t
        big = True
        while t < until:
            self.login(r, t, v.name, ip, big=big)  # first the whole mailbox, then what is new
            big = False
            end = t
            t += r.uniform(1, 8) * HOUR
        return start, end, [ip], {"country": cc, "asn": asn}

    def attack_travel_spam(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = self.awake_time(r, v, self.attack_window(r, 4 * HOUR))
        cc = self.far_country(r, v.cc)
        ip = self.cat.ip(r, r.choice([a for a in EYEBALL[cc] if self.cat.has(a, cc)]), cc)
        start, end, checked = self.use(r, t, v, [ip], r.randint(30, 80), (2, 30))
        return start, end, [ip], {"country": cc, "imap_check": checked}

    def attack_bruteforce_fast(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = start = self.attack_window(r, 4 * HOUR)
        ip = self.bot_ip(r)
        for _ in range(r.randint(20, 80)):
            self.smtp_fail(r, t, v.name, ip)
            t += r.uniform(3, 12)
        _, end, checked = self.use(r, t + r.uniform(0.5, 5) * MIN, v, [ip], r.randint(30, 80), (5, 60))
        return start, end, [ip], {"imap_check": checked}

    def attack_bruteforce_slow(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = start = self.attack_window(r, 10 * HOUR)
        pool = [self.bot_ip(r) for _ in range(r.randint(5, 30))]
        until = min(self.limit() - 3 * HOUR, t + r.uniform(6, 72) * HOUR)
        while t < until:
            self.smtp_fail(r, t, v.name, r.choice(pool))
            t += r.uniform(10, 60) * MIN
        _, end, checked = self.use(r, t, v, [r.choice(pool)], r.randint(30, 80), (10, 120))
        return start, end, pool, {"imap_check": checked}

    def attack_dc_same_country(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = self.attack_window(r, 4 * HOUR)
        asn = r.choice(self.cat.hosting_in(v.cc, HOSTING))
        ip = self.cat.ip(r, asn, v.cc)
        start, end, checked = self.use(r, t, v, [ip], r.randint(30, 100), (5, 60))
        return start, end, [ip], {"asn": asn, "imap_check": checked}

    def attack_resproxy_in_country(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = self.attack_window(r, 6 * HOUR)
        isps = [a for a in (*EYEBALL[v.cc], *MOBILE.get(v.cc, ())) if self.cat.has(a, v.cc)]
        ips = [self.cat.ip(r, r.choice(isps), v.cc) for _ in range(r.randint(10, 30))]
        times = sorted(t + r.uniform(0, 3 * HOUR) for _ in ips)
        for ts, ip in zip(times, ips, strict=True):  # every request through another residential exit
            self.login(r, ts, v.name, ip)
        end = self.spam(r, t + r.uniform(3.2, 4) * HOUR, v, r.sample(ips, len(ips)), r.randint(30, 80), (15, 90))
        return times[0], end, ips, {"isps": sorted(set(isps))}

    def attack_low_slow_spam(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = self.attack_window(r, DAY)
        if r.random() < 0.5:
            cc = r.choice([c for c in ("US", "NL", "FR", "GB", "SG", "RU")
                           if c != v.cc and self.cat.hosting_in(c, HOSTING)])
            asn = r.choice(self.cat.hosting_in(cc, HOSTING))
        else:
            cc = r.choice([c for c in BOT_COUNTRIES if c != v.cc])
            asn = r.choice([a for a in EYEBALL[cc] if self.cat.has(a, cc)])
        ip = self.cat.ip(r, asn, cc)
        checked = r.random() < 0.5
        events: list[float] = []
        for _ in range(r.randint(2, 5)):  # a working day of a few tens of messages, day after day
            if t >= self.limit():
                break
            if checked:
                self.login(r, t, v.name, ip)
                events.append(t)
            day_end = t + r.uniform(8, 16) * HOUR
            for ts in sorted(r.uniform(t, day_end) for _ in range(r.randint(10, 40))):
                if ts < self.limit():
                    self.submit(r, ts, v.name, ip, r.randint(20, 40), bounce=r.uniform(0.1, 0.3),
                                defer=r.uniform(0.05, 0.15), spam=True)
                    events.append(ts)
            t += DAY
        return min(events), max(events), [ip], {"country": cc, "asn": asn, "imap_check": checked}

    def attack_vpn_user_compromise(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        t = self.awake_time(r, v, self.attack_window(r, 4 * HOUR))
        used = {str(v.notes.get("vpn_country"))} | set(v.notes.get("countries", ())) | {v.cc}
        if r.random() < 0.5:
            opts = [(a, c) for a in VPN + HOSTING for c in self.cat.countries(a) if c not in used]
            asn, cc = r.choice(opts)
            ip = self.cat.ip(r, asn, cc)
        else:
            cc = self.far_country(r, v.cc, tuple(used))
            ip = self.bot_ip(r, (cc,))
        start, end, checked = self.use(r, t, v, [ip], r.randint(30, 80), (2, 45))
        return start, end, [ip], {"country": cc, "imap_check": checked}

    def attack_traveller_compromise(self, r: random.Random, v: Account) -> tuple[float, float, list[str], dict]:
        trip = next(t for t in reversed(v.trips) if t.back_depart > self.period[0] + 6 * HOUR)
        lo = max(trip.arrive + 6 * HOUR, self.period[0] + HOUR)
        hi = min(trip.back_depart, self.period[1]) - 6 * HOUR
        t = r.uniform(lo, max(lo, hi))
        cc = r.choice([c for c in (*BOT_COUNTRIES, "NL", "GB", "FR") if c not in (v.cc, trip.dest)])
        ip = self.bot_ip(r, (cc,))
        start, end, checked = self.use(r, t, v, [ip], r.randint(30, 80), (2, 45))
        return start, end, [ip], {"country": cc, "trip_dest": trip.dest, "imap_check": checked}

    # -- the whole run -------------------------------------------------------------------------------
    guessing_bots: set[str]

    def run(self) -> dict[str, Any]:
        self.guessing_bots = set()
        self.build_population()
        self.plan_attacks()
        for k in range(-1, self.days + 1):
            for a in self.accounts:
                self.account_day(a, k)
            if 0 <= k < self.days:
                self.noise_day(k)
            self.sink.flush(k - 1)
        self.sink.close()
        return self.truth()

    def truth(self) -> dict[str, Any]:
        return {
            "generator": "benchmarks/simpop.py",
            "parameters": {"accounts": self.n, "days": self.days, "seed": self.seed, "instances": self.instances,
                           "start": iso(T0), "domain": DOMAIN},
            "files": {"learning": sorted(n for n in self.sink.lines if n == "mail-week1.log"),
                      "scoring": sorted(n for n in self.sink.lines if n != "mail-week1.log"),
                      "lines": dict(sorted(self.sink.lines.items()))},
            "scoring_period": {"start": iso(self.period[0]), "end": iso(self.period[1])},
            "categories": {c: sum(a.category == c for a in self.accounts) for c in CATEGORIES},
            "accounts": {a.name: {"category": a.category, "country": a.cc, **({"notes": a.notes} if a.notes else {})}
                         for a in self.accounts},
            "attacks": self.attacks,
            "noise": {"guessing_bots": sorted(self.guessing_bots)},
        }


# -------------------------------------------------------------------------------------------- helpers
_SESS = string.ascii_letters + string.digits + "+/"
_LOCALS = ("info", "kontakt", "anna", "ben", "office", "sales", "m.mueller", "j.smith", "team", "hello", "k.weber")
_DOMAINS = ("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.com", "yahoo.com", "example.com",
            "example.net", "posteo.de", "icloud.com")
_SPAM_DOMAINS = (*_DOMAINS, "hotmail.com", "aol.com", "mail.ru", "yahoo.co.jp", "libero.it", "orange.fr", "wp.pl",
                 "free.fr", "comcast.net", "qq.com")


@functools.lru_cache(maxsize=1 << 16)
def _hash(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=8).digest(), "big")


@functools.lru_cache(maxsize=64)
def _mx_ip(addr: str) -> str:
    return "209.85.%d.%d" % divmod(_hash(0, addr.split("@")[1]) % 65000, 256)  # noqa: UP031


def _interval(r: random.Random, kind: str, activity: str) -> float:
    """Minutes between a device's polls while it is in use."""
    if kind == "phone":
        return {"light": 60.0, "regular": r.choice((30, 45, 60, 90, 120)),
                "heavy": r.choice((20, 30, 45))}[activity]
    return {"light": r.choice((30, 60)), "regular": r.choice((20, 30, 60)),
            "heavy": r.choice((10, 15, 20, 30))}[activity]


def _polls(r: random.Random, h0: float, h1: float, interval_min: float) -> list[float]:
    out = []
    h = h0 + r.uniform(0, interval_min / 60)
    while h < h1:
        out.append(h)
        h += interval_min / 60 * r.uniform(0.7, 1.3)
    return out


def _poisson(r: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= r.random()
        if p <= limit:
            return n
        n += 1


def _nrcpt(r: random.Random) -> int:
    x = r.random()
    return 1 if x < 0.7 else r.randint(2, 4) if x < 0.92 else r.randint(5, 12) if x < 0.99 else r.randint(13, 30)


def generate(out: str | Path, accounts: int = 3000, days: int = 14, seed: int = 1,
             instances: int | None = None) -> dict[str, Any]:
    """Write the logs and truth.json into *out*; return the truth."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("mail-week*.log"):
        old.unlink()
    truth = Sim(accounts, days, seed, out, instances).run()
    (out / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return truth


def population_options(ap: argparse.ArgumentParser) -> None:
    """The population's command-line options (shared with bench_detection)."""
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--instances", type=int, help="attacks per type (default: accounts/100, 1 to 5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    population_options(ap)
    ap.add_argument("--out", default="simpop-out", help="output directory (default: ./simpop-out)")
    a = ap.parse_args()
    t = time.perf_counter()
    truth = generate(a.out, a.accounts, a.days, a.seed, a.instances)
    lines = truth["files"]["lines"]
    print(f"{sum(lines.values())} lines in {time.perf_counter() - t:.1f} s: "
          + ", ".join(f"{n} {c}" for n, c in lines.items()))
    print("accounts: " + ", ".join(f"{c} {n}" for c, n in truth["categories"].items()))
    print(f"attacks: {len(truth['attacks'])} in {truth['scoring_period']['start']} .. "
          f"{truth['scoring_period']['end']}; truth in {Path(a.out) / 'truth.json'}")


if __name__ == "__main__":
    main()
