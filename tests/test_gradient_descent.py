"""GD on quadratics: the threshold 2/lambda_max, the linear rate, divergence as a result."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dsnn import gradient_descent as gdm
from dsnn import hessian as hsm


def rotated_hessian(eigenvalues, angle=0.7):
    c, s = math.cos(angle), math.sin(angle)
    Q = np.array([[c, -s], [s, c]])
    return Q @ np.diag(eigenvalues) @ Q.T


H = rotated_hessian([1.0, 10.0])
X0 = [1.0, 1.0]


def test_stability_threshold_is_two_over_the_largest_eigenvalue():
    assert gdm.stability_threshold(H) == pytest.approx(0.2, rel=1e-12)
    assert gdm.stability_threshold(np.diag([3.0, 0.5, 0.0])) == pytest.approx(2 / 3)
    assert gdm.stability_threshold(-np.eye(2)) == math.inf


@pytest.mark.parametrize("factor", [0.9, 0.99])
def test_gd_converges_just_below_the_threshold(factor):
    eta = factor * gdm.stability_threshold(H)
    run = gdm.gd(gdm.quadratic_loss(H), X0, eta, n_steps=3000, record_every=100)
    assert not run.diverged
    assert run.final_loss < 1e-10


@pytest.mark.parametrize("factor", [1.01, 1.1, 2.0])
def test_gd_diverges_just_above_the_threshold(factor):
    eta = factor * gdm.stability_threshold(H)
    run = gdm.gd(gdm.quadratic_loss(H), X0, eta, n_steps=20000)
    assert run.diverged
    assert run.diverged_at is not None and run.diverged_at <= 20000
    assert torch.isfinite(run.iterates).all() and torch.isfinite(run.losses).all()


def test_at_the_threshold_the_stiff_mode_neither_grows_nor_decays():
    # eta = 2/lambda_max: the stiff component flips sign with modulus 1, the other one decays.
    eta = gdm.stability_threshold(np.diag([1.0, 10.0]))
    run = gdm.gd(gdm.quadratic_loss(np.diag([1.0, 10.0])), [1.0, 1.0], eta, n_steps=101)
    assert run.x_final[1].item() == pytest.approx(-1.0, abs=1e-12)
    assert abs(run.x_final[0].item()) < 1e-8


def test_gd_on_a_quadratic_is_the_linear_map_one_minus_eta_h():
    eta, n = 0.13, 17
    run = gdm.gd(gdm.quadratic_loss(H), X0, eta, n_steps=n)
    expected = np.linalg.matrix_power(np.eye(2) - eta * H, n) @ np.array(X0)
    np.testing.assert_allclose(run.x_final.numpy(), expected, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    lam_min=st.floats(0.1, 1.0),
    lam_max=st.floats(2.0, 20.0),
    factor=st.floats(0.05, 0.95),
)
def test_linear_rate_is_the_spectral_radius(lam_min, lam_max, factor):
    # ||x_n|| ~ rho^n with rho = max(|1 - eta lam_min|, |1 - eta lam_max|) (generic start).
    hess = rotated_hessian([lam_min, lam_max], angle=0.3)
    eta = factor * 2 / lam_max
    rho = max(abs(1 - eta * lam_min), abs(1 - eta * lam_max))
    n = 40
    run = gdm.gd(gdm.quadratic_loss(hess), X0, eta, n_steps=n, record_every=n)
    x_n = run.x_final.numpy()
    # Along the slowest eigenvector the contraction is exactly rho per step.
    w, V = np.linalg.eigh(hess)
    k = np.argmax(np.abs(1 - eta * w))
    ratio = abs(V[:, k] @ x_n) / abs(V[:, k] @ np.array(X0))
    assert ratio == pytest.approx(rho**n, rel=1e-8, abs=1e-300)


def test_overdetermined_least_squares_converges_to_the_normal_equations():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = rng.normal(size=30)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def loss(w):
        return 0.5 * ((Xt @ w - yt) ** 2).mean()

    hess = X.T @ X / len(y)
    lam = np.linalg.eigvalsh(hess)
    eta = 2 / (lam[0] + lam[-1])  # optimal constant step
    run = gdm.gd(loss, np.zeros(3), eta, n_steps=400)
    w_star = np.linalg.solve(X.T @ X, X.T @ y)
    np.testing.assert_allclose(run.x_final.numpy(), w_star, atol=1e-9)


def test_recording_keeps_the_last_step():
    run = gdm.gd(gdm.quadratic_loss(H), X0, 0.1, n_steps=10, record_every=4)
    assert run.steps == [0, 4, 8, 10]
    assert run.iterates.shape == (4, 2) and run.losses.shape == (4,)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eta": 0.0}, ValueError, "eta must be > 0"),
        ({"eta": -0.1}, ValueError, "eta must be > 0"),
        ({"eta": float("nan")}, ValueError, "eta must be finite"),
        ({"x0": [1.0, float("nan")]}, ValueError, "x0 must contain only finite"),
        ({"x0": [[1.0, 2.0]]}, ValueError, "x0 must have 1 dimension"),
        ({"n_steps": -1}, ValueError, "n_steps must be an integer >= 0"),
        ({"record_every": 0}, ValueError, "record_every must be an integer >= 1"),
        ({"loss_fn": 3}, TypeError, "loss_fn must be callable"),
    ],
)
def test_gd_rejects_bad_input(kwargs, error, match):
    args = {"loss_fn": gdm.quadratic_loss(H), "x0": X0, "eta": 0.1, "n_steps": 5} | kwargs
    with pytest.raises(error, match=match):
        gdm.gd(**args)


def test_gd_rejects_a_loss_that_is_not_finite_at_the_start():
    with pytest.raises(ValueError, match=r"loss_fn\(x0\) must be finite"):
        gdm.gd(lambda x: torch.log(x[0] - 2.0), [1.0], 0.1, 3)


def test_hessian_checks():
    with pytest.raises(ValueError, match="hessian must be symmetric"):
        gdm.stability_threshold([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="hessian must be a square matrix"):
        gdm.stability_threshold(np.ones((2, 3)))
    with pytest.raises(ValueError, match="x must have shape"):
        gdm.quadratic_loss(H)(torch.zeros(3, dtype=torch.float64))


# ------------------------------------------------------------------------------------------
# Stability of interpolating minima: mu from the NTK Gram matrix (Chemnitz & Engel, eq. 2.18)
# ------------------------------------------------------------------------------------------


def restricted_log_radius(hess, normal_basis_rows, eta):
    """log spectral radius of (1 − eta H) restricted to span of the rows, in parameter space."""
    Q, _ = np.linalg.qr(np.asarray(normal_basis_rows).T)  # orthonormal basis of the normal space
    jacobian = np.eye(hess.shape[0]) - eta * hess
    # At a minimum the normal space is invariant: nothing leaks into the tangent space.
    leak = (np.eye(hess.shape[0]) - Q @ Q.T) @ jacobian @ Q
    assert np.linalg.norm(leak) < 1e-8 * max(1.0, np.linalg.norm(jacobian))
    return math.log(max(abs(np.linalg.eigvals(Q.T @ jacobian @ Q))))


def test_gd_exponent_closed_forms():
    # N = 1: mu = log|1 − eta ‖g‖²|.
    assert gdm.gd_exponent([[4.0]], 0.3) == pytest.approx(math.log(0.2), rel=1e-12)
    assert gdm.gd_exponent([[4.0]], 0.75) == pytest.approx(math.log(2.0), rel=1e-12)
    assert gdm.gd_exponent([[4.0]], 0.25) == -math.inf  # 1 − eta ‖g‖² = 0
    # Orthogonal gradients: diagonal G, mu = max_i log|1 − eta G_ii / N|.
    diag = np.array([1.0, 3.0, 8.0])
    eta = 0.5
    expected = max(math.log(abs(1 - eta * g / 3)) for g in diag)
    assert gdm.gd_exponent(np.diag(diag), eta) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("a", "eta"), [(1.2, 0.5), (2.0, 0.5), (0.3, 0.1), (1.0, 0.9)])
def test_gd_exponent_of_the_product_model_equals_the_parameter_space_radius(a, eta):
    # F(x, y) = x1 x2 y, data (y, z) = (1.5, 2): minima on the hyperbola x1 x2 = z / y.
    y, z = 1.5, 2.0
    x_star = torch.tensor([a, z / (y * a)], dtype=torch.float64)

    def loss(x):
        return 0.5 * (x[0] * x[1] * y - z) ** 2

    hess = torch.autograd.functional.hessian(loss, x_star).numpy()
    g = y * np.array([x_star[1].item(), x_star[0].item()])  # ∇_x F by hand
    expected = restricted_log_radius(hess, [g], eta)
    x = x_star.clone().requires_grad_(True)
    gram = hsm.ntk_gram(lambda Y: x[0] * x[1] * Y, x, [y])
    assert gram[0, 0] == pytest.approx(y**2 * (a**2 + (z / (y * a)) ** 2), rel=1e-12)
    assert gdm.gd_exponent(gram, eta) == pytest.approx(expected, rel=1e-10)


def test_gd_exponent_of_a_linear_model_equals_the_parameter_space_radius():
    # F(x, y) = x · phi(y), N = 3 < D = 5: Hess L = ΦᵀΦ / N everywhere, normal space = rows of Φ.
    rng = np.random.default_rng(7)
    Phi = rng.normal(size=(3, 5))
    hess = Phi.T @ Phi / 3
    model = torch.nn.Linear(5, 1, bias=False).double()
    gram = hsm.ntk_gram(model, list(model.parameters()), Phi)
    for eta in (0.1, 0.5, 1.0, 2.0):
        expected = restricted_log_radius(hess, Phi, eta)
        assert gdm.gd_exponent(gram, eta) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def tanh_net(theta, ys):
    """F(theta, y) = sum_k a_k tanh(w_k y + b_k), theta = (w, b, a) with 3 hidden units."""
    w, b, a = theta[:3], theta[3:6], theta[6:]
    return torch.tanh(ys[:, None] * w + b) @ a


def test_gd_exponent_of_a_tanh_network_at_an_interpolating_minimum():
    # Reach the solution manifold by Gauss–Newton (minimum-norm steps), independent of dsnn.
    ys = torch.tensor([-1.0, 0.2, 1.1], dtype=torch.float64)
    zs = torch.tensor([0.4, -0.3, 0.5], dtype=torch.float64)
    theta = torch.tensor([0.8, -0.5, 1.2, 0.1, 0.3, -0.2, 0.7, -0.9, 0.5], dtype=torch.float64)
    for _ in range(30):
        residual = tanh_net(theta, ys) - zs
        jac = torch.autograd.functional.jacobian(lambda t: tanh_net(t, ys), theta)
        theta = theta - torch.linalg.pinv(jac) @ residual
    assert float((tanh_net(theta, ys) - zs).abs().max()) < 1e-13

    def loss(t):
        return 0.5 * ((tanh_net(t, ys) - zs) ** 2).mean()

    hess = torch.autograd.functional.hessian(loss, theta).numpy()
    jac = torch.autograd.functional.jacobian(lambda t: tanh_net(t, ys), theta).numpy()
    x = theta.clone().requires_grad_(True)
    gram = hsm.ntk_gram(lambda Y: tanh_net(x, Y), x, ys)
    for eta in (0.2, 1.0, 3.0):
        expected = restricted_log_radius(hess, jac, eta)
        assert gdm.gd_exponent(gram, eta) == pytest.approx(expected, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize(("a", "stable"), [(1.2, True), (0.8, True), (2.0, False), (0.45, False)])
def test_gd_stays_at_minima_with_negative_mu_and_leaves_those_with_positive_mu(a, stable):
    # Theorem A on F = x1 x2 y with one point (y, z) = (1, 1), eta = 0.5: the minimum (a, 1/a)
    # has mu = log|1 − eta (a² + 1/a²)|, negative iff a² + 1/a² < 4.
    eta = 0.5
    mu = gdm.gd_exponent([[a**2 + a**-2]], eta)
    assert (mu < 0) == stable
    model = gdm.ProductModel(a + 1e-6, 1 / a - 2e-6)
    record = gdm.train_full_batch(model, [1.0], [1.0], eta, 400, sharpness_every=None)
    assert not record.diverged
    distance = float(torch.linalg.vector_norm(model.x.detach() - torch.tensor([a, 1 / a])))
    if stable:
        assert distance < 1e-3
    else:
        assert distance > 1e-2
        # It left for a flatter minimum, one that GD can stay at.
        x1, x2 = model.x.detach().tolist()
        assert x1 * x2 == pytest.approx(1.0, abs=1e-6)
        assert x1**2 + x2**2 < 2 / eta


# ------------------------------------------------------------------------------------------
# Full-batch training and gradient flow
# ------------------------------------------------------------------------------------------


def linear_problem(seed=0, n=30, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([0.5, 1.0, 1.5, 2.0])[:d]
    z = rng.normal(size=n)
    model = torch.nn.Linear(d, 1, bias=False).double()
    w0 = rng.normal(size=d)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w0)[None, :])
    return model, X, z, w0


def test_train_full_batch_is_plain_gd_on_half_the_mse():
    model, X, z, w0 = linear_problem()
    n, eta, n_steps = len(z), 0.05, 60
    record = gdm.train_full_batch(model, X, z[:, None], eta, n_steps, sharpness_every=7)
    # The hand-written loop: w ← w − eta Xᵀ(Xw − z)/N, L = ½ mean (Xw − z)².
    w, losses = w0.copy(), []
    for _ in range(n_steps):
        r = X @ w - z
        losses.append(0.5 * np.mean(r**2))
        w = w - eta * X.T @ r / n
    losses.append(0.5 * np.mean((X @ w - z) ** 2))
    np.testing.assert_allclose(record.loss, losses, rtol=1e-12)
    np.testing.assert_allclose(model.weight.detach().numpy()[0], w, rtol=1e-12)
    np.testing.assert_array_equal(record.step, np.arange(n_steps + 1))
    np.testing.assert_allclose(record.time, eta * np.arange(n_steps + 1))
    np.testing.assert_array_equal(record.sharpness_step, np.arange(0, n_steps + 1, 7))
    # Sharpness of linear least squares: the top eigenvalue of XᵀX / N at every step.
    lam_max = np.linalg.eigvalsh(X.T @ X / n)[-1]
    np.testing.assert_allclose(record.sharpness, lam_max, rtol=1e-3)
    assert (record.n_hvp >= 1).all() and record.mu.size == 0
    assert not record.diverged and record.complete
    assert record.threshold == pytest.approx(2 / eta)


def test_sharpness_of_least_squares_with_a_bias_is_exact_at_tight_tolerance():
    model, X, z, _ = linear_problem(seed=3)
    model = torch.nn.Linear(X.shape[1], 1).double()
    A = np.hstack([X, np.ones((len(z), 1))])
    record = gdm.train_full_batch(model, X, z, 0.01, 3, sharpness_every=1, sharpness_tol=1e-12)
    lam_max = np.linalg.eigvalsh(A.T @ A / len(z))[-1]
    np.testing.assert_allclose(record.sharpness, lam_max, rtol=1e-10)
    assert record.sharpness.shape == (4,) and record.loss.shape == (4,)


def test_a_one_parameter_model_has_the_hessian_entry_as_sharpness():
    X = np.array([[1.0], [2.0], [-0.5]])
    model = torch.nn.Linear(1, 1, bias=False).double()
    record = gdm.train_full_batch(model, X, np.zeros(3), 0.1, 2, sharpness_every=1)
    np.testing.assert_allclose(record.sharpness, np.mean(X**2), rtol=1e-12)


def test_gd_above_two_over_lambda_max_diverges_and_says_so():
    model, X, z, _ = linear_problem()
    lam_max = np.linalg.eigvalsh(X.T @ X / len(z))[-1]
    record = gdm.train_full_batch(model, X, z, 1.2 * 2 / lam_max, 5000, sharpness_every=50)
    assert record.diverged and not record.complete
    assert record.diverged_at is not None and record.diverged_at < 5000
    assert record.step[-1] == record.diverged_at - 1
    for values in (record.loss, record.sharpness, record.time):
        assert np.isfinite(values).all()
    np.testing.assert_allclose(record.sharpness, lam_max, rtol=1e-3)


def test_tracked_mu_is_log_one_minus_eta_sharpness_at_a_minimum():
    # One data point on the product model: at a minimum Hess L = g gᵀ, so mu = log|1 − eta S|.
    eta = 0.3
    model = gdm.ProductModel(1.5, 1 / 1.5)
    record = gdm.train_full_batch(model, [1.0], [1.0], eta, 20, sharpness_every=5, track_mu=True)
    norm_g2 = 1.5**2 + 1.5**-2
    np.testing.assert_allclose(record.sharpness, norm_g2, rtol=1e-10)
    np.testing.assert_allclose(record.mu, math.log(abs(1 - eta * norm_g2)), rtol=1e-10)
    assert record.mu.shape == record.sharpness_step.shape


def test_gradient_flow_of_least_squares_matches_the_matrix_exponential():
    model, X, z, w0 = linear_problem(d=3)
    n = len(z)
    hess = X.T @ X / n
    w_star = np.linalg.solve(X.T @ X, X.T @ z)
    t_final = 2.0
    record = gdm.train_gradient_flow(model, X, z, t_final, dt=0.02, sharpness_every=20)
    lam, V = np.linalg.eigh(hess)
    expected = w_star + V @ (np.exp(-t_final * lam) * (V.T @ (w0 - w_star)))
    np.testing.assert_allclose(model.weight.detach().numpy()[0], expected, rtol=1e-8)
    assert record.time[-1] == pytest.approx(t_final, abs=1e-12) and record.complete
    np.testing.assert_allclose(record.sharpness, lam[-1], rtol=1e-3)
    assert math.isnan(record.eta) and record.mu.size == 0


def test_gradient_flow_conserves_the_balance_and_ignores_two_over_eta():
    # Under x' = −∇L for F = x1 x2 y, x1² − x2² is conserved; the flow ends on the hyperbola
    # x1 x2 = c where x1² + x2² = sqrt(d² + 4c²) — sharper than 2/eta, where GD cannot end.
    x1, x2, eta = 2.5, 0.2, 0.4
    flow_model = gdm.ProductModel(x1, x2)
    flow = gdm.train_gradient_flow(flow_model, [1.0], [1.0], 30.0, dt=0.05, sharpness_every=5)
    a, b = flow_model.x.detach().tolist()
    d = x1**2 - x2**2
    assert a**2 - b**2 == pytest.approx(d, rel=2e-6)
    assert a * b == pytest.approx(1.0, abs=1e-8)
    assert flow.sharpness[-1] == pytest.approx(math.sqrt(d**2 + 4), rel=2e-6)
    gd_model = gdm.ProductModel(x1, x2)
    gd = gdm.train_full_batch(gd_model, [1.0], [1.0], eta, 2000, sharpness_every=100)
    assert not gd.diverged and gd.loss[-1] < 1e-12
    assert gd.sharpness[-1] < 2 / eta < flow.sharpness[-1]


def test_gradient_flow_reports_an_unfinished_run():
    model, X, z, _ = linear_problem()
    record = gdm.train_gradient_flow(model, X, z, 10.0, dt=0.01, max_steps=5)
    assert not record.complete and not record.diverged
    assert record.step[-1] == 5 and record.time[-1] < 10.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eta": 0.0}, ValueError, "eta must be > 0"),
        ({"eta": -1.0}, ValueError, "eta must be > 0"),
        ({"eta": float("nan")}, ValueError, "eta must be finite"),
        ({"n_steps": -1}, ValueError, "n_steps must be an integer >= 0"),
        ({"sharpness_every": 0}, ValueError, "sharpness_every must be an integer >= 1"),
        ({"X": np.full((30, 4), np.nan)}, ValueError, "X must contain only finite"),
        ({"y": np.zeros(29)}, ValueError, "y must have one target per sample"),
        ({"y": np.zeros((30, 2))}, ValueError, r"y must have the shape of the model output"),
        ({"model": "linear"}, TypeError, "model must be a torch.nn.Module"),
        ({"sharpness_tol": -1e-3}, ValueError, "sharpness_tol must be >= 0"),
        ({"track_mu": True, "sharpness_every": None}, ValueError, "track_mu=True needs"),
        ({"device": "tpu"}, ValueError, "device must be None, 'cpu' or 'cuda'"),
    ],
)
def test_train_full_batch_rejects_bad_input(kwargs, error, match):
    model, X, z, _ = linear_problem()
    args = {"model": model, "X": X, "y": z, "eta": 0.1, "n_steps": 3} | kwargs
    with pytest.raises(error, match=match):
        gdm.train_full_batch(**args)


def test_track_mu_needs_scalar_outputs_and_a_finite_start():
    model = torch.nn.Linear(3, 2).double()
    with pytest.raises(ValueError, match="track_mu=True needs one scalar target per sample"):
        gdm.train_full_batch(model, np.zeros((4, 3)), np.zeros((4, 2)), 0.1, 2, track_mu=True)
    with pytest.raises(ValueError, match="initial loss"):
        gdm.train_full_batch(
            gdm.ProductModel(1.0, 1.0), [1.0], [1e20], 0.1, 2, divergence_threshold=1e12
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t_final": 0.0}, "t_final must be > 0"),
        ({"dt": -0.1}, "dt must be > 0"),
        ({"stability_factor": 0.0}, "stability_factor must be > 0"),
        ({"max_steps": 0}, "max_steps must be an integer >= 1"),
    ],
)
def test_train_gradient_flow_rejects_bad_input(kwargs, match):
    model, X, z, _ = linear_problem()
    with pytest.raises(ValueError, match=match):
        gdm.train_gradient_flow(**({"model": model, "X": X, "y": z, "t_final": 1.0} | kwargs))


def test_gd_exponent_and_product_model_reject_bad_input():
    with pytest.raises(ValueError, match="gram must be positive semi-definite"):
        gdm.gd_exponent([[1.0, 2.0], [2.0, 1.0]], 0.1)
    with pytest.raises(ValueError, match="gram must be symmetric"):
        gdm.gd_exponent([[1.0, 2.0], [0.0, 1.0]], 0.1)
    with pytest.raises(ValueError, match="gram must have 2 dimension"):
        gdm.gd_exponent([1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="eta must be > 0"):
        gdm.gd_exponent([[1.0]], 0.0)
    with pytest.raises(ValueError, match="x1 must be finite"):
        gdm.ProductModel(float("nan"), 1.0)


DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu", "cpu")


def test_train_full_batch_with_a_device_argument_matches_the_default():
    # On a machine with CUDA this compares a CUDA run with a CPU run.
    runs = []
    for device in DEVICES:
        model, X, z, _ = linear_problem()
        runs.append(gdm.train_full_batch(model, X, z, 0.05, 30, 10, track_mu=True, device=device))
    np.testing.assert_allclose(runs[1].loss, runs[0].loss, rtol=1e-10)
    np.testing.assert_allclose(runs[1].sharpness, runs[0].sharpness, rtol=1e-3)
    np.testing.assert_allclose(runs[1].mu, runs[0].mu, rtol=1e-8, atol=1e-12)


# ---- batched GD, the product model's loss, mu on the range of a singular Gram matrix ----


def test_gd_batch_equals_separate_runs_with_their_own_learning_rates():
    loss_one = gdm.quadratic_loss(H)
    Ht = torch.from_numpy(H)

    def loss_batch(x):
        return 0.5 * ((x @ Ht) * x).sum(dim=1)

    x0 = np.array([[1.0, 1.0], [-0.5, 2.0], [0.3, -0.1]])
    etas = np.array([0.05, 0.15, 0.19])
    batch = gdm.gd_batch(loss_batch, x0, etas, n_steps=30)
    for b in range(3):
        single = gdm.gd(loss_one, x0[b], etas[b], n_steps=30)
        np.testing.assert_allclose(batch.x_final[b].numpy(), single.x_final.numpy(), rtol=1e-12)
    assert not batch.diverged.any() and (batch.diverged_at == -1).all()


def test_gd_batch_flags_exactly_the_runs_above_two_over_lambda_max():
    Ht = torch.from_numpy(H)

    def loss_batch(x):
        return 0.5 * ((x @ Ht) * x).sum(dim=1)

    etas = np.array([0.9, 0.99, 1.01, 1.5]) * gdm.stability_threshold(H)
    result = gdm.gd_batch(loss_batch, np.ones((4, 2)), etas, n_steps=5000)
    assert result.diverged.tolist() == [False, False, True, True]
    assert (result.diverged_at[2:] > 0).all()
    assert torch.isfinite(result.x_final).all() and torch.isfinite(result.loss_final).all()
    assert (result.loss_final[:2] < 1e-12).all()


def test_product_loss_vanishes_exactly_on_the_hyperbola():
    y = np.array([1.0, 2.0])
    loss = gdm.product_loss(y, 1.5 * y)
    u = torch.linspace(-2, 2, 9, dtype=torch.float64)
    on_m = torch.stack([1.5**0.5 * torch.exp(u), 1.5**0.5 * torch.exp(-u)], dim=1)
    assert torch.allclose(loss(on_m), torch.zeros(9, dtype=torch.float64), atol=1e-28)
    off = torch.tensor([[1.0, 1.0]], dtype=torch.float64)  # x1 x2 = 1: residuals -0.5 y_i
    assert loss(off).item() == pytest.approx(0.5 * np.mean((0.5 * y) ** 2))
    with pytest.raises(ValueError, match="x must have shape"):
        loss(torch.ones(3, dtype=torch.float64))


def test_mu_on_the_range_of_a_rank_one_gram_matrix_is_the_normal_space_exponent():
    # F = x1 x2 y with data y = (1, 2), z = c y: g_i = y_i (x2, x1) are parallel, G has rank 1.
    # The normal space is spanned by (x2, x1); GD's Jacobian there is 1 - eta mean(y^2)|x|^2.
    y = np.array([1.0, 2.0])
    x = np.array([2.0, 0.25])
    gram = np.outer(y, y) * (x @ x)
    eta = 0.3
    expected = np.log(abs(1 - eta * np.mean(y**2) * (x @ x)))
    assert gdm.gd_exponent(gram, eta, restrict_to_range=True) == pytest.approx(expected)
    # Without the restriction eq. 2.18 sees the zero eigenvalue: ||.|| >= 1, mu >= 0.
    assert gdm.gd_exponent(gram, eta) == pytest.approx(max(expected, 0.0))
    # For a non-singular Gram matrix the option changes nothing.
    full = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert gdm.gd_exponent(full, 0.4, restrict_to_range=True) == gdm.gd_exponent(full, 0.4)
    with pytest.raises(ValueError, match="gram is zero"):
        gdm.gd_exponent(np.zeros((2, 2)), 0.1, restrict_to_range=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eta": [0.1, -0.1]}, "eta must be > 0 for every run"),
        ({"eta": [0.1, 0.1, 0.1]}, "eta must have one entry per run"),
        ({"x0": np.ones(2)}, "x0 must have 2 dimension"),
        ({"x0": np.array([[1.0, np.nan], [0.0, 0.0]])}, "x0 must contain only finite"),
        ({"n_steps": -2}, "n_steps must be an integer >= 0"),
    ],
)
def test_gd_batch_rejects_bad_input(kwargs, match):
    args = {
        "loss_fn": gdm.product_loss([1.0], [1.0]),
        "x0": np.ones((2, 2)),
        "eta": 0.1,
        "n_steps": 3,
    } | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        gdm.gd_batch(**args)


def test_one_gd_step_shrinks_the_imbalance_of_the_product_model_by_one_minus_eta_r_squared():
    # Balancing identity: x1'^2 - x2'^2 = (1 - eta^2 r^2)(x1^2 - x2^2), r = mean(y^2)(x1 x2 - c).
    sp = pytest.importorskip("sympy")
    x1, x2, eta, r = sp.symbols("x1 x2 eta r", real=True)
    step = ((x1 - eta * r * x2) ** 2 - (x2 - eta * r * x1) ** 2) - (1 - eta**2 * r**2) * (
        x1**2 - x2**2
    )
    assert sp.expand(step) == 0
    # ... and the package's GD step obeys it numerically.
    y = np.array([1.0, 2.0])
    x0 = np.array([[1.7, -0.4]])
    eta_v = 0.07
    out = gdm.gd_batch(gdm.product_loss(y, 0.5 * y), x0, eta_v, n_steps=1).x_final.numpy()[0]
    r_v = np.mean(y**2) * (x0[0, 0] * x0[0, 1] - 0.5)
    expected = (1 - eta_v**2 * r_v**2) * (x0[0, 0] ** 2 - x0[0, 1] ** 2)
    assert out[0] ** 2 - out[1] ** 2 == pytest.approx(expected, rel=1e-12)


def test_ntk_sharpness_equals_the_hessian_sharpness_for_least_squares():
    # For a linear model the Hessian is XᵀX/N, whose non-zero spectrum is that of the Gram
    # matrix XXᵀ divided by N: both sharpness measurements must give lambda_max(XᵀX)/N.
    model, X, z, _ = linear_problem(d=4)
    record = gdm.train_full_batch(
        model, X, z[:, None], 0.05, 10, sharpness_every=5, track_mu=True, sharpness_tol=1e-10
    )
    expected = np.linalg.eigvalsh(X.T @ X)[-1] / len(z)
    np.testing.assert_allclose(record.ntk_sharpness, expected, rtol=1e-10)
    np.testing.assert_allclose(record.sharpness, expected, rtol=1e-8)
    # mu also sees the N − 4 zero eigenvalues of the Gram matrix: |1 − 0| = 1, so mu >= 0.
    assert (record.mu >= 0).all() and record.ntk_sharpness.shape == record.mu.shape
