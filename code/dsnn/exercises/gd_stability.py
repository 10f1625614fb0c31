"""Checks for the exercises of the chapter *Gradient descent as a dynamical system*."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.optimize
import torch

from dsnn import gradient_descent, hessian
from dsnn.exercises._core import CheckFailed, as_array, as_float, call, close, exercise

CHAPTER = "gd_stability"


# --- ex-gd-flip: the period-two orbit of gradient descent on log cosh -------------------------


def _log_cosh_cycle(eta: float) -> float:
    """Positive root of ``tanh x = 2x / eta`` (exists for eta > 2; tanh x / x falls from 1 to 0)."""
    return scipy.optimize.brentq(lambda x: np.tanh(x) - 2 * x / eta, 1e-6, eta / 2, xtol=1e-15)


def _small_amplitude_cycle(eta):
    # tanh x ~ x - x^3/3 turns tanh x = 2x/eta into x^2 = 3(1 - 2/eta): right only near eta = 2.
    return np.sqrt(3 * (1 - 2 / eta)), (1 - eta * (1 - 3 * (1 - 2 / eta))) ** 2


@exercise(
    "ex-gd-flip",
    chapter=CHAPTER,
    kind="derivation",
    answer="flip_orbit(eta) -> (x_bar, multiplier) of the 2-cycle {x_bar, -x_bar} of GD on "
    "log cosh, for eta > 2",
    wrong=[
        lambda eta: (
            (x := _log_cosh_cycle(2 * eta)),
            (1 - eta / np.cosh(x) ** 2) ** 2,
        ),  # tanh x = x / eta: the cycle condition without the factor 2
        _small_amplitude_cycle,
        lambda eta: (
            (x := _log_cosh_cycle(eta)),
            1 - eta / np.cosh(x) ** 2,
        ),  # the multiplier of one step, not of the two-step map
    ],
)
def _flip(flip_orbit):
    # The properties: G(x_bar) = -x_bar for G(x) = x - eta tanh x (so x_bar, -x_bar is a 2-cycle);
    # the multiplier is (G o G)'(x_bar), computed here by autograd; and gradient descent itself
    # (dsnn.gradient_descent.gd) ends on that cycle.
    for eta in (2.1, 2.5, 3.0, 4.0, 8.0):
        out = call(flip_orbit, eta)
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"flip_orbit must return a pair (x_bar, multiplier), got {out!r}")
        x_bar, multiplier = as_float("x_bar", out[0]), as_float("multiplier", out[1])
        if x_bar <= 0:
            raise CheckFailed(f"flip_orbit({eta}) gives x_bar = {x_bar:.6g}; x_bar must be > 0")
        close(
            f"G(x_bar) + x_bar = 2 x_bar - eta tanh(x_bar) for eta = {eta}",
            2 * x_bar - eta * np.tanh(x_bar),
            0.0,
            atol=1e-9,
        )
        x = torch.tensor(x_bar, dtype=torch.float64, requires_grad=True)
        one_step = x - eta * torch.tanh(x)
        (slope,) = torch.autograd.grad(one_step - eta * torch.tanh(one_step), x)
        close(f"multiplier of the 2-cycle for eta = {eta}", multiplier, float(slope), rtol=1e-6)
    for eta in (2.1, 3.0):
        run = gradient_descent.gd(lambda v: torch.log(torch.cosh(v)).sum(), [0.3], eta, n_steps=300)
        close(
            f"x_bar for eta = {eta} (gradient descent from 0.3 ends at |x_300|)",
            as_float("x_bar", call(flip_orbit, eta)[0]),
            abs(float(run.x_final[0])),
            rtol=1e-6,
        )
    return (
        "G(x_bar) = -x_bar, the multiplier is (G o G)'(x_bar), and gradient descent ends on the "
        "cycle, for five learning rates"
    )


# --- ex-gd-period-two: Newton's method for a 2-cycle of a map ---------------------------------


def _as_complex(name: str, value, size: int) -> np.ndarray:
    """``value`` as a finite complex vector of length ``size``, or a :class:`CheckFailed`."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=complex).reshape(-1)
    except (TypeError, ValueError) as err:
        raise CheckFailed(f"{name} must be numbers, got {type(value).__name__}") from err
    if array.size != size:
        raise CheckFailed(f"{name} must have {size} entries (one per dimension), got {array.size}")
    if not np.isfinite(array).all():
        raise CheckFailed(f"{name} contains NaN or infinite values")
    return array


def _same_multiset(name: str, got: np.ndarray, expected: np.ndarray, tol: float) -> None:
    """Raise unless ``got`` equals ``expected`` up to order (eigenvalues come in any order)."""
    best = min(
        max(abs(got[list(p)] - expected) / (1 + abs(expected)))
        for p in itertools.permutations(range(len(expected)))
    )
    if best > tol:
        shown = ", ".join(f"{v:.6g}" for v in expected)
        raise CheckFailed(
            f"{name} are [{', '.join(f'{v:.6g}' for v in got)}], but the eigenvalues of the "
            f"Jacobian of G o G at your x are [{shown}] (relative error {best:.2g})"
        )


def _exp_fit_problem():
    """GD map of the overdetermined fit z ~ x1 exp(-x2 t) at 1.1 times its stability threshold.

    Returns the map and a start near its stable 2-cycle (found by running gradient descent).
    """
    t = torch.linspace(0.0, 3.0, 20, dtype=torch.float64)
    noise = np.random.default_rng(0).standard_normal(20)
    z = 2 * torch.exp(-0.7 * t) + 0.05 * torch.as_tensor(noise)

    def loss(x):
        return 0.5 * ((x[0] * torch.exp(-x[1] * t) - z) ** 2).mean()

    fit = scipy.optimize.least_squares(
        lambda x: x[0] * np.exp(-x[1] * t.numpy()) - z.numpy(),
        [1.0, 1.0],
        xtol=1e-15,
        ftol=1e-15,
    )
    x_star = torch.tensor(fit.x)
    hess = torch.autograd.functional.hessian(loss, x_star)
    eta = 1.1 * gradient_descent.stability_threshold(hess.numpy())

    def gd_map(x):
        decay = torch.exp(-x[1] * t)
        residual = x[0] * decay - z
        return x - eta * torch.stack(
            [(residual * decay).mean(), -(residual * x[0] * t * decay).mean()]
        )

    run = gradient_descent.gd(loss, x_star + torch.tensor([1e-2, -1e-2]), eta, n_steps=200)
    return gd_map, run.x_final + torch.tensor([0.03, -0.03], dtype=torch.float64)


def _two_step_jacobian(gd_map, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(lambda v: gd_map(gd_map(v)), x)


def _newton_on_fixed_points(gd_map, x0, n_iter=50):
    # Newton's method on G(x) = x: finds the fixed point (the minimum), not the 2-cycle.
    x = torch.as_tensor(x0, dtype=torch.float64).clone()
    eye = torch.eye(x.numel(), dtype=x.dtype)
    for _ in range(n_iter):
        jac = torch.autograd.functional.jacobian(gd_map, x)
        x = x - torch.linalg.solve(jac - eye, gd_map(x) - x)
    return x, torch.linalg.eigvals(_two_step_jacobian(gd_map, x))


def _iterate_two_step(gd_map, x0, n_iter=50):
    # Iterating G o G instead of solving G(G(x)) = x: converges only to a stable cycle, slowly.
    x = torch.as_tensor(x0, dtype=torch.float64).clone()
    for _ in range(n_iter):
        x = gd_map(gd_map(x))
    return x, torch.linalg.eigvals(_two_step_jacobian(gd_map, x))


def _one_step_squared(gd_map, x0, n_iter=50):
    # Right cycle, but the multipliers as eigenvalues of G'(x)^2 instead of G'(G(x)) G'(x).
    x = torch.as_tensor(x0, dtype=torch.float64).clone()
    eye = torch.eye(x.numel(), dtype=x.dtype)
    for _ in range(n_iter):
        jac = _two_step_jacobian(gd_map, x)
        x = x - torch.linalg.solve(jac - eye, gd_map(gd_map(x)) - x)
    one = torch.autograd.functional.jacobian(gd_map, x)
    return x, torch.linalg.eigvals(one @ one)


@exercise(
    "ex-gd-period-two",
    chapter=CHAPTER,
    kind="computation",
    answer="period_two_orbit(gd_map, x0, n_iter=50) -> (x, multipliers): a point with "
    "G(G(x)) = x != G(x), and the eigenvalues of the Jacobian of G o G at x",
    wrong=[_newton_on_fixed_points, _iterate_two_step, _one_step_squared],
)
def _period_two(period_two_orbit):
    # Three maps: GD on log cosh at eta = 3 (stable cycle, tanh x = 2x/3, multiplier
    # (1 - 3 sech^2 x)^2); GD on L = x^2/2 + x^4/4 at eta = 1.5, whose 2-cycle +-1/sqrt(3) is
    # *unstable* (multiplier 4; iterating the map cannot find it); and GD on a two-parameter
    # exponential fit, whose 2-cycle is not symmetric, so that G'(G(x)) G'(x) != G'(x)^2.
    problems = [
        ("GD on log cosh, eta = 3", lambda x: x - 3.0 * torch.tanh(x), [1.0]),
        ("GD on x^2/2 + x^4/4, eta = 1.5", lambda x: x - 1.5 * (x + x**3), [0.65]),
    ]
    exp_map, exp_start = _exp_fit_problem()
    problems.append(("GD on the fit z ~ x1 exp(-x2 t), 2-D", exp_map, exp_start.tolist()))
    for name, gd_map, start in problems:
        x0 = torch.tensor(start, dtype=torch.float64)
        out = call(period_two_orbit, gd_map, x0.clone(), name="period_two_orbit")
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"period_two_orbit must return a pair (x, multipliers), got {out!r}")
        try:
            x = torch.as_tensor(as_array("x", out[0], shape=tuple(x0.shape)))
            multipliers = _as_complex("multipliers", out[1], x0.numel())
        except CheckFailed as err:
            raise CheckFailed(f"on {name}: {err}") from err
        with torch.no_grad():
            image = gd_map(x)
            back = gd_map(image)
        scale = 1.0 + float(x.norm())
        residual = float((back - x).norm())
        if residual > 1e-9 * scale:
            raise CheckFailed(
                f"on {name}: |G(G(x)) - x| = {residual:.3g} at your x = {x.numpy()}, so x is not "
                "on a 2-cycle (tolerance 1e-9)"
            )
        if float((image - x).norm()) < 1e-6 * scale:
            raise CheckFailed(
                f"on {name}: your x = {x.numpy()} is a fixed point of G (G(x) = x), the minimum, "
                "not a point of a 2-cycle"
            )
        expected = np.linalg.eigvals(_two_step_jacobian(gd_map, x).numpy())
        _same_multiset(f"on {name}, your multipliers", multipliers, expected, 1e-6)
        if name.startswith("GD on log cosh"):
            close(
                "|x| on the log cosh cycle (tanh x = 2x/3)", abs(float(x[0])), _log_cosh_cycle(3.0)
            )
        if name.startswith("GD on x^2/2"):
            close("the multiplier of the unstable 2-cycle", multipliers.real, [4.0], rtol=1e-6)
    return (
        "a genuine 2-cycle (G(G(x)) = x != G(x)) and its multipliers, on a stable, an unstable "
        "and a non-symmetric cycle"
    )


# --- ex-gd-flip-normal-form: supercritical or subcritical? -------------------------------------


def _flip_cases():
    """Quartic losses L = a x^2/2 + b x^3/6 + d x^4/24 and learning rates 0.5 % past 2/a."""
    cases = [
        (1.0, 0.0, -2.0),  # log cosh up to order four
        (4.0, 0.0, -6.0),
        (1.0, 3.0, 2.0),  # a positive quartic term, yet supercritical
        (2.0, -1.5, 1.0),
        (0.5, 0.4, -0.3),
        (1.0, 0.0, 6.0),  # subcritical
        (4.0, 1.0, 12.0),
        (1.0, 0.5, 3.0),
    ]
    return [(a, b, d, 1.005 * 2 / a) for a, b, d in cases]


def _coefficient(a, b, d, eta):
    return eta**2 * b**2 / 4 - eta * d / 6


@exercise(
    "ex-gd-flip-normal-form",
    chapter=CHAPTER,
    kind="exploration",
    answer="flip_amplitude(a, b, d, eta) -> half-width of the small 2-cycle of GD on "
    "a x^2/2 + b x^3/6 + d x^4/24 just past eta = 2/a, or 0.0 if there is none",
    wrong=[
        lambda a, b, d, eta: float(np.sqrt((eta * a - 2) / (-eta * d / 6))) if d < 0 else 0.0,
        lambda a, b, d, eta: (
            float(np.sqrt((eta - 2 / a) / c)) if (c := _coefficient(a, b, d, eta)) > 0 else 0.0
        ),
        lambda a, b, d, eta: float(np.sqrt(abs((eta * a - 2) / _coefficient(a, b, d, eta)))),
    ],
)
def _flip_normal_form(flip_amplitude):
    # The oracle is a run: all eight losses at once with dsnn.gradient_descent.gd_batch, from
    # x0 = 0.01, for 2000 steps (plus one, to read off both points of the cycle). A run that
    # diverges has no small 2-cycle to settle on (subcritical flip); the others end on one.
    cases = _flip_cases()
    a, b, d, eta = (torch.tensor(v, dtype=torch.float64) for v in zip(*cases, strict=True))

    def loss(x):
        v = x[:, 0]
        return a * v**2 / 2 + b * v**3 / 6 + d * v**4 / 24

    even = gradient_descent.gd_batch(
        loss, torch.full((len(cases), 1), 0.01, dtype=torch.float64), eta, n_steps=2000
    )
    odd = gradient_descent.gd_batch(loss, even.x_final, eta, n_steps=1)
    diverged = (even.diverged | odd.diverged).numpy()
    width = ((even.x_final - odd.x_final).abs()[:, 0] / 2).numpy()
    for (a_i, b_i, d_i, eta_i), div, measured in zip(cases, diverged, width, strict=True):
        label = f"flip_amplitude(a={a_i}, b={b_i}, d={d_i}, eta={eta_i:.5g})"
        got = as_float(label, call(flip_amplitude, a_i, b_i, d_i, eta_i))
        if div:
            if got != 0.0:
                raise CheckFailed(
                    f"{label} = {got:.6g}, but gradient descent diverges there: no small stable "
                    "2-cycle exists past the threshold (subcritical flip), so the answer is 0.0"
                )
        else:
            close(label + " (measured half-width of the 2-cycle)", got, measured, rtol=0.03)
    return (
        "the predicted half-widths match gradient descent within 3 % on five supercritical "
        "losses, and the three subcritical ones are recognised"
    )


# --- ex-gd-learning-rate-sweep: where on the hyperbola gradient descent can end -------------


def _mu_on_hyperbola(u: float, eta: float, c: float, y: np.ndarray) -> float:
    """mu at sqrt(c) (e^u, e^-u) from the package: NTK Gram matrix and eq. 2.18."""
    x = torch.tensor(np.sqrt(c) * np.array([np.exp(u), np.exp(-u)]), requires_grad=True)
    gram = hessian.ntk_gram(lambda inputs: x[0] * x[1] * inputs, x, y)
    return gradient_descent.gd_exponent(gram, eta, restrict_to_range=True)


@exercise(
    "ex-gd-learning-rate-sweep",
    chapter=CHAPTER,
    kind="exploration",
    answer="stable_edge(eta, c, y) -> largest |u| with mu(u) < 0 on the hyperbola x1 x2 = c",
    wrong=[
        lambda eta, c, y: float(np.arccosh(1 / (eta * c * np.mean(np.square(y))))),
        lambda eta, c, y: float(np.arccosh(1 / (eta * c * np.mean(y) ** 2)) / 2),
        lambda eta, c, y: float(np.arccosh(2 / (eta * c * np.mean(np.square(y)))) / 2),
    ],
)
def _learning_rate_sweep(stable_edge):
    # Two oracles. (1) The package's mu (NTK Gram matrix, eq. 2.18) vanishes at the edge and
    # changes sign there. (2) Gradient descent from 300 random starts per learning rate
    # (gd_batch, one batch): no converged run ends beyond the edge (Theorem A), and the runs
    # reach close to it.
    cases = [
        (0.1, 1.0, [1.0, 2.0]),
        (0.05, 1.0, [1.0, 2.0]),
        (0.2, 1.0, [1.0, 2.0]),
        (0.3, 0.5, [0.5, 1.0, 1.5]),
        (0.02, 3.0, [1.0, -2.0, 3.0]),
    ]
    edges = {}
    for eta, c, y in cases:
        label = f"stable_edge(eta={eta}, c={c}, y={y})"
        u_edge = as_float(label, call(stable_edge, eta, c, np.array(y)))
        if u_edge <= 0:
            raise CheckFailed(f"{label} = {u_edge:.6g}; the edge is a positive |u|")
        y_arr = np.array(y)
        mu_edge = _mu_on_hyperbola(u_edge, eta, c, y_arr)
        inside = _mu_on_hyperbola(0.999 * u_edge, eta, c, y_arr)
        outside = _mu_on_hyperbola(1.001 * u_edge, eta, c, y_arr)
        if not (inside < 0 < outside) or abs(mu_edge) > 1e-6:
            raise CheckFailed(
                f"{label} = {u_edge:.6g}, but there mu = {mu_edge:.3g} (should be 0), and mu is "
                f"{inside:.3g} just inside and {outside:.3g} just outside (should be < 0 and > 0)"
            )
        edges[eta] = u_edge
    etas = np.repeat([0.05, 0.1, 0.2], 300)
    starts = np.random.default_rng(1).uniform(-4, 4, size=(len(etas), 2))
    y = np.array([1.0, 2.0])
    ends = gradient_descent.gd_batch(gradient_descent.product_loss(y, y), starts, etas, 1000)
    converged = ~ends.diverged.numpy() & (ends.loss_final.numpy() < 1e-12)
    x_end = ends.x_final.numpy()
    u_end = np.abs(0.5 * np.log(np.abs(x_end[:, 0] / x_end[:, 1])))
    for eta in (0.05, 0.1, 0.2):
        reached = u_end[converged & (etas == eta)].max()
        if reached > edges[eta] + 1e-6 or reached < 0.85 * edges[eta]:
            raise CheckFailed(
                f"for eta = {eta}, c = 1, y = [1, 2], converged gradient descent runs end at "
                f"|u| up to {reached:.4f}, while your edge is {edges[eta]:.4f}"
            )
    return (
        "mu changes sign at the predicted edge for five data sets, and gradient descent ends "
        "inside it, close to it, for three learning rates"
    )


# --- ex-gd-three-points: inconsistent data ----------------------------------------------------


@exercise(
    "ex-gd-three-points",
    chapter=CHAPTER,
    kind="derivation",
    answer="minimum_product(y, z) -> (p_star, loss_min): the value of x1 x2 at every minimum "
    "and the minimal loss",
    wrong=[
        lambda y, z: (
            float(np.mean(np.asarray(z) / np.asarray(y))),
            0.0,
        ),
        lambda y, z: (
            (p := float(np.mean(z) / np.mean(y))),
            0.5 * float(np.mean((p * np.asarray(y) - np.asarray(z)) ** 2)),
        ),
        lambda y, z: (
            float(np.mean(np.multiply(y, z)) / np.mean(np.square(y))),
            float(np.mean(np.square(z)) - np.mean(np.multiply(y, z)) ** 2 / np.mean(np.square(y))),
        ),
        lambda y, z: (float(np.mean(np.multiply(y, z)) / np.mean(np.square(y))), 0.0),
    ],
)
def _three_points(minimum_product):
    # Properties, with the package's loss L(x) = (1/N) sum 1/2 (x1 x2 y_i - z_i)^2: the gradient
    # vanishes on the hyperbola x1 x2 = p_star, L equals loss_min there and nowhere is below it,
    # and gradient descent (gd_batch) from random starts ends at loss_min on that hyperbola.
    rng = np.random.default_rng(4)
    data = [
        ([1.0, 2.0, 1.0], [1.0, 2.0, 2.0]),
        ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]),  # consistent: the minima interpolate
        (list(rng.uniform(0.5, 2.0, 5)), list(rng.normal(1.0, 1.0, 5))),
        ([-1.0, 0.5, 2.0, 1.5], [0.3, -1.0, 1.0, 2.5]),
    ]
    for y, z in data:
        label = f"minimum_product(y={np.round(y, 3).tolist()}, z={np.round(z, 3).tolist()})"
        out = call(minimum_product, np.array(y), np.array(z), name="minimum_product")
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"minimum_product must return a pair (p_star, loss_min), got {out!r}")
        p_star, loss_min = as_float("p_star", out[0]), as_float("loss_min", out[1])
        loss = gradient_descent.product_loss(y, z)
        u = torch.tensor([[0.0], [0.7], [-1.2]], dtype=torch.float64)
        root = np.sqrt(abs(p_star))
        x = torch.cat([root * torch.exp(u), np.sign(p_star) * root * torch.exp(-u)], dim=1)
        x.requires_grad_(True)
        values = loss(x)
        (grad,) = torch.autograd.grad(values.sum(), x)
        close(
            f"{label}: |grad L| on the hyperbola x1 x2 = p_star",
            float(grad.norm()),
            0.0,
            atol=1e-10,
        )
        close(
            f"{label}: loss_min against L on the hyperbola x1 x2 = p_star",
            loss_min,
            float(values[0].detach()),
            rtol=1e-8,
            atol=1e-12,
        )
        cloud = torch.as_tensor(rng.uniform(-3, 3, size=(2000, 2)))
        lowest = float(loss(cloud).min())
        if lowest < loss_min - 1e-12:
            raise CheckFailed(
                f"{label}: L takes the value {lowest:.6g} < loss_min = {loss_min:.6g}"
            )
        starts = rng.uniform(-1.5, 1.5, size=(16, 2))
        ends = gradient_descent.gd_batch(loss, starts, 0.05, n_steps=800)
        done = ~ends.diverged.numpy()
        close(
            f"{label}: loss_min against the end of gradient descent",
            loss_min,
            float(ends.loss_final.numpy()[done].min()),
            rtol=1e-8,
            atol=1e-12,
        )
    return (
        "x1 x2 = p_star is where the gradient vanishes and L attains loss_min, for four data sets"
    )
