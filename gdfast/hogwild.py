"""Hogwild!: lock-free multi-threaded SGD on sparse data (SPEC.md section 3).

Niu, Recht, Ré and Wright (2011): several threads run SGD on one shared
parameter vector with no locks; each step touches only the coordinates of one
sparse example, so collisions are rare and cheap.  gdfast trains two models
this way, in C with the GIL released:

- :func:`fit_linear`: a linear model on a scipy.sparse CSR matrix, with the
  logistic, squared or hinge loss;
- :func:`fit_mf`: matrix factorization of (user, item, rating) triplets;

and wraps the first in a scikit-learn classifier, :class:`HogwildClassifier`.

The algorithm of one epoch e (counting from 0)::

    η_e = lr · decay**e                           (per-epoch step decay β = decay)
    the examples are split in T contiguous shards (T threads, a static schedule);
    thread t visits its shard in an order shuffled by its own generator
    (splitmix64 seeded from (seed, e, t)), and for each example i:
        z = b + Σ_k x_ik w_jk                        (stored order of the row's non-zeros)
        d = ∂loss(z, y_i)/∂z
        for each non-zero (j, x_ij):  g = d x_ij + λ w_j ;  step(w_j, g)
        if fit_intercept:             step(b, d)
    step, SGD:      w ← w − η_e g
    step, Adagrad:  G ← G + g² ;  w ← w − η_e g / √(G + ε)    (per coordinate, SPEC.md 1)

Losses, for y ∈ {−1, +1} (logistic, hinge) or real y (squared):
logistic log(1 + exp(−yz)), squared ½(z − y)², hinge max(0, 1 − yz).

The L2 term λ w_j is added to the gradient of the touched coordinates only,
as in the paper (its regularizer is split over the examples): SGD minimizes
(1/n) Σ_i [loss_i + (λ/2) Σ_{j ∈ x_i} w_j²], i.e. each feature's penalty is
weighted by the fraction of rows it occurs in.  The history reports this
`objective` next to the plain mean `loss`.  The intercept is not penalized.

Modes: ``"serial"`` (one thread; bitwise repeatable and equal to
:func:`reference_fit_linear`, the same algorithm in NumPy/Python, in the same
order), ``"locked"`` (T threads, each whole example update under one lock:
the paper's baseline), ``"hogwild"`` (T threads, no locks).  With T = 1 all
three visit the same order.  **Multi-threaded runs are not bitwise
repeatable**: a thread may read a coordinate another thread is writing, and
the interleaving depends on the machine's scheduling (as in gensim and
LightFM).  They converge to within a small tolerance of serial on sparse data.

With more than one thread, features are renumbered internally by frequency
so that the few features most rows share sit in a few cache lines next to the
intercept (fewer lines bouncing between cores); every sum and update is the
same, at other addresses, and results come back in the caller's numbering.

Arithmetic is in double; float32 weights and accumulators are rounded to
float32 once per update.  Requires scipy (CSR input) and scikit-learn (the
estimator): the ``data`` extra.
"""
from __future__ import annotations

import math
import numbers
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _hogwild
from . import _validation as check
from ._kernels import get_num_threads
from ._training_checks import float_dtype

__all__ = ["fit_linear", "fit_mf", "LinearModel", "MFModel", "HogwildClassifier",
           "reference_fit_linear", "reference_fit_mf", "openmp_enabled"]

LOSSES = {"logistic": 0, "squared": 1, "hinge": 2}
RULES = {"sgd": 0, "adagrad": 1}
MODES = {"serial": 0, "locked": 1, "hogwild": 2}

# One source of truth for the defaults of fit_linear, fit_mf and HogwildClassifier.
DEFAULTS = dict(rule="adagrad", lr=0.1, decay=1.0, l2=0.0, eps=1e-8, epochs=5,
                mode="hogwild", shuffle=True, seed=0)

_MASK64 = (1 << 64) - 1


def openmp_enabled() -> bool:
    """True when the trainers were compiled with OpenMP (else every mode runs on one thread)."""
    return _hogwild.openmp_enabled()


# --------------------------------------------------------------------------- results


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
        data = _csr("X", X)
        if data.n_features != self.coef.shape[0]:
            raise ValueError(f"X: expected {self.coef.shape[0]} features, got {data.n_features}")
        if data.dtype != self.coef.dtype:
            data = _CSR(data.indptr, data.indices, data.data.astype(self.coef.dtype),
                        data.n_features)
        return _margins(data, self._weights(), self.fit_intercept)

    def _weights(self) -> np.ndarray:
        weights = np.empty(self.coef.shape[0] + 1, dtype=self.coef.dtype)
        weights[:-1] = self.coef
        weights[-1] = self.intercept
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
        users = _index_array("users", users, self.user_factors.shape[0])
        items = _index_array("items", items, self.item_factors.shape[0])
        if users.shape != items.shape:
            raise ValueError(f"items: expected {users.shape[0]} entries like users, "
                             f"got {items.shape[0]}")
        out = np.empty(users.shape[0], dtype=np.float64)
        work = users.shape[0] * self.user_factors.shape[1]
        _hogwild.mf_predict(users, items, self.user_factors, self.item_factors,
                            _evaluation_threads(work), out)
        return out


# --------------------------------------------------------------------------- checks


class _CSR:
    """The arrays of a validated CSR matrix, in the dtypes the C side takes."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                 n_features: int):
        self.indptr, self.indices, self.data, self.n_features = indptr, indices, data, n_features
        self.n_rows = indptr.shape[0] - 1
        self.dtype = data.dtype


def _csr(name: str, X: Any) -> _CSR:
    if not (sp.issparse(X) and X.format == "csr"):
        kind = f"a scipy.sparse {X.format} matrix" if sp.issparse(X) else type(X).__name__
        raise TypeError(f"{name}: expected a scipy.sparse CSR matrix, got {kind}; "
                        "convert with scipy.sparse.csr_matrix(...) (HogwildClassifier "
                        "accepts dense input)")
    if X.dtype not in check.FLOAT_DTYPES:
        raise TypeError(f"{name}: dtype {X.dtype} is not supported; expected float32 or "
                        f"float64 (use {name}.astype(np.float32))")
    if X.shape[1] >= 2**31 - 1:
        raise ValueError(f"{name}: at most 2**31 - 2 features are supported, got {X.shape[1]}")
    if not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name}: contains NaN or infinity; remove or impute them first")
    if not X.has_canonical_format:  # duplicates summed, indices sorted: one write per coordinate
        X = X.copy()
        X.sum_duplicates()
    indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(X.indices, dtype=np.int32)
    data = np.ascontiguousarray(X.data)
    return _CSR(indptr, indices, data, int(X.shape[1]))


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


def _targets(name: str, y: Any, n: int, loss: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per row of X), got {y.shape[0]}")
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real numbers, got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name}: contains NaN or infinity")
    if loss != "squared" and not np.all(np.abs(y) == 1.0):
        raise ValueError(f"{name}: the {loss} loss needs labels -1 and +1, got values "
                         f"{np.unique(y)[:5].tolist()}; HogwildClassifier maps any labels")
    return y


def _index_array(name: str, value: Any, size: int) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}: expected integer indices, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() >= size):
        raise ValueError(f"{name}: indices must lie in [0, {size}), got "
                         f"[{array.min()}, {array.max()}]")
    return array


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

    def epoch_lr(self, epoch: int) -> float:
        return self.lr * self.decay ** epoch

    def kwargs(self, epoch: int) -> dict[str, Any]:
        return dict(rule=RULES[self.rule], mode=MODES[self.mode], n_threads=self.n_threads,
                    shuffle=self.shuffle, lr=self.epoch_lr(epoch), l2=self.l2, eps=self.eps,
                    seed=self.seed, epoch=epoch)


def _settings(rule: str, lr: float, decay: float, l2: float, eps: float, epochs: int,
              mode: str, n_threads: int | None, shuffle: bool, seed: int) -> _Settings:
    _choice("rule", rule, RULES)
    _choice("mode", mode, MODES)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle: expected a bool, got {type(shuffle).__name__}")
    decay = check.real_number("decay", decay)
    if not (0.0 < decay <= 1.0):
        raise ValueError(f"decay: expected a factor in (0, 1], got {decay!r}")
    return _Settings(rule=rule, lr=check.learning_rate("lr", lr), decay=decay,
                     l2=check.nonnegative("l2", l2), eps=check.positive("eps", eps),
                     epochs=_count("epochs", epochs, 0), mode=mode,
                     n_threads=_threads(mode, n_threads), shuffle=bool(shuffle),
                     seed=_seed(seed))


class _Progress:
    """A tqdm bar over epochs (the ``progress`` extra) or, without tqdm, a line per epoch
    on stderr; nothing at all when disabled."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.enabled, self.total, self.desc, self.bar = enabled, total, desc, None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - depends on the environment
                return
            self.bar = tqdm(total=total, desc=desc, unit="epoch")

    def update(self, entry: dict[str, float], metric: str) -> None:
        if not self.enabled:
            return
        value = entry.get(metric, entry["progressive_loss"])
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({metric: value})
        else:
            print(f"{self.desc}: epoch {entry['epoch']}/{self.total}  {metric} {value:.6g}  "
                  f"{entry['seconds']:.2f} s  {entry['updates_per_second']:,.0f} updates/s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- linear model


def _pointwise_loss(loss: str, margin: np.ndarray, y: np.ndarray) -> np.ndarray:
    if loss == "logistic":
        return np.logaddexp(0.0, -y * margin)
    if loss == "squared":
        return 0.5 * (margin - y) ** 2
    return np.maximum(0.0, 1.0 - y * margin)


def _evaluation_threads(work: int) -> int:
    """Threads for a read-only pass over `work` non-zeros: waking a team costs more than
    it saves below ~2^16 per thread.  Results do not depend on it (one row per margin)."""
    return max(1, min(get_num_threads(), work >> 16))


def _margins(data: _CSR, weights: np.ndarray, fit_intercept: bool) -> np.ndarray:
    out = np.empty(data.n_rows, dtype=np.float64)
    _hogwild.linear_margin(data.indptr, data.indices, data.data, weights, fit_intercept,
                           _evaluation_threads(data.indices.shape[0]), out)
    return out


LinearEpoch = Callable[[_CSR, np.ndarray, np.ndarray, "np.ndarray | None", dict], float]


def _c_linear_epoch(data: _CSR, y: np.ndarray, weights: np.ndarray,
                    sum_sq: np.ndarray | None, kwargs: dict) -> float:
    order = np.empty(data.n_rows, dtype=np.int64)
    return _hogwild.linear_epoch(data.indptr, data.indices, data.data, y, weights, sum_sq,
                                 order, **kwargs)


def _pack_frequent_features(data: _CSR, counts: np.ndarray) -> tuple[_CSR, np.ndarray]:
    """Renumber features by increasing frequency (the intercept stays last).

    Threads contend for the cache lines of the features most rows share; renumbered, those
    few features fill a few lines next to the intercept's (which every update writes)
    instead of one line each.  Each row keeps its non-zeros in their stored order, so
    every sum and every update happens as before, only at other addresses: the result
    is the same as without renumbering.  Returns the renumbered matrix and
    `order_by_count` (new number -> old number).
    """
    order_by_count = np.argsort(counts, kind="stable")
    new_number = np.empty(data.n_features, dtype=np.int32)
    new_number[order_by_count] = np.arange(data.n_features, dtype=np.int32)
    return _CSR(data.indptr, new_number[data.indices], data.data, data.n_features), order_by_count


def _unpack_features(packed: np.ndarray, order_by_count: np.ndarray) -> np.ndarray:
    """Undo _pack_frequent_features on a (n_features + 1) vector."""
    unpacked = np.empty_like(packed)
    unpacked[order_by_count] = packed[:-1]
    unpacked[-1] = packed[-1]
    return unpacked


def _train_linear(X: Any, y: Any, loss: str, settings: _Settings, fit_intercept: bool,
                  dtype: Any, record_loss: bool, progress: bool,
                  epoch_function: LinearEpoch) -> LinearModel:
    """Validate, then run `epochs` epochs of `epoch_function` (C or reference)."""
    loss_code = _choice("loss", loss, LOSSES)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept: expected a bool, got {type(fit_intercept).__name__}")
    data = _csr("X", X)
    if dtype is not None and _dtype(dtype) != data.dtype:
        data = _CSR(data.indptr, data.indices, data.data.astype(_dtype(dtype)), data.n_features)
    targets = _targets("y", y, data.n_rows, loss)
    weights = np.zeros(data.n_features + 1, dtype=data.dtype)
    sum_sq = np.zeros_like(weights) if settings.rule == "adagrad" else None
    # Each feature's share of the rows: the weight of its penalty in the objective.
    counts = np.bincount(data.indices, minlength=data.n_features)
    row_share = counts / max(data.n_rows, 1)
    order_by_count = None
    if settings.n_threads > 1 and data.n_features > 1:
        data, order_by_count = _pack_frequent_features(data, counts)
        row_share = row_share[order_by_count]
    history: list[dict[str, float]] = []
    bar = _Progress(progress, settings.epochs, "hogwild fit_linear")
    try:
        for epoch in range(settings.epochs):
            kwargs = dict(settings.kwargs(epoch), loss=loss_code,
                          fit_intercept=bool(fit_intercept))
            start, start_cpu = time.perf_counter(), time.process_time()
            total = epoch_function(data, targets, weights, sum_sq, kwargs)
            seconds = time.perf_counter() - start
            entry = {"epoch": epoch + 1, "lr": kwargs["lr"], "seconds": seconds,
                     "cpu_seconds": time.process_time() - start_cpu, "updates": data.n_rows,
                     "updates_per_second": data.n_rows / seconds if seconds > 0 else math.inf,
                     "progressive_loss": total / max(data.n_rows, 1)}
            if record_loss:
                margin = _margins(data, weights, bool(fit_intercept))
                mean_loss = float(np.mean(_pointwise_loss(loss, margin, targets))) \
                    if data.n_rows else 0.0
                coef = weights[:-1].astype(np.float64)
                entry["loss"] = mean_loss
                entry["objective"] = mean_loss + 0.5 * settings.l2 * float(
                    np.dot(row_share, coef * coef))
            history.append(entry)
            bar.update(entry, "loss")
    finally:
        bar.close()
    if order_by_count is not None:  # back to the caller's feature numbering
        weights = _unpack_features(weights, order_by_count)
        sum_sq = _unpack_features(sum_sq, order_by_count) if sum_sq is not None else None
    return LinearModel(coef=weights[:-1].copy(),
                       intercept=float(weights[-1]) if fit_intercept else 0.0,
                       sum_sq=sum_sq, history=history, loss=loss,
                       fit_intercept=bool(fit_intercept))


def fit_linear(X: Any, y: Any, *, loss: str = "logistic", rule: str = DEFAULTS["rule"],
               lr: float = DEFAULTS["lr"], decay: float = DEFAULTS["decay"],
               l2: float = DEFAULTS["l2"], eps: float = DEFAULTS["eps"],
               epochs: int = DEFAULTS["epochs"], mode: str = DEFAULTS["mode"],
               n_threads: int | None = None, fit_intercept: bool = True,
               shuffle: bool = DEFAULTS["shuffle"], seed: int = DEFAULTS["seed"],
               dtype: Any = None, record_loss: bool = True,
               progress: bool = False) -> LinearModel:
    """Train a sparse linear model with Hogwild!-style SGD or Adagrad (see the module docstring).

    Parameters
    ----------
    X : scipy.sparse CSR matrix, float32 or float64, shape (n_rows, n_features)
        Finite values.  Non-canonical matrices (duplicates, unsorted indices) are copied
        and canonicalized first.
    y : array of shape (n_rows,)
        Targets: -1/+1 for ``loss="logistic"`` and ``"hinge"``, any real for ``"squared"``.
    loss : {"logistic", "squared", "hinge"}
    rule : {"sgd", "adagrad"}
        SGD, or Adagrad per coordinate (ε inside the square root, SPEC.md section 1).
    lr : float >= 0
        Step size η (Adagrad: its base step size).
    decay : float in (0, 1]
        Per-epoch step decay β: epoch e (from 0) uses η·β^e.  1.0 keeps η constant.
    l2 : float >= 0
        λ, added as λ w_j to the gradient of each coordinate an example touches.
    eps : float > 0
        Adagrad's ε.
    epochs : int >= 0
        Passes over the data.
    mode : {"hogwild", "locked", "serial"}
        See the module docstring.  Only ``"serial"`` (or one thread) is bitwise repeatable.
    n_threads : int >= 1 or None
        Threads of the locked and hogwild modes; None follows ``gdfast.get_num_threads()``.
    fit_intercept : bool
    shuffle : bool
        Visit each thread's shard in a fresh seeded order each epoch (False: stored order).
    seed : int in [0, 2**64)
    dtype : None, float32 or float64
        Training dtype; None keeps X's.
    record_loss : bool
        Compute the mean loss and objective after each epoch (an extra, parallel pass).
    progress : bool
        Show a tqdm bar over epochs (needs the ``progress`` extra).

    Returns
    -------
    LinearModel
    """
    settings = _settings(rule, lr, decay, l2, eps, epochs, mode, n_threads, shuffle, seed)
    return _train_linear(X, y, loss, settings, fit_intercept, dtype, record_loss, progress,
                         _c_linear_epoch)


# --------------------------------------------------------------------------- matrix factorization


def _initial_factors(n: int, rank: int, scale: float, rng: np.random.Generator,
                     dtype: np.dtype) -> np.ndarray:
    return (rng.standard_normal((n, rank)) * (scale / math.sqrt(rank))).astype(dtype)


def _c_mf_epoch(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                factors: tuple[np.ndarray, np.ndarray],
                sums: tuple[np.ndarray | None, np.ndarray | None], kwargs: dict) -> float:
    order = np.empty(ratings.shape[0], dtype=np.int64)
    return _hogwild.mf_epoch(users, items, ratings, factors[0], factors[1], sums[0], sums[1],
                             order, **kwargs)


def _train_mf(users: Any, items: Any, ratings: Any, n_users: int | None, n_items: int | None,
              rank: int, settings: _Settings, init_scale: float, dtype: Any,
              record_loss: bool, progress: bool, epoch_function: Callable) -> MFModel:
    rank = _count("rank", rank, 1)
    init_scale = check.nonnegative("init_scale", init_scale)
    dtype = _dtype(dtype)
    ratings = np.asarray(ratings)
    if ratings.ndim != 1 or not np.issubdtype(ratings.dtype, np.number):
        raise ValueError(f"ratings: expected a 1-D array of numbers, got shape {ratings.shape} "
                         f"dtype {ratings.dtype}")
    ratings = np.ascontiguousarray(ratings, dtype=np.float64)
    if not np.all(np.isfinite(ratings)):
        raise ValueError("ratings: contains NaN or infinity")
    users_array, items_array = np.asarray(users), np.asarray(items)
    for name, array in (("users", users_array), ("items", items_array)):
        if array.shape != ratings.shape:
            raise ValueError(f"{name}: expected {ratings.shape[0]} entries (one per rating), "
                             f"got shape {array.shape}")
    if n_users is None:
        n_users = int(users_array.max()) + 1 if users_array.size else 0
    if n_items is None:
        n_items = int(items_array.max()) + 1 if items_array.size else 0
    n_users, n_items = _count("n_users", n_users, 0), _count("n_items", n_items, 0)
    users_array = _index_array("users", users_array, n_users)
    items_array = _index_array("items", items_array, n_items)
    rng = np.random.default_rng(settings.seed)
    factors = (_initial_factors(n_users, rank, init_scale, rng, dtype),
               _initial_factors(n_items, rank, init_scale, rng, dtype))
    sums = ((np.zeros_like(factors[0]), np.zeros_like(factors[1]))
            if settings.rule == "adagrad" else (None, None))
    history: list[dict[str, float]] = []
    n = ratings.shape[0]
    bar = _Progress(progress, settings.epochs, "hogwild fit_mf")
    model = MFModel(factors[0], factors[1], sums[0], sums[1], history)
    try:
        for epoch in range(settings.epochs):
            kwargs = settings.kwargs(epoch)
            start, start_cpu = time.perf_counter(), time.process_time()
            total = epoch_function(users_array, items_array, ratings, factors, sums, kwargs)
            seconds = time.perf_counter() - start
            entry = {"epoch": epoch + 1, "lr": kwargs["lr"], "seconds": seconds,
                     "cpu_seconds": time.process_time() - start_cpu, "updates": n,
                     "updates_per_second": n / seconds if seconds > 0 else math.inf,
                     "progressive_loss": total / max(n, 1)}
            if record_loss:
                error = model.predict(users_array, items_array) - ratings
                entry["loss"] = float(0.5 * np.mean(error * error)) if n else 0.0
                entry["rmse"] = math.sqrt(2.0 * entry["loss"])
            history.append(entry)
            bar.update(entry, "rmse")
    finally:
        bar.close()
    return model


def fit_mf(users: Any, items: Any, ratings: Any, *, n_users: int | None = None,
           n_items: int | None = None, rank: int = 10, rule: str = DEFAULTS["rule"],
           lr: float = DEFAULTS["lr"], decay: float = DEFAULTS["decay"],
           l2: float = DEFAULTS["l2"], eps: float = DEFAULTS["eps"],
           epochs: int = DEFAULTS["epochs"], mode: str = DEFAULTS["mode"],
           n_threads: int | None = None, shuffle: bool = DEFAULTS["shuffle"],
           seed: int = DEFAULTS["seed"], init_scale: float = 0.1, dtype: Any = np.float64,
           record_loss: bool = True, progress: bool = False) -> MFModel:
    """Matrix factorization by Hogwild!-style SGD or Adagrad (the paper's second example).

    Minimizes Σ_(u,i,r) ½ (U_u · V_i − r)² by visiting the ratings; a rating
    with error e steps U_u with gradient e V_i + λ U_u and V_i with e U_u + λ V_i, both
    computed from the rows' values before the step.  Factors start as N(0, init_scale²/rank)
    draws from ``numpy.random.default_rng(seed)``.  Threads, shards, orders, modes, ``lr``,
    ``decay``, ``eps`` and the repeatability caveat are those of :func:`fit_linear`.

    Parameters
    ----------
    users, items : int arrays of shape (n_ratings,)
        Row of each rating in U and in V.
    ratings : real array of shape (n_ratings,)
    n_users, n_items : int or None
        Rows of U and V; None means one more than the largest index.
    rank : int >= 1
        Columns of U and V.
    dtype : float32 or float64
        Dtype of the factors and Adagrad's accumulators.

    Returns
    -------
    MFModel
    """
    settings = _settings(rule, lr, decay, l2, eps, epochs, mode, n_threads, shuffle, seed)
    return _train_mf(users, items, ratings, n_users, n_items, rank, settings, init_scale,
                     dtype, record_loss, progress, _c_mf_epoch)


# --------------------------------------------------------------------------- reference


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
    """The order in which serial mode (one thread, one shard) visits n examples in an epoch."""
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


def _reference_step(param: np.ndarray, sum_sq: np.ndarray | None, j: int, grad: float,
                    lr: float, eps: float) -> None:
    """SGD or Adagrad on param[j]; assigning a Python float rounds to the array's dtype."""
    if sum_sq is not None:
        sum_sq[j] = float(sum_sq[j]) + grad * grad
        param[j] = float(param[j]) - lr * grad / math.sqrt(float(sum_sq[j]) + eps)
    else:
        param[j] = float(param[j]) - lr * grad


def _reference_linear_epoch(data: _CSR, y: np.ndarray, weights: np.ndarray,
                            sum_sq: np.ndarray | None, kwargs: dict) -> float:
    loss = {code: name for name, code in LOSSES.items()}[kwargs["loss"]]
    lr, l2, eps, fit_intercept = kwargs["lr"], kwargs["l2"], kwargs["eps"], kwargs["fit_intercept"]
    bias = data.n_features
    total = 0.0
    for row in reference_order(data.n_rows, kwargs["seed"], kwargs["epoch"], kwargs["shuffle"]):
        columns = range(int(data.indptr[row]), int(data.indptr[row + 1]))
        z = float(weights[bias]) if fit_intercept else 0.0
        for k in columns:
            z += float(data.data[k]) * float(weights[data.indices[k]])
        value, derivative = _reference_loss(loss, z, float(y[row]))
        total += value
        if derivative == 0.0 and l2 == 0.0:
            continue
        for k in columns:
            j = int(data.indices[k])
            _reference_step(weights, sum_sq, j, derivative * float(data.data[k])
                            + l2 * float(weights[j]), lr, eps)
        if fit_intercept:
            _reference_step(weights, sum_sq, bias, derivative, lr, eps)
    return total


def reference_fit_linear(X: Any, y: Any, *, loss: str = "logistic",
                         rule: str = DEFAULTS["rule"], lr: float = DEFAULTS["lr"],
                         decay: float = DEFAULTS["decay"], l2: float = DEFAULTS["l2"],
                         eps: float = DEFAULTS["eps"], epochs: int = DEFAULTS["epochs"],
                         fit_intercept: bool = True, shuffle: bool = DEFAULTS["shuffle"],
                         seed: int = DEFAULTS["seed"], dtype: Any = None,
                         record_loss: bool = True) -> LinearModel:
    """:func:`fit_linear` in serial mode, written literally in Python (slow; for tests).

    Same checks, same order of examples, same arithmetic in double, same rounding of
    stored values: float64 results equal the C serial mode to rounding.
    """
    settings = _settings(rule, lr, decay, l2, eps, epochs, "serial", 1, shuffle, seed)
    return _train_linear(X, y, loss, settings, fit_intercept, dtype, record_loss, False,
                         _reference_linear_epoch)


def _reference_mf_epoch(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                        factors: tuple[np.ndarray, np.ndarray],
                        sums: tuple[np.ndarray | None, np.ndarray | None], kwargs: dict) -> float:
    lr, l2, eps = kwargs["lr"], kwargs["l2"], kwargs["eps"]
    total = 0.0
    for n in reference_order(ratings.shape[0], kwargs["seed"], kwargs["epoch"],
                             kwargs["shuffle"]):
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


def reference_fit_mf(users: Any, items: Any, ratings: Any, *, n_users: int | None = None,
                     n_items: int | None = None, rank: int = 10, rule: str = DEFAULTS["rule"],
                     lr: float = DEFAULTS["lr"], decay: float = DEFAULTS["decay"],
                     l2: float = DEFAULTS["l2"], eps: float = DEFAULTS["eps"],
                     epochs: int = DEFAULTS["epochs"], shuffle: bool = DEFAULTS["shuffle"],
                     seed: int = DEFAULTS["seed"], init_scale: float = 0.1,
                     dtype: Any = np.float64, record_loss: bool = True) -> MFModel:
    """:func:`fit_mf` in serial mode, written literally in Python (slow; for tests)."""
    settings = _settings(rule, lr, decay, l2, eps, epochs, "serial", 1, shuffle, seed)
    return _train_mf(users, items, ratings, n_users, n_items, rank, settings, init_scale,
                     dtype, record_loss, False, _reference_mf_epoch)


# --------------------------------------------------------------------------- estimator


class HogwildClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier trained by :func:`fit_linear`, scikit-learn style.

    Binary problems train one model on labels mapped to -1/+1 (``classes_[1]`` is +1);
    more classes train one-vs-rest, one model per class, one after the other (each with
    all threads).  Dense input is converted to CSR.  Parameters are :func:`fit_linear`'s;
    ``random_state`` (None, an int or a RandomState) gives the seed.  With the default
    ``mode="hogwild"`` and more than one thread, two fits with the same seed may differ
    slightly (see :mod:`gdfast.hogwild`); ``mode="serial"`` is repeatable.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    history_ : list of list of dict
        The :attr:`LinearModel.history` of each binary model.
    n_features_in_ : int
    n_iter_ : int
        Epochs run.
    """

    def __init__(self, loss: str = "logistic", rule: str = DEFAULTS["rule"],
                 lr: float = DEFAULTS["lr"], decay: float = DEFAULTS["decay"],
                 l2: float = DEFAULTS["l2"], eps: float = DEFAULTS["eps"],
                 epochs: int = DEFAULTS["epochs"], mode: str = DEFAULTS["mode"],
                 n_threads: int | None = None, fit_intercept: bool = True,
                 shuffle: bool = DEFAULTS["shuffle"], random_state: Any = None,
                 dtype: Any = np.float64, progress: bool = False):
        self.loss = loss
        self.rule = rule
        self.lr = lr
        self.decay = decay
        self.l2 = l2
        self.eps = eps
        self.epochs = epochs
        self.mode = mode
        self.n_threads = n_threads
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = self.mode != "serial"
        return tags

    def _validate(self, X: Any, reset: bool, **y: Any):
        return validate_data(self, X, accept_sparse="csr", dtype=_dtype(self.dtype),
                             reset=reset, **y)

    def fit(self, X: Any, y: Any) -> "HogwildClassifier":
        """Train on X (dense or sparse, converted to CSR) and labels y of any type."""
        _choice("loss", self.loss, LOSSES)
        X, y = self._validate(X, True, y=y)
        check_classification_targets(y)
        encoder = LabelEncoder()
        encoded = encoder.fit_transform(y)
        classes = encoder.classes_
        if classes.shape[0] < 2:
            raise ValueError(f"y: needs samples of at least 2 classes, got one class "
                             f"({classes[0]!r})")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max)) \
            if not isinstance(self.random_state, numbers.Integral) else self.random_state
        X = sp.csr_matrix(X)
        settings = _settings(self.rule, self.lr, self.decay, self.l2, self.eps, self.epochs,
                             self.mode, self.n_threads, self.shuffle, seed)
        positives = [1] if classes.shape[0] == 2 else list(range(classes.shape[0]))
        models = [_train_linear(X, np.where(encoded == k, 1.0, -1.0), self.loss, settings,
                                self.fit_intercept, None, True, self.progress, _c_linear_epoch)
                  for k in positives]
        self.classes_ = classes
        self.coef_ = np.stack([model.coef for model in models])
        self.intercept_ = np.array([model.intercept for model in models], dtype=self.coef_.dtype)
        self.history_ = [model.history for model in models]
        self.n_iter_ = settings.epochs
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Margins: shape (n,) for two classes (> 0 means classes_[1]), else (n, n_classes)."""
        check_is_fitted(self)
        X = self._validate(X, False)
        scores = X @ self.coef_.T.astype(np.float64) + self.intercept_.astype(np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest margin (binary: classes_[1] where the margin is > 0)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def _has_probabilities(self) -> bool:
        if self.loss != "logistic":
            raise AttributeError(f"predict_proba needs loss='logistic', not {self.loss!r}")
        return True

    @available_if(_has_probabilities)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: the logistic sigmoid of the margins, normalized one-vs-rest."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = 0.5 * (1.0 + np.tanh(0.5 * scores))  # the sigmoid without overflow
            return np.column_stack([1.0 - positive, positive])
        probabilities = 0.5 * (1.0 + np.tanh(0.5 * scores))
        totals = probabilities.sum(axis=1, keepdims=True)
        uniform = totals[:, 0] == 0.0
        probabilities[uniform] = 1.0
        return probabilities / np.where(uniform[:, None], scores.shape[1], totals)

    @available_if(_has_probabilities)
    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))
