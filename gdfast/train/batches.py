"""The examples `gdfast.fit` trains on: checked once, then cut into batches epoch by epoch."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .. import _validation as check

__all__ = ["check_data", "batches", "EPOCH_GATHER_LIMIT"]

# Gathering a shuffled epoch once (then slicing views) is fastest, but holds a
# second copy of X; above this size the batches are gathered one by one instead.
EPOCH_GATHER_LIMIT = 1 << 29  # bytes


def check_data(X: Any, y: Any, name: str) -> tuple[Any, Any, int]:
    """(X as an ndarray or CSR matrix, y as an ndarray or None, rows)."""
    x_name, y_name = (f"{name}[0]", f"{name}[1]") if name != "X" else ("X", "y")
    if check.is_sparse(X):
        if X.ndim != 2:
            raise ValueError(f"{x_name}: expected a 2-d sparse matrix, got {X.ndim}-d")
        if X.format != "csr":
            X = X.tocsr()  # rows are cut from CSR cheaply; other formats cannot be sliced
    else:
        X = np.asarray(X)
        if X.ndim == 0:
            raise ValueError(f"{x_name}: expected an array with one row per example, got a scalar")
    n = X.shape[0]
    if n == 0:
        raise ValueError(f"{x_name}: no examples (0 rows)")
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"{x_name} and {y_name}: {x_name} has {n} rows but {y_name} has "
                f"{y.shape[0] if y.ndim else 'no'} entries; expected one target "
                "per row"
            )
    return X, y, n


def batches(X: Any, y: Any, order: np.ndarray | None, batch_size: int) -> Iterator[tuple]:
    """(X_batch, y_batch, rows) for one epoch, in `order` (None: as stored)."""
    length = X.shape[0] if order is None else order.shape[0]
    if order is not None and (check.is_sparse(X) or X.nbytes <= EPOCH_GATHER_LIMIT):
        # one gather per epoch, then every batch is a slice (a view for dense X);
        # np.take is several times faster than fancy indexing on 2-d arrays
        X = X[order] if check.is_sparse(X) else np.take(X, order, axis=0)
        y = None if y is None else np.take(y, order, axis=0)
        order = None
    if order is None:
        for start in range(0, length, batch_size):
            stop = start + batch_size
            yield (
                X[start:stop],
                (None if y is None else y[start:stop]),
                min(batch_size, length - start),
            )
    else:
        for start in range(0, length, batch_size):
            rows = order[start : start + batch_size]
            yield (
                np.take(X, rows, axis=0),
                (None if y is None else np.take(y, rows, axis=0)),
                rows.shape[0],
            )
