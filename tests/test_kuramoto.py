"""Kuramoto model: order parameter, Ott–Antonsen theory, noise, graphs = all-to-all limits."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import sympy as sym
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import iv

from dsnn import graphons, kuramoto, stats


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(1, 50)), elements=st.floats(-100, 100)
    )
)
def test_order_parameter_lies_in_the_unit_interval(theta):
    r = kuramoto.order_parameter(theta)
    assert r.shape == theta.shape[:1]
    assert ((r >= 0) & (r <= 1)).all()


@settings(max_examples=30, deadline=None)
@given(st.floats(-10, 10), st.integers(1, 200))
def test_order_parameter_is_one_in_synchrony_and_invariant_under_rotation(phase, n):
    theta = np.random.default_rng(n).uniform(0, 2 * np.pi, n)
    assert kuramoto.order_parameter(np.full(n, phase)) == pytest.approx(1.0)
    r, psi = kuramoto.order_parameter(theta, return_phase=True)
    r_rot, psi_rot = kuramoto.order_parameter(theta + phase, return_phase=True)
    assert r_rot == pytest.approx(r, abs=1e-12)
    if r > 1e-6:
        assert np.exp(1j * psi_rot) == pytest.approx(np.exp(1j * (psi + phase)), abs=1e-9)


@pytest.mark.parametrize("n", [2, 3, 10, 101])
def test_splay_state_has_zero_order_parameter(n):
    assert kuramoto.order_parameter(2 * np.pi * np.arange(n) / n) == pytest.approx(0, abs=1e-12)


def test_lorentzian_quantiles_are_symmetric_with_median_center_and_quartiles_at_gamma():
    omega = kuramoto.lorentzian_frequencies(4000, 0.5, center=1.0)
    np.testing.assert_allclose(omega + omega[::-1], 2.0, atol=1e-9)
    # The Cauchy quartiles are center +- gamma.
    assert np.quantile(omega, 0.75) == pytest.approx(1.5, rel=1e-3)
    assert np.all(np.diff(omega) > 0)


def test_gaussian_quantiles_have_the_right_spread():
    omega = kuramoto.gaussian_frequencies(20000, 2.0)
    assert omega.std() == pytest.approx(2.0, rel=1e-3)
    assert omega.mean() == pytest.approx(0.0, abs=1e-12)


def lorentzian_density(gamma):
    return lambda w: gamma / (np.pi * (gamma**2 + np.asarray(w) ** 2))


def test_critical_couplings():
    gamma = 0.7
    # K_c = 2 / (pi g(0)) with the Lorentzian density at its centre, g(0) = 1 / (pi gamma).
    assert kuramoto.critical_coupling(lorentzian_density(gamma)) == pytest.approx(2 * gamma)
    assert kuramoto.critical_coupling("lorentzian", width=gamma) == pytest.approx(2 * gamma)
    assert kuramoto.ott_antonsen_r(2 * gamma, gamma) == 0.0
    np.testing.assert_allclose(
        kuramoto.ott_antonsen_r([0.0, 0.5, 2.0, 4.0], 1.0), [0.0, 0.0, 0.0, np.sqrt(0.5)]
    )
    # r solves the stationary Ott–Antonsen equation 0 = -gamma r + (K/2) r (1 - r^2).
    for K in (1.5, 3.0, 10.0):
        r = kuramoto.ott_antonsen_r(K, gamma)
        assert -gamma * r + K / 2 * r * (1 - r**2) == pytest.approx(0.0, abs=1e-12)


def test_gaussian_critical_coupling_is_sigma_root_eight_over_pi():
    assert kuramoto.critical_coupling("gaussian", width=1.3) == pytest.approx(
        1.3 * np.sqrt(8 / np.pi), rel=1e-12
    )


def test_noisy_critical_couplings_and_their_limits():
    # Identical oscillators: 2D; a graph with top kernel eigenvalue zeta divides it by zeta.
    assert kuramoto.critical_coupling("identical", noise=0.5) == pytest.approx(1.0)
    assert kuramoto.critical_coupling("identical", noise=0.5, eigenvalue=0.3) == pytest.approx(
        1 / 0.3
    )
    # Lorentzian + noise: the integral formula reproduces the closed form 2 (gamma + D) ...
    density = lorentzian_density(0.4)
    assert kuramoto.critical_coupling(density, noise=0.3) == pytest.approx(1.4, rel=1e-7)
    assert kuramoto.critical_coupling("lorentzian", width=0.4, noise=0.3) == pytest.approx(1.4)
    # ... and for a Gaussian it tends to 2 / (pi g(0)) as D -> 0.
    assert kuramoto.critical_coupling("gaussian", width=1.0, noise=1e-5) == pytest.approx(
        np.sqrt(8 / np.pi), rel=1e-4
    )


def test_bessel_ratio_expansion_gives_the_threshold_two_d():
    # I1(x)/I0(x) = x/2 - x^3/16 + ...: r = ratio(K r / D) has a root r > 0 iff K/(2D) > 1.
    x = sym.symbols("x")

    def besseli(nu, terms=4):  # I_nu(x) = sum_k (x/2)^(2k+nu) / (k! (k+nu)!)
        return sum(
            (x / 2) ** (2 * k + nu) / (sym.factorial(k) * sym.factorial(k + nu))
            for k in range(terms)
        )

    series = sym.series(besseli(1) / besseli(0), x, 0, 4).removeO()
    assert sym.simplify(series - (x / 2 - x**3 / 16)) == 0
    xs = np.array([1e-3, 0.1, 1.0, 10.0, 800.0])
    np.testing.assert_allclose(kuramoto.bessel_ratio(xs[:-1]), iv(1, xs[:-1]) / iv(0, xs[:-1]))
    assert kuramoto.bessel_ratio(800.0) == pytest.approx(1 - 1 / 1600, rel=1e-5)  # 1 - 1/(2x)
    r = kuramoto.self_consistent_r([0.9, 1.0, 1.5, 3.0], 0.5)
    assert r[0] == 0.0 and r[1] == 0.0
    for K, value in zip([1.5, 3.0], r[2:], strict=True):
        assert value == pytest.approx(kuramoto.bessel_ratio(K * value / 0.5), abs=1e-12)
    # Near threshold, K/D = 2 (1 + eps): 1 = a/2 - a^3 r^2/16 with a = K/D gives r^2 ~ 2 eps.
    eps = 1e-4
    near = kuramoto.self_consistent_r(2 * 0.5 * (1 + eps), 0.5)
    assert near**2 == pytest.approx(2 * eps, rel=1e-2)


def test_uncoupled_oscillators_rotate_at_their_natural_frequency():
    omega = np.array([0.3, -1.1, 2.0])
    theta0 = np.array([0.1, 0.2, 0.3])
    run = kuramoto.simulate(theta0, omega, 0.0, t_final=5.0, dt=0.1)
    np.testing.assert_allclose(run.theta_final, theta0 + 5.0 * omega, atol=1e-12)
    np.testing.assert_allclose(run.theta[..., :], theta0 + run.t[:, None] * omega, atol=1e-12)
    np.testing.assert_allclose(kuramoto.mean_frequency(run, 1.0), omega, atol=1e-12)


def test_two_oscillators_lock_at_the_predicted_phase_difference():
    # phi = theta2 - theta1 obeys phi' = d_omega - K sin(phi) (N = 2, factor K/N each):
    # locked state sin(phi*) = d_omega / K.
    omega = np.array([-0.25, 0.25])
    run = kuramoto.simulate(np.array([0.0, 0.1]), omega, 1.0, t_final=60.0, dt=0.05)
    phi = np.angle(np.exp(1j * (run.theta_final[1] - run.theta_final[0])))
    assert phi == pytest.approx(np.arcsin(0.5), abs=1e-6)


def test_rk4_has_order_four():
    omega = kuramoto.lorentzian_frequencies(20, 0.5)
    theta0 = np.linspace(0, 3, 20)
    ref = kuramoto.simulate(theta0, omega, 2.0, t_final=2.0, dt=0.002).theta_final
    errors = [
        np.abs(kuramoto.simulate(theta0, omega, 2.0, t_final=2.0, dt=h).theta_final - ref).max()
        for h in (0.1, 0.05, 0.025)
    ]
    assert stats.loglog_slope([0.1, 0.05, 0.025], errors) == pytest.approx(4.0, abs=0.3)


@pytest.mark.parametrize("K", [1.2, 1.5, 2.0, 3.0])
def test_simulation_matches_ott_antonsen_above_onset(K):
    omega = kuramoto.lorentzian_frequencies(2000, 0.5)
    run = kuramoto.simulate(None, omega, K, t_final=100.0, dt=0.05, seed=1, keep_phases=False)
    assert run.time_average(50.0) == pytest.approx(kuramoto.ott_antonsen_r(K, 0.5), abs=0.02)


def test_below_onset_the_order_parameter_is_small():
    omega = kuramoto.lorentzian_frequencies(2000, 0.5)
    run = kuramoto.simulate(None, omega, [0.5, 0.8], t_final=100.0, dt=0.05, seed=2)
    assert (run.time_average(50.0) < 0.1).all()


def test_gaussian_onset_two_over_pi_g0():
    sigma = 1.0
    K_c = kuramoto.critical_coupling("gaussian", width=sigma)
    omega = kuramoto.gaussian_frequencies(4000, sigma)
    run = kuramoto.simulate(None, omega, [0.7 * K_c, 1.3 * K_c], t_final=120.0, dt=0.1, seed=3)
    low, high = run.time_average(60.0)
    assert low < 0.1 and high > 0.3


def test_finite_size_fluctuations_shrink_like_one_over_root_n():
    ns = [100, 400, 1600]
    gamma, K = 0.5, 2.0
    errors = []
    for n in ns:
        omega = kuramoto.sample_lorentzian((24, n), gamma, seed=n)
        run = kuramoto.simulate(None, omega, K, t_final=40.0, dt=0.1, seed=n + 1)
        errors.append(np.mean(np.abs(run.time_average(20.0) - kuramoto.ott_antonsen_r(K, gamma))))
    assert stats.loglog_slope(ns, errors) == pytest.approx(-0.5, abs=0.2)


def test_noisy_identical_oscillators_follow_the_von_mises_self_consistency():
    # dtheta = (K/N) sum sin(...) dt + sqrt(2D) dW: K_c = 2D = 1; above it r = I1(Kr/D)/I0(Kr/D).
    D, n = 0.5, 2000
    couplings = np.array([0.6, 1.2, 1.5, 2.0])
    run = kuramoto.simulate(
        np.zeros(n),
        np.zeros(n),
        couplings,
        t_final=60.0,
        dt=0.01,
        method="euler",
        noise=D,
        seed=4,
        record_every=10,
        keep_phases=False,
    )
    r = run.time_average(20.0)
    assert kuramoto.critical_coupling("identical", noise=D) == 1.0
    assert r[0] < 0.1  # below K_c = 2D the synchronised start dissolves
    np.testing.assert_allclose(r[1:], kuramoto.self_consistent_r(couplings[1:], D), atol=0.02)


def test_euler_maruyama_free_diffusion_has_variance_two_d_t():
    # K = 0: each phase is omega t + sqrt(2D) W_t, so Var = 2 D t (batch of 4000 independent runs).
    D, T = 0.3, 2.0
    run = kuramoto.simulate(
        np.zeros((4000, 1)), np.zeros(1), 0.0, t_final=T, dt=0.01, method="euler", noise=D, seed=5
    )
    assert run.theta_final.var() == pytest.approx(2 * D * T, rel=0.08)


def test_erdos_renyi_graph_acts_like_all_to_all_with_coupling_p_k():
    # Graphon W = p: every oscillator feels p times the mean field, so r(K) = r_OA(p K).
    p, n, gamma = 0.3, 1000, 0.5
    A = graphons.sample_graph(graphons.constant(p), n, seed=6)
    omega = np.random.default_rng(7).permutation(kuramoto.lorentzian_frequencies(n, gamma))
    couplings = np.array([2.0, 3.0]) / p
    run = kuramoto.simulate(None, omega, couplings, A, t_final=60.0, dt=0.1, seed=8)
    np.testing.assert_allclose(
        run.time_average(30.0), kuramoto.ott_antonsen_r(p * couplings, gamma), atol=0.03
    )


def star_graph(n):
    A = np.zeros((n, n))
    A[0, 1:] = A[1:, 0] = 1.0
    return sp.csr_array(A)


@pytest.mark.parametrize(
    "graph",
    [
        graphons.ring_graph(20, 1),  # a cycle: connected, sparse
        graphons.sample_graph(graphons.constant(0.3), 20, seed=1, sparse=True),
        star_graph(20),
    ],
)
def test_identical_oscillators_in_a_half_circle_synchronise_on_connected_graphs(graph):
    # Phases inside an open half-circle stay there and contract on any connected graph, K > 0.
    assert csgraph.connected_components(graph)[0] == 1
    theta0 = np.random.default_rng(2).uniform(0.0, 0.9 * np.pi, 20)
    run = kuramoto.simulate(theta0, np.zeros(20), 10.0, graph, t_final=400.0, dt=0.1)
    assert ((run.r >= 0) & (run.r <= 1)).all()
    assert run.r[-1] == pytest.approx(1.0, abs=1e-6)


def test_complete_graph_is_all_to_all_dense_and_sparse():
    n = 40
    omega = kuramoto.lorentzian_frequencies(n, 0.3)
    ref = kuramoto.simulate(None, omega, 1.5, t_final=10.0, dt=0.05, seed=5)
    for adjacency in (np.ones((n, n)), sp.csr_matrix(np.ones((n, n)))):
        run = kuramoto.simulate(None, omega, 1.5, adjacency, t_final=10.0, dt=0.05, seed=5)
        np.testing.assert_allclose(run.r, ref.r, atol=1e-10)


def test_sparse_and_dense_graphs_agree_for_a_directed_weighted_graph():
    rng = np.random.default_rng(3)
    A = rng.random((25, 25)) * (rng.random((25, 25)) < 0.3)
    omega = rng.normal(size=(2, 25))
    dense = kuramoto.simulate(None, omega, [1.0, 4.0], A, t_final=5.0, dt=0.05, seed=1)
    sparse = kuramoto.simulate(
        None, omega, [1.0, 4.0], sp.csr_array(A), t_final=5.0, dt=0.05, seed=1
    )
    np.testing.assert_allclose(sparse.theta, dense.theta, atol=1e-11)


def test_float32_agrees_with_float64():
    omega = kuramoto.lorentzian_frequencies(500, 0.5)
    a = kuramoto.simulate(None, omega, 2.0, t_final=5.0, dt=0.05, seed=1)
    b = kuramoto.simulate(None, omega, 2.0, t_final=5.0, dt=0.05, seed=1, dtype="float32")
    np.testing.assert_allclose(b.r, a.r, atol=1e-4)


def test_a_graph_without_edges_decouples():
    n = 6
    omega = np.linspace(-1, 1, n)
    run = kuramoto.simulate(np.zeros(n), omega, 5.0, sp.csr_matrix((n, n)), t_final=2.0, dt=0.05)
    np.testing.assert_allclose(np.exp(1j * run.theta_final), np.exp(2j * omega), atol=1e-12)


def test_a_batch_of_couplings_equals_separate_runs():
    omega = kuramoto.lorentzian_frequencies(50, 0.5)
    both = kuramoto.simulate(None, omega, [0.5, 2.0], t_final=5.0, dt=0.05, seed=9)
    for i, K in enumerate([0.5, 2.0]):
        single = kuramoto.simulate(None, omega, K, t_final=5.0, dt=0.05, seed=9)
        np.testing.assert_allclose(both.r[i], single.r)


def test_theta0_none_draws_uniform_phases_from_the_seed_and_records_shapes():
    omega = np.zeros((3, 7))
    run = kuramoto.simulate(None, omega, 0.0, t_final=1.0, dt=0.25, seed=11)
    expected = np.random.default_rng(11).uniform(0, 2 * np.pi, (3, 7))
    np.testing.assert_array_equal(run.theta[..., 0, :], expected)
    assert run.t.shape == (5,) and run.r.shape == (3, 5) and run.theta.shape == (3, 5, 7)
    thin = kuramoto.simulate(None, omega, 0.0, t_final=1.0, dt=0.1, record_every=3, seed=1)
    np.testing.assert_allclose(thin.t, [0.0, 0.3, 0.6, 0.9, 1.0])
    lean = kuramoto.simulate(None, omega, 0.0, t_final=1.0, dt=0.1, keep_phases=False, seed=1)
    assert lean.theta is None and lean.theta_final.shape == (3, 7)


def test_same_seed_same_numbers():
    omega = kuramoto.sample_lorentzian(30, 0.5, seed=1)
    np.testing.assert_array_equal(omega, kuramoto.sample_lorentzian(30, 0.5, seed=1))
    a = kuramoto.simulate(None, omega, 1.0, t_final=3.0, dt=0.05, seed=4)
    b = kuramoto.simulate(None, omega, 1.0, t_final=3.0, dt=0.05, seed=4)
    np.testing.assert_array_equal(a.r, b.r)
    kw = {"t_final": 1.0, "dt": 0.01, "method": "euler", "noise": 0.2}
    c = kuramoto.simulate(None, omega, 1.0, seed=4, **kw)
    d = kuramoto.simulate(None, omega, 1.0, seed=4, **kw)
    np.testing.assert_array_equal(c.theta, d.theta)


def test_winding_number_of_twisted_states():
    n = 50
    for q in (-3, 0, 1, 4):
        assert kuramoto.winding_number(2 * np.pi * q * np.arange(n) / n + 0.7) == q


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coupling": -1.0}, "coupling must be >= 0"),
        ({"t_final": 0.0}, "t_final must be > 0"),
        ({"dt": -0.1}, "dt must be > 0"),
        ({"dt": 0.0}, "dt must be > 0"),
        ({"omega": [1.0, np.nan]}, "omega must contain only finite"),
        ({"omega": []}, "omega must not be empty"),
        ({"theta0": [0.0, np.nan]}, "theta0 must contain only finite"),
        ({"theta0": np.zeros(3)}, "theta0 must have 2 oscillators"),
        ({"graph": np.ones((3, 3))}, r"graph must have shape \(2, 2\)"),
        ({"graph": np.ones((2, 3))}, "graph must be a square matrix"),
        ({"graph": sp.csr_array(np.ones((3, 3)))}, r"graph must have shape \(2, 2\)"),
        ({"graph": [[0.0, np.inf], [1.0, 0.0]]}, "graph must contain only finite"),
        ({"record_every": 0}, "record_every must be an integer >= 1"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"method": "heun"}, "method must be one of"),
        ({"noise": 0.1}, "noise > 0 needs method='euler'"),
        ({"noise": -0.1, "method": "euler"}, "noise must be >= 0"),
        ({"dtype": "float16"}, "dtype must be 'float64' or 'float32'"),
        ({"coupling": [1.0, 2.0, 3.0], "omega": np.zeros((2, 2))}, "do not broadcast"),
        ({"omega": np.zeros(10**5), "t_final": 1e4, "dt": 0.01}, "keeping the phases would take"),
    ],
)
def test_simulate_rejects_bad_input(kwargs, match):
    args = {
        "theta0": None,
        "omega": [0.1, -0.1],
        "coupling": 1.0,
        "t_final": 1.0,
        "dt": 0.1,
    } | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        kuramoto.simulate(**args)


def test_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="gamma must be > 0"):
        kuramoto.lorentzian_frequencies(10, 0.0)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        kuramoto.gaussian_frequencies(0, 1.0)
    with pytest.raises(ValueError, match="K must be >= 0"):
        kuramoto.ott_antonsen_r(-1.0, 0.5)
    with pytest.raises(ValueError, match="t_from=5"):
        kuramoto.simulate(None, [0.0, 1.0], 1.0, t_final=1.0, dt=0.1).time_average(5)
    with pytest.raises(ValueError, match="distribution must be one of"):
        kuramoto.critical_coupling("cauchy", width=1.0)
    with pytest.raises(ValueError, match="width is required"):
        kuramoto.critical_coupling("gaussian")
    with pytest.raises(ValueError, match="width must be None for identical"):
        kuramoto.critical_coupling("identical", width=1.0, noise=0.1)
    with pytest.raises(ValueError, match="eigenvalue must be > 0"):
        kuramoto.critical_coupling("lorentzian", width=1.0, eigenvalue=0.0)
    with pytest.raises(TypeError, match="distribution must be a string or a callable"):
        kuramoto.critical_coupling(3.0)
    with pytest.raises(ValueError, match="noise must be > 0"):
        kuramoto.self_consistent_r(1.0, 0.0)
    with pytest.raises(ValueError, match="K must be >= 0"):
        kuramoto.self_consistent_r(-1.0, 0.5)
    with pytest.raises(ValueError, match="keep_phases=True"):
        run = kuramoto.simulate(None, [0.0, 1.0], 1.0, t_final=1.0, dt=0.1, keep_phases=False)
        kuramoto.mean_frequency(run, 0.0)
    with pytest.raises(TypeError, match="run must be a KuramotoRun"):
        kuramoto.mean_frequency(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="at least 2 oscillators"):
        kuramoto.winding_number([1.0])
    with pytest.raises(ValueError, match="x must contain only finite"):
        kuramoto.bessel_ratio([1.0, np.inf])
    with pytest.raises(ValueError, match="theta must contain only finite"):
        kuramoto.order_parameter([0.0, np.nan])
    with pytest.raises(ValueError, match="gamma must be > 0"):
        kuramoto.sample_lorentzian(5, -1.0)
