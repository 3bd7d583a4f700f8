"""``acctwatch geoip``: which geolocation databases the engine uses, and what it sees for an IP (place, AS,
network class and familiarity key)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from ..geo import EMBEDDED_CREDIT, GeoError, GeoResolver
from .common import emit_json

_db_option = click.option(
    "--geoip-db", "geoip_dbs", multiple=True, type=click.Path(dir_okay=False),
    help="GeoIP2/GeoLite2/DB-IP .mmdb file (repeatable: City + ASN). Default: the config's, else the embedded one.")
_config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False),
    help="Config file to read geoip.databases from (default: /etc/acctwatch/acctwatch.toml if it exists).")
_doc_option = click.option(
    "--documentation-public", "doc_public", is_flag=True, default=None,
    help="Treat the documentation ranges (192.0.2.0/24, 2001:db8::/32, ...) as public addresses.")


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    return _db_option(_config_option(_doc_option(f)))


def _load_config(config_path: str | None) -> Any:
    """The loaded config, or None when the config module is not available (command-line options only)."""
    try:
        from ..config import ConfigError, load
    except ImportError:
        return None
    try:
        return load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _open(geoip_dbs: tuple[str, ...], config_path: str | None, doc_public: bool | None,
          cfg: Any = None) -> GeoResolver:
    paths: list[str] = list(geoip_dbs)
    public = bool(doc_public)
    if not paths or doc_public is None:
        if cfg is None:
            cfg = _load_config(config_path)
        if cfg is not None:
            if not paths:
                paths = list(cfg.geoip_db)
            if doc_public is None:
                public = bool(cfg.geoip_documentation_public)
    # the embedded-database warning is printed by `info` itself; keep stderr quiet here
    geo_log = logging.getLogger("acctwatch.geo")
    level = geo_log.level
    geo_log.setLevel(logging.ERROR)
    try:
        return GeoResolver.open(paths, treat_documentation_as_public=public)
    except GeoError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        geo_log.setLevel(level)


@click.group("geoip")
def cli() -> None:
    """Geolocation databases: what is used, and what it says about an IP."""


@cli.command("info")
@_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(geoip_dbs: tuple[str, ...], config_path: str | None, doc_public: bool | None, as_json: bool) -> None:
    """Show the databases in use: type, build date, age, and whether they are the embedded ones."""
    geo = _open(geoip_dbs, config_path, doc_public)
    try:
        dbs = geo.info()
        if as_json:
            emit_json({"embedded": geo.is_embedded, "has_city": geo.has_city,
                       "documentation_ranges_public": geo.treat_documentation_as_public,
                       "databases": dbs, **({"credit": EMBEDDED_CREDIT} if geo.is_embedded else {})})
            return
        for d in dbs:
            click.echo(f"{d['path']}")
            click.echo(f"  type:        {d['type']} ({d['database_type']}), IPv{d['ip_version']}")
            click.echo(f"  built:       {d['build_date']} ({d['age_days']} days ago)")
            if d["description"]:
                click.echo(f"  description: {d['description']}")
            if d["embedded"]:
                click.echo("  embedded:    yes (shipped with acctwatch)")
            if d["age_days"] > 90:
                fix = "a newer acctwatch or a configured database" if d["embedded"] else "geoipupdate"
                click.echo(f"  warning:     {d['age_days']} days old; update it ({fix}, see docs/geoip.md)")
        click.echo(f"precise coordinates (City database): {'yes' if geo.has_city else 'no'}")
        if geo.is_embedded:
            click.echo("")
            click.echo("Warning: no GeoIP database is configured, so the embedded country-level database is used.")
            click.echo("  Country changes and a coarse travel check (country centres, large minimum distance) work;")
            click.echo("  a City database (MaxMind GeoLite2/GeoIP2 City or DB-IP City Lite) gives precise travel")
            click.echo("  checks: set [geoip] databases = [...] in the config or pass --geoip-db (docs/geoip.md).")
            click.echo("")
            click.echo(f"Credit: {EMBEDDED_CREDIT}")
        elif not geo.has_city:
            click.echo("Note: no City database: travel checks use country centres (coarse).")
    finally:
        geo.close()


@cli.command("lookup")
@click.argument("ips", nargs=-1, required=True)
@_options
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (a list of objects, each with a \"network\" object; an error entry for an invalid IP).")
def lookup_cmd(ips: tuple[str, ...], geoip_dbs: tuple[str, ...], config_path: str | None,
               doc_public: bool | None, as_json: bool) -> None:
    """Look up IPS as the engine does: country, city, coordinates, AS, or internal, and the network class
    (eyeball, datacenter, vpn, anonymizer, internal, unknown) with its source and familiarity key."""
    from ..config import ConfigError
    from ..netclass import NetworkClassifier

    cfg = _load_config(config_path)
    try:
        classifier = NetworkClassifier.from_config(cfg) if cfg is not None else NetworkClassifier()
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    geo = _open(geoip_dbs, config_path, doc_public, cfg)
    bad = 0
    try:
        results = [(ip, g, classifier.classify(ip, g) if g is not None else None)
                   for ip in ips for g in (geo.lookup(ip),)]
    finally:
        geo.close()
    if as_json:
        emit_json([{**g.to_dict(), "network": n.to_dict()} if g is not None and n is not None
                   else {"ip": ip, "error": "not an IP address"} for ip, g, n in results])
        if any(g is None for _, g, _ in results):
            raise SystemExit(1)
        return
    for ip, g, n in results:
        if g is None or n is None:
            click.echo(f"{ip}: not an IP address", err=True)
            bad += 1
            continue
        click.echo(f"{ip}: {g.label()}")
        network = f"  network:  {n.cls}, key {n.key} ({n.source})"
        if g.internal:
            click.echo("  internal address: never counted as a country")
            click.echo(network)
            continue
        if g.country:
            click.echo(f"  country:  {g.country} {g.country_name or ''}".rstrip())
        if g.city:
            click.echo(f"  city:     {g.city}")
        if g.latitude is not None and g.longitude is not None:
            acc = f" (± {g.accuracy_km:g} km)" if g.accuracy_km is not None else ""
            click.echo(f"  location: {g.latitude:.4f}, {g.longitude:.4f}{acc}")
        if g.asn is not None:
            click.echo(f"  AS:       AS{g.asn} {g.asn_org or ''}".rstrip())
        if not g.country and g.asn is None:
            click.echo("  not in the database")
        click.echo(network)
    if bad:
        raise SystemExit(1)
