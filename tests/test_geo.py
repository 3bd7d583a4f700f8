"""acctwatch.geo: lookups in City/Country/ASN/flat databases, merging, internal ranges, cache, the embedded
databases, distances, and the ``acctwatch geoip`` command."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from acctwatch import geo
from acctwatch.cli import main
from acctwatch.geo import GeoError, GeoInfo, GeoResolver, country_centroid, distance_km

FIX = Path(__file__).resolve().parent / "fixtures" / "geo"
CITY, COUNTRY, ASN, FLAT, V4ONLY = (str(FIX / f"test-{n}.mmdb") for n in ("city", "country", "asn", "flat", "v4only"))


def open_test(*paths: str, **kw: object) -> GeoResolver:
    return GeoResolver.open(paths, treat_documentation_as_public=True, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> GeoResolver:
    mp = pytest.MonkeyPatch()
    mp.setenv("ACCTWATCH_CACHE_DIR", str(tmp_path_factory.mktemp("geo-cache")))
    try:
        r = GeoResolver.open()
    finally:
        mp.undo()
    yield r
    r.close()


# ------------------------------------------------------------------------------------ typed databases
def test_city_database() -> None:
    with open_test(CITY) as r:
        assert r.has_city and not r.is_embedded
        g = r.lookup("192.0.2.10")
        assert g == GeoInfo("192.0.2.10", False, "DE", "Germany", "Berlin", 52.52, 13.405, 20.0, None, None)
        assert r.lookup("192.0.2.200").city == "Munich"  # type: ignore[union-attr]
        ny = r.lookup("198.51.100.1")
        assert ny is not None and (ny.country, ny.city, ny.accuracy_km) == ("US", "New York", 100.0)
        assert r.lookup("2001:db8::5").city == "Paris"  # type: ignore[union-attr]
        fr = r.lookup("2001:db8:8000::5")  # a country without a city
        assert fr is not None and fr.country == "FR" and fr.city is None and fr.latitude is None


def test_country_database() -> None:
    with open_test(COUNTRY) as r:
        assert not r.has_city
        g = r.lookup("203.0.113.7")
        assert g is not None and (g.country, g.country_name, g.city, g.latitude) == ("AU", "Australia", None, None)
        assert r.info()[0]["type"] == "Country"


def test_asn_database() -> None:
    with open_test(ASN) as r:
        g = r.lookup("198.51.100.99")
        assert g is not None and g.asn == 7922 and g.asn_org.startswith("Comcast")  # type: ignore[union-attr]
        assert g.country is None
        assert r.info()[0]["type"] == "ASN"


def test_flat_database() -> None:
    with open_test(FLAT) as r:
        assert r.info()[0]["type"] == "flat"
        de = r.lookup("192.0.2.1")
        assert de is not None and de.country == "DE" and de.country_name == "Germany" and de.asn is None
        us = r.lookup("198.51.100.1")
        assert us is not None and (us.country, us.asn, us.asn_org) == ("US", 7922, "Comcast")
        au = r.lookup("203.0.113.1")  # "AS1221" as a string, coordinates at the top level
        assert au is not None and (au.asn, au.city, au.latitude, au.longitude) == (1221, "Sydney", -33.87, 151.21)


def test_merge_city_and_asn() -> None:
    with open_test(CITY, ASN) as r:
        g = r.lookup("192.0.2.1")
        assert g is not None
        assert (g.country, g.city, g.asn, g.asn_org) == ("DE", "Berlin", 3320, "Deutsche Telekom AG")
        assert g.label() == "Berlin, DE (AS3320 Deutsche Telekom AG)"
        assert json.loads(json.dumps(g.to_dict()))["asn"] == 3320
        assert len(r.info()) == 2


def test_merge_first_database_wins_and_org_stays_with_its_asn() -> None:
    with open_test(FLAT, ASN) as r:
        us = r.lookup("198.51.100.1")
        assert us is not None and (us.asn, us.asn_org) == (7922, "Comcast")  # flat's, not the ASN db's
        de = r.lookup("192.0.2.1")  # flat has no AS here: the ASN database fills it
        assert de is not None and (de.country, de.asn, de.asn_org) == ("DE", 3320, "Deutsche Telekom AG")
    with open_test(COUNTRY, CITY) as r:
        g = r.lookup("192.0.2.1")  # country from the first, the place from the City database
        assert g is not None and (g.country, g.city, g.latitude) == ("DE", "Berlin", 52.52)


def test_ipv4_only_database_and_ipv6_address() -> None:
    with open_test(V4ONLY) as r:
        assert r.info()[0]["ip_version"] == 4
        assert r.lookup("192.0.2.1").asn == 3320  # type: ignore[union-attr]
        g = r.lookup("2001:db8::1")
        assert g is not None and g.asn is None and g.country is None


@pytest.mark.parametrize("ip", ["::ffff:192.0.2.77", "::FFFF:192.0.2.77", "[::ffff:192.0.2.77]", " 192.0.2.77 ",
                                "64:ff9b::192.0.2.77"])
def test_ipv4_mapped_is_looked_up_as_ipv4(ip: str) -> None:
    with open_test(CITY, ASN) as r:
        g = r.lookup(ip)
        assert g is not None and g.ip == "192.0.2.77" and g.city == "Berlin" and g.asn == 3320


def test_unknown_public_address() -> None:
    with open_test(CITY) as r:
        g = r.lookup("8.8.8.8")
        assert g is not None and not g.internal and g.country is None and g.label() == "unknown location"


@pytest.mark.parametrize("ip", ["", "foo", "300.1.1.1", "1.2.3", "2001:db8::g"])
def test_unparseable_is_none(ip: str) -> None:
    with open_test(CITY) as r:
        assert r.lookup(ip) is None


# ------------------------------------------------------------------------------------- internal ranges
INTERNAL = ["10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "127.0.0.1", "127.255.0.1",
            "169.254.10.20", "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.251", "255.255.255.255",
            "198.18.0.1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "::1", "::", "ff02::1",
            "::ffff:10.0.0.1", "::ffff:127.0.0.1"]
DOCUMENTATION = ["192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1", "3fff::1"]


@pytest.mark.parametrize("ip", INTERNAL)
def test_internal_ranges(ip: str) -> None:
    with open_test(CITY, ASN) as r:
        g = r.lookup(ip)
        assert g is not None and g.internal and g.country is None and g.asn is None and g.label() == "internal"


@pytest.mark.parametrize("ip", DOCUMENTATION)
def test_documentation_ranges_internal_unless_configured(ip: str) -> None:
    with GeoResolver.open([CITY]) as r:
        assert r.lookup(ip).internal  # type: ignore[union-attr]
    with open_test(CITY) as r:
        assert not r.lookup(ip).internal  # type: ignore[union-attr]


@pytest.mark.parametrize("ip", ["100.63.255.255", "100.128.0.0", "172.32.0.1", "172.15.255.255", "11.0.0.1",
                                "2a00:1450::1", "192.0.3.1"])
def test_neighbours_of_internal_ranges_are_public(ip: str) -> None:
    with open_test(CITY) as r:
        assert not r.lookup(ip).internal  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------- caching
def test_cache_holds_hits_and_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    with open_test(CITY, cache_size=4) as r:
        calls: list[str] = []
        db = r.databases[0]
        orig = db.lookup
        monkeypatch.setattr(db, "lookup", lambda ip: calls.append(ip) or orig(ip))
        for _ in range(3):
            r.lookup("192.0.2.1")
            r.lookup("8.8.8.8")  # a miss: cached too
            r.lookup("not-an-ip")
        assert calls == ["192.0.2.1", "8.8.8.8"]
        info = r.cache_info()
        assert info.hits == 6 and info.misses == 3 and info.maxsize == 4
        for i in range(10):  # bounded
            r.lookup(f"198.51.100.{i}")
        assert r.cache_info().currsize == 4


def test_enrich_sets_event_geo() -> None:
    from datetime import UTC, datetime

    from acctwatch.events import Login

    ev = Login(ts=datetime(2026, 1, 1, tzinfo=UTC), account="a@example.org", ip="192.0.2.1")
    with open_test(CITY) as r:
        assert r.enrich(ev).geo.city == "Berlin"
        assert ev.to_dict()["geo"]["country"] == "DE"


# ------------------------------------------------------------------------------------------ errors
def test_missing_and_broken_databases(tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="not found"):
        GeoResolver.open([tmp_path / "nope.mmdb"])
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(GeoError, match="cannot open"):
        GeoResolver.open([bad])
    trunc = tmp_path / "t.mmdb.xz"
    trunc.write_bytes((geo.DATA_DIR / geo.EMBEDDED_FILES[0]).read_bytes()[:1000])
    with pytest.raises(GeoError, match="cannot unpack"):
        GeoResolver.open([trunc])


def test_compressed_database_unpacked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ACCTWATCH_CACHE_DIR", str(cache))
    gz = tmp_path / "city.mmdb.gz"
    with open(CITY, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with open_test(str(gz)) as r:
        assert r.lookup("192.0.2.1").city == "Berlin"  # type: ignore[union-attr]
    files = list(cache.glob("city-*.mmdb"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    with open_test(str(gz)) as r:
        assert r.lookup("2001:db8::1").city == "Paris"  # type: ignore[union-attr]
    assert files[0].stat().st_mtime_ns == mtime


def test_compressed_database_in_memory_when_no_cache_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(geo, "_cache_dirs", lambda: [Path("/proc/acctwatch-no-such-dir")])
    gz = tmp_path / "asn.mmdb.gz"
    gz.write_bytes(gzip.compress(Path(ASN).read_bytes()))
    with open_test(str(gz)) as r:
        assert r.lookup("203.0.113.1").asn == 1221  # type: ignore[union-attr]


# -------------------------------------------------------------------------------------- embedded data
def test_embedded_database(embedded: GeoResolver) -> None:
    assert embedded.is_embedded and not embedded.has_city
    infos = embedded.info()
    assert [i["type"] for i in infos] == ["Country", "ASN"]
    for i in infos:
        assert i["embedded"] and i["build_date"] >= "2026-01-01" and i["age_days"] >= 0 and "CC BY 4.0" in i["credit"]
    # Well-known anycast/ISP addresses whose registration and location have been stable for years
    g = embedded.lookup("8.8.8.8")
    assert g is not None and g.country == "US" and g.asn == 15169 and "Google" in (g.asn_org or "")
    assert embedded.lookup("9.9.9.9").asn == 19281  # type: ignore[union-attr]
    de = embedded.lookup("2003::1")  # Deutsche Telekom's IPv6 block
    assert de is not None and de.country == "DE" and de.asn == 3320
    assert embedded.lookup("::ffff:8.8.8.8").country == "US"  # type: ignore[union-attr]
    assert embedded.lookup("192.168.0.1").internal  # type: ignore[union-attr]


def test_embedded_warning_logged_once(caplog: pytest.LogCaptureFixture, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCTWATCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(geo, "_warned_embedded", False)
    with caplog.at_level(logging.WARNING, logger="acctwatch.geo"):
        GeoResolver.open().close()
        GeoResolver.open().close()
    msgs = [r.getMessage() for r in caplog.records if "embedded" in r.getMessage()]
    assert len(msgs) == 1 and "City database" in msgs[0]


def test_embedded_data_files_are_small_and_credited() -> None:
    total = sum(p.stat().st_size for p in geo.DATA_DIR.iterdir() if p.is_file())
    assert total < 10 * 1024 * 1024
    readme = (geo.DATA_DIR / "README.md").read_text()
    assert "db-ip.com" in readme and "CC BY 4.0" in readme and "geonames" in readme.lower()


# -------------------------------------------------------------------------------- centroids, distance
def test_country_centroids() -> None:
    assert country_centroid("ZZ") is None and country_centroid("") is None
    de = country_centroid("de")
    assert de is not None and 47 < de[0] < 55 and 6 < de[1] < 15
    us = country_centroid("US")
    assert us is not None and 30 < us[0] < 45 and -100 < us[1] < -75
    au = country_centroid("AU")
    assert au is not None and au[0] < -20 and au[1] > 130
    countries = geo._countries()
    assert len(countries) >= 245
    assert sum(1 for c in countries.values() if "lat" in c) >= 245
    assert GeoInfo("1.2.3.4", False, "DE", None, None, None, None, None, None, None).location()[3] is True


def test_distance_km() -> None:
    assert distance_km(52.52, 13.405, 52.52, 13.405) == 0
    assert distance_km(52.5200, 13.4050, 48.1371, 11.5754) == pytest.approx(504, abs=3)  # Berlin-Munich
    assert distance_km(52.5200, 13.4050, 40.7128, -74.0060) == pytest.approx(6385, abs=15)  # Berlin-New York
    assert distance_km(0, 0, 0, 180) == pytest.approx(20015, abs=5)  # half the equator
    assert distance_km(90, 0, -90, 0) == pytest.approx(20015, abs=5)
    assert distance_km(10, 179.5, 10, -179.5) < 120  # across the antimeridian


def test_labels() -> None:
    g = GeoInfo("1.2.3.4", False, "DE", "Germany", None, None, None, None, None, None)
    assert g.label() == "DE" and not g.precise
    assert GeoInfo("1.2.3.4", False, None, None, None, None, None, None, 64500, None).label() == \
        "unknown location (AS64500)"


# ------------------------------------------------------------------------------------------------ CLI
def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return res.exit_code, res.output


def test_cli_lookup_text() -> None:
    code, out = run("geoip", "lookup", "--geoip-db", CITY, "--geoip-db", ASN, "--documentation-public",
                    "192.0.2.1", "10.0.0.1")
    assert code == 0
    assert "192.0.2.1: Berlin, DE (AS3320 Deutsche Telekom AG)" in out
    assert "52.5200, 13.4050 (± 20 km)" in out
    assert "10.0.0.1: internal" in out


def test_cli_lookup_json_and_bad_ip() -> None:
    code, out = run("geoip", "lookup", "--geoip-db", CITY, "--documentation-public", "--json",
                    "::ffff:198.51.100.3", "nope")
    assert code == 1
    data = json.loads(out)
    assert data[0]["city"] == "New York" and data[0]["ip"] == "198.51.100.3"
    assert data[1] == {"ip": "nope", "error": "not an IP address"}


def test_cli_lookup_documentation_internal_by_default() -> None:
    code, out = run("geoip", "lookup", "--geoip-db", CITY, "--json", "192.0.2.1")
    assert code == 0 and json.loads(out)[0]["internal"] is True


def test_cli_info(tmp_path: Path) -> None:
    code, out = run("geoip", "info", "--geoip-db", CITY, "--geoip-db", ASN, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["has_city"] and not data["embedded"]
    assert [d["type"] for d in data["databases"]] == ["City", "ASN"]
    assert data["databases"][0]["build_date"] == "2026-01-01"
    code, out = run("geoip", "info", "--geoip-db", CITY)
    assert code == 0 and "City (GeoLite2-City)" in out and "precise coordinates (City database): yes" in out


def test_cli_info_embedded(tmp_path: Path) -> None:
    env = {"ACCTWATCH_CACHE_DIR": str(tmp_path)}
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text("")  # no [geoip] databases: the embedded ones
    code, out = run("geoip", "info", "-c", str(cfg), env=env)
    assert code == 0
    assert "embedded country-level database" in out and "City database" in out
    assert "db-ip.com" in out and "CC BY 4.0" in out and "days ago" in out
    code, out = run("geoip", "info", "-c", str(cfg), "--json", env=env)
    data = json.loads(out)
    assert data["embedded"] and "db-ip.com" in data["credit"]


def test_cli_databases_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text(f'[geoip]\ndatabases = ["{CITY}", "{ASN}"]\ndocumentation_ranges_public = true\n')
    code, out = run("geoip", "lookup", "-c", str(cfg), "--json", "203.0.113.5")
    assert code == 0
    assert json.loads(out)[0]["city"] == "Sydney"


def test_cli_missing_database(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["geoip", "lookup", "--geoip-db", str(tmp_path / "x.mmdb"), "1.1.1.1"])
    assert res.exit_code == 1 and "not found" in res.output


def test_fixtures_are_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("mmdb_writer")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_geo_fixtures", FIX / "make_geo_fixtures.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for p in mod.build(tmp_path):
        assert p.read_bytes() == (FIX / p.name).read_bytes(), f"rerun {FIX / 'make_geo_fixtures.py'}"
