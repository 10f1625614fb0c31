"""Input validation shared by the public functions.

Every message names the argument, the value it got and what is allowed, so that a reader who
passes a wrong value in a notebook learns how to fix it from the message alone.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def positive_float(name: str, value, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float after checking it is a positive real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def real_float(name: str, value) -> float:
    """Return ``value`` as a finite float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def integer(name: str, value, *, minimum: int = 0) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def finite_array(name: str, value, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a float64 numpy array; reject NaN/inf, empty input and wrong ``ndim``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(value).__name__}"
        ) from err
    _check_shape_and_values(name, array, ndim, np.isfinite(array).all())
    return array


def finite_tensor(
    name: str, value, *, ndim: int | tuple[int, ...] | None = None, dtype=None
) -> torch.Tensor:
    """Return ``value`` as a torch tensor (float64 unless it already is a float tensor)."""
    if isinstance(value, torch.Tensor):
        tensor = value if dtype is None else value.to(dtype)
        if not tensor.is_floating_point():
            tensor = tensor.to(torch.float64)
    else:
        try:
            tensor = torch.as_tensor(np.asarray(value, dtype=float), dtype=dtype or torch.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{name} must be an array of real numbers, got {type(value).__name__}"
            ) from err
    _check_shape_and_values(name, tensor, ndim, bool(torch.isfinite(tensor).all()))
    return tensor


def _check_shape_and_values(name, array, ndim, all_finite) -> None:
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            wanted = " or ".join(str(n) for n in allowed)
            raise ValueError(
                f"{name} must have {wanted} dimension(s), got shape {tuple(array.shape)}"
            )
    n_elements = array.size if isinstance(array, np.ndarray) else array.numel()
    if n_elements == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(array.shape)}")
    if not all_finite:
        raise ValueError(f"{name} must contain only finite numbers (no NaN or inf)")


def symmetric_matrix(name: str, value, *, rtol: float = 1e-8) -> np.ndarray:
    """Return ``value`` as a square, symmetric float64 matrix."""
    matrix = finite_array(name, value, ndim=2)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {matrix.shape}")
    scale = max(np.abs(matrix).max(), 1.0)
    if not np.allclose(matrix, matrix.T, rtol=0.0, atol=rtol * scale):
        raise ValueError(f"{name} must be symmetric (a Hessian or Gram matrix); it is not")
    return matrix
