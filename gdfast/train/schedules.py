"""Learning-rate schedules (annealing), SPEC.md section 2.

A schedule decides the learning rate η of an optimizer as training goes on.
Each one starts from a base rate η0 and is advanced one *unit* at a time
(an epoch by default, or an optimizer step with ``per="step"``):

    schedule.start(0.1)           # η0; returns the rate for unit 0
    for epoch in range(epochs):
        opt.lr = schedule.lr      # every gdfast optimizer's lr is settable between steps
        ...train one epoch...
        schedule.update(val_loss) # returns the rate for the next unit

Closed forms, t = units completed (0 at the start):

    Constant           η_t = η0
    StepDecay          η_t = η0 · γ^⌊t / step_size⌋
    ExponentialDecay   η_t = η0 · γ^t
    InverseTimeDecay   η_t = η0 / (1 + k t)

and ReduceOnPlateau, which divides η by ``1/factor`` when the monitored value
(the validation loss, say) has not improved by more than ``threshold`` for
``patience`` updates in a row (PyTorch's ReduceLROnPlateau, relative mode).

`gdfast.fit` takes any of these as ``schedule=``, or a text such as
``"step:10:0.5"`` (see `parse`); it starts the schedule from the optimizer's
``lr`` unless the schedule was given its own ``lr``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .. import _validation as check

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "ReduceOnPlateau",
    "parse",
]

_UNITS = ("epoch", "step")


def _factor(name: str, value: Any) -> float:
    """A decay factor in (0, 1]."""
    value = check.real_number(name, value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name}: expected a number in (0, 1], got {value!r}")
    return value


class Schedule:
    """Base class: a learning rate that changes one unit (epoch or step) at a time.

    Parameters
    ----------
    lr : float, optional
        η0, the base learning rate (>= 0).  None: `start` must give it
        (`gdfast.fit` gives the optimizer's current ``lr``).
    per : {"epoch", "step"}
        The unit `update` counts: `gdfast.fit` calls it after every epoch or
        after every optimizer step.

    Attributes
    ----------
    lr : float
        The learning rate for the current unit.
    t : int
        Units completed since `start`.
    own_lr : bool
        Whether η0 was given to the constructor (`fit` then sets the
        optimizer's lr to it; otherwise `fit` starts from the optimizer's lr).
    """

    def __init__(self, lr: float | None = None, per: str = "epoch"):
        if per not in _UNITS:
            raise ValueError(f"per: expected 'epoch' or 'step', got {per!r}")
        self.per = per
        self.base_lr = None if lr is None else check.learning_rate("lr", lr)
        self.own_lr = lr is not None  # else each start() takes the caller's rate
        self.t = 0
        self._lr = self.base_lr

    def start(self, lr: float | None = None) -> float:
        """Reset to unit 0 with base rate `lr` (default: the one given at construction).

        Returns the learning rate for unit 0.
        """
        if lr is not None:
            self.base_lr = check.learning_rate("lr", lr)
        self._eta0()
        self.t = 0
        self._reset()
        self._lr = self._first()
        return self._lr

    @property
    def lr(self) -> float:
        """The learning rate for the current unit."""
        if self._lr is None:
            raise RuntimeError(f"{type(self).__name__}: call start() first")
        return self._lr

    def update(self, metric: float | None = None) -> float:
        """Advance one unit; `metric` is the monitored value (used by ReduceOnPlateau).

        Returns the learning rate for the next unit.
        """
        if self._lr is None:
            self.start()
        self.t += 1
        self._lr = self._next(metric)
        return self._lr

    def value(self, t: int) -> float:
        """η_t, the rate after t units (closed-form schedules only)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed form")

    # subclasses -----------------------------------------------------------
    def _first(self) -> float:
        """The rate of unit 0."""
        return self.value(0)

    def _reset(self) -> None:
        """Clear any state kept between updates."""

    def _next(self, metric: float | None) -> float:
        return self.value(self.t)

    def _eta0(self) -> float:
        """η0, the base rate; a ValueError when neither the constructor nor start() gave it."""
        if self.base_lr is None:
            raise ValueError(
                f"lr: {type(self).__name__} has no base learning rate; "
                "give one to the constructor or to start()"
            )
        return self.base_lr

    def _check_t(self, t: Any) -> int:
        self._eta0()
        return check.integer("t", t, 0)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({settings})"

    def _settings(self) -> dict[str, Any]:
        return {"lr": self.base_lr, "per": self.per}


class Constant(Schedule):
    """η_t = η0: the learning rate never changes."""

    def value(self, t: int) -> float:
        """η0."""
        self._check_t(t)
        return self._eta0()


class StepDecay(Schedule):
    """η_t = η0 · γ^⌊t / step_size⌋: multiply by γ every `step_size` units.

    Parameters
    ----------
    step_size : int
        Units between two decays (>= 1).
    gamma : float, default 0.1
        γ, the factor, in (0, 1].
    lr, per : see `Schedule`.
    """

    def __init__(
        self, step_size: int, gamma: float = 0.1, lr: float | None = None, per: str = "epoch"
    ):
        super().__init__(lr, per)
        self.step_size = check.integer("step_size", step_size, 1)
        self.gamma = _factor("gamma", gamma)

    def value(self, t: int) -> float:
        """η0 · γ^⌊t / step_size⌋."""
        t = self._check_t(t)
        return self._eta0() * self.gamma ** (t // self.step_size)

    def _settings(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma, **super()._settings()}


class ExponentialDecay(Schedule):
    """η_t = η0 · γ^t.

    Parameters
    ----------
    gamma : float
        γ, the factor per unit, in (0, 1].
    lr, per : see `Schedule`.
    """

    def __init__(self, gamma: float, lr: float | None = None, per: str = "epoch"):
        super().__init__(lr, per)
        self.gamma = _factor("gamma", gamma)

    def value(self, t: int) -> float:
        """η0 · γ^t."""
        t = self._check_t(t)
        return self._eta0() * self.gamma**t

    def _settings(self) -> dict[str, Any]:
        return {"gamma": self.gamma, **super()._settings()}


class InverseTimeDecay(Schedule):
    """η_t = η0 / (1 + k t), the 1/t decay of stochastic approximation.

    With ``per="step"`` this is the classic Robbins–Monro rate for SGD.

    Parameters
    ----------
    decay : float
        k (>= 0).
    lr, per : see `Schedule`.
    """

    def __init__(self, decay: float, lr: float | None = None, per: str = "epoch"):
        super().__init__(lr, per)
        self.decay = check.nonnegative("decay", decay)

    def value(self, t: int) -> float:
        """η0 / (1 + k t)."""
        t = self._check_t(t)
        return self._eta0() / (1.0 + self.decay * t)

    def _settings(self) -> dict[str, Any]:
        return {"decay": self.decay, **super()._settings()}


class ReduceOnPlateau(Schedule):
    """Multiply η by `factor` when the monitored value stops improving.

    A value v improves on the best so far b when v < b · (1 − threshold)
    (relative mode, PyTorch's default) or v < b − threshold (absolute mode).
    After `patience` updates in a row without improvement (SPEC.md: "improved
    by less than a threshold for patience evaluations") η ← max(η · factor,
    min_lr), and the count restarts, after `cooldown` updates during which
    nothing is counted.  A NaN metric counts as no improvement.  PyTorch's
    ReduceLROnPlateau waits one update more: its patience=p is this patience=p+1.

    Parameters
    ----------
    factor : float, default 0.1
        In (0, 1): η is divided by 1/factor on a plateau.
    patience : int, default 10
        Updates without improvement that trigger a reduction (>= 1).
    threshold : float, default 1e-4
        The smallest improvement that counts (>= 0).
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int, default 0
        Updates to wait after a reduction before counting again (>= 0).
    min_lr : float, default 0
        η never goes below this.
    lr : see `Schedule`.  The unit is whatever calls `update` with a metric
        (`gdfast.fit`: every epoch, or every evaluation with ``eval_every``).
    """

    def __init__(
        self,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        lr: float | None = None,
    ):
        super().__init__(lr, "epoch")
        self.factor = check.real_number("factor", factor)
        if not 0.0 < self.factor < 1.0:
            raise ValueError(f"factor: expected a number in (0, 1), got {factor!r}")
        self.patience = check.integer("patience", patience, 1)
        self.threshold = check.nonnegative("threshold", threshold)
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        self.cooldown = check.integer("cooldown", cooldown, 0)
        self.min_lr = check.learning_rate("min_lr", min_lr)
        self._reset()

    def _first(self) -> float:
        return self._eta0()

    def _reset(self) -> None:
        self.best = math.inf
        self.bad_updates = 0
        self._cooldown_left = 0
        self.reductions = 0

    def _improves(self, value: float) -> bool:
        if math.isinf(self.best):
            return value < self.best
        if self.threshold_mode == "rel":
            # b·(1 − threshold) for b > 0; |b| keeps "better" meaning "smaller" when b < 0
            return value < self.best - abs(self.best) * self.threshold
        return value < self.best - self.threshold

    def _next(self, metric: float | None) -> float:
        if metric is None:
            raise ValueError("metric: ReduceOnPlateau needs the monitored value at each update")
        metric = float(metric)
        if not math.isnan(metric) and self._improves(metric):
            self.best = metric
            self.bad_updates = 0
        else:
            self.bad_updates += 1
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            self.bad_updates = 0
        if self.bad_updates >= self.patience:
            self._lr = max(self.lr * self.factor, self.min_lr)
            self.reductions += 1
            self._cooldown_left = self.cooldown
            self.bad_updates = 0
        return self.lr

    def _settings(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "patience": self.patience,
            "threshold": self.threshold,
            "threshold_mode": self.threshold_mode,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "lr": self.base_lr,
        }


_PARSERS: dict[str, tuple[Callable[..., Schedule], tuple[Callable[[str], Any], ...]]] = {
    "constant": (Constant, ()),
    "step": (StepDecay, (int, float)),
    "exp": (ExponentialDecay, (float,)),
    "inverse": (InverseTimeDecay, (float,)),
    "plateau": (ReduceOnPlateau, (float, int, float)),
}


def parse(text: str) -> Schedule:
    """A schedule from a short text, as the ``train`` command takes it.

    ``constant`` · ``step:STEP_SIZE[:GAMMA]`` · ``exp:GAMMA`` · ``inverse:K``
    (1/t decay per epoch; ``inverse:K:step`` per step) ·
    ``plateau[:FACTOR[:PATIENCE[:THRESHOLD]]]``.  Examples: ``"step:10:0.5"``,
    ``"exp:0.95"``, ``"plateau:0.5:3"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"schedule: expected a str, got {type(text).__name__}")
    kind, *fields = text.strip().split(":")
    if kind not in _PARSERS:
        raise ValueError(
            f"schedule: unknown kind {kind!r}; expected one of "
            f"{', '.join(_PARSERS)} (e.g. 'step:10:0.5')"
        )
    cls, types = _PARSERS[kind]
    per = "epoch"
    if kind in ("step", "exp", "inverse") and fields and fields[-1] in _UNITS:
        per = fields.pop()
    if len(fields) > len(types) or (kind in ("step", "exp", "inverse") and not fields):
        raise ValueError(
            f"schedule: {text!r} has the wrong number of fields; expected "
            "constant, step:STEP_SIZE[:GAMMA], exp:GAMMA, inverse:K or "
            "plateau[:FACTOR[:PATIENCE[:THRESHOLD]]]"
        )
    try:
        values: list[Any] = [convert(field) for convert, field in zip(types, fields)]
    except ValueError:
        raise ValueError(f"schedule: cannot read the numbers in {text!r}") from None
    if cls is ReduceOnPlateau:
        return cls(*values)
    return cls(*values, per=per)
