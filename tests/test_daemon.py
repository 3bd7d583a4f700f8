"""``acctwatch run``: --once, live-vs-replay agreement across a rotation, kill -9 at random points with
exact accounting, SIGTERM/SIGHUP, and two instances sharing one store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from acctwatch.config import load
from acctwatch.daemon import Daemon
from acctwatch.engine import Engine
from acctwatch.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from test_daemon_support import FakeGeo, make_log, write_config

SUPPORT = str(Path(__file__).parent / "test_daemon_support.py")
ROOT = str(Path(__file__).resolve().parent.parent)


def cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, SUPPORT, *args], capture_output=True, text=True, env=env,
                          timeout=60, **kw)


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, SUPPORT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)


def replay_ids(cfg: Path, files: list[str]) -> dict[str, dict[str, Any]]:
    r = cli("replay", "-c", str(cfg), "--jsonl", *files)
    assert r.returncode == 0, r.stderr
    return {d["id"]: d for d in map(json.loads, r.stdout.splitlines())}


def store_incidents(db: str) -> dict[str, dict[str, Any]]:
    s = Store(db)
    try:
        return {r["id"]: r for r in s.incidents()}
    finally:
        s.close()


def daemon(cfg_path: Path, db: str, **kw: Any) -> Daemon:
    cfg = load(cfg_path)
    store = Store(db)
    return Daemon(cfg, store, config_path=cfg_path, geo=FakeGeo(), **kw)


def checkpoint(db: str, log: Path) -> dict[str, Any]:
    if not Path(db.removeprefix("sqlite:///")).exists():
        return {}
    s = Store(db)
    try:
        return s.get_checkpoint(f"test:file:{log}") or {}
    finally:
        s.close()


def checkpoint_pg(url: str, log: Path) -> dict[str, Any]:
    """The file checkpoint in any store (empty while the store cannot be reached)."""
    try:
        s = Store(url)
    except Exception:
        return {}
    try:
        return s.get_checkpoint(f"test:file:{log}") or {}
    except Exception:
        return {}
    finally:
        s.close()


def wait_started(db: str, log: Path, timeout: float = 30) -> None:
    """Until the daemon has recorded its first position (it is then past start-up, signals installed)."""
    deadline = time.monotonic() + timeout
    while not checkpoint(db, log):
        assert time.monotonic() < deadline, "acctwatch run did not start"
        time.sleep(0.05)
    time.sleep(0.2)


def write_groups(path: Path, groups: list[list[str]]) -> None:
    with open(path, "ab") as fh:
        for g in groups:
            fh.write("".join(line + "\n" for line in g).encode())


def test_once_from_start_equals_replay(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    write_groups(log, make_log(60))
    cfg = write_config(tmp_path / "c.toml", [str(log)])
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = cli("run", "-c", str(cfg), "--db", db, "--once", "--from-start")
    assert r.returncode == 0, r.stderr
    assert "following" in r.stderr and "incident" in r.stderr
    want = replay_ids(cfg, [str(log)])
    assert len(want) >= 5
    assert set(store_incidents(db)) == set(want)
    # a second --once reads nothing new and changes nothing
    r = cli("run", "-c", str(cfg), "--db", db, "--once")
    assert r.returncode == 0 and "incident" not in r.stderr
    # first start without --from-start: from the end, nothing is read
    db2 = f"sqlite:///{tmp_path / 's2.db'}"
    assert cli("run", "-c", str(cfg), "--db", db2, "--once").returncode == 0
    assert store_incidents(db2) == {}


def test_live_equals_replay_with_rotation_in_the_middle(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", [str(log)])
    d = daemon(cfg, f"sqlite:///{tmp_path / 's.db'}", respond=False)
    groups = make_log(120, seed=5)
    rnd = random.Random(5)
    i = 0
    rotated = False
    while i < len(groups):
        n = rnd.randrange(1, 12)
        write_groups(log, groups[i:i + n])
        i += n
        if not rotated and i > len(groups) // 2:
            os.rename(log, str(log) + ".1")
            log.write_bytes(b"")
            rotated = True
        d.poll_once()
        if rnd.random() < 0.3:
            time.sleep(0.25)  # past the rotation grace
            d.poll_once()
    time.sleep(0.25)
    for _ in range(3):
        d.poll_once()
    d.close()
    live = store_incidents(d.store.url)
    want = replay_ids(cfg, [str(log) + ".1", str(log)])
    assert rotated and len(want) >= 10
    assert set(live) == set(want)
    for k, v in want.items():
        assert (live[k]["account"], live[k]["last_seen"].isoformat().replace("+00:00", "Z")) == (
            v["account"], v["last_seen"])


def test_kill_9_at_random_points_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """A real `acctwatch run` subprocess is killed -9 again and again while lines are appended (with a
    rotation); at the end every line was processed exactly once: same incidents as replay, one audit
    decision per incident, checkpoint at the end of the file."""
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", [str(log)])
    db = f"sqlite:///{tmp_path / 's.db'}"
    groups = make_log(400, seed=9, attack_every=5)
    rnd = random.Random(9)
    kills = 0
    i = 0
    rotated = False
    proc = spawn("run", "-c", str(cfg), "--db", db, "--from-start")
    wait_started(db, log)  # the first start must happen before the file is rotated (else it is a new file)
    try:
        while i < len(groups):
            n = rnd.randrange(1, 25)
            write_groups(log, groups[i:i + n])
            i += n
            if not rotated and i > len(groups) // 2:
                os.rename(log, str(log) + ".1")
                log.write_bytes(b"")
                rotated = True
            time.sleep(rnd.uniform(0.02, 0.5))  # python start-up is ~0.3 s: kill during it too
            if rnd.random() < 0.35:
                proc.kill()  # SIGKILL: no cleanup at all
                proc.wait()
                kills += 1
                # --from-start only applies to a source without a checkpoint (killed before the first commit)
                proc = spawn("run", "-c", str(cfg), "--db", db, "--from-start")
        deadline = time.monotonic() + 30  # the last one catches up (slow machines: start-up takes a while)
        while checkpoint(db, log).get("offset") != log.stat().st_size:
            assert time.monotonic() < deadline, "the last run did not catch up"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert kills >= 5
    want = replay_ids(cfg, [str(log) + ".1", str(log)])
    got = store_incidents(db)
    assert set(got) == set(want) and len(want) >= 30  # (the default familiarity preset: profiles too)
    # exactly one response decision per incident, however often lines were read again
    eng = sa.create_engine(db)
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT idem_key, count(*) FROM audit WHERE idem_key LIKE :pat "
                                 "GROUP BY idem_key"), {"pat": "inc:%:decided"}).all()
        outbox = c.execute(sa.text("SELECT dedupe_key, count(*) FROM outbox GROUP BY dedupe_key")).all()
        cp = json.loads(c.execute(sa.text("SELECT position FROM checkpoints WHERE source LIKE '%:file:%'"))
                        .scalar_one())
    eng.dispose()
    assert {k for k, _ in rows} == {f"inc:{i}:decided" for i in want}
    assert all(n == 1 for _, n in rows) and all(n == 1 for _, n in outbox)
    assert cp["offset"] == log.stat().st_size and cp["file"] == str(log)


def test_sigterm_finishes_the_batch_and_exits_0(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", [str(log)])
    db = f"sqlite:///{tmp_path / 's.db'}"
    proc = spawn("run", "-c", str(cfg), "--db", db)
    wait_started(db, log)
    write_groups(log, make_log(21))
    deadline = time.monotonic() + 30
    while checkpoint(db, log).get("offset") != log.stat().st_size:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "finishing the current batch" in err
    assert len(store_incidents(db)) == 3


def test_sighup_reloads_config_and_keeps_state(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", [str(log)])
    d = daemon(cfg, f"sqlite:///{tmp_path / 's.db'}", respond=False)
    groups = make_log(14)
    # the first login of an attack, then reload, then the second: the window survives the reload
    write_groups(log, [*groups[:6], groups[6][:1]])
    d.poll_once()
    write_config(tmp_path / "c.toml", [str(log)], extra='\n[detectors.geo_countries]\npolicy = "notify"\n')
    d.request_reload()
    d.reload()
    assert d.engine.config.detectors["geo_countries"]["policy"] == "notify"
    write_groups(log, [groups[6][1:]])
    d.poll_once()
    incs = list(store_incidents(d.store.url).values())
    assert len(incs) == 1 and incs[0]["action"] == "notify"
    # a broken config on SIGHUP keeps the running one
    (tmp_path / "c.toml").write_text("[general]\nmode = 'bogus'\n")
    d.reload()
    assert d.engine.config.detectors["geo_countries"]["policy"] == "notify"
    d.close()


def test_sighup_signal_in_a_subprocess(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", [str(log)])
    db = f"sqlite:///{tmp_path / 's.db'}"
    proc = spawn("run", "-c", str(cfg), "--db", db)
    wait_started(db, log)
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "reloaded" in err, err


def _two_instances(tmp_path: Path, db: str, names: tuple[str, str], seed: int) -> None:
    """Two instances (e.g. an HA pair both reading a shared log) on one store: the same incidents, stored
    once, decided once, one alert each, positions per instance."""
    log = tmp_path / "mail.log"
    write_groups(log, make_log(140, seed=seed))
    daemons = []
    for name in names:
        cfg = write_config(tmp_path / f"{name}.toml", [str(log)])
        cfg.write_text(cfg.read_text().replace('instance = "test"', f'instance = "{name}"'))
        daemons.append(daemon(cfg, db, from_start=True, once=True))
    threads = [threading.Thread(target=d.run) for d in daemons]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    want = replay_ids(tmp_path / f"{names[0]}.toml", [str(log)])
    assert set(store_incidents(db)) == set(want)
    eng = sa.create_engine(db)
    with eng.connect() as c:
        dec = c.execute(sa.text("SELECT count(*), count(DISTINCT idem_key) FROM audit "
                                "WHERE idem_key LIKE :pat"), {"pat": "inc:%:decided"}).one()
        ob = c.execute(sa.text("SELECT count(*), count(DISTINCT dedupe_key) FROM outbox")).one()
        cps = c.execute(sa.text("SELECT source FROM checkpoints ORDER BY source")).scalars().all()
    eng.dispose()
    assert dec[0] == dec[1] == len(want)
    assert ob[0] == ob[1]
    assert sorted({c.split(":")[0] for c in cps}) == sorted(names)  # positions are per instance


def test_two_instances_on_one_store_act_once(tmp_path: Path) -> None:
    _two_instances(tmp_path, f"sqlite:///{tmp_path / 's.db'}", ("mx1", "mx2"), seed=3)


@pytest.mark.realdb
def test_two_instances_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    store = Store(pg_url)
    with store.begin() as c:
        for t in ("audit", "outbox", "incidents", "checkpoints", "detector_state", "detector_kv", "locks"):
            c.execute(sa.text(f"DELETE FROM {t}"))
    store.close()
    _two_instances(tmp_path, pg_url, ("pg1", "pg2"), seed=4)


def test_engine_flush_commits_checkpoints_with_incidents(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    eng = Engine(load(write_config(tmp_path / "c.toml", [])), store=store, geo=FakeGeo())

    def boom(conn: Any) -> None:
        store.set_checkpoint(conn, "x", {"offset": 1})
        raise RuntimeError("crash inside the transaction")

    with pytest.raises(RuntimeError):
        eng.flush(also=boom)
    assert store.get_checkpoint("x") is None
    eng.flush(also=lambda conn: store.set_checkpoint(conn, "x", {"offset": 2}))
    assert store.get_checkpoint("x") == {"offset": 2}


def test_sighup_to_enforce_with_a_backend_that_cannot_work_stops_the_daemon(tmp_path: Path) -> None:
    """Enforce mode checks the backends on SIGHUP too: a reload to a backend that cannot work stops the
    daemon (exit 1, one line per problem) instead of failing at the first incident."""
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    ok = f'\n[response]\nlock = ["rec"]\nhold = ["rec"]\n[lockers.rec]\ntype = "command"\nlock = ["{sys.executable}"]\n'
    cfg = write_config(tmp_path / "c.toml", [str(log)], extra=ok)
    d = daemon(cfg, f"sqlite:///{tmp_path / 's.db'}")
    assert d.exit_code == 0
    broken = ok.replace(sys.executable, "/nonexistent/lock-tool")
    write_config(tmp_path / "c.toml", [str(log)], extra=broken)  # still dry-run: a warning, running on
    d.reload()
    assert not d._stop.is_set()
    text = (tmp_path / "c.toml").read_text().replace("[general]", '[general]\nmode = "enforce"')
    (tmp_path / "c.toml").write_text(text)
    d.reload()
    assert d._stop.is_set() and d.exit_code == 1
    assert d.run() == 1


def test_sighup_reopens_a_geoip_database_replaced_in_place(tmp_path: Path) -> None:
    """geoipupdate writes a new file under the same name: SIGHUP makes the daemon read the new one."""
    import shutil

    geo_dir = Path(__file__).resolve().parent / "fixtures" / "geo"
    db = tmp_path / "GeoLite2.mmdb"
    shutil.copy(geo_dir / "test-city.mmdb", db)
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", [str(log)], extra=f'\n[geoip]\ndatabases = ["{db}"]\n')
    d = Daemon(load(cfg), Store(f"sqlite:///{tmp_path / 's.db'}"), config_path=cfg, respond=False)
    assert d.engine.geo.info()[0]["type"] == "City"
    tmp = tmp_path / "new.mmdb"
    shutil.copy(geo_dir / "test-country.mmdb", tmp)
    os.replace(tmp, db)  # as geoipupdate does
    d.reload()
    assert d.engine.geo.info()[0]["type"] == "Country"
    d.close()
