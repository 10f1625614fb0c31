"""Delay equations and neural DDEs, tested against exact solutions and classical DDE theory.

Oracles: the method-of-steps polynomials of y' = −y(t − 1) (derived here with sympy), the
characteristic equation λ + K e^{−λτ} = 0 of x' = −K x(t − τ) (real root iff Kτ ≤ 1/e,
stability iff Kτ < π/2), the neural ODE h' = f(h, h) as the limit τ → 0 (torchdiffeq), finite
differences for gradients, and an independent scipy method of steps for Mackey–Glass.
"""

import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch

from dsnn import delay, neural_ode, stats

F64 = torch.float64


def minus_delayed(t, h, h_tau):
    return -h_tau


@pytest.fixture(scope="module")
def exact_pieces():
    """The solution of y' = −y(t − 1), y ≡ 1 on [−1, 0], as polynomials on [k, k+1], k < 8.

    Method of steps by hand (with sympy): on [k, k+1] the delayed term is the previous piece
    shifted by one, so y(t) = y(k) − ∫_k^t y(s − 1) ds.
    """
    t, s = sp.symbols("t s")
    pieces, previous, start = [], sp.Integer(1), sp.Integer(1)
    for k in range(8):
        delayed = previous.subs(t, s - 1) if k > 0 else sp.Integer(1)
        piece = sp.expand(start - sp.integrate(delayed, (s, k, t)))
        pieces.append(piece)
        previous, start = piece, piece.subs(t, k + 1)
    return t, pieces


def exact_on_grid(exact_pieces, times):
    t, pieces = exact_pieces
    funcs = [sp.lambdify(t, p, "numpy") for p in pieces]
    times = np.asarray(times, dtype=float)
    index = np.clip(np.ceil(times).astype(int) - 1, 0, len(pieces) - 1)  # piece on [k, k+1]
    return np.array([float(funcs[i](x)) for i, x in zip(index, times, strict=True)])


def test_method_of_steps_polynomials_by_hand(exact_pieces):
    t, pieces = exact_pieces
    assert sp.simplify(pieces[0] - (1 - t)) == 0
    assert sp.simplify(pieces[1] - ((t - 2) ** 2 / 2 - sp.Rational(1, 2))) == 0
    third = -sp.Rational(1, 2) + (t - 2) / 2 - (t - 3) ** 3 / 6 - sp.Rational(1, 6)
    assert sp.simplify(pieces[2] - third) == 0
    assert [sp.degree(p, t) for p in pieces[:4]] == [1, 2, 3, 4]


@pytest.mark.parametrize(("method", "exact_until"), [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_each_scheme_is_exact_on_the_pieces_its_quadrature_integrates(
    exact_pieces, method, exact_until
):
    # On [k, k+1] the scheme integrates the known delayed term, a polynomial of degree k − 1.
    # Euler (rectangle rule) is exact for constants, Heun (trapezoid) for degree 1, RK4 (Simpson,
    # with cubic Hermite history) for degree 3: the solution is exact to rounding on [0, 1],
    # [0, 2] and [0, 4] respectively, and not on the next piece.
    times, states = delay.solve_dde(
        minus_delayed, torch.ones(1, dtype=F64), 1.0, 5.0, 0.125, method
    )
    error = np.abs(states[:, 0].numpy() - exact_on_grid(exact_pieces, times.numpy()))
    t = times.numpy()
    assert error[t <= exact_until].max() < 1e-13
    assert error[(t > exact_until) & (t <= exact_until + 1)].max() > 1e-9


@pytest.mark.parametrize(
    ("method", "order", "steps"),
    [("euler", 1, [64, 128, 256, 512]), ("heun", 2, [8, 16, 32, 64]), ("rk4", 4, [4, 8, 16, 32])],
)
def test_observed_convergence_order_equals_the_method_order(exact_pieces, method, order, steps):
    t, pieces = exact_pieces
    exact = float(pieces[7].subs(t, 8))
    errors = []
    for m in steps:
        _, states = delay.solve_dde(
            minus_delayed, torch.ones(1, dtype=F64), 1.0, 8.0, 1 / m, method
        )
        errors.append(abs(float(states[-1, 0]) - exact))
    assert stats.loglog_slope(steps, errors) == pytest.approx(-order, abs=0.1)
    assert delay.ORDERS[method] == order


def test_callable_history_is_used_between_grid_points():
    # y' = y(t − 1) with history y(s) = s^2 + 1: on [0, 1], y(t) = 1 + ∫_0^t ((s − 1)^2 + 1) ds.
    def history(s):
        return torch.tensor([s * s + 1.0], dtype=F64)

    times, states = delay.solve_dde(lambda t, h, ht: ht, history, 1.0, 1.0, 0.25, "rk4")
    t = times.numpy()
    exact = 1 + ((t - 1) ** 3 + 1) / 3 + t
    np.testing.assert_allclose(states[:, 0].numpy(), exact, atol=1e-14)


def test_delayed_exponential_is_the_method_of_steps_solution(exact_pieces):
    t = np.linspace(-1, 8, 91)
    np.testing.assert_allclose(
        delay.delayed_exponential(1.0, 1.0, t)[t > 0],
        exact_on_grid(exact_pieces, t[t > 0]),
        atol=1e-12,
    )
    # Scaling: x' = −K x(t − τ) is y' = −(Kτ) y(s − 1) in s = t/τ.
    np.testing.assert_allclose(
        delay.delayed_exponential(2.0, 0.5, 0.5 * t), delay.delayed_exponential(1.0, 1.0, t)
    )


def test_scipy_reference_matches_the_exact_solution(exact_pieces):
    t = np.linspace(0, 8, 81)
    ref = delay.reference_solution(lambda t, y, yt: -yt, np.ones(1), 1.0, t)
    np.testing.assert_allclose(ref[:, 0], exact_on_grid(exact_pieces, t), atol=1e-10)


def linear_solutions(a_values, t_final, dt=0.05):
    """x' = −a x(s − 1), x ≡ 1, for every a at once (one batched solve)."""
    a = torch.tensor(a_values, dtype=F64)[:, None]
    return delay.solve_dde(lambda t, h, ht: -a * ht, torch.ones_like(a), 1.0, t_final, dt)


def test_oscillation_threshold_one_over_e():
    below = [0.2, 0.3, math.exp(-1) - 0.01]
    above = [math.exp(-1) + 0.02, 0.5, 1.0]
    _, states = linear_solutions(below + above, 20.0)
    minima = states[..., 0].min(dim=0).values.numpy()
    assert (minima[:3] > 0).all()
    assert (minima[3:] < 0).all()


def test_stability_threshold_pi_over_two():
    _, states = linear_solutions([1.5, 1.6], 200.0, dt=0.1)
    late = states[-100:, :, 0].abs().max(dim=0).values  # the last 10 time units
    early = states[:200, :, 0].abs().max(dim=0).values
    assert late[0] < 1e-2 * early[0]  # Kτ = 1.5 < π/2: decays
    assert late[1] > 10 * early[1]  # Kτ = 1.6 > π/2: grows


def test_decay_rate_of_known_signals():
    t = np.linspace(0, 30, 3001)
    assert delay.decay_rate(t, 2 * np.exp(-0.3 * t) * np.cos(2 * t + 0.4)) == pytest.approx(
        -0.3, abs=1e-4
    )
    assert delay.decay_rate(t, np.exp(0.05 * t)) == pytest.approx(0.05, abs=1e-12)
    with pytest.raises(ValueError, match="must not vanish"):
        delay.decay_rate([0.0, 1.0, 2.0], [1.0, 0.0, 0.5])


@pytest.mark.parametrize("a", [0.2, 1.0, 1.5, 1.6])
def test_decay_rate_is_the_real_part_of_the_lambert_w_root(a):
    # Late in time x(t) ≈ C e^{Re λ t} cos(Im λ t + φ) with λ the rightmost root.
    root = complex(delay.characteristic_root(a, 1.0))
    times, states = linear_solutions([a], 90.0, dt=0.02)
    keep = times.numpy() >= 20
    rate = delay.decay_rate(times.numpy()[keep], states[keep, 0, 0].numpy())
    assert rate == pytest.approx(root.real, abs=1e-3)


def test_characteristic_root_solves_the_characteristic_equation():
    K = np.array([0.1, 0.3, 1 / math.e, 0.5, 1.0, math.pi / 2, 3.0])
    tau = np.array([1.0, 2.0, 1.0, 0.7, 1.0, 1.0, 0.4])
    lam = delay.characteristic_root(K, tau)
    np.testing.assert_allclose(lam + K * np.exp(-lam * tau), 0, atol=1e-12)
    kt = K * tau
    assert (np.abs(lam.imag[kt < 1 / math.e - 1e-9]) < 1e-12).all()
    assert (np.abs(lam.imag[kt > 1 / math.e + 1e-9]) > 1e-3).all()
    assert abs(lam[5].real) < 1e-12 and lam[5].imag == pytest.approx(math.pi / 2)
    # Rightmost among the branches: no other branch has a larger real part.
    from scipy.special import lambertw

    regular = np.abs(kt - 1 / math.e) > 1e-9  # W_{-1} is NaN at the branch point itself
    for k in (-2, -1, 1, 2):
        other = lambertw(-kt[regular], k).real / tau[regular]
        assert (other <= lam.real[regular] + 1e-12).all()


def test_linear_time_t_map_reverses_orientation_only_above_one_over_e():
    # History x (identity lift): h_x(T) = c(T) x. Increasing for all T when Kτ <= 1/e.
    x = torch.linspace(-1, 1, 5, dtype=F64)[:, None]
    for a, reverses in [(0.3, False), (math.exp(-1), False), (1.0, True)]:
        _, states = delay.solve_dde(lambda t, h, ht, a=a: -a * ht, x, 1.0, 20.0, 0.05)
        slopes = torch.diff(states[..., 0], dim=1)  # Φ(x_{i+1}) − Φ(x_i) at every T
        assert bool((slopes < 0).any()) == reverses


def test_solver_matches_the_delayed_exponential_for_general_k_and_tau():
    times, states = delay.solve_dde(
        lambda t, h, ht: -1.3 * ht, torch.ones(1, dtype=F64), 0.5, 4.0, 0.05
    )
    exact = delay.delayed_exponential(1.3, 0.5, times.numpy())
    np.testing.assert_allclose(states[:, 0].numpy(), exact, atol=1e-7)  # RK4 at 10 steps/delay


def test_reversal_threshold_closed_forms_and_limit():
    assert delay.reversal_threshold(1) == pytest.approx(1.0, abs=1e-12)
    assert delay.reversal_threshold(2) == pytest.approx(2 - math.sqrt(2), abs=1e-12)
    values = [delay.reversal_threshold(n) for n in (1, 2, 3, 5, 10, 30)]
    assert all(b < a for a, b in itertools.pairwise(values))
    assert 1 / math.e < values[-1] < 1 / math.e + 5e-3


@pytest.mark.parametrize("n", [2, 3, 4])
def test_reversal_threshold_separates_positive_from_sign_changing_solutions(n):
    a_star = delay.reversal_threshold(n)
    _, states = linear_solutions([a_star - 2e-3, a_star + 2e-3], float(n), dt=0.01)
    minima = states[..., 0].min(dim=0).values
    assert minima[0] > 0 > minima[1]


def test_small_delay_recovers_the_neural_ode_linearly_in_tau():
    field = delay.TanhDelayField(2, 8, lipschitz=2.0, seed=3)
    with torch.no_grad():
        field.gain.fill_(3.0)
    x0 = torch.tensor([[0.5, -0.3], [-1.0, 0.8]], dtype=F64)
    with torch.no_grad():
        ode = neural_ode.ode_flow(lambda t, h: field(t, h, h), x0, 1.0, rtol=1e-11, atol=1e-12)
        taus = [0.1, 0.05, 0.025, 0.0125]
        errors = []
        for tau in taus:
            _, states = delay.solve_dde(field, x0, tau, 1.0, tau / 4)
            errors.append(float((states[-1] - ode).norm(dim=-1).max()))
    assert all(b < a for a, b in itertools.pairwise(errors))
    assert stats.loglog_slope(taus, errors) == pytest.approx(1.0, abs=0.1)


def test_dense_resnet_converges_with_order_one(exact_pieces):
    t, pieces = exact_pieces
    exact = float(pieces[3].subs(t, 4))
    lags = [32, 64, 128, 256]
    errors = [
        abs(
            float(delay.dense_resnet(minus_delayed, torch.ones(1, dtype=F64), m, 4 * m, 1 / m)[0])
            - exact
        )
        for m in lags
    ]
    assert stats.loglog_slope(lags, errors) == pytest.approx(-1.0, abs=0.05)


def test_dense_resnet_is_the_lagged_residual_recursion():
    # h_{l+1} = h_l + dt * f(h_l, h_{l-2}) with h_l = 1 for l <= 0, written out for 4 layers.
    def f(t, h, h_lag):
        return torch.sin(h) - 2.0 * h_lag

    dt, h = 0.3, [1.0, 1.0, 1.0]  # h_{-2}, h_{-1}, h_0
    for _ in range(4):
        h.append(h[-1] + dt * (math.sin(h[-1]) - 2.0 * h[-3]))
    states = delay.dense_resnet(f, torch.ones(1, dtype=F64), 2, 4, dt, return_states=True)
    np.testing.assert_allclose(states[:, 0].numpy(), h[2:], atol=1e-15)


def test_mackey_glass_matches_the_scipy_reference_to_t_50():
    field = delay.mackey_glass()
    times, states = delay.solve_dde(field, torch.tensor([1.2], dtype=F64), 17.0, 50.0, 0.1)
    ref = delay.reference_solution(
        field, np.array([1.2]), 17.0, times.numpy(), rtol=1e-12, atol=1e-12
    )
    assert np.abs(states[:, 0].numpy() - ref[:, 0]).max() < 1e-6


def test_gradcheck_through_the_solver():
    def solve(theta, h0):
        def f(t, h, ht):
            return theta[0] * torch.tanh(theta[1] * h + theta[2] * ht + theta[3])

        return delay.solve_dde(f, h0, 0.5, 1.0, 0.125, "rk4").states[-1]

    theta = torch.tensor([0.7, -0.4, 1.1, 0.2], dtype=F64, requires_grad=True)
    h0 = torch.tensor([[0.3], [-0.5]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(solve, (theta, h0))


def test_neural_dde_parameter_gradient_matches_finite_differences():
    model = delay.NeuralDDE(1, 2, 1, 0.5, 1.5, lipschitz=2.0, steps_per_delay=4, seed=2)
    x = torch.linspace(-1, 1, 7, dtype=F64)[:, None]

    def loss():
        return ((model(x) - x**2) ** 2).mean()

    weight = model.field.past.weight
    model.zero_grad()
    loss().backward()
    auto = weight.grad[1, 0].item()
    eps = 1e-6
    with torch.no_grad():
        weight[1, 0] += eps
        up = loss().item()
        weight[1, 0] -= 2 * eps
        down = loss().item()
        weight[1, 0] += eps
    assert auto == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_lipschitz_bound_holds_and_sets_the_memory_capacity():
    model = delay.NeuralDDE(1, 3, 1, 0.5, 1.0, width=5, lipschitz=2.0, seed=1)
    field = model.field
    with torch.no_grad():
        field.gain.fill_(10.0)  # |tanh g| -> 1: the bound is (almost) attained as a bound
    assert model.memory_capacity <= 2.0 * 0.5 + 1e-12
    # Empirical Lipschitz quotients in the max norm of pairs never exceed the bound.
    g = torch.Generator().manual_seed(0)
    h, ht = (
        torch.randn(2000, 3, dtype=F64, generator=g),
        torch.randn(2000, 3, dtype=F64, generator=g),
    )
    dh, dht = 1e-3 * torch.randn(2, 2000, 3, dtype=F64, generator=g)
    with torch.no_grad():
        num = (field(0.0, h + dh, ht + dht) - field(0.0, h, ht)).norm(dim=1)
    den = torch.maximum(dh.norm(dim=1), dht.norm(dim=1))
    assert float((num / den).max()) <= field.lipschitz_bound() <= 2.0 + 1e-12


def test_fit_trains_each_model_as_if_alone():
    x = torch.linspace(-1, 1, 9, dtype=F64)[:, None]
    y = x**2

    def make():
        return [
            delay.NeuralDDE(1, 1, 1, 1.0, 2.0, lipschitz=K, steps_per_delay=4, seed=s)
            for K, s in [(0.5, 0), (2.0, 1)]
        ]

    together = delay.fit(make(), x, y, n_iter=15)
    alone = [delay.fit(model, x, y, n_iter=15).losses[:, 0] for model in make()]
    torch.testing.assert_close(together.losses, torch.stack(alone, dim=1))
    assert not together.diverged.any()


def test_fit_reaches_a_target_the_architecture_represents():
    # With a trainable readout, −x is the affine part alone (W̃ = −1): the loss must go to ~0.
    x = torch.linspace(-1, 1, 11, dtype=F64)[:, None]
    model = delay.NeuralDDE(1, 1, 1, 1.0, 1.0, lipschitz=0.1, steps_per_delay=2, method="heun")
    result = delay.fit(model, x, -x, n_iter=300, lr=0.05)
    assert float(result.best[0]) < 1e-3 < float(result.losses[0, 0])
    assert model.memory_capacity <= 0.1 + 1e-12  # training never leaves the class


def test_fit_with_a_custom_field_uses_the_generic_path():
    x = torch.linspace(-1, 1, 5, dtype=F64)[:, None]
    models = [
        delay.NeuralDDE(
            1, 1, 1, 1.0, 2.0, field=LinearDelay(), steps_per_delay=4, train_affine=False
        )
        for _ in range(2)
    ]
    result = delay.fit(models, x, 0.5 * x, n_iter=60, lr=0.05)
    # c(2τ) = 1 − 2k + k²/2 = 1/2 at k = 2 − √3: the fixed-lift model finds the linear gain.
    assert models[0].field.k.item() == pytest.approx(2 - math.sqrt(3), abs=2e-2)
    assert result.losses.shape == (61, 2)


class LinearDelay(torch.nn.Module):
    """f(t, h, h_tau) = −k h_tau with a trainable gain k."""

    def __init__(self, k=0.1):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(k, dtype=F64))

    def forward(self, t, h, ht):
        return -self.k * ht


def test_linear_neural_dde_with_fixed_lift_is_the_delayed_exponential_map():
    # Identity lift and readout, f = −K h(t − τ): h_x(t) = c(t) x with c the delayed exponential.
    model = delay.NeuralDDE(
        1, 1, 1, 0.5, 1.5, field=LinearDelay(1.4), steps_per_delay=25, train_affine=False
    )
    x = torch.tensor([[-1.0], [0.3], [2.0]], dtype=F64)
    with torch.no_grad():
        sol = model.hidden(x)
        out = model(x)
    c = delay.delayed_exponential(1.4, 0.5, sol.times.numpy())
    np.testing.assert_allclose(sol.states[:, :, 0].numpy(), c[:, None] * x[:, 0].numpy(), atol=1e-8)
    np.testing.assert_allclose(out[:, 0].numpy(), c[-1] * x[:, 0].numpy(), atol=1e-8)
    with pytest.raises(TypeError, match="memory_capacity needs the default TanhDelayField"):
        _ = model.memory_capacity


def test_blow_up_is_flagged_per_trajectory():
    # h' = h(t − τ)^3 from h ≡ 5 overflows within a few delays; from h ≡ 0.1 it does not.
    history = torch.tensor([[0.1], [5.0]], dtype=F64)
    sol = delay.solve_dde(lambda t, h, ht: ht**3, history, 0.5, 5.0, 0.05)
    assert sol.blew_up.tolist() == [False, True]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau": 0.0}, "tau must be > 0"),
        ({"tau": -1.0}, "tau must be > 0"),
        ({"t_final": 0.0}, "t_final must be > 0"),
        ({"dt": 0.3}, "tau must be a positive integer multiple of dt"),
        ({"dt": 2.0}, "dt must not exceed tau"),
        ({"t_final": 1.05}, "t_final must be a positive integer multiple of dt"),
        ({"history": torch.tensor(1.0)}, "history must have shape"),
        ({"history": [[np.nan]]}, "history must contain only finite"),
        ({"history": lambda s: torch.ones(1 if s == 0 else 2)}, "same shape at every s"),
        ({"f": lambda t, h, ht: h.sum()}, "must return a tensor of the state's shape"),
        ({"f": "not a field"}, "f must be a callable"),
        ({"method": "rk45"}, "method must be one of"),
    ],
)
def test_solve_dde_rejects_bad_input(kwargs, match):
    args = {
        "f": minus_delayed,
        "history": torch.ones(2, 1, dtype=F64),
        "tau": 1.0,
        "t_final": 2.0,
        "dt": 0.25,
    } | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        delay.solve_dde(**args)


def test_other_functions_reject_bad_input():
    ones = torch.ones(1, dtype=F64)
    with pytest.raises(ValueError, match="lag must be an integer >= 1"):
        delay.dense_resnet(minus_delayed, ones, 0, 4, 0.1)
    with pytest.raises(ValueError, match="n_layers must be an integer >= 1"):
        delay.dense_resnet(minus_delayed, ones, 1, 0, 0.1)
    with pytest.raises(ValueError, match="t_eval must be increasing"):
        delay.reference_solution(lambda t, y, yt: -yt, [1.0], 1.0, [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="K must be >= 0"):
        delay.characteristic_root(-1.0, 1.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        delay.characteristic_root(1.0, 0.0)
    with pytest.raises(ValueError, match="t must be >= -tau"):
        delay.delayed_exponential(1.0, 1.0, [-2.0])
    with pytest.raises(ValueError, match="n_delays must be an integer >= 1"):
        delay.reversal_threshold(0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        delay.mackey_glass(beta=0.0)
    with pytest.raises(ValueError, match="lipschitz must be > 0"):
        delay.TanhDelayField(2, lipschitz=-1.0)


def test_neural_dde_rejects_bad_input():
    with pytest.raises(ValueError, match="t_final must be a positive integer multiple"):
        delay.NeuralDDE(1, 1, 1, 1.0, 1.05, steps_per_delay=10)
    with pytest.raises(ValueError, match="train_affine=False needs dim_phase >= dim_in"):
        delay.NeuralDDE(2, 1, 1, 1.0, 1.0, train_affine=False)
    with pytest.raises(TypeError, match=r"field must be a torch\.nn\.Module"):
        delay.NeuralDDE(1, 1, 1, 1.0, 1.0, field=minus_delayed)
    with pytest.raises(ValueError, match="tau must be > 0"):
        delay.NeuralDDE(1, 1, 1, -1.0, 1.0)
    model = delay.NeuralDDE(2, 2, 1, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\)"):
        model(torch.zeros(3, 1, dtype=F64))
    x = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 1\)"):
        delay.fit(model, x, torch.zeros(4, 2, dtype=F64))
    with pytest.raises(ValueError, match="all models must share"):
        delay.fit([model, delay.NeuralDDE(2, 2, 1, 1.0, 2.0)], x, torch.zeros(4, 1, dtype=F64))
    with pytest.raises(TypeError, match="models must be a NeuralDDE"):
        delay.fit([], x, torch.zeros(4, 1, dtype=F64))
