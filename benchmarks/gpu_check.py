"""The large versions of three chapters on the CPU and on a CUDA device: same numbers, time ratio.

The same functions the chapters call, with ``device=`` as the only change:

1. edge of stability: full-batch GD on an MLP 64-W-W-1 with the sharpness every 10 steps
   (``gradient_descent.train_full_batch``);
2. SGD's Lyapunov exponent over a grid of learning rates and batch sizes
   (``sgd_lyapunov.phase_diagram``);
3. the Kuramoto model with N oscillators, all-to-all (``kuramoto.simulate``).

Random numbers are drawn on the CPU in every case, so the CPU and CUDA runs see the same
initialisations and batches and must agree up to rounding: the check compares them within a
tolerance (for gradient descent only over the first 100 steps: past the edge of stability, GD is
chaotic and rounding differences grow) and prints CPU/GPU time ratios. Without a CUDA device it
runs the CPU side alone and says so; it passes on a CPU-only machine.

Run: ``.venv/bin/python benchmarks/gpu_check.py`` (about a minute on 2 CPU cores, plus the GPU
runs), ``--quick`` for small sizes (a smoke test). Exit status 1 if the devices disagree.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from _timing import options, print_rows, record

from dsnn import datasets, kuramoto, models
from dsnn import device as dsnn_device
from dsnn import gradient_descent as gdm
from dsnn import sgd_lyapunov as sl


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def edge_of_stability(device, quick):
    width, n, steps = (32, 200, 60) if quick else (256, 1000, 400)
    X, y = datasets.digits_parity(n)
    model = models.mlp([64, width, width, 1], seed=0, device=device)
    start = time.perf_counter()
    run = gdm.train_full_batch(model, X, y, 0.1, steps, sharpness_every=10, device=device)
    _sync(device)
    seconds = time.perf_counter() - start
    name = f"edge of stability: GD on MLP 64-{width}-{width}-1, N={n}, {steps} steps"
    return name, seconds, run.loss[: min(100, steps + 1)], 1e-6, "loss, first 100 steps (rel.)"


def sgd_phase_diagram(device, quick):
    n, steps, n_eta = (10, 500, 5) if quick else (40, 10_000, 24)
    Y = np.random.default_rng(0).normal(size=(n, 3 * n))
    gram = Y @ Y.T / (3 * n)
    gram *= n / np.linalg.eigvalsh(gram)[-1]  # GD threshold 2N / lambda_max = 2
    etas = np.linspace(0.1, 2.5, n_eta)
    sizes = np.arange(1, n + 1)
    start = time.perf_counter()
    diagram = sl.phase_diagram(gram, etas, sizes, n_steps=steps, seed=0, device=device)
    _sync(device)
    seconds = time.perf_counter() - start
    name = f"SGD Lyapunov phase diagram, {n_eta} x {n} grid, N={n}, {steps} steps"
    return name, seconds, np.asarray(diagram.value), 1e-6, "exponents (abs.)"


def kuramoto_large(device, quick):
    n, t_final = (10_000, 2.0) if quick else (1_000_000, 5.0)
    omega = kuramoto.gaussian_frequencies(n, 1.0)
    start = time.perf_counter()
    run = kuramoto.simulate(
        None,
        omega,
        2.0,
        t_final=t_final,
        dt=0.05,
        seed=0,
        keep_phases=False,
        record_every=10,
        device=device,
    )
    _sync(device)
    seconds = time.perf_counter() - start
    name = f"Kuramoto all-to-all, N={n:.0e}, {round(t_final / 0.05)} RK4 steps"
    return name, seconds, np.asarray(run.r), 1e-8, "order parameter r(t) (abs.)"


def main() -> int:
    quick = options(__doc__).quick
    dsnn_device.configure_threads()
    has_cuda = torch.cuda.is_available()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if has_cuda else [])
    gpu = torch.cuda.get_device_name(0) if has_cuda else "none"
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CUDA device: {gpu}")
    failures = 0
    for workload in (edge_of_stability, sgd_phase_diagram, kuramoto_large):
        results = {d.type: workload(d, quick) for d in devices}
        name, t_cpu, cpu_values, tol, what = results["cpu"]
        if not np.isfinite(cpu_values).all():
            print(f"{name}: non-finite values on the CPU")
            failures += 1
            continue
        if not has_cuda:
            print(f"{name}: CPU {t_cpu:.2f} s (no CUDA device: nothing to compare)")
            continue
        _, t_gpu, gpu_values, _, _ = results["cuda"]
        scale = np.abs(cpu_values).max() if "rel." in what else 1.0
        diff = float(np.abs(gpu_values - cpu_values).max() / scale)
        agree = diff <= tol
        failures += not agree
        print(
            f"{name}: CPU {t_cpu:.2f} s, CUDA {t_gpu:.2f} s, ratio {t_cpu / t_gpu:.1f}x; "
            f"{what} differ by {diff:.1e} (tolerance {tol:.0e}): {'agree' if agree else 'DIFFER'}"
        )
        record(name, t_gpu, "the same on the CPU", t_cpu, f"{gpu}; {what} agree to {diff:.0e}")
    print_rows()
    if failures:
        print(f"{failures} workload(s) disagree between devices", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
