"""Gradient descent as a discrete dynamical system.

GD is the map ``G_η(x) = x − η ∇L(x)`` (Chemnitz & Engel 2025, eq. 2.7). Its fixed points are
the critical points of ``L`` and its linearisation at a fixed point ``x*`` is
``1 − η Hess L(x*)``. On a quadratic ``L(x) = ½ xᵀHx`` with ``H`` symmetric positive definite the
map is linear, ``x_{n+1} = (1 − ηH) x_n``, and GD converges from every start iff the spectral
radius ``max_i |1 − η λ_i| < 1``, that is iff ``0 < η < 2 / λ_max(H)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from dsnn import _checks
from dsnn import device as _device
from dsnn import hessian as _hessian


@dataclass
class GDResult:
    """What a gradient-descent run returns.

    Attributes
    ----------
    iterates : tensor of shape ``(n_recorded, D)``
        ``x_n`` at the recorded steps (every ``record_every`` steps, plus the last one).
    steps : list of int
        The step indices ``n`` of the rows of ``iterates`` and ``losses``.
    losses : tensor of shape ``(n_recorded,)``
        ``L(x_n)`` at the recorded steps.
    diverged : bool
        True if the run left every bounded region (loss or iterate not finite or above the
        divergence threshold). The run stops there; no NaN is recorded.
    diverged_at : int or None
        The first step at which divergence was detected.
    """

    iterates: torch.Tensor
    steps: list[int]
    losses: torch.Tensor
    diverged: bool = False
    diverged_at: int | None = None
    eta: float = field(default=math.nan)

    @property
    def x_final(self) -> torch.Tensor:
        """The last recorded (finite) iterate."""
        return self.iterates[-1]

    @property
    def final_loss(self) -> float:
        """The last recorded (finite) loss."""
        return float(self.losses[-1])


def gd(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x0,
    eta: float,
    n_steps: int,
    *,
    record_every: int = 1,
    divergence_threshold: float = 1e12,
) -> GDResult:
    """Run gradient descent ``x_{n+1} = x_n − η ∇L(x_n)`` (Chemnitz & Engel 2025, eq. 2.7).

    Parameters
    ----------
    loss_fn : callable
        Maps a parameter vector (1-D tensor of length ``D``) to a scalar tensor; its gradient is
        taken with autograd.
    x0 : array-like of shape ``(D,)``
        Initial point.
    eta : float
        Learning rate ``η > 0``.
    n_steps : int
        Number of GD steps.
    record_every : int
        Record ``x_n`` and ``L(x_n)`` every this many steps (the last step is always recorded).
    divergence_threshold : float
        A run whose loss or iterate norm exceeds this (or stops being finite) is reported as
        diverged and stopped.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    x = _checks.finite_tensor("x0", x0, ndim=1).detach().clone()
    eta = _checks.positive_float("eta", eta)
    n_steps = _checks.integer("n_steps", n_steps, minimum=0)
    record_every = _checks.integer("record_every", record_every, minimum=1)
    divergence_threshold = _checks.positive_float("divergence_threshold", divergence_threshold)

    iterates, losses, steps = [], [], []
    diverged_at = None
    for n in range(n_steps + 1):
        x.requires_grad_(True)
        loss = loss_fn(x)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        value = float(loss.detach())
        if n == 0 and not math.isfinite(value):
            raise ValueError(f"loss_fn(x0) must be finite, got {value}")
        if (
            not math.isfinite(value)
            or value > divergence_threshold
            or (float(x.detach().norm()) > divergence_threshold)
        ):
            if n == 0:
                raise ValueError(
                    f"x0 already exceeds divergence_threshold={divergence_threshold:g}"
                )
            diverged_at = n
            break
        if n % record_every == 0 or n == n_steps:
            iterates.append(x.detach().clone())
            losses.append(value)
            steps.append(n)
        if n == n_steps:
            break
        (grad,) = torch.autograd.grad(loss, x)
        x = (x.detach() - eta * grad).detach()

    return GDResult(
        iterates=torch.stack(iterates),
        steps=steps,
        losses=torch.tensor(losses, dtype=torch.float64),
        diverged=diverged_at is not None,
        diverged_at=diverged_at,
        eta=eta,
    )


@dataclass
class BatchGDResult:
    """What :func:`gd_batch` returns: the end of ``B`` independent runs.

    Attributes
    ----------
    x_final : tensor of shape ``(B, D)``
        Last iterate of each run (the last finite one for a run that diverged).
    loss_final : tensor of shape ``(B,)``
        Loss at ``x_final``.
    diverged : tensor of bool, shape ``(B,)``
        Which runs left every bounded region (and were stopped there).
    diverged_at : tensor of int, shape ``(B,)``
        Step at which a run was stopped; ``-1`` for runs that did not diverge.
    """

    x_final: torch.Tensor
    loss_final: torch.Tensor
    diverged: torch.Tensor
    diverged_at: torch.Tensor


def gd_batch(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x0,
    eta,
    n_steps: int,
    *,
    divergence_threshold: float = 1e12,
) -> BatchGDResult:
    """Run ``B`` independent gradient descents ``x_{n+1} = x_n − η ∇L(x_n)`` as one batch.

    Vectorised over initial points and learning rates: one forward and one backward pass per
    step for the whole batch (the gradient of ``Σ_b L(x_b)`` with respect to row ``b`` is
    ``∇L(x_b)``). Runs that blow up are frozen at their last finite iterate and flagged.

    Parameters
    ----------
    loss_fn : callable
        Maps a batch of parameter vectors, shape ``(B, D)``, to their losses, shape ``(B,)``;
        row ``b`` of the output must depend on row ``b`` of the input only.
    x0 : array-like of shape ``(B, D)``
        Initial points.
    eta : float or array-like of shape ``(B,)``
        Learning rate(s) ``η > 0``, one per run or one for all.
    n_steps : int
        Number of GD steps.
    divergence_threshold : float
        A run whose loss or iterate norm exceeds this (or stops being finite) is stopped.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    x = _checks.finite_tensor("x0", x0, ndim=2).detach().clone()
    eta_t = _learning_rates(eta, x)
    n_steps = _checks.integer("n_steps", n_steps, minimum=0)
    runs = _BatchRuns(x, _checks.positive_float("divergence_threshold", divergence_threshold))
    batch = x.shape[0]
    for n in range(n_steps + 1):
        x.requires_grad_(True)
        loss = loss_fn(x)
        if not isinstance(loss, torch.Tensor) or loss.shape != (batch,):
            raise ValueError(f"loss_fn must return one loss per run, shape ({batch},)")
        message = "loss_fn(x0) must be finite and below divergence_threshold"
        runs.record(x, loss.detach(), n, message)
        if n == n_steps or not runs.active.any():
            break
        (grad,) = torch.autograd.grad(loss.sum(), x)
        x = runs.advance(x.detach() - eta_t * grad)
    return runs.result()


def _learning_rates(eta, x: torch.Tensor) -> torch.Tensor:
    """One learning rate for all runs, or one per row of ``x``; shaped to broadcast over ``x``."""
    eta_t = _checks.finite_tensor("eta", eta, ndim=(0, 1)).to(x.dtype)
    if (eta_t <= 0).any():
        raise ValueError("eta must be > 0 for every run")
    if eta_t.ndim == 1 and eta_t.shape[0] != x.shape[0]:
        raise ValueError(f"eta must have one entry per run ({x.shape[0]}), got {eta_t.shape[0]}")
    return eta_t.reshape(-1, 1) if eta_t.ndim == 1 else eta_t


class _BatchRuns:
    """Bookkeeping of a batch of runs: stop those that blow up, keep their last finite iterate."""

    def __init__(self, x: torch.Tensor, threshold: float):
        batch = x.shape[0]
        self.threshold = threshold
        self.active = torch.ones(batch, dtype=torch.bool, device=x.device)
        self.diverged_at = torch.full((batch,), -1, dtype=torch.long, device=x.device)
        self.x_keep = x.detach().clone()
        self.losses = torch.empty(batch, dtype=x.dtype, device=x.device)

    def record(self, x: torch.Tensor, value: torch.Tensor, step: int, message: str) -> None:
        """Record the losses ``value`` of the iterates ``x`` at ``step``; stop runs that blew up."""
        valid = torch.isfinite(value) & (value <= self.threshold)
        valid &= x.detach().norm(dim=1) <= self.threshold
        if step == 0 and not valid.all():
            raise ValueError(message)
        self.diverged_at[self.active & ~valid] = step
        self.active &= valid
        self.x_keep = torch.where(self.active[:, None], x.detach(), self.x_keep)
        self.losses = torch.where(self.active, value, self.losses)

    def advance(self, x_next: torch.Tensor) -> torch.Tensor:
        """Next iterates: ``x_next`` for active runs, the last finite iterate for stopped ones."""
        return torch.where(self.active[:, None], x_next, self.x_keep).detach()

    def result(self) -> BatchGDResult:
        return BatchGDResult(
            x_final=self.x_keep,
            loss_final=self.losses,
            diverged=~self.active,
            diverged_at=self.diverged_at,
        )


def stability_threshold(hessian) -> float:
    """Largest stable learning rate ``2 / λ_max(H)`` of GD at a minimum with Hessian ``H``.

    The linearisation ``1 − η H`` has spectral radius below one iff ``0 < η < 2 / λ_max`` (for
    positive semi-definite ``H``). Returns ``inf`` when ``λ_max ≤ 0`` (no curvature to overshoot).
    """
    matrix = _checks.symmetric_matrix("hessian", hessian)
    lam_max = float(np.linalg.eigvalsh(matrix)[-1])
    return 2.0 / lam_max if lam_max > 0 else math.inf


def quadratic_loss(hessian) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``L(x) = ½ xᵀ H x`` as a torch function, for a symmetric matrix ``H``."""
    matrix = torch.as_tensor(_checks.symmetric_matrix("hessian", hessian))

    def loss(x: torch.Tensor) -> torch.Tensor:
        if x.shape != matrix.shape[:1]:
            raise ValueError(f"x must have shape {tuple(matrix.shape[:1])}, got {tuple(x.shape)}")
        return 0.5 * x @ (matrix.to(x.dtype) @ x)

    return loss


# --------------------------------------------------------------------------------------------
# Stability of interpolating minima in the neural-tangent-kernel form
# --------------------------------------------------------------------------------------------


def gd_exponent(gram, eta: float, *, restrict_to_range: bool = False, rtol: float = 1e-10) -> float:
    """Linear-stability exponent ``μ = log ‖1_N − (η/N) G‖₂`` of GD at an interpolating minimum.

    Chemnitz & Engel (2025), eq. 2.18. ``G_ij = g_i · g_j`` is the Gram matrix (empirical NTK) of
    the per-sample gradients ``g_i = ∇_x F(x*, y_i)``; for the loss
    ``L = (1/N) Σ ½ (F(x, y_i) − z_i)²`` at a minimum ``x*`` on the solution manifold,
    ``Hess L(x*) = (1/N) Σ g_i g_iᵀ`` and ``μ`` is the log spectral radius of the GD Jacobian
    ``1_D − η Hess L(x*)`` restricted to the normal space ``span{g_i}``. Theorem A: ``μ < 0``
    makes ``x*`` a possible limit of GD, ``μ > 0`` excludes it. The spectral norm of the
    symmetric matrix is ``max_i |1 − η γ_i / N|`` over the eigenvalues ``γ_i`` of ``G``. The
    identity with the normal-space restriction needs linearly independent ``g_i`` (hypothesis
    H1, ``G`` non-singular); a zero eigenvalue of ``G`` contributes ``|1 − 0| = 1``.

    Parameters
    ----------
    gram : array-like of shape ``(N, N)``
        Symmetric positive semi-definite Gram matrix (e.g. :func:`dsnn.hessian.ntk_gram`).
    eta : float
        Learning rate ``η > 0``.
    restrict_to_range : bool
        Take the maximum only over the non-zero eigenvalues of ``G`` (those above
        ``rtol × λ_max(G)``). The range of ``G`` corresponds to ``span{g_i}``, so this is ``μ``
        on the normal space also when the ``g_i`` are linearly dependent (H1 fails), e.g. for
        data that repeat one constraint. With non-singular ``G`` it changes nothing.
    rtol : float
        Relative size below which an eigenvalue of ``G`` counts as zero (with the option above).

    Returns
    -------
    float
        ``μ``; ``-inf`` when ``1_N − (η/N) G = 0`` (e.g. ``N = 1`` and ``η ‖g‖² = 1``).
    """
    matrix = _checks.symmetric_matrix("gram", gram)
    eta = _checks.positive_float("eta", eta)
    eigenvalues = np.linalg.eigvalsh(matrix)
    scale = max(float(np.abs(eigenvalues).max()), 1.0)
    if eigenvalues[0] < -1e-8 * scale:
        raise ValueError(
            "gram must be positive semi-definite (a Gram matrix g_i · g_j); its smallest "
            f"eigenvalue is {eigenvalues[0]:.3g}"
        )
    rtol = _checks.positive_float("rtol", rtol)
    n = matrix.shape[0]
    if restrict_to_range:
        eigenvalues = eigenvalues[eigenvalues > rtol * eigenvalues[-1]]
        if eigenvalues.size == 0:
            raise ValueError("gram is zero: the normal space is trivial and mu is undefined")
    rho = float(np.max(np.abs(1.0 - eta * eigenvalues / n)))
    return math.log(rho) if rho > 0 else -math.inf


class ProductModel(torch.nn.Module):
    """The two-parameter model ``F(x, y) = x1 x2 y`` (scalar factorisation).

    The smallest model with a curve of interpolating minima: for data ``(y_i, z_i)`` with a
    common ratio ``z_i / y_i = c`` the minima are the hyperbola ``x1 x2 = c``. Its per-sample
    gradient is ``g_i = y_i (x2, x1)``, so ``‖g_i‖² = y_i² (x1² + x2²)``: minima far out on the
    hyperbola are sharp, the balanced one ``|x1| = |x2|`` is the flattest. Under gradient flow
    ``x1² − x2²`` is conserved.

    Parameters
    ----------
    x1, x2 : float
        Initial parameters (stored as ``self.x``, a parameter of shape ``(2,)``).
    dtype : torch.dtype
        Floating type of the parameters.
    """

    def __init__(self, x1: float, x2: float, *, dtype: torch.dtype = torch.float64):
        super().__init__()
        x1 = _checks.real_float("x1", x1)
        x2 = _checks.real_float("x2", x2)
        self.x = torch.nn.Parameter(torch.tensor([x1, x2], dtype=dtype))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``F(x, y) = x1 x2 y``, elementwise (output has the shape of ``y``)."""
        return self.x[0] * self.x[1] * y


def product_loss(y, z) -> Callable[[torch.Tensor], torch.Tensor]:
    """Batched loss of :class:`ProductModel`: ``L(x) = (1/N) Σ_i ½ (x1 x2 y_i − z_i)²``.

    Returns a function mapping parameters of shape ``(B, 2)`` to losses of shape ``(B,)``, for
    :func:`gd_batch`. Data with a common ratio ``z_i / y_i = c`` have the hyperbola
    ``x1 x2 = c`` as their manifold of minima.
    """
    y_t = _checks.finite_tensor("y", y, ndim=1)
    z_t = _checks.finite_tensor("z", z, ndim=1)
    if y_t.shape != z_t.shape:
        raise ValueError(f"y and z must have the same length, got {y_t.numel()} and {z_t.numel()}")

    def loss(x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"x must have shape (B, 2), got {tuple(x.shape)}")
        residual = (x[:, :1] * x[:, 1:2]) * y_t.to(x) - z_t.to(x)
        return 0.5 * (residual**2).mean(dim=1)

    return loss


# --------------------------------------------------------------------------------------------
# Full-batch training with sharpness tracking (edge of stability) and gradient flow
# --------------------------------------------------------------------------------------------


@dataclass
class TrainingRecord:
    """What :func:`train_full_batch` and :func:`train_gradient_flow` return.

    Every array holds finite numbers only: quantities are recorded where they were measured and
    each has its own step array, and a run that blows up stops and says so.

    Attributes
    ----------
    step : ndarray of int
        Step indices ``n`` at which the loss was recorded (every step, ``0, 1, …``).
    time : ndarray of float
        Time of those steps: ``η n`` for GD, the integration time ``t`` for gradient flow, so
        the two runs can share an axis.
    loss : ndarray
        ``L(x_n)`` with ``L = (1/N) Σ ½ ‖F(x, y_i) − z_i‖²``.
    sharpness_step, sharpness_time : ndarray
        Steps and times at which the sharpness was measured.
    sharpness : ndarray
        ``λ_max(Hess L(x_n))`` at those steps (Lanczos, relative accuracy ``sharpness_tol``).
    n_hvp : ndarray of int
        Hessian-vector products each sharpness measurement cost.
    mu : ndarray
        ``μ(x_n) = log ‖1_N − (η/N) G(x_n)‖`` at the sharpness steps when tracked (GD only),
        else empty.
    ntk_sharpness : ndarray
        ``λ_max(G(x_n)) / N`` at the same steps when ``μ`` is tracked: the largest eigenvalue of
        the Gauss–Newton part ``(1/N) Σ g_i g_iᵀ`` of the Hessian, whose term
        ``log |1 − η λ_max(G)/N|`` is the one in ``μ`` that can cross zero.
    eta : float
        Learning rate (NaN for gradient flow).
    diverged : bool
        True if the loss or the parameters left every bounded region; the run stopped there.
    diverged_at : int or None
        The step at which that was detected (nothing from that step is recorded).
    complete : bool
        True if the run reached ``n_steps`` (``t_final``) without diverging or hitting
        ``max_steps``.
    """

    step: np.ndarray
    time: np.ndarray
    loss: np.ndarray
    sharpness_step: np.ndarray
    sharpness_time: np.ndarray
    sharpness: np.ndarray
    n_hvp: np.ndarray
    mu: np.ndarray
    ntk_sharpness: np.ndarray
    eta: float = math.nan
    diverged: bool = False
    diverged_at: int | None = None
    complete: bool = True

    @property
    def threshold(self) -> float:
        """The stability threshold ``2/η`` of GD (NaN for gradient flow)."""
        return 2.0 / self.eta


class _Recorder:
    """Collects a training run step by step and turns it into a :class:`TrainingRecord`."""

    def __init__(self):
        self.step, self.time, self.loss = [], [], []
        self.s_step, self.s_time, self.sharp, self.n_hvp, self.mu = [], [], [], [], []
        self.ntk_sharpness = []

    def record(self, **kwargs) -> TrainingRecord:
        return TrainingRecord(
            step=np.asarray(self.step, dtype=np.int64),
            time=np.asarray(self.time, dtype=float),
            loss=np.asarray(self.loss, dtype=float),
            sharpness_step=np.asarray(self.s_step, dtype=np.int64),
            sharpness_time=np.asarray(self.s_time, dtype=float),
            sharpness=np.asarray(self.sharp, dtype=float),
            n_hvp=np.asarray(self.n_hvp, dtype=np.int64),
            mu=np.asarray(self.mu, dtype=float),
            ntk_sharpness=np.asarray(self.ntk_sharpness, dtype=float),
            **kwargs,
        )


def _prepare_training(model, X, y, device):
    """Check model and data, move them to one device and dtype; return params, X, y."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if device is not None:
        try:
            target = _device.default(device)
        except ValueError as err:
            raise ValueError(
                f"device must be None, 'cpu' or 'cuda' (CUDA only where available), got {device!r}"
            ) from err
        model.to(target)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have at least one parameter with requires_grad=True")
    ref = params[0]
    if not ref.is_floating_point():
        raise TypeError(f"model parameters must be floating point, got {ref.dtype}")
    X = _checks.finite_tensor("X", X).to(device=ref.device, dtype=ref.dtype)
    y = _checks.finite_tensor("y", y).to(device=ref.device, dtype=ref.dtype)
    if X.ndim == 0:
        raise ValueError("X must have a first dimension N (one row per sample), got a scalar")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must have one target per sample (first dimension {X.shape[0]}), "
            f"got shape {tuple(y.shape)}"
        )
    with torch.no_grad():
        out = model(X)
    if out.shape != y.shape and not (out.ndim == 2 and out.shape[1] == 1 and y.ndim == 1):
        raise ValueError(
            f"y must have the shape of the model output {tuple(out.shape)}, got {tuple(y.shape)}"
        )
    return params, X, y


def _half_mse(model, X, y) -> torch.Tensor:
    """``L = (1/N) Σ_i ½ ‖F(x, X_i) − y_i‖²`` (half the mean squared error per sample)."""
    out = model(X)
    if out.shape != y.shape:
        out = out.reshape(y.shape)
    return 0.5 * ((out - y) ** 2).sum() / y.shape[0]


def _blown_up(value: float, params, threshold: float, step: int) -> bool:
    """True if the run left every bounded region at ``step``; at step 0 that is an input error."""
    blown = (
        not math.isfinite(value)
        or value > threshold
        or any(not bool(torch.isfinite(p.detach()).all()) for p in params)
    )
    if blown and step == 0:
        raise ValueError(
            f"the initial loss {value:g} is not finite or exceeds "
            f"divergence_threshold={threshold:g}"
        )
    return blown


def _check_measure_every(name, value):
    if value is None:
        return None
    return _checks.integer(name, value, minimum=1)


def train_full_batch(
    model: torch.nn.Module,
    X,
    y,
    eta: float,
    n_steps: int,
    sharpness_every: int | None = 10,
    *,
    track_mu: bool = False,
    sharpness_tol: float = 1e-3,
    device: str | torch.device | None = None,
    divergence_threshold: float = 1e12,
) -> TrainingRecord:
    """Full-batch gradient descent on the half-MSE loss, tracking sharpness (and ``μ``).

    Runs plain GD ``x_{n+1} = x_n − η ∇L(x_n)`` (Chemnitz & Engel 2025, eq. 2.7; no momentum,
    no optimizer state) on the parameters of ``model``, in place, with

        ``L(x) = (1/N) Σ_i ½ ‖F(x, X_i) − y_i‖²``    (½ × mean squared error; eq. 2.3 with
        ``l = ½ (z̄ − z)²``).

    Every ``sharpness_every`` steps it measures the sharpness ``λ_max(Hess L(x_n))`` by Lanczos
    on Hessian-vector products, warm-started from the previous eigenvector (the first solve is
    cold, from a fixed start vector), to watch it approach and hover at ``2/η``: the edge of
    stability (Cohen et al. 2021; Sec. 2.6 of the paper). With ``track_mu=True`` it also
    computes the NTK Gram matrix ``G(x_n)`` of the per-sample output gradients and
    ``μ(x_n) = log ‖1_N − (η/N) G(x_n)‖`` (eq. 2.18), which near the solution manifold equals
    ``log |1 − η λ_max|`` and crosses 0 where the sharpness crosses ``2/η``.

    The function uses no randomness: the result is determined by the model's parameters (seed
    the model, not this function).

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``X`` to outputs of the shape of ``y`` (``(N, 1)`` outputs are accepted for 1-D
        ``y``). Its parameters are updated in place.
    X, y : tensor or array
        Inputs and targets, first dimension ``N``. Converted to the model's dtype and device.
    eta : float
        Learning rate ``η > 0``.
    n_steps : int
        Number of GD steps; the loss is recorded at steps ``0, …, n_steps``.
    sharpness_every : int or None
        Measure the sharpness (and ``μ``) at the steps that are multiples of this; None: never.
    track_mu : bool
        Also record ``μ`` at the sharpness steps. Needs scalar outputs (one per sample); costs
        one batched backward pass over the ``N`` samples and ``N × D`` memory per measurement.
    sharpness_tol : float
        Relative accuracy of each sharpness value (ARPACK's tolerance).
    device : str, torch.device or None
        Where to train (model and data are moved there); None keeps the model's device.
    divergence_threshold : float
        A loss above this, or a non-finite loss or parameter, ends the run with
        ``diverged=True``.

    Returns
    -------
    TrainingRecord
        Loss at every step, sharpness and HVP counts (and ``μ``) at the measured steps.
    """
    params, X, y = _prepare_training(model, X, y, device)
    eta = _checks.positive_float("eta", eta)
    n_steps = _checks.integer("n_steps", n_steps, minimum=0)
    sharpness_every = _check_measure_every("sharpness_every", sharpness_every)
    sharpness_tol = _checks.positive_float("sharpness_tol", sharpness_tol, allow_zero=True)
    divergence_threshold = _checks.positive_float("divergence_threshold", divergence_threshold)
    if track_mu:
        if sharpness_every is None:
            raise ValueError("track_mu=True needs sharpness_every (the steps to measure mu at)")
        if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
            raise ValueError(
                f"track_mu=True needs one scalar target per sample, got y of shape {tuple(y.shape)}"
            )

    rec = _Recorder()
    eigen = None
    diverged_at = None
    for n in range(n_steps + 1):
        measure = sharpness_every is not None and n % sharpness_every == 0
        loss = _half_mse(model, X, y)
        value = float(loss.detach())
        if _blown_up(value, params, divergence_threshold, n):
            diverged_at = n
            break
        rec.step.append(n)
        rec.time.append(eta * n)
        rec.loss.append(value)
        if n == n_steps and not measure:
            break
        grads = torch.autograd.grad(loss, params, create_graph=measure, allow_unused=True)
        if measure:
            eigen = _measure_sharpness(params, grads, sharpness_tol, eigen)
            rec.s_step.append(n)
            rec.s_time.append(eta * n)
            rec.sharp.append(eigen.eigenvalue)
            rec.n_hvp.append(eigen.n_hvp)
            if track_mu:
                gram = _hessian.ntk_gram(model, params, X)
                rec.mu.append(gd_exponent(gram, eta))
                rec.ntk_sharpness.append(float(np.linalg.eigvalsh(gram)[-1]) / gram.shape[0])
        if n == n_steps:
            break
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                if g is not None:
                    p.sub_(eta * g.detach())
    return rec.record(
        eta=eta,
        diverged=diverged_at is not None,
        diverged_at=diverged_at,
        complete=diverged_at is None,
    )


def _measure_sharpness(params, grads, tol, previous):
    """Sharpness from gradients built with ``create_graph=True``; warm start from ``previous``."""
    op = _hessian.HessianOperator._from_gradients(params, grads)
    if previous is None:
        start = _hessian._start_vector(None, params, seed=0)
    else:
        start = previous.eigenvector
    return _hessian._sharpness_of(op, tol, start)


def train_gradient_flow(
    model: torch.nn.Module,
    X,
    y,
    t_final: float,
    *,
    dt: float = 0.01,
    sharpness_every: int | None = 10,
    stability_factor: float | None = 0.25,
    sharpness_tol: float = 1e-3,
    max_steps: int = 100_000,
    device: str | torch.device | None = None,
    divergence_threshold: float = 1e12,
) -> TrainingRecord:
    """Integrate gradient flow ``x' = −∇L(x)`` with classical RK4, tracking the sharpness.

    Gradient flow is the ``η → 0`` limit of GD (time ``t = η n``). It has no step size to be
    unstable with, so its sharpness is not held at ``2/η``: comparing it with
    :func:`train_full_batch` shows where GD leaves the flow, at the edge of stability (Cohen et
    al. 2021). The loss is the same half-MSE ``L = (1/N) Σ ½ ‖F(x, X_i) − y_i‖²``.

    Step size: ``h = min(dt, stability_factor / S)`` with ``S`` the last measured sharpness,
    so that ``h λ_max`` stays well inside RK4's stability interval (``h λ < 2.78``) while the
    sharpness grows between measurements. At ``h λ = 0.25`` one step damps the stiffest mode
    with relative error 1e-5 (4e-4 at ``h λ = 0.5``); on ``F = x1 x2 y`` the conserved
    ``x1² − x2²`` then drifts by under 1e-6 (relative) over the whole run. The last step is
    shortened to end at ``t_final``. ``stability_factor=None`` (or no sharpness
    measurements) gives fixed steps ``dt``.

    Parameters
    ----------
    model, X, y, device, divergence_threshold, sharpness_tol
        As in :func:`train_full_batch`; the model's parameters are updated in place.
    t_final : float
        Integration time, ``> 0``.
    dt : float
        Largest step.
    sharpness_every : int or None
        Measure the sharpness every this many RK4 steps (and at step 0); None: never.
    stability_factor : float or None
        Upper bound for ``h × sharpness``; None disables the adaptation.
    max_steps : int
        Stop after this many steps even before ``t_final`` (then ``complete`` is False).

    Returns
    -------
    TrainingRecord
        ``time`` holds the integration times, ``step`` the RK4 step indices; ``eta`` is NaN and
        ``mu`` empty.
    """
    params, X, y = _prepare_training(model, X, y, device)
    t_final = _checks.positive_float("t_final", t_final)
    dt = _checks.positive_float("dt", dt)
    sharpness_every = _check_measure_every("sharpness_every", sharpness_every)
    if stability_factor is not None:
        stability_factor = _checks.positive_float("stability_factor", stability_factor)
    sharpness_tol = _checks.positive_float("sharpness_tol", sharpness_tol, allow_zero=True)
    max_steps = _checks.integer("max_steps", max_steps, minimum=1)
    divergence_threshold = _checks.positive_float("divergence_threshold", divergence_threshold)

    def set_params(flat: torch.Tensor) -> None:
        with torch.no_grad():
            for p, piece in zip(params, _hessian._unflatten(flat, params), strict=True):
                p.copy_(piece)

    def gradient(create_graph: bool = False):
        loss = _half_mse(model, X, y)
        grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
        return loss, grads

    def flat_grad(grads) -> torch.Tensor:
        return _hessian._flatten(
            [
                torch.zeros_like(p) if g is None else g.detach()
                for p, g in zip(params, grads, strict=True)
            ]
        )

    rec = _Recorder()
    x = _hessian._flatten([p.detach() for p in params]).clone()
    t, n = 0.0, 0
    eigen = None
    diverged_at = None
    end_tol = 1e-12 * max(1.0, t_final)
    while True:
        measure = sharpness_every is not None and n % sharpness_every == 0
        loss, grads = gradient(create_graph=measure)
        value = float(loss.detach())
        k1 = flat_grad(grads)
        blown = _blown_up(value, params, divergence_threshold, n)
        if blown or not bool(torch.isfinite(k1).all()):
            diverged_at = n
            break
        rec.step.append(n)
        rec.time.append(t)
        rec.loss.append(value)
        if measure:
            eigen = _measure_sharpness(params, grads, sharpness_tol, eigen)
            rec.s_step.append(n)
            rec.s_time.append(t)
            rec.sharp.append(eigen.eigenvalue)
            rec.n_hvp.append(eigen.n_hvp)
        del loss, grads
        if t_final - t <= end_tol or n >= max_steps:
            break
        h = min(dt, t_final - t)
        if stability_factor is not None and eigen is not None and eigen.eigenvalue > 0:
            h = min(h, stability_factor / eigen.eigenvalue)
        # RK4 for x' = f(x) = -grad L(x); the k's below are gradients (f = -k).
        set_params(x - 0.5 * h * k1)
        k2 = flat_grad(gradient()[1])
        set_params(x - 0.5 * h * k2)
        k3 = flat_grad(gradient()[1])
        set_params(x - h * k3)
        k4 = flat_grad(gradient()[1])
        x = x - (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        set_params(x)
        t += h
        n += 1
    return rec.record(
        diverged=diverged_at is not None,
        diverged_at=diverged_at,
        complete=diverged_at is None and t_final - t <= end_tol,
    )
