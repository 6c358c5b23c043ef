"""Run an update rule on a 2-D surface and keep the path: pure data, no plotting.

    from gdfast import gallery
    path = gallery.run("Adam", gallery.BEALE, steps=2000, lr=0.1)
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
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .. import optim, reference
from ..catalogue import Optimizer
from .settings import BUDGET, GALLERY_LR, RULE_NAMES
from .surfaces import Surface, get as get_surface

__all__ = [
    "LIMIT",
    "BACKENDS",
    "Trajectory",
    "format_hyperparameters",
    "rule_class",
    "run",
    "gallery_hyperparameters",
    "run_all",
]

LIMIT = 1e6
BACKENDS = {"gdfast": optim, "reference": reference}


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
            text = "(" + ", ".join(_number(v) for v in value) + ")"
        else:
            text = _number(value)
        parts.append(f"{symbols.get(name, name)}={text}")
    return " ".join(parts)


def _number(value: Any) -> str:
    """A number in short form (1e-08, 0.9); anything else as it prints (Adafactor's ε1 None)."""
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


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
    """The gallery's setting of `rule` on `surface`: `{"lr": GALLERY_LR[surface][rule]}`."""
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
