"""Kuramoto oscillators: many units, one order parameter, and the mean-field limit.

Model (Kuramoto 1975; Strogatz 2000), with an optional coupling graph ``A`` and optional noise:

    dθ_i = [ω_i + (K/N) Σ_j A_ij sin(θ_j − θ_i)] dt + sqrt(2D) dW_i,        i = 1, ..., N.

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
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy import integrate, optimize, special, stats

from dsnn import _checks
from dsnn.rng import SeedLike, as_generator

_METHODS = ("rk4", "euler")
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


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


def critical_coupling(
    distribution: str | Callable,
    *,
    width: float | None = None,
    noise: float = 0.0,
    eigenvalue: float = 1.0,
) -> float:
    """Coupling at which the incoherent state of the ``N → ∞`` Kuramoto model loses stability.

    Without noise and on the complete graph this is Kuramoto's ``K_c = 2 / (π g(0))`` for an even,
    unimodal frequency density ``g`` (Kuramoto 1975; Strogatz 2000): ``2γ`` for a
    Lorentzian of half-width ``γ`` and ``σ sqrt(8/π)`` for a Gaussian of standard deviation ``σ``.

    With noise of intensity ``D`` (``dθ = ... dt + sqrt(2D) dW``), linearising the Fokker–Planck
    equation at the uniform density gives the first Fourier mode the growth rate
    ``λ = −D + (K/2) ∫ g(ω) / (λ + D + iω) dω``; at onset (``λ = 0``, real for even ``g``)

        K_c = 2 / ∫ g(ω) D / (D² + ω²) dω,

    which is ``2D`` for identical oscillators (``g = δ``) and ``2(γ + D)`` for a Lorentzian
    (our derivation; the Lorentzian case follows because the convolution of two Cauchy densities
    is a Cauchy density). As ``D → 0`` the kernel ``D / (D² + ω²)`` tends to ``π δ(ω)`` and the
    noiseless formula returns.

    On a graph with limit kernel ``W`` (graphon, or any kernel whose eigenfunction for its top
    eigenvalue ``ζ_max`` is a positive function) the coupling enters only as ``K ζ``, so every
    formula above is divided by ``eigenvalue = ζ_max``. That the transition points of the Kuramoto
    model on graphs depend on the extreme eigenvalues of the kernel operator is Chiba & Medvedev
    (2019); the explicit ``1/ζ_max`` scaling written here is our linearisation.

    Parameters
    ----------
    distribution : {"lorentzian", "gaussian", "identical"} or callable
        The frequency density ``g``: a named family (its ``width`` is ``γ`` or ``σ``), identical
        oscillators (no width; needs ``noise > 0`` for a positive threshold), or a callable
        density ``g(ω)`` assumed even and unimodal.
    width : float, optional
        ``γ`` (Lorentzian half-width) or ``σ`` (Gaussian standard deviation).
    noise : float
        Noise intensity ``D ≥ 0``.
    eigenvalue : float
        Top eigenvalue ``ζ_max > 0`` of the coupling kernel (``1`` for all-to-all).
    """
    noise = _checks.positive_float("noise", noise, allow_zero=True)
    eigenvalue = _checks.positive_float("eigenvalue", eigenvalue)
    names = ("lorentzian", "gaussian", "identical")
    if isinstance(distribution, str):
        if distribution not in names:
            raise ValueError(
                f"distribution must be one of {names} or a callable density, got {distribution!r}"
            )
        if distribution == "identical":
            if width is not None:
                raise ValueError("width must be None for identical oscillators")
            return 2.0 * noise / eigenvalue
        if width is None:
            raise ValueError(f"width is required for distribution={distribution!r}")
        width = _checks.positive_float("width", width)
        if distribution == "lorentzian":
            return 2.0 * (width + noise) / eigenvalue
        density = stats.norm(scale=width).pdf
    elif callable(distribution):
        if width is not None:
            raise ValueError("width must be None when distribution is a callable density")
        density = distribution
    else:
        raise TypeError(
            "distribution must be a string or a callable density, "
            f"got {type(distribution).__name__}"
        )
    if noise == 0.0:
        g0 = float(density(0.0))
        if not math.isfinite(g0) or g0 <= 0:
            raise ValueError(f"the density must be positive and finite at 0, got g(0) = {g0!r}")
        return 2.0 / (math.pi * g0 * eigenvalue)
    # ∫ g(ω) D/(D² + ω²) dω with ω = D tan(φ) becomes ∫ g(D tan φ) dφ over (−π/2, π/2): a
    # bounded integrand, accurate for every D (the kernel is a narrow spike for small D).
    integral, _ = integrate.quad(
        lambda phi: density(noise * np.tan(phi)), -np.pi / 2, np.pi / 2, limit=200
    )
    return 2.0 / (integral * eigenvalue)


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


def bessel_ratio(x):
    """``I₁(x) / I₀(x)`` (modified Bessel functions), computed from scaled Bessel functions."""
    x = _checks.finite_array("x", x)
    return special.i1e(x) / special.i0e(x)


def self_consistent_r(K, noise: float, *, eigenvalue: float = 1.0):
    """Stationary order parameter of identical noisy oscillators in the mean-field limit.

    The stationary density of ``dθ = K r sin(ψ − θ) dt + sqrt(2D) dW`` is the von Mises density
    ``∝ exp((K r / D) cos(θ − ψ))``, whose own order parameter is ``I₁(Kr/D) / I₀(Kr/D)``. So
    ``r`` solves

        r = I₁(K ζ r / D) / I₀(K ζ r / D)

    (``ζ = eigenvalue`` for a graph whose limit kernel is the constant ``ζ``). Since
    ``I₁(x)/I₀(x) = x/2 + O(x³)``, a root ``r > 0`` exists exactly when ``K ζ > 2D``
    (our derivation of the classical noisy Kuramoto threshold). Returns the positive root above
    threshold and ``0`` below; accepts a scalar or an array of ``K ≥ 0``.
    """
    noise = _checks.positive_float("noise", noise)
    eigenvalue = _checks.positive_float("eigenvalue", eigenvalue)
    K_arr = _checks.finite_array("K", K)
    if (K_arr < 0).any():
        raise ValueError("K must be >= 0")
    out = np.zeros(K_arr.shape)
    for index, k in np.ndenumerate(K_arr):
        a = k * eigenvalue / noise  # r = I1(a r)/I0(a r)
        if a <= 2.0:
            continue
        # f(r) = ratio(a r) - r is positive just above 0 (slope a/2 - 1 > 0) and negative at 1.
        out[index] = optimize.brentq(lambda r, a=a: bessel_ratio(a * r) - r, 1e-12, 1.0, xtol=1e-14)
    return float(out) if out.ndim == 0 else out


@dataclass
class KuramotoRun:
    """Result of :func:`simulate`.

    Attributes
    ----------
    t : array of shape ``(n_recorded,)``
        Recorded times (``0`` first, ``t_final`` last).
    r : array of shape ``(*batch, n_recorded)``
        Order parameter at the recorded times.
    theta : array of shape ``(*batch, n_recorded, N)`` or None
        Phases at the recorded times, on the real line (not reduced modulo ``2π``, so phase
        velocities and winding numbers can be read off); ``None`` if ``keep_phases=False``.
    theta_final : array of shape ``(*batch, N)``
        Phases at ``t_final``.
    """

    t: np.ndarray
    r: np.ndarray
    theta: np.ndarray | None
    theta_final: np.ndarray

    def time_average(self, t_from: float) -> np.ndarray | float:
        """Mean of ``r(t)`` over recorded times ``t ≥ t_from`` (discard the transient)."""
        mask = self.t >= t_from
        if not mask.any():
            raise ValueError(f"t_from={t_from} is after the last recorded time {self.t[-1]}")
        mean = self.r[..., mask].mean(axis=-1)
        return float(mean) if np.ndim(mean) == 0 else mean


def _as_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")


def _graph_operator(graph, n: int, batch: tuple, dtype, device):
    """Return ``mean_field(cos, sin) -> (Re z, Im z)`` for the coupling graph (None: all-to-all)."""
    if graph is None:

        def mean_field(cos, sin):
            return cos.mean(dim=-1, keepdim=True), sin.mean(dim=-1, keepdim=True)

        return mean_field

    if sp.issparse(graph):
        A = sp.csr_array(graph, dtype=float)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"graph must be a square matrix, got shape {A.shape}")
        if A.shape != (n, n):
            raise ValueError(f"graph must have shape ({n}, {n}), got {A.shape}")
        if not np.isfinite(A.data).all():
            raise ValueError("graph must contain only finite numbers (no NaN or inf)")
        A.sum_duplicates()
        # int32 indices: torch's CSR product runs 2-4x faster with them than with int64 here.
        index_dtype = torch.int32 if A.nnz < 2**31 - 1 else torch.int64
        with warnings.catch_warnings():  # torch marks its CSR tensors as a beta feature
            warnings.simplefilter("ignore", UserWarning)
            A_t = torch.sparse_csr_tensor(
                torch.from_numpy(A.indptr.astype(np.int64)).to(index_dtype),
                torch.from_numpy(A.indices.astype(np.int64)).to(index_dtype),
                torch.from_numpy(A.data).to(dtype),
                size=(n, n),
                device=device,
            )
        n_batch = int(np.prod(batch, dtype=int))

        def mean_field(cos, sin):
            # One CSR product A @ [cos, sin] (N x 2B) for real and imaginary parts of z together.
            stacked = torch.stack([cos, sin]).reshape(2 * n_batch, n).t().contiguous()
            z = (A_t @ stacked).t().reshape(2, *cos.shape) / n
            return z[0], z[1]

        return mean_field

    A = _checks.finite_array("graph", graph)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"graph must be a square matrix, got shape {A.shape}")
    if A.shape != (n, n):
        raise ValueError(f"graph must have shape ({n}, {n}), got {A.shape}")
    A_t = torch.as_tensor(A, dtype=dtype, device=device)

    def mean_field(cos, sin):
        # (2B x N) @ Aᵀ rather than A @ (N x 2B): torch's skinny product is slow (perf notes).
        stacked = torch.stack([cos, sin]).reshape(-1, n)
        z = (stacked @ A_t.t()).reshape(2, *cos.shape) / n
        return z[0], z[1]

    return mean_field


def simulate(
    theta0,
    omega,
    coupling,
    graph=None,
    *,
    t_final: float,
    dt: float,
    method: str = "rk4",
    noise=0.0,
    seed: SeedLike = None,
    record_every: int = 1,
    keep_phases: bool = True,
    device=None,
    dtype="float64",
) -> KuramotoRun:
    """Integrate the Kuramoto model, deterministic (RK4) or noisy (Euler–Maruyama).

    Solves ``dθ_i = [ω_i + (K/N) Σ_j A_ij sin(θ_j − θ_i)] dt + sqrt(2D) dW_i`` (Kuramoto 1975;
    Strogatz 2000; here with a graph and noise added). The coupling is computed as
    ``K Im(z_i e^{−iθ_i})`` with ``z_i = (1/N) Σ_j A_ij e^{iθ_j}``: ``O(N)`` through the order
    parameter for all-to-all coupling, one dense or sparse product ``A @ [cos θ, sin θ]`` per
    stage on a graph. Leading (batch) axes of ``theta0``, ``omega``, ``coupling`` and ``noise``
    broadcast against each other, so a sweep over couplings, noise levels, frequency samples or
    initial conditions is one vectorised run.

    The integrator is written here rather than taken from a library because every stage is one
    batched tensor expression (torch evaluates float64 sin/cos several times faster than numpy
    on these machines) and because the noisy model needs Euler–Maruyama, which the ODE libraries
    do not provide.

    Parameters
    ----------
    theta0 : array of shape ``(*batch, N)`` or ``(N,)``, or None
        Initial phases. ``None`` draws them uniformly on ``[0, 2π)`` from ``seed``, one per entry of
        ``omega`` (so a sweep over couplings starts every system from the same phases).
    omega : array of shape ``(*batch, N)`` or ``(N,)``
        Natural frequencies.
    coupling : float or array broadcastable to ``batch``
        Coupling strength(s) ``K ≥ 0``.
    graph : None, array of shape ``(N, N)`` or scipy sparse matrix, optional
        Coupling weights ``A_ij`` (oscillator ``i`` listens to ``j``; any real weights, directed
        graphs allowed). ``None`` means all-to-all, ``A_ij = 1``.
    t_final : float
        Final time ``> 0``.
    dt : float
        Time step ``> 0``; adjusted to ``t_final / round(t_final / dt)`` so that the last step ends
        at ``t_final``.
    method : {"rk4", "euler"}
        Classical Runge–Kutta (order 4) or explicit Euler, which with ``noise > 0`` is the
        Euler–Maruyama scheme (strong order 1/2). RK4 is not a scheme for SDEs: ``method="rk4"``
        with ``noise > 0`` is an error.
    noise : float or array broadcastable to ``batch``
        Noise intensity ``D ≥ 0`` (the phase diffusion coefficient).
    seed : int, numpy Generator or None
        Seeds the initial phases (when ``theta0`` is None) and then the noise. Same seed, same run.
    record_every : int
        Record ``r`` (and the phases) every this many steps; the final time is always recorded.
    keep_phases : bool
        Keep the phases at the recorded times (memory ``n_recorded × N × batch``); if false, only
        the final phases are returned.
    device : str or torch.device, optional
        Where to compute (CPU by default; ``dsnn.device.default()`` picks a GPU when present).
    dtype : {"float64", "float32"}
        Floating point precision; float32 is 2-3x faster for large ``N`` (phase resolution
        about ``1e-7 |θ|``).

    Returns
    -------
    KuramotoRun
        Times, order parameter, recorded phases and final phases (numpy arrays).
    """
    omega = _checks.finite_array("omega", omega)
    if omega.ndim == 0:
        raise ValueError("omega must have at least one axis (the oscillators)")
    n = omega.shape[-1]
    if theta0 is not None:
        theta0 = _checks.finite_array("theta0", theta0)
        if theta0.ndim == 0 or theta0.shape[-1] != n:
            raise ValueError(
                f"theta0 must have {n} oscillators on its last axis (as omega), "
                f"got shape {theta0.shape}"
            )
    K_arr = _checks.finite_array("coupling", coupling)
    if (K_arr < 0).any():
        raise ValueError(f"coupling must be >= 0, got {coupling!r}")
    D_arr = _checks.finite_array("noise", noise)
    if (D_arr < 0).any():
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    t_final = _checks.positive_float("t_final", t_final)
    dt = _checks.positive_float("dt", dt)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    noisy = bool((D_arr > 0).any())
    if noisy and method == "rk4":
        raise ValueError(
            "noise > 0 needs method='euler' (Euler-Maruyama); RK4 is not a scheme for SDEs"
        )
    record_every = _checks.integer("record_every", record_every, minimum=1)
    if not isinstance(keep_phases, bool):
        raise TypeError(f"keep_phases must be True or False, got {keep_phases!r}")
    torch_dtype = _as_dtype(dtype)
    device = torch.device("cpu") if device is None else torch.device(device)

    shapes = [omega.shape[:-1], K_arr.shape, D_arr.shape]
    if theta0 is not None:
        shapes.append(theta0.shape[:-1])
    try:
        batch = tuple(np.broadcast_shapes(*shapes))
    except ValueError as err:
        raise ValueError(
            "the batch shapes of theta0, omega, coupling and noise do not broadcast: "
            f"{[tuple(s) for s in shapes]}"
        ) from err

    generator = as_generator(seed)
    if theta0 is None:
        theta0 = generator.uniform(0.0, 2.0 * np.pi, size=omega.shape)
    mean_field = _graph_operator(graph, n, batch, torch_dtype, device)

    def as_t(array, shape):
        return torch.as_tensor(
            np.broadcast_to(array, shape).copy(), dtype=torch_dtype, device=device
        )

    omega_t = as_t(omega, (*batch, n))
    K_t = as_t(K_arr, batch)[..., None]
    theta = as_t(theta0, (*batch, n))

    def rhs(phase):
        cos, sin = torch.cos(phase), torch.sin(phase)
        z_re, z_im = mean_field(cos, sin)
        # K Im(z e^{-iθ}) = K (Im z cos θ − Re z sin θ)
        return omega_t + K_t * (z_im * cos - z_re * sin)

    def r_of(phase):
        return torch.hypot(torch.cos(phase).mean(-1), torch.sin(phase).mean(-1)).clamp(max=1.0)

    if noisy:
        noise_gen = torch.Generator(device=device)
        noise_gen.manual_seed(int(generator.integers(2**62)))
        D_t = as_t(D_arr, batch)[..., None]

    n_steps = max(1, round(t_final / dt))
    dt = t_final / n_steps
    if keep_phases:
        n_records = n_steps // record_every + 2
        gigabytes = n_records * int(np.prod(batch, dtype=int)) * n * 8 / 2**30
        if gigabytes > 2.0:
            raise ValueError(
                f"keeping the phases would take {gigabytes:.1f} GB: raise record_every "
                "or pass keep_phases=False"
            )
    times, rs = [0.0], [r_of(theta)]
    phases = [theta.clone()] if keep_phases else None
    for step in range(1, n_steps + 1):
        if method == "rk4":
            k1 = rhs(theta)
            k2 = rhs(theta + 0.5 * dt * k1)
            k3 = rhs(theta + 0.5 * dt * k2)
            k4 = rhs(theta + dt * k3)
            theta = theta + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        else:
            theta = theta + dt * rhs(theta)
            if noisy:
                kicks = torch.randn(
                    theta.shape, generator=noise_gen, dtype=torch_dtype, device=device
                )
                theta = theta + torch.sqrt(2.0 * D_t * dt) * kicks
        if step % record_every == 0 or step == n_steps:
            times.append(step * dt)
            rs.append(r_of(theta))
            if keep_phases:
                phases.append(theta.clone())
    return KuramotoRun(
        t=np.array(times),
        r=torch.stack(rs, dim=-1).cpu().double().numpy(),
        theta=None if phases is None else torch.stack(phases, dim=-2).cpu().double().numpy(),
        theta_final=theta.cpu().double().numpy(),
    )


def mean_frequency(run: KuramotoRun, t_from: float) -> np.ndarray:
    """Mean phase velocity ``(θ_i(T) − θ_i(t_from)) / (T − t_from)`` of every oscillator.

    Needs the recorded phases (``keep_phases=True``); they live on the real line, so the
    difference counts full turns.
    """
    if not isinstance(run, KuramotoRun):
        raise TypeError(f"run must be a KuramotoRun, got {type(run).__name__}")
    if run.theta is None:
        raise ValueError("run has no recorded phases; simulate with keep_phases=True")
    t_from = _checks.real_float("t_from", t_from)
    mask = run.t >= t_from
    if mask.sum() < 2:
        raise ValueError(f"t_from={t_from} leaves fewer than two recorded times")
    first = int(np.argmax(mask))
    span = run.t[-1] - run.t[first]
    return (run.theta[..., -1, :] - run.theta[..., first, :]) / span


def winding_number(theta) -> np.ndarray:
    """Winding number ``(1/2π) Σ_i wrap(θ_{i+1} − θ_i)`` of phases on a ring (last axis, periodic).

    Each difference is wrapped to ``(−π, π]``; a ``q``-twisted state ``θ_i = 2π q i / N`` has
    winding number ``q`` (for ``|q| < N/2``).
    """
    theta = _checks.finite_array("theta", theta)
    if theta.ndim == 0 or theta.shape[-1] < 2:
        raise ValueError(
            f"theta must have at least 2 oscillators on its last axis, got {theta.shape}"
        )
    diff = np.diff(theta, axis=-1, append=theta[..., :1])
    wrapped = np.angle(np.exp(1j * diff))
    return np.rint(wrapped.sum(axis=-1) / (2 * np.pi)).astype(int)
