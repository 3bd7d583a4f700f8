"""Benchmark: `acctwatch replay` (parse + geo + engine + detectors, embedded geo database) on a generated
realistic 1M-line day, next to a bare ``for line in f`` loop over the same file in the same run.

Usage: ``python -m benchmarks.bench_replay [--lines 1000000] [--file PATH] [--keep]``

Reports lines/s of both, the ratio (target: replay within 6x the bare loop) and the peak RSS of this
process (target: under 150 MiB). The log is generated in a child process so its memory does not count.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--file", help="use this log instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the generated log")
    a = ap.parse_args()
    tmp = None
    if a.file:
        path = Path(a.file)
    else:
        tmp = tempfile.mkdtemp(prefix="acctwatch-bench-")
        path = Path(tmp) / "mail.log"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchmarks.gen_log", str(path), "--lines", str(a.lines),
                        "--plan", "public"], check=True, cwd=ROOT)
        print(f"generated in {time.perf_counter() - t:.1f} s")

    from acctwatch.app import build_engine
    from acctwatch.config import Config
    from acctwatch.parsing import PatternSet
    from acctwatch.replay import replay
    from acctwatch.store import Store

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bare = float("inf")
    for _ in range(3):  # best of three: the first pass may also be warming the page cache
        t = time.perf_counter()
        n = 0
        with open(path, encoding="utf-8", errors="replace") as f:
            for _line in f:
                n += 1
        bare = min(bare, time.perf_counter() - t)

    t = time.perf_counter()
    engine = build_engine(Config(), Store("sqlite://"))
    res = replay(engine, [str(path)], PatternSet.load(), zone="UTC")
    full = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = os.path.getsize(path) / 2**20
    print(f"file:        {path} ({n} lines, {size:.0f} MiB)")
    print(f"bare loop:   {bare:.2f} s  ({n / bare:,.0f} lines/s)")
    print(f"replay:      {full:.2f} s  ({res.lines / full:,.0f} lines/s), {res.events} events, "
          f"{len(res.incidents)} incidents")
    print(f"ratio:       {full / bare:.1f}x the bare loop (target <= 6x)")
    print(f"peak RSS:    {rss:.0f} MiB (before replay {rss0:.0f} MiB; target < 150 MiB)")
    if tmp and not a.keep:
        path.unlink()
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
