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


def batch_means(series, n_blocks: int = 10) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Mean of a time series from several chains and its batch-means standard error.

    ``series`` has shape ``(n_steps, n_chains, ...)``: time first, independent chains second,
    any further axes are separate quantities (one per point of a parameter grid, say). Each
    chain's run is cut into ``n_blocks`` consecutive blocks (the last one takes the remainder);
    the estimate is the mean over all steps and chains, and its standard error is the standard
    deviation of the ``n_blocks × n_chains`` block means divided by ``sqrt(n_blocks × n_chains)``
    (the method of batch means; e.g. Flegal & Jones 2010). Blocks much longer than the
    correlation time of the series make the block means nearly independent. This is the error
    bar of the Lyapunov exponents in :mod:`dsnn.sgd_lyapunov` and :mod:`dsnn.propagation`.

    Returns
    -------
    mean, stderr : float or ndarray of shape ``series.shape[2:]``
    """
    x = _checks.finite_array("series", series)
    if x.ndim < 2:
        raise ValueError(f"series must have shape (n_steps, n_chains, ...), got shape {x.shape}")
    n_blocks = _checks.integer("n_blocks", n_blocks, minimum=1)
    n_steps, n_chains = x.shape[:2]
    if n_steps < n_blocks or n_blocks * n_chains < 2:
        raise ValueError(
            f"need n_steps >= n_blocks and at least 2 blocks in all, got n_steps={n_steps}, "
            f"n_chains={n_chains} and n_blocks={n_blocks}"
        )
    block_of = np.minimum(np.arange(n_steps) // (n_steps // n_blocks), n_blocks - 1)
    counts = np.bincount(block_of, minlength=n_blocks).astype(float)
    sums = np.zeros((n_blocks, *x.shape[1:]))
    np.add.at(sums, block_of, x)
    means = sums / counts.reshape((-1,) + (1,) * (x.ndim - 1))
    means = means.reshape((n_blocks * n_chains, *x.shape[2:]))
    mean = x.mean(axis=(0, 1))
    stderr = means.std(axis=0, ddof=1) / np.sqrt(means.shape[0])
    if x.ndim == 2:
        return float(mean), float(stderr)
    return mean, stderr
