"""Run the update rules on a 2-D surface and keep the path: pure data, no plotting.

    from gdfast import surfaces, trajectories
    path = trajectories.run("Adam", surfaces.BEALE, steps=2000, lr=0.1)
    path.points            # (steps + 1, 2): the start, then the point after each step
    path.values            # J at each of them
    path.steps_to()        # steps until J stays at or below the surface's target

Each run starts one float64 parameter vector of shape (2,) at the surface's start,
feeds the optimizer the analytic gradient at the point it holds, and records the
point after every step.  For Nesterov that point is φ of SPEC.md 1.1 (the kernel's
form: the parameters held, where the gradient is taken), which converges to the
same minimizer as the lookahead θ.

A run stops early once the point is no longer finite or leaves the box
|x|, |y| ≤ LIMIT (`diverged` is then True; on the saddle that is escape, not failure).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import optim, reference
from .catalogue import Optimizer
from .surfaces import Surface, get as get_surface

LIMIT = 1e6
RULE_NAMES: tuple[str, ...] = tuple(cls.rule for cls in optim.OPTIMIZERS)
ADAPTIVE_RULES: tuple[str, ...] = tuple(cls.rule for cls in optim.OPTIMIZERS if cls.adaptive)
BACKENDS = {"gdfast": optim, "reference": reference}

# Learning rate of each rule on each surface, for the gallery.  On Beale, Rosenbrock and
# the ravine: the middle of the rule's working range in the sweep over LR_GRID within
# BUDGET (see middle_learning_rate), as measured by `scripts/make_guide.py`, which checks
# this table against its sweep.  On the saddle: one common rate, 0.01, to compare the
# rules at the same step size (Adadelta, whose lr is only a multiplier, at its 1.0).
# Other hyper-parameters are the SPEC.md defaults.
# (The rates are part of each rule's declaration, `gallery_lr`; this is their table.)
GALLERY_LR: dict[str, dict[str, float]] = {
    surface: {cls.rule: cls.gallery_lr[surface] for cls in optim.OPTIMIZERS}
    for surface in ("beale", "rosenbrock", "saddle", "ravine")
}
TUNED_SURFACES: tuple[str, ...] = ("beale", "rosenbrock", "ravine")
# Learning rates of the sweep: half-decades from 1e-4 to 10.
LR_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
# Step budget of each surface, for the gallery and the guide.
BUDGET: dict[str, int] = {"beale": 10000, "rosenbrock": 10000, "saddle": 3000, "ravine": 3000}


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """The path of one rule on one surface.

    Attributes
    ----------
    rule : str
        The rule's name ("Adam", ...).
    surface : Surface
        Where it ran.
    hyperparameters : dict
        Every hyper-parameter of the run, defaults included.
    points : ndarray, shape (n + 1, 2)
        The start, then the point held after each of the n steps taken.
    values : ndarray, shape (n + 1,)
        The loss at each point.
    diverged : bool
        The run stopped before its budget: a point was not finite or left |x|, |y| ≤ LIMIT.
    """

    rule: str
    surface: Surface
    hyperparameters: dict[str, Any]
    points: np.ndarray
    values: np.ndarray
    diverged: bool

    @property
    def steps(self) -> int:
        """Steps taken (len(points) − 1)."""
        return len(self.points) - 1

    def steps_to(self, target: float | None = None, stay: bool = False) -> int | None:
        """Steps until the loss first reached `target` (J ≤ target); None if it never did.

        With stay=True, the steps after which the loss stayed at or below the target
        for the rest of the run instead (None if the last loss is above it).
        `target` defaults to the surface's.  On the saddle a diverged run has escaped
        (J → −∞), which counts; elsewhere a diverged run has a loss above any target.
        """
        target = self.surface.target if target is None else float(target)
        arrived = self.values <= target  # NaN compares False: never arrived
        if stay:
            if not arrived[-1]:
                return None
            above = np.flatnonzero(~arrived)
            return int(above[-1]) + 1 if len(above) else 0
        hits = np.flatnonzero(arrived)
        return int(hits[0]) if len(hits) else None

    @property
    def label(self) -> str:
        """The rule and its hyper-parameters, for a legend: "Adam lr=0.1 β=(0.9, 0.999)"."""
        return f"{self.rule} {format_hyperparameters(self.hyperparameters)}"


def format_hyperparameters(hyperparameters: Mapping[str, Any]) -> str:
    """Short text for hyper-parameters: lr=0.1 γ=0.9 β=(0.9, 0.999) ρ=0.9 ε=1e-08."""
    symbols = {"momentum": "γ", "betas": "β", "rho": "ρ", "eps": "ε"}
    parts = []
    for name, value in hyperparameters.items():
        if isinstance(value, tuple):
            text = "(" + ", ".join(f"{v:g}" for v in value) + ")"
        else:
            text = f"{value:g}"
        parts.append(f"{symbols.get(name, name)}={text}")
    return " ".join(parts)


def rule_class(rule: str | type, backend: str = "gdfast") -> Any:
    """The optimizer class of `rule` (a name such as "Adam", or a class) on `backend`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {sorted(BACKENDS)}, got {backend!r}")
    if isinstance(rule, type) and issubclass(rule, Optimizer):
        return rule
    if not isinstance(rule, str):
        raise TypeError(
            f"rule: expected a rule name or an Optimizer class, got {type(rule).__name__}"
        )
    if rule not in RULE_NAMES:
        raise ValueError(f"rule: expected one of {list(RULE_NAMES)}, got {rule!r}")
    return getattr(BACKENDS[backend], rule)


def run(
    rule: str | type,
    surface: str | Surface,
    steps: int,
    start: Sequence[float] | None = None,
    backend: str = "gdfast",
    **hyperparameters: Any,
) -> Trajectory:
    """Run `rule` for `steps` steps on `surface` from `start` (default the surface's).

    `hyperparameters` go to the optimizer's constructor; those not given take
    the rule's defaults.  `backend` is "gdfast" (C kernels) or "reference" (NumPy).
    """
    surface = get_surface(surface)
    cls = rule_class(rule, backend)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected an int >= 0, got {steps!r}")
    point = np.array(surface.start if start is None else start, dtype=np.float64)
    if point.shape != (2,) or not np.all(np.isfinite(point)):
        raise ValueError(f"start: expected two finite numbers, got {start!r}")
    optimizer = cls(point, **hyperparameters)
    points = np.empty((steps + 1, 2))
    points[0] = point
    taken = 0
    diverged = False
    gradient = surface.gradient_function
    for taken in range(1, steps + 1):
        grad = np.array(gradient(float(point[0]), float(point[1])))
        optimizer.step(grad)
        points[taken] = point
        if not (abs(point[0]) <= LIMIT and abs(point[1]) <= LIMIT):
            diverged = True
            break
    else:
        taken = steps
    points = points[: taken + 1].copy()
    return Trajectory(
        rule=cls.rule,
        surface=surface,
        hyperparameters=optimizer.hyperparameters,
        points=points,
        values=np.asarray(surface.value(points.T)),
        diverged=diverged,
    )


def gallery_hyperparameters(rule: str, surface: str | Surface) -> dict[str, Any]:
    """The gallery's setting of `rule` on `surface`: {"lr": GALLERY_LR[surface][rule]}."""
    surface = get_surface(surface)
    return {"lr": GALLERY_LR[surface.name][rule_class(rule).rule]}


def run_all(
    surface: str | Surface,
    steps: int | None = None,
    rules: Iterable[str] = RULE_NAMES,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    start: Sequence[float] | None = None,
) -> list[Trajectory]:
    """One trajectory per rule on `surface`, each with `settings[rule]` if given,
    else the gallery's learning rate, GALLERY_LR (other hyper-parameters at their defaults).
    `steps` defaults to the surface's BUDGET."""
    surface = get_surface(surface)
    steps = BUDGET.get(surface.name, 1000) if steps is None else steps
    settings = {} if settings is None else settings
    return [
        run(
            rule,
            surface,
            steps,
            start=start,
            **dict(settings.get(rule, gallery_hyperparameters(rule, surface))),
        )
        for rule in rules
    ]


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One learning rate of a `sweep`: how the run went.

    steps_to is the first step with J ≤ target (None: never within the budget);
    stayed says the loss then stayed at or below the target to the end of the run.
    """

    lr: float
    steps_to: int | None
    stayed: bool
    final_value: float
    diverged: bool

    @property
    def converged(self) -> bool:
        """Arrived at the target and stayed there."""
        return self.steps_to is not None and self.stayed


def sweep(
    rule: str,
    surface: str | Surface,
    steps: int,
    learning_rates: Iterable[float] = LR_GRID,
    target: float | None = None,
) -> list[SweepPoint]:
    """Run `rule` on `surface` once per learning rate (other hyper-parameters at their
    defaults; Adadelta's lr is its multiplier) and say how each run went."""
    results = []
    for lr in learning_rates:
        path = run(rule, surface, steps, lr=lr)
        results.append(
            SweepPoint(
                lr=float(lr),
                steps_to=path.steps_to(target),
                stayed=path.steps_to(target, stay=True) is not None,
                final_value=float(path.values[-1]),
                diverged=path.diverged,
            )
        )
    return results


def best_learning_rate(results: Sequence[SweepPoint]) -> float:
    """The learning rate of a sweep that converged in the fewest steps (ties: the
    smaller rate); if none converged, the one with the lowest final loss."""
    if not results:
        raise ValueError("results: expected at least one SweepPoint, got none")
    converged = [(point.steps_to, point.lr) for point in results if point.converged]
    if converged:
        return min(converged)[1]
    finite = [
        (point.final_value, point.lr)
        for point in results
        if math.isfinite(point.final_value) and not point.diverged
    ]
    return min(finite)[1] if finite else min(point.lr for point in results)


def _longest_converged_run(results: Sequence[SweepPoint]) -> tuple[int, int] | None:
    """(first, last) indices of the longest run of consecutive converged sweep points
    (the first such run on ties), None if none converged."""
    best: tuple[int, int] | None = None
    first = None
    for index, point in enumerate(results):
        if not point.converged:
            first = None
            continue
        first = index if first is None else first
        if best is None or index - first > best[1] - best[0]:
            best = (first, index)
    return best


def working_range(results: Sequence[SweepPoint]) -> float:
    """How forgiving a rule is of its learning rate: log10(largest / smallest) over the
    longest run of consecutive sweep rates (in the order given) that all converged.
    0 when at most one rate in a row converged."""
    run_ = _longest_converged_run(results)
    return 0.0 if run_ is None else math.log10(results[run_[1]].lr / results[run_[0]].lr)


def middle_learning_rate(results: Sequence[SweepPoint]) -> float:
    """The sweep rate in the middle of the longest run of converged rates (the lower
    middle for an even count): a setting as far as the grid allows from both "too slow"
    and "unstable".  If none converged, `best_learning_rate`'s fallback."""
    run_ = _longest_converged_run(results)
    if run_ is None:
        return best_learning_rate(results)
    return results[(run_[0] + run_[1]) // 2].lr
