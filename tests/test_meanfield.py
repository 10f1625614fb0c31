"""Two-layer networks as interacting particles: the particle form is the gradient, and the width
limit is a law of large numbers."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dsnn import graphons, meanfield, stats


def data(n=60, d=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.tanh(2 * x[:, 0]) * np.cos(x[:, 1])
    return torch.tensor(x), torch.tensor(y)


X, Y = data()


@pytest.mark.parametrize("n_units", [1, 7, 50])
def test_particle_velocity_is_minus_n_over_2_times_the_autograd_gradient_of_the_risk(n_units):
    theta = meanfield.init_particles(n_units, 2, seed=n_units, batch=(3,)).requires_grad_(True)
    meanfield.risk(theta, X, Y).sum().backward()
    velocity = meanfield.particle_velocity(theta.detach(), X, Y)
    torch.testing.assert_close(velocity, -n_units / 2 * theta.grad, atol=1e-10, rtol=0)


def test_risk_is_the_expansion_in_v_and_u():
    # R = E y^2 + (2/N) sum_i V(theta_i) + (1/N^2) sum_ij U(theta_i, theta_j)
    theta = meanfield.init_particles(20, 2, seed=1)
    V = meanfield.potential_V(theta, X, Y)
    U = meanfield.interaction_U(theta, X)
    expansion = (Y**2).mean() + 2 * V.mean() + U.mean()
    torch.testing.assert_close(meanfield.risk(theta, X, Y), expansion, atol=1e-12, rtol=0)
    torch.testing.assert_close(meanfield.energy(theta, X, Y), expansion, atol=1e-12, rtol=0)
    # V and U agree with their definitions, unit by unit
    s = theta[:, :1] * torch.tanh(theta[:, 1:] @ X.T)
    torch.testing.assert_close(V, -(s * Y).mean(dim=1))
    torch.testing.assert_close(U[3, 5], (s[3] * s[5]).mean())
    torch.testing.assert_close(
        meanfield.network_output(theta, X), s.mean(dim=0), atol=1e-14, rtol=0
    )


def test_on_a_symmetric_graph_the_particles_follow_the_gradient_of_the_energy():
    n = 30
    A = graphons.sample_graph(graphons.constant(0.4), n, seed=3)
    theta = meanfield.init_particles(n, 2, seed=2).requires_grad_(True)
    meanfield.energy(theta, X, Y, A).backward()
    velocity = meanfield.particle_velocity(theta.detach(), X, Y, A)
    torch.testing.assert_close(velocity, -n / 2 * theta.grad, atol=1e-10, rtol=0)
    # the same graph as a scipy sparse matrix and as a batch of one
    torch.testing.assert_close(
        meanfield.particle_velocity(theta.detach(), X, Y, sp.csr_array(A)), velocity
    )
    torch.testing.assert_close(
        meanfield.particle_velocity(theta.detach()[None], X, Y, A[None])[0], velocity
    )


def test_constant_graph_p_is_the_network_with_output_scaled_by_p():
    # E_p = E y^2 + 2<V> + p <<U>> = (1/p) E[(y - p yhat)^2] + (1 - 1/p) E[y^2]
    p, n = 0.3, 25
    theta = meanfield.init_particles(n, 2, seed=4)
    yhat = meanfield.network_output(theta, X)
    expected = ((Y - p * yhat) ** 2).mean() / p + (1 - 1 / p) * (Y**2).mean()
    torch.testing.assert_close(meanfield.energy(theta, X, Y, p), expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(
        meanfield.particle_velocity(theta, X, Y, p),
        meanfield.particle_velocity(theta, X, Y, p * np.ones((n, n))),
        atol=1e-13,
        rtol=0,
    )


def test_an_euler_step_is_a_gradient_descent_step_with_learning_rate_dt_n_over_2():
    n, dt = 40, 0.1
    theta = meanfield.init_particles(n, 2, seed=5).requires_grad_(True)
    meanfield.risk(theta, X, Y).backward()
    gd_step = theta.detach() - (dt * n / 2) * theta.grad
    run = meanfield.train(theta.detach(), X, Y, t_final=dt, dt=dt)
    torch.testing.assert_close(run.theta_final, gd_step, atol=1e-12, rtol=0)


def test_gradient_flow_decreases_the_risk_and_the_energy():
    theta = meanfield.init_particles(50, 2, seed=6, batch=(2,))
    run = meanfield.train(theta, X, Y, t_final=5.0, dt=0.02, record_every=5)
    assert np.all(np.diff(run.risk, axis=-1) < 0)
    A = graphons.sample_graph(graphons.constant(0.5), 50, seed=1)
    masked = meanfield.train(theta, X, Y, t_final=5.0, dt=0.02, graph=A, record_every=5)
    assert np.all(np.diff(masked.energy, axis=-1) < 0)
    assert run.t[0] == 0 and run.t[-1] == pytest.approx(5.0) and run.risk.shape == (2, 51)


def test_width_limit_is_a_law_of_large_numbers():
    sweep = meanfield.width_sweep(
        [16, 64, 256], X, Y, t_final=2.0, dt=0.05, n_seeds=8, seed=1, reference_width=4096
    )
    assert sweep.deviation[0] > sweep.deviation[1] > sweep.deviation[2]
    assert stats.loglog_slope(sweep.widths, sweep.deviation) < -0.3
    assert len(sweep.curves) == 3 and sweep.curves[0].shape == (8, sweep.t.size)


def test_er_masks_converge_to_the_constant_graph():
    def mask(n, rng):
        return graphons.sample_graph(graphons.constant(0.3), n, seed=rng)

    sweep = meanfield.width_sweep(
        [20, 80, 320],
        X,
        Y,
        t_final=2.0,
        dt=0.05,
        n_seeds=4,
        seed=2,
        reference_width=4096,
        graph=mask,
        reference_graph=0.3,
    )
    assert sweep.deviation[0] > sweep.deviation[1] > sweep.deviation[2]


def test_same_seed_same_particles():
    a = meanfield.init_particles(10, 3, seed=7, batch=(2,), scale_a=2.0)
    b = meanfield.init_particles(10, 3, seed=7, batch=(2,), scale_a=2.0)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert a.shape == (2, 10, 4)
    big = meanfield.init_particles(20000, 4, seed=1, scale_a=2.0, scale_w=3.0)
    assert big[:, 0].std().item() == pytest.approx(2.0, rel=0.03)
    assert big[:, 1:].std().item() == pytest.approx(3.0 / 2.0, rel=0.03)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: meanfield.risk(torch.zeros(5), X, Y), ValueError, "theta must have shape"),
        (lambda: meanfield.risk(torch.zeros(5, 4), X, Y), ValueError, "x must have 3 features"),
        (lambda: meanfield.risk(torch.zeros(5, 3), X, Y[:10]), ValueError, "y must have 60"),
        (
            lambda: meanfield.particle_velocity(torch.full((5, 3), np.nan), X, Y),
            ValueError,
            "theta must contain only finite",
        ),
        (
            lambda: meanfield.particle_velocity(torch.zeros(5, 3), X, Y, np.ones((4, 4))),
            ValueError,
            r"graph must have shape \(..., 5, 5\)",
        ),
        (lambda: meanfield.energy(torch.zeros(5, 3), X, Y, "A"), TypeError, "graph"),
        (lambda: meanfield.interaction_U(torch.zeros(5, 3), X[:, :1]), ValueError, "features"),
        (lambda: meanfield.potential_V(torch.zeros(5, 3), X, Y[:3]), ValueError, "y must have"),
        (lambda: meanfield.network_output(torch.zeros(5, 3), X[0]), ValueError, "x must have 2"),
        (lambda: meanfield.init_particles(0, 2), ValueError, "n_units must be an integer >= 1"),
        (lambda: meanfield.init_particles(3, 2, scale_w=0.0), ValueError, "scale_w must be > 0"),
        (
            lambda: meanfield.train(torch.zeros(5, 3), X, Y, t_final=1.0, dt=-0.1),
            ValueError,
            "dt must be > 0",
        ),
        (
            lambda: meanfield.train(
                torch.ones(5, 3),
                X,
                torch.full((60,), 1e200, dtype=torch.float64),
                t_final=3.0,
                dt=1.0,
            ),
            FloatingPointError,
            "left the finite numbers",
        ),
        (
            lambda: meanfield.width_sweep([0, 4], X, Y, t_final=1.0, dt=0.1),
            ValueError,
            "widths must be a non-empty list of positive integers",
        ),
        (
            lambda: meanfield.width_sweep([4], X, Y, t_final=1.0, dt=0.1, graph="mask"),
            TypeError,
            "graph must be None, a number or a callable",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_message(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_device_argument_keeps_the_numbers():
    x = torch.linspace(-1, 1, 7, dtype=torch.float64)[:, None]
    y = torch.sin(2 * x[:, 0])
    theta0 = meanfield.init_particles(12, 1, seed=3, device="cpu")
    plain = meanfield.train(theta0, x, y, t_final=0.5, dt=0.05)
    placed = meanfield.train(theta0, x, y, t_final=0.5, dt=0.05, device="cpu")
    np.testing.assert_array_equal(plain.risk, placed.risk)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="asks for CUDA"):
            meanfield.init_particles(12, 1, seed=3, device="cuda")
