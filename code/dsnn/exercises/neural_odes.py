"""Checks for the exercises of the chapter *Neural ODEs: what a flow can and cannot represent*.

The oracles are the chapter's mathematics and the package's tested functions: the isotonic
regression of :func:`dsnn.neural_ode.monotone_mse_bound` (the best monotone fit), the matrix
exponential (the flow of a linear field), the autograd Jacobian of the solver's flow map
(:func:`dsnn.neural_ode.flow_jacobian`) and single steps of torchdiffeq's fixed-step methods.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.optimize
import torch

from dsnn import neural_ode
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "neural_odes"


# --- the best monotone fit of x^2 ----------------------------------------------------------------


def _uniform_sample(alpha: float, n: int = 20000) -> np.ndarray:
    """Midpoints of n equal cells of [-alpha, 1]: the uniform distribution as an equal-weight
    sample, so that a sample mean is the midpoint rule for the expectation."""
    width = (1 + alpha) / n
    return -alpha + width * (np.arange(n) + 0.5)


@exercise(
    "ex-node-square",
    chapter=CHAPTER,
    kind="derivation",
    answer="square_floor(alpha) -> (a, floor): g(x) = max(x, a)**2 is the best monotone fit of "
    "x**2 for X uniform on [-alpha, 1], and floor is its mean-squared error",
    wrong=[
        lambda alpha: (alpha / 2, 9 / 160),
        lambda alpha: (0.0, alpha**5 / (5 * (1 + alpha))),
        lambda alpha: (alpha / 2, 9 * alpha**5 / 160),
    ],
)
def _square_floor(square_floor):
    # The oracle is the isotonic regression (the best monotone fit, in either direction) of
    # x^2 on a fine uniform sample of [-alpha, 1]; its error converges to the continuum floor.
    for alpha in (1.0, 0.6, 0.25):
        out = call(square_floor, alpha)
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"square_floor must return a pair (a, floor), got {out!r}")
        a, floor = as_float("a", out[0]), as_float("floor", out[1])
        x = _uniform_sample(alpha)
        best = neural_ode.monotone_mse_bound(x, x**2, increasing=None)
        close(f"floor for alpha = {alpha}", floor, best, rtol=2e-3)
        achieved = float(np.mean((np.maximum(x, a) ** 2 - x**2) ** 2))
        close(
            f"the error of g(x) = max(x, a)**2 with your a = {a:.6g} (alpha = {alpha})",
            achieved,
            best,
            rtol=2e-3,
        )
    return "floor and optimal kink a agree with the isotonic regression for alpha = 1, 0.6, 0.25"


# --- pool adjacent violators ---------------------------------------------------------------------


def _running_max(y):
    return np.maximum.accumulate(np.asarray(y, dtype=float))


def _pool_pairs_once(y):
    # A one-pass variant that averages each violating pair but never re-checks earlier blocks.
    out = np.asarray(y, dtype=float).copy()
    for i in range(1, out.size):
        if out[i] < out[i - 1]:
            out[i - 1] = out[i] = (out[i - 1] + out[i]) / 2
    return out


@exercise(
    "ex-node-pava",
    chapter=CHAPTER,
    kind="computation",
    answer="increasing_fit(y) -> array g of the same length: the non-decreasing sequence that "
    "minimises sum_i (g_i - y_i)**2",
    wrong=[_running_max, lambda y: np.sort(np.asarray(y, dtype=float)), _pool_pairs_once],
)
def _increasing_fit(increasing_fit):
    # Properties: g is feasible (non-decreasing) and its error equals the minimum computed by
    # scipy's isotonic regression; the minimiser of a strictly convex problem is unique, so the
    # two together mean g is the isotonic regression.
    rng = np.random.default_rng(5)
    grid = np.linspace(-1, 1, 101)
    cases = {
        "an increasing sequence": np.linspace(0, 1, 20) ** 3,
        "a decreasing sequence": np.linspace(2, -1, 15),
        "x**2 on a grid of [-1, 1]": grid**2,
        "x**2 - sin(3x) on a grid of [-1, 1]": grid**2 - np.sin(3 * grid),
        "200 Gaussian numbers": rng.standard_normal(200),
        "a noisy increasing trend with ties": np.round(
            np.linspace(0, 3, 80) + rng.normal(0, 1, 80)
        ),
    }
    for name, y in cases.items():
        g = as_array(f"increasing_fit on {name}", call(increasing_fit, y.copy()), shape=y.shape)
        steps = np.diff(g)
        if steps.size and steps.min() < -1e-10:
            i = int(np.argmin(steps))
            raise CheckFailed(
                f"on {name} the fit is not non-decreasing: g[{i}] = {g[i]:.6g} > "
                f"g[{i + 1}] = {g[i + 1]:.6g}"
            )
        best = neural_ode.monotone_mse_bound(np.arange(y.size), y)
        error = float(np.mean((g - y) ** 2))
        if error > best * (1 + 1e-8) + 1e-12:
            raise CheckFailed(
                f"on {name} the fit is non-decreasing, but its mean-squared error {error:.6g} "
                f"exceeds the smallest possible one, {best:.6g} (by {error - best:.3g}): pool "
                "every block that violates the order with its neighbours, and re-check the "
                "blocks before it"
            )
    return "non-decreasing and of least squared error on six sequences"


# --- an exact reversal of the line by an augmented linear flow ---------------------------------


@exercise(
    "ex-node-rotation",
    chapter=CHAPTER,
    kind="derivation",
    answer="reversing_field(T) -> 2 x 2 matrix B: the flow of h' = B h maps (x, 0) at t = 0 to "
    "(-x, anything) at t = T",
    wrong=[
        lambda T: np.pi * np.array([[0.0, -1.0], [1.0, 0.0]]),
        lambda T: np.pi / (2 * T) * np.array([[0.0, -1.0], [1.0, 0.0]]),
        lambda T: np.array([[-2.0 / T, 0.0], [0.0, 0.0]]),
    ],
)
def _reversing_field(reversing_field):
    # The time-T flow of h' = Bh is exp(TB); the model reads out the first coordinate of
    # exp(TB) (x, 0) = x exp(TB) e_1, which must be -x, so [exp(TB)]_11 = -1.
    for T in (1.0, 0.5, 3.0):
        B = as_array(f"reversing_field({T})", call(reversing_field, T), shape=(2, 2))
        if np.abs(B).max() > 1e4:
            raise CheckFailed(f"reversing_field({T}) has entries up to {np.abs(B).max():.3g}")
        image = scipy.linalg.expm(T * B)[:, 0]
        close(
            f"the read-out coordinate h_1(T) of the flow from (1, 0) with T = {T}",
            image[0],
            -1.0,
            atol=1e-8,
        )
    return "exp(TB) maps (x, 0) to (-x, *) for T = 1, 0.5 and 3"


# --- the Jacobian of the shear flow --------------------------------------------------------------


def _shear_cases():
    """Targets Psi with their derivatives in closed form: (name, d, q, Psi, DPsi)."""

    def wiggle(u):
        return u**2 - torch.sin(3 * u)

    def d_wiggle(u):
        return (2 * u - 3 * torch.cos(3 * u))[:, :, None]

    def product(u):
        return (u[:, 0] * u[:, 1])[:, None]

    def d_product(u):
        return torch.stack([u[:, 1], u[:, 0]], dim=1)[:, None, :]

    def curve(u):
        return torch.cat([torch.cos(u), u**3], dim=1)

    def d_curve(u):
        return torch.stack([-torch.sin(u[:, 0]), 3 * u[:, 0] ** 2], dim=1)[:, :, None]

    return [
        ("Psi(u) = u^2 - sin 3u", 1, 1, wiggle, d_wiggle),
        ("Psi(u) = u_1 u_2", 2, 1, product, d_product),
        ("Psi(u) = (cos u, u^3)", 1, 2, curve, d_curve),
    ]


def _shear_transposed(psi_jacobian, t, T):
    J = torch.as_tensor(psi_jacobian)
    n, q, d = J.shape
    out = torch.eye(d + q, dtype=J.dtype).repeat(n, 1, 1)
    out[:, :d, d:] = t / T * J.transpose(1, 2)
    return out


def _shear_no_time(psi_jacobian, t, T):
    J = torch.as_tensor(psi_jacobian)
    n, q, d = J.shape
    out = torch.eye(d + q, dtype=J.dtype).repeat(n, 1, 1)
    out[:, d:, :d] = J
    return out


def _shear_times_t(psi_jacobian, t, T):
    J = torch.as_tensor(psi_jacobian)
    n, q, d = J.shape
    out = torch.eye(d + q, dtype=J.dtype).repeat(n, 1, 1)
    out[:, d:, :d] = t * J
    return out


@exercise(
    "ex-node-shear-volume",
    chapter=CHAPTER,
    kind="derivation",
    answer="shear_jacobian(psi_jacobian, t, T) -> (n, d+q, d+q) Jacobians D phi_t of the shear "
    "flow of f(t, (u, v)) = (0, Psi(u)/T), given psi_jacobian = D Psi(u) of shape (n, q, d)",
    wrong=[_shear_transposed, _shear_no_time, _shear_times_t],
)
def _shear_jacobian(shear_jacobian):
    # Oracle: autograd through the solver's flow map of the package's shear field; Liouville's
    # formula (div f = 0) requires det D phi_t = 1.
    generator = torch.Generator().manual_seed(11)
    for name, d, q, psi, d_psi in _shear_cases():
        states = torch.randn(4, d + q, dtype=torch.float64, generator=generator)
        for T in (1.0, 2.0):
            field = neural_ode.shear_embedding(psi, d, q, t_final=T).vector_field
            for t in (T / 2, T):
                got = call(shear_jacobian, d_psi(states[:, :d]).clone(), t, T)
                got = as_array(
                    f"shear_jacobian for {name} at t = {t}, T = {T}", got, (4, d + q, d + q)
                )
                det = np.linalg.det(got)
                close(
                    f"det D phi_t for {name} at t = {t}, T = {T} (Liouville: div f = 0)",
                    det,
                    np.ones(4),
                    atol=1e-8,
                )
                expected = neural_ode.flow_jacobian(field, states, t).numpy()
                close(
                    f"D phi_t for {name} at t = {t}, T = {T} (entries in row-major order)",
                    got,
                    expected,
                    rtol=1e-6,
                    atol=1e-8,
                )
    return "D phi_t matches the solver's flow Jacobian for three targets, two T and two times t"


# --- which one-step maps can reverse the line ----------------------------------------------------


def _one_step_factor(method: str, z: np.ndarray) -> np.ndarray:
    """R(z): one step of size 1 of ``method`` (torchdiffeq) on h' = z h, from h = 1."""
    lam = torch.as_tensor(np.atleast_1d(z), dtype=torch.float64)[:, None]
    ones = torch.ones_like(lam)
    return neural_ode.ode_flow(lambda t, h: lam * h, ones, 1.0, method=method)[:, 0].numpy()


def _measured_threshold(method: str, z_min: float = -60.0) -> tuple[float, float, float]:
    """(s, z at the smallest factor, smallest factor) with s the measured threshold or inf."""
    z = np.linspace(z_min, 0.0, 6001)
    factor = _one_step_factor(method, z)
    lowest = int(np.argmin(factor))
    if factor.min() > 0:
        return math.inf, float(z[lowest]), float(factor[lowest])
    last = int(np.nonzero(factor <= 0)[0].max())  # the reversal closest to z = 0
    root = scipy.optimize.brentq(
        lambda s: float(_one_step_factor(method, s)[0]), z[last], z[last + 1], xtol=1e-12
    )
    return -root, float(z[lowest]), float(factor[lowest])


@exercise(
    "ex-node-coarse",
    chapter=CHAPTER,
    kind="exploration",
    answer="reversal_threshold(method) -> s > 0 (or math.inf): one step of the method on "
    "h' = lambda h reverses the line exactly when lambda * dt < -s, for method in 'euler', "
    "'midpoint', 'heun3', 'rk4'",
    wrong=[
        lambda method: 1.0,
        lambda method: math.inf,
        lambda method: {"euler": 2.0, "midpoint": 2.0, "heun3": 2.5127, "rk4": 2.7853}[method],
    ],
)
def _reversal_threshold(reversal_threshold):
    # The oracle is torchdiffeq itself: one step of each method on h' = z h for z on a fine grid
    # of [-60, 0] (one batched solve), the sign change refined by Brent's method.
    for method in ("euler", "midpoint", "heun3", "rk4"):
        value = call(reversal_threshold, method)
        try:
            predicted = float(value)
        except (TypeError, ValueError) as err:
            raise CheckFailed(
                f"reversal_threshold({method!r}) must be a number or math.inf, got {value!r}"
            ) from err
        if math.isnan(predicted) or predicted <= 0:
            raise CheckFailed(
                f"reversal_threshold({method!r}) must be positive (or math.inf), got {predicted}"
            )
        measured, z_low, lowest = _measured_threshold(method)
        if math.isinf(measured) and not math.isinf(predicted):
            raise CheckFailed(
                f"one {method} step keeps the order of the line for every lambda*dt in [-60, 0] "
                f"(its factor R(lambda*dt) is at least {lowest:.4g}, at {z_low:.4g}), so no step "
                f"size reverses it; you predicted a reversal below -{predicted:.6g}"
            )
        if math.isinf(predicted) and not math.isinf(measured):
            raise CheckFailed(
                f"one {method} step reverses the line once lambda*dt < -{measured:.6g} (its "
                f"factor R(lambda*dt) changes sign there); you predicted that it never does"
            )
        if not math.isinf(measured):
            close(f"reversal_threshold({method!r})", predicted, measured, rtol=1e-5)
    return "the predicted thresholds match single torchdiffeq steps of euler, midpoint, heun3, rk4"
