"""Adafactor's factored path in C (issue 15): the row and column sums of g² (adafactor_sums)
and V̂ formed block by block in the two-pass kernel, bit for bit the reference's
(factored_sums, V̂ = R C / max(mean(R), ε1)), for any thread count.

Shapes cross the kernel's boundaries: rows longer than a 4096-element block (a row sum of
several blocks), rows that straddle blocks, batched matrices (three dimensions), and a
matrix next to a vector and a 0-d parameter in the same call."""

from __future__ import annotations

import numpy as np
import pytest

import gdfast
from gdfast import _kernels, reference
from gdfast.catalogue.rules.adafactor import factored_sums

SHAPES = [(3, 2), (70, 70), (3, 5000), (2, 9000), (4, 3, 37), (2, 64, 129), (1, 1)]
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_sums_are_the_reference_bits(shape, dtype):
    g = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    # a square beyond float32, summed in double
    g[..., 0, :1] = 1e30 if dtype == np.float32 else 1e150
    row_sums = np.empty(shape[:-1] + (1,))
    col_sums = np.empty(shape[:-2] + (1, shape[-1]))
    _kernels.adafactor_sums(g, row_sums, col_sums)
    expected_rows, expected_cols = factored_sums(g)
    np.testing.assert_array_equal(row_sums, expected_rows)
    np.testing.assert_array_equal(col_sums, expected_cols)
    # and they are the sums (a wrong order or a missed element is far more than 1e-12 off)
    squares = np.square(g.astype(np.float64))
    np.testing.assert_allclose(row_sums, squares.sum(axis=-1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(col_sums, squares.sum(axis=-2, keepdims=True), rtol=1e-12)


def test_sums_refuse_bad_arrays():
    g = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="row_sums"):
        _kernels.adafactor_sums(g, np.empty((3, 1)), np.empty((1, 5)))
    with pytest.raises(ValueError, match="grad"):
        _kernels.adafactor_sums(np.ones(4, np.float32), np.empty(1), np.empty(4))
    with pytest.raises(TypeError, match="grad"):
        _kernels.adafactor_sums(g.astype(np.int32), np.empty((3, 1)), np.empty((1, 4)))


def _run(cls, shapes, dtype, threads, steps, **hyper):
    rng = np.random.default_rng(7)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    optimizer = cls(params, **hyper)
    with gdfast.threads(threads):
        for _ in range(steps):
            optimizer.step([rng.standard_normal(s).astype(dtype) for s in shapes])
    return optimizer


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "hyper",
    [{}, {"weight_decay": 0.1, "maximize": True, "eps": (1e-3, 1e-3), "d": 0.5}],
    ids=["default", "options"],
)
def test_kernel_is_the_reference_bits_for_any_thread_count(dtype, hyper):
    shapes = [(300, 700), (3, 5000), (2, 64, 129), (1000,), ()]
    slow = _run(reference.Adafactor, shapes, dtype, 1, 3, **hyper)
    for threads in (1, 2):
        fast = _run(gdfast.Adafactor, shapes, dtype, threads, 3, **hyper)
        for mine, theirs in zip(fast.params, slow.params):
            np.testing.assert_array_equal(mine, theirs)
        for name in ("row_var", "col_var", "variance"):
            for mine, theirs in zip(fast.state[name], slow.state[name]):
                np.testing.assert_array_equal(mine, theirs)
