"""A seeded fuzzer over gdfast.hogwild's sparse and index inputs (issue 18).

Each seed draws a valid problem (a random CSR matrix, or ratings with user and item
indices), breaks it with one randomly chosen mutation with random parameters (an index
out of range, arrays cut short, row pointers reordered, wrong dtypes, NaN...), and sends
it to a randomly chosen entry point.  Every case must end in a TypeError or ValueError
whose message begins with the argument's name, leave the caller's arrays bitwise as they
were, and leave a fitted estimator's attributes untouched.  All cases run in one child
process (each prints a JSON line before and after): a crash fails the test and names the
case instead of killing pytest.  Self-contained: the table is the seeds below.

By hand: ``python tests/test_fuzz_hogwild.py`` prints every case's outcome.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from test_hogwild_sparse_input import _bits, run_child, run_entry

SPARSE_SEEDS = range(120)
INDEX_SEEDS = range(1000, 1050)
SPARSE_ENTRIES = [
    "fit_linear",
    "LinearModel.decision_function",
    "HogwildClassifier.fit",
    "HogwildClassifier.decision_function",
]


def random_csr(rng: np.random.Generator) -> sp.csr_matrix:
    """A valid matrix with 4 rows (the entry points' labels) and at least 4 non-zeros."""
    n_features = int(rng.integers(2, 40))
    X = sp.random(
        4,
        n_features,
        density=float(rng.uniform(0.1, 0.9)),
        format="csr",
        random_state=int(rng.integers(2**31)),
        dtype=np.float64,
    )
    X = (
        X + sp.csr_matrix((np.ones(4), (np.arange(4), np.arange(4) % n_features)), shape=X.shape)
    ).tocsr()
    return X.astype(rng.choice([np.float32, np.float64]))


def _position(rng: np.random.Generator, array: np.ndarray) -> int:
    return int(rng.integers(array.shape[0]))


def _index_past_end(X, rng):
    X.indices = X.indices.astype(np.int64)
    X.indices[_position(rng, X.indices)] = X.shape[1] + int(rng.integers(0, 10**12))


def _negative_index(X, rng):
    X.indices[_position(rng, X.indices)] = -int(rng.integers(1, 2**31 - 1))


def _cut_data(X, rng):
    X.data = X.data[: -int(rng.integers(1, X.data.shape[0] + 1))]


def _cut_indices(X, rng):
    X.indices = X.indices[: -int(rng.integers(1, X.indices.shape[0] + 1))]


def _decreasing_indptr(X, rng):
    row = int(rng.integers(1, X.shape[0]))
    X.indptr = X.indptr.copy()
    X.indptr[row] = X.indptr[row + 1] + int(rng.integers(1, 5))


def _indptr_not_from_zero(X, rng):
    X.indptr = X.indptr.copy()
    X.indptr[0] = int(rng.integers(1, 100))


def _indptr_past_values(X, rng):
    X.indptr = X.indptr.astype(np.int64)
    X.indptr[-1] = X.data.shape[0] + int(rng.integers(1, 2**40))


def _indptr_wrong_length(X, rng):
    k = int(rng.integers(1, 3))
    X.indptr = X.indptr[:-k] if rng.integers(2) else np.append(X.indptr, [X.indptr[-1]] * k)


def _indices_wrong_dtype(X, rng):
    X.indices = X.indices.astype(
        rng.choice([np.float64, np.float32, np.bool_, np.complex64, object])
    )


def _indptr_wrong_dtype(X, rng):
    X.indptr = X.indptr.astype(rng.choice([np.float64, np.float16, object]))


def _non_finite_data(X, rng):
    X.data[_position(rng, X.data)] = rng.choice([np.nan, np.inf, -np.inf])


def _data_wrong_dtype(X, rng):
    X.data = (
        X.data.astype(rng.choice([np.complex128, object]))
        if rng.integers(2)
        else np.array([str(v) for v in X.data])
    )


def _wrong_ndim(X, rng):
    name = str(rng.choice(["indices", "data", "indptr"]))
    array = getattr(X, name)
    setattr(X, name, array.reshape(1, -1) if rng.integers(2) else array[:, None])


MUTATIONS: list[Callable[[sp.csr_matrix, np.random.Generator], None]] = [
    _index_past_end,
    _negative_index,
    _cut_data,
    _cut_indices,
    _decreasing_indptr,
    _indptr_not_from_zero,
    _indptr_past_values,
    _indptr_wrong_length,
    _indices_wrong_dtype,
    _indptr_wrong_dtype,
    _non_finite_data,
    _data_wrong_dtype,
    _wrong_ndim,
]


def sparse_case(seed: int) -> tuple[str, str, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    X = random_csr(rng)
    mutation = MUTATIONS[seed % len(MUTATIONS)]  # every mutation, each with many draws
    mutation(X, rng)
    return mutation.__name__.lstrip("_"), SPARSE_ENTRIES[int(rng.integers(4))], X


def index_case(seed: int) -> tuple[str, str, dict[str, Any]]:
    """Ratings of 6 users x 5 items with one index array broken."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30))
    arrays = {
        "users": rng.integers(0, 6, n),
        "items": rng.integers(0, 5, n),
        "ratings": rng.standard_normal(n),
    }
    name = str(rng.choice(["users", "items"]))
    kind = int(rng.integers(5))
    if kind == 0:
        arrays[name][int(rng.integers(n))] = int(rng.integers(6, 2**62))
    elif kind == 1:
        arrays[name][int(rng.integers(n))] = -int(rng.integers(1, 2**62))
    elif kind == 2:
        arrays[name] = arrays[name].astype(rng.choice([np.float64, np.bool_, object]))
    elif kind == 3:
        arrays[name] = arrays[name].reshape(1, -1)
    else:
        arrays[name] = arrays[name].astype(np.uint64)
        arrays[name][0] = 2**63 + int(rng.integers(2**62))
    entry = str(rng.choice(["fit_mf", "MFModel.predict"]))
    return (
        f"{name} {['past the end', 'negative', 'dtype', '2-D', 'uint64 huge'][kind]}",
        entry,
        arrays,
    )


def run_index_entry(entry: str, arrays: dict[str, Any]) -> None:
    from gdfast import hogwild

    if entry == "fit_mf":
        hogwild.fit_mf(
            arrays["users"],
            arrays["items"],
            arrays["ratings"],
            n_users=6,
            n_items=5,
            rank=3,
            epochs=1,
            mode="hogwild",
            n_threads=2,
        )
        return
    model = hogwild.fit_mf([0, 5], [0, 4], [1.0, 2.0], n_users=6, n_items=5, rank=3, epochs=1)
    before = _bits(model.user_factors), _bits(model.item_factors)
    try:
        model.predict(arrays["users"], arrays["items"])
    finally:
        if before != (_bits(model.user_factors), _bits(model.item_factors)):
            raise AssertionError("the model's factors changed")


def child() -> None:
    cases = [("sparse", seed) for seed in SPARSE_SEEDS] + [("index", s) for s in INDEX_SEEDS]
    for kind, seed in cases:
        if kind == "sparse":
            mutation, entry, X = sparse_case(seed)
            arrays = {name: getattr(X, name) for name in ("indptr", "indices", "data")}
            argument = "X"
        else:
            mutation, entry, arrays = index_case(seed)
            argument = mutation.split()[0]
        before = {name: _bits(np.asarray(value)) for name, value in arrays.items()}
        case = {"seed": seed, "mutation": mutation, "entry": entry, "argument": argument}
        print(json.dumps(dict(case, case=seed, started=True)), flush=True)
        try:
            if kind == "sparse":
                run_entry(entry, X)
            else:
                run_index_entry(entry, arrays)
            outcome = {"error": None, "message": ""}
        except Exception as error:  # noqa: BLE001 - reported to the parent
            outcome = {"error": type(error).__name__, "message": str(error)}
        outcome["caller_arrays_unchanged"] = before == {
            name: _bits(np.asarray(value)) for name, value in arrays.items()
        }
        print(json.dumps(dict(case, case=seed, **outcome)), flush=True)


def test_fuzzed_inputs_end_in_clear_errors():
    outcomes, process = run_child(__file__, "all")
    crashed = [record for record in outcomes.values() if "started" in record]
    assert process.returncode == 0, (
        f"the child died (code {process.returncode}) in {crashed}: {process.stderr[-2000:]}"
    )
    assert len(outcomes) == len(SPARSE_SEEDS) + len(INDEX_SEEDS) >= 100
    wrong = [
        record
        for record in outcomes.values()
        if record["error"] not in ("TypeError", "ValueError")
        or not record["message"].startswith(record["argument"])
        or not record["caller_arrays_unchanged"]
    ]
    assert not wrong, wrong
    # the table really covers every mutation and entry point
    assert {record["mutation"] for record in outcomes.values()} >= {
        mutation.__name__.lstrip("_") for mutation in MUTATIONS
    }
    assert {record["entry"] for record in outcomes.values()} == set(SPARSE_ENTRIES) | {
        "fit_mf",
        "MFModel.predict",
    }


if __name__ == "__main__":
    child()
