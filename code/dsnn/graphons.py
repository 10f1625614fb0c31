"""Graph limits for coupled oscillators: graphons, W-random graphs and digraph measures.

A **graphon** is a symmetric measurable ``W : [0, 1]² → [0, 1]``. A **W-random graph** on ``n``
vertices puts vertex ``i`` at ``x_i = (i + ½)/n`` and joins ``i < j`` independently with
probability ``W(x_i, x_j)`` (Lovász 2012; Medvedev 2014). The Kuramoto model on such graphs,

    θ_i' = ω(x_i) + (K/n) Σ_j A_ij sin(θ_j − θ_i),

has the **continuum limit** ``∂_t u(t, x) = ω(x) + K ∫ W(x, y) sin(u(t, y) − u(t, x)) dy``
(Medvedev 2014), and the transition points of its mean-field limit depend on the extreme
eigenvalues of the **kernel operator** ``(𝒲f)(x) = ∫ W(x, y) f(y) dy`` (Chiba & Medvedev 2019).

Graphons describe dense graphs only, and they are symmetric. A **digraph measure**
``η : x ↦ η^x`` assigns to every vertex ``x`` a finite measure on the vertex space: a graphon is
``η^x(dy) = W(x, y) dy``; a finite (sparse, directed, weighted) network with vertices at ``x_j`` is
``η^{x_i} = Σ_j w_ij δ_{x_j}``. The Vlasov equation on a digraph measure (Kuehn & Xu 2022) has
the velocity field ``V(t, x, φ) = ω(x) + K ∫∫ sin(ψ − φ) dν_t^y(ψ) dη^x(y)``; on a finite network
this is exactly the Kuramoto model with ``A_ij = n w_ij`` in the normalisation above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torchdiffeq

from dsnn import _checks
from dsnn.rng import SeedLike, as_generator

__all__ = [
    "ContinuumSolution",
    "DigraphMeasure",
    "Graphon",
    "block",
    "constant",
    "directed_ring_graph",
    "expected_degree_graph",
    "grid",
    "kernel_eigenvalues",
    "kernel_top_eigenvalue",
    "ott_antonsen_graphon",
    "power_law",
    "random_regular_graph",
    "ring",
    "ring_graph",
    "sample_graph",
    "solve_continuum",
    "twisted_state_spectrum",
]


def grid(n: int) -> np.ndarray:
    """The ``n`` midpoints ``x_i = (i + ½)/n`` of ``[0, 1]``, the vertex positions used here."""
    n = _checks.integer("n", n, minimum=1)
    return (np.arange(n) + 0.5) / n


class Graphon:
    """A graphon ``W(x, y)``: symmetric, measurable, with values in ``[0, 1]``.

    Parameters
    ----------
    function : callable
        ``function(x, y)`` evaluated elementwise on broadcastable arrays.
    name : str
        Used in plots and messages.
    """

    def __init__(self, function: Callable, *, name: str = "W"):
        if not callable(function):
            raise TypeError(f"function must be callable, got {type(function).__name__}")
        self._function = function
        self.name = str(name)

    def __call__(self, x, y) -> np.ndarray:
        x = _checks.finite_array("x", x)
        y = _checks.finite_array("y", y)
        if (x < 0).any() or (x > 1).any() or (y < 0).any() or (y > 1).any():
            raise ValueError("x and y must lie in [0, 1]")
        return np.asarray(self._function(x, y), dtype=float) * np.ones(
            np.broadcast_shapes(x.shape, y.shape)
        )

    def matrix(self, n: int) -> np.ndarray:
        """``W(x_i, x_j)`` on the midpoint grid of ``n`` points (an ``n × n`` array)."""
        x = grid(n)
        return self(x[:, None], x[None, :])

    def __repr__(self) -> str:
        return f"Graphon({self.name})"


def _as_kernel(W, name: str = "W") -> Callable:
    if callable(W):
        return W
    raise TypeError(f"{name} must be a Graphon or a callable W(x, y), got {type(W).__name__}")


def constant(p: float) -> Graphon:
    """``W ≡ p``: the limit of Erdős–Rényi graphs ``G(n, p)``. Its kernel operator has the single
    nonzero eigenvalue ``p`` (eigenfunction ``1``)."""
    p = _checks.positive_float("p", p)
    if p > 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    return Graphon(
        lambda x, y: np.full(np.broadcast_shapes(np.shape(x), np.shape(y)), p),
        name=f"Erdős–Rényi p = {p:g}",
    )


def block(sizes, probabilities) -> Graphon:
    """Stochastic block model: ``W(x, y) = P_ab`` for ``x`` in block ``a`` and ``y`` in block ``b``.

    ``sizes`` are the block fractions (positive, summing to one; block ``a`` is an interval) and
    ``probabilities`` the symmetric matrix ``P``. On step functions the kernel operator acts as the
    matrix ``P diag(sizes)``, whose eigenvalues are those of the operator.
    """
    sizes = _checks.finite_array("sizes", sizes, ndim=1)
    if (sizes <= 0).any() or not np.isclose(sizes.sum(), 1.0):
        raise ValueError(f"sizes must be positive and sum to 1, got {sizes}")
    P = _checks.symmetric_matrix("probabilities", probabilities)
    if P.shape[0] != sizes.size:
        raise ValueError(
            f"probabilities must be {sizes.size} x {sizes.size} (one row per block), got {P.shape}"
        )
    if (P < 0).any() or (P > 1).any():
        raise ValueError("probabilities must lie in [0, 1]")
    edges = np.cumsum(sizes)[:-1]

    def function(x, y):
        return P[np.searchsorted(edges, x, side="right"), np.searchsorted(edges, y, side="right")]

    return Graphon(function, name=f"{sizes.size}-block model")


def _circle_distance(x, y):
    d = np.abs(np.asarray(x) - np.asarray(y)) % 1.0
    return np.minimum(d, 1.0 - d)


def ring(radius: float) -> Graphon:
    """Ring (nonlocal, ``k``-nearest-neighbour) graphon ``W(x, y) = 1{d(x, y) ≤ r}``.

    ``d`` is the distance on the circle ``[0, 1)``; ``k``-nearest-neighbour rings with ``k/n → r``
    converge to it. It is a circulant kernel: ``e^{2πimx}`` are its eigenfunctions, with eigenvalues
    ``ζ_m = ∫_{−r}^{r} cos(2πmz) dz = sin(2πmr)/(πm)`` and ``ζ_0 = 2r``, the largest.
    """
    radius = _checks.positive_float("radius", radius)
    if radius >= 0.5:
        raise ValueError(f"radius must be < 0.5 (0.5 is the complete graph), got {radius}")
    return Graphon(
        lambda x, y: (_circle_distance(x, y) <= radius).astype(float), name=f"ring r = {radius:g}"
    )


def power_law(exponent: float = 0.5, offset: float = 0.05) -> Graphon:
    """Rank-one heterogeneous graphon ``W(x, y) = w(x) w(y)`` with ``w(x) = (c / (x + c))^α``.

    ``α = exponent`` and ``c = offset``. The expected degree of vertex ``x`` is proportional to
    ``w(x)``, so a few vertices near ``x = 0`` are hubs: for ``c ≪ x`` the fraction of vertices
    with degree above ``t`` decays like ``t^{−1/α}`` (a power law). The kernel has rank one and its
    only nonzero eigenvalue is ``∫ w² = c^{2α} ((1 + c)^{1−2α} − c^{1−2α}) / (1 − 2α)``
    (``α ≠ ½``; ``c ln((1 + c)/c)`` for ``α = ½``).
    """
    exponent = _checks.positive_float("exponent", exponent)
    offset = _checks.positive_float("offset", offset)

    def weight(x):
        return (offset / (np.asarray(x) + offset)) ** exponent

    return Graphon(lambda x, y: weight(x) * weight(y), name=f"power law α = {exponent:g}")


def sample_graph(
    W,
    n: int,
    seed: SeedLike = None,
    *,
    sparse: bool = False,
    density: float = 1.0,
):
    """Sample a W-random graph: vertices at ``x_i = (i + ½)/n``, edges ``i ~ j`` independently with
    probability ``density · W(x_i, x_j)`` (Lovász & Szegedy 2006; Medvedev 2014).

    Returns a symmetric 0/1 adjacency matrix without self-loops: a numpy array, or a scipy CSR
    array if ``sparse``. ``density < 1`` gives sparse W-random graphs (edge probability
    ``ρ_n W``). The sparse format samples by thinning an Erdős–Rényi graph with edge probability
    ``density`` (distinct candidate pairs drawn at once, then accepted with probability ``W``),
    which costs ``O(n² · density)`` instead of ``O(n²)``: use it for large ``n``.
    """
    kernel = _as_kernel(W)
    n = _checks.integer("n", n, minimum=1)
    density = _checks.positive_float("density", density)
    if density > 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if not isinstance(sparse, bool):
        raise TypeError(f"sparse must be True or False, got {sparse!r}")
    rng = as_generator(seed)
    x = grid(n)

    def probabilities(i, j):
        p = np.asarray(kernel(x[i], x[j]), dtype=float)
        if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise ValueError("W must take values in [0, 1] (it is a graphon)")
        return p

    if sparse:
        # Thinning: every ordered pair is a candidate with probability `density` (a uniformly
        # random subset of Binomial size), keep i < j, accept with probability W(x_i, x_j).
        n_candidates = rng.binomial(n * n, density)
        flat = rng.choice(n * n, size=n_candidates, replace=False, shuffle=False)
        rows, cols = np.divmod(flat, n)
        upper = rows < cols
        rows, cols = rows[upper], cols[upper]
        keep = rng.random(rows.size) < probabilities(rows, cols)
        rows, cols = rows[keep], cols[keep]
        data = np.ones(2 * rows.size)
        A = sp.csr_array(
            (data, (np.concatenate([rows, cols]), np.concatenate([cols, rows]))), shape=(n, n)
        )
        A.sort_indices()
        return A
    A = np.zeros((n, n))
    block_rows = max(1, 2_000_000 // n)  # bounded memory for the probabilities of a block of rows
    for start in range(0, n, block_rows):
        i = np.arange(start, min(n, start + block_rows))
        p = density * probabilities(i[:, None], np.arange(n)[None, :])
        A[i] = rng.random((i.size, n)) < p
    A = np.triu(A, k=1)
    return A + A.T


def kernel_eigenvalues(W, *, n_grid: int = 1000) -> np.ndarray:
    """All eigenvalues (descending) of the kernel operator ``(𝒲f)(x) = ∫ W(x, y) f(y) dy``.

    Nyström discretisation on the midpoint grid: the eigenvalues of ``W(x_i, x_j)/n``. Their error
    is ``O(1/n)`` for piecewise continuous ``W`` and smaller for smooth ``W``.
    """
    kernel = _as_kernel(W)
    n_grid = _checks.integer("n_grid", n_grid, minimum=2)
    x = grid(n_grid)
    M = _checks.symmetric_matrix("W on the grid", kernel(x[:, None], x[None, :]) / n_grid)
    return np.linalg.eigvalsh(M)[::-1]


def kernel_top_eigenvalue(W, *, n_grid: int = 2000) -> float:
    """Largest eigenvalue ``ζ_max`` of the kernel operator of ``W`` (Nyström, as in
    :func:`kernel_eigenvalues`, with a Lanczos solver for the top eigenvalue only).

    It sets the onset of synchrony on graphs converging to ``W``: ``K_c = K_c^{all-to-all} / ζ_max``
    (see :func:`dsnn.kuramoto.critical_coupling` and Chiba & Medvedev 2019).
    """
    kernel = _as_kernel(W)
    n_grid = _checks.integer("n_grid", n_grid, minimum=3)
    x = grid(n_grid)
    M = _checks.symmetric_matrix("W on the grid", kernel(x[:, None], x[None, :]) / n_grid)
    top = spla.eigsh(M, k=1, which="LA", v0=np.ones(n_grid), tol=1e-12)[0][0]
    return float(top)


@dataclass
class ContinuumSolution:
    """Solution of the continuum (graphon) equation at chosen points.

    Attributes
    ----------
    t : array ``(n_times,)``
    x : array ``(n_points,)``
    u : array ``(n_times, n_points)``, the phases ``u(t, x)`` on the real line.
    """

    t: np.ndarray
    x: np.ndarray
    u: np.ndarray


def solve_continuum(
    W,
    coupling: float,
    *,
    omega: Callable,
    u0: Callable,
    x,
    t_final: float,
    dt: float,
    n_quad: int = 64,
    quadrature: str = "gauss",
    record_every: int = 1,
) -> ContinuumSolution:
    """Solve ``∂_t u(t, x) = ω(x) + K ∫₀¹ W(x, y) sin(u(t, y) − u(t, x)) dy`` (Medvedev 2014, the
    continuum limit of the Kuramoto model on W-random graphs) and return ``u`` at the points ``x``.

    The integral is replaced by a quadrature rule with nodes ``y_j`` and weights ``w_j``: the nodes
    form a closed system of ``n_quad`` oscillators, and every evaluation point ``x`` follows
    ``u_t(x) = ω(x) + K Σ_j w_j W(x, y_j) sin(u(y_j) − u(x))`` (the Nyström extension), so ``u``
    can be compared with a finite network at its own vertices. Gauss–Legendre quadrature converges
    fast for kernels that are smooth in ``y``; use ``quadrature="midpoint"`` (error
    ``O(1/n_quad)``) for discontinuous ones. Time stepping: torchdiffeq's fixed-step
    fourth-order Runge–Kutta.

    Parameters
    ----------
    W : Graphon or callable
        The kernel (need not be symmetric: directed kernels work the same way).
    coupling : float
        ``K``.
    omega, u0 : callables
        Natural frequency ``ω(x)`` and initial phase ``u0(x)``, evaluated on arrays.
    x : array
        Points of ``[0, 1]`` at which ``u`` is returned.
    t_final, dt : float
        Final time and step (adjusted to divide ``t_final``).
    n_quad : int
        Number of quadrature nodes.
    quadrature : {"gauss", "midpoint"}
    record_every : int
        Record every this many steps.
    """
    kernel = _as_kernel(W)
    coupling = _checks.real_float("coupling", coupling)
    if not callable(omega) or not callable(u0):
        raise TypeError("omega and u0 must be callables of x")
    x = _checks.finite_array("x", x, ndim=1)
    if (x < 0).any() or (x > 1).any():
        raise ValueError("x must lie in [0, 1]")
    t_final = _checks.positive_float("t_final", t_final)
    dt = _checks.positive_float("dt", dt)
    n_quad = _checks.integer("n_quad", n_quad, minimum=1)
    record_every = _checks.integer("record_every", record_every, minimum=1)
    if quadrature == "gauss":
        nodes, weights = np.polynomial.legendre.leggauss(n_quad)
        nodes, weights = (nodes + 1) / 2, weights / 2
    elif quadrature == "midpoint":
        nodes, weights = grid(n_quad), np.full(n_quad, 1.0 / n_quad)
    else:
        raise ValueError(f"quadrature must be 'gauss' or 'midpoint', got {quadrature!r}")

    points = np.concatenate([nodes, x])

    def to_t(a):
        return torch.tensor(np.asarray(a, dtype=float), dtype=torch.float64)

    weighted = to_t(kernel(points[:, None], nodes[None, :]) * weights[None, :])
    omega_t = to_t(np.broadcast_to(omega(points), points.shape))
    start = to_t(np.broadcast_to(u0(points), points.shape))
    if not torch.isfinite(omega_t).all() or not torch.isfinite(start).all():
        raise ValueError("omega(x) and u0(x) must be finite on [0, 1]")
    m = n_quad

    def rhs(_t, u):
        cos, sin = torch.cos(u), torch.sin(u)
        z_re, z_im = weighted @ cos[:m], weighted @ sin[:m]
        return omega_t + coupling * (z_im * cos - z_re * sin)

    n_steps = max(1, round(t_final / dt))
    step = t_final / n_steps
    record = list(range(0, n_steps + 1, record_every))
    if record[-1] != n_steps:
        record.append(n_steps)
    times = torch.tensor(record, dtype=torch.float64) * step
    with torch.no_grad():
        path = torchdiffeq.odeint(rhs, start, times, method="rk4", options={"step_size": step})
    return ContinuumSolution(t=times.numpy(), x=x, u=path[:, m:].numpy())


def ott_antonsen_graphon(
    W,
    coupling,
    gamma: float,
    *,
    n_grid: int = 200,
    t_final: float = 300.0,
    dt: float = 0.05,
    z0: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Stationary local order parameters of the Kuramoto model on a graphon, Lorentzian frequencies.

    If the natural frequencies are Lorentzian with half-width ``γ`` at every vertex position,
    independently of the position, the Ott–Antonsen ansatz applies fibre by fibre and the local
    order parameter ``z(t, x)`` obeys

        ∂_t z = −γ z + (K/2) (Z − conj(Z) z²),        Z(x) = ∫ W(x, y) z(y) dy

    (our fibrewise application of the reduction of Ott & Antonsen 2008; for ``W ≡ 1`` it is
    their equation for the order parameter).
    Started from the real constant ``z0`` the solution stays real; it is integrated (RK4 on the
    midpoint grid, all couplings at once) until ``t_final``, where it has settled.

    Returns
    -------
    r : array over ``coupling``
        The global order parameter ``|∫ z(x) dx|``.
    z : array ``(*coupling.shape, n_grid)``
        The local order parameter on the midpoint grid.
    """
    kernel = _as_kernel(W)
    K = _checks.finite_array("coupling", coupling)
    if (K < 0).any():
        raise ValueError(f"coupling must be >= 0, got {coupling!r}")
    gamma = _checks.positive_float("gamma", gamma)
    n_grid = _checks.integer("n_grid", n_grid, minimum=2)
    t_final = _checks.positive_float("t_final", t_final)
    dt = _checks.positive_float("dt", dt)
    z0 = _checks.positive_float("z0", z0)
    if z0 >= 1:
        raise ValueError(f"z0 must be in (0, 1), got {z0}")
    x = grid(n_grid)
    M = kernel(x[:, None], x[None, :]) / n_grid
    k = K.reshape(-1, 1)

    def rhs(z):
        Z = z @ M.T
        return -gamma * z + 0.5 * k * Z * (1.0 - z**2)

    z = np.full((k.shape[0], n_grid), z0)
    n_steps = max(1, round(t_final / dt))
    h = t_final / n_steps
    for _ in range(n_steps):
        k1 = rhs(z)
        k2 = rhs(z + 0.5 * h * k1)
        k3 = rhs(z + 0.5 * h * k2)
        k4 = rhs(z + h * k3)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    r = np.abs(z.mean(axis=1)).reshape(K.shape)
    return (float(r) if r.ndim == 0 else r), z.reshape(*K.shape, n_grid)


def _indicator_integrals(a: float, b: float, radius: float):
    """``∫₀^r cos(a z) cos(b z) dz`` and ``∫₀^r cos(a z) sin(b z) dz`` in closed form."""

    def s(c):  # ∫₀^r cos(c z) dz
        return radius if c == 0 else np.sin(c * radius) / c

    def c_(c):  # ∫₀^r sin(c z) dz
        return 0.0 if c == 0 else (1.0 - np.cos(c * radius)) / c

    cos_cos = 0.5 * (s(a + b) + s(a - b))
    cos_sin = 0.5 * (c_(b + a) + c_(b - a))
    return cos_cos, cos_sin


def twisted_state_spectrum(
    q: int, modes, *, radius: float, coupling: float = 1.0, directed: bool = False
) -> tuple[float, np.ndarray]:
    """Rotation frequency and linear spectrum of the ``q``-twisted state on a ring kernel.

    The ring kernel is ``W(x, y) = w(y − x)`` with ``w(z) = 1{|z| ≤ r}`` (undirected, the
    :func:`ring` graphon) or ``w(z) = 1{0 < z ≤ r}`` (directed: every vertex listens to the arc of
    length ``r`` ahead of it), ``z`` taken modulo 1. For identical oscillators (``ω = 0``) the
    continuum equation ``u_t = K ∫ w(y − x) sin(u(y) − u(x)) dy`` has the solutions
    ``u = 2πqx + Ω t`` with

        Ω = K ∫ w(z) sin(2πqz) dz,

    (``0`` when ``w`` is even), and a perturbation ``e^{2πimx}`` grows at the rate
    ``λ_m = K ∫ w(z) cos(2πqz) (e^{2πimz} − 1) dz``. The state is linearly stable when
    ``Re λ_m < 0`` for all ``m ≠ 0``. Wiley, Strogatz & Girvan (2006) give the discrete analogue for
    ``k``-nearest-neighbour rings; the directed version is our computation.

    Returns
    -------
    Omega : float
    eigenvalues : complex array over ``modes``
    """
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        raise TypeError(f"q must be an integer, got {q!r}")
    modes = np.atleast_1d(np.asarray(modes))
    if modes.dtype.kind not in "iu":
        raise TypeError(f"modes must be integers, got {modes.dtype}")
    radius = _checks.positive_float("radius", radius)
    if radius >= 0.5:
        raise ValueError(f"radius must be < 0.5, got {radius}")
    coupling = _checks.real_float("coupling", coupling)
    a = 2 * np.pi * q
    eigenvalues = []
    for m in modes:
        b = 2 * np.pi * int(m)
        cc, cs = _indicator_integrals(a, b, radius)
        c0, _ = _indicator_integrals(a, 0.0, radius)
        real = cc - c0  # ∫₀^r cos(az)(cos(bz) − 1) dz
        if directed:
            eigenvalues.append(coupling * (real + 1j * cs))
        else:  # the even kernel doubles the real part and cancels the imaginary one
            eigenvalues.append(coupling * 2 * real + 0j)
    _, omega_half = _indicator_integrals(0.0, a, radius)  # ∫₀^r sin(az) dz
    Omega = coupling * omega_half if directed else 0.0
    return float(Omega), np.array(eigenvalues)


def ring_graph(n: int, k: int, *, directed: bool = False) -> sp.csr_array:
    """``k``-nearest-neighbour ring on ``n`` vertices as a sparse adjacency matrix.

    Undirected: ``i ~ j`` when their distance around the ring is at most ``k`` (networkx's
    circulant graph). Directed: vertex ``i`` listens to ``i + 1, ..., i + k`` (indices modulo
    ``n``), so ``A_ij = 1`` for those ``j`` — every vertex has in-degree and out-degree ``k``.
    """
    n = _checks.integer("n", n, minimum=3)
    k = _checks.integer("k", k, minimum=1)
    if (directed and k >= n) or (not directed and 2 * k >= n):
        raise ValueError(f"k = {k} is too large for a ring of n = {n} vertices")
    if not directed:
        import networkx as nx  # imported here: only these graph constructors need it

        graph = nx.circulant_graph(n, range(1, k + 1))
        return sp.csr_array(nx.to_scipy_sparse_array(graph, nodelist=range(n), format="csr"))
    rows = np.repeat(np.arange(n), k)
    cols = (rows + np.tile(np.arange(1, k + 1), n)) % n
    A = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, n))
    A.sort_indices()
    return A


def directed_ring_graph(n: int, k: int) -> sp.csr_array:
    """Directed ring with fixed out-degree: shorthand for ``ring_graph(n, k, directed=True)``."""
    return ring_graph(n, k, directed=True)


def random_regular_graph(n: int, degree: int, seed: SeedLike = None) -> sp.csr_array:
    """Uniformly random ``degree``-regular graph on ``n`` vertices (networkx), as sparse adjacency.

    With ``degree`` fixed as ``n`` grows its edge density ``degree/n`` tends to zero: its dense
    graphon limit is ``W ≡ 0``.
    """
    n = _checks.integer("n", n, minimum=2)
    degree = _checks.integer("degree", degree, minimum=1)
    if degree >= n or (n * degree) % 2:
        raise ValueError(f"need degree < n and n * degree even, got n = {n}, degree = {degree}")
    import networkx as nx

    seed_int = int(as_generator(seed).integers(2**31))
    graph = nx.random_regular_graph(degree, n, seed=seed_int)
    return sp.csr_array(nx.to_scipy_sparse_array(graph, nodelist=range(n), format="csr"))


def expected_degree_graph(expected_degrees, seed: SeedLike = None) -> sp.csr_array:
    """Chung–Lu random graph (networkx): ``i ~ j`` with probability ``min(1, w_i w_j / Σ_k w_k)``.

    Vertex ``i`` then has expected degree about ``w_i``; power-law weights give power-law degrees.
    Returned as a sparse adjacency matrix without self-loops.
    """
    w = _checks.finite_array("expected_degrees", expected_degrees, ndim=1)
    if (w < 0).any():
        raise ValueError("expected_degrees must be >= 0")
    import networkx as nx

    seed_int = int(as_generator(seed).integers(2**31))
    graph = nx.expected_degree_graph(list(w), seed=seed_int, selfloops=False)
    return sp.csr_array(nx.to_scipy_sparse_array(graph, nodelist=range(w.size), format="csr"))


class DigraphMeasure:
    """A digraph measure on ``X = [0, 1]`` with atoms at finitely many vertices.

    ``η^{x_i} = Σ_j w_ij δ_{x_j}``: vertex ``i`` (at ``x_i``) listens to vertex ``j`` with weight
    ``w_ij ≥ 0`` (Kuehn & Xu 2022, Sec. 2: a measure-valued map ``x ↦ η^x``; here its finite
    version, which is what a network is and what approximates a general digraph measure). The
    Kuramoto model driven by it is ``θ_i' = ω_i + K Σ_j w_ij sin(θ_j − θ_i)``, i.e.
    :func:`dsnn.kuramoto.simulate` with ``graph = coupling_matrix()``.

    Parameters
    ----------
    weights : array or scipy sparse matrix ``(n, n)``
        Nonnegative weights ``w_ij``.
    positions : array ``(n,)``, optional
        Increasing vertex positions in ``[0, 1]``; the midpoint grid by default.
    """

    def __init__(self, weights, positions=None):
        if sp.issparse(weights):
            w = sp.csr_array(weights, dtype=float)
            data = w.data
        else:
            w = sp.csr_array(_checks.finite_array("weights", weights, ndim=2))
            data = w.data
        if w.shape[0] != w.shape[1]:
            raise ValueError(f"weights must be a square matrix, got shape {w.shape}")
        if not np.isfinite(data).all():
            raise ValueError("weights must contain only finite numbers (no NaN or inf)")
        if (data < 0).any():
            raise ValueError("weights must be >= 0 (a digraph measure is a nonnegative measure)")
        w.eliminate_zeros()
        w.sort_indices()
        n = w.shape[0]
        x = grid(n) if positions is None else _checks.finite_array("positions", positions, ndim=1)
        if x.size != n:
            raise ValueError(f"positions must have {n} entries (one per vertex), got {x.size}")
        if (x < 0).any() or (x > 1).any() or (np.diff(x) <= 0).any():
            raise ValueError("positions must be increasing and lie in [0, 1]")
        self.weights = w
        self.positions = x

    @classmethod
    def from_graph(cls, adjacency, *, normalize: str = "degree", positions=None):
        """Digraph measure of a network with adjacency ``A`` (``A_ij``: ``i`` listens to ``j``).

        ``normalize="degree"`` gives ``w_ij = A_ij / Σ_k A_ik`` (every fibre is a probability
        measure; vertices without inputs keep the zero measure), the normalisation under which
        sparse graphs have a nontrivial limit. ``normalize="size"`` gives ``w_ij = A_ij / n``, the
        dense (graphon) normalisation.
        """
        A = (
            sp.csr_array(adjacency, dtype=float)
            if sp.issparse(adjacency)
            else sp.csr_array(_checks.finite_array("adjacency", adjacency, ndim=2))
        )
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"adjacency must be a square matrix, got shape {A.shape}")
        if normalize == "degree":
            degree = np.asarray(A.sum(axis=1)).ravel()
            scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
            w = sp.diags_array(scale) @ A
        elif normalize == "size":
            w = A / A.shape[0]
        else:
            raise ValueError(f"normalize must be 'degree' or 'size', got {normalize!r}")
        return cls(w, positions)

    @classmethod
    def from_kernel(cls, W, n: int):
        """Discretise ``η^x(dy) = W(x, y) dy`` on the midpoint grid: ``w_ij = W(x_i, x_j) / n``."""
        kernel = _as_kernel(W)
        n = _checks.integer("n", n, minimum=1)
        x = grid(n)
        return cls(kernel(x[:, None], x[None, :]) / n)

    @property
    def n(self) -> int:
        return self.weights.shape[0]

    def fibre_masses(self) -> np.ndarray:
        """Total masses ``η^{x_i}([0, 1]) = Σ_j w_ij`` (weighted in-degrees)."""
        return np.asarray(self.weights.sum(axis=1)).ravel()

    def coupling_matrix(self) -> sp.csr_array:
        """``A = n w`` for :func:`dsnn.kuramoto.simulate`, whose coupling is ``(K/n) Σ_j A_ij``."""
        return self.weights * self.n

    def fibre_distance_to_uniform(self) -> np.ndarray:
        """Wasserstein-1 distance of each normalised fibre ``η^{x_i}/|η^{x_i}|`` to Lebesgue.

        On ``[0, 1]``, ``W₁(μ, λ) = ∫₀¹ |F_μ(t) − t| dt`` with ``F_μ`` the distribution function,
        computed exactly (``F_μ`` is a step function). Zero fibres give ``nan``. The fibres of the
        all-to-all network on the midpoint grid are at distance ``1/(4n)``.
        """
        # Written out rather than with scipy.stats.wasserstein_distance, which compares two
        # samples: against Lebesgue measure the integral of |F − t| has this closed form.
        w = self.weights
        out = np.full(self.n, np.nan)
        x = self.positions
        for i in range(self.n):
            cols = w.indices[w.indptr[i] : w.indptr[i + 1]]
            vals = w.data[w.indptr[i] : w.indptr[i + 1]]
            total = vals.sum()
            if total <= 0:
                continue
            levels = np.concatenate([[0.0], np.cumsum(vals) / total])  # F on each segment
            edges = np.concatenate([[0.0], x[cols], [1.0]])
            a, b = edges[:-1], edges[1:]
            c = np.clip(levels, 0.0, 1.0)
            # ∫_a^b |c − t| dt in closed form: t crosses c at most once on [a, b].
            below = (np.clip(c, a, b) - a) * (c - (a + np.clip(c, a, b)) / 2)
            above = (b - np.clip(c, a, b)) * ((b + np.clip(c, a, b)) / 2 - c)
            out[i] = float(np.sum(below + above))
        return out
