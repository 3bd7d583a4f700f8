"""Configuration: one TOML file (``/etc/acctwatch/acctwatch.toml`` by default), every key optional.

See ``examples/acctwatch.toml`` for a commented example of every section. Errors name the file, the key
and what is expected, so that a typo is found at start, not at 3 a.m.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/acctwatch/acctwatch.toml")
DEFAULT_STATE_DIR = Path("/var/lib/acctwatch")
POLICIES = ("watch", "notify", "hold", "lock")
#: response levels, weakest first (a finding's level, an incident's, a lock's). ``watch``: the incident is
#: recorded (``acctwatch incidents``, the decision log if asked, metrics) and raises its network's suspicion,
#: but no alert is sent; a later finding raises it to notify/hold/lock.
LEVELS = {p: i for i, p in enumerate(POLICIES)}
MODES = ("dry-run", "enforce")

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hour|hours|d|day|days|w|week|weeks)?\s*$")
_UNIT = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hour": 3600, "hours": 3600,
         "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}


#: Detector presets ([general] preset): defaults beneath the user's [detectors.*] tables. A detector the
#: user configures a table for is enabled unless that table says ``enabled = false``.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # judge logins against each account's familiar networks (account_risk); the single-rule geography and
    # brute-force detectors it replaces stay off
    "familiarity": {
        "geo_countries": {"enabled": False},
        "impossible_travel": {"enabled": False},
        "new_country": {"enabled": False},
        "bruteforce_success": {"enabled": False},
        "banned_ip_login": {"enabled": False},
    },
    # the seed rules as they were: 2 countries within 1 minute -> lock, impossible travel -> lock, fixed
    # sending limits -> hold; no familiarity
    "seed": {
        "account_risk": {"enabled": False},
        "send_burst": {"judge_familiar": False},
        "bounce_ratio": {"judge_familiar": False},
        "ip_spread": {"skip_familiar": False},
        "auth_failures_ip": {"skip_familiar": False},
    },
}
DEFAULT_PRESET = "familiarity"


class ConfigError(ValueError):
    """The configuration is invalid; the message says where and what to fix."""


def parse_duration(value: Any, where: str = "duration") -> float:
    """Seconds from ``90``, ``"90s"``, ``"1m"``, ``"24h"``, ``"14d"``, ``"2w"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like '60s', '1m', '24h', '14d', got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _DUR.match(str(value))
    if not m:
        raise ConfigError(f"{where}: expected a duration like '60s', '1m', '24h', '14d', got {value!r}")
    return float(m.group(1)) * _UNIT[m.group(2) or "s"]


@dataclass
class Allowlist:
    """What never counts: accounts skipped entirely, logins from trusted networks/countries/ASNs ignored."""

    accounts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    countries: frozenset[str] = frozenset()
    asns: frozenset[int] = frozenset()
    #: account -> extra countries that are normal for it (e.g. a user living abroad)
    extra_countries: dict[str, frozenset[str]] = field(default_factory=dict)

    def account_allowed(self, account: str | None) -> bool:
        return account is not None and account.lower() in self.accounts

    def ip_allowed(self, ip: str | None) -> bool:
        if not ip or not self.networks:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.networks if net.version == addr.version)


@dataclass
class Config:
    path: Path | None = None
    mode: str = "dry-run"
    state_dir: Path = DEFAULT_STATE_DIR
    db: str | None = None
    timezone: str = "local"
    year: int | None = None
    preset: str = DEFAULT_PRESET
    geoip_db: list[str] = field(default_factory=list)
    geoip_documentation_public: bool = False
    patterns_dirs: list[str] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowlist: Allowlist = field(default_factory=Allowlist)
    protected_accounts: frozenset[str] = frozenset({"postmaster", "root", "abuse"})
    incident_cooldown: float = 6 * 3600.0
    response: dict[str, Any] = field(default_factory=dict)
    lockers: dict[str, dict[str, Any]] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)
    decision_log: dict[str, Any] = field(default_factory=dict)
    #: [networks]: network classes from the admin (ASNs, CIDRs, organisation names per class); see netclass.py
    networks: dict[str, Any] = field(default_factory=dict)
    #: [familiarity]: how per-account profiles learn (see profiles.py)
    familiarity: dict[str, Any] = field(default_factory=dict)
    #: [metrics]: listen = "127.0.0.1:9419" serves Prometheus metrics (see metrics.py)
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.state_dir / 'acctwatch.db'}"

    def detector_options(self, name: str) -> dict[str, Any]:
        """The options of detector *name*: the preset's defaults beneath the user's own table."""
        base = dict(PRESETS.get(self.preset, {}).get(name, {}))
        user = self.detectors.get(name)
        if user is None:
            return base
        base.pop("enabled", None)
        return {**base, **user}

    @property
    def instance(self) -> str:
        """This acctwatch's instance name ([sources] instance, default: the host name): the key of its
        positions, windows and notification leases when several share one store."""
        import socket

        src = self.sources if isinstance(self.sources, dict) else {}
        return str(src.get("instance") or socket.gethostname())

    def is_protected(self, account: str) -> bool:
        low = account.lower()
        return low in self.protected_accounts or low.partition("@")[0] in self.protected_accounts


def _table(d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return v


def _strlist(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: expected a string or a list of strings, got {v!r}")
    return list(v)


def from_dict(data: dict[str, Any], path: Path | None = None) -> Config:
    """The Config of a parsed file. Every section and key is first checked against the schema
    (``acctwatch.schema``): ConfigError with one line per problem."""
    where = str(path) if path else "config"
    from .schema import check

    check(data, where)
    cfg = Config(path=path, raw=data)
    known = {"general", "sources", "detectors", "accounts", "allowlist", "response", "lockers", "notify",
             "geoip", "decision_log", "networks", "familiarity", "metrics", "store"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(known))})")
    g = _table(data, "general", where)
    mode = g.get("mode", "dry-run")
    if mode not in MODES:
        raise ConfigError(f"{where}: general.mode must be 'dry-run' or 'enforce', got {mode!r}")
    cfg.mode = mode
    if "state_dir" in g:
        cfg.state_dir = Path(g["state_dir"])
    cfg.db = g.get("db")
    cfg.timezone = g.get("timezone", "local")
    preset = g.get("preset", DEFAULT_PRESET)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(f"{where}: general.preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    cfg.preset = preset
    cfg.year = g.get("year")
    cfg.patterns_dirs = _strlist(g.get("patterns_dir"), f"{where}: general.patterns_dir")
    if "incident_cooldown" in g:
        cfg.incident_cooldown = parse_duration(g["incident_cooldown"], f"{where}: general.incident_cooldown")
    if "protected_accounts" in g:
        cfg.protected_accounts = frozenset(a.lower() for a in _strlist(g["protected_accounts"], where))
    geo = _table(data, "geoip", where)
    cfg.geoip_db = _strlist(geo.get("databases"), f"{where}: geoip.databases")
    cfg.geoip_documentation_public = bool(geo.get("documentation_ranges_public", False))
    cfg.sources = _table(data, "sources", where)
    dets = _table(data, "detectors", where)
    for name, opts in dets.items():
        if not isinstance(opts, dict):
            raise ConfigError(f"{where}: [detectors.{name}] must be a table")
        if "policy" in opts and opts["policy"] not in POLICIES:
            raise ConfigError(f"{where}: detectors.{name}.policy must be one of {', '.join(POLICIES)}")
    cfg.detectors = dets
    cfg.accounts = {k.lower(): v for k, v in _table(data, "accounts", where).items()}
    al = _table(data, "allowlist", where)
    nets = []
    for n in _strlist(al.get("networks"), f"{where}: allowlist.networks"):
        try:
            nets.append(ipaddress.ip_network(n, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{where}: allowlist.networks: {n!r} is not a network (CIDR): {exc}") from exc
    asns = []
    for a in al.get("asns", []):
        try:
            asns.append(int(str(a).upper().removeprefix("AS")))
        except ValueError as exc:
            raise ConfigError(f"{where}: allowlist.asns: {a!r} is not an AS number") from exc
    extra: dict[str, frozenset[str]] = {}
    for acct, opts in cfg.accounts.items():
        if isinstance(opts, dict) and "extra_countries" in opts:
            extra[acct] = frozenset(c.upper() for c in _strlist(opts["extra_countries"], where))
    cfg.allowlist = Allowlist(
        accounts=frozenset(a.lower() for a in _strlist(al.get("accounts"), f"{where}: allowlist.accounts")),
        networks=tuple(nets),
        countries=frozenset(c.upper() for c in _strlist(al.get("countries"), f"{where}: allowlist.countries")),
        asns=frozenset(asns),
        extra_countries=extra,
    )
    cfg.response = _table(data, "response", where)
    cfg.lockers = _table(data, "lockers", where)
    cfg.notify = _table(data, "notify", where)
    cfg.decision_log = _table(data, "decision_log", where)
    cfg.networks = _table(data, "networks", where)
    cfg.familiarity = _table(data, "familiarity", where)
    cfg.metrics = _table(data, "metrics", where)
    return cfg


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load *path*; without one, the default file if it exists, else the built-in defaults."""
    if path is None:
        env = os.environ.get("ACCTWATCH_CONFIG")
        if env:
            path = env
        elif DEFAULT_CONFIG.exists():
            path = DEFAULT_CONFIG
        else:
            return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    return from_dict(data, p)
