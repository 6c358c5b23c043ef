"""Shuffling, curriculum, early stopping and gradient noise, each on its own."""

import math

import numpy as np
import pytest

from gdfast.train.strategies import Curriculum, EarlyStopping, GradientNoise, Shuffle


# ------------------------------------------------------------------ shuffling
def test_shuffle_permutations_differ_across_epochs_and_repeat_with_the_seed():
    shuffle = Shuffle(1000, seed=7)
    orders = [shuffle.order(epoch) for epoch in range(5)]
    for order in orders:
        assert np.array_equal(np.sort(order), np.arange(1000))
    for a in range(5):
        for b in range(a + 1, 5):
            assert not np.array_equal(orders[a], orders[b])
    again = Shuffle(1000, seed=7)
    # epoch e's order does not depend on the epochs asked for before
    assert np.array_equal(again.order(3), orders[3])
    assert np.array_equal(again.order(0), orders[0])
    assert not np.array_equal(Shuffle(1000, seed=8).order(0), orders[0])


def test_shuffle_positions_are_uniform():
    """Each example lands in the first half about half the time (a chi-square-free check)."""
    shuffle = Shuffle(10, seed=0)
    first_half = np.zeros(10)
    epochs = 4000
    for epoch in range(epochs):
        first_half[shuffle.order(epoch)[:5]] += 1
    # binomial(4000, 1/2): standard deviation ~31.6; 5 sigma
    assert np.all(np.abs(first_half - epochs / 2) < 5 * math.sqrt(epochs / 4))


# ----------------------------------------------------------------- curriculum
def test_curriculum_easy_first_with_stable_ties():
    scores = np.array([3.0, 1.0, 2.0, 1.0, 0.5])
    curriculum = Curriculum(scores)
    for epoch in range(3):
        assert curriculum.order(epoch).tolist() == [4, 1, 3, 2, 0]


def test_curriculum_pacing_grows_the_easiest_slice():
    scores = np.arange(100)[::-1].astype(float)  # example 99 is the easiest
    curriculum = Curriculum(scores, start=0.2, ramp_epochs=4)
    sizes = [curriculum.slice_size(epoch) for epoch in range(7)]
    assert sizes == [20, 40, 60, 80, 100, 100, 100]
    for epoch, size in enumerate(sizes):
        order = curriculum.order(epoch)
        assert order.tolist() == list(range(99, 99 - size, -1))
    shuffled = Curriculum(scores, start=0.2, ramp_epochs=4, shuffle_slice=True, seed=1)
    order = shuffled.order(1)
    assert sorted(order.tolist()) == list(range(60, 100))
    assert order.tolist() != sorted(order.tolist(), reverse=True)


@pytest.mark.parametrize("mix, batch_size", [(0.25, 8), (0.3, 10), (0.5, 7)])
def test_combined_strategy_mixes_every_batch(mix, batch_size):
    n = 400
    scores = np.random.default_rng(0).permutation(n).astype(float)
    curriculum = Curriculum(scores, start=0.25, ramp_epochs=3, mix=mix, seed=3)
    easiest = np.argsort(scores, kind="stable")
    for epoch in range(5):
        plan = curriculum.plan(epoch)
        size = plan.slice_size
        # the curriculum part is exactly the allowed slice, easiest first
        assert plan.indices[~plan.uniform].tolist() == easiest[:size].tolist()
        assert plan.indices.shape[0] == math.ceil(size / (1 - mix))
        assert np.all((plan.indices >= 0) & (plan.indices < n))
        # every full batch holds floor(b·mix) or ceil(b·mix) uniform draws
        counts = [
            int(plan.uniform[i : i + batch_size].sum())
            for i in range(0, plan.indices.shape[0] - batch_size + 1, batch_size)
        ]
        assert min(counts) >= math.floor(batch_size * mix)
        assert max(counts) <= math.ceil(batch_size * mix) + (1 if counts else 0)
        assert abs(plan.uniform.mean() - mix) < 2 / plan.indices.shape[0] + 1e-12
    # uniform draws reach beyond the slice (they are drawn from all n examples)
    early = curriculum.plan(0)
    outside = ~np.isin(early.indices[early.uniform], easiest[: early.slice_size])
    assert outside.mean() > 0.5
    # reproducible
    assert np.array_equal(Curriculum(scores, 0.25, 3, mix, seed=3).order(2), curriculum.order(2))


def test_combined_draws_are_uniform():
    n = 20
    curriculum = Curriculum(np.arange(n, dtype=float), start=0.1, ramp_epochs=1000, mix=0.5, seed=0)
    counts = np.zeros(n)
    for epoch in range(600):
        plan = curriculum.plan(epoch)
        np.add.at(counts, plan.indices[plan.uniform], 1)
    expected = counts.sum() / n
    assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"difficulty": [[1.0, 2.0]]}, "difficulty"),
        ({"difficulty": [1.0, np.nan]}, "difficulty"),
        ({"difficulty": ["a", "b"]}, "difficulty"),
        ({"difficulty": [1.0], "start": 0.0}, "start"),
        ({"difficulty": [1.0], "mix": 1.0}, "mix"),
        ({"difficulty": [1.0], "ramp_epochs": -1}, "ramp_epochs"),
        ({"difficulty": [1.0], "shuffle_slice": 2}, "shuffle_slice"),
        ({"difficulty": [1.0], "seed": -1}, "seed"),
    ],
)
def test_curriculum_bad_arguments(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Curriculum(**kwargs)


# -------------------------------------------------------------- early stopping
def test_early_stopping_stops_after_patience_and_keeps_the_best():
    stopper = EarlyStopping(patience=3, min_delta=0.0)
    w = np.zeros(2)
    values = [5.0, 4.0, 3.0, 3.5, 3.2, 3.0]
    decisions = []
    for value in values:
        w += 1.0
        decisions.append(stopper.update(value, [w]))
    # best 3.0 at evaluation 2; 3.5, 3.2 and 3.0 (not < 3.0) make three without improvement
    assert decisions == [False, False, False, False, False, True]
    assert stopper.best_evaluation == 2 and stopper.best == 3.0
    # the best parameters are a copy taken at evaluation 2, not the live array
    target = np.full(2, -1.0)
    assert stopper.restore(target) and target.tolist() == [3.0, 3.0]


def test_early_stopping_min_delta():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    # 0.95 and 0.92 improve on 1.0 by less than 0.1: two bad evaluations
    assert [stopper.update(v) for v in [1.0, 0.95, 0.92]] == [False, False, True]
    assert stopper.best == 1.0
    stopper.reset()
    assert [stopper.update(v) for v in [1.0, 0.85, 0.8, 0.7]] == [False, False, False, False]
    assert stopper.best == 0.7 and stopper.wait == 0
    nan = EarlyStopping(patience=1)
    assert nan.update(float("nan")) is True


def test_early_stopping_without_restore_keeps_nothing():
    stopper = EarlyStopping(patience=1, restore_best=False)
    stopper.update(1.0, [np.ones(3)])
    assert stopper.best_params is None and stopper.restore([np.zeros(3)]) is False


def test_early_stopping_bad_arguments():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=-1.0)
    with pytest.raises(TypeError, match="restore_best"):
        EarlyStopping(restore_best="yes")


# ------------------------------------------------------------- gradient noise
@pytest.mark.parametrize("eta", [0.01, 0.3, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_variance_follows_the_schedule(eta, dtype):
    noise = GradientNoise(eta=eta, gamma=0.55, seed=5)
    size = 100_000
    grad = np.full(size, 2.0, dtype=dtype)
    for t in (1, 10, 1000):
        noisy = noise(grad, t)
        assert noisy.dtype == dtype and noisy.shape == grad.shape
        assert grad[0] == 2.0  # the input is not modified
        expected = eta / (1 + t) ** 0.55
        assert noise.variance(t) == pytest.approx(expected, rel=1e-15)
        sample = (noisy - grad).astype(np.float64)
        # sample variance: relative standard error sqrt(2/size) ~ 0.45%; allow 5 of them
        assert abs(sample.var() / expected - 1) < 5 * math.sqrt(2 / size)
        # mean: standard error sqrt(var/size)
        assert abs(sample.mean()) < 5 * math.sqrt(expected / size)


def test_noise_is_seeded_and_skips_none():
    grads = [np.zeros(5), None, np.zeros((2, 2), dtype=np.float32)]
    noise = GradientNoise(0.3, seed=1)
    a = [noise(grads, t) for t in (1, 2)]
    b = [GradientNoise(0.3, seed=1)(grads, 1), None]
    noise.reset()
    c = noise(grads, 1)
    d = GradientNoise(0.3, seed=2)(grads, 1)
    assert a[0][1] is None and a[0][2].dtype == np.float32
    for same in (b[0], c):
        assert all(np.array_equal(x, y) for x, y in zip(a[0][::2], same[::2]))
    assert not np.array_equal(a[0][0], a[1][0]) and not np.array_equal(a[0][0], d[0])


def test_noise_bad_arguments():
    with pytest.raises(ValueError, match="eta"):
        GradientNoise(eta=0.0)
    with pytest.raises(ValueError, match="gamma"):
        GradientNoise(gamma=-0.5)
    with pytest.raises(TypeError, match="grads"):
        GradientNoise()([np.zeros(3, dtype=np.int64)], 1)
