"""Seeds and random generators: no function in dsnn touches global random state."""

from __future__ import annotations

import numbers

import numpy as np
import torch

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike = None) -> np.random.Generator:
    """Return a numpy ``Generator`` from an integer seed, a generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative integer, a numpy Generator or None, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a seeded ``torch.Generator`` on ``device``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator
