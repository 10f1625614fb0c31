"""Checks for the exercises of the primer, *Three dynamical views of a neural network*."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from dsnn import gradient_descent, kuramoto, stats
from dsnn.exercises._core import CheckFailed, as_float, call, close, exercise

CHAPTER = "three_views"


def _rate(eta: float, lam_min: float, lam_max: float) -> float:
    """Contraction rate of GD on a quadratic, max |1 - eta lambda| (primer, Theorem 'GD on a
    quadratic')."""
    return max(abs(1 - eta * lam_min), abs(1 - eta * lam_max))


@exercise(
    "ex-primer-optimal-step",
    chapter=CHAPTER,
    kind="derivation",
    answer="optimal_step(lam_min, lam_max) -> (eta_star, rho_star)",
    wrong=[
        lambda lo, hi: (1 / hi, 1 - lo / hi),
        lambda lo, hi: (2 / (lo + hi), (hi - lo) / hi),
        lambda lo, hi: (1 / (lo + hi), (hi - lo) / (hi + lo)),
    ],
)
def _optimal_step(optimal_step):
    # The property: eta* minimises rho(eta) = max_i |1 - eta lambda_i|, and rho* is that minimum.
    for lam_min, lam_max in [(1.0, 10.0), (0.3, 0.5), (2.0, 2.0), (0.01, 7.0)]:
        out = call(optimal_step, lam_min, lam_max)
        if not isinstance(out, (tuple, list, np.ndarray, torch.Tensor)) or len(out) != 2:
            raise CheckFailed(f"optimal_step must return a pair (eta_star, rho_star), got {out!r}")
        eta, rho = as_float("eta_star", out[0]), as_float("rho_star", out[1])
        grid = np.linspace(0, 2.5 / lam_max, 20001)
        best = np.abs(1 - np.outer(grid, [lam_min, lam_max])).max(axis=1).min()
        if _rate(eta, lam_min, lam_max) > best + 1e-6:
            raise CheckFailed(
                f"for eigenvalues ({lam_min}, {lam_max}) your eta_star = {eta:.6g} gives rate "
                f"{_rate(eta, lam_min, lam_max):.6g}, but some learning rate reaches {best:.6g}"
            )
        close(f"rho_star for eigenvalues ({lam_min}, {lam_max})", rho, best, rtol=1e-4, atol=1e-6)
    return "eta* minimises the rate and rho* is the minimal rate, for four spectra"


def _linear_exact(A: torch.Tensor, x0: torch.Tensor, T: float) -> torch.Tensor:
    return x0 @ torch.as_tensor(scipy.linalg.expm(T * A.numpy())).T


def _euler(f, x, T, L):
    dt = T / L
    for k in range(L):
        x = x + dt * f(torch.tensor(k * dt, dtype=x.dtype), x)
    return x


def _heun_wrong_time(f, x, T, L):
    dt = T / L
    for k in range(L):
        t = torch.tensor(k * dt, dtype=x.dtype)
        slope = f(t, x)
        x = x + dt / 2 * (slope + f(t, x + dt * slope))
    return x


@exercise(
    "ex-primer-heun",
    chapter=CHAPTER,
    kind="computation",
    answer="heun(f, x, T, L) -> tensor like x, after L Heun steps of size T/L for dx/dt = f(t, x)",
    wrong=[_euler, _heun_wrong_time],
)
def _heun(heun):
    # Order two, on an autonomous linear field (exact: expm) and on a time-dependent one,
    # dx/dt = cos(t) x with exact solution x0 exp(sin T): the corrector must use t_{k+1}.
    A = torch.tensor([[0.0, 1.0], [-2.0, -0.3]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.5], [-0.2, 1.0]], dtype=torch.float64)
    fields = {
        "dx/dt = A x": (lambda t, x: x @ A.T, _linear_exact(A, x0, 2.0)),
        "dx/dt = cos(t) x": (lambda t, x: torch.cos(t) * x, x0 * np.exp(np.sin(2.0))),
    }
    for name, (f, exact) in fields.items():
        depths = [16, 32, 64, 128]
        errors = []
        for L in depths:
            out = call(heun, f, x0.clone(), 2.0, L, name="heun")
            if not isinstance(out, torch.Tensor) or out.shape != x0.shape:
                raise CheckFailed(f"heun must return a tensor of shape {tuple(x0.shape)}")
            errors.append(float((out - exact).norm()))
        order = -stats.loglog_slope(depths, errors)
        if not 1.8 < order < 2.2:
            raise CheckFailed(
                f"on {name} the error falls with order {order:.2f} in the number of steps; "
                "Heun's method has order 2"
            )
    return "order 2 on an autonomous and on a time-dependent linear ODE"


@exercise(
    "ex-primer-uniform-onset",
    chapter=CHAPTER,
    kind="exploration",
    answer="predicted_onset(gamma) -> K_c for frequencies uniform on [-gamma, gamma]",
    wrong=[
        lambda gamma: 2 * gamma,
        lambda gamma: 2 * gamma / np.pi,
        lambda gamma: gamma * np.sqrt(8 / np.pi),
    ],
)
def _uniform_onset(predicted_onset):
    # Kuramoto's K_c = 2 / (pi g(0)) with g the uniform density; the package's critical_coupling
    # evaluates the same formula for any even unimodal density given as a function.
    for gamma in (0.5, 1.0, 3.0):
        density = lambda w, g=gamma: np.where(np.abs(w) <= g, 1 / (2 * g), 0.0)  # noqa: E731
        expected = kuramoto.critical_coupling(density)
        close(f"predicted_onset({gamma})", call(predicted_onset, gamma), expected, rtol=1e-6)
    return "K_c = 2 / (pi g(0)) for three widths"


@exercise(
    "ex-primer-divergence-rate",
    chapter=CHAPTER,
    kind="exploration",
    answer="loss_growth(eta, eigenvalues) -> factor by which the loss of GD grows per step",
    wrong=[
        lambda eta, ev: float(np.max(np.abs(1 - eta * np.asarray(ev)))),
        lambda eta, ev: float((1 - eta * np.min(ev)) ** 2),
        lambda eta, ev: float(eta * np.max(ev) - 1),
    ],
)
def _divergence_rate(loss_growth):
    # The oracle is a run: gradient descent on the quadratic, loss growth measured from its tail.
    rng = np.random.default_rng(3)
    for eta, eigenvalues in [(0.25, [1.0, 10.0]), (0.21, [0.5, 3.0, 10.0]), (1.2, [0.1, 2.0])]:
        Q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
        H = Q @ np.diag(eigenvalues) @ Q.T
        run = gradient_descent.gd(
            gradient_descent.quadratic_loss(H), rng.standard_normal(len(eigenvalues)), eta, 30
        )
        measured = stats.geometric_rate(run.losses.numpy(), window=15)
        got = call(loss_growth, eta, list(eigenvalues))
        close(f"loss_growth({eta}, {eigenvalues})", got, measured, rtol=1e-3)
    return "predicted growth matches three diverging runs of gradient descent"
