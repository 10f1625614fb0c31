"""Timing and reporting helpers shared by the benchmark scripts (``from _timing import ...``).

Every script measures the package against a baseline *in the same run* and reports each headline
result with :func:`record`: the workload, our time, the baseline's name and time, their ratio, and
where known the physical or algorithmic limit (a floor such as "four sparse mat-vecs"). Run alone,
a script prints its rows as a table at the end; under ``benchmarks/report.py`` (``make bench``)
the rows of all scripts are collected into one table. ``--quick`` runs every script at small
sizes: the test suite uses it as a smoke test (it never asserts timings).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

ROWS_ENV = "DSNN_BENCH_ROWS"
_ROWS: list[dict] = []


def options(description: str) -> argparse.Namespace:
    """Parse the command line shared by all scripts (``--quick``)."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    return parser.parse_args()


def timed(fn):
    """Run ``fn()`` once; return ``(seconds, result)``."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_time(fn, repeats: int = 20) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def record(workload: str, ours: float, baseline: str, baseline_s: float, limit: str = "") -> None:
    """One row of the report: ``ratio`` is the baseline's time over ours (> 1: we are faster)."""
    row = {
        "script": os.path.basename(os.environ.get("DSNN_BENCH_SCRIPT", "")),
        "workload": workload,
        "ours_s": float(ours),
        "baseline": baseline,
        "baseline_s": float(baseline_s),
        "ratio": float(baseline_s) / float(ours) if ours > 0 else float("inf"),
        "limit": limit,
    }
    _ROWS.append(row)
    path = os.environ.get(ROWS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def _seconds(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def format_table(rows: list[dict]) -> str:
    """The rows as one aligned text table."""
    header = ("workload", "ours", "baseline (same run)", "ratio", "limit")
    lines = [
        (
            r["workload"],
            _seconds(r["ours_s"]),
            f"{r['baseline']}: {_seconds(r['baseline_s'])}",
            f"{r['ratio']:.3g}x",
            r["limit"],
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    widths[-1] = 0  # the last column is not padded

    def fmt(items):
        cells = [
            str(x).rjust(w) if i in (1, 3) else str(x).ljust(w)
            for i, (x, w) in enumerate(zip(items, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "-" * min(160, sum(widths[:-1]) + 2 * len(widths) + 30)
    return "\n".join([fmt(header), rule, *map(fmt, lines)])


def print_rows() -> None:
    """Print this script's rows (when run on its own)."""
    if _ROWS and not os.environ.get(ROWS_ENV):
        print("\n" + format_table(_ROWS))
