"""Row-sparse steps (gdfast.RowGrad): the C kernels against the NumPy reference, the dense
step, the thread count, the lazy semantics by hand, and bad input.

SGD, Momentum, Adagrad, RMSprop and Adam take RowGrad(indices, values) for a 2-D parameter:
duplicates summed, only the rows named (and their state) updated, t the parameter's.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdfast
from gdfast import reference
from gdfast.rows import RowGrad

from gdfast.catalogue import CATALOGUE, row_sparse_rules
from rules_table import (
    DTYPES,
    TOLERANCE,
    assert_same_optimizer_state,
    random_hyperparameters,
    random_state,
)

ROW_RULES = list(row_sparse_rules())
OTHER_RULES = [rule.rule for rule in CATALOGUE if not rule.rows]
STEPS = 4

# (n_rows, dim, how the indices of each step are drawn)
CASES = {
    "no-rows-table": (0, 5, "empty"),
    "empty": (9, 5, "empty"),
    "one-row": (9, 5, "one"),
    "one-row-table": (1, 6, "duplicates"),
    "duplicates": (12, 7, "duplicates"),
    "unsorted-distinct": (30, 3, "distinct"),
    "every-row-shuffled": (17, 4, "all"),
    "zero-width": (6, 0, "duplicates"),
    "many-rows": (5000, 2, "duplicates"),  # row numbers of 13 bits: two radix-sort passes
}


def draw_indices(how: str, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    if how == "empty":
        return np.zeros(0, dtype=np.int64)
    if how == "one":
        return np.array([rng.integers(n_rows)])
    if how == "duplicates":
        return rng.integers(0, n_rows, size=3 * n_rows + 2)
    if how == "distinct":
        chosen = rng.choice(n_rows, size=n_rows // 2, replace=False)
        return chosen if not np.all(np.diff(chosen) > 0) else chosen[::-1].copy()
    return rng.permutation(n_rows)


def row_hyperparameters(rule: str, rng: np.random.Generator) -> dict:
    hyper = random_hyperparameters(rule, rng)
    hyper["weight_decay"] = 0.0  # refused with RowGrad (no lazy form)
    return hyper


def pair(rule: str, table: np.ndarray, hyper: dict, rng: np.random.Generator):
    fast = getattr(gdfast, rule)([table.copy()], **hyper)
    slow = getattr(reference, rule)([table.copy()], **hyper)
    state = random_state(slow, rng, max_step=50)
    fast.load_state_dict(state)
    slow.load_state_dict(state)
    return fast, slow


def snapshot(optimizer) -> list[np.ndarray]:
    return [optimizer.params[0].copy()] + [
        buffers[0].copy() for buffers in optimizer.state.values()
    ]


def assert_untouched_rows_bitwise(before, optimizer, touched: np.ndarray) -> None:
    """Every row not in `touched`: parameter and each state entry bit for bit as before."""
    after = snapshot(optimizer)
    keep = np.ones(before[0].shape[0], dtype=bool)
    keep[touched] = False
    names = ["param"] + list(optimizer.state_names)
    for name, old, new in zip(names, before, after):
        assert old[keep].tobytes() == new[keep].tobytes(), f"{name}: an untouched row changed"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", ROW_RULES)
def test_rows_match_reference(rule, dtype, case):
    n_rows, dim, how = CASES[case]
    rng = np.random.default_rng(
        [ROW_RULES.index(rule), DTYPES.index(dtype), list(CASES).index(case)]
    )
    hyper = row_hyperparameters(rule, rng)
    table = np.array(rng.standard_normal((n_rows, dim)), dtype=dtype)
    fast, slow = pair(rule, table, hyper, rng)
    for step in range(STEPS):
        indices = draw_indices(how, n_rows, rng)
        values = np.array(rng.standard_normal((indices.size, dim)), dtype=dtype)
        before_fast, before_slow = snapshot(fast), snapshot(slow)
        fast.step([RowGrad(indices, values)])
        slow.step([RowGrad(indices, values)])
        assert_untouched_rows_bitwise(before_fast, fast, indices)
        assert_untouched_rows_bitwise(before_slow, slow, indices)
        tolerance = TOLERANCE[(dtype, 1 if step == 0 else 1000)]
        assert_same_optimizer_state(
            fast, slow, tolerance, params_before=[before_slow[0]] if step == 0 else None
        )
    assert fast.steps == slow.steps


@pytest.mark.parametrize("backend", [gdfast, reference], ids=["gdfast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", ROW_RULES)
def test_every_row_once_equals_dense_step_bitwise(rule, dtype, backend):
    rng = np.random.default_rng([11, ROW_RULES.index(rule), DTYPES.index(dtype)])
    hyper = row_hyperparameters(rule, rng)
    table = np.array(rng.standard_normal((37, 9)), dtype=dtype)
    cls = getattr(backend, rule)
    dense, sparse = cls([table.copy()], **hyper), cls([table.copy()], **hyper)
    state = random_state(dense, rng, max_step=50)
    dense.load_state_dict(state)
    sparse.load_state_dict(state)
    for _ in range(3):
        grad = np.array(rng.standard_normal(table.shape), dtype=dtype)
        order = rng.permutation(table.shape[0])
        dense.step([grad])
        sparse.step([RowGrad(order, grad[order])])
        for a, b in zip(snapshot(dense), snapshot(sparse)):
            assert a.tobytes() == b.tobytes()
    assert dense.steps == sparse.steps


@pytest.mark.skipif(not gdfast.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", ROW_RULES)
def test_thread_count_does_not_change_rows(rule, dtype, restore_threads):
    rng = np.random.default_rng([23, ROW_RULES.index(rule), DTYPES.index(dtype)])
    hyper = row_hyperparameters(rule, rng)
    n_rows, dim = 3000, 64  # > 2 x 32768 elements in distinct rows: a team of 2 runs
    table = np.array(rng.standard_normal((n_rows, dim)), dtype=dtype)
    indices = rng.integers(0, n_rows, size=6000)
    assert np.unique(indices).size * dim >= 2 * gdfast._kernels.min_elements_per_thread()
    values = np.array(rng.standard_normal((indices.size, dim)), dtype=dtype)
    results = []
    for threads in (1, 2):
        gdfast.set_num_threads(threads)
        opt = getattr(gdfast, rule)([table.copy()], **hyper)
        for _ in range(2):
            opt.step([RowGrad(indices, values)])
        results.append(snapshot(opt))
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("backend", [gdfast, reference], ids=["gdfast", "reference"])
def test_adam_lazy_by_hand(backend):
    """Row 0 named at steps 1 and 3, row 1 only at step 3, row 2 never: written out."""
    lr, beta1, beta2, eps = 0.1, 0.9, 0.99, 1e-8
    table = np.array([[1.0, -2.0], [3.0, 0.5], [7.0, 8.0]])
    opt = backend.Adam([table], lr=lr, betas=(beta1, beta2), eps=eps)
    g0 = np.array([[0.5, -1.0]])
    opt.step([RowGrad(np.array([0]), g0)])
    opt.step([RowGrad(np.zeros(0, dtype=np.int32), np.zeros((0, 2)))])  # counts as a step
    g3 = np.array([[1.0, 2.0], [-3.0, 4.0], [0.25, 0.5]])
    opt.step([RowGrad(np.array([1, 0, 1]), g3)])
    assert opt.steps == (3,)

    def adam(theta, m, v, g, t):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        return theta - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps), m, v

    row0, m0, v0 = adam(np.array([1.0, -2.0]), 0.0, 0.0, g0[0], 1)
    row0, m0, v0 = adam(row0, m0, v0, g3[1], 3)  # no decay at step 2
    row1, m1, v1 = adam(np.array([3.0, 0.5]), 0.0, 0.0, g3[0] + g3[2], 3)  # summed, t = 3
    np.testing.assert_allclose(table[0], row0, rtol=1e-14)
    np.testing.assert_allclose(table[1], row1, rtol=1e-14)
    np.testing.assert_allclose(opt.state["exp_avg"][0][:2], [m0, m1], rtol=1e-14)
    np.testing.assert_allclose(opt.state["exp_avg_sq"][0][:2], [v0, v1], rtol=1e-14)
    assert table[2].tolist() == [7.0, 8.0]
    assert opt.state["exp_avg"][0][2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("rule", ROW_RULES)
def test_mixed_dense_and_rows_in_one_step(rule):
    rng = np.random.default_rng([31, ROW_RULES.index(rule)])
    hyper = row_hyperparameters(rule, rng)
    params = [rng.standard_normal((10, 3)), rng.standard_normal(4), rng.standard_normal((5, 2))]
    fast = getattr(gdfast, rule)([p.copy() for p in params], **hyper)
    slow = getattr(reference, rule)([p.copy() for p in params], **hyper)
    for _ in range(3):
        indices = rng.integers(0, 10, size=6)
        grads = [RowGrad(indices, rng.standard_normal((6, 3))), rng.standard_normal(4), None]
        fast.step(grads)
        slow.step(grads)
    assert fast.steps == slow.steps == (3, 3, 0)
    assert_same_optimizer_state(fast, slow, TOLERANCE[(np.float64, 1000)])


# ------------------------------------------------------------------------ bad input
def bad_inputs(table: np.ndarray, state_buffer: np.ndarray):
    """(label, make the grads list, expected exception, words the message must contain)."""
    n, dim = table.shape
    good = lambda k: np.ones((k, dim), dtype=table.dtype)  # noqa: E731
    return [
        (
            "out of range",
            lambda: [RowGrad(np.array([0, n]), good(2))],
            ValueError,
            ["grads", "indices", str(n)],
        ),
        (
            "negative",
            lambda: [RowGrad(np.array([1, -1]), good(2))],
            ValueError,
            ["grads", "indices", "negative"],
        ),
        (
            "float indices",
            lambda: [RowGrad(np.array([0.0, 1.0]), good(2))],
            TypeError,
            ["indices", "integer"],
        ),
        (
            "bool indices",
            lambda: [RowGrad(np.array([True, False]), good(2))],
            TypeError,
            ["indices", "integer"],
        ),
        ("list indices", lambda: [RowGrad([0, 1], good(2))], TypeError, ["indices"]),
        (
            "2-D indices",
            lambda: [RowGrad(np.zeros((2, 1), dtype=np.int64), good(2))],
            ValueError,
            ["indices", "1-D"],
        ),
        ("values rows", lambda: [RowGrad(np.array([0, 1]), good(3))], ValueError, ["values"]),
        (
            "values columns",
            lambda: [RowGrad(np.array([0, 1]), np.ones((2, dim + 1), dtype=table.dtype))],
            ValueError,
            ["grads", "values", "shape"],
        ),
        (
            "values 1-D",
            lambda: [RowGrad(np.array([0]), np.ones(dim, dtype=table.dtype))],
            ValueError,
            ["values"],
        ),
        (
            "values dtype",
            lambda: [RowGrad(np.array([0]), np.ones((1, dim), dtype=np.float32))],
            TypeError,
            ["grads", "values", "dtype"],
        ),
        (
            "values int",
            lambda: [RowGrad(np.array([0]), np.ones((1, dim), dtype=np.int64))],
            TypeError,
            ["values", "dtype"],
        ),
        (
            "values alias param",
            lambda: [RowGrad(np.array([2, 0]), table[:2])],
            ValueError,
            ["grads", "values", "params"],
        ),
        (
            "values alias state",
            lambda: [RowGrad(np.array([2]), state_buffer[1:2])],
            ValueError,
            ["grads", "values", "state"],
        ),
    ]


@pytest.mark.parametrize("backend", [gdfast, reference], ids=["gdfast", "reference"])
@pytest.mark.parametrize("rule", ["Momentum", "Adam"])
def test_bad_row_input_raises_and_writes_nothing(rule, backend):
    rng = np.random.default_rng(5)
    table = rng.standard_normal((4, 3))
    other = rng.standard_normal((3, 2))
    opt = getattr(backend, rule)([table, other])
    opt.step([rng.standard_normal(table.shape), rng.standard_normal(other.shape)])
    state_buffer = next(iter(opt.state.values()))[0]
    for label, make, error, words in bad_inputs(table, state_buffer):
        before = opt.state_dict()
        params_before = [p.copy() for p in opt.params]
        with pytest.raises(error) as raised:
            # a valid RowGrad for the other parameter first: it must not be applied either
            opt.step([make()[0], RowGrad(np.array([1, 1]), np.ones((2, 2)))])
        for word in words:
            assert word in str(raised.value), f"{label}: {raised.value}"
        after = opt.state_dict()
        assert after["steps"] == before["steps"], label
        for a, b in zip(params_before, opt.params):
            assert a.tobytes() == b.tobytes(), label
        for name in before["state"]:
            for a, b in zip(before["state"][name], after["state"][name]):
                assert a.tobytes() == b.tobytes(), label


@pytest.mark.parametrize("backend", [gdfast, reference], ids=["gdfast", "reference"])
def test_row_grad_needs_a_2d_parameter(backend):
    vector = np.zeros(5)
    opt = backend.SGD([vector])
    with pytest.raises(ValueError, match=r"grads.*2-D parameter"):
        opt.step([RowGrad(np.array([0]), np.ones((1, 1)))])
    assert opt.steps == (0,) and not vector.any()


@pytest.mark.parametrize("backend", [gdfast, reference], ids=["gdfast", "reference"])
@pytest.mark.parametrize("rule", OTHER_RULES)
def test_other_rules_refuse_row_grads(rule, backend):
    table = np.ones((3, 2))
    opt = getattr(backend, rule)([table])
    with pytest.raises(TypeError, match=rf"grads\[0\]: {rule} does not take RowGrad"):
        opt.step(RowGrad(np.array([0]), np.ones((1, 2))))
    assert opt.steps == (0,) and (table == 1).all()


@pytest.mark.parametrize("backend", [gdfast, reference], ids=["gdfast", "reference"])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("rule", ROW_RULES)
def test_weight_decay_refuses_row_grads(rule, decoupled, backend):
    table = np.ones((3, 2))
    opt = getattr(backend, rule)([table], weight_decay=0.01, decoupled_weight_decay=decoupled)
    with pytest.raises(TypeError, match=rf"grads\[0\]: {rule} with weight_decay"):
        opt.step([RowGrad(np.array([0]), np.ones((1, 2)))])
    assert opt.steps == (0,) and (table == 1).all()


def test_row_grad_is_frozen():
    grad = RowGrad(np.array([0]), np.ones((1, 2)))
    with pytest.raises(AttributeError):
        grad.indices = np.array([1])
    assert gdfast.rows.RowGrad is RowGrad
