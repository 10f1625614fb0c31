"""Curvature of a loss without forming its Hessian: HVPs, sharpness and the NTK Gram matrix.

The *sharpness* of a loss ``L`` at parameters ``x`` is the largest eigenvalue ``λ_max`` of
``Hess L(x)``. GD with step ``η`` is linearly stable at a minimum iff ``λ_max < 2/η``
(Chemnitz & Engel 2025, Sec. 2.3), and along a GD run the sharpness rises to ``2/η`` and hovers
there, the *edge of stability* (Cohen et al. 2021). For a network with ``D`` parameters the
``D × D`` Hessian is never formed here: every function works with Hessian-vector products

    ``H v = ∇_x ( ∇_x L(x) · v )``      (Pearlmutter 1994),

computed by double backpropagation, and finds eigenvalues with Lanczos (ARPACK through
:func:`scipy.sparse.linalg.eigsh`) or power iteration.

Conventions
-----------
``loss_fn`` is a **zero-argument closure** that computes the scalar loss from the current values
of ``params``; ``params`` is one tensor or a list/tuple of tensors with ``requires_grad=True``.
For an ``nn.Module``::

    params = list(model.parameters())
    loss_fn = lambda: 0.5 * ((model(X) - y) ** 2).mean()

and for a hand-written model of a parameter vector ``x`` (a leaf tensor with
``requires_grad=True``): ``loss_fn = lambda: L(x)``, ``params = x``. Vectors in parameter space
are either *flat* (one 1-D tensor or array of the total size ``D``, the parameters concatenated in
the order of ``params``, each flattened in row-major order) or *structured* (one tensor per
parameter, with its shape).

Threads
-------
When scipy drives torch (ARPACK calling HVPs), OpenBLAS threads and torch threads compete for the
cores; on two cores this halves the speed. The eigenvalue solvers therefore limit the BLAS
thread pools to one thread *for the duration of the solve* (with :mod:`threadpoolctl`, when it is
installed) and restore them afterwards. Torch's own thread count is left alone; set it with
:func:`dsnn.device.configure_threads`.

On CUDA tensors everything works the same: the solvers move vectors to float64 numpy arrays on
the CPU and back.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as sla
import torch
from threadpoolctl import threadpool_limits

from dsnn import _checks

Params = torch.Tensor | Sequence[torch.Tensor]
LossFn = Callable[[], torch.Tensor]

__all__ = [
    "EigenResult",
    "HessianOperator",
    "hvp",
    "ntk_gram",
    "per_sample_gradients",
    "power_iteration",
    "sharpness",
    "top_eigenvalues",
]


# --------------------------------------------------------------------------------------------
# parameters and vectors
# --------------------------------------------------------------------------------------------


def _param_list(params) -> list[torch.Tensor]:
    """Return ``params`` as a non-empty list of float tensors that require grad."""
    if isinstance(params, torch.Tensor):
        plist = [params]
    elif isinstance(params, torch.nn.Module):
        raise TypeError(
            "params must be a tensor or a list/tuple of tensors, got an nn.Module; "
            "pass list(model.parameters())"
        )
    elif isinstance(params, (list, tuple)):
        plist = list(params)
    else:
        try:
            plist = list(params)
        except TypeError as err:
            raise TypeError(
                f"params must be a tensor or a list/tuple of tensors, got {type(params).__name__}"
            ) from err
    if not plist:
        raise ValueError("params must contain at least one tensor, got an empty sequence")
    for i, p in enumerate(plist):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] must be a torch.Tensor, got {type(p).__name__}")
        if not p.is_floating_point():
            raise TypeError(f"params[{i}] must be a floating-point tensor, got dtype {p.dtype}")
        if not p.requires_grad:
            raise ValueError(
                f"params[{i}] (shape {tuple(p.shape)}) must have requires_grad=True: "
                "curvature is taken with autograd"
            )
    first = plist[0]
    for i, p in enumerate(plist[1:], start=1):
        if p.dtype != first.dtype or p.device != first.device:
            raise ValueError(
                f"params must share one dtype and device; params[0] is {first.dtype} on "
                f"{first.device}, params[{i}] is {p.dtype} on {p.device}"
            )
    return plist


def _flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten(flat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    pieces = flat.split([p.numel() for p in like])
    return [piece.view_as(p) for piece, p in zip(pieces, like, strict=True)]


def _vector_to_flat(name: str, v, plist: list[torch.Tensor]) -> tuple[torch.Tensor, str]:
    """Return ``v`` as a flat tensor like the parameters, and its form.

    The form is ``"flat"``, ``"list"`` (one tensor per parameter) or ``"tensor"`` (a single
    parameter tensor's shape, other than 1-D).
    """
    dim = sum(p.numel() for p in plist)
    ref = plist[0]
    if isinstance(v, (list, tuple)) and all(isinstance(e, (torch.Tensor, np.ndarray)) for e in v):
        if len(v) != len(plist):
            raise ValueError(
                f"{name} must have one tensor per parameter ({len(plist)}), got {len(v)}"
            )
        parts = []
        for i, (vi, p) in enumerate(zip(v, plist, strict=True)):
            ti = _checks.finite_tensor(f"{name}[{i}]", vi)
            if ti.shape != p.shape:
                raise ValueError(
                    f"{name}[{i}] must have shape {tuple(p.shape)}, got {tuple(ti.shape)}"
                )
            parts.append(ti.to(device=ref.device, dtype=ref.dtype))
        return _flatten(parts), "list"
    t = _checks.finite_tensor(name, v)
    if t.ndim == 1 and t.numel() == dim:
        return t.to(device=ref.device, dtype=ref.dtype), "flat"
    if len(plist) == 1 and t.shape == ref.shape:
        return t.reshape(-1).to(device=ref.device, dtype=ref.dtype), "tensor"
    shapes = [tuple(p.shape) for p in plist]
    raise ValueError(
        f"{name} must be a flat vector of shape ({dim},) or match the parameter shapes "
        f"{shapes}, got shape {tuple(t.shape)}"
    )


def _scalar_loss(loss_fn: LossFn) -> torch.Tensor:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    loss = loss_fn()
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            "loss_fn() must return a scalar tensor (it takes no arguments and reads params), "
            f"got {type(loss).__name__}"
            + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
        )
    if not loss.requires_grad:
        raise ValueError(
            "loss_fn() returned a tensor without an autograd graph: it must be computed from "
            "params (which need requires_grad=True) and not under torch.no_grad()"
        )
    if not bool(torch.isfinite(loss.detach())):
        raise ValueError(f"loss_fn() must be finite, got {float(loss.detach())}")
    return loss.reshape(())


@contextlib.contextmanager
def _single_threaded_blas():
    """Limit BLAS to one thread while scipy drives torch; restore it afterwards."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------------------------
# Hessian-vector products
# --------------------------------------------------------------------------------------------


class HessianOperator(sla.LinearOperator):
    """The Hessian of ``loss_fn`` at the current ``params`` as a scipy ``LinearOperator``.

    The gradient ``g = ∇L`` is computed once, with its autograd graph kept
    (``create_graph=True``); each product ``H v = ∇(g · v)`` is then one backward pass through
    that graph (Pearlmutter 1994). The operator acts on float64 numpy vectors of length ``D``
    (flat convention of this module) so that ARPACK can use it; :meth:`apply` does the same on
    torch tensors without leaving the device.

    The operator keeps the autograd graph of the parameters *at construction*: changing the
    parameters in place afterwards makes it stale (autograd usually raises). Build a new one after
    each parameter update.

    Parameters
    ----------
    loss_fn : callable
        Zero-argument closure returning the scalar loss computed from ``params``.
    params : tensor or list/tuple of tensors
        The parameters (``requires_grad=True``, one dtype and device).

    Attributes
    ----------
    n_hvp : int
        Number of Hessian-vector products computed so far (the cost measure of a solver).
    dim : int
        ``D``, the total number of parameters.
    """

    def __init__(self, loss_fn: LossFn, params: Params):
        plist = _param_list(params)
        loss = _scalar_loss(loss_fn)
        grads = torch.autograd.grad(loss, plist, create_graph=True, allow_unused=True)
        self._setup(plist, grads)

    @classmethod
    def _from_gradients(cls, params: list[torch.Tensor], grads) -> HessianOperator:
        """Build the operator from gradients already computed with ``create_graph=True``."""
        op = cls.__new__(cls)
        op._setup(params, grads)
        return op

    def _setup(self, plist, grads) -> None:
        self.params = plist
        self.dim = sum(p.numel() for p in plist)
        # Gradient pieces that depend on the parameters; the others have zero derivative.
        self._grads = [None if g is None or not g.requires_grad else g for g in grads]
        self.n_hvp = 0
        super().__init__(dtype=np.dtype(np.float64), shape=(self.dim, self.dim))

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """Return ``H v`` for a flat tensor ``v`` of length ``D`` (dtype/device of the params)."""
        self.n_hvp += 1
        pieces = _unflatten(v, self.params)
        live = [i for i, g in enumerate(self._grads) if g is not None]
        if not live:  # the gradient does not depend on the parameters: H = 0
            return torch.zeros_like(v)
        products = torch.autograd.grad(
            [self._grads[i] for i in live],
            self.params,
            grad_outputs=[pieces[i] for i in live],
            retain_graph=True,
            allow_unused=True,
        )
        out = [
            torch.zeros_like(p) if h is None else h.detach()
            for h, p in zip(products, self.params, strict=True)
        ]
        return _flatten(out)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        ref = self.params[0]
        v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1))
        hv = self.apply(v.to(device=ref.device, dtype=ref.dtype))
        return hv.to(device="cpu", dtype=torch.float64).numpy().reshape(x.shape)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)  # the Hessian is symmetric

    def _adjoint(self) -> HessianOperator:
        return self


def hvp(loss_fn: LossFn, params: Params, v) -> torch.Tensor | list[torch.Tensor]:
    """Hessian-vector product ``H v = ∇_x(∇_x L(x) · v)`` by double backpropagation.

    Computes ``Hess L(x) v`` at the current parameters without forming the Hessian
    (Pearlmutter 1994): one gradient with its graph kept, then one backward pass of ``g · v``.

    Parameters
    ----------
    loss_fn : callable
        Zero-argument closure returning the scalar loss computed from ``params``, e.g.
        ``lambda: criterion(model(X), y)``.
    params : tensor or list/tuple of tensors
        The parameters, ``requires_grad=True`` (e.g. ``list(model.parameters())``).
    v : tensor, array or list/tuple of tensors
        Either *flat* — a 1-D vector of the total size ``D`` (parameters concatenated in the
        order of ``params``, each flattened row-major) — or *structured* — one tensor per
        parameter with that parameter's shape (for a single parameter tensor: a tensor of its
        shape).

    Returns
    -------
    tensor or list of tensors
        ``H v`` in the same form as ``v``: a flat tensor for a flat ``v``, a list of tensors for
        a list/tuple ``v``, a tensor of the parameter's shape for a single-tensor ``v``.
        Detached, with the dtype and device of the parameters.
    """
    plist = _param_list(params)
    flat, form = _vector_to_flat("v", v, plist)
    op = HessianOperator(loss_fn, plist)
    hv = op.apply(flat)
    if form == "flat":
        return hv
    pieces = _unflatten(hv, plist)
    return pieces[0] if form == "tensor" else pieces


# --------------------------------------------------------------------------------------------
# eigenvalues
# --------------------------------------------------------------------------------------------


@dataclass
class EigenResult:
    """One eigenpair of a Hessian, with what it cost.

    Attributes
    ----------
    eigenvalue : float
        The eigenvalue (the sharpness, for :func:`sharpness`).
    eigenvector : ndarray of shape ``(D,)``
        Unit eigenvector in the flat convention; pass it as ``v0`` to warm-start the next solve.
    n_hvp : int
        Hessian-vector products used.
    converged : bool
        Whether the stopping rule was met (always True for Lanczos, which raises otherwise).
    """

    eigenvalue: float
    eigenvector: np.ndarray
    n_hvp: int
    converged: bool = True


def _start_vector(v0, plist, seed) -> np.ndarray:
    """A float64 start vector: ``v0`` if given, else a seeded standard normal vector."""
    dim = sum(p.numel() for p in plist)
    if v0 is None:
        seed = _checks.integer("seed", seed, minimum=0)
        start = np.random.default_rng(seed).standard_normal(dim)
    elif isinstance(v0, np.ndarray) and v0.shape == (dim,):
        start = _checks.finite_array("v0", v0).copy()  # keep float64 eigenvectors exact
    else:
        flat, _ = _vector_to_flat("v0", v0, plist)
        start = flat.to(device="cpu", dtype=torch.float64).numpy().copy()
    norm = float(np.linalg.norm(start))
    if norm == 0.0:
        raise ValueError("v0 must not be the zero vector")
    return start / norm


def _lanczos(
    op: HessianOperator,
    k: int,
    tol: float,
    v0: np.ndarray,
    ncv: int | None,
    maxiter: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (largest algebraic) eigenpairs of ``op`` by ARPACK, in descending order."""
    dim = op.shape[0]
    if ncv is None:
        # Small Krylov spaces are cheapest per restart; with a warm start 7-13 HVPs suffice
        # for k = 1 at tol = 1e-3 (perf.md Sec. 3b).
        ncv = min(dim, max(2 * k + 1, k + 5))
    else:
        ncv = _checks.integer("ncv", ncv, minimum=k + 1)
        if ncv > dim:
            raise ValueError(f"ncv must be <= the number of parameters {dim}, got {ncv}")
    if maxiter is not None:
        maxiter = _checks.integer("maxiter", maxiter, minimum=1)
    try:
        with _single_threaded_blas():
            values, vectors = sla.eigsh(
                op, k=k, which="LA", tol=tol, v0=v0, ncv=ncv, maxiter=maxiter
            )
    except sla.ArpackNoConvergence as err:
        raise RuntimeError(
            f"Lanczos did not reach tol={tol:g} for k={k} after {op.n_hvp} Hessian-vector "
            "products; raise maxiter or tol"
        ) from err
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def top_eigenvalues(
    loss_fn: LossFn,
    params: Params,
    k: int = 1,
    tol: float = 1e-3,
    *,
    v0=None,
    return_eigenvectors: bool = False,
    seed: int = 0,
    ncv: int | None = None,
    maxiter: int | None = None,
):
    """The ``k`` largest eigenvalues of ``Hess L`` by Lanczos on Hessian-vector products.

    Runs implicitly restarted Lanczos (ARPACK, :func:`scipy.sparse.linalg.eigsh` with
    ``which="LA"``) on a :class:`HessianOperator`; the ``D × D`` Hessian is never formed.
    ``λ_1`` is the sharpness; GD with step ``η`` is stable at a minimum iff ``λ_1 < 2/η``
    (Chemnitz & Engel 2025, Sec. 2.3; Cohen et al. 2021).

    Parameters
    ----------
    loss_fn, params
        Zero-argument loss closure and its parameters (see :func:`hvp`).
    k : int
        Number of eigenvalues, ``1 <= k < D``.
    tol : float
        Relative accuracy of the eigenvalues (ARPACK's stopping rule); ``0`` means machine
        precision. The default ``1e-3`` is what a sharpness plot needs.
    v0 : vector, optional
        Start vector, flat or structured. Passing the top eigenvector of a nearby point (e.g.
        the previous measurement along a GD run) cuts the cost 2.5-3x (7-13 HVPs for ``k = 1``
        instead of 20-35).
    return_eigenvectors : bool
        Also return the eigenvectors.
    seed : int
        Seed of the random start vector when ``v0`` is None (the result is then reproducible).
    ncv : int, optional
        Krylov subspace size, ``k < ncv <= D``; default ``min(D, max(2k + 1, k + 5))``.
    maxiter : int, optional
        Maximum number of Arnoldi restarts (ARPACK's default when None).

    Returns
    -------
    eigenvalues : ndarray of shape ``(k,)``
        In descending order.
    eigenvectors : ndarray of shape ``(D, k)``
        Only with ``return_eigenvectors=True``: unit columns in the flat convention, column
        ``j`` belonging to ``eigenvalues[j]``.

    Raises
    ------
    RuntimeError
        If ARPACK does not converge within ``maxiter`` restarts.
    """
    plist = _param_list(params)
    dim = sum(p.numel() for p in plist)
    k = _checks.integer("k", k, minimum=1)
    if k >= dim:
        raise ValueError(
            f"k must be smaller than the number of parameters D={dim}, got k={k}; "
            "for so few parameters form the Hessian densely"
        )
    tol = _checks.positive_float("tol", tol, allow_zero=True)
    start = _start_vector(v0, plist, seed)
    op = HessianOperator(loss_fn, plist)
    values, vectors = _lanczos(op, k, tol, start, ncv, maxiter)
    return (values, vectors) if return_eigenvectors else values


def sharpness(
    loss_fn: LossFn,
    params: Params,
    tol: float = 1e-3,
    *,
    v0=None,
    seed: int = 0,
    ncv: int | None = None,
    maxiter: int | None = None,
) -> EigenResult:
    """Sharpness ``λ_max(Hess L)`` with its eigenvector and the number of HVPs it cost.

    The same Lanczos solve as :func:`top_eigenvalues` with ``k = 1``, returned as an
    :class:`EigenResult` so that a caller can warm-start the next solve with
    ``v0=result.eigenvector`` and report the cost. For ``D = 1`` the single Hessian entry is
    returned (one HVP).
    """
    plist = _param_list(params)
    tol = _checks.positive_float("tol", tol, allow_zero=True)
    start = _start_vector(v0, plist, seed)
    op = HessianOperator(loss_fn, plist)
    return _sharpness_of(op, tol, start, ncv=ncv, maxiter=maxiter)


def _sharpness_of(
    op: HessianOperator,
    tol: float,
    start: np.ndarray,
    *,
    ncv: int | None = None,
    maxiter: int | None = None,
) -> EigenResult:
    if op.dim == 1:
        value = float(op.matvec(np.ones(1))[0])
        return EigenResult(value, np.ones(1), op.n_hvp)
    values, vectors = _lanczos(op, 1, tol, start, ncv, maxiter)
    return EigenResult(float(values[0]), vectors[:, 0].copy(), op.n_hvp)


def power_iteration(
    loss_fn: LossFn,
    params: Params,
    n_iter: int = 1000,
    tol: float = 1e-3,
    *,
    v0=None,
    seed: int = 0,
) -> EigenResult:
    """Dominant eigenpair of ``Hess L`` by power iteration on Hessian-vector products.

    Iterates ``v ← H v / ‖H v‖`` and reports the Rayleigh quotient ``λ = v · H v``. It stops
    when the residual is small, ``‖H v − λ v‖ ≤ tol |λ|``; for a symmetric matrix some
    eigenvalue then lies within ``tol |λ|`` of ``λ``. (A stopping rule on the *change* of ``λ``
    stops 1-3 % low when ``λ_2 ≈ λ_1``; the residual rule does not.)

    Power iteration converges to the eigenvalue of largest *modulus*, at the rate
    ``|λ_2/λ_1|`` per HVP. Near a minimum the Hessian is close to positive semi-definite and this
    is the sharpness; far from one a large negative eigenvalue can win — use
    :func:`top_eigenvalues` there. When ``±λ`` are both eigenvalues the iteration does not
    settle and ``converged`` is False.

    Parameters
    ----------
    loss_fn, params
        Zero-argument loss closure and its parameters (see :func:`hvp`).
    n_iter : int
        Maximum number of HVPs.
    tol : float
        Relative residual at which to stop, ``> 0``.
    v0 : vector, optional
        Start vector, flat or structured; a seeded random vector when None.
    seed : int
        Seed of the random start vector.

    Returns
    -------
    EigenResult
        Eigenvalue (Rayleigh quotient of the last iterate), unit eigenvector, HVPs used, and
        whether the residual rule was met within ``n_iter`` products.
    """
    plist = _param_list(params)
    n_iter = _checks.integer("n_iter", n_iter, minimum=1)
    tol = _checks.positive_float("tol", tol)
    start = _start_vector(v0, plist, seed)
    op = HessianOperator(loss_fn, plist)
    ref = plist[0]
    v = torch.from_numpy(start).to(device=ref.device, dtype=ref.dtype)
    value, converged = math.nan, False
    for _ in range(n_iter):
        w = op.apply(v)
        value = float(torch.dot(v, w))
        residual = float(torch.linalg.vector_norm(w - value * v))
        if residual <= tol * abs(value) or residual == 0.0:
            converged = True
            break
        norm = torch.linalg.vector_norm(w)
        v = w / norm
    vector = v.to(device="cpu", dtype=torch.float64).numpy()
    return EigenResult(value, vector / np.linalg.norm(vector), op.n_hvp, converged)


# --------------------------------------------------------------------------------------------
# per-sample gradients and the neural tangent kernel
# --------------------------------------------------------------------------------------------


def per_sample_gradients(
    model_fn: Callable[[torch.Tensor], torch.Tensor], params: Params, X
) -> torch.Tensor:
    """Jacobian ``J`` with rows ``g_i = ∇_x F(x, y_i)``, the per-sample output gradients.

    ``J`` is the ``N × D`` matrix whose normal-space span is ``N(x) = span{g_i}``
    (Chemnitz & Engel 2025, eq. 2.5). All rows come from one forward pass and one batched
    (vmapped) backward pass; memory is ``N × D`` numbers.

    Parameters
    ----------
    model_fn : callable
        Maps the inputs ``X`` (first dimension ``N``) to ``N`` scalar outputs, shape ``(N,)`` or
        ``(N, 1)``, computed from ``params``. An ``nn.Module`` with scalar output is such a
        callable; for the two-parameter model ``F(x, y) = x1 x2 y`` use
        ``lambda Y: x[0] * x[1] * Y`` with ``params = x``.
    params : tensor or list/tuple of tensors
        The parameters, ``requires_grad=True``.
    X : tensor or array
        The inputs ``y_1, …, y_N`` (the paper's notation), first dimension ``N``.

    Returns
    -------
    tensor of shape ``(N, D)``
        Detached, with the dtype and device of the parameters; columns in the flat convention.
    """
    if not callable(model_fn):
        raise TypeError(f"model_fn must be callable, got {type(model_fn).__name__}")
    plist = _param_list(params)
    ref = plist[0]
    X = _checks.finite_tensor("X", X)
    if X.ndim == 0:
        raise ValueError("X must have a first dimension N (one row per sample), got a scalar")
    X = X.to(device=ref.device, dtype=ref.dtype)
    n = X.shape[0]
    out = model_fn(X)
    if not isinstance(out, torch.Tensor) or out.shape not in {(n,), (n, 1)}:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"model_fn(X) must return one scalar per sample, shape ({n},) or ({n}, 1), got {shape}"
        )
    out = out.reshape(n)
    if not out.requires_grad:
        raise ValueError("model_fn(X) does not depend on params (no autograd graph)")
    eye = torch.eye(n, dtype=out.dtype, device=out.device)
    rows = torch.autograd.grad(
        out, plist, grad_outputs=eye, is_grads_batched=True, allow_unused=True
    )
    blocks = [
        torch.zeros(n, p.numel(), dtype=ref.dtype, device=ref.device)
        if r is None
        else r.reshape(n, -1)
        for r, p in zip(rows, plist, strict=True)
    ]
    return torch.cat(blocks, dim=1).detach()


def ntk_gram(model_fn: Callable[[torch.Tensor], torch.Tensor], params: Params, X) -> np.ndarray:
    """Gram matrix ``G_ij = g_i · g_j`` of the per-sample gradients (the empirical NTK).

    With ``g_i = ∇_x F(x, y_i)`` this is the neural tangent kernel at ``x`` on the training
    inputs (Chemnitz & Engel 2025, Sec. 2.5). For the loss ``L = (1/N) Σ ½ (F(x, y_i) − z_i)²``
    at an interpolating minimum, ``Hess L = (1/N) Jᵀ J`` and the nonzero eigenvalues of
    ``(1/N) G = (1/N) J Jᵀ`` are those of the Hessian: GD stability reduces to this ``N × N``
    matrix (eq. 2.18; see :func:`dsnn.gradient_descent.gd_exponent`). Example: for
    ``F(x, y) = x1 x2 y`` and one input ``y``, ``G = y² (x1² + x2²)``.

    Parameters are as for :func:`per_sample_gradients`. Returns a symmetric positive
    semi-definite float64 numpy array of shape ``(N, N)``.
    """
    jac = per_sample_gradients(model_fn, params, X).to(torch.float64)
    gram = (jac @ jac.T).cpu().numpy()
    return 0.5 * (gram + gram.T)
