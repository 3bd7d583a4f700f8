"""``acctwatch config check | show``: validate a configuration before the daemon runs it (like ``postfix
check`` or ``fail2ban-client -t``), and print the configuration acctwatch runs (like ``postconf -n``)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import click

from ..config import DEFAULT_CONFIG, ConfigError
from .common import emit_json

_config_opt = click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                           help="Config file (default: /etc/acctwatch/acctwatch.toml, or $ACCTWATCH_CONFIG).")


@click.group("config")
def cli() -> None:
    """Check and show the configuration."""


def _path(config_path: str | None) -> Path | None:
    if config_path:
        return Path(config_path)
    env = os.environ.get("ACCTWATCH_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise click.ClickException(f"{path}: not valid TOML: {exc}") from exc


@cli.command("check")
@_config_opt
@click.option("--enforce", is_flag=True,
              help="Also run every lock backend's self-check, as enforce mode does at start (the default when "
              "the file says mode = \"enforce\").")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def check(config_path: str | None, enforce: bool, as_json: bool) -> None:
    """Validate the config file, open the GeoIP databases, the store and the log sources; with --enforce
    (or mode = "enforce") the lock backends check themselves too. Exit 0 when all is well, 1 with one line
    per problem."""
    from .. import schema
    from ..config import from_dict

    path = _path(config_path)
    name = str(path) if path else "(built-in defaults)"
    data = _read(path)
    checks: list[tuple[str, Any, str]] = []  # (what, True / False / "warn", detail)
    problems = schema.validate(data)
    checks += [("config", False, f"{name}: {p}") for p in problems]
    if not problems:
        checks.append(("config", True, f"{name}: every section and key is valid"))
        cfg = from_dict(data, path)
        checks += _environment(cfg, enforce or cfg.mode == "enforce")
    bad = [c for c in checks if c[1] is False]
    if as_json:
        emit_json({"config": name, "ok": not bad, "checks": [{"what": w, "ok": ok is not False,
                                                              "warning": ok == "warn", "detail": d}
                                                             for w, ok, d in checks]})
    else:
        for what, ok, detail in checks:
            click.echo(f"{'WARN' if ok == 'warn' else 'ok  ' if ok else 'FAIL'} {what}: {detail}")
        click.echo(f"\n{name}: {'no problems' if not bad else f'{len(bad)} problem(s)'}")
    if bad:
        raise SystemExit(1)


def _environment(cfg: Any, enforce: bool) -> list[tuple[str, Any, str]]:
    """What the daemon needs besides a valid file: GeoIP databases, the store, log sources, patterns,
    detectors, the response configuration and (enforce) the backends' self-checks."""
    from ..store import Store, mask_url, user_error

    out: list[tuple[str, Any, str]] = []

    def attempt(what: str, fn: Any) -> Any:
        try:
            return fn()
        except ConfigError as exc:
            out.extend((what, False, line) for line in str(exc).splitlines())
        except Exception as exc:
            msg = user_error(exc)
            if msg is None:
                msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            out.append((what, False, msg))
        return None

    from ..app import open_geo

    geo = attempt("geoip", lambda: open_geo(cfg))
    if geo is not None:
        infos = [d.get("path") or d.get("type") for d in geo.info()] if hasattr(geo, "info") else []
        out.append(("geoip", True, ", ".join(str(i) for i in infos) or "the embedded database"))
    store = attempt("store", lambda: _open_store(Store, cfg.db_url))
    if store is not None:
        out.append(("store", True, mask_url(cfg.db_url)))
    out += _sources(cfg)
    from ..app import load_patterns

    pats = attempt("patterns", lambda: load_patterns(cfg))
    if pats is not None:
        out.append(("patterns", True, f"{len(pats.patterns)} patterns"))
    from ..detectors import build

    dets = attempt("detectors", lambda: build(cfg))
    if dets is not None:
        out.append(("detectors", True, ", ".join(d.name for d in dets)))
    if store is not None:
        from ..actions.responder import Responder

        resp = attempt("response", lambda: Responder(cfg, store))
        if resp is not None:
            levels = "; ".join(f"{lvl}: {', '.join(names) or '-'}" for lvl, names in resp.levels.items())
            out.append(("response", True, f"mode {cfg.mode}; {levels}"))
            if enforce:
                problems = resp.self_check()
                out += [("backend", False, p) for p in problems]
                if not problems:
                    out.append(("backends", True, "every lock backend can work"))
            n = resp.notifier
            if n is not None:
                out.append(("notify", True if n.targets else "warn",
                            f"{len(n.targets)} operator target(s) (acctwatch notify test sends a sample)"
                            if n.targets else "no operator target: alerts are only recorded ([notify] operator)"))
        store.close()
    return out


def _open_store(store_cls: Any, url: str) -> Any:
    import sqlalchemy as sa

    store = store_cls(url)
    with store.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return store


def _sources(cfg: Any) -> list[tuple[str, bool, str]]:
    import shutil

    from ..daemon import Settings
    from ..sources.follow import expand_globs

    try:
        s = Settings.from_config(cfg)
    except ConfigError as exc:
        return [("sources", False, str(exc))]
    out: list[tuple[str, bool, str]] = []
    for pattern in s.files:
        found = expand_globs([pattern])
        if not found:
            out.append(("sources", "warn", f"{pattern}: no such file (yet): acctwatch run waits for it, but check "
                                           "the path ([sources] files)"))
        for f in found:
            if not Path(f).exists():
                out.append(("sources", "warn", f"{f}: no such file (yet): acctwatch run waits for it, but check "
                                               "the path ([sources] files)"))
            elif Path(f).is_dir():
                out.append(("sources", False, f"{f}: a directory, not a log file ([sources] files takes files "
                                              "and globs like /var/log/mail.log*)"))
            elif os.access(f, os.R_OK):
                out.append(("sources", True, f"{f}: readable"))
            else:
                out.append(("sources", False, f"{f}: not readable by this user (run acctwatch as root, or give "
                                              "it the adm group)"))
    if s.journald:
        ok = shutil.which(s.journalctl) is not None
        out.append(("sources", ok, f"journald via {s.journalctl}" if ok else
                    f"{s.journalctl}: not found ([sources] journald = true needs journalctl)"))
    return out


@cli.command("show")
@_config_opt
@click.option("--defaults", is_flag=True, help="Show the built-in defaults (ignore the config file).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of TOML.")
def show(config_path: str | None, defaults: bool, as_json: bool) -> None:
    """Print the effective configuration: every key with the value acctwatch uses (the file's, else the
    default), as TOML that acctwatch loads again; passwords and tokens in URLs masked."""
    from .. import schema

    path = None if defaults else _path(config_path)
    data = _read(path)
    problems = schema.validate(data)
    if problems:
        raise click.ClickException("\n".join(f"{path}: {p}" for p in problems))
    eff = _mask(schema.effective(data))
    if as_json:
        emit_json(eff)
        return
    click.echo(f"# acctwatch effective configuration: {path or 'built-in defaults'}")
    click.echo(to_toml(eff), nl=False)


_SECRET_KEYS = ("url", "db", "sql_url", "operator", "operator_config")


def _mask(obj: Any, key: str = "") -> Any:
    from ..store import mask_url

    if isinstance(obj, dict):
        return {k: _mask(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask(v, key) for v in obj]
    if isinstance(obj, str) and key in _SECRET_KEYS and "://" in obj:
        return mask_url(obj, whole=key == "operator")
    return obj


# ----------------------------------------------------------------------------------------------- TOML
def _key(k: str) -> str:
    import re

    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


#: sub-tables written as [a.b] tables even when they hold only scalars
_TABLES = {("notify", "user")}


def to_toml(data: dict[str, Any]) -> str:
    """*data* as TOML: sections and tables of tables as [a.b] headers, small maps of scalars (``levels``,
    ``addresses``) inline."""
    lines: list[str] = []

    def is_table(path: tuple[str, ...], v: Any) -> bool:
        if not isinstance(v, dict):
            return False
        return (len(path) == 1 or path in _TABLES
                or (len(path) == 2 and path[0] in ("detectors", "lockers", "accounts"))
                or (len(path) in (3, 4) and path[0] == "accounts" and path[2] == "detectors"))

    def table(path: tuple[str, ...], d: dict[str, Any]) -> None:
        subs = {k: v for k, v in d.items() if is_table((*path, k), v)}
        scalars = {k: v for k, v in d.items() if k not in subs and v is not None}
        if path and (scalars or not subs):
            lines.extend(["", "[" + ".".join(_key(p) for p in path) + "]"])
        for k, v in scalars.items():
            lines.append(f"{_key(k)} = {_value(v)}")
        for k, v in subs.items():
            table((*path, k), v)

    table((), data)
    return "\n".join(lines).lstrip("\n") + "\n"
