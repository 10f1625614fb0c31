"""Kuramoto right-hand side: mean-field form against the naive N x N matrix of sines.

Prints how many times faster `dsnn.kuramoto.simulate` is than a baseline measured in the same
process: an RK4 loop whose right-hand side builds sin(theta_j - theta_i) for all pairs (numpy).
The two must agree; the ratio is the figure of merit, not the seconds.
"""

import time

import numpy as np
import torch

from dsnn import kuramoto


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
    return kuramoto.order_parameter(theta)


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(n=1000, T=10.0, dt=0.05, K=2.0):
    torch.set_num_threads(1)
    omega = kuramoto.lorentzian_frequencies(n, 0.5)
    theta0 = np.random.default_rng(0).uniform(0, 2 * np.pi, n)
    t_naive, r_naive = best_of(lambda: naive_rk4(omega, K, T, dt, theta0), repeats=1)
    t_fast, run = best_of(lambda: kuramoto.simulate(omega, K, T, dt=dt, theta0=theta0))
    t_dense, run_dense = best_of(
        lambda: kuramoto.simulate(omega, K, T, dt=dt, theta0=theta0, adjacency=np.ones((n, n)))
    )
    assert abs(run.r[-1] - r_naive) < 1e-9 and abs(run_dense.r[-1] - r_naive) < 1e-9
    print(
        f"Kuramoto, N = {n}, {round(T / dt)} RK4 steps, torch threads = {torch.get_num_threads()}"
    )
    print(f"  all-to-all mean field vs naive N x N sines: {t_naive / t_fast:8.1f}x faster")
    print(f"  dense graph (one A @ [cos; sin]) vs naive:  {t_naive / t_dense:8.1f}x faster")


if __name__ == "__main__":
    main()
