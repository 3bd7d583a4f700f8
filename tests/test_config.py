"""Configuration loading: defaults, validation with messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from acctwatch.config import Config, ConfigError, from_dict, load, parse_duration


def test_defaults_without_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ACCTWATCH_CONFIG", raising=False)
    monkeypatch.setattr("acctwatch.config.DEFAULT_CONFIG", tmp_path / "absent.toml")
    cfg = load()
    assert cfg.mode == "dry-run"
    assert cfg.db_url.startswith("sqlite:///")
    assert cfg.is_protected("postmaster@example.org")
    assert not cfg.is_protected("alice@example.org")


@pytest.mark.parametrize("text,seconds", [("90", 90), (90, 90), ("1m", 60), ("24h", 86400), ("14d", 1209600),
                                          ("2 weeks", 1209600), ("1.5h", 5400)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "1y", "", True, "-1m"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(bad)


def test_full_config(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text("""
[general]
mode = "enforce"
db = "sqlite:////tmp/x.db"
timezone = "Europe/Berlin"
protected_accounts = ["boss@example.org"]
incident_cooldown = "2h"
[geoip]
databases = ["/usr/share/GeoIP/GeoLite2-City.mmdb"]
[allowlist]
accounts = ["Monitor@Example.org"]
networks = ["192.0.2.0/24", "2001:db8::/32"]
countries = ["de"]
asns = ["AS3320", 13335]
[accounts."traveller@example.org"]
extra_countries = ["ES", "pt"]
[detectors.geo_countries]
window = "2m"
policy = "notify"
""")
    cfg = load(p)
    assert isinstance(cfg, Config)
    assert cfg.mode == "enforce" and cfg.timezone == "Europe/Berlin"
    assert cfg.incident_cooldown == 7200
    assert cfg.is_protected("boss@example.org")
    al = cfg.allowlist
    assert al.account_allowed("monitor@example.org")
    assert al.ip_allowed("192.0.2.77") and al.ip_allowed("2001:db8::1") and not al.ip_allowed("198.51.100.1")
    assert not al.ip_allowed("not-an-ip")
    assert al.countries == {"DE"} and al.asns == {3320, 13335}
    assert al.extra_countries["traveller@example.org"] == {"ES", "PT"}
    assert cfg.geoip_db == ["/usr/share/GeoIP/GeoLite2-City.mmdb"]


@pytest.mark.parametrize("data,msg", [
    ({"general": {"mode": "yes"}}, r"\[general\] mode: 'yes' is not allowed; one of 'dry-run', 'enforce'"),
    ({"typo": {}}, "unknown section"),
    ({"allowlist": {"networks": ["300.1.2.0/24"]}}, "not a network"),
    ({"allowlist": {"asns": ["ASX"]}}, "not an AS number"),
    ({"detectors": {"geo_countries": {"policy": "nuke"}}}, r"\[detectors.geo_countries\] policy: .nuke. is not"),
    ({"detectors": {"geo_countries": 3}}, "must be a table"),
])
def test_errors_say_what_to_fix(data: dict, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        from_dict(data)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[general\nmode=1")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load(p)
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "missing.toml")
