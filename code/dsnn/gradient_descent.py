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
