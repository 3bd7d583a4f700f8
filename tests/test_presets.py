"""Detector presets ([general] preset): ``seed`` is the old rule set exactly, ``familiarity`` (the default)
replaces the single-rule geography and brute-force detectors by account_risk; a [detectors.NAME] table of
the user's enables a detector its preset turns off, unless it says ``enabled = false``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakegeo import FakeGeoInfo

from acctwatch.config import DEFAULT_PRESET, PRESETS, Config, ConfigError, from_dict, load
from acctwatch.detectors import build, load_all
from acctwatch.engine import Engine
from acctwatch.events import Login

#: every detector of acctwatch before presets, with its options as built from an empty config (8b9a30d)
OLD_OPTIONS: dict[str, dict[str, Any]] = {
    "auth_failures_account": {"window": 3600.0, "failures": 30, "min_ips": 3,
                              "ignore_reasons": ["auth mechanism disallowed"], "policy": "notify", "enabled": True},
    "auth_failures_ip": {"window": 600.0, "failures": 20, "ignore_internal": True,
                         "ignore_reasons": ["auth mechanism disallowed"], "policy": "notify", "enabled": True},
    "banned_ip_login": {"window": 86400.0, "policy": "notify", "enabled": True},
    "bounce_ratio": {"window": 3600.0, "min_deliveries": 50, "max_ratio": 0.3, "policy": "hold", "enabled": True},
    "bruteforce_success": {"window": 3600.0, "burst": 600.0, "failures": 10, "prefix_v4": 24, "prefix_v6": 64,
                           "ignore_reasons": ["auth mechanism disallowed"], "policy": "notify", "enabled": True},
    "geo_countries": {"window": 60.0, "countries": 2, "policy": "lock", "enabled": True},
    "impossible_travel": {"max_speed_kmh": 900, "min_distance_km": 300, "coarse_min_distance_km": 2500,
                          "window": 86400.0, "policy": "lock", "enabled": True},
    "ip_spread": {"window": 86400.0, "max_ips": 20, "min_networks": 3, "max_asns": 6, "policy": "notify",
                  "enabled": True},
    "new_country": {"learn_period": 1209600.0, "learn_logins": 10, "retention": 7776000.0, "max_countries": 32,
                    "policy": "notify", "enabled": True},
    "send_baseline": {"learn_period": 1209600.0, "factor": 3.0, "min_per_hour": 50, "min_per_day": 100,
                      "retention": 7776000.0, "policy": "notify", "enabled": True},
    "send_burst": {"recipients_per_hour": 500, "recipients_per_day": 1000, "messages_per_hour": 500,
                   "messages_per_day": 1000, "policy": "hold", "enabled": True},
}
#: the switch of each detector that familiarity changed, off in the seed preset; the other options added with
#: familiarity (send_burst's history_factor, ...) are only read when that switch is on
SEED_SWITCHES = {"send_burst": "judge_familiar", "bounce_ratio": "judge_familiar", "ip_spread": "skip_familiar",
                 "auth_failures_ip": "skip_familiar"}
#: what the familiarity preset turns off
REPLACED = ("geo_countries", "impossible_travel", "new_country", "bruteforce_success", "banned_ip_login")


def options(conf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d.name: d.options for d in build(from_dict(conf))}


def test_seed_preset_is_exactly_the_old_detector_set_and_options() -> None:
    got = options({"general": {"preset": "seed"}})
    assert set(got) == set(OLD_OPTIONS)  # account_risk off
    for name, old in OLD_OPTIONS.items():
        opts = got[name]
        assert {k: opts.get(k) for k in old} == old, name
        added = set(opts) - set(old)
        switch = SEED_SWITCHES.get(name)
        if switch is None:
            assert not added, name
        else:
            assert switch in added and opts[switch] is False, name


def test_default_preset_detector_set() -> None:
    assert DEFAULT_PRESET == "familiarity" and Config().preset == "familiarity"
    assert from_dict({}).preset == "familiarity"
    got = options({})
    assert set(got) == {"account_risk", "auth_failures_account", "auth_failures_ip", "bounce_ratio", "ip_spread",
                        "send_baseline", "send_burst"}
    assert set(load_all()) - set(got) == set(REPLACED)
    assert got["account_risk"]["policy"] == "lock" and got["account_risk"]["enabled"] is True
    assert got["send_burst"]["judge_familiar"] is True and got["bounce_ratio"]["judge_familiar"] is True
    assert got["ip_spread"]["skip_familiar"] is True and got["auth_failures_ip"]["skip_familiar"] is True
    # the detectors it keeps keep their old thresholds
    for name in ("auth_failures_account", "send_baseline"):
        assert got[name] == OLD_OPTIONS[name]
    assert got["send_burst"]["recipients_per_hour"] == 500 and got["ip_spread"]["max_ips"] == 20
    assert options({"general": {"preset": "familiarity"}}) == got  # naming the default changes nothing


@pytest.mark.parametrize("name", REPLACED)
def test_a_user_table_enables_a_detector_the_preset_turns_off(name: str) -> None:
    assert name not in options({})
    got = options({"detectors": {name: {}}})
    assert got[name] == OLD_OPTIONS[name]  # the detector's own defaults, as in the seed rules
    got = options({"detectors": {name: {"policy": "hold"}}})
    assert got[name]["policy"] == "hold" and got[name]["enabled"] is True
    assert name not in options({"detectors": {name: {"enabled": False}}})
    assert name in options({"detectors": {name: {"enabled": True}}})


def test_a_user_table_enables_account_risk_under_the_seed_preset() -> None:
    seed = {"preset": "seed"}
    assert "account_risk" not in options({"general": seed})
    got = options({"general": seed, "detectors": {"account_risk": {"networks": 4}}})
    assert got["account_risk"]["networks"] == 4 and got["account_risk"]["enabled"] is True
    assert "account_risk" not in options({"general": seed, "detectors": {"account_risk": {"enabled": False}}})
    assert "account_risk" in options({"general": seed, "detectors": {"account_risk": {}}})


def test_a_user_table_keeps_the_presets_other_options() -> None:
    seed = {"preset": "seed"}
    got = options({"general": seed, "detectors": {"send_burst": {"recipients_per_hour": 100}}})
    assert got["send_burst"]["recipients_per_hour"] == 100 and got["send_burst"]["judge_familiar"] is False
    got = options({"general": seed, "detectors": {"send_burst": {"judge_familiar": True}}})
    assert got["send_burst"]["judge_familiar"] is True  # the user's word beats the preset's
    got = options({"detectors": {"ip_spread": {"skip_familiar": False}}})
    assert got["ip_spread"]["skip_familiar"] is False
    # disabling a detector the preset keeps
    assert "send_burst" not in options({"detectors": {"send_burst": {"enabled": False}}})


def test_presets_name_only_known_detectors_and_options() -> None:
    reg = load_all()
    for preset, table in PRESETS.items():
        for name, opts in table.items():
            assert name in reg, (preset, name)
            assert set(opts) <= set(reg[name].defaults) | {"enabled", "policy"}, (preset, name)


@pytest.mark.parametrize("value", [
    "legacy", "Seed", "", 1,
    ["seed"],
])
def test_an_unknown_preset_is_a_one_line_config_error(value: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        from_dict({"general": {"preset": value}})
    msg = str(exc.value)
    assert "\n" not in msg
    assert "[general] preset" in msg and (repr(value) in msg or str(value).lower() in msg)
    assert all(p in msg for p in PRESETS)


def test_an_unknown_preset_in_a_file_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "acctwatch.toml"
    p.write_text('[general]\npreset = "strict"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load(p)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{p}: [general] preset") and "'strict'" in msg


# -- the preset decides what a login is judged by --------------------------------------------------------
T0 = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)
PLACES = {
    "192.0.2.1": FakeGeoInfo("192.0.2.1", False, "DE", "Berlin", 52.52, 13.40, 20, 3320),
    "198.51.100.1": FakeGeoInfo("198.51.100.1", False, "US", "New York", 40.71, -74.0, 20, 7922),
}


class Geo:
    is_embedded = False

    def lookup(self, ip: str) -> FakeGeoInfo:
        return PLACES.get(ip) or FakeGeoInfo(ip, True, None)


def _hop(conf: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    eng = Engine(from_dict(conf), geo=Geo())
    out = []
    for secs, ip in ((0, "192.0.2.1"), (20, "198.51.100.1")):
        ev = Login(ts=T0 + timedelta(seconds=secs), account="a@x", ip=ip, service="imap", method="PLAIN")
        out += [(i.detector, i.action, i.escalations[-1]["rule"] if i.escalations else None)
                for i in eng.process(ev)]
    return sorted(out)


def test_berlin_then_new_york_20_s_later_under_each_preset() -> None:
    # seed: the two one-rule detectors lock
    assert _hop({"general": {"preset": "seed"}}) == [("geo_countries", "lock", None),
                                                     ("impossible_travel", "lock", None)]
    # familiarity: a new account (nothing familiar yet) is notified of the trip from its earlier place
    assert _hop({}) == [("account_risk", "notify", "impossible_travel")]
    # both: the user's geo_countries table brings the seed rule back next to account_risk
    assert _hop({"detectors": {"geo_countries": {}}}) == [("account_risk", "notify", "impossible_travel"),
                                                         ("geo_countries", "lock", None)]
