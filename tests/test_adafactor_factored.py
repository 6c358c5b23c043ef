"""Adafactor's factored path in C (issue 15): the row and column sums of g² (adafactor_sums)
and U's scales min(r_i c_j, 1/ε1) formed block by block in the two-pass kernel, bit for bit
the reference's (factored_sums, the factors r_i = 1/√R_i, c_j = 1/√(C_j / max(mean(R), ε1))),
for any thread count; the factored U is g / √max(V̂, ε1²) to a few units in the last place.

Shapes cross the kernel's boundaries: rows longer than a 4096-element block (a row sum of
several blocks), rows that straddle blocks, batched matrices (three dimensions), and a
matrix next to a vector and a 0-d parameter in the same call."""

from __future__ import annotations

import numpy as np
import pytest

import gdfast
from gdfast import _kernels, reference
from gdfast.catalogue.rules.adafactor import factored_sums
from rules_table import at_line_offset

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


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("eps1", [None, 1e-3], ids=["machine", "1e-3"])
def test_factored_scale_edges_are_the_reference_bits(dtype, eps1):
    """Zero rows and columns (R_i = 0: the cap 1/ε1), huge and NaN gradients, in both
    backends alike."""
    rng = np.random.default_rng(3)
    grads = []
    for step in range(3):
        g = rng.standard_normal((37, 45)).astype(dtype)
        g[5] = 0  # a zero row (R_5 = 0 at step 1: r_5 = inf, capped)
        g[:, 7] = 0  # a zero column
        g[9, 9] = 1e18 if step == 1 else g[9, 9]
        if step == 2:
            g[11, 3] = np.nan
        grads.append(g)
    optimizers = [
        cls([np.ones((37, 45), dtype)], eps=(eps1, 1e-3))
        for cls in (reference.Adafactor, gdfast.Adafactor)
    ]
    for step, g in enumerate(grads):
        with np.errstate(all="ignore"):
            for optimizer in optimizers:
                optimizer.step([g.copy()])
        slow, fast = (optimizer.params[0] for optimizer in optimizers)
        np.testing.assert_array_equal(fast, slow)
        # finite until the NaN gradient, which RMS(U) then spreads over the whole tensor
        assert np.isfinite(fast).all() == (step < 2)


def test_factored_update_is_the_unfactored_formula_to_a_few_ulp():
    """U = g min(r_i c_j, 1/ε1) against g / √max(R_i C_j / max(mean(R), ε1), ε1²) in float64
    arithmetic on the same R, C (float32): the factored form differs by rounding only."""
    rng = np.random.default_rng(5)
    g = rng.standard_normal((64, 48)).astype(np.float32)
    row = (rng.random((64, 1)) + 0.1).astype(np.float32)
    col = (rng.random((1, 48)) + 0.1).astype(np.float32)
    e1 = float(np.finfo(np.float32).eps)
    denominator = np.maximum(row.mean(axis=-2, keepdims=True), e1)
    factored = g * np.minimum((1 / np.sqrt(row)) * (1 / np.sqrt(col / denominator)), 1 / e1)
    v_hat = row.astype(np.float64) * col.astype(np.float64) / float(denominator[0, 0])
    exact = g.astype(np.float64) / np.sqrt(np.maximum(v_hat, e1 * e1))
    np.testing.assert_allclose(factored, exact, rtol=4 * e1, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_same_bits_wherever_the_matrix_starts(dtype):
    """Pass 2 cuts each row where θ reaches a cache line and reads the column factors from a
    copy at θ's offset: the bits must not depend on where θ and g start (rows a whole number
    of lines long, and rows that drift across the line)."""
    rng = np.random.default_rng(5)
    shapes = [(64, 320), (33, 2101)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]

    def run(offset, grad_offset):
        optimizer = gdfast.Adafactor([at_line_offset(p, offset) for p in start])
        for grad in grads:
            optimizer.step([at_line_offset(g, grad_offset) for g in grad])
        return [p.tobytes() for p in optimizer.params]

    aligned = run(0, 0)
    for offset, grad_offset in [(1, 1), (5, 5), (12, 12), (3, 0)]:
        assert run(offset, grad_offset) == aligned, (offset, grad_offset)
