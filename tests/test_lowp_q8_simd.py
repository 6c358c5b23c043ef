"""The 8-bit encoders and decoders of src_c/q8_simd.h, each instruction-set level of them, against
the NumPy reference (SPEC L.4), bit for bit.

The level is chosen once per process from the CPU (AVX-512 VBMI, AVX-512, AVX2, portable C);
the environment variable GDFAST_Q8_SIMD lowers it, so each level runs in a subprocess of its
own.  A level the CPU lacks runs the best one it has (the test then repeats that one).
Checked: quantize/dequantize over sizes crossing the 16- and 64-element steps, several block
sizes, 1 and 2 threads, both maps, NaN/inf/zero blocks, every midpoint and its float32
neighbours (ties go to the lower code); and steps with 8-bit state of every element-wise rule
with state, the kernels' staged path against SPEC L.6 applied literally around the same
float32 kernel, 1 and 2 threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

CHECK = textwrap.dedent(
    """
    import numpy as np

    import gdfast
    from gdfast import _formats as fast
    from gdfast import formats as ref
    from gdfast import optim
    from gdfast.catalogue import CATALOGUE, bind_backend

    # SPEC L.6 applied literally (in Python, through gdfast.formats) around a rule's float32 C
    # kernel: what the kernels' staged path must give (as tests/test_lowp_policy.py does).
    def literal(rule):
        kernel = optim.KERNELS[rule.rule]

        def core(*args, **kwargs):
            kernel(*args, **kwargs)

        return bind_backend(rule, core, "literal", kernel.rows if rule.rows else None)


    def bits(x):
        return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)

    def cases(code, rng):
        # every midpoint and its two float32 neighbours, in blocks whose absmax is 1 (y = x)
        mids = ref.map_midpoints(code)
        around = np.concatenate(
            [np.nextafter(mids, np.float32(-np.inf)), mids, np.nextafter(mids, np.float32(np.inf))]
        ).astype(np.float32)
        ties = np.empty(2 * around.size, dtype=np.float32)
        ties[0::2], ties[1::2] = np.float32(1.0), around
        yield ties
        for n in (1, 15, 16, 17, 63, 64, 65, 127, 129, 255, 256, 257, 1000, 4097, 70001):
            x = (rng.standard_normal(n) * 10.0 ** rng.integers(-9, 3, n)).astype(np.float32)
            x[rng.integers(0, n, max(1, n // 300))] = 0.0
            if n > 200:
                x[:64] = 0.0  # a zero block
                x[100] = np.nan
                x[150] = np.inf
                x[190] = -np.inf
                x[-3:] = np.float32(-0.0)
            yield x
        # blocks whose scale's inverse overflows (subnormal absmax: 0 · inf would be NaN) or
        # underflows (absmax near the largest float32), beside an ordinary one
        x = rng.standard_normal(288).astype(np.float32)
        x[:96] = (rng.standard_normal(96) * 1e-40).astype(np.float32)
        x[::7] = 0.0
        x[96:192] = (rng.uniform(-1, 1, 96) * 3.4e38).astype(np.float32)
        yield x

    rng = np.random.default_rng(7)
    for name in ("DYNAMIC_SIGNED", "DYNAMIC_UNSIGNED"):
        code = getattr(ref, name)
        for x in cases(code, rng):
            for block in (16, 48, 64, 80, 256, 4096):
                q, absmax = ref.quantize_blockwise(x, code, block)
                back = ref.dequantize_blockwise(q, absmax, code, block)
                for threads in (1, 2):
                    q_c, absmax_c = fast.quantize_blockwise(x, code, block, threads=threads)
                    assert np.array_equal(q_c, q), (name, x.size, block, threads)
                    assert np.array_equal(bits(absmax_c), bits(absmax)), (name, x.size, block)
                    back_c = fast.dequantize_blockwise(q, absmax, code, block, threads=threads)
                    assert np.array_equal(bits(back_c), bits(back)), (name, x.size, block)

    # Steps with 8-bit state of every element-wise rule with state (signed and unsigned maps,
    # one to three buffers): Adam over many sizes and two blocks, the others at a block that
    # is not a power of two; 1 and 2 threads.
    for rule in CATALOGUE:
        if not rule.state_names or not rule.elementwise:
            continue
        adam = rule.rule == "Adam"
        sizes = (1, 15, 64, 65, 1000, 2049, 70001) if adam else (1, 65, 2049, 70001)
        extra = {"lr": 0.01} if "lr" in rule.hyperparameter_names and rule.rule != "Adadelta" else {}
        for block in (48, 256) if adam else (80,):
            for threads in (1, 2):
                rng = np.random.default_rng(block)
                start = [rng.standard_normal(n).astype(np.float32) for n in sizes]
                fast_opt = getattr(gdfast, rule.__name__)(
                    [p.copy() for p in start], **extra, state_dtype="int8", block_size=block
                )
                ref_opt = literal(rule)(
                    [p.copy() for p in start], **extra, state_dtype="int8", block_size=block
                )
                for step in range(3):
                    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
                    with gdfast.threads(threads):
                        fast_opt.step([g.copy() for g in grads])
                    ref_opt.step([g.copy() for g in grads])
                for a, b in zip(fast_opt.params, ref_opt.params):
                    assert np.array_equal(bits(a), bits(b)), (rule.rule, block, threads)
                assert sorted(fast_opt.state) == sorted(ref_opt.state), rule.rule
                for key in ref_opt.state:
                    for a, b in zip(fast_opt.state[key], ref_opt.state[key]):
                        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (rule.rule, key)
    print("ok")
    """
)


@pytest.mark.parametrize("level", ["", "avx512", "avx2", "portable"])
def test_q8_level_matches_reference_bitwise(level):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, GDFAST_Q8_SIMD=level)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
