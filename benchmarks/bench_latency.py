"""Latency of ``acctwatch run``: from a log line written to the incident stored and the lock done, and the
CPU used while idle.

    python benchmarks/bench_latency.py [--attacks 60] [--poll 0.5] [--idle 10]

Latency: a real Daemon (default poll interval 0.5 s, SQLite store, enforce mode with a ``command`` lock
backend that runs /bin/sh) follows a file; attacks (a login from Germany, then one from the US 5 s later in
log time) are appended at random moments. For each, the time from the write() of the second line to the
end of the commit of its batch is measured (the responder's lock runs inside the batch, before the commit).

Idle CPU: a real ``acctwatch run`` subprocess following an idle file; CPU seconds (utime+stime from
/proc) over ``--idle`` seconds of wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_daemon_support import T0, FakeGeo, login_line, write_config  # noqa: E402

from acctwatch.config import load  # noqa: E402
from acctwatch.daemon import Daemon  # noqa: E402
from acctwatch.store import Store  # noqa: E402

LOCK = """
[response]
lock = ["marker"]
max_locks_per_hour = 100000
[lockers.marker]
type = "command"
lock = ["/bin/sh", "-c", "echo {account} >> %s"]
"""


def latency(n: int, poll: str, tmp: Path) -> list[float]:
    from datetime import timedelta

    log = tmp / "mail.log"
    log.write_bytes(b"")
    marker = tmp / "locked.txt"
    cfg = write_config(tmp / "c.toml", [str(log)], poll=poll)
    cfg.write_text(cfg.read_text().replace('timezone = "UTC"', 'timezone = "UTC"\nmode = "enforce"') + LOCK % marker)
    d = Daemon(load(cfg), Store(f"sqlite:///{tmp / 's.db'}"), config_path=cfg, geo=FakeGeo())
    written: dict[str, float] = {}
    done: dict[str, float] = {}

    def committed(incs: list) -> None:  # type: ignore[type-arg]
        now = time.monotonic()
        for inc in incs:
            done.setdefault(inc.account, now)

    d.on_commit.append(committed)
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    time.sleep(1.0)
    rnd = random.Random(1)
    ts = T0
    with open(log, "ab", buffering=0) as fh:
        for i in range(n):
            acct = f"victim{i}@example.org"
            ts += timedelta(minutes=2)
            fh.write((login_line(ts, acct, "192.0.2.1") + "\n").encode())
            time.sleep(rnd.uniform(0.0, 0.3))
            fh.write((login_line(ts + timedelta(seconds=5), acct, "198.51.100.1") + "\n").encode())
            written[acct] = time.monotonic()
            time.sleep(rnd.uniform(0.05, 0.7))
    deadline = time.monotonic() + 5
    while len(done) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    d.stop()
    t.join(10)
    locked = set(marker.read_text().split()) if marker.exists() else set()
    missing = [a for a in written if a not in done]
    if missing:
        print(f"WARNING: {len(missing)} attacks not detected", file=sys.stderr)
    print(f"lock command ran for {len(locked)} of {n} accounts")
    return sorted(done[a] - written[a] for a in written if a in done)


def idle_cpu(seconds: float, tmp: Path) -> float:
    log = tmp / "idle.log"
    log.write_bytes(b"")
    cfg = write_config(tmp / "idle.toml", [str(log)], poll="0.5s")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, str(ROOT / "tests" / "test_daemon_support.py"), "run", "-c", str(cfg),
                          "--db", f"sqlite:///{tmp / 'idle.db'}"], env=env, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3.0)  # start-up is not idle time

        def cpu() -> float:
            f = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

        c0, t0 = cpu(), time.monotonic()
        time.sleep(seconds)
        return (cpu() - c0) / (time.monotonic() - t0)
    finally:
        p.terminate()
        p.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attacks", type=int, default=60)
    ap.add_argument("--poll", default="0.5s")
    ap.add_argument("--idle", type=float, default=10.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        lat = latency(a.attacks, a.poll, Path(td))
        if lat:
            p50 = lat[len(lat) // 2]
            p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
            print(f"latency line written -> incident stored + lock done, poll {a.poll}, n={len(lat)}: "
                  f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
        if a.idle > 0:
            frac = idle_cpu(a.idle, Path(td))
            print(f"idle CPU over {a.idle:.0f} s: {frac * 100:.2f} % of one core")


if __name__ == "__main__":
    main()
