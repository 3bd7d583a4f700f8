"""acctwatch.geo reads the raw maxminddb records (no geoip2 model objects): the same fields, the same values
and the same errors as the geoip2-model path it replaced, kept here (only here) as the reference.

Compared field by field (values and their types, and the exception class where a record makes geoip2 raise):
every network of the test databases in ``tests/fixtures/geo``, a few thousand sampled addresses of the
embedded databases, and synthetic databases of every kind with odd records (missing or empty parts, names
without "en", registered/represented countries, flags as strings, malformed parts). ``is_internal`` is
compared with the old per-network ``addr in net`` test around every range boundary."""

from __future__ import annotations

import ipaddress
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geoip2.database
import geoip2.errors
import pytest

from acctwatch import geo
from acctwatch.geo import GeoInfo, GeoResolver

FIX = Path(__file__).resolve().parent / "fixtures" / "geo"
FIXTURES = sorted(FIX.glob("test-*.mmdb"))


# ------------------------------------------------------------------------- the reference: geoip2 models
def ref_class_hint(rec: Any) -> tuple[int, str, str] | None:
    """acctwatch.geo._class_hint as it was: a geoip2 model object's attributes, or a dict's keys."""
    get: Callable[[str], Any] = rec.get if isinstance(rec, dict) else (lambda k: getattr(rec, k, None))
    for flag, cls in geo._ANON_FLAGS:
        v = get(flag)
        if v is True or v == 1 or (isinstance(v, str) and v.lower() in ("true", "1", "yes")):
            return (geo._HINT_RANK["anon"], cls, f"mmdb:{flag}")
    ut = get("user_type")
    if isinstance(ut, str) and ut.strip().lower() in geo.USER_TYPES:
        return (geo._HINT_RANK["user_type"], geo.USER_TYPES[ut.strip().lower()], f"mmdb:user_type={ut.strip()}")
    ct = get("connection_type")
    if isinstance(ct, str) and ct.strip().lower() in geo.CONNECTION_TYPES:
        return (geo._HINT_RANK["connection_type"], geo.CONNECTION_TYPES[ct.strip().lower()],
                f"mmdb:connection_type={ct.strip()}")
    return None


def ref_with_hint(out: dict[str, Any], rec: Any) -> dict[str, Any]:
    hint = ref_class_hint(rec)
    if hint is not None:
        out["_net_hint"] = hint
    return out


def ref_from_country(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    c = model.country if model.country.iso_code else model.registered_country
    if c.iso_code:
        out["country"] = c.iso_code
        out["country_name"] = c.name or geo.country_name(c.iso_code)
    return out


def ref_lookup(reader: geoip2.database.Reader, kind: str, ip: str) -> dict[str, Any]:
    """acctwatch.geo._Database.lookup as it was, through geoip2's Reader and model classes."""
    try:
        if kind == "flat":
            rec = reader._db_reader.get(ip)
            out = geo._parse_flat(rec)
            if isinstance(rec, dict):
                ref_with_hint(out, rec.get("traits") if isinstance(rec.get("traits"), dict) else rec)
            return out
        if kind == "AnonymousIP":
            return ref_with_hint({}, reader.anonymous_ip(ip))
        if kind == "AnonymousPlus":
            return ref_with_hint({}, reader.anonymous_plus(ip))
        if kind == "ConnectionType":
            return ref_with_hint({}, reader.connection_type(ip))
        if kind == "ASN":
            a = reader.asn(ip)
            return {k: v for k, v in (("asn", a.autonomous_system_number),
                                      ("asn_org", a.autonomous_system_organization)) if v is not None}
        if kind == "ISP":
            i = reader.isp(ip)
            return {k: v for k, v in (("asn", i.autonomous_system_number),
                                      ("asn_org", i.autonomous_system_organization or i.isp)) if v is not None}
        if kind == "Country":
            return ref_from_country(reader.country(ip))
        model = reader.enterprise(ip) if kind == "Enterprise" else reader.city(ip)
        out = ref_from_country(model)
        loc = model.location
        if loc.latitude is not None and loc.longitude is not None:
            out["latitude"], out["longitude"] = float(loc.latitude), float(loc.longitude)
            if loc.accuracy_radius is not None:
                out["accuracy_km"] = float(loc.accuracy_radius)
        if model.city.name:
            out["city"] = model.city.name
        traits = model.traits
        asn = getattr(traits, "autonomous_system_number", None)
        if asn is not None:
            out["asn"] = asn
            org = getattr(traits, "autonomous_system_organization", None)
            if org:
                out["asn_org"] = org
        return ref_with_hint(out, traits)
    except geoip2.errors.AddressNotFoundError:
        return {}
    except ValueError:
        return {}


def ref_is_internal(addr: Any, treat_documentation_as_public: bool = False) -> bool:
    nets = geo._INTERNAL_V4 if addr.version == 4 else geo._INTERNAL_V6
    if any(addr in n for n in nets):
        return True
    return not treat_documentation_as_public and any(addr in n for n in geo._DOCUMENTATION
                                                     if n.version == addr.version)


class RefDatabase:
    """A stand-in for ``_Database`` answering through the reference path (for GeoResolver)."""

    def __init__(self, db: geo._Database, path: Path) -> None:
        self.reader = geoip2.database.Reader(str(path))
        self.kind, self.embedded = db.kind, db.embedded
        self.has_city, self.has_class_hints = db.has_city, db.has_class_hints

    def lookup(self, ip: str) -> dict[str, Any]:
        return ref_lookup(self.reader, self.kind, ip)

    def close(self) -> None:
        self.reader.close()


# -------------------------------------------------------------------------------------------- helpers
def typed(v: Any) -> Any:
    """A value with the types of its parts (1 == 1.0 == True would hide a difference)."""
    if isinstance(v, dict):
        return {k: typed(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [typed(x) for x in v])
    return (type(v).__name__, v)


def outcome(f: Callable[..., Any], *args: Any) -> Any:
    """What ``f(*args)`` gives, with types, or the class of what it raises."""
    try:
        r = f(*args)
    except Exception as exc:  # the reference's errors are part of what must stay the same
        return ("raises", type(exc))
    return ("ok", typed(r.to_dict() if isinstance(r, GeoInfo) else r))


def addresses(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Iterator[str]:
    """First, last and middle address of a network, and its neighbours."""
    first, last = int(net.network_address), int(net.broadcast_address)
    top = 2 ** net.max_prefixlen - 1
    cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    for n in (first, last, (first + last) // 2, first - 1, last + 1):
        if 0 <= n <= top:
            yield str(cls(n))


def sampled(rng: random.Random, n4: int, n6: int) -> list[str]:
    out = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(n4)]
    out += [str(ipaddress.IPv6Address((1 << 125) | rng.getrandbits(125))) for _ in range(n6)]  # 2000::/3
    return out


def variants(ip: str) -> list[str]:
    """How an address may come out of a log line: as it is, bracketed, with a zone, IPv4-mapped, NAT64."""
    out = [ip, f"[{ip}]", f" {ip} ", f"{ip}%eth0"]
    if ":" not in ip:
        out += [f"::ffff:{ip}", f"64:ff9b::{ip}", f"[::ffff:{ip}]"]
    return out


def compare_db(db: geo._Database, path: Path, ips: list[str]) -> int:
    ref = geoip2.database.Reader(str(path))
    try:
        diffs = [(ip, fast, old) for ip in ips
                 for fast, old in ((outcome(db.lookup, ip), outcome(ref_lookup, ref, db.kind, ip)),)
                 if fast != old]
    finally:
        ref.close()
    assert not diffs, f"{path.name} ({db.kind}): {diffs[:5]}"
    return len(ips)


def compare_resolvers(fast: GeoResolver, paths: list[Path], ips: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    refs = [RefDatabase(d, p) for d, p in zip(fast.databases, paths, strict=True)]
    old = GeoResolver(refs, treat_documentation_as_public=fast.treat_documentation_as_public)  # type: ignore[arg-type]
    got = {ip: outcome(fast._lookup, ip) for ip in ips}
    with monkeypatch.context() as m:
        m.setattr(geo, "is_internal", ref_is_internal)
        want = {ip: outcome(old._lookup, ip) for ip in ips}
    for r in refs:
        r.close()
    diffs = [(ip, got[ip], want[ip]) for ip in ips if got[ip] != want[ip]]
    assert not diffs, diffs[:5]


def fixture_ips(path: Path) -> list[str]:
    db = geo._Database(path, embedded=False)
    try:
        ips = [ip for net, _rec in db._raw for ip in addresses(net)]
    finally:
        db.close()
    ips += ["192.0.2.1", "2001:db8::1", "2001:db8:8000::1", "8.8.8.8", "2a00:1450::1", "0.0.0.0", "::",
            "255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "not an ip", "", "1.2.3"]
    return ips


# ---------------------------------------------------------------------------------- the test databases
def test_fixtures_are_all_there() -> None:
    kinds = set()
    for p in FIXTURES:
        db = geo._Database(p, embedded=False)
        kinds.add(db.kind)
        db.close()
    assert kinds == {"City", "Country", "ASN", "flat", "AnonymousIP", "Enterprise", "ConnectionType"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_network_of_the_test_databases(path: Path) -> None:
    db = geo._Database(path, embedded=False)
    try:
        ips = fixture_ips(path)
        assert compare_db(db, path, ips) > 10
        assert any(db.lookup(ip) for ip in ips)  # not only misses
    finally:
        db.close()


@pytest.mark.parametrize("combo", [("city", "asn"), ("country", "asn"), ("flat", "asn"), ("city", "flat", "anon"),
                                   ("enterprise", "conntype", "anon"), ("anon", "conntype", "city"),
                                   ("v4only", "city"), ("asn", "enterprise", "country")])
@pytest.mark.parametrize("doc_public", [True, False])
def test_merged_lookups_of_the_test_databases(combo: tuple[str, ...], doc_public: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [FIX / f"test-{n}.mmdb" for n in combo]
    ips = [v for p in paths for ip in fixture_ips(p) for v in variants(ip)]
    ips += ["10.1.2.3", "127.0.0.1", "100.64.0.1", "169.254.1.1", "fe80::1%eth0", "[::1]", "fc00::1",
            "::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::1", "ff02::1", "224.0.0.1", "3fff::1"]
    with GeoResolver.open(paths, treat_documentation_as_public=doc_public) as fast:
        compare_resolvers(fast, paths, ips, monkeypatch)


# ------------------------------------------------------------------------------- the embedded databases
@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GeoResolver, list[Path]]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("ACCTWATCH_CACHE_DIR", str(tmp_path_factory.mktemp("geo-cache")))
    unpacked: list[Path] = []
    try:
        r = GeoResolver.open()
        for d in r.databases:
            p = geo._unpacked(d.path)  # the cache file the resolver opened
            assert isinstance(p, Path)
            unpacked.append(p)
    finally:
        mp.undo()
    yield r, unpacked
    r.close()


def test_embedded_databases_sampled(embedded: tuple[GeoResolver, list[Path]]) -> None:
    r, paths = embedded
    assert [d.kind for d in r.databases] == ["Country", "ASN"]
    rng = random.Random(15)
    ips = sampled(rng, 3000, 1000)
    for db, path in zip(r.databases, paths, strict=True):
        compare_db(db, path, ips)
        hits = sum(1 for ip in ips if db.lookup(ip))
        assert hits > 1500, (db.kind, hits)


def test_embedded_resolver_sampled(embedded: tuple[GeoResolver, list[Path]], monkeypatch: pytest.MonkeyPatch) -> None:
    r, paths = embedded
    rng = random.Random(1515)
    ips = [v for ip in sampled(rng, 1500, 500) for v in (ip, *variants(ip)[4:5])]  # and IPv4-mapped
    ips += ["10.0.0.1", "192.0.2.1", "::1", "fe80::1", "::ffff:192.168.1.1", "bogus", "300.1.1.1"]
    compare_resolvers(r, paths, ips, monkeypatch)


# ---------------------------------------------------------------------- synthetic records of every kind
NAMES = {"names": {"en": "Germany", "de": "Deutschland"}}
#: kind -> (database_type, records that are no usual GeoIP2 record but geoip2 reads, or fails on, somehow)
ODD: dict[str, tuple[str, list[Any]]] = {
    "Country": ("GeoLite2-Country", [
        {"country": {"iso_code": "DE", **NAMES}},
        {"country": {"iso_code": "DE"}},  # no names: the embedded table's name
        {"country": {"iso_code": "DE", "names": {"de": "Deutschland"}}},  # no "en"
        {"country": {"iso_code": "DE", "names": {"en": ""}}},
        {"country": {"iso_code": "ZZ"}},  # neither names nor a table entry
        {"country": {"iso_code": ""}, "registered_country": {"iso_code": "FR", "names": {"en": "France"}}},
        {"country": {}, "registered_country": {"iso_code": "FR"}},
        {"country": {"names": {"en": "Nowhere"}}, "registered_country": {"names": {"en": "Either"}}},
        {"registered_country": {"iso_code": "US", "names": {"en": "United States"}},
         "represented_country": {"iso_code": "DE", "type": "military", **NAMES}},
        {"country": {"iso_code": "US"}, "represented_country": {"iso_code": "DE", "type": "military"}},
        {"represented_country": {"iso_code": "DE", "type": "military"}},  # only represented: no country
        {"continent": {"code": "EU", "names": {"en": "Europe"}}},
        {"country": [], "registered_country": "", "continent": 0},  # empty parts count as missing
        {"country": {"iso_code": 7, "names": {"en": "Seven"}}},  # not a code, but geoip2 passes it on
        {"country": {"iso_code": 7}},  # ... and then the name lookup fails
        {"country": {"iso_code": "DE", "names": "xenx"}},
        {"country": {"iso_code": "DE", "names": 5}},
        {"country": {"iso_code": "DE", "names": ["en"]}},
        {"country": {"iso_code": "DE", "names": 0}},
        {"country": {"iso_code": "DE", "names": {}}},
        {"country": "DE"},  # a part that is no map
        {"continent": ["EU"], "country": {"iso_code": "DE"}},
        {"represented_country": True, "country": {"iso_code": "DE"}},
        {"maxmind": "x", "country": {"iso_code": "DE"}},
        {"traits": "x", "country": {"iso_code": "DE"}},
        {"traits": {"network": "bogus"}, "country": {"iso_code": "DE"}},  # geoip2 parses it: no answer
        {"traits": {"network": "11.0.0.0/16", "is_anonymous_vpn": True}, "country": {"iso_code": "DE"}},
        {"country": {"iso_code": "DE", "locales": ["en"]}},
        {"ip_address": "1.2.3.4", "country": {"iso_code": "DE"}},
        {"prefix_len": 3, "country": {"iso_code": "DE"}},
        {"locales": ["de"], "country": {"iso_code": "DE"}},
        {"city": "Berlin", "location": "x", "country": {"iso_code": "DE"}},  # parts a Country model ignores
        "DE",  # a record that is no map at all
        ["DE"],
        {},
    ]),
    "City": ("GeoLite2-City", [
        {"country": {"iso_code": "DE"}, "city": {"names": {"en": "Berlin"}},
         "location": {"latitude": 52.52, "longitude": 13.405, "accuracy_radius": 20}},
        {"country": {"iso_code": "DE"}, "location": {"latitude": 52.52}},  # half a place
        {"country": {"iso_code": "DE"}, "location": {"longitude": 13.4, "accuracy_radius": 5}},
        {"location": {"latitude": 0.0, "longitude": 0.0}},  # zero is a place
        {"location": {"latitude": 1, "longitude": 2, "accuracy_radius": 3}},  # integers become floats
        {"location": {"latitude": "1.5", "longitude": "2.5"}},
        {"location": {"latitude": "north", "longitude": "2.5"}},  # ValueError: no answer
        {"location": {"latitude": [1], "longitude": 2.5}},  # TypeError
        {"location": {"latitude": 1.0, "longitude": 2.0, "accuracy_radius": "far"}},
        {"city": {"names": {"de": "München"}}, "country": {"iso_code": "DE"}},
        {"city": {"names": {"en": ""}}, "country": {"iso_code": "DE"}},
        {"city": {"geoname_id": 1}},
        {"city": "Berlin"},
        {"city": {"locales": 1}},
        {"postal": ["10115"]},
        {"postal": {"code": "10115"}, "subdivisions": [{"iso_code": "BE", "names": {"en": "Berlin"}}]},
        {"subdivisions": {"iso_code": "BE"}},
        {"subdivisions": ["BE"]},
        {"subdivisions": [{"iso_code": "BE", "locales": 1}]},
        {"subdivisions": []},
        {"traits": {"autonomous_system_number": 3320, "autonomous_system_organization": "DTAG"}},
        {"traits": {"autonomous_system_number": 3320, "autonomous_system_organization": ""}},
        {"traits": {"autonomous_system_organization": "no number"}},
        {"traits": {"autonomous_system_number": 0}},
        {"traits": {"is_anonymous_vpn": True}},
        {"traits": {"is_hosting_provider": 1}},
        {"traits": {"is_tor_exit_node": "yes", "is_public_proxy": "no"}},
        {"traits": {"is_anonymous": False, "user_type": " Hosting "}},
        {"traits": {"user_type": "router", "connection_type": "Cellular"}},
        {"traits": {"connection_type": "cable/DSL"}},
        {"traits": {"connection_type": "Corporate", "is_residential_proxy": True}},
        {"traits": {"user_type": 5}},
        {"traits": []},
        {"traits": ["x"]},
    ]),
    "Enterprise": ("GeoIP2-Enterprise", [
        {"country": {"iso_code": "AU", "names": {"en": "Australia"}}, "city": {"names": {"en": "Sydney"}},
         "location": {"latitude": -33.8, "longitude": 151.2, "accuracy_radius": 200},
         "traits": {"autonomous_system_number": 1221, "autonomous_system_organization": "Telstra",
                    "user_type": "residential", "connection_type": "Cable/DSL", "isp": "Telstra"}},
        {"registered_country": {"iso_code": "AU"}, "traits": {"user_type": "consumer_privacy_network"}},
        {"traits": {"network": "203.0.113.0/24", "user_type": "hosting"}},
        {"traits": {"network": "203.0.113.0/33"}},
        {"traits": {"network": 5}},
        {"traits": {"network": "", "user_type": "hosting"}},  # geoip2 parses "" too: no answer
        {"traits": {"network": "0.0.0.0/0", "is_hosting_provider": True}},
        {"location": {"latitude": 1.0, "longitude": 2.0}, "city": {"names": {"en": "X"}}, "postal": "x"},
    ]),
    "ASN": ("GeoLite2-ASN", [
        {"autonomous_system_number": 3320, "autonomous_system_organization": "Deutsche Telekom AG"},
        {"autonomous_system_number": 3320},
        {"autonomous_system_organization": "no number"},
        {"autonomous_system_number": 3320, "autonomous_system_organization": ""},  # kept, as geoip2 gives it
        {"autonomous_system_number": "AS3320"},
        {"autonomous_system_number": 1, "network": "11.0.0.0/8"},
        {"autonomous_system_number": 1, "network": "bogus"},
        {"autonomous_system_number": 1, "network": ""},
        {"autonomous_system_number": 1, "ip_address": "1.1.1.1"},
        {"autonomous_system_number": 1, "prefix_len": 8},
        {"autonomous_system_number": 1, "locales": ["en"]},  # a flat model takes no locales: ignored
        {},
        "AS3320",
    ]),
    "ISP": ("GeoIP2-ISP", [
        {"autonomous_system_number": 3320, "autonomous_system_organization": "DTAG", "isp": "Telekom"},
        {"autonomous_system_number": 3320, "isp": "Telekom"},
        {"autonomous_system_number": 3320, "autonomous_system_organization": "", "isp": "Telekom"},
        {"autonomous_system_number": 3320, "autonomous_system_organization": "", "isp": ""},
        {"isp": "Telekom", "organization": "Org"},
        {"organization": "Org", "mobile_country_code": "262"},
        {"isp": "x", "network": "bogus"},
    ]),
    "AnonymousIP": ("GeoIP2-Anonymous-IP", [
        {"is_anonymous": True, "is_anonymous_vpn": True},
        {"is_anonymous": True, "is_hosting_provider": True, "is_anonymous_vpn": True},
        {"is_anonymous": True},
        {"is_tor_exit_node": "true"},
        {"is_public_proxy": 1, "is_residential_proxy": 0},
        {"is_anonymous": False, "user_type": "hosting", "connection_type": "Cellular"},  # not AnonymousIP fields
        {"user_type": "residential"},
        {"is_anonymous_vpn": True, "network": "bogus"},
        {"is_anonymous_vpn": True, "ip_address": "x"},
        {},
    ]),
    "AnonymousPlus": ("GeoIP-Anonymous-Plus", [
        {"is_anonymous": True, "is_anonymous_vpn": True, "anonymizer_confidence": 99, "provider_name": "Nord",
         "network_last_seen": "2025-12-01"},
        {"is_anonymous": True, "network_last_seen": "yesterday"},  # geoip2 parses the date: no answer
        {"is_anonymous": True, "network_last_seen": 20251201},
        {"is_hosting_provider": True, "user_type": "residential"},
        {"connection_type": "Cellular"},
        {},
    ]),
    "ConnectionType": ("GeoIP2-Connection-Type", [
        {"connection_type": "Cellular"},
        {"connection_type": " cable/dsl "},
        {"connection_type": "Corporate"},
        {"connection_type": "Satellite", "is_anonymous_vpn": True, "user_type": "hosting"},  # not its fields
        {"is_anonymous_vpn": True},
        {"connection_type": 3},
        {"connection_type": "Dialup", "network": "bogus"},
        {},
    ]),
    "flat": ("acctwatch-flat", [
        {"country_code": "de", "asn": "AS3320", "traits": {"is_anonymous_vpn": True}},
        {"country": {"iso_code": "FR", "names": {"en": "France"}}, "is_hosting_provider": True},
        "DE",
    ]),
}


def build_odd(tmp: Path, kind: str) -> tuple[Path, list[str]]:
    """A database of ``kind`` with ODD's records, record i over 11.i.0.0/16 and 2001:db8:i::/48."""
    mmdb_writer = pytest.importorskip("mmdb_writer")
    from netaddr import IPSet

    database_type, records = ODD[kind]
    w = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type,
                               languages=["en"], description={"en": f"odd {kind} records"})
    ips = []
    for i, rec in enumerate(records):
        w.insert_network(IPSet([f"11.{i}.0.0/16", f"2001:db8:{i:x}::/48"]), rec)
        ips += [f"11.{i}.0.1", f"11.{i}.255.255", f"2001:db8:{i:x}::1"]
    ips += ["12.0.0.1", "2001:db8:ffff::1"]  # in no network
    path = tmp / f"odd-{kind}.mmdb"
    w.to_db_file(str(path))
    return path, ips


@pytest.mark.parametrize("kind", sorted(ODD))
def test_odd_records_of_every_kind(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, ips = build_odd(tmp_path, kind)
    db = geo._Database(path, embedded=False)
    try:
        assert db.kind == kind
        compare_db(db, path, ips)
        results = [outcome(db.lookup, ip) for ip in ips]
        assert any(r[0] == "ok" and r[1] for r in results)
    finally:
        db.close()
    with GeoResolver.open([path], treat_documentation_as_public=True) as fast:
        compare_resolvers(fast, [path], [v for ip in ips for v in variants(ip)], monkeypatch)


def test_odd_records_answer_as_geoip2_says(tmp_path: Path) -> None:
    """A few of the comparisons above spelled out."""
    import maxminddb

    path, _ = build_odd(tmp_path, "Country")
    records = ODD["Country"][1]

    def at(rec: Any) -> str:
        return f"11.{records.index(rec)}.0.1"

    db = geo._Database(path, embedded=False)
    try:
        assert db.lookup(at({"country": {"iso_code": "DE"}})) == {"country": "DE", "country_name": "Germany"}
        assert db.lookup(at({"country": {}, "registered_country": {"iso_code": "FR"}})) == {
            "country": "FR", "country_name": "France"}
        assert db.lookup(at({"represented_country": {"iso_code": "DE", "type": "military"}})) == {}
        assert db.lookup(at({"traits": {"network": "bogus"}, "country": {"iso_code": "DE"}})) == {}  # ValueError
        with pytest.raises(TypeError):
            db.lookup(at({"country": "DE"}))
        with pytest.raises(maxminddb.InvalidDatabaseError):
            db.lookup(at("DE"))
    finally:
        db.close()


# ---------------------------------------------------------------------------------------- is_internal
def test_is_internal_same_as_testing_each_network() -> None:
    rng = random.Random(7)
    addrs: list[Any] = []
    for n in (*geo._INTERNAL_V4, *geo._INTERNAL_V6, *geo._DOCUMENTATION, geo._NAT64):
        addrs += [ipaddress.ip_address(a) for a in addresses(n)]
    addrs += [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(3000)]
    addrs += [ipaddress.IPv6Address(rng.getrandbits(128)) for _ in range(1000)]
    addrs += [ipaddress.IPv6Address(rng.getrandbits(12) << 116 | rng.getrandbits(64)) for _ in range(1000)]
    addrs += [ipaddress.ip_address(a) for a in ("0.0.0.0", "255.255.255.255", "::", "::1", "::2", "::ffff:10.0.0.1")]
    for a in addrs:
        for doc in (False, True):
            assert geo.is_internal(a, doc) == ref_is_internal(a, doc), (a, doc)


def test_country_centroid_cached_same_as_the_table() -> None:
    table = geo._countries()
    for code in [*table, *(c.lower() for c in table), "ZZ", "", "D"]:
        c = table.get(code.upper()) if code else None
        want = None if c is None or "lat" not in c else (float(c["lat"]), float(c["lon"]))
        assert geo.country_centroid(code) == want
        assert geo.country_centroid(code) == want  # from the cache


def test_geo_module_imports_neither_geoip2_nor_maxminddb() -> None:
    code = ("import sys, acctwatch.geo, acctwatch.detectors.geo; "
            "print(sorted(m for m in ('geoip2', 'maxminddb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_label_same_as_before() -> None:
    def old_label(g: GeoInfo) -> str:
        if g.internal:
            return "internal"
        where = ", ".join(p for p in (g.city, g.country) if p) or "unknown location"
        if g.asn is not None:
            org = f" {g.asn_org}" if g.asn_org else ""
            return f"{where} (AS{g.asn}{org})"
        return where

    for internal in (False, True):
        for city in (None, "", "Berlin"):
            for country in (None, "", "DE"):
                for asn in (None, 0, 3320):
                    for org in (None, "", "DTAG"):
                        g = GeoInfo("192.0.2.1", internal, country, None, city, None, None, None, asn, org)
                        assert g.label() == old_label(g)
