"""Run every benchmark script and print one table (``make bench``).

Each script in ``benchmarks/`` (``bench_*.py`` and ``gpu_check.py``) runs in its own process, as
it would alone; its full output goes to ``_build/bench/<script>.log`` and its headline rows
(workload, our time, the baseline measured in the same run, ratio, limit) are collected into one
table. ``--quick`` passes ``--quick`` to every script (small sizes, a smoke test).

Run: ``.venv/bin/python benchmarks/report.py [--quick]`` (about 6 minutes on 2 cores; 1 quick).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import ROWS_ENV, format_table, options

HERE = Path(__file__).resolve().parent
LOGS = HERE.parent / "_build" / "bench"


def scripts() -> list[Path]:
    return [*sorted(HERE.glob("bench_*.py")), HERE / "gpu_check.py"]


def main() -> int:
    quick = options(__doc__).quick
    LOGS.mkdir(parents=True, exist_ok=True)
    rows, failed, start = [], [], time.perf_counter()
    for script in scripts():
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as collected:
            env = {**os.environ, ROWS_ENV: collected.name, "DSNN_BENCH_SCRIPT": script.name}
            began = time.perf_counter()
            log = LOGS / f"{script.stem}.log"
            with log.open("w") as out:
                code = subprocess.call(
                    [sys.executable, str(script), *(["--quick"] if quick else [])],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=HERE,
                )
            seconds = time.perf_counter() - began
            found = [json.loads(line) for line in collected.read().splitlines() if line]
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{script.name:28s} {seconds:6.1f} s  {len(found):2d} rows  {status}  -> {log}")
        rows.extend(found)
        if code:
            failed.append(script.name)
    print(f"\n{format_table(rows)}\n")
    total = time.perf_counter() - start
    print(
        "ratio = baseline time / our time (> 1: faster than the baseline; for a 'floor' baseline,"
        " the fraction of the floor's speed we reach)."
    )
    print(f"total {total / 60:.1f} min; logs with the details in {LOGS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
