"""Cost and accuracy of the delay solver, measured against baselines in the same run.

1. Mackey–Glass ``x' = 0.2 x_τ / (1 + x_τ^10) − 0.1 x``, ``τ = 17``, history ``x ≡ 1.2``, over
   ``10^4`` steps (``T = 1000``, ``Δt = 0.1``):

   * ``dsnn.delay.solve_dde`` (torch, float64, RK4 with cubic Hermite history) — the baseline;
   * ``dsnn.delay.reference_solution`` (scipy DOP853 method of steps) at ``rtol = 1e-10``;
   * ``torchdde`` 0.1.3 RK4 at the same step, *only if it is importable* (an optional
     cross-check; the book does not depend on it).

   Errors are the largest deviation on the 0.1 grid from the scipy method of steps at
   ``rtol = atol = 1e-13`` (itself checked against exact solutions in ``tests/test_delay.py``).
   The equation is chaotic, so errors grow with ``t``; both horizons are shown.

2. A batch of 1,000 constant histories in ``[0.5, 1.5]`` over ``T = 100`` (1,000 steps): one
   batched solve against a Python loop of single solves (the loop is timed on the first 50
   histories and scaled by 20).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_delay.py`` (about 15 s with
torchdde, 10 s without; ``--quick``: a tenth of the horizon and batch, a smoke test). The
verdict is the printed ratios; seconds only make them checkable.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch
from _timing import options, print_rows, record

from dsnn import delay
from dsnn import device as dsnn_device

TAU, X0, DT = 17.0, 1.2, 0.1


def timed(fn, repeats=3):
    """Median wall time of ``fn()`` over ``repeats`` calls, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def errors(values, reference, grid):
    """Largest error for t <= 500 and over the whole run."""
    diff = np.abs(np.asarray(values) - reference)
    return diff[grid <= min(500, grid[-1])].max(), diff.max()


def torchdde_solve(t_final):
    """torchdde's fixed-step RK4 with the same step (None when torchdde is not installed)."""
    try:
        import torchdde
    except ImportError:
        return None
    field = delay.mackey_glass()

    def func(t, y, args, *, history):
        return field(t, y, history[0])

    n_steps = round(t_final / DT)
    ts = torch.linspace(0.0, t_final, n_steps + 1, dtype=torch.float64)

    def run():
        with torch.no_grad():
            return torchdde.integrate(
                func,
                torchdde.RK4(),
                ts[0],
                ts[-1],
                ts,
                lambda t: torch.full((1, 1), X0, dtype=torch.float64),
                None,
                dt0=torch.tensor(DT, dtype=torch.float64),
                delays=torch.tensor([TAU], dtype=torch.float64),
                max_steps=n_steps + 10,
            )[0, :, 0].numpy()

    return run


def main():
    quick = options(__doc__).quick
    threads = dsnn_device.configure_threads()
    print(f"threads: torch {threads}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    field = delay.mackey_glass()
    t_final = 100.0 if quick else 1000.0
    grid = np.arange(round(t_final / DT) + 1) * DT

    start = time.perf_counter()
    reference = delay.reference_solution(field, [X0], TAU, grid, rtol=1e-13, atol=1e-13)[:, 0]
    print(f"tight reference (DOP853, rtol 1e-13): {time.perf_counter() - start:.2f} s")

    history = torch.tensor([X0], dtype=torch.float64)
    t_ours, sol = timed(lambda: delay.solve_dde(field, history, TAU, t_final, DT))
    t_scipy, ref10 = timed(
        lambda: delay.reference_solution(field, [X0], TAU, grid, rtol=1e-10, atol=1e-10)
    )
    rows = [
        (
            "dsnn solve_dde, RK4 dt=0.1 (torch f64)",
            t_ours,
            errors(sol.states[:, 0], reference, grid),
        ),
        ("scipy method of steps, DOP853 rtol 1e-10", t_scipy, errors(ref10[:, 0], reference, grid)),
    ]
    run_torchdde = torchdde_solve(t_final)
    if run_torchdde is None:
        print("torchdde: not installed (optional cross-check skipped)")
    else:
        t_tdde, values = timed(run_torchdde, repeats=1)
        rows.append(("torchdde 0.1.3 RK4 dt=0.1 (1 run)", t_tdde, errors(values, reference, grid)))

    print(f"\n1. Mackey-Glass, tau = 17, {len(grid) - 1} steps (T = {t_final:g})")
    print(f"{'method':44s} {'seconds':>8s} {'ratio':>7s} {'err t<=500':>11s} {'err t<=1000':>12s}")
    for name, seconds, (e500, e_all) in rows:
        print(f"{name:44s} {seconds:8.3f} {seconds / t_ours:7.2f} {e500:11.1e} {e_all:12.1e}")
    steps = len(grid) - 1
    for name, seconds, (_, e_all) in rows[1:]:
        ours_error = rows[0][2][1]
        record(
            f"Mackey-Glass DDE, {steps} RK4 steps (error {ours_error:.0e})",
            t_ours,
            f"{name.split(',')[0]} (error {e_all:.0e})",
            seconds,
        )

    n_batch, t_short, n_loop = (100, 20.0, 10) if quick else (1000, 100.0, 50)
    histories = torch.linspace(0.5, 1.5, n_batch, dtype=torch.float64)[:, None]
    t_batch, batched = timed(lambda: delay.solve_dde(field, histories, TAU, t_short, DT))

    def loop():
        return [
            delay.solve_dde(field, histories[i], TAU, t_short, DT).states for i in range(n_loop)
        ]

    t_loop, looped = timed(loop, repeats=1)
    same = max(float((looped[i] - batched.states[:, i]).abs().max()) for i in range(n_loop))
    t_loop_all = t_loop * n_batch / n_loop
    print(f"\n2. {n_batch} histories, {round(t_short / DT)} steps each")
    print(f"batched solve:            {t_batch:8.3f} s  (ratio 1)")
    print(
        f"Python loop (scaled x{n_batch // n_loop}): {t_loop_all:8.3f} s  "
        f"(ratio {t_loop_all / t_batch:.0f}); max difference batch vs loop {same:.1e}"
    )
    record(
        f"{n_batch} DDE histories, {round(t_short / DT)} steps each, batched",
        t_batch,
        f"Python loop (scaled from {n_loop})",
        t_loop_all,
    )
    print_rows()


if __name__ == "__main__":
    main()
