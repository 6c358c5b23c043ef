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
    optimizer = check(reference.Momentum, [0.95, -1.9, 0.3], [0.95, -1.9, -0.2],
                      lr=0.1, momentum=0.5)
    np.testing.assert_allclose(optimizer.state["velocity"][0], [0.0, 0.0, 0.5], atol=1e-17)


def test_nesterov():
    # v1 = 0.1 g1 = [0.05, -0.1, 0.2] ; φ1 = φ0 − (0.5 v1 + 0.1 g1) = φ0 − [0.075, -0.15, 0.3]
    # v2 = 0.5 v1 + 0.1 g2 = [0, 0, 0.5] ; φ2 = φ1 − (0.5 v2 + 0.1 g2) = φ1 − [-0.025, 0.05, 0.65]
    check(reference.Nesterov, [0.925, -1.85, 0.2], [0.95, -1.9, -0.45], lr=0.1, momentum=0.5)


def test_adagrad():
    eps = 1e-8
    G_1 = [g * g for g in G1]                       # [0.25, 1, 4]
    G_2 = [a + g * g for a, g in zip(G_1, G2)]      # [0.3125, 1.25, 20]
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
            E_d[i] = rho * E_d[i] + (1 - rho) * delta ** 2
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
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
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
            theta[i] -= (lr / (1 - beta1 ** t)) * m[i] / u[i]
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
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            theta[i] -= lr / (math.sqrt(v_hat) + eps) * (
                beta1 * m_hat + (1 - beta1) * g[i] / (1 - beta1 ** t))
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
    assert np.allclose(np.subtract(out[0], THETA0), [-0.0031623, 0.0031623, -0.0031623],
                       atol=1e-7)
    optimizer = check(reference.AMSGrad, out[0], out[1], lr=lr, betas=(beta1, beta2), eps=eps)
    np.testing.assert_allclose(optimizer.state["max_exp_avg_sq"][0], v_max, rtol=1e-15)


@pytest.mark.parametrize("rule", ["SGD", "Momentum", "Nesterov", "Adagrad", "Adadelta",
                                  "RMSprop", "Adam", "AdaMax", "Nadam", "AMSGrad"])
def test_float32_stays_float32(rule):
    """A float32 parameter is computed in float32 (NumPy >= 2 keeps Python scalars weak)."""
    theta = np.array(THETA0, dtype=np.float32)
    optimizer = getattr(reference, rule)(theta)
    optimizer.step(np.array(G1, dtype=np.float32))
    assert theta.dtype == np.float32
    assert all(buffer[0].dtype == np.float32 for buffer in optimizer.state.values())
