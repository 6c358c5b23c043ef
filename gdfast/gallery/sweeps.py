"""The learning-rate sweep of the guide: a rule run once per rate on a surface, and what
the runs say (the best rate, how wide the range of rates that converge is, its middle).

    points = gallery.sweep("Adam", "beale", 10000)     # one SweepPoint per rate of LR_GRID
    gallery.middle_learning_rate(points)               # the gallery's rate (GALLERY_LR)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

from .runs import run
from .settings import LR_GRID
from .surfaces import Surface

__all__ = [
    "SweepPoint",
    "sweep",
    "best_learning_rate",
    "working_range",
    "middle_learning_rate",
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
