"""Residual networks are Euler schemes: tested against exact flows of linear and scalar ODEs."""

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from dsnn import neural_ode, stats

A = torch.tensor([[-0.5, 2.0], [-1.0, -0.3]], dtype=torch.float64)
X0 = torch.tensor([[1.0, 0.0], [0.3, -0.7], [-1.2, 0.4]], dtype=torch.float64)


def linear_field(t, h):
    return h @ A.T


def exact_linear_flow(T):
    return X0 @ torch.from_numpy(scipy.linalg.expm(T * A.numpy())).T


def test_euler_resnet_is_the_matrix_power_of_one_euler_step():
    # For h' = Ah the Euler map with L steps is exactly (I + (T/L) A)^L.
    T, L = 1.3, 7
    step = torch.eye(2, dtype=torch.float64) + (T / L) * A
    expected = X0 @ torch.linalg.matrix_power(step, L).T
    assert torch.allclose(neural_ode.euler_resnet(linear_field, X0, T, L), expected, atol=1e-14)


def test_ode_flow_equals_matrix_exponential():
    T = 2.0
    assert torch.allclose(neural_ode.ode_flow(linear_field, X0, T), exact_linear_flow(T), atol=1e-9)


def test_euler_converges_with_order_one_on_a_linear_ode():
    T = 1.0
    depths = [16, 32, 64, 128, 256, 512]
    exact = exact_linear_flow(T)
    errors = [
        float((neural_ode.euler_resnet(linear_field, X0, T, L) - exact).norm(dim=1).max())
        for L in depths
    ]
    assert all(e1 > e2 for e1, e2 in itertools.pairwise(errors))
    assert stats.loglog_slope(depths, errors) == pytest.approx(-1.0, abs=0.05)


def test_euler_error_constant_matches_the_leading_term_on_the_logistic_equation():
    # h' = h(1 - h), exact solution h(t) = h0 e^t / (1 - h0 + h0 e^t). The global Euler error at
    # time T behaves like (T/L) * e(T) where e solves e' = (1 - 2h) e - h''/2, e(0) = 0.
    def field(t, h):
        return h * (1 - h)

    h0, T = 0.2, 2.0
    exact = h0 * math.exp(T) / (1 - h0 + h0 * math.exp(T))
    errs = []
    for L in (200, 400):
        h = neural_ode.euler_resnet(field, torch.tensor([h0], dtype=torch.float64), T, L)
        errs.append(float(h[0]) - exact)
    # Richardson: error halves when the step halves, to leading order.
    assert errs[0] / errs[1] == pytest.approx(2.0, rel=0.02)


def test_neural_ode_flow_is_close_to_a_deep_resnet_for_the_random_field():
    field = neural_ode.MLPField(3, 8, seed=4)
    x0 = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = neural_ode.ode_flow(field, x0, 1.0)
        err_64 = (neural_ode.euler_resnet(field, x0, 1.0, 64) - ref).abs().max()
        err_512 = (neural_ode.euler_resnet(field, x0, 1.0, 512) - ref).abs().max()
    assert err_512 < err_64 / 6  # order one: factor 8 in depth gives about factor 8 in error


def test_one_dimensional_flow_is_strictly_increasing():
    # Flows of scalar ODEs cannot cross: x < y implies phi_T(x) < phi_T(y).
    field = neural_ode.MLPField(1, 16, seed=2, scale=3.0)
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)[:, None]
    with torch.no_grad():
        y = neural_ode.ode_flow(field, x, 2.0)[:, 0]
    assert (torch.diff(y) > 0).all()


def test_adjoint_gradients_match_direct_backpropagation():
    field = neural_ode.MLPField(2, 6, seed=1)
    x0 = torch.tensor([[0.5, -0.2]], dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        field.zero_grad()
        out = neural_ode.ode_flow(field, x0, 1.0, adjoint=adjoint, rtol=1e-10, atol=1e-12)
        out.pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-9)


def test_mlp_field_is_reproducible_from_its_seed():
    a, b, c = (neural_ode.MLPField(2, 5, seed=s) for s in (7, 7, 8))
    x = torch.ones(1, 2, dtype=torch.float64)
    assert torch.equal(a(0.0, x), b(0.0, x))
    assert not torch.equal(a(0.0, x), c(0.0, x))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"T": -1.0}, "T must be > 0"),
        ({"T": float("nan")}, "T must be finite"),
        ({"n_layers": 0}, "n_layers must be an integer >= 1"),
        ({"n_layers": 2.5}, "n_layers must be an integer"),
        ({"x0": np.full((2, 2), np.nan)}, "x0 must contain only finite"),
        ({"x0": np.zeros((1, 2, 2))}, "x0 must have 1 or 2 dimension"),
        ({"x0": np.zeros((0, 2))}, "x0 must not be empty"),
    ],
)
def test_euler_resnet_rejects_bad_input(kwargs, match):
    args = {"f": linear_field, "x0": X0, "T": 1.0, "n_layers": 4} | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        neural_ode.euler_resnet(**args)


def test_ode_flow_rejects_bad_input():
    with pytest.raises(TypeError, match="f must be a callable"):
        neural_ode.ode_flow("not a field", X0, 1.0)
    with pytest.raises(ValueError, match="rtol must be > 0"):
        neural_ode.ode_flow(linear_field, X0, 1.0, rtol=0.0)
    with pytest.raises(TypeError, match=r"adjoint=True needs f to be a torch\.nn\.Module"):
        neural_ode.ode_flow(linear_field, X0, 1.0, adjoint=True)
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        neural_ode.MLPField(0)


def test_states_and_trajectories_are_consistent_with_the_end_points():
    states = neural_ode.euler_resnet(linear_field, X0, 1.0, 5, return_states=True)
    assert states.shape == (6, *X0.shape)
    assert torch.equal(states[0], X0)
    assert torch.equal(states[-1], neural_ode.euler_resnet(linear_field, X0, 1.0, 5))
    times = torch.linspace(0, 1.5, 4, dtype=torch.float64)
    path = neural_ode.ode_trajectory(linear_field, X0, times)
    for k, t in enumerate(times[1:], start=1):
        assert torch.allclose(path[k], exact_linear_flow(float(t)), atol=1e-9)
    with pytest.raises(ValueError, match="times must start at 0"):
        neural_ode.ode_trajectory(linear_field, X0, [0.5, 1.0])
    with pytest.raises(ValueError, match="increase strictly"):
        neural_ode.ode_trajectory(linear_field, X0, [0.0, 1.0, 1.0])
