"""The fused low-precision span loops (src_c/fused.inc) against the staged path
(src_c/kernels.c, gd_staged_segment) and SPEC L.6 on the same input, bit for bit: parameters,
state and parameter copies, every element-wise rule with each of its loops (RMSprop centered
and with momentum, RAdam's rectified and unrectified steps, ASGD's copy and average, AMSGrad's
and Nadam's variants...), every layout the fused loops cover (float32/bfloat16 parameter,
gradient and state, float16 parameters and gradients with master weights, bfloat16 and
float16 parameter copies, nearest and stochastic rounding), sizes
across SIMD vectors, staging blocks and thread chunks, 1, 2 and 3 threads, and both compiled
instances of the loops (AVX-512 where the CPU has it, and AVX2).  Besides: the staged path is
SPEC L.6 applied literally around the rule's float32 kernel, and that kernel the NumPy
reference where it takes the reference's arithmetic (test_lowp_policy.py, test_equivalence.py);
here the fused loops are checked against both directly."""

from __future__ import annotations

import numpy as np
import pytest
from rules_table import uses_step_size_form
from test_lowp_policy import literal_class

import gdfast
import gdfast.reference as reference
from gdfast import _kernels
from gdfast.catalogue import CATALOGUE

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)

SIZES = (1, 7, 16, 33, 2047, 2049, 70001)
RULES = [rule for rule in CATALOGUE if rule.state_names and rule.elementwise] + [
    rule for rule in CATALOGUE if rule.rule == "SGD"
]
STEPS = 6  # RAdam rectifies from step 6 (ρ_t > 5 with β2 = 0.999)

# name: (parameter dtype, gradient dtype, policy keywords, the parameter copy's dtype or None),
# one for each (H, P, G, S) of fused.inc's compiled layouts (its index: H 1 for float16), then
# one that stages (float16 master weights with bfloat16 state); each with nearest and with
# stochastic rounding (LAYOUTS).
STORAGE = {
    "fp32 params, bf16 grads (0 1 0)": (F32, BF16, {}, None),
    "fp32 params, bf16 state (0 0 1)": (F32, F32, {"state_dtype": "bfloat16"}, None),
    "fp32 params, bf16 grads and state (0 1 1)": (F32, BF16, {"state_dtype": "bfloat16"}, None),
    "copy-out (1 0 0)": (F32, F32, {}, BF16),
    "master, fp32 grads, bf16 state (1 0 1)": (
        BF16,
        F32,
        {"master_weights": True, "state_dtype": "bfloat16"},
        None,
    ),
    "master (1 1 0)": (BF16, BF16, {"master_weights": True}, None),
    "copy-out, bf16 grads and state (1 1 1)": (F32, BF16, {"state_dtype": "bfloat16"}, BF16),
    "master, bf16 state (1 1 1)": (
        BF16,
        BF16,
        {"master_weights": True, "state_dtype": "bfloat16"},
        None,
    ),
    "bf16 params and grads, fp32 state: DeepSpeed's (2 1 0)": (BF16, BF16, {}, None),
    "bf16 params, grads and state (2 1 1)": (BF16, BF16, {"state_dtype": "bfloat16"}, None),
    "fp32 params, fp16 grads (f16 0 1 0)": (F32, F16, {}, None),
    "fp16 copy-out (f16 1 0 0)": (F32, F32, {}, F16),
    "fp16 master, fp32 grads (f16 1 0 0)": (F16, F32, {"master_weights": True}, None),
    "fp16 master, fp16 grads: torch AMP (f16 1 1 0)": (
        F16,
        F16,
        {"master_weights": True},
        None,
    ),
    "fp16 copy-out, fp16 grads (f16 1 1 0)": (F32, F16, {}, F16),
    "staged: fp16 master, bf16 state": (
        F16,
        F16,
        {"master_weights": True, "state_dtype": "bfloat16"},
        None,
    ),
}


def rounds_a_16_bit_store(dtype, policy, copy):
    """Whether a layout writes a bfloat16/float16 value (parameter, copy or state): only
    then does stochastic rounding apply (elsewhere it is refused: SPEC L.5)."""
    return dtype != F32 or copy is not None or policy.get("state_dtype") == "bfloat16"


LAYOUTS = {
    f"{name}, {rounding}": (dtype, grad_dtype, policy | {"rounding": rounding, "seed": seed}, copy)
    for seed, (name, (dtype, grad_dtype, policy, copy)) in enumerate(STORAGE.items())
    for rounding in ("nearest", "stochastic")
    if rounding == "nearest" or rounds_a_16_bit_store(dtype, policy, copy)
}

# Each rule's variants that take another span loop or other scalars in it (beyond the defaults
# and weight decay with maximize, which every rule gets: hypers()).
VARIANTS = {
    "RMSprop": [{"centered": True}, {"momentum": 0.9}, {"centered": True, "momentum": 0.9}],
    "AMSGrad": [
        {"bias_correction": False},
        {"bias_correction": True},
        {"bias_correction": True, "max_of_v_hat": True},
        {"bias_correction": True, "eps_hat": True},
    ],
    "Nadam": [{"momentum_schedule": True}],
    "AdaMax": [{"eps_inside_max": True}],
    "ASGD": [{"t0": 0.0}],  # averaging from step 3 (μ_t < 1), a copy before
}

# The fused instances this CPU runs (_kernels._set_fused's modes: 1 the widest, 2 AVX2).
INSTANCES = {_kernels._set_fused(mode): mode for mode in (1, 2)}
_kernels._set_fused(1)


def run(cls, layout, mode, threads, hyper):
    dtype, grad_dtype, policy, copy = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(np.float32).astype(dtype) for n in SIZES]
    copies = [np.zeros(n, dtype=copy) for n in SIZES] if copy is not None else None
    optimizer = cls(params, **hyper, param_copy=copies, **policy)
    _kernels._set_fused(mode)
    try:
        with gdfast.threads(threads):
            for step in range(STEPS):
                grng = np.random.default_rng(100 + step)
                grads = [
                    grng.standard_normal(n).astype(np.float32).astype(grad_dtype) for n in SIZES
                ]
                optimizer.step(grads)
    finally:
        _kernels._set_fused(1)
    out = [p.view(np.uint8).tobytes() for p in optimizer.params]
    out += [
        np.atleast_1d(b).view(np.uint8).tobytes()  # Nadam's μ product is 0-d
        for name in sorted(optimizer.state)
        for b in optimizer.state[name]
    ]
    return optimizer, out + [c.view(np.uint8).tobytes() for c in copies or ()]


def hypers(cls):
    """The defaults, weight decay (L2, or decoupled where the rule has the choice) with
    maximize where the rule takes them (both sides of GD_ELEMENTS_OF_LAYOUT's branch), and the
    rule's VARIANTS."""
    lr = {"lr": 0.01} if "lr" in cls.hyperparameter_names and cls.rule != "Adadelta" else {}
    other = dict(lr)
    if "weight_decay" in cls.hyperparameter_names:
        other["weight_decay"] = 0.1
    if "maximize" in cls.hyperparameter_names:
        other["maximize"] = True
    return [lr, other] + [lr | variant for variant in VARIANTS.get(cls.rule, [])]


def test_the_instances_this_cpu_runs():
    """Where the kernels were multiversioned, an AVX2 CPU runs the AVX2 instance and an AVX-512
    one (F, BW, VL) the AVX-512 instance, mode 2 the AVX2 one; 0 stages."""
    isa = gdfast.kernel_isa()
    assert _kernels._set_fused(0) == "staged"
    _kernels._set_fused(1)
    if isa == "default":  # no multiversioning, or a CPU without AVX2 (which stages)
        assert set(INSTANCES) <= {"build", "staged"}
    else:
        assert INSTANCES["avx2"] == 2
        assert set(INSTANCES) <= {"avx2", "avx512"}
        if "avx512" in INSTANCES:
            assert isa == "avx512f" and INSTANCES["avx512"] == 1


@pytest.mark.parametrize("rule", RULES, ids=[r.rule for r in RULES])
def test_the_layouts_called_fused_run_fused(rule):
    """Every STORAGE entry named by its (P G S) runs fused (both roundings where it rounds)
    on a CPU with a fused instance, and the one named "staged" stages: a layout missing from
    fused.inc's table would otherwise pass every bitwise test here, staged (as bfloat16
    parameters with float32 state did, at 1.25x the fused step's time)."""
    if "staged" in INSTANCES:
        pytest.skip("this CPU stages every layout (no AVX2)")
    fused = _kernels._fused_layouts(rule.kernel)
    for name, (dtype, _, policy, copy) in STORAGE.items():
        if name.startswith("staged"):
            continue
        *half, p, g, s = name.rsplit("(", 1)[1].rstrip(")").split()  # "(f16 1 1 0)": H = 1
        index = (half == ["f16"]) * 24 + int(p) * 8 + int(g) * 4 + int(s) * 2
        roundings = [0, 1] if rounds_a_16_bit_store(dtype, policy, copy) else [0]
        assert {index + r for r in roundings} <= fused, (name, index, sorted(fused))
    assert 24 + 8 + 4 + 2 not in fused  # "staged: fp16 master, bf16 state" (f16 1 1 1)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("rule", RULES, ids=[r.rule for r in RULES])
def test_fused_is_the_staged_path_and_spec_l6_bitwise(rule, layout):
    cls = getattr(gdfast, rule.__name__)
    for hyper in hypers(cls):
        optimizer, staged = run(cls, layout, 0, 1, hyper)
        for instance, mode in INSTANCES.items():
            for threads in (1, 2, 3):
                _, fused = run(cls, layout, mode, threads, hyper)
                assert fused == staged, (hyper, instance, threads)
        _, literal = run(literal_class(rule), layout, 0, 1, hyper)
        assert literal == staged, hyper
        if not uses_step_size_form(optimizer):
            _, slow = run(getattr(reference, rule.__name__), layout, 0, 1, hyper)
            assert slow == staged, (hyper, "reference")
