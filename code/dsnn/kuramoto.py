"""Kuramoto oscillators: many units, one order parameter, and the mean-field limit.

Model (Kuramoto 1975; Strogatz 2000), with an optional coupling graph ``A``:

    dθ_i/dt = ω_i + (K/N) Σ_j A_ij sin(θ_j − θ_i),        i = 1, ..., N.

Writing ``z_i = (1/N) Σ_j A_ij e^{iθ_j}`` the coupling is ``K Im(z_i e^{−iθ_i})``: one
(sparse) matrix-vector product per evaluation, never an ``N × N`` matrix of sines. All-to-all
coupling (``A = 1``) uses ``z = r e^{iψ}``, the complex order parameter, and costs ``O(N)``.

Mean-field theory for natural frequencies drawn from a Lorentzian of half-width ``γ``: the
incoherent state loses stability at ``K_c = 2γ`` and above it the stationary order parameter of
the ``N → ∞`` limit is ``r = sqrt(1 − K_c/K)`` (Kuramoto 1975). On the Ott–Antonsen manifold
the order parameter obeys ``dr/dt = −γ r + (K/2) r (1 − r²)`` exactly (Ott & Antonsen 2008), whose
stable equilibrium is this ``r``. For a unimodal symmetric density ``g`` the onset is
``K_c = 2 / (π g(0))`` (Kuramoto 1975; Strogatz 2000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch
from scipy import stats

from dsnn import _checks
from dsnn.rng import SeedLike, as_generator


def order_parameter(theta, *, return_phase: bool = False):
    """Kuramoto order parameter ``r e^{iψ} = (1/N) Σ_j e^{iθ_j}`` over the last axis.

    Returns ``r`` in ``[0, 1]`` (an array over any leading batch axes), and ``ψ`` as well when
    ``return_phase`` is true. ``r = 1`` means all phases agree; ``r = 0`` for a balanced splay.
    """
    theta = _checks.finite_array("theta", theta)
    if theta.ndim == 0:
        raise ValueError("theta must have at least one axis (the oscillators)")
    z = np.exp(1j * theta).mean(axis=-1)
    r = np.minimum(np.abs(z), 1.0)  # |mean| <= 1 exactly; clip rounding above 1
    if return_phase:
        return r, np.angle(z)
    return r


def lorentzian_frequencies(n: int, gamma: float, *, center: float = 0.0) -> np.ndarray:
    """``n`` deterministic frequencies at the quantiles ``(i + ½)/n`` of a Lorentzian.

    ``ω_i = center + γ tan(π((i + ½)/n − ½))``. Quantile frequencies remove the sampling noise of
    random draws, so finite-``n`` results approach the mean-field theory quickly.
    """
    n = _checks.integer("n", n, minimum=1)
    gamma = _checks.positive_float("gamma", gamma)
    center = _checks.real_float("center", center)
    u = (np.arange(n) + 0.5) / n
    return center + gamma * np.tan(np.pi * (u - 0.5))


def gaussian_frequencies(n: int, sigma: float, *, center: float = 0.0) -> np.ndarray:
    """``n`` deterministic frequencies at the quantiles ``(i + ½)/n`` of ``N(center, σ²)``."""
    n = _checks.integer("n", n, minimum=1)
    sigma = _checks.positive_float("sigma", sigma)
    center = _checks.real_float("center", center)
    return center + sigma * stats.norm.ppf((np.arange(n) + 0.5) / n)


def sample_lorentzian(size, gamma: float, *, seed: SeedLike = 0, center: float = 0.0) -> np.ndarray:
    """Random natural frequencies from a Lorentzian (Cauchy) of half-width ``γ``."""
    gamma = _checks.positive_float("gamma", gamma)
    center = _checks.real_float("center", center)
    return center + gamma * as_generator(seed).standard_cauchy(size)


def critical_coupling(g0: float) -> float:
    """Kuramoto's onset of synchrony ``K_c = 2 / (π g(0))`` for a symmetric unimodal density."""
    g0 = _checks.positive_float("g0", g0)
    return 2.0 / (math.pi * g0)


def ott_antonsen_r(K, gamma: float):
    """Stationary order parameter of the mean-field limit for Lorentzian frequencies.

    ``r = sqrt(1 − 2γ/K)`` for ``K > 2γ`` and ``r = 0`` otherwise (Ott & Antonsen 2008).
    Accepts a scalar or an array of couplings ``K ≥ 0``.
    """
    gamma = _checks.positive_float("gamma", gamma)
    K_arr = _checks.finite_array("K", K)
    if (K_arr < 0).any():
        raise ValueError("K must be >= 0")
    above = K_arr > 2.0 * gamma
    r = np.sqrt(np.where(above, 1.0 - 2.0 * gamma / np.where(above, K_arr, 1.0), 0.0))
    return float(r) if r.ndim == 0 else r


@dataclass
class KuramotoRun:
    """Result of :func:`simulate`.

    Attributes
    ----------
    t : array of shape ``(n_recorded,)``
        Recorded times.
    r : array of shape ``(*batch, n_recorded)``
        Order parameter at the recorded times.
    theta : array of shape ``(*batch, N)``
        Phases at the final time.
    """

    t: np.ndarray
    r: np.ndarray
    theta: np.ndarray

    def time_average(self, t_from: float) -> np.ndarray | float:
        """Mean of ``r(t)`` over recorded times ``t ≥ t_from`` (discard the transient)."""
        mask = self.t >= t_from
        if not mask.any():
            raise ValueError(f"t_from={t_from} is after the last recorded time {self.t[-1]}")
        mean = self.r[..., mask].mean(axis=-1)
        return float(mean) if np.ndim(mean) == 0 else mean


def simulate(
    omega,
    K,
    T: float,
    *,
    dt: float = 0.05,
    theta0=None,
    seed: SeedLike = 0,
    adjacency=None,
    record_every: int = 1,
    device=None,
) -> KuramotoRun:
    """Integrate the Kuramoto model with the classical Runge–Kutta method (RK4).

    Parameters
    ----------
    omega : array of shape ``(*batch, N)``
        Natural frequencies; leading axes are independent systems simulated together.
    K : float or array broadcastable to ``batch``
        Coupling strength(s), ``K ≥ 0``; an array sweeps couplings in one vectorised run.
    T : float
        Final time.
    dt : float
        Time step.
    theta0 : array of shape ``(*batch, N)`` or ``(N,)``, optional
        Initial phases; if omitted, drawn uniformly on ``[0, 2π)`` from ``seed``.
    seed : int or numpy Generator
        Seed of the initial phases (ignored when ``theta0`` is given). The phases are drawn once per
        oscillator of ``omega``, so a sweep over ``K`` starts every system from the same phases.
    adjacency : array or scipy sparse matrix of shape ``(N, N)``, optional
        Coupling graph ``A``; omitted means all-to-all.
    record_every : int
        Record ``r`` every this many steps.
    device : str or torch.device, optional
        Where to compute (CPU by default; ``dsnn.device.default()`` picks a GPU when present).
    """
    omega = _checks.finite_array("omega", omega)
    if omega.ndim == 0:
        raise ValueError("omega must have at least one axis (the oscillators)")
    n = omega.shape[-1]
    K_arr = _checks.finite_array("K", K)
    if (K_arr < 0).any():
        raise ValueError("K must be >= 0")
    T = _checks.positive_float("T", T)
    dt = _checks.positive_float("dt", dt)
    record_every = _checks.integer("record_every", record_every, minimum=1)
    batch = np.broadcast_shapes(omega.shape[:-1], K_arr.shape)

    if theta0 is None:
        # One draw per oscillator of omega: a sweep over K starts every system from the same phases.
        theta0 = as_generator(seed).uniform(0.0, 2.0 * np.pi, size=omega.shape)
    else:
        theta0 = _checks.finite_array("theta0", theta0)
        if theta0.shape[-1] != n:
            raise ValueError(
                f"theta0 must have {n} oscillators on its last axis, got shape {theta0.shape}"
            )

    # torch evaluates float64 sin/cos several times faster than numpy here (perf notes).
    device = torch.device("cpu") if device is None else torch.device(device)
    as_t = partial(torch.as_tensor, dtype=torch.float64, device=device)
    omega_t = as_t(np.broadcast_to(omega, (*batch, n)).copy())
    K_t = as_t(np.broadcast_to(K_arr, batch).copy())[..., None]
    theta = as_t(np.broadcast_to(theta0, (*batch, n)).copy())

    if adjacency is None:

        def mean_field(cos, sin):
            return cos.mean(dim=-1, keepdim=True), sin.mean(dim=-1, keepdim=True)

    else:
        if sp.issparse(adjacency):
            A = sp.csr_matrix(adjacency, dtype=float)
            if not np.isfinite(A.data).all():
                raise ValueError("adjacency must contain only finite numbers (no NaN or inf)")
        else:
            A = _checks.finite_array("adjacency", adjacency, ndim=2)
        if A.shape != (n, n):
            raise ValueError(f"adjacency must have shape ({n}, {n}), got {A.shape}")
        if sp.issparse(A):
            coo = A.tocoo()
            A_t = torch.sparse_coo_tensor(
                torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)),
                torch.from_numpy(coo.data),
                size=(n, n),
                dtype=torch.float64,
                check_invariants=True,
            ).coalesce()
            A_t = A_t.to(device)
        else:
            A_t = as_t(A)

        def mean_field(cos, sin):
            # One product A @ [cos; sin]ᵀ for the real and imaginary parts of z together.
            stacked = torch.stack([cos, sin]).reshape(-1, n)
            z = (A_t @ stacked.t()).t().reshape(2, *cos.shape) / n
            return z[0], z[1]

    def rhs(phase):
        cos, sin = torch.cos(phase), torch.sin(phase)
        z_re, z_im = mean_field(cos, sin)
        # K Im(z e^{-iθ}) = K (Im z cos θ − Re z sin θ)
        return omega_t + K_t * (z_im * cos - z_re * sin)

    def r_of(phase):
        return torch.hypot(torch.cos(phase).mean(-1), torch.sin(phase).mean(-1)).clamp(max=1.0)

    n_steps = max(1, round(T / dt))
    dt = T / n_steps
    times, rs = [0.0], [r_of(theta)]
    for step in range(1, n_steps + 1):
        k1 = rhs(theta)
        k2 = rhs(theta + 0.5 * dt * k1)
        k3 = rhs(theta + 0.5 * dt * k2)
        k4 = rhs(theta + dt * k3)
        theta = torch.remainder(theta + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4), 2 * np.pi)
        if step % record_every == 0 or step == n_steps:
            times.append(step * dt)
            rs.append(r_of(theta))
    return KuramotoRun(
        t=np.array(times),
        r=torch.stack(rs, dim=-1).cpu().numpy(),
        theta=theta.cpu().numpy(),
    )
