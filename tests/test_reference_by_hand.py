"""The NumPy reference against values worked out by hand from SPEC.md.

Three elements, two steps, each rule with round hyper-parameters.  The expected
values are SPEC's formulas written out for these numbers, one scalar at a time,
in float64: an independent derivation, not the reference's code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gdfast import reference

THETA0 = [1.0, -2.0, 0.5]
G1 = [0.5, -1.0, 2.0]
G2 = [-0.25, 0.5, 4.0]


def run_reference(rule_class, **hyper):
    theta = np.array(THETA0)
    optimizer = rule_class(theta, **hyper)
    optimizer.step(np.array(G1))
    after_one = theta.copy()
    optimizer.step(np.array(G2))
    return after_one, theta, optimizer


def check(rule_class, expected_one, expected_two, **hyper):
    after_one, after_two, optimizer = run_reference(rule_class, **hyper)
    np.testing.assert_allclose(after_one, expected_one, rtol=1e-15, atol=0)
    np.testing.assert_allclose(after_two, expected_two, rtol=1e-15, atol=0)
    return optimizer


def test_sgd():
    # θ1 = θ0 − 0.1 g1 ; θ2 = θ1 − 0.1 g2
    check(reference.SGD, [0.95, -1.9, 0.3], [0.975, -1.95, -0.1], lr=0.1)


def test_momentum():
    # v1 = 0.1 g1 = [0.05, -0.1, 0.2]          θ1 = θ0 − v1 = [0.95, -1.9, 0.3]
    # v2 = 0.5 v1 + 0.1 g2 = [0, 0, 0.5]        θ2 = θ1 − v2 = [0.95, -1.9, -0.2]
    optimizer = check(
        reference.Momentum, [0.95, -1.9, 0.3], [0.95, -1.9, -0.2], lr=0.1, momentum=0.5
    )
    np.testing.assert_allclose(optimizer.state["velocity"][0], [0.0, 0.0, 0.5], atol=1e-17)


def test_nesterov():
    # v1 = 0.1 g1 = [0.05, -0.1, 0.2] ; φ1 = φ0 − (0.5 v1 + 0.1 g1) = φ0 − [0.075, -0.15, 0.3]
    # v2 = 0.5 v1 + 0.1 g2 = [0, 0, 0.5] ; φ2 = φ1 − (0.5 v2 + 0.1 g2) = φ1 − [-0.025, 0.05, 0.65]
    check(reference.Nesterov, [0.925, -1.85, 0.2], [0.95, -1.9, -0.45], lr=0.1, momentum=0.5)


def test_adagrad():
    eps = 1e-8
    G_1 = [g * g for g in G1]  # [0.25, 1, 4]
    G_2 = [a + g * g for a, g in zip(G_1, G2)]  # [0.3125, 1.25, 20]
    one = [t - 0.1 * g / math.sqrt(G + eps) for t, g, G in zip(THETA0, G1, G_1)]
    two = [t - 0.1 * g / math.sqrt(G + eps) for t, g, G in zip(one, G2, G_2)]
    # by eye: step 1 moves each coordinate by ≈ 0.1 against the sign of its gradient
    assert np.allclose(one, [0.9, -1.9, 0.4], atol=1e-8)
    optimizer = check(reference.Adagrad, one, two, lr=0.1, eps=eps)
    np.testing.assert_allclose(optimizer.state["sum_sq"][0], [0.3125, 1.25, 20.0], rtol=1e-15)


def test_adadelta():
    rho, eps, lr = 0.9, 1e-6, 1.0
    theta, E_g, E_d = list(THETA0), [0.0] * 3, [0.0] * 3
    history = []
    for g in (G1, G2):
        for i in range(3):
            E_g[i] = rho * E_g[i] + (1 - rho) * g[i] ** 2
            delta = -(math.sqrt(E_d[i] + eps) / math.sqrt(E_g[i] + eps)) * g[i]
            E_d[i] = rho * E_d[i] + (1 - rho) * delta**2
            theta[i] = theta[i] + lr * delta
        history.append(list(theta))
    # by eye: the first step is about −√(ε/(0.1)) · sign(g) = ∓0.00316
    assert np.allclose(np.subtract(history[0], THETA0), [-0.00316, 0.00316, -0.00316], atol=2e-5)
    optimizer = check(reference.Adadelta, history[0], history[1], lr=lr, rho=rho, eps=eps)
    np.testing.assert_allclose(optimizer.state["acc_delta"][0], E_d, rtol=1e-15)


def test_rmsprop():
    rho, eps, lr = 0.9, 1e-8, 0.01
    E_1 = [(1 - rho) * g * g for g in G1]
    E_2 = [rho * e + (1 - rho) * g * g for e, g in zip(E_1, G2)]
    one = [t - lr * g / math.sqrt(e + eps) for t, g, e in zip(THETA0, G1, E_1)]
    two = [t - lr * g / math.sqrt(e + eps) for t, g, e in zip(one, G2, E_2)]
    # by eye: step 1 is lr · sign(g) / √0.1 ≈ 0.0316
    assert np.allclose(np.subtract(one, THETA0), [-0.0316228, 0.0316228, -0.0316228], atol=1e-7)
    check(reference.RMSprop, one, two, lr=lr, rho=rho, eps=eps)


def adam_by_hand(lr, beta1, beta2, eps):
    theta, m, v, out = list(THETA0), [0.0] * 3, [0.0] * 3, []
    for t, g in ((1, G1), (2, G2)):
        for i in range(3):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            theta[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(list(theta))
    return out, m, v


def test_adam():
    (one, two), m, v = adam_by_hand(0.1, 0.9, 0.999, 1e-8)
    # by eye: at t = 1, m̂ = g and v̂ = g², so the step is lr · sign(g)
    assert np.allclose(one, [0.9, -1.9, 0.4], atol=1e-8)
    optimizer = check(reference.Adam, one, two, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    np.testing.assert_allclose(optimizer.state["exp_avg"][0], m, rtol=1e-15)
    np.testing.assert_allclose(optimizer.state["exp_avg_sq"][0], v, rtol=1e-15)
    assert optimizer.steps == (2,)


def test_adamax():
    lr, beta1, beta2 = 0.002, 0.9, 0.999
    theta, m, u, out = list(THETA0), [0.0] * 3, [0.0] * 3, []
    for t, g in ((1, G1), (2, G2)):
        for i in range(3):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            u[i] = max(beta2 * u[i], abs(g[i]))
            theta[i] -= (lr / (1 - beta1**t)) * m[i] / u[i]
        out.append(list(theta))
    # by eye: at t = 1, m/(1−β1) = g and u = |g|: the step is lr · sign(g)
    assert np.allclose(out[0], [0.998, -1.998, 0.498], atol=1e-15)
    optimizer = check(reference.AdaMax, out[0], out[1], lr=lr, betas=(beta1, beta2))
    np.testing.assert_allclose(optimizer.state["exp_inf"][0], [0.4995, 0.999, 4.0], rtol=1e-15)


def test_adamax_zero_gradient_history_steps_zero():
    theta = np.array([1.0, 2.0, 3.0])
    optimizer = reference.AdaMax(theta)
    optimizer.step(np.array([0.0, 1.0, 0.0]))
    assert theta[0] == 1.0 and theta[2] == 3.0 and not np.isnan(theta).any()


def test_nadam():
    lr, beta1, beta2, eps = 0.002, 0.9, 0.999, 1e-8
    theta, m, v, out = list(THETA0), [0.0] * 3, [0.0] * 3, []
    for t, g in ((1, G1), (2, G2)):
        for i in range(3):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            theta[i] -= (
                lr
                / (math.sqrt(v_hat) + eps)
                * (beta1 * m_hat + (1 - beta1) * g[i] / (1 - beta1**t))
            )
        out.append(list(theta))
    # by eye: at t = 1, m̂ = g, v̂ = g²: the step is lr (β1 + (1 − β1)/(1 − β1)) sign(g)
    #         = 0.002 · 1.9 · sign(g)
    assert np.allclose(np.subtract(out[0], THETA0), [-0.0038, 0.0038, -0.0038], atol=1e-9)
    check(reference.Nadam, out[0], out[1], lr=lr, betas=(beta1, beta2), eps=eps)


def test_amsgrad():
    lr, beta1, beta2, eps = 0.001, 0.9, 0.999, 1e-8
    theta, m, v, v_max, out = list(THETA0), [0.0] * 3, [0.0] * 3, [0.0] * 3, []
    for g in (G1, G2):
        for i in range(3):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            v_max[i] = max(v_max[i], v[i])
            theta[i] -= lr * m[i] / (math.sqrt(v_max[i]) + eps)
        out.append(list(theta))
    # by eye: no bias correction, so step 1 is lr (1−β1) g / (√(1−β2) |g|) = lr · 0.1/0.0316
    assert np.allclose(np.subtract(out[0], THETA0), [-0.0031623, 0.0031623, -0.0031623], atol=1e-7)
    optimizer = check(reference.AMSGrad, out[0], out[1], lr=lr, betas=(beta1, beta2), eps=eps)
    np.testing.assert_allclose(optimizer.state["max_exp_avg_sq"][0], v_max, rtol=1e-15)


@pytest.mark.parametrize(
    "rule",
    [
        "SGD",
        "Momentum",
        "Nesterov",
        "Adagrad",
        "Adadelta",
        "RMSprop",
        "Adam",
        "AdaMax",
        "Nadam",
        "AMSGrad",
    ],
)
def test_float32_stays_float32(rule):
    """A float32 parameter is computed in float32 (NumPy >= 2 keeps Python scalars weak)."""
    theta = np.array(THETA0, dtype=np.float32)
    optimizer = getattr(reference, rule)(theta)
    optimizer.step(np.array(G1, dtype=np.float32))
    assert theta.dtype == np.float32
    assert all(buffer[0].dtype == np.float32 for buffer in optimizer.state.values())


# ---- named options (gdfast.catalogue), worked out by hand the same way --------------------


def by_hand(update, state_init):
    """Apply `update(theta_i, g_i, state_i, t)` elementwise for G1 then G2; both results."""
    theta, state, out = list(THETA0), [dict(state_init) for _ in range(3)], []
    for t, g in ((1, G1), (2, G2)):
        for i in range(3):
            theta[i] = update(theta[i], g[i], state[i], t)
        out.append(list(theta))
    return out


def test_sgd_decoupled_weight_decay_and_maximize():
    lr, wd = 0.1, 0.5

    def update(theta, g, s, t):
        theta = theta * (1 - lr * wd)  # decoupled: θ(1 − ηλ), then the rule on −g
        return theta - lr * (-g)

    one, two = by_hand(update, {})
    check(
        reference.SGD, one, two, lr=lr, weight_decay=wd, decoupled_weight_decay=True, maximize=True
    )


def test_momentum_torch_form_with_dampening():
    lr, mu, d = 0.1, 0.5, 0.25

    def update(theta, g, s, t):
        s["b"] = g if t == 1 else mu * s["b"] + (1 - d) * g  # torch: b₁ = g
        return theta - lr * s["b"]

    one, two = by_hand(update, {"b": 0.0})
    check(reference.Momentum, one, two, lr=lr, momentum=mu, dampening=d, convention="torch")


def test_adagrad_torch_form_with_lr_decay_and_initial_accumulator():
    lr, eps, decay, initial = 0.1, 1e-10, 0.5, 0.2

    def update(theta, g, s, t):
        s["G"] += g * g
        return theta - lr / (1 + (t - 1) * decay) * g / (math.sqrt(s["G"]) + eps)

    one, two = by_hand(update, {"G": initial})
    check(
        reference.Adagrad,
        one,
        two,
        lr=lr,
        eps=eps,
        lr_decay=decay,
        initial_accumulator_value=initial,
        convention="torch",
    )


def test_rmsprop_centered_eps_outside_with_momentum_torch_form():
    lr, rho, eps, mu = 0.01, 0.9, 1e-3, 0.5

    def update(theta, g, s, t):
        s["E"] = rho * s["E"] + (1 - rho) * g * g
        s["a"] = rho * s["a"] + (1 - rho) * g
        s["b"] = mu * s["b"] + g / (math.sqrt(s["E"] - s["a"] ** 2) + eps)
        return theta - lr * s["b"]

    one, two = by_hand(update, {"E": 0.0, "a": 0.0, "b": 0.0})
    check(
        reference.RMSprop,
        one,
        two,
        lr=lr,
        rho=rho,
        eps=eps,
        centered=True,
        momentum=mu,
        convention="torch",
    )


@pytest.mark.parametrize("inside", [True, False])
def test_adamax_eps_placement(inside):
    lr, b1, b2, eps = 0.002, 0.9, 0.999, 0.1

    def update(theta, g, s, t):
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["u"] = max(b2 * s["u"], abs(g) + (eps if inside else 0.0))
        return theta - lr / (1 - b1**t) * s["m"] / (s["u"] + (0.0 if inside else eps))

    one, two = by_hand(update, {"m": 0.0, "u": 0.0})
    check(reference.AdaMax, one, two, lr=lr, eps=eps, eps_inside_max=inside)


def test_nadam_momentum_schedule():
    lr, b1, b2, eps, psi = 0.002, 0.9, 0.999, 1e-8, 0.004
    mu = [b1 * (1 - 0.5 * 0.96 ** (t * psi)) for t in (1, 2, 3)]
    product = {1: mu[0], 2: mu[0] * mu[1]}

    def update(theta, g, s, t):
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        step = mu[t] * s["m"] / (1 - product[t] * mu[t]) + (1 - mu[t - 1]) * g / (1 - product[t])
        return theta - lr * step / (math.sqrt(s["v"] / (1 - b2**t)) + eps)

    one, two = by_hand(update, {"m": 0.0, "v": 0.0})
    optimizer = check(reference.Nadam, one, two, lr=lr, convention="torch")
    assert optimizer.state["mu_product"][0] == pytest.approx(product[2], rel=1e-15)


@pytest.mark.parametrize("max_of_v_hat", [False, True])
def test_amsgrad_bias_corrected(max_of_v_hat):
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-8

    def update(theta, g, s, t):
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        if max_of_v_hat:  # optax: the maximum of v̂
            s["x"] = max(s["x"], s["v"] / (1 - b2**t))
            v_max_hat = s["x"]
        else:  # torch, Keras: the maximum of v, then v̂
            s["x"] = max(s["x"], s["v"])
            v_max_hat = s["x"] / (1 - b2**t)
        return theta - lr * (s["m"] / (1 - b1**t)) / (math.sqrt(v_max_hat) + eps)

    one, two = by_hand(update, {"m": 0.0, "v": 0.0, "x": 0.0})
    check(reference.AMSGrad, one, two, lr=lr, bias_correction=True, max_of_v_hat=max_of_v_hat)


# ---- issue 15's rules (docs/spec-rules-2.md), worked out by hand the same way ------------


@pytest.mark.parametrize("rule", ["Lion", "RAdam", "Rprop", "ASGD"])
def test_float32_stays_float32_new_rules(rule):
    theta = np.array(THETA0, dtype=np.float32)
    optimizer = getattr(reference, rule)(theta)
    optimizer.step(np.array(G1, dtype=np.float32))
    assert theta.dtype == np.float32
    assert all(buffer[0].dtype == np.float32 for buffer in optimizer.state.values())


def test_lion():
    # step 1: m = 0, c = 0.1 g1, sign [+, −, +]: θ1 = θ0 − 0.1 [1, −1, 1] ; m1 = 0.01 g1
    # step 2: c = 0.9 m1 + 0.1 g2 = [−0.0205, 0.041, 0.418]: θ2 = θ1 − 0.1 [−1, 1, 1]
    optimizer = check(reference.Lion, [0.9, -1.9, 0.4], [1.0, -2.0, 0.3], lr=0.1)
    m2 = [0.99 * 0.01 * a + 0.01 * b for a, b in zip(G1, G2)]
    np.testing.assert_allclose(optimizer.state["exp_avg"][0], m2, rtol=1e-15)


def test_lion_decoupled_weight_decay():
    # θ ← 0.95 θ first, then the same signs: [0.95, −1.9, 0.475] − 0.1 [1, −1, 1], then
    # 0.95 [0.85, −1.8, 0.375] − 0.1 [−1, 1, 1]
    check(
        reference.Lion,
        [0.85, -1.8, 0.375],
        [0.9075, -1.81, 0.25625],
        lr=0.1,
        weight_decay=0.5,
    )


def test_radam_first_steps_are_sgd_with_momentum():
    # β2 = 0.9: ρ∞ = 19, ρ1 = 19 − 2·0.9/0.1 = 1, ρ2 = 19 − 4·0.81/0.19 ≈ 1.95: both <= 4
    # m1 = 0.5 g1, m̂1 = g1: θ1 = θ0 − 0.1 g1
    # m2 = 0.25 g1 + 0.5 g2 = [0, 0, 2.5], m̂2 = m2 / 0.75: θ2 = θ1 − 0.1 m̂2
    check(
        reference.RAdam,
        [0.95, -1.9, 0.3],
        [0.95, -1.9, 0.3 - (2.5 / 0.75) * 0.1],
        lr=0.1,
        betas=(0.5, 0.9),
    )


@pytest.mark.parametrize("convention, first_rectified", [("paper", 5), ("torch", 6)])
def test_radam_rectifies_from_the_threshold(convention, first_rectified):
    # a constant gradient 1: m̂ = 1, v = 1 − β2^t; the step is η until ρ_t passes the
    # threshold (4: t = 5; torch's 5: t = 6), then η r_t √(1 − β2^t) / (√v + ε)
    lr, b2, eps = 0.01, 0.999, 1e-8
    rho_inf = 2 / (1 - b2) - 1
    theta = 1.0
    for t in range(1, 9):
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        assert (rho > (4 if convention == "paper" else 5)) == (t >= first_rectified)
        if t < first_rectified:
            theta -= lr
        else:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            v = 1 - b2**t
            theta -= lr * r * math.sqrt(1 - b2**t) / (math.sqrt(v) + eps)
    param = np.array([1.0])
    optimizer = reference.RAdam(param, lr=lr, convention=convention)
    for _ in range(8):
        optimizer.step(np.array([1.0]))
    assert param[0] == pytest.approx(theta, rel=1e-14)


def test_rprop():
    # step 1: g_prev = 0, s = 0, Δ stays 0.1: θ1 = θ0 − 0.1 sign(g1) ; g_prev = g1
    # step 2: s = g1 g2 = [−0.125, −0.5, 8]: Δ = [0.05, 0.05, 0.12]; g = [0, 0, 4]:
    #         θ2 = θ1 − [0, 0, 0.12] ; g_prev = [0, 0, 4]
    optimizer = check(reference.Rprop, [0.9, -1.9, 0.4], [0.9, -1.9, 0.28], lr=0.1)
    np.testing.assert_allclose(optimizer.state["step_size"][0], [0.05, 0.05, 0.12], rtol=1e-15)
    np.testing.assert_array_equal(optimizer.state["prev"][0], [0.0, 0.0, 4.0])


def test_asgd():
    # η_t = 0.1 / (1 + 0.5·0.1·(t − 1)), μ_t = 1, 1, then 1/max(1, t − 1 − t0) = 1/2
    lr, lambd, theta, ax = 0.1, 0.5, list(THETA0), None
    for t, g in ((1, G1), (2, G2), (3, G1)):
        eta = lr / (1 + lambd * lr * (t - 1))
        mu = 1.0 if t < 3 else 0.5
        theta = [x * (1 - lambd * eta) - eta * gi for x, gi in zip(theta, g)]
        ax = list(theta) if mu == 1 else [a + (x - a) * mu for a, x in zip(ax, theta)]
    param = np.array(THETA0)
    optimizer = reference.ASGD(param, lr=lr, lambd=lambd, alpha=1.0, t0=0.0)
    for g in (G1, G2, G1):
        optimizer.step(np.array(g))
    np.testing.assert_allclose(param, theta, rtol=1e-15)
    np.testing.assert_allclose(optimizer.state["ax"][0], ax, rtol=1e-15)
