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
    # Replicas on: with two free cores they beat plain Hogwild! in speed and CPU per update
    # on the RCV1-profile and hot data, and match it on uniform data (docs/hogwild.md).
    sync_every=1024,
    hot_features=4096,
)

# hot_features="auto": replicate the features a thread's replica steps at least this many
# times between two flushes on average (share of rows x sync_every): a flush costs each
# replicated coordinate about two writes (an atomic add and a reload), so rarer features
# are cheaper left shared.
AUTO_HOT_STEPS = 2.0

# With replicas, a flush scales a coordinate's move by the contraction of the moves the other
# threads flushed meanwhile (src_c/hogwild.c, hw_sync), which each step of it tracks at a cost
# (a third of a replicated row's arithmetic).  A step on feature j contracts it by at most
# rate (c x² + l2), c the loss's largest curvature and rate the step size: the epoch's lr for
# SGD, for Adagrad at most lr / √(G + ε) with G the feature's sum of squares at the epoch's
# start (it only grows).  A feature whose steps in one flush interval can add up to less than
# TRACKED_CONTRACTION (10%) by that bound is not tracked that epoch: its moves add whole, as
# plain Hogwild!'s do.  The intercept always is.
TRACKED_CONTRACTION = 0.1
CURVATURE_BOUND = {"logistic": 0.25, "squared": 1.0, "hinge": 0.0}

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
    hot_features: int | str = 0  # or "auto"

    @property
    def replicated(self) -> bool:
        """Whether the threads keep replicas of the hot coordinates (fit_linear)."""
        return self.mode == "hogwild" and self.n_threads > 1 and self.sync_every is not None

    def sync_interval(self, n_rows: int) -> int:
        """sync_every, at most a quarter of a thread's share of an epoch: with longer
        intervals the replicas no longer follow one another (each would run its own part
        of the epoch from the same start, one-shot model averaging, measurably behind
        serial at equal epochs)."""
        assert self.sync_every is not None
        return max(1, min(self.sync_every, n_rows // (4 * self.n_threads)))

    def hot_count(self, counts: np.ndarray, n_rows: int) -> int:
        """How many of the most frequent features to replicate: hot_features, or with
        "auto" those in at least AUTO_HOT_STEPS / sync_interval of the rows (0 without
        replicas)."""
        if not self.replicated:
            return 0
        if self.hot_features != "auto":
            return min(int(self.hot_features), counts.shape[0])
        threshold = AUTO_HOT_STEPS * n_rows / self.sync_interval(n_rows)
        return int(np.count_nonzero(counts >= threshold))

    def tracked_count(self, shrink: np.ndarray, rate: np.ndarray | float, n_rows: int) -> int:
        """How many of the replicated features have their contraction tracked in an epoch.
        `shrink`: for each of them, in the replicas' order (the most frequent last), the sum
        over the rows that contain it of c x² + l2 (c: CURVATURE_BOUND; times the row's
        weight); `rate`: the largest step size each (or all) can take in the epoch.  The
        tracked ones are the last: from the first whose bound reaches TRACKED_CONTRACTION
        on."""
        if not self.replicated or shrink.shape[0] == 0 or n_rows == 0:
            return 0
        per_interval = shrink * rate * (self.sync_interval(n_rows) / n_rows)
        reaches = np.flatnonzero(per_interval >= TRACKED_CONTRACTION)
        return int(shrink.shape[0] - reaches[0]) if reaches.shape[0] else 0

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
        n_hot: int = 0,
        n_rows: int = 0,
        n_tracked: int = 0,
    ) -> dict[str, Any]:
        """kwargs(epoch) and the linear model's own settings: its loss, the intercept, the
        rows' weights (None: 1) and the replicas of the n_hot most frequent features (numbered
        last: see _pack_frequent_features) for n_rows rows."""
        return dict(
            self.kwargs(epoch),
            loss=loss,
            fit_intercept=fit_intercept,
            row_weights=row_weights,
            sync_every=self.sync_interval(n_rows) if self.replicated else 0,
            hot_begin=n_features - n_hot,
            tracked_begin=n_features - n_tracked,
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
    hot_features: int | str = 0,
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
        hot_features=(
            "auto"
            if isinstance(hot_features, str) and hot_features == "auto"
            else check.integer("hot_features", hot_features, 0)
        ),
    )
