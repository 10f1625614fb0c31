"""Checks for the exercises of the chapter *Classifying networks by their critical points*."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dsnn import mlp_geometry, models, neural_ode
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "critical_points"


# --- ex-critical-shear ------------------------------------------------------------------------


def _quadratic_target(A: np.ndarray, c: np.ndarray):
    """Ψ(u) = ½ uᵀ A u + cᵀ u on a batch ``u`` of shape ``(n, d)``."""
    A_t, c_t = torch.as_tensor(A), torch.as_tensor(c)
    return lambda u: 0.5 * ((u @ A_t) * u).sum(dim=1) + u @ c_t


def _shear_cases():
    rotation = np.linalg.qr(np.random.default_rng(7).standard_normal((3, 3)))[0]
    return [
        (np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0])),  # minimum
        (np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([0.5, 0.2])),  # saddle, positive diagonal
        (-np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([1.0, 0.5])),  # maximum
        (rotation @ np.diag([1.5, -2.0, 2.5]) @ rotation.T, np.array([0.3, -0.6, 0.9])),  # d = 3
    ]


def _answer_pair(out, d: int, name: str) -> tuple[np.ndarray, int]:
    if not isinstance(out, tuple) or len(out) != 2:
        raise CheckFailed(f"{name} must return a pair (x_star, index), got {out!r}")
    x_star = as_array("x_star", out[0], shape=(d,))
    index = as_float("index", out[1])
    if index != round(index):
        raise CheckFailed(f"index must be a whole number (a count of eigenvalues), got {index}")
    return x_star, round(index)


@exercise(
    "ex-critical-shear",
    chapter=CHAPTER,
    kind="exploration",
    answer="shear_critical_point(A, c) -> (x_star, index) for the shear network of "
    "Ψ(x) = ½ xᵀAx + cᵀx",
    wrong=[
        lambda A, c: (np.linalg.solve(A, c), int((np.linalg.eigvalsh(A) < 0).sum())),
        lambda A, c: (-np.linalg.solve(A, c), int((np.linalg.eigvalsh(A) > 0).sum())),
        lambda A, c: (-np.linalg.solve(A, c), int((np.diag(A) < 0).sum())),
    ],
)
def _shear(shear_critical_point):
    # The oracle is a measurement: the exact shear embedding of the target (Φ = Ψ), searched for
    # critical points by the package's Levenberg–Marquardt search; index from its Hessian.
    for A, c in _shear_cases():
        d = len(c)
        x_star, index = _answer_pair(
            call(shear_critical_point, A.copy(), c.copy()), d, "shear_critical_point"
        )
        net = neural_ode.shear_embedding(_quadratic_target(A, c), d, 1, method="rk4")
        net.step_size = net.t_final  # the shear speed is constant: one RK4 step is exact
        found = mlp_geometry.critical_points(net, [[-3.0, 3.0]] * d, n_seeds=8, seed=0)
        if len(found) != 1:  # pragma: no cover - a failure of the search, not of the answer
            raise RuntimeError(f"the search found {len(found)} critical points for A = {A}")
        close(
            f"x_star for A = {A.round(3).tolist()}, c = {c.tolist()} (compared with the "
            "measured critical point)",
            x_star,
            found.points[0],
            atol=1e-6,
            rtol=0,
        )
        if index != found.index[0]:
            raise CheckFailed(
                f"for A = {A.round(3).tolist()} the measured critical point has Hessian "
                f"eigenvalues {found.hessian_eigenvalues[0].round(4).tolist()}, so index "
                f"{found.index[0]}, but your index is {index}"
            )
    return (
        "location and Morse index match the measured critical point of four shear networks "
        "(minimum, saddle, maximum, and a saddle in d = 3)"
    )


# --- ex-critical-hessian ----------------------------------------------------------------------


def _hessian_half_factor(W, b, a, x):
    t = torch.tanh(W @ x + b)
    return W.T @ (a * (1 - t**2)), W.T @ torch.diag(-a * t * (1 - t**2)) @ W


def _hessian_wrong_sign(W, b, a, x):
    t = torch.tanh(W @ x + b)
    return W.T @ (a * (1 - t**2)), W.T @ torch.diag(2 * a * t * (1 - t**2)) @ W


def _hessian_gauss_newton(W, b, a, x):
    t = torch.tanh(W @ x + b)
    return W.T @ (a * (1 - t**2)), W.T @ torch.diag(a * (1 - t**2) ** 2) @ W


@exercise(
    "ex-critical-hessian",
    chapter=CHAPTER,
    kind="derivation",
    answer="gradient_and_hessian(W, b, a, x) -> (grad of shape (d,), hess of shape (d, d)) of "
    "Φ(x) = aᵀ tanh(Wx + b)",
    wrong=[_hessian_half_factor, _hessian_wrong_sign, _hessian_gauss_newton],
)
def _hessian(gradient_and_hessian):
    # The oracle is automatic differentiation of Φ, on wide (n > d), narrow (n < d) and
    # single-unit layers, at points where tanh is far from linear.
    generator = torch.Generator().manual_seed(11)
    for n, d in [(5, 2), (8, 2), (3, 4), (1, 3)]:
        W = 2 * torch.randn(n, d, generator=generator, dtype=torch.float64)
        b = torch.randn(n, generator=generator, dtype=torch.float64)
        a = torch.randn(n, generator=generator, dtype=torch.float64)
        x = 0.7 * torch.randn(d, generator=generator, dtype=torch.float64)

        def phi(z, W=W, b=b, a=a):
            return a @ torch.tanh(W @ z + b)

        grad_ad = torch.autograd.functional.jacobian(phi, x)
        hess_ad = torch.autograd.functional.hessian(phi, x)
        out = call(gradient_and_hessian, W.clone(), b.clone(), a.clone(), x.clone())
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"gradient_and_hessian must return a pair (grad, hess), got {out!r}")
        grad = as_array("grad", out[0], shape=(d,))
        hess = as_array("hess", out[1], shape=(d, d))
        where = f"(n = {n} hidden units, d = {d} inputs)"
        close(f"grad {where}", grad, grad_ad.numpy(), rtol=1e-8, atol=1e-10)
        close(f"hess {where}", hess, hess_ad.numpy(), rtol=1e-8, atol=1e-10)
    return "gradient and Hessian agree with automatic differentiation for four layer shapes"


# --- ex-critical-normal-form ------------------------------------------------------------------


def _rank_one_network(d: int, n: int, seed: int) -> nn.Sequential:
    net = models.mlp((d, n, 1), seed=seed)
    generator = torch.Generator().manual_seed(100 + seed)
    u = torch.randn(n, 1, generator=generator, dtype=torch.float64)
    v = torch.randn(1, d, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        net[0].weight.copy_(3 * u @ v)
        net[0].bias.mul_(3)
    return net


def _small_network(net, u, v, *, copy_bias: bool = True):
    n = net[0].out_features
    small = models.mlp((1, n, 1), seed=0)
    with torch.no_grad():
        small[0].weight.copy_(u.reshape(n, 1))
        if copy_bias:
            small[0].bias.copy_(net[0].bias)
        small[2].weight.copy_(net[2].weight)
        small[2].bias.copy_(net[2].bias)
    return small, v.reshape(-1)


def _normal_form_no_bias(net):
    U, S, Vh = torch.linalg.svd(net[0].weight.detach())
    return _small_network(net, S[0] * U[:, 0], Vh[0], copy_bias=False)


def _normal_form_no_singular_value(net):
    U, _, Vh = torch.linalg.svd(net[0].weight.detach())
    return _small_network(net, U[:, 0], Vh[0])


def _normal_form_rows_and_columns(net):
    W1 = net[0].weight.detach()
    return _small_network(net, W1[:, 0].clone(), W1[0].clone())


@exercise(
    "ex-critical-normal-form",
    chapter=CHAPTER,
    kind="computation",
    answer="normal_form(net) -> (small, v): an MLP (1, n, 1) and v of shape (d,) with "
    "net(x) = small(x @ v[:, None])",
    wrong=[_normal_form_no_bias, _normal_form_no_singular_value, _normal_form_rows_and_columns],
)
def _normal_form(normal_form):
    # Properties of a normal form: the same input-output map on random inputs, one input, and
    # full-rank weights (so the reduced network is classified, not reducible again).
    generator = torch.Generator().manual_seed(5)
    for d, n, seed in [(2, 5, 0), (3, 4, 1), (2, 7, 2)]:
        net = _rank_one_network(d, n, seed)
        out = call(normal_form, net, name="normal_form")
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"normal_form must return a pair (small, v), got {out!r}")
        small, v = out
        v = torch.as_tensor(as_array("v", v, shape=(d,)))
        if not isinstance(small, nn.Sequential):
            raise CheckFailed(
                f"small must be an MLP as built by dsnn.models.mlp (an nn.Sequential), got "
                f"{type(small).__name__}"
            )
        linears = [layer for layer in small if isinstance(layer, nn.Linear)]
        if not linears or linears[0].in_features != 1 or linears[-1].out_features != 1:
            widths = (
                [linears[0].in_features, *(lay.out_features for lay in linears)] if linears else []
            )
            raise CheckFailed(f"small must have one input and one output, got widths {widths}")
        kind = mlp_geometry.classify(small).architecture
        if kind in ("reducible", "degenerate"):
            raise CheckFailed(
                f"small must have full-rank weights (a normal form), but it is {kind}"
            )
        x = 2 * torch.randn(200, d, generator=generator, dtype=torch.float64)
        with torch.no_grad():
            reduced = call(small, (x @ v)[:, None], name="small")
            expected = net(x).reshape(-1)
        reduced = as_array("small(x @ v[:, None])", reduced)
        if reduced.size != 200:
            raise CheckFailed(
                f"small must return one value per input row, got shape {reduced.shape}"
            )
        close(
            f"small(x @ v[:, None]) for a rank-one MLP ({d}, {n}, 1) at 200 random inputs",
            reduced.reshape(-1),
            expected.numpy(),
            rtol=1e-9,
            atol=1e-10,
        )
    return "small(vᵀx) reproduces three rank-one MLPs exactly, with one input and full rank"


# --- ex-critical-count ------------------------------------------------------------------------

_R0, _R = 2.0, 3.0


def _confined_network(d: int, n: int, seed: int, outward: bool):
    """Φ_±(x) = N(x) ± c max(0, ‖x‖² − r0²)³ with c so large that ±∇Φ points outward for ‖x‖ ≥ R.

    With ‖∇N‖ ≤ G = Σ_i |a_i| ‖w_i‖, the radial derivative of the confinement at ‖x‖ = r ≥ R is
    6 c (r² − r0²)² r ≥ 6 c (R² − r0²)² R = 1.5 G > G.
    """
    net = mlp_geometry.random_network((d, n, 1), seed=seed, scale=3.0)
    with torch.no_grad():
        G = float((net[2].weight[0].abs() * net[0].weight.norm(dim=1)).sum())
    c = 1.5 * G / (6 * (_R**2 - _R0**2) ** 2 * _R)
    sign = 1.0 if outward else -1.0

    def phi(x):
        return net(x) + sign * c * torch.relu((x**2).sum(dim=1) - _R0**2) ** 3

    return phi


@exercise(
    "ex-critical-count",
    chapter=CHAPTER,
    kind="exploration",
    answer="signed_count(d, outward) -> sum of (-1)^index over the critical points",
    wrong=[
        lambda d, outward: 1,
        lambda d, outward: 1 if outward else -1,
        lambda d, outward: (-1) ** d,
    ],
)
def _count(signed_count):
    # The oracle is a census: every critical point of a confined random network, located by the
    # package's search from 1024 seeds (counts unchanged from 512 to 16384 seeds), indices from
    # the Hessians.
    for d, n, seed in [(1, 8, 2), (2, 16, 4), (3, 12, 3)]:
        for outward in (True, False):
            found = mlp_geometry.critical_points(
                _confined_network(d, n, seed, outward), [[-_R, _R]] * d, n_seeds=1024, seed=0
            )
            if not found.nondegenerate.all():  # pragma: no cover - a failure of the setup
                raise RuntimeError("a located critical point is degenerate")
            measured = int(((-1) ** found.index).sum())
            got = as_float(f"signed_count({d}, {outward})", call(signed_count, d, outward))
            if got != measured:
                counts = np.bincount(found.index, minlength=d + 1).tolist()
                raise CheckFailed(
                    f"in d = {d} with the gradient pointing {'out' if outward else 'in'}ward, "
                    f"a random network has {len(found)} critical points with indices 0..{d} "
                    f"counted {counts}: the signed count is {measured}, your prediction is {got:g}"
                )
    return "the signed count matches six confined random networks in d = 1, 2, 3"
