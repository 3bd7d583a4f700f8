"""`acctwatch run --once` through click's CliRunner (the subprocess tests in test_daemon.py cover signals,
kill -9 and rotation): the README's minimal config, real test GeoIP databases, the store afterwards."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from acctwatch.cli import main
from acctwatch.store import Store

GEO = Path(__file__).resolve().parent / "fixtures" / "geo"
LOG = "".join(line + "\n" for line in [
    "Nov 26 07:11:57 mx dovecot: imap-login: Login: user=<ann@example.org>, method=PLAIN, rip=192.0.2.10, "
    "lip=192.0.2.1, mpid=1, TLS, session=<a1>",
    "Nov 26 07:12:20 mx postfix/submission/smtpd[44]: 4ABCD12345: client=x[198.51.100.20], sasl_method=PLAIN, "
    "sasl_username=ann@example.org",
    "Nov 26 07:12:21 mx dovecot: imap-login: Login: user=<bo@example.org>, method=PLAIN, rip=192.0.2.11, "
    "lip=192.0.2.1, mpid=2, TLS, session=<b1>",
])


def config(tmp_path: Path, log: Path) -> Path:
    cfg = tmp_path / "acctwatch.toml"
    cfg.write_text(f"""
[general]
state_dir = "{tmp_path / 'state'}"
timezone = "UTC"
year = 2026
[sources]
files = ["{log}"]
[geoip]
databases = ["{GEO / 'test-city.mmdb'}", "{GEO / 'test-asn.mmdb'}"]
documentation_ranges_public = true
""")
    return cfg


def test_run_once_records_the_incident_and_status_shows_it(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(LOG)
    cfg = config(tmp_path, log)
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once", "--from-start"])
    assert r.exit_code == 0, r.output
    store = Store(f"sqlite:///{tmp_path / 'state' / 'acctwatch.db'}")
    incs = {(i["account"], i["detector"], i["action"]) for i in store.incidents()}
    # a fresh store knows nobody: two countries within a minute only notify (a VPN user looks the same)
    assert ("ann@example.org", "account_risk", "notify") in incs
    assert not [i for i in incs if i[0] == "bo@example.org"]
    # dry-run (the default): decided and recorded, nothing locked
    assert store.locks() == []
    r = CliRunner().invoke(main, ["status", "-c", str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    assert "ann@example.org" in r.output and '"dry-run"' in r.output
    # a second run reads nothing new and adds nothing
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once"])
    assert r.exit_code == 0, r.output
    assert len(store.incidents()) == len(incs)


def test_run_reports_a_bad_config_clearly(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[sources]\nfiles = "/var/log/mail.log"\npoll_interval = "soon"\n')
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once"])
    assert r.exit_code != 0
    assert "poll_interval" in r.output


def test_the_live_daemon_reads_fail2ban_bans(tmp_path: Path) -> None:
    """A ban recorded by fail2ban's action (`acctwatch report-ban`) reaches the running daemon: a later
    login from the banned address is judged with it (account_risk, rule banned), not only in replay."""
    log = tmp_path / "mail.log"
    log.write_text("")
    cfg = config(tmp_path, log)
    db = f"sqlite:///{tmp_path / 'state' / 'acctwatch.db'}"
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once"])  # the daemon's first start
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report-ban", "198.51.100.77", "--jail", "dovecot", "--db", db,
                                  "--at", "2026-11-26T07:00:00Z"])
    assert r.exit_code == 0, r.output
    log.write_text("Nov 26 07:30:00 mx dovecot: imap-login: Login: user=<cy@example.org>, method=PLAIN, "
                   "rip=198.51.100.77, lip=192.0.2.1, mpid=3, TLS, session=<c1>\n")
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once"])
    assert r.exit_code == 0, r.output
    [inc] = Store(db).incidents(account="cy@example.org")
    assert inc["detector"] == "account_risk" and "banned" in inc["evidence"]["rules"]
    assert inc["evidence"]["banned"]["jail"] == "dovecot"


def test_status_shows_how_far_the_daemon_is_behind_the_log(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(LOG)
    cfg = config(tmp_path, log)
    r = CliRunner().invoke(main, ["status", "-c", str(cfg)])
    assert "has not processed any line yet" in r.output
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once", "--from-start"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["status", "-c", str(cfg), "--json"])
    import json

    data = json.loads(r.output)
    assert data["last_event_time"].startswith("2026-11-26T07:12:21") and data["lag_seconds"] > 0
    r = CliRunner().invoke(main, ["status", "-c", str(cfg)])
    assert "Log time reached by instance" in r.output and "behind now" in r.output


def test_enforce_refuses_to_start_with_a_backend_that_cannot_work(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """At start every lock backend checks itself: enforce exits 1 with one line per problem (no traceback);
    dry-run starts and warns with the same lines."""
    log = tmp_path / "mail.log"
    log.write_text(LOG)
    cfg = config(tmp_path, log)
    base = cfg.read_text()
    broken = f"""
[response]
lock = ["sql", "doveadm"]
[lockers.sql]
url = "sqlite:///{tmp_path / 'mail.db'}"
[lockers.doveadm]
doveadm = ["/nonexistent/doveadm"]
"""
    cfg.write_text(base.replace("[general]", '[general]\nmode = "enforce"') + broken)
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once", "--from-start"])
    assert r.exit_code == 1
    assert "enforce mode: these lock backends cannot work" in r.output
    assert "[lockers.sql]: the select statement (SELECT active FROM users WHERE email = :account): no such table" \
        in r.output
    assert "[lockers.doveadm]: /nonexistent/doveadm: not found" in r.output
    assert "Traceback" not in r.output
    cfg.write_text(base + broken)  # dry-run: runs, and says what enforce would refuse
    r = CliRunner().invoke(main, ["run", "-c", str(cfg), "--once", "--from-start"])
    assert r.exit_code == 0, r.output
    assert "enforce mode would refuse to start): [lockers.doveadm]: /nonexistent/doveadm: not found" in caplog.text
