"""The settings of gdfast.hogwild's trainers (names, codes, defaults), checked.

The checks themselves are gdfast._validation's (the one module of argument checks; the
ones only Hogwild! needs are in its "checks of gdfast.hogwild" section): each returns the
value in the form the trainers take, or raises a TypeError (wrong kind) / ValueError
(wrong value) naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validation as check
from .._kernels import get_num_threads

LOSSES = {"logistic": 0, "squared": 1, "hinge": 2}
RULES = {"sgd": 0, "adagrad": 1}
MODES = {"serial": 0, "locked": 1, "hogwild": 2}

# One source of truth for the defaults of fit_linear, fit_mf and HogwildClassifier.
DEFAULTS = dict(
    rule="adagrad",
    lr=0.1,
    decay=1.0,
    l2=0.0,
    eps=1e-8,
    epochs=5,
    mode="hogwild",
    shuffle=True,
    seed=0,
    sync_every=None,
    hot_features=64,
)

# --------------------------------------------------------------------------- checks


def _choice(name: str, value: Any, options: dict[str, int]) -> int:
    """The C code of option `value`, one of the names in `options`."""
    return options[check.one_of(name, value, options)]


def _threads(mode: str, n_threads: Any) -> int:
    if n_threads is None:
        n_threads = get_num_threads()
    n_threads = check.integer("n_threads", n_threads, 1)
    return 1 if mode == "serial" else n_threads


def _targets(name: str, y: Any, n: int, loss: str) -> np.ndarray:
    y = check.row_values(name, y, n)
    if loss != "squared" and not np.all(np.abs(y) == 1.0):
        raise ValueError(
            f"{name}: the {loss} loss needs labels -1 and +1, got values "
            f"{np.unique(y)[:5].tolist()}; HogwildClassifier maps any labels"
        )
    return y


@dataclass(frozen=True)
class _Settings:
    rule: str
    lr: float
    decay: float
    l2: float
    eps: float
    epochs: int
    mode: str
    n_threads: int
    shuffle: bool
    seed: int
    sync_every: int | None = None  # linear model, hogwild mode: replicas (None: off)
    hot_features: int = 0

    @property
    def replicated(self) -> bool:
        """Whether the threads keep replicas of the hot coordinates (fit_linear)."""
        return self.mode == "hogwild" and self.n_threads > 1 and self.sync_every is not None

    def epoch_lr(self, epoch: int) -> float:
        return self.lr * self.decay**epoch

    def kwargs(self, epoch: int) -> dict[str, Any]:
        return dict(
            rule=RULES[self.rule],
            mode=MODES[self.mode],
            n_threads=self.n_threads,
            shuffle=self.shuffle,
            lr=self.epoch_lr(epoch),
            l2=self.l2,
            eps=self.eps,
            seed=self.seed,
            epoch=epoch,
        )

    def linear_kwargs(
        self,
        epoch: int,
        loss: int,
        fit_intercept: bool,
        n_features: int,
        row_weights: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """kwargs(epoch) and the linear model's own settings: its loss, the intercept, the
        rows' weights (None: 1) and the replicas (the hot features are numbered last: see
        _pack_frequent_features)."""
        return dict(
            self.kwargs(epoch),
            loss=loss,
            fit_intercept=fit_intercept,
            row_weights=row_weights,
            sync_every=self.sync_every if self.replicated else 0,
            hot_begin=n_features - min(self.hot_features, n_features),
        )


def _settings(
    rule: str,
    lr: float,
    decay: float,
    l2: float,
    eps: float,
    epochs: int,
    mode: str,
    n_threads: int | None,
    shuffle: bool,
    seed: int,
    sync_every: int | None = None,
    hot_features: int = 0,
) -> _Settings:
    check.one_of("rule", rule, RULES)
    check.one_of("mode", mode, MODES)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle: expected a bool, got {type(shuffle).__name__}")
    decay = check.real_number("decay", decay)
    if not (0.0 < decay <= 1.0):
        raise ValueError(f"decay: expected a factor in (0, 1], got {decay!r}")
    return _Settings(
        rule=rule,
        lr=check.learning_rate("lr", lr),
        decay=decay,
        l2=check.nonnegative("l2", l2),
        eps=check.positive("eps", eps),
        epochs=check.integer("epochs", epochs, 0),
        mode=mode,
        n_threads=_threads(mode, n_threads),
        shuffle=bool(shuffle),
        seed=check.seed64("seed", seed),
        sync_every=None if sync_every is None else check.integer("sync_every", sync_every, 1),
        hot_features=check.integer("hot_features", hot_features, 0),
    )
