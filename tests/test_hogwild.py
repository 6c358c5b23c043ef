"""Hogwild! linear trainer: the C serial mode against the literal reference, by-hand values,
the threaded modes against serial, and bad input (SPEC.md section 3, issue 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

import gdfast
from gdfast import _hogwild, hogwild
from gdfast.hogwild import _checks, _native, _reference, _sparse, _training

from conftest import relative_error

DTYPES = [np.float32, np.float64]
# SPEC.md section 4 for a few epochs of ~100 rows (hundreds of dependent steps).
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def problem(
    n_rows: int = 120,
    n_features: int = 40,
    density: float = 0.15,
    seed: int = 0,
    loss: str = "logistic",
):
    """A sparse problem whose labels follow a linear rule plus noise."""
    rng = np.random.default_rng(seed)
    X = sp.random(
        n_rows,
        n_features,
        density=density,
        random_state=seed,
        format="csr",
        data_rvs=lambda k: rng.uniform(-1.0, 1.0, k),
    )
    truth = rng.standard_normal(n_features)
    signal = X @ truth + 0.3 * rng.standard_normal(n_rows)
    y = signal if loss == "squared" else np.where(signal > 0, 1.0, -1.0)
    return X, y


def test_generator_is_splitmix64_as_in_the_reference():
    for seed, epoch, thread in [(0, 0, 0), (123, 4, 1), (2**64 - 1, 10**9, 7)]:
        state = _reference._reference_stream_state(seed, epoch, thread)
        draws = []
        for _ in range(6):
            state, draw = _reference._reference_next(state)
            draws.append(draw)
        assert draws == _hogwild.stream_draws(seed, epoch, thread, 6)
    # splitmix64's published first output for state 0
    assert _reference._reference_next(0)[1] == 0xE220A8397B1DCDAF


def test_reference_order_is_a_fresh_permutation_each_epoch():
    first, second = hogwild.reference_order(50, 3, 0), hogwild.reference_order(50, 3, 1)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != second and first != list(range(50))
    assert hogwild.reference_order(5, 3, 0, shuffle=False) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("rule", ["sgd", "adagrad"])
@pytest.mark.parametrize("loss", ["logistic", "squared", "hinge"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_serial_equals_reference(dtype, loss, rule):
    X, y = problem(loss=loss)
    settings = dict(
        loss=loss, rule=rule, lr=0.3, decay=0.8, l2=0.01, epochs=3, seed=11, dtype=dtype
    )
    fast = hogwild.fit_linear(X, y, mode="serial", **settings)
    slow = hogwild.reference_fit_linear(X, y, **settings)
    tolerance = TOLERANCE[dtype]
    assert fast.coef.dtype == dtype
    assert relative_error(fast.coef, slow.coef) <= tolerance
    assert abs(fast.intercept - slow.intercept) <= tolerance * max(1.0, abs(slow.intercept))
    if rule == "adagrad":
        assert relative_error(fast.sum_sq, slow.sum_sq) <= tolerance
    else:
        assert fast.sum_sq is None and slow.sum_sq is None
    for a, b in zip(fast.history, slow.history):
        assert a["lr"] == b["lr"]
        assert a["progressive_loss"] == pytest.approx(b["progressive_loss"], rel=tolerance)
        assert a["objective"] == pytest.approx(b["objective"], rel=tolerance)
    assert not np.all(fast.coef == 0)


@pytest.mark.parametrize("fit_intercept, shuffle, l2", [(False, True, 0.0), (True, False, 0.1)])
def test_serial_equals_reference_without_intercept_or_shuffle(fit_intercept, shuffle, l2):
    X, y = problem(seed=3)
    settings = dict(
        rule="adagrad",
        lr=0.5,
        epochs=2,
        fit_intercept=fit_intercept,
        shuffle=shuffle,
        l2=l2,
        seed=5,
    )
    fast = hogwild.fit_linear(X, y, mode="serial", **settings)
    slow = hogwild.reference_fit_linear(X, y, **settings)
    assert relative_error(fast.coef, slow.coef) <= 1e-12
    assert relative_error(fast.sum_sq, slow.sum_sq) <= 1e-12
    if not fit_intercept:
        assert fast.intercept == 0.0 and fast.sum_sq[-1] == 0.0


X_ONE = sp.csr_matrix(np.array([[0.0, 2.0, 0.0, -1.0]]))


@pytest.mark.parametrize(
    "loss, y, derivative",
    [
        ("logistic", 1.0, -0.5),  # -y / (1 + exp(y·0))
        ("logistic", -1.0, 0.5),
        ("squared", 3.0, -3.0),  # z - y
        ("hinge", 1.0, -1.0),  # -y while y z < 1
    ],
)
def test_one_step_by_hand(loss, y, derivative):
    """From w = 0, b = 0 one example gives z = 0: the spec's formulas, computed by hand."""
    lr, l2 = 0.1, 0.5
    sgd = hogwild.fit_linear(
        X_ONE, [y], loss=loss, rule="sgd", lr=lr, l2=l2, epochs=1, mode="serial"
    )
    x = np.array([0.0, 2.0, 0.0, -1.0])
    np.testing.assert_array_equal(sgd.coef, -lr * derivative * x)  # λw = 0 at w = 0
    assert sgd.intercept == -lr * derivative
    ada = hogwild.fit_linear(
        X_ONE, [y], loss=loss, rule="adagrad", lr=lr, eps=1e-8, epochs=1, mode="serial"
    )
    grad = derivative * x
    expected = np.where(x != 0, -lr * grad / np.sqrt(grad * grad + 1e-8), 0.0)
    np.testing.assert_allclose(ada.coef, expected, rtol=1e-15)
    np.testing.assert_array_equal(ada.sum_sq[:-1], grad * grad)
    assert ada.sum_sq[-1] == derivative**2


def test_hinge_without_l2_leaves_satisfied_examples_alone():
    once = hogwild.fit_linear(
        X_ONE, [1.0], loss="hinge", rule="sgd", lr=1.0, epochs=1, mode="serial"
    )
    # z = 5 + 1 = 6 > 1 after the first step: later epochs change nothing
    later = hogwild.fit_linear(
        X_ONE, [1.0], loss="hinge", rule="sgd", lr=1.0, epochs=4, mode="serial"
    )
    np.testing.assert_array_equal(once.coef, later.coef)
    assert [h["progressive_loss"] for h in later.history] == [1.0, 0.0, 0.0, 0.0]


def test_step_decay_per_epoch():
    X, y = problem()
    model = hogwild.fit_linear(X, y, rule="sgd", lr=0.2, decay=0.5, epochs=4, mode="serial")
    assert [h["lr"] for h in model.history] == [0.2, 0.1, 0.05, 0.025]


@pytest.mark.parametrize("mode", ["hogwild", "locked"])
def test_one_thread_is_the_serial_algorithm(mode):
    X, y = problem(seed=4)
    serial = hogwild.fit_linear(X, y, mode="serial", epochs=3, seed=9)
    threaded = hogwild.fit_linear(X, y, mode=mode, n_threads=1, epochs=3, seed=9)
    np.testing.assert_array_equal(threaded.coef, serial.coef)
    np.testing.assert_array_equal(threaded.sum_sq, serial.sum_sq)


def test_serial_is_repeatable_and_seeded():
    X, y = problem(seed=5)
    a = hogwild.fit_linear(X, y, mode="serial", seed=1)
    b = hogwild.fit_linear(X, y, mode="serial", seed=1)
    c = hogwild.fit_linear(X, y, mode="serial", seed=2)
    np.testing.assert_array_equal(a.coef, b.coef)
    assert not np.array_equal(a.coef, c.coef)


def test_serial_ignores_the_thread_setting(restore_threads):
    X, y = problem(seed=6)
    gdfast.set_num_threads(1)
    one = hogwild.fit_linear(X, y, mode="serial")
    gdfast.set_num_threads(4)
    four = hogwild.fit_linear(X, y, mode="serial")
    np.testing.assert_array_equal(one.coef, four.coef)
    np.testing.assert_array_equal(one.decision_function(X), four.decision_function(X))


@pytest.fixture(scope="module")
def larger_problem():
    """Enough rows that two threads really overlap (~1 ms per epoch each)."""
    return problem(n_rows=20_000, n_features=2_000, density=0.01, seed=8)


CONVERGENCE = dict(decay=0.8, l2=1e-3, epochs=15)


@pytest.fixture(scope="module")
def serial_spread(larger_problem):
    """Per (rule, lr): the serial runs on 4 permutations (seeds 3-6) and a serial run of
    40 epochs (decay 0.9) further down the objective.  Two threads visit another
    interleaving, so their tolerance is the noise of another permutation (the serial
    runs' spread), not a guess: the threads' results then do not depend on timing."""
    X, y = larger_problem
    spread = {}
    for rule, lr in (("sgd", 0.5), ("adagrad", 0.2)):
        runs = [
            hogwild.fit_linear(X, y, mode="serial", rule=rule, lr=lr, seed=seed, **CONVERGENCE)
            for seed in range(3, 7)
        ]
        further = hogwild.fit_linear(
            X, y, mode="serial", rule=rule, lr=lr, decay=0.9, l2=1e-3, epochs=40, seed=3
        )
        spread[rule] = (runs, further.history[-1]["objective"])
    return spread


def assert_like_serial(model, runs, floor):
    """The objective within the serial runs' range widened by that range (one more
    permutation's noise), or below it but not below a 40-epoch serial run's; the weights
    within twice the serial runs' largest distance from one another."""
    objectives = [run.history[-1]["objective"] for run in runs]
    low, high = min(objectives), max(objectives)
    final = model.history[-1]["objective"]
    assert floor <= final <= high + (high - low), (final, objectives, floor)
    distance = max(np.linalg.norm(a.coef - b.coef) for a in runs for b in runs)
    nearest = min(np.linalg.norm(model.coef - run.coef) for run in runs)
    assert nearest <= 2 * distance, (nearest, distance)
    # and they learned: the objective fell well below log(2) of w = 0
    assert final < 0.8 * math.log(2.0)


@pytest.mark.parametrize("rule, lr", [("sgd", 0.5), ("adagrad", 0.2)])
@pytest.mark.parametrize("mode", ["hogwild", "locked"])
def test_threads_converge_to_serial(larger_problem, serial_spread, mode, rule, lr):
    X, y = larger_problem
    threaded = hogwild.fit_linear(
        X, y, mode=mode, n_threads=2, rule=rule, lr=lr, seed=7, **CONVERGENCE
    )
    runs, floor = serial_spread[rule]
    # plain threads: within the serial runs' noise on both sides
    low = min(run.history[-1]["objective"] for run in runs)
    high = max(run.history[-1]["objective"] for run in runs)
    assert_like_serial(threaded, runs, low - (high - low))


@pytest.mark.parametrize(
    "rule, lr, sync_every, hot_features",
    [
        ("sgd", 0.5, 1, 0),
        ("sgd", 0.5, 64, 64),
        ("adagrad", 0.2, 512, 2000),
        ("sgd", 0.5, 1024, "auto"),
        ("adagrad", 0.2, 1024, "auto"),
    ],
)
def test_replicas_converge_to_serial(
    larger_problem, serial_spread, rule, lr, sync_every, hot_features
):
    """Per-thread replicas of the intercept and the hot features (flushed every sync_every
    examples; "auto" replicates all 2000 features here, each in ~1% of the rows): within
    the serial runs' noise on both sides, as plain threads.  Moves simply added would end
    below it (Adagrad with every feature replicated: 0.4-2.8% below serial's objective over
    8 seeds), each replica's steps acting as if the other's had not been made; hw_sync
    scales a flush by the contraction of the moves flushed meanwhile."""
    X, y = larger_problem
    replicated = hogwild.fit_linear(
        X,
        y,
        n_threads=2,
        sync_every=sync_every,
        hot_features=hot_features,
        rule=rule,
        lr=lr,
        seed=7,
        **CONVERGENCE,
    )
    runs, floor = serial_spread[rule]
    low = min(run.history[-1]["objective"] for run in runs)
    high = max(run.history[-1]["objective"] for run in runs)
    assert_like_serial(replicated, runs, low - (high - low))


def test_tracked_replicas_follow_the_contraction_bound():
    """The replicated features whose steps in one flush interval can contract them by 10% or
    more (rate (c x² + l2) summed over the interval's rows, rate the largest step size in
    the epoch: one for SGD, one per feature for Adagrad) are tracked, from the first such
    one in the replicas' order on."""
    sgd = _checks._settings("sgd", 1.0, 1.0, 0.0, 1e-8, 1, "hogwild", 2, True, 0, 100, 5)
    shrink = np.array([0.5, 1.2, 0.1, 0.9, 2.0])  # 1000 rows, interval 100: x 0.1 at rate 1
    assert sgd.tracked_count(shrink, 1.0, 1000) == 4  # 0.12 >= 0.1 first at position 1
    assert sgd.tracked_count(shrink, 0.6, 1000) == 1  # 0.12 at position 4 only
    assert sgd.tracked_count(shrink, 0.1, 1000) == 0
    assert sgd.tracked_count(shrink[:0], 1.0, 1000) == 0
    rates = np.array([3.0, 0.1, 0.1, 0.1, 0.1])  # Adagrad: a rarely stepped feature first
    assert sgd.tracked_count(shrink, rates, 1000) == 5
    serial = _checks._settings("sgd", 1.0, 1.0, 0.0, 1e-8, 1, "serial", 1, True, 0, 100, 5)
    assert serial.tracked_count(shrink, 1.0, 1000) == 0
    sums = np.array([0.0, 4.0, 1e4, 9.0])  # 3 coefficients, the last 2 hot; then the intercept
    np.testing.assert_allclose(
        _training._largest_rates(
            _checks._settings("adagrad", 0.5, 1.0, 0.0, 1e-8, 1, "hogwild", 2, True, 0, 100, 2),
            0,
            sums,
            2,
        ),
        [0.5 / np.sqrt(4.0 + 1e-8), 0.5 / np.sqrt(1e4 + 1e-8)],
    )


def test_untracked_replicas_converge_to_serial(larger_problem):
    """SGD on small values (X / 5 at lr 2): the rarer replicated features go untracked (their
    moves add whole, skipping the per-step contraction), the frequent ones stay tracked;
    the result is within the serial runs' noise on both sides."""
    X, y = larger_problem
    X = X * 0.2
    settings = dict(rule="sgd", lr=2.0, **CONVERGENCE)
    data = _sparse.csr("X", X)
    counts = np.bincount(data.indices, minlength=data.n_features)
    shrink = _training._shrink_bound(data, "logistic", CONVERGENCE["l2"], None)
    hot = _checks._settings("sgd", 2.0, 0.8, 1e-3, 1e-8, 15, "hogwild", 2, True, 7, 1024, 4096)
    tracked = hot.tracked_count(shrink[np.argsort(counts, kind="stable")], 2.0, data.n_rows)
    assert 0 < tracked < data.n_features  # both kinds are exercised
    runs = [hogwild.fit_linear(X, y, mode="serial", seed=seed, **settings) for seed in range(3, 7)]
    threaded = hogwild.fit_linear(X, y, n_threads=2, seed=7, **settings)
    low = min(run.history[-1]["objective"] for run in runs)
    high = max(run.history[-1]["objective"] for run in runs)
    assert_like_serial(threaded, runs, low - (high - low))


def test_replicas_leave_one_thread_and_other_modes_alone():
    X, y = problem()
    settings = dict(rule="adagrad", lr=0.3, epochs=2, seed=1)
    serial = hogwild.fit_linear(X, y, mode="serial", **settings)
    for mode, n_threads in (("hogwild", 1), ("serial", 2)):
        model = hogwild.fit_linear(
            X, y, mode=mode, n_threads=n_threads, sync_every=4, hot_features=10, **settings
        )
        np.testing.assert_array_equal(model.coef, serial.coef)
        np.testing.assert_array_equal(model.sum_sq, serial.sum_sq)


def test_replica_flushes_lose_no_update():
    """Squared loss on one feature shared by every row, lr small: the intercept and the
    feature are replicated and flushed every 7 examples by two threads.  Over an epoch from
    w = 0 each gradient is about -y, so Adagrad's summed squares are sum(y**2) and SGD's
    total move of the feature is lr * sum(y) to first order: a lost flush (~7 rows of
    200 000) would show as a 3.5e-5 relative shortfall.  The steps are so small that they
    contract nothing (1 - lr per step), so every flush adds its whole move (hw_sync), the
    intercept's too: both end at lr * sum(y)."""
    n = 200_000
    X = sp.csr_matrix((np.ones(n), np.zeros(n, dtype=np.int32), np.arange(n + 1)), shape=(n, 1))
    y = np.random.default_rng(0).uniform(1.0, 2.0, n)
    lr = 1e-12
    settings = dict(loss="squared", lr=lr, epochs=1, n_threads=2, sync_every=7, hot_features=1)
    adagrad = hogwild.fit_linear(X, y, rule="adagrad", record_loss=False, **settings)
    assert adagrad.sum_sq[-1] == pytest.approx(np.sum(y * y), rel=1e-6)
    assert adagrad.sum_sq[0] == pytest.approx(np.sum(y * y), rel=1e-6)
    sgd = hogwild.fit_linear(X, y, rule="sgd", record_loss=False, **settings)
    assert sgd.coef[0] == pytest.approx(lr * y.sum(), rel=1e-6)
    assert sgd.intercept == pytest.approx(lr * y.sum(), rel=1e-6)


def test_decision_function_matches_coefficients():
    X, y = problem()
    model = hogwild.fit_linear(X, y, mode="serial")
    np.testing.assert_allclose(
        model.decision_function(X), X @ model.coef + model.intercept, rtol=1e-12, atol=1e-12
    )
    assert np.mean(np.sign(model.decision_function(X)) == y) > 0.85


def test_history_and_progress():
    X, y = problem()
    model = hogwild.fit_linear(X, y, mode="serial", epochs=3, progress=True)
    assert [h["epoch"] for h in model.history] == [1, 2, 3]
    assert all(
        h["updates"] == 120 and h["updates_per_second"] > 0 and h["cpu_seconds"] >= 0
        for h in model.history
    )
    assert model.history[-1]["loss"] < model.history[0]["progressive_loss"]
    bare = hogwild.fit_linear(X, y, mode="serial", epochs=2, record_loss=False)
    assert "loss" not in bare.history[0] and "progressive_loss" in bare.history[0]


def test_objective_adds_the_row_split_penalty():
    X, y = problem()
    model = hogwild.fit_linear(X, y, mode="serial", l2=0.5, epochs=1)
    share = np.bincount(X.indices, minlength=X.shape[1]) / X.shape[0]
    expected = model.history[0]["loss"] + 0.25 * np.dot(share, model.coef**2)
    assert model.history[0]["objective"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["dot", "vdot", "inner", "matmul", "einsum", "tensordot"])
def test_training_calls_no_blas_function(monkeypatch, name):
    """No NumPy BLAS entry point between epochs (the loss and objective included): a long
    dot product woke OpenBLAS's threads, which then spun on the core the next epoch's second
    thread needed (RCV1 profile, 2 threads: 0.99x serial with the objective's np.dot, 1.68x
    without)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"numpy.{name} called while training")

    X, y = problem(n_rows=200, n_features=60)
    monkeypatch.setattr(np, name, refuse)
    for mode, threads in (("serial", 1), ("hogwild", 2)):
        model = hogwild.fit_linear(X, y, mode=mode, n_threads=threads, l2=0.1, epochs=2)
        assert np.isfinite(model.history[-1]["objective"])
    classifier = hogwild.HogwildClassifier(epochs=2, n_threads=2, record_loss=True)
    classifier.fit(X, np.arange(200) % 3)
    classifier.predict_proba(X)


def test_non_canonical_csr_is_summed_first():
    X, y = problem(seed=2)
    coo = X.tocoo()
    split = sp.csr_matrix(
        (
            np.concatenate([coo.data / 2, coo.data / 2]),
            (np.concatenate([coo.row, coo.row]), np.concatenate([coo.col, coo.col])),
        ),
        shape=X.shape,
    )
    split.has_canonical_format = False
    a = hogwild.fit_linear(X, y, mode="serial")
    b = hogwild.fit_linear(split, y, mode="serial")
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-12, atol=1e-15)


def test_empty_and_zero_epochs():
    empty = sp.csr_matrix((0, 5))
    model = hogwild.fit_linear(empty, np.zeros(0), epochs=2)
    assert model.coef.shape == (5,) and not model.coef.any()
    X, y = problem()
    untouched = hogwild.fit_linear(X, y, epochs=0)
    assert not untouched.coef.any() and untouched.history == []


def test_csr_array_and_int64_indices_are_accepted():
    X, y = problem()
    wide = sp.csr_array(X)
    wide.indices = wide.indices.astype(np.int64)
    wide.indptr = wide.indptr.astype(np.int64)
    a = hogwild.fit_linear(X, y, mode="serial")
    b = hogwild.fit_linear(wide, y, mode="serial")
    np.testing.assert_array_equal(a.coef, b.coef)


X_OK, Y_OK = problem(n_rows=10, n_features=4, density=0.5)


@pytest.mark.parametrize(
    "X, y, kwargs, error, match",
    [
        (X_OK, Y_OK[:-1], {}, ValueError, r"y: expected 10 entries"),
        (X_OK, Y_OK, {"loss": "log_loss"}, ValueError, r"loss: expected one of"),
        (X_OK, Y_OK, {"lr": -0.1}, ValueError, r"lr: expected a finite number >= 0"),
        (X_OK, Y_OK, {"lr": float("nan")}, ValueError, r"lr: expected a number, got nan"),
        (
            X_OK.toarray(),
            Y_OK,
            {},
            TypeError,
            r"X: expected a scipy.sparse CSR matrix, got ndarray",
        ),
        (
            X_OK.tocsc(),
            Y_OK,
            {},
            TypeError,
            r"X: expected a scipy.sparse CSR matrix, got a "
            r"scipy.sparse csc matrix",
        ),
        (X_OK.astype(np.int64), Y_OK, {}, TypeError, r"X: dtype int64 is not supported"),
        (
            sp.csr_matrix(np.where(X_OK.toarray() != 0, np.nan, 0.0)),
            Y_OK,
            {},
            ValueError,
            r"X: contains NaN or infinity",
        ),
        (
            X_OK,
            np.where(np.arange(10) == 3, np.nan, Y_OK),
            {"loss": "squared"},
            ValueError,
            r"y: contains NaN",
        ),
        (X_OK, (Y_OK + 1) / 2, {}, ValueError, r"y: the logistic loss needs labels -1 and \+1"),
        (X_OK, Y_OK[:, None], {}, ValueError, r"y: expected a 1-D array"),
        (X_OK, Y_OK, {"rule": "adam"}, ValueError, r"rule: expected one of"),
        (X_OK, Y_OK, {"mode": "parallel"}, ValueError, r"mode: expected one of"),
        (X_OK, Y_OK, {"eps": 0.0}, ValueError, r"eps: expected a finite number > 0"),
        (X_OK, Y_OK, {"decay": 0.0}, ValueError, r"decay: expected a factor in \(0, 1\]"),
        (X_OK, Y_OK, {"l2": -1.0}, ValueError, r"l2: expected a finite number >= 0"),
        (X_OK, Y_OK, {"epochs": -1}, ValueError, r"epochs: expected an int >= 0"),
        (X_OK, Y_OK, {"epochs": 2.0}, TypeError, r"epochs: expected an int"),
        (X_OK, Y_OK, {"n_threads": 0}, ValueError, r"n_threads: expected an int >= 1"),
        (X_OK, Y_OK, {"seed": -1}, ValueError, r"seed: expected an int >= 0"),
        (X_OK, Y_OK, {"seed": 2**64}, ValueError, r"seed: expected an int below 2\*\*64"),
        (X_OK, Y_OK, {"dtype": np.int32}, TypeError, r"dtype: expected float32 or float64"),
        (X_OK, Y_OK, {"shuffle": "yes"}, TypeError, r"shuffle: expected a bool"),
        (X_OK, Y_OK, {"sync_every": 0}, ValueError, r"sync_every: expected an int >= 1"),
        (X_OK, Y_OK, {"hot_features": -1}, ValueError, r"hot_features: expected an int >= 0"),
        (X_OK, Y_OK, {"sample_weight": np.zeros(10)}, ValueError, r"sample_weight: every"),
    ],
)
def test_bad_input_is_named(X, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        hogwild.fit_linear(X, y, **kwargs)


def test_decision_function_checks_features():
    model = hogwild.fit_linear(X_OK, Y_OK, mode="serial")
    with pytest.raises(ValueError, match="X: expected 4 features, got 3"):
        model.decision_function(X_OK[:, :3])


def test_packing_frequent_features_changes_no_result():
    """Threaded modes renumber features by frequency (cache lines); the arithmetic is the
    same, only at other addresses: one epoch packed equals one epoch unpacked, bitwise."""
    X, y = problem(n_rows=300, n_features=60, seed=7)
    data = _sparse.csr("X", X)
    packed, order_by_count = _training._pack_frequent_features(
        data, np.bincount(data.indices, minlength=data.n_features)
    )
    assert not np.array_equal(packed.indices, data.indices)
    settings = _checks._settings("adagrad", 0.3, 1.0, 0.01, 1e-8, 1, "serial", 1, True, 3)
    options = settings.linear_kwargs(0, 0, True, 60)
    plain = [np.zeros(61), np.zeros(61)]
    renumbered = [np.zeros(61), np.zeros(61)]
    _native._c_linear_epoch(data, y, plain[0], plain[1], options)
    _native._c_linear_epoch(packed, y, renumbered[0], renumbered[1], options)
    for a, b in zip(plain, renumbered):
        np.testing.assert_array_equal(_training._unpack_features(b, order_by_count), a)


@pytest.mark.parametrize("rule", ["sgd", "adagrad"])
def test_sample_weight_serial_equals_reference(rule):
    """A row's weight scales its loss and gradient (not the L2 term), as in the reference."""
    X, y = problem()
    weights = np.random.default_rng(5).uniform(0.0, 3.0, y.shape[0])
    settings = dict(rule=rule, lr=0.3, l2=0.01, epochs=2, seed=2, sample_weight=weights)
    fast = hogwild.fit_linear(X, y, mode="serial", **settings)
    slow = hogwild.reference_fit_linear(X, y, **settings)
    assert relative_error(fast.coef, slow.coef) <= 1e-12
    for a, b in zip(fast.history, slow.history):
        assert a["progressive_loss"] == pytest.approx(b["progressive_loss"], rel=1e-12)
    plain = hogwild.fit_linear(X, y, mode="serial", **dict(settings, sample_weight=None))
    assert relative_error(fast.coef, plain.coef) > 1e-3
    ones = hogwild.fit_linear(X, y, mode="serial", **dict(settings, sample_weight=np.ones(120)))
    np.testing.assert_array_equal(ones.coef, plain.coef)


def test_zero_weight_rows_are_skipped():
    X, y = problem()
    keep = np.arange(y.shape[0]) % 3 != 0
    settings = dict(rule="sgd", lr=0.3, epochs=1, mode="serial", shuffle=False)
    weighted = hogwild.fit_linear(X, y, sample_weight=keep.astype(float), **settings)
    subset = hogwild.fit_linear(X[keep], y[keep], **settings)
    np.testing.assert_allclose(weighted.coef, subset.coef, rtol=1e-12, atol=1e-15)


def test_auto_hot_features_and_the_sync_cap():
    """hot_features="auto" replicates the features a replica steps at least twice per flush
    interval on average (count >= 2 * n_rows / sync_every); sync_every is capped at a quarter
    of a thread's share of the epoch; without replicas nothing is hot."""
    settings = _checks._settings(
        "sgd",
        0.1,
        1.0,
        0.0,
        1e-8,
        1,
        "hogwild",
        2,
        True,
        0,
        sync_every=1024,
        hot_features="auto",
    )
    counts = np.array([0, 195, 196, 5000, 100_000])
    assert settings.sync_interval(100_000) == 1024
    assert settings.hot_count(counts, 100_000) == 3  # threshold 195.3
    assert settings.sync_interval(1000) == 125  # 1000 // (4 * 2)
    assert settings.hot_count(counts, 1000) == 4  # threshold 16
    fixed = _checks._settings(
        "sgd", 0.1, 1.0, 0.0, 1e-8, 1, "hogwild", 2, True, 0, sync_every=8, hot_features=9
    )
    assert fixed.hot_count(counts, 100) == 5  # at most every feature
    serial = _checks._settings(
        "sgd", 0.1, 1.0, 0.0, 1e-8, 1, "serial", 2, True, 0, sync_every=8, hot_features="auto"
    )
    assert serial.hot_count(counts, 100) == 0
    with pytest.raises(TypeError, match="hot_features"):
        _checks._settings("sgd", 0.1, 1.0, 0.0, 1e-8, 1, "hogwild", 2, True, 0, 8, "many")


@pytest.mark.parametrize(
    "mode, n_threads, replicas",
    [("serial", 1, {}), ("hogwild", 2, {}), ("hogwild", 2, {"sync_every": 16, "hot_features": 5})],
)
def test_epoch_clocks(mode, n_threads, replicas):
    """Each epoch's history has the C driver's clocks: every row trained by exactly one
    thread, CPU times that are times (flushes a part of their thread's time, zero-cost
    without replicas), and one thread in serial mode."""
    X, y = problem(n_rows=400, n_features=30)
    model = hogwild.fit_linear(
        X, y, rule="adagrad", epochs=2, mode=mode, n_threads=n_threads, **replicas
    )
    for entry in model.history:
        updates = entry["thread_updates"]
        assert sum(updates) == 400 and all(count >= 0 for count in updates)
        assert len(updates) <= n_threads and (mode != "serial" or updates == [400])
        assert entry["setup_cpu_seconds"] >= 0.0
        for cpu, flush, wait in zip(
            entry["thread_cpu_seconds"], entry["flush_cpu_seconds"], entry["end_wait_seconds"]
        ):
            assert 0.0 <= flush <= cpu + 1e-6 and wait >= 0.0
        assert sum(entry["thread_cpu_seconds"]) <= entry["cpu_seconds"] + 0.01


@pytest.mark.parametrize(
    "hot_begin, tracked_begin, replica_entries",
    [(-1, 5, None), (6, 5, None), (5, 11, None), (5, 5, 3)],
)
def test_epoch_replica_bounds_checked(hot_begin, tracked_begin, replica_entries):
    """The C loop indexes the replicas by hot_begin and tracked_begin and trusts the scratch's
    size: out of order or out of range, or too little scratch, is refused before it runs."""
    X, y = problem(n_rows=50, n_features=10)
    data = _sparse.csr("X", X)
    weights = np.zeros(11)
    size = _hogwild.replica_size(11 - max(hot_begin, 0), 8, 2)
    replicas = np.zeros(replica_entries if replica_entries is not None else size)
    kwargs = dict(
        loss=0, rule=0, mode=2, n_threads=2, fit_intercept=True, shuffle=True, lr=0.1,
        l2=0.0, eps=1e-8, seed=0, epoch=0, sync_every=4, hot_begin=hot_begin,
        tracked_begin=tracked_begin,
    )  # fmt: skip
    with pytest.raises(ValueError, match="hot_begin|replicas"):
        _hogwild.linear_epoch(
            data.indptr, data.indices, data.data, y, None, weights, None,
            np.empty(50, dtype=np.int64), replicas, **kwargs,
        )  # fmt: skip
    assert not weights.any()


def test_epoch_clocks_too_short():
    """A clocks array too short for the team is refused before the epoch runs."""
    X, y = problem(n_rows=50, n_features=10)
    data = _sparse.csr("X", X)
    weights = np.zeros(11)
    kwargs = dict(
        loss=0, rule=0, mode=2, n_threads=2, fit_intercept=True, shuffle=True, lr=0.1,
        l2=0.0, eps=1e-8, seed=0, epoch=0, sync_every=0, hot_begin=11, tracked_begin=11,
    )  # fmt: skip
    with pytest.raises(ValueError, match="clocks"):
        _hogwild.linear_epoch(
            data.indptr, data.indices, data.data, y, None, weights, None,
            np.empty(50, dtype=np.int64), None, clocks=np.zeros(9), **kwargs,
        )  # fmt: skip
    assert not weights.any()
