"""Optimizer state bytes per parameter under the dtype policy (issue 12's memory target),
counted on the state arrays themselves: Adam keeps 8 bytes per parameter in float32 state,
4 in bfloat16, 2 + 8/block_size (<= 2.05) in 8-bit state, plus 4 for fp32 master weights;
the NumPy classes and gdfast.torch alike; building that state costs no more than its own
bytes (tracemalloc), and making it piece by piece gives the bits of the whole array stored.  bench/lowp_memory.py also measures RSS."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import gdfast
from gdfast.catalogue._policy import PIECE

ml_dtypes = pytest.importorskip("ml_dtypes")

N = 100_000
# policy keywords, parameter dtype name, expected state bytes per parameter
CASES = [
    ({}, "float32", 8.0),
    ({"state_dtype": "bfloat16"}, "float32", 4.0),
    ({"state_dtype": "int8"}, "float32", 2 + 2 * 4 * np.ceil(N / 256) / N),
    ({"master_weights": True}, "bfloat16", 12.0),
    ({"master_weights": True, "state_dtype": "bfloat16"}, "bfloat16", 8.0),
    ({"master_weights": True, "state_dtype": "int8"}, "bfloat16", 4 + 2 + 8 * np.ceil(N / 256) / N),
]


@pytest.mark.parametrize("policy, dtype, expected", CASES)
def test_numpy_classes_state_bytes_per_parameter(policy, dtype, expected):
    param = np.ones(N, dtype=ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float32)
    optimizer = gdfast.Adam([param], lr=1e-3, **policy)
    optimizer.step([np.full(N, 1e-3, dtype=param.dtype)])
    total = sum(np.asarray(a).nbytes for entry in optimizer.state.values() for a in entry)
    assert total / N == pytest.approx(expected, rel=1e-12)
    if policy.get("state_dtype") == "int8":
        assert total / N - 4 * policy.get("master_weights", False) <= 2.05


@pytest.mark.parametrize("policy, dtype, expected", CASES)
def test_torch_state_bytes_per_parameter(policy, dtype, expected):
    torch = pytest.importorskip("torch")
    import gdfast.torch as gt

    param = torch.ones(N, dtype=getattr(torch, dtype))
    param.grad = torch.full_like(param, 1e-3)
    optimizer = gt.Adam([param], lr=1e-3, **policy)
    optimizer.step()
    total = sum(
        v.numel() * v.element_size() for k, v in optimizer.state[param].items() if k != "step"
    )
    assert total / N == pytest.approx(expected, rel=1e-12)


# ---- the peak while an optimizer makes its state (built in its storage, piece by piece)
PEAK_N = 1 << 22
# what one piece of Policy.fill may hold at once, generously: its float32 values, the
# conversion's uint32/uint64 temporaries and the stored piece
PIECE_ALLOWANCE = PIECE * 64
PEAK_CASES = [case for case in CASES if case[0]]  # every low-precision policy


def traced_peak(action):
    """(the largest bytes numpy held at once during action(), its result)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = action()
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("policy, dtype, expected", PEAK_CASES)
def test_numpy_classes_build_state_at_its_own_size(policy, dtype, expected):
    """Building costs the state's bytes plus one piece's temporaries: the float32 state made
    first and converted whole peaked at ~25 bytes per parameter with bfloat16 state."""
    param = np.ones(PEAK_N, dtype=ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float32)
    peak, optimizer = traced_peak(lambda: gdfast.Adam([param], lr=1e-3, **policy))
    state = sum(np.asarray(a).nbytes for entry in optimizer.state.values() for a in entry)
    assert state / PEAK_N == pytest.approx(expected, rel=1e-2)
    assert state <= peak <= state + PIECE_ALLOWANCE


@pytest.mark.parametrize("policy, dtype, expected", PEAK_CASES)
def test_torch_builds_state_without_numpy_temporaries(policy, dtype, expected):
    """gdfast.torch makes its state at the first step: the numpy memory of that step is the
    8-bit scales and one piece's temporaries (the whole state converted at once held ~12
    bytes per parameter of numpy temporaries with bfloat16 state).  Its tensors' bytes are
    checked above; torch's own allocations are out of tracemalloc's sight."""
    torch = pytest.importorskip("torch")
    import gdfast.torch as gt

    param = torch.ones(PEAK_N, dtype=getattr(torch, dtype))
    param.grad = torch.full_like(param, 1e-3)
    optimizer = gt.Adam([param], lr=1e-3, **policy)
    peak, _ = traced_peak(optimizer.step)
    scales = sum(
        v.numel() * v.element_size() for k, v in optimizer.state[param].items() if "absmax" in k
    )
    assert peak <= scales + PIECE_ALLOWANCE


# ---- ... with the bits of the whole array stored at once
PIECES_N = 2 * PIECE + 37  # three pieces, the last short; block size 48 does not divide PIECE
INITIAL = [  # rule, its arguments, {state entry: its initial value}, torch's names
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.3}, {"sum_sq": 0.3}, {"sum_sq": "sum"}),
    ("Rprop", {"lr": 0.1}, {"prev": 0.0, "step_size": 0.1}, {}),
]


def whole_array_stored(policy, fmt, value):
    return policy.store(fmt, np.full(PIECES_N, value, dtype=np.float32))


def blocks(state_dtype):
    """Blocks of 48 (pieces cross them) where there are blocks: block_size is refused
    with any state but 8-bit (SPEC L.5)."""
    return {"block_size": 48} if state_dtype == "int8" else {}


@pytest.mark.parametrize("state_dtype", ["bfloat16", "int8"])
@pytest.mark.parametrize("rule, arguments, initial, torch_names", INITIAL)
def test_state_made_in_pieces_is_the_whole_array_stored(
    rule, arguments, initial, torch_names, state_dtype
):
    param = np.random.default_rng(0).standard_normal(PIECES_N).astype(np.float32)
    optimizer = getattr(gdfast, rule)(
        [param], state_dtype=state_dtype, **blocks(state_dtype), **arguments
    )
    for name, value in initial.items():
        codes, scales = whole_array_stored(optimizer.policy, optimizer._state_formats[name], value)
        np.testing.assert_array_equal(optimizer.state[name][0], codes)
        if scales is not None:
            np.testing.assert_array_equal(optimizer.state[f"{name}_absmax"][0], scales)

    torch = pytest.importorskip("torch")
    import gdfast.torch as gt

    tensor = torch.from_numpy(param.copy())
    optimizer = getattr(gt, rule)(
        [tensor], state_dtype=state_dtype, **blocks(state_dtype), **arguments
    )
    group = optimizer.param_groups[0]
    state = optimizer._create_state(group, tensor)
    for name, value in initial.items():
        name = torch_names.get(name, name)
        fmt = optimizer._state_format(group, name)
        codes, scales = whole_array_stored(optimizer.policy, fmt, value)
        stored = state[name].view(torch.int16 if fmt == "bfloat16" else torch.uint8).numpy()
        np.testing.assert_array_equal(stored.view(codes.dtype), codes)
        if scales is not None:
            np.testing.assert_array_equal(state[f"{name}_absmax"].numpy(), scales)


def test_master_weights_are_the_parameter_widened_exactly():
    """Every bfloat16 bit pattern, NaN payloads included, across pieces."""
    bits = np.arange(PIECES_N, dtype=np.uint32).astype(np.uint16)
    param = bits.view(ml_dtypes.bfloat16)
    optimizer = gdfast.Adam([param], lr=1e-3, master_weights=True)
    expected = (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    np.testing.assert_array_equal(
        optimizer.state["master"][0].view(np.uint32), expected.view(np.uint32)
    )
