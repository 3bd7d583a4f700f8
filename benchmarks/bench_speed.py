"""Benchmark (not a test): the speed ratios of issue #15, measured in one run with paired repetitions.

``python3 -m benchmarks.bench_speed [--lines 1000000] [--repeat 3] [--file LOG]``

For each repetition, in this order on the same generated day (``gen_log.py``): a bare ``for line in f``
loop, ``acctwatch replay`` of the file, ``acctwatch run --from-start --once`` on it (the daemon catching up,
fresh store), ``acctwatch replay`` of the gzip-compressed file, ``acctwatch explain`` of the file, and for
start-up ``acctwatch replay`` of an empty file, ``acctwatch --help`` and a bare ``python3 -c pass`` (the
interpreter's own start-up on this machine, which the other two include). Each is a separate process, timed
from outside (wall clock), so start-up counts as a user sees it. Reports min/median/max of each ratio over
the repetitions, and each command's peak RSS.

**Memory on long replays** (a separate mode, not run by default: it takes a few minutes and 1.5 GB of
disk)::

    python3 -m benchmarks.bench_speed --memory [--lines 1000000] [--days 10] [--file DAY] [--long-file LONG]

generates (``gen_log.py --plan public``, like ``bench_replay``) the realistic day of ``--lines`` lines and
``--days`` consecutive days of the same traffic (``--lines N*days --days days``: the same accounts, the
clock advancing; ~9.6 M lines, 1.4 GB for the defaults), or uses the given files, and reports the peak RSS
of ``acctwatch replay FILE`` (nothing else running in that process) for each and their ratio: issue #15's
targets are <= 120 MiB on the day and the ten days within 1.3x of it (the state is bounded by the
detectors' windows: memory must not grow with the length of the log). Memory is not affected by noise:
one run each.
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


def _peak_rss(argv: list[str]) -> int:
    """Peak RSS (KiB) of one command: run by a fresh Python process whose only child it is (its children's
    maximum is then that command's own; works without /usr/bin/time)."""
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
            "if r.returncode:\n    sys.exit(r.stderr[-2000:])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    return int(r.stdout.strip())


def _generate(path: Path, lines: int, days: int) -> None:
    subprocess.run([sys.executable, "-m", "benchmarks.gen_log", str(path), "--lines", str(lines), "--days",
                    str(days), "--plan", "public"], check=True, stdout=subprocess.DEVNULL,
                   cwd=Path(__file__).resolve().parent.parent)


def _count(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def memory(a: argparse.Namespace) -> None:
    """Peak RSS of ``acctwatch replay`` on one day and on ``a.days`` days of the same traffic."""
    tmp = Path(tempfile.mkdtemp(prefix="acctwatch-memory-"))
    try:
        day = Path(a.file) if a.file else tmp / "day.log"
        long = Path(a.long_file) if a.long_file else tmp / "days.log"
        if not a.file:
            _generate(day, a.lines, 1)
        if not a.long_file:
            _generate(long, a.lines * a.days, a.days)
        aw = shutil.which("acctwatch") or "acctwatch"
        empty = tmp / "empty.log"
        empty.write_text("")
        rss = {name: _peak_rss([aw, "replay", "-c", str(empty), str(path)]) / 1024
               for name, path in (("start-up", empty), ("day", day), ("days", long))}
        lines = {"day": _count(day), "days": _count(long)}
        result = {"lines": lines, "days": a.days if not a.long_file else None,
                  "peak_rss_mib": {k: round(v, 1) for k, v in rss.items()},
                  "ratio": round(rss["days"] / rss["day"], 3),
                  "targets": {"day_mib": 120, "ratio": 1.3}}
        if a.json:
            print(json.dumps(result, indent=2))
            return
        rows = [("an empty file (start-up)", rss["start-up"], ""),
                (f"the day, {lines['day']:,} lines", rss["day"], "   (target <= 120 MiB)"),
                (f"{f'{a.days} days' if not a.long_file else 'the long log'}, {lines['days']:,} lines", rss["days"],
                 "")]
        print("peak RSS of acctwatch replay (empty config: acctwatch's defaults)")
        for label, mib, note in rows:
            print(f"  {label:<36} {mib:7.0f} MiB{note}")
        print(f"  {'ratio':<36} {rss['days'] / rss['day']:7.2f}x     (target <= 1.3x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--file", help="use this log instead of generating one")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--memory", action="store_true",
                    help="only measure peak RSS on the day and on --days days of it (takes minutes)")
    ap.add_argument("--days", type=int, default=10, help="with --memory: days of the long log (default 10)")
    ap.add_argument("--long-file", help="with --memory: use this long log instead of generating one")
    a = ap.parse_args()
    if a.memory:
        memory(a)
        return
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
    rows: dict[str, list[float]] = {"bare": [], "replay": [], "catch_up": [], "gz": [], "explain": [],
                                    "startup": [], "help": [], "python": []}
    for i in range(a.repeat):
        state = tmp / f"state{i}"
        cfg.write_text(f'[general]\nstate_dir = "{state}"\n[sources]\nfiles = ["{log}"]\n')
        rows["bare"].append(_bare(log))
        rows["replay"].append(_timed([aw, "replay", "-c", str(cfg), str(log)])[0])
        rows["catch_up"].append(_timed([aw, "run", "-c", str(cfg), "--from-start", "--once"])[0])
        rows["gz"].append(_timed([aw, "replay", "-c", str(cfg), str(gz)])[0])
        rows["explain"].append(_timed([aw, "explain", str(log)])[0])
        rows["startup"].append(_timed([aw, "replay", "-c", str(cfg), str(empty)])[0])
        rows["help"].append(_timed([aw, "--help"])[0])
        rows["python"].append(_timed([sys.executable, "-c", "pass"])[0])
    ratios = {
        "replay / bare loop": [r / b for r, b in zip(rows["replay"], rows["bare"], strict=True)],
        "run --from-start --once / replay": [c / r for c, r in zip(rows["catch_up"], rows["replay"], strict=True)],
        ".gz / plain replay": [g / r for g, r in zip(rows["gz"], rows["replay"], strict=True)],
        "explain / bare loop": [e / b for e, b in zip(rows["explain"], rows["bare"], strict=True)],
    }
    with open(log, "rb") as fh:
        n = sum(1 for _ in fh)
    cfg.write_text(f'[general]\nstate_dir = "{tmp / "state-rss"}"\n[sources]\nfiles = ["{log}"]\n')
    rss = {"replay": _peak([aw, "replay", "-c", str(cfg), str(log)]),
           "run --from-start --once": _peak([aw, "run", "-c", str(cfg), "--from-start", "--once"])}
    result = {"lines": n, "repeat": a.repeat, "seconds": rows,
              "ratios": {k: {"min": min(v), "median": statistics.median(v), "max": max(v)} for k, v in ratios.items()},
              "startup_seconds": {name: {"min": min(rows[k]), "median": statistics.median(rows[k]),
                                         "max": max(rows[k])}
                                  for name, k in (("replay of an empty file", "startup"),
                                                  ("acctwatch --help", "help"), ("python3 -c pass", "python"))},
              "peak_rss_mib": {k: round(v / 1024) for k, v in rss.items()}}
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{n:,} lines, {a.repeat} paired repetitions")
        for k, v in result["ratios"].items():
            print(f"  {k:<36} min {v['min']:6.2f}x  median {v['median']:6.2f}x  max {v['max']:6.2f}x")
        for name, s in result["startup_seconds"].items():
            print(f"  {name:<36} min {s['min']:6.2f} s  median {s['median']:6.2f} s  max {s['max']:6.2f} s")
        for k, v in result["peak_rss_mib"].items():
            print(f"  peak RSS {k:<27} {v} MiB")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
