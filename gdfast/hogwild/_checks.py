"""Argument checks of gdfast.hogwild: the settings, the CSR matrix, targets and indices.

Each check returns the value in the form the trainers take, or raises a TypeError
(wrong kind) / ValueError (wrong value) naming the argument.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validation as check
from .._kernels import get_num_threads
from .._training_checks import float_dtype

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

_MASK64 = (1 << 64) - 1

# --------------------------------------------------------------------------- checks


def _choice(name: str, value: Any, options: dict[str, int]) -> int:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {sorted(options)}, got {value!r}")
    return options[value]


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def _seed(value: Any) -> int:
    value = _count("seed", value, 0)
    if value > _MASK64:
        raise ValueError(f"seed: expected an int below 2**64, got {value}")
    return value


def _threads(mode: str, n_threads: Any) -> int:
    if n_threads is None:
        n_threads = get_num_threads()
    n_threads = _count("n_threads", n_threads, 1)
    return 1 if mode == "serial" else n_threads


def _dtype(value: Any) -> np.dtype:
    return float_dtype("dtype", value)


def _row_values(name: str, value: Any, n: int) -> np.ndarray:
    """A private float64 copy of one finite real number per row of X."""
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per row of X), got {array.shape[0]}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)  # a private copy
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinity")
    return array


def _sample_weights(name: str, value: Any, n: int) -> np.ndarray | None:
    """None (every row weighs 1) or a private copy of n finite weights >= 0."""
    if value is None:
        return None
    weights = _row_values(name, value, n)
    if np.any(weights < 0):
        raise ValueError(f"{name}: expected weights >= 0, got {weights.min()!r}")
    if weights.size and not np.any(weights > 0):
        raise ValueError(f"{name}: every weight is zero, nothing to learn from")
    return weights


def _targets(name: str, y: Any, n: int, loss: str) -> np.ndarray:
    y = _row_values(name, y, n)
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
    _choice("rule", rule, RULES)
    _choice("mode", mode, MODES)
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
        epochs=_count("epochs", epochs, 0),
        mode=mode,
        n_threads=_threads(mode, n_threads),
        shuffle=bool(shuffle),
        seed=_seed(seed),
        sync_every=None if sync_every is None else _count("sync_every", sync_every, 1),
        hot_features=_count("hot_features", hot_features, 0),
    )
