"""Shared helpers for the foundation tests: rule tables, problems, error measure."""

from __future__ import annotations

import numpy as np
import pytest

import gdfast
from gdfast import reference

FAST_CLASSES = gdfast.optim.OPTIMIZERS + (gdfast.optim.AdamW,)
RULE_NAMES = [cls.__name__ for cls in FAST_CLASSES]
DTYPES = [np.float32, np.float64]

# SPEC.md section 4: max |a - b| / max(|b|, tiny) after one step and after 1,000 steps.
TOLERANCE = {
    (np.float64, 1): 1e-12,
    (np.float64, 1000): 1e-10,
    (np.float32, 1): 1e-6,
    (np.float32, 1000): 1e-4,
}


def classes(rule: str):
    """(gdfast class, gdfast.reference class) of one rule."""
    return getattr(gdfast.optim, rule), getattr(reference, rule)


def relative_error(actual: np.ndarray, expected: np.ndarray, also_scale=None) -> float:
    """max |a - b| / max(|b|, tiny): SPEC.md's measure.  NaN and Inf must sit at the same
    places with the same values; they are compared exactly, the finite rest numerically.
    `also_scale`: an array whose magnitude joins |b| in the denominator (see below)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    if actual.size == 0:
        return 0.0
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(actual[np.isinf(expected)], expected[np.isinf(expected)])
    if not finite.any():
        return 0.0
    magnitudes = [np.max(np.abs(expected[finite]))]
    if also_scale is not None:
        extra = np.abs(np.asarray(also_scale, dtype=np.float64))
        magnitudes.append(np.max(extra[np.isfinite(extra)], initial=0.0))
    scale = max(float(max(magnitudes)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(actual[finite] - expected[finite]))) / scale


# Adam and Nadam kernels take the step as (η/(1−β1^t)) m / (√v/√(1−β2^t) + ε), the form of
# PyTorch's and optax's CPU Adam: one division and one square root per element instead of
# the literal form's three divisions (1.75x the time in cache).  It differs from the literal
# reference by a few ulps of the update Δ, not of the result θ − Δ; where a step is larger
# than the parameter it lands on (|Δ| > |θ_new|, hypothesis finds such float32 cases with
# β2 = 0), the error is a few ulps of max(|θ_old|, |θ_new|) ≥ |Δ|/2.  Their parameters after
# one step are therefore measured against max(|θ_old|, |θ_new|); every state entry, and
# every other rule (bitwise equal to the reference), keeps SPEC's measure.
# AdamW is Adam; AMSGrad takes the same form when bias-corrected.
STEP_SIZE_FORM = {"Adam", "AdamW", "Nadam"}


def uses_step_size_form(optimizer) -> bool:
    return optimizer.rule in STEP_SIZE_FORM or (
        optimizer.rule == "AMSGrad" and optimizer.options["bias_correction"]
    )


def assert_same_optimizer_state(fast, slow, tolerance: float, params_before=None) -> None:
    """Parameters and every state entry within `tolerance`; step counts identical.
    `params_before`: the parameters before a single step, for STEP_SIZE_FORM rules."""
    assert fast.steps == slow.steps
    for index, (a, b) in enumerate(zip(fast.params, slow.params)):
        before = (
            params_before[index]
            if params_before is not None and uses_step_size_form(fast)
            else None
        )
        error = relative_error(a, b, also_scale=before)
        assert error <= tolerance, f"params[{index}]: relative error {error:.3g} > {tolerance}"
    for name in slow.state_names:
        for index, (a, b) in enumerate(zip(fast.state[name], slow.state[name])):
            error = relative_error(a, b)
            assert error <= tolerance, (
                f"state[{name!r}][{index}]: relative error {error:.3g} > {tolerance}"
            )


def random_hyperparameters(rule: str, rng: np.random.Generator) -> dict:
    """Valid hyper-parameters drawn at random, in ranges where 1,000 steps stay tame, and
    every named option (gdfast._optimizer) drawn too, each value about as often."""
    fast, _ = classes(rule)
    coin = lambda: bool(rng.integers(2))  # noqa: E731
    maybe = lambda draw: draw() if coin() else 0.0  # noqa: E731
    draw = {
        "lr": lambda: float(10 ** rng.uniform(-4, -2)),
        "momentum": lambda: float(rng.uniform(0.0, 0.95)),
        "betas": lambda: (float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.9, 0.9999))),
        "eps": lambda: float(10 ** rng.uniform(-10, -4)),
        "rho": lambda: float(rng.uniform(0.5, 0.99)),
        "weight_decay": lambda: maybe(lambda: float(10 ** rng.uniform(-4, -2))),
        "decoupled_weight_decay": coin,
        "maximize": lambda: bool(rng.random() < 0.25),
        "dampening": lambda: maybe(lambda: float(rng.uniform(0.0, 0.5))),
        "lr_in_buffer": coin,
        "lr_decay": lambda: maybe(lambda: float(10 ** rng.uniform(-3, -1))),
        "initial_accumulator_value": lambda: maybe(lambda: float(rng.uniform(0.0, 1.0))),
        "eps_inside_sqrt": coin,
        "centered": coin,
        "eps_hat": coin,
        "eps_inside_max": coin,
        "momentum_schedule": coin,
        "momentum_decay": lambda: float(rng.choice([0.004, 1.0, rng.uniform(0.0, 2.0)])),
        "bias_correction": coin,
        "max_of_v_hat": coin,
    }
    hyper = {name: draw[name]() for name in fast.hyperparameter_names}
    if rule == "Adadelta":
        hyper["lr"] = float(rng.uniform(0.1, 1.0))  # a multiplier, not a learning rate
    if rule == "RMSprop":
        hyper["momentum"] = maybe(lambda: float(rng.uniform(0.0, 0.9)))
    if rule == "AdaMax":
        hyper["eps"] = maybe(lambda: float(10 ** rng.uniform(-10, -4)))
    if rule == "AMSGrad":
        hyper["max_of_v_hat"] = hyper["max_of_v_hat"] and hyper["bias_correction"]
        hyper["eps_hat"] = hyper["eps_hat"] and not hyper["max_of_v_hat"]
    return hyper


def random_state(optimizer, rng: np.random.Generator, max_step: int = 10**6) -> dict:
    """A valid state dict with random buffers and step counts (second moments >= 0, a
    centered RMSprop's |ḡ| <= √E_g, μ products in (0, 0.9))."""
    state = optimizer.state_dict()
    signed = {"exp_avg", "velocity", "momentum_buffer", "grad_avg"}
    for name, buffers in state["state"].items():
        for buffer in buffers:
            values = np.asarray(rng.standard_normal(buffer.shape))
            if name == "mu_product":
                values = rng.uniform(1e-3, 0.9, buffer.shape)
            elif name not in signed:
                values = np.abs(values)
            buffer[...] = values
    if "grad_avg" in state["state"]:
        for g_avg, E_g in zip(state["state"]["grad_avg"], state["state"]["square_avg"]):
            g_avg[...] = np.sqrt(E_g) * rng.uniform(-1, 1, g_avg.shape)
    state["steps"] = [int(rng.integers(0, max_step)) for _ in state["steps"]]
    return state


class Quadratic:
    """J(θ) = ½ Σ h (θ − c)², h in [0.5, 2]: a well-conditioned problem whose gradient
    h (θ − c) depends on the parameters, so trajectories feed back on themselves.

    The optimum is 20 to 40 away from the start in every coordinate, farther than
    1,000 steps of the learning rates drawn by `random_hyperparameters` travel.  Near
    the optimum the adaptive rules (Adam and its kin) reach a noise floor where the step
    m̂/√v̂ is scale-free and rounding differences grow from step to step whatever the
    implementation (two algebraically equal NumPy forms of Adam drift apart there just
    the same); the tolerance comparison belongs to the regime where the method itself
    is stable.
    """

    def __init__(self, shapes, dtype, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.curvature = [np.array(rng.uniform(0.5, 2.0, shape), dtype=dtype) for shape in shapes]
        self.start = [np.array(rng.standard_normal(shape), dtype=dtype) for shape in shapes]
        self.center = [
            np.array(
                start + rng.choice([-1.0, 1.0], shape) * rng.uniform(20, 40, shape), dtype=dtype
            )
            for start, shape in zip(self.start, shapes)
        ]

    def fresh_params(self):
        return [theta.copy() for theta in self.start]

    def gradients(self, params):
        return [h * (theta - c) for h, theta, c in zip(self.curvature, params, self.center)]


@pytest.fixture
def restore_threads():
    yield
    gdfast.set_num_threads(None)
