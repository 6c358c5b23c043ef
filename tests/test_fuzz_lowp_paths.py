"""The fused low-precision path against the staged one, bit for bit, on random layouts the
fixed table of test_lowp_fused.py leaves out (the audit's): float16 parameters and
gradients, 8-bit state with any block size, mixtures of them with master weights,
parameter copies and stochastic rounding, random sizes (zero included) and 1 or 2 threads.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import gdfast
from gdfast import _kernels
from gdfast.catalogue import CATALOGUE

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)

RULES = sorted(rule.__name__ for rule in CATALOGUE if rule.state_names and rule.elementwise)

layouts = st.fixed_dictionaries(
    {
        "param": st.sampled_from([F32, BF16, F16]),
        "grad": st.sampled_from(["param", F32]),
        "state_dtype": st.sampled_from(["float32", "bfloat16", "int8"]),
        "master_weights": st.booleans(),
        "copy": st.sampled_from([None, BF16, F16]),
        "rounding": st.sampled_from(["nearest", "stochastic"]),
        "block_size": st.sampled_from([16, 32, 48, 256, 272, 4096]),
        "seed": st.integers(0, 2**64 - 1),
    }
)


def run(rule, layout, sizes, fused, threads):
    param_dtype = layout["param"]
    grad_dtype = param_dtype if layout["grad"] == "param" else layout["grad"]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(np.float32).astype(param_dtype) for n in sizes]
    copies = None
    if layout["copy"] is not None and param_dtype == F32:
        copies = [np.zeros(n, dtype=layout["copy"]) for n in sizes]
    policy = {
        "state_dtype": layout["state_dtype"],
        "master_weights": layout["master_weights"] and param_dtype != F32,
        "rounding": layout["rounding"],
        "block_size": layout["block_size"],
        "seed": layout["seed"],
        "param_copy": copies,
    }
    cls = getattr(gdfast, rule)
    hyper = {"lr": 0.01} if "lr" in cls.hyperparameter_names and rule != "Adadelta" else {}
    optimizer = cls(params, **hyper, **policy)
    _kernels._set_fused(fused)
    try:
        with gdfast.threads(threads):
            for step in range(3):
                grng = np.random.default_rng(100 + step)
                optimizer.step(
                    [grng.standard_normal(n).astype(np.float32).astype(grad_dtype) for n in sizes]
                )
    finally:
        _kernels._set_fused(True)
    out = [p.view(np.uint8).tobytes() for p in optimizer.params]
    out += [
        b.view(np.uint8).tobytes()
        for name in sorted(optimizer.state)
        for b in optimizer.state[name]
    ]
    return out + [c.view(np.uint8).tobytes() for c in copies or ()]


@settings(max_examples=80, deadline=None)
@given(
    rule=st.sampled_from(RULES),
    layout=layouts,
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=3),
    threads=st.sampled_from([1, 2]),
)
def test_fused_equals_staged_on_random_layouts(rule, layout, sizes, threads):
    try:
        staged = run(rule, layout, sizes, False, 1)
    except (TypeError, ValueError) as error:  # a policy the rule refuses: by name
        event("refused")
        assert any(
            k in str(error)
            for k in (
                "state_dtype",
                "master_weights",
                "param_copy",
                "block_size",
                "grads",
                "params",
            )
        ), str(error)
        return
    event("compared")
    assert run(rule, layout, sizes, True, threads) == staged
