"""Checks for the exercises of the chapter *Neural delay equations and memory*.

The oracles are the chapter's mathematics: the delay equation itself (its residual, history and
continuity), the delayed exponential ``c`` of :func:`dsnn.delay.delayed_exponential` (the exact
method-of-steps polynomial), orders of convergence, and runs of :func:`dsnn.delay.solve_dde`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dsnn import delay, stats
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "delay_equations"
F64 = torch.float64


def _evaluator(function, name: str, *leading):
    """``t -> function(*leading, t)`` as a float array of the shape of ``t``, or a CheckFailed."""

    def values(t: np.ndarray) -> np.ndarray:
        shown = ", ".join([*(f"{v:g}" for v in leading), "t"])
        return as_array(f"{name}({shown})", call(function, *leading, t, name=name), shape=t.shape)

    return values


def _check_dde_solution(y, label: str, K: float, tau: float, history, t_max: float) -> None:
    """Raise unless ``y(t)`` solves ``y' = -K y(t - tau)`` with the given history.

    Tested on ``[-tau, t_max]``: the values on ``[-tau, 0)`` are the history, the solution is
    continuous at the breakpoints ``k tau`` (``k >= 1``), and central differences of ``y`` match
    ``-K y(t - tau)`` at points inside every step. These three properties determine the
    solution (it is what the method of steps constructs), so nothing else is compared.
    """
    past = -tau * np.array([1.0, 0.75, 0.5, 0.1, 1e-3])
    close(f"{label} on the history [-tau, 0)", y(past), history(past), atol=1e-10)
    breaks = tau * np.arange(1, round(t_max / tau))
    if breaks.size:
        eps = 1e-9 * tau
        jump = np.abs(y(breaks + eps) - y(breaks - eps))
        if jump.max() > 1e-6:
            k = int(np.argmax(jump))
            raise CheckFailed(
                f"{label} jumps by {jump[k]:.3g} at t = {breaks[k]:g} = {k + 1} tau; a solution "
                "of the delay equation is continuous for t > 0 (each step starts from the "
                "value reached at the end of the previous one)"
            )
    # Points inside every step, away from the breakpoints where derivatives jump.
    inside = np.array([0.23, 0.61, 0.87])
    t = tau * (np.arange(round(t_max / tau))[:, None] + inside).ravel()
    delta = 1e-5 * tau
    slope = (y(t + delta) - y(t - delta)) / (2 * delta)
    delayed = y(t - tau)
    residual = np.abs(slope + K * delayed)
    scale = 1.0 + K * np.abs(delayed)
    worst = int(np.argmax(residual / scale))
    if residual[worst] > 1e-5 * scale[worst]:
        raise CheckFailed(
            f"{label} does not solve y'(t) = -K y(t - tau) with K = {K:g}, tau = {tau:g}: at "
            f"t = {t[worst]:.4g} the slope is {slope[worst]:.6g} but -K y(t - tau) = "
            f"{-K * delayed[worst] + 0.0:.6g} (off by {residual[worst]:.3g})"
        )


# --- the method of steps by hand ---------------------------------------------------------------


def _steps_taylor(a, t):
    # Mistake: the Taylor polynomials of exp(-a t), without the shifts t - (k - 1).
    t = np.asarray(t, dtype=float)
    return np.select(
        [t <= 0, t <= 1, t <= 2],
        [np.ones_like(t), 1 - a * t, 1 - a * t + (a * t) ** 2 / 2],
        1 - a * t + (a * t) ** 2 / 2 - (a * t) ** 3 / 6,
    )


def _steps_no_constant(a, t):
    # Mistake: each step integrates from zero instead of from the value at the left end.
    t = np.asarray(t, dtype=float)
    return np.select(
        [t <= 0, t <= 1, t <= 2],
        [np.ones_like(t), 1 - a * t, -a * (t - 1) + a**2 * (t - 1) ** 2 / 2],
        -a * (t - 2) + a**2 * (t - 2) ** 2 / 2 - a**3 * (t - 2) ** 3 / 6,
    )


def _steps_sign(a, t):
    # Mistake: a sign error in the second integration, -a * (-a) = -a**2.
    t = np.asarray(t, dtype=float)
    return np.select(
        [t <= 0, t <= 1, t <= 2],
        [np.ones_like(t), 1 - a * t, 1 - a * t - a**2 * (t - 1) ** 2 / 2],
        1 - a * t - a**2 * (t - 1) ** 2 / 2 + a**3 * (t - 2) ** 3 / 6,
    )


@exercise(
    "ex-delay-steps",
    chapter=CHAPTER,
    kind="derivation",
    answer="steps_solution(a, t) -> array of y(t) for y' = -a y(t - 1), y = 1 on [-1, 0], "
    "t an array in [-1, 3]",
    wrong=[
        _steps_taylor,
        _steps_no_constant,
        _steps_sign,
        lambda a, t: np.where(np.asarray(t) <= 0, 1.0, np.exp(-a * np.asarray(t, dtype=float))),
    ],
)
def _steps(steps_solution):
    # The method of steps determines the solution: history, continuity and the equation on each
    # step. The jumps of y' at 0 and y'' at 1 are the exercise's point, so they get their own
    # messages (one-sided differences).
    for a in (0.5, 1.0, 1.7):
        y = _evaluator(steps_solution, "steps_solution", a)
        _check_dde_solution(y, f"steps_solution({a:g}, t)", a, 1.0, np.ones_like, 3.0)
        h = 1e-6
        y0 = y(np.array([-h, 0.0, h]))
        close(
            f"the jump of y' at t = 0 for a = {a}", (y0[2] - 2 * y0[1] + y0[0]) / h, -a, rtol=1e-3
        )
        h = 1e-3
        y1 = y(1 + h * np.arange(-2.0, 3.0))
        jump = (y1[4] - 2 * y1[3] + y1[2]) / h**2 - (y1[2] - 2 * y1[1] + y1[0]) / h**2
        close(f"the jump of y'' at t = 1 for a = {a}", jump, a**2, rtol=2e-2)
    return (
        "history, continuity and y'(t) = -a y(t - 1) on [0, 3] hold for a = 0.5, 1, 1.7; "
        "y' jumps by -a at t = 0 and y'' by a^2 at t = 1"
    )


# --- Heun's method of steps ---------------------------------------------------------------------


def _heun_reference(f, history, tau, t_final, m, *, shift=0, frozen=False, late=True, euler=False):
    """Heun's method of steps, with switches that reproduce plausible mistakes.

    ``shift`` reads the past ``shift`` steps too far back, ``frozen`` gives the corrector the
    delayed state of the predictor, ``late=False`` evaluates the corrector at ``t_n`` instead of
    ``t_{n+1}``, and ``euler`` drops the corrector.
    """
    dt = tau / m
    states = [history]
    h = history
    for n in range(round(t_final / dt)):
        t = torch.tensor(n * dt, dtype=history.dtype)

        def past(j):
            return states[j] if j >= 0 else history

        k1 = f(t, h, past(n - m - shift))
        if euler:
            h = h + dt * k1
        else:
            delayed = past(n - m - shift) if frozen else past(n + 1 - m - shift)
            h = h + dt / 2 * (k1 + f(t + dt if late else t, h + dt * k1, delayed))
        states.append(h)
    return h


def _heun_euler(f, history, tau, t_final, m):
    return _heun_reference(f, history, tau, t_final, m, euler=True)


def _heun_frozen_delay(f, history, tau, t_final, m):
    # Mistake: both stages use the delayed state at t_n - tau.
    return _heun_reference(f, history, tau, t_final, m, frozen=True)


def _heun_off_by_one(f, history, tau, t_final, m):
    # Mistake: the delayed state is read one step too far back (a delay of tau + dt).
    return _heun_reference(f, history, tau, t_final, m, shift=1)


def _heun_wrong_time(f, history, tau, t_final, m):
    # Mistake: the corrector is evaluated at t_n instead of t_{n+1} (felt only when f depends on t).
    return _heun_reference(f, history, tau, t_final, m, late=False)


def _measured_order(heun_steps, f, history, tau, t_final, exact, name) -> float:
    steps = [4, 8, 16, 32]
    errors = []
    for m in steps:
        out = call(heun_steps, f, history.clone(), tau, t_final, m, name="heun_steps")
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(history.shape):
            raise CheckFailed(
                f"heun_steps must return a tensor of the history's shape "
                f"{tuple(history.shape)} (the state at t_final), got "
                f"{type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}"
            )
        error = float((out.detach() - exact).abs().max())
        if not math.isfinite(error):
            raise CheckFailed(f"heun_steps returned NaN or infinite values on {name} (m = {m})")
        errors.append(max(error, 1e-300))
    if max(errors) < 1e-12:
        raise CheckFailed(
            f"on {name} the error is below 1e-12 for every m: that is not a second-order "
            "method with step tau/m (did you call an exact or much finer solver?)"
        )
    return -stats.loglog_slope(steps, errors)


@exercise(
    "ex-delay-heun",
    chapter=CHAPTER,
    kind="computation",
    answer="heun_steps(f, history, tau, t_final, m) -> tensor of history's shape, h(t_final) "
    "after Heun's method of steps with dt = tau / m",
    wrong=[_heun_euler, _heun_frozen_delay, _heun_off_by_one, _heun_wrong_time],
)
def _heun(heun_steps):
    # Order two (Bellen & Zennaro 2003) on the linear test equation, whose exact solution is the
    # delayed exponential, and on a nonlinear, time-dependent field against a fine RK4 solve.
    gains = torch.tensor([[0.5], [1.2]], dtype=F64)
    exact = torch.tensor(
        [[delay.delayed_exponential(float(g), 1.0, [3.0])[0]] for g in gains[:, 0]], dtype=F64
    )

    def linear(t, h, h_tau):
        return -gains * h_tau

    def nonlinear(t, h, h_tau):
        t = torch.as_tensor(t, dtype=F64)
        return torch.cos(2 * t) * torch.sin(h_tau) - 0.3 * h

    history = torch.tensor([[0.5], [1.0]], dtype=F64)
    with torch.no_grad():
        reference = delay.solve_dde(nonlinear, history, 0.5, 2.0, 0.5 / 256).states[-1]
    tests = [
        (
            "y' = -a y(t - 1), y = 1 on [-1, 0], T = 3",
            linear,
            torch.ones(2, 1, dtype=F64),
            1.0,
            3.0,
            exact,
        ),
        ("h' = cos(2t) sin(h(t - 1/2)) - 0.3 h, T = 2", nonlinear, history, 0.5, 2.0, reference),
    ]
    for name, f, hist, tau, t_final, target in tests:
        with torch.no_grad():
            order = _measured_order(heun_steps, f, hist, tau, t_final, target, name)
        if not 1.8 < order < 2.3:
            raise CheckFailed(
                f"on {name} the error falls with order {order:.2f} in m; Heun's method of steps "
                "has order 2 (check which past state each stage reads, and the time of the "
                "corrector stage)"
            )
    return "order 2 on the linear test equation and on a nonlinear time-dependent delay field"


# --- the fundamental solution -------------------------------------------------------------------


def _fundamental_unshifted(K, tau, t):
    # Mistake: X = c, without the shift by one delay.
    return delay.delayed_exponential(K, tau, np.maximum(t, -tau))


def _fundamental_units(K, tau, t):
    # Mistake: c in units of the delay (gain K tau, delay 1) but t not divided by tau.
    t = np.asarray(t, dtype=float)
    return np.where(t < 0, 0.0, delay.delayed_exponential(K * tau, 1.0, np.maximum(t - tau, -1.0)))


@exercise(
    "ex-delay-positive",
    chapter=CHAPTER,
    kind="derivation",
    answer="fundamental_solution(K, tau, t) -> array of X(t), t an array in [-tau, 4 tau]",
    wrong=[
        _fundamental_unshifted,
        _fundamental_units,
        lambda K, tau, t: np.where(np.asarray(t) < 0, 0.0, np.exp(-K * np.asarray(t))),
    ],
)
def _positive(fundamental_solution):
    # X is determined by X = 0 on [-tau, 0), X(0) = 1, continuity for t > 0 and the equation.
    for K, tau in [(0.9, 0.7), (0.15, 2.0), (1.6, 1.0)]:
        X = _evaluator(fundamental_solution, "fundamental_solution", K, tau)
        close(f"fundamental_solution({K:g}, {tau:g}, 0)", X(np.array([0.0]))[0], 1.0, atol=1e-10)
        label = f"fundamental_solution({K:g}, {tau:g}, t)"
        _check_dde_solution(X, label, K, tau, np.zeros_like, 4 * tau)
    return "X = 0 before 0, X(0) = 1, continuous and X' = -K X(t - tau) on [0, 4 tau], 3 cases"


# --- the first sign change near 1/e -------------------------------------------------------------


def _first_zeros(memory: np.ndarray, horizon: float, dt: float = 0.05) -> np.ndarray:
    """First zero of ``c`` (in delays) for each ``K tau``, from one batched RK4 solve."""
    a = torch.tensor(memory, dtype=F64)[:, None]
    with torch.no_grad():
        sol = delay.solve_dde(lambda t, h, h_tau: -a * h_tau, torch.ones_like(a), 1.0, horizon, dt)
    c, times = sol.states[..., 0].numpy(), sol.times.numpy()
    zeros = np.full(len(memory), np.inf)
    for i in range(len(memory)):
        negative = np.nonzero(c[:, i] < 0)[0]
        if negative.size:
            j = negative[0]  # linear interpolation between the last positive and first negative
            zeros[i] = times[j - 1] + dt * c[j - 1, i] / (c[j - 1, i] - c[j, i])
    return zeros


@exercise(
    "ex-delay-first-zero",
    chapter=CHAPTER,
    kind="exploration",
    answer="first_zero(memory) -> predicted time of the first zero of c, in delays, for "
    "memory = K tau slightly above 1/e",
    wrong=[
        lambda kt: 2 * math.pi / float(np.imag(delay.characteristic_root(kt, 1.0))),
        lambda kt: math.pi / math.sqrt(math.e * kt - 1),
        lambda kt: math.pi / (2 * (math.e * kt - 1)),
    ],
)
def _first_zero(first_zero):
    # The oracle is a run: the first sign change of the simulated c for three memory capacities
    # just above 1/e. Near the threshold the leading-order prediction is within a few per cent.
    memory = math.exp(-1.0) + np.array([3e-3, 1e-3, 3e-4])
    measured = _first_zeros(memory, horizon=100.0)
    for kt, t0 in zip(memory, measured, strict=True):
        got = as_float(f"first_zero({kt:.6f})", call(first_zero, float(kt)))
        close(f"first_zero(1/e + {kt - math.exp(-1.0):.0e})", got, t0, rtol=0.08)
    return (
        "predicted first zeros agree within 8 % with simulations at K tau - 1/e = "
        "3e-3, 1e-3, 3e-4 (first zeros at about 23, 41 and 76 delays)"
    )


# --- small delays -------------------------------------------------------------------------------


@exercise(
    "ex-delay-small",
    chapter=CHAPTER,
    kind="derivation",
    answer="small_delay_map(b, T, tau) -> c(T) to first order in tau, for x' = -b x(t - tau), "
    "x = 1 on [-tau, 0]",
    wrong=[
        lambda b, T, tau: math.exp(-b * T),
        lambda b, T, tau: math.exp(-b * T) * (1 + b**2 * T * tau),
        lambda b, T, tau: math.exp(-b * (T - tau)),
    ],
)
def _small(small_delay_map):
    # The property: the answer differs from the exact c(T) (the delayed exponential) by o(tau),
    # i.e. much less than the first-order term b^2 T e^{-bT} tau, and the difference shrinks
    # faster than linearly. (b, T) are chosen so that b != 1 and the second-order term is not
    # small.
    taus = np.array([0.02, 0.01, 0.005])
    for b, T in [(2.0, 1.5), (0.5, 3.0)]:
        exact = np.array([delay.delayed_exponential(b, tau, [T])[0] for tau in taus])
        got = np.array(
            [
                as_float(
                    f"small_delay_map({b}, {T}, {tau})", call(small_delay_map, b, T, float(tau))
                )
                for tau in taus
            ]
        )
        error = np.abs(got - exact)
        first_order = b**2 * T * math.exp(-b * T) * taus
        ratio = error / first_order
        if ratio[-1] > 0.05:
            raise CheckFailed(
                f"for b = {b}, T = {T}, tau = {taus[-1]} your value {got[-1]:.8g} differs from "
                f"the exact c(T) = {exact[-1]:.8g} by {error[-1]:.3g}, which is "
                f"{ratio[-1]:.2f} times the size of the first-order term; a first-order "
                "approximation is off by O(tau^2)"
            )
        if error[-1] > 1e-11 and error[-2] / error[-1] < 2.8:
            raise CheckFailed(
                f"for b = {b}, T = {T} the error shrinks only by a factor "
                f"{error[-2] / error[-1]:.2f} when tau is halved from {taus[-2]} to {taus[-1]}; "
                "the error of a first-order approximation falls like tau^2 (factor 4)"
            )
    return "error O(tau^2) against the exact delayed exponential for (b, T) = (2, 1.5), (0.5, 3)"
