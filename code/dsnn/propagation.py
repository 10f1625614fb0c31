"""Gradients as a dynamical system: backpropagation, deep random networks, residual networks, flows.

Backpropagation runs a linear dynamical system backwards through the layers: the gradient with
respect to a hidden state is the transposed Jacobian of the forward map applied to the gradient one
layer up. Four views of it are computed here.

* **The adjoint equation.** For a neural ODE ``h' = f(t, h)`` the gradient ``a(t) = ∂ℓ/∂h(t)``
  solves the costate equation ``a' = −(∂f/∂h)ᵀ a`` backwards from ``a(T) = ∂ℓ/∂h(T)`` (Chen et
  al. 2018, Sec. 2, eq. 4); backpropagation through a residual network is its explicit Euler
  scheme. :func:`costate`, :func:`adjoint_vs_direct`.
* **Deep random networks.** For ``h^l = W^l φ(h^{l−1}) + b^l`` with ``W^l_ij ~ N(0, σ_w²/N)`` and
  ``b^l_i ~ N(0, σ_b²)`` the gradient is a product of random Jacobians
  ``D_l = W^l diag φ'(h^{l−1})``; its growth rate is a Lyapunov exponent. Mean-field theory
  (Poole et al. 2016; Schoenholz et al. 2017) predicts it from the variance map, its fixed
  point ``q*`` and ``χ_1``. :func:`variance_map`, :func:`fixed_point`, :func:`chi1`,
  :func:`critical_sigma_w`, :func:`jacobian_lyapunov`, :func:`phase_diagram`,
  :func:`gradient_norms`, :func:`gaussian_product_exponent`.
* **Residual networks.** A residual network that discretises a neural ODE has layer Jacobians
  ``1 + Δt Df``: its exponent per layer is ``O(Δt)``. :func:`residual_exponent`.
* **Continuous normalising flows.** Along ``h' = f(t, h)`` the log-density changes by
  ``−div f`` (Liouville; Chen et al. 2018, Theorem 1), so a flow is a generative model with an
  exact likelihood. :class:`GaussianMixture`, :class:`ProbabilityFlow`,
  :func:`flow_log_likelihood`, :func:`flow_inverse`.

Convention for the exponent
---------------------------
The exponent of a product of Jacobians is the growth rate of the **norm** (not of the squared
norm) per layer, ``λ = lim_L (1/L) log ‖D_L ⋯ D_1 v‖``, the convention of :mod:`dsnn.sgd_lyapunov`
(estimates are :class:`~dsnn.sgd_lyapunov.LyapunovEstimate` with batch-means error bars). Mean-field
theory gives the squared norm: ``E ‖D_l v‖² = χ_1 ‖v‖²`` per layer at the fixed point (Schoenholz
et al. 2017, their mean-field theory of backpropagation), and in the limit of infinite width the
per-layer factor concentrates at its mean, so ``λ → ½ log χ_1``. The transposed product
``D_1ᵀ ⋯ D_Lᵀ``, which is what backpropagation applies to a gradient, has the same singular values
and therefore the same top exponent.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.special
import torch
from torch import nn

from dsnn import _checks, neural_ode, stats
from dsnn import device as _device
from dsnn.sgd_lyapunov import LyapunovEstimate

__all__ = [
    "ACTIVATIONS",
    "GaussianMixture",
    "GradientComparison",
    "ProbabilityFlow",
    "PropagationDiagram",
    "adjoint_vs_direct",
    "chi1",
    "costate",
    "critical_sigma_w",
    "fixed_point",
    "flow_inverse",
    "flow_log_likelihood",
    "gaussian_product_exponent",
    "gradient_norms",
    "jacobian_lyapunov",
    "phase_diagram",
    "residual_exponent",
    "variance_map",
]

#: Activations for which the mean-field quantities and the random networks are implemented.
ACTIVATIONS = ("tanh", "linear")

#: Gauss–Hermite nodes in z for E g(√q z) at q ≤ 1/2, Gauss–Legendre nodes in x = √q z on [0, 40]
#: for q > 1 (see :func:`_gauss_sech`). The tests check 1e-12 against adaptive quadrature.
_N_HERMITE = 121
_N_LEGENDRE = 240
_X_MAX = 40.0
_Q_SWITCH = 0.5

#: Relative width at which the bisections stop.
_RTOL = 1e-15


# --------------------------------------------------------------------------------------------
# mean-field theory of deep random networks
# --------------------------------------------------------------------------------------------


def _activation(activation) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    return activation


@functools.lru_cache(maxsize=1)
def _nodes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hermite nodes/weights with ``Σ w g(z) ≈ E g(z)``, and Legendre ones for ``∫_0^X_MAX``."""
    z, wz = np.polynomial.hermite_e.hermegauss(_N_HERMITE)
    x, wx = np.polynomial.legendre.leggauss(_N_LEGENDRE)
    half = 0.5 * _X_MAX
    return z, wz / math.sqrt(2 * math.pi), half * (x + 1), half * wx


def _sech(x: np.ndarray) -> np.ndarray:
    """``1 / cosh x`` without overflow: ``2 e^{−|x|} / (1 + e^{−2|x|})``."""
    e = np.exp(-np.abs(x))
    return 2 * e / (1 + e * e)


def _gauss_tanh(kind: str, q: np.ndarray) -> np.ndarray:
    """``E tanh(√q z)²`` (``kind="tanh2"``) or ``E sech(√q z)⁴`` (``"sech4"``), ``z ~ N(0, 1)``.

    Gauss–Hermite quadrature in ``z`` is exact to rounding for ``q ≤ 1/2`` but slow to converge
    for large ``q``, where ``sech(√q z)`` is a spike of width ``1/√q`` at 0. There the integrals
    are written in ``x = √q z``, ``E sech(√q z)^k = 2 ∫_0^∞ sech(x)^k e^{−x²/(2q)} / √(2πq) dx``,
    smooth on the scale of ``sech`` and negligible beyond ``x = 40``, computed by Gauss–Legendre
    quadrature on ``[0, 40]`` (both rules from ``numpy.polynomial``), and
    ``E tanh² = 1 − E sech²``. Small ``q`` keeps ``tanh²`` itself, so that ``E tanh² ≈ q`` has
    full relative accuracy as ``q → 0``.
    """
    z, wz, x, wx = _nodes()
    q = np.asarray(q, dtype=float)
    u = np.sqrt(q)[..., None] * z
    small = (np.tanh(u) ** 2 if kind == "tanh2" else _sech(u) ** 4) @ wz
    q_big = np.maximum(q, _Q_SWITCH)[..., None]
    dens = np.exp(-(x**2) / (2 * q_big)) / np.sqrt(2 * math.pi * q_big)
    power = 2 if kind == "tanh2" else 4
    big = 2 * (_sech(x) ** power * dens) @ wx
    big = 1.0 - big if kind == "tanh2" else big
    return np.where(q <= _Q_SWITCH, small, big)


def _mean_phi_squared(activation: str, q: np.ndarray) -> np.ndarray:
    """``E φ(√q z)²``: ``q`` for the identity, by quadrature for tanh."""
    return np.asarray(q, dtype=float) if activation == "linear" else _gauss_tanh("tanh2", q)


def _mean_dphi_squared(activation: str, q: np.ndarray) -> np.ndarray:
    """``E φ'(√q z)²``: 1 for the identity, ``E sech⁴`` for tanh."""
    if activation == "linear":
        return np.ones_like(np.asarray(q, dtype=float))
    return _gauss_tanh("sech4", q)


def _nonnegative(name: str, value, *, allow_zero: bool) -> np.ndarray:
    """``value`` as a float array of real numbers ``> 0`` (or ``>= 0``)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return np.asarray(_checks.positive_float(name, value, allow_zero=allow_zero))
    array = _checks.finite_array(name, value)
    if (array < 0).any() or (not allow_zero and (array == 0).any()):
        allowed = ">= 0" if allow_zero else "> 0"
        bad = array[(array <= 0) if not allow_zero else (array < 0)].flat[0]
        raise ValueError(f"{name} must be {allowed} everywhere, got {bad!r}")
    return array


def _out(array: np.ndarray, *inputs) -> float | np.ndarray:
    """A float when every input was a scalar, else the array."""
    if all(np.ndim(x) == 0 for x in inputs):
        return float(array)
    return array


def _bisect(above: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray):
    """Vectorised bisection: the point where ``above(x)`` turns from True to False.

    Written out (rather than calling scipy's scalar root finders once per grid point) so that a
    whole grid of parameters is one array operation per step; ``above`` is True on the lower
    part of each bracket. Stops when every bracket is narrower than ``_RTOL`` times its upper
    end (at most about 1100 halvings, the exponent range of float64).
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    for _ in range(1100):
        open_ = hi - lo > _RTOL * np.abs(hi)
        if not open_.any():
            break
        mid = 0.5 * (lo + hi)
        up = above(mid)
        lo = np.where(open_ & up, mid, lo)
        hi = np.where(open_ & ~up, mid, hi)
    return 0.5 * (lo + hi)


def variance_map(q, sigma_w, sigma_b, activation: str = "tanh") -> float | np.ndarray:
    """The length (variance) map of a deep random network, one layer.

    ``V(q) = σ_w² E[φ(√q z)²] + σ_b²``, ``z ~ N(0, 1)`` (Poole et al. 2016, the length map;
    Schoenholz et al. 2017): if the pre-activations of layer ``l − 1`` are i.i.d. ``N(0, q)``,
    those of layer ``l`` have variance ``V(q)`` in the limit of infinite width. The Gaussian
    expectation is computed by Gauss–Hermite quadrature (``numpy.polynomial.hermite_e``) for
    ``q ≤ 1/2`` and by Gauss–Legendre quadrature in ``√q z`` above (see :func:`_gauss_tanh`).

    Parameters
    ----------
    q : float or array-like
        Variances ``>= 0``.
    sigma_w : float or array-like
        Weight scale ``σ_w > 0``: ``W_ij ~ N(0, σ_w² / N)``.
    sigma_b : float or array-like
        Bias scale ``σ_b >= 0``: ``b_i ~ N(0, σ_b²)``.
    activation : {"tanh", "linear"}
        ``φ``.

    Returns
    -------
    float or ndarray
        ``V(q)``, broadcast over the inputs.
    """
    activation = _activation(activation)
    q_ = _nonnegative("q", q, allow_zero=True)
    sw = _nonnegative("sigma_w", sigma_w, allow_zero=False)
    sb = _nonnegative("sigma_b", sigma_b, allow_zero=True)
    value = sw**2 * _mean_phi_squared(activation, q_) + sb**2
    return _out(value, q, sigma_w, sigma_b)


def fixed_point(sigma_w, sigma_b, activation: str = "tanh") -> float | np.ndarray:
    """The stable fixed point ``q*`` of the variance map :func:`variance_map`.

    ``q* = V(q*)`` (Poole et al. 2016). For tanh, ``V`` is increasing, ``V(0) = σ_b²`` and
    ``V(q) < σ_w² + σ_b²``, so the iteration from any ``q_0`` stays in ``[σ_b², σ_w² + σ_b²]``
    and converges to a fixed point there. With ``σ_b = 0`` the point ``q = 0`` is fixed; it is
    the only one (and stable) for ``σ_w ≤ 1``, since ``tanh(x)² < x²``, and unstable for
    ``σ_w > 1``, where the stable fixed point is the positive root. That root, or the root for
    ``σ_b > 0``, is found by bisection on ``[0, σ_w² + σ_b²]`` keeping ``V(q) > q`` on the lower
    side, so it is the one an iteration from small ``q`` reaches.

    For the linear activation ``V(q) = σ_w² q + σ_b²``, so ``q* = σ_b² / (1 − σ_w²)`` for
    ``σ_w < 1``; for ``σ_w ≥ 1`` the variance grows without bound and ``q* = inf`` (except
    ``σ_w = 1, σ_b = 0``, where every ``q`` is fixed and 0 is returned).
    """
    activation = _activation(activation)
    sw = _nonnegative("sigma_w", sigma_w, allow_zero=False)
    sb = _nonnegative("sigma_b", sigma_b, allow_zero=True)
    sw, sb = np.broadcast_arrays(sw, sb)
    if activation == "linear":
        with np.errstate(divide="ignore"):
            q = np.where(sw < 1, sb**2 / np.where(sw < 1, 1 - sw**2, 1.0), np.inf)
        q = np.where((sw == 1) & (sb == 0), 0.0, q)
        return _out(q, sigma_w, sigma_b)
    sw2, sb2 = sw**2, sb**2
    trivial = (sb == 0) & (sw <= 1)  # q* = 0: an empty bracket
    hi = np.where(trivial, 0.0, sw2 + sb2)
    q = _bisect(lambda q: sw2 * _mean_phi_squared(activation, q) + sb2 > q, np.zeros_like(hi), hi)
    return _out(q, sigma_w, sigma_b)


def chi1(sigma_w, sigma_b, activation: str = "tanh", *, q=None) -> float | np.ndarray:
    """``χ_1 = σ_w² E[φ'(√q* z)²]``, the mean squared gain of one layer's Jacobian.

    Poole et al. (2016) define ``χ_1`` as the slope of the correlation map at ``c = 1``: ``χ_1 < 1``
    is the ordered phase (nearby inputs converge), ``χ_1 > 1`` the chaotic one, ``χ_1 = 1`` the
    boundary. Schoenholz et al. (2017) show that it is also the factor by which the mean squared
    gradient grows per layer in backpropagation, so that gradients vanish in the ordered phase
    and explode in the chaotic phase. In this module's convention the Lyapunov exponent of the
    Jacobian products is ``½ log χ_1`` at infinite width.

    Parameters
    ----------
    sigma_w, sigma_b, activation
        As in :func:`variance_map`.
    q : float or array-like, optional
        Evaluate at this variance instead of the fixed point :func:`fixed_point`.
    """
    activation = _activation(activation)
    sw = _nonnegative("sigma_w", sigma_w, allow_zero=False)
    sb = _nonnegative("sigma_b", sigma_b, allow_zero=True)
    if q is None:
        q_ = np.asarray(fixed_point(sw, sb, activation))
    else:
        q_ = _nonnegative("q", q, allow_zero=True)
    shape = np.broadcast(sw, sb, q_).shape
    value = np.broadcast_to(sw**2 * _mean_dphi_squared(activation, q_), shape).astype(float)
    return _out(value, sigma_w, sigma_b, *(() if q is None else (q,)))


def critical_sigma_w(sigma_b, activation: str = "tanh") -> float | np.ndarray:
    """The order/chaos boundary: the ``σ_w`` at which ``χ_1(σ_w, σ_b) = 1``.

    For tanh and ``σ_b = 0`` it is ``σ_w = 1`` exactly (``q* = 0`` and ``φ'(0) = 1``); for
    ``σ_b > 0``, ``χ_1(1, σ_b) < 1`` (then ``q* > 0`` and ``φ'² < 1`` away from 0) and ``χ_1``
    grows with ``σ_w``, so the root is bracketed between 1 and a doubled upper end and found by
    bisection (Poole et al. 2016; Schoenholz et al. 2017). For the linear activation it is 1
    for every ``σ_b``.
    """
    activation = _activation(activation)
    sb = _nonnegative("sigma_b", sigma_b, allow_zero=True)
    if activation == "linear":
        return _out(np.ones_like(sb, dtype=float), sigma_b)
    hi = np.full(sb.shape, 2.0)
    for _ in range(60):
        low = chi1(hi, sb, activation) <= 1
        if not np.any(low):
            break
        hi = np.where(low, 2 * hi, hi)
    lo = np.ones_like(hi)
    root = _bisect(lambda s: chi1(s, sb, activation) < 1, lo, np.where(sb == 0, lo, hi))
    return _out(root, sigma_b)


def gaussian_product_exponent(width: int, sigma_w) -> float | np.ndarray:
    """Exact top Lyapunov exponent of products of i.i.d. Gaussian ``N × N`` matrices.

    For ``W_ij ~ N(0, σ_w²/N)`` i.i.d. (a deep *linear* random network),

        ``λ = ½ [log σ_w² + ψ(N/2) − log(N/2)]``,

    with ``ψ`` the digamma function. Derivation: for a unit vector ``u`` independent of ``W``,
    ``W u ~ N(0, (σ_w²/N) 1_N)`` by rotation invariance, so ``‖W u‖² = (σ_w²/N) X`` with
    ``X ~ χ²_N``, whatever ``u`` is; hence the renormalised iteration ``u ← W u / ‖W u‖`` has
    i.i.d. growth factors and ``λ = ½ E log ‖W u‖² = ½ [log(σ_w²/N) + log 2 + ψ(N/2)]`` using
    ``E log X = log 2 + ψ(N/2)`` (Cohen & Newman 1984 and Newman 1986 treat these products in
    general). Since ``ψ(x) − log x = −1/(2x) − 1/(12x²) + O(x⁻⁴)``, the finite-width correction
    to the mean-field value ``½ log σ_w²`` is ``−1/(2N) − 1/(6N²) + O(N⁻⁴)``: always negative.
    """
    width = _checks.integer("width", width, minimum=1)
    sw = _nonnegative("sigma_w", sigma_w, allow_zero=False)
    value = 0.5 * (np.log(sw**2) + scipy.special.digamma(width / 2) - math.log(width / 2))
    return _out(value, sigma_w)


# --------------------------------------------------------------------------------------------
# finite-width random networks: Lyapunov exponents of Jacobian products
# --------------------------------------------------------------------------------------------


@dataclass
class PropagationDiagram:
    """Exponents of the Jacobian products over a ``(σ_w, σ_b)`` grid (:func:`phase_diagram`).

    Attributes
    ----------
    sigma_w : ndarray of shape ``(n_w,)``
    sigma_b : ndarray of shape ``(n_b,)``
    value, stderr : ndarray of shape ``(n_w, n_b)``
        Measured top exponent per layer and its batch-means standard error.
    chi1 : ndarray of shape ``(n_w, n_b)``
        Mean-field ``χ_1`` at the grid points.
    width, depth, burn_in, n_chains : int
    activation : str
    """

    sigma_w: np.ndarray
    sigma_b: np.ndarray
    value: np.ndarray
    stderr: np.ndarray
    chi1: np.ndarray
    width: int
    depth: int
    burn_in: int
    n_chains: int
    activation: str

    @property
    def predicted(self) -> np.ndarray:
        """The mean-field exponent ``½ log χ_1`` at every grid point."""
        return 0.5 * np.log(self.chi1)

    def estimate(self, i: int, j: int) -> LyapunovEstimate:
        """The estimate at ``(sigma_w[i], sigma_b[j])``."""
        return LyapunovEstimate(
            float(self.value[i, j]),
            float(self.stderr[i, j]),
            self.depth,
            self.burn_in,
            self.n_chains,
        )

    def boundary(self) -> np.ndarray:
        """Measured order/chaos boundary: per ``σ_b``, the ``σ_w`` where the exponent crosses 0.

        The first upward crossing along ``sigma_w``, interpolated linearly between the two grid
        points around it; NaN where the exponent does not change sign on the grid.
        """
        out = np.full(self.sigma_b.shape, np.nan)
        for j in range(self.sigma_b.size):
            col = self.value[:, j]
            above = np.flatnonzero(col >= 0)
            if above.size == 0 or above[0] == 0:
                continue
            k = above[0]
            x0, x1, y0, y1 = self.sigma_w[k - 1], self.sigma_w[k], col[k - 1], col[k]
            out[j] = x0 + (x1 - x0) * (-y0) / (y1 - y0)
        return out

    def predicted_boundary(self) -> np.ndarray:
        """``σ_w`` with ``χ_1 = 1`` at every ``σ_b`` of the grid (:func:`critical_sigma_w`)."""
        return np.asarray(critical_sigma_w(self.sigma_b, self.activation), dtype=float)


def _grid_checks(depth, width, burn_in, n_chains, n_blocks, device, dtype):
    depth = _checks.integer("depth", depth, minimum=2)
    width = _checks.integer("width", width, minimum=1)
    burn_in = depth // 10 if burn_in is None else _checks.integer("burn_in", burn_in)
    n_chains = _checks.integer("n_chains", n_chains, minimum=1)
    n_blocks = _checks.integer("n_blocks", n_blocks, minimum=1)
    if depth - burn_in < n_blocks:
        raise ValueError(
            f"depth - burn_in must be at least n_blocks={n_blocks} (one layer per block), "
            f"got depth={depth} and burn_in={burn_in}"
        )
    if n_blocks * n_chains < 2:
        raise ValueError(
            f"need at least 2 blocks in all for an error bar, got n_blocks={n_blocks} and "
            f"n_chains={n_chains}"
        )
    target = torch.device("cpu") if device is None else _device.default(device)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return depth, width, burn_in, n_chains, n_blocks, target


def _seed(seed) -> int:
    return _checks.integer("seed", seed)


def _jacobian_logs(
    sw: np.ndarray,
    sb: np.ndarray,
    depth: int,
    width: int,
    activation: str,
    seed: int,
    n_chains: int,
    device: torch.device,
    dtype: torch.dtype,
) -> np.ndarray:
    """Per-layer ``log ‖D_l v^{l−1}‖`` of the renormalised tangent iteration, for many networks.

    ``C = len(sw)`` parameter pairs and ``S = n_chains`` independent networks. Network ``s`` of
    every pair uses the same standard normal matrices ``G^l`` and vectors ``β^l`` (common random
    numbers, so the grid is smooth): ``W^l = σ_w G^l / √N`` and ``b^l = σ_b β^l``. The input has
    i.i.d. ``N(0, q*)`` entries (already at the mean-field fixed point; for tanh with ``σ_b = 0``
    and ``σ_w ≤ 1`` that is ``q* = 0``: the states stay 0 and the network acts on tangent vectors
    as a linear one, ``D_l = W^l``). Per layer, one batched
    product ``G^l @ [φ(H), φ'(H) ⊙ V]`` of shape ``(S, N, N) @ (S, N, 2C)`` advances the states
    ``H`` and the tangent vectors ``V`` of all networks; then ``V`` is renormalised. Returns an
    array of shape ``(depth, S, C)``.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    n_conf = sw.size
    scale_w = torch.as_tensor(sw / math.sqrt(width), dtype=dtype, device=device)
    scale_b = torch.as_tensor(sb, dtype=dtype, device=device)
    v = torch.randn(n_chains, width, 1, generator=gen, device=device, dtype=dtype)
    V = (v / torch.linalg.vector_norm(v, dim=1, keepdim=True)).expand(-1, -1, n_conf).clone()
    linear = activation == "linear"
    if not linear:
        q0 = torch.as_tensor(np.sqrt(fixed_point(sw, sb, activation)), dtype=dtype, device=device)
        H = torch.randn(n_chains, width, 1, generator=gen, device=device, dtype=dtype) * q0
    logs = torch.empty(depth, n_chains, n_conf, dtype=torch.float64, device=device)
    for layer in range(depth):
        G = torch.randn(n_chains, width, width, generator=gen, device=device, dtype=dtype)
        if linear:
            V = (G @ V) * scale_w
        else:
            beta = torch.randn(n_chains, width, 1, generator=gen, device=device, dtype=dtype)
            tanh = torch.tanh(H)
            Y = G @ torch.cat([tanh, (1 - tanh**2) * V], dim=2)
            H = Y[..., :n_conf] * scale_w + beta * scale_b
            V = Y[..., n_conf:] * scale_w
        norm = V.square().sum(dim=1).sqrt()  # (S, C)
        logs[layer] = torch.log(norm.to(torch.float64))
        V = V / norm.unsqueeze(1)
    return logs.cpu().numpy()


def phase_diagram(
    sigma_w,
    sigma_b,
    depth: int,
    width: int,
    activation: str = "tanh",
    seed: int = 0,
    device: str | torch.device | None = None,
    *,
    n_chains: int = 2,
    burn_in: int | None = None,
    n_blocks: int = 10,
    dtype: torch.dtype = torch.float64,
) -> PropagationDiagram:
    """Top Lyapunov exponent of the Jacobian products over a ``(σ_w, σ_b)`` grid, batched.

    For every grid point, ``n_chains`` random networks ``h^l = W^l φ(h^{l−1}) + b^l`` of width
    ``N`` and the given depth (Poole et al. 2016; Schoenholz et al. 2017) are run with a tangent
    vector ``v^l = D_l v^{l−1}``, ``D_l = W^l diag φ'(h^{l−1})``, renormalised every layer; the
    exponent ``λ = lim (1/L) log ‖D_L ⋯ D_1 v‖`` is the mean of the logarithms of the
    per-layer growth factors after ``burn_in`` layers, with batch-means standard errors
    (:func:`dsnn.stats.batch_means`, blocks of layers pooled over the chains). All grid points
    advance together, one batched matrix product per layer (see :func:`_jacobian_logs`), with
    common random numbers across the grid: a grid point gets the same random numbers whatever
    the rest of the grid is. (In the chaotic phase the forward pass amplifies rounding, so a point
    computed alone and inside a larger grid agree within the error bars, not bit for bit.) Mean
    field predicts ``λ = ½ log χ_1`` (:func:`chi1`).

    Parameters
    ----------
    sigma_w, sigma_b : array-like of shape ``(n_w,)`` and ``(n_b,)``
        Grid values, ``σ_w > 0`` and ``σ_b >= 0``.
    depth : int
        Layers ``L`` per network, including the burn-in.
    width : int
        ``N``.
    activation : {"tanh", "linear"}
    seed : int
        Seeds the weights, biases, inputs and start vectors (a torch generator on ``device``).
    device : str, torch.device or None
        Where to compute; None is the CPU.
    n_chains : int
        Independent networks per grid point.
    burn_in : int or None
        Layers discarded before averaging (default ``depth // 10``).
    n_blocks : int
        Blocks of layers per network for the standard error.
    dtype : torch.dtype
        Floating type of the networks (the logarithms are summed in float64).
    """
    activation = _activation(activation)
    sw = _nonnegative("sigma_w", sigma_w, allow_zero=False).reshape(-1)
    sb = _nonnegative("sigma_b", sigma_b, allow_zero=True).reshape(-1)
    depth, width, burn_in, n_chains, n_blocks, target = _grid_checks(
        depth, width, burn_in, n_chains, n_blocks, device, dtype
    )
    grid_w, grid_b = np.meshgrid(sw, sb, indexing="ij")
    logs = _jacobian_logs(
        grid_w.ravel(),
        grid_b.ravel(),
        depth,
        width,
        activation,
        _seed(seed),
        n_chains,
        target,
        dtype,
    )
    value, stderr = stats.batch_means(logs[burn_in:], n_blocks)
    return PropagationDiagram(
        sigma_w=sw,
        sigma_b=sb,
        value=np.asarray(value).reshape(grid_w.shape),
        stderr=np.asarray(stderr).reshape(grid_w.shape),
        chi1=np.asarray(chi1(grid_w, grid_b, activation)),
        width=width,
        depth=depth,
        burn_in=burn_in,
        n_chains=n_chains,
        activation=activation,
    )


def jacobian_lyapunov(
    depth: int,
    width: int,
    sigma_w: float,
    sigma_b: float,
    activation: str = "tanh",
    seed: int = 0,
    device: str | torch.device | None = None,
    *,
    n_chains: int = 4,
    burn_in: int | None = None,
    n_blocks: int = 10,
    dtype: torch.dtype = torch.float64,
) -> LyapunovEstimate:
    """Top Lyapunov exponent per layer of the Jacobian product of a deep random network.

    ``λ = lim_L (1/L) log ‖D_L ⋯ D_1 v‖`` with ``D_l = W^l diag φ'(h^{l−1})`` along the forward
    pass ``h^l = W^l φ(h^{l−1}) + b^l``, ``W^l_ij ~ N(0, σ_w²/N)``, ``b^l_i ~ N(0, σ_b²)``. It is
    also the growth rate of backpropagated gradients, which are multiplied by the transposed
    product. Mean field (infinite width) predicts ``½ log χ_1`` (:func:`chi1`; Schoenholz et al.
    2017); for the linear activation the exact value at every width is
    :func:`gaussian_product_exponent`. One grid point of :func:`phase_diagram`; the arguments
    are described there.

    Returns
    -------
    LyapunovEstimate
        ``.value`` and its batch-means ``.stderr`` (``n_blocks × n_chains`` blocks).
    """
    sw = _checks.positive_float("sigma_w", sigma_w)
    sb = _checks.positive_float("sigma_b", sigma_b, allow_zero=True)
    diagram = phase_diagram(
        [sw],
        [sb],
        depth,
        width,
        activation,
        seed,
        device,
        n_chains=n_chains,
        burn_in=burn_in,
        n_blocks=n_blocks,
        dtype=dtype,
    )
    return diagram.estimate(0, 0)


def gradient_norms(
    depth: int,
    width: int,
    sigma_w,
    sigma_b,
    activation: str = "tanh",
    seed: int = 0,
    device: str | torch.device | None = None,
    *,
    dtype: torch.dtype = torch.float64,
) -> np.ndarray:
    """Norms of backpropagated gradients ``‖∂ℓ/∂h^l‖`` through deep random networks.

    One network per pair ``(σ_w, σ_b)`` (the arrays are broadcast; all pairs share the standard
    normal weights and biases, scaled by ``σ_w/√N`` and ``σ_b``), input with i.i.d. ``N(0, q*)``
    entries, loss ``ℓ = u · h^L`` with a random unit vector ``u``, and the gradient computed by
    autograd, i.e. by backpropagation ``∂ℓ/∂h^{l−1} = D_lᵀ ∂ℓ/∂h^l``. Then
    ``‖∂ℓ/∂h^L‖ = 1`` and ``log ‖∂ℓ/∂h^l‖ ≈ (L − l) ½ log χ_1`` in mean field (Schoenholz et al.
    2017): vanishing in the ordered phase, exploding in the chaotic one.

    Returns
    -------
    ndarray of shape ``(n_pairs, depth + 1)``
        Entry ``[c, l]`` is ``‖∂ℓ/∂h^l‖`` for pair ``c``, ``l = 0..L`` (``h^0`` the input).
    """
    activation = _activation(activation)
    depth = _checks.integer("depth", depth, minimum=1)
    width = _checks.integer("width", width, minimum=1)
    sw, sb = np.broadcast_arrays(
        _nonnegative("sigma_w", sigma_w, allow_zero=False),
        _nonnegative("sigma_b", sigma_b, allow_zero=True),
    )
    sw, sb = sw.reshape(-1), sb.reshape(-1)
    target = torch.device("cpu") if device is None else _device.default(device)
    gen = torch.Generator(device=target).manual_seed(_seed(seed))
    q_star = np.asarray(fixed_point(sw, sb, activation))
    q0 = np.sqrt(np.where(np.isfinite(q_star), q_star, 1.0))  # linear, sigma_w >= 1: unit input
    scale_w = torch.as_tensor(sw / math.sqrt(width), dtype=dtype, device=target)[:, None]
    scale_b = torch.as_tensor(sb, dtype=dtype, device=target)[:, None]
    x = torch.randn(1, width, generator=gen, device=target, dtype=dtype)
    h = (x * torch.as_tensor(q0, dtype=dtype, device=target)[:, None]).requires_grad_(True)
    states = [h]
    for _ in range(depth):
        G = torch.randn(width, width, generator=gen, device=target, dtype=dtype)
        beta = torch.randn(1, width, generator=gen, device=target, dtype=dtype)
        act = states[-1] if activation == "linear" else torch.tanh(states[-1])
        nxt = (act @ G.T) * scale_w + beta * scale_b
        nxt.retain_grad()
        states.append(nxt)
    u = torch.randn(width, generator=gen, device=target, dtype=dtype)
    loss = (states[-1] @ (u / torch.linalg.vector_norm(u))).sum()
    loss.backward()
    norms = torch.stack([torch.linalg.vector_norm(s.grad, dim=1) for s in states], dim=1)
    return norms.detach().cpu().numpy()


# --------------------------------------------------------------------------------------------
# residual networks
# --------------------------------------------------------------------------------------------


def _resnet_jacobian(f, x0: torch.Tensor, T: float, n_layers: int) -> torch.Tensor:
    """``DΦ_L(x0)`` of :func:`dsnn.neural_ode.euler_resnet`, by autograd: ``(n, m, m)``."""
    h0 = x0.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = neural_ode.euler_resnet(f, h0, T, n_layers)
        rows = [
            torch.autograd.grad(out[:, i].sum(), h0, retain_graph=i < out.shape[1] - 1)[0]
            for i in range(out.shape[1])
        ]
    return torch.stack(rows, dim=1)


def residual_exponent(f, x0, T: float, n_layers: int) -> np.ndarray:
    """Growth rate per layer of a residual network: ``(1/L) log ‖DΦ_L(x0)‖₂``.

    ``Φ_L`` is the depth-``L`` residual network ``h_{k+1} = h_k + Δt f(t_k, h_k)``,
    ``Δt = T/L`` (:func:`dsnn.neural_ode.euler_resnet`), whose layer Jacobians are
    ``1 + Δt Df(t_k, h_k)``; ``‖·‖₂`` is the largest singular value, the most a gradient can
    grow (or, reading it backwards, be amplified) through the network. As ``L → ∞``,
    ``DΦ_L(x0) → Dφ_T(x0)``, the Jacobian of the ODE's flow map
    (:func:`dsnn.neural_ode.flow_jacobian`), so the rate is
    ``(Δt/T) log ‖Dφ_T(x0)‖₂ + O(Δt²)``: exponent 0 in the continuum limit, at first order in
    the step.

    Parameters
    ----------
    f : callable ``(t, h) -> dh/dt``
        Vector field (torchdiffeq convention), batched.
    x0 : tensor of shape ``(n, m)``
        Inputs.
    T : float
        Depth-time.
    n_layers : int
        ``L``.

    Returns
    -------
    ndarray of shape ``(n,)``
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    x0 = _checks.finite_tensor("x0", x0, ndim=2)
    T = _checks.positive_float("T", T)
    n_layers = _checks.integer("n_layers", n_layers, minimum=1)
    jac = _resnet_jacobian(f, x0, T, n_layers)
    top = torch.linalg.matrix_norm(jac, ord=2)
    return (torch.log(top) / n_layers).detach().cpu().numpy()


# --------------------------------------------------------------------------------------------
# backpropagation as the adjoint equation
# --------------------------------------------------------------------------------------------


def costate(
    f, x0, T: float, grad_final, *, rtol: float = 1e-10, atol: float = 1e-12
) -> torch.Tensor:
    """The adjoint (costate) ``a(0) = ∂ℓ/∂h(0)``, from ``a' = −(∂f/∂h)ᵀ a`` solved backwards.

    Chen et al. (2018, Sec. 2, eq. 4): for ``h' = f(t, h)`` on ``[0, T]`` and a loss ``ℓ(h(T))``,
    ``a(t) = ∂ℓ/∂h(t)`` satisfies ``a'(t) = −(∂f/∂h(t, h(t)))ᵀ a(t)`` with ``a(T) = ∂ℓ/∂h(T)``.
    Here ``h(T)`` comes from a forward solve (:func:`dsnn.neural_ode.ode_flow`), then ``(h, a)``
    is integrated backwards in time from ``(h(T), a(T))``, recomputing ``h`` on the way as the
    adjoint method does; each step of the backward solve needs one vector-Jacobian product
    ``aᵀ ∂f/∂h`` (autograd). The result equals ``Dφ_T(x0)ᵀ a(T)``.

    Parameters
    ----------
    f : callable ``(t, h) -> dh/dt``
        Batched vector field.
    x0 : tensor of shape ``(n, m)``
        Initial states.
    T : float
        Final time.
    grad_final : tensor of shape ``(n, m)``
        ``a(T) = ∂ℓ/∂h(T)``.
    rtol, atol : float
        Tolerances of both solves.

    Returns
    -------
    tensor of shape ``(n, m)``
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    h0 = _checks.finite_tensor("x0", x0, ndim=2).detach()
    aT = _checks.finite_tensor("grad_final", grad_final, ndim=2).detach().to(h0)
    if aT.shape != h0.shape:
        raise ValueError(
            f"grad_final must have the shape of x0, {tuple(h0.shape)}, got {tuple(aT.shape)}"
        )
    T = _checks.positive_float("T", T)
    m = h0.shape[1]
    with torch.no_grad():
        hT = neural_ode.ode_flow(f, h0, T, rtol=rtol, atol=atol)

    def backwards(s, z):  # time s runs from 0 to T while t = T − s runs from T to 0
        t = T - s
        with torch.enable_grad():
            h = z[:, :m].detach().requires_grad_(True)
            fh = f(t, h)
            (vjp,) = torch.autograd.grad(fh, h, grad_outputs=z[:, m:].detach())
        return torch.cat([-fh.detach(), vjp], dim=1)

    z = neural_ode.ode_flow(backwards, torch.cat([hT, aT], dim=1), T, rtol=rtol, atol=atol)
    return z[:, m:]


@dataclass
class GradientComparison:
    """Direct backpropagation through the solver against the adjoint method, one training step.

    Attributes
    ----------
    max_abs_diff, rel_diff : float
        ``max |g_adj − g_dir|`` and ``‖g_adj − g_dir‖ / ‖g_dir‖`` over all parameters.
    grad_norm : float
        ``‖g_dir‖``.
    nfe_forward, nfe_backward : dict
        Vector-field evaluations in the forward solve and in the backward pass, keyed by
        ``"direct"`` and ``"adjoint"``.
    memory_bytes : dict
        Bytes the forward pass stores for the backward pass
        (:func:`dsnn.neural_ode.backward_memory`).
    seconds : dict
        Median wall time of forward plus backward over the repeats.
    """

    max_abs_diff: float
    rel_diff: float
    grad_norm: float
    nfe_forward: dict
    nfe_backward: dict
    memory_bytes: dict
    seconds: dict


def adjoint_vs_direct(
    X,
    y,
    *,
    dim_phase: int | None = None,
    width: int = 16,
    seed: int = 0,
    method: str = "dopri5",
    rtol: float = 1e-9,
    atol: float = 1e-11,
    repeats: int = 3,
) -> GradientComparison:
    """Gradients of a neural ODE's loss by direct backpropagation and by the adjoint method.

    Two copies of :class:`dsnn.neural_ode.NeuralODE` with the same seed (identical parameters),
    one with ``adjoint=True`` (torchdiffeq's ``odeint_adjoint``, which solves the costate
    equation of :func:`costate` backwards together with the parameter adjoint
    ``−aᵀ ∂f/∂θ``; Chen et al. 2018, Sec. 2 and Algorithm 1), compute the gradient of the
    mean-squared error ``mean ‖Φ(X) − y‖²``. Both are approximations of the same derivative; they
    agree up to the solver tolerances.

    Parameters
    ----------
    X : array-like of shape ``(n, d)``
    y : array-like of shape ``(n, q)`` or ``(n,)``
    dim_phase : int or None
        Phase-space dimension ``m`` (default ``d + 1``).
    width, seed : int
        Hidden width and seed of the default vector field.
    method : str
        torchdiffeq solver.
    rtol, atol : float
        Solver tolerances (both solves).
    repeats : int
        Timed repetitions (the median is reported).
    """
    X = _checks.finite_tensor("X", X, ndim=2).to(torch.float64)
    y = _checks.finite_tensor("y", y, ndim=(1, 2)).to(torch.float64)
    y = y[:, None] if y.ndim == 1 else y
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y must have the same number of samples, got {X.shape[0]} and {y.shape[0]}"
        )
    d, q = X.shape[1], y.shape[1]
    m = d + 1 if dim_phase is None else _checks.integer("dim_phase", dim_phase, minimum=1)
    repeats = _checks.integer("repeats", repeats, minimum=1)
    grads, nfe_f, nfe_b, memory, seconds = {}, {}, {}, {}, {}
    for name, flag in (("direct", False), ("adjoint", True)):
        model = neural_ode.NeuralODE(
            d, m, q, method=method, adjoint=flag, width=width, seed=seed, rtol=rtol, atol=atol
        )
        params = [p for p in model.parameters() if p.requires_grad]
        times = []
        for _ in range(repeats):
            model.nfe = 0
            start = time.perf_counter()
            loss = ((model(X) - y) ** 2).sum(dim=1).mean()
            forward_calls = model.nfe
            g = torch.autograd.grad(loss, params)
            times.append(time.perf_counter() - start)
        grads[name] = torch.cat([gi.reshape(-1) for gi in g])
        nfe_f[name], nfe_b[name] = forward_calls, model.nfe - forward_calls
        memory[name] = neural_ode.backward_memory(model, X)
        seconds[name] = float(np.median(times))
    diff = grads["adjoint"] - grads["direct"]
    norm = float(torch.linalg.vector_norm(grads["direct"]))
    return GradientComparison(
        max_abs_diff=float(diff.abs().max()),
        rel_diff=float(torch.linalg.vector_norm(diff)) / max(norm, 1e-300),
        grad_norm=norm,
        nfe_forward=nfe_f,
        nfe_backward=nfe_b,
        memory_bytes=memory,
        seconds=seconds,
    )


# --------------------------------------------------------------------------------------------
# continuous normalising flows
# --------------------------------------------------------------------------------------------


class GaussianMixture:
    """A Gaussian mixture ``p_0 = Σ_k w_k N(μ_k, Σ_k)`` and its heat-flow smoothing ``p_t``.

    ``p_t = Σ_k w_k N(μ_k, Σ_k + t 1)`` is the law of ``X_0 + B_t`` for ``X_0 ~ p_0`` and a
    Brownian motion ``B``: the marginals of the SDE ``dX = dW`` (the variance-exploding SDE of
    Song et al. 2021 with ``σ(t)² = t``). Densities and scores are exact (log-sum-exp over the
    components).

    Parameters
    ----------
    weights : array-like of shape ``(K,)``
        Positive; normalised to sum 1.
    means : array-like of shape ``(K, d)``
    covariances : array-like of shape ``(K, d, d)``
        Symmetric positive definite.
    """

    def __init__(self, weights, means, covariances):
        w = _checks.finite_array("weights", weights, ndim=1)
        if (w <= 0).any():
            raise ValueError("weights must be > 0")
        mu = _checks.finite_array("means", means, ndim=2)
        cov = _checks.finite_array("covariances", covariances, ndim=3)
        k, d = mu.shape
        if w.shape != (k,) or cov.shape != (k, d, d):
            raise ValueError(
                f"weights, means and covariances must have shapes (K,), (K, d), (K, d, d); got "
                f"{w.shape}, {mu.shape}, {cov.shape}"
            )
        for i, c in enumerate(cov):
            _checks.symmetric_matrix(f"covariances[{i}]", c)
            if np.linalg.eigvalsh(c)[0] <= 0:
                raise ValueError(f"covariances[{i}] must be positive definite")
        self.weights = torch.as_tensor(w / w.sum())
        self.means = torch.as_tensor(mu)
        self.covariances = torch.as_tensor(cov)
        self.dim = d

    def _x(self, x) -> torch.Tensor:
        x = _checks.finite_tensor("x", x, ndim=2).to(torch.float64)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        return x

    def _components(self, x: torch.Tensor, t: float):
        """Log-weights plus component log-densities ``(n, K)``, and the precision-residuals."""
        cov = self.covariances + t * torch.eye(self.dim, dtype=torch.float64)
        chol = torch.linalg.cholesky(cov)  # (K, d, d)
        diff = x[:, None, :] - self.means[None]  # (n, K, d)
        sol = torch.cholesky_solve(diff.permute(1, 2, 0), chol).permute(2, 0, 1)  # Σ⁻¹(x − μ)
        maha = (diff * sol).sum(-1)
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        logp = -0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))
        return torch.log(self.weights) + logp, sol

    def log_density(self, x, t: float = 0.0) -> torch.Tensor:
        """``log p_t(x)`` for a batch ``x`` of shape ``(n, d)``."""
        t = _checks.positive_float("t", t, allow_zero=True)
        terms, _ = self._components(self._x(x), t)
        return torch.logsumexp(terms, dim=1)

    def score(self, x, t: float = 0.0) -> torch.Tensor:
        """``∇ log p_t(x) = −Σ_k r_k(x) (Σ_k + t)^{-1} (x − μ_k)``, ``r_k`` the responsibilities."""
        t = _checks.positive_float("t", t, allow_zero=True)
        terms, sol = self._components(self._x(x), t)
        resp = torch.softmax(terms, dim=1)
        return -(resp[..., None] * sol).sum(dim=1)

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """``n`` samples of ``p_0``."""
        n = _checks.integer("n", n, minimum=1)
        gen = torch.Generator().manual_seed(_seed(seed))
        comp = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        z = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.covariances)
        return self.means[comp] + (chol[comp] @ z[..., None])[..., 0]


class ProbabilityFlow(nn.Module):
    """The probability-flow ODE ``h' = −½ ∇ log p_t(h)`` of the heat flow of a mixture.

    Song et al. (2021): the probability-flow ODE ``dx/dt = f(x, t) − ½ g(t)² ∇ log p_t(x)`` has
    the same marginals ``p_t`` as the SDE ``dx = f dt + g dW``. With ``f = 0``, ``g = 1`` (the
    SDE of :class:`GaussianMixture`) its flow carries ``p_0`` to ``p_T``, a nearly Gaussian
    density for large ``T``; run backwards it turns Gaussian noise into samples of ``p_0``: a
    continuous normalising flow with an exact score instead of a trained one.
    """

    def __init__(self, mixture: GaussianMixture):
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        self.mixture = mixture

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        t_ = float(torch.clamp(torch.as_tensor(t), min=0.0))
        return -0.5 * self.mixture.score(h, t_).to(h)


def flow_log_likelihood(
    f,
    x,
    T: float,
    log_prior: Callable[[torch.Tensor], torch.Tensor],
    *,
    rtol: float = 1e-9,
    atol: float = 1e-11,
) -> torch.Tensor:
    """``log p_0(x) = log p_T(φ_T(x)) + ∫_0^T div f(t, φ_t(x)) dt``: a flow's exact likelihood.

    The instantaneous change of variables of Chen et al. (2018, Theorem 1),
    ``d/dt log p_t(h(t)) = −div f(t, h(t))``, which is Liouville's formula
    ``det Dφ_T = exp ∫ div f`` (:func:`dsnn.neural_ode.divergence_integral`) inserted into the
    change-of-variables formula ``p_0(x) = p_T(φ_T(x)) det Dφ_T(x)``.

    Parameters
    ----------
    f : callable ``(t, h) -> dh/dt``
        Vector field (batched).
    x : tensor of shape ``(n, d)``
        Points at ``t = 0`` (data).
    T : float
        Final time.
    log_prior : callable
        ``log p_T`` on a batch ``(n, d)``, returning ``(n,)``.
    rtol, atol : float
        Solver tolerances.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    if not callable(log_prior):
        raise TypeError(f"log_prior must be callable, got {type(log_prior).__name__}")
    x = _checks.finite_tensor("x", x, ndim=2)
    T = _checks.positive_float("T", T)
    with torch.no_grad():
        z = neural_ode.ode_flow(f, x, T, rtol=rtol, atol=atol)
    divergence = neural_ode.divergence_integral(f, x, T, rtol=rtol, atol=atol)
    return log_prior(z).reshape(-1) + divergence


def flow_inverse(f, z, T: float, *, rtol: float = 1e-9, atol: float = 1e-11) -> torch.Tensor:
    """``φ_T^{-1}(z)``: integrate ``h' = f(t, h)`` backwards from ``t = T`` to 0.

    Solved forwards in ``s = T − t`` for the field ``−f(T − s, h)`` with
    :func:`dsnn.neural_ode.ode_flow`. Applied to samples of ``p_T`` it gives samples of ``p_0``.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    z = _checks.finite_tensor("z", z, ndim=2)
    T = _checks.positive_float("T", T)
    with torch.no_grad():
        return neural_ode.ode_flow(lambda s, h: -f(T - s, h), z, T, rtol=rtol, atol=atol)
