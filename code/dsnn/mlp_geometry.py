"""Critical points of scalar networks, and the classification of MLPs and neural ODEs by them.

A scalar network ``Φ : R^d → R`` is a smooth function of its input; its *critical points*
``∇Φ(x) = 0`` and their Hessians say which functions it can represent. Kuehn & Kuntz (2024,
arXiv:2405.09351) classify multilayer perceptrons (MLPs) and neural ODEs by them:

* **no critical points** for non-augmented architectures: MLP widths that never increase
  (``n_0 ≥ n_1 ≥ … ≥ n_L``), neural ODEs whose phase space is not larger than the input
  (``m ≤ d``), with full-rank weights;
* **Morse functions** (every critical point non-degenerate) for almost every choice of weights
  when an MLP has no bottleneck, or when a neural ODE is augmented (``m > d``) with full-rank lift
  and readout;
* **degenerate critical points** forced by a bottleneck or by a rank-deficient lift.

This module locates critical points numerically (:func:`critical_points`), states what the
theory predicts for an architecture (:func:`classify`) and compares the two over random weights
(:func:`census`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dsnn import _checks, models
from dsnn.neural_ode import NeuralODE


@dataclass
class CriticalPoints:
    """Critical points located by :func:`critical_points`, one row each.

    Attributes
    ----------
    points : ndarray of shape ``(k, d)``
        Locations ``x`` with ``‖∇Φ(x)‖ < grad_tol`` inside the box, duplicates merged.
    values : ndarray of shape ``(k,)``
        ``Φ(x)``.
    gradient_norms : ndarray of shape ``(k,)``
        ``‖∇Φ(x)‖`` at the located points.
    hessian_eigenvalues : ndarray of shape ``(k, d)``
        Eigenvalues of ``Hess Φ(x)``, ascending.
    index : ndarray of int, shape ``(k,)``
        Morse index: the number of negative eigenvalues (0 for a minimum, ``d`` for a maximum).
    nondegenerate : ndarray of bool, shape ``(k,)``
        ``min |λ| > degeneracy_tol · max(1, max |λ|)``.
    min_grad_norm : float
        The smallest ``‖∇Φ‖`` the search reached inside the box from any seed (also where it
        found no critical point). The search descends ``‖∇Φ‖``, so where no point was found
        this estimates (from above) the smallest gradient norm on the box.
    n_seeds : int
        Number of starting points.
    degeneracy_tol : float
        The relative tolerance behind ``nondegenerate`` and :attr:`hessian_rank`.
    """

    points: np.ndarray
    values: np.ndarray
    gradient_norms: np.ndarray
    hessian_eigenvalues: np.ndarray
    index: np.ndarray
    nondegenerate: np.ndarray
    min_grad_norm: float
    n_seeds: int
    degeneracy_tol: float = 1e-6

    def __len__(self) -> int:
        return self.points.shape[0]

    @property
    def hessian_rank(self) -> np.ndarray:
        """Numerical rank of the Hessian at each point (eigenvalues above the tolerance)."""
        if not len(self):
            return np.zeros(0, dtype=int)
        scale = np.maximum(1.0, np.abs(self.hessian_eigenvalues).max(axis=1, keepdims=True))
        return (np.abs(self.hessian_eigenvalues) > self.degeneracy_tol * scale).sum(axis=1)


def _check_box(box) -> np.ndarray:
    box = _checks.finite_array("box", box, ndim=2)
    if box.shape[1] != 2:
        raise ValueError(
            f"box must have shape (d, 2): one (low, high) pair per input, got {box.shape}"
        )
    if not (box[:, 0] < box[:, 1]).all():
        raise ValueError(f"box must have low < high in every row, got {box.tolist()}")
    return box


def _gradient_and_hessian(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``Φ``, ``∇Φ`` and ``Hess Φ`` at a batch of points, by automatic differentiation.

    The samples of a batch do not interact, so the gradient of ``Σ_i Φ(x_i)`` with respect to
    ``x`` stacks the gradients of every sample; ``d`` more passes give the Hessian rows.
    """
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        values = fn(x)
        if not isinstance(values, torch.Tensor) or values.numel() != x.shape[0]:
            got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values)
            raise ValueError(
                f"fn must map a batch of shape (n, d) to n scalars, got output {got} for "
                f"n = {x.shape[0]}"
            )
        values = values.reshape(-1)
        (grad,) = torch.autograd.grad(values.sum(), x, create_graph=True)
        rows = [
            torch.autograd.grad(grad[:, i].sum(), x, retain_graph=i < x.shape[1] - 1)[0]
            for i in range(x.shape[1])
        ]
    hess = torch.stack(rows, dim=1)
    return values.detach(), grad.detach(), 0.5 * (hess + hess.transpose(1, 2)).detach()


def critical_points(
    fn: Callable[[torch.Tensor], torch.Tensor],
    box,
    n_seeds: int,
    seed: int,
    *,
    grad_tol: float = 1e-8,
    max_iter: int = 60,
    degeneracy_tol: float = 1e-6,
    merge_tol: float | None = None,
) -> CriticalPoints:
    """Locate the critical points ``∇Φ(x) = 0`` of a scalar function in a box.

    Root finding on the gradient from ``n_seeds`` starting points spread over the box (a
    scrambled Halton sequence, ``scipy.stats.qmc``), all seeds advanced together as one batch.
    Each step is a Levenberg–Marquardt step for the residual ``∇Φ`` with Jacobian ``Hess Φ``,

    .. math::

        x \\leftarrow \\Pi_{box}\\big(x - (H^2 + \\mu \\one)^{-1} H \\nabla\\Phi(x)\\big),
        \\qquad H = \\operatorname{Hess}\\Phi(x),

    with ``μ`` divided by 10 after a step that reduces ``‖∇Φ‖`` and multiplied by 10 (and the
    step refused) otherwise (Levenberg 1944; Marquardt 1963); ``Π_box`` clips to the box, so
    that where there is no critical point the iteration settles where ``‖∇Φ‖`` is smallest on
    the box. It converges quadratically to
    non-degenerate critical points of every index — minima, saddles and maxima alike — and
    still reaches degenerate ones (where Newton's method has no unique step). We write the
    iteration by hand because scipy's root finders handle one point at a time. Points with
    ``‖∇Φ‖ < grad_tol`` inside the box are kept, duplicates closer than ``merge_tol`` merged,
    and each is classified by the eigenvalues of its Hessian.

    Parameters
    ----------
    fn : callable
        ``Φ``: maps a float64 tensor of shape ``(n, d)`` to ``n`` values (``(n,)`` or
        ``(n, 1)``), differentiable twice by autograd — an MLP, a :class:`NeuralODE` with
        ``dim_out = 1``, or a closed-form function.
    box : array-like of shape ``(d, 2)``
        ``(low, high)`` per input coordinate.
    n_seeds : int
        Number of starting points.
    seed : int
        Seed of the scrambled Halton sequence.
    grad_tol : float
        A point is critical if ``‖∇Φ‖ < grad_tol``.
    max_iter : int
        Number of Levenberg–Marquardt steps.
    degeneracy_tol : float
        A critical point is degenerate if its smallest ``|λ|`` is below
        ``degeneracy_tol · max(1, max |λ|)``.
    merge_tol : float or None
        Points closer than this are one point (default ``1e-6`` times the box diameter).
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    from scipy.stats import qmc

    if not callable(fn):
        raise TypeError(f"fn must be a callable Φ(x), got {type(fn).__name__}")
    box = _check_box(box)
    n_seeds = _checks.integer("n_seeds", n_seeds, minimum=1)
    seed = _checks.integer("seed", seed)
    grad_tol = _checks.positive_float("grad_tol", grad_tol)
    max_iter = _checks.integer("max_iter", max_iter, minimum=1)
    degeneracy_tol = _checks.positive_float("degeneracy_tol", degeneracy_tol)
    diameter = float(np.linalg.norm(box[:, 1] - box[:, 0]))
    merge_tol = 1e-6 * diameter if merge_tol is None else merge_tol
    merge_tol = _checks.positive_float("merge_tol", merge_tol)
    d = box.shape[0]

    unit = qmc.Halton(d, scramble=True, seed=seed).random(n_seeds)
    x = torch.as_tensor(box[:, 0] + unit * (box[:, 1] - box[:, 0]), dtype=torch.float64)
    _, grad, hess = _gradient_and_hessian(fn, x)
    mu = torch.full((n_seeds,), 1e-3, dtype=torch.float64)
    eye = torch.eye(d, dtype=torch.float64)
    low, high = (torch.as_tensor(box[:, k], dtype=torch.float64) for k in (0, 1))
    history = []
    for _ in range(max_iter):
        norm = grad.norm(dim=1)
        history.append(norm)
        # Stop when every seed has converged or stalled (less than 1 % progress in 5 steps).
        stalled = norm > 0.99 * history[-6] if len(history) > 5 else torch.zeros_like(norm) > 0
        if bool(((norm < 1e-3 * grad_tol) | stalled).all()):
            break
        system = hess @ hess + mu[:, None, None] * eye
        step = -torch.linalg.solve(system, (hess @ grad[:, :, None]))[:, :, 0]
        x_try = torch.clamp(x + step, low, high)
        _, grad_try, hess_try = _gradient_and_hessian(fn, x_try)
        accept = grad_try.norm(dim=1) < norm
        x = torch.where(accept[:, None], x_try, x)
        grad = torch.where(accept[:, None], grad_try, grad)
        hess = torch.where(accept[:, None, None], hess_try, hess)
        mu = torch.where(accept, (mu / 10).clamp(min=1e-12), (mu * 10).clamp(max=1e12))

    values, grad, hess = _gradient_and_hessian(fn, x)
    points = x.numpy()
    norms = grad.norm(dim=1).numpy()
    margin = 1e-9 * diameter
    inside = ((points >= box[:, 0] - margin) & (points <= box[:, 1] + margin)).all(axis=1)
    min_grad_norm = float(norms[inside].min()) if inside.any() else math.inf
    keep = np.flatnonzero(inside & (norms < grad_tol))
    if keep.size:
        # Merge duplicates: connected components of the "closer than merge_tol" graph.
        pairs = cKDTree(points[keep]).query_pairs(merge_tol, output_type="ndarray")
        from scipy.sparse import coo_matrix

        graph = coo_matrix(
            (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(keep.size, keep.size)
        )
        _, labels = connected_components(graph, directed=False)
        representatives = [
            keep[np.flatnonzero(labels == c)][np.argmin(norms[keep][labels == c])]
            for c in np.unique(labels)
        ]
        keep = np.array(sorted(representatives), dtype=int)
    eigenvalues = (
        np.linalg.eigvalsh(hess.numpy()[keep]) if keep.size else np.zeros((0, d), dtype=float)
    )
    scale = np.maximum(1.0, np.abs(eigenvalues).max(axis=1)) if keep.size else np.zeros(0)
    return CriticalPoints(
        points=points[keep],
        values=values.numpy()[keep],
        gradient_norms=norms[keep],
        hessian_eigenvalues=eigenvalues,
        index=(eigenvalues < 0).sum(axis=1).astype(int),
        nondegenerate=np.abs(eigenvalues).min(axis=1, initial=np.inf) > degeneracy_tol * scale,
        min_grad_norm=min_grad_norm,
        n_seeds=n_seeds,
        degeneracy_tol=degeneracy_tol,
    )


# ---------------------------------------------------------------------------------------------
# Architectures and what the theory predicts for them
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NODEArchitecture:
    """A scalar-output neural ODE ``R^d → R^m → R`` (survey Sec. 2.2) with a lift of given rank.

    ``rank_lift = None`` means full rank ``min(d, m)``; the readout is a non-zero row.
    """

    dim_in: int
    dim_phase: int
    rank_lift: int | None = None

    def __post_init__(self):
        d = _checks.integer("dim_in", self.dim_in, minimum=1)
        m = _checks.integer("dim_phase", self.dim_phase, minimum=1)
        if self.rank_lift is not None:
            r = _checks.integer("rank_lift", self.rank_lift, minimum=0)
            if r > min(d, m):
                raise ValueError(
                    f"rank_lift must be at most min(dim_in, dim_phase) = {min(d, m)}, got {r}"
                )

    def __str__(self) -> str:
        rank = "" if self.rank_lift is None else f", rank W = {self.rank_lift}"
        return f"neural ODE d={self.dim_in}, m={self.dim_phase}{rank}"


@dataclass(frozen=True)
class Classification:
    """What the theory predicts for the input-output map of a scalar network.

    Attributes
    ----------
    network : str
        ``"MLP"`` or ``"neural ODE"``.
    architecture : str
        ``"non-augmented"``, ``"augmented"`` (for MLPs: augmented without bottleneck),
        ``"bottleneck"``, ``"degenerate"`` or ``"reducible"``.
    function_class : str
        ``"no critical points"``, ``"Morse (almost every weight)"``,
        ``"degenerate critical points"``, or for rank-deficient MLP weights a pointer to the
        normal form.
    max_hessian_rank : int
        Upper bound on the rank of ``Hess Φ`` at a critical point (``d`` when nothing forces a
        degeneracy).
    reason : str
        The argument in one sentence.
    """

    network: str
    architecture: str
    function_class: str
    max_hessian_rank: int
    reason: str


NO_CRITICAL_POINTS = "no critical points"
MORSE = "Morse (almost every weight)"
DEGENERATE = "degenerate critical points"


def _classify_mlp(widths: tuple[int, ...], ranks: tuple[int, ...] | None = None):
    if widths[-1] != 1:
        raise ValueError(f"classify needs a scalar output (last width 1), got widths {widths}")
    n0 = widths[0]
    if ranks is not None and any(
        r < min(a, b) for r, a, b in zip(ranks, widths[:-1], widths[1:], strict=True)
    ):
        if ranks[0] < n0 and ranks[0] < widths[1]:
            return Classification(
                "MLP",
                "degenerate",
                DEGENERATE,
                ranks[0],
                f"rank W_1 = {ranks[0]} < {min(n0, widths[1])}: Φ is constant along ker W_1, "
                "so every critical point is degenerate",
            )
        return Classification(
            "MLP",
            "reducible",
            "equivalent to a smaller full-rank MLP (normal form); classify that one",
            n0,
            "a rank-deficient weight matrix can be absorbed into narrower layers",
        )
    hidden = widths[1:-1]
    if all(a >= b for a, b in itertools.pairwise(widths[:-1])):
        return Classification(
            "MLP",
            "non-augmented",
            NO_CRITICAL_POINTS,
            0,
            "∇Φᵀ = W_L D_{L-1} W_{L-1} ⋯ D_1 W_1 is a product of surjective maps, never zero",
        )
    # A bottleneck: a hidden layer narrower than the input, reached through non-increasing
    # widths (so its layer map is a submersion), and followed by a wider hidden layer.
    for l_index, width in enumerate(hidden, start=1):
        if width >= n0:
            continue
        submersion = all(a >= b for a, b in itertools.pairwise(widths[: l_index + 1]))
        widens_later = any(w > width for w in widths[l_index + 1 : -1])
        if submersion and widens_later:
            return Classification(
                "MLP",
                "bottleneck",
                DEGENERATE,
                width,
                f"Φ = g ∘ h_{l_index} with h_{l_index}: R^{n0} → R^{width} a submersion; at a "
                f"critical point ∇g = 0 and Hess Φ = Dhᵀ Hess g Dh has rank ≤ {width} < {n0}",
            )
    return Classification(
        "MLP",
        "augmented",
        MORSE,
        n0,
        "no bottleneck: for almost every weight all critical points are non-degenerate "
        "(Kuehn & Kuntz 2024)",
    )


def _classify_node(d: int, m: int, rank_lift: int, readout_nonzero: bool) -> Classification:
    if not readout_nonzero:
        return Classification(
            "neural ODE", "degenerate", DEGENERATE, 0, "a zero readout makes Φ constant"
        )
    if rank_lift < min(d, m):
        return Classification(
            "neural ODE",
            "degenerate",
            DEGENERATE,
            rank_lift,
            f"rank W = {rank_lift} < min(d, m) = {min(d, m)}: Φ is constant along ker W and "
            f"Hess Φ = Wᵀ(⋯)W has rank ≤ {rank_lift}",
        )
    if m <= d:
        return Classification(
            "neural ODE",
            "non-augmented",
            NO_CRITICAL_POINTS,
            0,
            "∇Φ = Wᵀ Dφ_Tᵀ w̃ with Dφ_T invertible, w̃ ≠ 0 and Wᵀ injective (rank W = m)",
        )
    return Classification(
        "neural ODE",
        "augmented",
        MORSE,
        d,
        "m > d with full-rank lift and readout: Morse for almost every choice (Kuehn & Kuntz 2024)",
    )


def classify(architecture) -> Classification:
    """The function class the theory predicts for a scalar-output MLP or neural ODE.

    Following Kuehn & Kuntz (2024, arXiv:2405.09351) for a smooth, strictly increasing
    activation (``tanh``) and scalar output:

    * MLP with widths ``n_0 ≥ n_1 ≥ … ≥ n_{L−1}`` (never increasing) and full-rank weights, or
      neural ODE with ``m ≤ d`` and full-rank lift and non-zero readout: **no critical points**;
    * MLP without a bottleneck whose widths increase somewhere, or neural ODE with ``m > d`` and
      full-rank lift and readout: **Morse** for almost every weight;
    * MLP with a bottleneck (a hidden layer of width ``n_l < n_0``, reached through
      non-increasing widths, followed by a wider hidden layer), or neural ODE with
      ``rank W < min(d, m)``: every critical point is **degenerate**, with ``rank Hess Φ ≤ n_l``
      (resp. ``≤ rank W``).

    The precise definition of a bottleneck used here is our reading (see the chapter); the
    three classes are those of the paper's abstract.

    Parameters
    ----------
    architecture
        A sequence of MLP widths ``(n_0, …, n_L)`` with ``n_L = 1`` (full-rank weights assumed);
        an MLP built by :func:`dsnn.models.mlp` (widths and ranks read off its weights); a
        :class:`NODEArchitecture`; or a :class:`~dsnn.neural_ode.NeuralODE` with ``dim_out = 1``
        (ranks read off its lift and readout).
    """
    if isinstance(architecture, NeuralODE):
        if architecture.dim_out != 1:
            raise ValueError(
                f"classify needs a scalar output (dim_out = 1), got dim_out={architecture.dim_out}"
            )
        with torch.no_grad():
            rank = int(torch.linalg.matrix_rank(architecture.lift.weight))
            nonzero = bool(architecture.readout.weight.abs().max() > 0)
        return _classify_node(architecture.dim_in, architecture.dim_phase, rank, nonzero)
    if isinstance(architecture, NODEArchitecture):
        d, m = architecture.dim_in, architecture.dim_phase
        rank = min(d, m) if architecture.rank_lift is None else architecture.rank_lift
        return _classify_node(d, m, rank, True)
    if isinstance(architecture, nn.Sequential):
        linears = [layer for layer in architecture if isinstance(layer, nn.Linear)]
        if not linears:
            raise ValueError("architecture is an nn.Sequential without Linear layers")
        widths = (linears[0].in_features, *(layer.out_features for layer in linears))
        with torch.no_grad():
            ranks = tuple(int(torch.linalg.matrix_rank(layer.weight)) for layer in linears)
        return _classify_mlp(widths, ranks)
    if isinstance(architecture, Sequence) and not isinstance(architecture, str):
        widths = tuple(
            _checks.integer(f"architecture[{i}]", n, minimum=1) for i, n in enumerate(architecture)
        )
        if len(widths) < 2:
            raise ValueError(f"MLP widths need at least (n_0, n_L), got {widths}")
        return _classify_mlp(widths)
    raise TypeError(
        "architecture must be a sequence of MLP widths, an nn.Sequential MLP, a NODEArchitecture "
        f"or a NeuralODE, got {type(architecture).__name__}"
    )


def random_network(
    architecture, seed: int, *, scale: float = 2.0, step_size: float = 0.05
) -> nn.Module:
    """A scalar network of the given architecture with random weights (seeded).

    * MLP widths: :func:`dsnn.models.mlp` with ``tanh``, every weight and bias multiplied by
      ``scale`` (PyTorch's default initialisation keeps ``tanh`` nearly linear on a box of
      size one; the scale makes its nonlinearity visible there).
    * :class:`NODEArchitecture`: a :class:`~dsnn.neural_ode.NeuralODE` with an
      :class:`~dsnn.neural_ode.MLPField` of output scale ``scale`` and Gaussian lift and readout
      (the lift as a product of ``m × r`` and ``r × d`` Gaussian factors when ``rank_lift = r``),
      solved by fixed-step RK4 with ``step_size`` so that it is a smooth function of its input.
    """
    seed = _checks.integer("seed", seed)
    scale = _checks.positive_float("scale", scale)
    if isinstance(architecture, NODEArchitecture):
        d, m = architecture.dim_in, architecture.dim_phase
        r = min(d, m) if architecture.rank_lift is None else architecture.rank_lift
        model = NeuralODE(d, m, 1, seed=seed, scale=scale, method="rk4", step_size=step_size)
        generator = torch.Generator().manual_seed(seed + 1_000_003)
        with torch.no_grad():
            left = torch.randn(m, r, generator=generator, dtype=torch.float64)
            right = torch.randn(r, d, generator=generator, dtype=torch.float64)
            model.lift.weight.copy_(left @ right / max(r, 1) ** 0.5)
            model.lift.bias.copy_(0.5 * torch.randn(m, generator=generator, dtype=torch.float64))
            model.readout.weight.copy_(torch.randn(1, m, generator=generator, dtype=torch.float64))
        return model
    classification = classify(architecture)  # validates the widths
    if classification.network != "MLP":
        raise TypeError("random_network takes MLP widths or a NODEArchitecture")
    net = models.mlp(tuple(architecture), activation="tanh", seed=seed)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.mul_(scale)
    return net


@dataclass
class CensusRow:
    """One architecture of :func:`census`: prediction and what the random draws showed."""

    architecture: str
    predicted: Classification
    n_draws: int
    draws_with_points: int
    n_points: int
    n_nondegenerate: int
    max_hessian_rank: int
    min_grad_norm: float
    min_abs_eigenvalue: float


def census(
    architectures: Sequence,
    n_draws: int,
    box,
    n_seeds: int,
    seed: int,
    *,
    scale: float = 2.0,
) -> list[CensusRow]:
    """Critical points of ``n_draws`` random networks per architecture, tabulated.

    For each architecture (MLP widths or :class:`NODEArchitecture`) and draw ``k``, builds
    :func:`random_network` with seed ``seed + k`` and runs :func:`critical_points` on ``box``.
    Returns one :class:`CensusRow` per architecture: how many draws had critical points, how many
    points were found and how many of them are non-degenerate, the largest Hessian rank at a
    located point, the smallest gradient norm reached (over all draws) and the smallest
    ``|λ(Hess Φ)|`` over the located points.
    """
    n_draws = _checks.integer("n_draws", n_draws, minimum=1)
    seed = _checks.integer("seed", seed)
    box = _check_box(box)
    rows = []
    for architecture in architectures:
        predicted = classify(architecture)
        dim_in = (
            architecture.dim_in
            if isinstance(architecture, NODEArchitecture)
            else int(architecture[0])
        )
        if dim_in != box.shape[0]:
            raise ValueError(
                f"box must have one row per network input: {architecture} has {dim_in} inputs, "
                f"box has {box.shape[0]} rows"
            )
        with_points = n_points = n_nondegenerate = max_rank = 0
        min_grad, min_eig = math.inf, math.inf
        for k in range(n_draws):
            net = random_network(architecture, seed + k, scale=scale)
            found = critical_points(net, box, n_seeds, seed + k)
            min_grad = min(min_grad, found.min_grad_norm)
            if len(found):
                with_points += 1
                n_points += len(found)
                n_nondegenerate += int(found.nondegenerate.sum())
                max_rank = max(max_rank, int(found.hessian_rank.max()))
                min_eig = min(min_eig, float(np.abs(found.hessian_eigenvalues).min()))
        label = (
            str(architecture)
            if isinstance(architecture, NODEArchitecture)
            else "MLP " + "→".join(str(n) for n in architecture)
        )
        rows.append(
            CensusRow(
                label,
                predicted,
                n_draws,
                with_points,
                n_points,
                n_nondegenerate,
                max_rank,
                min_grad,
                min_eig,
            )
        )
    return rows
