"""The gallery's runs follow the theory: closed forms, momentum in the ravine, the saddle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gdfast import gallery
from gdfast.gallery import SweepPoint, Trajectory, surfaces

RAVINE_H = np.array(surfaces.RAVINE_CURVATURE)
# The rules whose step divides by a running average of g²: their step in y is about η
# however small the gradient there, which is what lets them leave a saddle.
NORMALIZED = ("RMSprop", "Adam", "AdaMax", "Nadam", "AMSGrad")


def first_step_at_or_below(values: np.ndarray, target: float) -> int:
    return int(np.flatnonzero(values <= target)[0])


# ------------------------------------------------------------------ the ravine


def test_sgd_on_the_ravine_is_the_closed_form():
    # On a separable quadratic SGD is θ_t = (1 − η h)^t θ_0, coordinate by coordinate.
    lr, steps = 0.1, 500
    path = gallery.run("SGD", "ravine", steps, lr=lr)
    t = np.arange(steps + 1)[:, None]
    expected = np.array(surfaces.RAVINE.start) * (1 - lr * RAVINE_H) ** t
    np.testing.assert_allclose(path.points, expected, rtol=1e-11, atol=0)
    assert path.steps_to() == first_step_at_or_below(
        surfaces.RAVINE.value(expected.T), surfaces.RAVINE.target
    )
    assert not path.diverged and path.steps == steps


@pytest.mark.parametrize("lr", [0.1, 0.03])
def test_momentum_crosses_the_ravine_in_far_fewer_steps_than_sgd(lr):
    # Along the ravine SGD contracts by 1 − η h_x per step (0.99 at η = 0.1); heavy-ball
    # momentum with γ = 0.9 is underdamped there and contracts by √γ ≈ 0.949: about
    # ln(0.99) / ln(0.949) ≈ 5 times fewer steps.  Nesterov likewise.
    sgd = gallery.run("SGD", "ravine", 3000, lr=lr).steps_to(stay=True)
    assert sgd is not None
    for rule in ("Momentum", "Nesterov"):
        steps = gallery.run(rule, "ravine", 3000, lr=lr, momentum=0.9).steps_to(stay=True)
        assert steps is not None and steps * 4 < sgd, (rule, lr, steps, sgd)


def test_too_large_a_step_diverges_and_stops():
    # |1 − η h_y| = 4 at η = 1: y grows fourfold per step and leaves the box within 15 steps.
    path = gallery.run("SGD", "ravine", 1000, lr=1.0)
    assert path.diverged and path.steps < 15
    assert abs(path.points[-1, 1]) > gallery.LIMIT
    assert path.steps_to() is None and path.steps_to(stay=True) is None


# ------------------------------------------------------------------ the saddle


def sgd_escape_closed_form(lr: float, start: tuple[float, float]) -> int:
    # x_t = x_0 (1 − 2η)^t, y_t = y_0 (1 + 2η)^t; escaped once x_t² − y_t² ≤ −1.
    t = np.arange(3000)
    x = start[0] * (1 - 2 * lr) ** t
    y = start[1] * (1 + 2 * lr) ** t
    return first_step_at_or_below(x * x - y * y, surfaces.SADDLE.target)


def test_adaptive_rules_leave_the_saddle_in_far_fewer_steps_than_sgd():
    lr = 0.01
    sgd = gallery.run("SGD", "saddle", 3000, lr=lr).steps_to()
    assert sgd == sgd_escape_closed_form(lr, surfaces.SADDLE.start)
    for rule in NORMALIZED:
        steps = gallery.run(rule, "saddle", 3000, lr=lr).steps_to()
        assert steps is not None and steps * 4 < sgd, (rule, steps, sgd)
    # Adadelta has no learning rate (lr is a multiplier): at its default.
    adadelta = gallery.run("Adadelta", "saddle", 3000).steps_to()
    assert adadelta is not None and adadelta * 4 < sgd
    # The exception, as theory says: Adagrad divides by the *sum* of all g² so far, its
    # steps shrink like 1/√t, and at the same η it is slower than SGD here.
    adagrad = gallery.run("Adagrad", "saddle", 3000, lr=lr).steps_to()
    assert adagrad is not None and adagrad > sgd


def test_escape_time_ignores_the_hair_for_normalized_rules_not_for_sgd():
    # SGD's y grows geometrically from the hair: 10⁴ times closer to the line costs
    # ln(10⁴) / ln(1 + 2η) ≈ 465 more steps at η = 0.01.  A normalized step does not
    # care how small the gradient is: same count to within a few steps.
    lr = 0.01
    near, far = (1.0, 1e-7), (1.0, 1e-3)
    sgd_extra = (
        gallery.run("SGD", "saddle", 3000, start=near, lr=lr).steps_to()
        - gallery.run("SGD", "saddle", 3000, start=far, lr=lr).steps_to()
    )
    assert abs(sgd_extra - math.log(1e4) / math.log(1 + 2 * lr)) <= 2
    for rule in NORMALIZED:
        near_steps = gallery.run(rule, "saddle", 3000, start=near, lr=lr).steps_to()
        far_steps = gallery.run(rule, "saddle", 3000, start=far, lr=lr).steps_to()
        assert abs(near_steps - far_steps) <= 3, (rule, near_steps, far_steps)


# ------------------------------------------------------------------ mechanics


@pytest.mark.parametrize("rule", ["Nesterov", "Adam", "Adadelta", "AdaMax"])
def test_reference_backend_traces_the_same_path(rule):
    fast = gallery.run(rule, "beale", 300, lr=0.01)
    slow = gallery.run(rule, "beale", 300, backend="reference", lr=0.01)
    scale = np.max(np.abs(slow.points))
    assert np.max(np.abs(fast.points - slow.points)) / scale < 1e-10
    assert fast.hyperparameters == slow.hyperparameters


def test_a_surface_of_ones_own():
    bowl = surfaces.Surface(
        name="bowl",
        formula="x² + y²",
        start=(1.0, -2.0),
        xlim=(-2, 2),
        ylim=(-2, 2),
        minimum=(0.0, 0.0),
        min_value=0.0,
        target=1e-6,
        log_contours=False,
        loss_function=lambda x, y: x * x + y * y,
        gradient_function=lambda x, y: (2 * x, 2 * y),
    )
    # SGD at η = 1/4 halves the point every step: exactly, in binary floating point.
    path = gallery.run("SGD", bowl, 12, lr=0.25)
    np.testing.assert_array_equal(path.points, [(1.0 / 2**t, -2.0 / 2**t) for t in range(13)])
    assert path.steps_to() == 12  # 5 / 4**t <= 1e-6 from t = 12 (5/4**11 = 1.2e-6)


def test_trajectory_records_every_step_and_its_loss():
    path = gallery.run("Adam", "rosenbrock", 50, start=(0.5, 0.5), lr=0.05)
    assert path.points.shape == (51, 2) and path.values.shape == (51,)
    np.testing.assert_array_equal(path.points[0], [0.5, 0.5])
    assert path.values[7] == surfaces.ROSENBROCK.value(path.points[7])
    assert path.rule == "Adam" and path.surface is surfaces.ROSENBROCK
    assert path.hyperparameters == {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8}
    assert path.label == "Adam lr=0.05 β=(0.9, 0.999) ε=1e-08"


def test_steps_to_first_arrival_and_staying():
    values = np.array([5.0, 0.5, 2.0, 0.1, 0.05])
    path = Trajectory("SGD", surfaces.RAVINE, {"lr": 0.1}, np.zeros((5, 2)), values, False)
    assert path.steps_to(1.0) == 1
    assert path.steps_to(1.0, stay=True) == 3
    assert path.steps_to(0.01) is None and path.steps_to(0.01, stay=True) is None
    assert path.steps_to(10.0, stay=True) == 0
    rising = Trajectory(
        "SGD", surfaces.RAVINE, {}, np.zeros((3, 2)), np.array([5.0, 0.5, np.nan]), True
    )
    assert rising.steps_to(1.0) == 1 and rising.steps_to(1.0, stay=True) is None


def sweep_of(pattern: str) -> list[SweepPoint]:
    """'.' did not converge, a digit d converged in d steps; rates 1e-4, 1e-3, ..."""
    return [
        SweepPoint(
            lr=10.0 ** (i - 4),
            steps_to=None if c == "." else int(c),
            stayed=c != ".",
            final_value=float(i),
            diverged=False,
        )
        for i, c in enumerate(pattern)
    ]


def test_sweep_summaries():
    results = sweep_of(".95.8742.")
    assert gallery.best_learning_rate(results) == 1e3  # the 2
    assert gallery.working_range(results) == pytest.approx(3.0)  # 1e-0 .. 1e3
    assert gallery.middle_learning_rate(results) == 1e1  # lower middle of 4
    assert gallery.working_range(sweep_of("..3..")) == 0.0
    assert gallery.middle_learning_rate(sweep_of("..3..")) == 1e-2
    # Nothing converged: the lowest final loss (here the first rate).
    assert gallery.best_learning_rate(sweep_of("....")) == 1e-4
    assert gallery.middle_learning_rate(sweep_of("....")) == 1e-4
    with pytest.raises(ValueError, match="results"):
        gallery.best_learning_rate([])


def test_sweep_runs_each_rate():
    results = gallery.sweep("SGD", "ravine", 600, learning_rates=(0.01, 0.1, 1.0))
    assert [p.lr for p in results] == [0.01, 0.1, 1.0]
    too_slow, good, unstable = results
    assert not too_slow.converged and not too_slow.diverged
    assert good.converged and good.steps_to == 414
    assert unstable.diverged and not unstable.converged


def test_gallery_settings_cover_every_rule_and_surface():
    assert set(gallery.GALLERY_LR) == set(surfaces.SURFACES) == set(gallery.BUDGET)
    for table in gallery.GALLERY_LR.values():
        assert set(table) == set(gallery.RULE_NAMES)
        assert all(lr in gallery.LR_GRID for lr in table.values())
    paths = gallery.run_all("saddle", 20, rules=("SGD", "Adadelta"))
    assert [p.hyperparameters["lr"] for p in paths] == [0.01, 1.0]
    assert all(p.steps == 20 for p in paths)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="rule: expected one of"):
        gallery.run("Adamw", "beale", 10)
    with pytest.raises(TypeError, match="rule"):
        gallery.run(3, "beale", 10)
    with pytest.raises(ValueError, match="backend"):
        gallery.run("SGD", "beale", 10, backend="torch")
    with pytest.raises(ValueError, match="steps"):
        gallery.run("SGD", "beale", -1)
    with pytest.raises(ValueError, match="start"):
        gallery.run("SGD", "beale", 10, start=(1.0, float("nan")))
    with pytest.raises(ValueError, match="lr"):
        gallery.run("SGD", "beale", 10, lr=-1.0)
    with pytest.raises(ValueError, match="surface"):
        gallery.run("SGD", "himmelblau", 10)
