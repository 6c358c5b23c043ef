"""The C trainers of src_c/hogwild.c (through gdfast._hogwild), one call each."""

from __future__ import annotations

import numpy as np

from .. import _hogwild
from .._kernels import get_num_threads
from ._sparse import _CSR


def openmp_enabled() -> bool:
    """True when the trainers were compiled with OpenMP (else every mode runs on one thread)."""
    return _hogwild.openmp_enabled()


def _evaluation_threads(work: int) -> int:
    """Threads for a read-only pass over `work` non-zeros: waking a team costs more than
    it saves below ~2^16 per thread.  Results do not depend on it (one row per margin)."""
    return max(1, min(get_num_threads(), work >> 16))


def _margins(data: _CSR, weights: np.ndarray, fit_intercept: bool) -> np.ndarray:
    out = np.empty(data.n_rows, dtype=np.float64)
    _hogwild.linear_margin(
        data.indptr,
        data.indices,
        data.data,
        weights,
        fit_intercept,
        _evaluation_threads(data.indices.shape[0]),
        out,
    )
    return out


def _c_linear_epoch(
    data: _CSR, y: np.ndarray, weights: np.ndarray, sum_sq: np.ndarray | None, kwargs: dict
) -> float:
    """One epoch in C.  With kwargs["sync_every"] > 0, every thread gets replica scratch for
    the coordinates from kwargs["hot_begin"] on (the hot features and the intercept).
    A dict kwargs["report"], if there, receives the epoch's clocks (see _clock_report)."""
    kwargs = dict(kwargs)
    report = kwargs.pop("report", None)
    clocks = None
    if report is not None:
        clocks = np.zeros(2 + _hogwild.CLOCK_FIELDS * max(kwargs["n_threads"], 1))
    row_weights = kwargs.pop("row_weights")
    order = np.empty(data.n_rows, dtype=np.int64)
    replicas = None
    if kwargs["sync_every"] > 0:
        n_hot = weights.shape[0] - kwargs["hot_begin"]
        size = _hogwild.replica_size(n_hot, weights.dtype.itemsize, kwargs["n_threads"])
        replicas = np.empty(size, dtype=weights.dtype)
    total = _hogwild.linear_epoch(
        data.indptr,
        data.indices,
        data.data,
        y,
        row_weights,
        weights,
        sum_sq,
        order,
        replicas,
        clocks=clocks,
        **kwargs,
    )
    if report is not None:
        report.update(_clock_report(clocks))
    return total


def _clock_report(clocks: np.ndarray) -> dict:
    """The history entries of an epoch's clocks (hw_options.clocks in src_c/hogwild.h): where
    its CPU time went, for each thread that ran (a team can be smaller than asked)."""
    per_thread = clocks[2:].reshape(-1, _hogwild.CLOCK_FIELDS)
    ran = per_thread[:, 2] > 0
    per_thread = per_thread[ran] if ran.any() else per_thread[:1]
    return {
        "setup_cpu_seconds": float(clocks[0]),  # the permutation, before the threads start
        "thread_cpu_seconds": per_thread[:, 0].tolist(),  # each thread, to its last row
        "flush_cpu_seconds": per_thread[:, 1].tolist(),  # the part of it in replica flushes
        "thread_updates": per_thread[:, 2].astype(np.int64).tolist(),
        "end_wait_seconds": per_thread[:, 3].tolist(),  # wall, last row to the team's end
    }


def _c_mf_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    factors: tuple[np.ndarray, np.ndarray],
    sums: tuple[np.ndarray | None, np.ndarray | None],
    kwargs: dict,
) -> float:
    order = np.empty(ratings.shape[0], dtype=np.int64)
    return _hogwild.mf_epoch(
        users, items, ratings, factors[0], factors[1], sums[0], sums[1], order, **kwargs
    )
