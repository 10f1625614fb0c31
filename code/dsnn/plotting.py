"""The book's figure style and a few helpers every chapter uses.

One house style: opaque white backgrounds (figures stay readable in a dark-mode browser), the
Okabe–Ito colour-blind-safe palette, font sizes readable at the book's column width, and labelled
axes. Chapters call :func:`use_style` once and then plot with plain matplotlib.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

from dsnn import _checks

#: Okabe & Ito (2008) colour-blind-safe palette, black last.
PALETTE: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}

STYLE: dict[str, object] = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "legend.framealpha": 0.9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "axes.prop_cycle": mpl.cycler(color=[c for k, c in PALETTE.items() if k != "yellow"]),
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the house style to matplotlib (idempotent)."""
    mpl.rcParams.update(STYLE)


def colors(n: int) -> list[str]:
    """Return ``n`` colours of the palette, cycling when ``n`` exceeds its size."""
    n = _checks.integer("n", n, minimum=1)
    cycle = [c for k, c in PALETTE.items() if k != "yellow"]
    return [cycle[i % len(cycle)] for i in range(n)]


def figure(ncols: int = 1, nrows: int = 1, *, width: float = 6.4, height: float = 4.0, **kwargs):
    """Create a styled figure with ``nrows x ncols`` axes; return ``(fig, axes)``.

    ``width`` and ``height`` are per panel, in inches.
    """
    ncols = _checks.integer("ncols", ncols, minimum=1)
    nrows = _checks.integer("nrows", nrows, minimum=1)
    width = _checks.positive_float("width", width)
    height = _checks.positive_float("height", height)
    use_style()
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def reference_slope(ax, x, slope: float, *, through: tuple[float, float], label: str | None = None):
    """Draw the line ``y = c * x**slope`` on a log-log axis, passing through the point ``through``.

    Used to compare a measured convergence order with its theoretical value.
    """
    x = _checks.finite_array("x", x, ndim=1)
    slope = _checks.real_float("slope", slope)
    x0, y0 = (
        _checks.positive_float("through[0]", through[0]),
        _checks.positive_float("through[1]", through[1]),
    )
    if (x <= 0).any():
        raise ValueError("x must be positive on a log-log axis")
    y = y0 * (x / x0) ** slope
    (line,) = ax.loglog(
        x,
        y,
        linestyle="--",
        color="0.4",
        linewidth=1.2,
        label=label if label is not None else f"slope {slope:g}",
    )
    return line


def label_axes(ax, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """Label both axes (symbols with units), and optionally the panel."""
    if not xlabel or not ylabel:
        raise ValueError("xlabel and ylabel must be non-empty: every axis of the book is labelled")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
