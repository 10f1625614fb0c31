"""Checks for the exercises of the chapter *Stochastic gradient descent and Lyapunov exponents*.

The oracles are the chapter's closed forms (two unit gradients at an angle, orthogonal gradients,
the full batch, the one-dimensional example of Chemnitz & Engel 2025, Appendix A) and the tested
functions of :mod:`dsnn.sgd_lyapunov` (:func:`~dsnn.sgd_lyapunov.lyapunov_exponent`,
:func:`~dsnn.sgd_lyapunov.codimension_one_exponent`, :func:`~dsnn.sgd_lyapunov.moment_exponent`,
:func:`~dsnn.sgd_lyapunov.phase_diagram`). Every check uses fixed seeds and small sizes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.optimize

from dsnn import gradient_descent, sgd_lyapunov
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "sgd_lyapunov"


def _gram(n: int, d: int, seed: int) -> np.ndarray:
    """A full-rank Gram matrix ``Y Yᵀ / d`` of ``n`` Gaussian vectors in ``R^d``."""
    Y = np.random.default_rng(seed).standard_normal((n, d))
    return Y @ Y.T / d


def _finite(name: str, value, hint: str) -> float:
    """One finite float, or a :class:`CheckFailed` that adds ``hint`` to the reason."""
    try:
        return as_float(name, value)
    except CheckFailed as err:
        raise CheckFailed(f"{err}; {hint}") from err


# --- power iteration (computation) --------------------------------------------------------------


def _batches(rng: np.random.Generator, n_steps: int, n: int, batch_size: int) -> np.ndarray:
    """Uniform ``batch_size``-subsets of ``range(n)``, one per step (first entries of a shuffle)."""
    return rng.permuted(np.tile(np.arange(n), (n_steps, 1)), axis=1)[:, :batch_size]


def _power(gram, eta, batch_size, n_steps, seed, *, coef=None, one_step=False):
    """Renormalised power iteration; ``coef`` and ``one_step`` produce the registered mistakes."""
    G = np.asarray(gram, dtype=float)
    n = G.shape[0]
    rng = np.random.default_rng(seed)
    c = eta / batch_size if coef is None else coef
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    logs = []
    for batch in _batches(rng, n_steps, n, batch_size):
        if one_step:  # the norm of the factor itself, not of the factor applied to v
            A = np.eye(n)
            A[batch] -= c * G[batch]
            logs.append(math.log(np.linalg.norm(A, 2)))
            continue
        v[batch] -= c * (G[batch] @ v)
        norm = np.linalg.norm(v)
        logs.append(math.log(norm))
        v /= norm
    return float(np.mean(logs[n_steps // 10 :]))


def _power_one_step(gram, eta, batch_size, n_steps, seed):
    return _power(gram, eta, batch_size, n_steps, seed, one_step=True)


def _power_without_batch_mean(gram, eta, batch_size, n_steps, seed):
    return _power(gram, eta, batch_size, n_steps, seed, coef=eta)


def _power_mean_factor(gram, eta, batch_size, n_steps, seed):
    return gradient_descent.gd_exponent(np.asarray(gram, dtype=float), eta)


@exercise(
    "ex-sl-power-iteration",
    chapter=CHAPTER,
    kind="computation",
    answer=(
        "lyapunov_power(gram, eta, batch_size, n_steps, seed) -> float, the power-iteration "
        "estimate of lambda for the factors 1 - (eta/B) G_[Xi]"
    ),
    wrong=[_power_one_step, _power_without_batch_mean, _power_mean_factor],
)
def _power_iteration(lyapunov_power):
    hint = "renormalise v after every step and average log |A v|, not log of the whole product"
    theta = 1.1
    cases = [
        (
            "two unit gradients at the angle 1.1, eta = 1, B = 1",
            np.array([[1.0, math.cos(theta)], [math.cos(theta), 1.0]]),
            1.0,
            1,
            0.5 * math.log(math.cos(theta)),
            0.02,
        ),
        (
            "orthogonal gradients G = diag(1, 3, 8, 2), eta = 0.9, B = 2",
            np.diag([1.0, 3.0, 8.0, 2.0]),
            0.9,
            2,
            max(0.5 * math.log(abs(1 - 0.9 * g / 2)) for g in (1.0, 3.0, 8.0, 2.0)),
            0.025,
        ),
    ]
    G3 = _gram(3, 5, seed=4)
    eta_full = 1.7 * 3 / np.linalg.eigvalsh(G3)[-1]
    cases.append(
        (
            "the full batch B = N = 3 (then lambda = mu)",
            G3,
            eta_full,
            3,
            gradient_descent.gd_exponent(G3, eta_full),
            2e-3,
        )
    )
    for name, G, eta, B, exact, tol in cases:
        got = _finite("the estimate", call(lyapunov_power, G, eta, B, 10_000, 0), hint)
        if abs(got - exact) > tol:
            raise CheckFailed(
                f"for {name} the exact exponent is {exact:+.4f}, your estimate from 10000 steps "
                f"is {got:+.4f} (off by {abs(got - exact):.3g}, allowed {tol:g})"
            )
    # a generic Gram matrix, against the package's estimator and the exact bounds of the chapter
    G4 = _gram(4, 6, seed=1)
    eta4 = 1.3 * 4 / np.linalg.eigvalsh(G4)[-1]
    ref = sgd_lyapunov.lyapunov_exponent(G4, eta4, 2, n_steps=10_000, seed=5)
    lower = sgd_lyapunov.determinant_bound(G4, eta4, 2)
    upper = 0.5 * sgd_lyapunov.moment_exponent(G4, eta4, 2)
    got = _finite("the estimate", call(lyapunov_power, G4, eta4, 2, 10_000, 1), hint)
    tol = 6 * ref.stderr * math.sqrt(5.0) + 2e-3
    if not lower - tol <= got <= upper + tol:
        raise CheckFailed(
            f"for a 4 x 4 Gram matrix with B = 2 your estimate {got:+.4f} lies outside the exact "
            f"bounds (1/N) E log|det A| = {lower:+.4f} <= lambda <= Lambda_2 / 2 = {upper:+.4f}"
        )
    if abs(got - ref.value) > tol:
        raise CheckFailed(
            f"for a 4 x 4 Gram matrix with B = 2, lambda = {ref.value:+.4f} ± {ref.stderr:.4f} "
            f"(dsnn.sgd_lyapunov.lyapunov_exponent), your estimate is {got:+.4f} "
            f"(off by {abs(got - ref.value):.3g}, allowed {tol:.3g})"
        )
    again = _finite("the estimate", call(lyapunov_power, G4, eta4, 2, 10_000, 1), hint)
    if again != got:
        raise CheckFailed(
            f"the same seed gave two different estimates ({got!r} and {again!r}): draw all "
            "random numbers from np.random.default_rng(seed)"
        )
    return (
        "matches the closed forms (angle, orthogonal, full batch), the package's estimate and "
        "the exact bounds, and is reproducible for a fixed seed"
    )


# --- the SGD window on the product model (derivation) -------------------------------------------


def _stable_intervals(h1: float, h2: float) -> list[tuple[float, float]]:
    """Where ``λ(t) < 0``, from the package's exact codimension-one formula: a sign scan on a fine
    grid and Brent's method at each sign change (no closed form used)."""
    h = np.array([h1, h2])

    def lam(t: float) -> float:
        return sgd_lyapunov.codimension_one_exponent(h * t, 1.0, 1)

    t_max = 1.5 * (h1 + h2) / (h1 * h2)
    grid = np.linspace(t_max * 1e-4, t_max, 2001)
    stable = np.array([lam(t) < 0 for t in grid])
    if not stable[0] or stable[-1]:
        raise RuntimeError("the scan must start stable and end unstable")
    edges = [0.0]
    for k in np.flatnonzero(np.diff(stable.astype(int))):
        edges.append(scipy.optimize.brentq(lam, grid[k], grid[k + 1], xtol=1e-15, rtol=1e-14))
    return list(zip(edges[::2], edges[1::2], strict=True))


def _window_no_lower_bound(h1, h2):
    return [(0.0, (h1 + h2) / (h1 * h2))]


def _window_gd(h1, h2):
    return [(0.0, 4 / (h1 + h2))]


def _window_always_two(h1, h2):
    roots = np.sort(np.roots([h1 * h2, -(h1 + h2), 2]).real)
    return [(0.0, roots[0]), (roots[1], (h1 + h2) / (h1 * h2))]


@exercise(
    "ex-sl-window",
    chapter=CHAPTER,
    kind="derivation",
    answer=(
        "sgd_stable_set(h1, h2) -> list of intervals (a, b), sorted, the first with a = 0, on "
        "which lambda(t) = (1/2) log|(1 - t h1)(1 - t h2)| < 0"
    ),
    wrong=[_window_no_lower_bound, _window_gd, _window_always_two],
)
def _window(sgd_stable_set):
    cases = [(1.0, 9.0), (1.0, 4.0), (3.0, 3.0), (2.0, 15.0), (0.5, 3.1), (0.4, 5.0)]
    for h1, h2 in cases:
        expected = _stable_intervals(h1, h2)
        got = call(sgd_stable_set, h1, h2)
        try:
            got = [tuple(pair) for pair in got]
        except TypeError as err:
            raise CheckFailed(
                f"sgd_stable_set({h1}, {h2}) must return a list of pairs (a, b), got {got!r}"
            ) from err
        shown = ", ".join(f"({a:.4f}, {b:.4f})" for a, b in expected)
        if len(got) != len(expected):
            raise CheckFailed(
                f"for h = ({h1}, {h2}) you give {len(got)} interval(s), but lambda < 0 on "
                f"{len(expected)}: {shown}"
            )
        close(
            f"the intervals for h = ({h1}, {h2}) (expected {shown})",
            as_array(f"sgd_stable_set({h1}, {h2})", got, shape=(len(expected), 2)),
            np.array(expected),
            rtol=1e-7,
            atol=1e-9,
        )
    return (
        "the intervals agree with the sign of the exact exponent for six pairs (h1, h2), "
        "with and without a window"
    )


# --- the second-moment exponent (computation) ---------------------------------------------------


def _factors(G: np.ndarray, eta: float, batches) -> list[np.ndarray]:
    n = G.shape[0]
    out = []
    for batch in batches:
        rows = list(batch)
        A = np.eye(n)
        A[rows] -= eta / len(rows) * G[rows]
        out.append(A)
    return out


def _moment_twice_gd(gram, eta, batch_size):
    return 2 * gradient_descent.gd_exponent(np.asarray(gram, dtype=float), eta)


def _moment_one_step(gram, eta, batch_size):
    G = np.asarray(gram, dtype=float)
    batches = itertools.combinations(range(G.shape[0]), batch_size)
    mean = np.mean([A.T @ A for A in _factors(G, eta, batches)], axis=0)
    return float(np.log(np.linalg.eigvalsh(mean)[-1]))


def _moment_with_replacement(gram, eta, batch_size):
    G = np.asarray(gram, dtype=float)
    n = G.shape[0]
    mean = np.zeros((n * n, n * n))
    tuples = list(itertools.product(range(n), repeat=batch_size))
    for batch in tuples:
        A = np.eye(n)
        for i in batch:  # a sample drawn twice counts twice
            A[i] -= eta / batch_size * G[i]
        mean += np.kron(A, A)
    return float(np.log(np.abs(np.linalg.eigvals(mean / len(tuples))).max()))


@exercise(
    "ex-sl-second-moment",
    chapter=CHAPTER,
    kind="computation",
    answer=(
        "second_moment_exponent(gram, eta, batch_size) -> float, Lambda_2 = log rho(E[A (x) A]) "
        "with the expectation over all C(N, B) batches"
    ),
    wrong=[_moment_twice_gd, _moment_one_step, _moment_with_replacement],
)
def _second_moment(second_moment_exponent):
    # the one-dimensional example of the chapter: multipliers 1/3 and -2, E Y^2 = 37/18
    h = np.array([2 / 3, 3.0])
    got = call(second_moment_exponent, np.outer(np.sqrt(h), np.sqrt(h)), 1.0, 1)
    close("Lambda_2 for the multipliers 1/3 and -2 (exact log(37/18))", got, math.log(37 / 18))
    G = _gram(4, 6, seed=2)
    eta_gd = 2 * 4 / np.linalg.eigvalsh(G)[-1]
    close(
        "Lambda_2 for B = N = 4 (exact 2 mu)",
        call(second_moment_exponent, G, 0.8 * eta_gd, 4),
        2 * gradient_descent.gd_exponent(G, 0.8 * eta_gd),
        rtol=1e-8,
        atol=1e-10,
    )
    diag = np.array([1.0, 3.0, 8.0, 2.0])
    eta, B = 0.9, 2
    exact = max(math.log(1 - B / 4 + B / 4 * (1 - eta * g / B) ** 2) for g in diag)
    close(
        "Lambda_2 for G = diag(1, 3, 8, 2), eta = 0.9, B = 2 "
        "(exact max_i log E (1 - eta G_ii / B)^2 over the batches containing i)",
        call(second_moment_exponent, np.diag(diag), eta, B),
        exact,
        rtol=1e-8,
        atol=1e-10,
    )
    for fraction, B in [(0.3, 1), (0.9, 2), (1.1, 3)]:
        expected = sgd_lyapunov.moment_exponent(G, fraction * eta_gd, B)
        close(
            f"Lambda_2 for a 4 x 4 Gram matrix at eta = {fraction} eta_GD, B = {B} "
            "(dsnn.sgd_lyapunov.moment_exponent, exact)",
            call(second_moment_exponent, G, fraction * eta_gd, B),
            expected,
            rtol=1e-8,
            atol=1e-10,
        )
    return (
        "exact on the 37/18 example, for B = N, for orthogonal gradients and on a 4 x 4 Gram matrix"
    )


# --- the orthogonal threshold (derivation) ------------------------------------------------------


def _threshold_gd(diagonal, batch_size):
    return 2 * len(diagonal) / np.max(diagonal)


def _threshold_single_sample(diagonal, batch_size):
    return 2 / np.max(diagonal)


def _threshold_singular(diagonal, batch_size):
    return batch_size / np.max(diagonal)


def _threshold_smallest(diagonal, batch_size):
    return 2 * batch_size / np.min(diagonal)


@exercise(
    "ex-sl-batch-threshold",
    chapter=CHAPTER,
    kind="derivation",
    answer=(
        "orthogonal_threshold(diagonal, batch_size) -> eta_LE(B) for G = diag(diagonal), the "
        "learning rate at which lambda turns positive"
    ),
    wrong=[_threshold_gd, _threshold_single_sample, _threshold_singular, _threshold_smallest],
)
def _batch_threshold(orthogonal_threshold):
    # The oracle is the package's phase diagram: lambda just below the answer must be negative and
    # just above it positive, for every batch size (B = N is the exact GD exponent mu).
    for diag in ([1.0, 3.0, 8.0, 2.0], [0.5, 0.7], [1.0, 1.5, 4.0, 0.3, 2.5]):
        d = np.array(diag)
        n = d.size
        sizes = np.arange(1, n + 1)
        answers = []
        for B in sizes:
            value = as_float(
                f"orthogonal_threshold({diag}, {B})", call(orthogonal_threshold, d.copy(), int(B))
            )
            if not value > 0:
                raise CheckFailed(
                    f"orthogonal_threshold({diag}, {B}) = {value:g}: a threshold is a learning "
                    "rate > 0"
                )
            answers.append(value)
        etas = np.sort(np.concatenate([0.99 * np.array(answers), 1.01 * np.array(answers)]))
        pd = sgd_lyapunov.phase_diagram(np.diag(d), etas, sizes, n_steps=2_000, seed=0)
        for j, (B, value) in enumerate(zip(sizes, answers, strict=True)):
            below = pd.value[np.searchsorted(etas, 0.99 * value), j]
            above = pd.value[np.searchsorted(etas, 1.01 * value), j]
            if below >= 0:
                raise CheckFailed(
                    f"for G = diag({diag}) and B = {B}, lambda = {below:+.4f} >= 0 already at "
                    f"0.99 x your threshold {value:.4g}: SGD is unstable below it"
                )
            if above < 0:
                raise CheckFailed(
                    f"for G = diag({diag}) and B = {B}, lambda = {above:+.4f} < 0 still at "
                    f"1.01 x your threshold {value:.4g}: SGD is stable beyond it"
                )
    return "lambda changes sign at your threshold for three diagonal Gram matrices and every B"


# --- small learning rates (exploration) ---------------------------------------------------------


def _slope_top(gram, batch_size):
    G = np.asarray(gram, dtype=float)
    return -np.linalg.eigvalsh(G)[-1] / G.shape[0]


def _slope_batch(gram, batch_size):
    return -np.linalg.eigvalsh(np.asarray(gram, dtype=float))[0] / batch_size


def _slope_trace(gram, batch_size):
    G = np.asarray(gram, dtype=float)
    return -np.trace(G) / G.shape[0] ** 2


def _slope_diagonal(gram, batch_size):
    G = np.asarray(gram, dtype=float)
    return -np.diag(G).min() / G.shape[0]


@exercise(
    "ex-sl-small-eta",
    chapter=CHAPTER,
    kind="exploration",
    answer="small_eta_slope(gram, batch_size) -> the limit of lambda(eta) / eta as eta -> 0",
    wrong=[_slope_top, _slope_batch, _slope_trace, _slope_diagonal],
)
def _small_eta(small_eta_slope):
    # Exact: lambda <= Lambda_2 / 2 and both have the same slope at eta = 0, so the slope is read
    # off the package's exact second-moment exponent at a tiny eta (error O(eta)); then one
    # measurement of lambda itself at a small eta.
    grams = {
        "a 4 x 4 Gram matrix": _gram(4, 6, seed=5),
        "a 5 x 5 Gram matrix": _gram(5, 9, seed=6),
        "a singular 4 x 4 Gram matrix (rank 3)": _gram(4, 3, seed=7),
    }
    for name, G in grams.items():
        n = G.shape[0]
        eta = 1e-7 * n / np.linalg.eigvalsh(G)[-1]
        for B in range(1, n + 1):
            slope = sgd_lyapunov.moment_exponent(G, eta, B) / (2 * eta)
            close(
                f"the slope for {name} with B = {B} (measured Lambda_2 / (2 eta) at eta = "
                f"{eta:.1e})",
                call(small_eta_slope, G.copy(), B),
                slope,
                rtol=1e-4,
                atol=1e-7,
            )
    G = grams["a 4 x 4 Gram matrix"]
    eta = 0.03 * 4 / np.linalg.eigvalsh(G)[-1]
    est = sgd_lyapunov.lyapunov_exponent(G, eta, 1, n_steps=6_000, seed=0)
    predicted = as_float("small_eta_slope", call(small_eta_slope, G.copy(), 1)) * eta
    if abs(est.value - predicted) > 5 * est.stderr + 0.05 * abs(predicted):
        raise CheckFailed(
            f"at eta = {eta:.3g}, B = 1 the measured lambda is {est.value:.3e} ± {est.stderr:.1e}, "
            f"your slope predicts {predicted:.3e}"
        )
    return (
        "the predicted slope matches the exact small-eta limit for three Gram matrices and "
        "every B, and a measured lambda"
    )
