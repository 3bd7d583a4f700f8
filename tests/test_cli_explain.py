"""``acctwatch explain`` and ``acctwatch patterns`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from acctwatch.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "parse"
MINI = str(FIXTURES / "mini.log")


def test_explain_summary_counts_and_unmatched() -> None:
    r = CliRunner().invoke(main, ["explain", "--timezone", "UTC", "--year", "2026", MINI])
    assert r.exit_code == 0, r.output
    assert "Lines read:            9" in r.output
    assert "postfix.smtpd.sasl_client" in r.output and "dovecot.login" in r.output
    # the made-up "Frobnicated authentication" line is relevant and taken by no built-in pattern
    assert "Relevant but unmatched: 1" in r.output and "mini.log:8:" in r.output


def test_explain_json_and_jsonl() -> None:
    r = CliRunner().invoke(main, ["explain", "--json", "--timezone", "UTC", "--year", "2026", MINI])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["events"] == {"message": 1, "queue": 1, "delivery": 1, "auth_failure": 1, "login": 1}
    assert d["ignored"] == 1 and d["comments"] == 1 and d["relevant_unmatched"] == 1
    r = CliRunner().invoke(main, ["explain", "--jsonl", "--timezone", "UTC", "--year", "2026", MINI])
    rows = [json.loads(x) for x in r.output.splitlines()]
    assert [x["kind"] for x in rows] == ["message", "queue", "delivery", "auth_failure", "login"]
    assert rows[0]["ts"] == "2026-11-26T07:11:57Z" and rows[0]["lineno"] == 2
    assert rows[3]["account"] == "admin" and rows[3]["ip"] == "192.0.2.150" and rows[3]["layer"] == "frontend"


def test_explain_with_extra_patterns_dir() -> None:
    r = CliRunner().invoke(main, ["explain", "--json", "--timezone", "UTC", "--year", "2026",
                                  "--patterns-dir", str(FIXTURES / "extra"), MINI])
    d = json.loads(r.output)
    assert d["relevant_unmatched"] == 0 and d["hits"]["site.dovecot.frobnicated"] == 1


def test_explain_one_line() -> None:
    line = "Nov 26 07:11:57 mx postfix/smtpd[1]: warning: unknown[192.0.2.5]:1234: SASL PLAIN authentication failed:"
    r = CliRunner().invoke(main, ["explain", "--timezone", "UTC", "--line", line])
    assert r.exit_code == 0, r.output
    assert "postfix.smtpd.sasl_failure" in r.output and "192.0.2.5" in r.output
    r = CliRunner().invoke(main, ["explain", "--line", "Nov 26 07:11:57 mx postfix/smtpd[1]: hello"])
    assert r.exit_code == 1 and "no pattern matched" in r.output


def test_explain_reads_stdin_and_reports_headerless_lines() -> None:
    text = "warning: unknown[1.2.3.4]: SASL LOGIN authentication failed: x\n"
    r = CliRunner().invoke(main, ["explain", "-"], input=text)
    assert r.exit_code == 0, r.output
    assert "Relevant lines without a log header: 1" in r.output


def test_explain_usage_errors(tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["explain"]).exit_code == 2
    r = CliRunner().invoke(main, ["explain", str(tmp_path / "missing.log")])
    assert r.exit_code != 0 and "cannot read" in r.output


def test_patterns_test_and_list(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["patterns", "test"])
    assert r.exit_code == 0 and " 0 failed" in r.output
    r = CliRunner().invoke(main, ["patterns", "test", "--json", "--patterns-dir", str(FIXTURES / "extra")])
    d = json.loads(r.output)
    assert r.exit_code == 0 and d["failed"] == 0 and d["examples"] > 100
    (tmp_path / "bad.toml").write_text((FIXTURES / "extra" / "override.toml").read_text()
                                       .replace('reason = "frobnicated" }', 'reason = "other" }'))
    r = CliRunner().invoke(main, ["patterns", "test", "--patterns-dir", str(tmp_path)])
    assert r.exit_code == 1 and "FAIL site.dovecot.frobnicated" in r.output
    r = CliRunner().invoke(main, ["patterns", "list", "--json"])
    names = {row["name"] for row in json.loads(r.output)}
    assert {"dovecot.login", "postfix.smtpd.sasl_failure", "postfix.delivery"} <= names


def test_explain_one_line_as_json() -> None:
    import json as _json

    from click.testing import CliRunner

    from acctwatch.cli import main

    line = ("Nov 26 07:11:57 mx dovecot: imap-login: Login: user=<bob@example.org>, method=PLAIN, "
            "rip=203.0.113.9, lip=192.0.2.1")
    r = CliRunner().invoke(main, ["explain", "--line", line, "--json"])
    assert r.exit_code == 0, r.output
    d = _json.loads(r.output)
    assert d["pattern"] == "dovecot.login" and d["event"]["account"] == "bob@example.org"
    assert d["header"]["program"] == "dovecot" and d["program"]["daemon"] == "imap-login"
    r = CliRunner().invoke(main, ["explain", "--line", "not a log line", "--json"])
    assert r.exit_code == 1 and _json.loads(r.output)["event"] is None
