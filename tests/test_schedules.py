"""Learning-rate schedules: each one's values, ReduceOnPlateau's counting, parsing, errors."""

import math

import numpy as np
import pytest

import gdfast
from gdfast.train import schedules
from gdfast.optim import OPTIMIZERS
from gdfast.train import fit


def run(schedule, lr, metrics):
    """The rates a schedule gives: unit 0, then after each update."""
    rates = [schedule.start(lr)]
    for metric in metrics:
        rates.append(schedule.update(metric))
    return rates


@pytest.mark.parametrize(
    "schedule, formula",
    [
        (schedules.Constant(), lambda t: 0.3),
        (schedules.StepDecay(3, 0.5), lambda t: 0.3 * 0.5 ** (t // 3)),
        (schedules.ExponentialDecay(0.9), lambda t: 0.3 * 0.9**t),
        (schedules.InverseTimeDecay(0.25), lambda t: 0.3 / (1 + 0.25 * t)),
    ],
)
def test_closed_forms(schedule, formula):
    rates = run(schedule, 0.3, [None] * 10)
    assert rates == pytest.approx([formula(t) for t in range(11)], rel=1e-15)
    assert [schedule.value(t) for t in range(11)] == rates
    assert schedule.t == 10 and schedule.lr == rates[-1]
    # start() rewinds
    assert schedule.start() == pytest.approx(0.3) and schedule.t == 0


def test_step_decay_exact_boundaries():
    schedule = schedules.StepDecay(step_size=2, gamma=0.1, lr=1.0)
    assert [schedule.value(t) for t in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_plateau_reduces_after_patience_bad_updates():
    schedule = schedules.ReduceOnPlateau(factor=0.5, patience=2, threshold=0.0)
    metrics = [
        1.0,
        0.9,
        0.95,
        0.92,  # two without improvement on 0.9: reduce here
        0.91,
        0.8,
        0.85,
        0.85,
    ]  # one bad, improvement, two bad: reduce again
    rates = run(schedule, 1.0, metrics)
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert schedule.reductions == 2 and schedule.best == 0.8


def test_plateau_threshold_relative_and_absolute():
    rel = schedules.ReduceOnPlateau(factor=0.1, patience=1, threshold=0.01)
    # 0.995 improves on 1.0 by only 0.5% < 1%: a bad update, so it reduces
    assert run(rel, 1.0, [1.0, 0.995]) == [1.0, 1.0, pytest.approx(0.1)]
    rel = schedules.ReduceOnPlateau(factor=0.1, patience=1, threshold=0.01)
    assert run(rel, 1.0, [1.0, 0.98]) == [1.0, 1.0, 1.0]
    absolute = schedules.ReduceOnPlateau(
        factor=0.1, patience=1, threshold=0.05, threshold_mode="abs"
    )
    assert run(absolute, 1.0, [10.0, 9.96]) == [1.0, 1.0, pytest.approx(0.1)]
    # negative losses: improving means getting more negative
    negative = schedules.ReduceOnPlateau(factor=0.1, patience=1, threshold=0.01)
    assert run(negative, 1.0, [-1.0, -1.02]) == [1.0, 1.0, 1.0]


def test_plateau_cooldown_min_lr_and_nan():
    schedule = schedules.ReduceOnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.3)
    rates = run(schedule, 1.0, [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, float("nan")])
    # reduce at the first bad update, then two cooldown updates count nothing
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3]
    assert schedule.lr == 0.3  # floored by min_lr
    with pytest.raises(ValueError, match="metric"):
        schedule.update()


def test_parse():
    assert isinstance(schedules.parse("constant"), schedules.Constant)
    step = schedules.parse("step:10:0.5")
    assert (step.step_size, step.gamma, step.per) == (10, 0.5, "epoch")
    assert schedules.parse("step:4").gamma == 0.1
    assert schedules.parse("exp:0.9:step").per == "step"
    assert schedules.parse("inverse:0.01").decay == 0.01
    plateau = schedules.parse("plateau:0.5:3:0.001")
    assert (plateau.factor, plateau.patience, plateau.threshold) == (0.5, 3, 0.001)
    for bad in ["cosine", "step", "step:a", "exp:0.9:0.8", "plateau:0.5:3:0.1:2"]:
        with pytest.raises(ValueError, match="schedule"):
            schedules.parse(bad)
    with pytest.raises(TypeError, match="schedule"):
        schedules.parse(3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: schedules.StepDecay(0), "step_size"),
        (lambda: schedules.StepDecay(2.5), "step_size"),
        (lambda: schedules.StepDecay(2, gamma=0.0), "gamma"),
        (lambda: schedules.ExponentialDecay(1.5), "gamma"),
        (lambda: schedules.InverseTimeDecay(-1.0), "decay"),
        (lambda: schedules.Constant(lr=-0.1), "lr"),
        (lambda: schedules.Constant(per="batch"), "per"),
        (lambda: schedules.ReduceOnPlateau(factor=1.0), "factor"),
        (lambda: schedules.ReduceOnPlateau(patience=0), "patience"),
        (lambda: schedules.ReduceOnPlateau(threshold_mode="max"), "threshold_mode"),
        (lambda: schedules.Constant().start(), "lr"),
        (lambda: schedules.Constant(lr=1.0).value(-1), "t"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


@pytest.mark.parametrize("rule", OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_every_optimizer_follows_a_schedule_through_fit(rule):
    """fit sets lr between steps for every rule, C kernels and reference alike."""
    X = np.ones((4, 1))

    def objective(params, X_batch, y_batch):
        return 0.0, [np.full_like(params[0], 1e-3)]

    for cls in (rule, getattr(gdfast.reference, rule.__name__)):
        w = np.zeros(3)
        history = fit(
            objective,
            [w],
            X,
            None,
            cls,
            lr=0.2,
            batch_size=2,
            epochs=4,
            schedule=schedules.StepDecay(2, 0.5),
            progress=False,
        )
        # lr recorded at the end of epoch e is the rate for epoch e + 1
        assert history.lr == pytest.approx([0.2, 0.1, 0.1, 0.05])
        assert history.optimizer.lr == pytest.approx(0.05)


def test_per_step_schedule_in_fit():
    seen = []
    X = np.zeros((6, 1))

    def objective(params, X_batch, y_batch):
        return 0.0, [np.zeros(1)]

    def spy(history):
        seen.append(history.optimizer.lr)

    schedule = schedules.InverseTimeDecay(1.0, lr=1.0, per="step")
    history = fit(
        objective,
        [np.zeros(1)],
        X,
        None,
        "sgd",
        batch_size=2,
        epochs=2,
        schedule=schedule,
        callbacks=[spy],
        progress=False,
    )
    assert history.steps == [3, 6]
    assert seen == pytest.approx([1 / 4, 1 / 7])
    assert math.isclose(schedule.lr, 1 / 7)


def test_a_schedule_reused_by_fit_starts_from_each_optimizers_lr():
    schedule = schedules.ExponentialDecay(0.5)
    objective = lambda params, X, y: (0.0, [np.zeros(1)])  # noqa: E731
    for lr in (0.4, 0.1):
        history = fit(
            objective,
            [np.zeros(1)],
            np.zeros((2, 1)),
            None,
            "sgd",
            lr=lr,
            epochs=2,
            schedule=schedule,
            progress=False,
        )
        assert history.lr == pytest.approx([lr / 2, lr / 4])
    own = schedules.ExponentialDecay(0.5, lr=1.0)
    history = fit(
        objective,
        [np.zeros(1)],
        np.zeros((2, 1)),
        None,
        "sgd",
        lr=0.1,
        epochs=1,
        schedule=own,
        progress=False,
    )
    assert history.lr == [0.5]
