"""dsnn — neural networks as dynamical systems.

The tested package behind the executable book *Neural Networks as Dynamical Systems*. Each module
backs one topic of the book:

- :mod:`dsnn.neural_ode` — residual networks as Euler schemes, neural ODEs, augmentation, embedding;
- :mod:`dsnn.mlp_geometry` — critical points of MLPs and neural ODEs;
- :mod:`dsnn.delay` — neural delay differential equations and memory;
- :mod:`dsnn.gradient_descent` — gradient descent as a map, its stability, edge of stability;
- :mod:`dsnn.hessian` — Hessian-vector products, sharpness, neural-tangent-kernel Gram matrices;
- :mod:`dsnn.sgd_lyapunov` — SGD stability through Lyapunov exponents;
- :mod:`dsnn.kuramoto`, :mod:`dsnn.graphons`, :mod:`dsnn.meanfield` — mean-field limits;
- :mod:`dsnn.propagation` — signal and gradient propagation, generative flows;
- :mod:`dsnn.models`, :mod:`dsnn.datasets` — small networks and shipped data;
- :mod:`dsnn.plotting`, :mod:`dsnn.device`, :mod:`dsnn.rng`, :mod:`dsnn.stats` — shared helpers;
- :mod:`dsnn.sweep` — parameter sweeps, in-process or on a Dask cluster, cached on disk;
- :mod:`dsnn.exercises` — automatic checks for the book's exercises.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dsnn")
except PackageNotFoundError:  # pragma: no cover - only when run from an uninstalled copy
    __version__ = "0.0.0"

from dsnn import (
    datasets,
    delay,
    device,
    exercises,
    gradient_descent,
    graphons,
    hessian,
    kuramoto,
    meanfield,
    mlp_geometry,
    models,
    neural_ode,
    plotting,
    propagation,
    rng,
    sgd_lyapunov,
    stats,
    sweep,
)

__all__ = [
    "__version__",
    "datasets",
    "delay",
    "device",
    "exercises",
    "gradient_descent",
    "graphons",
    "hessian",
    "kuramoto",
    "meanfield",
    "mlp_geometry",
    "models",
    "neural_ode",
    "plotting",
    "propagation",
    "rng",
    "sgd_lyapunov",
    "stats",
    "sweep",
]
