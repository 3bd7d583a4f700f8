"""The configuration schema (acctwatch/schema.py) and ``acctwatch config check | show``: every kind of mistake
an admin makes gives one line naming the file, the section and the key, and exit status 1 (never a
traceback, never silently accepted); the shipped example passes; ``config show`` round-trips."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from acctwatch import schema
from acctwatch.cli import main
from acctwatch.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "acctwatch.toml"

#: (TOML text, the message `config check` must print); {tmp} is the test's directory
BROKEN: list[tuple[str, str]] = [
    # unknown keys, in every section, with the closest known key
    ('[general]\nincident_cooldwon = "1h"\n',
     "[general] unknown key 'incident_cooldwon'; did you mean 'incident_cooldown'?"),
    ('[sources]\nfile = ["/var/log/mail.log"]\n', "[sources] unknown key 'file'; did you mean 'files'?"),
    ('[geoip]\ndatabase = []\n', "[geoip] unknown key 'database'; did you mean 'databases'?"),
    ('[allowlist]\naccount = ["a@example.org"]\n', "[allowlist] unknown key 'account'; did you mean 'accounts'?"),
    ('[response]\nlokc = []\n', "[response] unknown key 'lokc'; did you mean 'lock'?"),
    ('[notify]\noperators = []\n', "[notify] unknown key 'operators'; did you mean 'operator'?"),
    ('[notify.user]\nadresses = {}\n', "[notify.user] unknown key 'adresses'; did you mean 'addresses'?"),
    ('[decision_log]\npth = "/x"\n', "[decision_log] unknown key 'pth'; did you mean 'path'?"),
    ('[familiarity]\nretension = "90d"\n', "[familiarity] unknown key 'retension'; did you mean 'retention'?"),
    ('[networks]\nvpn_asn = [1]\n', "[networks] unknown key 'vpn_asn'; did you mean 'vpn_asns'?"),
    ('[detectors.send_burst]\nrecipients_per_hr = 5\n',
     "[detectors.send_burst] unknown key 'recipients_per_hr'; did you mean 'recipients_per_hour'?"),
    ('[detectors.send_burts]\nrecipients_per_hour = 5\n',
     "[detectors.send_burts] unknown detector 'send_burts'; did you mean 'send_burst'?"),
    ('[accounts."a@example.org"]\nextra_country = ["US"]\n',
     "[accounts.\"a@example.org\"] unknown key 'extra_country'; did you mean 'extra_countries'?"),
    ('[accounts."a@example.org".detectors.send_burts]\nrecipients_per_hour = 5\n',
     "[accounts.\"a@example.org\".detectors.send_burts] unknown detector 'send_burts'; did you mean 'send_burst'?"),
    ('[accounts."a@example.org".detectors.send_burst]\nrecipients_per_houre = 5\n',
     "unknown key 'recipients_per_houre'; did you mean 'recipients_per_hour'?"),
    ('[lockers.sql]\nur = "sqlite://"\n', "[lockers.sql] unknown key 'ur'; did you mean 'url'?"),
    ('[lockers.db2]\ntype = "sqll"\n', "[lockers.db2] type = 'sqll': unknown lock backend; did you mean 'sql'?"),
    ('[responce]\nlock = []\n', "unknown section [responce]; did you mean [response]?"),
    # wrong types
    ('[general]\nyear = "2026"\n', "[general] year: expected a whole number, got '2026' (a string)"),
    ('[general]\nmode = 1\n', "[general] mode: expected one of 'dry-run', 'enforce', got 1"),
    ('[general]\nprotected_accounts = 5\n', "[general] protected_accounts: expected a string or a list of strings"),
    ('[sources]\nbatch_lines = "many"\n', "[sources] batch_lines: expected a whole number, got 'many'"),
    ('[sources]\njournald = "yes"\n', "[sources] journald: expected true or false, got 'yes'"),
    ('[geoip]\ndocumentation_ranges_public = "no"\n', "[geoip] documentation_ranges_public: expected true or false"),
    ('[detectors.account_risk]\ncountries = "two"\n',
     "[detectors.account_risk] countries: expected a whole number, got 'two'"),
    ('[detectors.send_burst]\npolicy = "ban"\n',
     "[detectors.send_burst] policy: 'ban' is not allowed; one of 'watch', 'notify', 'hold', 'lock'"),
    ('[response]\nhold = 1\n', "[response] hold: expected a string or a list of strings, got 1"),
    ('[decision_log]\nactions = ["ban"]\n', "[decision_log] actions: 'ban' is not allowed; one of 'watch', 'notify'"),
    ('[lockers.sql]\nurl = "sqlite://"\ntimeout = "long"\n',
     "[lockers.sql] timeout: expected a whole number, got 'long'"),
    ('general = 3\n', "[general] must be a table"),
    ('[detectors]\ngeo_countries = 3\n', "[detectors.geo_countries] must be a table"),
    # bad durations, ranges
    ('[general]\nincident_cooldown = "soon"\n', "[general] incident_cooldown: expected a duration like '60s'"),
    ('[sources]\npoll_interval = "0s"\n', "[sources] poll_interval: must be longer than 0"),
    ('[notify]\ntimeout = "1 minute"\n', "[notify] timeout: expected a duration like"),
    ('[familiarity]\nretention = "forever"\n', "[familiarity] retention: expected a duration like"),
    ('[detectors.geo_countries]\nwindow = "1 fortnight"\n', "[detectors.geo_countries] window: expected a duration"),
    ('[accounts."a@example.org".detectors.geo_countries]\nwindow = "x"\n',
     "[accounts.\"a@example.org\".detectors.geo_countries] window: expected a duration"),
    ('[sources]\nbatch_lines = 0\n', "[sources] batch_lines: expected a whole number >= 1, got 0"),
    ('[response]\nmax_locks_per_hour = 0\n', "[response] max_locks_per_hour: expected a whole number >= 1, got 0"),
    ('[detectors.account_risk]\ncountries = -1\n', "[detectors.account_risk] countries: expected a whole number >= 0"),
    ('[general]\nyear = 1800\n', "[general] year: expected a whole number >= 1970, got 1800"),
    # values: time zones, networks, countries, AS numbers, empty values
    ('[general]\ntimezone = "Mars/Base"\n', "[general] timezone: unknown time zone 'Mars/Base'"),
    ('[general]\ntimezone = "Europe/Berln"\n', "[general] timezone: unknown time zone 'Europe/Berln'"),
    ('[general]\ntimezone = ""\n', "[general] timezone: unknown time zone ''"),
    ('[general]\nmode = ""\n', "[general] mode: '' is not allowed; one of 'dry-run', 'enforce'"),
    ('[general]\npreset = ""\n', "[general] preset: '' is not allowed; one of 'familiarity', 'seed'"),
    ('[allowlist]\nnetworks = ["10.0.0.0/33"]\n', "[allowlist] networks: '10.0.0.0/33' is not a network"),
    ('[allowlist]\ncountries = ["Germany"]\n', "[allowlist] countries: 'Germany' is not a two-letter country code"),
    ('[allowlist]\nasns = ["ASX"]\n', "[allowlist] asns: 'ASX' is not an AS number"),
    ('[accounts."a@example.org"]\nextra_countries = ["USA"]\n', "extra_countries: expected two-letter country codes"),
    # what the file points at: missing GeoIP file, bad store URLs, a missing driver, an unreadable log
    ('[geoip]\ndatabases = ["{tmp}/GeoLite2-City.mmdb"]\n', "GeoIP database not found: {tmp}/GeoLite2-City.mmdb"),
    ('[general]\ndb = "nope://x"\n', "store: not a usable database URL"),
    ('[general]\ndb = "mysql+mysqldb://u:pw@127.0.0.1/x"\n', "store: the database driver 'MySQLdb' is not installed"),
    ('[general]\ndb = "postgresql+psycopg://u:pw@127.0.0.1:1/x"\n', "store: the database refused or did not answer"),
    ('[sources]\nfiles = ["{tmp}/secret.log"]\n', "{tmp}/secret.log: not readable by this user"),
    ('[sources]\nfiles = ["{tmp}/state"]\n', "{tmp}/state: a directory, not a log file"),
]


def _check(tmp_path: Path, text: str, *extra: str) -> Any:
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text(text.replace("{tmp}", str(tmp_path)))
    return CliRunner().invoke(main, ["config", "check", "-c", str(cfg), *extra])


@pytest.mark.parametrize(("text", "message"), BROKEN, ids=[f"{i:02d}" for i in range(len(BROKEN))])
def test_each_mistake_gives_its_message_and_exit_status_1(tmp_path: Path, text: str, message: str) -> None:
    if "secret.log" in text:
        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        (tmp_path / "secret.log").write_text("")
        (tmp_path / "secret.log").chmod(0)
    (tmp_path / "state").mkdir()
    text = f'[general]\nstate_dir = "{tmp_path / "state"}"\n' + text if "[general]" not in text and \
        "general =" not in text else text
    r = _check(tmp_path, text)
    assert r.exit_code == 1, r.output
    assert message.replace("{tmp}", str(tmp_path)) in r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)


def test_there_are_at_least_45_kinds_of_mistake() -> None:
    assert len(BROKEN) >= 45


def test_the_same_mistakes_stop_every_command_with_one_line(tmp_path: Path) -> None:
    """Loading is checked by the same schema: `replay` refuses what `run` refuses, with the same line."""
    for text, message in BROKEN[:18]:
        cfg = tmp_path / "c.toml"
        cfg.write_text(text)
        with pytest.raises(ConfigError) as exc:
            load(cfg)
        assert str(exc.value) == f"{cfg}: {message}" or message in str(exc.value)
        r = CliRunner().invoke(main, ["replay", "-c", str(cfg), str(ROOT / "examples" / "mail.log")])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    r = _check(tmp_path, '[general]\nyear = "2026"\ntimezone = "Mars/Base"\n[allowlist]\naccount = []\n')
    assert r.exit_code == 1
    assert r.output.count("FAIL config:") == 3


def test_the_shipped_example_passes(tmp_path: Path) -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    assert schema.validate(data) == []
    data.setdefault("general", {})["state_dir"] = str(tmp_path)
    data.setdefault("sources", {})["files"] = [str(ROOT / "examples" / "mail.log")]
    from acctwatch.cli.config import to_toml

    cfg = tmp_path / "example.toml"
    cfg.write_text(to_toml(data))
    r = CliRunner().invoke(main, ["config", "check", "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "ok   config:" in r.output and "no problems" in r.output


def test_show_round_trips_and_masks_secrets(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["config", "show", "-c", str(EXAMPLE)])
    assert r.exit_code == 0, r.output
    shown = tomllib.loads(r.output)
    assert schema.effective(shown) == schema.effective(tomllib.loads(EXAMPLE.read_text()))
    assert shown["general"]["incident_cooldown"] == "6h" and shown["detectors"]["send_burst"]["policy"] == "hold"
    cfg = tmp_path / "secret.toml"
    cfg.write_text('[general]\ndb = "postgresql+psycopg://aw:s3cret@db/aw"\n[notify]\n'
                   'operator = ["slack://T000/B000/XXXXtoken"]\n[lockers.sql]\nurl = "mysql+pymysql://m:pw2@h/mail"\n')
    r = CliRunner().invoke(main, ["config", "show", "-c", str(cfg)])
    assert r.exit_code == 0 and "s3cret" not in r.output and "XXXXtoken" not in r.output and "pw2" not in r.output
    assert "postgresql+psycopg://aw:***@db/aw" in r.output and '"slack://***"' in r.output
    d = CliRunner().invoke(main, ["config", "show", "--defaults", "--json"])
    assert d.exit_code == 0 and '"mode": "dry-run"' in d.output


def test_enforce_check_runs_the_backends_self_checks(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    text = (f'[general]\nstate_dir = "{tmp_path / "state"}"\n[sources]\nfiles = ["{ROOT / "examples" / "mail.log"}"]\n'
            f'[response]\nlock = ["sql"]\nhold = []\n[lockers.sql]\nurl = "sqlite:///{tmp_path / "mail.db"}"\n')
    r = _check(tmp_path, text)
    assert r.exit_code == 0, r.output  # dry-run: the backends are not asked
    r = _check(tmp_path, text, "--enforce")
    assert r.exit_code == 1
    assert "FAIL backend: [lockers.sql]: the select statement (SELECT active FROM users WHERE email = :account): " \
           "no such table: users" in r.output
