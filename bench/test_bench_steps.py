"""Step time of every rule and dtype at several sizes, next to the roofline loop with the
same memory traffic, the NumPy reference and torch.optim (when importable).

    python -m pytest bench/ --benchmark-only --benchmark-group-by=param:rule,param:dtype,param:size
"""

from __future__ import annotations

import numpy as np
import pytest

from gdfast import bench, optim

RULES = [cls.__name__ for cls in optim.OPTIMIZERS]
SIZES = [1_000, 100_000, 10_000_000]
DTYPES = ["float32", "float64"]
BACKENDS = ["gdfast", "roofline", "reference", "torch-for-loop", "torch-foreach", "torch-fused"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", SIZES + [bench.MODEL])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", RULES)
def test_step(benchmark, rule, dtype, size, backend):
    if backend.startswith("torch") and not bench.torch_available():
        pytest.skip("torch is not installed (pip install torch==2.13.0)")
    if backend == "reference" and size == 10_000_000:
        pytest.skip("the NumPy reference at 1e7 takes seconds per round; see `gdfast bench`")
    shapes = bench.model_shapes() if size == bench.MODEL else [(size,)]
    case = bench.Case(
        rule,
        np.dtype(dtype),
        shapes,
        with_reference=backend == "reference",
        with_torch=backend.startswith("torch"),
    )
    if backend not in case.steps:
        pytest.skip(f"torch has no {backend} implementation of {rule}")
    benchmark.extra_info["bytes_per_step"] = case.bytes
    benchmark(case.steps[backend])
    benchmark.extra_info["gbps"] = case.bytes / benchmark.stats.stats.median / 1e9
