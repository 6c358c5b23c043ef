"""The C kernels against the NumPy reference (SPEC.md section 4).

For every rule and dtype: sizes 0, 1, 7, 22, 1000 and 1,000,003; random valid
hyper-parameters; one step from a random state at a random step count, and
1,000 steps of a problem whose gradient depends on the parameters; parameters
and every state entry compared to SPEC's tolerances.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdfast.catalogue import row_sparse_rules
from rules_table import (
    DTYPES,
    RULE_NAMES,
    RULES,
    TOLERANCE,
    Quadratic,
    assert_same_optimizer_state,
    classes,
    hyperparameter_strategy,
    random_hyperparameters,
    random_state,
)

SIZES = [0, 1, 7, 22, 1000, 1_000_003]


def pair(rule, shapes, dtype, hyper, seed=0):
    """The same optimizer twice, C and reference, on identical copies of the same start."""
    problem = Quadratic(shapes, dtype, seed)
    fast_class, slow_class = classes(rule)
    fast = fast_class(problem.fresh_params(), **hyper)
    slow = slow_class(problem.fresh_params(), **hyper)
    return problem, fast, slow


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_one_step_from_random_state(rule, dtype, size):
    rng = np.random.default_rng([size, RULE_NAMES.index(rule)])
    hyper = random_hyperparameters(rule, rng)
    problem, fast, slow = pair(rule, [(size,), (3, 2)], dtype, hyper)
    state = random_state(slow, rng)
    fast.load_state_dict(state)
    slow.load_state_dict(state)
    grads = [np.array(rng.standard_normal(p.shape), dtype=dtype) for p in problem.start]
    before = [p.copy() for p in slow.params]
    fast.step(grads)
    slow.step(grads)
    assert_same_optimizer_state(fast, slow, TOLERANCE[(dtype, 1)], params_before=before)


@pytest.mark.parametrize("size", [0, 1, 7, 22, 1000])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_thousand_steps(rule, dtype, size):
    rng = np.random.default_rng([size, 7, RULE_NAMES.index(rule)])
    hyper = random_hyperparameters(rule, rng)
    problem, fast, slow = pair(rule, [(size,), (4, 5)], dtype, hyper)
    for _ in range(1000):
        fast.step(problem.gradients(fast.params))
        slow.step(problem.gradients(slow.params))
    assert fast.steps == (1000, 1000)
    assert_same_optimizer_state(fast, slow, TOLERANCE[(dtype, 1000)])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_many_steps_large_threaded(rule, dtype):
    """1,000,003 elements, split over the thread team: 200 steps held to the 1,000-step
    tolerance (1,000 steps of the NumPy reference at this size cost CI ~5 minutes; the
    1,000-step trajectories run at sizes up to 1000 above)."""
    rng = np.random.default_rng([1_000_003, RULE_NAMES.index(rule)])
    hyper = random_hyperparameters(rule, rng)
    problem, fast, slow = pair(rule, [(1_000_003,)], dtype, hyper)
    for _ in range(200):
        fast.step(problem.gradients(fast.params))
        slow.step(problem.gradients(slow.params))
    assert_same_optimizer_state(fast, slow, TOLERANCE[(dtype, 1000)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
@settings(
    max_examples=int(os.environ.get("GDFAST_HYPOTHESIS_EXAMPLES", 40)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_one_step_any_hyperparameters(rule, dtype, data):
    """Hypothesis: any valid hyper-parameters, odd sizes and shapes, random state and step."""
    hyper = data.draw(hyperparameter_strategy(rule), label="hyper")
    shape = data.draw(st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple), label="shape")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    problem, fast, slow = pair(rule, [shape, (33,)], dtype, hyper, seed=seed % 1000)
    state = random_state(slow, rng, max_step=data.draw(st.sampled_from([1, 10, 10**9])))
    fast.load_state_dict(state)
    slow.load_state_dict(state)
    grads = [
        np.array(rng.standard_normal(p.shape) * 10.0 ** rng.integers(-6, 6), dtype=dtype)
        for p in problem.start
    ]
    before = [p.copy() for p in slow.params]
    fast.step(grads)
    slow.step(grads)
    assert_same_optimizer_state(fast, slow, TOLERANCE[(dtype, 1)], params_before=before)


# the rules whose kernel is the reference's arithmetic in the same order, with some options
BITWISE_RULES = [
    rule
    for rule in RULE_NAMES
    if not RULES[rule].step_size_form(classes(rule)[1](np.zeros(1)).options)
]


@pytest.mark.parametrize("seed", [9, 10, 11, 12])
@pytest.mark.parametrize("rule", BITWISE_RULES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_bitwise_equal_to_the_reference(rule, dtype, seed):
    """Eight rules compute exactly the reference's operations in the same order (no FMA
    contraction, same dtype): their results are bitwise equal, over many steps, with any
    of their named options (AMSGrad without bias correction: with it, it takes Adam's
    step-size form)."""
    hyper = random_hyperparameters(rule, np.random.default_rng(seed))
    if rule == "AMSGrad":
        hyper.update(bias_correction=False, max_of_v_hat=False)
    problem, fast, slow = pair(rule, [(1001,), (3, 5)], dtype, hyper)
    for _ in range(100):
        fast.step(problem.gradients(fast.params))
        slow.step(problem.gradients(slow.params))
    for a, b in zip(fast.params, slow.params):
        assert a.tobytes() == b.tobytes()
    for name in slow.state_names:
        for a, b in zip(fast.state[name], slow.state[name]):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_non_finite_gradients_propagate_like_the_reference(rule, dtype):
    """NaN and ±Inf in a gradient are not errors: same NaN/Inf positions and values as the
    reference, in parameters and state, and no crash or warning."""
    problem, fast, slow = pair(rule, [(64,)], dtype, {})
    grad = np.linspace(-2, 2, 64).astype(dtype)
    grad[[3, 17]] = np.nan
    grad[[5, 40]] = np.inf
    grad[[9, 63]] = -np.inf
    grad[20] = 0.0
    for _ in range(3):
        fast.step(grad)
        slow.step(grad)
    assert_same_optimizer_state(fast, slow, TOLERANCE[(dtype, 1)])
    assert np.isnan(fast.params[0][[3, 17]]).all()


def _run_core(optimizer, grads, **extra):
    """One step of `optimizer`'s functional core on every parameter, with extra keywords."""
    optimizer._steps += 1
    type(optimizer)._core(
        optimizer._param_list,
        grads,
        *optimizer._state_lists,
        optimizer._steps,
        **optimizer._core_hyper,
        **extra,
    )


def _state_bytes(optimizer):
    return [p.tobytes() for p in optimizer.params] + [
        b.tobytes() for name in optimizer.state_names for b in optimizer.state[name]
    ]


GRAD_SCALES = [1.0, 0.3, 2.5e-7, 1e40, 0.0]


@pytest.mark.parametrize("scale", GRAD_SCALES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_grad_scale_is_a_multiplication_of_the_gradient_first(rule, dtype, scale):
    """grad_scale=c (the cores' keyword for gradient clipping by global norm) gives, bitwise,
    the step with the gradient g · dtype(c), in both backends, for every rule and option
    (maximize and weight decay come after the scale); the eight bitwise rules also give the
    reference's bits exactly.  c = 1e40 overflows to inf in float32 in both."""
    rng = np.random.default_rng([RULE_NAMES.index(rule), int(scale * 7) % 97])
    hyper = random_hyperparameters(rule, rng)
    for backend in (0, 1):
        problem, *pair_ = pair(rule, [(67,), (3, 5)], dtype, hyper)
        scaled = pair_[backend]
        _, *twin = pair(rule, [(67,), (3, 5)], dtype, hyper)
        premultiplied = twin[backend]
        for _ in range(3):
            grads = problem.gradients(scaled.params)
            _run_core(scaled, grads, grad_scale=scale)
            with np.errstate(over="ignore"):  # 1e40 is inf in float32, on purpose
                _run_core(premultiplied, [g * dtype(scale) for g in grads])
        assert _state_bytes(scaled) == _state_bytes(premultiplied)
    problem, fast, slow = pair(rule, [(67,), (3, 5)], dtype, hyper)
    for _ in range(3):
        _run_core(fast, problem.gradients(fast.params), grad_scale=scale)
        _run_core(slow, problem.gradients(slow.params), grad_scale=scale)
    if RULES[rule].step_size_form({**fast.options, **hyper}):
        assert_same_optimizer_state(
            fast, slow, 10 * TOLERANCE[(dtype, 1)] if scale == 1e40 else TOLERANCE[(dtype, 1)]
        )
    else:
        assert _state_bytes(fast) == _state_bytes(slow)


@pytest.mark.parametrize("rule", row_sparse_rules())
def test_grad_scale_in_the_row_sparse_cores(rule):
    """The row form takes grad_scale too: equal, bitwise, to the row step with values·c."""
    from gdfast import reference

    indices = np.array([3, 0, 3, 7], dtype=np.int64)
    values = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32)
    for module in (gdfast_optim(), reference):
        row_core = getattr(module, rule)._row_core
        results = []
        for grads, extra in ((values, {"grad_scale": 0.25}), (values * np.float32(0.25), {})):
            opt = getattr(module, rule)(np.ones((8, 6), dtype=np.float32))
            row_core(
                opt.params[0],
                indices,
                grads,
                *[b[0] for b in opt._state_lists],
                1,
                **opt._hyper,
                **extra,
            )
            results.append(_state_bytes(opt))
        assert results[0] == results[1]


def gdfast_optim():
    import gdfast.optim

    return gdfast.optim


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("size", [4, 67])
def test_adadelta_nan_bits_equal_the_reference(dtype, size):
    """Infinite gradients make Adadelta's state NaN; the next steps add NaNs to NaNs.  The
    kernel and the reference agree bit for bit, NaN sign bits included (they used to differ:
    the negation in Δ = −(…)g made a NaN of the other sign, and which of two NaNs an addition
    returns depends on operand order)."""
    problem, fast, slow = pair("Adadelta", [(size,)], dtype, {})
    grad = np.full(size, np.inf, dtype=dtype)
    grad[1::2] = -np.inf
    grad[2::5] = 1.5
    for _ in range(3):
        fast.step(grad)
        slow.step(grad)
        assert _state_bytes(fast) == _state_bytes(slow)
