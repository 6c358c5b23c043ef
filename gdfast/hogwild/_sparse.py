"""Sparse matrices and index arrays from the caller, made safe for C (issue 18).

The C trainers index weights with a CSR matrix's column indices and walk its rows
with the row pointers, with no checks in the hot loop; scipy's own C helpers
(``sum_duplicates``, ``tocsr``) trust the structure as much.  A malformed matrix
(an index out of range, ``data`` shorter than ``indices``, row pointers that go
backwards) would read or write outside the arrays.  So every array of the
caller's is first copied (another thread cannot change a copy between check
and use), then the copy is checked, in this order: kinds and dtypes, lengths,
row pointers (first 0, never decreasing, last within ``indices``), index range,
finite values.  Only then is anything handed to scipy or C.  Each failure is a
TypeError (wrong kind) or ValueError (wrong value) naming the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import _validation as check

# The C side stores column indices as int32.
MAX_FEATURES = 2**31 - 2


class _CSR:
    """The arrays of a validated CSR matrix, in the dtypes the C side takes."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_features: int):
        self.indptr, self.indices, self.data, self.n_features = indptr, indices, data, n_features
        self.n_rows = indptr.shape[0] - 1
        self.dtype = data.dtype

    def to_scipy(self) -> sp.csr_matrix:
        """A scipy matrix over these (already checked, private) arrays."""
        return sp.csr_matrix(
            (self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_features), copy=False
        )


def _private_copy(name: str, value: Any) -> np.ndarray:
    """A fresh array of `value`'s numbers (never a view of the caller's memory)."""
    try:
        array = np.array(value, copy=True)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}: expected an array of numbers ({error})") from None
    if array.dtype == object:
        raise TypeError(f"{name}: expected an array of numbers, got dtype object")
    return array


def index_copy(name: str, value: Any) -> np.ndarray:
    """A private 1-D copy of integer indices, all >= 0 (dtype kept: checked before any cast)."""
    array = _private_copy(name, value)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of indices, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}: expected integer indices, got dtype {array.dtype}")
    if array.min() < 0:
        raise ValueError(f"{name}: indices must be >= 0, got {array.min()}")
    return array


def check_index_range(name: str, array: np.ndarray, size: int) -> np.ndarray:
    """`array` (from index_copy) as int64, after checking every index is below `size`."""
    if array.size and array.max() >= size:
        raise ValueError(f"{name}: indices must lie in [0, {size}), got the index {array.max()}")
    return array.astype(np.int64)


def index_array(name: str, value: Any, size: int) -> np.ndarray:
    """A private int64 copy of indices into an axis of `size` entries, each checked."""
    return check_index_range(name, index_copy(name, value), size)


def model_array(name: str, value: Any, ndim: int) -> np.ndarray:
    """A model's array attribute (the caller may have replaced it) as a C-contiguous float32
    or float64 array of `ndim` dimensions."""
    if (
        not isinstance(value, np.ndarray)
        or value.dtype not in check.FLOAT_DTYPES
        or value.ndim != ndim
    ):
        raise TypeError(
            f"{name}: expected a {ndim}-D float32 or float64 array, got "
            f"{getattr(value, 'shape', type(value).__name__)} "
            f"{getattr(value, 'dtype', '')}"
        )
    return np.ascontiguousarray(value)


def _shape(name: str, X: Any) -> tuple[int, int]:
    shape = X.shape
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D matrix, got shape {shape}")
    n_rows, n_columns = (int(size) for size in shape)
    if n_rows < 0 or n_columns < 0:
        raise ValueError(f"{name}: invalid shape {shape}")
    return n_rows, n_columns


def _values(name: str, data: Any, ndim: int = 1, any_real: bool = False) -> np.ndarray:
    """The stored values: float32 or float64 (with `any_real`, also integers, bools and
    other floats, converted to float64), finite, in `ndim` dimensions."""
    data = _private_copy(f"{name}.data", data)
    if (
        any_real
        and data.dtype not in check.FLOAT_DTYPES
        and (
            data.dtype == np.bool_
            or np.issubdtype(data.dtype, np.integer)
            or np.issubdtype(data.dtype, np.floating)
        )
    ):
        data = data.astype(np.float64)
    if data.dtype not in check.FLOAT_DTYPES:
        raise TypeError(
            f"{name}: dtype {data.dtype} is not supported; expected float32 or "
            f"float64 (use {name}.astype(np.float32))"
        )
    if data.ndim != ndim:
        raise ValueError(f"{name}.data: expected a 1-D array, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{name}: contains NaN or infinity; remove or impute them first")
    return data


def _compressed(
    name: str,
    indptr: Any,
    indices: Any,
    n_major: int,
    n_minor: int,
    n_values: int,
    major: str = "row",
) -> tuple[np.ndarray, np.ndarray]:
    """Check (on private copies) the row pointers and indices of a compressed matrix with
    `n_major` rows (columns for CSC, block rows for BSR) and `n_values` stored values.

    Returns int64 row pointers and int64 indices, both trimmed to the stored entries.
    """
    indptr = index_copy(f"{name}.indptr", indptr)
    indices = index_copy(f"{name}.indices", indices)
    if indptr.shape[0] != n_major + 1:
        raise ValueError(
            f"{name}.indptr: expected {n_major + 1} entries (one per {major} "
            f"plus one), got {indptr.shape[0]}"
        )
    if indices.shape[0] != n_values:
        raise ValueError(
            f"{name}: indices and data differ in length ({indices.shape[0]} and {n_values})"
        )
    if indptr[0] != 0:
        raise ValueError(f"{name}.indptr: must start at 0, got {indptr[0]}")
    if np.any(indptr[1:] < indptr[:-1]):
        raise ValueError(
            f"{name}.indptr: must never decrease (each {major} is indices[indptr[i]:indptr[i+1]])"
        )
    if indptr[-1] > n_values:
        raise ValueError(
            f"{name}.indptr: its last entry {indptr[-1]} exceeds the {n_values} stored values"
        )
    end = int(indptr[-1])
    indices = check_index_range(f"{name}.indices", indices[:end], n_minor)
    return indptr.astype(np.int64), indices


def _is_canonical(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """Whether the column indices strictly increase within every row."""
    if indices.shape[0] < 2:
        return True
    increasing = indices[1:] > indices[:-1]
    row_starts = indptr[1:-1]
    row_starts = row_starts[(row_starts > 0) & (row_starts < indices.shape[0])]
    increasing[row_starts - 1] = True  # a new row may start anywhere
    return bool(np.all(increasing))


def _flatten(lists: list, dtype: Any) -> np.ndarray:
    """The concatenation of a LIL matrix's per-row lists (their own dtype: checked later)."""
    return np.concatenate(
        [np.asarray(entries) for entries in lists if len(entries)] + [np.empty(0, dtype)]
    )


def csr(name: str, X: Any, any_real: bool = False) -> _CSR:
    """The arrays of CSR matrix `X`, private and checked; duplicates summed, indices sorted.

    Values must be float32 or float64 (with `any_real`, any real dtype: converted to float64).
    """
    if not (sp.issparse(X) and X.format == "csr"):
        kind = f"a scipy.sparse {X.format} matrix" if sp.issparse(X) else type(X).__name__
        raise TypeError(
            f"{name}: expected a scipy.sparse CSR matrix, got {kind}; "
            "convert with scipy.sparse.csr_matrix(...) (HogwildClassifier "
            "accepts dense input)"
        )
    n_rows, n_features = _shape(name, X)
    if n_features > MAX_FEATURES:
        raise ValueError(f"{name}: at most 2**31 - 2 features are supported, got {n_features}")
    data = _values(name, X.data, any_real=any_real)
    indptr, indices = _compressed(name, X.indptr, X.indices, n_rows, n_features, data.shape[0])
    data = data[: int(indptr[-1])]
    if not _is_canonical(indptr, indices):  # one write per coordinate: sum duplicates
        matrix = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_features))
        matrix.sum_duplicates()  # safe now: every index and pointer was checked
        indptr, indices, data = matrix.indptr.astype(np.int64), matrix.indices, matrix.data
    return _CSR(
        np.ascontiguousarray(indptr),
        np.ascontiguousarray(indices, dtype=np.int32),
        np.ascontiguousarray(data),
        n_features,
    )


def any_sparse_to_csr(name: str, X: Any) -> sp.csr_matrix:
    """Any scipy.sparse matrix or array of real values as a checked, private CSR matrix
    (float32 kept, other dtypes converted to float64).

    CSR, CSC, COO, BSR and LIL are checked array by array before scipy converts them (their
    conversions index with the stored indices); DOK and DIA, whose conversions check their
    own bounds, are converted by scipy to COO first, then checked.
    """
    fmt = X.format
    if fmt == "csr":
        return csr(name, X, any_real=True).to_scipy()
    n_rows, n_columns = _shape(name, X)
    if fmt == "csc":
        data = _values(name, X.data, any_real=True)
        column_ptr, rows = _compressed(
            name, X.indptr, X.indices, n_columns, n_rows, data.shape[0], major="column"
        )
        columns = np.repeat(np.arange(n_columns, dtype=np.int64), np.diff(column_ptr))
        data = data[: rows.shape[0]]
    elif fmt == "bsr":
        data = _private_copy(f"{name}.data", X.data)
        block_rows, block_columns = (int(size) for size in X.blocksize)
        if (
            block_rows < 1
            or block_columns < 1
            or data.ndim != 3
            or data.shape[1:] != (block_rows, block_columns)
            or n_rows % block_rows
            or n_columns % block_columns
        ):
            raise ValueError(
                f"{name}: blocks of shape {data.shape[1:]} do not fit blocksize "
                f"{X.blocksize} and shape {X.shape}"
            )
        data = _values(name, data, ndim=3, any_real=True)
        block_ptr, block_column = _compressed(
            name,
            X.indptr,
            X.indices,
            n_rows // block_rows,
            n_columns // block_columns,
            data.shape[0],
            major="block row",
        )
        data = data[: block_column.shape[0]]
        block_row = np.repeat(np.arange(n_rows // block_rows, dtype=np.int64), np.diff(block_ptr))
        inner_row, inner_column = np.indices((block_rows, block_columns)).reshape(2, 1, -1)
        rows = (block_row[:, None] * block_rows + inner_row).ravel()
        columns = (block_column[:, None] * block_columns + inner_column).ravel()
        data = data.reshape(-1)
    elif fmt == "lil":  # lists of columns and of values per row: their lengths must agree
        row_columns, row_values = list(X.rows), list(X.data)
        lengths = [len(columns) for columns in row_columns]
        if len(lengths) != n_rows or lengths != [len(values) for values in row_values]:
            raise ValueError(f"{name}: rows and data of the LIL matrix differ in length")
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
        columns = index_array(f"{name}.rows", _flatten(row_columns, np.int64), n_columns)
        data = _values(name, _flatten(row_values, X.dtype), any_real=True)
    else:
        coo = X if fmt == "coo" else X.tocoo()
        if len(coo.coords) != 2:
            raise ValueError(f"{name}: expected a 2-D matrix, got {len(coo.coords)} index arrays")
        data = _values(name, coo.data, any_real=True)
        rows = index_copy(f"{name}.row", coo.coords[0])
        columns = index_copy(f"{name}.col", coo.coords[1])
        if not (rows.shape[0] == columns.shape[0] == data.shape[0]):
            raise ValueError(
                f"{name}: row, col and data differ in length ({rows.shape[0]}, "
                f"{columns.shape[0]}, {data.shape[0]})"
            )
        rows = check_index_range(f"{name}.row", rows, n_rows)
        columns = check_index_range(f"{name}.col", columns, n_columns)
    if n_columns > MAX_FEATURES:
        raise ValueError(f"{name}: at most 2**31 - 2 features are supported, got {n_columns}")
    matrix = sp.csr_matrix((data, (rows, columns)), shape=(n_rows, n_columns))
    matrix.sum_duplicates()
    return matrix
