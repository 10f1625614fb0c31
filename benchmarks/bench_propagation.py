"""Exponents of deep random networks: the batched phase diagram and the mean-field quantities.

Measured in the same run, one torch thread:

1. ``dsnn.propagation.phase_diagram`` on the chapter's 26 x 11 grid of (sigma_w, sigma_b) at
   width 200 and depth 200 (all 286 networks per draw advance with one batched product per
   layer), against a Python loop that calls ``jacobian_lyapunov`` once per grid point with the
   same seed and chains. The loop is timed on a sample of grid points and scaled per grid point.
   Both draw the same random numbers, but in the chaotic phase the forward pass amplifies the
   rounding differences of differently blocked matrix products, so the two agree within their
   error bars rather than bit for bit (and exactly in the ordered phase).
2. The time per layer of the batched run against its two essential kernels timed alone at the
   same shapes: drawing the N x N standard normal matrices and the batched product
   ``G @ [tanh(H), tanh'(H) * V]``. Float32 against float64 in section 1 (torch draws float32
   and float64 normals from different streams, so those are independent runs).
3. The mean-field quantities on the same grid (fixed point q* and chi_1, vectorised Gauss
   quadrature and bisection) against a scalar loop with ``scipy.integrate.quad`` and
   ``scipy.optimize.brentq``, and their agreement.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_propagation.py`` (about half a minute;
``--quick``: a 6 x 3 grid, width 50, depth 30, a smoke test).
The verdict is the printed ratios; seconds are shown so that they can be checked.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import scipy.integrate
import scipy.optimize
import torch
from _timing import median_time, options, print_rows, record, timed

from dsnn import device as dsnn_device
from dsnn import propagation as pr

GRID_W = np.round(np.linspace(0.5, 3.0, 26), 2)
GRID_B = np.round(np.linspace(0.0, 2.0, 11), 2)
WIDTH, DEPTH, CHAINS = 200, 200, 2


def sample_points(seed: int, count: int, n_w: int, n_b: int) -> list[tuple[int, int]]:
    """``count`` random grid points ``(i, j)`` of an ``n_w x n_b`` grid, for the scalar loops."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n_w, count), rng.integers(0, n_b, count)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)]


def phase_diagram_section(GRID_W=GRID_W, GRID_B=GRID_B, WIDTH=WIDTH, DEPTH=DEPTH):
    n_points = GRID_W.size * GRID_B.size
    kwargs = {"seed": 0, "n_chains": CHAINS}
    t64, d64 = timed(lambda: pr.phase_diagram(GRID_W, GRID_B, DEPTH, WIDTH, **kwargs))
    t32, d32 = timed(
        lambda: pr.phase_diagram(GRID_W, GRID_B, DEPTH, WIDTH, dtype=torch.float32, **kwargs)
    )
    sample = sample_points(1, 6, GRID_W.size, GRID_B.size)
    start = time.perf_counter()
    loop = [pr.jacobian_lyapunov(DEPTH, WIDTH, GRID_W[i], GRID_B[j], **kwargs) for i, j in sample]
    t_loop = (time.perf_counter() - start) / len(sample) * n_points
    z_loop = max(
        abs(e.value - d64.value[i, j]) / math.hypot(e.stderr, d64.stderr[i, j])
        for e, (i, j) in zip(loop, sample, strict=True)
    )
    z32 = np.abs(d32.value - d64.value) / np.hypot(d32.stderr, d64.stderr)
    print(
        f"phase diagram: {GRID_W.size} x {GRID_B.size} grid, width {WIDTH}, depth {DEPTH}, "
        f"{CHAINS} networks per point ({n_points * CHAINS} networks)"
    )
    print(f"  batched, float64:                    {t64:7.2f} s")
    print(f"  batched, float32:                    {t32:7.2f} s  ({t64 / t32:.1f} x faster)")
    print(f"  loop over grid points (scaled from {len(sample)}): {t_loop:7.1f} s")
    print(f"  speed-up of the batched grid over the loop: {t_loop / t64:6.0f} x")
    print(f"  batched vs loop on the sample: max |difference| / combined stderr = {z_loop:.2f}")
    print(
        f"  float32 vs float64 (torch draws the two from different streams: independent runs): "
        f"|difference| / combined stderr over {n_points} points: median {np.median(z32):.2f}, "
        f"max {z32.max():.2f}"
    )
    grid = f"{GRID_W.size} x {GRID_B.size} grid, width {WIDTH}, depth {DEPTH}"
    record(f"deep-network Lyapunov phase diagram, {grid}", t64, "loop over grid points", t_loop)
    record(f"deep-network Lyapunov phase diagram, {grid}, float32", t32, "float64", t64)
    return t64 / DEPTH


def kernel_section(layer_time, GRID_W=GRID_W, GRID_B=GRID_B, WIDTH=WIDTH):
    n_conf = GRID_W.size * GRID_B.size
    gen = torch.Generator().manual_seed(0)
    t_randn = median_time(
        lambda: torch.randn(CHAINS, WIDTH, WIDTH, generator=gen, dtype=torch.float64)
    )
    G = torch.randn(CHAINS, WIDTH, WIDTH, dtype=torch.float64)
    X = torch.randn(CHAINS, WIDTH, 2 * n_conf, dtype=torch.float64)
    t_gemm = median_time(lambda: G @ X)
    print(f"\nper layer of the batched run ({n_conf} grid points): {1e3 * layer_time:.2f} ms")
    print(f"  drawing {CHAINS} standard normal {WIDTH} x {WIDTH} matrices: {1e3 * t_randn:.2f} ms")
    print(
        f"  the batched product ({CHAINS} x {WIDTH} x {WIDTH} times {WIDTH} x {2 * n_conf}): "
        f"{1e3 * t_gemm:.2f} ms"
    )
    print(f"  -> the layer takes {layer_time / (t_randn + t_gemm):.2f} x the sum of the two")
    record(
        f"one layer of the batched run, {n_conf} grid points, width {WIDTH}",
        layer_time,
        "floor: draw the weights + one batched product",
        t_randn + t_gemm,
    )


def quad_chi1(sigma_w, sigma_b):
    """Scalar reference: q* by brentq on adaptive-quadrature integrals, then chi_1."""

    def mean(g, q):
        s = math.sqrt(q)
        dens = lambda z: g(s * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        return sum(scipy.integrate.quad(dens, a, b, limit=200)[0] for a, b in [(-40, 0), (0, 40)])

    tanh2 = lambda x: math.tanh(x) ** 2  # noqa: E731
    sech4 = lambda x: 1 / math.cosh(min(abs(x), 300)) ** 4  # noqa: E731
    if sigma_b == 0 and sigma_w <= 1:
        q = 0.0
    else:
        hi = sigma_w**2 + sigma_b**2
        lo = 0.0 if sigma_b > 0 else 1e-12
        q = scipy.optimize.brentq(
            lambda q: sigma_w**2 * mean(tanh2, q) + sigma_b**2 - q, lo, hi, xtol=1e-14
        )
    return sigma_w**2 * (mean(sech4, q) if q > 0 else 1.0)


def mean_field_section(GRID_W=GRID_W, GRID_B=GRID_B):
    ww, bb = np.meshgrid(GRID_W, GRID_B, indexing="ij")
    t_vec, chi = timed(lambda: pr.chi1(ww, bb))
    idx = sample_points(2, 10, GRID_W.size, GRID_B.size)
    start = time.perf_counter()
    ref = [quad_chi1(GRID_W[i], GRID_B[j]) for i, j in idx]
    t_ref = (time.perf_counter() - start) / len(idx) * ww.size
    err = max(abs(r - chi[i, j]) for r, (i, j) in zip(ref, idx, strict=True))
    print(f"\nmean field on the grid ({ww.size} points): q* and chi_1")
    print(f"  vectorised (Gauss quadrature + bisection): {1e3 * t_vec:8.1f} ms")
    print(f"  scalar quad + brentq (scaled from {len(idx)}): {1e3 * t_ref:8.1f} ms")
    print(f"  speed-up {t_ref / t_vec:.0f} x; max |difference| on the sample {err:.1e}")
    record(
        f"mean-field q* and chi_1 on {ww.size} grid points (error {err:.0e})",
        t_vec,
        "scipy quad + brentq per point",
        t_ref,
    )


def main():
    threads = dsnn_device.configure_threads()
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"torch threads = {threads} (OMP_NUM_THREADS={omp}), torch {torch.__version__}\n")
    if options(__doc__).quick:
        small = {"GRID_W": GRID_W[::5], "GRID_B": GRID_B[::5]}
        layer_time = phase_diagram_section(**small, WIDTH=50, DEPTH=30)
        kernel_section(layer_time, **small, WIDTH=50)
        mean_field_section(**small)
    else:
        layer_time = phase_diagram_section()
        kernel_section(layer_time)
        mean_field_section()
    print_rows()


if __name__ == "__main__":
    main()
