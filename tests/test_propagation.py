"""Gradients as a dynamical system, tested against closed forms and theorems.

Oracles: adaptive quadrature of the Gaussian integrals; the linear activation (exact variance
map, and the exact exponent ½[log σ² + ψ(N/2) − log(N/2)] of products of Gaussian matrices,
derived in dsnn.propagation.gaussian_product_exponent); the tanh critical point σ_w = 1 at
σ_b = 0; the small-q series of the variance map (sympy); convergence of the variance iteration
from both ends of its invariant interval; mean field ½ log χ_1 at large width; the matrix
exponential for linear fields (costate, residual networks, change of variables); exact densities
of Gaussian mixtures under the heat flow.
"""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from dsnn import neural_ode, stats
from dsnn import propagation as pr
from dsnn.sgd_lyapunov import LyapunovEstimate


def gaussian_mean(g):
    """E g(z), z ~ N(0, 1), by adaptive quadrature (independent of the package's rules)."""
    density = lambda z: g(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return sum(
        quad(density, a, b, epsabs=1e-15, epsrel=1e-13, limit=500)[0]
        for a, b in [(-np.inf, 0.0), (0.0, np.inf)]
    )


def sech(x):
    return 1.0 / math.cosh(min(abs(x), 300.0))


def linear_exponent(width, sigma):
    """½ E log ‖W u‖² for W_ij ~ N(0, σ²/N): ‖W u‖² = (σ²/N) χ²_N, E log χ²_N = log 2 + ψ(N/2)."""
    return 0.5 * (math.log(sigma**2 / width) + math.log(2) + scipy.special.digamma(width / 2))


# ------------------------------------------------------------------------------------------
# mean-field quantities
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [1e-6, 0.05, 0.5, 0.51, 1.0, 3.0, 30.0, 400.0, 1e4])
def test_gaussian_integrals_match_adaptive_quadrature(q):
    s = math.sqrt(q)
    tanh2 = gaussian_mean(lambda z: math.tanh(s * z) ** 2)
    sech4 = gaussian_mean(lambda z: sech(s * z) ** 4)
    assert pr.variance_map(q, 1.0, 0.0) == pytest.approx(tanh2, rel=1e-12, abs=1e-300)
    assert pr.variance_map(q, 1.7, 0.4) == pytest.approx(1.7**2 * tanh2 + 0.16, rel=1e-12)
    assert pr.chi1(1.3, 0.2, q=q) == pytest.approx(1.3**2 * sech4, rel=1e-11)


def test_linear_activation_has_the_exact_variance_map_and_fixed_point():
    q = np.array([0.0, 0.3, 2.0, 11.0])
    assert np.allclose(pr.variance_map(q, 0.8, 0.5, "linear"), 0.64 * q + 0.25, rtol=1e-14)
    assert pr.fixed_point(0.8, 0.5, "linear") == pytest.approx(0.25 / (1 - 0.64), rel=1e-14)
    assert pr.fixed_point(1.2, 0.5, "linear") == math.inf
    assert pr.fixed_point(1.0, 0.0, "linear") == 0.0
    assert pr.chi1(1.7, 0.3, "linear") == pytest.approx(1.7**2, rel=1e-14)
    assert pr.critical_sigma_w(0.7, "linear") == 1.0


def test_tanh_without_bias_is_critical_at_sigma_w_one():
    # q* = 0 for σ_w ≤ 1 (tanh(x)² < x²), so χ_1 = σ_w² φ'(0)² = σ_w²: χ_1 = 1 exactly at σ_w = 1.
    assert pr.fixed_point(1.0, 0.0) == 0.0
    assert pr.fixed_point(0.7, 0.0) == 0.0
    assert pr.chi1(1.0, 0.0) == pytest.approx(1.0, abs=1e-14)
    assert pr.chi1(0.7, 0.0) == pytest.approx(0.49, abs=1e-14)
    assert pr.critical_sigma_w(0.0) == pytest.approx(1.0, abs=1e-14)
    # just above 1 the fixed point leaves 0 and χ_1 drops below σ_w²
    assert pr.fixed_point(1.01, 0.0) > 0
    assert pr.chi1(1.01, 0.0) < 1.01**2
    # ordered below, chaotic above
    assert pr.chi1(0.95, 0.0) < 1 < pr.chi1(1.05, 0.0)


def test_fixed_point_near_criticality_follows_the_series_of_the_variance_map():
    # E tanh(√q z)² = q − 2q² + (17/3) q³ + O(q⁴) from the Taylor series of tanh² and the
    # Gaussian moments; at σ_b = 0 the positive root of σ_w² E tanh² = q is then
    # q* = (σ_w² − 1)/(2σ_w²) + O((σ_w² − 1)²).
    x, q = sp.symbols("x q", positive=True)
    series = sp.series(sp.tanh(x) ** 2, x, 0, 8).removeO()
    # E (√q z)^k = q^{k/2} (k − 1)!! for even k (odd moments vanish)
    expectation = sum(
        c * q ** (k // 2) * sp.factorial2(k - 1) for (k,), c in sp.Poly(series, x).terms()
    )
    assert sp.simplify(expectation - (q - 2 * q**2 + sp.Rational(17, 3) * q**3)) == 0
    # the next term is −(62/3) q⁴: at q = 1e-4 the cubic series is exact to 2e-11 relative
    assert pr.variance_map(1e-4, 1.0, 0.0) == pytest.approx(
        float(expectation.subs(q, 1e-4)), rel=1e-10
    )
    for eps in [1e-3, 1e-5]:
        sw2 = 1 + eps
        leading = (sw2 - 1) / (2 * sw2)
        assert pr.fixed_point(math.sqrt(sw2), 0.0) == pytest.approx(leading, rel=5 * eps)


@settings(max_examples=25, deadline=None)
@given(
    sigma_w=st.floats(0.2, 4.0),
    sigma_b=st.floats(0.01, 2.0),
)
def test_fixed_point_is_the_limit_of_the_variance_iteration_from_both_ends(sigma_w, sigma_b):
    # V is increasing and maps [σ_b², σ_w² + σ_b²] into itself, so iterates from the two ends
    # converge monotonically to the smallest and the largest fixed point in it. Both agree with
    # fixed_point: the fixed point is unique and attracting.
    q_star = pr.fixed_point(sigma_w, sigma_b)
    assert pr.variance_map(q_star, sigma_w, sigma_b) == pytest.approx(q_star, rel=1e-12)
    ends = np.array([sigma_b**2, sigma_w**2 + sigma_b**2])
    for _ in range(3000):
        ends = pr.variance_map(ends, sigma_w, sigma_b)
    assert np.allclose(ends, q_star, rtol=1e-7)


def test_critical_line_solves_chi1_equal_one_and_rises_with_the_bias():
    sigma_b = np.array([0.0, 0.1, 0.5, 1.0, 2.0])
    crit = pr.critical_sigma_w(sigma_b)
    assert np.allclose(pr.chi1(crit, sigma_b), 1.0, atol=1e-12)
    assert np.all(np.diff(crit) > 0)
    for c, b in zip(crit, sigma_b, strict=True):
        assert pr.chi1(0.98 * c, b) < 1 < pr.chi1(1.02 * c, b)


# ------------------------------------------------------------------------------------------
# Lyapunov exponents of Jacobian products
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 3, 40])
def test_gaussian_product_exponent_is_half_the_mean_log_chi_square(width):
    mean_log = scipy.stats.chi2(width).expect(np.log)
    expected = 0.5 * (math.log(1.7**2 / width) + mean_log)
    assert pr.gaussian_product_exponent(width, 1.7) == pytest.approx(expected, rel=1e-8)


def test_gaussian_product_exponent_finite_width_correction():
    # ψ(x) − log x = −1/(2x) − 1/(12x²) + O(x⁻⁴): the correction is −1/(2N) − 1/(6N²) + ...
    for n in [50, 200, 1000]:
        correction = pr.gaussian_product_exponent(n, 1.0)
        assert correction == pytest.approx(-1 / (2 * n) - 1 / (6 * n**2), abs=2 / n**4)


@pytest.mark.parametrize(("width", "sigma_w"), [(1, 1.3), (3, 0.7), (30, 1.3)])
def test_linear_network_exponent_equals_the_gaussian_product_closed_form(width, sigma_w):
    est = pr.jacobian_lyapunov(1500, width, sigma_w, 0.4, "linear", seed=7)
    assert isinstance(est, LyapunovEstimate)
    assert est.stderr > 0
    # the renormalised growth factors are i.i.d. here: the error bar is known exactly
    per_layer_sd = math.sqrt(scipy.special.polygamma(1, width / 2) / 4)
    n_used = (est.n_steps - est.burn_in) * est.n_chains
    assert est.stderr == pytest.approx(per_layer_sd / math.sqrt(n_used), rel=0.35)
    assert abs(est.value - linear_exponent(width, sigma_w)) <= 4 * est.stderr


def test_tanh_exponent_at_width_500_is_half_log_chi1():
    # Finite width lowers the exponent by O(1/N) (measured between 0.7/N and 2.8/N in the
    # book's chapter); stated tolerance: 3/N plus four standard errors.
    width = 500
    diagram = pr.phase_diagram([0.8, 1.0, 1.5], [0.0, 0.3], 120, width, seed=11)
    for i, j in [(0, 1), (1, 0), (2, 1)]:
        est = diagram.estimate(i, j)
        predicted = 0.5 * math.log(pr.chi1(diagram.sigma_w[i], diagram.sigma_b[j]))
        assert abs(est.value - predicted) <= 3 / width + 4 * est.stderr
    assert diagram.estimate(1, 0).value == pytest.approx(0.0, abs=3 / width + 0.01)


def test_phase_diagram_is_batched_with_common_random_numbers():
    sw, sb = [0.9, 1.4, 2.2], [0.0, 0.5]
    diagram = pr.phase_diagram(sw, sb, 60, 30, seed=3, n_chains=2)
    assert diagram.value.shape == diagram.stderr.shape == diagram.chi1.shape == (3, 2)
    single = pr.jacobian_lyapunov(60, 30, 1.4, 0.5, seed=3, n_chains=2)
    assert single.value == pytest.approx(diagram.value[1, 1], abs=1e-12)
    again = pr.phase_diagram(sw, sb, 60, 30, seed=3, n_chains=2)
    assert np.array_equal(diagram.value, again.value)  # same seed, same numbers
    assert np.allclose(diagram.predicted, 0.5 * np.log(diagram.chi1))


def test_measured_boundary_lies_near_chi1_equal_one():
    sigma_b = np.array([0.0, 0.5, 1.0])
    diagram = pr.phase_diagram(np.linspace(0.6, 2.6, 21), sigma_b, 150, 150, seed=1, n_chains=2)
    measured, predicted = diagram.boundary(), diagram.predicted_boundary()
    assert np.allclose(predicted, pr.critical_sigma_w(sigma_b))
    assert np.all(np.abs(measured - predicted) < 0.12)
    # negative exponents (vanishing gradients) left of the line, positive right of it
    for j, crit in enumerate(predicted):
        assert np.all(diagram.value[diagram.sigma_w < crit - 0.25, j] < 0)
        assert np.all(diagram.value[diagram.sigma_w > crit + 0.25, j] > 0)


def test_backpropagated_gradient_norms_grow_at_the_exponent():
    depth, width = 300, 60
    norms = pr.gradient_norms(depth, width, [1.3], [0.3], "linear", seed=2)
    assert norms.shape == (1, depth + 1)
    assert norms[0, -1] == pytest.approx(1.0, rel=1e-12)
    # δ^{l−1} = W_lᵀ δ^l: i.i.d. Gaussian factors, the same closed form as forwards
    rate = math.log(norms[0, 0]) / depth
    sd = math.sqrt(scipy.special.polygamma(1, width / 2) / 4 / depth)
    assert abs(rate - linear_exponent(width, 1.3)) <= 4 * sd
    tanh = pr.gradient_norms(80, 400, [0.7, 1.0, 2.0], [0.2, 0.0, 0.2], seed=4)
    rates = np.log(tanh[:, 0]) / 80
    predicted = 0.5 * np.log(pr.chi1(np.array([0.7, 1.0, 2.0]), np.array([0.2, 0.0, 0.2])))
    assert np.all(np.abs(rates - predicted) < 0.03)
    assert rates[0] < 0 < rates[2]


# ------------------------------------------------------------------------------------------
# residual networks and the adjoint equation
# ------------------------------------------------------------------------------------------

A_SYM = np.array([[0.4, 0.3], [0.3, -0.8]])
A_T = torch.as_tensor(A_SYM)
A_GEN = torch.tensor([[-0.5, 2.0], [-1.0, -0.3]], dtype=torch.float64)
X0 = torch.tensor([[1.0, 0.0], [0.3, -0.7]], dtype=torch.float64)


@pytest.mark.parametrize("n_layers", [2, 10, 100])
def test_residual_exponent_of_a_linear_field(n_layers):
    # DΦ_L = (1 + Δt A)^L for f(h) = A h; for symmetric A its norm is max_i |1 + Δt a_i|^L.
    T = 1.5
    rate = pr.residual_exponent(lambda t, h: h @ A_T.T, X0, T, n_layers)
    dt = T / n_layers
    expected = math.log(np.abs(1 + dt * np.linalg.eigvalsh(A_SYM)).max())
    assert np.allclose(rate, expected, rtol=1e-12)


def test_residual_exponent_vanishes_linearly_in_the_step():
    field = neural_ode.MLPField(2, 8, seed=3, scale=2.0)
    T = 1.0
    flow_norm = torch.linalg.matrix_norm(neural_ode.flow_jacobian(field, X0, T), ord=2)
    limit = torch.log(flow_norm).numpy() / T  # (1/T) log ‖Dφ_T‖
    layers = np.array([50, 100, 200, 400])
    rates = np.array([pr.residual_exponent(field, X0, T, n) for n in layers])  # (4, n)
    assert np.allclose(rates * layers[:, None] / T, limit, rtol=0.05, atol=0.02)
    assert stats.loglog_slope(T / layers, np.abs(rates[:, 0])) == pytest.approx(1.0, abs=0.05)


def test_costate_of_a_linear_field_is_the_transposed_matrix_exponential():
    T = 1.2
    aT = torch.tensor([[0.5, -1.0], [2.0, 0.3]], dtype=torch.float64)
    a0 = pr.costate(lambda t, h: h @ A_GEN.T, X0, T, aT)
    expm = torch.as_tensor(scipy.linalg.expm(T * A_GEN.numpy()))
    assert torch.allclose(a0, aT @ expm, atol=1e-8)


def test_costate_equals_the_gradient_by_backpropagation_through_the_solver():
    field = neural_ode.MLPField(3, 12, seed=5, scale=1.5)
    x0 = torch.tensor([[0.2, -0.4, 1.0], [1.1, 0.3, -0.2]], dtype=torch.float64)
    u = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.0, 1.0]], dtype=torch.float64)
    x = x0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((neural_ode.ode_flow(field, x, 1.5) * u).sum(), x)
    assert torch.allclose(pr.costate(field, x0, 1.5, u), grad, atol=1e-7)


def test_adjoint_gradients_equal_direct_backpropagation():
    X = torch.tensor([[0.1, 0.5], [-0.7, 0.2], [0.4, -0.9], [1.0, 1.0]], dtype=torch.float64)
    y = X[:, 0] * X[:, 1]
    cmp = pr.adjoint_vs_direct(X, y, width=8, seed=1, repeats=1)
    assert cmp.grad_norm > 0.01
    assert cmp.max_abs_diff < 1e-5 and cmp.rel_diff < 1e-5
    # direct backpropagation re-uses the stored graph; the adjoint solves backwards instead
    assert cmp.nfe_backward["direct"] == 0 < cmp.nfe_backward["adjoint"]
    assert cmp.memory_bytes["adjoint"] < cmp.memory_bytes["direct"]


# ------------------------------------------------------------------------------------------
# continuous normalising flows
# ------------------------------------------------------------------------------------------

MIX = pr.GaussianMixture(
    [0.5, 0.3, 0.2],
    [[-2.0, 0.0], [1.5, 1.0], [1.0, -2.0]],
    [np.eye(2) * 0.3, [[0.5, 0.3], [0.3, 0.4]], np.eye(2) * 0.2],
)


def test_flow_log_likelihood_of_a_linear_field_is_the_change_of_variables():
    # h' = A h: φ_T(x) = e^{TA} x; with a standard normal at T the data density is
    # N(0, e^{−TA} e^{−TAᵀ}) exactly.
    T = 0.8
    x = torch.tensor([[0.3, -0.2], [1.5, 0.7], [-1.0, 2.0]], dtype=torch.float64)
    prior = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                                                   torch.eye(2, dtype=torch.float64))  # fmt: skip
    ll = pr.flow_log_likelihood(lambda t, h: h @ A_GEN.T, x, T, prior.log_prob)
    inverse = scipy.linalg.expm(-T * A_GEN.numpy())
    exact = scipy.stats.multivariate_normal(np.zeros(2), inverse @ inverse.T).logpdf(x.numpy())
    assert np.allclose(ll.numpy(), exact, atol=1e-8)


def test_mixture_density_and_score_are_exact():
    x = torch.tensor([[0.0, 0.0], [-2.0, 0.5], [1.2, -1.7]], dtype=torch.float64)
    for t in [0.0, 0.7]:
        dens = sum(
            w * scipy.stats.multivariate_normal(m, c + t * np.eye(2)).pdf(x.numpy())
            for w, m, c in zip(MIX.weights.numpy(), MIX.means.numpy(), MIX.covariances.numpy(),
                               strict=True)
        )  # fmt: skip
        assert np.allclose(MIX.log_density(x, t).numpy(), np.log(dens), rtol=1e-12)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(MIX.log_density(xg, t).sum(), xg)
        assert torch.allclose(MIX.score(x, t), grad, atol=1e-12)
    samples = MIX.sample(20_000, seed=0)
    mean = MIX.weights @ MIX.means
    assert torch.allclose(samples.mean(dim=0), mean, atol=0.05)


def test_probability_flow_likelihood_equals_the_exact_mixture_density():
    # The probability-flow ODE carries p_0 to p_T; with the exact p_T as prior the
    # instantaneous change of variables must return the exact log p_0.
    x = MIX.sample(6, seed=1)
    field = pr.ProbabilityFlow(MIX)
    T = 3.0
    ll = pr.flow_log_likelihood(field, x, T, lambda z: MIX.log_density(z, T))
    assert torch.allclose(ll, MIX.log_density(x), atol=1e-6)
    z = neural_ode.ode_flow(field, x, T)
    assert torch.allclose(pr.flow_inverse(field, z, T), x, atol=1e-6)


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------


def test_bad_input_is_rejected_with_a_message():
    with pytest.raises(ValueError, match="sigma_w must be > 0"):
        pr.variance_map(1.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="sigma_b must be >= 0"):
        pr.fixed_point(1.0, -0.1)
    with pytest.raises(ValueError, match="q must be >= 0"):
        pr.variance_map(-1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="sigma_w must be > 0 everywhere"):
        pr.chi1([1.0, -2.0], 0.1)
    with pytest.raises(ValueError, match="activation must be one of"):
        pr.chi1(1.0, 0.1, "relu")
    with pytest.raises(ValueError, match="sigma_b must be >= 0"):
        pr.critical_sigma_w(-1.0)
    with pytest.raises(ValueError, match="width must be an integer >= 1, got 0"):
        pr.jacobian_lyapunov(50, 0, 1.0, 0.1)
    with pytest.raises(ValueError, match="sigma_w must be > 0"):
        pr.jacobian_lyapunov(50, 10, -1.0, 0.1)
    with pytest.raises(ValueError, match="sigma_b must be >= 0"):
        pr.jacobian_lyapunov(50, 10, 1.0, -0.1)
    with pytest.raises(ValueError, match="depth - burn_in must be at least n_blocks"):
        pr.jacobian_lyapunov(12, 10, 1.0, 0.1, burn_in=5)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        pr.gaussian_product_exponent(0, 1.0)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        pr.phase_diagram([1.0], [0.0], 20, -3)
    with pytest.raises(ValueError, match="sigma_w must be > 0 everywhere"):
        pr.gradient_norms(5, 10, [1.0, 0.0], 0.1)
    with pytest.raises(ValueError, match="n_layers must be an integer >= 1"):
        pr.residual_exponent(lambda t, h: h, X0, 1.0, 0)
    with pytest.raises(ValueError, match="grad_final must have the shape of x0"):
        pr.costate(lambda t, h: h, X0, 1.0, torch.zeros(3, 2))
    with pytest.raises(TypeError, match="f must be a callable"):
        pr.flow_log_likelihood(None, X0, 1.0, lambda z: z[:, 0])
    with pytest.raises(TypeError, match="f must be a callable"):
        pr.flow_inverse(3, X0, 1.0)
    with pytest.raises(ValueError, match="X and y must have the same number of samples"):
        pr.adjoint_vs_direct(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="weights must be > 0"):
        pr.GaussianMixture([1.0, 0.0], [[0.0], [1.0]], [[[1.0]], [[1.0]]])
    with pytest.raises(ValueError, match="must be positive definite"):
        pr.GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 0.0]]])
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        MIX.log_density(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="mixture must be a GaussianMixture"):
        pr.ProbabilityFlow("mixture")
