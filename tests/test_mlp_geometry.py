"""Critical points of scalar networks, tested against closed forms and the classification theorems.

Closed-form functions check the root finder (location, Hessian eigenvalues, index, degeneracy);
random networks check the theory of Kuehn & Kuntz (2024): no critical points for non-augmented
architectures, non-degenerate ones for augmented architectures, and a Hessian rank bounded by the
bottleneck width (or the rank of the lift) otherwise.
"""

import numpy as np
import pytest
import torch

from dsnn import mlp_geometry as mg
from dsnn import models
from dsnn.neural_ode import NeuralODE

BOX2 = [[-2.0, 2.0], [-2.0, 2.0]]


def double_well(x):
    # (x1^2 - 1)^2 + x2^2: minima at (+-1, 0) with Hessian diag(8, 2), a saddle at 0 with
    # Hessian diag(-4, 2).
    return (x[:, 0] ** 2 - 1) ** 2 + x[:, 1] ** 2


def test_double_well_points_hessians_and_indices():
    found = mg.critical_points(double_well, BOX2, 32, seed=0)
    order = np.argsort(found.points[:, 0])
    assert np.allclose(found.points[order], [[-1, 0], [0, 0], [1, 0]], atol=1e-9)
    assert np.allclose(found.hessian_eigenvalues[order], [[2, 8], [-4, 2], [2, 8]], atol=1e-8)
    assert found.index[order].tolist() == [0, 1, 0]
    assert found.nondegenerate.all()
    assert np.allclose(found.values[order], [0, 1, 0], atol=1e-12)


def test_a_maximum_has_index_d_and_a_cubic_point_is_degenerate():
    top = mg.critical_points(lambda x: -(x**2).sum(dim=1), [[-1, 1]] * 3, 16, seed=1)
    assert len(top) == 1 and top.index[0] == 3 and top.nondegenerate[0]
    # x1^3 + x2^2: the only critical point is 0, with Hessian diag(0, 2).
    cusp = mg.critical_points(lambda x: x[:, 0] ** 3 + x[:, 1] ** 2, BOX2, 16, seed=2)
    assert len(cusp) >= 1
    assert np.abs(cusp.points).max() < 1e-3
    assert not cusp.nondegenerate.any()
    assert (cusp.hessian_rank == 1).all()


def test_no_critical_points_and_a_positive_gradient_floor_for_non_augmented_networks():
    # Widths never increase, or m <= d: the gradient never vanishes (Kuehn & Kuntz 2024).
    for architecture, box in [
        ((3, 3, 2, 1), [[-2, 2]] * 3),
        ((2, 2, 1), BOX2),
        (mg.NODEArchitecture(2, 2), BOX2),
    ]:
        for draw in range(2):
            net = mg.random_network(architecture, draw, scale=1.0)
            found = mg.critical_points(net, box, 24, seed=draw)
            assert len(found) == 0
            assert found.min_grad_norm > 1e-3
            # The search settles near the smallest |grad| on the box: a grid gets no lower.
            grid = torch.cartesian_prod(
                *[torch.linspace(lo, hi, 9, dtype=torch.float64) for lo, hi in box]
            )
            _, grad, _ = mg._gradient_and_hessian(net, grid)
            assert float(grad.norm(dim=1).min()) >= 0.9 * found.min_grad_norm


def test_augmented_networks_have_non_degenerate_critical_points():
    located = 0
    for seed in range(6):
        found = mg.critical_points(mg.random_network((2, 8, 1), seed, scale=3.0), BOX2, 32, seed)
        located += len(found)
        assert found.nondegenerate.all()
    assert located > 0
    located = 0
    for seed in range(3):
        node = mg.random_network(mg.NODEArchitecture(2, 3), seed, scale=6.0)
        found = mg.critical_points(node, [[-3, 3], [-3, 3]], 32, seed=seed)
        located += len(found)
        assert found.nondegenerate.all()
    assert located > 0


def test_bottlenecks_and_rank_deficient_lifts_bound_the_hessian_rank():
    # 2 -> 1 -> 3 -> 1: Phi = g(h_1(x)) with h_1 scalar; at a critical point rank Hess <= 1.
    located = 0
    for seed in range(4):
        found = mg.critical_points(mg.random_network((2, 1, 3, 1), seed, scale=3.0), BOX2, 32, 0)
        located += len(found)
        assert (found.hessian_rank <= 1).all()
        assert not found.nondegenerate.any()
    assert located > 0
    # Neural ODE with rank W = 1: Phi is constant along ker W, so grad Phi . k = 0 everywhere.
    node = mg.random_network(mg.NODEArchitecture(2, 3, rank_lift=1), 1, scale=6.0)
    kernel = torch.linalg.svd(node.lift.weight.detach()).Vh[-1]
    x = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    _, grad, _ = mg._gradient_and_hessian(node, x)
    assert float((grad @ kernel).abs().max()) < 1e-10
    found = mg.critical_points(node, [[-3, 3], [-3, 3]], 24, seed=1)
    assert (found.hessian_rank <= 1).all()


@pytest.mark.parametrize(
    ("architecture", "function_class", "max_rank"),
    [
        ((3, 3, 2, 1), mg.NO_CRITICAL_POINTS, 0),
        ((4, 2, 1), mg.NO_CRITICAL_POINTS, 0),
        ((2, 4, 1), mg.MORSE, 2),
        ((3, 4, 2, 1), mg.MORSE, 3),
        ((2, 1, 3, 1), mg.DEGENERATE, 1),
        ((3, 2, 5, 1), mg.DEGENERATE, 2),
        (mg.NODEArchitecture(2, 2), mg.NO_CRITICAL_POINTS, 0),
        (mg.NODEArchitecture(3, 1), mg.NO_CRITICAL_POINTS, 0),
        (mg.NODEArchitecture(2, 3), mg.MORSE, 2),
        (mg.NODEArchitecture(2, 3, rank_lift=1), mg.DEGENERATE, 1),
    ],
)
def test_classify_follows_the_theorems(architecture, function_class, max_rank):
    result = mg.classify(architecture)
    assert result.function_class == function_class
    assert result.max_hessian_rank == max_rank


def test_classify_reads_models_and_neural_odes():
    assert mg.classify(models.mlp((2, 5, 1))).function_class == mg.MORSE
    squashed = models.mlp((2, 5, 1))
    with torch.no_grad():
        squashed[0].weight[:, 1] = squashed[0].weight[:, 0]  # rank W_1 = 1 < 2
    assert mg.classify(squashed).function_class == mg.DEGENERATE
    node = NeuralODE(2, 3, 1)
    assert mg.classify(node).architecture == "augmented"
    with torch.no_grad():
        node.readout.weight.zero_()
    assert mg.classify(node).function_class == mg.DEGENERATE


def test_census_agrees_with_the_predictions():
    rows = mg.census([(2, 2, 1), (2, 6, 1), (2, 1, 3, 1)], 4, BOX2, 24, seed=0, scale=3.0)
    by_name = {row.architecture: row for row in rows}
    assert by_name["MLP 2→2→1"].n_points == 0
    morse = by_name["MLP 2→6→1"]
    assert morse.n_points > 0 and morse.n_nondegenerate == morse.n_points
    bottleneck = by_name["MLP 2→1→3→1"]
    assert bottleneck.n_points > 0 and bottleneck.n_nondegenerate == 0
    assert bottleneck.max_hessian_rank <= 1


def test_critical_points_are_reproducible_from_the_seed():
    net = mg.random_network((2, 8, 1), 1, scale=3.0)
    a, b = (mg.critical_points(net, BOX2, 16, seed=5) for _ in range(2))
    assert np.array_equal(a.points, b.points)


def test_bad_input_is_rejected_with_a_message():
    with pytest.raises(ValueError, match=r"box must have shape \(d, 2\)"):
        mg.critical_points(double_well, [[0, 1, 2]], 4, 0)
    with pytest.raises(ValueError, match="box must have low < high"):
        mg.critical_points(double_well, [[1, 0], [0, 1]], 4, 0)
    with pytest.raises(ValueError, match="n_seeds must be an integer >= 1"):
        mg.critical_points(double_well, BOX2, 0, 0)
    with pytest.raises(TypeError, match="fn must be a callable"):
        mg.critical_points("x^2", BOX2, 4, 0)
    with pytest.raises(ValueError, match="fn must map a batch of shape"):
        mg.critical_points(lambda x: x, BOX2, 4, 0)
    with pytest.raises(ValueError, match="scalar output"):
        mg.classify((2, 3, 2))
    with pytest.raises(ValueError, match="scalar output"):
        mg.classify(NeuralODE(2, 3, 2))
    with pytest.raises(TypeError, match="architecture must be a sequence of MLP widths"):
        mg.classify(3.5)
    with pytest.raises(ValueError, match="rank_lift must be at most"):
        mg.NODEArchitecture(2, 3, rank_lift=3)
    with pytest.raises(ValueError, match="box must have one row per network input"):
        mg.census([(3, 4, 1)], 1, BOX2, 4, 0)
    with pytest.raises(ValueError, match="scale must be > 0"):
        mg.random_network((2, 3, 1), 0, scale=0.0)
