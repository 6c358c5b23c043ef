"""The epoch loop shared by the C trainers and the Python reference, and the public
trainers fit_linear and fit_mf."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from .. import _validation as check
from ._checks import CURVATURE_BOUND, DEFAULTS, LOSSES, _choice, _Settings, _settings, _targets
from ._sparse import _CSR, _private_copy, check_index_range, csr, index_copy, model_array
from ._native import _c_linear_epoch, _c_mf_epoch, _margins
from ._results import LinearModel, MFModel

# (data, targets, weights, sum_sq, kwargs): the progressive loss sum; the C epoch also puts
# its clocks (where the CPU time went, per thread) into the dict kwargs["report"].
LinearEpoch = Callable[[_CSR, np.ndarray, np.ndarray, "np.ndarray | None", dict], float]


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
            print(
                f"{self.desc}: epoch {entry['epoch']}/{self.total}  {metric} {value:.6g}  "
                f"{entry['seconds']:.2f} s  {entry['updates_per_second']:,.0f} updates/s",
                file=sys.stderr,
                flush=True,
            )

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


def _shrink_bound(data: _CSR, loss: str, l2: float, row_weights: np.ndarray | None) -> np.ndarray:
    """Per feature, the sum over the rows that contain it of c x² + l2 (c the loss's largest
    curvature, CURVATURE_BOUND), times the row's weight: lr times it bounds how much SGD's
    steps on it in those rows contract it (Settings.tracked_count)."""
    per_value = CURVATURE_BOUND[loss] * data.data.astype(np.float64) ** 2 + l2
    if row_weights is not None:
        per_value *= np.repeat(row_weights, np.diff(data.indptr))
    return np.bincount(data.indices, weights=per_value, minlength=data.n_features)


def _largest_rates(
    settings: _Settings, epoch: int, sum_sq: np.ndarray | None, n_hot: int
) -> np.ndarray | float:
    """The largest step size a step of each of the n_hot replicated features (the last of
    the coefficients) can take in `epoch`: its lr for SGD, lr / √(G + ε) for Adagrad with G
    the sums of squares now (they only grow)."""
    lr = settings.epoch_lr(epoch)
    if sum_sq is None or n_hot == 0:
        return lr
    hot_sums = sum_sq[sum_sq.shape[0] - 1 - n_hot : sum_sq.shape[0] - 1].astype(np.float64)
    return lr / np.sqrt(hot_sums + settings.eps)


def _sort_rows(data: _CSR) -> _CSR:
    """Each row's non-zeros by increasing (new) feature number: with replicas, the C loop
    finds a row's hot features at its end.  This changes the order of each row's sums, so
    replicated runs are not the arithmetic of unreplicated ones (multi-threaded anyway)."""
    matrix = sp.csr_matrix(
        (data.data.copy(), data.indices.copy(), data.indptr),
        shape=(data.n_rows, data.n_features),
        copy=False,
    )
    matrix.has_sorted_indices = False
    matrix.sort_indices()
    return _CSR(
        data.indptr,
        matrix.indices.astype(np.int32, copy=False),
        matrix.data.astype(data.dtype, copy=False),
        data.n_features,
    )


def _unpack_features(packed: np.ndarray, order_by_count: np.ndarray) -> np.ndarray:
    """Undo _pack_frequent_features on a (n_features + 1) vector."""
    unpacked = np.empty_like(packed)
    unpacked[order_by_count] = packed[:-1]
    unpacked[-1] = packed[-1]
    return unpacked


def _pack_vector(vector: np.ndarray, order_by_count: np.ndarray) -> np.ndarray:
    """_pack_frequent_features's renumbering on a (n_features + 1) vector."""
    return np.append(vector[:-1][order_by_count], vector[-1])


def _initial_state(
    initial: LinearModel | None, n_features: int, dtype: np.dtype, rule: str
) -> tuple[np.ndarray, np.ndarray | None, list[dict[str, float]]]:
    """Weights (coef then intercept), Adagrad's sums and history to start from: zeros and
    no history, or a private copy of `initial`'s (a warm start)."""
    weights = np.zeros(n_features + 1, dtype=dtype)
    sum_sq = np.zeros_like(weights) if rule == "adagrad" else None
    if initial is None:
        return weights, sum_sq, []
    if not isinstance(initial, LinearModel):
        raise TypeError(f"initial_model: expected a LinearModel, got {type(initial).__name__}")
    coef = model_array("initial_model.coef", initial.coef, 1)
    if coef.shape[0] != n_features:
        raise ValueError(f"initial_model: has {coef.shape[0]} features, X has {n_features}")
    weights[:-1] = coef
    weights[-1] = check.real_number("initial_model.intercept", initial.intercept)
    if sum_sq is not None and initial.sum_sq is not None:
        previous = model_array("initial_model.sum_sq", initial.sum_sq, 1)
        if previous.shape != sum_sq.shape:
            raise ValueError(
                f"initial_model.sum_sq: expected shape {sum_sq.shape}, got {previous.shape}"
            )
        sum_sq[:] = previous
    if not (np.all(np.isfinite(weights)) and (sum_sq is None or np.all(np.isfinite(sum_sq)))):
        raise ValueError("initial_model: contains NaN or infinity")
    return weights, sum_sq, [dict(entry) for entry in initial.history]


def _check_finite_weights(weights: np.ndarray, epoch: int, settings: _Settings) -> None:
    """Raise when an epoch left a non-finite weight (the steps diverged), with advice."""
    if not np.all(np.isfinite(weights)):
        raise ValueError(
            f"the weights became NaN or infinite in epoch {epoch + 1} (lr={settings.lr}, "
            f"rule={settings.rule!r}): the steps diverged. Try a smaller lr, "
            f"rule='adagrad', a decay below 1, a larger l2, or scaling X's columns "
            f"(e.g. sklearn.preprocessing.MaxAbsScaler)"
        )


def _train_linear(
    X: Any,
    y: Any,
    loss: str,
    settings: _Settings,
    fit_intercept: bool,
    dtype: Any,
    record_loss: bool,
    progress: bool,
    epoch_function: LinearEpoch,
    initial: LinearModel | None = None,
    sample_weight: Any = None,
) -> LinearModel:
    """Validate, then run `epochs` epochs of `epoch_function` (C or reference), from zeros
    or from `initial`'s state, counting epochs on from its history (for the step decay and
    the permutations).  Nothing the caller passed is written to."""
    loss_code = _choice("loss", loss, LOSSES)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept: expected a bool, got {type(fit_intercept).__name__}")
    data = X if isinstance(X, _CSR) else csr("X", X)
    if dtype is not None and check.float_dtype("dtype", dtype) != data.dtype:
        data = _CSR(
            data.indptr,
            data.indices,
            data.data.astype(check.float_dtype("dtype", dtype)),
            data.n_features,
        )
    targets = _targets("y", y, data.n_rows, loss)
    row_weights = check.row_weights("sample_weight", sample_weight, data.n_rows)
    weights, sum_sq, history = _initial_state(initial, data.n_features, data.dtype, settings.rule)
    first_epoch = len(history)
    # Each feature's share of the rows: the weight of its penalty in the objective.
    counts = np.bincount(data.indices, minlength=data.n_features)
    row_share = counts / max(data.n_rows, 1)
    n_hot = settings.hot_count(counts, data.n_rows)
    order_by_count = None
    hot_shrink = np.zeros(n_hot)  # (replicas of a one-feature model: only the intercept tracked)
    if settings.n_threads > 1 and data.n_features > 1:
        shrink = _shrink_bound(data, loss, settings.l2, row_weights) if n_hot else None
        data, order_by_count = _pack_frequent_features(data, counts)
        if settings.replicated:
            data = _sort_rows(data)
        if shrink is not None:
            hot_shrink = shrink[order_by_count][data.n_features - n_hot :]
        row_share = row_share[order_by_count]
        weights = _pack_vector(weights, order_by_count)
        sum_sq = _pack_vector(sum_sq, order_by_count) if sum_sq is not None else None
    bar = _Progress(progress, settings.epochs, "hogwild fit_linear")
    try:
        for epoch in range(first_epoch, first_epoch + settings.epochs):
            n_tracked = settings.tracked_count(
                hot_shrink, _largest_rates(settings, epoch, sum_sq, n_hot), data.n_rows
            )
            kwargs = settings.linear_kwargs(
                epoch,
                loss_code,
                bool(fit_intercept),
                data.n_features,
                row_weights,
                n_hot,
                data.n_rows,
                n_tracked,
            )
            start, start_cpu = time.perf_counter(), time.process_time()
            clocks: dict = {}
            total = epoch_function(data, targets, weights, sum_sq, dict(kwargs, report=clocks))
            seconds = time.perf_counter() - start
            _check_finite_weights(weights, epoch, settings)
            entry = {
                "epoch": epoch + 1,
                "lr": kwargs["lr"],
                "seconds": seconds,
                "cpu_seconds": time.process_time() - start_cpu,
                "updates": data.n_rows,
                "updates_per_second": data.n_rows / seconds if seconds > 0 else math.inf,
                "progressive_loss": total / max(data.n_rows, 1),
                **clocks,
            }
            if record_loss:
                margin = _margins(data, weights, bool(fit_intercept))
                pointwise = _pointwise_loss(loss, margin, targets)
                if row_weights is not None:
                    pointwise *= row_weights
                mean_loss = float(np.mean(pointwise)) if data.n_rows else 0.0
                coef = weights[:-1].astype(np.float64)
                entry["loss"] = mean_loss
                # a sum, not np.dot: a long dot product wakes the BLAS's threads, which then
                # spin for a while on the core the next epoch's second thread needs
                entry["objective"] = mean_loss + 0.5 * settings.l2 * float(
                    np.sum(row_share * coef * coef)
                )
            history.append(entry)
            bar.update(entry, "loss")
    finally:
        bar.close()
    if order_by_count is not None:  # back to the caller's feature numbering
        weights = _unpack_features(weights, order_by_count)
        sum_sq = _unpack_features(sum_sq, order_by_count) if sum_sq is not None else None
    return LinearModel(
        coef=weights[:-1].copy(),
        intercept=float(weights[-1]) if fit_intercept else 0.0,
        sum_sq=sum_sq,
        history=history,
        loss=loss,
        fit_intercept=bool(fit_intercept),
    )


def fit_linear(
    X: Any,
    y: Any,
    *,
    loss: str = "logistic",
    rule: str = DEFAULTS["rule"],
    lr: float = DEFAULTS["lr"],
    decay: float = DEFAULTS["decay"],
    l2: float = DEFAULTS["l2"],
    eps: float = DEFAULTS["eps"],
    epochs: int = DEFAULTS["epochs"],
    mode: str = DEFAULTS["mode"],
    n_threads: int | None = None,
    fit_intercept: bool = True,
    shuffle: bool = DEFAULTS["shuffle"],
    seed: int = DEFAULTS["seed"],
    dtype: Any = None,
    record_loss: bool = True,
    progress: bool = False,
    initial_model: LinearModel | None = None,
    sync_every: int | None = DEFAULTS["sync_every"],
    hot_features: int | str = DEFAULTS["hot_features"],
    sample_weight: Any = None,
) -> LinearModel:
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
        Visit the rows in a fresh seeded permutation each epoch (False: the stored order,
        still dealt to the threads in chunks).
    seed : int in [0, 2**64)
    dtype : None, float32 or float64
        Training dtype; None keeps X's.
    record_loss : bool
        Compute the mean loss and objective after each epoch (an extra, parallel pass).
    progress : bool
        Show a tqdm bar over epochs (needs the ``progress`` extra).
    initial_model : LinearModel or None
        A warm start: continue from this model's coefficients, intercept and Adagrad sums
        (copied, never written), numbering epochs on from its history, so the step decay
        and the permutations carry on where it stopped.
    sync_every : int >= 1 or None
        ``mode="hogwild"`` with more than one thread: each thread keeps a private replica of
        the intercept and of the `hot_features` most frequent features (and of their Adagrad
        sums), steps it, and every `sync_every` examples (at most a quarter of its share of
        an epoch) adds what it moved to the shared coordinates (atomically) and reloads
        them; a weight's move is first scaled by how much the other threads' moves flushed
        meanwhile shrank that coordinate's error, as if their examples had come first, so
        concurrent replicas do not overshoot.  None: no replicas, every coordinate is
        shared (plain Hogwild!).  No effect on other modes or on one thread.  The default,
        1024 with ``hot_features=4096``, was the fastest setting measured with two free
        cores (docs/hogwild.md).
    hot_features : int >= 0 or "auto"
        How many of the most frequent features (by their count in X) are replicated
        besides the intercept (at most all of them).  "auto": those in at least
        2 / sync_every of the rows (each stepped about twice or more per flush interval).
    sample_weight : None or array of shape (n_rows,), finite, >= 0
        A factor on each row's loss, hence on its gradient step (not on the L2 term, as in
        scikit-learn's SGD); None: every row weighs 1.  The losses in ``history`` are then
        weighted too: (1/n) Σ_i s_i loss_i.

    Returns
    -------
    LinearModel

    Raises
    ------
    ValueError
        Also when an epoch leaves a non-finite weight (the steps diverged; the message
        says what to try).
    """
    return _fit_linear(dict(locals()), _c_linear_epoch)


def _settings_of(arguments: dict[str, Any]) -> _Settings:
    """The checked settings among the arguments of fit_linear or fit_mf (all, by name)."""
    names = ("rule", "lr", "decay", "l2", "eps", "epochs", "mode", "n_threads", "shuffle", "seed")
    return _settings(
        *(arguments[name] for name in names),
        sync_every=arguments.get("sync_every"),
        hot_features=arguments.get("hot_features", 0),
    )


def _fit_linear(arguments: dict[str, Any], epoch_function: LinearEpoch) -> LinearModel:
    """fit_linear with these arguments (all of them, by name), by `epoch_function`: one way
    through for the C trainers and the reference."""
    return _train_linear(
        arguments["X"],
        arguments["y"],
        arguments["loss"],
        _settings_of(arguments),
        arguments["fit_intercept"],
        arguments["dtype"],
        arguments["record_loss"],
        arguments["progress"],
        epoch_function,
        arguments["initial_model"],
        arguments["sample_weight"],
    )


# --------------------------------------------------------------------------- matrix factorization


def _initial_factors(
    n: int, rank: int, scale: float, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    return (rng.standard_normal((n, rank)) * (scale / math.sqrt(rank))).astype(dtype)


def _train_mf(arguments: dict[str, Any], epoch_function: Callable) -> MFModel:
    """fit_mf with these arguments (all of them, by name), by `epoch_function`: one way
    through for the C trainers and the reference."""
    settings = _settings_of(arguments)
    users, items, ratings = arguments["users"], arguments["items"], arguments["ratings"]
    n_users, n_items, rank = arguments["n_users"], arguments["n_items"], arguments["rank"]
    init_scale, dtype = arguments["init_scale"], arguments["dtype"]
    record_loss, progress = arguments["record_loss"], arguments["progress"]
    rank = check.integer("rank", rank, 1)
    init_scale = check.nonnegative("init_scale", init_scale)
    dtype = check.float_dtype("dtype", dtype)
    ratings = _private_copy("ratings", ratings)
    if (
        ratings.ndim != 1
        or not np.issubdtype(ratings.dtype, np.number)
        or np.issubdtype(ratings.dtype, np.complexfloating)
    ):
        raise ValueError(
            f"ratings: expected a 1-D array of real numbers, got shape "
            f"{ratings.shape} dtype {ratings.dtype}"
        )
    ratings = ratings.astype(np.float64)
    if not np.all(np.isfinite(ratings)):
        raise ValueError("ratings: contains NaN or infinity")
    users_array, items_array = index_copy("users", users), index_copy("items", items)
    for name, array in (("users", users_array), ("items", items_array)):
        if array.shape != ratings.shape:
            raise ValueError(
                f"{name}: expected {ratings.shape[0]} entries (one per rating), "
                f"got shape {array.shape}"
            )
    if n_users is None:
        n_users = int(users_array.max()) + 1 if users_array.size else 0
    if n_items is None:
        n_items = int(items_array.max()) + 1 if items_array.size else 0
    n_users, n_items = check.integer("n_users", n_users, 0), check.integer("n_items", n_items, 0)
    users_array = check_index_range("users", users_array, n_users)
    items_array = check_index_range("items", items_array, n_items)
    rng = np.random.default_rng(settings.seed)
    factors = (
        _initial_factors(n_users, rank, init_scale, rng, dtype),
        _initial_factors(n_items, rank, init_scale, rng, dtype),
    )
    sums = (
        (np.zeros_like(factors[0]), np.zeros_like(factors[1]))
        if settings.rule == "adagrad"
        else (None, None)
    )
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
            entry = {
                "epoch": epoch + 1,
                "lr": kwargs["lr"],
                "seconds": seconds,
                "cpu_seconds": time.process_time() - start_cpu,
                "updates": n,
                "updates_per_second": n / seconds if seconds > 0 else math.inf,
                "progressive_loss": total / max(n, 1),
            }
            if record_loss:
                error = model.predict(users_array, items_array) - ratings
                entry["loss"] = float(0.5 * np.mean(error * error)) if n else 0.0
                entry["rmse"] = math.sqrt(2.0 * entry["loss"])
            history.append(entry)
            bar.update(entry, "rmse")
    finally:
        bar.close()
    return model


def fit_mf(
    users: Any,
    items: Any,
    ratings: Any,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    rank: int = 10,
    rule: str = DEFAULTS["rule"],
    lr: float = DEFAULTS["lr"],
    decay: float = DEFAULTS["decay"],
    l2: float = DEFAULTS["l2"],
    eps: float = DEFAULTS["eps"],
    epochs: int = DEFAULTS["epochs"],
    mode: str = DEFAULTS["mode"],
    n_threads: int | None = None,
    shuffle: bool = DEFAULTS["shuffle"],
    seed: int = DEFAULTS["seed"],
    init_scale: float = 0.1,
    dtype: Any = np.float64,
    record_loss: bool = True,
    progress: bool = False,
) -> MFModel:
    """Matrix factorization by Hogwild!-style SGD or Adagrad (the paper's second example).

    Minimizes Σ_(u,i,r) ½ (U_u · V_i − r)² by visiting the ratings; a rating
    with error e steps U_u with gradient e V_i + λ U_u and V_i with e U_u + λ V_i, both
    computed from the rows' values before the step.  Factors start as N(0, init_scale²/rank)
    draws from ``numpy.random.default_rng(seed)``.  Threads, chunks, orders, modes, ``lr``,
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
    return _train_mf(dict(locals()), _c_mf_epoch)
