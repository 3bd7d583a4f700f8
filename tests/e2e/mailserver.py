"""A real, private Postfix + Dovecot + MariaDB mail server for end-to-end tests (loopback only).

The classic virtual-user setup: a MariaDB table ``users(email, password, active)``; Dovecot checks
passwords over SQL with ``... AND active = 1`` (auth cache off), a static userdb, IMAP/POP3 on loopback
ports and LMTP for local delivery; Postfix authenticates submission clients through Dovecot SASL, looks
virtual mailboxes up in MySQL (over TCP, smtpd is chrooted) and relays everything else to local
``smtp-sink`` processes. Both daemons log to files in the work directory. Nothing of the machine's own
configuration is touched: Postfix runs with ``postfix -c <workdir>/postfix`` and Dovecot with
``dovecot -c <workdir>/dovecot/dovecot.conf``, each with its own queue/base directories.

Trusted-proxy mechanisms make logins appear to come from public addresses although only loopback is
ever connected to: Postfix ``smtpd_authorized_xclient_hosts`` and Dovecot ``login_trusted_networks``
(see ``clients.py``).

Needs root (Postfix and Dovecot drop privileges themselves). Run ``python3 tests/e2e/mailserver.py`` to
start one by hand and print its settings; Ctrl-C stops it.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"
DOMAIN = "example.test"
#: Recipient domains outside the server. ``remote.test`` (and any other domain) is accepted by the relay
#: sink (status=sent), ``bounce.test`` goes to a sink that rejects RCPT (status=bounced), ``defer.test``
#: to a port where nothing listens (status=deferred).
REMOTE_DOMAIN = "remote.test"
BOUNCE_DOMAIN = "bounce.test"
DEFER_DOMAIN = "defer.test"

#: Default accounts: local part -> password. All active at start.
DEFAULT_USERS: dict[str, str] = {
    "alice": "alice-Secret-1",
    "bob": "bob-Secret-2",
    "carol": "carol-Secret-3",
    "dave": "dave-Secret-4",
    "erin": "erin-Secret-5",
    "frank": "frank-Secret-6",
    "grace": "grace-Secret-7",
    "heidi": "heidi-Secret-8",
    "ivan": "ivan-Secret-9",
    "judy": "judy-Secret-10",
}
#: Accounts that test_mailserver.py (the harness's own tests) logs in with; tests of acctwatch itself
#: should use the others (frank ... judy), which the harness tests never touch.
HARNESS_TEST_USERS = ("alice", "bob", "carol", "dave", "erin")

MAIL_UID = "mail"  # Debian's "mail" user (uid 8) owns the maildirs; no vmail user needs to be created.

DOVECOT_MODULES = Path("/usr/lib/dovecot")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, what: str = "") -> T:
    """Call ``predicate`` until it returns something truthy and return that; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or predicate!r}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port free on both 127.0.0.1 and ::1 right now (Postfix listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
        except OSError:
            continue
        return int(port)
    raise RuntimeError("no free loopback port found")


def port_listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (read from /proc: a probe connection would show up in
    the daemons' logs as a client)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 3 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def missing_components() -> list[str]:
    """What this harness needs that is not installed here (empty when everything is there)."""
    missing = []
    for cmd in ("postfix", "postconf", "smtp-sink", "dovecot", "doveadm", "mariadb", "mariadb-admin"):
        if shutil.which(cmd) is None and not Path("/usr/sbin", cmd).exists():
            missing.append(cmd)
    if shutil.which("mariadbd") is None and not Path("/usr/sbin/mariadbd").exists():
        missing.append("mariadbd (mariadb-server)")
    for prog in ("imap", "pop3", "lmtp"):
        if not (DOVECOT_MODULES / prog).exists():
            missing.append(f"dovecot-{prog}d")
    if not list(DOVECOT_MODULES.glob("modules/**/libdriver_mysql.so")):
        missing.append("dovecot-mysql")
    if "postconf" not in missing:
        maps = subprocess.run(["postconf", "-m"], capture_output=True, text=True).stdout.split()
        if "mysql" not in maps:
            missing.append("postfix-mysql")
    return missing


def _run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command, output to a temporary file, not a pipe: ``dovecot`` and ``postfix start`` leave
    daemons behind that inherit stdout/stderr, and a pipe would never reach EOF."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {text.strip()}")
    return subprocess.CompletedProcess(cmd, proc.returncode, text, "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------------------
# Operator mailbox: an aiosmtpd server in a thread that keeps every message it receives.


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    received_at: float

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """Subject and all text parts, decoded: search this for evidence."""
        msg = self.message
        parts = [self.subject]
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                try:
                    parts.append(str(part.get_content()))
                except (LookupError, ValueError):
                    parts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
        return "\n".join(parts)


class OperatorSink:
    """SMTP server on 127.0.0.1 that accepts everything (no AUTH, no TLS) and stores it in memory."""

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self._messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        mail = ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(content), time.time())
        with self._lock:
            self._messages.append(mail)
        return "250 2.0.0 Ok: kept by the acctwatch e2e operator sink"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def wait_for_message(
        self, predicate: Callable[[ReceivedMail], bool] = lambda m: True, timeout: float = 10.0
    ) -> ReceivedMail:
        """The first received message matching ``predicate`` (waits up to ``timeout`` s)."""

        def find() -> ReceivedMail | None:
            return next((m for m in self.messages() if predicate(m)), None)

        return wait_for(find, timeout, what="a message at the operator sink")

    def apprise_url(self, to: str = f"ops@{DOMAIN}", sender: str = f"acctwatch@{DOMAIN}") -> str:
        """An apprise ``mailto://`` URL that delivers to this sink (plain SMTP, no login)."""
        return f"mailto://{self.host}:{self.port}?mode=insecure&from={sender}&to={to}&smtp={self.host}"


# ---------------------------------------------------------------------------------------------------------
# smtp-sink processes standing in for "the rest of the internet".


class SmtpSink:
    """Postfix's ``smtp-sink`` on a loopback port; ``reject`` makes it answer 5xx to those commands."""

    def __init__(self, logfile: Path, port: int | None = None, reject: str = "", name: str = "") -> None:
        self.host = HOST
        self.port = port or free_port()
        self.reject = reject
        self.logfile = logfile
        self.name = name or f"sink:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = ["smtp-sink", "-u", "nobody", "-h", f"{self.name}.sink.test"]
        if self.reject:
            cmd += ["-f", self.reject]
        cmd += [f"{self.host}:{self.port}", "100"]
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_for(lambda: port_listening(self.port) or self.proc is None or self.proc.poll() is not None, 5,
                 what=f"smtp-sink on {self.port}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"smtp-sink exited: {self.logfile.read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


# ---------------------------------------------------------------------------------------------------------
# A daemon under test (``acctwatch run``): started in the background, output to a file, always stopped.


class BackgroundProcess:
    """Run ``argv`` in the background with stdout+stderr going to ``logfile``; ``stop()`` sends SIGTERM
    (then SIGKILL after ``grace`` s) to its whole process group and returns the exit code."""

    def __init__(self, argv: list[str], logfile: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.logfile = Path(logfile)
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.logfile.read_text("utf-8", "replace") if self.logfile.exists() else ""

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait for ``pattern`` (regex) in the output; fails early, with the output, if the process exits."""
        rx = re.compile(pattern)

        def check() -> re.Match[str] | None:
            m = rx.search(self.output())
            if m is None and not self.running():
                raise RuntimeError(f"{self.argv[0]} exited ({self.proc.returncode}) before printing {pattern!r}:\n"
                                   f"{self.output()[-3000:]}")
            return m

        return wait_for(check, timeout, what=f"{pattern!r} in the output of {' '.join(self.argv)}")

    def signal(self, sig: int) -> None:
        if self.running():
            os.killpg(self.proc.pid, sig)

    def stop(self, grace: float = 10.0) -> int | None:
        if self.running():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        return self.proc.poll()


# ---------------------------------------------------------------------------------------------------------


@dataclass
class MailServer:
    """A private Postfix + Dovecot instance on loopback, backed by a MariaDB ``users`` table.

    Attributes the e2e tests use (valid after :meth:`start`):

    - ``postfix_log``, ``dovecot_log``: the log files (Postfix ``maillog_file``, Dovecot ``log_path``)
    - ``db_url``: SQLAlchemy URL of the database holding ``users(email, password, active)``
    - ``doveadm_cmd``: the doveadm command line for this instance (``["doveadm", "-c", conf]``)
    - ``submission_port``, ``imap_port``, ``pop3_port`` on ``host`` (127.0.0.1, also on ::1)
    - ``operator_sink``: :class:`OperatorSink` for alert emails (``host``, ``port``, ``messages()``)
    - ``relay_sink``: the smtp-sink all remote mail is relayed to
    - ``users``: email -> password of the accounts created
    """

    workdir: Path
    db_name: str = "mail_e2e"
    db_user: str = "mail_e2e"
    db_password: str = "mail_e2e-pw"
    domain: str = DOMAIN
    user_passwords: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS))
    host: str = HOST

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        w = self.workdir
        self.postfix_dir = w / "postfix"
        self.queue_dir = w / "postfix-spool"
        self.postfix_data_dir = w / "postfix-data"
        self.dovecot_dir = w / "dovecot"
        self.dovecot_conf = self.dovecot_dir / "dovecot.conf"
        self.dovecot_base_dir = w / "dovecot-run"
        self.mail_dir = w / "mail"
        self.postfix_log = w / "postfix.log"
        self.dovecot_log = w / "dovecot.log"
        self.sink_log = w / "smtp-sink.log"
        self.mariadb_log = w / "mariadb.log"
        self.users: dict[str, str] = {f"{lp}@{self.domain}": pw for lp, pw in self.user_passwords.items()}
        self.db_url = f"mysql+pymysql://{self.db_user}:{self.db_password}@{HOST}:3306/{self.db_name}"
        self.doveadm_cmd = ["doveadm", "-c", str(self.dovecot_conf)]
        self.postfix_cmd = ["postfix", "-c", str(self.postfix_dir)]
        self.postsuper_cmd = ["postsuper", "-c", str(self.postfix_dir)]
        self.postqueue_cmd = ["postqueue", "-c", str(self.postfix_dir)]
        self.sasl_hold_map = self.postfix_dir / "acctwatch_sasl_hold"
        self.submission_port = 0
        self.imap_port = 0
        self.pop3_port = 0
        self.operator_sink = OperatorSink()
        self.relay_sink = SmtpSink(self.sink_log, name="relay")
        self.bounce_sink = SmtpSink(self.sink_log, reject="RCPT", name="bounce")
        self.defer_port = 0
        self._started_mariadb: subprocess.Popen[bytes] | None = None
        self._running: list[str] = []
        self._lock_file: Any = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> MailServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the e2e mail server must run as root (Postfix/Dovecot drop privileges)")
        self._take_db_lock()
        for d in (self.workdir, self.postfix_dir, self.queue_dir, self.postfix_data_dir, self.dovecot_dir,
                  self.mail_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # postfix and dovecot's unprivileged processes must traverse it
        shutil.chown(self.mail_dir, MAIL_UID, MAIL_UID)
        shutil.chown(self.postfix_data_dir, "postfix", "postfix")
        self.submission_port, self.imap_port, self.pop3_port, self.defer_port = (free_port() for _ in range(4))

        self._ensure_mariadb()
        self._setup_database()

        for sink in (self.relay_sink, self.bounce_sink):
            sink.start()
        self._running.append("sinks")
        self.operator_sink.start()
        self._running.append("operator_sink")

        self._write_postfix_config()
        # Creates the queue directories (private/ must exist before Dovecot puts its sockets there).
        _run([*self.postfix_cmd, "check"])
        self._write_dovecot_config()
        self._running.append("dovecot")
        _run(["dovecot", "-c", str(self.dovecot_conf)])
        self._running.append("postfix")
        _run([*self.postfix_cmd, "start"])

        wait_for(lambda: all(port_listening(p) for p in (self.submission_port, self.imap_port, self.pop3_port)),
                 15, what="Postfix submission and Dovecot IMAP/POP3 ports")
        wait_for(lambda: (self.queue_dir / "private" / "auth").exists()
                 and (self.queue_dir / "private" / "dovecot-lmtp").exists(), 10,
                 what="Dovecot auth and LMTP sockets in the Postfix queue directory")

    def stop(self, drop_database: bool = False) -> None:
        """Stop everything this instance started (safe to call twice or after a failed start);
        ``drop_database`` also drops the ``users`` database."""
        errors: list[str] = []
        if "postfix" in self._running:
            pid = _read_pid(self.queue_dir / "pid" / "master.pid")
            try:
                if pid and _pid_alive(pid):
                    _run([*self.postfix_cmd, "stop"])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc))
            if pid:
                self._wait_gone(pid, "postfix master")
        if "dovecot" in self._running:
            pid = _read_pid(self.dovecot_base_dir / "master.pid")
            try:
                if pid and _pid_alive(pid):
                    _run([*self.doveadm_cmd, "stop"])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc))
            if pid:
                self._wait_gone(pid, "dovecot master")
        if "operator_sink" in self._running:
            self.operator_sink.stop()
        if "sinks" in self._running:
            self.relay_sink.stop()
            self.bounce_sink.stop()
        self._running.clear()
        if drop_database and self._lock_file is not None:
            try:
                self.drop_database()
            except RuntimeError as exc:
                errors.append(str(exc))
        if self._started_mariadb is not None:
            subprocess.run(["mariadb-admin", "shutdown"], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
            try:
                self._started_mariadb.wait(30)
            except subprocess.TimeoutExpired:
                self._started_mariadb.kill()
            self._started_mariadb = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None
        if errors:
            print("mailserver teardown problems:", *errors, sep="\n  ", file=sys.stderr)

    def _take_db_lock(self, timeout: float = 600) -> None:
        """One server per database name at a time on this machine: a second test session (another
        engineer's run in the same checkout) waits here instead of dropping the first one's table."""
        import fcntl

        self._lock_file = open(f"/tmp/acctwatch-e2e-{self.db_name}.lock", "w")  # noqa: SIM115
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another e2e run holds database {self.db_name} (lock "
                                       f"{self._lock_file.name}); set ACCTWATCH_E2E_DB to use another") from None
                time.sleep(0.5)

    @staticmethod
    def _wait_gone(pid: int, what: str, timeout: float = 15) -> None:
        try:
            wait_for(lambda: not _pid_alive(pid), timeout, what=f"{what} (pid {pid}) to exit")
        except TimeoutError:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def drop_database(self) -> None:
        self._mariadb_root(f"DROP DATABASE IF EXISTS `{self.db_name}`;")

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- MariaDB --------------------------------------------------------------------------------------

    @staticmethod
    def _mariadb_alive() -> bool:
        return subprocess.run(["mariadb-admin", "ping"], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=10).returncode == 0

    def _ensure_mariadb(self) -> None:
        """Reuse the MariaDB that .ci/services.sh started; start one (and stop it later) otherwise."""
        if self._mariadb_alive():
            return
        run_dir = Path("/run/mysqld")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "mysql", "mysql")
        if not Path("/var/lib/mysql/mysql").is_dir():
            _run(["mariadb-install-db", "--user=mysql", "--datadir=/var/lib/mysql"])
        with open(self.mariadb_log, "ab") as log:
            self._started_mariadb = subprocess.Popen(
                ["mariadbd", "--user=mysql", f"--bind-address={HOST}", "--port=3306"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        wait_for(self._mariadb_alive, 30, 0.3, what="MariaDB to answer mariadb-admin ping")

    def _mariadb_root(self, sql: str) -> None:
        _run(["mariadb", "-e", sql])

    def _setup_database(self) -> None:
        rows = []
        for addr, pw in self.users.items():
            hashed = _run(["doveadm", "-O", "pw", "-s", "SHA512-CRYPT", "-p", pw]).stdout.strip()
            rows.append(f"('{addr}', '{hashed}', 1)")
        db, user, pw = self.db_name, self.db_user, self.db_password
        self._mariadb_root(f"""
            DROP DATABASE IF EXISTS `{db}`;
            CREATE DATABASE `{db}` CHARACTER SET utf8mb4;
            CREATE TABLE `{db}`.users (
                email VARCHAR(255) NOT NULL PRIMARY KEY,
                password VARCHAR(255) NOT NULL,
                active TINYINT(1) NOT NULL DEFAULT 1
            );
            INSERT INTO `{db}`.users (email, password, active) VALUES {", ".join(rows)};
            CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{pw}';
            CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{pw}';
            ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY '{pw}';
            ALTER USER '{user}'@'localhost' IDENTIFIED BY '{pw}';
            GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{user}'@'127.0.0.1';
            GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{user}'@'localhost';
            FLUSH PRIVILEGES;
        """)

    def db_connect(self) -> Any:
        import pymysql

        return pymysql.connect(host=HOST, port=3306, user=self.db_user, password=self.db_password,
                               database=self.db_name, autocommit=True)

    def sql(self, query: str, args: Iterable[Any] | None = None) -> list[tuple[Any, ...]]:
        conn = self.db_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(query, tuple(args) if args is not None else None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def set_active(self, account: str, active: bool) -> None:
        self.sql("UPDATE users SET active = %s WHERE email = %s", (1 if active else 0, account))

    def is_active(self, account: str) -> bool:
        rows = self.sql("SELECT active FROM users WHERE email = %s", (account,))
        return bool(rows and rows[0][0])

    def reset_users(self) -> None:
        """Make every account active again (for tests that lock accounts)."""
        self.sql("UPDATE users SET active = 1")

    # -- Postfix --------------------------------------------------------------------------------------

    def _write_postfix_config(self) -> None:
        q, w = self.queue_dir, self.workdir
        main_cf = f"""\
# acctwatch e2e: private Postfix instance (postfix -c {self.postfix_dir}); loopback only.
compatibility_level = 3.6
queue_directory = {q}
data_directory = {self.postfix_data_dir}
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.{self.domain}
mydomain = {self.domain}
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = all
mynetworks = 127.0.0.0/8 [::1]/128
maillog_file = {self.postfix_log}
maillog_file_prefixes = {w}
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
biff = no
append_dot_mydomain = no
smtputf8_enable = no
smtpd_banner = $myhostname ESMTP
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_authorized_xclient_hosts = 127.0.0.0/8 [::1]/128
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
virtual_mailbox_domains = {self.domain}
virtual_mailbox_maps = mysql:{self.postfix_dir}/mysql-virtual-mailbox.cf
virtual_transport = lmtp:unix:private/dovecot-lmtp
relayhost = [{HOST}]:{self.relay_sink.port}
# acctwatch's hold (docs/response.md): an access(5) table of SASL login names whose mail goes on hold
smtpd_sender_restrictions = check_sasl_access hash:{self.sasl_hold_map}
transport_maps = inline:{{ {BOUNCE_DOMAIN}=smtp:[{HOST}]:{self.bounce_sink.port}, \
{DEFER_DOMAIN}=smtp:[{HOST}]:{self.defer_port} }}
# Keep retries of defer.test mail from cluttering the logs during a test run.
minimal_backoff_time = 300s
maximal_backoff_time = 600s
queue_run_delay = 300s
"""
        master_cf = f"""\
# acctwatch e2e: the submission port is the only listener (loopback, see inet_interfaces).
{self.submission_port} inet n - y - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
trace     unix  -       -       y       -       0       bounce
verify    unix  -       -       y       -       1       verify
flush     unix  n       -       y       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
showq     unix  n       -       y       -       -       showq
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
lmtp      unix  -       -       y       -       -       lmtp
anvil     unix  -       -       y       -       1       anvil
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        mysql_cf = f"""\
hosts = {HOST}:3306
user = {self.db_user}
password = {self.db_password}
dbname = {self.db_name}
query = SELECT 'ok' FROM users WHERE email = '%s'
"""
        (self.postfix_dir / "main.cf").write_text(main_cf)
        self.sasl_hold_map.write_text("")
        _run(["postmap", "-c", str(self.postfix_dir), f"hash:{self.sasl_hold_map}"])
        (self.postfix_dir / "master.cf").write_text(master_cf)
        mysql_path = self.postfix_dir / "mysql-virtual-mailbox.cf"
        mysql_path.write_text(mysql_cf)
        os.chmod(mysql_path, 0o640)
        shutil.chown(mysql_path, "root", "postfix")

    # -- Dovecot --------------------------------------------------------------------------------------

    def _write_dovecot_config(self) -> None:
        w, q = self.workdir, self.queue_dir
        sql_conf = self.dovecot_dir / "dovecot-sql.conf.ext"
        sql_conf.write_text(f"""\
driver = mysql
connect = host={HOST} port=3306 dbname={self.db_name} user={self.db_user} password={self.db_password}
default_pass_scheme = SHA512-CRYPT
password_query = SELECT email AS user, password FROM users WHERE email = '%u' AND active = 1
""")
        os.chmod(sql_conf, 0o600)
        home = f"{self.mail_dir}/%d/%n"
        self.dovecot_conf.write_text(f"""\
# acctwatch e2e: private Dovecot instance (dovecot -c {self.dovecot_conf}); loopback only.
protocols = imap pop3 lmtp
listen = {HOST}, ::1
base_dir = {self.dovecot_base_dir}
state_dir = {w}/dovecot-state
instance_name = acctwatch-e2e-{os.getpid()}
log_path = {self.dovecot_log}
info_log_path = {self.dovecot_log}
log_timestamp = "%b %d %H:%M:%S "
auth_verbose = yes
auth_cache_size = 0
auth_mechanisms = plain login
disable_plaintext_auth = no
ssl = no
login_trusted_networks = 127.0.0.0/8 ::1/128
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_uid = {MAIL_UID}
mail_gid = {MAIL_UID}

passdb {{
  driver = sql
  args = {sql_conf}
}}
# Locking without bounces (docs/response.md): "active = 1" is only in the passdb; the static userdb does
# not ask the passdb whether the user exists (allow_all_users), so LMTP still delivers to a locked account
# (Postfix's virtual_mailbox_maps decided that the address exists).
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={home} allow_all_users=yes
}}

service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener {q}/private/dovecot-lmtp {{
    mode = 0600
    user = postfix
    group = postfix
  }}
}}
service auth {{
  unix_listener {q}/private/auth {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{self.domain}
}}
protocol pop3 {{
  pop3_uidl_format = %08Xu%08Xv
}}
""")

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run doveadm against this Dovecot instance, e.g. ``server.doveadm("kick", "alice@example.test")``."""
        proc = subprocess.run([*self.doveadm_cmd, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30)
        if check and proc.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def who(self) -> list[str]:
        """Accounts with an open IMAP/POP3 session (``doveadm who``)."""
        out = self.doveadm("who", "-1").stdout.splitlines()
        return [line.split()[0] for line in out[1:] if line.strip()]

    # -- logs -----------------------------------------------------------------------------------------

    def log_sizes(self) -> dict[str, int]:
        """Current size of each log; pass to :meth:`log_text` to read only what came later."""
        return {str(p): (p.stat().st_size if p.exists() else 0) for p in (self.postfix_log, self.dovecot_log)}

    def log_text(self, which: str = "both", since: dict[str, int] | None = None) -> str:
        """Text of the postfix / dovecot log (or both), from the offsets in ``since`` on."""
        paths = {"postfix": [self.postfix_log], "dovecot": [self.dovecot_log],
                 "both": [self.postfix_log, self.dovecot_log]}[which]
        out = []
        for p in paths:
            if not p.exists():
                continue
            with open(p, "rb") as f:
                f.seek((since or {}).get(str(p), 0))
                out.append(f.read().decode("utf-8", "replace"))
        return "".join(out)

    def wait_for_log(self, pattern: str, which: str = "both", since: dict[str, int] | None = None,
                     timeout: float = 10.0) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears in the log(s) after ``since``; return the match."""
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log_text(which, since)), timeout,
                        what=f"log line matching {pattern!r}")

    def rotate_logs(self, suffix: str = ".1") -> tuple[Path, Path]:
        """Rename both logs (like logrotate) and make the daemons reopen them; returns the old paths.

        Use it to give a test fresh, empty logs, or to test how acctwatch follows a rotation."""
        old = []
        for path in (self.postfix_log, self.dovecot_log):
            target = path.with_name(path.name + suffix)
            if path.exists():
                path.rename(target)
            old.append(target)
        _run([*self.postfix_cmd, "reload"])  # postlogd reopens maillog_file
        self.doveadm("log", "reopen")
        return old[0], old[1]

    # -- mail queue -----------------------------------------------------------------------------------

    def queue(self) -> list[dict[str, Any]]:
        """The Postfix queue (``postqueue -j``): dicts with queue_name (active, deferred, hold, ...),
        queue_id, sender, recipients. Mail to ``defer.test`` stays in the deferred queue."""
        out = _run([*self.postqueue_cmd, "-j"]).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def held_queue_ids(self, sender: str | None = None) -> set[str]:
        return {m["queue_id"] for m in self.queue()
                if m["queue_name"] == "hold" and (sender is None or m.get("sender") == sender)}

    def flush_queue(self) -> None:
        _run([*self.postfix_cmd, "flush"])

    def delete_queue(self) -> None:
        """Drop every queued message (``postsuper -d ALL``)."""
        _run([*self.postsuper_cmd, "-d", "ALL"])

    def settings(self) -> dict[str, Any]:
        """Everything a test (or a human) needs to point acctwatch at this server."""
        return {
            "postfix_log": str(self.postfix_log),
            "dovecot_log": str(self.dovecot_log),
            "db_url": self.db_url,
            "doveadm_cmd": self.doveadm_cmd,
            "postfix_cmd": self.postfix_cmd,
            "postsuper_cmd": self.postsuper_cmd,
            "postqueue_cmd": self.postqueue_cmd,
            "postfix_config_dir": str(self.postfix_dir),
            "host": self.host,
            "submission_port": self.submission_port,
            "imap_port": self.imap_port,
            "pop3_port": self.pop3_port,
            "operator_sink": f"{self.operator_sink.host}:{self.operator_sink.port}",
            "operator_apprise_url": self.operator_sink.apprise_url(),
            "relay_sink": f"{self.relay_sink.host}:{self.relay_sink.port}",
            "users": self.users,
            "workdir": str(self.workdir),
        }


def explain_events(*logs: Path | str, timezone: str | None = None) -> list[dict[str, Any]]:
    """Events acctwatch parses from ``logs`` (``acctwatch explain --jsonl``), one dict per event.

    The daemons here write local time (no zone) like syslog; ``timezone`` defaults to the machine's."""
    tz = ["--timezone", timezone] if timezone else []
    # The CLI of the acctwatch importable by this Python (not whatever ``acctwatch`` is first on PATH).
    launcher = "import sys; from acctwatch.cli import main; sys.argv[0] = 'acctwatch'; sys.exit(main())"
    cmd = [sys.executable, "-c", launcher, "explain", "--jsonl", *tz, *map(str, logs)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"acctwatch explain failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def make_workdir() -> Path:
    """A fresh directory under /tmp that Postfix's and Dovecot's unprivileged processes can traverse."""
    path = Path(tempfile.mkdtemp(prefix="acctwatch-e2e-", dir="/tmp"))
    os.chmod(path, 0o755)
    return path


def main() -> None:
    """Start a server by hand, print its settings as JSON, run until Ctrl-C."""
    missing = missing_components()
    if missing:
        sys.exit(f"not installed: {', '.join(missing)}")
    server = MailServer(make_workdir())
    server.start()
    try:
        print(json.dumps(server.settings(), indent=2), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(drop_database=True)


if __name__ == "__main__":
    main()
