"""Benchmark (not a test): the speed ratios of issue #15, measured in one run with paired repetitions.

``python3 -m benchmarks.bench_speed [--lines 1000000] [--repeat 3] [--file LOG]``

For each repetition, in this order on the same generated day (``gen_log.py``): a bare ``for line in f``
loop, ``acctwatch replay`` of the file, ``acctwatch run --from-start --once`` on it (the daemon catching up,
fresh store), ``acctwatch replay`` of the gzip-compressed file, and ``acctwatch replay`` of an empty file
(start-up). Each is a separate process, timed from outside (wall clock), so start-up counts as a user sees
it. Reports min/median/max of each ratio over the repetitions, and each command's peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS of the child in KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt, max(after, before)


def _bare(path: Path) -> float:
    code = ("import sys,time\nt=time.perf_counter()\nn=0\nwith open(sys.argv[1],'rb') as f:\n"
            "    for line in f:\n        n+=1\nprint(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _peak(argv: list[str]) -> int:
    """Peak RSS (KiB) of one command, via /usr/bin/time when present."""
    tool = shutil.which("time") or "/usr/bin/time"
    if not Path(tool).exists():
        return 0
    r = subprocess.run([tool, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        return int(r.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--file", help="use this log instead of generating one")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="acctwatch-speed-"))
    log = Path(a.file) if a.file else tmp / "mail.log"
    if not a.file:
        subprocess.run([sys.executable, "-m", "benchmarks.gen_log", str(log), "--lines", str(a.lines)], check=True,
                       stdout=subprocess.DEVNULL)
    gz = tmp / "mail.log.gz"
    with open(log, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    empty = tmp / "empty.log"
    empty.write_text("")
    aw = shutil.which("acctwatch") or "acctwatch"
    cfg = tmp / "acctwatch.toml"
    rows: dict[str, list[float]] = {"bare": [], "replay": [], "catch_up": [], "gz": [], "startup": []}
    for i in range(a.repeat):
        state = tmp / f"state{i}"
        cfg.write_text(f'[general]\nstate_dir = "{state}"\n[sources]\nfiles = ["{log}"]\n')
        rows["bare"].append(_bare(log))
        rows["replay"].append(_timed([aw, "replay", "-c", str(cfg), str(log)])[0])
        rows["catch_up"].append(_timed([aw, "run", "-c", str(cfg), "--from-start", "--once"])[0])
        rows["gz"].append(_timed([aw, "replay", "-c", str(cfg), str(gz)])[0])
        rows["startup"].append(_timed([aw, "replay", "-c", str(cfg), str(empty)])[0])
    ratios = {
        "replay / bare loop": [r / b for r, b in zip(rows["replay"], rows["bare"], strict=True)],
        "run --from-start --once / replay": [c / r for c, r in zip(rows["catch_up"], rows["replay"], strict=True)],
        ".gz / plain replay": [g / r for g, r in zip(rows["gz"], rows["replay"], strict=True)],
    }
    with open(log, "rb") as fh:
        n = sum(1 for _ in fh)
    cfg.write_text(f'[general]\nstate_dir = "{tmp / "state-rss"}"\n[sources]\nfiles = ["{log}"]\n')
    rss = {"replay": _peak([aw, "replay", "-c", str(cfg), str(log)]),
           "run --from-start --once": _peak([aw, "run", "-c", str(cfg), "--from-start", "--once"])}
    result = {"lines": n, "repeat": a.repeat, "seconds": rows,
              "ratios": {k: {"min": min(v), "median": statistics.median(v), "max": max(v)} for k, v in ratios.items()},
              "startup_seconds": {"min": min(rows["startup"]), "median": statistics.median(rows["startup"]),
                                  "max": max(rows["startup"])},
              "peak_rss_mib": {k: round(v / 1024) for k, v in rss.items()}}
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{n:,} lines, {a.repeat} paired repetitions")
        for k, v in result["ratios"].items():
            print(f"  {k:<36} min {v['min']:6.2f}x  median {v['median']:6.2f}x  max {v['max']:6.2f}x")
        s = result["startup_seconds"]
        print(f"  {'replay of an empty file':<36} min {s['min']:6.2f} s  median {s['median']:6.2f} s  "
              f"max {s['max']:6.2f} s")
        for k, v in result["peak_rss_mib"].items():
            print(f"  peak RSS {k:<27} {v} MiB")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
