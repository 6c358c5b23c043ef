"""Argument checks for all of gdfast: one message style, raised before any write.

Every check either returns the normalized value or raises TypeError (wrong kind
of object) or ValueError (right kind, wrong value), naming the argument.  The
optimizers, the training loop and its models, schedules and strategies, and the
Hogwild! trainers all check their arguments here.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Per dtype, (overflow, underflow): a Python float x rounds to ±inf in the dtype when
# |x| >= overflow (halfway above the largest finite value, ties to even), and a positive x
# rounds to 0 when x <= underflow (half the smallest subnormal).
ROUNDING_LIMITS = {
    np.dtype(np.float32): (2.0**128 - 2.0**103, 2.0**-150),
    np.dtype(np.float64): (math.inf, 0.0),
}


def real_number(name: str, value: Any) -> float:
    """A real scalar (Python or NumPy), not a bool, as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int (or Fraction) beyond the float range: 10**400
        raise ValueError(
            f"{name}: expected a finite number, got {type(value).__name__} "
            "beyond the range of float64"
        ) from None
    if math.isnan(value):
        raise ValueError(f"{name}: expected a number, got nan")
    return value


def learning_rate(name: str, value: Any) -> float:
    value = real_number(name, value)
    if not (0.0 <= value < math.inf):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return value


def positive(name: str, value: Any) -> float:
    value = real_number(name, value)
    if not (0.0 < value < math.inf):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return value


def nonnegative(name: str, value: Any) -> float:
    value = real_number(name, value)
    if not (0.0 <= value < math.inf):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return value


def unit_interval(name: str, value: Any, closed: bool = True) -> float:
    """A real number in [0, 1], or in [0, 1) when not `closed`."""
    value = real_number(name, value)
    if not (0.0 <= value <= 1.0) or (not closed and value == 1.0):
        raise ValueError(
            f"{name}: expected a number in {'[0, 1]' if closed else '[0, 1)'}, got {value!r}"
        )
    return value


def decay_rate(name: str, value: Any) -> float:
    """A decay factor ρ in [0, 1]."""
    return unit_interval(name, value)


def integer(name: str, value: Any, minimum: int) -> int:
    """An int (Python or NumPy, not a bool) >= minimum, as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def flag(name: str, value: Any) -> bool:
    """A yes/no option: a bool (Python or NumPy), or 0/1 (the form a state file stores it in).

    The one check for every flag (an optimizer's option, fit's shuffle and progress, a
    model's batch_norm, ...): 1 and 0 are unambiguous, anything else (2, "yes", None)
    is a TypeError that shows the value.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Real) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {value!r}")


CONVENTIONS = ("paper", "torch", "keras")


def one_of(name: str, value: Any, options: Iterable[str]) -> str:
    """One of the strings `options` (a TypeError for a non-str, a ValueError for another str)."""
    options = tuple(options)
    expected = f"{name}: expected one of {', '.join(map(repr, options))}"
    if not isinstance(value, str):
        raise TypeError(f"{expected}, got {type(value).__name__}")
    if value not in options:
        raise ValueError(f"{expected}, got {value!r}")
    return value


def convention(name: str, value: Any) -> str:
    """One of CONVENTIONS: whose formulas the named options default to."""
    return one_of(name, value, CONVENTIONS)


def betas(name: str, value: Any) -> tuple[float, float]:
    """A pair (β1, β2), each in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a pair (beta1, beta2), got {value!r}")
    pair = (real_number(f"{name}[0]", value[0]), real_number(f"{name}[1]", value[1]))
    return (
        unit_interval(f"{name}[0]", pair[0], closed=False),
        unit_interval(f"{name}[1]", pair[1], closed=False),
    )


def float_dtype(name: str, value: Any) -> np.dtype:
    """float32 or float64, from anything numpy.dtype understands."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name}: expected float32 or float64, got {value!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {dtype}")
    return dtype


def is_sparse(X: Any) -> bool:
    """Whether X is a scipy.sparse matrix or array (without importing scipy)."""
    return type(X).__module__.startswith("scipy.sparse")


def not_masked(name: str, value: Any) -> None:
    """Refuse a numpy.ma.MaskedArray: the kernels would read the masked values too."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name}: expected a numpy.ndarray, got a numpy.ma.MaskedArray (the "
            "optimizer would ignore its mask); pass np.ma.filled(array, value) "
            "or array.data"
        )


def float_array(name: str, value: Any) -> np.ndarray:
    """A float32 or float64 ndarray (the only dtypes the kernels serve)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(value).__name__}")
    not_masked(name, value)
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: dtype {value.dtype} is not supported; "
            "expected float32 or float64 (native byte order)"
        )
    if not value.flags.aligned:
        raise ValueError(
            f"{name}: expected an array aligned to its dtype (copy it with np.array(...))"
        )
    return value


def parameter(name: str, value: Any) -> np.ndarray:
    """A parameter array the kernels may update in place."""
    float_array(name, value)
    if not value.flags.c_contiguous:
        raise ValueError(
            f"{name}: expected a C-contiguous array (the optimizer updates it in "
            "place; optimize np.ascontiguousarray(...) of it instead)"
        )
    if not value.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array (the optimizer updates it in place)")
    return value


def parameters(name: str, value: Any) -> list[np.ndarray]:
    """One parameter array, or a list or tuple of them, as a list (each checked by
    `parameter`; named `name` when one array is given, `name[i]` in a list)."""
    if isinstance(value, np.ndarray):
        return [parameter(name, value)]
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{name}: expected an ndarray or a list of ndarrays, got {type(value).__name__}"
        )
    return [parameter(f"{name}[{index}]", array) for index, array in enumerate(value)]


def byte_span(array: np.ndarray) -> tuple[int, int]:
    """[low, high) addresses of the memory an array's elements occupy."""
    low, high = np.lib.array_utils.byte_bounds(array)
    return low, high


def spans_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def disjoint(where: str, spans: list[tuple[tuple[int, int], str]]) -> None:
    """Refuse two of the labelled [low, high) spans (of dense arrays: empty ones ignored)
    that share memory: the kernels write them together, in parallel, and the aliasing
    checks of the gradients take the written memory as disjoint ranges.  (Sorted by start,
    two spans that overlap make some two neighbours overlap.)"""
    ordered = sorted((span, label) for span, label in spans if span[1] > span[0])
    for (first, label), (second, other) in zip(ordered, ordered[1:]):
        if second[0] < first[1]:
            raise ValueError(
                f"{where}: {label} and {other} share memory; each parameter and state "
                "tensor a step writes needs its own (torch.optim would step them one after "
                "the other; gdfast's kernels step them together)"
            )


# ---- checks of the rules added in issue 15 (Lion, RAdam, Rprop, ASGD, ...) ----


def positive_or_infinite(name: str, value: Any) -> float:
    """A threshold that ∞ turns off (LAMB's trust_clip, Adafactor's d): a number > 0, ∞
    allowed."""
    value = real_number(name, value)
    if not value > 0.0:
        raise ValueError(f"{name}: expected a number > 0 (inf: no threshold), got {value!r}")
    return value


def beta2_decay(name: str, value: Any) -> float:
    """Adafactor's β2 exponent c (1 − β̂_t = t^c): a finite number <= 0 (torch's check)."""
    value = real_number(name, value)
    if not (-math.inf < value <= 0.0):
        raise ValueError(f"{name}: expected a finite number <= 0, got {value!r}")
    return value


def adafactor_eps(name: str, value: Any) -> tuple[float | None, float]:
    """Adafactor's (ε1, ε2): ε1 None (the dtype's machine epsilon) or a finite number >= 0,
    ε2 a finite number >= 0."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a pair (eps1 or None, eps2), got {value!r}")
    eps1 = None if value[0] is None else nonnegative(f"{name}[0]", value[0])
    return eps1, nonnegative(f"{name}[1]", value[1])


def rectify_threshold(name: str, value: Any) -> float:
    """RAdam's ρ_thr: a finite number >= 4 (the rectification term is real from ρ_t = 4 on)."""
    value = real_number(name, value)
    if not (4.0 <= value < math.inf):
        raise ValueError(
            f"{name}: expected a finite number >= 4 (RAdam rectifies where rho_t > it; the "
            f"rectification is not real below 4), got {value!r}"
        )
    return value


def _pair(name: str, value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a pair {what}, got {value!r}")
    return real_number(f"{name}[0]", value[0]), real_number(f"{name}[1]", value[1])


def rprop_etas(name: str, value: Any) -> tuple[float, float]:
    """Rprop's (η−, η+): 0 < η− < 1 < η+, finite (torch's check)."""
    eta_minus, eta_plus = _pair(name, value, "(eta_minus, eta_plus)")
    if not (0.0 < eta_minus < 1.0 < eta_plus < math.inf):
        raise ValueError(
            f"{name}: expected (eta_minus, eta_plus) with 0 < eta_minus < 1 < eta_plus, "
            f"finite, got {tuple(value)!r}"
        )
    return eta_minus, eta_plus


def rprop_step_sizes(name: str, value: Any) -> tuple[float, float]:
    """Rprop's (Δ_min, Δ_max): 0 <= Δ_min <= Δ_max, finite."""
    smallest, largest = _pair(name, value, "(min_step, max_step)")
    if not (0.0 <= smallest <= largest < math.inf):
        raise ValueError(
            f"{name}: expected (min_step, max_step) with 0 <= min_step <= max_step, "
            f"finite, got {tuple(value)!r}"
        )
    return smallest, largest


# ---- checks of gdfast.hogwild ----
SEED_LIMIT = 2**64


def seed64(name: str, value: Any) -> int:
    """A seed of a 64-bit generator (gdfast.hogwild's splitmix64): an int in [0, 2**64)."""
    value = integer(name, value, 0)
    if value >= SEED_LIMIT:
        raise ValueError(f"{name}: expected an int below 2**64, got {value}")
    return value


def row_values(name: str, value: Any, n: int) -> np.ndarray:
    """A private float64 copy of one finite real number per row of X (n of them)."""
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per row of X), got {array.shape[0]}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)  # a private copy
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinity")
    return array


def row_weights(name: str, value: Any, n: int) -> np.ndarray | None:
    """None (every row weighs 1) or a private copy of n finite weights >= 0, not all 0."""
    if value is None:
        return None
    weights = row_values(name, value, n)
    if np.any(weights < 0):
        raise ValueError(f"{name}: expected weights >= 0, got {weights.min()!r}")
    if weights.size and not np.any(weights > 0):
        raise ValueError(f"{name}: every weight is zero, nothing to learn from")
    return weights


# ---- checks of gdfast.distributed ----


def csr_matrix(name: str, X: Any) -> Any:
    """A private CSR copy of a scipy.sparse matrix or array, its structure checked
    (scikit-learn's practice): a malformed or later-changed caller's matrix cannot make a
    gradient read outside its arrays."""
    if getattr(X, "format", None) != "csr":
        raise ValueError(
            f"{name}: expected X in CSR format (scipy.sparse csr_matrix or csr_array), got "
            f"{getattr(X, 'format', type(X).__name__)!r}; convert it with X.tocsr()"
        )
    X = X.copy()
    X.check_format(full_check=True)
    return X


def vector(name: str, value: Any, dtype: Any, writeable: bool) -> np.ndarray:
    """A 1-d float32/float64 C-contiguous array, of `dtype` unless that is None; one a
    kernel updates in place when `writeable`."""
    if writeable:
        parameter(name, value)
    else:
        float_array(name, value)
        if not value.flags.c_contiguous:
            raise ValueError(f"{name}: expected a C-contiguous array")
    if value.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {value.shape}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (x's), got {value.dtype}")
    return value


def distinct_indices(name: str, indices: Any, size: int) -> np.ndarray:
    """A private int64 copy of `indices`, checked: 1-d, distinct, in [0, size).  Checked
    on the copy: another thread changing `indices` meanwhile cannot make a kernel write
    outside its arrays.  Values beyond int64 wrap negative in the copy and are refused."""
    if not isinstance(indices, np.ndarray):
        raise TypeError(
            f"{name}: expected a numpy.ndarray of integers, got {type(indices).__name__}"
        )
    not_masked(name, indices)
    if indices.dtype == np.bool_ or not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer dtype, got {indices.dtype}")
    if indices.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {indices.shape}")
    copy = np.array(indices, dtype=np.int64, order="C", copy=True)
    if copy.size and (copy.min() < 0 or copy.max() >= size):
        raise ValueError(
            f"{name}: expected values in [0, {size}) (x's coordinates), got "
            f"[{indices.min()}, {indices.max()}]"
        )
    ordered = copy if (copy[1:] > copy[:-1]).all() else np.sort(copy)  # sorted: one pass
    if (ordered[1:] == ordered[:-1]).any():
        raise ValueError(f"{name}: expected distinct coordinates (a sparse push names each once)")
    return copy


# ---- checks of Schedule-Free and Muon (issue 15) ----


def muon_ns_coefficients(name: str, value: Any) -> tuple[float, float, float]:
    """Muon's Newton–Schulz coefficients (a, b, c): three finite real numbers."""
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise TypeError(f"{name}: expected three numbers (a, b, c), got {value!r}")
    coefficients = tuple(real_number(f"{name}[{i}]", item) for i, item in enumerate(value))
    for i, item in enumerate(coefficients):
        if not math.isfinite(item):
            raise ValueError(f"{name}[{i}]: expected a finite number, got {item!r}")
    return coefficients  # type: ignore[return-value]


def muon_ns_steps(name: str, value: Any) -> int:
    """Muon's Newton–Schulz iterations: an int in [0, 100) (torch refuses 100 or more); an
    integral float too (a state file stores numbers as float64)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if not 0 <= value < 100:
        raise ValueError(f"{name}: expected an int in [0, 100), got {value}")
    return int(value)
