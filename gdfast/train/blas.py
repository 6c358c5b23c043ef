"""The BLAS thread limit `gdfast.fit` holds while it trains (threadpoolctl, the `threads` extra).

The objective's matrix products run in the BLAS (OpenBLAS, MKL); on small batches its
threads only add overhead, so fit limits them and restores the limit afterwards.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _validation as check

__all__ = ["AUTO_BLAS_WORK", "thread_limit", "limiter"]

# Above this much work per batch (parameters × examples), "auto" leaves the BLAS threads alone.
AUTO_BLAS_WORK = 2**25


def thread_limit(setting: Any, params: Sequence[np.ndarray], batch: int) -> int | None:
    """The BLAS thread limit fit applies: an int, or None for none."""
    if setting is None:
        return None
    if isinstance(setting, str):
        if setting != "auto":
            raise ValueError(f"blas_threads: expected 'auto', an int >= 1 or None, got {setting!r}")
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            return None
        work = sum(int(p.size) for p in params) * max(int(batch), 1)
        return 1 if work <= AUTO_BLAS_WORK else None
    limit = check.integer("blas_threads", setting, 1)
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        raise ImportError(
            "blas_threads: limiting BLAS threads needs threadpoolctl: "
            "pip install threadpoolctl (the 'threads' extra)"
        ) from None
    return limit


def limiter(limit: int | None) -> Any:
    """threadpoolctl's limiter holding the BLAS at `limit` threads (None: nothing to do)."""
    if limit is None:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")
