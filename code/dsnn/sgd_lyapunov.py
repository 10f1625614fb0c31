"""Stability of SGD at interpolating minima: the Lyapunov exponent ``λ(x*)`` and its relatives.

Chemnitz & Engel (2025) characterise which minima on the manifold ``M`` of interpolation
solutions stochastic gradient descent can converge to by the top Lyapunov exponent of the
linearised SGD, a product of i.i.d. random matrices restricted to the normal space ``N(x*)``:

    ``λ(x*) = lim_n (1/n) E log ‖(G'_{Ξ_n} ⋯ G'_{Ξ_1})|_{N(x*)}‖``     (eqs. 2.12–2.13),

with ``G'_Ξ = 1_D − (η/B) Σ_{i∈Ξ} g_i g_iᵀ`` and ``g_i = ∇_x F(x*, y_i)``. Theorem B: at a
regular minimum (Def. 2.2), ``λ < 0`` puts ``x*`` in the support of the SGD limit and ``λ > 0``
keeps it out. In the neural-tangent-kernel form (eq. 2.19, and Sec. 2.7 for mini-batches) the
same exponent is that of the ``N × N`` products

    ``A_Ξ = 1_N − (η/B) G_[Ξ]``,   ``G_ij = g_i · g_j``,   ``G_[Ξ]`` = ``G`` with the rows outside
    ``Ξ`` set to zero,

because ``Jᵀ A_Ξ v = G'_Ξ Jᵀ v`` for the Jacobian ``J`` with rows ``g_i``: coefficient vectors
``v ∈ R^N`` stand for normal vectors ``Σ v_i g_i``.

Conventions (used by every function here)
-----------------------------------------
* **Loss**: ``L_i(x) = ½ (F(x, y_i) − z_i)²`` and ``L_Ξ = (1/B) Σ_{i∈Ξ} L_i``, so that
  ``Hess L_i(x*) = g_i g_iᵀ`` on ``M``.
* **Batches**: ``Ξ_n`` is a uniformly random ``B``-subset of ``[N]`` (no repetition inside a
  batch); the batches of different steps are i.i.d. ``B = 1`` is the paper's SGD (eq. 2.8),
  ``B = N`` is GD.
* **Normal space**: with ``restrict_to_range=False`` the products act on ``R^N``; a zero eigenvalue
  of ``G`` (linearly dependent gradients, hypothesis H1 fails) then gives a neutral direction, as
  in :func:`dsnn.gradient_descent.gd_exponent`. ``restrict_to_range=True`` works on the range of
  ``G``, which is ``N(x*)`` also when H1 fails (e.g. the product model ``F = x1 x2 y`` whose
  gradients are all parallel).

Numerics
--------
The top exponent is computed by renormalised power iteration on the products, which is what the
definition asks for (one random start vector, which almost surely sees the top Oseledets
direction), and the spectrum by repeated QR (Benettin's method). Both use the structure of the
factors: ``1_N − (η/B) G_[Ξ]`` changes only the ``B`` coordinates in ``Ξ``, so one step costs
``B N`` multiply-adds per chain instead of an ``N × N`` product, and a whole grid of learning rates
and batch sizes is one batched product per step (:func:`phase_diagram`). Error bars are batch
means over blocks of the run, pooled over independent chains.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import torch

from dsnn import _checks
from dsnn import device as _device
from dsnn import gradient_descent as _gd
from dsnn import hessian as _hessian
from dsnn.rng import SeedLike, as_generator

__all__ = [
    "LyapunovEstimate",
    "LyapunovSpectrum",
    "PhaseDiagram",
    "SGDRecord",
    "StabilityTrack",
    "Threshold",
    "codimension_one_exponent",
    "determinant_bound",
    "kingman_bound",
    "lyapunov_exponent",
    "lyapunov_exponent_parameter_space",
    "lyapunov_spectrum",
    "lyapunov_threshold",
    "mean_square_threshold",
    "moment_exponent",
    "ntk_gram",
    "phase_diagram",
    "product_sample_losses",
    "sgd_batch",
    "track_stability",
    "train_sgd",
]

#: Steps whose random batches are drawn at once (the stream does not depend on it).
_CHUNK = 256


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass
class LyapunovEstimate:
    """An estimate of a top Lyapunov exponent with its standard error.

    Attributes
    ----------
    value : float
        The estimate of ``λ``; ``-inf`` when the products become exactly zero.
    stderr : float
        Standard error from batch means (blocks of the run, pooled over the chains); ``0`` for
        exact values.
    n_steps, burn_in : int
        Steps per chain, and how many of them were discarded at the start.
    n_chains : int
        Independent chains (batch sequences and start vectors).
    exact : bool
        True when the value is a closed form (``B = N``, which includes ``N = 1``).
    """

    value: float
    stderr: float
    n_steps: int = 0
    burn_in: int = 0
    n_chains: int = 0
    exact: bool = False

    def __float__(self) -> float:
        return float(self.value)


@dataclass
class LyapunovSpectrum:
    """Estimates of the leading Lyapunov exponents ``λ_1 ≥ λ_2 ≥ …`` with standard errors."""

    values: np.ndarray
    stderr: np.ndarray
    n_steps: int = 0
    burn_in: int = 0
    n_chains: int = 0
    exact: bool = False


@dataclass
class PhaseDiagram:
    """``λ`` over a grid of learning rates and batch sizes (see :func:`phase_diagram`).

    Attributes
    ----------
    etas : ndarray of shape ``(n_eta,)``
    batch_sizes : ndarray of shape ``(n_batch,)``
    value, stderr : ndarray of shape ``(n_eta, n_batch)`` (``(M, n_eta, n_batch)`` for a stack)
        Estimates of ``λ`` and their standard errors; columns with ``B = N`` hold the exact
        ``μ`` with standard error 0.
    mu : ndarray of shape ``(n_eta,)`` (``(M, n_eta)`` for a stack)
        The GD exponent ``μ`` (eq. 2.18) at each learning rate.
    """

    etas: np.ndarray
    batch_sizes: np.ndarray
    value: np.ndarray
    stderr: np.ndarray
    mu: np.ndarray
    n_steps: int = 0
    burn_in: int = 0
    n_chains: int = 0

    @property
    def stable(self) -> np.ndarray:
        """``value < 0``: where the minimum is SGD-stable (Theorem B)."""
        return self.value < 0

    def thresholds(self) -> np.ndarray:
        """First learning rate of the grid at which ``λ`` crosses 0, per batch size.

        Linear interpolation between the last grid point with ``λ < 0`` and the first with
        ``λ ≥ 0`` (scanning ``etas`` upwards from the first point); NaN where ``λ`` does not
        start negative or never reaches 0 on the grid. ``λ`` need not be monotone in ``η``:
        this is the *first* crossing.
        """
        return _first_crossing(self.etas, self.value)


def _first_crossing(etas: np.ndarray, values: np.ndarray) -> np.ndarray:
    """First upward zero crossing along the eta axis (second to last) of ``values``."""
    vals = np.moveaxis(values, -2, -1)  # (..., n_batch, n_eta)
    out = np.full(vals.shape[:-1], np.nan)
    for pos in np.ndindex(vals.shape[:-1]):
        row = vals[pos]
        if not row[0] < 0:
            continue
        above = np.flatnonzero(row >= 0)
        if above.size == 0:
            continue
        j = above[0]
        lo, hi = row[j - 1], row[j]
        if np.isfinite(lo):
            out[pos] = etas[j - 1] + (etas[j] - etas[j - 1]) * (-lo) / (hi - lo)
        else:
            out[pos] = etas[j - 1]
    return out


# --------------------------------------------------------------------------------------------
# input checks and the representation of the factors
# --------------------------------------------------------------------------------------------


def _gram(name: str, value) -> np.ndarray:
    """A symmetric positive semi-definite ``(N, N)`` matrix (float64)."""
    matrix = _checks.symmetric_matrix(name, value)
    eigenvalues = np.linalg.eigvalsh(matrix)
    scale = max(float(np.abs(eigenvalues).max()), 1.0)
    if eigenvalues[0] < -1e-8 * scale:
        raise ValueError(
            f"{name} must be positive semi-definite (a Gram matrix g_i · g_j); its smallest "
            f"eigenvalue is {eigenvalues[0]:.3g}"
        )
    return matrix


def _gram_stack(name: str, value) -> tuple[np.ndarray, bool]:
    """``(M, N, N)`` stack of Gram matrices and whether the input was a single matrix."""
    array = _checks.finite_array(name, value, ndim=(2, 3))
    if array.ndim == 2:
        return _gram(name, array)[None], True
    return np.stack([_gram(f"{name}[{m}]", g) for m, g in enumerate(array)]), False


def _batch_size(value, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"batch_size must be an integer, got {value!r} of type {type(value).__name__}"
        )
    if not 1 <= int(value) <= n:
        raise ValueError(f"batch_size must be an integer in [1, N] = [1, {n}], got {value}")
    return int(value)


def _steps(n_steps, burn_in) -> tuple[int, int]:
    n_steps = _checks.integer("n_steps", n_steps, minimum=1)
    burn_in = n_steps // 10 if burn_in is None else _checks.integer("burn_in", burn_in)
    if n_steps <= burn_in:
        raise ValueError(
            f"n_steps must be larger than burn_in (steps are counted including the burn-in), "
            f"got n_steps={n_steps} and burn_in={burn_in}"
        )
    return n_steps, burn_in


def _torch_setup(device, dtype) -> tuple[torch.device, torch.dtype]:
    try:
        target = torch.device("cpu") if device is None else _device.default(device)
    except ValueError as err:
        raise ValueError(
            f"device must be None, 'cpu' or 'cuda' (CUDA only where available), got {device!r}"
        ) from err
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return target, dtype


def _root(gram: np.ndarray, restrict_to_range: bool, rtol: float) -> np.ndarray:
    """``J`` with ``J Jᵀ = G`` and orthogonal columns: ``J = U diag(√σ)`` from ``G = U Σ Uᵀ``.

    The rows ``j_i`` of ``J`` have the Gram matrix ``G``, so ``j_i ↦ g_i`` is an isometry from
    ``R^k`` onto the normal space: the symmetric factors ``1_k − (η/B) Σ_{i∈Ξ} j_i j_iᵀ`` are the
    parameter-space factors in an orthonormal frame. With ``restrict_to_range`` only the
    eigenvalues above ``rtol × σ_max`` are kept (``k = rank G``); otherwise ``k = N``.
    """
    sigma, vectors = np.linalg.eigh(gram)
    sigma = np.clip(sigma, 0.0, None)
    if restrict_to_range:
        if sigma[-1] <= 0:
            raise ValueError("gram is zero: the normal space is trivial and λ is undefined")
        keep = sigma > rtol * sigma[-1]
        sigma, vectors = sigma[keep], vectors[:, keep]
    return vectors * np.sqrt(sigma)


def _rank_deficient(gram: np.ndarray, rtol: float) -> bool:
    sigma = np.linalg.eigvalsh(gram)
    return bool(sigma[0] <= rtol * max(sigma[-1], 0.0))


def _operator(grams: np.ndarray, restrict_to_range: bool, rtol: float):
    """The matrices the iteration uses: ``("row", G)`` or, on the range of G, ``("root", J)``.

    The row form is the paper's ``1_N − (η/B) G_[Ξ]`` on coefficient vectors; it is used unless
    the range restriction changes something (``G`` singular), where the root form of
    :func:`_root` works in ``R^{rank G}``.
    """
    if restrict_to_range and any(_rank_deficient(g, rtol) for g in grams):
        roots = [_root(g, True, rtol) for g in grams]
        ranks = {r.shape[1] for r in roots}
        if len(ranks) > 1:
            raise ValueError(
                "restrict_to_range=True needs Gram matrices of one rank in a stack, got ranks "
                f"{sorted(ranks)}"
            )
        return "root", np.stack(roots)
    return "row", grams


def _batch_indices(gen: np.random.Generator, n_steps: int, n_streams: int, n: int, bmax: int):
    """Random batches for ``n_steps`` steps and ``n_streams`` streams, shape ``(steps, S, bmax)``.

    Each row is a uniformly random ordered ``bmax``-subset of ``[n]``, so that every prefix of
    length ``B ≤ bmax`` is a uniformly random ``B``-subset: chains with different batch sizes
    can share one stream (common random numbers).
    """
    if bmax == 1:
        return gen.integers(0, n, size=(n_steps, n_streams, 1))
    keys = gen.random((n_steps, n_streams, n))
    if 4 * bmax < n:
        part = np.argpartition(keys, bmax - 1, axis=-1)[..., :bmax]
        order = np.argsort(np.take_along_axis(keys, part, axis=-1), axis=-1)
        return np.take_along_axis(part, order, axis=-1)
    return np.argsort(keys, axis=-1)[..., :bmax]


def _start_vectors(gen: np.random.Generator, v0, n_streams: int, n: int) -> np.ndarray:
    """``(S, N)`` coefficient vectors: ``v0`` (one or one per chain) or seeded normals."""
    if v0 is None:
        return gen.standard_normal((n_streams, n))
    start = _checks.finite_array("v0", v0, ndim=(1, 2))
    if start.shape[-1] != n or (start.ndim == 2 and start.shape[0] != n_streams):
        raise ValueError(
            f"v0 must have shape ({n},) or (n_chains, {n}) = ({n_streams}, {n}), got {start.shape}"
        )
    return np.broadcast_to(start, (n_streams, n)).copy()


def _summarise(sums: np.ndarray, counts: np.ndarray, axis_streams: int):
    """Value and batch-means standard error from block sums ``(n_blocks, ..., S, ...)``."""
    total = sums.sum(axis=(0, axis_streams)) / (counts.sum() * sums.shape[axis_streams])
    means = sums / counts.reshape((-1,) + (1,) * (sums.ndim - 1))
    means = np.moveaxis(means, axis_streams, 1)
    means = means.reshape((-1, *means.shape[2:]))
    finite = np.isfinite(means).all(axis=0)
    safe = np.where(finite, means, 0.0)
    stderr = safe.std(axis=0, ddof=1) / math.sqrt(safe.shape[0])
    value = np.where(finite, total, -np.inf)
    return value, np.where(finite, stderr, 0.0)


# --------------------------------------------------------------------------------------------
# the iteration
# --------------------------------------------------------------------------------------------


def _top_exponent_engine(
    form: str,
    mats: np.ndarray,
    weights: np.ndarray,
    start: np.ndarray,
    gen: np.random.Generator,
    n_steps: int,
    burn_in: int,
    n_blocks: int,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[np.ndarray, np.ndarray]:
    """Renormalised power iteration for many chains at once.

    ``mats`` is ``(M, N, k)`` (``G`` for the row form, ``J`` for the root form), ``weights`` is
    ``(M or 1, bmax, C)`` with ``η_c / B_c`` in the first ``B_c`` rows of chain ``c`` and 0 below,
    and ``start`` holds ``S`` coefficient vectors. The state has shape ``(M, S, k, C)``: chain
    ``(m, s, c)`` uses matrix ``m``, batch stream ``s`` and learning rate / batch size ``c``.
    Each step is one gather, one batched product and one scatter (row form: only the ``B`` rows
    in the batch change) or one more product (root form). Returns the sums of ``log ‖v_n‖``
    (after renormalising every step) over the post-burn-in blocks, shape
    ``(n_blocks, M, S, C)``, and the block lengths.
    """
    n_mats, n, _ = mats.shape
    n_streams = start.shape[0]
    bmax, n_chains = weights.shape[-2:]
    G = torch.as_tensor(mats, dtype=dtype, device=device)
    W = torch.as_tensor(weights, dtype=dtype, device=device).unsqueeze(1)
    v0 = torch.as_tensor(start, dtype=dtype, device=device)
    if form == "row":
        V = v0[None, :, :, None].expand(n_mats, n_streams, n, n_chains).clone()
    else:
        V = torch.einsum("mnk,sn->msk", G, v0)[..., None].expand(-1, -1, -1, n_chains).clone()
    norms = torch.linalg.vector_norm(V, dim=2, keepdim=True)
    if not bool((norms > 0).all()):
        raise ValueError("v0 must not lie in the kernel of gram (it is the zero normal vector)")
    V /= norms

    n_post = n_steps - burn_in
    length = n_post // n_blocks
    block_of = np.minimum(np.arange(n_post) // length, n_blocks - 1)
    counts = np.bincount(block_of, minlength=n_blocks).astype(float)
    sums = torch.zeros(n_blocks, n_mats, n_streams, n_chains, dtype=torch.float64, device=device)
    buffer = torch.empty(_CHUNK, n_mats, n_streams, n_chains, dtype=dtype, device=device)
    done = 0
    while done < n_steps:
        m = min(_CHUNK, n_steps - done)
        batches = torch.as_tensor(_batch_indices(gen, m, n_streams, n, bmax), device=device)
        for j in range(m):
            idx = batches[j]  # (S, bmax)
            rows = G[:, idx]  # (M, S, bmax, k)
            prod = rows @ V  # (M, S, bmax, C)
            prod.mul_(W)
            if form == "row":
                target = idx[None, :, :, None].expand(n_mats, n_streams, bmax, n_chains)
                V.scatter_add_(2, target, prod.neg_())
            else:
                V.sub_(rows.transpose(-1, -2) @ prod)
            # (a strided vector_norm over dim 2 is ~10x slower than this on CPU)
            norm = V.square().sum(dim=2).sqrt_()
            buffer[j] = norm
            V.div_(torch.where(norm > 0, norm, 1.0).unsqueeze(2))
        post = np.arange(done, done + m) - burn_in
        keep = post >= 0
        if keep.any():
            ids = torch.as_tensor(block_of[post[keep]], device=device)
            logs = torch.log(buffer[:m][torch.as_tensor(keep, device=device)].to(torch.float64))
            sums.index_add_(0, ids, logs)
        done += m
    return sums.cpu().numpy(), counts


def _check_common(eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype):
    eta = _checks.positive_float("eta", eta)
    n_steps, burn_in = _steps(n_steps, burn_in)
    n_chains = _checks.integer("n_chains", n_chains, minimum=1)
    n_blocks = _checks.integer("n_blocks", n_blocks, minimum=2)
    if n_steps - burn_in < n_blocks:
        raise ValueError(
            f"n_steps - burn_in must be at least n_blocks={n_blocks} (one step per block), "
            f"got {n_steps - burn_in}"
        )
    rtol = _checks.positive_float("rtol", rtol)
    device, dtype = _torch_setup(device, dtype)
    return eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype


def lyapunov_exponent(
    gram,
    eta: float,
    batch_size: int = 1,
    n_steps: int = 20_000,
    seed: SeedLike = 0,
    burn_in: int | None = None,
    *,
    n_chains: int = 4,
    n_blocks: int = 10,
    v0=None,
    restrict_to_range: bool = False,
    rtol: float = 1e-10,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> LyapunovEstimate:
    """Top Lyapunov exponent ``λ`` of mini-batch SGD at an interpolating minimum.

    Estimates (Chemnitz & Engel 2025, eq. 2.19; Sec. 2.7 for batches of size ``B``)

        ``λ = lim_n (1/n) E log ‖A_{Ξ_n} ⋯ A_{Ξ_1}‖``,   ``A_Ξ = 1_N − (η/B) G_[Ξ]``,

    which equals the exponent of eqs. 2.12–2.13 on the normal space. By the multiplicative
    ergodic theorem (Theorem 2.1 there) ``(1/n) log ‖A_{Ξ_n} ⋯ A_{Ξ_1} v‖ → λ`` almost surely
    for almost every start ``v``, so each chain iterates ``v ← A_Ξ v / ‖A_Ξ v‖`` and averages the
    logarithms of the norms after a burn-in. Batches are uniform ``B``-subsets, i.i.d. over
    steps; the loss convention is ``L_i = ½ (F − z_i)²`` (see the module docstring).

    Exact cases: for ``B = N`` (which includes ``N = 1``) every factor is ``1_N − (η/N) G``, so
    ``λ = μ = log ‖1_N − (η/N) G‖`` (eq. 2.18, :func:`dsnn.gradient_descent.gd_exponent`) is
    returned with standard error 0. When products become exactly zero (a singular factor such
    as ``η G_ii / B = 1`` for orthogonal gradients in every direction) the value is ``-inf``.

    Parameters
    ----------
    gram : array-like of shape ``(N, N)``
        Gram matrix ``G_ij = g_i · g_j`` (symmetric positive semi-definite), e.g. from
        :func:`ntk_gram`.
    eta : float
        Learning rate ``η > 0``.
    batch_size : int
        ``B`` in ``[1, N]``.
    n_steps : int
        Steps per chain, including the burn-in.
    seed : int, numpy Generator or None
        Seeds the batch sequences and the start vectors (two independent streams, so a given
        ``v0`` does not change the batches).
    burn_in : int or None
        Steps discarded before averaging; default ``n_steps // 10``. Must be below ``n_steps``.
    n_chains : int
        Independent chains run as one batch.
    n_blocks : int
        Blocks per chain for the batch-means standard error (``>= 2``).
    v0 : array-like of shape ``(N,)`` or ``(n_chains, N)``, optional
        Start coefficient vectors (the normal vector ``Σ v_i g_i``); random when None.
    restrict_to_range : bool
        Work on the range of ``G`` (the normal space when the gradients are linearly
        dependent); see the module docstring.
    rtol : float
        Relative size below which an eigenvalue of ``G`` counts as zero (with the option above).
    device : str, torch.device or None
        Where to iterate; None is the CPU (the matrices are small).
    dtype : torch.dtype
        Floating type of the iteration (the logarithms are summed in float64).

    Returns
    -------
    LyapunovEstimate
        ``.value`` and ``.stderr`` (batch means over ``n_blocks × n_chains`` blocks).
    """
    gram = _gram("gram", gram)
    n = gram.shape[0]
    batch_size = _batch_size(batch_size, n)
    eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype = _check_common(
        eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype
    )
    if batch_size == n:
        mu = _gd.gd_exponent(gram, eta, restrict_to_range=restrict_to_range, rtol=rtol)
        return LyapunovEstimate(mu, 0.0, n_steps, burn_in, n_chains, exact=True)
    gen = as_generator(seed)
    gen_batches, gen_start = gen.spawn(2)
    start = _start_vectors(gen_start, v0, n_chains, n)
    form, mats = _operator(gram[None], restrict_to_range, rtol)
    weights = np.full((1, batch_size, 1), eta / batch_size)
    sums, counts = _top_exponent_engine(
        form, mats, weights, start, gen_batches, n_steps, burn_in, n_blocks, device, dtype
    )
    value, stderr = _summarise(sums[:, 0, :, 0], counts, axis_streams=1)
    return LyapunovEstimate(float(value), float(stderr), n_steps, burn_in, n_chains)


def lyapunov_exponent_parameter_space(
    jacobian,
    eta: float,
    batch_size: int = 1,
    n_steps: int = 20_000,
    seed: SeedLike = 0,
    burn_in: int | None = None,
    *,
    n_chains: int = 4,
    n_blocks: int = 10,
    v0=None,
    rtol: float = 1e-10,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> LyapunovEstimate:
    """``λ`` from the ``D × D`` parameter-space factors restricted to the normal space.

    The definition itself (Chemnitz & Engel 2025, eqs. 2.12–2.13): iterate
    ``w ← (1_D − (η/B) Σ_{i∈Ξ} g_i g_iᵀ) w = w − (η/B) J_Ξᵀ (J_Ξ w)`` for ``w`` in the normal space
    ``N(x*) = span{g_i}``, where ``J`` has the rows ``g_i``. Tangent directions are neutral
    (factor 1), so rounding errors that leak into them would eventually dominate a decaying
    normal component; every step therefore projects ``w`` back onto ``N(x*)`` (an orthonormal
    basis from the SVD of ``J``). This is the reference the NTK form (:func:`lyapunov_exponent`,
    ``N × N`` instead of ``D × D``) is checked against: with the same ``seed`` both draw the same
    batches and start from the same normal vector ``Jᵀ v0``, so their estimates differ only by
    ``O(log cond(J) / n_steps)``.

    Parameters
    ----------
    jacobian : array-like or tensor of shape ``(N, D)``
        Per-sample gradients ``g_i`` as rows (:func:`dsnn.hessian.per_sample_gradients`).
    eta, batch_size, n_steps, seed, burn_in, n_chains, n_blocks, v0, rtol, device, dtype
        As in :func:`lyapunov_exponent`; ``rtol`` sets which singular values of ``J`` count as
        zero for the normal-space basis.
    """
    if isinstance(jacobian, torch.Tensor):
        jac_t = _checks.finite_tensor("jacobian", jacobian.detach(), ndim=2)
    else:
        jac_t = torch.as_tensor(_checks.finite_array("jacobian", jacobian, ndim=2))
    n = jac_t.shape[0]
    batch_size = _batch_size(batch_size, n)
    eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype = _check_common(
        eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype
    )
    gen = as_generator(seed)
    gen_batches, gen_start = gen.spawn(2)
    start = _start_vectors(gen_start, v0, n_chains, n)
    J = jac_t.to(device=device, dtype=dtype)
    _, singular, vh = torch.linalg.svd(J, full_matrices=False)
    if float(singular[0]) == 0.0:
        raise ValueError("jacobian is zero: the normal space is trivial and λ is undefined")
    basis = vh[singular > rtol * singular[0]].T  # (D, r), orthonormal columns
    w = torch.as_tensor(start, dtype=dtype, device=device) @ J  # (S, D) = Jᵀ v0
    norm = torch.linalg.vector_norm(w, dim=1, keepdim=True)
    if not bool((norm > 0).all()):
        raise ValueError("v0 must not give the zero normal vector Jᵀ v0")
    w = w / norm
    coef = eta / batch_size
    n_post = n_steps - burn_in
    length = n_post // n_blocks
    block_of = np.minimum(np.arange(n_post) // length, n_blocks - 1)
    counts = np.bincount(block_of, minlength=n_blocks).astype(float)
    sums = np.zeros((n_blocks, n_chains))
    done = 0
    while done < n_steps:
        m = min(_CHUNK, n_steps - done)
        batches = torch.as_tensor(_batch_indices(gen_batches, m, n_chains, n, batch_size))
        logs = torch.empty(m, n_chains, dtype=torch.float64)
        for j in range(m):
            rows = J[batches[j].to(device)]  # (S, B, D)
            inner = rows @ w.unsqueeze(-1)  # (S, B, 1)
            w = w - coef * (rows.transpose(1, 2) @ inner).squeeze(-1)
            w = (w @ basis) @ basis.T
            norm = torch.linalg.vector_norm(w, dim=1)
            logs[j] = torch.log(norm.to(torch.float64)).cpu()
            w = w / torch.where(norm > 0, norm, torch.ones_like(norm)).unsqueeze(1)
        post = np.arange(done, done + m) - burn_in
        keep = post >= 0
        if keep.any():
            np.add.at(sums, block_of[post[keep]], logs.numpy()[keep])
        done += m
    value, stderr = _summarise(sums, counts, axis_streams=1)
    return LyapunovEstimate(float(value), float(stderr), n_steps, burn_in, n_chains)


def lyapunov_spectrum(
    gram,
    eta: float,
    batch_size: int = 1,
    n_steps: int = 20_000,
    seed: SeedLike = 0,
    burn_in: int | None = None,
    *,
    n_exponents: int | None = None,
    n_chains: int = 4,
    n_blocks: int = 10,
    restrict_to_range: bool = False,
    rtol: float = 1e-10,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> LyapunovSpectrum:
    """The leading Lyapunov exponents ``λ_1 ≥ λ_2 ≥ …`` of the SGD products, by QR.

    Benettin's method: an orthonormal frame ``Q`` of ``p`` vectors is pushed through the factors
    ``A_Ξ = 1_N − (η/B) G_[Ξ]`` (eq. 2.19) and re-orthonormalised, ``A_Ξ Q = Q' R``; the averages
    of ``log |R_jj|`` converge to the exponents (Oseledets; Chemnitz & Engel 2025, Theorem 2.1).
    ``λ_1`` is the ``λ`` of Theorem B. Their sum over the whole space is
    ``E log |det A_Ξ|`` (:func:`determinant_bound` times the dimension), exactly.

    For ``B = N`` the exact values ``log |1 − η σ_j / N|`` (``σ_j`` the eigenvalues of ``G``,
    nonzero ones only with ``restrict_to_range``) are returned, sorted.

    Parameters
    ----------
    n_exponents : int or None
        How many exponents ``p`` (default: all, ``N`` or ``rank G``).
    gram, eta, batch_size, n_steps, seed, burn_in, n_chains, n_blocks, restrict_to_range, rtol,
    device, dtype
        As in :func:`lyapunov_exponent`.
    """
    gram = _gram("gram", gram)
    n = gram.shape[0]
    batch_size = _batch_size(batch_size, n)
    eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype = _check_common(
        eta, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype
    )
    form, mats = _operator(gram[None], restrict_to_range, rtol)
    mat = mats[0]
    dim = mat.shape[1]
    p = dim if n_exponents is None else _checks.integer("n_exponents", n_exponents, minimum=1)
    if p > dim:
        raise ValueError(f"n_exponents must be at most the dimension {dim}, got {p}")
    if batch_size == n:
        sigma = np.linalg.eigvalsh(gram)
        if restrict_to_range:
            sigma = sigma[sigma > rtol * sigma[-1]]
        radius = np.abs(1.0 - eta * sigma / n)
        logs = np.full(radius.shape, -np.inf)
        np.log(radius, out=logs, where=radius > 0)
        values = np.sort(logs)[::-1][:p]
        return LyapunovSpectrum(values, np.zeros(p), n_steps, burn_in, n_chains, exact=True)

    gen = as_generator(seed)
    gen_batches, gen_start = gen.spawn(2)
    M = torch.as_tensor(mat, dtype=dtype, device=device)
    frame = torch.as_tensor(gen_start.standard_normal((n_chains, dim, p)), dtype=dtype)
    Q = torch.linalg.qr(frame.to(device)).Q
    coef = eta / batch_size
    n_post = n_steps - burn_in
    length = n_post // n_blocks
    block_of = np.minimum(np.arange(n_post) // length, n_blocks - 1)
    counts = np.bincount(block_of, minlength=n_blocks).astype(float)
    sums = torch.zeros(n_blocks, n_chains, p, dtype=torch.float64, device=device)
    buffer = torch.empty(_CHUNK, n_chains, p, dtype=dtype, device=device)
    done = 0
    while done < n_steps:
        m = min(_CHUNK, n_steps - done)
        batches = torch.as_tensor(_batch_indices(gen_batches, m, n_chains, n, batch_size))
        batches = batches.to(device)
        for j in range(m):
            idx = batches[j]  # (S, B)
            rows = M[idx]  # (S, B, k)
            prod = (rows @ Q).mul_(coef)  # (S, B, p)
            if form == "row":
                Q = Q.scatter_add(1, idx[..., None].expand(-1, -1, p), prod.neg_())
            else:
                Q = Q - rows.transpose(1, 2) @ prod
            Q, R = torch.linalg.qr(Q)
            buffer[j] = R.diagonal(dim1=-2, dim2=-1).abs()
        post = np.arange(done, done + m) - burn_in
        keep = post >= 0
        if keep.any():
            ids = torch.as_tensor(block_of[post[keep]], device=device)
            logs = torch.log(buffer[:m][torch.as_tensor(keep, device=device)].to(torch.float64))
            sums.index_add_(0, ids, logs)
        done += m
    value, stderr = _summarise(sums.cpu().numpy(), counts, axis_streams=1)
    return LyapunovSpectrum(value, stderr, n_steps, burn_in, n_chains)


def phase_diagram(
    gram,
    etas,
    batch_sizes,
    n_steps: int = 20_000,
    seed: SeedLike = 0,
    burn_in: int | None = None,
    *,
    n_chains: int = 1,
    n_blocks: int = 10,
    restrict_to_range: bool = False,
    rtol: float = 1e-10,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> PhaseDiagram:
    """``λ(η, B)`` on a whole grid of learning rates and batch sizes, as one batched iteration.

    Every grid point is one chain of :func:`lyapunov_exponent`'s power iteration, and all
    chains advance together: per step one gather of the batch rows of ``G``, one batched product
    and one scatter into the ``B`` changed coordinates (the structure of
    ``1_N − (η/B) G_[Ξ]``, eq. 2.19 and Sec. 2.7 of Chemnitz & Engel 2025). Chains use **common
    random numbers**: in each step and stream one random ordering of ``[N]`` is drawn, and the
    chain with batch size ``B`` uses its first ``B`` entries (a uniform ``B``-subset), for every
    learning rate; all chains of a stream also share the start vector. The differences between
    neighbouring grid points are then much less noisy than the values, and the sign changes of
    ``λ`` are sharp. Columns with ``B = N`` are filled with the exact ``μ``.

    Parameters
    ----------
    gram : array-like of shape ``(N, N)`` or ``(M, N, N)``
        One Gram matrix, or a stack of them (e.g. along a training run); a stack is computed in
        the same batched iteration, with the same batches for every matrix.
    etas : array-like of shape ``(n_eta,)``
        Learning rates, ``> 0``.
    batch_sizes : array-like of int, shape ``(n_batch,)``
        Batch sizes in ``[1, N]``.
    n_steps, seed, burn_in, n_blocks, restrict_to_range, rtol, device, dtype
        As in :func:`lyapunov_exponent`.
    n_chains : int
        Independent streams (replicates) per grid point; the standard error pools their blocks.

    Returns
    -------
    PhaseDiagram
        ``value`` and ``stderr`` of shape ``(n_eta, n_batch)`` (``(M, n_eta, n_batch)`` for a
        stack), and ``mu`` per learning rate.
    """
    grams, single = _gram_stack("gram", gram)
    n_mats, n, _ = grams.shape
    eta_grid = _checks.finite_array("etas", etas, ndim=1)
    if (eta_grid <= 0).any():
        raise ValueError(f"etas must all be > 0, got minimum {eta_grid.min():g}")
    sizes = np.asarray(batch_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"batch_sizes must be a non-empty 1-D array of integers, got {sizes!r}")
    for b in sizes:
        _batch_size(int(b), n)
    _, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype = _check_common(
        1.0, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype
    )
    mu = np.array(
        [
            [
                _gd.gd_exponent(g, e, restrict_to_range=restrict_to_range, rtol=rtol)
                for e in eta_grid
            ]
            for g in grams
        ]
    )
    value = np.empty((n_mats, eta_grid.size, sizes.size))
    stderr = np.zeros_like(value)
    full = sizes == n
    value[:, :, full] = mu[:, :, None]
    simulated = np.flatnonzero(~full)
    if simulated.size:
        sim_sizes = sizes[simulated]
        bmax = int(sim_sizes.max())
        # chain c = (eta index, batch index): weight eta/B on the first B rows of the batch
        eta_c = np.repeat(eta_grid, sim_sizes.size)
        size_c = np.tile(sim_sizes, eta_grid.size)
        rows = np.arange(bmax)[:, None]
        weights = np.where(rows < size_c[None, :], eta_c / size_c, 0.0)[None]
        gen = as_generator(seed)
        gen_batches, gen_start = gen.spawn(2)
        start = _start_vectors(gen_start, None, n_chains, n)
        form, mats = _operator(grams, restrict_to_range, rtol)
        sums, counts = _top_exponent_engine(
            form, mats, weights, start, gen_batches, n_steps, burn_in, n_blocks, device, dtype
        )
        val, err = _summarise(sums, counts, axis_streams=2)  # (M, C)
        value[:, :, simulated] = val.reshape(n_mats, eta_grid.size, sim_sizes.size)
        stderr[:, :, simulated] = err.reshape(n_mats, eta_grid.size, sim_sizes.size)
    if single:
        value, stderr, mu = value[0], stderr[0], mu[0]
    return PhaseDiagram(eta_grid, sizes.copy(), value, stderr, mu, n_steps, burn_in, n_chains)


@dataclass
class Threshold:
    """First learning rate at which ``λ`` turns positive, with the bracket it was located in.

    Attributes
    ----------
    value : float or ndarray
        Midpoint of the final bracket; NaN where the scan found no crossing. Shape ``()`` for one
        Gram matrix and one batch size, ``(n_batch,)``, ``(M,)`` or ``(M, n_batch)`` otherwise.
    lower, upper : float or ndarray
        The final bracket: ``λ(lower) < 0 ≤ λ(upper)`` for the common batch sequence
        (``lower = upper`` for the exact ``B = N`` values).
    """

    value: np.ndarray | float
    lower: np.ndarray | float
    upper: np.ndarray | float


def lyapunov_threshold(
    gram,
    batch_sizes,
    etas,
    n_steps: int = 5_000,
    seed: SeedLike = 0,
    burn_in: int | None = None,
    *,
    n_bisect: int = 10,
    n_chains: int = 1,
    n_blocks: int = 10,
    restrict_to_range: bool = False,
    rtol: float = 1e-10,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> Threshold:
    """The SGD stability threshold ``η_LE(B)``: the first ``η`` at which ``λ(η)`` crosses 0.

    ``λ`` is scanned on the grid ``etas`` (one :func:`phase_diagram` call), and the first
    upward crossing is then bisected ``n_bisect`` times. Every evaluation of every matrix and
    batch size runs in one batched iteration with a learning rate per chain, and all evaluations
    share one batch sequence (common random numbers), so the bisection follows a single
    realisation of ``η ↦ λ(η)``. This is the analogue for SGD of the GD threshold
    ``2N / σ_max(G)`` (where ``μ`` of eq. 2.18 crosses 0), and like it, it is decided by the top of
    the spectrum: a small eigenvalue of ``G`` pins ``λ`` just below 0 for every small ``η`` but
    does not move the crossing. For ``B = N`` the exact ``2N / σ_max`` is returned.

    Parameters
    ----------
    gram : array-like of shape ``(N, N)`` or ``(M, N, N)``
        One Gram matrix or a stack.
    batch_sizes : int or array-like of int
        One batch size ``B`` in ``[1, N]`` or several.
    etas : array-like
        Increasing grid of learning rates ``> 0`` for the scan; it must start where ``λ < 0``
        (otherwise the result is NaN with ``upper = etas[0]``; with no crossing on the grid it
        is NaN with ``lower = etas[-1]``).
    n_bisect : int
        Bisection steps after the scan (the bracket shrinks by ``2^-n_bisect``).
    n_steps, seed, burn_in, n_chains, n_blocks, restrict_to_range, rtol, device, dtype
        As in :func:`lyapunov_exponent`, for every evaluation.
    """
    grams, single = _gram_stack("gram", gram)
    n_mats, n, _ = grams.shape
    scalar_b = isinstance(batch_sizes, numbers.Integral) and not isinstance(batch_sizes, bool)
    sizes = np.atleast_1d(np.asarray(batch_sizes))
    if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(
            f"batch_sizes must be an integer or a 1-D array of integers, got {sizes!r}"
        )
    for b in sizes:
        _batch_size(int(b), n)
    grid = _checks.finite_array("etas", etas, ndim=1)
    if (grid <= 0).any() or (np.diff(grid) <= 0).any():
        raise ValueError("etas must be positive and strictly increasing")
    n_bisect = _checks.integer("n_bisect", n_bisect)
    _, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype = _check_common(
        1.0, n_steps, burn_in, n_chains, n_blocks, rtol, device, dtype
    )
    lower = np.full((n_mats, sizes.size), np.nan)
    upper = np.full((n_mats, sizes.size), np.nan)
    full = sizes == n
    top = np.array([np.linalg.eigvalsh(g)[-1] for g in grams])
    lower[:, full] = upper[:, full] = (2 * n / top)[:, None]
    sim = np.flatnonzero(~full)
    if sim.size:
        # one integer seed for the scan and every bisection step: the same batches each time
        base = int(as_generator(seed).integers(2**62))
        common = {
            "n_chains": n_chains,
            "n_blocks": n_blocks,
            "restrict_to_range": restrict_to_range,
            "rtol": rtol,
            "device": device,
            "dtype": dtype,
        }
        scan = phase_diagram(grams, grid, sizes[sim], n_steps, base, burn_in, **common).value
        scan = scan.reshape(n_mats, grid.size, sim.size)
        for m in range(n_mats):
            for j, col in enumerate(sim):
                values = scan[m, :, j]
                if not values[0] < 0:
                    upper[m, col] = grid[0]
                    continue
                above = np.flatnonzero(values >= 0)
                if above.size == 0:
                    lower[m, col] = grid[-1]
                    continue
                lower[m, col], upper[m, col] = grid[above[0] - 1], grid[above[0]]
        sub_lo, sub_hi = lower[:, sim], upper[:, sim]
        active = np.isfinite(sub_lo) & np.isfinite(sub_hi)
        rows = np.flatnonzero(active.any(axis=1))
        if rows.size and n_bisect:
            form, mats = _operator(grams[rows], restrict_to_range, rtol)
            sim_sizes = sizes[sim]
            bmax = int(sim_sizes.max())
            mask = np.arange(bmax)[:, None] < sim_sizes[None, :]  # (bmax, n_sim)
            for _ in range(n_bisect):
                lo, hi = sub_lo[rows], sub_hi[rows]
                mid = np.where(active[rows], 0.5 * (lo + hi), 1.0)
                weights = np.where(mask[None], (mid / sim_sizes)[:, None, :], 0.0)
                gen_batches, gen_start = as_generator(base).spawn(2)
                start = _start_vectors(gen_start, None, n_chains, n)
                sums, counts = _top_exponent_engine(
                    form,
                    mats,
                    weights,
                    start,
                    gen_batches,
                    n_steps,
                    burn_in,
                    n_blocks,
                    device,
                    dtype,
                )
                lam, _ = _summarise(sums, counts, axis_streams=2)  # (rows, n_sim)
                unstable = lam >= 0
                ok = active[rows]
                sub_lo[rows] = np.where(ok & ~unstable, mid, lo)
                sub_hi[rows] = np.where(ok & unstable, mid, hi)
        lower[:, sim], upper[:, sim] = sub_lo, sub_hi
    value = np.where(np.isfinite(lower) & np.isfinite(upper), 0.5 * (lower + upper), np.nan)
    out = [value, lower, upper]
    if scalar_b:
        out = [a[:, 0] for a in out]
    if single:
        out = [a[0] for a in out]
    if single and scalar_b:
        out = [float(a) for a in out]
    return Threshold(*out)


# --------------------------------------------------------------------------------------------
# exact results: closed forms, bounds, moments
# --------------------------------------------------------------------------------------------


def _log_abs(values: np.ndarray) -> np.ndarray:
    """``log |values|`` with ``-inf`` for zeros and no floating-point warnings."""
    magnitude = np.abs(values)
    out = np.full(magnitude.shape, -np.inf)
    np.log(magnitude, out=out, where=magnitude > 0)
    return out


def _all_batches(n: int, batch_size: int, max_batches: int) -> np.ndarray:
    count = math.comb(n, batch_size)
    if count > max_batches:
        raise ValueError(
            f"there are C({n}, {batch_size}) = {count} batches, more than "
            f"max_batches={max_batches} to enumerate; raise max_batches or use a smaller N"
        )
    return np.array(list(itertools.combinations(range(n), batch_size)), dtype=np.int64)


def codimension_one_exponent(
    curvatures, eta: float, batch_size: int = 1, *, max_batches: int = 1_000_000
) -> float:
    """Exact ``λ`` when the normal space is one-dimensional (all gradients parallel).

    With ``g_i = s_i n`` for one unit normal ``n`` the factors are the scalars
    ``1 − η h_Ξ`` with ``h_i = ‖g_i‖²`` (the normal curvature of ``L_i``) and
    ``h_Ξ = (1/B) Σ_{i∈Ξ} h_i``, so the product's logarithm is a sum of i.i.d. terms and

        ``λ = E log |1 − η h_Ξ| = C(N, B)^{-1} Σ_Ξ log |1 − η h_Ξ|``

    (derived from Chemnitz & Engel 2025, eqs. 2.12–2.13; the batch law as in Sec. 2.7). For
    ``B = N`` it is ``μ = log |1 − η mean(h)|``. ``-inf`` when some batch has ``η h_Ξ = 1``.

    Parameters
    ----------
    curvatures : array-like of shape ``(N,)``
        ``h_i = ‖g_i‖² >= 0`` (the diagonal of the rank-one Gram matrix).
    eta : float
        Learning rate ``η > 0``.
    batch_size : int
        ``B`` in ``[1, N]``.
    max_batches : int
        Largest number ``C(N, B)`` of batches to enumerate.
    """
    h = _checks.finite_array("curvatures", curvatures, ndim=1)
    if (h < 0).any():
        raise ValueError(f"curvatures must be >= 0 (they are ‖g_i‖²), got minimum {h.min():g}")
    eta = _checks.positive_float("eta", eta)
    batch_size = _batch_size(batch_size, h.size)
    max_batches = _checks.integer("max_batches", max_batches, minimum=1)
    batches = _all_batches(h.size, batch_size, max_batches)
    factors = 1.0 - eta * h[batches].mean(axis=1)
    logs = _log_abs(factors)
    return -math.inf if np.isneginf(logs).any() else float(logs.mean())


def _factor_roots(gram, eta, batch_size, restrict_to_range, rtol):
    gram = _gram("gram", gram)
    n = gram.shape[0]
    batch_size = _batch_size(batch_size, n)
    eta = _checks.positive_float("eta", eta)
    rtol = _checks.positive_float("rtol", rtol)
    return _root(gram, restrict_to_range, rtol), eta, batch_size


def _exact_setup(gram, eta, batch_size, restrict_to_range, rtol):
    """Checked inputs and the factors' matrix: ``("row", G)`` or ``("root", J)`` as in the
    iteration (the root form only where the range restriction removes a zero eigenvalue)."""
    gram = _gram("gram", gram)
    batch_size = _batch_size(batch_size, gram.shape[0])
    eta = _checks.positive_float("eta", eta)
    rtol = _checks.positive_float("rtol", rtol)
    form, mats = _operator(gram[None], restrict_to_range, rtol)
    return gram, eta, batch_size, form, mats[0]


def determinant_bound(
    gram,
    eta: float,
    batch_size: int = 1,
    *,
    restrict_to_range: bool = False,
    rtol: float = 1e-10,
    max_batches: int = 1_000_000,
) -> float:
    """Average Lyapunov exponent ``(1/k) E log |det A_Ξ|``, a lower bound for ``λ``.

    The ``k`` Lyapunov exponents of the products sum to ``E log |det A_Ξ|`` (the volume growth),
    so their mean is at most the largest: ``(1/k) E log |det A_Ξ| ≤ λ``. Computed exactly by
    enumerating the ``C(N, B)`` batches, with ``det(1 − (η/B) G_[Ξ]) = det(1_B − (η/B) G_ΞΞ)``
    (only the rows in ``Ξ`` differ from the identity). ``k = N``, or ``rank G`` when
    ``restrict_to_range`` removes zero eigenvalues (then ``G_ΞΞ`` is taken from the projection
    of ``G`` onto its range). ``-inf`` when some factor is singular.
    """
    gram, eta, batch_size, form, mat = _exact_setup(gram, eta, batch_size, restrict_to_range, rtol)
    max_batches = _checks.integer("max_batches", max_batches, minimum=1)
    n, k = mat.shape
    gram_k = mat if form == "row" else mat @ mat.T
    batches = _all_batches(n, batch_size, max_batches)
    total = 0.0
    eye = np.eye(batch_size)
    for chunk in np.array_split(batches, max(1, len(batches) // 50_000)):
        blocks = gram_k[chunk[:, :, None], chunk[:, None, :]]
        sign, logdet = np.linalg.slogdet(eye - (eta / batch_size) * blocks)
        logdet = np.where(sign == 0, -np.inf, logdet)
        if np.isneginf(logdet).any():
            return -math.inf
        total += float(logdet.sum())
    return total / (len(batches) * k)


def kingman_bound(
    gram,
    eta: float,
    batch_size: int,
    n: int,
    *,
    restrict_to_range: bool = False,
    rtol: float = 1e-10,
    max_products: int = 300_000,
) -> float:
    """Kingman's upper bound ``(1/n) E log ‖Π_n‖ ≥ λ``, exactly, by enumerating all sequences.

    ``a_n = E log ‖A_{Ξ_n} ⋯ A_{Ξ_1}‖`` is subadditive, ``a_{m+n} ≤ a_m + a_n``, so by Kingman's
    subadditive ergodic theorem ``a_n / n`` converges to ``λ = inf_n a_n / n`` (Chemnitz & Engel
    2025, Sec. 2.3): every ``n`` gives an upper bound, and the bounds decrease along ``n, 2n, 4n,
    …`` (not necessarily at every ``n``). The matrices are the ``N × N`` factors
    ``1_N − (η/B) G_[Ξ]`` of eq. 2.19 with the spectral norm (with ``restrict_to_range`` and a
    singular ``G``: the factors on the range of ``G`` in an orthonormal frame). All
    ``C(N, B)^n`` products are formed, level by level as one batched product; for
    ``n B < N`` some direction is untouched by every factor and the bound is ``≥ 0``.

    Parameters
    ----------
    n : int
        Length of the products, ``>= 1``.
    max_products : int
        Largest number ``C(N, B)^n`` of products to form.
    gram, eta, batch_size, restrict_to_range, rtol
        As in :func:`lyapunov_exponent`.
    """
    _, eta, batch_size, form, mat = _exact_setup(gram, eta, batch_size, restrict_to_range, rtol)
    n = _checks.integer("n", n, minimum=1)
    max_products = _checks.integer("max_products", max_products, minimum=1)
    n_samples, k = mat.shape
    n_batches = math.comb(n_samples, batch_size)
    if n_batches**n > max_products:
        raise ValueError(
            f"n={n} needs C({n_samples}, {batch_size})^{n} = {n_batches**n} products, more than "
            f"max_products={max_products}; use a smaller n"
        )
    batches = torch.as_tensor(_all_batches(n_samples, batch_size, max_products))
    M = torch.as_tensor(mat)
    coef = eta / batch_size
    eye = torch.eye(k, dtype=torch.float64)
    if form == "row":
        projector = torch.zeros(len(batches), n_samples, dtype=torch.float64)
        projector.scatter_(1, batches, 1.0)
        factors = eye - coef * projector[:, :, None] * M[None]  # 1 − (η/B) P_Ξ G
    else:
        rows = M[batches]  # (K, B, k)
        factors = eye - coef * (rows.transpose(1, 2) @ rows)
    products = factors
    for _ in range(n - 1):
        products = (factors[:, None] @ products[None]).reshape(-1, k, k)
    norms = torch.linalg.matrix_norm(products, ord=2)
    return float(torch.log(norms).mean()) / n


def _second_moment_parts(J: np.ndarray, eta: float, batch_size: int):
    """``E[A ⊗ A] = diag(d) + w K Kᵀ`` in the orthonormal frame (see :func:`moment_exponent`)."""
    n, k = J.shape
    sigma = (J**2).sum(axis=0)  # diag(JᵀJ)
    c = eta / batch_size
    q = batch_size * (batch_size - 1) / (n * (n - 1)) if n > 1 else 0.0
    d = (
        1.0
        - (eta / n) * (sigma[:, None] + sigma[None, :])
        + c**2 * q * sigma[:, None] * sigma[None, :]
    ).reshape(-1)
    # K has the columns vec(j_i j_iᵀ): Σ_i (j_iᵀ X j_i) j_i j_iᵀ = mat(K Kᵀ vec X)
    K = (J[:, :, None] * J[:, None, :]).reshape(n, k * k).T
    return d, K, c**2 * (batch_size / n - q)


def _secular(d: np.ndarray, K: np.ndarray, w: float, lam: float) -> float:
    """Smallest eigenvalue of ``1_N − w Kᵀ diag(1/(λ − d)) K`` (for ``λ > max d``).

    By the Weinstein–Aronszajn identity ``λ > max d`` is an eigenvalue of ``diag(d) + w K Kᵀ``
    iff this ``N × N`` matrix is singular, and the matrix increases with ``λ``; so the largest
    eigenvalue lies below ``λ`` iff the value is positive.
    """
    inner = K.T @ (K / (lam - d)[:, None])
    return float(np.linalg.eigvalsh(np.eye(K.shape[1]) - w * inner)[0])


def _largest_eigenvalue(d: np.ndarray, K: np.ndarray, w: float) -> float:
    """Largest eigenvalue of the symmetric ``diag(d) + w K Kᵀ`` (``w ≥ 0``, ``K`` tall).

    Dense for small sizes; otherwise the root of the secular function :func:`_secular` on
    ``(max d, max d + w ‖K‖²]``, which costs ``N × N`` eigenvalue problems instead of a
    ``k² × k²`` one (Lanczos converges slowly here because many eigenvalues cluster near 1).
    """
    if d.size <= 256:
        return float(np.linalg.eigvalsh(np.diag(d) + w * (K @ K.T))[-1])
    d_max = float(d.max())
    spread = w * float(np.linalg.eigvalsh(K.T @ K)[-1])
    if spread <= 0:
        return d_max
    lo = d_max + 1e-13 * max(1.0, abs(d_max), spread)
    if _secular(d, K, w, lo) >= 0:
        return d_max
    hi = d_max + spread
    return float(
        scipy.optimize.brentq(lambda lam: _secular(d, K, w, lam), lo, hi, xtol=1e-15, rtol=1e-13)
    )


def moment_exponent(
    gram,
    eta: float,
    batch_size: int = 1,
    p: int = 2,
    *,
    restrict_to_range: bool = False,
    rtol: float = 1e-10,
) -> float:
    """Second-moment Lyapunov exponent ``Λ_2 = log ρ(E[A_Ξ ⊗ A_Ξ])``, exactly.

    ``Λ_p = sup_w lim (1/n) log E ‖Π_n w‖^p`` is the growth rate of the ``p``-th moment of the
    linearised SGD (Chemnitz & Engel 2025, Appendix A, Def. A.2). Mean-square (``p = 2``)
    stability in the sense of Wu, Ma & E (2018) and Ma & Ying (2021) is ``Λ_2 < 0``. By Jensen's
    inequality ``Λ_p ≥ p λ`` (Prop. A.4 there), so ``λ ≤ Λ_2 / 2``: mean-square stability
    implies ``λ ≤ 0``, not conversely.

    For ``p = 2``, ``E ‖Π_n w‖² = ⟨vec 1, E[A ⊗ A]^n (w ⊗ w)⟩`` and the map
    ``X ↦ E[A X Aᵀ]`` preserves the positive semi-definite cone, so ``Λ_2 = log ρ(E[A ⊗ A])``.
    In an orthonormal frame of the normal space (``A = 1_k − (η/B) Jᵀ P_Ξ J`` symmetric,
    ``J Jᵀ = G``, ``JᵀJ = Σ = diag(σ)``) the expectation over uniform ``B``-subsets is in closed
    form, with ``P(i ∈ Ξ) = B/N`` and ``P(i, j ∈ Ξ) = B(B−1)/(N(N−1))`` for ``i ≠ j``:

        ``E[A X A] = X − (η/N)(ΣX + XΣ) + (η/B)² Jᵀ[q J X Jᵀ + (B/N − q) Diag(J X Jᵀ)] J``,

    ``q = B(B−1)/(N(N−1))``. As a ``k² × k²`` matrix this is a diagonal matrix plus a positive
    semi-definite matrix of rank ``N``. It is symmetric, and because the map preserves the
    positive semi-definite cone its spectral radius is an eigenvalue (Krein–Rutman), so ``ρ`` is
    its largest eigenvalue: dense for ``k ≤ 16``, above that the root of an ``N × N`` secular
    equation. No sampling: the result is exact.

    Parameters
    ----------
    gram, eta, batch_size, restrict_to_range, rtol
        As in :func:`lyapunov_exponent`.
    p : int
        The moment; only ``p = 2`` has this exact finite-dimensional formula.
    """
    J, eta, batch_size = _factor_roots(gram, eta, batch_size, restrict_to_range, rtol)
    if p != 2 or isinstance(p, bool):
        raise ValueError(f"p must be 2 (the second moment has an exact formula), got {p!r}")
    rho = _largest_eigenvalue(*_second_moment_parts(J, eta, batch_size))
    return math.log(rho) if rho > 0 else -math.inf


def mean_square_threshold(
    gram, batch_size: int = 1, *, restrict_to_range: bool = False, rtol: float = 1e-10
) -> float:
    """Largest learning rate with mean-square stability: where ``Λ_2(η)`` crosses 0.

    For a fixed positive definite ``X``, ``E[A X A] − X = −η E[KX + XK] + η² E[KXK]`` with
    ``K = (1/B) Jᵀ P_Ξ J`` and ``E[KXK] ⪰ 0``, so if ``E[A X A] ≺ X`` at some ``η`` it holds at
    every smaller ``η``: the mean-square stable learning rates form an interval ``(0, η_MS)``.
    Stability at one ``η`` is decided without an eigenvalue problem of size ``k²``: with
    ``E[A ⊗ A] = diag(d) + w K Kᵀ`` (see :func:`moment_exponent`), ``ρ < 1`` iff ``max d < 1``
    and ``1_N − w Kᵀ diag(1/(1 − d)) K`` is positive definite (Weinstein–Aronszajn). The
    threshold is bracketed by doubling from a small ``η`` and located by bisection to relative
    accuracy ``1e-12``. Returns ``inf`` when ``G`` has a zero eigenvalue on the space worked on
    (a neutral direction: ``Λ_2 ≥ 0`` for every ``η``); use ``restrict_to_range=True`` for
    dependent gradients.
    """
    J, _, batch_size = _factor_roots(gram, 1.0, batch_size, restrict_to_range, rtol)
    sigma = (J**2).sum(axis=0)
    if sigma.min() <= rtol * sigma.max():
        return math.inf

    def stable(eta: float) -> bool:
        d, K, w = _second_moment_parts(J, eta, batch_size)
        if d.max() >= 1.0:
            return False
        return _secular(d, K, w, 1.0) > 0

    lo = 0.01 * J.shape[0] / sigma.max()
    for _ in range(200):
        if stable(lo):
            break
        lo /= 2
    hi = 2 * lo
    for _ in range(200):
        if not stable(hi):
            break
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------
# networks and SGD runs
# --------------------------------------------------------------------------------------------


def ntk_gram(model: torch.nn.Module, inputs) -> np.ndarray:
    """Gram matrix ``G_ij = g_i · g_j`` of a network's per-sample gradients at its parameters.

    ``g_i = ∇_x F(x, y_i)`` over all trainable parameters ``x`` of ``model`` (the empirical
    neural tangent kernel on the inputs; Chemnitz & Engel 2025, Sec. 2.5). A thin wrapper of
    :func:`dsnn.hessian.ntk_gram` (one batched backward pass); the model must return one scalar
    per input, shape ``(N,)`` or ``(N, 1)``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have at least one parameter with requires_grad=True")
    return _hessian.ntk_gram(model, params, inputs)


def product_sample_losses(y, z) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-sample losses ``L_i(x) = ½ (x1 x2 y_i − z_i)²`` of the product model, batched.

    Returns a function mapping parameters of shape ``(R, 2)`` to losses of shape ``(R, N)``,
    for :func:`sgd_batch` (the mean over ``i`` is :func:`dsnn.gradient_descent.product_loss`).
    """
    y_t = _checks.finite_tensor("y", y, ndim=1)
    z_t = _checks.finite_tensor("z", z, ndim=1)
    if y_t.shape != z_t.shape:
        raise ValueError(f"y and z must have the same length, got {y_t.numel()} and {z_t.numel()}")

    def losses(x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"x must have shape (R, 2), got {tuple(x.shape)}")
        return 0.5 * ((x[:, :1] * x[:, 1:2]) * y_t.to(x) - z_t.to(x)) ** 2

    return losses


def sgd_batch(
    sample_loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x0,
    eta,
    batch_size: int,
    n_steps: int,
    *,
    seed: SeedLike = 0,
    divergence_threshold: float = 1e12,
) -> _gd.BatchGDResult:
    """``R`` independent mini-batch SGD runs ``x ← x − η ∇L_Ξ(x)`` as one batch.

    ``L_Ξ = (1/B) Σ_{i∈Ξ} L_i`` with ``Ξ`` a uniform ``B``-subset drawn independently for every
    run and step (Chemnitz & Engel 2025, eq. 2.8 for ``B = 1``, Sec. 2.7). One forward and one
    backward pass per step for all runs. Runs whose full loss ``(1/N) Σ L_i`` or iterate norm
    exceeds ``divergence_threshold`` are frozen at their last finite iterate and flagged.

    Parameters
    ----------
    sample_loss_fn : callable
        Maps parameters ``(R, D)`` to per-sample losses ``(R, N)``; row ``r`` must depend on row
        ``r`` of the input only (e.g. :func:`product_sample_losses`).
    x0 : array-like of shape ``(R, D)``
        Initial points.
    eta : float or array-like of shape ``(R,)``
        Learning rate(s) ``> 0``.
    batch_size : int
        ``B`` in ``[1, N]``.
    n_steps : int
        Number of SGD steps.
    seed : int, numpy Generator or None
        Seeds the batches.
    divergence_threshold : float
        Threshold for the divergence flag.

    Returns
    -------
    dsnn.gradient_descent.BatchGDResult
        ``x_final``, the full loss ``loss_final``, ``diverged`` and ``diverged_at`` per run.
    """
    if not callable(sample_loss_fn):
        raise TypeError(f"sample_loss_fn must be callable, got {type(sample_loss_fn).__name__}")
    x = _checks.finite_tensor("x0", x0, ndim=2).detach().clone()
    eta_t = _gd._learning_rates(eta, x)
    runs = x.shape[0]
    n_steps = _checks.integer("n_steps", n_steps, minimum=0)
    divergence_threshold = _checks.positive_float("divergence_threshold", divergence_threshold)
    with torch.no_grad():
        probe = sample_loss_fn(x)
    if not isinstance(probe, torch.Tensor) or probe.ndim != 2 or probe.shape[0] != runs:
        raise ValueError(f"sample_loss_fn must return per-sample losses of shape ({runs}, N)")
    n = probe.shape[1]
    batch_size = _batch_size(batch_size, n)
    gen = as_generator(seed)

    guard = _gd._BatchRuns(x, divergence_threshold)
    batches = None
    for step in range(n_steps + 1):
        x.requires_grad_(True)
        per_sample = sample_loss_fn(x)
        message = "the losses at x0 must be finite and below divergence_threshold"
        guard.record(x, per_sample.detach().mean(dim=1), step, message)
        if step == n_steps or not guard.active.any():
            break
        if step % _CHUNK == 0:
            chunk = _batch_indices(gen, _CHUNK, runs, n, batch_size)
            batches = torch.as_tensor(chunk, device=x.device)
        idx = batches[step % _CHUNK]  # (R, B)
        batch_loss = per_sample.gather(1, idx).mean(dim=1)
        (grad,) = torch.autograd.grad(batch_loss.sum(), x)
        x = guard.advance(x.detach() - eta_t * grad)
    return guard.result()


@dataclass
class SGDRecord:
    """What :func:`train_sgd` returns (finite numbers only; a blow-up stops the run).

    Attributes
    ----------
    step, loss : ndarray
        Recorded steps and the full-batch loss ``L = (1/N) Σ ½ (F − z_i)²`` there.
    gram_step : ndarray
        Steps at which the NTK Gram matrix was recorded.
    grams : ndarray of shape ``(n_recorded, N, N)``
        ``G(X_n)`` at those steps, for :func:`phase_diagram` on the stack.
    eta, batch_size : float, int
        The run's learning rate and batch size.
    diverged, diverged_at
        Whether (and at which step) the loss or parameters left every bounded region.
    """

    step: np.ndarray
    loss: np.ndarray
    gram_step: np.ndarray
    grams: np.ndarray
    eta: float
    batch_size: int
    diverged: bool = False
    diverged_at: int | None = None
    final_params: np.ndarray = field(default_factory=lambda: np.empty(0))


def train_sgd(
    model: torch.nn.Module,
    X,
    y,
    eta: float,
    batch_size: int,
    n_steps: int,
    *,
    seed: SeedLike = 0,
    record_every: int = 1,
    gram_every: int | None = None,
    device: str | torch.device | None = None,
    divergence_threshold: float = 1e12,
) -> SGDRecord:
    """Plain mini-batch SGD on the half-MSE loss, recording the loss and the NTK Gram matrix.

    Each step draws a uniform ``B``-subset ``Ξ`` of the ``N`` samples and updates the
    parameters of ``model`` in place, ``x ← x − η ∇L_Ξ(x)`` with
    ``L_Ξ = (1/B) Σ_{i∈Ξ} ½ (F(x, X_i) − y_i)²`` (Chemnitz & Engel 2025, eq. 2.8 and Sec. 2.7;
    no momentum). Every ``gram_every`` steps it stores ``G(X_n)`` (:func:`ntk_gram`), from which
    ``λ(X_n)`` follows (:func:`phase_diagram` on the stack): the quantity Sec. 2.6 of the paper
    proposes to follow along training.

    Parameters
    ----------
    model : torch.nn.Module
        One scalar output per sample; updated in place.
    X, y : tensor or array
        Inputs and targets (first dimension ``N``).
    eta : float
        Learning rate ``> 0``.
    batch_size : int
        ``B`` in ``[1, N]``.
    n_steps : int
        Number of SGD steps.
    seed : int, numpy Generator or None
        Seeds the batches (the model is seeded where it is built).
    record_every : int
        Record the full-batch loss every this many steps (and at the last step).
    gram_every : int or None
        Record ``G`` every this many steps; None: never.
    device : str, torch.device or None
        Where to train; None keeps the model's device.
    divergence_threshold : float
        A recorded loss above this, or a non-finite one, stops the run with ``diverged=True``.
    """
    params, X, y = _gd._prepare_training(model, X, y, device)
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(f"y must hold one scalar target per sample, got shape {tuple(y.shape)}")
    eta = _checks.positive_float("eta", eta)
    n = X.shape[0]
    batch_size = _batch_size(batch_size, n)
    n_steps = _checks.integer("n_steps", n_steps, minimum=0)
    record_every = _checks.integer("record_every", record_every, minimum=1)
    if gram_every is not None:
        gram_every = _checks.integer("gram_every", gram_every, minimum=1)
    divergence_threshold = _checks.positive_float("divergence_threshold", divergence_threshold)
    gen = as_generator(seed)

    steps, losses, gram_steps, grams = [], [], [], []
    diverged_at = None
    batches = None
    for step in range(n_steps + 1):
        if step % record_every == 0 or step == n_steps:
            with torch.no_grad():
                value = float(_gd._half_mse(model, X, y))
            if _gd._blown_up(value, params, divergence_threshold, step):
                diverged_at = step
                break
            steps.append(step)
            losses.append(value)
        if gram_every is not None and step % gram_every == 0:
            grams.append(ntk_gram(model, X))
            gram_steps.append(step)
        if step == n_steps:
            break
        if step % _CHUNK == 0:
            batches = torch.as_tensor(
                _batch_indices(gen, _CHUNK, 1, n, batch_size)[:, 0], device=X.device
            )
        idx = batches[step % _CHUNK]
        loss = _gd._half_mse(model, X[idx], y[idx])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                if g is not None:
                    p.sub_(eta * g)
    n = X.shape[0]
    flat = torch.cat([p.detach().reshape(-1) for p in params]).cpu().numpy()
    return SGDRecord(
        step=np.asarray(steps, dtype=np.int64),
        loss=np.asarray(losses, dtype=float),
        gram_step=np.asarray(gram_steps, dtype=np.int64),
        grams=np.asarray(grams, dtype=float).reshape(-1, n, n),
        eta=eta,
        batch_size=batch_size,
        diverged=diverged_at is not None,
        diverged_at=diverged_at,
        final_params=flat,
    )


@dataclass
class StabilityTrack:
    """Stability exponents along one SGD run (what :func:`track_stability` returns).

    Attributes
    ----------
    eta, batch_size, seed
        The run's learning rate, batch size and batch seed.
    step : ndarray
        Steps at which ``G(X_n)`` was measured.
    loss : ndarray
        Full-batch loss ``(1/N) Σ ½ (F − z_i)²`` at those steps.
    lyapunov, lyapunov_stderr : ndarray
        ``λ(X_n)`` at the run's own ``(η, B)`` and its standard error (``μ``, exact, for
        ``B = N``).
    ratio_lyapunov : ndarray
        ``η / η_LE(X_n; B)``: 1 means that the run sits at its own Lyapunov threshold
        (:func:`lyapunov_threshold`); NaN where the scan found no crossing.
    ratio_gd : ndarray
        ``η / η_GD(X_n) = η σ_max(G(X_n)) / (2N)``: the same for GD (``η S_GN / 2`` with the
        Gauss–Newton sharpness ``S_GN = σ_max / N``).
    diverged, diverged_at
        Whether (and at which recorded step) the run blew up; measurements stop there.
    """

    eta: float
    batch_size: int
    seed: int
    step: np.ndarray
    loss: np.ndarray
    lyapunov: np.ndarray
    lyapunov_stderr: np.ndarray
    ratio_lyapunov: np.ndarray
    ratio_gd: np.ndarray
    diverged: bool = False
    diverged_at: int | None = None


def track_stability(
    model: torch.nn.Module,
    X,
    y,
    eta: float,
    batch_size: int,
    n_steps: int,
    *,
    every: int = 200,
    seed: int = 0,
    threshold_grid=None,
    lyapunov_steps: int = 3_000,
    n_bisect: int = 8,
    device: str | torch.device | None = None,
) -> StabilityTrack:
    """Train with SGD and follow ``λ(X_n)`` and the distance to the SGD threshold along the run.

    The empirical study Chemnitz & Engel (2025, Sec. 2.6) leave open: the analogue for SGD of
    tracking ``μ(X_n)`` or the sharpness along GD (the edge of stability). Every ``every`` steps
    of :func:`train_sgd` the NTK Gram matrix ``G(X_n)`` is stored; afterwards, for the whole stack
    at once, ``λ(X_n)`` at the run's ``(η, B)`` (:func:`phase_diagram`) and the threshold
    ``η_LE(X_n; B)`` (:func:`lyapunov_threshold`) are computed, with common random numbers
    across the stack. ``B = N`` is GD, for which both are exact (``μ`` and ``2N / σ_max``).

    Parameters
    ----------
    model, X, y, eta, batch_size, n_steps, seed, device
        As in :func:`train_sgd` (the model is trained in place; ``device`` is used for the
        training and for the Lyapunov iterations).
    every : int
        Measurement interval in steps.
    threshold_grid : array-like or None
        Increasing learning rates for the threshold scan; default 48 points from
        ``0.02 min_n η_GD(X_n)`` to ``2 max_n η_GD(X_n)``, geometrically spaced.
    lyapunov_steps : int
        Steps of every Lyapunov iteration (one tenth of them burn-in).
    n_bisect : int
        Bisection steps for the thresholds.
    """
    eta = _checks.positive_float("eta", eta)
    every = _checks.integer("every", every, minimum=1)
    seed = _checks.integer("seed", seed)
    record = train_sgd(
        model,
        X,
        y,
        eta,
        batch_size,
        n_steps,
        seed=seed,
        record_every=every,
        gram_every=every,
        device=device,
    )
    grams = record.grams
    steps = record.gram_step
    if record.diverged:
        keep = steps < record.diverged_at
        grams, steps = grams[keep], steps[keep]
    loss_at = dict(zip(record.step.tolist(), record.loss.tolist(), strict=True))
    loss = np.array([loss_at.get(int(s), np.nan) for s in steps])
    n = grams.shape[1] if grams.size else 0
    if not grams.size:
        empty = np.empty(0)
        return StabilityTrack(
            eta, record.batch_size, seed, steps, loss, empty, empty, empty, empty,
            record.diverged, record.diverged_at,
        )  # fmt: skip
    pd = phase_diagram(grams, [eta], [record.batch_size], lyapunov_steps, seed, device=device)
    top = np.array([np.linalg.eigvalsh(g)[-1] for g in grams])
    if threshold_grid is None:
        eta_gd = 2 * n / top[top > 0] if (top > 0).any() else np.array([eta])
        threshold_grid = np.geomspace(0.02 * eta_gd.min(), 2.0 * eta_gd.max(), 48)
    threshold = lyapunov_threshold(
        grams,
        record.batch_size,
        threshold_grid,
        lyapunov_steps,
        seed,
        n_bisect=n_bisect,
        device=device,
    )
    return StabilityTrack(
        eta=eta,
        batch_size=record.batch_size,
        seed=seed,
        step=steps,
        loss=loss,
        lyapunov=pd.value[:, 0, 0],
        lyapunov_stderr=pd.stderr[:, 0, 0],
        ratio_lyapunov=eta / threshold.value,
        ratio_gd=eta * top / (2 * n),
        diverged=record.diverged,
        diverged_at=record.diverged_at,
    )
