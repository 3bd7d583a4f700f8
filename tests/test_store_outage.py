"""The store may go away: a real PostgreSQL (a private instance of the Debian package on 127.0.0.1, its own
data directory and port) is stopped under load and started again, twice, and once before the daemon
starts. The daemon waits, logs it, and carries on where it was: no traceback, no exit, and in the end
exactly the incidents a replay of the same lines finds, each decided once."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from acctwatch.store import Store
from tests.conftest import need

sys.path.insert(0, str(Path(__file__).parent))
from test_daemon import checkpoint_pg, replay_ids, spawn, write_groups
from test_daemon_support import make_log, write_config

PGBIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:] or [""]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePG:
    def __init__(self, root: Path) -> None:
        self.bin = PGBIN[0]
        self.data = root / "pgdata"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> None:
        cmd = [f"{self.bin}/{args[0]}", *args[1:]]
        if os.geteuid() == 0:
            cmd = ["su", self.user, "-s", "/bin/sh", "-c", " ".join(cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, self.user)
            shutil.chown(self.data, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w", "-o",
                  f"'-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data}'", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture()
def pg(tmp_path: Path):  # type: ignore[no-untyped-def]
    need(bool(PGBIN[0]) and Path(PGBIN[0], "pg_ctl").exists(), "PostgreSQL server binaries not installed")
    import tempfile

    # (a directory the postgres user can reach: pytest's own tmp dirs are private to root)
    root = Path(tempfile.mkdtemp(prefix="acctwatch-pg-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    server = PrivatePG(root)
    try:
        server.init()
        yield server
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.realdb
@pytest.mark.slow
def test_the_daemon_waits_for_the_store_and_loses_nothing(pg: PrivatePG, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", [str(log)])
    groups = make_log(120, seed=4, attack_every=5)
    proc = spawn("run", "-c", str(cfg), "--db", pg.url, "--from-start")  # the database is not up yet
    try:
        time.sleep(2)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        pg.start()
        deadline = time.monotonic() + 30
        while not checkpoint_pg(pg.url, log):
            assert time.monotonic() < deadline and proc.poll() is None, "the daemon did not start"
            time.sleep(0.1)
        i = 0
        for _outage in range(2):
            write_groups(log, groups[i:i + 20])
            i += 20
            time.sleep(0.5)
            pg.stop()  # under load: lines keep coming while the store is down
            write_groups(log, groups[i:i + 20])
            i += 20
            time.sleep(3)
            assert proc.poll() is None, "the daemon died with its store"
            pg.start()
            time.sleep(1)
        write_groups(log, groups[i:])
        deadline = time.monotonic() + 60
        while checkpoint_pg(pg.url, log).get("offset") != log.stat().st_size:
            assert time.monotonic() < deadline and proc.poll() is None, "the daemon did not catch up"
            time.sleep(0.2)
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err
    assert "unreachable" in err and "reachable again" in err
    want = replay_ids(cfg, [str(log)])
    store = Store(pg.url)
    try:
        got = {r["id"]: r for r in store.incidents()}
        with store.engine.connect() as c:
            rows = c.execute(sa.text("SELECT idem_key, count(*) FROM audit WHERE idem_key LIKE :pat "
                                     "GROUP BY idem_key"), {"pat": "inc:%:decided"}).all()
    finally:
        store.close()
    assert set(got) == set(want) and len(want) >= 10
    assert {k for k, _ in rows} == {f"inc:{i}:decided" for i in want} and all(n == 1 for _, n in rows)
