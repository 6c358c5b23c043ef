"""The per-rule test table (torch's OptimizerInfo in gdfast's words) and the helpers the
foundation tests share: one row per rule of the catalogue, used by the equivalence,
bad-input, API, thread and parity tests.  Imported by the tests themselves (not through
conftest).

A row says, for one rule: how to draw valid hyper-parameters at random (`draw`: the
samplers that differ from the common ones, `constrain`: the combinations that are not
valid), the same for hypothesis (`strategies`, `valid`), whether its kernel takes the
step-size form of Adam (`step_size_form`, then not bitwise equal to the reference), its
bad hyper-parameters with the error expected (`errors`), and the configurations its
gdfast.torch class runs against its counterpart (`torch_configs`).  test_catalogue.py fails
when a rule of gdfast.catalogue has no row here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

import gdfast
from gdfast import reference
from gdfast.catalogue import CATALOGUE

DTYPES = [np.float32, np.float64]

# SPEC.md section 4: max |a - b| / max(|b|, tiny) after one step and after 1,000 steps.
TOLERANCE = {
    (np.float64, 1): 1e-12,
    (np.float64, 1000): 1e-10,
    (np.float32, 1): 1e-6,
    (np.float32, 1000): 1e-4,
}

Hyper = dict[str, Any]


def _coin(rng: np.random.Generator) -> bool:
    return bool(rng.integers(2))


def _maybe(rng: np.random.Generator, draw: Callable[[], float]) -> float:
    """draw() half of the time, else 0."""
    return draw() if _coin(rng) else 0.0


# The samplers of every hyper-parameter, in ranges where 1,000 steps stay tame; a row
# replaces those that differ for its rule.  Each flag drawn about as often True as False.
COMMON_DRAW: dict[str, Callable[[np.random.Generator], Any]] = {
    "lr": lambda rng: float(10 ** rng.uniform(-4, -2)),
    "momentum": lambda rng: float(rng.uniform(0.0, 0.95)),
    "betas": lambda rng: (float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.9, 0.9999))),
    "eps": lambda rng: float(10 ** rng.uniform(-10, -4)),
    "rho": lambda rng: float(rng.uniform(0.5, 0.99)),
    "weight_decay": lambda rng: _maybe(rng, lambda: float(10 ** rng.uniform(-4, -2))),
    "decoupled_weight_decay": _coin,
    "maximize": lambda rng: bool(rng.random() < 0.25),
    "dampening": lambda rng: _maybe(rng, lambda: float(rng.uniform(0.0, 0.5))),
    "lr_in_buffer": _coin,
    "lr_decay": lambda rng: _maybe(rng, lambda: float(10 ** rng.uniform(-3, -1))),
    "initial_accumulator_value": lambda rng: _maybe(rng, lambda: float(rng.uniform(0.0, 1.0))),
    "eps_inside_sqrt": _coin,
    "centered": _coin,
    "eps_hat": _coin,
    "eps_inside_max": _coin,
    "momentum_schedule": _coin,
    "momentum_decay": lambda rng: float(rng.choice([0.004, 1.0, rng.uniform(0.0, 2.0)])),
    "bias_correction": _coin,
    "max_of_v_hat": _coin,
}

_UNIT = st.floats(0.0, 1.0, exclude_max=True)

# Any valid value (hypothesis); a flag not listed is st.booleans().
COMMON_STRATEGIES: dict[str, Any] = {
    "lr": st.floats(0.0, 10.0),
    "momentum": st.floats(0.0, 2.0),
    "betas": st.tuples(_UNIT, _UNIT),
    "eps": st.floats(1e-12, 1.0),
    "rho": st.floats(0.0, 1.0),
    "weight_decay": st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
    "dampening": st.floats(0.0, 1.0),
    "lr_decay": st.floats(0.0, 10.0),
    "initial_accumulator_value": st.floats(0.0, 10.0),
    "momentum_decay": st.floats(0.0, 10.0),
}


@dataclasses.dataclass(frozen=True)
class RuleInfo:
    """One rule's row.  `name` is the catalogue's name."""

    name: str
    draw: dict[str, Callable[[np.random.Generator], Any]] = dataclasses.field(default_factory=dict)
    constrain: Callable[[Hyper], Hyper] = lambda hyper: hyper
    strategies: dict[str, Any] = dataclasses.field(default_factory=dict)
    valid: Callable[[Hyper], bool] = lambda hyper: True
    # whether the kernel computes the step as (η/(1−β1^t)) m / (√v/√(1−β2^t) + ε), see
    # uses_step_size_form; every other rule is bitwise equal to the reference
    step_size_form: Callable[[Hyper], bool] = lambda hyper: False
    # (hyper-parameters, error, message): refused by the constructor and by setattr
    errors: tuple[tuple[Hyper, type, str], ...] = ()
    # gdfast.torch's constructor arguments run against the rule's counterpart, each one a
    # parity configuration (test_torch_parity: torch.optim's class, these on top of the
    # declaration's torch options; Lion: lion-pytorch's, test_torch_rules2); () runs the
    # defaults alone
    torch_configs: tuple[Hyper, ...] = ()


def _amsgrad_valid(hyper: Hyper) -> Hyper:
    hyper["max_of_v_hat"] = hyper["max_of_v_hat"] and hyper["bias_correction"]
    hyper["eps_hat"] = hyper["eps_hat"] and not hyper["max_of_v_hat"]
    return hyper


def _always(hyper: Hyper) -> bool:
    return True


_ROWS = (
    RuleInfo(
        "SGD",
        torch_configs=({}, {"lr": 0.05}, {"weight_decay": 0.01}, {"maximize": True}),
        errors=(
            ({"lr": -0.1}, ValueError, r"lr: expected a finite number >= 0, got -0.1"),
            ({"lr": float("nan")}, ValueError, r"lr: expected a number, got nan"),
            ({"lr": float("inf")}, ValueError, r"lr: expected a finite number >= 0"),
            ({"lr": "0.1"}, TypeError, r"lr: expected a real number, got str"),
            ({"lr": True}, TypeError, r"lr: expected a real number, got bool"),
        ),
    ),
    RuleInfo(
        "Momentum",
        torch_configs=(
            {},
            {"dampening": 0.3},
            {"momentum": 0.8, "weight_decay": 0.01, "maximize": True},
        ),
        errors=(({"momentum": -0.5}, ValueError, r"momentum: expected a finite number >= 0"),),
    ),
    RuleInfo(
        "Nesterov",
        errors=(({"momentum": float("nan")}, ValueError, r"momentum: expected a number"),),
    ),
    RuleInfo(
        "Adagrad",
        torch_configs=(
            {},
            {"lr_decay": 0.01},
            {"initial_accumulator_value": 0.1},
            {"weight_decay": 0.01},
            {"maximize": True},
            {"eps": 1e-6},
        ),
        errors=(({"eps": float("nan")}, ValueError, r"eps: expected a number, got nan"),),
    ),
    RuleInfo(
        "Adadelta",
        torch_configs=(
            {},
            {"lr": 0.5, "rho": 0.95},
            {"eps": 1e-5, "rho": 0.95},
            {"weight_decay": 0.01},
            {"maximize": True},
        ),
        # lr is a multiplier, not a learning rate
        draw={"lr": lambda rng: float(rng.uniform(0.1, 1.0))},
        errors=(({"rho": -0.1}, ValueError, r"rho: expected a number in \[0, 1\]"),),
    ),
    RuleInfo(
        "RMSprop",
        # at lr 1e-3 (torch's default 1e-2 makes steps of ~0.1 from the start, a regime where
        # torch amplifies a one-ulp change of the start past 1e-5 in float32 by itself)
        torch_configs=tuple(
            {"lr": 1e-3, **options}
            for options in (
                {},
                {"alpha": 0.9},
                {"centered": True},
                {"momentum": 0.9},
                {"centered": True, "momentum": 0.5},
                {"eps": 1e-4},
                {"weight_decay": 0.01},
                {"maximize": True},
            )
        ),
        draw={"momentum": lambda rng: _maybe(rng, lambda: float(rng.uniform(0.0, 0.9)))},
        errors=(({"rho": 1.5}, ValueError, r"rho: expected a number in \[0, 1\], got 1.5"),),
    ),
    RuleInfo(
        "Adam",
        torch_configs=(
            {},
            {"weight_decay": 0.01},
            {"maximize": True},
            {"decoupled_weight_decay": True, "weight_decay": 0.1},
            {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
        ),
        step_size_form=lambda hyper: True,
        errors=(
            ({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\]: expected a number in \[0, 1\)"),
            ({"betas": (-0.1, 0.9)}, ValueError, r"betas\[0\]: expected a number in \[0, 1\)"),
            ({"betas": 0.9}, TypeError, r"betas: expected a pair \(beta1, beta2\)"),
            ({"betas": (0.9, 0.99, 0.9)}, TypeError, r"betas: expected a pair"),
        ),
    ),
    RuleInfo(
        "AdamW",
        torch_configs=({}, {"amsgrad": True}, {"weight_decay": 0.1, "maximize": True}),
        step_size_form=lambda hyper: True,
        errors=(({"weight_decay": -0.01}, ValueError, r"weight_decay: expected a finite"),),
    ),
    RuleInfo(
        "AdaMax",
        torch_configs=(
            {},
            {"eps": 1e-3},
            {"weight_decay": 0.01},
            {"maximize": True},
            {"betas": (0.8, 0.99)},
        ),
        draw={"eps": lambda rng: _maybe(rng, lambda: float(10 ** rng.uniform(-10, -4)))},
        strategies={"eps": st.one_of(st.just(0.0), st.floats(0.0, 1.0))},
        errors=(({"betas": (float("nan"), 0.9)}, ValueError, r"betas\[0\]: expected a number"),),
    ),
    RuleInfo(
        "Nadam",
        torch_configs=(
            {},
            {"momentum_decay": 0.01},
            {"weight_decay": 0.01},
            {"weight_decay": 0.01, "decoupled_weight_decay": True},
            {"maximize": True},
            {"betas": (0.95, 0.99), "eps": 1e-6},
        ),
        step_size_form=lambda hyper: True,
        errors=(({"eps": 0.0}, ValueError, r"eps: expected a finite number > 0, got 0.0"),),
    ),
    RuleInfo(
        "AMSGrad",
        torch_configs=({}, {"weight_decay": 0.01, "maximize": True}),
        constrain=_amsgrad_valid,
        valid=lambda h: (
            (h["bias_correction"] or not h["max_of_v_hat"])
            and not (h["max_of_v_hat"] and h["eps_hat"])
        ),
        # with bias correction the kernel takes Adam's step-size form
        step_size_form=lambda hyper: hyper["bias_correction"],
        errors=(({"eps": -1e-8}, ValueError, r"eps: expected a finite number > 0"),),
    ),
    # issue 15's rules (docs/spec-rules-2.md); every one bitwise equal to the reference
    RuleInfo(
        "Lion",
        # against lion-pytorch 0.2.5 (test_torch_rules2)
        torch_configs=(
            {},
            {"lr": 3e-3, "betas": (0.95, 0.98)},
            {"lr": 3e-3, "weight_decay": 0.5},
            {"lr": 3e-3, "weight_decay": 1e-3, "decoupled_weight_decay": True},
        ),
        errors=(
            ({"betas": (0.9, 1.5)}, ValueError, r"betas\[1\]: expected a number in \[0, 1\)"),
            ({"lr": -1e-4}, ValueError, r"lr: expected a finite number >= 0"),
        ),
    ),
    RuleInfo(
        "RAdam",
        torch_configs=(
            {},
            {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
            {"lr": 0.01, "weight_decay": 0.1},
            {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
            {"lr": 0.01, "maximize": True},
            {"lr": 0.01, "foreach": True},
        ),
        draw={"rectify_threshold": lambda rng: float(rng.uniform(4.0, 6.0))},
        strategies={"rectify_threshold": st.floats(4.0, 1e3)},
        errors=(
            (
                {"rectify_threshold": 3.0},
                ValueError,
                r"rectify_threshold: expected a finite number >= 4",
            ),
            ({"rectify_threshold": "5"}, TypeError, r"rectify_threshold: expected a real number"),
        ),
    ),
    RuleInfo(
        "Rprop",
        torch_configs=(
            {},
            {"lr": 0.001, "etas": (0.3, 1.5), "step_sizes": (1e-4, 0.05)},
            {"maximize": True},
            {"foreach": True},
        ),
        draw={
            "etas": lambda rng: (float(rng.uniform(0.2, 0.9)), float(rng.uniform(1.05, 1.5))),
            "step_sizes": lambda rng: (
                float(10 ** rng.uniform(-8, -5)),
                float(10 ** rng.uniform(-1, 1.7)),
            ),
        },
        strategies={
            "etas": st.tuples(st.floats(1e-3, 0.999), st.floats(1.001, 10.0)),
            "step_sizes": st.tuples(st.floats(0.0, 1e-3), st.floats(1e-3, 100.0)),
        },
        errors=(
            ({"etas": (1.2, 0.5)}, ValueError, r"etas: expected \(eta_minus, eta_plus\) with 0 <"),
            ({"etas": 0.5}, TypeError, r"etas: expected a pair \(eta_minus, eta_plus\)"),
            (
                {"step_sizes": (1.0, 0.1)},
                ValueError,
                r"step_sizes: expected \(min_step, max_step\)",
            ),
            ({"step_sizes": (0.0, float("inf"))}, ValueError, r"step_sizes: expected \(min_step"),
        ),
    ),
    RuleInfo(
        "ASGD",
        torch_configs=(
            {},
            {"lr": 0.05, "lambd": 1e-2, "alpha": 0.5, "t0": 10},
            {"lr": 0.05, "t0": 0, "weight_decay": 0.1},
            {"lr": 0.05, "t0": 30.5, "maximize": True},
            {"lr": 0.05, "t0": 10, "foreach": True},
        ),
        draw={
            "lambd": lambda rng: _maybe(rng, lambda: float(10 ** rng.uniform(-4, -1))),
            "alpha": lambda rng: float(rng.uniform(0.5, 1.0)),
            # averaging from early on, or never (torch's default 1e6)
            "t0": lambda rng: float(rng.choice([0.0, 3.0, 100.5, 1e6])),
        },
        strategies={
            "lambd": st.floats(0.0, 10.0),
            "alpha": st.floats(0.0, 2.0),
            "t0": st.floats(0.0, 1e7),
        },
        errors=(
            ({"lambd": -1e-4}, ValueError, r"lambd: expected a finite number >= 0"),
            ({"t0": float("nan")}, ValueError, r"t0: expected a number, got nan"),
        ),
    ),
    # ---- rows of LAMB and Adafactor (issue 15) ----
    # Bitwise equal to the reference: the reference sums the per-tensor norms in the
    # kernels' fixed order (docs/spec-reductions.md).
    RuleInfo(
        "LAMB",
        draw={
            "trust_clip": lambda rng: float(rng.choice([np.inf, 10.0, 0.5])),
            "grad_averaging": _coin,
            "eps_in_trust_ratio": _coin,
            "debias_step_size": _coin,
            "eps": lambda rng: float(10 ** rng.uniform(-8, -4)),
        },
        strategies={"trust_clip": st.floats(1e-3, np.inf, exclude_min=False)},
        errors=(
            ({"trust_clip": 0.0}, ValueError, r"trust_clip: expected a number > 0 \(inf: no"),
            ({"trust_clip": "10"}, TypeError, r"trust_clip: expected a real number"),
            ({"eps": 0.0}, ValueError, r"eps: expected a finite number > 0"),
        ),
    ),
    RuleInfo(
        "Adafactor",
        draw={
            "beta2_decay": lambda rng: float(rng.uniform(-1.0, -0.5)),
            "eps": lambda rng: (
                None if _coin(rng) else float(10 ** rng.uniform(-30, -10)),
                float(10 ** rng.uniform(-4, -2)),
            ),
            "d": lambda rng: float(rng.choice([1.0, 2.0, np.inf])),
            "relative_step": _coin,
            "scale_parameter": _coin,
        },
        strategies={
            "beta2_decay": st.floats(-10.0, 0.0),
            "eps": st.tuples(st.one_of(st.none(), st.floats(0.0, 1.0)), st.floats(0.0, 1.0)),
            "d": st.floats(1e-3, np.inf),
        },
        errors=(
            ({"beta2_decay": 0.5}, ValueError, r"beta2_decay: expected a finite number <= 0"),
            ({"eps": (None, -1.0)}, ValueError, r"eps\[1\]: expected a finite number >= 0"),
            ({"eps": 1e-3}, TypeError, r"eps: expected a pair \(eps1 or None, eps2\)"),
            ({"d": 0.0}, ValueError, r"d: expected a number > 0 \(inf: no threshold\)"),
        ),
    ),
    # ---- rows of Schedule-Free and Muon (issue 15) ----
    # Muon: the kernels around the Newton–Schulz iteration (the reference's own NumPy
    # function, called by both backends) are bitwise equal to the reference.
    RuleInfo(
        "Muon",
        draw={
            "momentum": lambda rng: float(rng.uniform(0.0, 0.99)),
            "nesterov": _coin,
            "ns_coefficients": lambda rng: (
                (3.4445, -4.7750, 2.0315)
                if _coin(rng)
                else (float(rng.uniform(1.5, 3.5)), float(rng.uniform(-5.0, -1.0)), 0.5)
            ),
            "eps": lambda rng: float(10 ** rng.uniform(-8, -4)),
            "ns_steps": lambda rng: int(rng.integers(0, 7)),
            "match_rms_adamw": _coin,
        },
        strategies={
            "momentum": st.floats(0.0, 2.0),
            "ns_coefficients": st.tuples(*[st.floats(-10.0, 10.0)] * 3),
            "ns_steps": st.integers(0, 10),
        },
        errors=(
            ({"ns_steps": 100}, ValueError, r"ns_steps: expected an int in \[0, 100\)"),
            ({"ns_steps": 2.5}, TypeError, r"ns_steps: expected an int, got float"),
            (
                {"ns_coefficients": (1.0, 2.0)},
                TypeError,
                r"ns_coefficients: expected three numbers \(a, b, c\)",
            ),
            (
                {"ns_coefficients": (1.0, float("inf"), 2.0)},
                ValueError,
                r"ns_coefficients\[1\]: expected a finite number",
            ),
            ({"momentum": -0.5}, ValueError, r"momentum: expected a finite number >= 0"),
            ({"eps": 0.0}, ValueError, r"eps: expected a finite number > 0"),
        ),
    ),
    RuleInfo(
        "ScheduleFreeAdamW",
        draw={
            # β1 > 0: eval() divides by it
            "betas": lambda rng: (float(rng.uniform(0.5, 0.99)), float(rng.uniform(0.9, 0.9999))),
            "warmup_steps": lambda rng: float(rng.choice([0.0, 10.0, 2000.0])),
            "r": lambda rng: _maybe(rng, lambda: float(rng.uniform(0.0, 2.0))),
            "weight_lr_power": lambda rng: float(rng.choice([2.0, 0.0, rng.uniform(0.0, 3.0)])),
            "lr_bias_correction": _coin,
        },
        strategies={
            "betas": st.tuples(st.floats(1e-3, 1.0, exclude_max=True), _UNIT),
            "warmup_steps": st.floats(0.0, 1e4),
            "r": st.floats(0.0, 4.0),
            "weight_lr_power": st.floats(0.0, 4.0),
        },
        valid=lambda h: h["betas"][0] > 0,
        errors=(
            ({"betas": (0.0, 0.999)}, ValueError, r"betas\[0\]: expected a number in \(0, 1\)"),
            ({"warmup_steps": -1}, ValueError, r"warmup_steps: expected a finite number >= 0"),
            ({"r": float("nan")}, ValueError, r"r: expected a number, got nan"),
            ({"lr_bias_correction": "yes"}, TypeError, r"lr_bias_correction: expected True or"),
        ),
    ),
    RuleInfo(
        "ScheduleFreeSGD",
        draw={
            "momentum": lambda rng: float(rng.uniform(0.5, 0.99)),
            "warmup_steps": lambda rng: float(rng.choice([0.0, 10.0, 2000.0])),
            "r": lambda rng: _maybe(rng, lambda: float(rng.uniform(0.0, 2.0))),
            "weight_lr_power": lambda rng: float(rng.choice([2.0, 0.0, rng.uniform(0.0, 3.0)])),
        },
        strategies={
            "momentum": st.floats(1e-3, 1.0, exclude_min=True, exclude_max=True),
            "warmup_steps": st.floats(0.0, 1e4),
            "r": st.floats(0.0, 4.0),
            "weight_lr_power": st.floats(0.0, 4.0),
        },
        valid=lambda h: 0 < h["momentum"] < 1,
        errors=(
            ({"momentum": 1.0}, ValueError, r"momentum: expected a number in \(0, 1\)"),
            ({"momentum": 0.0}, ValueError, r"momentum: expected a number in \(0, 1\)"),
            ({"weight_lr_power": -2.0}, ValueError, r"weight_lr_power: expected a finite"),
        ),
    ),
)

RULES: dict[str, RuleInfo] = {row.name: row for row in _ROWS}
# The rules of the catalogue, in its order (every row's rule must be one of them).
RULE_NAMES = [rule.rule for rule in CATALOGUE]


def classes(rule: str):
    """(gdfast class, gdfast.reference class) of one rule."""
    return getattr(gdfast.optim, rule), getattr(reference, rule)


def random_hyperparameters(rule: str, rng: np.random.Generator) -> Hyper:
    """Valid hyper-parameters drawn at random, in ranges where 1,000 steps stay tame, and
    every named option drawn too, each value about as often."""
    fast, _ = classes(rule)
    draw = {**COMMON_DRAW, **RULES[rule].draw}
    hyper = {name: draw[name](rng) for name in fast.hyperparameter_names}
    return RULES[rule].constrain(hyper)


def hyperparameter_strategy(rule: str):
    """Any valid hyper-parameters, every named option included (hypothesis)."""
    fast, _ = classes(rule)
    strategies = {**COMMON_STRATEGIES, **RULES[rule].strategies}
    names = fast.hyperparameter_names
    drawn = st.fixed_dictionaries({name: strategies.get(name, st.booleans()) for name in names})
    return drawn.filter(RULES[rule].valid)


def bad_hyperparameters() -> list[tuple[str, Hyper, type, str]]:
    """(rule, hyper-parameters, error, message) of every row's error inputs."""
    return [(row.name, *error) for row in _ROWS for error in row.errors]


def at_line_offset(values: np.ndarray, offset: int) -> np.ndarray:
    """A copy of `values` whose first element lies `offset` elements past a 64-byte boundary
    (the kernels cut their loops where the parameter reaches a cache line)."""
    room = np.empty(values.size + offset + 64 // values.itemsize, dtype=values.dtype)
    first = (-room.ctypes.data % 64) // values.itemsize
    out = room[first + offset : first + offset + values.size].reshape(values.shape)
    out[...] = values
    assert (out.ctypes.data - offset * values.itemsize) % 64 == 0
    return out


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
# (The rows say which: RuleInfo.step_size_form.)
def uses_step_size_form(optimizer) -> bool:
    return RULES[optimizer.rule].step_size_form(optimizer.options | optimizer._hyper)


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
