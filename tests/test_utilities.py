"""Shared helpers: slopes, seeds, devices, the house style."""

import matplotlib as mpl
import numpy as np
import pytest
import torch

from dsnn import device, plotting, rng, stats


@pytest.mark.parametrize("power", [-2.0, -0.5, 1.0, 3.0])
def test_loglog_slope_recovers_a_power_law(power):
    x = np.geomspace(1, 1000, 12)
    assert stats.loglog_slope(x, 3.7 * x**power) == pytest.approx(power, abs=1e-12)


def test_loglog_slope_rejects_bad_input():
    with pytest.raises(ValueError, match="x and y must be positive"):
        stats.loglog_slope([1, 2], [1, -1])
    with pytest.raises(ValueError, match="same length"):
        stats.loglog_slope([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 points"):
        stats.loglog_slope([1], [1])
    with pytest.raises(ValueError, match="two different values"):
        stats.loglog_slope([2, 2], [1, 3])


def test_generators_are_reproducible():
    a, b = rng.as_generator(5), rng.as_generator(5)
    assert a.normal() == b.normal()
    g = np.random.default_rng(1)
    assert rng.as_generator(g) is g
    t1 = torch.rand(3, generator=rng.torch_generator(2))
    t2 = torch.rand(3, generator=rng.torch_generator(2))
    assert torch.equal(t1, t2)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        rng.as_generator(1.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        rng.torch_generator(-1)


def test_default_device_is_cuda_exactly_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.default().type == expected
    assert device.default("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer must be None, 'cpu' or 'cuda'"):
        device.default("tpu-9000")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            device.default("cuda")


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert device.configure_threads() == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="n_threads must be a positive integer"):
            device.configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_house_style_is_opaque_white_and_colour_blind_safe():
    plotting.use_style()
    assert mpl.rcParams["figure.facecolor"] == "white"
    assert mpl.rcParams["savefig.transparent"] is False
    okabe_ito = {"#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000"}
    cycle = {c.upper() for c in mpl.rcParams["axes.prop_cycle"].by_key()["color"]}
    assert cycle == {c.upper() for c in okabe_ito}
    assert len(plotting.colors(10)) == 10


def test_figure_and_reference_slope():
    fig, axes = plotting.figure(2, width=3, height=2)
    assert len(axes) == 2
    assert fig.get_size_inches() == pytest.approx([6, 2])
    line = plotting.reference_slope(axes[0], [1, 10, 100], -1, through=(1, 1))
    np.testing.assert_allclose(line.get_ydata(), [1, 0.1, 0.01])
    with pytest.raises(ValueError, match="xlabel and ylabel must be non-empty"):
        plotting.label_axes(axes[1], "", "y")
    with pytest.raises(ValueError, match="ncols must be an integer >= 1"):
        plotting.figure(0)
    with pytest.raises(ValueError, match="x must be positive"):
        plotting.reference_slope(axes[0], [-1, 1], 1, through=(1, 1))


@pytest.mark.parametrize("q", [0.3, 0.99, 1.0, 2.5])
def test_geometric_rate_recovers_the_ratio_of_a_geometric_sequence(q):
    n = np.arange(30)
    assert stats.geometric_rate(7.0 * q**n + 0 * n, window=10) == pytest.approx(q, rel=1e-12)
    # Only the tail counts: a transient at the start does not change the rate.
    mixed = 5 * 0.1**n + q**n
    assert stats.geometric_rate(mixed, window=5) == pytest.approx(q, rel=1e-9)


def test_geometric_rate_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 entries"):
        stats.geometric_rate([1.0])
    with pytest.raises(ValueError, match="values must be positive"):
        stats.geometric_rate([1.0, 0.0])
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        stats.geometric_rate([1.0, 0.5], window=0)


def test_batch_means_of_block_constant_series_is_exact():
    # Two chains, four blocks of 3 steps each, constant within blocks: the block means are the
    # constants, so the standard error is their sample standard deviation over sqrt(8).
    blocks = np.array([[1.0, 2.0, 3.0, 6.0], [0.0, 4.0, 2.0, 2.0]])  # (chain, block)
    series = np.repeat(blocks.T, 3, axis=0)  # (12 steps, 2 chains)
    mean, stderr = stats.batch_means(series, n_blocks=4)
    assert mean == pytest.approx(blocks.mean())
    assert stderr == pytest.approx(blocks.ravel().std(ddof=1) / np.sqrt(8))


def test_batch_means_of_iid_noise_and_extra_axes():
    # i.i.d. N(0, 1): the error bar is 1/sqrt(n_steps * n_chains) up to sampling error.
    series = np.random.default_rng(0).normal(size=(20_000, 4, 3))
    mean, stderr = stats.batch_means(series, n_blocks=20)
    assert mean.shape == stderr.shape == (3,)
    assert np.allclose(stderr, 1 / np.sqrt(80_000), rtol=0.25)
    assert np.all(np.abs(mean) < 4 * stderr)


def test_batch_means_rejects_bad_input():
    with pytest.raises(ValueError, match=r"series must have shape \(n_steps, n_chains, ...\)"):
        stats.batch_means(np.zeros(10))
    with pytest.raises(ValueError, match="need n_steps >= n_blocks"):
        stats.batch_means(np.zeros((5, 2)), n_blocks=10)
    with pytest.raises(ValueError, match="at least 2 blocks"):
        stats.batch_means(np.zeros((5, 1)), n_blocks=1)
    with pytest.raises(ValueError, match="only finite numbers"):
        stats.batch_means(np.full((5, 2), np.nan), n_blocks=2)
