"""Enrichment: the network class and the familiarity key of each client IP.

``NetworkClassifier.classify(ip, geo)`` says what kind of network an address is in -- an ``eyeball``
network (the ISPs and mobile carriers people connect from), a ``datacenter`` (hosting, cloud), a ``vpn``,
a ``gateway`` (a company's cloud security gateway: Zscaler, Netskope, ...), an ``anonymizer`` (Tor exits,
open and residential proxies), ``internal``, or ``unknown`` -- and gives the
*key* under which an account's familiar networks are remembered:

* eyeball networks: the AS number (``"AS3320"``): a DSL line's or a phone's address changes within the
  carrier, and the carrier is what is familiar;
* datacenter, vpn, gateway and anonymizer networks, and addresses without a known AS: the /24 (IPv4) or /48 (IPv6)
  prefix (``"203.0.113.0/24"``): one cloud or VPN AS is millions of unrelated customers, so "this account
  used AWS before" means nothing, while "this account used this /24 before" does;
* internal addresses: ``"internal"``.

Sources, the first that knows wins:

1. the config's ``[networks]`` table: ``internal_networks``, ``<class>_networks`` (CIDRs; the longest
   matching prefix wins), ``<class>_asns``, ``<class>_names`` (substrings of the AS organisation);
2. what the admin's MaxMind-format databases say (``GeoInfo.net_class``: GeoIP2 Anonymous IP flags,
   Enterprise ``user_type``, ``connection_type``; see ``acctwatch.geo``);
3. the ASNs shipped in ``acctwatch/data/networks.toml`` (unless ``shipped_lists = false``);
4. organisation-name heuristics from the same file ("hosting", "cloud", "vps", ... -> datacenter);
5. default: ``eyeball`` when the AS is known, ``unknown`` otherwise; ``internal`` when the resolver says so.

Results are cached per IP in a bounded dict (a mail server sees the same few thousand addresses), so
``classify`` costs a dict lookup on the hot path.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError
from .geo import is_internal, lookup_address

CLASSES = ("eyeball", "datacenter", "vpn", "gateway", "anonymizer", "internal", "unknown")
#: The classes whose addresses are hosted (keyed per /24 or /48; a provider's many exits are one provider)
HOSTED = frozenset({"datacenter", "vpn", "gateway", "anonymizer"})
#: The classes an admin or a data file can assign (internal only by CIDR, unknown never).
_LIST_CLASSES = ("eyeball", "datacenter", "vpn", "gateway", "anonymizer")
SHIPPED_FILE = Path(__file__).resolve().parent / "data" / "networks.toml"
DEFAULT_CACHE_SIZE = 65536
V4_PREFIX = 24
V6_PREFIX = 48

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: the [networks] keys: kind of value per key
KNOWN_KEYS: dict[str, str] = {
    "internal_networks": "networks",
    **{f"{c}_networks": "networks" for c in _LIST_CLASSES},
    **{f"{c}_asns": "asns" for c in _LIST_CLASSES},
    "datacenter_names": "names",
    "vpn_names": "names",
    "gateway_names": "names",
    "eyeball_names": "names",
    "shipped_lists": "bool",
}


@dataclass(frozen=True, slots=True)
class NetInfo:
    """The network an address is in, as the detectors see it."""

    key: str  # familiarity key: "AS3320" (eyeball), "203.0.113.0/24" / "2001:db8:1::/48", or "internal"
    cls: str  # one of CLASSES
    provider: str | None  # "AS16509" when the AS is known
    source: str  # why this class: "config:vpn_asns", "mmdb:is_anonymous_vpn", "list:datacenter", "default", ...

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "class": self.cls, "provider": self.provider, "source": self.source}

    def label(self) -> str:
        """Human text, e.g. ``datacenter 203.0.113.0/24 (AS16509, list:datacenter)``."""
        prov = f"{self.provider}, " if self.provider and self.provider != self.key else ""
        return f"{self.cls} {self.key} ({prov}{self.source})"


# ------------------------------------------------------------------------------------------ parsing
def parse_asn(value: Any, where: str) -> int:
    """``64500`` or ``"AS64500"`` (any case, surrounding space ok) -> 64500; ConfigError otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {value!r} is not an AS number (use 64500 or \"AS64500\")")
    n: int | None = None
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        s = value.strip().upper().removeprefix("AS")
        if s.isdigit():
            n = int(s)
    if n is None or not 0 < n < 2**32:
        raise ConfigError(f"{where}: {value!r} is not an AS number (use 64500 or \"AS64500\", 1 to 4294967295)")
    return n


def _as_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [value]  # one value where a list was meant: accept it
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    return value


def _parse_networks(value: Any, where: str) -> list[_Network]:
    out = []
    for v in _as_list(value, where):
        if not isinstance(v, str):
            raise ConfigError(f"{where}: {v!r} is not a network (use a CIDR like \"203.0.113.0/24\")")
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"{where}: {v!r} is not a network (use a CIDR like \"203.0.113.0/24\"): {exc}") from exc
    return out


def _parse_names(value: Any, where: str) -> list[str]:
    out = []
    for v in _as_list(value, where):
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"{where}: {v!r} is not an organisation-name substring (a non-empty string)")
        out.append(v.strip().casefold())
    return out


@dataclass(frozen=True)
class _Lists:
    """ASN -> (class, source) and ordered (substring, class, source) name rules."""

    asns: dict[int, tuple[str, str]]
    names: tuple[tuple[str, str, str], ...]


def _name_rules(by_class: dict[str, list[str]], prefix: str, suffix: str) -> tuple[tuple[str, str, str], ...]:
    # eyeball names first: they are the exceptions ("Example Cloud Broadband" is an ISP), then the more
    # specific classes before the broad datacenter words
    rules = []
    for cls in ("eyeball", "anonymizer", "gateway", "vpn", "datacenter"):
        for n in by_class.get(cls, ()):
            rules.append((n, cls, f"{prefix}{cls}{suffix}"))
    return tuple(rules)


@functools.cache
def load_shipped(path: Path = SHIPPED_FILE) -> _Lists:
    """The shipped well-known networks (``acctwatch/data/networks.toml``). Raises ValueError when the file
    is malformed or lists an AS number in two classes."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the shipped network list {path}: {exc}") from exc
    asns: dict[int, tuple[str, str]] = {}
    names: dict[str, list[str]] = {}
    for cls, table in data.items():
        if cls not in _LIST_CLASSES or not isinstance(table, dict) or set(table) - {"asns", "names"}:
            raise ValueError(f"{path}: [{cls}]: expected a table of asns/names for one of {', '.join(_LIST_CLASSES)}")
        for v in table.get("asns", []):
            try:
                n = parse_asn(v, f"{path}: [{cls}] asns")
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
            if n in asns:
                raise ValueError(f"{path}: AS{n} is listed in [{asns[n][0]}] and [{cls}]")
            asns[n] = (cls, f"list:{cls}")
        try:
            names[cls] = _parse_names(table.get("names", []), f"{path}: [{cls}] names")
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
    return _Lists(asns, _name_rules(names, "name:", ""))


def _prefix_key(addr: _IPAddress) -> str:
    plen = V4_PREFIX if addr.version == 4 else V6_PREFIX
    return str(ipaddress.ip_network((addr, plen), strict=False))


# ---------------------------------------------------------------------------------------- classifier
class NetworkClassifier:
    """Classifies client IPs from the config's ``[networks]``, the databases' hints and the shipped list."""

    def __init__(self, options: dict[str, Any] | None = None, where: str = "[networks]", *,
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: expected a table, got {options!r}")
        for key in options:
            if key not in KNOWN_KEYS:
                close = difflib.get_close_matches(str(key), list(KNOWN_KEYS), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(KNOWN_KEYS)}"
                raise ConfigError(f"{where}: unknown key {key!r} ({hint})")
        shipped = options.get("shipped_lists", True)
        if not isinstance(shipped, bool):
            raise ConfigError(f"{where} shipped_lists: expected true or false, got {shipped!r}")
        self.shipped: _Lists | None = load_shipped() if shipped else None

        # CIDRs, longest prefix first: the most specific network the admin named wins
        nets: dict[_Network, tuple[str, str]] = {}
        for cls in ("internal", *_LIST_CLASSES):
            key = f"{cls}_networks"
            for net in _parse_networks(options.get(key, []), f"{where} {key}"):
                if net in nets and nets[net][0] != cls:
                    raise ConfigError(f"{where} {key}: {net} is also in {nets[net][1].split(':')[1]}")
                nets[net] = (cls, f"config:{key}")
        self._v4 = tuple(sorted(((n, c) for n, c in nets.items() if n.version == 4), key=lambda x: -x[0].prefixlen))
        self._v6 = tuple(sorted(((n, c) for n, c in nets.items() if n.version == 6), key=lambda x: -x[0].prefixlen))

        asns: dict[int, tuple[str, str]] = {}
        for cls in _LIST_CLASSES:
            key = f"{cls}_asns"
            for v in _as_list(options.get(key, []), f"{where} {key}"):
                n = parse_asn(v, f"{where} {key}")
                if n in asns and asns[n][0] != cls:
                    raise ConfigError(f"{where} {key}: AS{n} is also in {asns[n][1].split(':')[1]}")
                asns[n] = (cls, f"config:{key}")
        names: dict[str, list[str]] = {}
        seen: dict[str, str] = {}
        for cls in ("eyeball", "gateway", "vpn", "datacenter"):
            key = f"{cls}_names"
            names[cls] = _parse_names(options.get(key, []), f"{where} {key}")
            for n in names[cls]:
                if seen.setdefault(n, cls) != cls:
                    raise ConfigError(f"{where} {key}: {n!r} is also in {seen[n]}_names")
        self.config = _Lists(asns, _name_rules(names, "config:", "_names"))
        self.cache_size = max(1, int(cache_size))
        self._cache: dict[str, tuple[Any, NetInfo]] = {}

    @classmethod
    def from_config(cls, config: Any) -> NetworkClassifier:
        """From a loaded ``acctwatch.config.Config`` (its ``networks`` table). Raises ConfigError."""
        path = getattr(config, "path", None)
        where = f"{path}: [networks]" if path else "[networks]"
        return cls(getattr(config, "networks", None) or {}, where)

    # ------------------------------------------------------------------------------------ lookups
    def classify(self, ip: str, geo: Any) -> NetInfo:
        """The class and familiarity key of ``ip``; ``geo`` is what the resolver said about it (a GeoInfo,
        anything with the same attributes, or None)."""
        hit = self._cache.get(ip)
        if hit is not None and (hit[0] is geo or hit[0] == geo):
            return hit[1]
        info = self._classify(ip, geo)
        cache = self._cache
        if len(cache) >= self.cache_size and ip not in cache:
            del cache[next(iter(cache))]  # the oldest entry
        cache[ip] = (geo, info)
        return info

    def cache_clear(self) -> None:
        self._cache.clear()

    def _match_network(self, addr: _IPAddress) -> tuple[str, str] | None:
        for net, found in self._v4 if addr.version == 4 else self._v6:
            if addr in net:
                return found
        return None

    @staticmethod
    def _match_name(rules: Iterable[tuple[str, str, str]], org: str | None) -> tuple[str, str] | None:
        if not org:
            return None
        low = org.casefold()
        for sub, cls, source in rules:
            if sub in low:
                return (cls, source)
        return None

    def _classify(self, ip: str, geo: Any) -> NetInfo:
        addr = lookup_address(ip) if isinstance(ip, str) else None
        if addr is None and geo is not None and isinstance(getattr(geo, "ip", None), str):
            addr = lookup_address(geo.ip)
        asn = getattr(geo, "asn", None) if geo is not None else None
        if not isinstance(asn, int) or isinstance(asn, bool) or asn <= 0:
            asn = None
        provider = f"AS{asn}" if asn is not None else None
        if addr is None:
            text = ip.strip() if isinstance(ip, str) else ""
            return NetInfo(text or "unknown", "unknown", provider, "invalid-ip")

        found = self._match_network(addr)
        if found is None:
            if geo is not None and getattr(geo, "internal", False):
                found = ("internal", "geo:internal")
            elif geo is None and is_internal(addr, treat_documentation_as_public=True):
                found = ("internal", "address:internal")
        if found is not None and found[0] == "internal":
            return NetInfo("internal", "internal", provider, found[1])

        org = getattr(geo, "asn_org", None) if geo is not None else None
        org = org if isinstance(org, str) else None
        if found is None and asn is not None:
            found = self.config.asns.get(asn)
        if found is None:
            found = self._match_name(self.config.names, org)
        if found is None and geo is not None:
            hint = getattr(geo, "net_class", None)
            if hint in _LIST_CLASSES:
                found = (hint, getattr(geo, "net_class_source", None) or "mmdb")
        if found is None and self.shipped is not None:
            if asn is not None:
                found = self.shipped.asns.get(asn)
            if found is None:
                found = self._match_name(self.shipped.names, org)
        if found is None:
            found = ("eyeball", "default") if asn is not None else ("unknown", "default")

        cls, source = found
        key = provider if cls == "eyeball" and provider is not None else _prefix_key(addr)
        return NetInfo(key, cls, provider, source)
