"""acctwatch.netclass: network class and familiarity key per IP -- precedence of the config, the databases'
hints, the shipped list and the name heuristics; keys; config errors; the shipped data file; the
Anonymous-IP / Enterprise / Connection-Type paths through the real GeoResolver; ``acctwatch geoip lookup``."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fakegeo import FakeGeoInfo

from acctwatch import netclass
from acctwatch.cli import main
from acctwatch.config import ConfigError, from_dict
from acctwatch.geo import GeoInfo, GeoResolver
from acctwatch.netclass import CLASSES, NetInfo, NetworkClassifier, load_shipped

FIX = Path(__file__).resolve().parent / "fixtures" / "geo"
CITY, ASN, ANON, ENTERPRISE, CONNTYPE = (str(FIX / f"test-{n}.mmdb")
                                         for n in ("city", "asn", "anon", "enterprise", "conntype"))
DOCS = Path(__file__).resolve().parents[1] / "docs" / "geoip.md"


def geo(ip: str, asn: int | None = None, org: str | None = None, *, internal: bool = False,
        net_class: str | None = None, source: str | None = None) -> GeoInfo:
    return GeoInfo(ip, internal, None if internal else "DE", None, None, None, None, None, asn, org,
                   net_class, source)


def classify(ip: str, g: Any, options: dict[str, Any] | None = None) -> NetInfo:
    return NetworkClassifier(options).classify(ip, g)


# ----------------------------------------------------------------------------------------- defaults
def test_eyeball_by_default_keyed_by_asn() -> None:
    n = classify("192.0.2.1", geo("192.0.2.1", 3320, "Deutsche Telekom AG"))
    assert n == NetInfo("AS3320", "eyeball", "AS3320", "default")
    assert n.to_dict() == {"key": "AS3320", "class": "eyeball", "provider": "AS3320", "source": "default"}
    assert json.loads(json.dumps(n.to_dict()))["class"] == "eyeball"


def test_unknown_without_asn_keyed_by_prefix() -> None:
    assert classify("192.0.2.77", geo("192.0.2.77")) == NetInfo("192.0.2.0/24", "unknown", None, "default")
    v6 = classify("2001:db8:1:2::5", geo("2001:db8:1:2::5"))
    assert (v6.key, v6.cls, v6.provider) == ("2001:db8:1::/48", "unknown", None)
    assert classify("192.0.2.77", None).cls == "unknown"  # no geo at all


def test_internal() -> None:
    assert classify("10.1.2.3", geo("10.1.2.3", internal=True)) == NetInfo("internal", "internal", None, "geo:internal")
    assert classify("::ffff:192.168.1.5", None) == NetInfo("internal", "internal", None, "address:internal")
    assert classify("fe80::1%eth0", None).cls == "internal"
    # without a resolver the documentation ranges count as public (tests and examples use them)
    assert classify("203.0.113.9", None).cls == "unknown"
    # the admin's own public ranges
    n = classify("198.51.100.7", geo("198.51.100.7", 7922), {"internal_networks": ["198.51.100.0/26"]})
    assert n == NetInfo("internal", "internal", "AS7922", "config:internal_networks")


def test_invalid_ip() -> None:
    n = classify("not-an-ip", None)
    assert n.cls == "unknown" and n.source == "invalid-ip" and n.key == "not-an-ip"


# -------------------------------------------------------------------------------------------- keys
@pytest.mark.parametrize(("ip", "key"), [
    ("203.0.113.77", "203.0.113.0/24"),
    ("203.0.113.0", "203.0.113.0/24"),
    ("203.0.113.255", "203.0.113.0/24"),
    ("::ffff:203.0.113.77", "203.0.113.0/24"),  # IPv4-mapped: the IPv4 /24
    ("[::FFFF:203.0.113.77]", "203.0.113.0/24"),
    ("64:ff9b::203.0.113.77", "203.0.113.0/24"),  # NAT64
    ("2a01:4f8:c17:1234::1", "2a01:4f8:c17::/48"),
    ("2a01:4f8:c17:ffff:ffff:ffff:ffff:ffff", "2a01:4f8:c17::/48"),
    ("2001:db8::1", "2001:db8::/48"),
])
def test_datacenter_keys_are_prefixes(ip: str, key: str) -> None:
    n = classify(ip, FakeGeoInfo(ip, False, "DE", asn=16509, asn_org="Amazon.com, Inc."))
    assert (n.key, n.cls, n.provider, n.source) == (key, "datacenter", "AS16509", "list:datacenter")


def test_ipv4_mapped_eyeball_and_cache_per_spelling() -> None:
    c = NetworkClassifier({"eyeball_networks": ["192.0.2.0/24"]})
    assert c.classify("::ffff:192.0.2.9", None) == NetInfo("192.0.2.0/24", "eyeball", None,
                                                          "config:eyeball_networks")  # no AS: the prefix
    g = FakeGeoInfo("192.0.2.9", False, "DE", asn=3320)
    assert c.classify("::ffff:192.0.2.9", g).key == "AS3320"  # another geo for the same ip: not the cached one


# -------------------------------------------------------------------------------------- precedence
AWS = 16509  # in the shipped [datacenter] list
MULLVAD = 39351  # in the shipped [vpn] list


def test_shipped_lists_and_name_heuristics() -> None:
    assert classify("192.0.2.1", geo("192.0.2.1", AWS, "Amazon.com, Inc.")).source == "list:datacenter"
    n = classify("192.0.2.1", geo("192.0.2.1", MULLVAD, "31173 Services AB"))
    assert (n.cls, n.key, n.source) == ("vpn", "192.0.2.0/24", "list:vpn")
    assert classify("192.0.2.1", geo("192.0.2.1", 60729)).cls == "anonymizer"  # Tor exit operator
    n = classify("192.0.2.1", geo("192.0.2.1", 64496, "Example Web HOSTING Ltd"))
    assert (n.cls, n.key, n.source) == ("datacenter", "192.0.2.0/24", "name:datacenter")
    assert classify("192.0.2.1", geo("192.0.2.1", 64496, "ExampleVPS OU")).source == "name:datacenter"
    assert classify("192.0.2.1", geo("192.0.2.1", 64496, "Example VPN Ltd")).source == "name:vpn"
    # a small hoster with no telling name and no list entry: eyeball (documented limitation)
    assert classify("192.0.2.1", geo("192.0.2.1", 64496, "Example Networks Ltd")).cls == "eyeball"


def test_shipped_lists_can_be_switched_off() -> None:
    n = classify("192.0.2.1", geo("192.0.2.1", AWS, "Amazon Hosting"), {"shipped_lists": False})
    assert (n.cls, n.source, n.key) == ("eyeball", "default", "AS16509")


def test_mmdb_hint_beats_shipped_list() -> None:
    g = geo("192.0.2.1", AWS, "Amazon.com, Inc.", net_class="vpn", source="mmdb:is_anonymous_vpn")
    assert classify("192.0.2.1", g) == NetInfo("192.0.2.0/24", "vpn", "AS16509", "mmdb:is_anonymous_vpn")
    g = geo("192.0.2.1", MULLVAD, "31173 Services AB", net_class="datacenter", source="mmdb:user_type=hosting")
    assert classify("192.0.2.1", g).source == "mmdb:user_type=hosting"
    g = geo("192.0.2.1", 64496, "Example Hosting", net_class="eyeball", source="mmdb:user_type=residential")
    n = classify("192.0.2.1", g)  # the database beats the name heuristic, and an eyeball is keyed by its AS
    assert (n.cls, n.key, n.source) == ("eyeball", "AS64496", "mmdb:user_type=residential")
    g = geo("192.0.2.1", None, None, net_class="eyeball", source="mmdb:connection_type=Cellular")
    assert classify("192.0.2.1", g).key == "192.0.2.0/24"  # eyeball without an AS: the prefix
    assert classify("192.0.2.1", geo("192.0.2.1", 3320, net_class="bogus")).source == "default"


def test_config_beats_everything() -> None:
    g = geo("192.0.2.1", AWS, "Amazon.com, Inc.", net_class="vpn", source="mmdb:is_anonymous_vpn")
    assert classify("192.0.2.1", g, {"eyeball_asns": [AWS]}) == NetInfo("AS16509", "eyeball", "AS16509",
                                                                          "config:eyeball_asns")
    assert classify("192.0.2.1", g, {"anonymizer_asns": ["AS16509"]}).source == "config:anonymizer_asns"
    assert classify("192.0.2.1", g, {"datacenter_names": ["amazon"]}).source == "config:datacenter_names"
    assert classify("192.0.2.1", g, {"eyeball_names": ["AMAZON"]}).cls == "eyeball"
    # networks beat ASNs beat names
    opts = {"datacenter_networks": ["192.0.2.0/24"], "eyeball_asns": [AWS], "vpn_names": ["amazon"]}
    assert classify("192.0.2.1", g, opts).source == "config:datacenter_networks"
    assert classify("198.51.100.1", geo("198.51.100.1", AWS, "Amazon"), opts).source == "config:eyeball_asns"
    assert classify("198.51.100.1", geo("198.51.100.1", 64496, "Amazon"), opts).source == "config:vpn_names"


def test_longest_prefix_wins_and_ipv6_networks() -> None:
    opts = {"datacenter_networks": ["192.0.2.0/24", "2001:db8::/32"],
            "eyeball_networks": ["192.0.2.128/25"], "vpn_networks": ["2001:db8:42::/48"]}
    c = NetworkClassifier(opts)
    assert c.classify("192.0.2.1", geo("192.0.2.1", 3320)).cls == "datacenter"
    assert c.classify("192.0.2.200", geo("192.0.2.200", 3320)) == NetInfo("AS3320", "eyeball", "AS3320",
                                                                         "config:eyeball_networks")
    assert c.classify("2001:db8:42::1", None) == NetInfo("2001:db8:42::/48", "vpn", None, "config:vpn_networks")
    assert c.classify("2001:db8:43::1", None).source == "config:datacenter_networks"


def test_names_order_eyeball_first() -> None:
    opts = {"datacenter_names": ["cloud"], "eyeball_names": ["broadband"]}
    assert classify("192.0.2.1", geo("192.0.2.1", 64496, "Cloud Broadband Ltd"), opts).cls == "eyeball"


def test_fake_geo_without_net_class_fields() -> None:
    n = classify("192.0.2.1", FakeGeoInfo("192.0.2.1", False, "DE", asn=24940, asn_org="Hetzner Online GmbH"))
    assert (n.cls, n.provider) == ("datacenter", "AS24940")
    assert classify("10.0.0.1", FakeGeoInfo("10.0.0.1", True, None)).key == "internal"


# ------------------------------------------------------------------------------------------- cache
def test_cache_is_per_ip_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    c = NetworkClassifier(cache_size=3)
    calls: list[str] = []
    orig = c._classify
    monkeypatch.setattr(c, "_classify", lambda ip, g: calls.append(ip) or orig(ip, g))
    g = geo("192.0.2.1", 3320)
    for _ in range(3):
        assert c.classify("192.0.2.1", g).key == "AS3320"
        assert c.classify("192.0.2.1", geo("192.0.2.1", 3320)).key == "AS3320"  # an equal GeoInfo: cached
    assert calls == ["192.0.2.1"]
    for i in range(10):
        c.classify(f"198.51.100.{i}", None)
    assert len(c._cache) == 3


# ------------------------------------------------------------------------------------ config errors
@pytest.mark.parametrize(("options", "match"), [
    ({"vpn_asn": [1]}, r"unknown key 'vpn_asn' \(did you mean 'vpn_asns'\?\)"),
    ({"datacentre_networks": []}, r"did you mean 'datacenter_networks'"),
    ({"frobnicate": 1}, r"unknown key 'frobnicate' \(allowed: internal_networks, .*shipped_lists\)"),
    ({"vpn_networks": ["203.0.113.0/33"]}, r"\[networks\] vpn_networks: '203.0.113.0/33' is not a network"),
    ({"vpn_networks": ["example.org"]}, r"is not a network \(use a CIDR"),
    ({"vpn_networks": [24]}, r"24 is not a network"),
    ({"datacenter_asns": ["ASX1"]}, r"\[networks\] datacenter_asns: 'ASX1' is not an AS number"),
    ({"datacenter_asns": [0]}, r"0 is not an AS number"),
    ({"datacenter_asns": [2**32]}, r"is not an AS number"),
    ({"datacenter_asns": [True]}, r"True is not an AS number"),
    ({"datacenter_asns": {"a": 1}}, r"datacenter_asns: expected a list"),
    ({"vpn_asns": [64500], "eyeball_asns": ["AS64500"]}, r"AS64500 is also in"),
    ({"vpn_networks": ["192.0.2.0/24"], "datacenter_networks": ["192.0.2.0/24"]}, r"192.0.2.0/24 is also in"),
    ({"vpn_names": ["x"], "datacenter_names": ["X"]}, r"'x' is also in"),
    ({"vpn_names": [""]}, r"not an organisation-name substring"),
    ({"shipped_lists": "yes"}, r"shipped_lists: expected true or false"),
    ({"anonymizer_names": ["tor"]}, r"unknown key 'anonymizer_names'"),
])
def test_config_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NetworkClassifier(options)


def test_config_accepts_single_values_and_strings() -> None:
    c = NetworkClassifier({"vpn_asns": "AS64500", "datacenter_asns": [" as64501 ", 64502],
                           "vpn_networks": "192.0.2.0/24"})
    assert c.config.asns[64500][0] == "vpn" and c.config.asns[64501][0] == "datacenter"
    assert c.classify("192.0.2.3", None).cls == "vpn"


def test_from_config() -> None:
    cfg = from_dict({"networks": {"vpn_asns": [64500]}})
    c = NetworkClassifier.from_config(cfg)
    assert c.classify("192.0.2.1", geo("192.0.2.1", 64500)).source == "config:vpn_asns"
    with pytest.raises(ConfigError, match=r"^config: \[networks\] unknown key 'vpn_asn'; did you mean 'vpn_asns'"):
        from_dict({"networks": {"vpn_asn": [1]}})  # the schema says so when the file is loaded
    with pytest.raises(ConfigError, match=r"^/etc/acctwatch/acctwatch.toml: \[networks\] unknown key"):
        from_dict({"networks": {"vpn_asn": [1]}}, Path("/etc/acctwatch/acctwatch.toml"))
    assert NetworkClassifier.from_config(from_dict({})).classify("192.0.2.1", geo("192.0.2.1", 3320)).cls == \
        "eyeball"


def test_docs_example_is_valid() -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```toml\n(\[networks\]\n.*?)```", text, re.S)
    assert block is not None
    c = NetworkClassifier(tomllib.loads(block.group(1))["networks"])
    assert c.classify("198.51.100.5", None).cls == "internal"
    assert c.classify("203.0.113.200", None).cls == "eyeball"


# -------------------------------------------------------------------------------------- shipped file
def test_shipped_file_parses_and_has_no_asn_in_two_classes() -> None:
    data = tomllib.loads(netclass.SHIPPED_FILE.read_text(encoding="utf-8"))
    assert set(data) <= {"datacenter", "vpn", "gateway", "anonymizer", "eyeball"}
    seen: dict[int, str] = {}
    for cls, table in data.items():
        assert set(table) <= {"asns", "names"}
        for a in table.get("asns", []):
            assert isinstance(a, int) and 0 < a < 2**32
            assert a not in seen, f"AS{a} in [{seen[a]}] and [{cls}]"
            seen[a] = cls
        for n in table.get("names", []):
            assert isinstance(n, str) and n.strip() == n and n
    lists = load_shipped()
    assert lists.asns[16509] == ("datacenter", "list:datacenter")
    for a in (14618, 396982, 8075, 16276, 24940, 14061, 63949, 20473, 51167, 12876, 60781, 45102, 45090,
              31898, 8560, 197540, 9009, 60068):
        assert lists.asns[a][0] == "datacenter", a
    for a in (39351, 62371, 136787):
        assert lists.asns[a][0] == "vpn", a
    assert 31173 not in lists.asns  # "31173 Services AB" is Mullvad's company name; AS31173 is unrelated
    assert {"hosting", "cloud", "server", "vps", "data center"} <= {n for n, c, _ in lists.names if c == "datacenter"}
    assert all(c in CLASSES for c, _ in lists.asns.values())


def test_shipped_file_is_in_the_package() -> None:
    import importlib.resources as r

    assert r.files("acctwatch").joinpath("data/networks.toml").is_file()


def test_broken_shipped_file(tmp_path: Path) -> None:
    bad = tmp_path / "networks.toml"
    bad.write_text("[datacenter]\nasns = [1, 2]\n[vpn]\nasns = [2]\n")
    with pytest.raises(ValueError, match=r"AS2 is listed in \[datacenter\] and \[vpn\]"):
        load_shipped(bad)
    bad.write_text("[cdn]\nasns = [1]\n")
    with pytest.raises(ValueError, match=r"\[cdn\]"):
        load_shipped(bad)
    bad.write_text("[vpn\n")
    with pytest.raises(ValueError, match="cannot read"):
        load_shipped(bad)


# --------------------------------------------------------------------- through the real GeoResolver
def open_test(*paths: str) -> GeoResolver:
    return GeoResolver.open(paths, treat_documentation_as_public=True)


@pytest.mark.parametrize(("ip", "cls", "source"), [
    ("198.51.100.1", "vpn", "mmdb:is_anonymous_vpn"),
    ("198.51.100.20", "datacenter", "mmdb:is_hosting_provider"),
    ("198.51.100.40", "anonymizer", "mmdb:is_tor_exit_node"),
    ("198.51.100.50", "anonymizer", "mmdb:is_public_proxy"),
    ("198.51.100.70", "anonymizer", "mmdb:is_residential_proxy"),
    ("198.51.100.90", "anonymizer", "mmdb:is_anonymous"),
    ("198.51.100.100", "vpn", "mmdb:is_anonymous_vpn"),  # VPN at a hoster
    ("::ffff:198.51.100.1", "vpn", "mmdb:is_anonymous_vpn"),
    ("2001:db8:1::5", "vpn", "mmdb:is_anonymous_vpn"),
])
def test_anonymous_ip_database(ip: str, cls: str, source: str) -> None:
    with open_test(CITY, ASN, ANON) as r:
        assert [d["type"] for d in r.info()] == ["City", "ASN", "AnonymousIP"]
        assert r.has_class_hints and r.has_city
        g = r.lookup(ip)
        assert g is not None and (g.net_class, g.net_class_source) == (cls, source)
        assert g.to_dict()["net_class"] == cls
        n = NetworkClassifier().classify(ip, g)
        assert (n.cls, n.source) == (cls, source)
        assert n.key == ("2001:db8:1::/48" if ":" in g.ip else "198.51.100.0/24")
        assert n.provider == ("AS3215" if ":" in g.ip else "AS7922")


def test_anonymous_ip_database_outside_its_networks() -> None:
    with open_test(CITY, ASN, ANON) as r:
        g = r.lookup("198.51.100.200")  # Comcast, not anonymous
        assert g is not None and g.net_class is None and g.city == "New York"
        assert NetworkClassifier().classify(g.ip, g) == NetInfo("AS7922", "eyeball", "AS7922", "default")
        g = r.lookup("2001:db8:2::1")
        assert g is not None and g.net_class is None


@pytest.mark.parametrize(("ip", "cls", "source", "key"), [
    ("203.0.113.5", "eyeball", "mmdb:user_type=residential", "AS1221"),
    ("203.0.113.130", "datacenter", "mmdb:user_type=hosting", "203.0.113.0/24"),
    ("203.0.113.200", "eyeball", "mmdb:user_type=cellular", "AS1221"),
    ("203.0.113.230", "vpn", "mmdb:user_type=consumer_privacy_network", "203.0.113.0/24"),
    ("2001:db8::1", "eyeball", "mmdb:connection_type=Cellular", "AS3215"),  # no user_type: connection type
    ("2001:db8:8000::1", "eyeball", "default", "AS3215"),  # user_type "router": no hint
])
def test_enterprise_user_type(ip: str, cls: str, source: str, key: str) -> None:
    with open_test(ENTERPRISE) as r:
        assert r.info()[0]["type"] == "Enterprise"
        g = r.lookup(ip)
        assert g is not None and g.city is not None and g.asn is not None
        n = NetworkClassifier().classify(ip, g)
        assert (n.cls, n.source, n.key) == (cls, source, key)


def test_hint_precedence_across_databases() -> None:
    # Enterprise says user_type=hosting for 203.0.113.130, the connection-type database nothing there;
    # the Anonymous-IP database's flags beat user_type, which beats connection_type
    with open_test(CONNTYPE, ENTERPRISE, ANON) as r:
        assert r.lookup("203.0.113.130").net_class_source == "mmdb:user_type=hosting"  # type: ignore[union-attr]
        assert r.lookup("198.51.100.40").net_class_source == "mmdb:is_tor_exit_node"  # type: ignore[union-attr]
        assert r.lookup("192.0.2.200").net_class_source == "mmdb:connection_type=Cellular"  # type: ignore[union-attr]
        assert r.lookup("198.51.100.200").net_class is None  # type: ignore[union-attr]  # "Corporate": none
    with open_test(CONNTYPE) as r:
        assert r.info()[0]["type"] == "ConnectionType"
        g = r.lookup("192.0.2.1")
        assert g is not None and (g.net_class, g.net_class_source) == ("eyeball", "mmdb:connection_type=Cable/DSL")
        assert NetworkClassifier().classify("192.0.2.1", g).key == "192.0.2.0/24"  # no AS in this database


def test_geoinfo_positional_construction_still_works() -> None:
    g = GeoInfo("192.0.2.1", False, "DE", None, None, None, None, None, 3320, "DTAG")
    assert g.net_class is None and g.net_class_source is None
    assert g.to_dict()["net_class"] is None


# ------------------------------------------------------------------------------------------------ CLI
def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return res.exit_code, res.output


def test_cli_lookup_json_network(tmp_path: Path) -> None:
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text(f'[geoip]\ndatabases = ["{CITY}", "{ASN}", "{ANON}"]\ndocumentation_ranges_public = true\n'
                   '[networks]\ndatacenter_asns = [1221]\n')
    code, out = run("geoip", "lookup", "-c", str(cfg), "--json", "192.0.2.1", "198.51.100.1", "203.0.113.5",
                    "::ffff:10.0.0.1")
    assert code == 0, out
    data = json.loads(out)
    assert data[0]["network"] == {"key": "AS3320", "class": "eyeball", "provider": "AS3320", "source": "default"}
    assert data[1]["network"] == {"key": "198.51.100.0/24", "class": "vpn", "provider": "AS7922",
                                  "source": "mmdb:is_anonymous_vpn"}
    assert data[1]["net_class"] == "vpn" and data[1]["net_class_source"] == "mmdb:is_anonymous_vpn"
    assert data[2]["network"] == {"key": "203.0.113.0/24", "class": "datacenter", "provider": "AS1221",
                                  "source": "config:datacenter_asns"}
    assert data[3]["network"]["class"] == "internal" and data[3]["network"]["key"] == "internal"


def test_cli_lookup_text_network() -> None:
    code, out = run("geoip", "lookup", "--geoip-db", CITY, "--geoip-db", ASN, "--geoip-db", ANON,
                    "--documentation-public", "198.51.100.20", "192.0.2.1", "10.0.0.1")
    assert code == 0
    assert "network:  datacenter, key 198.51.100.0/24 (mmdb:is_hosting_provider)" in out
    assert "network:  eyeball, key AS3320 (default)" in out
    assert "network:  internal, key internal (geo:internal)" in out


def test_cli_lookup_bad_networks_config(tmp_path: Path) -> None:
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text('[networks]\nvpn_asn = [1]\n')
    res = CliRunner().invoke(main, ["geoip", "lookup", "-c", str(cfg), "--geoip-db", CITY, "192.0.2.1"])
    assert res.exit_code == 1
    assert "[networks] unknown key 'vpn_asn'; did you mean 'vpn_asns'?" in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    cfg.write_text('[networks]\nvpn_networks = ["nope"]\n')
    res = CliRunner().invoke(main, ["geoip", "lookup", "-c", str(cfg), "--geoip-db", CITY, "192.0.2.1"])
    assert res.exit_code == 1 and "'nope' is not a network" in res.output
    assert len(res.output.strip().splitlines()) == 1
