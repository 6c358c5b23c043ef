"""The fused low-precision span loops (src_c/fused.inc) against the staged path
(src_c/kernels.c, gd_staged_segment) on the same input, bit for bit: parameters, state and
parameter copies, every layout the fused loops cover (float32/bfloat16 parameter, gradient and
state, master weights, parameter copies, nearest and stochastic rounding), sizes across SIMD
vectors, staging blocks and thread chunks, 1, 2 and 3 threads.  The staged path is itself
checked against SPEC L.6 literally and against the reference (test_lowp_policy.py)."""

from __future__ import annotations

import numpy as np
import pytest

import gdfast
from gdfast import _kernels
from gdfast.catalogue import CATALOGUE

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F32 = np.dtype(np.float32)

SIZES = (1, 7, 16, 33, 2047, 2049, 70001)
RULES = [rule for rule in CATALOGUE if rule.state_names and rule.elementwise] + [
    rule for rule in CATALOGUE if rule.rule == "SGD"
]

# name: (parameter dtype, gradient dtype, policy keywords, with a bfloat16 parameter copy)
LAYOUTS = {
    "bf16 state": (F32, F32, {"state_dtype": "bfloat16"}, False),
    "bf16 state, bf16 grads, stochastic": (
        F32,
        BF16,
        {"state_dtype": "bfloat16", "rounding": "stochastic", "seed": 5},
        False,
    ),
    "bf16 grads only": (F32, BF16, {"rounding": "stochastic"}, False),
    "master": (BF16, BF16, {"master_weights": True}, False),
    "master, bf16 state, stochastic": (
        BF16,
        BF16,
        {"master_weights": True, "state_dtype": "bfloat16", "rounding": "stochastic", "seed": 9},
        False,
    ),
    "master, fp32 grads, bf16 state": (
        BF16,
        F32,
        {"master_weights": True, "state_dtype": "bfloat16"},
        False,
    ),
    "copy-out, bf16 grads, bf16 state": (F32, BF16, {"state_dtype": "bfloat16"}, True),
    "copy-out stochastic": (F32, F32, {"rounding": "stochastic", "seed": 2}, True),
    "bf16 params nearest": (BF16, BF16, {}, False),
    "bf16 params, bf16 state, stochastic": (
        BF16,
        BF16,
        {"state_dtype": "bfloat16", "rounding": "stochastic", "seed": 4},
        False,
    ),
}


def run(cls, layout, fused, threads, hyper):
    dtype, grad_dtype, policy, copy = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(np.float32).astype(dtype) for n in SIZES]
    copies = [np.zeros(n, dtype=BF16) for n in SIZES] if copy else None
    optimizer = cls(params, **hyper, param_copy=copies, **policy)
    _kernels._set_fused(fused)
    try:
        with gdfast.threads(threads):
            for step in range(3):
                grng = np.random.default_rng(100 + step)
                grads = [
                    grng.standard_normal(n).astype(np.float32).astype(grad_dtype) for n in SIZES
                ]
                optimizer.step(grads)
    finally:
        _kernels._set_fused(True)
    out = [p.view(np.uint8).tobytes() for p in optimizer.params]
    out += [
        b.view(np.uint8).tobytes()
        for name in sorted(optimizer.state)
        for b in optimizer.state[name]
    ]
    return out + [c.view(np.uint8).tobytes() for c in copies or ()]


def hypers(cls):
    """The defaults, and weight decay (L2, or decoupled where the rule has the choice) with
    maximize where the rule takes them: both sides of GD_ELEMENTS_OF_LAYOUT's branch."""
    lr = {"lr": 0.01} if "lr" in cls.hyperparameter_names and cls.rule != "Adadelta" else {}
    other = dict(lr)
    if "weight_decay" in cls.hyperparameter_names:
        other["weight_decay"] = 0.1
    if "maximize" in cls.hyperparameter_names:
        other["maximize"] = True
    return [lr, other]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("rule", RULES, ids=[r.rule for r in RULES])
def test_fused_is_the_staged_path_bitwise(rule, layout):
    cls = getattr(gdfast, rule.__name__)
    for hyper in hypers(cls):
        staged = run(cls, layout, False, 1, hyper)
        for threads in (1, 2, 3):
            assert run(cls, layout, True, threads, hyper) == staged, (hyper, threads)
