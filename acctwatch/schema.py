"""The configuration schema: every section and key of ``acctwatch.toml``, its type, range and default, in one
place. Loading (``acctwatch.config.load`` validates with it before building the Config), ``acctwatch config
check`` and ``acctwatch config show`` all use it.

Structure and types are checked by msgspec (a small, fast, well-kept validation library: unknown keys and
wrong types are errors with their location; its import costs ~15 ms where pydantic's costs ~250 ms, which
matters for a command that replays a small file). Values are then checked here (durations parsed in one
place, ``config.parse_duration``; time zones, networks, country codes, AS numbers). The detectors' and the
lock backends' options come from their own ``defaults`` (one definition each, with their code), so a new
detector or backend is in the schema without a line here.

Every problem is one line naming the file, the section, the key and what is allowed, with the closest
known key for a typo: ``acctwatch.toml: [allowlist] unknown key 'account'; did you mean 'accounts'?``
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from .config import DEFAULT_PRESET, DEFAULT_STATE_DIR, MODES, POLICIES, PRESETS, ConfigError, parse_duration

#: a duration: seconds, or text like "90s", "10m", "24h", "14d", "2w" (parse_duration)
Duration = int | float | str
StrList = str | list[str]
Count = Annotated[int, Meta(ge=1)]
NonNeg = Annotated[int, Meta(ge=0)]


class _S(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    pass


class General(_S):
    mode: Literal["dry-run", "enforce"] = "dry-run"
    state_dir: str = str(DEFAULT_STATE_DIR)
    db: str | None = None
    timezone: str = "local"
    year: Annotated[int, Meta(ge=1970, le=2200)] | None = None
    preset: Literal["familiarity", "seed"] = DEFAULT_PRESET  # type: ignore[assignment]
    patterns_dir: StrList = []
    incident_cooldown: Duration = "6h"
    protected_accounts: StrList = msgspec.field(default_factory=lambda: ["postmaster", "root", "abuse"])


class Sources(_S):
    files: StrList = []
    journald: bool = False
    journald_units: StrList = []
    journald_identifiers: StrList = []
    journalctl: str = "journalctl"
    journalctl_args: StrList = []
    poll_interval: Duration = "0.5s"
    rotate_grace: Duration = "1s"
    batch_lines: Annotated[int, Meta(ge=1, le=1_000_000)] = 10_000
    instance: str = ""


class GeoIP(_S):
    databases: StrList = []
    documentation_ranges_public: bool = False


class Allowlist(_S):
    accounts: StrList = []
    networks: StrList = []
    countries: StrList = []
    asns: list[int | str] = []


class Response(_S):
    hold: StrList = msgspec.field(default_factory=lambda: ["postsuper"])
    lock: StrList = msgspec.field(default_factory=lambda: ["sql", "doveadm"])
    max_locks_per_hour: Count = 10
    breaker_window: Duration = "1h"
    protected_accounts: StrList = []
    notify_user: bool = True


class NotifyUser(_S):
    url: str | None = None
    sql_url: str | None = None
    sql_query: str | None = None
    addresses: dict[str, str] = {}
    enabled: bool = True


class Notify(_S):
    operator: StrList = []
    operator_config: StrList = []
    timeout: Duration = "15s"
    max_unknown_attempts: Count = 3
    retry_base: Duration = "30s"
    retry_max: Duration = "1h"
    user: NotifyUser = msgspec.field(default_factory=NotifyUser)


class DecisionLog(_S):
    path: str | None = None
    syslog: bool = False
    syslog_address: str = "/dev/log"
    syslog_facility: str = "auth"
    actions: list[Literal["watch", "notify", "hold", "lock"]] = msgspec.field(
        default_factory=lambda: ["notify", "hold", "lock"])
    state: str | None = None
    state_max: Count = 20_000


class Retention(_S):
    incidents: Duration = "365d"  # by last seen; kept while the account is held or locked
    audit: Duration = "365d"  # kept while the account is held or locked
    notifications: Duration = "30d"  # sent (or given up) alerts; pending ones are never deleted
    bans: Duration = "30d"  # fail2ban bans reported to acctwatch
    feedback: Duration = "400d"  # what operators taught the profiles


class StoreSection(_S):
    retention: Retention = msgspec.field(default_factory=Retention)
    purge_interval: Duration = "1h"  # how often the daemon purges (at start too)


class Metrics(_S):
    listen: str | None = None  # "127.0.0.1:9419": serve Prometheus metrics at /metrics (off by default)


#: the sections and their schema; detectors, accounts and lockers are tables of tables (below)
SECTIONS: dict[str, type[Struct]] = {
    "general": General, "sources": Sources, "geoip": GeoIP, "allowlist": Allowlist, "response": Response,
    "notify": Notify, "decision_log": DecisionLog, "metrics": Metrics, "store": StoreSection,
}
DURATIONS = {"general": ("incident_cooldown",), "sources": ("poll_interval", "rotate_grace"),
             "response": ("breaker_window",), "notify": ("timeout", "retry_base", "retry_max"),
             "store": ("purge_interval",)}
TABLES = ("detectors", "accounts", "lockers", "networks", "familiarity")
ALL_SECTIONS = (*SECTIONS, *TABLES)


# ------------------------------------------------------------------------------ schemas made from defaults
def _type_of(value: Any, duration: bool) -> Any:
    if duration:
        return Duration
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return NonNeg
    if isinstance(value, float):
        return Annotated[float, Meta(ge=0)]
    if isinstance(value, str):
        return str
    if isinstance(value, list):
        if value and all(isinstance(x, str) for x in value):
            return StrList
        return list[Any]
    if isinstance(value, dict):
        return dict[str, Any]
    return Any


def _defstruct(name: str, defaults: dict[str, Any], durations: tuple[str, ...] = (),
               extra: dict[str, tuple[Any, Any]] | None = None, lists_may_be_false: bool = False) -> type[Struct]:
    """A schema from a ``defaults`` dict: each key's type is its default's (durations: a duration; a
    backend's argv lists may also be ``false``, e.g. ``postqueue = false``: the backend checks the rest)."""
    fields: list[tuple[str, Any, Any]] = []
    for k, v in defaults.items():
        if isinstance(v, list | dict):
            t = _type_of(v, k in durations)
            if lists_may_be_false and isinstance(v, list):
                t = t | bool
            fields.append((k, t, msgspec.field(default_factory=lambda v=v: type(v)(v))))
        else:
            fields.append((k, _type_of(v, k in durations), v))
    for k, (t, d) in (extra or {}).items():
        fields.append((k, t, d))
    return msgspec.defstruct(name, fields, bases=(_S,), kw_only=True, forbid_unknown_fields=True,
                             omit_defaults=True)


_DETECTORS: dict[str, tuple[type[Struct], tuple[str, ...], Any]] = {}
_LOCKERS: dict[str, tuple[type[Struct], Any]] = {}


def detector_schemas() -> dict[str, tuple[type[Struct], tuple[str, ...], Any]]:
    """detector name -> (schema, duration keys, class), from each registered detector's ``defaults``."""
    if not _DETECTORS:
        from .detectors import load_all

        for name, cls in sorted(load_all().items()):
            extra = {"policy": (Literal["watch", "notify", "hold", "lock"], cls.default_policy),
                     "enabled": (bool, True)}
            _DETECTORS[name] = (_defstruct(f"detectors.{name}", dict(cls.defaults), tuple(cls.durations), extra),
                                tuple(cls.durations), cls)
    return _DETECTORS


def locker_schemas() -> dict[str, tuple[type[Struct], Any]]:
    """backend type -> (schema, class), from each lock backend's ``defaults`` (plus ``type``)."""
    if not _LOCKERS:
        from .actions.lockers import BACKENDS, backend_class

        for kind in sorted(BACKENDS):
            cls = backend_class(kind)
            _LOCKERS[kind] = (_defstruct(f"lockers.{kind}", dict(cls.defaults), (),
                                         {"type": (str, kind)}, lists_may_be_false=True), cls)
    return _LOCKERS


def familiarity_schema() -> type[Struct]:
    from .profiles import DEFAULTS
    from .profiles import DURATIONS as FAM_DURATIONS

    return _defstruct("familiarity", DEFAULTS, tuple(FAM_DURATIONS), {"enabled": (bool, True)})


def networks_schema() -> type[Struct]:
    from .netclass import KNOWN_KEYS

    kinds = {"networks": (StrList, []), "asns": (list[int | str], []), "names": (StrList, []),
             "bool": (bool, True)}
    return msgspec.defstruct("networks", [(k, kinds[v][0], msgspec.field(default_factory=lambda d=kinds[v][1]:
                                                                      type(d)(d)) if isinstance(kinds[v][1], list)
                                           else kinds[v][1]) for k, v in KNOWN_KEYS.items()],
                             bases=(_S,), kw_only=True, forbid_unknown_fields=True, omit_defaults=True)


# ---------------------------------------------------------------------------------------- validation
_LOC = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_TYPES = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false",
          "array": "a list", "object": "a table", "null": "nothing", "int | float | str":
          "a duration such as \"90s\", \"10m\", \"24h\", \"14d\" or a number of seconds",
          "str | array": "a string or a list of strings", "int | str": "a number or a string"}


def _fields(cls: Any) -> list[str]:
    return [f.name for f in msgspec.structs.fields(cls)]


def _descend(cls: Any, parts: list[str]) -> Any:
    for p in parts:
        nxt = None
        for f in msgspec.structs.fields(cls):
            if f.name == p and isinstance(f.type, type) and issubclass(f.type, Struct):
                nxt = f.type
        if nxt is None:
            return None
        cls = nxt
    return cls


def _literal(cls: Any, parts: list[str]) -> str:
    """The allowed values of the Literal field at *parts* ("'a', 'b'"), or ""."""
    keys = [p for p in parts if not p.isdigit()]
    target = _descend(cls, keys[:-1]) if keys else None
    if target is None:
        return ""
    import typing

    for f in msgspec.structs.fields(target):
        if f.name == keys[-1]:
            t = f.type
            args = typing.get_args(t)
            if typing.get_origin(t) is list and args:
                args = typing.get_args(args[0])
            if typing.get_origin(t) is typing.Literal or (args and all(isinstance(a, str) for a in args)):
                return ", ".join(repr(a) for a in args if isinstance(a, str))
    return ""


def _value_at(data: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(data, dict) and p in data:
            data = data[p]
        elif isinstance(data, list) and p.isdigit() and int(p) < len(data):
            data = data[int(p)]
        else:
            return None
    return data


def _say(v: Any) -> str:
    if isinstance(v, str):
        return f"{v!r} (a string)"
    if isinstance(v, bool):
        return "true" if v else "false"
    text = repr(v)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(v, list):
        return f"a list, {text}"
    if isinstance(v, dict):
        return f"a table, {text}"
    return text


def _translate(exc: msgspec.ValidationError, section: str, cls: Any, data: Any) -> str:
    """A msgspec error as one line: ``[section] key: what is wrong; what is allowed``."""
    msg = str(exc)
    m = _LOC.search(msg)
    raw_path = m.group("path") if m else ""
    text = msg[: m.start()] if m else msg
    parts = [p for p in re.split(r"\.|\[|\]", raw_path) if p]
    names = [p for p in parts if not p.isdigit()]
    where = section + "".join(f".{p}" for p in names[:-1])
    u = re.match(r"Object contains unknown field `(?P<k>[^`]*)`", text)
    if u:
        key = u.group("k")
        target = _descend(cls, parts)
        known = _fields(target) if target is not None else []
        label = f"[{section}{''.join('.' + p for p in parts if not p.isdigit())}]"
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else (f" (allowed: {', '.join(known)})" if known else "")
        return f"{label} unknown key '{key}'{hint}"
    key = next((p for p in reversed(parts) if not p.isdigit()), "")
    label = f"[{where}] {key}" if key else f"[{section}]"
    e = re.match(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`", text)
    if e:
        w = e.group("want").removesuffix(" | null")
        want = _TYPES.get(w, w)
        allowed = _literal(cls, parts)
        if allowed:
            want = f"one of {allowed}"
        got = _value_at(data, parts)
        return f"{label}: expected {want}, got {_say(got) if got is not None else e.group('got')}"
    inv = re.match(r"Invalid enum value (?P<v>.*)", text)
    if inv:
        allowed = _literal(cls, parts)
        return f"{label}: {inv.group('v')} is not allowed" + (f"; one of {allowed}" if allowed else "")
    rng = re.match(r"Expected `(?P<t>\w+)` (?P<op>[<>]=?) (?P<n>\S+)$", text)
    if rng:
        want = {"int": "a whole number", "float": "a number"}.get(rng.group("t"), rng.group("t"))
        return f"{label}: expected {want} {rng.group('op')} {rng.group('n')}, got {_value_at(data, parts)!r}"
    return f"{label}: {text}"


def _check(section: str, cls: Any, data: Any, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"[{section}] must be a table (a [{section}] header with key = value lines), "
                        f"got {_say(data)}")
        return None
    try:
        return msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as exc:
        problems.append(_translate(exc, section, cls, data))
        return None


def _durations(section: str, data: dict[str, Any], keys: tuple[str, ...], problems: list[str]) -> None:
    for k in keys:
        if k in data:
            try:
                if parse_duration(data[k], f"[{section}] {k}") <= 0:
                    problems.append(f"[{section}] {k}: must be longer than 0, got {data[k]!r}")
            except ConfigError as exc:
                problems.append(str(exc))


def _zone(name: Any) -> str | None:
    if not isinstance(name, str) or name in ("local", "UTC", "utc"):
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return (f"[general] timezone: unknown time zone {name!r}: use \"local\", \"UTC\" or a name like "
                f"\"Europe/Berlin\" (see /usr/share/zoneinfo)")
    return None


def _strs(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _semantic(data: dict[str, Any], problems: list[str]) -> None:
    g = data.get("general") if isinstance(data.get("general"), dict) else {}
    tz = _zone(g.get("timezone"))
    if tz:
        problems.append(tz)
    al = data.get("allowlist") if isinstance(data.get("allowlist"), dict) else {}
    for n in _strs(al.get("networks", [])):
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError:
            problems.append(f"[allowlist] networks: {n!r} is not a network: write it like \"192.0.2.0/24\" or "
                            "\"2001:db8::/48\"")
    for c in _strs(al.get("countries", [])):
        if not re.fullmatch(r"[A-Za-z]{2}", c):
            problems.append(f"[allowlist] countries: {c!r} is not a two-letter country code like \"DE\"")
    for a in al.get("asns", []) if isinstance(al.get("asns"), list) else []:
        if not re.fullmatch(r"(?i:AS)?\d{1,10}", str(a)):
            problems.append(f"[allowlist] asns: {a!r} is not an AS number like 3320 or \"AS3320\"")
    for sec, keys in DURATIONS.items():
        if isinstance(data.get(sec), dict):
            _durations(sec, data[sec], keys, problems)
    st = data.get("store") if isinstance(data.get("store"), dict) else {}
    if isinstance(st.get("retention"), dict):
        _durations("store.retention", st["retention"], tuple(_fields(Retention)), problems)
    m = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    if isinstance(m.get("listen"), str):
        from .metrics import parse_listen

        try:
            parse_listen(m["listen"])
        except ConfigError as exc:
            problems.append(str(exc))


def validate(data: dict[str, Any]) -> list[str]:
    """Every problem of a parsed config file, one line each (empty: the file is valid)."""
    problems: list[str] = []
    for key in data:
        if key not in ALL_SECTIONS:
            close = difflib.get_close_matches(key, ALL_SECTIONS, n=1, cutoff=0.6)
            hint = f"; did you mean [{close[0]}]?" if close else f" (sections: {', '.join(ALL_SECTIONS)})"
            problems.append(f"unknown section [{key}]{hint}")
    for sec, cls in SECTIONS.items():
        if sec in data:
            _check(sec, cls, data[sec], problems)
    if "familiarity" in data and _check("familiarity", familiarity_schema(), data["familiarity"], problems):
        from .profiles import DURATIONS as FAM_DURATIONS

        _durations("familiarity", data["familiarity"], tuple(FAM_DURATIONS), problems)
    if "networks" in data:
        _check("networks", networks_schema(), data["networks"], problems)
    dets = detector_schemas()
    for name, opts in _tables(data, "detectors", problems).items():
        _detector(name, opts, f"detectors.{name}", dets, problems)
    for acct, a in _tables(data, "accounts", problems).items():
        unknown = set(a) - {"detectors", "extra_countries"}
        for k in sorted(unknown):
            close = difflib.get_close_matches(k, ["detectors", "extra_countries"], n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else " (allowed: extra_countries, detectors)"
            problems.append(f"[accounts.\"{acct}\"] unknown key '{k}'{hint}")
        ec = a.get("extra_countries", [])
        if not isinstance(ec, str | list) or not all(re.fullmatch(r"[A-Za-z]{2}", c) for c in _strs(ec)) \
                or (isinstance(ec, list) and len(_strs(ec)) != len(ec)):
            problems.append(f"[accounts.\"{acct}\"] extra_countries: expected two-letter country codes like "
                            f"[\"US\"], got {ec!r}")
        sub = a.get("detectors", {})
        if not isinstance(sub, dict):
            problems.append(f"[accounts.\"{acct}\".detectors] must be a table of detector tables")
            continue
        for name, opts in sub.items():
            _detector(name, opts, f"accounts.\"{acct}\".detectors.{name}", dets, problems)
    lockers = _tables(data, "lockers", problems)
    lks = locker_schemas() if lockers else {}  # (the backends' modules import SQLAlchemy: only when needed)
    for name, opts in lockers.items():
        kind = opts.get("type", name)
        if kind not in lks:
            close = difflib.get_close_matches(str(kind), list(lks), n=1, cutoff=0.6)
            what = f"type = {kind!r}" if "type" in opts else f"[lockers.{name}] is no backend name and has no type"
            hint = f"; did you mean '{close[0]}'?" if close else f" (backends: {', '.join(lks)})"
            problems.append(f"[lockers.{name}] {what}: unknown lock backend{hint}")
            continue
        _check(f"lockers.{name}", lks[kind][0], opts, problems)
    _semantic(data, problems)
    return problems


def _tables(data: dict[str, Any], section: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    v = data.get(section, {})
    if not isinstance(v, dict):
        problems.append(f"[{section}] must be a table of tables, e.g. [{section}.NAME]")
        return {}
    out = {}
    for k, t in v.items():
        if isinstance(t, dict):
            out[k] = t
        else:
            problems.append(f"[{section}.{k}] must be a table (key = value lines under a [{section}.{k}] "
                            f"header), got {_say(t)}")
    return out


def _detector(name: str, opts: dict[str, Any], where: str, dets: dict[str, Any], problems: list[str]) -> None:
    if name not in dets:
        close = difflib.get_close_matches(name, list(dets), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f" (detectors: {', '.join(dets)})"
        problems.append(f"[{where}] unknown detector '{name}'{hint}")
        return
    cls, durations, _impl = dets[name]
    if _check(where, cls, opts, problems) is not None:
        _durations(where, opts, durations, problems)


def check(data: dict[str, Any], where: str) -> None:
    """Raise ConfigError listing every problem (one per line, each prefixed with *where*, the file)."""
    problems = validate(data)
    if problems:
        raise ConfigError("\n".join(f"{where}: {p}" for p in problems))


# ------------------------------------------------------------------------------------------ effective
def retention(data: dict[str, Any]) -> tuple[dict[str, float], float]:
    """([store] retention per family in seconds, the purge interval in seconds), defaults filled in."""
    st = msgspec.convert(data.get("store", {}), StoreSection, strict=True)
    r = {f: parse_duration(getattr(st.retention, f), f"[store.retention] {f}") for f in _fields(Retention)}
    return r, parse_duration(st.purge_interval, "[store] purge_interval")


def effective(data: dict[str, Any]) -> dict[str, Any]:
    """The configuration as acctwatch runs it: every key with its value (the file's, else the default)."""
    out: dict[str, Any] = {}
    for sec, cls in SECTIONS.items():
        given = data.get(sec, {})
        obj = msgspec.convert(given, cls, strict=True)
        out[sec] = _all(obj)
    out["familiarity"] = _all(msgspec.convert(data.get("familiarity", {}), familiarity_schema(), strict=True))
    out["networks"] = _all(msgspec.convert(data.get("networks", {}), networks_schema(), strict=True))
    dets = detector_schemas()
    out["detectors"] = {}
    for name, (cls, _d, _impl) in dets.items():
        user = data.get("detectors", {}).get(name)
        preset = PRESETS.get(str(data.get("general", {}).get("preset", DEFAULT_PRESET)), {}).get(name, {})
        merged = {**preset, **(user or {})}
        if user is not None and "enabled" not in user:
            merged.pop("enabled", None)
        out["detectors"][name] = _all(msgspec.convert(merged, cls, strict=True))
    lks = locker_schemas()
    out["lockers"] = {}
    for name, opts in data.get("lockers", {}).items():
        kind = opts.get("type", name)
        out["lockers"][name] = _all(msgspec.convert(opts, lks[kind][0], strict=True))
    if data.get("accounts"):
        out["accounts"] = data["accounts"]
    return out


def _all(obj: Any) -> dict[str, Any]:
    out = {}
    for f in msgspec.structs.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = _all(v) if isinstance(v, Struct) else msgspec.to_builtins(v)
    return out


__all__ = ["ALL_SECTIONS", "MODES", "POLICIES", "SECTIONS", "check", "detector_schemas", "effective",
           "locker_schemas", "validate"]
