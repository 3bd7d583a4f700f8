"""Benchmark: detection quality of `acctwatch replay` on a simulated population (benchmarks/simpop.py).

Usage: ``python3 -m benchmarks.bench_detection [--accounts 3000] [--days 14] [--seed 1] [--mode warm|cold|both]
[--json] [--config FILE] [--keep DIR]``

1. generates the population (week 1 = clean history, week 2 on = the scoring period with the attacks);
2. **warm**: ``acctwatch replay --db sqlite:///TMP/warm.db`` over week 1 (learning), then with the same
   store ``--jsonl`` over the scoring files, scored;
3. **cold**: ``acctwatch replay --jsonl`` over the scoring files with a fresh in-memory store, scored.

Prints the score tables (benchmarks/score.py) and the wall time of each step. Without ``--config`` an empty
config file is used, so a host's /etc/acctwatch/acctwatch.toml does not change the result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import score, simpop  # noqa: E402

CLI = [sys.executable, "-c", "from acctwatch.cli import main; main()"]


def replay(args: list[str], out: Path | None) -> float:
    """Run ``acctwatch replay ARGS`` (stdout to *out*); returns the wall time."""
    t = time.perf_counter()
    with open(out if out is not None else Path("/dev/null"), "w", encoding="utf-8") as f:
        proc = subprocess.run([*CLI, "replay", *args], stdout=f, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"acctwatch replay {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return time.perf_counter() - t


def run(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    truth = simpop.generate(work, a.accounts, a.days, a.seed, a.instances)
    timings["generate"] = time.perf_counter() - t
    learn = [str(work / n) for n in truth["files"]["learning"]]
    scoring = [str(work / n) for n in truth["files"]["scoring"]]
    config = a.config
    if config is None:
        config = str(work / "acctwatch.toml")
        Path(config).write_text("# empty: acctwatch's defaults\n", encoding="utf-8")
    common = ["-c", config, "--jsonl"]
    result: dict[str, Any] = {"parameters": {"accounts": a.accounts, "days": a.days, "seed": a.seed,
                                             "instances": truth["parameters"]["instances"], "config": a.config},
                              "lines": truth["files"]["lines"], "timings_s": timings}
    if a.mode in ("warm", "both"):
        db = work / "warm.db"
        db.unlink(missing_ok=True)
        timings["warm_learn_replay"] = replay([*common, "--db", f"sqlite:///{db}", *learn], work / "learn.jsonl")
        timings["warm_score_replay"] = replay([*common, "--db", f"sqlite:///{db}", *scoring], work / "warm.jsonl")
        result["warm"] = score.score(truth, score.load_incidents(work / "warm.jsonl"))
    if a.mode in ("cold", "both"):
        timings["cold_replay"] = replay([*common, *scoring], work / "cold.jsonl")
        result["cold"] = score.score(truth, score.load_incidents(work / "cold.jsonl"))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    simpop.population_options(ap)
    ap.add_argument("--mode", choices=("warm", "cold", "both"), default="both")
    ap.add_argument("--config", help="acctwatch config file for the replays (default: an empty one)")
    ap.add_argument("--keep", metavar="DIR", help="write logs, truth and incidents here and keep them")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    a = ap.parse_args()
    if a.config is not None:
        a.config = str(Path(a.config).resolve())
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="acctwatch-detect-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        res = run(a, work)
        res["timings_s"]["total"] = time.perf_counter() - t
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps(res, indent=1))
        return
    lines = res["lines"]
    print(f"population: {a.accounts} accounts, {a.days} days, seed {a.seed}: {sum(lines.values())} lines "
          f"({', '.join(f'{n} {k}' for k, n in lines.items())})")
    for mode in ("warm", "cold"):
        if mode in res:
            what = "week 1 learned into a store, then" if mode == "warm" else "fresh store,"
            print()
            print(score.table(res[mode], f"== {mode}: {what} the scoring period replayed =="))
    print()
    print("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in res["timings_s"].items()))
    if a.keep:
        print(f"kept in {work}")


if __name__ == "__main__":
    main()
