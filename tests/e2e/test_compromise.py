"""End to end: ``acctwatch run`` (enforce mode) on a real Postfix + Dovecot + MariaDB server (issue 7).

The daemon under test is the installed ``acctwatch`` console script, started as a real subprocess on the
harness's log files, with the ``sql`` locker on the harness's ``users`` table, the ``doveadm`` locker, the
``postsuper`` hold backend, an apprise e-mail target pointing at the operator sink, and a SQLite store in
the test's tmp directory. Real clients log in through the servers' trusted-proxy mechanisms, so the
daemons' own log lines show public addresses in Germany, the US, ... (``tests/fixtures/geo``).

Proves, per issue 7:

1. an account that logs in from two countries within a minute is locked (``active = 0``) within a few
   seconds of its last login line (the latency is printed: run with ``-s`` to see it);
2. its next SMTP AUTH, IMAP and POP3 logins fail;
3. its IMAP session opened before the attack is ended (``doveadm kick``);
4. the operator e-mail arrives with the evidence (account, countries, IPs) and the unlock command;
5. an account that sends a burst of mail above a (low) ``send_burst`` limit gets its queued mail held;
6. a normal user active at the same time is untouched (``active = 1``, no incident);
7. ``acctwatch unlock ACCOUNT`` restores SMTP/IMAP/POP3 logins and releases the held mail.

Accounts: frank (compromised), grace and ivan (normal users), heidi (bulk sender); the harness's own tests
use alice ... erin. Each test starts its own ``acctwatch run`` from the end of the logs (no checkpoint yet).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from . import clients
from .clients import fresh_ip
from .mailserver import DEFER_DOMAIN, REMOTE_DOMAIN, BackgroundProcess, MailServer, OperatorSink, wait_for

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
GEO_DIR = REPO / "tests" / "fixtures" / "geo"

#: send_burst limit for the test: more than this many recipients per hour is a burst
BURST_RECIPIENTS_PER_HOUR = 20
#: how fast the lock must follow the last login line (issue 7: "within a few seconds")
MAX_LOCK_LATENCY = 5.0


def acctwatch_cmd() -> list[str]:
    """The ``acctwatch`` console script of the Python running the tests (not whatever is first on PATH)."""
    for d in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        here = Path(d) / "acctwatch"
        if here.exists():
            return [str(here)]
    found = shutil.which("acctwatch")
    if found is None:
        pytest.fail("the acctwatch console script is not installed (pip install -e .)")
    return [found]


def write_config(server: MailServer, sink: OperatorSink, tmp: Path, hold: list[str] | None = None,
                 sql_url: str | None = None) -> tuple[Path, str]:
    """An enforce-mode config for this server; returns (config path, store URL)."""
    db = f"sqlite:///{tmp / 'acctwatch.db'}"
    cfg = tmp / "acctwatch.toml"

    def q(v: Any) -> str:
        return json.dumps(v)  # a JSON string or list of strings is valid TOML

    cfg.write_text(f"""\
# acctwatch e2e (tests/e2e/test_compromise.py): enforce mode on the harness's private mail server.
[general]
mode = "enforce"
state_dir = {q(str(tmp))}
db = {q(db)}

[geoip]
databases = {q([str(GEO_DIR / "test-city.mmdb"), str(GEO_DIR / "test-asn.mmdb")])}
documentation_ranges_public = true   # the test addresses are in the documentation ranges

[sources]
files = {q([str(server.postfix_log), str(server.dovecot_log)])}
poll_interval = "0.1s"

[detectors.geo_countries]
window = "1m"
countries = 2
policy = "lock"

[detectors.send_burst]
recipients_per_hour = {BURST_RECIPIENTS_PER_HOUR}
policy = "hold"

[response]
hold = {q(hold or ["postsuper"])}
lock = ["postsuper", "sql", "doveadm"]

[lockers.sql]
url = {q(sql_url or server.db_url)}

[lockers.sasl_hold]
map = {q(str(server.sasl_hold_map))}
config_dir = {q(str(server.postfix_dir))}

[lockers.doveadm]
doveadm = {q(list(server.doveadm_cmd))}

[lockers.postsuper]
config_dir = {q(str(server.postfix_dir))}

[notify]
operator = [{q(sink.apprise_url())}]
""")
    return cfg, db


def start_acctwatch(background: Callable[..., BackgroundProcess], cfg: Path, db: str) -> BackgroundProcess:
    proc = background([*acctwatch_cmd(), "run", "--config", str(cfg), "--db", db], name="acctwatch-run")
    proc.wait_for_output(r"acctwatch running as instance", timeout=30)
    return proc


def acctwatch(cfg: Path, db: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an acctwatch CLI command with the daemon's --config/--db."""
    proc = subprocess.run([*acctwatch_cmd(), *args, "--config", str(cfg), "--db", db], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"acctwatch {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def incidents_of(cfg: Path, db: str, account: str) -> list[dict[str, Any]]:
    out = acctwatch(cfg, db, "incidents", "--account", account, "--json").stdout
    return list(json.loads(out))


def caught_up(server: MailServer, db: str) -> bool:
    """Whether the daemon has processed and committed everything in both logs so far (its checkpoints,
    committed after the batch's incidents and actions, have reached the end of both files)."""
    path = db.removeprefix("sqlite:///")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT position FROM checkpoints").fetchall()
    except sqlite3.Error:
        return False
    offsets = {}
    for (text,) in rows:
        pos = json.loads(text)
        offsets[pos.get("path")] = int(pos.get("offset") or 0)
    return all(offsets.get(str(p), -1) >= p.stat().st_size for p in (server.postfix_log, server.dovecot_log))


def wait_caught_up(server: MailServer, db: str) -> None:
    wait_for(lambda: caught_up(server, db), 15, interval=0.05, what="acctwatch run to process the logs so far")


def in_parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run calls concurrently (Dovecot delays each refused login by ~2 s)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def logins_ok(server: MailServer, user: str, country: str = "DE") -> list[bool]:
    """[SMTP AUTH, IMAP, POP3] login succeeded, each from a fresh address in ``country``."""
    pw = server.users[user]
    return in_parallel(
        lambda: clients.smtp_login_ok(server, user, pw, fresh_ip(country)),
        lambda: clients.imap_login_ok(server, user, pw, fresh_ip(country)),
        lambda: clients.pop3_login_ok(server, user, pw, fresh_ip(country)),
    )


def queue_names(server: MailServer, ids: set[str]) -> dict[str, str]:
    """queue id -> queue name (hold, deferred, active, ...) for those of ``ids`` still queued."""
    return {m["queue_id"]: m["queue_name"] for m in server.queue() if m["queue_id"] in ids}


def drop_queued(server: MailServer, ids: set[str]) -> None:
    if ids:
        subprocess.run([*server.postsuper_cmd, "-d", "-"], input="\n".join(ids) + "\n", text=True,
                       capture_output=True, check=False)


def test_compromised_account_is_locked_kicked_reported_and_unlocked(
    fresh_accounts: MailServer, operator_sink: OperatorSink, background: Callable[..., BackgroundProcess],
    tmp_path: Path,
) -> None:
    server = fresh_accounts
    victim, normal = "frank@example.test", "grace@example.test"
    pw = server.users[victim]
    cfg, db = write_config(server, operator_sink, tmp_path)
    daemon = start_acctwatch(background, cfg, db)
    held: set[str] = set()
    session = None
    try:
        # The owner reads mail from Berlin: an IMAP session that stays open. A normal user is busy too.
        home_ip = fresh_ip("DE")
        session = clients.imap_login(server, victim, pw, home_ip)
        normal_ip = fresh_ip("DE")
        clients.imap_login(server, normal, server.users[normal], normal_ip).logout()
        clients.send_messages(server, normal, server.users[normal], normal_ip, [f"friend@{REMOTE_DOMAIN}"], count=2)
        assert clients.imap_alive(session)
        # The logs have whole seconds: let the clock tick so that the attack is logged after the owner's
        # login (same-second lines of two files are merged in file order, and the evidence would show the
        # attacker first).
        t_home = time.time()
        wait_for(lambda: int(time.time()) > int(t_home), 2, interval=0.01, what="the next second")

        # Moments later the password is used from New York: SMTP AUTH and a message (to a domain whose
        # mail stays queued, so that the hold has something to hold).
        attacker_ip = fresh_ip("US")
        t0 = time.monotonic()
        sent = clients.send_messages(server, victim, pw, attacker_ip, [f"victim{i}@{DEFER_DOMAIN}" for i in range(3)])
        t_sent = time.monotonic()
        held = set(sent.queue_ids)

        # 1. locked within a few seconds of the last login line
        wait_for(lambda: not server.is_active(victim), MAX_LOCK_LATENCY + 5, interval=0.02,
                 what=f"{victim} to be locked (active = 0)")
        latency = time.monotonic() - t0
        print(f"\nlock latency: {latency:.3f} s from the start of the attacker's SMTP session "
              f"({time.monotonic() - t_sent:.3f} s after it ended)")
        assert latency < MAX_LOCK_LATENCY, f"locked {latency:.2f} s after the last login (limit {MAX_LOCK_LATENCY} s)"
        daemon.wait_for_output(rf"incident \S+: {re.escape(victim)} logged in from 2 countries \(DE, US\)")

        # 3. the session opened before the attack is ended (doveadm kick)
        wait_for(lambda: not clients.imap_alive(session), 10, what="the open IMAP session to be kicked")
        # ... and the queued message of the attacker is on hold
        wait_for(lambda: held <= server.held_queue_ids(sender=victim), 10, what="the attacker's mail held")

        # 2. the next SMTP AUTH, IMAP and POP3 logins fail (from the owner's and the attacker's country)
        assert logins_ok(server, victim, "US") == [False, False, False]
        assert logins_ok(server, victim, "DE") == [False, False, False]

        # 4. the operator e-mail: evidence and the unlock command
        mail = operator_sink.wait_for_message(lambda m: victim in m.subject and "LOCKED" in m.subject, timeout=30)
        print(f"\noperator e-mail:\nSubject: {mail.subject}\n\n{mail.text}")
        text = mail.text
        assert mail.rcpt_tos == ("ops@example.test",)
        assert "geo_countries" in mail.subject
        for needle in (victim, home_ip, attacker_ip, "DE", "US", "Berlin", "New York",
                       f"acctwatch unlock -c {cfg} -- {victim}", "sql: ok: value 1 -> 0",
                       "doveadm: ok: open IMAP/POP3 sessions ended", "postsuper: ok: 1 queued message(s) put on hold"):
            assert needle in text, f"{needle!r} missing from the operator e-mail:\n{text}"
        # one alert for the compromise, even if a second detector (impossible_travel) also fired
        locked_mails = [m for m in operator_sink.messages() if victim in m.subject and "LOCKED" in m.subject]
        assert len(locked_mails) == 1, [m.subject for m in locked_mails]

        # 6. the normal user is untouched
        assert logins_ok(server, normal) == [True, True, True]
        wait_caught_up(server, db)
        assert server.is_active(normal)
        assert incidents_of(cfg, db, normal) == []

        # 7. acctwatch unlock restores the account and releases the held mail
        out = acctwatch(cfg, db, "unlock", victim, "--reason", "password reset by the helpdesk").stdout
        print(f"\n$ acctwatch unlock {victim}\n{out}")
        assert f"{victim} unlocked." in out
        assert server.is_active(victim)
        assert logins_ok(server, victim) == [True, True, True]
        names = queue_names(server, held)
        assert names and "hold" not in names.values(), names
        unlocked = operator_sink.wait_for_message(lambda m: f"{victim} unlocked by" in m.subject, timeout=30)
        print(f"\noperator e-mail:\nSubject: {unlocked.subject}\n\n{unlocked.text}")
        # The daemon saw those logins too (still within a minute of the attack): the incident was decided
        # once, so the account is not locked again behind the operator's back.
        wait_caught_up(server, db)
        assert server.is_active(victim)
        assert daemon.running()
    finally:
        if session is not None:
            clients.imap_close(session)
        drop_queued(server, held)


def test_send_burst_is_held_and_released(
    fresh_accounts: MailServer, operator_sink: OperatorSink, background: Callable[..., BackgroundProcess],
    tmp_path: Path,
) -> None:
    server = fresh_accounts
    sender, normal = "heidi@example.test", "ivan@example.test"
    cfg, db = write_config(server, operator_sink, tmp_path)
    daemon = start_acctwatch(background, cfg, db)
    ids: set[str] = set()
    try:
        # A normal user sends a little mail ...
        normal_ip = fresh_ip("DE")
        clients.send_messages(server, normal, server.users[normal], normal_ip,
                              [f"a@{REMOTE_DOMAIN}", f"b@{REMOTE_DOMAIN}"], count=2)
        # ... the bulk sender 3 messages with 7 recipients each: 21 recipients > 20 per hour.
        per_msg = 7
        n_msgs = BURST_RECIPIENTS_PER_HOUR // per_msg + 1
        sent = clients.send_messages(server, sender, server.users[sender], fresh_ip("DE"),
                                     [f"list{i}@{DEFER_DOMAIN}" for i in range(per_msg)], count=n_msgs)
        ids = set(sent.queue_ids)
        assert len(ids) == n_msgs

        # 5. held per policy (hold): all of its queued mail is on hold, the account itself stays active
        wait_for(lambda: ids <= server.held_queue_ids(sender=sender), 15, interval=0.05,
                 what=f"the burst of {sender} to be on hold")
        daemon.wait_for_output(rf"incident \S+: {re.escape(sender)} is sending in bulk")
        assert server.is_active(sender)
        mail = operator_sink.wait_for_message(lambda m: sender in m.subject and "MAIL HELD" in m.subject, timeout=30)
        print(f"\noperator e-mail:\nSubject: {mail.subject}\n\n{mail.text}")
        assert f"{n_msgs} queued message(s) put on hold" in mail.text
        assert f"{n_msgs * per_msg} recipients in the last hour (limit {BURST_RECIPIENTS_PER_HOUR})" in mail.text
        assert f"acctwatch unlock -c {cfg} -- {sender}" in mail.text

        # 6. the normal user is untouched
        wait_caught_up(server, db)
        assert server.is_active(normal)
        assert incidents_of(cfg, db, normal) == []

        # 7. unlock releases exactly the held mail
        out = acctwatch(cfg, db, "unlock", sender).stdout
        print(f"\n$ acctwatch unlock {sender}\n{out}")
        assert f"{n_msgs} held message(s) released" in out
        names = queue_names(server, ids)
        assert set(names) == ids and "hold" not in names.values(), names
        assert daemon.running()
    finally:
        drop_queued(server, ids)


def sent_ids(server: MailServer, since: dict[str, int]) -> set[str]:
    """Queue ids the relay accepted (``status=sent``) in the Postfix log since ``since``."""
    return set(re.findall(r" ([0-9A-F]{6,}): to=<[^>]*>, relay=[^,]*, .*status=sent",
                          server.log_text("postfix", since)))


def test_a_hold_stops_later_submissions_and_release_sends_them(
    fresh_accounts: MailServer, operator_sink: OperatorSink, background: Callable[..., BackgroundProcess],
    tmp_path: Path,
) -> None:
    """Issue 12: with a relay that accepts at once, ``postsuper -h`` alone holds nothing of a spam run; with
    ``sasl_hold`` (check_sasl_access) everything the account submits after the hold goes to the hold queue,
    and ``acctwatch release`` sends it."""
    server = fresh_accounts
    sender = "judy@example.test"
    cfg, db = write_config(server, operator_sink, tmp_path, hold=["sasl_hold", "postsuper"])
    daemon = start_acctwatch(background, cfg, db)
    later: set[str] = set()
    try:
        per_msg = 7
        n_msgs = BURST_RECIPIENTS_PER_HOUR // per_msg + 1
        ip = fresh_ip("DE")
        clients.send_messages(server, sender, server.users[sender], ip,
                              [f"list{i}@{REMOTE_DOMAIN}" for i in range(per_msg)], count=n_msgs)
        daemon.wait_for_output(rf"incident \S+: {re.escape(sender)} is sending in bulk")
        mail = operator_sink.wait_for_message(lambda m: sender in m.subject and "MAIL HELD" in m.subject, timeout=30)
        assert f"sasl_hold: ok: new mail held: {sender} added to hash:{server.sasl_hold_map}" in mail.text
        assert server.sasl_hold_map.read_text().startswith(f"{sender} HOLD acctwatch incident ")
        st = acctwatch(cfg, db, "status", sender).stdout
        print(f"\n$ acctwatch status {sender}\n{st}")
        assert st.startswith(f"{sender}: HELD (its mail is held) by acctwatch") and "PARTIAL" not in st
        assert "sasl_hold: held (in hash:" in st

        # the account keeps sending: every later message is held by Postfix itself, none reaches the relay
        since = server.log_sizes()
        later = set(clients.send_messages(server, sender, server.users[sender], ip, [f"more@{REMOTE_DOMAIN}"],
                                          count=5).queue_ids)
        wait_for(lambda: later <= server.held_queue_ids(sender=sender), 15, interval=0.1,
                 what="the mail submitted after the hold to be on hold")
        time.sleep(1)
        assert not (later & sent_ids(server, since)), "mail submitted after the hold went out"
        assert "Sender address triggers HOLD" not in server.log_text("postfix", since)  # it is the SASL name
        assert "SASL login name acctwatch incident" in server.log_text("postfix", since)

        # release: the entry goes, the held mail is sent, new mail flows again
        since = server.log_sizes()
        out = acctwatch(cfg, db, "release", sender).stdout
        print(f"\n$ acctwatch release {sender}\n{out}")
        assert f"{sender} released: its mail flows again." in out
        assert "5 message(s) held meanwhile released" in out
        assert sender not in server.sasl_hold_map.read_text()
        server.flush_queue()
        wait_for(lambda: later <= sent_ids(server, since), 30, interval=0.2, what="the released mail to be sent")
        after = set(clients.send_messages(server, sender, server.users[sender], ip, [f"x@{REMOTE_DOMAIN}"]).queue_ids)
        wait_for(lambda: after <= sent_ids(server, since), 30, interval=0.2, what="new mail after release to go out")
        assert daemon.running()
    finally:
        drop_queued(server, later)
        server.sasl_hold_map.write_text("")
        subprocess.run(["postmap", "-c", str(server.postfix_dir), f"hash:{server.sasl_hold_map}"], check=False)


def test_a_locked_account_still_receives_its_mail(
    fresh_accounts: MailServer, operator_sink: OperatorSink, tmp_path: Path,
) -> None:
    """Issue 12: the lock (``active = 0``, only in Dovecot's passdb; static userdb with allow_all_users)
    stops SMTP/IMAP/POP3 logins, but mail to the account is delivered to its mailbox, not bounced, and is
    there after the unlock."""
    server = fresh_accounts
    victim, friend = "ivan@example.test", "grace@example.test"
    cfg, db = write_config(server, operator_sink, tmp_path)
    out = acctwatch(cfg, db, "lock", victim, "--reason", "e2e: locked while mail arrives").stdout
    assert f"{victim} locked." in out and not server.is_active(victim)
    try:
        assert logins_ok(server, victim) == [False, False, False]
        since = server.log_sizes()
        subject = f"for a locked account {time.time():.0f}"
        clients.send_messages(server, friend, server.users[friend], fresh_ip("DE"), [victim], subject=subject)
        line = server.wait_for_log(rf"to=<{re.escape(victim)}>, relay=[^,]*lmtp[^,]*,.*status=(sent|bounced|deferred)",
                                   "postfix", since, timeout=30)
        print(f"\ndelivery while locked:\n{line.group(0)}")
        text = server.log_text("postfix", since)
        assert re.search(rf"to=<{re.escape(victim)}>, .*status=sent", text), text
        assert "status=bounced" not in text and "status=deferred" not in text
    finally:
        out = acctwatch(cfg, db, "unlock", victim, "--compromised").stdout
    assert f"{victim} unlocked." in out
    conn = clients.imap_login(server, victim, server.users[victim], fresh_ip("DE"))
    try:
        typ, data = conn.search(None, "SUBJECT", f'"{subject}"')
        assert typ == "OK" and data[0].split(), f"the mail delivered while {victim} was locked is not in INBOX"
    finally:
        clients.imap_close(conn)


@pytest.mark.parametrize("case", ["no_driver", "wrong_password", "no_update_grant"])
def test_enforce_refuses_a_lock_backend_that_cannot_work(
    fresh_accounts: MailServer, operator_sink: OperatorSink, tmp_path: Path, case: str,
) -> None:
    """Issue 12: at start every lock backend checks itself; enforce mode exits 1 with one line saying what
    to fix instead of failing at the first incident (``pip install .`` without ``.[mysql]``, a wrong
    password, a database user without the UPDATE grant)."""
    server = fresh_accounts
    env = None
    url = server.db_url
    if case == "no_driver":  # what a Python without PyMySQL does on `import pymysql`
        stub = tmp_path / "no-pymysql" / "pymysql"
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'pymysql'\", name='pymysql')\n")
        import os

        env = {**os.environ, "PYTHONPATH": str(stub.parent)}
        want = (f"[lockers.sql]: url {url.replace(server.db_password, '***')}: the database driver 'pymysql' is "
                "not installed: pip install 'acctwatch[mysql]'")
    elif case == "wrong_password":
        url = url.replace(server.db_password, "not-the-password")
        want = "[lockers.sql]: url mysql+pymysql://mail_e2e:***@127.0.0.1:3306/mail_e2e: the database refused " \
               "the connection: (1045, \"Access denied for user 'mail_e2e'"
    else:
        server._mariadb_root(f"""
            CREATE USER IF NOT EXISTS 'aw_readonly'@'127.0.0.1' IDENTIFIED BY 'ro-pw';
            GRANT SELECT ON `{server.db_name}`.* TO 'aw_readonly'@'127.0.0.1';
            FLUSH PRIVILEGES;""")
        url = f"mysql+pymysql://aw_readonly:ro-pw@127.0.0.1:3306/{server.db_name}"
        want = "[lockers.sql]: the lock statement (UPDATE users SET active = 0 WHERE email = :account): (1142, " \
               "\"UPDATE command denied to user 'aw_readonly'"
    try:
        cfg, db = write_config(server, operator_sink, tmp_path, sql_url=url)
        proc = subprocess.run([*acctwatch_cmd(), "run", "--config", str(cfg), "--db", db, "--once"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env)
        print(f"\n$ acctwatch run ({case})\n{proc.stderr}")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "enforce mode: these lock backends cannot work, so acctwatch does not start" in proc.stderr
        assert want in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert all(server.is_active(a) for a in server.users)
    finally:
        if case == "no_update_grant":
            server._mariadb_root("DROP USER IF EXISTS 'aw_readonly'@'127.0.0.1';")
