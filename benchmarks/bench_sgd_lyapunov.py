"""SGD Lyapunov exponents: the batched phase diagram and the NTK form, against their baselines.

Measured in the same run, one torch thread:

1. ``dsnn.sgd_lyapunov.phase_diagram`` on 50 learning rates x every batch size B = 1..20 at
   N = 20 with 10^5 steps (the B = N column is exact), against a Python double loop that calls
   the same estimator (``lyapunov_exponent`` with one chain) once per grid point. The loop is
   timed on a sample of grid points with fewer steps and scaled per chain-step (its cost is
   linear in both); the two must agree within their error bars on the sample.
2. The time per batched step against the floor set by its one essential kernel, the batched
   matrix product of the batch rows of G with all chains (timed alone at the same shape), and
   the useful floating-point rate (2 B N per chain and step) against a large GEMM.
3. NTK form (N x N, eq. 2.19) against the parameter-space definition (D x D on the normal
   space) for one network with D > 10^4 and N = 40: time ratio and agreement on the same batch
   sequence (they may differ by at most 2 log cond(J) / steps).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sgd_lyapunov.py`` (about a minute
and a half; ``--quick``: 10 learning rates, 2,000 steps and a smaller network, a smoke test).
The verdict is the printed ratios; seconds are shown so that they can be checked.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
from _timing import median_time, options, print_rows, record, timed

from dsnn import datasets, hessian, models
from dsnn import device as dsnn_device
from dsnn import sgd_lyapunov as sl

N = 20
N_STEPS = 100_000
ETAS = np.linspace(0.05, 2.0, 50)
SIZES = np.arange(1, N + 1)


def gram_of_linear_regression(seed=0):
    """G = Y Yᵀ / d for N Gaussian inputs in d = 30 dimensions (overparameterized)."""
    Y = np.random.default_rng(seed).normal(size=(N, 30))
    G = Y @ Y.T / 30
    return G / np.linalg.eigvalsh(G)[-1] * N  # scale: GD threshold 2N / λ_max = 2


def phase_diagram_section(gram, ETAS=ETAS, N_STEPS=N_STEPS, loop_steps=20_000):
    n_sim = int((SIZES < N).sum())
    chain_steps = len(ETAS) * n_sim * N_STEPS
    t_batched, pd = timed(lambda: sl.phase_diagram(gram, ETAS, SIZES, n_steps=N_STEPS, seed=0))
    t32, _ = timed(
        lambda: sl.phase_diagram(gram, ETAS, SIZES, n_steps=N_STEPS, seed=0, dtype=torch.float32)
    )

    rng = np.random.default_rng(1)
    eta_idx, size_idx = rng.integers(0, len(ETAS), 8), rng.integers(0, N - 1, 8)
    sample = [(int(i), int(j)) for i, j in zip(eta_idx, size_idx, strict=True)]
    start = time.perf_counter()
    loop_values = []
    for i, j in sample:  # the double loop, on a sample of the grid
        loop_values.append(
            sl.lyapunov_exponent(
                gram, ETAS[i], int(SIZES[j]), n_steps=loop_steps, seed=2, n_chains=1
            )
        )
    t_loop_sample = time.perf_counter() - start
    per_chain_step_loop = t_loop_sample / (len(sample) * loop_steps)
    t_loop_full = per_chain_step_loop * chain_steps

    z = [
        abs(est.value - pd.value[i, j]) / math.hypot(est.stderr, pd.stderr[i, j])
        for est, (i, j) in zip(loop_values, sample, strict=True)
    ]
    print(
        f"phase diagram: {len(ETAS)} learning rates x B = 1..{N} at N = {N}, {N_STEPS} steps "
        f"({len(ETAS) * n_sim} simulated chains, the B = N column exact)"
    )
    print(f"  batched, float64:            {t_batched:7.1f} s")
    print(f"  batched, float32:            {t32:7.1f} s")
    print(
        f"  Python double loop (scaled from {len(sample)} grid points x {loop_steps} steps): "
        f"{t_loop_full:7.0f} s"
    )
    print(f"  speed-up of the batched grid over the loop: {t_loop_full / t_batched:6.0f} x")
    print(f"  agreement on the sample: max |difference| / combined standard error = {max(z):.2f}")
    stable_b1 = pd.value[:, 0] < 0
    print(
        f"  thresholds eta_LE(B) for B = 1, 5, 10, 19: "
        f"{np.round(pd.thresholds()[[0, 4, 9, 18]], 3).tolist()}  (GD: 2.0); "
        f"B = 1 stable on {stable_b1.mean():.0%} of the grid"
    )
    grid = f"{len(ETAS)} x {n_sim} grid, N={N}, {N_STEPS} steps"
    record(f"SGD Lyapunov phase diagram, {grid}", t_batched, "Python double loop", t_loop_full)
    record(f"SGD Lyapunov phase diagram, {grid}, float32", t32, "the same in float64", t_batched)
    return t_batched / N_STEPS


def kernel_floor_section(gram, step_time, ETAS=ETAS):
    sizes = SIZES[SIZES < N]
    n_chains = len(ETAS) * len(sizes)
    bmax = int(sizes.max())
    G = torch.as_tensor(gram)[None]
    V = torch.randn(1, 1, N, n_chains, dtype=torch.float64)
    idx = torch.randperm(N)[:bmax][None]
    rows = G[:, idx]
    t_product = median_time(lambda: rows @ V, repeats=200)
    useful_flops = 2 * N * float(np.sum(np.repeat(sizes, len(ETAS))))
    A = torch.randn(1000, 1000, dtype=torch.float64)
    t_gemm = median_time(lambda: A @ A, repeats=20)
    peak = 2e9 / t_gemm
    print(f"\nper batched step ({n_chains} chains): {1e6 * step_time:.0f} µs")
    print(
        f"  the batched product alone ({bmax} x {N} rows times {N} x {n_chains}): "
        f"{1e6 * t_product:.0f} µs -> the step takes {step_time / t_product:.1f} x this floor"
    )
    print(
        f"  useful rate (2 B N flops per chain and step): {useful_flops / step_time / 1e9:.2f} "
        f"GFLOP/s, {useful_flops / step_time / peak:.1%} of a 1000 x 1000 float64 GEMM "
        f"({peak / 1e9:.1f} GFLOP/s)"
    )
    record(
        f"one batched SGD tangent step, {n_chains} chains",
        step_time,
        "floor: the batched product alone",
        t_product,
        f"{useful_flops / step_time / 1e9:.2f} GFLOP/s useful, GEMM peak {peak / 1e9:.1f} GFLOP/s",
    )


def ntk_section(widths=(64, 128, 64, 1), n_steps=3_000):
    X, _ = datasets.digits_parity(40)
    model = models.mlp(list(widths), seed=0)
    params = list(model.parameters())
    D = models.n_parameters(model)
    t_jac, jac = timed(lambda: hessian.per_sample_gradients(model, params, X))
    t_gram, gram = timed(lambda: sl.ntk_gram(model, X))
    eta = 1.5 * 2 * 40 / np.linalg.eigvalsh(gram)[-1]
    kwargs = {"n_steps": n_steps, "seed": 0, "n_chains": 2}
    t_ntk, ntk = timed(lambda: sl.lyapunov_exponent(gram, eta, 4, **kwargs))
    t_par, par = timed(lambda: sl.lyapunov_exponent_parameter_space(jac, eta, 4, **kwargs))
    singular = np.linalg.svd(jac.numpy(), compute_uv=False)
    bound = 2 * math.log(singular[0] / singular[-1]) / (0.9 * kwargs["n_steps"])
    net = "-".join(map(str, widths))
    print(f"\nNTK form vs parameter space: MLP {net}, D = {D}, N = 40, B = 4, {n_steps} steps")
    print(
        f"  per-sample gradients J (N x D): {t_jac:.2f} s; G = J Jᵀ with ntk_gram: {t_gram:.2f} s"
    )
    print(f"  parameter space (D x D on the normal space): {t_par:6.2f} s, λ = {par.value:+.5f}")
    print(f"  NTK form (N x N):                            {t_ntk:6.2f} s, λ = {ntk.value:+.5f}")
    print(
        f"  ratio {t_par / t_ntk:.0f} x (with G's cost included: "
        f"{t_par / (t_ntk + t_gram):.0f} x); |difference| = {abs(par.value - ntk.value):.1e} "
        f"<= bound 2 log cond(J) / steps = {bound:.1e}: {abs(par.value - ntk.value) <= bound}"
    )
    record(
        f"SGD Lyapunov exponent, MLP {net} (D={D}), N=40, {n_steps} steps",
        t_ntk,
        "parameter-space form (D x D)",
        t_par,
        "N x N instead of D x D per step (eq. 2.19)",
    )


def main():
    threads = dsnn_device.configure_threads()
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"torch threads = {threads} (OMP_NUM_THREADS={omp}), torch {torch.__version__}\n")
    quick = options(__doc__).quick
    gram = gram_of_linear_regression()
    if quick:
        etas = np.linspace(0.05, 2.0, 10)
        step_time = phase_diagram_section(gram, etas, 2_000, loop_steps=500)
        kernel_floor_section(gram, step_time, etas)
        ntk_section((64, 32, 1), n_steps=300)
    else:
        step_time = phase_diagram_section(gram)
        kernel_floor_section(gram, step_time)
        ntk_section()
    print_rows()


if __name__ == "__main__":
    main()
