"""The README quick start: ``acctwatch replay examples/mail.log`` shows a real detection offline, with the
embedded country database and no configuration (so the default ``familiarity`` preset).

anna@example.org logs in from home (DE) and 38 s later from Brazil, then the Brazilian address sends 550
recipients in 8 minutes. Her profile is still learning (nothing familiar yet): account_risk notifies the
impossible trip from her earlier place, and raises the incident to hold when the now reported Brazilian
network sends; send_burst holds the burst from a network unfamiliar to her."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from acctwatch.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCTWATCH_CONFIG", raising=False)
    monkeypatch.chdir(EXAMPLES.parent)


ANNA_HOME = "80.133.12.40"
ANNA_ATTACKER = "200.147.67.142"


def test_quick_start_table() -> None:
    res = CliRunner().invoke(main, ["replay", "examples/mail.log"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "anna@example.org: would hold mail" in out
    assert "[would hold mail] account_risk at 2026-11-26 07:11:38 UTC" in out
    assert "a network already reported for this account and not familiar to it" in out
    assert "send_burst" in out and "550 recipients in the last hour" in out
    assert "ben@example.org" not in out and "carla@example.org" not in out
    assert "] geo_countries at" not in out and "] impossible_travel at" not in out  # off in the default preset
    assert "levels: notify at 07:11:38 (impossible_travel) -> hold at" in out  # account_risk's own rule
    # anna's own German address is not blamed: only the Brazilian one is listed
    assert f"IPs: {ANNA_ATTACKER}" in out and ANNA_HOME not in out


def test_quick_start_jsonl() -> None:
    res = CliRunner().invoke(main, ["replay", "--jsonl", "examples/mail.log"])
    assert res.exit_code == 0, res.output
    incs = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    assert {(i["account"], i["detector"], i["action"]) for i in incs} == {
        ("anna@example.org", "account_risk", "hold"), ("anna@example.org", "send_burst", "hold")}
    by = {i["detector"]: i for i in incs}
    risk = by["account_risk"]
    assert risk["detected_at"] == "2026-11-26T07:11:38Z"  # the Brazilian login
    steps = [(e["level"], e["rule"]) for e in risk["escalations"]]
    assert steps == [("notify", "impossible_travel"), ("hold", "sends_from_reported")]
    assert "DE" in risk["escalations"][0]["summary"] and "then BR" in risk["escalations"][0]["summary"]
    burst = by["send_burst"]
    assert [(e["level"], e["rule"]) for e in burst["escalations"]] == [("hold", "unfamiliar_network")]
    assert burst["evidence"]["recipients_last_hour"] == 550
    for i in incs:  # anna's own German address is not the presumed attacker
        assert i["attacker_ips"] == i["ips"] == [ANNA_ATTACKER]


def test_example_config_is_valid_and_replays_the_same() -> None:
    """The example config shows the defaults: it replays the quick start exactly as no config does."""
    res = CliRunner().invoke(main, ["replay", "--jsonl", "-c", "examples/acctwatch.toml", "examples/mail.log"])
    assert res.exit_code == 0, res.output
    incs = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    plain = CliRunner().invoke(main, ["replay", "--jsonl", "examples/mail.log"])
    assert plain.exit_code == 0, plain.output
    want = [json.loads(x) for x in plain.stdout.splitlines() if x.strip()]
    assert {(i["account"], i["detector"], i["action"]) for i in incs} == {
        (i["account"], i["detector"], i["action"]) for i in want}


def test_json_file_statistics_belong_to_their_files_when_rotated_logs_are_given(tmp_path: Path) -> None:
    """Rotated files are read oldest first whatever the order given: each file's numbers stay its own."""
    old, new = tmp_path / "mail.log.1", tmp_path / "mail.log"
    line = ("Nov 26 07:11:57 mx dovecot: imap-login: Login: user=<a@example.org>, method=PLAIN, rip=192.0.2.10, "
            "lip=192.0.2.1, mpid=1, TLS, session=<a{}>\n")
    old.write_text("".join(line.format(i) for i in range(3)))
    new.write_text("".join(line.format(i) for i in range(5)))
    r = CliRunner().invoke(main, ["replay", "--json", "--year", "2026", str(new), str(old)])
    assert r.exit_code == 0, r.output
    files = {f["source"]: f["lines"] for f in json.loads(r.output)["files"]}
    assert files == {str(old): 3, str(new): 5}


def test_cut_texts_end_with_an_ellipsis() -> None:
    from acctwatch.cli.common import cut

    assert cut("x" * 10, 10) == "x" * 10 and cut("x" * 11, 10) == "x" * 9 + "…"
