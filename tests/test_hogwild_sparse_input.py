"""Malformed sparse matrices and indices reach no C code (issue 18 item 1).

Before the fix, several of these crashed the interpreter (SIGSEGV in src_c/hogwild.c, a
"double free" abort in scipy's sum_duplicates) or read outside their arrays.  So each entry
point runs the whole table in a child process: a regression fails one test here and names
the case, instead of killing pytest.  The child prints one JSON line per case; a case is
right when it raised the expected TypeError/ValueError naming X (or users/items), left the
caller's arrays and the estimator's fitted attributes bitwise as they were.

Run by hand: ``python tests/test_hogwild_sparse_input.py ENTRY`` prints the child's lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Callable

import numpy as np
import pytest
import scipy.sparse as sp

N_ROWS, N_FEATURES = 4, 5
LABELS = np.array([1.0, -1.0, 1.0, -1.0])


def valid() -> sp.csr_matrix:
    """A canonical 4 x 5 CSR matrix with 8 non-zeros, float64, int32 indices."""
    dense = np.array([[1.0, 0, 2, 0, 0], [0, 3, 0, 4, 0], [5, 0, 0, 0, 6], [0, 0, 7, 0, 8]])
    return sp.csr_matrix(dense)


def with_arrays(**arrays: Any) -> sp.csr_matrix:
    """valid() with some of its arrays replaced after construction (scipy's constructor
    would refuse several of these; a caller can still assign them)."""
    X = valid()
    for name, value in arrays.items():
        setattr(X, name, value(getattr(X, name)) if callable(value) else value)
    return X


def _set(position: int, value: Any, dtype: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.astype(dtype if dtype is not None else array.dtype)
        array[position] = value
        return array

    return change


# case name -> (malformed X, expected exception, regex its message must match)
MALFORMED: dict[str, tuple[Callable[[], Any], type, str]] = {
    "index far past the end (issue: SIGSEGV)": (
        lambda: sp.csr_matrix(
            (np.ones(2), np.array([0, 10**6]), np.array([0, 1, 2])), shape=(2, 3)
        ),
        ValueError,
        r"X\.indices: indices must lie in \[0, 3\), got the index 1000000",
    ),
    "index one past the end (issue: use after free)": (
        lambda: with_arrays(indices=_set(-1, N_FEATURES)),
        ValueError,
        r"X\.indices: indices must lie in \[0, 5\)",
    ),
    "negative index": (
        lambda: with_arrays(indices=_set(0, -1)),
        ValueError,
        r"X\.indices: indices must be >= 0",
    ),
    "uint64 index above 2**63": (
        lambda: with_arrays(indices=_set(0, 2**63 + 1, np.uint64)),
        ValueError,
        r"X\.indices: indices must lie in \[0, 5\)",
    ),
    "data shorter than indices (issue: overflow read)": (
        lambda: with_arrays(data=lambda data: data[:-1]),
        ValueError,
        r"X: indices and data differ in length \(8 and 7\)",
    ),
    "indices shorter than data": (
        lambda: with_arrays(indices=lambda indices: indices[:-1]),
        ValueError,
        r"X: indices and data differ in length \(7 and 8\)",
    ),
    "row pointers decreasing (issue: double free)": (
        lambda: with_arrays(indptr=np.array([0, 4, 2, 6, 8], dtype=np.int32)),
        ValueError,
        r"X\.indptr: must never decrease",
    ),
    "first row pointer not 0": (
        lambda: with_arrays(indptr=_set(0, 1)),
        ValueError,
        r"X\.indptr: must start at 0",
    ),
    "last row pointer past the values": (
        lambda: with_arrays(indptr=_set(-1, 13)),
        ValueError,
        r"X\.indptr: its last entry 13 exceeds the 8 stored values",
    ),
    "last row pointer huge": (
        lambda: with_arrays(indptr=_set(-1, 2**62, np.int64)),
        ValueError,
        r"X\.indptr: its last entry \d+ exceeds",
    ),
    "negative row pointer": (
        lambda: with_arrays(indptr=_set(1, -3)),
        ValueError,
        r"X\.indptr: indices must be >= 0",
    ),
    "too few row pointers": (
        lambda: with_arrays(indptr=lambda indptr: indptr[:-1]),
        ValueError,
        r"X\.indptr: expected 5 entries \(one per row plus one\), got 4",
    ),
    "too many row pointers": (
        lambda: with_arrays(indptr=lambda indptr: np.append(indptr, indptr[-1])),
        ValueError,
        r"X\.indptr: expected 5 entries",
    ),
    "float indices": (
        lambda: with_arrays(indices=lambda indices: indices.astype(np.float64)),
        TypeError,
        r"X\.indices: expected integer indices, got dtype float64",
    ),
    "bool indices": (
        lambda: with_arrays(indices=lambda indices: indices.astype(bool)),
        TypeError,
        r"X\.indices: expected integer indices, got dtype bool",
    ),
    "object indices": (
        lambda: with_arrays(indices=lambda indices: indices.astype(object)),
        TypeError,
        r"X\.indices: expected an array of numbers, got dtype object",
    ),
    "float row pointers": (
        lambda: with_arrays(indptr=lambda indptr: indptr.astype(np.float32)),
        TypeError,
        r"X\.indptr: expected integer indices, got dtype float32",
    ),
    "2-D indices": (
        lambda: with_arrays(indices=lambda indices: indices.reshape(2, 4)),
        ValueError,
        r"X\.indices: expected a 1-D array of indices, got shape \(2, 4\)",
    ),
    "2-D data": (
        lambda: with_arrays(data=lambda data: data.reshape(2, 4)),
        ValueError,
        r"X\.data: expected a 1-D array, got shape \(2, 4\)",
    ),
    "complex data": (
        lambda: with_arrays(data=lambda data: data.astype(np.complex128)),
        TypeError,
        r"X: dtype complex128 is not supported",
    ),
    "NaN in data": (
        lambda: with_arrays(data=_set(3, np.nan)),
        ValueError,
        r"X: contains NaN or infinity",
    ),
    "a shape of negative size": (
        lambda: with_arrays(_shape=(-4, 5)),
        ValueError,
        r"X: invalid shape",
    ),
}


def _fitted() -> Any:
    from gdfast import hogwild

    return hogwild.HogwildClassifier(mode="serial", epochs=2).fit(valid(), LABELS)


def _attributes(estimator: Any) -> dict[str, Any]:
    return {
        name: np.array(value, copy=True) if isinstance(value, np.ndarray) else repr(value)
        for name, value in vars(estimator).items()
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        _bits(a[k]) == _bits(b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a
    )


def run_entry(entry: str, X: Any) -> None:
    """Call one entry point on X; for the estimator, check its fitted state is unchanged."""
    from gdfast import hogwild

    if entry == "fit_linear":
        hogwild.fit_linear(X, LABELS[: X.shape[0]], epochs=1, mode="hogwild", n_threads=2)
    elif entry == "LinearModel.decision_function":
        hogwild.fit_linear(valid(), LABELS, epochs=1).decision_function(X)
    elif entry in ("HogwildClassifier.fit", "HogwildClassifier.decision_function"):
        estimator = _fitted()
        before = _attributes(estimator)
        try:
            if entry == "HogwildClassifier.fit":
                estimator.fit(X, np.arange(X.shape[0]) % 2)
            else:
                estimator.decision_function(X)
        finally:
            if not _same(before, _attributes(estimator)):
                raise AssertionError("the estimator's fitted attributes changed")
    else:
        raise KeyError(entry)


def _bits(array: np.ndarray) -> tuple:
    return array.dtype.str, array.shape, array.tobytes()


def child(entry: str) -> None:
    """Run every case on `entry`, one JSON line each (flushed before the next case starts)."""
    for case, (build, _, _) in MALFORMED.items():
        X = build()
        arrays = {
            name: np.array(getattr(X, name), copy=True) for name in ("indptr", "indices", "data")
        }
        print(json.dumps({"case": case, "started": True}), flush=True)
        try:
            run_entry(entry, X)
            outcome = {"error": None, "message": ""}
        except Exception as error:  # noqa: BLE001 - reported to the parent
            outcome = {"error": type(error).__name__, "message": str(error)}
        outcome["caller_arrays_unchanged"] = all(  # bitwise, NaN included
            _bits(arrays[name]) == _bits(getattr(X, name)) for name in arrays
        )
        print(json.dumps(dict(outcome, case=case)), flush=True)


ENTRIES = [
    "fit_linear",
    "LinearModel.decision_function",
    "HogwildClassifier.fit",
    "HogwildClassifier.decision_function",
]


def run_child(module: str, entry: str) -> tuple[dict[str, dict], subprocess.CompletedProcess]:
    """Run `python module entry` with this worktree first on the path; parse its lines."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.environ.get("PYTHONPATH", ""),
            ]
        ),
    )
    process = subprocess.run(
        [sys.executable, module, entry], capture_output=True, text=True, env=env, timeout=300
    )
    outcomes: dict[str, dict] = {}
    for line in process.stdout.splitlines():
        record = json.loads(line)
        outcomes[record["case"]] = record
    return outcomes, process


@pytest.mark.parametrize("entry", ENTRIES)
def test_malformed_sparse_input_is_refused_in_a_child(entry):
    outcomes, process = run_child(__file__, entry)
    crashed = [case for case, record in outcomes.items() if "started" in record]
    assert process.returncode == 0, (
        f"the child died (code {process.returncode}) in case {crashed}: {process.stderr[-2000:]}"
    )
    assert set(outcomes) == set(MALFORMED)
    for case, (_, error, pattern) in MALFORMED.items():
        record = outcomes[case]
        assert record["error"] == error.__name__, (case, record)
        assert __import__("re").search(pattern, record["message"]), (case, record)
        assert record["caller_arrays_unchanged"], (case, record)


def test_non_canonical_but_valid_input_is_summed_not_refused():
    """Unsorted and duplicate indices are legal CSR: summed on a copy, the caller's kept."""
    from gdfast.hogwild import _sparse

    X = sp.csr_matrix(
        (np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]), np.array([0, 3, 3])), shape=(2, 4)
    )
    before = X.indices.copy()
    data = _sparse.csr("X", X)
    np.testing.assert_array_equal(data.indices, [0, 2])
    np.testing.assert_array_equal(data.data, [2.0, 4.0])
    np.testing.assert_array_equal(data.indptr, [0, 2, 2])
    np.testing.assert_array_equal(X.indices, before)


@pytest.mark.parametrize("fmt", ["csc", "coo", "bsr", "lil", "dok", "dia"])
def test_estimator_takes_every_sparse_format(fmt):
    """Other formats are checked (or converted by bounds-checked scipy code) then trained on."""
    from gdfast import hogwild

    X = valid()
    estimator = hogwild.HogwildClassifier(mode="serial", epochs=3, random_state=0)
    expected = estimator.fit(X, LABELS > 0).decision_function(X)
    converted = (
        X.asformat(fmt) if fmt != "bsr" else sp.bsr_matrix(X.toarray()[:, :4], blocksize=(2, 2))
    )
    if fmt == "bsr":
        expected = estimator.fit(sp.csr_matrix(X.toarray()[:, :4]), LABELS > 0).decision_function(
            X.toarray()[:, :4]
        )
    got = estimator.fit(converted, LABELS > 0).decision_function(converted)
    np.testing.assert_array_equal(got, expected)


def test_estimator_takes_integer_sparse_values():
    from gdfast import hogwild

    X = valid()
    estimator = hogwild.HogwildClassifier(mode="serial", epochs=2, random_state=0)
    expected = estimator.fit(X, LABELS > 0).coef_
    np.testing.assert_array_equal(estimator.fit(X.astype(np.int64), LABELS > 0).coef_, expected)


@pytest.mark.parametrize(
    "fmt, attribute, value, pattern",
    [
        (
            "csc",
            "indices",
            np.array([0, 9, 1], dtype=np.int32),
            r"X\.indices: indices must lie in \[0, 3\)",
        ),
        ("csc", "indptr", np.array([0, 2, 1, 3, 3]), r"X\.indptr: must never decrease"),
        ("coo", "row", np.array([0, 1, 7]), r"X\.row: indices must lie in \[0, 3\)"),
        ("coo", "data", np.ones(2), r"X: row, col and data differ in length"),
    ],
)
def test_estimator_checks_csc_and_coo_structure(fmt, attribute, value, pattern):
    from gdfast import hogwild

    X = sp.coo_matrix(
        (np.ones(3), (np.array([0, 1, 2]), np.array([0, 1, 2]))), shape=(3, 4)
    ).asformat(fmt)
    setattr(X, attribute, value)
    with pytest.raises(ValueError, match=pattern):
        hogwild.HogwildClassifier().fit(X, [0, 1, 1])


def test_lil_with_rows_and_data_of_different_lengths_is_refused():
    from gdfast import hogwild

    X = sp.lil_matrix((3, 4))
    X[0, 1], X[1, 2], X[2, 0] = 1.0, 2.0, 3.0
    X.rows[0] = [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"X: rows and data of the LIL matrix differ"):
        hogwild.HogwildClassifier().fit(X, [0, 1, 1])


# ---------------------------------------------------------------- fit_mf / MFModel.predict


@pytest.mark.parametrize(
    "users, error, pattern",
    [
        (np.array([0, 1, 10**6]), ValueError, r"users: indices must lie in \[0, 2\)"),
        (np.array([0, 1, -1]), ValueError, r"users: indices must be >= 0"),
        (np.array([0, 1, 2**63 + 5], dtype=np.uint64), ValueError, r"users: indices must lie in"),
        (np.array([0.0, 1.0, 1.0]), TypeError, r"users: expected integer indices"),
        (np.array([True, False, True]), TypeError, r"users: expected integer indices"),
        (np.array([[0, 1, 1]]), ValueError, r"users: expected a 1-D array of indices"),
        (
            np.array(["0", "1", "1"], dtype=object),
            TypeError,
            r"users: expected an array of numbers",
        ),
    ],
)
def test_fit_mf_and_predict_refuse_bad_indices(users, error, pattern):
    from gdfast import hogwild

    items, ratings = np.array([0, 1, 0]), np.array([1.0, 2.0, 3.0])
    with pytest.raises(error, match=pattern):
        hogwild.fit_mf(users, items, ratings, n_users=2, n_items=2, epochs=1)
    model = hogwild.fit_mf([0, 1, 1], items, ratings, n_users=2, n_items=2, epochs=1)
    factors = model.user_factors.copy()
    with pytest.raises(error, match=pattern):
        model.predict(users, items)
    np.testing.assert_array_equal(model.user_factors, factors)


def test_predict_checks_replaced_factor_arrays():
    """A model's factors may be replaced by the caller: a narrower item table would make the
    C dot product read past its rows."""
    from gdfast import hogwild

    model = hogwild.fit_mf([0, 1], [0, 1], [1.0, 2.0], rank=4, epochs=1)
    model.item_factors = model.item_factors[:, :2].copy()
    with pytest.raises(ValueError, match=r"item_factors: expected 4 columns"):
        model.predict([0], [0])
    model.item_factors = [[1.0]]
    with pytest.raises(TypeError, match=r"item_factors: expected a 2-D float32 or float64"):
        model.predict([0], [0])


def test_indices_are_copied_before_they_are_checked():
    """The check-then-use race of issue 18 item 2: the trainers use a private copy, so a
    caller changing its array afterwards (another thread, mid-epoch) changes nothing."""
    from gdfast.hogwild import _sparse

    users = np.array([0, 1, 1])
    checked = _sparse.index_array("users", users, 2)
    users[0] = 10**9
    assert checked[0] == 0 and not np.shares_memory(checked, users)
    X = valid()
    data = _sparse.csr("X", X)
    for name in ("indptr", "indices", "data"):
        assert not np.shares_memory(getattr(data, name), getattr(X, name))


if __name__ == "__main__":
    child(sys.argv[1])
