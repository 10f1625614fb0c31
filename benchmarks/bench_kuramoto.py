"""Kuramoto simulations: `dsnn.kuramoto.simulate` against baselines measured in the same run.

Prints ratios (the figure of merit), with the seconds for reference:

1. against the naive RK4 loop whose right-hand side builds sin(theta_j - theta_i) for all pairs;
2. against the PyPI package `kuramoto` (odeint/LSODA with an N x N matrix of sines), if it is
   installed, on the same problem, with the step of `simulate` chosen so that its error against a
   fine reference is no larger than the package's (equal accuracy);
3. the all-to-all path at N = 10^5 for T = 50 with RK4 at dt = 0.01 (O(N) per step);
4. the sparse path at N = 10^5 with mean degree 100: time per RK4 step against four bare
   `scipy.sparse` matrix-vector products (one per stage).

Run with OMP_NUM_THREADS=1 (the Makefile sets it); the thread count is printed. ``--quick``
runs every section at a tenth of its size (a smoke test).
"""

import importlib
import time

import numpy as np
import scipy.sparse as sp
import torch
from _timing import options, print_rows, record

from dsnn import graphons, kuramoto


def naive_rk4(omega, K, T, dt, theta0):
    n = omega.size

    def rhs(theta):
        return omega + K / n * np.sin(theta[None, :] - theta[:, None]).sum(axis=1)

    theta = theta0.copy()
    for _ in range(round(T / dt)):
        k1 = rhs(theta)
        k2 = rhs(theta + 0.5 * dt * k1)
        k3 = rhs(theta + 0.5 * dt * k2)
        k4 = rhs(theta + dt * k3)
        theta = theta + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return theta


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def phase_error(a, b):
    return float(np.abs(np.angle(np.exp(1j * (a - b)))).max())


def against_naive(n=1000, T=10.0, dt=0.05, K=2.0):
    omega = kuramoto.gaussian_frequencies(n, 1.0)
    theta0 = np.random.default_rng(0).uniform(0, 2 * np.pi, n)
    t_naive, naive = best_of(lambda: naive_rk4(omega, K, T, dt, theta0), repeats=1)
    t_fast, run = best_of(
        lambda: kuramoto.simulate(theta0, omega, K, t_final=T, dt=dt, keep_phases=False)
    )
    t_dense, dense = best_of(
        lambda: kuramoto.simulate(
            theta0, omega, K, np.ones((n, n)), t_final=T, dt=dt, keep_phases=False
        )
    )
    assert phase_error(run.theta_final, naive) < 1e-9
    assert phase_error(dense.theta_final, naive) < 1e-9
    print(f"1. N = {n}, {round(T / dt)} RK4 steps, naive loop {t_naive:.2f} s")
    print(f"   all-to-all mean field vs naive N x N sines: {t_naive / t_fast:8.1f}x faster")
    print(f"   dense graph (one product per stage) vs naive: {t_naive / t_dense:8.1f}x faster")
    steps = round(T / dt)
    record(f"Kuramoto all-to-all, N={n}, {steps} RK4 steps", t_fast, "naive N x N sines", t_naive)
    record(f"Kuramoto dense graph, N={n}, {steps} RK4 steps", t_dense, "naive N x N sines", t_naive)


def against_pypi_package(sizes=(1000, 3000), T=4.0, K=2.0):
    try:
        package = importlib.import_module("kuramoto")
    except ImportError:
        print("2. the PyPI package `kuramoto` is not installed: comparison skipped")
        return
    for n in sizes:
        omega = kuramoto.gaussian_frequencies(n, 1.0)
        theta0 = np.random.default_rng(1).uniform(0, 2 * np.pi, n)
        adjacency = np.ones((n, n)) - np.eye(n)  # the package normalises by in-degree n - 1
        model = package.Kuramoto(coupling=K, dt=0.01, T=T, natfreqs=omega)
        t_pkg, activity = best_of(lambda m=model, a=adjacency, t=theta0: m.run(a, t.copy()), 1)
        # same model in our normalisation: (K'/n) sum_j sin(...) with K' = K n / (n - 1)
        coupling = K * n / (n - 1)
        reference = kuramoto.simulate(
            theta0, omega, coupling, t_final=T, dt=0.001, keep_phases=False
        ).theta_final
        err_pkg = phase_error(activity[:, -1], reference)
        for dt in (0.1, 0.05, 0.02, 0.01, 0.005):
            t_ours, run = best_of(
                lambda dt=dt, c=coupling, t=theta0, w=omega: kuramoto.simulate(
                    t, w, c, t_final=T, dt=dt, keep_phases=False
                )
            )
            err_ours = phase_error(run.theta_final, reference)
            if err_ours <= err_pkg:
                break
        print(
            f"2. PyPI kuramoto, N = {n}, T = {T}: {t_pkg:.2f} s, error {err_pkg:.1e}; "
            f"simulate with dt = {dt}: {t_ours:.3f} s, error {err_ours:.1e} -> "
            f"{t_pkg / t_ours:.0f}x faster"
        )
        record(f"Kuramoto N={n}, T={T}, equal accuracy", t_ours, "PyPI kuramoto (LSODA)", t_pkg)


def large_all_to_all(n=100_000, T=50.0, dt=0.01, K=2.0):
    omega = kuramoto.gaussian_frequencies(n, 1.0)
    theta = torch.as_tensor(np.random.default_rng(4).uniform(0, 2 * np.pi, n))
    # The floor of one RK4 step: four evaluations of sin and cos of all N phases (torch, f64).
    t_trig = best_of(lambda: (torch.sin(theta), torch.cos(theta)), repeats=5)[0]
    floor = 4 * t_trig * round(T / dt)
    for dtype in ("float64", "float32"):
        start = time.perf_counter()
        run = kuramoto.simulate(
            None,
            omega,
            K,
            t_final=T,
            dt=dt,
            seed=0,
            keep_phases=False,
            dtype=dtype,
            record_every=100,
        )
        seconds = time.perf_counter() - start
        print(
            f"3. all-to-all N = {n}, T = {T}, RK4 dt = {dt} ({round(T / dt)} steps), {dtype}: "
            f"{seconds:.1f} s (final r = {run.r[-1]:.3f})"
        )
        record(
            f"Kuramoto all-to-all, N={n}, {round(T / dt)} RK4 steps, {dtype}",
            seconds,
            "floor: 4 x (sin, cos of N phases) per step",
            floor,
            "O(N) per step; the floor is the trigonometry alone (float64)",
        )


def sparse_step(n=100_000, mean_degree=100, steps=20, K=2.0):
    A = graphons.sample_graph(
        graphons.constant(1.0), n, seed=2, sparse=True, density=mean_degree / n
    )
    x = np.random.default_rng(3).standard_normal(n)
    t_matvec, _ = best_of(lambda: A @ x, repeats=5)
    omega = kuramoto.gaussian_frequencies(n, 1.0)
    dt = 0.01
    t_run, _ = best_of(
        lambda: kuramoto.simulate(
            None,
            omega,
            K,
            A,
            t_final=steps * dt,
            dt=dt,
            seed=0,
            keep_phases=False,
            record_every=steps,
        ),
        repeats=2,
    )
    per_step = t_run / steps
    print(
        f"4. sparse N = {n}, mean degree {A.nnz / n:.0f} (nnz {A.nnz:.1e}): one RK4 step "
        f"{1e3 * per_step:.0f} ms, four scipy mat-vecs {4e3 * t_matvec:.0f} ms -> ratio "
        f"{per_step / (4 * t_matvec):.2f}"
    )
    assert sp.issparse(A)
    record(
        f"Kuramoto sparse graph, N={n}, degree {A.nnz / n:.0f}, one RK4 step",
        per_step,
        "floor: 4 scipy sparse mat-vecs",
        4 * t_matvec,
        "memory-bound: one pass over the nonzeros per stage",
    )


def main():
    quick = options(__doc__).quick
    torch.set_num_threads(1)
    print(f"torch threads = {torch.get_num_threads()}")
    if quick:
        against_naive(n=200, T=2.0)
        against_pypi_package(sizes=(300,), T=1.0)
        large_all_to_all(n=10_000, T=2.0)
        sparse_step(n=10_000, mean_degree=20, steps=5)
    else:
        against_naive()
        against_pypi_package()
        large_all_to_all()
        sparse_step()
    print_rows()


if __name__ == "__main__":
    main()
