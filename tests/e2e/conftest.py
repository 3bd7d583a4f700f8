"""Session fixtures for the end-to-end tests against a real Postfix + Dovecot + MariaDB server.

``mailserver`` starts a private server once per test session (see ``mailserver.py``) and stops it at the
end. Tests skip with the reason when a component is not installed or the run is not root, and fail
instead when ACCTWATCH_REQUIRE_SERVICES=1 (CI). ACCTWATCH_E2E_KEEP=1 keeps the work directory (configs,
logs) and the database after the run for inspection; ACCTWATCH_E2E_DB overrides the database name
(default ``mail_e2e``) so that two runs on one machine do not share a table.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    from tests.conftest import need
except ImportError:  # tests/ itself on sys.path (pytest's rootdir-less import mode)
    from conftest import need  # type: ignore[no-redef]

from .mailserver import BackgroundProcess, MailServer, OperatorSink, make_workdir, missing_components, wait_for

__all__ = ["wait_for"]


@pytest.fixture(scope="session")
def mailserver() -> Iterator[MailServer]:
    missing = missing_components()
    need(not missing, f"mail server e2e: not installed: {', '.join(missing)} "
         "(apt-get install postfix postfix-mysql dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-mysql "
         "mariadb-server)")
    need(os.geteuid() == 0, "mail server e2e: needs root (starts Postfix and Dovecot)")
    keep = os.environ.get("ACCTWATCH_E2E_KEEP") == "1"
    server = MailServer(make_workdir(), db_name=os.environ.get("ACCTWATCH_E2E_DB", "mail_e2e"))
    try:
        server.start()
    except Exception as exc:
        server.stop()
        pytest.fail(f"mail server e2e: could not start the server: {exc}\n"
                    f"logs in {server.workdir}")
    try:
        yield server
    finally:
        server.stop(drop_database=not keep)
        if keep:
            print(f"\nACCTWATCH_E2E_KEEP: mail server files kept in {server.workdir}")
        else:
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def operator_sink(mailserver: MailServer) -> OperatorSink:
    """The operator mailbox, emptied for this test."""
    mailserver.operator_sink.clear()
    return mailserver.operator_sink


@pytest.fixture
def fresh_accounts(mailserver: MailServer) -> Iterator[MailServer]:
    """The server with every account active before and after the test."""
    mailserver.reset_users()
    yield mailserver
    mailserver.reset_users()


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Callable[..., BackgroundProcess]]:
    """Start daemons under test: ``proc = background(["acctwatch", "run", "-c", cfg])``; output goes to
    ``tmp_path/<name>-N.out`` (``proc.output()``), and every process still running is stopped after the test."""
    started: list[BackgroundProcess] = []

    def start(argv: list[str], env: dict[str, str] | None = None, name: str = "") -> BackgroundProcess:
        label = name or Path(argv[0]).name
        proc = BackgroundProcess(argv, tmp_path / f"{label}-{len(started) + 1}.out", env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
