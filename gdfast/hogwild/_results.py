"""What the trainers return: a linear model and a factorization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _hogwild
from .. import _validation as check
from ._sparse import _CSR, csr, index_array, model_array
from ._native import _evaluation_threads, _margins


@dataclass
class LinearModel:
    """A trained linear model: margin z = x · coef + intercept.

    Attributes
    ----------
    coef : ndarray, shape (n_features,)
        The weights w, in the training dtype.
    intercept : float
        The intercept b (0.0 when fit_intercept was False).
    sum_sq : ndarray or None, shape (n_features + 1,)
        Adagrad's per-coordinate sums of squared gradients G (intercept last); None for SGD.
    history : list of dict
        One entry per epoch: ``epoch`` (from 1), ``lr`` (η of that epoch), ``seconds`` (wall
        time of the training pass only), ``cpu_seconds`` (CPU time of all threads in that
        pass: ``cpu_seconds / seconds`` is how many cores the threads really had),
        ``updates`` (examples processed), ``updates_per_second``,
        ``progressive_loss`` (mean loss of each example just before its own update), and,
        when ``record_loss``, ``loss`` (mean loss after the epoch) and ``objective`` (``loss``
        plus the row-split L2 term).
    """

    coef: np.ndarray
    intercept: float
    sum_sq: np.ndarray | None
    history: list[dict[str, float]] = field(default_factory=list)
    loss: str = "logistic"
    fit_intercept: bool = True

    def decision_function(self, X: Any) -> np.ndarray:
        """Margins z = X · coef + intercept (float64) of a CSR matrix (X's values are cast to
        the training dtype, the sum is done in double)."""
        weights = self._weights()
        data = csr("X", X)
        if data.n_features != weights.shape[0] - 1:
            raise ValueError(f"X: expected {weights.shape[0] - 1} features, got {data.n_features}")
        if data.dtype != weights.dtype:
            data = _CSR(data.indptr, data.indices, data.data.astype(weights.dtype), data.n_features)
        return _margins(data, weights, self.fit_intercept)

    def _weights(self) -> np.ndarray:
        """coef then intercept, a private array in coef's dtype (the attributes are checked:
        a caller may have replaced them)."""
        coef = model_array("coef", self.coef, 1)
        weights = np.empty(coef.shape[0] + 1, dtype=coef.dtype)
        weights[:-1] = coef
        weights[-1] = check.real_number("intercept", self.intercept)
        return weights


@dataclass
class MFModel:
    """A trained factorization: rating(u, i) ≈ user_factors[u] · item_factors[i].

    ``user_sum_sq``/``item_sum_sq`` are Adagrad's accumulators (None for SGD); ``history``
    as in :class:`LinearModel`, with ``loss`` = mean ½ e² and ``rmse`` after each epoch.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_sum_sq: np.ndarray | None
    item_sum_sq: np.ndarray | None
    history: list[dict[str, float]] = field(default_factory=list)

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings of (users[n], items[n]) pairs, float64."""
        user_factors = model_array("user_factors", self.user_factors, 2)
        item_factors = model_array("item_factors", self.item_factors, 2)
        if (
            item_factors.shape[1] != user_factors.shape[1]
            or item_factors.dtype != user_factors.dtype
        ):
            raise ValueError(
                f"item_factors: expected {user_factors.shape[1]} columns of "
                f"{user_factors.dtype} like user_factors, got shape "
                f"{item_factors.shape} {item_factors.dtype}"
            )
        users = index_array("users", users, user_factors.shape[0])
        items = index_array("items", items, item_factors.shape[0])
        if users.shape != items.shape:
            raise ValueError(
                f"items: expected {users.shape[0]} entries like users, got {items.shape[0]}"
            )
        out = np.empty(users.shape[0], dtype=np.float64)
        work = users.shape[0] * user_factors.shape[1]
        _hogwild.mf_predict(
            users, items, user_factors, item_factors, _evaluation_threads(work), out
        )
        return out
