"""Cost of one sharpness evaluation in units of one full-batch gradient.

An MLP 64-200-200-10 (about 55k parameters, float32) on the scikit-learn digits (1797 images,
one-hot targets, loss ½ MSE as in ``dsnn.gradient_descent.train_full_batch``). Measured in the
same run:

* one full-batch gradient (forward + backward): the baseline, ratio 1;
* one Hessian-vector product (double backprop), alone and inside a solver;
* one sharpness evaluation at relative accuracy 1e-3 by Lanczos, cold (random start) and
  warm-started from the eigenvector measured 10 GD steps earlier, with power iteration (cold) for
  comparison; errors against a tight Lanczos solve (tol 1e-8) at the same parameters;
* a training run with sharpness every 20 steps against the same run without.

Run: ``.venv/bin/python benchmarks/bench_sharpness.py`` (about half a minute; ``--quick``: width
50 and fewer steps, a smoke test). The verdict is
the printed ratios and HVP counts; seconds are shown only to make the ratios checkable.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from _timing import median_time, options, print_rows, record
from sklearn.datasets import load_digits

from dsnn import device as dsnn_device
from dsnn import gradient_descent as gdm
from dsnn import hessian as hs

WIDTH = 200
ETA = 0.05
REPEATS = 7


def build(seed=0, width=WIDTH):
    digits = load_digits()
    X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    Y = torch.nn.functional.one_hot(torch.tensor(digits.target), 10).to(torch.float32)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 10),
    )
    return model, X, Y


def main():
    quick = options(__doc__).quick
    width, repeats, warmup = (50, 3, 20) if quick else (WIDTH, REPEATS, 100)
    threads = dsnn_device.configure_threads()
    model, X, Y = build(width=width)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    n = X.shape[0]

    def loss_fn():
        return 0.5 * ((model(X) - Y) ** 2).sum() / n

    def gd_steps(k):
        for _ in range(k):
            grads = torch.autograd.grad(loss_fn(), params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(ETA * g)

    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"MLP 64-{width}-{width}-10, D = {n_params} parameters, N = {n} digits, float32; "
        f"torch threads = {threads} (OMP_NUM_THREADS={omp}), "
        "BLAS limited to 1 thread inside the eigensolvers"
    )
    gd_steps(warmup)  # leave the initialisation: the spectrum changes fastest at the start

    t_grad = median_time(lambda: torch.autograd.grad(loss_fn(), params), repeats)
    t_hvp_fresh = median_time(lambda: hs.hvp(loss_fn, params, torch.ones(n_params)), repeats)
    operator = hs.HessianOperator(loss_fn, params)
    v = np.ones(n_params)
    t_hvp_reuse = median_time(lambda: operator.matvec(v), repeats)

    reference = hs.sharpness(loss_fn, params, tol=1e-8)
    timed = {}

    def run(name, fn):
        start = time.perf_counter()
        result = fn()
        timed[name] = (time.perf_counter() - start, result)

    run("Lanczos cold", lambda: hs.sharpness(loss_fn, params, tol=1e-3))
    run("power iteration cold", lambda: hs.power_iteration(loss_fn, params, tol=1e-3))
    previous = timed["Lanczos cold"][1]
    gd_steps(10)
    reference_later = hs.sharpness(loss_fn, params, tol=1e-8, v0=reference.eigenvector)
    run("Lanczos cold, 10 steps later", lambda: hs.sharpness(loss_fn, params, tol=1e-3))
    run(
        "Lanczos warm, 10 steps later",
        lambda: hs.sharpness(loss_fn, params, tol=1e-3, v0=previous.eigenvector),
    )

    print(f"\none full-batch gradient: {1e3 * t_grad:.1f} ms  (the unit below)")
    print(f"one HVP, fresh (gradient graph + double backprop): {t_hvp_fresh / t_grad:5.2f} x")
    print(f"one HVP inside a solver (graph reused):            {t_hvp_reuse / t_grad:5.2f} x")
    print(f"\nsharpness = {reference.eigenvalue:.4f} (2/eta = {2 / ETA:.1f}), tol 1e-3:")
    print(f"{'method':32s} {'#HVP':>5s} {'time / gradient':>16s} {'rel. error':>11s}")
    for name, (seconds, result) in timed.items():
        exact = reference_later if "later" in name else reference
        error = (result.eigenvalue - exact.eigenvalue) / exact.eigenvalue
        print(f"{name:32s} {result.n_hvp:5d} {seconds / t_grad:16.1f} {error:11.1e}")

    # A training run with and without sharpness tracking (same model state for both).
    state = {k: v.clone() for k, v in model.state_dict().items()}
    n_steps, every = (20, 10) if quick else (100, 20)
    start = time.perf_counter()
    plain = gdm.train_full_batch(model, X, Y, ETA, n_steps, sharpness_every=None)
    t_plain = time.perf_counter() - start
    model.load_state_dict(state)
    start = time.perf_counter()
    tracked = gdm.train_full_batch(model, X, Y, ETA, n_steps, sharpness_every=every)
    t_tracked = time.perf_counter() - start
    assert np.allclose(plain.loss, tracked.loss, rtol=1e-5)
    print(
        f"\ntrain_full_batch, {n_steps} GD steps, sharpness every {every} steps: "
        f"{t_tracked / t_plain:.2f} x the run without sharpness; "
        f"HVPs per measurement {tracked.n_hvp.tolist()} (first cold, then warm)"
    )
    net = f"MLP 64-{width}-{width}-10 (D={n_params}), N={n}"
    pearlmutter = "an HVP costs a small constant times a gradient (Pearlmutter 1994)"
    record(
        f"one HVP, fresh graph, {net}", t_hvp_fresh, "one full-batch gradient", t_grad, pearlmutter
    )
    record(
        f"one HVP inside a solver, {net}",
        t_hvp_reuse,
        "one full-batch gradient",
        t_grad,
        pearlmutter,
    )
    cold, warm = timed["Lanczos cold, 10 steps later"][0], timed["Lanczos warm, 10 steps later"][0]
    record(f"sharpness to 1e-3, warm-started Lanczos, {net}", warm, "cold Lanczos", cold)
    record(
        f"sharpness to 1e-3, cold Lanczos, {net}",
        timed["Lanczos cold"][0],
        "power iteration",
        timed["power iteration cold"][0],
        "Lanczos converges at a rate set by sqrt(gap), power iteration by the gap",
    )
    record(
        f"{n_steps} GD steps with sharpness every {every}, {net}",
        t_tracked,
        "the same run without sharpness",
        t_plain,
    )
    print_rows()


if __name__ == "__main__":
    main()
