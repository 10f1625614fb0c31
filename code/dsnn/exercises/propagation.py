"""Checks for the exercises of the outlook chapter, *Gradients as Lyapunov exponents*.

The oracles are the chapter's mathematics: the discrete adjoint recursion (backpropagation through
a residual network is ``a_k = (1 + Δt Df(t_k, h_k))ᵀ a_{k+1}``), the law of the growth factors of
products of Gaussian matrices (Proposition 'Products of Gaussian matrices': i.i.d. ``χ²_N / N``
factors), the mean-field exponent ``½ log χ_1`` (Poole et al. 2016; Schoenholz et al. 2017), and
the heat-flow smoothing ``p_T = p_0 * N(0, T 1)`` of a Gaussian mixture behind the
probability-flow ODE (Song et al. 2021).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.integrate
import scipy.special
import torch

from dsnn import neural_ode, stats
from dsnn import propagation as pr
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "propagation"


# --- ex-pr-discrete-adjoint ---------------------------------------------------------------------


def _adjoint_variant(f, x0, T, n_layers, a_final, *, transpose=True, sign=1.0, shift=0, t_shift=0):
    """Backward recursion with optional mistakes: the plausible wrong answers of the exercise.

    ``transpose=False`` applies ``Df`` instead of ``Dfᵀ`` (a Jacobian-vector product),
    ``sign=-1`` steps the adjoint the wrong way, ``shift=1`` evaluates ``Df`` at ``h_{k+1}`` and
    ``t_shift=1`` at ``t_{k+1}``.
    """
    dt = T / n_layers
    with torch.no_grad():
        states = neural_ode.euler_resnet(f, x0, T, n_layers, return_states=True)
    a = a_final.clone()
    for k in reversed(range(n_layers)):
        t_k = torch.tensor((k + t_shift) * dt, dtype=x0.dtype)
        h_k = states[k + shift]
        if transpose:
            _, vjp = torch.func.vjp(lambda h, t_k=t_k: f(t_k, h), h_k)
            step = vjp(a)[0]
        else:
            step = torch.func.jvp(lambda h, t_k=t_k: f(t_k, h), (h_k,), (a,))[1]
        a = a + sign * dt * step
    return a


def _adjoint_no_transpose(f, x0, T, n_layers, a_final):
    return _adjoint_variant(f, x0, T, n_layers, a_final, transpose=False)


def _adjoint_wrong_sign(f, x0, T, n_layers, a_final):
    return _adjoint_variant(f, x0, T, n_layers, a_final, sign=-1.0)


def _adjoint_next_state(f, x0, T, n_layers, a_final):
    return _adjoint_variant(f, x0, T, n_layers, a_final, shift=1)


def _adjoint_next_time(f, x0, T, n_layers, a_final):
    return _adjoint_variant(f, x0, T, n_layers, a_final, t_shift=1)


@exercise(
    "ex-pr-discrete-adjoint",
    chapter=CHAPTER,
    kind="computation",
    answer=(
        "discrete_adjoint(f, x0, T, n_layers, a_final) -> tensor like x0: the gradient of "
        "sum(a_final * h_L) with respect to x0, by the recursion "
        "a_k = (1 + dt Df(t_k, h_k))^T a_(k+1)"
    ),
    wrong=[_adjoint_no_transpose, _adjoint_wrong_sign, _adjoint_next_state, _adjoint_next_time],
)
def _discrete_adjoint(discrete_adjoint):
    gen = torch.Generator().manual_seed(11)
    # 1. A linear, time-dependent field f(t, h) = (1 + t) A h: the layer Jacobians are the known
    #    matrices M_k = 1 + dt (1 + t_k) A, and backpropagation is a_0 = M_0ᵀ M_1ᵀ ⋯ M_{L-1}ᵀ a_L.
    A = torch.tensor([[0.0, 1.0, 0.3], [-1.5, -0.2, 0.0], [0.4, 0.0, -0.5]], dtype=torch.float64)
    x0 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    a_final = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    T, n_layers = 1.5, 30
    dt = T / n_layers
    expected = a_final.numpy().copy()  # rows are the adjoints: a_kᵀ = a_{k+1}ᵀ M_k
    for k in reversed(range(n_layers)):
        expected = expected @ (np.eye(3) + dt * (1 + k * dt) * A.numpy())
    out = call(
        discrete_adjoint,
        lambda t, h: (1 + t) * (h @ A.T),
        x0.clone(),
        T,
        n_layers,
        a_final.clone(),
        name="discrete_adjoint",
    )
    close(
        "a_0 for the linear field f(t, h) = (1 + t) A h (the product of the transposed layer "
        "Jacobians 1 + dt (1 + t_k) A)",
        as_array("a_0", out, shape=tuple(x0.shape)),
        expected,
        rtol=1e-9,
        atol=1e-12,
    )
    # 2. A nonlinear field: the layer Jacobians depend on the states h_k of the forward pass.
    #    The oracle is backpropagation by autograd through the package's residual network.
    field = neural_ode.MLPField(3, 16, seed=4, scale=1.5)
    x0 = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    a_final = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    T, n_layers = 2.0, 40
    x = x0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(
        (neural_ode.euler_resnet(field, x, T, n_layers) * a_final).sum(), x
    )
    out = call(discrete_adjoint, field, x0.clone(), T, n_layers, a_final.clone())
    close(
        "a_0 for a tanh-network field (backpropagation through the residual network by autograd)",
        as_array("a_0", out, shape=tuple(x0.shape)),
        grad.numpy(),
        rtol=1e-9,
        atol=1e-12,
    )
    return (
        "matches the product of the transposed layer Jacobians for a time-dependent linear field "
        "and autograd's backpropagation through a 40-layer residual network"
    )


# --- ex-pr-one-unit -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mean_log_abs_normal() -> float:
    """``E log|g|`` for ``g ~ N(0, 1)`` by adaptive quadrature (no closed form used)."""
    density = lambda x: math.log(x) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    inner, _ = scipy.integrate.quad(density, 0.0, 1.0, epsabs=1e-13, epsrel=1e-13, limit=200)
    outer, _ = scipy.integrate.quad(density, 1.0, np.inf, epsabs=1e-13, epsrel=1e-13, limit=200)
    return 2 * (inner + outer)


@exercise(
    "ex-pr-one-unit",
    chapter=CHAPTER,
    kind="derivation",
    answer="one_unit_exponent(sigma) -> the exponent lambda_1 of products of N(0, sigma^2) numbers",
    wrong=[
        lambda s: 0.5 * math.log(s**2),
        lambda s: 0.5 * (math.log(s**2) - np.euler_gamma),
        lambda s: math.log(s**2) - np.euler_gamma - math.log(2),
        lambda s: 0.5 * (math.log(s**2) - np.euler_gamma - 2 * math.log(2)),
    ],
)
def _one_unit(one_unit_exponent):
    # For N = 1 the growth factors are |sigma g| with g standard normal, i.i.d., so by the law of
    # large numbers lambda_1 = log sigma + E log|g|; the expectation is integrated numerically.
    mean_log = _mean_log_abs_normal()
    sigma_c = math.exp(-mean_log)  # where the exponent changes sign
    for sigma in (0.5, 1.0, sigma_c, 3.0):
        got = as_float(f"one_unit_exponent({sigma:.6g})", call(one_unit_exponent, sigma))
        close(
            f"one_unit_exponent({sigma:.6g}) (= log sigma + E log|g| by quadrature)",
            got,
            math.log(sigma) + mean_log,
            rtol=1e-8,
            atol=1e-10,
        )
    return (
        f"equals log sigma + E log|g| at four values of sigma and vanishes at sigma = {sigma_c:.4f}"
    )


# --- ex-pr-gradient-spread ----------------------------------------------------------------------

#: (width, depth, sigma_w) of the random linear networks the check measures, and how many.
_SPREAD_CASES = ((1, 20, 1.0), (2, 24, 0.9))
_SPREAD_NETWORKS = 400
_SPREAD_Z = 4.0


def _squared_moments_halved(width: int, depth: int, sigma_w: float) -> tuple[float, float]:
    """Mean and variance of ``log ‖∂ℓ/∂h^0‖`` for a linear network, used by the wrong answers.

    ``L`` i.i.d. factors ``½ log(σ_w² χ²_N / N)``: mean ``L (log σ_w + ½[ψ(N/2) − log(N/2)])``,
    variance ``(L/4) ψ'(N/2)``.
    """
    half = width / 2
    mean = depth * (math.log(sigma_w) + 0.5 * (scipy.special.digamma(half) - math.log(half)))
    return float(mean), float(depth * scipy.special.polygamma(1, half) / 4)


@functools.cache
def _log_gradient_sample(width: int, depth: int, sigma_w: float) -> np.ndarray:
    """``log ‖∂ℓ/∂h^0‖`` of independent random linear networks, by :func:`pr.gradient_norms`."""
    return np.array(
        [
            math.log(pr.gradient_norms(depth, width, sigma_w, 0.0, "linear", seed=s)[0, 0])
            for s in range(_SPREAD_NETWORKS)
        ]
    )


@exercise(
    "ex-pr-gradient-spread",
    chapter=CHAPTER,
    kind="exploration",
    answer=(
        "log_gradient_moments(width, depth, sigma_w) -> (mean, variance) of log ||dl/dh^0|| "
        "over random linear networks"
    ),
    wrong=[
        lambda n, L, s: (L * math.log(s), L / (2 * n)),
        lambda n, L, s: (L * (math.log(s) - 1 / (2 * n)), L / (2 * n)),
        lambda n, L, s: (
            2 * _squared_moments_halved(n, L, s)[0],
            4 * _squared_moments_halved(n, L, s)[1],
        ),
        lambda n, L, s: (
            _squared_moments_halved(n, L, s)[0],
            4 * _squared_moments_halved(n, L, s)[1],
        ),
    ],
)
def _gradient_spread(log_gradient_moments):
    # The oracle is a measurement: 400 networks per case, backpropagated by autograd in the
    # package's gradient_norms, with the standard errors of the sample mean and variance.
    for width, depth, sigma_w in _SPREAD_CASES:
        sample = _log_gradient_sample(width, depth, sigma_w)
        n = sample.size
        mean, var = sample.mean(), sample.var(ddof=1)
        se_mean = math.sqrt(var / n)
        se_var = math.sqrt((np.mean((sample - mean) ** 4) - var**2) / n)
        out = call(log_gradient_moments, width, depth, sigma_w)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise CheckFailed(
                f"log_gradient_moments must return a pair (mean, variance), got {out!r}"
            )
        where = f"width {width}, depth {depth}, sigma_w = {sigma_w}"
        for name, got, measured, se in (
            ("mean", out[0], mean, se_mean),
            ("variance", out[1], var, se_var),
        ):
            got = as_float(name, got)
            if abs(got - measured) > _SPREAD_Z * se:
                raise CheckFailed(
                    f"over {n} random linear networks ({where}) the {name} of log ||dl/dh^0|| is "
                    f"{measured:.3f} +- {se:.3f} (standard error); your prediction {got:.4g} is "
                    f"{abs(got - measured) / se:.1f} standard errors away (allowed: "
                    f"{_SPREAD_Z:g})"
                )
    return (
        "mean and variance of log ||dl/dh^0|| agree with 400 backpropagated random linear "
        "networks for two widths"
    )


# --- ex-pr-relu ---------------------------------------------------------------------------------


def _relu_variant(sigma_w, width, depth, seed, *, mask=True, power=1, renormalise=True):
    """The tangent iteration through a ReLU network, with optional mistakes (wrong answers)."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(width, generator=gen, dtype=torch.float64)
    v = torch.randn(width, generator=gen, dtype=torch.float64)
    v = v / v.norm()
    total = 0.0
    for _ in range(depth):
        W = torch.randn(width, width, generator=gen, dtype=torch.float64) * sigma_w / width**0.5
        v = W @ ((h > 0) * v if mask else v)
        h = W @ torch.relu(h)
        if renormalise:
            total += power * float(torch.log(v.norm()))
            v = v / v.norm()
            h = h / (h.norm() / width**0.5)
    if not renormalise:
        return float(torch.log(v.norm())) / depth
    return total / depth


@exercise(
    "ex-pr-relu",
    chapter=CHAPTER,
    kind="computation",
    answer=(
        "relu_exponent(sigma_w, width, depth, seed) -> measured exponent per layer of the Jacobian "
        "products of a random ReLU network (sigma_b = 0)"
    ),
    wrong=[
        lambda s, n, L, seed: _relu_variant(s, n, L, seed, mask=False),
        lambda s, n, L, seed: _relu_variant(s, n, L, seed, power=2),
        lambda s, n, L, seed: _relu_variant(s, n, L, seed, renormalise=False),
        lambda s, n, L, seed: _relu_variant(s, n, L, 0),  # the seed is ignored
    ],
)
def _relu(relu_exponent):
    width, depth = 32, 1000
    first = as_float("relu_exponent", call(relu_exponent, math.sqrt(2), width, depth, 0))
    again = as_float("relu_exponent", call(relu_exponent, math.sqrt(2), width, depth, 0))
    if first != again:
        raise CheckFailed(
            f"relu_exponent(sqrt(2), {width}, {depth}, seed=0) gave {first:.6g} and then "
            f"{again:.6g}: the same seed must give the same number (draw every random number "
            "from a generator seeded with seed)"
        )
    other = as_float("relu_exponent", call(relu_exponent, math.sqrt(2), width, depth, 1))
    if other == first:
        raise CheckFailed("seeds 0 and 1 gave exactly the same exponent: is the seed used?")
    # Mean field: chi_1 = sigma_w^2 / 2 for ReLU, so lambda -> log(chi_1) / 2 as N -> infinity,
    # up to a finite-width correction of order 1/N. sigma_w = 4 over 1000 layers overflows any
    # product that is not renormalised (growth e^1.04 per layer).
    allowed = 3 / width
    for sigma_w in (1.0, math.sqrt(2), 2.0, 4.0):
        value = call(relu_exponent, sigma_w, width, depth, 2)
        try:
            value = as_float(f"relu_exponent({sigma_w:.4g}, {width}, {depth}, 2)", value)
        except CheckFailed as err:
            raise CheckFailed(
                f"{err}: renormalise the tangent vector every layer (and the state h; ReLU is "
                "positively homogeneous, so that changes neither the mask nor the exponent)"
            ) from err
        predicted = 0.5 * math.log(sigma_w**2 / 2)
        if abs(value - predicted) > allowed:
            raise CheckFailed(
                f"at sigma_w = {sigma_w:.4g}, width {width}, depth {depth} the exponent is "
                f"{value:.4f}, but mean field predicts log(chi_1)/2 = {predicted:.4f} (chi_1 = "
                f"sigma_w^2/2) up to a finite-width correction of order 1/N; off by "
                f"{abs(value - predicted):.3f}, allowed {allowed:.3f}"
            )
    return (
        "deterministic for a fixed seed, and within 3/N of the mean-field exponent "
        "log(sigma_w^2/2)/2 for four weight scales, without overflow"
    )


# --- ex-pr-prior-error --------------------------------------------------------------------------


def _mixtures() -> dict[str, tuple[bool, pr.GaussianMixture]]:
    """Two skewed and two point-symmetric mixtures in the plane."""
    eye = np.eye(2)
    return {
        "the chapter's three-component mixture": (
            False,
            pr.GaussianMixture(
                [0.5, 0.3, 0.2],
                [[-2.0, 0.0], [1.5, 1.0], [1.0, -2.0]],
                [eye * 0.3, [[0.5, 0.3], [0.3, 0.4]], eye * 0.2],
            ),
        ),
        "an unequal two-component mixture": (
            False,
            pr.GaussianMixture([0.7, 0.3], [[0.0, 0.0], [2.5, 1.0]], [eye * 0.5, eye * 0.2]),
        ),
        "a symmetric two-component mixture": (
            True,
            pr.GaussianMixture([0.5, 0.5], [[-1.5, 0.5], [1.5, -0.5]], [eye * 0.3, eye * 0.3]),
        ),
        "a symmetric four-component mixture": (
            True,
            pr.GaussianMixture(
                [0.3, 0.3, 0.2, 0.2],
                [[1.0, 1.0], [-1.0, -1.0], [2.0, -0.5], [-2.0, 0.5]],
                [[[0.4, 0.1], [0.1, 0.2]]] * 2 + [eye * 0.3] * 2,
            ),
        ),
    }


_PRIOR_TIMES = np.array([64.0, 128.0, 256.0, 512.0])


@functools.cache
def _prior_error_slopes() -> dict[str, tuple[bool, float]]:
    """Measured decay exponent of the Gaussian prior's mean log-likelihood error, per mixture.

    By the instantaneous change of variables the flow's log-likelihood with the Gaussian prior
    errs by ``log N(z) − log p_T(z)`` at ``z = φ_T(x)``, and ``φ_T(x) ~ p_T`` for ``x ~ p_0``
    (the probability-flow ODE has the marginals of the heat flow). So the error is measured on
    samples ``x + √T ξ`` of ``p_T`` with the exact ``log p_T`` of the package's mixture, with the
    same ``x`` and ``ξ`` at every ``T`` (common random numbers make the fitted slope smooth).
    """
    out = {}
    for k, (name, (symmetric, mixture)) in enumerate(_mixtures().items()):
        x = mixture.sample(2000, seed=20 + k)
        noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(40 + k))
        noise = noise.to(torch.float64)
        mean = mixture.weights @ mixture.means
        centred = mixture.means - mean
        spread = mixture.covariances + centred[:, :, None] * centred[:, None, :]
        cov = (mixture.weights[:, None, None] * spread).sum(0)  # law of total covariance
        errors = []
        for T in _PRIOR_TIMES:
            z = x + math.sqrt(T) * noise
            prior = torch.distributions.MultivariateNormal(mean, cov + T * torch.eye(2))
            errors.append(
                float((mixture.log_density(z, float(T)) - prior.log_prob(z)).abs().mean())
            )
        out[name] = (symmetric, -stats.loglog_slope(_PRIOR_TIMES, errors))
    return out


@exercise(
    "ex-pr-prior-error",
    chapter=CHAPTER,
    kind="exploration",
    answer=(
        "prior_error_exponent(symmetric) -> p such that the mean log-likelihood error of the "
        "Gaussian prior decays like T^(-p)"
    ),
    wrong=[
        lambda symmetric: 0.5,
        lambda symmetric: 1.0,
        lambda symmetric: 1.5,
        lambda symmetric: 3.0 if symmetric else 1.5,
    ],
)
def _prior_error(prior_error_exponent):
    measured_all = _prior_error_slopes()
    for symmetric in (False, True):
        got = as_float(f"prior_error_exponent({symmetric})", call(prior_error_exponent, symmetric))
        for name, (sym, measured) in measured_all.items():
            if sym != symmetric:
                continue
            if abs(got - measured) > 0.15:
                raise CheckFailed(
                    f"for {name} (symmetric={symmetric}) the mean error of the Gaussian prior "
                    f"decays like T^(-{measured:.2f}) between T = 64 and 512, but you predicted "
                    f"T^(-{got:.4g}) (allowed difference 0.15)"
                )
    return (
        "the predicted exponents match the measured decay for two skewed and two symmetric mixtures"
    )
