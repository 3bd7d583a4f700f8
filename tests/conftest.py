"""Shared fixtures. Real servers (MariaDB, PostgreSQL, Postfix, Dovecot, fail2ban) are used where users
have them: tests needing one skip with a clear reason when it is absent locally, and fail instead of
skipping when ACCTWATCH_REQUIRE_SERVICES=1 (set by .ci/run, which installs and starts them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

REQUIRE_SERVICES = os.environ.get("ACCTWATCH_REQUIRE_SERVICES") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a real component the test needs is missing."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


def _reachable(url: str) -> str | None:
    import sqlalchemy

    try:
        eng = sqlalchemy.create_engine(url)
        with eng.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # any driver error means: not usable here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


@pytest.fixture(scope="session")
def mysql_url() -> str:
    url = os.environ.get("ACCTWATCH_TEST_MYSQL_URL", "")
    need(bool(url), "MariaDB not configured: run `eval $(bash .ci/services.sh)` to start it")
    err = _reachable(url)
    need(err is None, f"MariaDB at {url} not reachable: {err}")
    return url


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("ACCTWATCH_TEST_PG_URL", "")
    need(bool(url), "PostgreSQL not configured: run `eval $(bash .ci/services.sh)` to start it")
    err = _reachable(url)
    need(err is None, f"PostgreSQL at {url} not reachable: {err}")
    return url


@pytest.fixture()
def private_pg_url(pg_url: str) -> Any:
    """A PostgreSQL database of this test's own (created, and dropped afterwards): a store whose rows no
    other test sees."""
    import uuid

    name = f"aw_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield pg_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS
