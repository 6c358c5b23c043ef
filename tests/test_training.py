"""gdfast.fit: batching, ordering, every strategy through fit, errors, NaN handling."""

import io
import math
import sys
import warnings

import numpy as np
import pytest

import gdfast
from gdfast.train import models
from gdfast.optim import OPTIMIZERS
from gdfast.train.schedules import ReduceOnPlateau
from gdfast.train.strategies import Curriculum, EarlyStopping, GradientNoise, Shuffle
from gdfast.train import History, fit, make_optimizer


class Recorder:
    """An objective that records the example ids of every batch (X holds the ids)."""

    def __init__(self, grad=0.0):
        self.batches = []
        self.grad = grad

    def __call__(self, params, X, y):
        self.batches.append(np.asarray(X).reshape(-1).astype(int).tolist())
        return 1.0, [np.full_like(p, self.grad) for p in params]


def ids(n):
    return np.arange(n, dtype=float).reshape(n, 1)


# ------------------------------------------------------------------- batching
@pytest.mark.parametrize(
    "batch_size, sizes",
    [
        (None, [10]),  # batch gradient descent: one update per epoch
        (1, [1] * 10),  # stochastic gradient descent
        (3, [3, 3, 3, 1]),  # mini-batch, the last partial batch kept
        (10, [10]),
        (25, [10]),
    ],
)
def test_updates_per_epoch(batch_size, sizes):
    objective = Recorder()
    w = np.zeros(2)
    history = fit(
        objective, [w], ids(10), None, "sgd", batch_size=batch_size, epochs=3, progress=False
    )
    assert [len(batch) for batch in objective.batches] == sizes * 3
    assert history.steps == [len(sizes), 2 * len(sizes), 3 * len(sizes)]
    assert history.optimizer.steps == (3 * len(sizes),)
    assert history.examples == [10, 10, 10]
    # every example exactly once per epoch
    per_epoch = len(sizes)
    for epoch in range(3):
        seen = sum(objective.batches[epoch * per_epoch : (epoch + 1) * per_epoch], [])
        assert sorted(seen) == list(range(10))


def test_shuffled_epochs_are_the_shuffle_strategys_permutations():
    objective = Recorder()
    fit(
        objective,
        [np.zeros(1)],
        ids(12),
        None,
        "sgd",
        batch_size=5,
        epochs=3,
        seed=4,
        progress=False,
    )
    epochs = [sum(objective.batches[3 * e : 3 * e + 3], []) for e in range(3)]
    shuffle = Shuffle(12, seed=4)
    assert epochs == [shuffle.order(e).tolist() for e in range(3)]
    assert epochs[0] != epochs[1]
    again = Recorder()
    fit(again, [np.zeros(1)], ids(12), None, "sgd", batch_size=5, epochs=3, seed=4, progress=False)
    assert again.batches == objective.batches


def test_no_shuffle_keeps_the_stored_order_and_y_follows_x():
    pairs = []

    def objective(params, X, y):
        pairs.extend(zip(X[:, 0].tolist(), y.tolist()))
        return 0.0, [np.zeros(1)]

    X = ids(7)
    fit(
        objective,
        [np.zeros(1)],
        X,
        X[:, 0] * 10,
        "sgd",
        batch_size=3,
        epochs=1,
        shuffle=False,
        progress=False,
    )
    assert pairs == [(i, 10.0 * i) for i in range(7)]
    pairs.clear()
    fit(objective, [np.zeros(1)], X, X[:, 0] * 10, "sgd", batch_size=3, epochs=2, progress=False)
    assert all(y == 10 * x for x, y in pairs) and len(pairs) == 14


def test_batches_gathered_one_by_one_for_large_data(monkeypatch):
    from gdfast.train import batches

    monkeypatch.setattr(batches, "EPOCH_GATHER_LIMIT", 0)
    objective = Recorder()
    fit(
        objective,
        [np.zeros(1)],
        ids(9),
        None,
        "sgd",
        batch_size=4,
        epochs=2,
        seed=1,
        progress=False,
    )
    shuffle = Shuffle(9, seed=1)
    assert sum(objective.batches[:3], []) == shuffle.order(0).tolist()
    assert sum(objective.batches[3:], []) == shuffle.order(1).tolist()


def test_sparse_csr_and_dense_train_identically():
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    X = np.where(rng.random((60, 8)) < 0.3, rng.standard_normal((60, 8)), 0.0)
    y = (X.sum(axis=1) > 0).astype(int)
    results = []
    for data in (X, sparse.csr_matrix(X), sparse.coo_matrix(X)):
        model = models.LogisticRegression(8, l2=0.01)
        fit(model, model.params, data, y, "adam", lr=0.05, batch_size=7, epochs=5, progress=False)
        results.append(np.concatenate(model.params))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(results[2], results[0], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- optimizers
@pytest.mark.parametrize("rule", OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_c_and_reference_optimizers_give_the_same_training(rule):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 5))
    y = X @ rng.standard_normal(5)
    finals = []
    for name in (rule.__name__.lower(), f"reference.{rule.__name__.lower()}"):
        model = models.LinearRegression(5)
        history = fit(
            model, model.params, X, y, name, batch_size=8, epochs=4, seed=3, progress=False
        )
        assert history.optimizer.rule == rule.rule
        finals.append(np.concatenate(model.params))
    assert type(make_optimizer(rule.__name__.upper(), [np.zeros(1)])) is rule
    np.testing.assert_allclose(finals[0], finals[1], rtol=1e-10, atol=1e-12)


def test_optimizer_as_object_class_or_name_and_training_continues():
    X, y = ids(6), np.arange(6.0)
    model = models.LinearRegression(1)
    opt = gdfast.Momentum(model.params, lr=0.01)
    history = fit(model, model.params, X, y, opt, batch_size=2, epochs=2, progress=False)
    assert history.optimizer is opt and opt.steps == (6, 6)
    fit(model, model.params, X, y, opt, batch_size=2, epochs=1, progress=False)
    assert opt.steps == (9, 9)
    history = fit(
        model, model.params, X, y, gdfast.reference.Adam, lr=0.1, epochs=1, progress=False
    )
    assert isinstance(history.optimizer, gdfast.reference.Adam)
    assert history.optimizer.lr == 0.1


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"optimizer": "adamw"}, ValueError, "optimizer: unknown rule 'adamw'"),
        ({"optimizer": 3}, TypeError, "optimizer"),
        ({"optimizer": "adam", "momentum": 0.9}, TypeError, "momentum: not a hyper-parameter"),
        ({"optimizer": "sgd", "lr": -1.0}, ValueError, "lr"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"epochs": -1}, ValueError, "epochs"),
        ({"shuffle": "yes"}, TypeError, "shuffle"),
        ({"seed": -3}, ValueError, "seed"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"eval_every": 5}, ValueError, "eval_every"),
        ({"validation": np.zeros(3)}, TypeError, "validation"),
        ({"validation": (np.zeros((3, 1)), np.zeros(2))}, ValueError, "validation\\[0\\]"),
        ({"callbacks": [1]}, TypeError, "callbacks\\[0\\]"),
        ({"curriculum": np.arange(5.0)}, ValueError, "curriculum: it scores 5"),
        ({"curriculum": "hard"}, TypeError, "curriculum"),
        ({"curriculum": np.arange(6.0), "shuffle": True}, ValueError, "shuffle: a curriculum"),
        ({"schedule": "cosine"}, ValueError, "schedule"),
        ({"early_stopping": 0}, ValueError, "early_stopping"),
        ({"grad_noise": -1.0}, ValueError, "grad_noise"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    w = np.zeros(1)
    options = {"progress": False, **kwargs}
    with pytest.raises(error, match=message):
        fit(Recorder(), [w], ids(6), np.zeros(6), **options)
    assert w[0] == 0.0


def test_bad_data_and_objective():
    w = np.zeros(1)
    with pytest.raises(ValueError, match="X and y: X has 6 rows but y has 5"):
        fit(Recorder(), [w], ids(6), np.zeros(5), progress=False)
    with pytest.raises(ValueError, match="X: no examples"):
        fit(Recorder(), [w], np.zeros((0, 1)), None, progress=False)
    with pytest.raises(TypeError, match="objective: expected a callable"):
        fit("loss", [w], ids(6), None, progress=False)
    with pytest.raises(TypeError, match="objective: expected it to return \\(loss, grads\\)"):
        fit(lambda p, X, y: 1.0, [w], ids(6), None, progress=False)
    with pytest.raises(ValueError, match="grads"):  # the optimizer names the bad gradient
        fit(lambda p, X, y: (1.0, [np.zeros(2)]), [w], ids(6), None, progress=False)
    other = gdfast.SGD([np.zeros(1)])
    with pytest.raises(ValueError, match="optimizer: it was built on other arrays"):
        fit(Recorder(), [w], ids(6), None, other, progress=False)
    with pytest.raises(TypeError, match="lr: hyper-parameters are for an optimizer given by"):
        fit(Recorder(), [w], ids(6), None, gdfast.SGD([w]), lr=0.1, progress=False)


# --------------------------------------------------------------- non-finite loss
def test_nan_loss_stops_with_the_last_finite_parameters():
    calls = []

    def objective(params, X, y):
        calls.append(params[0].copy())
        loss = float("nan") if len(calls) == 5 else 1.0
        return loss, [np.ones(2)]

    w = np.zeros(2)
    with pytest.warns(
        RuntimeWarning, match="non-finite loss \\(nan\\) at epoch 2, before update 5"
    ):
        history = fit(
            objective, [w], ids(8), None, "sgd", lr=0.5, batch_size=2, epochs=10, progress=False
        )
    assert history.stop_reason == "non_finite_loss"
    assert "last finite loss" in history.stop_message
    # four updates made, the fifth (with the NaN loss) not taken
    assert history.optimizer.steps == (4,) and w.tolist() == [-2.0, -2.0]
    assert np.array_equal(w, calls[-1])
    assert history.epochs == 1 and history.steps == [4]


def test_non_finite_parameters_are_rolled_back_to_the_epochs_start():
    def objective(params, X, y):
        w = params[0]
        if not np.all(np.isfinite(w)):
            return float("inf"), [np.zeros(1)]
        return 1.0, [np.array([np.nan]) if X[0, 0] == 3 else np.ones(1)]

    w = np.zeros(1)
    with pytest.warns(RuntimeWarning, match="epoch's start are restored"):
        history = fit(
            objective,
            [w],
            ids(6),
            None,
            "sgd",
            lr=1.0,
            batch_size=1,
            epochs=3,
            shuffle=False,
            progress=False,
        )
    assert history.stop_reason == "non_finite_loss"
    assert w.tolist() == [0.0]  # the start of epoch 1: nothing finished before the NaN


# ---------------------------------------------------------------- early stopping
class Scripted:
    """Objective whose validation loss follows a script; the parameter counts epochs."""

    def __init__(self, script):
        self.script = list(script)
        self.evaluations = 0

    def __call__(self, params, X, y):
        return 1.0, [np.full_like(params[0], -1.0 / 3)]  # SGD lr=1: +1/3 per step, 3 steps

    def evaluate(self, params, X, y):
        value = self.script[self.evaluations]
        self.evaluations += 1
        return value


def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best():
    objective = Scripted([5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 1.0, 0.5])
    w = np.zeros(1)
    history = fit(
        objective,
        [w],
        ids(9),
        np.zeros(9),
        "sgd",
        lr=1.0,
        batch_size=3,
        epochs=8,
        validation=(ids(2), np.zeros(2)),
        early_stopping=EarlyStopping(patience=3),
        progress=False,
    )
    assert history.stop_reason == "early_stopping"
    assert history.epochs == 6 and history.val_loss == [5.0, 4.0, 3.0, 3.5, 3.2, 3.1]
    assert history.best_evaluation == 2 and history.restored_best
    assert w[0] == pytest.approx(3.0)  # the parameters after epoch 3
    assert "best 3 at update 9, parameters restored" in history.stop_message


def test_early_stopping_restores_the_best_at_the_end_and_not_without_restore():
    w = np.zeros(1)
    history = fit(
        Scripted([3.0, 1.0, 2.0]),
        [w],
        ids(3),
        np.zeros(3),
        "sgd",
        lr=1.0,
        batch_size=1,
        epochs=3,
        validation=(ids(1), np.zeros(1)),
        early_stopping=5,
        progress=False,
    )
    assert history.stop_reason == "completed" and history.restored_best
    assert w[0] == pytest.approx(2.0)
    w = np.zeros(1)
    fit(
        Scripted([3.0, 1.0, 2.0]),
        [w],
        ids(3),
        np.zeros(3),
        "sgd",
        lr=1.0,
        batch_size=1,
        epochs=3,
        validation=(ids(1), np.zeros(1)),
        early_stopping=EarlyStopping(5, restore_best=False),
        progress=False,
    )
    assert w[0] == pytest.approx(3.0)


def test_eval_every_steps_counts_evaluations():
    objective = Scripted([4.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    history = fit(
        objective,
        [np.zeros(1)],
        ids(9),
        np.zeros(9),
        "sgd",
        batch_size=1,
        epochs=5,
        validation=(ids(1), np.zeros(1)),
        eval_every=2,
        early_stopping=3,
        progress=False,
    )
    # 4, then 3 (better), then three 3s without improvement: stop at the fifth, step 10,
    # one update into the second epoch, which is recorded as it stands
    assert [step for step, _ in history.evaluations] == [2, 4, 6, 8, 10]
    assert history.stop_reason == "early_stopping" and history.steps == [9, 10]
    assert history.val_loss == [3.0, 3.0] and history.examples == [9, 1]


def test_plateau_schedule_sees_the_validation_loss():
    objective = Scripted([1.0, 1.0, 1.0, 0.5, 0.5])
    history = fit(
        objective,
        [np.zeros(1)],
        ids(3),
        np.zeros(3),
        "sgd",
        lr=0.8,
        batch_size=3,
        epochs=5,
        validation=(ids(1), np.zeros(1)),
        schedule=ReduceOnPlateau(factor=0.5, patience=2, threshold=0.0),
        progress=False,
    )
    assert history.lr == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.4])


def test_early_stopping_on_the_train_loss_without_validation():
    losses = iter([3.0, 2.0, 2.5, 2.4, 2.2, 1.0])

    def objective(params, X, y):
        return next(losses), [np.zeros(1)]

    history = fit(
        objective,
        [np.zeros(1)],
        ids(4),
        None,
        "sgd",
        batch_size=None,
        epochs=6,
        early_stopping=3,
        progress=False,
    )
    assert history.epochs == 5 and history.stop_reason == "early_stopping"
    assert all(math.isnan(v) for v in history.val_loss)
    assert [v for _, v in history.evaluations] == [3.0, 2.0, 2.5, 2.4, 2.2]


# ---------------------------------------------------- curriculum, noise, callbacks
def test_curriculum_order_through_fit():
    scores = np.array([5.0, 0.0, 3.0, 1.0, 4.0, 2.0])
    objective = Recorder()
    fit(
        objective,
        [np.zeros(1)],
        ids(6),
        None,
        "sgd",
        batch_size=4,
        epochs=2,
        curriculum=scores,
        progress=False,
    )
    assert objective.batches == [[1, 3, 5, 2], [4, 0]] * 2
    paced = Curriculum(scores, start=0.5, ramp_epochs=1, mix=0.25, seed=2)
    objective = Recorder()
    history = fit(
        objective,
        [np.zeros(1)],
        ids(6),
        None,
        "sgd",
        batch_size=2,
        epochs=2,
        curriculum=paced,
        progress=False,
    )
    assert sum(objective.batches[:2], []) == paced.order(0).tolist()
    assert history.examples == [4, 8]


def test_gradient_noise_through_fit():
    """With zero gradients and SGD lr=1, the parameters move by minus the summed noise."""
    size = 50_000
    w = np.zeros(size)
    objective = lambda params, X, y: (0.0, [np.zeros(size)])  # noqa: E731
    fit(
        objective,
        [w],
        ids(3),
        None,
        "sgd",
        lr=1.0,
        batch_size=1,
        epochs=1,
        grad_noise=0.3,
        seed=9,
        progress=False,
    )
    expected = sum(0.3 / (1 + t) ** 0.55 for t in (1, 2, 3))
    assert abs(w.var() / expected - 1) < 5 * math.sqrt(2 / size)
    noise = GradientNoise(0.3, seed=9)
    again = -sum(noise([np.zeros(size)], t)[0] for t in (1, 2, 3))
    np.testing.assert_allclose(w, again, rtol=1e-12, atol=1e-15)


def test_callbacks_can_stop_and_see_the_history():
    seen = []

    def callback(history):
        seen.append((history.epochs, history.train_loss[-1]))
        return history.epochs == 2

    history = fit(
        Recorder(),
        [np.zeros(1)],
        ids(4),
        None,
        "sgd",
        epochs=5,
        callbacks=[callback],
        progress=False,
    )
    assert seen == [(1, 1.0), (2, 1.0)] and history.stop_reason == "callback"
    assert "after epoch 2" in history.stop_message


def test_history_contents():
    history = fit(
        Recorder(), [np.zeros(1)], ids(64), None, "sgd", batch_size=8, epochs=3, progress=False
    )
    assert isinstance(history, History) and len(history) == 3
    columns = history.as_dict()
    assert columns["epoch"] == [1, 2, 3] and columns["steps"] == [8, 16, 24]
    assert all(s > 0 for s in history.seconds) and all(r > 0 for r in history.samples_per_s)
    assert history.stop_reason == "completed" and history.stop_message.startswith("completed 3")
    assert history.evaluations[0] == (8, 1.0)
    history = fit(Recorder(), [np.zeros(1)], ids(4), None, epochs=0, progress=False)
    assert len(history) == 0 and history.stop_reason == "completed"


# ---------------------------------------------------------------------- progress
def test_plain_progress_lines_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if not installed
    stream = io.StringIO()
    fit(
        Recorder(),
        [np.zeros(1)],
        ids(8),
        None,
        "sgd",
        batch_size=4,
        epochs=2,
        validation=(ids(2), None),
        progress=True,
        progress_file=stream,
    )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  loss 1  val_loss 1  lr 0.01")
    assert lines[0].endswith("samples/s")


def test_tqdm_progress_bar():
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    fit(
        Recorder(),
        [np.zeros(1)],
        ids(8),
        None,
        "sgd",
        batch_size=4,
        epochs=2,
        progress=True,
        progress_file=stream,
    )
    text = stream.getvalue()
    assert "epoch 2/2" in text and "4/4" in text and "loss=1" in text


# -------------------------------------------------------------------- real data
def test_digits_mlp_learns():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    model = models.MLP(64, 10, hidden=(64,), batch_norm=True, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = fit(
            model,
            model.params,
            X[:1400],
            y[:1400],
            "adam",
            lr=3e-3,
            batch_size=32,
            epochs=8,
            validation=(X[1400:], y[1400:]),
            schedule="exp:0.8",
            progress=False,
        )
    assert history.train_loss[-1] < history.train_loss[0] / 5
    assert model.score(X[1400:], y[1400:]) > 0.9
    assert history.lr[-1] == pytest.approx(3e-3 * 0.8**8)


def test_a_single_parameter_array_reaches_the_objective_as_an_array():
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = X @ np.array([1.0, -2.0, 0.5])

    def objective(w, X, y):
        assert isinstance(w, np.ndarray)
        residual = X @ w - y
        return 0.5 * float(residual @ residual) / len(y), X.T @ residual / len(y)

    w = np.zeros(3)
    fit(
        objective,
        w,
        X,
        y,
        "sgd",
        lr=0.3,
        batch_size=None,
        epochs=300,
        grad_noise=1e-6,
        progress=False,
    )
    np.testing.assert_allclose(w, [1.0, -2.0, 0.5], atol=1e-3)


def test_batch_structure_for_any_size():
    """For any n and batch size: ceil(n/b) updates per epoch, full batches then one remainder,
    every example once (hypothesis explores the sizes)."""
    hypothesis = pytest.importorskip("hypothesis")
    strategies = hypothesis.strategies

    @hypothesis.settings(max_examples=60, deadline=None, database=None)
    @hypothesis.given(
        n=strategies.integers(1, 40),
        batch_size=strategies.one_of(strategies.none(), strategies.integers(1, 50)),
        shuffle=strategies.booleans(),
    )
    def check(n, batch_size, shuffle):
        objective = Recorder()
        history = fit(
            objective,
            [np.zeros(1)],
            ids(n),
            None,
            "sgd",
            batch_size=batch_size,
            epochs=2,
            shuffle=shuffle,
            progress=False,
        )
        b = n if batch_size is None else min(batch_size, n)
        per_epoch = -(-n // b)
        assert history.steps == [per_epoch, 2 * per_epoch]
        sizes = [len(batch) for batch in objective.batches[:per_epoch]]
        assert sizes[:-1] == [b] * (per_epoch - 1) and sizes[-1] == n - b * (per_epoch - 1)
        assert sorted(sum(objective.batches[:per_epoch], [])) == list(range(n))

    check()


def test_blas_threads_limited_during_fit_and_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import gdfast

    seen = []

    def objective(params, X, y):
        seen.append(
            [
                info["num_threads"]
                for info in threadpoolctl.threadpool_info()
                if info["user_api"] == "blas"
            ]
        )
        return 0.0, [np.zeros_like(params[0])]

    before = [
        info["num_threads"]
        for info in threadpoolctl.threadpool_info()
        if info["user_api"] == "blas"
    ]
    params = [np.zeros(10)]
    X = np.zeros((8, 2))
    history = gdfast.fit(objective, params, X, epochs=1, batch_size=4, progress=False)
    assert history.blas_threads == 1  # small: "auto" limits to 1
    assert seen and all(threads == [1] * len(before) for threads in seen)
    after = [
        info["num_threads"]
        for info in threadpoolctl.threadpool_info()
        if info["user_api"] == "blas"
    ]
    assert after == before  # restored
    seen.clear()
    history = gdfast.fit(
        objective, params, X, epochs=1, batch_size=4, progress=False, blas_threads=None
    )
    assert history.blas_threads is None and seen[0] == before
    big = [np.zeros(2**25)]
    assert gdfast.train.blas.thread_limit("auto", big, 2) is None  # large work: left alone
    with pytest.raises(ValueError, match="blas_threads"):
        gdfast.fit(objective, params, X, epochs=1, progress=False, blas_threads="many")
    with pytest.raises(ValueError, match="blas_threads"):
        gdfast.fit(objective, params, X, epochs=1, progress=False, blas_threads=0)
