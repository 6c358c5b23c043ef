"""gdfast.Muon against its NumPy reference over random shapes and options (the audit's).

The C backend (two kernels with the reference's own Newton–Schulz between them) must give
the reference's bits for any shape Muon takes (2-D, 1-D and 0-d as a row, >= 3-D as
(shape[0], rest), zero-size), dtype, option and thread count; and bad hyper-parameters
must leave parameters, state and step counts bitwise unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gdfast
from gdfast import reference
from fuzzing import snapshot

SHAPES = [(), (1,), (7,), (1, 1), (3, 4), (4, 3), (17, 5), (2, 3, 4), (0, 3), (3, 0), (2, 0, 2)]

options = st.fixed_dictionaries(
    {
        "lr": st.sampled_from([0.0, 1e-3, 0.02, 0.5]),
        "momentum": st.sampled_from([0.0, 0.5, 0.95, 1.0]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "nesterov": st.booleans(),
        "ns_steps": st.integers(0, 6),
        "match_rms_adamw": st.booleans(),
        "maximize": st.booleans(),
        "eps": st.sampled_from([1e-7, 1.0]),
    }
)


def _arrays(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(st.sampled_from(SHAPES), min_size=1, max_size=4),
    dtype=st.sampled_from([np.float32, np.float64]),
    hyper=options,
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_the_c_backend_gives_the_references_bits(shapes, dtype, hyper, threads, seed):
    ours, theirs = _arrays(shapes, dtype, seed), _arrays(shapes, dtype, seed)
    fast, ref = gdfast.Muon(ours, **hyper), reference.Muon(theirs, **hyper)
    try:
        gdfast.set_num_threads(threads)
        for step in range(3):
            grads = _arrays(shapes, dtype, seed + 1 + step)
            fast.step(grads)
            ref.step([g.copy() for g in grads])
    finally:
        gdfast.set_num_threads(None)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.tobytes() == b.tobytes(), f"params[{k}] {a.shape}"
        assert (
            fast.state["momentum_buffer"][k].tobytes() == ref.state["momentum_buffer"][k].tobytes()
        )


BAD = {
    "ns_coefficients": [(1.0, 2.0), (1.0, float("nan"), 2.0), "abc", (1, 2, 3, 4)],
    "ns_steps": [-1, 100, 2.5, True, "5"],
    "eps": [0.0, -1.0, float("nan")],
    "lr": [-1.0, float("inf")],
    "momentum": [-0.5, float("nan")],
    "nesterov": [2, "yes"],
}


@pytest.mark.parametrize("backend", [gdfast, reference])
@pytest.mark.parametrize(
    "name, value", [(n, v) for n, values in BAD.items() for v in values], ids=repr
)
def test_a_bad_hyperparameter_changes_nothing(backend, name, value):
    params = _arrays([(4, 3), (5,)], np.float64, 0)
    optimizer = backend.Muon(params, lr=0.02)
    optimizer.step(_arrays([(4, 3), (5,)], np.float64, 1))
    before = snapshot([optimizer])
    with pytest.raises((TypeError, ValueError), match=name):
        setattr(optimizer, name, value)
        optimizer.step(_arrays([(4, 3), (5,)], np.float64, 2))
    assert snapshot([optimizer]) == before
    with pytest.raises((TypeError, ValueError), match=name):
        backend.Muon(_arrays([(4, 3)], np.float64, 0), **{name: value})


@pytest.mark.parametrize("backend", [gdfast, reference])
def test_a_bad_gradient_among_good_ones_changes_nothing(backend):
    params = _arrays([(4, 3), (5,), (2, 2, 2)], np.float32, 0)
    optimizer = backend.Muon(params, lr=0.02)
    optimizer.step(_arrays([(4, 3), (5,), (2, 2, 2)], np.float32, 1))
    before = snapshot([optimizer])
    bad_grads = [
        [np.ones((4, 3), np.float32), np.ones(5, np.float32), np.ones((2, 2), np.float32)],
        [np.ones((4, 3), np.float32), np.ones(5, np.float64), np.ones((2, 2, 2), np.float32)],
        [np.ones((4, 3), np.float32), np.ones(5, np.float32)],
        [np.ones((4, 3), np.float32), np.ones(5, np.complex64), np.ones((2, 2, 2), np.float32)],
        [np.ones((4, 3), np.float32), None, np.ones((2, 2, 2), np.int32)],
    ]
    for grads in bad_grads:
        with pytest.raises((TypeError, ValueError), match="grad"):
            optimizer.step(grads)
        assert snapshot([optimizer]) == before
