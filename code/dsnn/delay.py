"""Delay differential equations and neural DDEs: memory in the forward pass.

A DenseResNet with a lagged skip connection, ``h_{l+1} = h_l + Δt f(t_l, h_l, h_{l−m})``, is the
explicit Euler scheme of the delay differential equation ``h'(t) = f(t, h(t), h(t − τ))`` with
``τ = m Δt``; as ``Δt → 0`` at fixed ``τ`` it converges to a neural DDE (Kuehn & Kuntz 2025,
arXiv:2505.07244, abstract). Its memory capacity is the product ``K τ`` of the Lipschitz constant
``K`` of ``f`` and the delay.

torchdiffeq has no delay solver, so this module provides one: the method of steps on a uniform
grid whose step divides the delay (Bellen & Zennaro 2003). With ``Δt = τ / m`` every
delayed argument of an explicit Runge–Kutta stage falls into a step that is already finished, so
the scheme stays explicit and differentiable by autograd, and the breakpoints of the solution
(multiples of ``τ``, where its derivatives jump) are grid points. The linear test equation
``x' = −K x(t − τ)`` and its characteristic roots (Lambert W) are here too, for the classical
thresholds ``Kτ = 1/e`` (oscillation) and ``Kτ = π/2`` (stability; Hayes 1950;
Hale & Verduyn Lunel 1993).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.integrate
import scipy.special
import torch
from torch import nn

from dsnn import _checks

DelayField = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

METHODS = ("euler", "heun", "rk4")
#: Order of each method of steps (with the history interpolation used below).
ORDERS = {"euler": 1, "heun": 2, "rk4": 4}

#: ``Kτ`` below which ``x' = −K x(t − τ)`` has a real characteristic root (non-oscillation).
OSCILLATION_THRESHOLD = math.exp(-1.0)
#: ``Kτ`` below which the zero solution of ``x' = −K x(t − τ)`` is asymptotically stable.
STABILITY_THRESHOLD = math.pi / 2


class DDESolution(NamedTuple):
    """What :func:`solve_dde` returns; unpacks as ``times, states = solve_dde(...)``.

    Attributes
    ----------
    times : tensor of shape ``(n_steps + 1,)``
        The grid ``t_k = k Δt``, ``k = 0, ..., n_steps``.
    states : tensor of shape ``(n_steps + 1, *batch, d)``
        ``h(t_k)`` for every trajectory of the batch.
    """

    times: torch.Tensor
    states: torch.Tensor

    @property
    def blew_up(self) -> torch.Tensor:
        """Boolean tensor of shape ``batch``: trajectories that left the floating-point range."""
        return ~torch.isfinite(self.states).all(dim=0).all(dim=-1)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _integer_ratio(name: str, value: float, unit_name: str, unit: float) -> int:
    """Return ``value / unit`` as an int, or raise if it is not (close to) a positive integer."""
    ratio = value / unit
    count = round(ratio)
    if count < 1 or abs(ratio - count) > 1e-9 * max(1.0, ratio):
        raise ValueError(
            f"{name} must be a positive integer multiple of {unit_name}: {name}={value!r}, "
            f"{unit_name}={unit!r} gives {name}/{unit_name} = {ratio:.12g}"
        )
    return count


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _check_field(f) -> None:
    if not callable(f):
        raise TypeError(
            f"f must be a callable delay vector field f(t, h, h_tau), got {type(f).__name__}"
        )


class _History:
    """Initial function ``h(s)`` for ``s ≤ 0``: a constant tensor or a callable of ``s``."""

    def __init__(self, history):
        if callable(history) and not isinstance(history, torch.Tensor):
            value = history(0.0)
            if not isinstance(value, torch.Tensor):
                value = _checks.finite_tensor("history(0)", value)
            self._user_fn = history
            self.initial = value
            name = "history(0)"
        else:
            self._user_fn = None
            self.initial = _checks.finite_tensor("history", history)
            name = "history"
        if self.initial.ndim < 1:
            raise ValueError(
                f"{name} must have shape (..., d) with at least one dimension (the state), "
                f"got shape {tuple(self.initial.shape)}"
            )
        if self._user_fn is not None and not torch.isfinite(self.initial).all():
            raise ValueError("history(0) must contain only finite numbers (no NaN or inf)")
        self.shape = tuple(self.initial.shape)
        self.function = None if self._user_fn is None else self

    def __call__(self, s: float) -> torch.Tensor:
        if self._user_fn is None:
            return self.initial
        value = self._user_fn(s)
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(
                np.asarray(value, dtype=float), dtype=self.initial.dtype, device=self.initial.device
            )
        if tuple(value.shape) != self.shape:
            raise ValueError(
                f"history(s) must return the same shape at every s <= 0: history(0) has shape "
                f"{self.shape}, history({s:g}) has shape {tuple(value.shape)}"
            )
        return value


# --------------------------------------------------------------------------------------------
# The method of steps
# --------------------------------------------------------------------------------------------


def _integrate(
    f: DelayField,
    h0: torch.Tensor,
    history: Callable[[float], torch.Tensor] | None,
    m: int,
    n_steps: int,
    dt: float,
    method: str,
) -> list[torch.Tensor]:
    """Explicit Runge–Kutta method of steps with ``τ = m Δt``; returns ``[h_0, ..., h_n]``.

    ``history`` is ``None`` for the constant history ``h0``. No validation happens here (the
    loop also runs under ``torch.func.vmap``).

    Delayed stage values: the stages of Euler and Heun sit at step ends, so their delayed
    arguments are grid points and need no interpolation. RK4 also needs the midpoints
    ``t_j + Δt/2`` of finished steps. There we use the cubic Hermite interpolant of that step
    (values and derivatives at both ends), whose midpoint value is
    ``(h_j + h_{j+1})/2 + Δt (f_j − f_{j+1})/8``. Its error is ``O(Δt⁴)``, which keeps the
    global order 4 of RK4 (an interpolant of order ``q`` gives order ``min(p, q + 1)``;
    Bellen & Zennaro 2003). Written by hand because no maintained torch library
    solves delay equations with correct gradients at this cost (see the benchmark).
    """
    dtype, device = h0.dtype, h0.device
    half = 0.5 * dt

    def past(j: int) -> torch.Tensor:
        """``h`` at grid time ``j Δt``; ``j < 0`` reads the history."""
        if j >= 0:
            return states[j]
        return h0 if history is None else history(j * dt)

    def past_mid(j: int) -> torch.Tensor:
        """``h`` at ``(j + 1/2) Δt`` (cubic Hermite inside a finished step)."""
        if j >= 0:
            return 0.5 * (states[j] + states[j + 1]) + (dt / 8.0) * (slopes[j] - slopes[j + 1])
        return h0 if history is None else history((j + 0.5) * dt)

    def time(t: float) -> torch.Tensor:
        return torch.tensor(t, dtype=dtype, device=device)

    states: list[torch.Tensor] = [h0]
    slopes: list[torch.Tensor] = []  # f at the left end of each step (the first RK4 stage)
    h = h0
    for n in range(n_steps):
        t = n * dt
        j = n - m
        k1 = f(time(t), h, past(j))
        if n == 0 and tuple(k1.shape) != tuple(h0.shape):
            raise ValueError(
                f"f(t, h, h_tau) must return a tensor of the state's shape {tuple(h0.shape)}, "
                f"got shape {tuple(k1.shape)}"
            )
        if method == "euler":
            h = h + dt * k1
        elif method == "heun":
            k2 = f(time(t + dt), h + dt * k1, past(j + 1))
            h = h + half * (k1 + k2)
        else:
            slopes.append(k1)
            delayed_mid = past_mid(j)
            k2 = f(time(t + half), h + half * k1, delayed_mid)
            k3 = f(time(t + half), h + half * k2, delayed_mid)
            k4 = f(time(t + dt), h + dt * k3, past(j + 1))
            h = h + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        states.append(h)
    return states


def solve_dde(
    f: DelayField, history, tau: float, t_final: float, dt: float, method: str = "rk4"
) -> DDESolution:
    """Solve ``h'(t) = f(t, h(t), h(t − τ))`` on ``[0, t_final]`` by the method of steps.

    Fixed step ``Δt = τ / m`` with an integer ``m ≥ 1``, so that the delayed arguments of every
    stage lie in finished steps (or in the history) and the breakpoints ``kτ`` are grid points
    (Bellen & Zennaro 2003). The whole batch of trajectories advances with one call of
    ``f`` per stage, and the result is differentiable with respect to anything ``f`` and the
    history depend on (plain autograd through the steps).

    Parameters
    ----------
    f : callable ``(t, h, h_tau) -> dh/dt``
        Delay vector field; ``t`` is a 0-dim tensor, ``h`` and ``h_tau`` have the state's shape
        ``(*batch, d)`` and the result must have it too.
    history : tensor of shape ``(*batch, d)``, or callable ``s -> tensor``
        Initial function on ``[−τ, 0]``: a constant (the same value for all ``s ≤ 0``), or a
        function of the float ``s ≤ 0`` returning a tensor of one fixed shape. The orders
        below assume a history that is smooth and continuous at ``s = 0``; a jump there (as
        for the fundamental solution) is felt inside the step ending at ``t = τ`` and makes
        the error ``O(Δt)``.
    tau : float
        The delay ``τ > 0``.
    t_final : float
        Final time; must be an integer multiple of ``dt``.
    dt : float
        Step; ``tau / dt`` must be a positive integer.
    method : {"euler", "heun", "rk4"}
        Explicit Euler (order 1; the DenseResNet of :func:`dense_resnet`), Heun (order 2) or
        classical RK4 (order 4, with cubic Hermite interpolation of the past at half steps).

    Returns
    -------
    DDESolution
        ``(times, states)`` with ``states[k] = h(k Δt)``, shape ``(n_steps + 1, *batch, d)``.
    """
    _check_field(f)
    tau = _checks.positive_float("tau", tau)
    t_final = _checks.positive_float("t_final", t_final)
    dt = _checks.positive_float("dt", dt)
    method = _check_method(method)
    if dt > tau * (1 + 1e-12):
        raise ValueError(f"dt must not exceed tau (dt = tau/m with m >= 1), got dt={dt!r}")
    m = _integer_ratio("tau", tau, "dt", dt)
    n_steps = _integer_ratio("t_final", t_final, "dt", dt)
    hist = _History(history)
    h0 = hist.initial
    states = _integrate(f, h0, hist.function, m, n_steps, dt, method)
    times = torch.arange(n_steps + 1, dtype=h0.dtype, device=h0.device) * dt
    return DDESolution(times, torch.stack(states))


def dense_resnet(
    f: DelayField, history, lag: int, n_layers: int, dt: float, *, return_states: bool = False
) -> torch.Tensor:
    """DenseResNet with one lagged skip connection: ``h_{l+1} = h_l + Δt f(t_l, h_l, h_{l−m})``.

    ``h_l`` for ``l ≤ 0`` is the history at time ``l Δt`` and ``t_l = l Δt``. This is the
    explicit Euler scheme of the neural DDE ``h' = f(t, h, h(t − τ))`` with ``τ = lag · Δt``
    and ``T = n_layers · Δt``, so it converges to it with order one as ``Δt → 0`` at fixed
    ``τ`` and ``T`` (Kuehn & Kuntz 2025, abstract; survey Sec. 2).

    Parameters
    ----------
    f : callable ``(t, h, h_lag) -> tensor``
        The residual block, acting on a batch of states of shape ``(*batch, d)``.
    history : tensor of shape ``(*batch, d)`` or callable ``s -> tensor``
        States of the layers ``l ≤ 0`` (as in :func:`solve_dde`).
    lag : int
        Lag ``m ≥ 1`` of the skip connection, in layers.
    n_layers : int
        Number of residual blocks ``L``.
    dt : float
        Step ``Δt > 0`` of each block.
    return_states : bool
        Return all states ``h_0, ..., h_L`` stacked along a new first axis instead of ``h_L``.
    """
    _check_field(f)
    lag = _checks.integer("lag", lag, minimum=1)
    n_layers = _checks.integer("n_layers", n_layers, minimum=1)
    dt = _checks.positive_float("dt", dt)
    hist = _History(history)
    states = _integrate(f, hist.initial, hist.function, lag, n_layers, dt, "euler")
    return torch.stack(states) if return_states else states[-1]


# --------------------------------------------------------------------------------------------
# Reference solutions and test equations
# --------------------------------------------------------------------------------------------


def reference_solution(
    f: Callable[[float, np.ndarray, np.ndarray], np.ndarray],
    history,
    tau: float,
    t_eval,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
) -> np.ndarray:
    """High-accuracy solution of ``y' = f(t, y, y(t − τ))`` for one trajectory (numpy/scipy).

    The method of steps with an adaptive integrator: on each interval ``[kτ, (k+1)τ]`` the
    delayed term is a known function (the history for ``k = 0``, else the dense output of the
    previous interval), so the equation is an ODE, solved with ``scipy.integrate.solve_ivp``
    (DOP853, order 8 with a dense output of order 7). Starting each interval at a breakpoint
    ``kτ`` keeps the integrator away from the jumps of the derivatives there (Bellen & Zennaro
    2003). Independent of :func:`solve_dde` (no shared code), so one can check the other.

    Parameters
    ----------
    f : callable ``(t, y, y_tau) -> array``
        Vector field on 1-D numpy arrays of length ``d``.
    history : array of shape ``(d,)`` or callable ``s -> array``
        Initial function on ``[−τ, 0]``.
    tau : float
        Delay ``τ > 0``.
    t_eval : array-like
        Increasing times in ``[0, T]`` at which the solution is returned.
    rtol, atol : float
        Tolerances of DOP853 (about 1e-13 is the smallest that still makes progress).

    Returns
    -------
    ndarray of shape ``(len(t_eval), d)``
    """
    if not callable(f):
        raise TypeError(f"f must be a callable f(t, y, y_tau), got {type(f).__name__}")
    tau = _checks.positive_float("tau", tau)
    t_eval = _checks.finite_array("t_eval", t_eval, ndim=1)
    if t_eval[0] < 0 or (t_eval.size > 1 and not (np.diff(t_eval) > 0).all()):
        raise ValueError("t_eval must be increasing and start at a time >= 0")
    rtol = _checks.positive_float("rtol", rtol)
    atol = _checks.positive_float("atol", atol)
    if callable(history):
        hist = history
        y = _checks.finite_array("history(0)", history(0.0), ndim=1)
    else:
        y = _checks.finite_array("history", history, ndim=1)
        constant = y.copy()

        def hist(s):
            return constant

    t_end = float(t_eval[-1])
    pieces = []
    previous = None
    k = 0
    while k * tau < t_end or k == 0:
        start, stop = k * tau, min((k + 1) * tau, t_end)
        if stop <= start:
            break
        delayed = hist if previous is None else previous

        def rhs(t, state, delayed=delayed):
            return np.asarray(f(t, state, np.asarray(delayed(t - tau))), dtype=float)

        sol = scipy.integrate.solve_ivp(
            rhs, (start, stop), y, method="DOP853", rtol=rtol, atol=atol, dense_output=True
        )
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed on [{start}, {stop}]: {sol.message}")
        pieces.append((start, stop, sol.sol))
        previous = sol.sol
        y = sol.y[:, -1]
        k += 1
    out = np.empty((t_eval.size, y.size))
    for i, t in enumerate(t_eval):
        index = min(int(t // tau), len(pieces) - 1)
        out[i] = pieces[index][2](t)
    return out


def mackey_glass(beta: float = 0.2, gamma: float = 0.1, exponent: float = 10.0) -> DelayField:
    """The Mackey–Glass field ``x' = β x_τ / (1 + x_τ^n) − γ x`` (Mackey & Glass 1977).

    With ``τ = 17`` and the default parameters the solutions are chaotic. The returned callable
    works on torch tensors (for :func:`solve_dde`) and numpy arrays (for
    :func:`reference_solution`).
    """
    beta = _checks.positive_float("beta", beta)
    gamma = _checks.positive_float("gamma", gamma)
    exponent = _checks.positive_float("exponent", exponent)

    def field(t, x, x_tau):
        return beta * x_tau / (1.0 + x_tau**exponent) - gamma * x

    return field


def characteristic_root(K, tau) -> np.ndarray:
    """Rightmost root ``λ`` of ``λ + K e^{−λτ} = 0``, the characteristic equation of
    ``x' = −K x(t − τ)``.

    Substituting ``x = e^{λt}`` gives ``λτ e^{λτ} = −Kτ``, so the roots are
    ``λ_k = W_k(−Kτ)/τ`` with the branches ``W_k`` of the Lambert W function, and the principal
    branch ``W_0`` gives the rightmost one. It is real iff ``Kτ ≤ 1/e`` (where every solution
    with a positive constant history stays positive), and its real part is negative iff
    ``Kτ < π/2`` (Hayes 1950; Hale & Verduyn Lunel 1993). Vectorised over ``K`` and ``tau``.

    Returns
    -------
    complex ndarray broadcast from ``K`` and ``tau``.
    """
    K = _checks.finite_array("K", K)
    tau = _checks.finite_array("tau", tau)
    if (K < 0).any():
        raise ValueError(f"K must be >= 0, got min(K) = {K.min()!r}")
    if (tau <= 0).any():
        raise ValueError(f"tau must be > 0, got min(tau) = {tau.min()!r}")
    z = -K * tau
    w = scipy.special.lambertw(z, 0)
    # scipy returns NaN at the branch point z = −1/e itself, where W_0(−1/e) = −1 (double root).
    w = np.where(np.abs(z + math.exp(-1.0)) < 1e-15, -1.0 + 0.0j, w)
    return w / tau


def delayed_exponential(K: float, tau: float, t) -> np.ndarray:
    """Exact solution of ``x' = −K x(t − τ)`` with ``x ≡ 1`` on ``[−τ, 0]``.

    The method of steps gives, on ``[(n − 1)τ, nτ]``, the polynomial

    ``x(t) = Σ_{k=0}^{n} (−K)^k (t − (k − 1)τ)^k / k!``

    (each step integrates the previous piece once; the "delayed exponential"). For ``Kτ ≤ 1/e``
    it stays positive, for ``Kτ > 1/e`` it changes sign. The alternating sum cancels badly in
    floating point for long times, so it is evaluated with 50 significant digits (mpmath).

    Parameters
    ----------
    K : float
        Gain ``K ≥ 0``.
    tau : float
        Delay ``τ > 0``.
    t : array-like
        Times ``t ≥ −τ``.
    """
    import mpmath

    K = _checks.positive_float("K", K, allow_zero=True)
    tau = _checks.positive_float("tau", tau)
    t = _checks.finite_array("t", t)
    if (t < -tau).any():
        raise ValueError(f"t must be >= -tau = {-tau!r}, got min(t) = {t.min()!r}")
    with mpmath.workdps(50):
        K_m, tau_m = mpmath.mpf(K), mpmath.mpf(tau)
        out = np.empty(t.shape)
        for index, value in np.ndenumerate(t):
            s = mpmath.mpf(value)
            n = int(mpmath.floor(s / tau_m)) + 1
            total = mpmath.mpf(0)
            for k in range(n + 1):
                total += (-K_m) ** k * (s - (k - 1) * tau_m) ** k / mpmath.factorial(k)
            out[index] = float(total)
    return out


def decay_rate(times, values) -> float:
    """Exponential rate ``r`` of a signal that behaves like ``C e^{r t} cos(ω t + φ)``.

    Least-squares slope of ``log |x|`` against ``t`` at the local maxima of ``|x|`` (which lie
    on the envelope ``|C| e^{r t}`` when ``ω > 0``), or at all samples when ``|x|`` has no
    interior local maximum (``ω = 0``). Used to compare a simulated solution of a linear delay
    equation with the real part of its rightmost characteristic root.
    """
    t = _checks.finite_array("times", times, ndim=1)
    x = np.abs(_checks.finite_array("values", values, ndim=1))
    if t.shape != x.shape:
        raise ValueError(f"times and values must have the same length, got {t.size} and {x.size}")
    if t.size < 3:
        raise ValueError(f"need at least 3 samples, got {t.size}")
    if (x == 0).any():
        raise ValueError("values must not vanish on a log scale")
    peaks = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
    if peaks.sum() >= 2:
        t, x = t[1:-1][peaks], x[1:-1][peaks]
    return float(np.polyfit(t, np.log(x), 1)[0])


def reversal_threshold(n_delays: int) -> float:
    """Smallest memory capacity ``Kτ`` at which the time-``T`` map of ``x' = −K x(t − τ)``
    reverses orientation, for ``T = n_delays · τ``.

    With the constant history ``x`` (the identity lift) the time-``T`` map is ``x ↦ c(T) x``
    with ``c`` the :func:`delayed_exponential`. In units of the delay, ``c(nτ)`` is the
    polynomial ``p_n(a) = Σ_{k=0}^{n} (−a)^k (n + 1 − k)^k / k!`` in ``a = Kτ``, and the
    threshold is its smallest positive root: ``1`` for ``n = 1``, ``2 − √2`` for ``n = 2``,
    decreasing to ``1/e`` as ``n → ∞`` (for ``Kτ ≤ 1/e`` the solution never changes sign).
    Computed by scanning ``(1/e, 1]`` and bisecting the first sign change, in 50-digit
    arithmetic.
    """
    import mpmath

    n = _checks.integer("n_delays", n_delays, minimum=1)

    def p(a):
        return mpmath.fsum(
            (-a) ** k * mpmath.mpf(n + 1 - k) ** k / mpmath.factorial(k) for k in range(n + 1)
        )

    with mpmath.workdps(50):
        grid = np.linspace(math.exp(-1.0), 1.0, 1001)
        lower = grid[0]
        for upper in grid[1:]:
            if p(mpmath.mpf(upper)) <= 0:
                break
            lower = upper
        else:  # pragma: no cover - p_n(1) <= 0 or a root below 1 exists for every n >= 1
            raise RuntimeError(f"no sign change of p_{n} on (1/e, 1]")
        lo, hi = mpmath.mpf(lower), mpmath.mpf(upper)
        for _ in range(200):
            mid = (lo + hi) / 2
            if p(mid) > 0:
                lo = mid
            else:
                hi = mid
        return float(hi)


# --------------------------------------------------------------------------------------------
# Neural DDEs
# --------------------------------------------------------------------------------------------


def _tanh_field(now_w, now_b, past_w, outer_w, lipschitz, gain) -> DelayField:
    """The field ``c · A tanh(W₁ h + W₂ h_τ + b)`` as a closure over (possibly stacked) weights.

    Weights may carry leading ensemble dimensions (``(C, out, in)``); states then have shape
    ``(C, batch, dim)``. The factor ``c`` and the products are formed once, not at every stage.
    """
    if lipschitz is None:
        outer = outer_w
    else:
        inner_norm = torch.linalg.matrix_norm(now_w) + torch.linalg.matrix_norm(past_w)
        scale = lipschitz * torch.tanh(gain) / (torch.linalg.matrix_norm(outer_w) * inner_norm)
        outer = outer_w * scale[..., None, None]
    now_t, past_t, outer_t, bias = now_w.mT, past_w.mT, outer.mT, now_b.unsqueeze(-2)

    def field(t, h, h_tau):
        return torch.tanh(h @ now_t + h_tau @ past_t + bias) @ outer_t

    return field


class TanhDelayField(nn.Module):
    """Delay vector field ``f(t, h, h_τ) = c · A tanh(W₁ h + W₂ h_τ + b)``.

    With ``lipschitz=K`` the factor is ``c = K tanh(g) / (‖A‖_F (‖W₁‖_F + ‖W₂‖_F))`` with a
    trainable gain ``g``. Then
    ``|f(h, h_τ) − f(h', h_τ')| ≤ K |tanh g| max(|h − h'|, |h_τ − h_τ'|)``
    (``tanh`` is 1-Lipschitz and the Frobenius norm bounds the spectral norm): the Lipschitz
    constant is at most ``K`` whatever the weights, which fixes the memory capacity ``Kτ`` of a
    neural DDE during training. Without ``lipschitz``, ``c = 1``. In one dimension with one
    hidden unit the field is ``a tanh(w₁ h + w₂ h_τ + b)`` with Lipschitz constant
    ``|a| (|w₁| + |w₂|)``; for ``x' = −K x(t − τ)`` this convention gives ``K``.

    Parameters
    ----------
    dim : int
        Phase-space dimension ``m``.
    width : int or None
        Number of hidden units (``None``: ``dim``).
    lipschitz : float or None
        Upper bound ``K`` on the Lipschitz constant, or ``None`` for an unconstrained field.
    seed : int
        Seed of the initial weights.
    dtype : torch.dtype
        Floating type of the weights.
    """

    def __init__(
        self,
        dim: int,
        width: int | None = None,
        *,
        lipschitz: float | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        dim = _checks.integer("dim", dim, minimum=1)
        width = dim if width is None else _checks.integer("width", width, minimum=1)
        generator = torch.Generator().manual_seed(_checks.integer("seed", seed))
        self.now = nn.Linear(dim, width, dtype=dtype)
        self.past = nn.Linear(dim, width, bias=False, dtype=dtype)
        self.outer = nn.Linear(width, dim, bias=False, dtype=dtype)
        with torch.no_grad():
            for layer, fan_in in ((self.now, 2 * dim), (self.past, 2 * dim), (self.outer, width)):
                shape = layer.weight.shape
                layer.weight.copy_(torch.randn(shape, generator=generator, dtype=dtype))
                layer.weight.div_(fan_in**0.5)
            self.now.bias.copy_(torch.randn(width, generator=generator, dtype=dtype))
        if lipschitz is None:
            self.lipschitz = None
            self.gain = None
        else:
            K = _checks.positive_float("lipschitz", lipschitz)
            self.register_buffer("lipschitz", torch.tensor(K, dtype=dtype))
            # Start at about 30 % of the bound: a gentle start trained more reliably in our runs.
            self.gain = nn.Parameter(torch.tensor(0.3, dtype=dtype))
        self.dim, self.width = dim, width

    def closure(self) -> DelayField:
        """The field as a plain function of ``(t, h, h_tau)`` with the current weights."""
        return _tanh_field(
            self.now.weight,
            self.now.bias,
            self.past.weight,
            self.outer.weight,
            self.lipschitz,
            self.gain,
        )

    def lipschitz_bound(self) -> float:
        """The bound ``|c| ‖A‖₂ (‖W₁‖₂ + ‖W₂‖₂)`` on the Lipschitz constant (max-norm on pairs)."""
        with torch.no_grad():
            outer = self.outer.weight
            if self.lipschitz is not None:
                inner = torch.linalg.matrix_norm(self.now.weight) + torch.linalg.matrix_norm(
                    self.past.weight
                )
                outer = outer * self.lipschitz * torch.tanh(self.gain)
                outer = outer / (torch.linalg.matrix_norm(self.outer.weight) * inner)
            spectral = torch.linalg.matrix_norm(self.now.weight, ord=2) + torch.linalg.matrix_norm(
                self.past.weight, ord=2
            )
            return float(torch.linalg.matrix_norm(outer, ord=2) * spectral)

    def forward(self, t: torch.Tensor, h: torch.Tensor, h_tau: torch.Tensor) -> torch.Tensor:
        return self.closure()(t, h, h_tau)


# Lift and readout: a full-rank affine lift ``W x + b`` and readout ``W̃ h + b̃`` as
# ``torch.nn.Linear`` layers, the same architecture as the neural ODEs of the survey (eqs. 9–10).


def _lift_and_readout(dim_in, dim_phase, dim_out, train_affine, dtype):
    """Lift ``x ↦ W x + b`` and readout ``h ↦ W̃ h + b̃`` as ``torch.nn.Linear`` layers.

    Both start at the inclusion ``x ↦ (x, 0)`` and the projection onto the first ``dim_out``
    coordinates (full rank); with ``train_affine=False`` they stay there (frozen).
    """
    if not train_affine and dim_phase < max(dim_in, dim_out):
        raise ValueError(
            "train_affine=False needs dim_phase >= dim_in and dim_phase >= dim_out (fixed "
            f"inclusion and projection), got (dim_in, dim_phase, dim_out) = "
            f"{(dim_in, dim_phase, dim_out)}"
        )
    lift = nn.Linear(dim_in, dim_phase, dtype=dtype)
    readout = nn.Linear(dim_phase, dim_out, dtype=dtype)
    with torch.no_grad():
        lift.weight.copy_(torch.eye(dim_phase, dim_in, dtype=dtype))
        readout.weight.copy_(torch.eye(dim_out, dim_phase, dtype=dtype))
        lift.bias.zero_()
        readout.bias.zero_()
    if not train_affine:
        lift.requires_grad_(False)
        readout.requires_grad_(False)
    return lift, readout


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x Wᵀ + b`` with optional leading ensemble dimensions on ``weight`` and ``bias``."""
    return x @ weight.mT + bias.unsqueeze(-2)


class NeuralDDE(nn.Module):
    """Neural DDE ``Φ(x) = W̃ h_x(T) + b̃`` with ``h' = f(h, h(t − τ))`` and history ``W x + b``.

    The input is lifted by a full-rank affine map to the constant initial history
    ``h(s) = W x + b`` on ``[−τ, 0]``, the delay equation runs to ``t_final = T`` with
    :func:`solve_dde`'s scheme, and an affine readout gives the output: the neural ODE
    architecture of the survey (eqs. 9–10) with a delay in the vector field. The constant
    history is our choice of setting. Non-augmented means ``dim_phase ≤ dim_in`` and
    ``dim_phase ≤ dim_out`` (Kuehn & Kuntz 2025, abstract).

    Parameters
    ----------
    dim_in, dim_phase, dim_out : int
        Input dimension ``d``, phase-space dimension ``m`` and output dimension ``q``.
    tau : float
        Delay ``τ > 0``.
    t_final : float
        Final time ``T``; a multiple of ``tau / steps_per_delay``.
    width : int or None
        Hidden units of the default field :class:`TanhDelayField` (``None``: ``dim_phase``).
    lipschitz : float or None
        Bound ``K`` on the Lipschitz constant of the default field (fixes ``Kτ``).
    field : nn.Module or None
        A custom vector field ``f(t, h, h_tau)`` instead of the default one.
    steps_per_delay : int
        ``m`` in ``Δt = τ / m``.
    method : {"euler", "heun", "rk4"}
        Scheme of :func:`solve_dde`.
    train_affine : bool
        Train the affine lift and readout (default). Both start at the inclusion
        ``x ↦ (x, 0)`` and the projection onto the first ``dim_out`` coordinates; with
        ``False`` they stay there, and with ``d = m = q`` the network is the time-``T`` map
        ``x ↦ h_x(T)`` itself.
    seed : int
        Seed of all initial weights.
    dtype : torch.dtype
        Floating type.
    """

    def __init__(
        self,
        dim_in: int,
        dim_phase: int,
        dim_out: int,
        tau: float,
        t_final: float,
        *,
        width: int | None = None,
        lipschitz: float | None = None,
        field: nn.Module | None = None,
        steps_per_delay: int = 10,
        method: str = "rk4",
        train_affine: bool = True,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        dim_in = _checks.integer("dim_in", dim_in, minimum=1)
        dim_phase = _checks.integer("dim_phase", dim_phase, minimum=1)
        dim_out = _checks.integer("dim_out", dim_out, minimum=1)
        self.tau = _checks.positive_float("tau", tau)
        self.t_final = _checks.positive_float("t_final", t_final)
        self.steps_per_delay = _checks.integer("steps_per_delay", steps_per_delay, minimum=1)
        self.method = _check_method(method)
        self.dt = self.tau / self.steps_per_delay
        self.n_steps = _integer_ratio("t_final", self.t_final, "tau/steps_per_delay", self.dt)
        seed = _checks.integer("seed", seed)
        if field is not None and not isinstance(field, nn.Module):
            raise TypeError(f"field must be a torch.nn.Module or None, got {type(field).__name__}")
        self.dims = (dim_in, dim_phase, dim_out)
        if not isinstance(train_affine, bool):
            raise TypeError(f"train_affine must be True or False, got {train_affine!r}")
        self.lift, self.readout = _lift_and_readout(dim_in, dim_phase, dim_out, train_affine, dtype)
        self.field = (
            field
            if field is not None
            else TanhDelayField(dim_phase, width, lipschitz=lipschitz, seed=seed + 1, dtype=dtype)
        )

    @property
    def memory_capacity(self) -> float:
        """``Kτ`` with ``K`` the current Lipschitz bound of the default field."""
        if not isinstance(self.field, TanhDelayField):
            raise TypeError("memory_capacity needs the default TanhDelayField")
        return self.field.lipschitz_bound() * self.tau

    def _field(self) -> DelayField:
        return self.field.closure() if isinstance(self.field, TanhDelayField) else self.field

    def _states(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = _checks.finite_tensor("x", x, ndim=2).to(self.readout.weight.dtype)
        if x.shape[1] != self.dims[0]:
            raise ValueError(f"x must have shape (batch, {self.dims[0]}), got {tuple(x.shape)}")
        h0 = self.lift(x)
        return _integrate(
            self._field(), h0, None, self.steps_per_delay, self.n_steps, self.dt, self.method
        )

    def hidden(self, x) -> DDESolution:
        """The hidden trajectories ``h_x(t_k)``: states of shape ``(n_steps + 1, batch, m)``."""
        states = torch.stack(self._states(x))
        times = torch.arange(self.n_steps + 1, dtype=states.dtype, device=states.device)
        return DDESolution(times * self.dt, states)

    def forward(self, x) -> torch.Tensor:
        """``Φ(x)`` for a batch ``x`` of shape ``(batch, dim_in)``."""
        return self.readout(self._states(x)[-1])


class FitResult(NamedTuple):
    """What :func:`fit` returns, one column per model.

    Attributes
    ----------
    losses : tensor of shape ``(n_iter + 1, n_models)``
        Mean squared error before each Adam step and after the last one (not finite where a
        model blew up; see ``diverged``).
    best : tensor of shape ``(n_models,)``
        Smallest finite loss reached (the loss floor of the run).
    diverged : tensor of bool, shape ``(n_models,)``
        Models whose loss stopped being finite at some iteration.
    """

    losses: torch.Tensor
    best: torch.Tensor
    diverged: torch.Tensor


def fit(models, inputs, targets, *, n_iter: int = 300, lr: float = 0.05) -> FitResult:
    """Train one or many neural DDEs of the same architecture on ``(inputs, targets)``.

    Minimises the mean squared error ``(1/(Nq)) Σ_i |Φ(x_i) − y_i|²`` with Adam. A list of
    models is trained as one batch: their parameters are stacked along a leading ensemble axis
    and every step is one batched solve for the whole sweep (e.g. many memory capacities and
    seeds at once). The models are independent, so each follows the path it would follow
    alone. The trained parameters are written back into the models.

    Parameters
    ----------
    models : NeuralDDE or sequence of NeuralDDE
        Models with identical architecture (``tau``, ``t_final``, grid, shapes, kind of
        field); they may differ in their weights and in the Lipschitz bound.
    inputs : array-like of shape ``(N, dim_in)``
    targets : array-like of shape ``(N, dim_out)``
    n_iter : int
        Number of Adam steps.
    lr : float
        Adam learning rate.
    """
    models = [models] if isinstance(models, NeuralDDE) else list(models)
    if not models or not all(isinstance(m, NeuralDDE) for m in models):
        raise TypeError("models must be a NeuralDDE or a non-empty sequence of NeuralDDE")
    first = models[0]

    def signature(model):
        names = tuple((k, tuple(p.shape)) for k, p in model.named_parameters())
        return (model.dims, model.tau, model.t_final, model.dt, model.method, names)

    for other in models[1:]:
        if signature(other) != signature(first):
            raise ValueError(
                "all models must share dims, tau, t_final, grid, method and parameter shapes; "
                f"got {signature(first)} and {signature(other)}"
            )
    dtype = first.readout.weight.dtype
    x = _checks.finite_tensor("inputs", inputs, ndim=2).to(dtype)
    y = _checks.finite_tensor("targets", targets, ndim=2).to(dtype)
    dim_in, _, dim_out = first.dims
    if x.shape[1] != dim_in:
        raise ValueError(f"inputs must have shape (N, {dim_in}), got {tuple(x.shape)}")
    if tuple(y.shape) != (x.shape[0], dim_out):
        raise ValueError(f"targets must have shape ({x.shape[0]}, {dim_out}), got {tuple(y.shape)}")
    n_iter = _checks.integer("n_iter", n_iter, minimum=0)
    lr = _checks.positive_float("lr", lr)

    params, buffers = torch.func.stack_module_state(models)
    trainable = [p for p in params.values() if p.requires_grad]

    if isinstance(first.field, TanhDelayField):
        # Fast path: the stacked weights broadcast through the same closure as one model's.
        def batched_loss():
            field = _tanh_field(
                params["field.now.weight"],
                params["field.now.bias"],
                params["field.past.weight"],
                params["field.outer.weight"],
                buffers.get("field.lipschitz"),
                params.get("field.gain"),
            )
            h0 = _affine(x, params["lift.weight"], params["lift.bias"])
            states = _integrate(
                field, h0, None, first.steps_per_delay, first.n_steps, first.dt, first.method
            )
            out = _affine(states[-1], params["readout.weight"], params["readout.bias"])
            return ((out - y) ** 2).mean(dim=(-2, -1))

    else:
        # Any other field: vectorise one model's forward pass with torch.func.vmap.
        def loss_one(p, b):
            out = torch.func.functional_call(first, (p, b), (x,))
            return ((out - y) ** 2).mean()

        vmapped = torch.func.vmap(loss_one)

        def batched_loss():
            return vmapped(params, buffers)

    optimizer = torch.optim.Adam(trainable, lr=lr)
    history = []
    for it in range(n_iter + 1):
        losses = batched_loss()
        history.append(losses.detach().clone())
        if it == n_iter:
            break
        optimizer.zero_grad()
        # A model that blew up contributes no gradient; the others do not depend on it.
        torch.where(torch.isfinite(losses), losses, 0.0).sum().backward()
        optimizer.step()
    losses = torch.stack(history)
    finite = torch.isfinite(losses)
    best = torch.where(finite, losses, torch.inf).min(dim=0).values
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][i])
    return FitResult(losses=losses, best=best, diverged=~finite.all(dim=0))
