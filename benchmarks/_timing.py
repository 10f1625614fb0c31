"""Timing helpers shared by the benchmark scripts (imported as `from _timing import ...`)."""

import statistics
import time


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
