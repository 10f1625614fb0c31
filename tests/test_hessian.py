"""Hessian-vector products, sharpness and the NTK Gram matrix against dense linear algebra."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from dsnn import hessian as hs


def tiny_network(seed=0, width=4, n=7, d=3):
    """A float64 tanh network, data, the loss closure and the dense Hessian as an oracle."""
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(d, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    params = list(model.parameters())

    def loss_fn():
        return 0.5 * ((model(X) - y) ** 2).mean()

    names = [name for name, _ in model.named_parameters()]

    def loss_of_flat(theta):
        pieces, start = {}, 0
        for name, p in zip(names, params, strict=True):
            pieces[name] = theta[start : start + p.numel()].view_as(p)
            start += p.numel()
        return 0.5 * ((functional_call(model, pieces, (X,)) - y) ** 2).mean()

    theta = torch.cat([p.detach().reshape(-1) for p in params])
    dense = torch.autograd.functional.hessian(loss_of_flat, theta).numpy()
    return model, X, y, params, loss_fn, dense


@pytest.fixture(scope="module")
def net():
    return tiny_network()


def least_squares(seed=1, n=40, d=6):
    """Linear least squares: Hess L = AᵀA/N exactly, positive definite."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) * np.linspace(0.5, 2.0, d)
    z = rng.normal(size=n)
    w = torch.tensor(rng.normal(size=d), requires_grad=True)
    At, zt = torch.from_numpy(A), torch.from_numpy(z)

    def loss_fn():
        return 0.5 * ((At @ w - zt) ** 2).mean()

    return w, loss_fn, A.T @ A / n


def relative_error(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


# ------------------------------------------------------------------------------------------
# Hessian-vector products
# ------------------------------------------------------------------------------------------


def test_hvp_equals_the_dense_hessian_times_v(net):
    _, _, _, params, loss_fn, dense = net
    rng = np.random.default_rng(3)
    for _ in range(3):
        v = rng.normal(size=dense.shape[0])
        hv = hs.hvp(loss_fn, params, torch.from_numpy(v))
        assert hv.shape == (dense.shape[0],)
        assert relative_error(hv.numpy(), dense @ v) < 1e-6


def test_hvp_returns_the_form_it_was_given(net):
    _, _, _, params, loss_fn, dense = net
    v = torch.randn(dense.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pieces = list(v.split([p.numel() for p in params]))
    structured = [piece.view_as(p) for piece, p in zip(pieces, params, strict=True)]
    hv_list = hs.hvp(loss_fn, params, structured)
    assert isinstance(hv_list, list)
    assert [h.shape for h in hv_list] == [p.shape for p in params]
    flat = torch.cat([h.reshape(-1) for h in hv_list])
    assert relative_error(flat.numpy(), dense @ v.numpy()) < 1e-6
    # A single matrix-shaped parameter: v of the same shape gives H v of that shape.
    W = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    hv = hs.hvp(lambda: (W**4).sum() / 12, W, torch.ones(2, 2, dtype=torch.float64))
    np.testing.assert_allclose(hv.numpy(), (W.detach() ** 2).numpy(), rtol=1e-12)  # diag W²


def test_hvp_of_the_product_model_matches_its_closed_form_hessian():
    # L = ½ (x1 x2 y − z)²: Hess = y² [[x2², x1x2], [x1x2, x1²]] + r y [[0, 1], [1, 0]].
    x1, x2, y, z = 1.3, -0.4, 2.0, 0.7
    x = torch.tensor([x1, x2], dtype=torch.float64, requires_grad=True)
    r = x1 * x2 * y - z
    hess = y**2 * np.array([[x2**2, x1 * x2], [x1 * x2, x1**2]]) + r * y * np.array(
        [[0.0, 1.0], [1.0, 0.0]]
    )
    loss_fn = lambda: 0.5 * (x[0] * x[1] * y - z) ** 2  # noqa: E731
    for v in ([1.0, 0.0], [0.0, 1.0], [0.3, -2.0]):
        hv = hs.hvp(loss_fn, x, torch.tensor(v, dtype=torch.float64))
        np.testing.assert_allclose(hv.numpy(), hess @ np.array(v), rtol=1e-12)
    result = hs.sharpness(loss_fn, x, tol=1e-12)
    assert result.eigenvalue == pytest.approx(np.linalg.eigvalsh(hess)[-1], rel=1e-10)


def test_parameters_the_loss_ignores_get_a_zero_block():
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    unused = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    hv = hs.hvp(lambda: (w**3).sum() / 6, [w, unused], torch.ones(5, dtype=torch.float64))
    np.testing.assert_allclose(hv.numpy(), [1.0, 2.0, 0.0, 0.0, 0.0], rtol=1e-14)


def test_hvp_is_zero_where_the_gradient_is_constant():
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    hv = hs.hvp(lambda: 3.0 * w.sum(), w, torch.tensor([1.0, -1.0], dtype=torch.float64))
    np.testing.assert_array_equal(hv.numpy(), [0.0, 0.0])


# ------------------------------------------------------------------------------------------
# Eigenvalues
# ------------------------------------------------------------------------------------------


def test_lanczos_equals_the_dense_spectrum(net):
    _, _, _, params, loss_fn, dense = net
    exact = np.linalg.eigvalsh(dense)[::-1]
    values, vectors = hs.top_eigenvalues(loss_fn, params, k=3, tol=1e-10, return_eigenvectors=True)
    assert values.shape == (3,) and vectors.shape == (dense.shape[0], 3)
    assert np.all(np.diff(values) <= 0)  # descending
    np.testing.assert_allclose(values, exact[:3], rtol=1e-6)
    for j in range(3):
        assert relative_error(dense @ vectors[:, j], values[j] * vectors[:, j]) < 1e-6
    # Default tolerance: relative accuracy 1e-3 is met.
    assert hs.top_eigenvalues(loss_fn, params)[0] == pytest.approx(exact[0], rel=1e-3)


def test_least_squares_sharpness_is_the_top_eigenvalue_of_AtA_over_N():
    w, loss_fn, hess = least_squares()
    exact = np.linalg.eigvalsh(hess)
    assert hs.top_eigenvalues(loss_fn, w, k=2, tol=1e-12) == pytest.approx(
        exact[::-1][:2], rel=1e-10
    )


def test_power_iteration_and_lanczos_agree():
    w, loss_fn, hess = least_squares()
    lam_max = np.linalg.eigvalsh(hess)[-1]
    power = hs.power_iteration(loss_fn, w, n_iter=5000, tol=1e-8, seed=1)
    lanczos = hs.sharpness(loss_fn, w, tol=1e-10, seed=2)
    assert power.converged and lanczos.converged
    assert power.eigenvalue == pytest.approx(lanczos.eigenvalue, rel=1e-8)
    assert lanczos.eigenvalue == pytest.approx(lam_max, rel=1e-10)
    # Same eigenvector up to sign.
    assert abs(power.eigenvector @ lanczos.eigenvector) == pytest.approx(1.0, abs=1e-6)
    assert 1 <= power.n_hvp <= 5000 and lanczos.n_hvp >= 1


def test_power_iteration_finds_the_eigenvalue_of_largest_modulus(net):
    _, _, _, params, loss_fn, dense = net
    exact = np.linalg.eigvalsh(dense)
    dominant = exact[np.argmax(np.abs(exact))]
    result = hs.power_iteration(loss_fn, params, n_iter=20000, tol=1e-9)
    assert result.converged
    assert result.eigenvalue == pytest.approx(dominant, rel=1e-6)


def test_power_iteration_reports_when_it_does_not_settle():
    # Eigenvalues +1 and -1: the iterate flips forever and the residual never shrinks.
    x = torch.tensor([0.3, 0.2], dtype=torch.float64, requires_grad=True)
    result = hs.power_iteration(lambda: 0.5 * (x[0] ** 2 - x[1] ** 2), x, n_iter=50)
    assert not result.converged and result.n_hvp == 50


def test_a_warm_start_gives_the_same_eigenvalue_for_fewer_products(net):
    _, _, _, params, loss_fn, dense = net
    cold = hs.sharpness(loss_fn, params, tol=1e-8)
    warm = hs.sharpness(loss_fn, params, tol=1e-8, v0=cold.eigenvector)
    assert warm.eigenvalue == pytest.approx(np.linalg.eigvalsh(dense)[-1], rel=1e-6)
    assert warm.n_hvp <= cold.n_hvp
    # The same seed gives the same numbers.
    again = hs.sharpness(loss_fn, params, tol=1e-8)
    assert again.eigenvalue == cold.eigenvalue and again.n_hvp == cold.n_hvp


def test_the_solvers_leave_the_blas_thread_pools_as_they_were(net):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    _, _, _, params, loss_fn, _ = net

    def blas_threads():
        return [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]

    before = blas_threads()
    hs.top_eigenvalues(loss_fn, params, k=2)
    assert blas_threads() == before


# ------------------------------------------------------------------------------------------
# Per-sample gradients and the Gram matrix
# ------------------------------------------------------------------------------------------


def test_gram_of_the_product_model_is_y_squared_times_the_squared_norm():
    x1, x2 = 1.5, -0.7
    x = torch.tensor([x1, x2], dtype=torch.float64, requires_grad=True)
    model_fn = lambda Y: x[0] * x[1] * Y  # noqa: E731
    # One data point: G = ‖g‖² = y² (x1² + x2²).
    gram = hs.ntk_gram(model_fn, x, [2.0])
    assert gram.shape == (1, 1)
    assert gram[0, 0] == pytest.approx(4.0 * (x1**2 + x2**2), rel=1e-14)
    # Several points: g_i = y_i (x2, x1), so G_ij = y_i y_j (x1² + x2²).
    ys = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(
        hs.ntk_gram(model_fn, x, ys), np.outer(ys, ys) * (x1**2 + x2**2), rtol=1e-14
    )
    jac = hs.per_sample_gradients(model_fn, x, ys).numpy()
    np.testing.assert_allclose(jac, np.outer(ys, [x2, x1]), rtol=1e-14)


def test_gram_of_a_linear_model_is_X_Xt_plus_one():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5, 3))
    model = torch.nn.Linear(3, 1).double()
    gram = hs.ntk_gram(model, list(model.parameters()), X)
    np.testing.assert_allclose(gram, X @ X.T + 1.0, rtol=1e-12)


def test_per_sample_gradients_equal_the_autograd_jacobian(net):
    model, X, _, params, _, _ = net
    names = [name for name, _ in model.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in params])

    def outputs(th):
        pieces, start = {}, 0
        for name, p in zip(names, params, strict=True):
            pieces[name] = th[start : start + p.numel()].view_as(p)
            start += p.numel()
        return functional_call(model, pieces, (X,)).reshape(-1)

    jac = torch.autograd.functional.jacobian(outputs, theta).numpy()
    np.testing.assert_allclose(hs.per_sample_gradients(model, params, X).numpy(), jac, atol=1e-13)
    np.testing.assert_allclose(hs.ntk_gram(model, params, X), jac @ jac.T, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_k_must_be_smaller_than_the_dimension():
    w, loss_fn, _ = least_squares(d=4)
    with pytest.raises(ValueError, match=r"k must be smaller than the number of parameters D=4"):
        hs.top_eigenvalues(loss_fn, w, k=4)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        hs.top_eigenvalues(loss_fn, w, k=0)
    with pytest.raises(ValueError, match="ncv must be <= the number of parameters 4"):
        hs.top_eigenvalues(loss_fn, w, k=1, ncv=5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda w, f: hs.hvp(f, w, torch.ones(3)), ValueError, r"v must be a flat vector"),
        (lambda w, f: hs.hvp(f, w, [1.0, math.nan, 0, 0, 0, 0]), ValueError, "v must contain"),
        (lambda w, f: hs.hvp(f, [w], [torch.ones(2)]), ValueError, r"v\[0\] must have shape"),
        (lambda w, f: hs.hvp(f, [w], [w, w]), ValueError, "one tensor per parameter"),
        (lambda w, f: hs.hvp(3, w, torch.ones(6)), TypeError, "loss_fn must be callable"),
        (lambda w, f: hs.hvp(lambda: w * 2, w, torch.ones(6)), ValueError, "scalar tensor"),
        (lambda w, f: hs.hvp(f, w.detach(), torch.ones(6)), ValueError, "requires_grad=True"),
        (lambda w, f: hs.hvp(f, [], torch.ones(6)), ValueError, "at least one tensor"),
        (lambda w, f: hs.hvp(f, torch.nn.Linear(2, 1), [0.0]), TypeError, "pass list"),
        (lambda w, f: hs.top_eigenvalues(f, w, tol=-1.0), ValueError, "tol must be >= 0"),
        (lambda w, f: hs.top_eigenvalues(f, w, v0=torch.zeros(6)), ValueError, "zero vector"),
        (lambda w, f: hs.top_eigenvalues(f, w, v0=torch.ones(5)), ValueError, "v0 must be a"),
        (lambda w, f: hs.power_iteration(f, w, n_iter=0), ValueError, "n_iter must be"),
        (lambda w, f: hs.power_iteration(f, w, tol=0.0), ValueError, "tol must be > 0"),
        (lambda w, f: hs.sharpness(f, w, seed=-1), ValueError, "seed must be an integer >= 0"),
    ],
)
def test_bad_input_is_named(call, error, match):
    w, loss_fn, _ = least_squares()
    with pytest.raises(error, match=match):
        call(w, loss_fn)


def test_loss_must_be_finite_and_built_from_params():
    w, _, _ = least_squares()
    with pytest.raises(ValueError, match=r"loss_fn\(\) must be finite"):
        hs.sharpness(lambda: (w * math.inf).sum(), w)
    with pytest.raises(ValueError, match="without an autograd graph"):
        hs.sharpness(lambda: torch.tensor(1.0), w)


def test_model_fn_must_return_one_scalar_per_sample():
    model = torch.nn.Linear(3, 2).double()
    with pytest.raises(ValueError, match=r"model_fn\(X\) must return one scalar per sample"):
        hs.ntk_gram(model, list(model.parameters()), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="X must contain only finite"):
        hs.ntk_gram(model, list(model.parameters()), np.full((4, 3), np.nan))
    with pytest.raises(TypeError, match="model_fn must be callable"):
        hs.per_sample_gradients(None, list(model.parameters()), np.zeros((4, 3)))


def test_params_must_share_dtype_and_device():
    a = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float32, requires_grad=True)
    with pytest.raises(ValueError, match="params must share one dtype and device"):
        hs.hvp(lambda: (a**2).sum() + (b**2).sum(), [a, b], torch.ones(4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_solvers_work_on_cuda_tensors_and_match_the_cpu():
    model, X, y, _, _, dense = tiny_network()
    model_gpu = model.to("cuda")
    Xg, yg = X.cuda(), y.cuda()
    params_gpu = list(model_gpu.parameters())

    def loss_gpu():
        return 0.5 * ((model_gpu(Xg) - yg) ** 2).mean()

    values = hs.top_eigenvalues(loss_gpu, params_gpu, k=2, tol=1e-10)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(dense)[::-1][:2], rtol=1e-6)
    v = torch.ones(dense.shape[0], dtype=torch.float64)
    hv = hs.hvp(loss_gpu, params_gpu, v.cuda())
    assert hv.is_cuda
    assert relative_error(hv.cpu().numpy(), dense @ v.numpy()) < 1e-6
    power = hs.power_iteration(loss_gpu, params_gpu, n_iter=20000, tol=1e-9)
    exact = np.linalg.eigvalsh(dense)
    assert power.eigenvalue == pytest.approx(exact[np.argmax(np.abs(exact))], rel=1e-6)
    np.testing.assert_allclose(
        hs.ntk_gram(model_gpu, params_gpu, Xg), hs.ntk_gram(model_gpu, params_gpu, X), rtol=1e-12
    )
