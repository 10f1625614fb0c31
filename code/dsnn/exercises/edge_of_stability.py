"""Checks for the exercises of the chapter *The edge of stability and implicit bias*."""

from __future__ import annotations

import numpy as np
import torch

from dsnn import datasets, hessian, models, stats
from dsnn import gradient_descent as gdm
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "edge_of_stability"


# --- the level at which the sharpness hovers ------------------------------------------------------

# (hidden width, learning rate, number of steps) of the short runs the prediction is compared with;
# each reaches the edge of stability within its first half (measured: the late median of
# S eta / 2 lies between 0.89 and 0.98 for all three).
_WIDTH_RUNS = ((16, 0.2, 300), (64, 0.2, 300), (64, 0.3, 200))


@exercise(
    "ex-eos-width",
    chapter=CHAPTER,
    kind="exploration",
    answer="hover_level(eta, width) -> the sharpness at which full-batch GD hovers",
    wrong=[
        lambda eta, width: 1 / eta,
        lambda eta, width: 2 / eta * width / 32,
        lambda eta, width: 4 / eta,
    ],
)
def _width(hover_level):
    # The oracle is a run: full-batch GD on 100 digits, [64, w, w, 1] tanh networks, sharpness
    # by Lanczos every 20 steps; the level is the median over the second half of each run. The
    # predictions are asked for first, so that an unfinished answer fails before any training.
    predictions = [
        as_float(f"hover_level({eta}, {width})", call(hover_level, eta, width, name="hover_level"))
        for width, eta, _ in _WIDTH_RUNS
    ]
    X, y = datasets.digits_parity(100)
    for (width, eta, n_steps), got in zip(_WIDTH_RUNS, predictions, strict=True):
        run = gdm.train_full_batch(
            models.mlp([64, width, width, 1], seed=0), X, y, eta, n_steps, sharpness_every=20
        )
        measured = float(np.median(run.sharpness[run.sharpness_step > n_steps // 2]))
        if not 0.8 <= got / measured <= 1.25:
            raise CheckFailed(
                f"at width {width} and eta = {eta} the sharpness of gradient descent hovered at "
                f"{measured:.4g} (median over steps {n_steps // 2}-{n_steps}), but "
                f"hover_level({eta}, {width}) = {got:.4g}, a factor {got / measured:.3g} off "
                "(allowed: 0.8 to 1.25)"
            )
    return (
        "the predicted level matches the measured one within 20 % for two widths and two "
        "learning rates"
    )


# --- gradient descent on a quadratic, in closed form ----------------------------------------------


@exercise(
    "ex-eos-quadratic",
    chapter=CHAPTER,
    kind="derivation",
    answer="quadratic_gd_loss(eigenvalues, coefficients, eta, n) -> L(x_n) of GD on a quadratic",
    wrong=[
        lambda ev, c, eta, n: 0.5 * np.sum(ev * c**2 * (1 - eta * ev) ** n),
        lambda ev, c, eta, n: np.sum(ev * c**2 * (1 - eta * ev) ** (2 * n)),
        lambda ev, c, eta, n: 0.5 * np.sum(c**2 * (1 - eta * ev) ** (2 * n)),
    ],
)
def _quadratic(quadratic_gd_loss):
    # The oracle is a run of the package's gradient descent on L(x) = x^T H x / 2 with
    # H = Q diag(eigenvalues) Q^T and x_0 = Q c, one stable and two unstable learning rates.
    rng = np.random.default_rng(5)
    cases = [
        ([1.0, 25.0], [1.0, 1.0], 0.1),
        ([0.5, 2.0, 7.0, 9.0], [1.0, -0.5, 0.3, 2.0], 0.2),
        ([0.5, 2.0, 7.0, 9.0], [0.2, 1.0, -1.0, 0.01], 0.25),
    ]
    for eigenvalues, coefficients, eta in cases:
        ev, coef = np.array(eigenvalues), np.array(coefficients)
        Q, _ = np.linalg.qr(rng.standard_normal((ev.size, ev.size)))
        run = gdm.gd(gdm.quadratic_loss((Q * ev) @ Q.T), Q @ coef, eta, 24)
        for n in (0, 1, 7, 24):
            got = call(quadratic_gd_loss, ev.copy(), coef.copy(), eta, n, name="quadratic_gd_loss")
            close(
                f"quadratic_gd_loss({eigenvalues}, {coefficients}, {eta}, {n})",
                got,
                float(run.losses[n]),
                rtol=1e-8,
                atol=1e-14,
            )
    return "the closed form matches gradient descent step by step, stable and unstable"


# --- the sharpness from Hessian-vector products ---------------------------------------------------


class _CountedProducts:
    """The map v -> H v of a symmetric matrix, counting how often it is called."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix
        self.calls = 0

    def __call__(self, v):
        self.calls += 1
        vector = as_array("the vector passed to hvp", v)
        if vector.shape != (self.matrix.shape[0],):
            raise CheckFailed(
                f"hvp takes a vector of shape ({self.matrix.shape[0]},), got shape {vector.shape}"
            )
        return self.matrix @ vector


def _symmetric_with_spectrum(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((eigenvalues.size,) * 2))
    matrix = (Q * eigenvalues) @ Q.T
    return 0.5 * (matrix + matrix.T)


def _power_iteration(hvp, dim, max_hvp):
    v = np.random.default_rng(0).standard_normal(dim)
    for _ in range(max_hvp):
        w = hvp(v)
        value = float(v @ w / (v @ v))
        v = w / np.linalg.norm(w)
    return value


def _dense_then_eigvalsh(hvp, dim, max_hvp):
    columns = [hvp(e) for e in np.eye(dim)]
    return float(np.linalg.eigvalsh(np.array(columns))[-1])


def _one_rayleigh_quotient(hvp, dim, max_hvp):
    v = np.random.default_rng(0).standard_normal(dim)
    return float(v @ hvp(v) / (v @ v))


@exercise(
    "ex-eos-top-eigenvalue",
    chapter=CHAPTER,
    kind="computation",
    answer="top_eigenvalue(hvp, dim, max_hvp) -> the largest eigenvalue, from at most max_hvp "
    "products",
    wrong=[_power_iteration, _dense_then_eigvalsh, _one_rayleigh_quotient],
)
def _top_eigenvalue(top_eigenvalue):
    # Matrices with prescribed spectra (the oracle): positive semi-definite with a gap, indefinite
    # with the negative end largest in modulus (as a network Hessian away from a minimum), and
    # negative definite. The budget of products is below the dimension: no dense Hessian.
    dim, budget = 300, 120
    rng = np.random.default_rng(0)
    spectra = {
        "positive semi-definite": np.concatenate([rng.uniform(0, 1, dim - 2), [3.0, 5.0]]),
        "indefinite, lambda_min = -6": np.concatenate([rng.uniform(-1, 1, dim - 2), [-6.0, 2.5]]),
        "negative definite": np.concatenate([rng.uniform(-4, -1, dim - 1), [-0.5]]),
    }
    for seed, (name, eigenvalues) in enumerate(spectra.items()):
        hvp = _CountedProducts(_symmetric_with_spectrum(eigenvalues, seed + 1))
        got = call(top_eigenvalue, hvp, dim, budget, name="top_eigenvalue")
        if hvp.calls > budget:
            raise CheckFailed(
                f"on the {name} matrix top_eigenvalue used {hvp.calls} products, but "
                f"max_hvp = {budget} (fewer than dim = {dim}: the matrix must not be formed)"
            )
        close(
            f"top_eigenvalue on the {name} matrix (dim {dim})",
            got,
            eigenvalues.max(),
            rtol=1e-3,
        )
    return (
        f"the largest eigenvalue to 1e-3 for three spectra (one indefinite, one negative "
        f"definite), each with at most {budget} products in dimension {dim}"
    )


# --- Hessian and Gauss-Newton sharpness of the product model --------------------------------------


def _gauss_newton_only(x, y, z):
    s = float(np.mean(y**2) * np.sum(np.asarray(x) ** 2))
    return s, s


def _residual_sign_flipped(x, y, z):
    x1, x2 = x
    a, b = np.mean(y**2), -np.mean((x1 * x2 * y - z) * y)
    s = x1**2 + x2**2
    return a * s / 2 + np.sqrt(a**2 * s**2 / 4 + 2 * a * b * x1 * x2 + b**2), a * s


def _sum_not_mean(x, y, z):
    x1, x2 = x
    a, b = np.sum(y**2), np.sum((x1 * x2 * y - z) * y)
    s = x1**2 + x2**2
    return a * s / 2 + np.sqrt(a**2 * s**2 / 4 + 2 * a * b * x1 * x2 + b**2), a * s


@exercise(
    "ex-eos-gauss-newton",
    chapter=CHAPTER,
    kind="derivation",
    answer="product_sharpness(x, y, z) -> (S, S_gn): lambda_max of Hess L and of (1/N) J^T J",
    wrong=[_gauss_newton_only, _residual_sign_flipped, _sum_not_mean],
)
def _gauss_newton(product_sharpness):
    # Oracles: the Hessian of the package's product loss by autograd, and the Gram matrix of the
    # per-sample gradients by dsnn.hessian.ntk_gram; on and off the manifold x1 x2 = c.
    rng = np.random.default_rng(11)
    data = [(np.array([1.0, 2.0]), 1.0), (np.array([0.5, -1.0, 1.5]), -0.7)]
    for y, c in data:
        z = c * y
        loss = gdm.product_loss(y, z)
        points = [np.array([np.sqrt(abs(c)) * 1.7, c / (np.sqrt(abs(c)) * 1.7)])]
        points += list(rng.uniform(-2.5, 2.5, size=(4, 2)))
        for x in points:
            x_t = torch.tensor(x, requires_grad=True)
            hess = torch.autograd.functional.hessian(
                lambda v, loss=loss: loss(v[None])[0], x_t.detach()
            )
            s_expected = float(np.linalg.eigvalsh(hess.numpy())[-1])
            gram = hessian.ntk_gram(lambda Y, x_t=x_t: x_t[0] * x_t[1] * Y, x_t, y)
            gn_expected = float(np.linalg.eigvalsh(gram)[-1]) / y.size
            out = call(product_sharpness, x.copy(), y.copy(), z.copy(), name="product_sharpness")
            if not isinstance(out, tuple) or len(out) != 2:
                raise CheckFailed(f"product_sharpness must return a pair (S, S_gn), got {out!r}")
            at = f"x = ({x[0]:.3g}, {x[1]:.3g}), y = {y.tolist()}, z = {np.round(z, 3).tolist()}"
            close(f"S_gn at {at}", out[1], gn_expected, rtol=1e-8, atol=1e-12)
            close(f"S at {at}", out[0], s_expected, rtol=1e-8, atol=1e-12)
    return "S and S_gn match autograd and the NTK Gram matrix on and off the manifold of minima"


# --- escaping an unstable minimum of the product model --------------------------------------------


def _growth_cases():
    # (u, eta, y, c): minima x* = sqrt(c) (e^u, e^-u) on both sides of the stability edge.
    return [
        (1.3, 0.1, np.array([1.0, 2.0]), 1.0),
        (0.3, 0.1, np.array([1.0, 2.0]), 1.0),
        (-0.8, 0.05, np.array([1.0, 2.0, 3.0]), 2.0),
        (0.5, 0.2, np.array([0.5, 1.5]), 0.5),
    ]


@exercise(
    "ex-eos-mu-sign",
    chapter=CHAPTER,
    kind="exploration",
    answer="phase_one_growth(u, eta, y, c) -> factor by which the distance to M changes per step",
    wrong=[
        lambda u, eta, y, c: 1 - 2 * eta * c * np.mean(y**2) * np.cosh(2 * u),
        lambda u, eta, y, c: (1 - 2 * eta * c * np.mean(y**2) * np.cosh(2 * u)) ** 2,
        lambda u, eta, y, c: abs(1 - 2 * eta * c * np.mean(y**2) * np.cosh(u)),
        lambda u, eta, y, c: abs(1 - 2 * eta * c * np.mean(y) ** 2 * np.cosh(2 * u)),
    ],
)
def _mu_sign(phase_one_growth):
    # The oracle is a run: GD from x* + eps n (n the unit normal to M), measured on the residual
    # x1 x2 - c over ten steps. eps keeps the residual between about 1e-10 (rounding) and 1e-6
    # (the linear regime), using the size of the growth that dsnn.gradient_descent.gd_exponent
    # gives at x*.
    for u, eta, y, c in _growth_cases():
        loss = gdm.product_loss(y, c * y)
        x_star = np.sqrt(c) * np.array([np.exp(u), np.exp(-u)])
        x_t = torch.tensor(x_star, requires_grad=True)
        gram = hessian.ntk_gram(lambda Y, x_t=x_t: x_t[0] * x_t[1] * Y, x_t, y)
        mu = gdm.gd_exponent(gram, eta, restrict_to_range=True)
        eps = 1e-6 * np.exp(-12 * max(mu, 0.0))
        normal = x_star[::-1] / np.linalg.norm(x_star)
        run = gdm.gd(lambda x, loss=loss: loss(x[None])[0], x_star + eps * normal, eta, 12)
        residual = (run.iterates[:, 0] * run.iterates[:, 1] - c).abs().numpy()
        measured = stats.geometric_rate(residual[2:], window=10)
        got = call(phase_one_growth, u, eta, y.copy(), c, name="phase_one_growth")
        close(f"phase_one_growth({u}, {eta}, {y.tolist()}, {c})", got, measured, rtol=1e-4)
    return "the predicted factor matches four runs of gradient descent, two stable, two unstable"
