"""GD on quadratics: the threshold 2/lambda_max, the linear rate, divergence as a result."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dsnn import gradient_descent as gdm


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
