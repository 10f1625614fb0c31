"""Residual networks are Euler schemes, neural ODE flows are orientation-preserving diffeomorphisms.

Tested against exact flows of linear and scalar ODEs, Liouville's formula, the explicit shear
flow of the universal embedding theorem and the derived bounds for monotone maps.
"""

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchdiffeq import odeint

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


# --- Neural ODEs with lift and readout, training, Liouville, universal embedding -------------


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.2, 2.0),
    T=st.floats(0.2, 2.0),
)
def test_one_dimensional_flows_are_increasing_and_inverted_by_backward_integration(seed, scale, T):
    # Trajectories of a scalar ODE cannot cross, and the flow is a diffeomorphism whose inverse
    # is the backward solve: phi_{-T}(phi_T(x)) = x.
    field = neural_ode.MLPField(1, 8, seed=seed, scale=scale)
    x = torch.linspace(-2, 2, 60, dtype=torch.float64)[:, None]
    with torch.no_grad():
        y = neural_ode.ode_flow(field, x, T, rtol=1e-12, atol=1e-14)
        times = torch.tensor([T, 0.0], dtype=torch.float64)
        back = odeint(field, y, times, rtol=1e-12, atol=1e-14)
    assert (torch.diff(y[:, 0]) > 0).all()
    assert torch.allclose(back[-1], x, atol=1e-6)


def test_jacobian_determinant_is_the_exponential_of_the_integrated_divergence():
    # Liouville: det D phi_T(x) = exp(int_0^T div f(phi_t(x)) dt) > 0.
    field = neural_ode.MLPField(3, 10, seed=5, scale=2.0)
    x0 = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    det = torch.linalg.det(neural_ode.flow_jacobian(field, x0, 1.5))
    integral = neural_ode.divergence_integral(field, x0, 1.5)
    assert (det > 0).all()
    assert torch.allclose(det, torch.exp(integral), rtol=1e-6, atol=0)


def test_liouville_on_a_linear_field_matches_the_matrix_exponential():
    # For h' = Ah: D phi_T = e^{TA} and the divergence is tr A, so det e^{TA} = e^{T tr A}.
    T = 0.8
    jac = neural_ode.flow_jacobian(linear_field, X0, T)
    expected = torch.from_numpy(scipy.linalg.expm(T * A.numpy()))
    assert torch.allclose(jac, expected.expand(3, 2, 2), atol=1e-9)
    integral = neural_ode.divergence_integral(linear_field, X0, T)
    assert torch.allclose(integral, torch.full((3,), T * float(A.trace()), dtype=torch.float64))


def test_shear_embedding_reproduces_scalar_and_vector_maps_exactly():
    # Survey Theorem 2.6 by its construction: Phi = Psi for every Psi, without training.
    x = torch.linspace(-2, 2, 101, dtype=torch.float64)[:, None]
    model = neural_ode.shear_embedding(lambda u: u**2 - torch.sin(3 * u), 1, 1)
    assert model.dim_phase == 2 and model.architecture == "augmented"
    with torch.no_grad():
        assert (model(x) - (x**2 - torch.sin(3 * x))).abs().max() < 1e-8
    grid = torch.cartesian_prod(*(torch.linspace(-1.5, 1.5, 21, dtype=torch.float64),) * 2)
    product = neural_ode.shear_embedding(lambda u: u[:, 0] * u[:, 1], 2, 1)
    swap = neural_ode.shear_embedding(lambda u: torch.stack([u[:, 1] ** 2, -u[:, 0]], 1), 2, 2)
    with torch.no_grad():
        assert (product(grid)[:, 0] - grid[:, 0] * grid[:, 1]).abs().max() < 1e-8
        expected = torch.stack([grid[:, 1] ** 2, -grid[:, 0]], 1)
        assert (swap(grid) - expected).abs().max() < 1e-8


def test_best_monotone_fit_matches_the_derived_bounds():
    # Increasing g on a decreasing target: Cov(g(x), x) >= 0 (Chebyshev) gives
    # MSE = Var g + Var x + 2 Cov(g, x) + (mean g)^2 >= Var x, attained by g = 0.
    x = np.linspace(-1, 1, 4001)
    assert neural_ode.monotone_mse_bound(x, -x) == pytest.approx(x.var(), rel=1e-12)
    # For x^2 the best monotone fit is max(x, 1/2)^2-like: constant 1/4 up to x = 1/2,
    # then x^2; its MSE on uniform [-1, 1] is 9/160 (either direction, by symmetry).
    assert neural_ode.monotone_mse_bound(x, x**2, increasing=None) == pytest.approx(
        9 / 160, rel=2e-3
    )


def test_a_one_dimensional_flow_stays_above_the_bound_and_one_extra_dimension_fits_minus_x():
    x = torch.linspace(-1, 1, 41, dtype=torch.float64)[:, None]
    bound = neural_ode.monotone_mse_bound(x[:, 0], -x[:, 0])
    assert bound == pytest.approx(float(x.var(unbiased=False)))
    flat = neural_ode.NeuralODE(1, 1, 1, width=16, seed=0, rtol=1e-4, atol=1e-6, train_affine=False)
    record = neural_ode.fit(flat, x, -x, 60, 0.05, 0)
    with torch.no_grad():
        final = float(((flat(x) + x) ** 2).mean())
    assert min(record.losses.min(), final) >= bound
    augmented = neural_ode.NeuralODE(
        1, 2, 1, width=16, seed=0, rtol=1e-4, atol=1e-6, train_affine=False
    )
    neural_ode.fit(augmented, x, -x, 250, 0.05, 0)
    with torch.no_grad():
        assert float(((augmented(x) + x) ** 2).mean()) < 1e-3


def test_disk_centre_value_lies_between_min_and_max_over_every_annulus_circle():
    # Non-augmented (m = d = 2): phi_T maps each circle C_r to a closed curve around phi_T(0),
    # so the affine readout at 0 lies in [min_{C_r} Phi, max_{C_r} Phi]: the disk/annulus
    # labels cannot be matched uniformly (sup error >= 1).
    model = neural_ode.NeuralODE(2, 2, 1, width=16, seed=3, scale=3.0)
    with torch.no_grad():
        model.readout.weight.copy_(torch.tensor([[0.6, -1.3]]))
        centre = float(model(torch.zeros(1, 2, dtype=torch.float64)))
        angles = torch.linspace(0, 2 * math.pi, 721, dtype=torch.float64)
        for r in (1.0, 1.25, 1.5):
            ring = r * torch.stack([torch.cos(angles), torch.sin(angles)], 1)
            values = model(ring)[:, 0]
            assert float(values.min()) <= centre <= float(values.max())


def test_euler_resnet_of_a_neural_ode_converges_with_order_one():
    model = neural_ode.NeuralODE(2, 3, 1, seed=2, scale=2.0, rtol=1e-10, atol=1e-12)
    x = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    depths = [8, 16, 32, 64, 128]
    with torch.no_grad():
        exact = model(x)
        errors = [float((model.resnet(x, L) - exact).abs().max()) for L in depths]
    assert stats.loglog_slope(depths, errors) == pytest.approx(-1.0, abs=0.1)


def test_rk4_uses_four_evaluations_per_step_and_trajectory_ends_at_the_flow():
    model = neural_ode.NeuralODE(2, 2, 1, method="rk4", step_size=0.05)
    x = torch.zeros(3, 2, dtype=torch.float64)
    with torch.no_grad():
        model.nfe = 0
        out = model.flow(x)
        assert model.nfe == 4 * 20
        path = model.trajectory(x, torch.linspace(0, 1, 5))
    assert path.shape == (5, 3, 2)
    assert torch.allclose(path[-1], out, atol=1e-12)


def test_gradcheck_through_the_solver_on_a_tiny_model():
    model = neural_ode.NeuralODE(1, 2, 1, width=3, seed=0, method="rk4", step_size=0.1)
    x = torch.tensor([[0.3], [-0.7]], dtype=torch.float64, requires_grad=True)
    weight = model.vector_field.inner.weight.detach().clone().requires_grad_(True)

    def output(x, weight):
        parameters = dict(model.named_parameters()) | {"_field.field.inner.weight": weight}
        return torch.func.functional_call(model, parameters, (x,))

    assert torch.autograd.gradcheck(output, (x, weight))


def test_adjoint_and_direct_gradients_of_a_neural_ode_agree():
    x = torch.tensor([[0.5, -0.2], [1.0, 0.4]], dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        model = neural_ode.NeuralODE(2, 3, 1, seed=1, adjoint=adjoint, rtol=1e-10, atol=1e-12)
        model(x).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-8)


def test_adjoint_stores_almost_nothing_and_direct_memory_grows_with_the_steps():
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    direct = [
        neural_ode.backward_memory(neural_ode.NeuralODE(2, 3, 1, method="rk4", step_size=h), x)
        for h in (0.1, 0.05)
    ]
    adjoint = neural_ode.backward_memory(
        neural_ode.NeuralODE(2, 3, 1, method="rk4", step_size=0.05, adjoint=True), x
    )
    assert direct[1] == pytest.approx(2 * direct[0], rel=0.1)
    assert adjoint < direct[1] / 10


def test_fit_reports_solver_failures_instead_of_raising():
    # h' = h^2 from h(0) = 1 blows up at t = 1: an adaptive solver cannot reach T = 2.
    x = torch.ones(4, 1, dtype=torch.float64)
    blow_up = neural_ode.NeuralODE(1, 1, 1, vector_field=lambda t, h: h**2, t_final=2.0)
    record = neural_ode.fit(blow_up, x, x, 5, 0.01, 0)
    assert record.failed and record.failed_at == 0 and "underflow in dt" in record.message
    capped = neural_ode.NeuralODE(
        1, 1, 1, vector_field=lambda t, h: h**2, t_final=2.0, max_num_steps=50
    )
    record = neural_ode.fit(capped, x, x, 5, 0.01, 0)
    assert record.failed and "max_num_steps" in record.message


def test_disk_annulus_labels_follow_the_radii_and_the_seed():
    X, y = neural_ode.disk_annulus(200, 4)
    radius = X.norm(dim=1)
    assert ((radius <= 0.5) == (y < 0)).all() and (radius[y > 0] >= 1.0).all()
    assert (radius <= 1.5).all() and int((y < 0).sum()) == 100
    X2, _ = neural_ode.disk_annulus(200, 4)
    assert torch.equal(X, X2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"t_final": 0.0}, ValueError, "t_final must be > 0"),
        ({"t_final": -1.0}, ValueError, "t_final must be > 0"),
        ({"dim_phase": 1, "train_affine": False}, ValueError, "needs dim_phase >= dim_in"),
        ({"vector_field": neural_ode.MLPField(3)}, ValueError, r"vector_field must map .*\(2, 2\)"),
        ({"vector_field": 3}, TypeError, "vector_field must be a callable"),
        ({"method": "rk45"}, ValueError, "method must be one of"),
        ({"dim_out": 0}, ValueError, "dim_out must be an integer >= 1"),
    ],
)
def test_neural_ode_rejects_bad_input(kwargs, error, match):
    args = {"dim_in": 2, "dim_phase": 2, "dim_out": 1} | kwargs
    with pytest.raises(error, match=match):
        neural_ode.NeuralODE(**args)


def test_neural_ode_helpers_reject_bad_input():
    model = neural_ode.NeuralODE(2, 3, 1)
    with pytest.raises(ValueError, match=r"x must have shape \(n, dim_in\) = \(n, 2\)"):
        model(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="t must start at 0"):
        model.trajectory(torch.zeros(1, 2), [0.5, 1.0])
    with pytest.raises(ValueError, match=r"X must have shape \(n, dim_in\)"):
        neural_ode.fit(model, torch.zeros(5, 3), torch.zeros(5), 1, 0.1, 0)
    with pytest.raises(ValueError, match="same number of samples"):
        neural_ode.fit(model, torch.zeros(5, 2), torch.zeros(4), 1, 0.1, 0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        neural_ode.fit(model, torch.zeros(5, 2), torch.zeros(5), 1, 0.0, 0)
    with pytest.raises(ValueError, match=r"target must map .* \(2, 1\), got \(2, 2\)"):
        neural_ode.shear_embedding(lambda u: u, 2, 1)
    with pytest.raises(TypeError, match="target must be a callable"):
        neural_ode.shear_embedding(None, 1, 1)
    with pytest.raises(ValueError, match="x and y must have the same length"):
        neural_ode.monotone_mse_bound([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="x0 must have 2 dimension"):
        neural_ode.flow_jacobian(linear_field, torch.zeros(2), 1.0)
    with pytest.raises(TypeError, match="f must be a callable"):
        neural_ode.divergence_integral(None, X0, 1.0)
    with pytest.raises(ValueError, match="radii must increase strictly"):
        neural_ode.disk_annulus(10, 0, radii=(1.0, 0.5, 2.0))
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        neural_ode.backward_memory(lambda x: x, X0)
