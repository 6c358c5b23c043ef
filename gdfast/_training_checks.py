"""Argument checks shared by gdfast's training modules (fit, schedules, strategies, models).

Same style as gdfast._validation: return the normalized value or raise a
TypeError (wrong kind) / ValueError (wrong value) that names the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validation


def integer(name: str, value: Any, minimum: int) -> int:
    """An int (Python or NumPy, not a bool) >= minimum, as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def flag(name: str, value: Any) -> bool:
    """A bool (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def float_dtype(name: str, value: Any) -> np.dtype:
    """float32 or float64, from anything numpy.dtype understands."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name}: expected float32 or float64, got {value!r}") from None
    if dtype not in _validation.FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {dtype}")
    return dtype


def is_sparse(X: Any) -> bool:
    """Whether X is a scipy.sparse matrix or array (without importing scipy)."""
    return type(X).__module__.startswith("scipy.sparse")
