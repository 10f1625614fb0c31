"""Lyapunov exponents of SGD at interpolating minima against closed forms and theorems.

Oracles (Chemnitz & Engel 2025; the closed forms are derived in the module docstrings):
codimension one, orthogonal gradients, B = N (then λ = μ), N = 1, two unit gradients at an
angle; the bounds (1/k) E log|det A| ≤ λ ≤ ½ log ρ(E[A ⊗ A]) and Kingman's subadditivity;
independence of the start vector; the parameter-space definition against the NTK form.
"""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dsnn import gradient_descent as gdm
from dsnn import hessian as hsm
from dsnn import models
from dsnn import sgd_lyapunov as sl


def random_gram(n=5, d=8, seed=0):
    Y = np.random.default_rng(seed).normal(size=(n, d))
    return Y @ Y.T / d


def exact_codim_one(h, eta, B):
    """E log|1 − eta h_Xi| over all B-subsets, written out independently of the package."""
    terms = [
        math.log(abs(1 - eta * np.mean([h[i] for i in c])))
        for c in itertools.combinations(range(len(h)), B)
    ]
    return sum(terms) / len(terms)


def diagonal_lambda(diag, eta, B):
    """Orthogonal gradients: λ = max_i (B/N) log|1 − eta G_ii / B|."""
    n = len(diag)
    return max((B / n) * math.log(abs(1 - eta * g / B)) for g in diag)


def within(estimate, exact, k=3.0, bias=0.0):
    return abs(estimate.value - exact) <= k * estimate.stderr + bias


# ------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("B", "eta"), [(1, 0.3), (2, 0.3), (1, 1.1), (3, 0.2)])
def test_codimension_one_is_the_average_of_log_one_minus_eta_h(B, eta):
    # Parallel gradients g_i = s_i n: G = c s sᵀ has rank one, h_i = G_ii.
    s = np.array([1.0, 2.0, 0.5, 1.5])
    gram = 0.7 * np.outer(s, s)
    h = np.diag(gram)
    exact = exact_codim_one(h, eta, B)
    assert sl.codimension_one_exponent(h, eta, B) == pytest.approx(exact, rel=1e-12)
    est = sl.lyapunov_exponent(gram, eta, B, n_steps=10_000, seed=3, restrict_to_range=True)
    assert est.stderr > 0
    assert within(est, exact)


def test_codimension_one_closed_form_by_hand():
    assert sl.codimension_one_exponent([1.0, 4.0], 0.5, 1) == pytest.approx(0.5 * math.log(0.5))
    assert sl.codimension_one_exponent([1.0, 4.0], 0.5, 2) == pytest.approx(math.log(0.25))
    assert sl.codimension_one_exponent([2.0, 4.0], 0.5, 1) == -math.inf  # eta h_1 = 1


@pytest.mark.parametrize("B", [1, 2, 3])
@pytest.mark.parametrize("eta", [0.4, 1.3])
def test_orthogonal_gradients(B, eta):
    diag = np.array([1.0, 3.0, 8.0, 2.0])
    est = sl.lyapunov_exponent(np.diag(diag), eta, B, n_steps=10_000, seed=1)
    # the power iteration forgets the start at the rate of the gap between the two top rates;
    # 1e-3 covers that transient bias at this length
    assert within(est, diagonal_lambda(diag, eta, B), bias=1e-3)


def test_full_batch_is_gd_exactly_and_one_sample_is_log_one_minus_eta_g():
    gram = random_gram(4)
    eta = 0.9
    sigma = np.linalg.eigvalsh(gram)
    mu = math.log(max(abs(1 - eta * sigma / 4)))
    est = sl.lyapunov_exponent(gram, eta, batch_size=4)
    assert est.exact and est.stderr == 0 and est.value == pytest.approx(mu, rel=1e-12)
    assert est.value == pytest.approx(gdm.gd_exponent(gram, eta), rel=1e-12)
    one = sl.lyapunov_exponent([[2.5]], 0.3)
    assert one.exact and one.value == pytest.approx(math.log(abs(1 - 0.3 * 2.5)), rel=1e-12)
    spectrum = sl.lyapunov_spectrum(gram, eta, batch_size=4)
    np.testing.assert_allclose(
        spectrum.values, np.sort(np.log(np.abs(1 - eta * sigma / 4)))[::-1], rtol=1e-12
    )


@pytest.mark.parametrize("theta", [0.4, 1.0, 1.4])
def test_two_unit_gradients_at_an_angle(theta):
    # eta = 1, B = 1: each factor projects onto g_i^⊥; every switch of index costs |cos θ|,
    # and half of the steps switch: λ = ½ log|cos θ|.
    c = math.cos(theta)
    gram = [[1.0, c], [c, 1.0]]
    est = sl.lyapunov_exponent(gram, 1.0, 1, n_steps=10_000, seed=2)
    assert within(est, 0.5 * math.log(abs(c)))


def test_the_paper_one_dimensional_example_is_almost_surely_but_not_mean_square_stable():
    # Multipliers 1/3 and −2 with probability ½ (Appendix A): E log|a| = ½ log(2/3) < 0 but
    # E a² = 37/18 > 1. As a codimension-one problem: eta = 1, h = (2/3, 3).
    h = np.array([2 / 3, 3.0])
    gram = np.outer(np.sqrt(h), np.sqrt(h))
    assert sl.codimension_one_exponent(h, 1.0, 1) == pytest.approx(0.5 * math.log(2 / 3))
    moment = sl.moment_exponent(gram, 1.0, 1, restrict_to_range=True)
    assert moment == pytest.approx(math.log(37 / 18), rel=1e-10)
    est = sl.lyapunov_exponent(gram, 1.0, 1, n_steps=10_000, seed=4, restrict_to_range=True)
    assert within(est, 0.5 * math.log(2 / 3))


# ------------------------------------------------------------------------------------------
# moments, bounds and certificates
# ------------------------------------------------------------------------------------------


def factors_by_enumeration(gram, eta, B):
    """All N×N factors 1 − (eta/B) G_[Xi] of eq. 2.19, one per batch, with equal weights."""
    n = gram.shape[0]
    out = []
    for batch in itertools.combinations(range(n), B):
        P = np.zeros((n, n))
        P[list(batch), list(batch)] = 1.0
        out.append(np.eye(n) - (eta / B) * P @ gram)
    return out


@pytest.mark.parametrize(("B", "eta"), [(1, 0.5), (1, 2.5), (2, 1.5), (3, 4.0), (2, 7.0)])
def test_moment_exponent_is_log_spectral_radius_of_e_a_kron_a(B, eta):
    gram = random_gram(4, seed=5)
    mats = factors_by_enumeration(gram, eta, B)
    expectation = sum(np.kron(A, A) for A in mats) / len(mats)
    rho = max(abs(np.linalg.eigvals(expectation)))
    assert sl.moment_exponent(gram, eta, B) == pytest.approx(math.log(rho), rel=1e-9, abs=1e-12)


def test_moment_exponent_closed_forms_and_lanczos_branch():
    diag = np.array([1.0, 3.0, 8.0, 2.0])
    for B, eta in [(1, 0.4), (2, 0.9), (4, 0.3)]:
        expected = max(math.log((B / 4) * (1 - eta * g / B) ** 2 + 1 - B / 4) for g in diag)
        assert sl.moment_exponent(np.diag(diag), eta, B) == pytest.approx(expected, rel=1e-10)
    gram = random_gram(4)
    assert sl.moment_exponent(gram, 0.8, 4) == pytest.approx(2 * gdm.gd_exponent(gram, 0.8))
    # k > 16 takes the Lanczos branch: diagonal G with 20 entries, closed form again
    diag = np.linspace(0.5, 3.0, 20)
    expected = max(math.log((3 / 20) * (1 - 1.1 * g / 3) ** 2 + 1 - 3 / 20) for g in diag)
    assert sl.moment_exponent(np.diag(diag), 1.1, 3) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("B", [1, 2])
def test_moment_exponent_for_larger_n_against_the_enumerated_expectation(B):
    # N = 18 > 16 takes the secular-equation branch; the oracle builds E[A ⊗ A] (324 x 324)
    gram = random_gram(18, d=24, seed=6)
    eta = 1.3 * 18 / np.linalg.eigvalsh(gram)[-1]
    mats = factors_by_enumeration(gram, eta, B)
    expectation = sum(np.kron(A, A) for A in mats) / len(mats)
    rho = max(abs(np.linalg.eigvals(expectation)))
    assert sl.moment_exponent(gram, eta, B) == pytest.approx(math.log(rho), rel=1e-8, abs=1e-10)


@pytest.mark.parametrize(("B", "eta"), [(1, 0.7), (1, 3.0), (2, 2.0), (2, 5.0)])
def test_lambda_lies_between_the_determinant_and_the_moment_bounds(B, eta):
    gram = random_gram(5, seed=1)
    est = sl.lyapunov_exponent(gram, eta, B, n_steps=10_000, seed=0)
    lower = sl.determinant_bound(gram, eta, B)
    upper = 0.5 * sl.moment_exponent(gram, eta, B)
    tol = 3 * est.stderr + 1e-3
    assert lower <= est.value + tol
    assert est.value <= upper + tol
    # the determinant bound is exactly the mean of log|det| over the batches
    logdets = [np.linalg.slogdet(A)[1] for A in factors_by_enumeration(gram, eta, B)]
    assert lower == pytest.approx(np.mean(logdets) / 5, rel=1e-10)


def test_the_spectrum_sums_to_the_volume_growth_and_starts_with_lambda():
    gram = random_gram(4, seed=2)
    eta, B = 1.7, 2
    spec = sl.lyapunov_spectrum(gram, eta, B, n_steps=8_000, seed=0)
    assert np.all(np.diff(spec.values) <= 3 * (spec.stderr[1:] + spec.stderr[:-1]))
    total = spec.values.sum()
    assert total == pytest.approx(4 * sl.determinant_bound(gram, eta, B), abs=5 * spec.stderr.sum())
    top = sl.lyapunov_exponent(gram, eta, B, n_steps=8_000, seed=1)
    assert abs(top.value - spec.values[0]) <= 3 * (top.stderr + spec.stderr[0]) + 1e-3
    # orthogonal gradients: every exponent is one of (B/N) log|1 − eta G_ii / B|
    diag = np.array([1.0, 3.0, 8.0])
    spec = sl.lyapunov_spectrum(np.diag(diag), 0.6, 1, n_steps=8_000, seed=0)
    expected = np.sort([(1 / 3) * math.log(abs(1 - 0.6 * g)) for g in diag])[::-1]
    np.testing.assert_allclose(spec.values, expected, atol=3 * spec.stderr.max() + 2e-3)


def test_kingman_bounds_are_subadditive_exact_and_above_lambda():
    gram = random_gram(3, d=5, seed=4)
    eta, B = 2.0, 1
    bounds = {n: sl.kingman_bound(gram, eta, B, n) for n in (1, 2, 3, 4, 6, 8)}
    a = {n: n * b for n, b in bounds.items()}
    for m, n in [(1, 1), (2, 2), (1, 2), (2, 4), (4, 4), (3, 3), (2, 6)]:
        assert a[m + n] <= a[m] + a[n] + 1e-12
    for n in (1, 2, 4):
        assert bounds[2 * n] <= bounds[n] + 1e-12  # decreasing along n, 2n, 4n, ...
    est = sl.lyapunov_exponent(gram, eta, B, n_steps=10_000, seed=0)
    assert min(bounds.values()) >= est.value - 3 * est.stderr
    # Against the definition: orthogonal gradients give diagonal products, ‖Π_n‖ = max_i |Π a_i|.
    diag = np.array([1.0, 2.5, 0.4])
    n = 4
    values = []
    for seq in itertools.product(range(3), repeat=n):
        factors = np.ones(3)
        for i in seq:
            factors[i] *= 1 - 0.9 * diag[i]
        values.append(math.log(np.abs(factors).max()))
    assert sl.kingman_bound(np.diag(diag), 0.9, 1, n) == pytest.approx(np.mean(values) / n)


# ------------------------------------------------------------------------------------------
# invariance and the two forms of the definition
# ------------------------------------------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4))
def test_the_estimate_does_not_depend_on_the_start_vector(v0):
    if np.linalg.norm(v0) < 1e-3:
        return
    gram = random_gram(4, seed=3)
    a = sl.lyapunov_exponent(gram, 1.2, 1, n_steps=3_000, seed=5, n_chains=1)
    b = sl.lyapunov_exponent(gram, 1.2, 1, n_steps=3_000, seed=5, n_chains=1, v0=v0)
    # same batches: the two directions merge exponentially fast; the estimates agree far
    # within their error bars
    assert abs(a.value - b.value) <= 0.1 * a.stderr + 1e-9


def test_the_ntk_form_agrees_with_the_parameter_space_definition_on_one_batch_sequence():
    model = models.mlp([3, 8, 1], seed=2)
    X = torch.as_tensor(np.random.default_rng(0).normal(size=(6, 3)))
    params = list(model.parameters())
    jac = hsm.per_sample_gradients(model, params, X).numpy()  # (N, D), D = 41
    gram = sl.ntk_gram(model, X)
    np.testing.assert_allclose(gram, jac @ jac.T, rtol=1e-12)
    eta = 3.0 * 6 / np.linalg.eigvalsh(gram)[-1]
    for B in (1, 3):
        kwargs = {"n_steps": 2_000, "seed": 11, "n_chains": 2}
        ntk = sl.lyapunov_exponent(gram, eta, B, **kwargs)
        par = sl.lyapunov_exponent_parameter_space(jac, eta, B, **kwargs)
        singular = np.linalg.svd(jac, compute_uv=False)
        bound = 2 * math.log(singular[0] / singular[-1]) / (kwargs["n_steps"] * 0.9)
        assert abs(ntk.value - par.value) <= bound + 1e-9


def test_ntk_gram_of_a_linear_model_is_x_x_transpose():
    X = np.random.default_rng(1).normal(size=(5, 3))
    model = torch.nn.Linear(3, 1, bias=False).double()
    np.testing.assert_allclose(sl.ntk_gram(model, X), X @ X.T, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# singular factors: -inf, never NaN, no warnings
# ------------------------------------------------------------------------------------------


def test_singular_factors_give_minus_infinity_without_warnings():
    diag = np.array([2.0, 2.0, 2.0])  # eta G_ii / B = 1 for eta = 0.5, B = 1: all singular
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = sl.lyapunov_exponent(np.diag(diag), 0.5, 1, n_steps=500, seed=0)
        assert est.value == -math.inf and est.stderr == 0
        assert sl.determinant_bound(np.diag(diag), 0.5, 1) == -math.inf
        assert sl.kingman_bound(np.diag(diag), 0.5, 1, 3) == -math.inf
        assert sl.codimension_one_exponent(diag, 0.5, 1) == -math.inf
        spec = sl.lyapunov_spectrum(np.diag(diag), 0.5, 1, n_steps=500, seed=0)
        assert not np.isnan(spec.values).any()
        pd = sl.phase_diagram(np.diag(diag), [0.5, 0.25], [1, 3], n_steps=500)
        assert pd.value[0, 0] == -math.inf and not np.isnan(pd.value).any()
        # one singular direction: the others decide, and the value is finite
        mixed = np.diag([2.0, 1.0, 3.0])
        est = sl.lyapunov_exponent(mixed, 0.5, 1, n_steps=5_000, seed=0)
        assert np.isfinite(est.value)
        assert within(est, diagonal_lambda([1.0, 3.0], 0.5, 1) * 2 / 3, bias=1e-3)


# ------------------------------------------------------------------------------------------
# the phase diagram
# ------------------------------------------------------------------------------------------


def test_phase_diagram_matches_the_orthogonal_closed_form_on_the_whole_grid():
    diag = np.array([1.0, 3.0, 8.0, 2.0])
    etas = np.linspace(0.137, 2.537, 13)  # no singular factor eta G_ii / B = 1 on the grid
    sizes = np.array([1, 2, 3, 4])
    pd = sl.phase_diagram(np.diag(diag), etas, sizes, n_steps=6_000, seed=0, n_chains=2)
    assert pd.value.shape == (13, 4) and pd.mu.shape == (13,)
    for i, eta in enumerate(etas):
        for j, B in enumerate(sizes):
            exact = diagonal_lambda(diag, eta, B)
            assert abs(pd.value[i, j] - exact) <= 3 * pd.stderr[i, j] + 2e-3
    # B = N is GD: the exact mu, no error bar
    np.testing.assert_allclose(pd.value[:, 3], [gdm.gd_exponent(np.diag(diag), e) for e in etas])
    assert (pd.stderr[:, 3] == 0).all()
    # λ first crosses 0 at eta = 2B / max G_ii; the interpolated crossing lies in the same
    # grid interval
    crossing = pd.thresholds()
    for j, B in enumerate(sizes):
        true = 2 * B / 8.0
        k = np.searchsorted(etas, true)
        assert etas[k - 1] <= crossing[j] <= etas[k]


def test_phase_diagram_of_a_stack_equals_the_single_diagrams():
    grams = np.stack([random_gram(4, seed=s) for s in range(3)])
    etas, sizes = [0.5, 2.0], [1, 2, 4]
    stack = sl.phase_diagram(grams, etas, sizes, n_steps=1_000, seed=7)
    assert stack.value.shape == (3, 2, 3) and stack.mu.shape == (3, 2)
    for m in range(3):
        single = sl.phase_diagram(grams[m], etas, sizes, n_steps=1_000, seed=7)
        np.testing.assert_allclose(stack.value[m], single.value, rtol=1e-10)


def test_lyapunov_threshold_brackets_the_orthogonal_closed_form():
    # λ(eta) = max_i (B/N) log|1 − eta G_ii / B| first crosses 0 at eta = 2B / max G_ii.
    diag = np.array([1.0, 3.0, 8.0, 2.0])
    grams = np.stack([np.diag(diag), np.diag(2 * diag)])
    th = sl.lyapunov_threshold(grams, [1, 2, 3, 4], np.linspace(0.05, 3.0, 20), n_steps=2_000)
    assert th.value.shape == (2, 4)
    for m, scale in enumerate((1.0, 2.0)):
        for j, B in enumerate((1, 2, 3, 4)):
            true = 2 * B / (8.0 * scale)
            assert th.lower[m, j] <= true <= th.upper[m, j]
            assert th.upper[m, j] - th.lower[m, j] <= 3.0 / 19 / 2**10 + 1e-12
    assert th.value[0, 3] == th.lower[0, 3] == pytest.approx(1.0)  # B = N: exact 2N / σ_max
    single = sl.lyapunov_threshold(np.diag(diag), 2, np.linspace(0.05, 3.0, 20), n_steps=2_000)
    assert isinstance(single.value, float) and single.lower <= 0.5 <= single.upper
    # no crossing on the grid, or unstable from its start: NaN, with the bracket saying why
    miss = sl.lyapunov_threshold(np.diag(diag), 2, [0.05, 0.1, 0.2], n_steps=500)
    assert math.isnan(miss.value) and miss.lower == 0.2
    late = sl.lyapunov_threshold(np.diag(diag), 2, [0.6, 0.7], n_steps=500)
    assert math.isnan(late.value) and late.upper == 0.6


def test_track_stability_on_a_linear_model_with_orthogonal_inputs():
    # F(w, x) = w · x with orthogonal inputs: G = diag(‖x_i‖²) at every step, so
    # eta / eta_LE = eta max G_ii / (2B) and eta / eta_GD = eta max G_ii / (2N), constant.
    norms = np.array([1.0, 2.0, 0.5, 1.5])
    z = np.array([1.0, -1.0, 0.5, 0.2])
    for B in (1, 2, 4):
        model = torch.nn.Linear(4, 1, bias=False).double()
        track = sl.track_stability(
            model, np.diag(norms), z, 0.1, B, 60, every=20, seed=0, lyapunov_steps=1_000
        )
        np.testing.assert_array_equal(track.step, [0, 20, 40, 60])
        np.testing.assert_allclose(track.ratio_lyapunov, 0.1 * 4 / (2 * B), rtol=2e-3)
        np.testing.assert_allclose(track.ratio_gd, 0.1 * 4 / (2 * 4), rtol=1e-12)
        assert (track.loss[1:] < track.loss[:-1]).all()
    # B = N is GD: λ = μ exactly and the two ratios coincide
    np.testing.assert_allclose(track.ratio_lyapunov, track.ratio_gd, rtol=1e-12)
    mu = gdm.gd_exponent(np.diag(norms**2), 0.1)
    np.testing.assert_allclose(track.lyapunov, mu, rtol=1e-12)
    assert (track.lyapunov_stderr == 0).all()


def test_mean_square_threshold_closed_forms():
    # codimension one: E(1 − eta h_Xi)² < 1 iff eta < 2 E h_Xi / E h_Xi²
    s = np.array([1.0, 2.0, 0.5])
    gram = np.outer(s, s)
    h = s**2
    for B in (1, 2):
        means = np.array([h[list(c)].mean() for c in itertools.combinations(range(3), B)])
        expected = 2 * means.mean() / np.mean(means**2)
        got = sl.mean_square_threshold(gram, B, restrict_to_range=True)
        assert got == pytest.approx(expected, rel=1e-8)
    # orthogonal gradients: mean-square stable iff eta < 2B / max G_ii
    assert sl.mean_square_threshold(np.diag([1.0, 4.0, 2.0]), 2) == pytest.approx(1.0, rel=1e-8)
    # a neutral direction: no threshold
    assert sl.mean_square_threshold(gram, 1) == math.inf


# ------------------------------------------------------------------------------------------
# SGD runs
# ------------------------------------------------------------------------------------------


def test_sgd_with_the_full_batch_is_gd():
    y, z = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    x0 = np.random.default_rng(0).uniform(-2, 2, size=(50, 2))
    sgd = sl.sgd_batch(sl.product_sample_losses(y, z), x0, 0.05, 2, 300, seed=1)
    gd = gdm.gd_batch(gdm.product_loss(y, z), x0, 0.05, 300)
    np.testing.assert_allclose(sgd.x_final.numpy(), gd.x_final.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(sgd.diverged.numpy(), gd.diverged.numpy())


@pytest.mark.parametrize("B", [1, 2])
def test_sgd_batches_are_uniform_subsets(B):
    # Linear model F = x · y_i with N = 3 orthonormal inputs: one step from x0 = 0 with targets
    # z moves x to (eta/B) Σ_{i∈Xi} z_i e_i, which identifies the batch.
    z = np.array([1.0, 2.0, 4.0])
    Y = torch.eye(3, dtype=torch.float64)
    zt = torch.as_tensor(z)

    def losses(x):
        return 0.5 * (x @ Y.T - zt) ** 2

    runs = 3000
    res = sl.sgd_batch(losses, np.zeros((runs, 3)), 1.0, B, 1, seed=2)
    chosen = (res.x_final.numpy() != 0).astype(int)
    assert (chosen.sum(axis=1) == B).all()  # B distinct samples, no repetition
    counts = {c: 0 for c in itertools.combinations(range(3), B)}
    for row in chosen:
        counts[tuple(np.flatnonzero(row))] += 1
    p = 1 / len(counts)
    for count in counts.values():  # each subset has probability 1/C(3, B): 5-sigma band
        assert abs(count - runs * p) <= 5 * math.sqrt(runs * p * (1 - p))


@pytest.mark.parametrize(("u", "stable"), [(0.3, True), (0.55, False)])
def test_sgd_stays_where_lambda_is_negative_and_leaves_where_it_is_positive(u, stable):
    # Product model, data y = (1, 3), z = y (c = 1), eta = 0.1, B = 1. On the hyperbola
    # x = (e^u, e^-u), t = eta ‖x‖² and λ = ½ log|1 − t| + ½ log|1 − 9t|.
    y = np.array([1.0, 3.0])
    eta = 0.1
    t = eta * 2 * math.cosh(2 * u)
    lam = sl.codimension_one_exponent(y**2 * t / eta, eta, 1)
    assert (lam < 0) == stable
    x_star = np.array([math.exp(u), math.exp(-u)])
    normal = np.array([x_star[1], x_star[0]]) / np.linalg.norm(x_star)
    x0 = x_star + 1e-4 * normal * np.random.default_rng(0).choice([-1, 1], size=(200, 1))
    res = sl.sgd_batch(sl.product_sample_losses(y, y), x0, eta, 1, 2_000, seed=3)
    ok = ~res.diverged.numpy()
    distance = np.linalg.norm(res.x_final.numpy()[ok] - x_star, axis=1)
    if stable:
        assert ok.all() and distance.max() < 1e-2
    else:
        assert np.mean(distance > 1e-2) > 0.9


def test_train_sgd_with_the_full_batch_is_gd_and_records_the_gram_matrix():
    X = np.random.default_rng(0).normal(size=(6, 3))
    z = np.random.default_rng(1).normal(size=6)
    a, b = models.mlp([3, 5, 1], seed=0), models.mlp([3, 5, 1], seed=0)
    gram0 = sl.ntk_gram(a, X)
    rec = sl.train_sgd(a, X, z, 0.1, 6, 25, gram_every=10, seed=0)
    ref = gdm.train_full_batch(b, X, z, 0.1, 25, sharpness_every=None)
    np.testing.assert_allclose(rec.loss, ref.loss, rtol=1e-12)
    np.testing.assert_array_equal(rec.gram_step, [0, 10, 20])
    np.testing.assert_allclose(rec.grams[0], gram0, rtol=1e-12)
    assert rec.grams.shape == (3, 6, 6) and not rec.diverged
    # a step far beyond stability is reported as a divergence, with finite records only
    blown = sl.train_sgd(models.mlp([3, 5, 1], seed=0), X, z, 50.0, 2, 500, seed=0)
    assert blown.diverged and np.isfinite(blown.loss).all()


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------

GRAM = random_gram(4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"gram": [[1.0, 0.5], [0.0, 1.0]]}, ValueError, "gram must be symmetric"),
        ({"gram": [[1.0, 2.0], [2.0, 1.0]]}, ValueError, "gram must be positive semi-definite"),
        ({"gram": np.ones((2, 3))}, ValueError, "gram must be a square matrix"),
        ({"gram": [[np.nan]]}, ValueError, "gram must contain only finite"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an integer in \[1, N\] = \[1, 4\]"),
        ({"batch_size": 5}, ValueError, r"batch_size must be an integer in \[1, N\]"),
        ({"batch_size": 1.5}, TypeError, "batch_size must be an integer"),
        ({"eta": 0.0}, ValueError, "eta must be > 0"),
        ({"eta": -0.5}, ValueError, "eta must be > 0"),
        ({"n_steps": 100, "burn_in": 100}, ValueError, "n_steps must be larger than burn_in"),
        ({"n_steps": 0}, ValueError, "n_steps must be an integer >= 1"),
        ({"n_chains": 0}, ValueError, "n_chains must be an integer >= 1"),
        ({"n_blocks": 1}, ValueError, "n_blocks must be an integer >= 2"),
        ({"v0": [1.0, 2.0]}, ValueError, "v0 must have shape"),
        ({"device": "tpu"}, ValueError, "device must be None, 'cpu' or 'cuda'"),
        ({"dtype": torch.int64}, TypeError, "dtype must be a floating-point"),
    ],
)
def test_lyapunov_exponent_rejects_bad_input(kwargs, error, match):
    args = {"gram": GRAM, "eta": 0.5, "batch_size": 1, "n_steps": 200} | kwargs
    with pytest.raises(error, match=match):
        sl.lyapunov_exponent(**args)


def test_the_other_functions_reject_bad_input():
    with pytest.raises(ValueError, match="n_steps must be larger than burn_in"):
        sl.lyapunov_spectrum(GRAM, 0.5, 1, n_steps=10, burn_in=20)
    with pytest.raises(ValueError, match="n_exponents must be at most the dimension 4"):
        sl.lyapunov_spectrum(GRAM, 0.5, 1, n_steps=100, n_exponents=5)
    with pytest.raises(ValueError, match="etas must all be > 0"):
        sl.phase_diagram(GRAM, [0.5, -1.0], [1, 2], n_steps=100)
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, N\]"):
        sl.phase_diagram(GRAM, [0.5], [1, 7], n_steps=100)
    with pytest.raises(ValueError, match="batch_sizes must be a non-empty 1-D array of integers"):
        sl.phase_diagram(GRAM, [0.5], [1.5], n_steps=100)
    with pytest.raises(ValueError, match=r"gram\[1\] must be positive semi-definite"):
        sl.phase_diagram(np.stack([GRAM, -GRAM]), [0.5], [1], n_steps=100)
    with pytest.raises(ValueError, match="p must be 2"):
        sl.moment_exponent(GRAM, 0.5, 1, p=4)
    with pytest.raises(ValueError, match="eta must be > 0"):
        sl.moment_exponent(GRAM, 0.0, 1)
    with pytest.raises(ValueError, match="needs C\\(4, 1\\)\\^12"):
        sl.kingman_bound(GRAM, 0.5, 1, 12)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        sl.kingman_bound(GRAM, 0.5, 1, 0)
    with pytest.raises(ValueError, match="more than max_batches=3"):
        sl.determinant_bound(GRAM, 0.5, 2, max_batches=3)
    with pytest.raises(ValueError, match="curvatures must be >= 0"):
        sl.codimension_one_exponent([1.0, -1.0], 0.5)
    with pytest.raises(ValueError, match="gram must be symmetric"):
        sl.mean_square_threshold([[1.0, 0.5], [0.0, 1.0]], 1)
    with pytest.raises(ValueError, match="gram is zero"):
        sl.lyapunov_exponent(np.zeros((3, 3)), 0.5, 1, n_steps=100, restrict_to_range=True)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        sl.ntk_gram(lambda x: x, np.zeros((2, 1)))
    with pytest.raises(ValueError, match="jacobian must have 2 dimension"):
        sl.lyapunov_exponent_parameter_space(np.ones(3), 0.5, 1, n_steps=100)
    with pytest.raises(ValueError, match="y and z must have the same length"):
        sl.product_sample_losses([1.0, 2.0], [1.0])
    losses = sl.product_sample_losses([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, N\] = \[1, 2\]"):
        sl.sgd_batch(losses, np.ones((3, 2)), 0.1, 3, 10)
    with pytest.raises(ValueError, match="eta must be > 0 for every run"):
        sl.sgd_batch(losses, np.ones((3, 2)), [0.1, 0.0, 0.1], 1, 10)
    with pytest.raises(TypeError, match="sample_loss_fn must be callable"):
        sl.sgd_batch(3, np.ones((3, 2)), 0.1, 1, 10)
    model = models.mlp([3, 4, 1])
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, N\] = \[1, 5\]"):
        sl.train_sgd(model, np.zeros((5, 3)), np.zeros(5), 0.1, 6, 10)
    with pytest.raises(ValueError, match="etas must be positive and strictly increasing"):
        sl.lyapunov_threshold(GRAM, 1, [0.5, 0.2])
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, N\]"):
        sl.lyapunov_threshold(GRAM, [1, 9], [0.1, 0.2])
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        sl.track_stability(model, np.zeros((5, 3)), np.zeros(5), 0.1, 2, 10, every=0)
    with pytest.raises(ValueError, match="gram_every must be an integer >= 1"):
        sl.train_sgd(model, np.zeros((5, 3)), np.zeros(5), 0.1, 2, 10, gram_every=0)
