"""Cost of training neural ODEs: augmentation, solvers, adjoint against direct backpropagation.

The disk-and-annulus task of the neural-ODE chapter (512 points, labels ±1, mean-squared error,
full-batch Adam with learning rate 0.02, float64, ``dopri5`` at rtol 1e-4 / atol 1e-6, field
width 32). Measured in the same run:

1. training steps until the training accuracy reaches 99 %, for the augmented model (m = 3)
   and, for comparison, the non-augmented one (m = 2): wall time, as a ratio to a 60 s budget;
2. one training step (forward + backward) in four configurations — ``dopri5`` or fixed-step
   ``rk4`` (20 steps), direct backpropagation or the adjoint method — as ratios to
   ``dopri5``/direct, with the function evaluations (NFE) of the forward and backward pass;
3. the memory the forward pass keeps for the backward pass (bytes of saved tensors), adjoint
   against direct.

Run: ``.venv/bin/python benchmarks/bench_neural_ode.py`` (about ten seconds; ``--quick``: 128
points and the first part only up to 50 steps, a smoke test). The verdict is the
printed ratios; seconds are shown only to make the ratios checkable.
"""

from __future__ import annotations

import os
import statistics

import torch
from _timing import options, print_rows, record

from dsnn import device as dsnn_device
from dsnn import neural_ode

BUDGET_S = 60.0
SOLVER = {"rtol": 1e-4, "atol": 1e-6, "width": 32, "seed": 0}
STEP_GRID = (25, 50, 75, 100, 150, 200, 300)


def accuracy(model, X, y) -> float:
    with torch.no_grad():
        return float((torch.sign(model(X)[:, 0]) == y).double().mean())


def steps_to_accuracy(dim_phase, X, y, target=0.99, step_grid=STEP_GRID):
    """Smallest number of Adam steps on the grid after which the accuracy reaches ``target``."""
    for n_steps in step_grid:
        model = neural_ode.NeuralODE(2, dim_phase, 1, **SOLVER)
        record = neural_ode.fit(model, X, y, n_steps=n_steps, lr=0.02, seed=0)
        reached = accuracy(model, X, y)
        if reached >= target:
            return n_steps, record.seconds, reached, int(record.nfe_forward[-1])
    return None, record.seconds, reached, int(record.nfe_forward[-1])


def step_cost(configuration, X, y, repeats=15):
    """Median seconds and NFE of one training step (after one warm-up step)."""
    model = neural_ode.NeuralODE(2, 3, 1, **SOLVER, **configuration)
    neural_ode.fit(model, X, y, n_steps=1, lr=0.02, seed=0)
    seconds, forward, backward = [], [], []
    for _ in range(repeats):
        record = neural_ode.fit(model, X, y, n_steps=1, lr=0.02, seed=0)
        seconds.append(record.seconds)
        forward.append(int(record.nfe_forward[0]))
        backward.append(int(record.nfe_backward[0]))
    memory = neural_ode.backward_memory(model, X)
    return (
        statistics.median(seconds),
        statistics.median(forward),
        statistics.median(backward),
        memory,
    )


def main():
    quick = options(__doc__).quick
    n_points, step_grid, repeats = (128, STEP_GRID[:2], 3) if quick else (512, STEP_GRID, 15)
    threads = dsnn_device.configure_threads()
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    X, y = neural_ode.disk_annulus(n_points, seed=0)
    print(
        f"disk/annulus, {n_points} points, float64, dopri5 rtol 1e-4; torch threads = {threads} "
        f"(OMP_NUM_THREADS={omp})"
    )

    print(f"\n1. Adam steps until 99 % training accuracy (step grid {step_grid}):")
    print(
        f"{'model':28s} {'steps':>6s} {'accuracy':>9s} {'NFE at end':>10s} {'seconds':>8s} "
        f"{'time / 60 s':>12s}"
    )
    for name, m in [("augmented (m = 3)", 3), ("non-augmented (m = 2)", 2)]:
        n_steps, seconds, reached, nfe = steps_to_accuracy(m, X, y, step_grid=step_grid)
        shown = "never" if n_steps is None else str(n_steps)
        print(
            f"{name:28s} {shown:>6s} {reached:9.1%} {nfe:10d} {seconds:8.2f} "
            f"{seconds / BUDGET_S:11.3f}x"
        )
        record(
            f"neural ODE {name} to 99 % accuracy ({shown} Adam steps)"
            if n_steps is not None
            else f"neural ODE {name}: 99 % not reached in {step_grid[-1]} Adam steps",
            seconds,
            "the chapter's time budget",
            BUDGET_S,
        )

    print("\n2./3. One training step, ratios to dopri5 with direct backpropagation:")
    configurations = {
        "dopri5, direct": {"method": "dopri5"},
        "dopri5, adjoint": {"method": "dopri5", "adjoint": True},
        "rk4 (20 steps), direct": {"method": "rk4", "step_size": 0.05},
        "rk4 (20 steps), adjoint": {"method": "rk4", "step_size": 0.05, "adjoint": True},
    }
    results = {name: step_cost(opts, X, y, repeats) for name, opts in configurations.items()}
    base_time, _, _, base_memory = results["dopri5, direct"]
    print(
        f"{'configuration':26s} {'time':>8s} {'NFE fwd':>8s} {'NFE bwd':>8s} {'memory':>8s}"
        f"   (baseline: {1e3 * base_time:.1f} ms, {base_memory / 2**20:.2f} MB)"
    )
    for name, (seconds, forward, backward, memory) in results.items():
        print(
            f"{name:26s} {seconds / base_time:7.2f}x {forward:8d} {backward:8d} "
            f"{memory / base_memory:7.3f}x"
        )
        if name != "dopri5, direct":
            record(
                f"one neural-ODE training step, {name} (memory {memory / base_memory:.2f}x)",
                seconds,
                "dopri5, direct backpropagation",
                base_time,
                "adjoint: memory independent of the solver steps" if "adjoint" in name else "",
            )
    print_rows()


if __name__ == "__main__":
    main()
