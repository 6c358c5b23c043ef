"""The Python reference: serial mode written literally, for tests (slow)."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from ._checks import LOSSES
from ._sparse import _CSR
from ._results import LinearModel, MFModel
from ._training import _fit_linear, _train_mf, fit_linear, fit_mf

_MASK64 = (1 << 64) - 1  # splitmix64's arithmetic is modulo 2**64


def _reference_next(state: int) -> tuple[int, int]:
    """splitmix64, as hw_next: (new state, draw)."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


def _reference_stream_state(seed: int, epoch: int, thread: int) -> int:
    _, mixed = _reference_next(seed)
    _, mixed = _reference_next(mixed ^ (epoch & _MASK64))
    return mixed ^ thread


def reference_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The permutation of n examples an epoch visits (serial mode: in this order; threads
    take consecutive chunks of it)."""
    order = list(range(n))
    if not shuffle:
        return order
    state = _reference_stream_state(seed, epoch, 0)
    for i in range(n - 1, 0, -1):
        state, draw = _reference_next(state)
        j = draw % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def _reference_loss(loss: str, z: float, y: float) -> tuple[float, float]:
    """(loss, d loss / d z) with the formulas of hw_loss."""
    if loss == "logistic":
        m = y * z
        if m > 0.0:
            e = math.exp(-m)
            return math.log1p(e), -y * e / (1.0 + e)
        e = math.exp(m)
        return math.log1p(e) - m, -y / (1.0 + e)
    if loss == "squared":
        return 0.5 * (z - y) * (z - y), z - y
    slack = 1.0 - y * z
    return (slack, -y) if slack > 0.0 else (0.0, 0.0)


def _reference_step(
    param: np.ndarray, sum_sq: np.ndarray | None, j: int, grad: float, lr: float, eps: float
) -> None:
    """SGD or Adagrad on param[j]; assigning a Python float rounds to the array's dtype."""
    if sum_sq is not None:
        sum_sq[j] = float(sum_sq[j]) + grad * grad
        param[j] = float(param[j]) - lr * grad / math.sqrt(float(sum_sq[j]) + eps)
    else:
        param[j] = float(param[j]) - lr * grad


def _reference_linear_epoch(
    data: _CSR, y: np.ndarray, weights: np.ndarray, sum_sq: np.ndarray | None, kwargs: dict
) -> float:
    loss = {code: name for name, code in LOSSES.items()}[kwargs["loss"]]
    lr, l2, eps, fit_intercept = kwargs["lr"], kwargs["l2"], kwargs["eps"], kwargs["fit_intercept"]
    bias, row_weights = data.n_features, kwargs["row_weights"]
    total = 0.0
    for row in reference_order(data.n_rows, kwargs["seed"], kwargs["epoch"], kwargs["shuffle"]):
        columns = range(int(data.indptr[row]), int(data.indptr[row + 1]))
        z = float(weights[bias]) if fit_intercept else 0.0
        for k in columns:
            z += float(data.data[k]) * float(weights[data.indices[k]])
        value, derivative = _reference_loss(loss, z, float(y[row]))
        if row_weights is not None:  # the row's weight scales its loss (not the L2 term)
            weight = float(row_weights[row])
            value, derivative = weight * value, weight * derivative
        total += value
        if derivative == 0.0 and l2 == 0.0:
            continue
        for k in columns:
            j = int(data.indices[k])
            _reference_step(
                weights,
                sum_sq,
                j,
                derivative * float(data.data[k]) + l2 * float(weights[j]),
                lr,
                eps,
            )
        if fit_intercept:
            _reference_step(weights, sum_sq, bias, derivative, lr, eps)
    return total


def _serial_arguments(public: Callable, args: tuple, options: dict[str, Any]) -> dict[str, Any]:
    """All the arguments, by name, of a serial call of `public` (fit_linear or fit_mf) with
    `args` and the keyword arguments `options` (any of `public`'s but the thread settings)."""
    for name in ("mode", "n_threads", "progress", "sync_every", "hot_features"):
        if name in options:
            raise TypeError(f"{name}: the reference is the serial algorithm, it takes no {name}")
    bound = inspect.signature(public).bind(*args, mode="serial", n_threads=1, **options)
    bound.apply_defaults()
    return dict(bound.arguments)


def reference_fit_linear(X: Any, y: Any, **options: Any) -> LinearModel:
    """:func:`fit_linear` in serial mode, written literally in Python (slow; for tests).

    Takes fit_linear's arguments but the thread settings (mode, n_threads, progress,
    sync_every, hot_features).  Same checks, same order of examples, same arithmetic in
    double, same rounding of stored values: float64 results equal the C serial mode to
    rounding.
    """
    return _fit_linear(_serial_arguments(fit_linear, (X, y), options), _reference_linear_epoch)


def _reference_mf_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    factors: tuple[np.ndarray, np.ndarray],
    sums: tuple[np.ndarray | None, np.ndarray | None],
    kwargs: dict,
) -> float:
    lr, l2, eps = kwargs["lr"], kwargs["l2"], kwargs["eps"]
    total = 0.0
    for n in reference_order(ratings.shape[0], kwargs["seed"], kwargs["epoch"], kwargs["shuffle"]):
        user_row, item_row = factors[0][users[n]], factors[1][items[n]]  # views
        user_sum = sums[0][users[n]] if sums[0] is not None else None
        item_sum = sums[1][items[n]] if sums[1] is not None else None
        prediction = 0.0
        for k in range(user_row.shape[0]):
            prediction += float(user_row[k]) * float(item_row[k])
        error = prediction - float(ratings[n])
        total += 0.5 * error * error
        for k in range(user_row.shape[0]):
            user_value, item_value = float(user_row[k]), float(item_row[k])
            _reference_step(user_row, user_sum, k, error * item_value + l2 * user_value, lr, eps)
            _reference_step(item_row, item_sum, k, error * user_value + l2 * item_value, lr, eps)
    return total


def reference_fit_mf(users: Any, items: Any, ratings: Any, **options: Any) -> MFModel:
    """:func:`fit_mf` in serial mode, written literally in Python (slow; for tests).

    Takes fit_mf's arguments but the thread settings (mode, n_threads, progress)."""
    return _train_mf(
        _serial_arguments(fit_mf, (users, items, ratings), options), _reference_mf_epoch
    )
