"""Networks and data sets: shapes, reproducibility, provenance."""

import pytest
import torch

from dsnn import datasets, models


def test_mlp_has_the_requested_architecture_and_parameter_count():
    net = models.mlp([64, 32, 32, 1])
    # (64*32 + 32) + (32*32 + 32) + (32*1 + 1)
    assert models.n_parameters(net) == 2080 + 1056 + 33
    x = torch.zeros(5, 64, dtype=torch.float64)
    assert net(x).shape == (5,)
    assert models.mlp([3, 4, 2])(torch.zeros(7, 3, dtype=torch.float64)).shape == (7, 2)


def test_mlp_is_reproducible_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b, c = models.mlp([4, 8, 1], seed=3), models.mlp([4, 8, 1], seed=3), models.mlp([4, 8, 1])
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_mlp_rejects_bad_input():
    with pytest.raises(ValueError, match="activation must be one of"):
        models.mlp([2, 1], activation="sigmoidish")
    with pytest.raises(ValueError, match="at least an input and an output"):
        models.mlp([3])
    with pytest.raises(ValueError, match=r"sizes\[1\] must be an integer >= 1"):
        models.mlp([3, 0, 1])


def test_digits_parity_targets_and_scaling():
    X, y = datasets.digits_parity(200)
    assert X.shape == (200, 64) and y.shape == (200,)
    assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0
    assert set(y.unique().tolist()) == {-1.0, 1.0}
    # About half the digits 0-9 are even.
    assert 0.4 < float((y > 0).double().mean()) < 0.6
    with pytest.raises(ValueError, match="n_samples must be at most 1797"):
        datasets.digits_parity(5000)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the message on a machine without CUDA")
def test_device_argument_is_checked():
    net = models.mlp([3, 4, 1], device="cpu")
    assert next(net.parameters()).device.type == "cpu"
    X, _ = datasets.digits_parity(5, device="cpu")
    assert X.device.type == "cpu"
    with pytest.raises(ValueError, match="asks for CUDA"):
        models.mlp([3, 4, 1], device="cuda")
    with pytest.raises(ValueError, match="asks for CUDA"):
        datasets.digits_parity(5, device="cuda")
