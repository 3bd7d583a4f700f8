"""Enrichment: country, city, coordinates and autonomous system of each client IP.

``GeoResolver.open(paths)`` reads one or more MMDB files and merges them per lookup (e.g. a City database
plus an ASN database):

* MaxMind GeoIP2/GeoLite2 City, Country, ASN, ISP and Enterprise databases, and DB-IP's Lite databases
  (same layout); the kind is taken from the database's metadata (``database_type``), exactly as geoip2
  itself decides which lookups a file allows, and the fields are read from the raw ``maxminddb`` record
  exactly as geoip2's model classes would give them (without building the models: see ``_Database``);
* MaxMind's GeoIP2 Anonymous IP (and GeoIP Anonymous Plus) and Connection Type databases, which give no
  place but a *network class hint* (see below);
* any other MMDB ("flat" layout, e.g. ``{"country_code": "DE"}`` or ``{"country": "DE", "asn": 123}``)
  through ``maxminddb``, with the usual key names recognised.

Files may be compressed (``.mmdb.xz``, ``.mmdb.gz``); they are unpacked once into a cache directory.

With no path at all the embedded databases shipped in ``acctwatch/data/`` are used: DB-IP IP to Country
Lite and an IP to ASN database (see ``acctwatch/data/README.md`` for sources and licences). They are
country-level only, so a warning is logged once; a City database gives precise travel checks.

Addresses that belong to no country -- private, loopback, link-local, CGNAT (100.64/10), multicast,
reserved, unspecified, and the documentation ranges -- are ``internal`` and never looked up. The
documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20) can be
treated as public with ``treat_documentation_as_public=True`` (test databases and example logs use them).
IPv4-mapped IPv6 (``::ffff:a.b.c.d``) and NAT64 (``64:ff9b::a.b.c.d``) addresses are looked up as IPv4.

Network class hints (``GeoInfo.net_class``, one of ``acctwatch.netclass.CLASSES``, with
``net_class_source`` saying which field gave it) come from what the admin's databases say about the network:
the Anonymous IP flags (``is_anonymous_vpn`` -> vpn, ``is_hosting_provider`` -> datacenter,
``is_tor_exit_node``/``is_public_proxy``/``is_residential_proxy``/``is_anonymous`` -> anonymizer), the
Enterprise ``user_type`` trait (``hosting`` -> datacenter, ``residential``/``cellular``/``business``/... ->
eyeball) and the ``connection_type`` (``Cellular``, ``Cable/DSL`` -> eyeball). With several databases the
strongest hint wins: anonymity flags, then ``user_type``, then ``connection_type``.
``acctwatch.netclass.NetworkClassifier`` turns them (and the admin's config, and a shipped ASN list) into
the class the detectors use.

Lookups are cached in a bounded LRU (hits and misses alike): a mail server sees the same few thousand
client addresses over and over.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gzip
import hashlib
import io
import ipaddress
import json
import logging
import lzma
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from .ipaddr import IPAddress, parse_ip

# maxminddb is imported where a database is opened (``_Database``): ``import acctwatch.geo`` stays light for
# the detectors and for commands that never open one. geoip2 itself is not needed: its Reader only opened
# the file through maxminddb, and its model classes are replaced by reading the raw records.

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The embedded databases, in lookup order.
EMBEDDED_FILES = ("dbip-country-lite.mmdb.xz", "asn-lite.mmdb.xz")
EMBEDDED_CREDIT = (
    "IP Geolocation by DB-IP (https://db-ip.com), IP to Country Lite, CC BY 4.0; IP to ASN data from "
    "RouteViews (https://www.routeviews.org), NRO (https://www.nro.net) and DB-IP IP to ASN Lite, CC BY 4.0, "
    "merged by the ip-location-db project; country centres from GeoNames (https://www.geonames.org), "
    "CC BY 4.0. Licence: https://creativecommons.org/licenses/by/4.0/"
)
EMBEDDED_WARNING = (
    "using the embedded country-level GeoIP database (DB-IP Lite + ASN, see `acctwatch geoip info`); "
    "configure a GeoIP2/GeoLite2/DB-IP City database for precise travel checks"
)
DEFAULT_CACHE_SIZE = 65536

_INTERNAL_V4 = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8",  # "this" network
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # CGNAT, RFC 6598
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local
    "172.16.0.0/12",  # RFC 1918
    "192.0.0.0/24",  # IETF protocol assignments
    "192.168.0.0/16",  # RFC 1918
    "198.18.0.0/15",  # benchmarking, RFC 2544
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and 255.255.255.255
))
_INTERNAL_V6 = tuple(ipaddress.IPv6Network(n) for n in (
    "::/128",  # unspecified
    "::1/128",  # loopback
    "100::/64",  # discard-only
    "64:ff9b:1::/48",  # local-use NAT64
    "2001:2::/48",  # benchmarking
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
))
_DOCUMENTATION = (
    ipaddress.IPv4Network("192.0.2.0/24"),  # TEST-NET-1
    ipaddress.IPv4Network("198.51.100.0/24"),  # TEST-NET-2
    ipaddress.IPv4Network("203.0.113.0/24"),  # TEST-NET-3
    ipaddress.IPv6Network("2001:db8::/32"),
    ipaddress.IPv6Network("3fff::/20"),  # RFC 9637
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def lookup_address(ip: str) -> IPAddress | None:
    """The address to geolocate for *ip* (read by :func:`acctwatch.ipaddr.parse_ip`): a NAT64 address
    (``64:ff9b::/96``) is the IPv4 address it carries. None when it is no address."""
    addr = parse_ip(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr


def _ranges(nets: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> tuple[list[int], list[int]]:
    """The networks as sorted, merged integer intervals: (first addresses, last addresses)."""
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted((int(n.network_address), int(n.broadcast_address)) for n in nets):
        if ends and first <= ends[-1] + 1:
            ends[-1] = max(ends[-1], last)
        else:
            starts.append(first)
            ends.append(last)
    return starts, ends


#: version -> intervals: ``addr in net`` for each of the networks is one bisection of ``int(addr)``
_INTERNAL_RANGES = {4: _ranges(_INTERNAL_V4), 6: _ranges(_INTERNAL_V6)}
_DOCUMENTATION_RANGES = {v: _ranges([n for n in _DOCUMENTATION if n.version == v]) for v in (4, 6)}


def _in_ranges(ranges: tuple[list[int], list[int]], n: int) -> bool:
    starts, ends = ranges
    i = bisect.bisect_right(starts, n) - 1
    return i >= 0 and n <= ends[i]


def is_internal(addr: IPAddress, treat_documentation_as_public: bool = False) -> bool:
    """True for addresses that belong to no country (see the module docstring)."""
    n = int(addr)
    if _in_ranges(_INTERNAL_RANGES[addr.version], n):
        return True
    return not treat_documentation_as_public and _in_ranges(_DOCUMENTATION_RANGES[addr.version], n)


# ------------------------------------------------------------------------------------------- GeoInfo
@dataclass(frozen=True, slots=True)
class GeoInfo:
    """What acctwatch knows about one IP address."""

    ip: str
    internal: bool  # private, loopback, link-local, CGNAT, documentation...: never counts as a country
    country: str | None  # ISO 3166-1 alpha-2, e.g. "DE"
    country_name: str | None
    city: str | None
    latitude: float | None  # only from City databases (None with country-level data)
    longitude: float | None
    accuracy_km: float | None  # accuracy radius of the coordinates; None when unknown
    asn: int | None
    asn_org: str | None
    #: what the databases say about the network: "vpn", "datacenter", "anonymizer", "eyeball" or None
    net_class: str | None = None
    net_class_source: str | None = None  # e.g. "mmdb:is_anonymous_vpn", "mmdb:user_type=hosting"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": self.ip, "internal": self.internal, "country": self.country,
            "country_name": self.country_name, "city": self.city, "latitude": self.latitude,
            "longitude": self.longitude, "accuracy_km": self.accuracy_km, "asn": self.asn,
            "asn_org": self.asn_org, "net_class": self.net_class, "net_class_source": self.net_class_source,
        }

    @property
    def precise(self) -> bool:
        """True when city-level coordinates are known (a City database answered)."""
        return self.latitude is not None and self.longitude is not None

    def location(self) -> tuple[float, float, float | None, bool] | None:
        """``(lat, lon, accuracy_km, coarse)``: the coordinates, or the country's centre (``coarse``)."""
        if self.internal:
            return None
        if self.latitude is not None and self.longitude is not None:
            return (self.latitude, self.longitude, self.accuracy_km, False)
        if self.country:
            c = country_centroid(self.country)
            if c is not None:
                return (c[0], c[1], None, True)
        return None

    def label(self) -> str:
        """Human text, e.g. ``Berlin, DE (AS3320 Deutsche Telekom AG)``, ``DE``, ``internal``."""
        if self.internal:
            return "internal"
        where = ", ".join(filter(None, (self.city, self.country))) or "unknown location"
        if self.asn is not None:
            org = f" {self.asn_org}" if self.asn_org else ""
            return f"{where} (AS{self.asn}{org})"
        return where


# --------------------------------------------------------------------------------- country centres
@functools.cache
def _countries() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((DATA_DIR / "countries.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # a broken install: coarse checks just get no centres
        log.warning("cannot read the country table %s: %s", DATA_DIR / "countries.json", exc)
        return {}
    return data.get("countries", {})


@functools.cache  # asked for every login with country-level data; the table never changes
def country_centroid(code: str) -> tuple[float, float] | None:
    """(lat, lon) of the population-weighted centre of a country (ISO alpha-2), for coarse travel checks
    with country-only data. Source: GeoNames (CC BY 4.0), see ``scripts/build_geoip_db.py``."""
    c = _countries().get(code.upper()) if code else None
    if c is None or "lat" not in c:
        return None
    return (float(c["lat"]), float(c["lon"]))


def country_name(code: str) -> str | None:
    """English name of an ISO alpha-2 country code, from the embedded table."""
    c = _countries().get(code.upper()) if code else None
    return c.get("name") if c else None


_EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


def distance_km(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Great-circle distance in kilometres (haversine)."""
    p1, p2 = math.radians(a_lat), math.radians(b_lat)
    dp = p2 - p1
    dl = math.radians(b_lon - a_lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


# ----------------------------------------------------------------------------------------- databases
class GeoError(Exception):
    """A database cannot be opened or read."""


def _cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("ACCTWATCH_CACHE_DIR"):
        dirs.append(Path(os.environ["ACCTWATCH_CACHE_DIR"]))
    if os.environ.get("XDG_CACHE_HOME"):
        dirs.append(Path(os.environ["XDG_CACHE_HOME"]) / "acctwatch")
    home = os.environ.get("HOME")
    if home:
        dirs.append(Path(home) / ".cache" / "acctwatch")
    dirs.append(Path(tempfile.gettempdir()) / f"acctwatch-{os.getuid()}")
    return dirs


def _opener(path: Path) -> Callable[[], IO[bytes]] | None:
    name = path.name.lower()
    if name.endswith(".xz"):
        return lambda: lzma.open(path, "rb")
    if name.endswith(".gz"):
        return lambda: gzip.open(path, "rb")
    return None


def _unpacked(path: Path) -> Path | IO[bytes]:
    """A compressed database unpacked into a cache file (reused while the source is unchanged), so the
    C reader can map it; an in-memory copy when no cache directory is writable."""
    opener = _opener(path)
    if opener is None:
        return path
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    stem = path.name.rsplit(".", 1)[0]
    if stem.endswith(".mmdb"):
        stem = stem[:-5]
    name = f"{stem}-{h.hexdigest()[:16]}.mmdb"
    for d in _cache_dirs():
        target = d / name
        if target.is_file():
            return target
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".unpack-", dir=d)
            try:
                with os.fdopen(fd, "wb") as out, opener() as src:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.replace(tmp, target)
                for old in d.glob(f"{stem}-*.mmdb"):  # earlier versions of the same database
                    if old != target:
                        with contextlib.suppress(OSError):
                            old.unlink()
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            log.debug("unpacked %s into %s", path, target)
            return target
        except OSError as exc:
            log.debug("cannot unpack %s into %s: %s", path, d, exc)
    with opener() as src:
        return io.BytesIO(src.read())


def _kind(database_type: str) -> str:
    """Which geoip2 lookup a database allows (geoip2 checks substrings of database_type the same way)."""
    if "GeoIP-Anonymous-Plus" in database_type:
        return "AnonymousPlus"
    if "GeoIP2-Anonymous-IP" in database_type:
        return "AnonymousIP"
    if "GeoIP2-Connection-Type" in database_type:
        return "ConnectionType"
    if "Enterprise" in database_type:
        return "Enterprise"
    if "City" in database_type:
        return "City"
    if "Country" in database_type:
        return "Country"
    if "GeoLite2-ASN" in database_type:
        return "ASN"
    if "GeoIP2-ISP" in database_type:
        return "ISP"
    return "flat"


_CC_KEYS = ("country_code", "country_iso_code", "iso_code", "country", "cc", "country_short")
_CN_KEYS = ("country_name", "country_long")
_CITY_KEYS = ("city", "city_name")
_LAT_KEYS = ("latitude", "lat")
_LON_KEYS = ("longitude", "lon", "lng", "long")
_ACC_KEYS = ("accuracy_radius", "accuracy_km", "accuracy")
_ASN_KEYS = ("autonomous_system_number", "asn", "as_number", "as", "asnum")
_ORG_KEYS = ("autonomous_system_organization", "asn_org", "as_org", "as_name", "as_organization",
             "organization", "org", "isp", "as_domain")


def _name(v: Any) -> str | None:
    if isinstance(v, str):
        return v or None
    if isinstance(v, dict):
        names = v.get("names")
        if isinstance(names, dict):
            return names.get("en") or next(iter(names.values()), None)
        return _name(v.get("name"))
    return None


def _first(rec: dict[str, Any], keys: Sequence[str]) -> Any:
    for k in keys:
        v = rec.get(k)
        if v not in (None, "", {}):
            return v
    return None


def _to_float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _to_asn(v: Any) -> int | None:
    if isinstance(v, dict):
        return _to_asn(_first(v, ("number", "asn", "autonomous_system_number")))
    if isinstance(v, str):
        v = v.strip().upper().removeprefix("AS")
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def _parse_flat(rec: Any) -> dict[str, Any]:
    """Fields from a record of any layout: flat keys or the nested GeoIP2 one."""
    out: dict[str, Any] = {}
    if not isinstance(rec, dict):
        return out
    cc = _first(rec, _CC_KEYS)
    if isinstance(cc, dict):  # nested GeoIP2 layout under a type geoip2 does not know
        out["country_name"] = _name(cc)
        cc = cc.get("iso_code")
    if isinstance(cc, str) and len(cc) == 2 and cc.isalpha():
        out["country"] = cc.upper()
    elif isinstance(cc, str) and cc:
        out["country_name"] = cc  # {"country": "Germany"}: a name, no code
    if "country_name" not in out or out["country_name"] is None:
        out["country_name"] = _name(_first(rec, _CN_KEYS))
    out["city"] = _name(_first(rec, _CITY_KEYS))
    loc = rec.get("location") if isinstance(rec.get("location"), dict) else rec
    out["latitude"] = _to_float(_first(loc, _LAT_KEYS))
    out["longitude"] = _to_float(_first(loc, _LON_KEYS))
    out["accuracy_km"] = _to_float(_first(loc, _ACC_KEYS))
    asn_src = rec.get("traits") if isinstance(rec.get("traits"), dict) else rec
    out["asn"] = _to_asn(_first(asn_src, _ASN_KEYS))
    org = _first(asn_src, _ORG_KEYS)
    out["asn_org"] = org if isinstance(org, str) else _name(org)
    return {k: v for k, v in out.items() if v is not None}


# ------------------------------------------------------------------------------ network class hints
#: Anonymous IP flags, most specific first (``is_anonymous`` is set whenever any other flag is).
_ANON_FLAGS = (
    ("is_tor_exit_node", "anonymizer"),
    ("is_public_proxy", "anonymizer"),
    ("is_residential_proxy", "anonymizer"),
    ("is_anonymous_vpn", "vpn"),
    ("is_hosting_provider", "datacenter"),
    ("is_anonymous", "anonymizer"),
)
#: MaxMind ``user_type`` values (GeoIP2 Enterprise / Insights) -> class; values not listed give no hint.
USER_TYPES = {
    "hosting": "datacenter",
    "content_delivery_network": "datacenter",
    "search_engine_spider": "datacenter",
    "consumer_privacy_network": "vpn",  # VPNs and relays such as iCloud Private Relay
    "residential": "eyeball",
    "cellular": "eyeball",
    "business": "eyeball",
    "cafe": "eyeball",
    "college": "eyeball",
    "school": "eyeball",
    "library": "eyeball",
    "government": "eyeball",
    "military": "eyeball",
    "dialup": "eyeball",
    "traveler": "eyeball",
}
#: MaxMind ``connection_type`` (Connection-Type database, Enterprise traits) -> class. "Corporate" gives none.
CONNECTION_TYPES = {"cellular": "eyeball", "cable/dsl": "eyeball", "dialup": "eyeball", "satellite": "eyeball"}
#: Which hint wins when several databases give one (lower wins).
_HINT_RANK = {"anon": 0, "user_type": 1, "connection_type": 2}


def _class_hint(rec: dict[str, Any], flags: bool = True, user_type: bool = True,
                connection_type: bool = True) -> tuple[int, str, str] | None:
    """``(rank, class, source)`` from a record carrying MaxMind's anonymity flags, ``user_type`` or
    ``connection_type`` (only the kinds of field asked for: those the record's geoip2 model has); None when it
    says nothing about the network."""
    get = rec.get
    if flags:
        for flag, cls in _ANON_FLAGS:
            v = get(flag)
            if v is True or v == 1 or (isinstance(v, str) and v.lower() in ("true", "1", "yes")):
                return (_HINT_RANK["anon"], cls, f"mmdb:{flag}")
    if user_type:
        ut = get("user_type")
        if isinstance(ut, str) and ut.strip().lower() in USER_TYPES:
            return (_HINT_RANK["user_type"], USER_TYPES[ut.strip().lower()], f"mmdb:user_type={ut.strip()}")
    if connection_type:
        ct = get("connection_type")
        if isinstance(ct, str) and ct.strip().lower() in CONNECTION_TYPES:
            return (_HINT_RANK["connection_type"], CONNECTION_TYPES[ct.strip().lower()],
                    f"mmdb:connection_type={ct.strip()}")
    return None


def _with_hint(out: dict[str, Any], rec: dict[str, Any], flags: bool = True, user_type: bool = True,
               connection_type: bool = True) -> dict[str, Any]:
    hint = _class_hint(rec, flags, user_type, connection_type)
    if hint is not None:
        out["_net_hint"] = hint
    return out


# ------------------------------------------------------------------- typed records, read as geoip2 reads them
# geoip2's Reader gets the record with maxminddb and builds a model from it (``Country(["en"], ip_address=..,
# prefix_len=.., **record)``, each part ``Record(locales, **(record.get(part) or {}))``). The fields acctwatch
# uses are read here straight from the record, with the same defaults and the same truth tests; a record that
# geoip2 fails on fails here with the same exception class (a TypeError for a part that is no map, a ValueError
# for a bad ``network``, which a lookup answers with nothing, as before). tests/test_geo_fast.py compares both.
_EMPTY: dict[str, Any] = {}
#: keys of a record that collide with the arguments geoip2 passes its model classes itself
_MODEL_ARGS = ("locales", "ip_address", "prefix_len")
_FLAT_MODEL_ARGS = ("ip_address", "prefix_len")
#: the parts of a Country / City / Enterprise record geoip2 unpacks, in its order; True: a place record
#: (its class takes ``locales`` too)
_COUNTRY_PARTS = (("continent", True), ("country", True), ("registered_country", True),
                  ("represented_country", True), ("maxmind", False), ("traits", False))
_CITY_PARTS = (("city", True), ("location", False), ("postal", False))


def _not_a_map(what: str, v: Any) -> TypeError:
    return TypeError(f"GeoIP2 record part {what!r} must be a map, not {type(v).__name__}")


def _check_parts(rec: dict[str, Any], parts: Sequence[tuple[str, bool]]) -> None:
    for key, placed in parts:
        v = rec.get(key)
        if not v:  # geoip2: ``record.get(key) or {}``
            continue
        if not isinstance(v, dict):
            raise _not_a_map(key, v)
        if placed and "locales" in v:
            raise TypeError(f"GeoIP2 record part {key!r} has a 'locales' key")
        if key == "traits":
            network = v.get("network")
            if network is not None:
                ipaddress.ip_network(network, strict=False)  # geoip2's Traits parse it (ValueError: no answer)


def _check_model(rec: dict[str, Any], city: bool) -> None:
    """Raise what building geoip2's Country (``city``: City, Enterprise) model from ``rec`` raises."""
    for key in _MODEL_ARGS:
        if key in rec:
            raise TypeError(f"GeoIP2 record has a {key!r} key")
    _check_parts(rec, _COUNTRY_PARTS)
    if city:
        _check_parts(rec, _CITY_PARTS)
        subs = rec.get("subdivisions")
        if subs:
            if not isinstance(subs, list):
                raise _not_a_map("subdivisions", subs)
            for sub in subs:
                if not isinstance(sub, dict):
                    raise _not_a_map("subdivisions", sub)
                if "locales" in sub:
                    raise TypeError("GeoIP2 record part 'subdivisions' has a 'locales' key")


def _check_flat_model(rec: dict[str, Any]) -> None:
    """Raise what building one of geoip2's flat models (ASN, ISP, AnonymousIP, ConnectionType...) raises."""
    for key in _FLAT_MODEL_ARGS:
        if key in rec:
            raise TypeError(f"GeoIP2 record has a {key!r} key")
    network = rec.get("network")
    if network:
        ipaddress.ip_network(network, strict=False)


def _place_name(part: dict[str, Any]) -> Any:
    """geoip2's ``PlaceRecord.name`` with its default locales (``["en"]``)."""
    names = part.get("names")
    if names is None or "en" not in names:
        return None
    return names.get("en")


def _country_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """Country code and name: the country, else the registered country (the represented one is not used)."""
    out: dict[str, Any] = {}
    c = rec.get("country") or _EMPTY
    if not c.get("iso_code"):
        c = rec.get("registered_country") or _EMPTY
    iso = c.get("iso_code")
    if iso:
        out["country"] = iso
        out["country_name"] = _place_name(c) or country_name(iso)
    return out


def _from_country_record(rec: dict[str, Any]) -> dict[str, Any]:
    _check_model(rec, city=False)
    return _country_fields(rec)


def _from_city_record(rec: dict[str, Any]) -> dict[str, Any]:
    """City and Enterprise records: place, coordinates, AS and the traits' network class hint."""
    _check_model(rec, city=True)
    out = _country_fields(rec)
    loc = rec.get("location") or _EMPTY
    lat, lon = loc.get("latitude"), loc.get("longitude")
    if lat is not None and lon is not None:
        out["latitude"], out["longitude"] = float(lat), float(lon)
        acc = loc.get("accuracy_radius")
        if acc is not None:
            out["accuracy_km"] = float(acc)
    city = _place_name(rec.get("city") or _EMPTY)
    if city:
        out["city"] = city
    traits = rec.get("traits") or _EMPTY
    asn = traits.get("autonomous_system_number")
    if asn is not None:
        out["asn"] = asn
        org = traits.get("autonomous_system_organization")
        if org:
            out["asn_org"] = org
    return _with_hint(out, traits)


def _from_asn_record(rec: dict[str, Any]) -> dict[str, Any]:
    _check_flat_model(rec)
    return {k: v for k, v in (("asn", rec.get("autonomous_system_number")),
                              ("asn_org", rec.get("autonomous_system_organization"))) if v is not None}


def _from_isp_record(rec: dict[str, Any]) -> dict[str, Any]:
    _check_flat_model(rec)
    return {k: v for k, v in (("asn", rec.get("autonomous_system_number")),
                              ("asn_org", rec.get("autonomous_system_organization") or rec.get("isp")))
            if v is not None}


def _from_anonymous_record(rec: dict[str, Any]) -> dict[str, Any]:
    _check_flat_model(rec)
    return _with_hint({}, rec, user_type=False, connection_type=False)


def _from_anonymous_plus_record(rec: dict[str, Any]) -> dict[str, Any]:
    _check_flat_model(rec)
    seen = rec.get("network_last_seen")
    if seen is not None:
        date.fromisoformat(seen)  # geoip2's AnonymousPlus parses it (ValueError: no answer)
    return _with_hint({}, rec, user_type=False, connection_type=False)


def _from_connection_type_record(rec: dict[str, Any]) -> dict[str, Any]:
    _check_flat_model(rec)
    return _with_hint({}, rec, flags=False, user_type=False)


def _from_flat_record(rec: Any) -> dict[str, Any]:
    out = _parse_flat(rec)
    if isinstance(rec, dict):
        _with_hint(out, rec.get("traits") if isinstance(rec.get("traits"), dict) else rec)
    return out


#: kind -> the fields of one of its records
_READERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "Country": _from_country_record,
    "City": _from_city_record,
    "Enterprise": _from_city_record,
    "ASN": _from_asn_record,
    "ISP": _from_isp_record,
    "AnonymousIP": _from_anonymous_record,
    "AnonymousPlus": _from_anonymous_plus_record,
    "ConnectionType": _from_connection_type_record,
}


class _Database:
    """One open MMDB file."""

    def __init__(self, path: Path, embedded: bool) -> None:
        import maxminddb

        self.path = path
        self.embedded = embedded
        try:
            source = _unpacked(path)
        except (EOFError, lzma.LZMAError, gzip.BadGzipFile) as exc:
            raise GeoError(f"cannot unpack GeoIP database {path}: {exc}") from exc
        mode = maxminddb.MODE_FD if not isinstance(source, Path) else maxminddb.MODE_AUTO
        try:
            self._raw: Any = maxminddb.open_database(source, mode)  # what geoip2.database.Reader opens
            self.meta: Any = self._raw.metadata()
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoError(f"cannot open GeoIP database {path}: {exc}") from exc
        self.database_type: str = self.meta.database_type
        self.kind = _kind(self.database_type)
        self._read: Callable[[dict[str, Any]], dict[str, Any]] | None = _READERS.get(self.kind)

    @property
    def has_city(self) -> bool:
        """City-level coordinates (flat databases may carry some, but are not counted on)."""
        return self.kind in ("City", "Enterprise")

    @property
    def has_class_hints(self) -> bool:
        """Says what kind of network an address is in (anonymity flags, user or connection type)."""
        return self.kind in ("AnonymousIP", "AnonymousPlus", "ConnectionType", "Enterprise")

    def lookup(self, ip: str) -> dict[str, Any]:
        try:
            rec = self._raw.get(ip)
            read = self._read
            if read is None:
                return _from_flat_record(rec)
            if rec is None:  # not in the database
                return {}
            if not isinstance(rec, dict):
                from maxminddb import InvalidDatabaseError

                raise InvalidDatabaseError(f"Expected record to be a dict but was {type(rec)}")  # as geoip2
            return read(rec)
        except ValueError:  # e.g. an IPv6 address in an IPv4-only database
            return {}

    def info(self) -> dict[str, Any]:
        built = datetime.fromtimestamp(self.meta.build_epoch, UTC)
        d: dict[str, Any] = {
            "path": str(self.path),
            "type": self.kind,
            "database_type": self.database_type,
            "build_date": built.date().isoformat(),
            "age_days": max(0, int((time.time() - self.meta.build_epoch) // 86400)),
            "embedded": self.embedded,
            "ip_version": self.meta.ip_version,
            "node_count": self.meta.node_count,
            "description": self.meta.description.get("en") or next(iter(self.meta.description.values()), ""),
        }
        if self.embedded:
            d["credit"] = EMBEDDED_CREDIT
        return d

    def close(self) -> None:
        self._raw.close()


_warned_embedded = False


class GeoResolver:
    """Looks up IPs in the configured databases, merged; the embedded ones when none is configured."""

    def __init__(self, databases: list[_Database], *, treat_documentation_as_public: bool = False,
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.databases = databases
        self.treat_documentation_as_public = treat_documentation_as_public
        self.is_embedded = bool(databases) and all(d.embedded for d in databases)
        self.has_city = any(d.has_city for d in databases)
        self.has_class_hints = any(d.has_class_hints for d in databases)
        self.lookup: Callable[[str], GeoInfo | None] = functools.lru_cache(maxsize=cache_size)(self._lookup)

    @classmethod
    def open(cls, paths: Sequence[str | Path] = (), *, treat_documentation_as_public: bool = False,
             cache_size: int = DEFAULT_CACHE_SIZE) -> GeoResolver:
        """Open the databases at ``paths`` (merged per lookup, the first that knows a field wins); with no
        path, the embedded ones (and a warning, logged once per process). Raises GeoError."""
        global _warned_embedded
        dbs: list[_Database] = []
        try:
            if paths:
                for p in paths:
                    path = Path(p).expanduser()
                    if not path.is_file():
                        raise GeoError(f"GeoIP database not found: {path} ([geoip] databases): run geoipupdate "
                                       "(docs/geoip.md), or leave databases empty to use the embedded one")
                    dbs.append(_Database(path, embedded=False))
            else:
                for name in EMBEDDED_FILES:
                    path = DATA_DIR / name
                    if path.is_file():
                        dbs.append(_Database(path, embedded=True))
                if not dbs:
                    raise GeoError(f"no GeoIP database configured and none embedded in {DATA_DIR}")
                if not _warned_embedded:
                    _warned_embedded = True
                    log.warning("%s", EMBEDDED_WARNING)
        except BaseException:
            for d in dbs:
                d.close()
            raise
        return cls(dbs, treat_documentation_as_public=treat_documentation_as_public, cache_size=cache_size)

    def _lookup(self, ip: str) -> GeoInfo | None:
        addr = lookup_address(ip)
        if addr is None:
            return None
        text = str(addr)
        if is_internal(addr, self.treat_documentation_as_public):
            return GeoInfo(text, True, None, None, None, None, None, None, None, None)
        merged: dict[str, Any] = {}
        hint: tuple[int, str, str] | None = None
        for db in self.databases:
            found = db.lookup(text)
            if not found:
                continue
            h = found.pop("_net_hint", None)
            if h is not None and (hint is None or h[0] < hint[0]):  # the strongest hint; the first on a tie
                hint = h
            if "latitude" in merged:  # a place (city + coordinates) comes whole from one database
                for k in ("city", "latitude", "longitude", "accuracy_km"):
                    found.pop(k, None)
            if "asn" in merged and found.get("asn") != merged["asn"]:
                found.pop("asn_org", None)  # an organisation only with its own AS number
            for k, v in found.items():
                merged.setdefault(k, v)
        cc = merged.get("country")
        return GeoInfo(
            ip=text, internal=False, country=cc,
            country_name=merged.get("country_name") or (country_name(cc) if cc else None),
            city=merged.get("city"), latitude=merged.get("latitude"), longitude=merged.get("longitude"),
            accuracy_km=merged.get("accuracy_km"), asn=merged.get("asn"), asn_org=merged.get("asn_org"),
            net_class=hint[1] if hint else None, net_class_source=hint[2] if hint else None,
        )

    def cache_info(self) -> Any:
        return self.lookup.cache_info()  # type: ignore[attr-defined]

    def info(self) -> list[dict[str, Any]]:
        """One dict per database: path, type (City/Country/ASN/ISP/Enterprise/AnonymousIP/AnonymousPlus/
        ConnectionType/flat), database_type, build date, age in days, embedded, IP version, node count,
        description (and credit when embedded)."""
        return [d.info() for d in self.databases]

    def enrich(self, event: Any) -> Any:
        """Set ``event.geo`` from ``event.ip`` (when not set yet); returns the event."""
        if getattr(event, "geo", None) is None and getattr(event, "ip", None):
            event.geo = self.lookup(event.ip)
        return event

    def close(self) -> None:
        self.lookup.cache_clear()  # type: ignore[attr-defined]
        for d in self.databases:
            d.close()
        self.databases = []

    def __enter__(self) -> GeoResolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
