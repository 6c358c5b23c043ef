"""Named options and convention presets: what each preset sets, that explicit arguments
win, and Keras parity for convention="keras" against Keras 3's update formulas written out
here (keras.optimizers.*.update_step, in Keras's own order of operations; Keras itself is
not needed).  torch parity for convention="torch" is in test_torch_parity.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gdfast
from gdfast import reference
from rules_table import RULE_NAMES, classes

BACKENDS = [gdfast.optim, reference]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_each_preset_sets_its_options_and_explicit_arguments_win(rule):
    fast, _ = classes(rule)
    for convention, preset in fast.conventions.items():
        optimizer = fast(np.zeros(3), convention=convention)
        assert optimizer.convention == convention
        for name, value in preset.items():
            if name in fast.hyperparameter_names:
                assert optimizer.options[name] == value, (convention, name)
        for name, value in preset.items():
            if name not in fast.hyperparameter_names or isinstance(value, float):
                continue
            flipped = fast(np.zeros(3), convention=convention, **{name: not value})
            assert flipped.options[name] is (not value), (convention, name)
    # the default convention is SPEC.md's rule: every option at its paper value
    assert fast(np.zeros(3)).options == fast.spec_options()
    assert fast(np.zeros(3)).hyperparameters.keys() <= set(fast.hyperparameter_names)


def test_presets_select_formulas_not_numbers():
    optimizer = gdfast.optim.RMSprop(np.zeros(3), convention="torch")
    assert optimizer.rho == 0.9 and optimizer.lr == 0.001 and optimizer.eps == 1e-8
    assert optimizer.options["eps_inside_sqrt"] is False


@pytest.mark.parametrize(
    "value, error, message",
    [
        ("pytorch", ValueError, r"convention: expected one of 'paper', 'torch', 'keras'"),
        (None, TypeError, r"convention: expected one of"),
    ],
)
def test_bad_convention(value, error, message):
    with pytest.raises(error, match=message):
        gdfast.optim.Adam(np.zeros(3), convention=value)


@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
def test_bad_options(module):
    with pytest.raises(TypeError, match=r"centered: expected True or False, got 'yes'"):
        module.RMSprop(np.zeros(3), centered="yes")
    with pytest.raises(ValueError, match=r"max_of_v_hat: needs bias_correction=True"):
        module.AMSGrad(np.zeros(3), max_of_v_hat=True)
    with pytest.raises(ValueError, match=r"eps_hat: not defined together with max_of_v_hat"):
        module.AMSGrad(np.zeros(3), bias_correction=True, max_of_v_hat=True, eps_hat=True)
    with pytest.raises(ValueError, match=r"weight_decay: expected a finite number >= 0"):
        module.Adam(np.zeros(3), weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"dampening: expected a number in \[0, 1\]"):
        module.Momentum(np.zeros(3), dampening=1.5)


@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
def test_options_that_decide_the_state_entries_are_fixed(module):
    theta = np.zeros(3)
    optimizer = module.RMSprop(theta, momentum=0.9)
    assert optimizer.state_names == ("square_avg", "momentum_buffer")
    optimizer.momentum = 0.5  # still > 0: same state entries
    with pytest.raises(ValueError, match=r"momentum: cannot change to 0.0 after construction"):
        optimizer.momentum = 0.0
    with pytest.raises(ValueError, match=r"centered: cannot change"):
        optimizer.centered = True
    plain = module.RMSprop(np.zeros(3))
    with pytest.raises(
        ValueError,
        match=r"state_dict\['hyperparameters'\]: they need the "
        r"state entries \['square_avg'\]",
    ):
        optimizer.load_state_dict(plain.state_dict())
    nadam = module.Nadam(np.zeros(3, np.float32), convention="torch")
    assert nadam.state["mu_product"][0].shape == () and nadam.state["mu_product"][0] == 1.0
    bad = nadam.state_dict()
    bad["state"]["mu_product"] = [np.ones(3)]
    with pytest.raises(
        ValueError,
        match=r"state_dict\['state'\]\['mu_product'\]\[0\]: "
        r"expected shape \(\) and dtype float64",
    ):
        nadam.load_state_dict(bad)


# ---------------------------------------------------------------------------------------
# Keras 3's update_step formulas, float64, one array (keras/src/optimizers/*.py); Keras's
# weight_decay is applied first: w ← w − w·λ·η.
# ---------------------------------------------------------------------------------------


def keras_sgd(w, gradient, steps, lr, momentum, nesterov):
    m = np.zeros_like(w)
    for t in range(1, steps + 1):
        g = gradient(w)
        m = momentum * m - lr * g
        w = w + (momentum * m - lr * g if nesterov else m)
    return w


def keras_adagrad(w, gradient, steps, lr, initial, eps):
    acc = np.full_like(w, initial)
    for t in range(1, steps + 1):
        g = gradient(w)
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + eps)
    return w


def keras_adadelta(w, gradient, steps, lr, rho, eps):
    acc_g, acc_d = np.zeros_like(w), np.zeros_like(w)
    rms = lambda x: np.sqrt(x + eps)  # noqa: E731
    for t in range(1, steps + 1):
        g = gradient(w)
        acc_g = rho * acc_g + (1 - rho) * g * g
        delta = -rms(acc_d) * g / rms(acc_g)
        acc_d = rho * acc_d + (1 - rho) * delta * delta
        w = w + lr * delta
    return w


def keras_rmsprop(w, gradient, steps, lr, rho, eps, momentum, centered):
    velocity, average, buffer = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        g = gradient(w)
        velocity = rho * velocity + (1 - rho) * g * g
        if centered:
            average = rho * average + (1 - rho) * g
            denominator = velocity - average * average + eps
        else:
            denominator = velocity + eps
        increment = lr * g / np.sqrt(denominator)
        if momentum > 0:
            buffer = momentum * buffer + increment
            w = w - buffer
        else:
            w = w - increment
    return w


def keras_adam(w, gradient, steps, lr, b1, b2, eps, amsgrad, weight_decay=0.0):
    m, v, v_hat = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        g = gradient(w)
        w = w - w * weight_decay * lr
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        if amsgrad:
            v_hat = np.maximum(v_hat, v)
            w = w - m * alpha / (np.sqrt(v_hat) + eps)
        else:
            w = w - m * alpha / (np.sqrt(v) + eps)
    return w


def keras_adamax(w, gradient, steps, lr, b1, b2, eps):
    m, u = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        g = gradient(w)
        alpha = lr / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        u = np.maximum(b2 * u, np.abs(g))
        w = w - m * alpha / (u + eps)
    return w


def keras_nadam(w, gradient, steps, lr, b1, b2, eps):
    m, v, u_product = np.zeros_like(w), np.zeros_like(w), 1.0
    for t in range(1, steps + 1):
        g = gradient(w)
        u_t = b1 * (1 - 0.5 * 0.96**t)
        u_t_1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t
        u_product_t_1 = u_product * u_t_1
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - b2**t)
        w = w - m_hat * lr / (np.sqrt(v_hat) + eps)
    return w


KERAS = {  # name: (gdfast class, its arguments with Keras's defaults, Keras's formulas)
    "SGD(momentum)": (
        "Momentum",
        {"lr": 0.01, "momentum": 0.9},
        lambda w, g, n: keras_sgd(w, g, n, 0.01, 0.9, False),
    ),
    "SGD(nesterov)": (
        "Nesterov",
        {"lr": 0.01, "momentum": 0.9},
        lambda w, g, n: keras_sgd(w, g, n, 0.01, 0.9, True),
    ),
    "Adagrad": (
        "Adagrad",
        {"lr": 0.001, "eps": 1e-7, "initial_accumulator_value": 0.1},
        lambda w, g, n: keras_adagrad(w, g, n, 0.001, 0.1, 1e-7),
    ),
    "Adadelta": (
        "Adadelta",
        {"lr": 0.001, "rho": 0.95, "eps": 1e-7},
        lambda w, g, n: keras_adadelta(w, g, n, 0.001, 0.95, 1e-7),
    ),
    "RMSprop": (
        "RMSprop",
        {"lr": 0.001, "rho": 0.9, "eps": 1e-7},
        lambda w, g, n: keras_rmsprop(w, g, n, 0.001, 0.9, 1e-7, 0.0, False),
    ),
    "RMSprop(centered, momentum)": (
        "RMSprop",
        {"lr": 0.001, "rho": 0.9, "eps": 1e-7, "centered": True, "momentum": 0.9},
        lambda w, g, n: keras_rmsprop(w, g, n, 0.001, 0.9, 1e-7, 0.9, True),
    ),
    "Adam": (
        "Adam",
        {"lr": 0.001, "eps": 1e-7},
        lambda w, g, n: keras_adam(w, g, n, 0.001, 0.9, 0.999, 1e-7, False),
    ),
    "Adam(amsgrad)": (
        "AMSGrad",
        {"lr": 0.001, "eps": 1e-7},
        lambda w, g, n: keras_adam(w, g, n, 0.001, 0.9, 0.999, 1e-7, True),
    ),
    "AdamW": (
        "AdamW",
        {"lr": 0.001, "eps": 1e-7, "weight_decay": 0.004},
        lambda w, g, n: keras_adam(w, g, n, 0.001, 0.9, 0.999, 1e-7, False, 0.004),
    ),
    "Adamax": (
        "AdaMax",
        {"lr": 0.001, "eps": 1e-7},
        lambda w, g, n: keras_adamax(w, g, n, 0.001, 0.9, 0.999, 1e-7),
    ),
    "Nadam": (
        "Nadam",
        {"lr": 0.001, "eps": 1e-7},
        lambda w, g, n: keras_nadam(w, g, n, 0.001, 0.9, 0.999, 1e-7),
    ),
}


@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
@pytest.mark.parametrize("name", sorted(KERAS))
def test_keras_preset_reproduces_keras(name, module):
    """200 steps on a quadratic (the gradient feeds back): gdfast with convention="keras"
    and Keras's defaults against Keras's formulas, to 1e-10 relative (float64)."""
    rule, arguments, keras = KERAS[name]
    rng = np.random.default_rng(7)
    start = rng.standard_normal(40)
    curvature = rng.uniform(0.5, 2.0, 40)
    center = start + rng.choice([-1.0, 1.0], 40) * rng.uniform(2, 4, 40)

    expected = keras(start.copy(), lambda w: curvature * (w - center), 200)
    theta = start.copy()
    optimizer = getattr(module, rule)(theta, convention="keras", **arguments)
    for _ in range(200):
        optimizer.step(curvature * (theta - center))
    error = np.max(np.abs(theta - expected)) / np.max(np.abs(expected))
    assert error <= 1e-10, error
    assert np.max(np.abs(theta - start)) > 1e-4  # it moved (Adadelta at lr 0.001: 3e-4)
