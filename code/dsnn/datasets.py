"""Small real data sets that ship inside installed packages (no download at run time).

Provenance: scikit-learn's ``load_digits`` is a copy of the test set of the UCI "Optical
Recognition of Handwritten Digits" data (Alpaydin & Kaynak 1998): 1797 images of 8 × 8 pixels
with integer grey levels 0–16, digits 0–9, about 180 of each class.
"""

from __future__ import annotations

import numpy as np
import torch

from dsnn import _checks
from dsnn import device as _device


def digits_parity(
    n_samples: int = 400,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_samples`` 8 × 8 digits with a scalar target: ``+1`` for even, ``−1`` for odd.

    Pixels are scaled to ``[0, 1]``. A scalar target keeps the neural-tangent-kernel Gram
    matrix ``N × N`` (one gradient per sample), as in Chemnitz & Engel's setting.

    Returns
    -------
    X : tensor of shape ``(n_samples, 64)``
    y : tensor of shape ``(n_samples,)``
    """
    from sklearn.datasets import load_digits  # ships with scikit-learn; no network needed

    digits = load_digits()
    total = digits.data.shape[0]
    n_samples = _checks.integer("n_samples", n_samples, minimum=1)
    if n_samples > total:
        raise ValueError(
            f"n_samples must be at most {total} (the size of the data), got {n_samples}"
        )
    X = digits.data[:n_samples] / 16.0
    y = np.where(digits.target[:n_samples] % 2 == 0, 1.0, -1.0)
    device = _device.default(device)
    return torch.as_tensor(X, dtype=dtype, device=device), torch.as_tensor(
        y, dtype=dtype, device=device
    )
