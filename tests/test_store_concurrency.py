"""Several processes opening one new store at once (daemon + CLI, two instances) must all succeed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from acctwatch.store import SCHEMA_VERSION, Store


def test_parallel_first_open_of_a_sqlite_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    procs = [subprocess.Popen([sys.executable, "-c", f"from acctwatch.store import Store; Store({url!r})"],
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate()[1] for p in procs if p.wait() != 0]
    assert errors == []
    assert Store(url).schema_version() == SCHEMA_VERSION


def test_parallel_first_open_of_a_postgresql_store(pg_url: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(pg_url)
    with eng.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS race CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA race"))
    eng.dispose()
    url = pg_url + ("&" if "?" in pg_url else "?") + "options=-csearch_path%3Drace"
    procs = [subprocess.Popen([sys.executable, "-c", f"from acctwatch.store import Store; Store({url!r})"],
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate()[1] for p in procs if p.wait() != 0]
    assert errors == []
    s = Store(url)
    assert s.schema_version() == SCHEMA_VERSION
    s.close()
