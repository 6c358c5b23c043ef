"""Small vectorized objectives and data sets for distributed training and the simulator.

An objective is any object with

    loss(w, X, y) -> float              the mean loss over the rows of X
    gradient(w, X, y) -> ndarray        its gradient with respect to w (w's shape and dtype)

where w is a flat parameter vector with one entry per column of X.  A bias is a
column of ones in X.  `gdfast.models` (when present) is not needed here: these two
are all the distributed engine and the simulator use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Objective(Protocol):
    """What `train` and `simulate` need from an objective."""

    def loss(self, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float: ...

    def gradient(self, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray: ...


class LeastSquares:
    """J(w) = (1/2n) Σ_i (x_i·w − y_i)²;  ∇J = Xᵀ(Xw − y)/n."""

    name = "least_squares"

    def loss(self, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        residual = X @ w - y
        return 0.5 * float(np.dot(residual, residual)) / max(len(y), 1)

    def gradient(self, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (X.T @ (X @ w - y)) / w.dtype.type(max(len(y), 1))


class Logistic:
    """Logistic regression, labels y in {0, 1}:
    J(w) = (1/n) Σ_i log(1 + exp(x_i·w)) − y_i x_i·w;  ∇J = Xᵀ(σ(Xw) − y)/n."""

    name = "logistic"

    def loss(self, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        margin = X @ w
        return float(np.mean(np.logaddexp(0.0, margin) - y * margin)) if len(y) else 0.0

    def gradient(self, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        margin = X @ w
        # σ(m) written through exp(−|m|) so that large margins neither overflow nor warn
        e = np.exp(-np.abs(margin))
        prob = np.where(margin >= 0, 1 / (1 + e), e / (1 + e)).astype(w.dtype, copy=False)
        return (X.T @ (prob - y)) / w.dtype.type(max(len(y), 1))


OBJECTIVES: dict[str, type] = {"least_squares": LeastSquares, "logistic": Logistic}


@dataclass
class Dataset:
    """Rows X (n × d, a bias column included), targets y, and the objective they go with."""

    X: np.ndarray
    y: np.ndarray
    objective: Objective
    name: str

    def shard(self, index: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows index, index + count, index + 2·count, …: worker `index` of `count`."""
        return self.X[index::count], self.y[index::count]


def _with_bias(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


def generated(
    kind: str = "least_squares",
    n: int = 4096,
    d: int = 32,
    *,
    noise: float = 0.1,
    seed: int = 0,
    dtype: str = "float64",
) -> Dataset:
    """A synthetic least-squares or logistic problem with mildly ill-conditioned features.

    Feature scales are log-spaced in [0.3, 3]; the true weights are standard normal.
    Least squares: y = x·w* + noise·N(0, 1).  Logistic: y ~ Bernoulli(σ(x·w*)).
    """
    if kind not in OBJECTIVES:
        raise ValueError(f"kind: expected one of {sorted(OBJECTIVES)}, got {kind!r}")
    if n < 1 or d < 1:
        raise ValueError(f"n, d: expected at least one row and one feature, got n={n}, d={d}")
    rng = np.random.default_rng(seed)
    scales = np.logspace(np.log10(0.3), np.log10(3.0), d)
    X = _with_bias(rng.standard_normal((n, d)) * scales)
    w_true = rng.standard_normal(d + 1)
    margin = X @ w_true
    if kind == "least_squares":
        y = margin + noise * rng.standard_normal(n)
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(np.float64)
    return Dataset(X.astype(dtype), y.astype(dtype), OBJECTIVES[kind](), f"generated-{kind}")


def scikit_learn(name: str, dtype: str = "float64") -> Dataset:
    """A data set bundled with scikit-learn (no download), standardized, with a bias column.

    "diabetes" (442 × 10, least squares) or "breast_cancer" (569 × 30, logistic).
    """
    try:
        from sklearn import datasets
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "scikit-learn data needs the 'data' extra: pip install 'gdfast[data]'"
        ) from error
    loaders = {
        "diabetes": (datasets.load_diabetes, "least_squares"),
        "breast_cancer": (datasets.load_breast_cancer, "logistic"),
    }
    if name not in loaders:
        raise ValueError(f"name: expected one of {sorted(loaders)}, got {name!r}")
    loader, kind = loaders[name]
    X, y = loader(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    if kind == "least_squares":
        y = (y - y.mean()) / y.std()
    return Dataset(
        _with_bias(X).astype(dtype), y.astype(dtype), OBJECTIVES[kind](), f"sklearn-{name}"
    )


def sparse_logistic(
    n: int = 20_000, d: int = 1_000, active: int = 10, *, seed: int = 0, zipf: float = 1.1
) -> Dataset:
    """Sparse binary features with power-law frequencies, as in click-through data.

    Each row switches on `active` distinct features drawn with probability ∝ rank^−zipf
    (a few features are in almost every row, most are rare: the setting where
    per-coordinate rates and AdaptiveRevision matter), plus a bias column; labels are
    Bernoulli(σ(x·w*)).  Stored dense: the simulator's problems are small.
    """
    rng = np.random.default_rng(seed)
    weights = np.arange(1, d + 1, dtype=np.float64) ** -zipf
    weights /= weights.sum()
    X = np.zeros((n, d + 1))
    for row in range(n):
        X[row, rng.choice(d, size=active, replace=False, p=weights)] = 1.0
    X[:, d] = 1.0
    w_true = rng.standard_normal(d + 1)
    w_true[d] = -0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w_true)))).astype(np.float64)
    return Dataset(X, y, Logistic(), "sparse-logistic")
