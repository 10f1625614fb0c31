"""Graphons, W-random graphs, kernel spectra, the continuum limit and digraph measures."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from dsnn import graphons, kuramoto, stats

SBM_SIZES = [0.4, 0.6]
SBM_P = [[0.8, 0.1], [0.1, 0.4]]


def test_graphon_constructors_take_the_values_they_promise():
    x = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(graphons.constant(0.3)(x[:, None], x[None, :]), 0.3)
    W = graphons.block(SBM_SIZES, SBM_P)
    np.testing.assert_allclose(
        W(np.array([0.2, 0.2, 0.7]), np.array([0.3, 0.9, 0.9])), [0.8, 0.1, 0.4]
    )
    ring = graphons.ring(0.2)
    # circle distance: 0.05 and 0.95 are 0.1 apart; 0.1 and 0.35 are 0.25 apart
    np.testing.assert_allclose(ring(np.array([0.05, 0.1]), np.array([0.95, 0.35])), [1.0, 0.0])
    w = graphons.power_law(0.5, 0.05)
    assert w(0.0, 0.0) == pytest.approx(1.0)
    assert w(0.3, 0.7) == pytest.approx((0.05 / 0.35) ** 0.5 * (0.05 / 0.75) ** 0.5)


def test_sampled_graphs_are_simple_symmetric_and_reproducible():
    for sparse in (False, True):
        A = graphons.sample_graph(graphons.block(SBM_SIZES, SBM_P), 300, seed=4, sparse=sparse)
        dense = A.toarray() if sparse else A
        assert set(np.unique(dense)) <= {0.0, 1.0}
        np.testing.assert_array_equal(dense, dense.T)
        assert np.trace(dense) == 0
        B = graphons.sample_graph(graphons.block(SBM_SIZES, SBM_P), 300, seed=4, sparse=sparse)
        np.testing.assert_array_equal(dense, B.toarray() if sparse else B)


@pytest.mark.parametrize("sparse", [False, True])
def test_erdos_renyi_top_eigenvalue_of_a_over_n_is_p(sparse):
    p, n = 0.3, 1000
    A = graphons.sample_graph(graphons.constant(p), n, seed=1, sparse=sparse)
    top = spla.eigsh(sp.csr_array(A) / n, k=1, which="LA")[0][0]
    assert top == pytest.approx(p, abs=0.01)
    # Edge count is Binomial(n(n-1)/2, p): within 5 standard deviations.
    m = n * (n - 1) / 2
    assert abs(A.sum() / 2 - p * m) < 5 * np.sqrt(m * p * (1 - p))


def test_block_model_block_densities_and_sparse_scaling():
    n = 1000
    A = graphons.sample_graph(graphons.block(SBM_SIZES, SBM_P), n, seed=2, sparse=True)
    A = A.toarray()
    k = int(0.4 * n)
    assert A[:k, :k].sum() / (k * (k - 1)) == pytest.approx(0.8, abs=0.01)
    assert A[:k, k:].mean() == pytest.approx(0.1, abs=0.01)
    assert A[k:, k:].sum() / ((n - k) * (n - k - 1)) == pytest.approx(0.4, abs=0.01)
    sparse = graphons.sample_graph(graphons.constant(1.0), 4000, seed=3, sparse=True, density=0.005)
    assert sparse.sum() / 4000 == pytest.approx(0.005 * 3999, rel=0.05)


def test_kernel_top_eigenvalue_matches_closed_forms():
    assert graphons.kernel_top_eigenvalue(graphons.constant(0.3)) == pytest.approx(0.3, abs=1e-10)
    P = np.array(SBM_P)
    exact = np.linalg.eigvals(P @ np.diag(SBM_SIZES)).real.max()
    assert graphons.kernel_top_eigenvalue(graphons.block(SBM_SIZES, SBM_P)) == pytest.approx(
        exact, abs=1e-9
    )
    # ring: zeta_0 = 2r; Nystrom on a discontinuous kernel is O(1/n)
    assert graphons.kernel_top_eigenvalue(graphons.ring(0.2)) == pytest.approx(0.4, abs=2e-3)
    # rank-one power law: the only eigenvalue is the integral of w^2
    a, c = 0.3, 0.02
    exact = c ** (2 * a) * ((1 + c) ** (1 - 2 * a) - c ** (1 - 2 * a)) / (1 - 2 * a)
    assert graphons.kernel_top_eigenvalue(graphons.power_law(a, c)) == pytest.approx(
        exact, rel=1e-4
    )


def test_ring_kernel_spectrum_is_sin_2_pi_m_r_over_pi_m():
    r = 0.2
    eig = graphons.kernel_eigenvalues(graphons.ring(r), n_grid=1000)
    assert eig[0] == pytest.approx(2 * r, abs=2e-3)
    for m in range(1, 5):
        exact = np.sin(2 * np.pi * m * r) / (np.pi * m)
        close = np.abs(eig - exact) < 3e-3
        assert close.sum() >= 2  # cos and sin eigenfunctions


def test_ott_antonsen_on_the_constant_graphon_is_the_all_to_all_curve_at_p_k():
    p, gamma = 0.4, 0.5
    K = np.array([1.0, 3.0, 5.0, 8.0])
    r, z = graphons.ott_antonsen_graphon(graphons.constant(p), K, gamma, n_grid=50)
    np.testing.assert_allclose(r, kuramoto.ott_antonsen_r(p * K, gamma), atol=1e-6)
    assert z.shape == (4, 50)


def test_onset_on_a_block_graphon_is_two_gamma_over_zeta_max():
    gamma = 0.5
    W = graphons.block(SBM_SIZES, SBM_P)
    K_c = kuramoto.critical_coupling(
        "lorentzian", width=gamma, eigenvalue=graphons.kernel_top_eigenvalue(W)
    )
    r, _ = graphons.ott_antonsen_graphon(W, [0.9 * K_c, 1.1 * K_c], gamma, n_grid=100)
    assert r[0] < 1e-3 and r[1] > 0.1
    # finite network on a W-random graph, frequencies independent of position
    n = 1000
    A = graphons.sample_graph(W, n, seed=5)
    omega = np.random.default_rng(6).permutation(kuramoto.lorentzian_frequencies(n, gamma))
    couplings = np.array([0.7, 2.0]) * K_c
    run = kuramoto.simulate(None, omega, couplings, A, t_final=60.0, dt=0.1, seed=7)
    r_sim = run.time_average(30.0)
    r_theory, _ = graphons.ott_antonsen_graphon(W, couplings, gamma, n_grid=100)
    assert r_sim[0] < 0.1
    assert r_sim[1] == pytest.approx(r_theory[1], abs=0.03)


def test_continuum_solver_exact_solutions():
    # W = 1 + sin(2 pi (y - x)) (a smooth directed kernel): u = 2 pi x + (K/2) t exactly.
    def W(x, y):
        return 1 + np.sin(2 * np.pi * (y - x))

    x = np.linspace(0, 1, 7)
    sol = graphons.solve_continuum(
        W,
        3.0,
        omega=lambda s: 0 * s,
        u0=lambda s: 2 * np.pi * s,
        x=x,
        t_final=2.0,
        dt=0.05,
        n_quad=16,
        record_every=10,
    )
    np.testing.assert_allclose(sol.u, 2 * np.pi * x[None, :] + 1.5 * sol.t[:, None], atol=1e-10)
    # constant data: u = u0 + omega t for any kernel
    sol = graphons.solve_continuum(
        graphons.ring(0.2),
        2.0,
        omega=lambda s: 0.7 + 0 * s,
        u0=lambda s: 1 + 0 * s,
        x=x,
        t_final=1.0,
        dt=0.1,
        quadrature="midpoint",
        n_quad=100,
    )
    np.testing.assert_allclose(sol.u[-1], 1.7, atol=1e-12)


def test_finite_networks_converge_to_the_continuum_limit():
    # Smooth graphon, locked regime. Weighted graph A_ij = W(x_i, x_j): midpoint rule, O(N^-2).
    # W-random graph: Bernoulli fluctuations of the row sums, O(N^-1/2).
    def smooth(x, y):
        return np.exp(-3 * (x - y) ** 2)

    W = graphons.Graphon(smooth)

    def omega(x):
        return 0.5 * np.sin(2 * np.pi * x)

    def u0(x):
        return np.pi * x**2

    sizes = [100, 200, 400, 800]
    err_weighted, err_random = [], []
    for n in sizes:
        x = graphons.grid(n)
        u = graphons.solve_continuum(W, 2.0, omega=omega, u0=u0, x=x, t_final=4.0, dt=0.05).u[-1]

        def error(graph, x=x, u=u):
            run = kuramoto.simulate(
                u0(x), omega(x), 2.0, graph, t_final=4.0, dt=0.05, keep_phases=False
            )
            return np.sqrt(np.mean(np.angle(np.exp(1j * (run.theta_final - u))) ** 2))

        err_weighted.append(error(W.matrix(n)))
        err_random.append(np.mean([error(graphons.sample_graph(W, n, seed=s)) for s in range(3)]))
    assert np.all(np.diff(err_random) < 0)
    assert -0.8 < stats.loglog_slope(sizes, err_random) < -0.25
    assert stats.loglog_slope(sizes, err_weighted) == pytest.approx(-2.0, abs=0.2)


def test_twisted_states_on_the_ring_graphon():
    r = 0.2
    modes = np.arange(1, 100)
    stable = [
        graphons.twisted_state_spectrum(q, modes, radius=r)[1].real.max() < 0 for q in range(4)
    ]
    assert stable == [True, True, False, False]
    # The N = 200 ring keeps the winding number of the stable states and loses the others.
    n, k = 200, 40
    x = np.arange(n) / n
    noise = 0.3 * np.random.default_rng(0).standard_normal((4, n))
    theta0 = 2 * np.pi * np.arange(4)[:, None] * x + noise
    run = kuramoto.simulate(
        theta0,
        np.zeros(n),
        1.0,
        graphons.ring_graph(n, k),
        t_final=300.0,
        dt=0.1,
        keep_phases=False,
    )
    winding = kuramoto.winding_number(run.theta_final)
    assert list(winding[:2]) == [0, 1] and winding[2] != 2 and winding[3] != 3


@pytest.mark.parametrize("directed", [False, True])
def test_twisted_spectrum_is_the_limit_of_the_circulant_jacobian(directed):
    # Jacobian of theta_i' = (K/n) sum_j A_ij sin(theta_j - theta_i) at a q-twisted state is
    # circulant; its eigenvalue for e^{2 pi i m j/n} is (K/n) sum_l c_l cos(2 pi q l/n)(e^{..} - 1).
    q, K, r = 1, 1.5, 0.2
    modes = np.arange(1, 6)
    omega_inf, lam_inf = graphons.twisted_state_spectrum(
        q, modes, radius=r, coupling=K, directed=directed
    )
    errors = []
    for n in (100, 200, 400):
        k = round(r * n)
        A = graphons.ring_graph(n, k, directed=directed).toarray()
        theta = 2 * np.pi * q * np.arange(n) / n
        C = A * np.cos(theta[None, :] - theta[:, None]) * K / n
        J = C - np.diag(C.sum(axis=1))
        v = np.exp(2j * np.pi * np.outer(np.arange(n), modes) / n)
        lam_n = np.array([(J @ v[:, i])[0] / v[0, i] for i in range(len(modes))])
        np.testing.assert_allclose(J @ v, v * lam_n[None, :], atol=1e-10)  # eigenvectors
        drift = (K / n * A * np.sin(theta[None, :] - theta[:, None])).sum(axis=1)
        np.testing.assert_allclose(drift, drift[0], atol=1e-12)  # the whole state rotates
        errors.append(max(np.abs(lam_n - lam_inf).max(), abs(drift[0] - omega_inf)))
    assert errors[-1] < 0.02 and errors[0] > errors[1] > errors[2]


def test_directed_ring_twisted_state_rotates_at_the_predicted_frequency():
    n, k, K = 400, 80, 1.0
    x = np.arange(n) / n
    run = kuramoto.simulate(
        2 * np.pi * x, np.zeros(n), K, graphons.directed_ring_graph(n, k), t_final=10.0, dt=0.05
    )
    measured = kuramoto.mean_frequency(run, 5.0)
    exact = K / n * np.sin(2 * np.pi * np.arange(1, k + 1) / n).sum()
    np.testing.assert_allclose(measured, exact, atol=1e-10)
    omega_inf, _ = graphons.twisted_state_spectrum(1, [1], radius=k / n, coupling=K, directed=True)
    assert omega_inf == pytest.approx((1 - np.cos(2 * np.pi * 0.2)) / (2 * np.pi))
    assert measured.mean() == pytest.approx(omega_inf, abs=0.01)
    # the symmetrised (graphon) kernel predicts a stationary twisted state
    assert graphons.twisted_state_spectrum(1, [1], radius=0.2)[0] == 0.0


def test_graph_constructors():
    A = graphons.ring_graph(50, 3)
    np.testing.assert_array_equal(A.sum(axis=1), 6)
    assert (A != A.T).nnz == 0
    D = graphons.directed_ring_graph(50, 3).toarray()
    np.testing.assert_array_equal(D.sum(axis=0), 3)
    np.testing.assert_array_equal(D.sum(axis=1), 3)
    assert D[0, 1] == 1 and D[1, 0] == 0 and D[49, 0] == 1
    R = graphons.random_regular_graph(100, 7 - 1, seed=1)
    np.testing.assert_array_equal(R.sum(axis=1), 6)
    assert (R != R.T).nnz == 0
    w = np.full(2000, 12.0)
    C = graphons.expected_degree_graph(w, seed=2)
    assert C.sum() / 2000 == pytest.approx(12.0, rel=0.05)
    np.testing.assert_array_equal(
        graphons.random_regular_graph(100, 6, seed=1).toarray(), R.toarray()
    )


def test_digraph_measures():
    n = 40
    complete = graphons.DigraphMeasure.from_graph(np.ones((n, n)))
    np.testing.assert_allclose(complete.fibre_masses(), 1.0)
    np.testing.assert_allclose(complete.coupling_matrix().toarray(), 1.0)
    # fibres of the complete graph on the midpoint grid: W1 distance 1/(4n) to Lebesgue
    np.testing.assert_allclose(complete.fibre_distance_to_uniform(), 1 / (4 * n), atol=1e-15)
    # a single atom at x0: W1(delta_x0, Lebesgue) = (x0^2 + (1 - x0)^2) / 2
    A = np.zeros((n, n))
    A[:, 7] = 3.0
    x0 = (7 + 0.5) / n
    single = graphons.DigraphMeasure.from_graph(A).fibre_distance_to_uniform()
    np.testing.assert_allclose(single, (x0**2 + (1 - x0) ** 2) / 2, atol=1e-15)
    # a vertex without inputs keeps the zero measure
    A[3, :] = 0.0
    eta = graphons.DigraphMeasure.from_graph(A)
    assert eta.fibre_masses()[3] == 0 and np.isnan(eta.fibre_distance_to_uniform()[3])
    # size normalisation of a graphon sample is the graphon's own scaling; the kernel version
    size = graphons.DigraphMeasure.from_graph(np.ones((n, n)), normalize="size")
    np.testing.assert_allclose(size.fibre_masses(), 1.0)
    kern = graphons.DigraphMeasure.from_kernel(graphons.constant(0.5), n)
    np.testing.assert_allclose(kern.fibre_masses(), 0.5)


def test_degree_normalised_network_equals_its_digraph_measure_dynamics():
    # theta_i' = omega_i + K sum_j w_ij sin(theta_j - theta_i) with w = A / degree.
    A = graphons.random_regular_graph(60, 4, seed=3)
    eta = graphons.DigraphMeasure.from_graph(A)
    rng = np.random.default_rng(1)
    theta, omega = rng.uniform(0, 6, 60), rng.normal(size=60)
    run = kuramoto.simulate(
        theta, omega, 2.0, eta.coupling_matrix(), t_final=0.01, dt=0.01, method="euler"
    )
    rhs = omega + 2.0 * (A.toarray() / 4 * np.sin(theta[None, :] - theta[:, None])).sum(axis=1)
    np.testing.assert_allclose(run.theta_final, theta + 0.01 * rhs, atol=1e-14)


def test_sparse_regular_graphs_approach_the_all_to_all_limit_as_the_degree_grows():
    n, gamma = 1000, 0.5
    omega = np.random.default_rng(0).permutation(kuramoto.lorentzian_frequencies(n, gamma))
    K = 2.0
    gaps, distances = [], []
    for degree in (4, 16, 100):
        eta = graphons.DigraphMeasure.from_graph(graphons.random_regular_graph(n, degree, seed=1))
        run = kuramoto.simulate(
            None, omega, K, eta.coupling_matrix(), t_final=60.0, dt=0.1, seed=2, keep_phases=False
        )
        gaps.append(abs(run.time_average(30.0) - kuramoto.ott_antonsen_r(K, gamma)))
        distances.append(np.mean(eta.fibre_distance_to_uniform()))
    assert gaps[0] > gaps[-1] and gaps[-1] < 0.03
    assert distances[0] > distances[1] > distances[2]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: graphons.constant(1.5), ValueError, "p must be in"),
        (lambda: graphons.grid(0), ValueError, "n must be an integer >= 1"),
        (lambda: graphons.block([0.5, 0.6], SBM_P), ValueError, "sizes must be positive and sum"),
        (lambda: graphons.block([0.5, 0.5], [[1, 0.2], [0.1, 1]]), ValueError, "symmetric"),
        (lambda: graphons.block([0.5, 0.5], [[2, 0], [0, 1]]), ValueError, "lie in"),
        (lambda: graphons.block([1.0], SBM_P), ValueError, "probabilities must be 1 x 1"),
        (lambda: graphons.ring(0.5), ValueError, "radius must be < 0.5"),
        (lambda: graphons.power_law(-1.0), ValueError, "exponent must be > 0"),
        (lambda: graphons.Graphon(3.0), TypeError, "function must be callable"),
        (lambda: graphons.constant(0.3)(1.2, 0.1), ValueError, "x and y must lie in"),
        (lambda: graphons.sample_graph("W", 10), TypeError, "W must be a Graphon"),
        (lambda: graphons.sample_graph(graphons.constant(0.3), 0), ValueError, "n must be"),
        (
            lambda: graphons.sample_graph(graphons.Graphon(lambda x, y: 2 + 0 * x * y), 5),
            ValueError,
            r"W must take values in \[0, 1\]",
        ),
        (
            lambda: graphons.sample_graph(graphons.constant(0.3), 5, density=2.0),
            ValueError,
            "density must be in",
        ),
        (
            lambda: graphons.kernel_top_eigenvalue(lambda x, y: x + 2 * y),
            ValueError,
            "must be symmetric",
        ),
        (lambda: graphons.kernel_eigenvalues(graphons.ring(0.1), n_grid=1), ValueError, "n_grid"),
        (
            lambda: graphons.solve_continuum(
                graphons.ring(0.1), 1.0, omega=1.0, u0=lambda x: x, x=[0.5], t_final=1, dt=0.1
            ),
            TypeError,
            "omega and u0 must be callables",
        ),
        (
            lambda: graphons.solve_continuum(
                graphons.ring(0.1), 1.0, omega=np.sin, u0=np.cos, x=[1.5], t_final=1, dt=0.1
            ),
            ValueError,
            r"x must lie in \[0, 1\]",
        ),
        (
            lambda: graphons.solve_continuum(
                graphons.ring(0.1), 1.0, omega=np.sin, u0=np.cos, x=[0.5], t_final=1, dt=0.0
            ),
            ValueError,
            "dt must be > 0",
        ),
        (
            lambda: graphons.solve_continuum(
                graphons.ring(0.1),
                1.0,
                omega=np.sin,
                u0=np.cos,
                x=[0.5],
                t_final=1,
                dt=0.1,
                quadrature="simpson",
            ),
            ValueError,
            "quadrature must be",
        ),
        (
            lambda: graphons.ott_antonsen_graphon(graphons.ring(0.1), -1.0, 0.5),
            ValueError,
            "coupling must be >= 0",
        ),
        (lambda: graphons.twisted_state_spectrum(1.5, [1], radius=0.2), TypeError, "q must be"),
        (lambda: graphons.twisted_state_spectrum(1, [0.5], radius=0.2), TypeError, "modes"),
        (lambda: graphons.twisted_state_spectrum(1, [1], radius=0.7), ValueError, "radius"),
        (lambda: graphons.ring_graph(10, 5), ValueError, "too large"),
        (lambda: graphons.random_regular_graph(11, 3), ValueError, "n \\* degree even"),
        (lambda: graphons.expected_degree_graph([1.0, -2.0]), ValueError, ">= 0"),
        (
            lambda: graphons.DigraphMeasure(np.array([[0.0, -1.0], [1.0, 0.0]])),
            ValueError,
            "weights must be >= 0",
        ),
        (lambda: graphons.DigraphMeasure(np.ones((2, 3))), ValueError, "square"),
        (lambda: graphons.DigraphMeasure(np.ones((2, 2)), [0.5, 0.2]), ValueError, "increasing"),
        (
            lambda: graphons.DigraphMeasure(np.array([[0.0, np.nan], [1.0, 0.0]])),
            ValueError,
            "finite",
        ),
        (
            lambda: graphons.DigraphMeasure.from_graph(np.ones((3, 3)), normalize="max"),
            ValueError,
            "normalize must be",
        ),
        (lambda: graphons.DigraphMeasure.from_graph(np.ones((2, 3))), ValueError, "square"),
    ],
)
def test_bad_input_is_rejected_with_a_message(call, error, match):
    with pytest.raises(error, match=match):
        call()
