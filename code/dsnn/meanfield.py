"""Two-layer neural networks as interacting particles, and their mean-field limit.

A two-layer network in mean-field scaling averages ``N`` units,

    ŷ(x) = (1/N) Σ_i σ_*(x; θ_i),        σ_*(x; θ) = a tanh(w · x),   θ = (a, w) ∈ R^{1+d},

(Mei, Montanari & Nguyen 2018, with this choice of unit). Its risk on data ``(x, y)`` is

    R_N(θ) = E[(y − ŷ(x))²] = E[y²] + (2/N) Σ_i V(θ_i) + (1/N²) Σ_{i,j} U(θ_i, θ_j),

with ``V(θ) = −E[y σ_*(x; θ)]`` and ``U(θ, θ') = E[σ_*(x; θ) σ_*(x; θ')]`` (MMN 2018).
Gradient flow in the mean-field time scale, ``θ_i' = −(N/2) ∇_{θ_i} R_N``, is the interacting
particle system

    θ_i' = −∇V(θ_i) − (1/N) Σ_j A_ij ∇₁U(θ_i, θ_j)                                   (*)

with ``A_ij ≡ 1``: a Kuramoto-type system on the complete graph, with ``−∇V`` in the role of the
natural frequency and ``−∇₁U`` in the role of the coupling function. Its empirical measure follows
the distributional dynamics ``∂_t ρ = ∇ · (ρ ∇Ψ(θ; ρ))``, ``Ψ = V + ∫ U(θ, θ') ρ(dθ')`` (MMN 2018,
up to their time-dependent step-size factor), as ``N → ∞``.

Keeping a general graph ``A`` in (*) gives heterogeneous networks (the survey's point of view): for
symmetric ``A`` it is the gradient flow of the interaction energy
``E_A = E[y²] + (2/N) Σ_i V(θ_i) + (1/N²) Σ_{ij} A_ij U(θ_i, θ_j)`` (our computation). Expectations
are over a finite data set (the empirical measure), so every identity here holds exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from dsnn import _checks
from dsnn import device as _device
from dsnn.rng import SeedLike, as_generator

__all__ = [
    "MeanFieldRun",
    "WidthSweep",
    "energy",
    "init_particles",
    "interaction_U",
    "network_output",
    "particle_velocity",
    "potential_V",
    "risk",
    "train",
    "width_sweep",
]


def _theta(theta) -> torch.Tensor:
    theta = _checks.finite_tensor("theta", theta)
    if theta.ndim < 2 or theta.shape[-1] < 2:
        raise ValueError(
            "theta must have shape (..., N, 1 + d): one row (a, w_1, ..., w_d) per unit, "
            f"got {tuple(theta.shape)}"
        )
    return theta


def _data(theta: torch.Tensor, x, y=None):
    x = _checks.finite_tensor("x", x, ndim=2).to(device=theta.device, dtype=theta.dtype)
    if x.shape[1] != theta.shape[-1] - 1:
        raise ValueError(
            f"x must have {theta.shape[-1] - 1} features (theta has 1 + d = {theta.shape[-1]} "
            f"columns), got shape {tuple(x.shape)}"
        )
    if y is None:
        return x
    y = _checks.finite_tensor("y", y, ndim=1).to(device=theta.device, dtype=theta.dtype)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have {x.shape[0]} entries (one per row of x), got {y.shape[0]}")
    return x, y


def _units(theta: torch.Tensor, x: torch.Tensor):
    """``a``, ``h = tanh(w · x)`` of shape ``(..., N, n)`` and the unit outputs ``a h``."""
    a = theta[..., 0]
    h = torch.tanh(theta[..., 1:] @ x.T)
    return a, h, a[..., None] * h


def network_output(theta, x) -> torch.Tensor:
    """``ŷ(x_k) = (1/N) Σ_i a_i tanh(w_i · x_k)`` for every data point (shape ``(..., n)``)."""
    theta = _theta(theta)
    x = _data(theta, x)
    return _units(theta, x)[2].mean(dim=-2)


def risk(theta, x, y) -> torch.Tensor:
    """``R_N(θ) = (1/n) Σ_k (y_k − ŷ(x_k))²`` (MMN 2018, with the empirical data measure)."""
    theta = _theta(theta)
    x, y = _data(theta, x, y)
    return ((y - _units(theta, x)[2].mean(dim=-2)) ** 2).mean(dim=-1)


def potential_V(theta, x, y) -> torch.Tensor:
    """``V(θ_i) = −(1/n) Σ_k y_k a_i tanh(w_i · x_k)`` for every unit (shape ``(..., N)``)."""
    theta = _theta(theta)
    x, y = _data(theta, x, y)
    return -(_units(theta, x)[2] * y).mean(dim=-1)


def interaction_U(theta, x) -> torch.Tensor:
    """``U(θ_i, θ_j) = (1/n) Σ_k a_i tanh(w_i · x_k) a_j tanh(w_j · x_k)``, shape ``(…, N, N)``."""
    theta = _theta(theta)
    x = _data(theta, x)
    s = _units(theta, x)[2]
    return s @ s.transpose(-1, -2) / x.shape[0]


def _graph(graph, n_units: int, theta: torch.Tensor):
    """Normalise ``graph`` to None (all-to-all), a float (constant), a tensor or a sparse tensor."""
    if graph is None:
        return None
    if isinstance(graph, (int, float)) and not isinstance(graph, bool):
        return _checks.real_float("graph", graph)
    if sp.issparse(graph):
        A = sp.coo_array(graph, dtype=float)
        if A.shape != (n_units, n_units):
            raise ValueError(f"graph must have shape ({n_units}, {n_units}), got {A.shape}")
        if not np.isfinite(A.data).all():
            raise ValueError("graph must contain only finite numbers (no NaN or inf)")
        index = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))
        return torch.sparse_coo_tensor(
            index,
            torch.from_numpy(A.data),
            (n_units, n_units),
            dtype=theta.dtype,
            device=theta.device,
            check_invariants=True,
        ).coalesce()
    A = _checks.finite_tensor("graph", graph).to(device=theta.device, dtype=theta.dtype)
    if A.ndim < 2 or A.shape[-2:] != (n_units, n_units):
        raise ValueError(f"graph must have shape (..., {n_units}, {n_units}), got {tuple(A.shape)}")
    return A


def _neighbour_mean(A, s: torch.Tensor) -> torch.Tensor:
    """``(1/N) Σ_j A_ij s_j`` for unit outputs ``s`` of shape ``(..., N, n)``."""
    n_units = s.shape[-2]
    if A is None:
        return s.mean(dim=-2, keepdim=True)
    if isinstance(A, float):
        return A * s.mean(dim=-2, keepdim=True)
    if A.is_sparse:
        flat = s.movedim(-2, 0).reshape(n_units, -1)
        return (A @ flat).reshape(n_units, *s.shape[:-2], s.shape[-1]).movedim(0, -2) / n_units
    return A @ s / n_units


def particle_velocity(theta, x, y, graph=None) -> torch.Tensor:
    """Right-hand side of (*): ``−∇V(θ_i) − (1/N) Σ_j A_ij ∇₁U(θ_i, θ_j)`` for every unit.

    Computed in closed form: with ``h_ik = tanh(w_i · x_k)`` and ``g_ik = (1/N) Σ_j A_ij a_j h_jk``,

        ∂_a  = −(1/n) Σ_k h_ik (g_ik − y_k),
        ∂_w  = −(1/n) Σ_k a_i (1 − h_ik²) (g_ik − y_k) x_k.

    For ``A ≡ 1`` this is ``−(N/2) ∇_{θ_i} R_N`` (MMN 2018), and for symmetric ``A``
    it is ``−(N/2) ∇_{θ_i} E_A``.

    Parameters
    ----------
    theta : array ``(..., N, 1 + d)``
        Units ``(a_i, w_i)``; leading axes are independent networks.
    x : array ``(n, d)``, y : array ``(n,)``
        Data.
    graph : None, float, array ``(..., N, N)`` or scipy sparse ``(N, N)``
        ``A``: None is all-to-all, a float ``p`` the constant graph ``A ≡ p``.
    """
    theta = _theta(theta)
    x, y = _data(theta, x, y)
    return _velocity(theta, x, y, _graph(graph, theta.shape[-2], theta))


def _velocity(theta, x, y, A):
    a, h, s = _units(theta, x)
    residual = _neighbour_mean(A, s) - y
    n = x.shape[0]
    grad_a = (h * residual).sum(dim=-1) / n
    grad_w = ((a[..., None] * (1 - h**2) * residual) @ x) / n
    return -torch.cat([grad_a[..., None], grad_w], dim=-1)


def energy(theta, x, y, graph=None) -> torch.Tensor:
    """Interaction energy ``E_A = E[y²] + (2/N) Σ_i V(θ_i) + (1/N²) Σ_{ij} A_ij U(θ_i, θ_j)``.

    For ``A ≡ 1`` (``graph=None``) it equals the risk ``R_N`` (expand the square). Computed
    without forming ``U``:
    ``(1/N²) Σ_ij A_ij U_ij = (1/N) Σ_i (1/n) Σ_k s_ik g_ik`` with ``g`` as in
    :func:`particle_velocity`.
    """
    theta = _theta(theta)
    x, y = _data(theta, x, y)
    return _energy(theta, x, y, _graph(graph, theta.shape[-2], theta))


def _energy(theta, x, y, A):
    _, _, s = _units(theta, x)
    n_units = s.shape[-2]
    pair = (s * _neighbour_mean(A, s)).sum(dim=-2).mean(dim=-1) / n_units
    return (y**2).mean() - 2 * (s * y).mean(dim=-1).mean(dim=-1) + pair


def init_particles(
    n_units: int,
    dim: int,
    seed: SeedLike = None,
    *,
    batch: Sequence[int] = (),
    scale_a: float = 1.0,
    scale_w: float = 1.0,
    device: str | torch.device | None = "cpu",
) -> torch.Tensor:
    """Independent units from ``ρ₀``: ``a ~ N(0, scale_a²)`` and ``w ~ N(0, scale_w² I_d / d)``.

    Returns a float64 tensor of shape ``(*batch, n_units, 1 + dim)`` on ``device`` (the numbers
    are drawn on the CPU, so they are the same on every device).
    """
    n_units = _checks.integer("n_units", n_units, minimum=1)
    dim = _checks.integer("dim", dim, minimum=1)
    scale_a = _checks.positive_float("scale_a", scale_a)
    scale_w = _checks.positive_float("scale_w", scale_w)
    batch = tuple(_checks.integer("batch", b, minimum=1) for b in batch)
    rng = as_generator(seed)
    a = scale_a * rng.standard_normal((*batch, n_units, 1))
    w = scale_w / np.sqrt(dim) * rng.standard_normal((*batch, n_units, dim))
    return torch.from_numpy(np.concatenate([a, w], axis=-1)).to(_device.default(device))


@dataclass
class MeanFieldRun:
    """Result of :func:`train`.

    Attributes
    ----------
    t : array ``(n_recorded,)``
    risk : array ``(..., n_recorded)``, the network risk ``R_N`` along the run.
    energy : array ``(..., n_recorded)``, the energy ``E_A`` (equal to the risk for ``A ≡ 1``).
    theta_final : tensor ``(..., N, 1 + d)``
    """

    t: np.ndarray
    risk: np.ndarray
    energy: np.ndarray
    theta_final: torch.Tensor


def train(
    theta0,
    x,
    y,
    *,
    t_final: float,
    dt: float,
    graph=None,
    record_every: int = 1,
    device: str | torch.device | None = None,
) -> MeanFieldRun:
    """Integrate the particle system (*) with explicit Euler steps of size ``dt``.

    Runs on ``device`` (default: the device of ``theta0``); ``x``, ``y`` and ``graph`` follow it.

    An Euler step of (*) with ``A ≡ 1`` is a gradient descent step on ``R_N`` with learning rate
    ``η = dt N / 2`` for every unit: the mean-field time ``t = 2ηk/N`` after ``k`` steps (MMN 2018,
    where the step sizes scale with ``N`` so that width-``N`` runs share one time axis).
    """
    theta = _theta(theta0).clone()
    if device is not None:
        theta = theta.to(_device.default(device))
    x, y = _data(theta, x, y)
    t_final = _checks.positive_float("t_final", t_final)
    dt = _checks.positive_float("dt", dt)
    record_every = _checks.integer("record_every", record_every, minimum=1)
    A = _graph(graph, theta.shape[-2], theta)

    n_steps = max(1, round(t_final / dt))
    dt = t_final / n_steps

    def risk_of(th):
        return ((y - _units(th, x)[2].mean(dim=-2)) ** 2).mean(dim=-1)

    times, risks, energies = [0.0], [risk_of(theta)], [_energy(theta, x, y, A)]
    for step in range(1, n_steps + 1):
        theta = theta + dt * _velocity(theta, x, y, A)
        if not torch.isfinite(theta).all():
            raise FloatingPointError(f"the particles left the finite numbers at step {step}")
        if step % record_every == 0 or step == n_steps:
            times.append(step * dt)
            risks.append(risk_of(theta))
            energies.append(_energy(theta, x, y, A))
    return MeanFieldRun(
        t=np.array(times),
        risk=torch.stack(risks, dim=-1).cpu().numpy(),
        energy=torch.stack(energies, dim=-1).cpu().numpy(),
        theta_final=theta,
    )


@dataclass
class WidthSweep:
    """Result of :func:`width_sweep`.

    Attributes
    ----------
    t : array ``(n_recorded,)``
    widths : array of the widths ``N``
    curves : list of arrays ``(n_seeds, n_recorded)``, the energy curves per width
    reference : array ``(n_recorded,)``, the curve of the widest network
    deviation : array over widths, ``sup_t |curve − reference|`` averaged over seeds
    """

    t: np.ndarray
    widths: np.ndarray
    curves: list[np.ndarray]
    reference: np.ndarray
    deviation: np.ndarray


def width_sweep(
    widths,
    x,
    y,
    *,
    t_final: float,
    dt: float,
    n_seeds: int = 4,
    seed: int = 0,
    reference_width: int = 6400,
    graph: float | Callable | None = None,
    reference_graph: float | None = None,
    record_every: int = 1,
    device: str | torch.device | None = "cpu",
) -> WidthSweep:
    """Train networks of several widths from ``ρ₀`` (:func:`init_particles`) and compare their
    energy curves with the curve of one network of ``reference_width``.

    All seeds of one width run as one batch. ``graph`` is None (all-to-all), a constant ``p``, or a
    callable ``graph(N, rng)`` returning one adjacency matrix per call (a new one for every seed);
    ``reference_graph`` (None or a constant) is the graph of the reference run, e.g. the constant
    ``p`` that the masks converge to. Everything runs on ``device``; the random numbers are drawn
    on the CPU, so a CUDA run starts from the same particles and graphs.
    """
    widths = np.asarray(widths)
    if widths.ndim != 1 or widths.size == 0 or widths.dtype.kind not in "iu" or (widths < 1).any():
        raise ValueError(f"widths must be a non-empty list of positive integers, got {widths!r}")
    n_seeds = _checks.integer("n_seeds", n_seeds, minimum=1)
    reference_width = _checks.integer("reference_width", reference_width, minimum=1)
    if graph is not None and not callable(graph) and not isinstance(graph, (int, float)):
        raise TypeError(f"graph must be None, a number or a callable, got {type(graph).__name__}")
    x = _checks.finite_tensor("x", x, ndim=2)
    rng = as_generator(seed)
    dim = x.shape[1]
    device = _device.default(device)
    reference_start = init_particles(reference_width, dim, rng, device=device)
    reference = train(
        reference_start,
        x,
        y,
        t_final=t_final,
        dt=dt,
        graph=reference_graph,
        record_every=record_every,
    )
    curves, deviation = [], []
    for width in widths:
        start = init_particles(int(width), dim, rng, batch=(n_seeds,), device=device)
        if callable(graph):
            A = torch.stack(
                [
                    torch.as_tensor(np.asarray(graph(int(width), rng)), dtype=torch.float64)
                    for _ in range(n_seeds)
                ]
            )
        else:
            A = graph
        run = train(start, x, y, t_final=t_final, dt=dt, graph=A, record_every=record_every)
        curves.append(run.energy)
        deviation.append(float(np.abs(run.energy - reference.energy).max(axis=-1).mean()))
    return WidthSweep(
        t=reference.t,
        widths=widths,
        curves=curves,
        reference=reference.energy,
        deviation=np.array(deviation),
    )
