"""Small networks used across the chapters, built reproducibly from a seed."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from dsnn import _checks
from dsnn import device as _device

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(
    sizes,
    *,
    activation: str = "tanh",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    scalar_output: bool = True,
    device: str | torch.device | None = "cpu",
) -> nn.Sequential:
    """Multilayer perceptron with layer widths ``sizes = (n_0, n_1, ..., n_L)``.

    ``h_l = σ(W_l h_{l−1} + b_l)`` for the hidden layers and a linear last layer (survey Sec. 2.1).
    Weights use PyTorch's default (uniform, scaled by ``1/sqrt(fan_in)``) initialisation drawn
    from a generator seeded with ``seed``, so the same seed gives the same network. With
    ``scalar_output`` and ``n_L = 1`` the output has shape ``(batch,)``. The weights are drawn on
    the CPU and then moved to ``device``, so a network is the same on every device.
    """
    sizes = [int(_checks.integer(f"sizes[{i}]", n, minimum=1)) for i, n in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output width, got {sizes}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    seed = _checks.integer("seed", seed)
    layers: list[nn.Module] = []
    # Seed the default initialisers without touching the global generator.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(n_in, n_out, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[activation]())
    if scalar_output and sizes[-1] == 1:
        layers.append(nn.Flatten(0))
    return nn.Sequential(*layers).to(_device.default(device))


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters ``D``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
