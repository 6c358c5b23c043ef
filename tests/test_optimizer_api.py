"""Behaviour of the optimizer classes shared by both backends: skipped and frozen
parameters, state round trips, thread settings, the GIL, Nesterov's two forms."""

from __future__ import annotations

import inspect
import threading

import numpy as np
import pytest

import gdfast
from gdfast import reference
from rules_table import (
    DTYPES,
    RULE_NAMES,
    TOLERANCE,
    Quadratic,
    assert_same_optimizer_state,
    classes,
    random_hyperparameters,
)

BACKENDS = {"gdfast": gdfast.optim, "reference": reference}


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_same_signature_and_defaults_in_both_backends(rule):
    fast, slow = classes(rule)
    assert inspect.signature(fast) == inspect.signature(slow)
    assert fast.__init__ is slow.__init__  # one definition of the defaults
    assert fast.__doc__ == slow.__doc__ and "Parameters" in fast.__doc__
    assert fast.rule == slow.rule == rule
    assert fast.__module__ == "gdfast" and slow.__module__ == "gdfast.reference"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_none_gradient_leaves_parameter_state_and_step_untouched(rule, backend):
    problem = Quadratic([(5,), (2, 3)], np.float64)
    params = problem.fresh_params()
    optimizer = getattr(BACKENDS[backend], rule)(params)
    optimizer.step(problem.gradients(params))
    frozen = params[1].copy()
    frozen_state = {name: buffers[1].copy() for name, buffers in optimizer.state.items()}
    before = params[0].copy()
    optimizer.step([problem.gradients(params)[0], None])
    assert optimizer.steps == (2, 1)
    assert not np.array_equal(params[0], before)
    np.testing.assert_array_equal(params[1], frozen)
    for name, buffers in optimizer.state.items():
        np.testing.assert_array_equal(buffers[1], frozen_state[name])
    optimizer.step([None, None])
    assert optimizer.steps == (2, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_frozen_then_unfrozen_parameter_matches_reference(rule, dtype):
    """A parameter skipped for some steps resumes with its own step count (bias corrections
    of its t, not the optimizer's), in both backends alike."""
    problem = Quadratic([(9,), (4,)], dtype, seed=3)
    fast_class, slow_class = classes(rule)
    hyper = random_hyperparameters(rule, np.random.default_rng(5))
    fast = fast_class(problem.fresh_params(), **hyper)
    slow = slow_class(problem.fresh_params(), **hyper)
    for step in range(30):
        frozen = 5 <= step < 20
        for optimizer in (fast, slow):
            grads = problem.gradients(optimizer.params)
            optimizer.step([grads[0], None if frozen else grads[1]])
    assert fast.steps == (30, 15)
    assert_same_optimizer_state(fast, slow, TOLERANCE[(dtype, 1000)])


@pytest.mark.parametrize("target", ["gdfast", "reference"])
@pytest.mark.parametrize("source", ["gdfast", "reference"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_state_round_trip_mid_run(rule, source, target, tmp_path):
    """Save mid-run to .npz, load into a fresh optimizer of either backend, continue:
    same result as never stopping."""
    problem = Quadratic([(6,), (3, 2)], np.float64, seed=11)
    hyper = random_hyperparameters(rule, np.random.default_rng(2))
    uninterrupted = getattr(BACKENDS[source], rule)(problem.fresh_params(), **hyper)
    interrupted = getattr(BACKENDS[source], rule)(problem.fresh_params(), **hyper)
    for _ in range(10):
        for optimizer in (uninterrupted, interrupted):
            optimizer.step(problem.gradients(optimizer.params))
    path = tmp_path / "state.npz"
    gdfast.save_state(interrupted, path)
    resumed_params = [p.copy() for p in interrupted.params]
    resumed = getattr(BACKENDS[target], rule)(resumed_params)  # default hyper-parameters ...
    resumed.load_state_dict(gdfast.load_state(path))  # ... replaced by the saved ones
    assert resumed.hyperparameters == uninterrupted.hyperparameters
    for _ in range(10):
        for optimizer in (uninterrupted, resumed):
            optimizer.step(problem.gradients(optimizer.params))
    tolerance = 0.0 if source == target else TOLERANCE[(np.float64, 1000)]
    assert_same_optimizer_state(resumed, uninterrupted, tolerance)


def test_state_file_is_plain_npz_without_pickle(tmp_path):
    theta = np.ones(4, dtype=np.float32)
    optimizer = gdfast.AMSGrad(theta)
    optimizer.step(np.full(4, 0.5, dtype=np.float32))
    gdfast.save_state(optimizer, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(
            [
                "format",
                "rule",
                "steps",
                "hyperparameters/lr",
                "hyperparameters/betas",
                "hyperparameters/eps",
                "hyperparameters/bias_correction",
                "hyperparameters/max_of_v_hat",
                "hyperparameters/eps_hat",
                "hyperparameters/weight_decay",
                "hyperparameters/decoupled_weight_decay",
                "hyperparameters/maximize",
                "state/exp_avg/0",
                "state/exp_avg_sq/0",
                "state/max_exp_avg_sq/0",
            ]
        )
        assert archive["state/exp_avg/0"].dtype == np.float32
    loaded = gdfast.load_state(tmp_path / "s.npz")
    assert loaded["rule"] == "AMSGrad" and loaded["steps"] == [1]
    assert loaded["hyperparameters"]["betas"] == (0.9, 0.999)


def test_state_dict_is_a_copy():
    theta = np.ones(3)
    optimizer = gdfast.Momentum(theta)
    optimizer.step(np.ones(3))
    state = optimizer.state_dict()
    state["state"]["velocity"][0][:] = 123.0
    assert optimizer.state["velocity"][0][0] != 123.0


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_bitwise_equal_for_one_and_two_threads(rule, dtype, restore_threads):
    size = 3 * gdfast._kernels.min_elements_per_thread() + 17  # big enough for a team
    results = []
    for threads in (1, 2):
        gdfast.set_num_threads(threads)
        assert gdfast.get_num_threads() == threads
        problem = Quadratic([(size,)], dtype, seed=1)
        optimizer = getattr(gdfast.optim, rule)(problem.fresh_params())
        for _ in range(5):
            optimizer.step(problem.gradients(optimizer.params))
        results.append(
            (optimizer.params[0].copy(), [b[0].copy() for b in optimizer.state.values()])
        )
    (p1, s1), (p2, s2) = results
    assert p1.tobytes() == p2.tobytes()
    for a, b in zip(s1, s2):
        assert a.tobytes() == b.tobytes()


def test_thread_setting_validation_and_default(restore_threads):
    default = gdfast.get_num_threads()
    assert default >= 1
    gdfast.set_num_threads(1)
    assert gdfast.get_num_threads() == 1
    gdfast.set_num_threads(None)
    assert gdfast.get_num_threads() == default
    with pytest.raises(ValueError, match="n: expected at least 1"):
        gdfast.set_num_threads(0)
    with pytest.raises(TypeError, match="n: expected an int"):
        gdfast.set_num_threads(2.0)
    assert isinstance(gdfast.openmp_enabled(), bool)
    assert gdfast.kernel_isa() in {"avx512f", "avx2", "default"}


def test_kernels_release_the_gil(restore_threads):
    """While one Python thread is inside a kernel, another runs Python code.

    Thread A steps SGD (lr 1, gradient 1) on one large array with one kernel thread,
    which updates elements in index order.  The main thread repeatedly copies the
    first and the last element in one numpy call, which needs the GIL.  A copy in
    which they differ was taken while A's kernel was half-way through a step: possible
    only if the kernel released the GIL.  Two optimizers can thus step in parallel.
    """
    gdfast.set_num_threads(1)
    theta = np.zeros(20_000_000, dtype=np.float32)
    grad = np.ones_like(theta)
    optimizer = gdfast.SGD(theta, lr=1.0)
    worker = threading.Thread(target=lambda: [optimizer.step(grad) for _ in range(20)])
    half_way = 0
    worker.start()
    while worker.is_alive():
        ends = theta[[0, -1]]
        half_way += bool(ends[0] != ends[1])
    worker.join()
    assert theta[0] == theta[-1] == -20.0
    assert half_way > 0


def test_two_threads_two_optimizers_give_the_sequential_results(restore_threads):
    problem = Quadratic([(200_000,)], np.float32)
    alone = [gdfast.Adam(problem.fresh_params()) for _ in range(2)]
    together = [gdfast.Adam(problem.fresh_params()) for _ in range(2)]
    for optimizer in alone:
        for _ in range(20):
            optimizer.step(problem.gradients(optimizer.params))

    def run(optimizer):
        for _ in range(20):
            optimizer.step(problem.gradients(optimizer.params))

    threads = [threading.Thread(target=run, args=(o,)) for o in together]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        assert a.params[0].tobytes() == b.params[0].tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_nesterov_equals_the_lookahead_form(dtype):
    """SPEC 1.1: the kernel's trajectory φ_t equals θ_t − γ v_t of the literal lookahead
    form, with its gradient evaluated by a callback at θ − γ v, on a quadratic."""
    lr, momentum = 0.05, 0.9
    problem = Quadratic([(50,)], dtype, seed=4)
    gradient_at = lambda point: problem.gradients([point])[0]  # noqa: E731
    theta = problem.start[0].copy()
    lookahead_velocity = np.zeros_like(theta)
    phi = problem.start[0].copy()  # φ0 = θ0 − γ·0
    optimizer = gdfast.Nesterov(phi, lr=lr, momentum=momentum)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for _ in range(200):
        reference.nesterov_lookahead(
            theta, lookahead_velocity, gradient_at, lr=lr, momentum=momentum
        )
        optimizer.step(gradient_at(phi))
        np.testing.assert_allclose(
            optimizer.state["velocity"][0], lookahead_velocity, rtol=0, atol=tolerance * 40
        )
        np.testing.assert_allclose(
            phi, theta - momentum * lookahead_velocity, rtol=0, atol=tolerance * 40
        )
    assert np.max(np.abs(phi - problem.center[0])) < 1e-3 * 40  # and both converge


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_array_and_zero_size_parameters(backend):
    module = BACKENDS[backend]
    theta = np.ones((2, 3), dtype=np.float32)
    optimizer = module.Adam(theta, lr=0.5)
    optimizer.step(np.ones((2, 3), dtype=np.float32))
    assert np.all(theta < 1)
    empty = np.zeros((0, 4))
    scalar = np.array(2.0)
    optimizer = module.Momentum([empty, scalar])
    optimizer.step([np.zeros((0, 4)), np.array(1.0)])
    assert scalar == 2.0 - 0.01 and optimizer.steps == (1, 1)


def test_non_contiguous_gradient_is_used_as_values():
    theta = np.zeros((3, 4))
    grad = np.arange(24.0).reshape(6, 4)[::2]  # a strided (3, 4) view
    assert not grad.flags.c_contiguous
    gdfast.SGD(theta, lr=1.0).step(grad)
    np.testing.assert_array_equal(theta, -grad)


def test_hyperparameters_are_settable_between_steps():
    theta = np.zeros(2)
    optimizer = gdfast.SGD(theta, lr=0.1)
    optimizer.step(np.ones(2))
    optimizer.lr = 1.0
    optimizer.step(np.ones(2))
    np.testing.assert_allclose(theta, [-1.1, -1.1])
    assert optimizer.hyperparameters == {"lr": 1.0}
    assert optimizer.options == {
        "weight_decay": 0.0,
        "decoupled_weight_decay": False,
        "maximize": False,
    }
    assert "lr=1.0" in repr(optimizer)


def test_state_file_keeps_flags_as_bools(tmp_path):
    optimizer = gdfast.RMSprop(np.ones(3), centered=True, momentum=0.9, convention="torch")
    optimizer.step(np.ones(3))
    gdfast.save_state(optimizer, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as archive:
        assert archive["hyperparameters/centered"].dtype == bool
        assert archive["hyperparameters/lr"].dtype == np.float64
    loaded = gdfast.load_state(tmp_path / "s.npz")
    assert loaded["hyperparameters"]["centered"] is True
    assert loaded["hyperparameters"]["eps_inside_sqrt"] is False
    assert loaded["hyperparameters"] == optimizer.state_dict()["hyperparameters"]
