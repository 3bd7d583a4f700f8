"""`acctwatch profile`, `acctwatch trust`, `acctwatch incidents false-positive` and `unlock --compromised`
through click's CliRunner, on a store built by `acctwatch replay --db` of the example log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from acctwatch.cli import main
from acctwatch.config import from_dict
from acctwatch.engine import Engine
from acctwatch.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mail.log"


@pytest.fixture(params=["sqlite", "pg"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store built by `acctwatch replay --db` of the example log, on SQLite and on PostgreSQL (a private
    database per test)."""
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else str(
        request.getfixturevalue("private_pg_url"))
    r = CliRunner().invoke(main, ["replay", "--db", url, str(EXAMPLE)])
    assert r.exit_code == 0, r.output
    return url


def invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), env={"ACCTWATCH_CONFIG": ""})
    return r.exit_code, r.output


def test_profile_shows_networks_and_states(db: str) -> None:
    code, out = invoke("profile", "anna@example.org", "--db", db)
    assert code == 0, out
    assert "anna@example.org: learning profile" in out
    assert "AS7162" in out and "AS3320" in out and "reported" in out
    code, out = invoke("profile", "ANNA@example.org", "--db", db, "--json")
    view = json.loads(out)["profile"]
    assert view["account"] == "anna@example.org" and view["state"] == "learning"
    states = {n["key"]: n["state"] for n in view["networks"]}
    assert states["AS7162"] == "reported" and states["AS3320"] == "seen"  # the Brazilian one was notified
    code, out = invoke("profile", "nobody@example.org", "--db", db)
    assert code == 1 and "No profile for nobody@example.org" in out


def test_trust_is_recorded_and_applied_by_the_engine(db: str) -> None:
    code, out = invoke("trust", "anna@example.org", "AS7162", "--db", db, "--note", "lives in Brazil")
    assert code == 0, out
    assert "network AS7162 (AS7162) is now familiar" in out
    code, out = invoke("trust", "anna@example.org", "not-a-network", "--db", db)
    assert code == 1 and "is not an IP address" in out and "Traceback" not in out
    store = Store(db)
    [fb] = store.feedback_since(0, "anna@example.org")
    assert (fb["action"], fb["network"], fb["note"]) == ("trust", "AS7162", "lives in Brazil")
    eng = Engine(from_dict({}), store=store, geo=None)  # the daemon at start (and at every commit)
    assert eng.profiles is not None
    assert eng.profiles.view("anna@example.org")["networks"][0]["state"] == "trusted"
    code, out = invoke("profile", "anna@example.org", "--db", db)
    assert "Operator decisions:" in out and "trust AS7162" in out


def test_false_positive_closes_the_incident_and_teaches(db: str) -> None:
    code, out = invoke("incidents", "--db", db, "--json")
    incs = json.loads(out)
    risk = next(i for i in incs if i["detector"] == "account_risk")
    assert risk["detected_at"].startswith("2026-11-26T07:11:38")
    assert [e["level"] for e in risk["escalations"]] == ["notify", "hold"]
    code, out = invoke("incidents", "false-positive", risk["id"][:8], "--db", db)
    assert code == 0, out
    assert "marked a false positive" in out and "200.147.67.142" in out
    code, out = invoke("incidents", "--db", db, "--status", "false-positive", "--json")
    assert [i["id"] for i in json.loads(out)] == [risk["id"]]
    store = Store(db)
    assert {r["network"] for r in store.feedback_since(0, "anna@example.org")} == {"200.147.67.142"}
    code, out = invoke("incidents", "false-positive", "nosuchid", "--db", db)
    assert code == 1 and "no incident" in out


def test_incidents_text_shows_detection_time_and_levels(db: str) -> None:
    code, out = invoke("incidents", "--db", db)
    assert code == 0, out
    assert "2026-11-26 07:11:38 anna@example.org account_risk [hold, open]" in out
    assert "levels: notify at 2026-11-26T07:11:38 (impossible_travel) -> hold at" in out


def test_unlock_compromised_learns_nothing(db: str, tmp_path: Path) -> None:
    store = Store(db)
    inc = next(i for i in store.incidents() if i["detector"] == "account_risk")
    with store.begin() as conn:
        store.put_lock(conn, account="anna@example.org", level="hold", locked_at=inc["detected_at"],
                       incident_id=inc["id"], reason="r", backends={}, actor="acctwatch")
    code, out = invoke("unlock", "anna@example.org", "--compromised", "--db", db)
    assert code == 0, out
    assert store.feedback_since(0, "anna@example.org") == []
    assert all(i["status"] == "closed" for i in store.incidents(account="anna@example.org"))


def test_incidents_show_ack_and_close(db: str) -> None:
    code, out = invoke("incidents", "--db", db, "--json")
    risk = next(i for i in json.loads(out) if i["detector"] == "account_risk")
    code, out = invoke("incidents", "show", risk["id"][:8], "--db", db)
    assert code == 0, out
    assert f"Incident {risk['id']}: anna@example.org [hold, open]" in out
    assert "level:     notify at 2026-11-26T07:11:38 (impossible_travel)" in out
    assert "level:     hold at" in out and '"network": "AS7162"' in out
    # the log lines its evidence cites, with file and line number, read back from the file
    assert "  log lines:" in out
    lines = EXAMPLE.read_text().splitlines()
    cited = [ln for ln in out.splitlines() if ln.startswith(f"    {EXAMPLE}:")]
    assert cited, out
    for ln in cited:
        n = int(ln.split(":", 2)[1])
        assert ln.endswith(lines[n - 1]) and "anna@example.org" in lines[n - 1]
    code, out = invoke("incidents", "show", risk["id"], "--db", db, "--json")
    shown = json.loads(out)
    assert shown["incident"]["id"] == risk["id"] and shown["actions"] == [] and shown["alerts"] == []
    assert shown["log_lines"] and all(x["line"] for x in shown["log_lines"])
    code, out = invoke("incidents", "ack", risk["id"], "--note", "on it", "--db", db)
    assert code == 0 and "open -> acknowledged" in out
    store = Store(db)
    eng = Engine(from_dict({}), store=store, geo=None)  # an acknowledged incident is still the open episode
    assert any(i.id == risk["id"] for i in eng.tracker.open.values())
    code, out = invoke("incidents", "close", risk["id"], "--db", db, "--json")
    assert json.loads(out) == {"incident_id": risk["id"], "status": "closed", "previous": "acknowledged"}
    assert [a["action"] for a in store.audit_rows(incident_id=risk["id"])] == ["acknowledged", "closed"]
    code, out = invoke("incidents", "show", "zzzzzzzz", "--db", db)
    assert code == 1 and "no incident" in out


def test_history_matches_the_account_case_insensitively_and_since_takes_both_forms(db: str) -> None:
    code, out = invoke("history", "ANNA@Example.ORG", "--db", db, "--json")
    assert code == 0 and [i["account"] for i in json.loads(out)["incidents"]] == ["anna@example.org"] * 2
    code, out = invoke("incidents", "--db", db, "--since", "2026-11-26", "--json")
    assert code == 0 and len(json.loads(out)) == 2
    code, out = invoke("incidents", "--db", db, "--since", "1h", "--json")  # the incidents are from Nov 26
    assert code == 0 and json.loads(out) == []
    code, out = invoke("replay", str(EXAMPLE), "--since", "soon")
    assert code == 2 and "--since" in out and "Traceback" not in out
