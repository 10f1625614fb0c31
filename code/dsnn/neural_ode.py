"""Neural ODEs and residual networks: the forward pass as a dynamical system.

A residual network ``h_{k+1} = h_k + Δt f(t_k, h_k)`` is the explicit Euler scheme for the ODE
``h' = f(t, h)`` with step ``Δt = T / L`` (E 2017; Haber & Ruthotto 2017; Chen et al. 2018;
survey Sec. 2). As the depth ``L`` grows, the residual map converges to the time-``T`` flow map of
the ODE with error ``O(1/L)`` (Euler's method has order one;
Hairer, Nørsett & Wanner 1993, Sec. II.3).
"""

from __future__ import annotations

from collections.abc import Callable

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
