"""Neural ODEs and residual networks: the forward pass as a dynamical system.

A residual network ``h_{k+1} = h_k + Δt f(t_k, h_k)`` is the explicit Euler scheme for the ODE
``h' = f(t, h)`` with step ``Δt = T / L`` (E 2017; Haber & Ruthotto 2017; Chen et al. 2018;
survey Sec. 2). As the depth ``L`` grows, the residual map converges to the time-``T`` flow map of
the ODE with error ``O(1/L)`` (Euler's method has order one;
Hairer, Nørsett & Wanner 1993, Sec. II.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchdiffeq import odeint

from dsnn import _checks

VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class MLPField(nn.Module):
    """The vector field ``f(t, h) = A tanh(W h + b)`` of a one-hidden-layer network.

    Autonomous (it ignores ``t``). Weights are drawn from a seeded generator with variance
    ``1/fan_in`` scaled by ``scale``, so the same seed gives the same field.

    Parameters
    ----------
    dim : int
        Phase-space dimension ``m`` (input and output of the field).
    width : int
        Number of hidden units.
    seed : int
        Seed of the weights.
    scale : float
        Multiplies the output weights ``A``; larger values give a stronger (stiffer) field.
    dtype : torch.dtype
        Floating type of the weights (float64 by default for convergence studies).
    """

    def __init__(
        self,
        dim: int,
        width: int = 16,
        *,
        seed: int = 0,
        scale: float = 1.0,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        dim = _checks.integer("dim", dim, minimum=1)
        width = _checks.integer("width", width, minimum=1)
        scale = _checks.positive_float("scale", scale)
        generator = torch.Generator().manual_seed(_checks.integer("seed", seed))
        self.inner = nn.Linear(dim, width, dtype=dtype)
        self.outer = nn.Linear(width, dim, bias=False, dtype=dtype)
        with torch.no_grad():
            self.inner.weight.copy_(torch.randn(width, dim, generator=generator, dtype=dtype))
            self.inner.weight.div_(dim**0.5)
            self.inner.bias.copy_(torch.randn(width, generator=generator, dtype=dtype))
            self.outer.weight.copy_(torch.randn(dim, width, generator=generator, dtype=dtype))
            self.outer.weight.mul_(scale / width**0.5)
        self.dim = dim

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.outer(torch.tanh(self.inner(h)))


def _check_state(x0) -> torch.Tensor:
    x0 = _checks.finite_tensor("x0", x0, ndim=(1, 2))
    return x0


def euler_resnet(
    f: VectorField, x0, T: float, n_layers: int, *, return_states: bool = False
) -> torch.Tensor:
    """Depth-``n_layers`` residual network with step ``Δt = T / n_layers``.

    ``h_0 = x0``, ``h_{k+1} = h_k + Δt f(t_k, h_k)``, ``t_k = k Δt``; returns ``h_L``. This is the
    explicit Euler scheme of ``h' = f(t, h)`` on ``[0, T]``.

    Parameters
    ----------
    f : callable ``(t, h) -> dh/dt``
        The vector field (torchdiffeq convention), acting on a batch of states.
    x0 : tensor of shape ``(d,)`` or ``(batch, d)``
        Initial states (inputs of the network).
    T : float
        Final time (total "depth-time").
    n_layers : int
        Number of residual blocks ``L``.
    return_states : bool
        If true, return all hidden states ``h_0, ..., h_L`` stacked along a new first axis.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    h = _check_state(x0)
    T = _checks.positive_float("T", T)
    n_layers = _checks.integer("n_layers", n_layers, minimum=1)
    dt = T / n_layers
    states = [h]
    for k in range(n_layers):
        t = torch.as_tensor(k * dt, dtype=h.dtype, device=h.device)
        h = h + dt * f(t, h)
        if return_states:
            states.append(h)
    return torch.stack(states) if return_states else h


def ode_trajectory(
    f: VectorField, x0, times, *, rtol: float = 1e-9, atol: float = 1e-11, method: str = "dopri5"
) -> torch.Tensor:
    """Solution ``h(t)`` of ``h' = f(t, h)``, ``h(0) = x0``, at the increasing ``times``.

    Returns a tensor of shape ``(len(times), *x0.shape)``; ``times[0]`` must be 0.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    h0 = _check_state(x0)
    t = _checks.finite_tensor("times", times, ndim=1).to(dtype=h0.dtype, device=h0.device)
    if t[0] != 0 or (t.numel() > 1 and not bool((torch.diff(t) > 0).all())):
        raise ValueError("times must start at 0 and increase strictly")
    rtol = _checks.positive_float("rtol", rtol)
    atol = _checks.positive_float("atol", atol)
    return odeint(f, h0, t, rtol=rtol, atol=atol, method=method)


def ode_flow(
    f: VectorField,
    x0,
    T: float,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-11,
    method: str = "dopri5",
    adjoint: bool = False,
) -> torch.Tensor:
    """Time-``T`` flow map ``x0 ↦ h(T)`` of ``h' = f(t, h)``, computed with torchdiffeq.

    Parameters
    ----------
    f, x0, T
        As in :func:`euler_resnet`.
    rtol, atol : float
        Tolerances of the adaptive solver (tight by default: this is the reference solution).
    method : str
        Any torchdiffeq method (``"dopri5"``, ``"dopri8"``, ``"rk4"``, ...).
    adjoint : bool
        Backpropagate with the adjoint method (``odeint_adjoint``) instead of through the solver;
        ``f`` must then be an ``nn.Module``.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    h0 = _check_state(x0)
    T = _checks.positive_float("T", T)
    rtol = _checks.positive_float("rtol", rtol)
    atol = _checks.positive_float("atol", atol)
    t = torch.tensor([0.0, T], dtype=h0.dtype, device=h0.device)
    if adjoint:
        if not isinstance(f, nn.Module):
            raise TypeError(
                "adjoint=True needs f to be a torch.nn.Module (its parameters get adjoints)"
            )
        from torchdiffeq import odeint_adjoint

        return odeint_adjoint(f, h0, t, rtol=rtol, atol=atol, method=method)[-1]
    return odeint(f, h0, t, rtol=rtol, atol=atol, method=method)[-1]


# ---------------------------------------------------------------------------------------------
# Neural ODEs with lift and readout layers (survey Sec. 2.2), training, Liouville's formula and
# the universal embedding by a shear flow (survey Theorem 2.6).
# ---------------------------------------------------------------------------------------------

_ADAPTIVE_METHODS = frozenset({"dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun"})
_FIXED_STEP_METHODS = frozenset({"euler", "midpoint", "heun3", "rk4"})


class _CountedField(nn.Module):
    """Wraps a vector field and counts its evaluations (the number of function evaluations)."""

    def __init__(self, field: VectorField):
        super().__init__()
        if isinstance(field, nn.Module):
            self.field = field
        else:
            self._plain_field = field
        self.calls = 0

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        field = self.field if hasattr(self, "field") else self._plain_field
        return field(t, h)


def _check_method(method: str) -> str:
    if not isinstance(method, str) or method not in _ADAPTIVE_METHODS | _FIXED_STEP_METHODS:
        allowed = sorted(_ADAPTIVE_METHODS | _FIXED_STEP_METHODS)
        raise ValueError(f"method must be one of {allowed}, got {method!r}")
    return method


class NeuralODE(nn.Module):
    """Neural ODE with an affine lift, a vector field on the phase space and an affine readout.

    The architecture of the survey (Sec. 2.2, eqs. 9–10) and of Kuehn & Kuntz (2023, 2024):

    .. math::

        h(0) = W x + b, \\qquad h'(t) = f(t, h(t)), \\quad t \\in [0, T], \\qquad
        \\Phi(x) = \\tilde W h(T) + \\tilde b,

    with input ``x ∈ R^d`` (``d = dim_in``), phase space ``R^m`` (``m = dim_phase``) and output in
    ``R^q`` (``q = dim_out``). It is *non-augmented* if ``m ≤ d``, *augmented* if ``m > d`` and
    *degenerate* if ``W`` or ``W̃`` does not have full rank (see :attr:`architecture`).

    Parameters
    ----------
    dim_in, dim_phase, dim_out : int
        ``d``, ``m`` and ``q``.
    vector_field : callable ``(t, h) -> f(t, h)`` or None
        The vector field on ``R^m`` (torchdiffeq convention, acting on a batch ``(n, m)``). None
        builds a one-hidden-layer field :class:`MLPField` with ``width`` units from ``seed``.
    t_final : float
        The final time ``T > 0``.
    method : str
        A torchdiffeq solver: adaptive (``"dopri5"``, ``"dopri8"``, ``"bosh3"``, ``"fehlberg2"``,
        ``"adaptive_heun"``) or fixed-step (``"euler"``, ``"midpoint"``, ``"heun3"``, ``"rk4"``).
    adjoint : bool
        Backpropagate with the adjoint method (torchdiffeq's ``odeint_adjoint``; Chen et al.
        2018, Sec. 2): memory independent of the number of solver steps, at the price of a second
        (backward) solve.
    width, seed, scale : int, int, float
        Hidden width, seed and output scale of the default :class:`MLPField`.
    rtol, atol : float
        Tolerances of adaptive solvers.
    step_size : float or None
        Step of fixed-step solvers (default ``t_final / 20``).
    max_num_steps : int or None
        Cap on the steps of an adaptive solver per solve; past it torchdiffeq raises
        ``max_num_steps exceeded`` (which :func:`fit` reports) instead of shrinking the step
        until ``underflow in dt``. None: no cap.
    train_affine : bool
        If False, the lift and readout are frozen at their initial values: ``h(0) = (x, 0)``
        (augmentation by zeros, Dupont, Doucet & Teh 2019) and the output is the first ``q``
        coordinates of ``h(T)``. With ``d = m = q`` this is the bare flow map ``x ↦ h(T)``.
        If True (default) both layers are trained, starting from the same values.
    dtype : torch.dtype
        Floating type of the lift, readout and default field.

    Attributes
    ----------
    lift, readout : torch.nn.Linear
        ``x ↦ Wx + b`` and ``h ↦ W̃h + b̃``.
    vector_field : callable
        ``f``.
    nfe : int
        Number of evaluations of ``f`` since it was last set to 0 (forward and backward solves).
    """

    def __init__(
        self,
        dim_in: int,
        dim_phase: int,
        dim_out: int,
        vector_field: VectorField | None = None,
        t_final: float = 1.0,
        method: str = "dopri5",
        adjoint: bool = False,
        *,
        width: int = 32,
        seed: int = 0,
        scale: float = 1.0,
        rtol: float = 1e-6,
        atol: float = 1e-8,
        step_size: float | None = None,
        max_num_steps: int | None = None,
        train_affine: bool = True,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        d = _checks.integer("dim_in", dim_in, minimum=1)
        m = _checks.integer("dim_phase", dim_phase, minimum=1)
        q = _checks.integer("dim_out", dim_out, minimum=1)
        self.t_final = _checks.positive_float("t_final", t_final)
        self.method = _check_method(method)
        if not isinstance(adjoint, bool):
            raise TypeError(f"adjoint must be True or False, got {adjoint!r}")
        if not isinstance(train_affine, bool):
            raise TypeError(f"train_affine must be True or False, got {train_affine!r}")
        if not train_affine and m < d:
            raise ValueError(
                f"a fixed lift h(0) = (x, 0) (train_affine=False) augments the input and needs "
                f"dim_phase >= dim_in, got dim_phase={m} < dim_in={d}"
            )
        if not train_affine and q > m:
            raise ValueError(
                f"a fixed readout (the first dim_out coordinates, train_affine=False) needs "
                f"dim_out <= dim_phase, got dim_out={q} > dim_phase={m}"
            )
        self.rtol = _checks.positive_float("rtol", rtol)
        self.atol = _checks.positive_float("atol", atol)
        if step_size is None:
            step_size = self.t_final / 20
        self.step_size = _checks.positive_float("step_size", step_size)
        if max_num_steps is not None:
            max_num_steps = _checks.integer("max_num_steps", max_num_steps, minimum=1)
        self.max_num_steps = max_num_steps
        if vector_field is None:
            vector_field = MLPField(m, width, seed=seed, scale=scale, dtype=dtype)
        elif not callable(vector_field):
            raise TypeError(
                "vector_field must be a callable f(t, h) or None, "
                f"got {type(vector_field).__name__}"
            )
        if adjoint and not isinstance(vector_field, nn.Module):
            raise TypeError("adjoint=True needs vector_field to be a torch.nn.Module")
        try:
            with torch.no_grad():
                probe = vector_field(torch.tensor(0.0, dtype=dtype), torch.zeros(2, m, dtype=dtype))
        except RuntimeError as err:  # typically a shape mismatch inside the field
            probe = f"an error ({err})"
        if not isinstance(probe, torch.Tensor) or tuple(probe.shape) != (2, m):
            got = tuple(probe.shape) if isinstance(probe, torch.Tensor) else probe
            raise ValueError(
                f"vector_field must map a batch of states of shape (n, dim_phase) = (2, {m}) to "
                f"the same shape, got {got}"
            )
        self.dim_in, self.dim_phase, self.dim_out = d, m, q
        self.adjoint = adjoint
        self._field = _CountedField(vector_field)
        self.lift = nn.Linear(d, m, dtype=dtype)
        self.readout = nn.Linear(m, q, dtype=dtype)
        with torch.no_grad():
            self.lift.weight.copy_(torch.eye(m, d, dtype=dtype))
            self.lift.bias.zero_()
            self.readout.weight.copy_(torch.eye(q, m, dtype=dtype))
            self.readout.bias.zero_()
        if not train_affine:
            self.lift.requires_grad_(False)
            self.readout.requires_grad_(False)

    @property
    def vector_field(self) -> VectorField:
        """The vector field ``f`` (as passed in, or the default :class:`MLPField`)."""
        return self._field.field if hasattr(self._field, "field") else self._field._plain_field

    @property
    def nfe(self) -> int:
        """Evaluations of ``f`` since the counter was last set (``model.nfe = 0`` resets it)."""
        return self._field.calls

    @nfe.setter
    def nfe(self, value: int) -> None:
        self._field.calls = _checks.integer("nfe", value)

    @property
    def architecture(self) -> str:
        """``"degenerate"`` if ``W`` or ``W̃`` is rank deficient, else ``"augmented"`` (m > d)
        or ``"non-augmented"`` (m ≤ d) — the classes of Kuehn & Kuntz (2024)."""
        with torch.no_grad():
            rank_lift = int(torch.linalg.matrix_rank(self.lift.weight))
            rank_readout = int(torch.linalg.matrix_rank(self.readout.weight))
        if rank_lift < min(self.dim_in, self.dim_phase) or rank_readout < min(
            self.dim_phase, self.dim_out
        ):
            return "degenerate"
        return "augmented" if self.dim_phase > self.dim_in else "non-augmented"

    def _inputs(self, x) -> torch.Tensor:
        x = _checks.finite_tensor("x", x, ndim=2)
        if x.shape[1] != self.dim_in:
            raise ValueError(
                f"x must have shape (n, dim_in) = (n, {self.dim_in}), got {tuple(x.shape)}"
            )
        return x.to(self.lift.weight)  # the dtype and device of the model

    def _solve(self, h0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.method in _FIXED_STEP_METHODS:
            options = {"step_size": self.step_size}
        else:
            options = None if self.max_num_steps is None else {"max_num_steps": self.max_num_steps}
        kwargs = {"rtol": self.rtol, "atol": self.atol, "method": self.method, "options": options}
        if self.adjoint:
            from torchdiffeq import odeint_adjoint

            return odeint_adjoint(self._field, h0, t, **kwargs)
        return odeint(self._field, h0, t, **kwargs)

    def trajectory(self, x, t) -> torch.Tensor:
        """Hidden states ``h_x(t)`` at the increasing ``times`` t (``t[0] = 0``).

        Returns a tensor of shape ``(len(t), n, dim_phase)``.
        """
        x = self._inputs(x)
        t = _checks.finite_tensor("t", t, ndim=1).to(dtype=x.dtype, device=x.device)
        if t[0] != 0 or (t.numel() > 1 and not bool((torch.diff(t) > 0).all())):
            raise ValueError("t must start at 0 and increase strictly")
        return self._solve(self.lift(x), t)

    def flow(self, x) -> torch.Tensor:
        """The lifted input at the final time, ``h_x(T) = φ_T(Wx + b)``, shape ``(n, m)``."""
        x = self._inputs(x)
        t = torch.tensor([0.0, self.t_final], dtype=x.dtype, device=x.device)
        return self._solve(self.lift(x), t)[-1]

    def forward(self, x) -> torch.Tensor:
        """``Φ(x) = W̃ φ_T(Wx + b) + b̃`` for a batch ``x`` of shape ``(n, d)``; shape ``(n, q)``."""
        return self.readout(self.flow(x))

    def resnet(self, x, n_layers: int) -> torch.Tensor:
        """The same network with the flow replaced by a depth-``n_layers`` residual network.

        ``W̃ h_L + b̃`` with ``h_L`` from :func:`euler_resnet` (explicit Euler with step
        ``T / n_layers``) started at ``Wx + b``.
        """
        x = self._inputs(x)
        return self.readout(euler_resnet(self._field, self.lift(x), self.t_final, n_layers))


class ShearField(nn.Module):
    """The shear vector field ``f(t, (u, v)) = (0, Ψ(u) / T)`` on ``R^{d+q}``.

    Its flow is ``(u, v) ↦ (u, v + t Ψ(u) / T)``: the first ``d`` coordinates stay put and the
    last ``q`` move with constant speed. Started at ``(x, 0)``, the state at ``t = T`` is
    ``(x, Ψ(x))``. This is the construction behind the universal embedding of augmented neural
    ODEs (survey Theorem 2.6, after Kuehn & Kuntz 2023).
    """

    def __init__(
        self,
        target: Callable[[torch.Tensor], torch.Tensor],
        dim_in: int,
        dim_out: int,
        t_final: float,
    ):
        super().__init__()
        self.target = target
        self.dim_in, self.dim_out, self.t_final = dim_in, dim_out, t_final

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        u = h[:, : self.dim_in]
        speed = _target_values(self.target, u, self.dim_out) / self.t_final
        return torch.cat([torch.zeros_like(u), speed], dim=1)


def _target_values(target, u: torch.Tensor, dim_out: int) -> torch.Tensor:
    values = target(u)
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"target must return a torch tensor, got {type(values).__name__}")
    if dim_out == 1 and values.shape == (u.shape[0],):
        values = values[:, None]
    if tuple(values.shape) != (u.shape[0], dim_out):
        raise ValueError(
            f"target must map inputs of shape (n, dim_in) to shape (n, dim_out) = "
            f"({u.shape[0]}, {dim_out}), got {tuple(values.shape)}"
        )
    return values.to(u.dtype)


def shear_embedding(
    target: Callable[[torch.Tensor], torch.Tensor],
    dim_in: int,
    dim_out: int,
    *,
    t_final: float = 1.0,
    method: str = "dopri5",
    dtype: torch.dtype = torch.float64,
) -> NeuralODE:
    """A neural ODE on ``R^{d+q}`` whose input-output map is exactly ``target`` (no training).

    The constructive proof of the universal embedding theorem for augmented neural ODEs
    (survey Theorem 2.6; Kuehn & Kuntz 2023): lift ``W = [1_d; 0]``, ``b = 0``, so that
    ``h(0) = (x, 0)``; the vector field of :class:`ShearField`; readout ``W̃ = [0, 1_q]``,
    ``b̃ = 0``. Then ``Φ(x) = Ψ(x)`` for every ``x``, whatever ``Ψ`` is (non-invertible,
    non-monotone, with critical points): the flow is explicit and every Runge–Kutta method
    integrates the constant speed ``Ψ(u)/T`` exactly, so the error is rounding only.

    Parameters
    ----------
    target : callable
        ``Ψ``: maps a batch ``(n, d)`` to ``(n, q)`` (or ``(n,)`` when ``q = 1``).
    dim_in, dim_out : int
        ``d`` and ``q``; the phase space has dimension ``m = d + q``.
    """
    if not callable(target):
        raise TypeError(f"target must be a callable Ψ(x), got {type(target).__name__}")
    d = _checks.integer("dim_in", dim_in, minimum=1)
    q = _checks.integer("dim_out", dim_out, minimum=1)
    t_final = _checks.positive_float("t_final", t_final)
    _target_values(target, torch.zeros(2, d, dtype=dtype), q)  # fail early on a wrong shape
    model = NeuralODE(d, d + q, q, ShearField(target, d, q, t_final), t_final, method, dtype=dtype)
    with torch.no_grad():
        model.readout.weight.copy_(torch.cat([torch.zeros(q, d), torch.eye(q)], dim=1))
    model.lift.requires_grad_(False)
    model.readout.requires_grad_(False)
    return model


@dataclass
class FitRecord:
    """What :func:`fit` returns.

    Attributes
    ----------
    losses : ndarray of shape ``(n_done,)``
        Mean-squared error before each step.
    nfe_forward, nfe_backward : ndarray of int, shape ``(n_done,)``
        Evaluations of the vector field in the forward solve and in the backward pass of each
        step (with ``adjoint=False`` the backward pass re-uses the stored graph and evaluates
        nothing; with ``adjoint=True`` it solves the adjoint ODE).
    seconds : float
        Wall time of the whole run.
    failed : bool
        True if the run stopped early: a non-finite loss, or the adaptive solver failed (its step
        size underflowed, torchdiffeq's ``underflow in dt``, or it needed more than the model's
        ``max_num_steps``). The record keeps the steps before it.
    failed_at : int or None
        The step at which it stopped.
    message : str or None
        Why it stopped.
    """

    losses: np.ndarray
    nfe_forward: np.ndarray
    nfe_backward: np.ndarray
    seconds: float
    failed: bool = False
    failed_at: int | None = None
    message: str | None = None

    @property
    def final_loss(self) -> float:
        """The last recorded loss."""
        return float(self.losses[-1]) if self.losses.size else math.nan

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of one step."""
        return self.seconds / max(self.losses.size, 1)


def fit(
    model: nn.Module,
    X,
    y,
    n_steps: int,
    lr: float,
    seed: int,
    *,
    batch_size: int | None = None,
    max_grad_norm: float | None = None,
) -> FitRecord:
    """Train ``model`` on the mean-squared error ``mean ||model(X) − y||²`` with Adam.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(n, d)`` to ``(n, q)`` (a :class:`NeuralODE`, or any module); its parameters with
        ``requires_grad`` are trained in place.
    X : array-like of shape ``(n, d)``
    y : array-like of shape ``(n, q)``, or ``(n,)`` when ``q = 1``
    n_steps : int
        Number of Adam steps.
    lr : float
        Learning rate.
    seed : int
        Seeds the order of the mini-batches (unused for full-batch training).
    batch_size : int or None
        None trains on the full batch.
    max_grad_norm : float or None
        Clip the gradient norm to this value before each step (a guard against the blow-ups that
        end in ``underflow in dt``).

    A NaN loss, torchdiffeq's ``underflow in dt`` or ``max_num_steps exceeded`` is reported in
    the record (``failed``), not raised.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    X = _checks.finite_tensor("X", X, ndim=2).to(params[0])  # dtype and device of the model
    y = _checks.finite_tensor("y", y, ndim=(1, 2)).to(params[0])
    if y.ndim == 1:
        y = y[:, None]
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y must have the same number of samples, got {X.shape[0]} and {y.shape[0]}"
        )
    dim_in = getattr(model, "dim_in", X.shape[1])
    if X.shape[1] != dim_in:
        raise ValueError(f"X must have shape (n, dim_in) = (n, {dim_in}), got {tuple(X.shape)}")
    n_steps = _checks.integer("n_steps", n_steps, minimum=1)
    lr = _checks.positive_float("lr", lr)
    generator = torch.Generator().manual_seed(_checks.integer("seed", seed))
    if batch_size is not None:
        batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    if max_grad_norm is not None:
        max_grad_norm = _checks.positive_float("max_grad_norm", max_grad_norm)

    optimizer = torch.optim.Adam(params, lr=lr)
    counted = isinstance(model, NeuralODE)
    losses, nfe_f, nfe_b = [], [], []
    failed_at, message = None, None
    n = X.shape[0]
    start = time.perf_counter()
    for step in range(n_steps):
        if batch_size is None or batch_size >= n:
            xb, yb = X, y
        else:
            index = torch.randperm(n, generator=generator)[:batch_size]
            xb, yb = X[index], y[index]
        optimizer.zero_grad()
        try:
            if counted:
                model.nfe = 0
            out = model(xb)
            out = out[:, None] if out.ndim == 1 else out
            if out.shape != yb.shape:
                raise ValueError(
                    f"model outputs have shape {tuple(out.shape)} but y has shape {tuple(yb.shape)}"
                )
            loss = ((out - yb) ** 2).sum(dim=1).mean()
            forward_calls = model.nfe if counted else 0
            if not torch.isfinite(loss):
                failed_at, message = step, f"the loss is not finite ({float(loss)})"
                break
            loss.backward()
        except AssertionError as err:  # torchdiffeq signals solver failures this way
            if "underflow in dt" not in str(err) and "max_num_steps" not in str(err):
                raise
            failed_at, message = step, f"the ODE solver failed: {err}"
            break
        losses.append(float(loss.detach()))
        nfe_f.append(forward_calls)
        nfe_b.append(model.nfe - forward_calls if counted else 0)
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
    return FitRecord(
        losses=np.array(losses),
        nfe_forward=np.array(nfe_f, dtype=int),
        nfe_backward=np.array(nfe_b, dtype=int),
        seconds=time.perf_counter() - start,
        failed=failed_at is not None,
        failed_at=failed_at,
        message=message,
    )


def disk_annulus(
    n_samples: int, seed: int, *, radii: tuple[float, float, float] = (0.5, 1.0, 1.5)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of a disk (label −1) and of the annulus around it (label +1), half of each.

    ``g(x) = −1`` for ``‖x‖ ≤ r_1`` and ``g(x) = +1`` for ``r_2 ≤ ‖x‖ ≤ r_3`` (Dupont, Doucet &
    Teh 2019, in two dimensions). Points are uniform by area in each region.

    Returns
    -------
    X : tensor of shape ``(n_samples, 2)``
    y : tensor of shape ``(n_samples,)``
    """
    n_samples = _checks.integer("n_samples", n_samples, minimum=2)
    r1, r2, r3 = (_checks.positive_float(f"radii[{i}]", r) for i, r in enumerate(radii))
    if not r1 < r2 < r3:
        raise ValueError(f"radii must increase strictly, r1 < r2 < r3, got {tuple(radii)}")
    generator = torch.Generator().manual_seed(_checks.integer("seed", seed))
    n_in = n_samples // 2
    u = torch.rand(n_samples, dtype=torch.float64, generator=generator)
    angle = 2 * math.pi * torch.rand(n_samples, dtype=torch.float64, generator=generator)
    # Uniform by area: r^2 uniform on [0, r1^2] (disk) or [r2^2, r3^2] (annulus).
    r_squared = torch.cat([u[:n_in] * r1**2, r2**2 + u[n_in:] * (r3**2 - r2**2)])
    X = torch.sqrt(r_squared)[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    y = torch.cat([-torch.ones(n_in), torch.ones(n_samples - n_in)]).to(torch.float64)
    return X, y


def monotone_mse_bound(x, y, *, increasing: bool | None = True) -> float:
    """Smallest mean-squared error of a monotone function of ``x`` fitted to ``y``.

    ``min_g (1/N) Σ_i (g(x_i) − y_i)²`` over non-decreasing ``g`` (``increasing=True``),
    non-increasing ``g`` (False), or the smaller of the two (None). The minimiser is the
    isotonic regression of ``y`` ordered by ``x`` (pool-adjacent-violators algorithm, computed
    with ``scipy.optimize.isotonic_regression``). A one-dimensional flow map is strictly
    increasing, so no 1-D neural ODE without an orientation-reversing lift or readout gets
    below the ``increasing=True`` value on the same sample.
    """
    from scipy.optimize import isotonic_regression

    x = _checks.finite_array("x", x, ndim=1)
    y = _checks.finite_array("y", y, ndim=1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if increasing is not None and not isinstance(increasing, bool):
        raise TypeError(f"increasing must be True, False or None, got {increasing!r}")
    order = np.argsort(x, kind="stable")
    # Ties in x must get one value of g: fit on the means of the tied groups, weighted.
    _, inverse, counts = np.unique(x[order], return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y[order]) / counts
    directions = [True, False] if increasing is None else [increasing]
    best = math.inf
    for direction in directions:
        fitted = isotonic_regression(means, weights=counts, increasing=direction).x
        best = min(best, float(np.mean((fitted[inverse] - y[order]) ** 2)))
    return best


def flow_jacobian(
    f: VectorField, x0, T: float, *, rtol: float = 1e-10, atol: float = 1e-12
) -> torch.Tensor:
    """Jacobian ``Dφ_T(x0)`` of the time-``T`` flow map, for a batch: shape ``(n, m, m)``.

    Differentiates the solver's output with autograd (one backward pass per output coordinate;
    the solver's step sizes are chosen without gradients, so this is the derivative of the
    discrete flow at tolerance ``rtol``).
    """
    h0 = _checks.finite_tensor("x0", x0, ndim=2).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = ode_flow(f, h0, T, rtol=rtol, atol=atol)
        rows = [
            torch.autograd.grad(out[:, i].sum(), h0, retain_graph=i < out.shape[1] - 1)[0]
            for i in range(out.shape[1])
        ]
    return torch.stack(rows, dim=1)


def divergence_integral(
    f: VectorField, x0, T: float, *, rtol: float = 1e-10, atol: float = 1e-12
) -> torch.Tensor:
    """``∫_0^T div f(t, φ_t(x0)) dt`` along the trajectories of a batch ``x0``: shape ``(n,)``.

    Integrates the state together with ``ℓ' = tr Df(t, h)``, the exact trace from ``m``
    autograd passes (as in continuous normalising flows, Chen et al. 2018, Sec. 4). By
    Liouville's formula ``det Dφ_T(x0) = exp(∫_0^T div f dt) > 0``: flow maps preserve
    orientation (Jacobi's formula applied to the variational equation ``Y' = Df Y``).
    """
    if not callable(f):
        raise TypeError(f"f must be a callable vector field f(t, h), got {type(f).__name__}")
    h0 = _checks.finite_tensor("x0", x0, ndim=2).detach()
    m = h0.shape[1]

    def augmented(t, z):
        with torch.enable_grad():
            h = z[:, :m].detach().requires_grad_(True)
            fh = f(t, h)
            trace = sum(
                torch.autograd.grad(fh[:, i].sum(), h, retain_graph=i < m - 1)[0][:, i]
                for i in range(m)
            )
        return torch.cat([fh.detach(), trace.detach()[:, None]], dim=1)

    z0 = torch.cat([h0, torch.zeros(h0.shape[0], 1, dtype=h0.dtype)], dim=1)
    return ode_flow(augmented, z0, T, rtol=rtol, atol=atol)[:, m]


def backward_memory(model: nn.Module, X) -> int:
    """Bytes of the tensors that the forward pass of ``model(X)`` stores for backpropagation.

    Counted with ``torch.autograd.graph.saved_tensors_hooks`` (each storage once). With direct
    backpropagation through the solver this grows with the number of solver steps; with the
    adjoint method the forward solve runs without a graph and stores almost nothing
    (Chen et al. 2018, Sec. 2). A device-independent measure of the memory a training step needs
    beyond the parameters.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(X)
    return int(sum(seen.values()))
