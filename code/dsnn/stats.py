"""Small statistics used to read figures: convergence orders and rates."""

from __future__ import annotations

import numpy as np

from dsnn import _checks


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``.

    If ``y ≈ C x**p`` the slope is ``p``: the measured order of a method (error against step
    count) or the exponent of a power law (fluctuations against network size).
    """
    x = _checks.finite_array("x", x, ndim=1)
    y = _checks.finite_array("y", y, ndim=1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if x.size < 2:
        raise ValueError(f"need at least 2 points to fit a slope, got {x.size}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("x and y must be positive to fit a slope on a log-log scale")
    if np.ptp(x) == 0:
        raise ValueError("x must take at least two different values")
    slope, _ = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope)


def geometric_rate(values, window: int = 20) -> float:
    """Per-step factor ``q`` of a sequence that behaves like ``v_n ≈ C q^n`` at its end.

    Computed over the last ``window`` steps (fewer if the sequence is shorter) as
    ``(v_n / v_{n−w})^{1/w}``. For gradient descent near a minimum with loss value 0 the loss
    is quadratic in the distance, so the rate of the iterates is ``geometric_rate(losses) ** 0.5``.
    """
    v = _checks.finite_array("values", values, ndim=1)
    window = _checks.integer("window", window, minimum=1)
    if v.size < 2:
        raise ValueError(f"values must have at least 2 entries, got {v.size}")
    if (v <= 0).any():
        raise ValueError("values must be positive to have a geometric rate")
    w = min(window, v.size - 1)
    return float((v[-1] / v[-1 - w]) ** (1.0 / w))
