"""Kuramoto model: order parameter properties, Ott–Antonsen theory, graphs = all-to-all limits."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dsnn import kuramoto, stats


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


def test_critical_couplings():
    gamma = 0.7
    g0_lorentz = 1 / (np.pi * gamma)  # Lorentzian density at its centre
    assert kuramoto.critical_coupling(g0_lorentz) == pytest.approx(2 * gamma)
    assert kuramoto.ott_antonsen_r(2 * gamma, gamma) == 0.0
    np.testing.assert_allclose(
        kuramoto.ott_antonsen_r([0.0, 0.5, 2.0, 4.0], 1.0), [0.0, 0.0, 0.0, np.sqrt(0.5)]
    )
    # r solves the stationary Ott–Antonsen equation 0 = -gamma r + (K/2) r (1 - r^2).
    for K in (1.5, 3.0, 10.0):
        r = kuramoto.ott_antonsen_r(K, gamma)
        assert -gamma * r + K / 2 * r * (1 - r**2) == pytest.approx(0.0, abs=1e-12)


def test_uncoupled_oscillators_rotate_at_their_natural_frequency():
    omega = np.array([0.3, -1.1, 2.0])
    theta0 = np.array([0.1, 0.2, 0.3])
    run = kuramoto.simulate(omega, 0.0, 5.0, dt=0.1, theta0=theta0)
    np.testing.assert_allclose(
        np.exp(1j * run.theta), np.exp(1j * (theta0 + 5.0 * omega)), atol=1e-12
    )


def test_two_oscillators_lock_at_the_predicted_phase_difference():
    # phi = theta2 - theta1 obeys phi' = d_omega - K sin(phi) (N = 2, factor K/N each):
    # locked state sin(phi*) = d_omega / K.
    omega = np.array([-0.25, 0.25])
    run = kuramoto.simulate(omega, 1.0, 60.0, dt=0.05, theta0=np.array([0.0, 0.1]))
    phi = np.angle(np.exp(1j * (run.theta[1] - run.theta[0])))
    assert phi == pytest.approx(np.arcsin(0.5), abs=1e-6)


@pytest.mark.parametrize("K", [1.2, 2.0, 3.0])
def test_simulation_matches_ott_antonsen_above_onset(K):
    omega = kuramoto.lorentzian_frequencies(2000, 0.5)
    run = kuramoto.simulate(omega, K, 100.0, dt=0.05, seed=1)
    assert run.time_average(50.0) == pytest.approx(kuramoto.ott_antonsen_r(K, 0.5), abs=0.02)


def test_below_onset_the_order_parameter_is_small():
    omega = kuramoto.lorentzian_frequencies(2000, 0.5)
    run = kuramoto.simulate(omega, 0.8, 100.0, dt=0.05, seed=2)
    assert run.time_average(50.0) < 0.1


def test_gaussian_onset_two_over_pi_g0():
    sigma = 1.0
    K_c = kuramoto.critical_coupling(1 / (np.sqrt(2 * np.pi) * sigma))
    omega = kuramoto.gaussian_frequencies(4000, sigma)
    run = kuramoto.simulate(omega, [0.7 * K_c, 1.3 * K_c], 120.0, dt=0.1, seed=3)
    low, high = run.time_average(60.0)
    assert low < 0.1 and high > 0.3


def test_finite_size_fluctuations_shrink_like_one_over_root_n():
    ns = [100, 400, 1600]
    gamma, K = 0.5, 2.0
    errors = []
    for n in ns:
        omega = kuramoto.sample_lorentzian((24, n), gamma, seed=n)
        run = kuramoto.simulate(omega, K, 40.0, dt=0.1, seed=n + 1)
        errors.append(np.mean(np.abs(run.time_average(20.0) - kuramoto.ott_antonsen_r(K, gamma))))
    assert stats.loglog_slope(ns, errors) == pytest.approx(-0.5, abs=0.2)


def test_complete_graph_is_all_to_all_dense_and_sparse():
    n = 40
    omega = kuramoto.lorentzian_frequencies(n, 0.3)
    ref = kuramoto.simulate(omega, 1.5, 10.0, seed=5)
    for adjacency in (np.ones((n, n)), sp.csr_matrix(np.ones((n, n)))):
        run = kuramoto.simulate(omega, 1.5, 10.0, seed=5, adjacency=adjacency)
        np.testing.assert_allclose(run.r, ref.r, atol=1e-10)


def test_a_graph_without_edges_decouples():
    n = 6
    omega = np.linspace(-1, 1, n)
    theta0 = np.zeros(n)
    run = kuramoto.simulate(omega, 5.0, 2.0, theta0=theta0, adjacency=sp.csr_matrix((n, n)))
    np.testing.assert_allclose(np.exp(1j * run.theta), np.exp(2j * omega), atol=1e-12)


def test_a_batch_of_couplings_equals_separate_runs():
    omega = kuramoto.lorentzian_frequencies(50, 0.5)
    both = kuramoto.simulate(omega, [0.5, 2.0], 5.0, seed=9)
    for i, K in enumerate([0.5, 2.0]):
        np.testing.assert_allclose(both.r[i], kuramoto.simulate(omega, K, 5.0, seed=9).r)


def test_same_seed_same_numbers():
    omega = kuramoto.sample_lorentzian(30, 0.5, seed=1)
    np.testing.assert_array_equal(omega, kuramoto.sample_lorentzian(30, 0.5, seed=1))
    a = kuramoto.simulate(omega, 1.0, 3.0, seed=4)
    b = kuramoto.simulate(omega, 1.0, 3.0, seed=4)
    np.testing.assert_array_equal(a.r, b.r)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"K": -1.0}, "K must be >= 0"),
        ({"T": 0.0}, "T must be > 0"),
        ({"dt": -0.1}, "dt must be > 0"),
        ({"omega": [1.0, np.nan]}, "omega must contain only finite"),
        ({"omega": []}, "omega must not be empty"),
        ({"theta0": np.zeros(3)}, "theta0 must have 2 oscillators"),
        ({"adjacency": np.ones((3, 3))}, r"adjacency must have shape \(2, 2\)"),
        ({"record_every": 0}, "record_every must be an integer >= 1"),
        ({"seed": -3}, "seed must be a non-negative integer"),
    ],
)
def test_simulate_rejects_bad_input(kwargs, match):
    args = {"omega": [0.1, -0.1], "K": 1.0, "T": 1.0} | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        kuramoto.simulate(**args)


def test_frequency_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="gamma must be > 0"):
        kuramoto.lorentzian_frequencies(10, 0.0)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        kuramoto.gaussian_frequencies(0, 1.0)
    with pytest.raises(ValueError, match="K must be >= 0"):
        kuramoto.ott_antonsen_r(-1.0, 0.5)
    with pytest.raises(ValueError, match="t_from=5"):
        kuramoto.simulate([0.0, 1.0], 1.0, 1.0).time_average(5)
