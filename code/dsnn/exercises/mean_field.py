"""Checks for the exercises of the chapter *Mean-field limits: oscillators on graphs, graph limits
and wide networks*."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import integrate

from dsnn import graphons, kuramoto, meanfield
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "mean_field"


# --- noisy Lorentzian oscillators: the growth rate of the first Fourier mode --------------------


def _lorentzian(gamma: float):
    return lambda w: gamma / (np.pi * (gamma**2 + w**2))


def _dispersion(K: float, gamma: float, D: float, lam: float) -> float:
    """``(K/2) ∫ g(ω) / (λ + D + iω) dω`` for real ``λ > −D`` and the Lorentzian ``g``.

    The imaginary part vanishes because ``g`` is even; the real part ``∫ g(ω) μ/(μ² + ω²) dω``
    (``μ = λ + D``) is integrated numerically after ``ω = μ tan φ``, which makes the integrand
    bounded (quadrature, not the residue calculation the reader is asked to do).
    """
    mu = lam + D
    g = _lorentzian(gamma)
    value, _ = integrate.quad(lambda phi: g(mu * np.tan(phi)), -np.pi / 2, np.pi / 2, limit=200)
    return 0.5 * K * value


@exercise(
    "ex-mf-lorentzian-noise",
    chapter=CHAPTER,
    kind="derivation",
    answer="growth_rate(K, gamma, D) -> real growth rate lambda of the first Fourier mode at "
    "incoherence, Lorentzian half-width gamma, noise D",
    wrong=[
        lambda K, gamma, D: K / 2 - gamma,
        lambda K, gamma, D: K - gamma - D,
        lambda K, gamma, D: K / 2 - gamma - 2 * D,
    ],
)
def _lorentzian_noise(growth_rate):
    # The property: lambda solves the dispersion relation 1 = (K/2) ∫ g/(λ + D + iω) dω with
    # Re λ > −D (evaluated by quadrature), and it changes sign at the onset that the package
    # computes for a general density (critical_coupling with a callable g, also by quadrature).
    cases = [(1.5, 0.5, 0.25), (3.0, 0.5, 0.25), (1.2, 0.5, 0.3), (4.0, 0.2, 1.0), (2.0, 0.9, 0.05)]
    for K, gamma, D in cases:
        lam = as_float(f"growth_rate({K}, {gamma}, {D})", call(growth_rate, K, gamma, D))
        if lam + D <= 0:
            raise CheckFailed(
                f"growth_rate({K}, {gamma}, {D}) = {lam:.6g} has lambda + D <= 0; the dispersion "
                "relation holds for Re lambda > -D, and for K > 2 gamma it has a root there"
            )
        close(
            f"(K/2) ∫ g/(λ + D + iω) dω at your λ for K={K}, gamma={gamma}, D={D} (the dispersion "
            "relation needs 1)",
            _dispersion(K, gamma, D, lam),
            1.0,
            rtol=1e-7,
        )
    for gamma, D in [(0.5, 0.25), (0.1, 0.7)]:
        onset = kuramoto.critical_coupling(_lorentzian(gamma), noise=D)
        at_onset = as_float("growth_rate at the onset", call(growth_rate, onset, gamma, D))
        close(
            f"growth_rate at the onset K_c = {onset:.6g} (gamma={gamma}, D={D})",
            at_onset,
            0.0,
            atol=1e-6,
        )
    return (
        "lambda solves the dispersion relation for five (K, gamma, D) and vanishes at the onset "
        "computed by quadrature"
    )


# --- the directed ring: rotation frequency of a twisted state -----------------------------------


def _drift_continuum(n, k, q, K):  # mistake: the N -> infinity limit instead of the sum
    return K * (1 - np.cos(2 * np.pi * q * k / n)) / (2 * np.pi * q)


def _drift_left_sum(n, k, q, K):  # mistake: l = 0, ..., k - 1 (the vertex itself, not i + k)
    return K / n * np.sin(2 * np.pi * q * np.arange(k) / n).sum()


def _drift_behind(n, k, q, K):  # mistake: listening to the k vertices behind
    return -K / n * np.sin(2 * np.pi * q * np.arange(1, k + 1) / n).sum()


@exercise(
    "ex-mf-directed-drift",
    chapter=CHAPTER,
    kind="derivation",
    answer="twisted_drift(n, k, q, K) -> rotation frequency Omega_N of the q-twisted state on the "
    "directed ring where vertex i listens to i+1, ..., i+k",
    wrong=[_drift_continuum, _drift_left_sum, _drift_behind],
)
def _directed_drift(twisted_drift):
    # The oracle is a run: the q-twisted state on the directed ring is an exact rigidly rotating
    # solution, so the phase velocity measured by kuramoto.simulate is Omega_N up to rounding.
    qs = np.array([1, 2, 3])
    for n, k in [(12, 3), (30, 10), (50, 20)]:
        graph = graphons.directed_ring_graph(n, k)
        theta0 = 2 * np.pi * qs[:, None] * np.arange(n) / n
        for K in (1.0, 2.5):
            run = kuramoto.simulate(theta0, np.zeros(n), K, graph, t_final=2.0, dt=0.5)
            measured = kuramoto.mean_frequency(run, 0.0).mean(axis=-1)
            for q, omega in zip(qs, measured, strict=True):
                got = call(twisted_drift, n, k, int(q), K, name="twisted_drift")
                close(
                    f"twisted_drift(n={n}, k={k}, q={q}, K={K}) against the simulated rotation",
                    got,
                    omega,
                    rtol=1e-8,
                    atol=1e-12,
                )
    return "Omega_N matches the simulated rotation of 18 twisted states on three directed rings"


# --- Ott–Antonsen on a block graphon --------------------------------------------------------------


def _block_rhs(z, K, gamma, sizes, P):
    """Fibrewise Ott–Antonsen field on a block graphon, real ``z``: ``−γz + (K/2) Z (1 − z²)``."""
    Z = P @ (sizes * z)
    return -gamma * z + 0.5 * K * Z * (1 - z**2)


def _block_jacobian(z, K, gamma, sizes, P):
    Z = P @ (sizes * z)
    return (
        -gamma * np.eye(z.size)
        + 0.5 * K * (1 - z**2)[:, None] * P * sizes[None, :]
        - K * np.diag(z * Z)
    )


def _block_iteration(K, gamma, sizes, P, *, use_sizes=True):
    # Monotone fixed-point iteration of the stationary equation, started at z = 1; with
    # use_sizes=False it makes the mistake Z_a = sum_b P_ab z_b (block fractions forgotten).
    sizes, P = np.asarray(sizes, float), np.asarray(P, float)
    weights = sizes if use_sizes else np.ones_like(sizes)
    z = np.ones(sizes.size)
    for _ in range(20000):
        Z = P @ (weights * z)
        new = K * Z / (gamma + np.sqrt(gamma**2 + (K * Z) ** 2))
        if np.abs(new - z).max() < 1e-14:
            return new
        z = new
    return z


def _block_uniform(K, gamma, sizes, P):  # mistake: one all-to-all curve with K zeta_max
    zeta = np.linalg.eigvals(np.asarray(P) @ np.diag(sizes)).real.max()
    return np.full(len(sizes), math.sqrt(max(0.0, 1 - 2 * gamma / (K * zeta))))


@exercise(
    "ex-mf-block-oa",
    chapter=CHAPTER,
    kind="computation",
    answer="block_order_parameters(K, gamma, sizes, P) -> array (m,) of the stable stationary "
    "local order parameters z_a, one per block",
    wrong=[
        _block_uniform,
        lambda K, gamma, sizes, P: _block_iteration(K, gamma, sizes, P, use_sizes=False),
        lambda K, gamma, sizes, P: np.zeros(len(sizes)),
    ],
)
def _block_oa(block_order_parameters):
    def answer(K, gamma, sizes, P):
        out = call(block_order_parameters, K, gamma, np.array(sizes), np.array(P))
        z = as_array(f"block_order_parameters(K={K}, ...)", out, shape=(len(sizes),))
        if (z < -1e-12).any() or (z > 1).any():
            raise CheckFailed(f"local order parameters lie in [0, 1], got {z}")
        return z

    # 1. A constant graphon p: every block follows the all-to-all curve with coupling K p.
    gamma, K, p = 0.5, 4.0, 0.6
    z = answer(K, gamma, [0.3, 0.7], [[p, p], [p, p]])
    close(
        "z for the constant graphon W = 0.6 (closed form sqrt(1 - 2 gamma / (K p)))",
        z,
        np.full(2, math.sqrt(1 - 2 * gamma / (K * p))),
        rtol=1e-6,
    )
    # 2. Decoupled blocks: block a is all-to-all with coupling K P_aa s_a, synchronised or not.
    sizes, diag = np.array([0.4, 0.6]), np.array([0.9, 0.5])
    K = 3.0
    expected = np.sqrt(np.clip(1 - 2 * gamma / (K * diag * sizes), 0, None))
    z = answer(K, gamma, sizes, np.diag(diag))
    close("z for two uncoupled blocks (block 2 is below its own threshold)", z, expected, atol=1e-6)
    # 3. The chapter's block model: incoherent below K_c = 2 gamma / zeta_max, above it a stable
    #    stationary state whose global order parameter the package's graphon equation reproduces.
    sizes, P = np.array([0.4, 0.6]), np.array([[0.8, 0.1], [0.1, 0.4]])
    W = graphons.block(sizes, P)
    zeta = graphons.kernel_eigenvalues(W, n_grid=50)[0]  # exact: the blocks align with the grid
    k_c = 2 * gamma / zeta
    z = answer(0.85 * k_c, gamma, sizes, P)
    close(f"z below the onset K_c = {k_c:.4f} (incoherence)", z, np.zeros(2), atol=1e-6)
    couplings = np.array([1.2 * k_c, 2.0 * k_c])
    # RK4 keeps the equilibria of the equation exactly, so a coarse step only slows the approach.
    r_graphon, _ = graphons.ott_antonsen_graphon(
        W, couplings, gamma, n_grid=50, t_final=150.0, dt=0.1
    )
    cases = [(K, sizes, P, r) for K, r in zip(couplings, r_graphon, strict=True)]
    cases.append(
        (
            5.0,
            np.array([0.2, 0.3, 0.5]),
            np.array([[0.9, 0.3, 0.05], [0.3, 0.6, 0.2], [0.05, 0.2, 0.7]]),
            None,
        )
    )
    for K, sizes, P, r_expected in cases:
        z = answer(K, gamma, sizes, P)
        residual = _block_rhs(z, K, gamma, sizes, P)
        close(
            f"the stationary equation -gamma z_a + (K/2) Z_a (1 - z_a^2) at your z, K = {K:.4g}, "
            f"{len(sizes)} blocks",
            residual,
            np.zeros(len(sizes)),
            atol=1e-8,
        )
        growth = np.linalg.eigvals(_block_jacobian(z, K, gamma, sizes, P)).real.max()
        if growth >= -1e-9:
            raise CheckFailed(
                f"at K = {K:.4g} your z = {np.round(z, 6)} is stationary but not stable (largest "
                f"real part of the linearisation {growth:.3g} >= 0): above the onset the "
                "incoherent state z = 0 is unstable; return the stable state"
            )
        if r_expected is not None:
            close(
                f"the global order parameter sum_a s_a z_a at K = {K:.4g} against the graphon "
                "Ott-Antonsen equation",
                float(sizes @ z),
                r_expected,
                rtol=1e-4,
            )
    return (
        "closed forms for constant and uncoupled blocks, incoherence below K_c, and stable "
        "stationary states that match the graphon equation"
    )


# --- twisted states on the ring graphon: the largest stable twist ------------------------------

_MODES = np.arange(1, 301)


def _largest_stable_twist(radius: float) -> int:
    """Largest ``q`` with ``Re λ_m(q) < 0`` for all modes ``m ≠ 0``, scanning ``q = 0, 1, ...``.

    The scan stops at the first unstable ``q``, and at the latest when ``2πqr ≥ π``, where the
    short waves (``m → ∞``, rate ``−K sin(2πqr)/(πq)``) are no longer damped.
    """
    q = 0
    while 2 * np.pi * (q + 1) * radius < np.pi:
        growth = graphons.twisted_state_spectrum(q + 1, _MODES, radius=radius)[1].real.max()
        if growth >= 0:
            break
        q += 1
    return q


@exercise(
    "ex-mf-twist-threshold",
    chapter=CHAPTER,
    kind="exploration",
    answer="max_stable_twist(radius) -> largest integer q >= 0 whose q-twisted state is linearly "
    "stable on the ring graphon",
    wrong=[
        lambda radius: math.floor(1 / (4 * radius)),
        lambda radius: math.floor(1 / (2 * radius)),
        lambda radius: round(2.0816 / (2 * np.pi * radius)),
        lambda radius: 0,
    ],
)
def _twist_threshold(max_stable_twist):
    # The oracle is the package's linear spectrum of twisted states over 300 modes.
    for radius in [0.02, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4]:
        got = as_float(f"max_stable_twist({radius})", call(max_stable_twist, radius))
        if abs(got - round(got)) > 1e-9 or got < 0:
            raise CheckFailed(f"max_stable_twist({radius}) must be an integer >= 0, got {got}")
        got = round(got)
        measured = _largest_stable_twist(radius)
        if got > measured:
            growth = graphons.twisted_state_spectrum(measured + 1, _MODES, radius=radius)[1]
            m = int(_MODES[np.argmax(growth.real)])
            raise CheckFailed(
                f"for radius {radius} you predict q = {got}, but already q = {measured + 1} is "
                f"unstable: Re lambda_m = {growth.real.max():.3g} > 0 at m = {m}"
            )
        if got < measured:
            growth = graphons.twisted_state_spectrum(got + 1, _MODES, radius=radius)[1]
            raise CheckFailed(
                f"for radius {radius} you predict q = {got}, but q = {got + 1} is still stable "
                f"(largest Re lambda_m = {growth.real.max():.3g} < 0); the largest stable twist "
                f"is larger"
            )
    return "the largest stable twist is right for nine radii from 0.02 to 0.4"


# --- wide networks: the mean risk at initialisation ---------------------------------------------


def _mean_tanh2_typical(width, x, y):  # mistake: tanh^2 of a typical w.x, not its mean
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    s = x.norm(dim=1) / math.sqrt(x.shape[1])
    return float((y**2).mean() + torch.tanh(s).pow(2).mean() / width)


def _mean_gauss_hermite(width, x, y, power=1):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    s = np.linalg.norm(x, axis=1) / math.sqrt(x.shape[1])
    phi = (np.tanh(np.outer(s, nodes)) ** 2) @ weights / math.sqrt(2 * math.pi)
    return float(np.mean(y**2) + phi.mean() / width**power)


@exercise(
    "ex-mf-initial-risk",
    chapter=CHAPTER,
    kind="derivation",
    answer="expected_initial_risk(width, x, y) -> mean of R_N over units drawn by "
    "meanfield.init_particles (a ~ N(0, 1), w ~ N(0, I/d))",
    wrong=[
        lambda width, x, y: float(np.mean(np.asarray(y, dtype=float) ** 2)),
        _mean_tanh2_typical,
        lambda width, x, y: _mean_gauss_hermite(width, x, y, power=2),
    ],
)
def _initial_risk(expected_initial_risk):
    rng = np.random.default_rng(21)
    x = torch.from_numpy(rng.standard_normal((6, 2)) * np.array([1.5, 0.7]))
    y = torch.sin(x[:, 0]) + 0.3 * x[:, 1]
    mean_y2 = float((y**2).mean())

    def answer(width, x, y):
        return as_float(
            f"expected_initial_risk({width}, ...)",
            call(expected_initial_risk, width, x.clone(), y.clone()),
        )

    # 1. Inputs at the origin: every unit outputs 0, so R_N = E[y^2] for every network.
    zero_x = torch.zeros(4, 3, dtype=torch.float64)
    zero_y = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    close("expected_initial_risk(5, x = 0, y)", answer(5, zero_x, zero_y), 1.3125, rtol=1e-9)
    # 2. Monte Carlo over independent networks drawn by the package.
    n_networks = 20000
    for width in (1, 3, 10):
        theta = meanfield.init_particles(width, 2, seed=100 + width, batch=(n_networks,))
        risks = meanfield.risk(theta, x, y).numpy()
        mean, error = risks.mean(), risks.std() / math.sqrt(n_networks)
        got = answer(width, x, y)
        if abs(got - mean) > 4 * error:
            raise CheckFailed(
                f"for width {width} the mean risk of {n_networks} random networks is "
                f"{mean:.5f} ± {error:.5f}, but your value is {got:.5f} "
                f"({abs(got - mean) / error:.1f} standard errors away)"
            )
    # 3. The finite-width excess over E[y^2] is exactly proportional to 1/N.
    excess = [width * (answer(width, x, y) - mean_y2) for width in (1, 4, 100)]
    close("N (E R_N - E[y^2]) at N = 100, compared with N = 1", excess[2], excess[0], rtol=1e-6)
    close("N (E R_N - E[y^2]) at N = 4, compared with N = 1", excess[1], excess[0], rtol=1e-6)
    return (
        "matches the mean risk of 20000 random networks for three widths, with an excess over "
        "E[y^2] exactly proportional to 1/N"
    )
