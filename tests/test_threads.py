"""gdfast's threads: same bits for any thread count and chunking, the thread-count API
(set_num_threads, get_num_threads, threads(), defaults from OMP_NUM_THREADS, affinity,
cgroup quota, threadpoolctl), and the bound on OS threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gdfast
from gdfast import _threads
from gdfast.rows import RowGrad

from rules_table import DTYPES, RULE_NAMES, at_line_offset

MIN = gdfast._kernels.min_elements_per_thread()
# Tensors whose boundaries fall anywhere in the chunks: tiny, odd, just past a cache line,
# several chunks long; 3 * MIN + 17 alone needs a team.
SIZES = [1, 63, 65, 3 * MIN + 17, 5, 2 * MIN - 1, 100_003]
THREAD_COUNTS = [2, 3, 7]


def run_python(code: str, env: dict | None = None, timeout: float = 120) -> str:
    """Runs `code` in a fresh interpreter with this worktree on the path; its stdout.
    `env`: variables to set, or to remove where the value is None."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def steps_with(rule, dtype, threads: int, n_steps: int = 3):
    rng = np.random.default_rng([7, RULE_NAMES.index(rule)])
    params = [rng.standard_normal(size).astype(dtype) for size in SIZES]
    grads = [[rng.standard_normal(size).astype(dtype) for size in SIZES] for _ in range(n_steps)]
    with gdfast.threads(threads):
        assert gdfast.get_num_threads() == threads
        optimizer = getattr(gdfast.optim, rule)(params)
        for grad in grads:
            optimizer.step(grad)
    return [p.tobytes() for p in optimizer.params] + [
        buffer.tobytes() for buffers in optimizer.state.values() for buffer in buffers
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_same_bits_for_1_2_3_7_threads_over_a_list_of_odd_sizes(rule, dtype):
    one = steps_with(rule, dtype, 1)
    for threads in THREAD_COUNTS:
        assert steps_with(rule, dtype, threads) == one, f"{threads} threads"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_same_bits_wherever_the_arrays_start(rule, dtype):
    """The kernels cut a segment where the parameter reaches a cache line, so that the vector
    loop loads whole lines: the bits must not depend on where the arrays start (every offset
    of a line, parameter and gradient apart or together), nor on the thread count."""
    rng = np.random.default_rng([11, RULE_NAMES.index(rule)])
    sizes = [3 * MIN + 17, 5000, 64]
    start = [rng.standard_normal(size).astype(dtype) for size in sizes]
    grads = [[rng.standard_normal(size).astype(dtype) for size in sizes] for _ in range(3)]

    def run(param_offset, grad_offset, threads):
        with gdfast.threads(threads):
            optimizer = getattr(gdfast.optim, rule)(
                [at_line_offset(p, param_offset) for p in start]
            )
            for grad in grads:
                optimizer.step([at_line_offset(g, grad_offset) for g in grad])
        return [p.tobytes() for p in optimizer.params] + [
            buffer.tobytes() for buffers in optimizer.state.values() for buffer in buffers
        ]

    aligned = run(0, 0, 1)
    lanes = 64 // np.dtype(dtype).itemsize
    for param_offset, grad_offset, threads in [
        (1, 1, 1),
        (lanes - 1, lanes - 1, 2),
        (lanes // 4, lanes // 4, 1),
        (3, 0, 2),
        (0, 5, 1),
    ]:
        assert run(param_offset, grad_offset, threads) == aligned, (param_offset, grad_offset)


def test_mixed_dtypes_in_one_step_same_bits_for_any_thread_count():
    rng = np.random.default_rng(3)

    def run(threads):
        params = [
            rng_copy.astype(dtype)
            for rng_copy, dtype in zip(start, [np.float32, np.float64, np.float32, np.float64])
        ]
        with gdfast.threads(threads):
            optimizer = gdfast.Adam(params, lr=1e-2)
            for _ in range(3):
                optimizer.step([np.ones_like(p) for p in params])
        return [p.tobytes() for p in params]

    start = [rng.standard_normal(size) for size in (2 * MIN + 3, 70_001, 3, MIN)]
    one = run(1)
    for threads in THREAD_COUNTS:
        assert run(threads) == one


@pytest.mark.parametrize("rule", ["SGD", "Adam", "RMSprop"])
def test_row_sparse_steps_same_bits_for_1_3_7_threads(rule):
    rng = np.random.default_rng(11)
    n_rows, dim = 2000, 97  # odd row length: chunks of rows end mid cache line
    table = rng.standard_normal((n_rows, dim)).astype(np.float32)
    indices = rng.integers(0, n_rows, size=5000)
    values = rng.standard_normal((indices.size, dim)).astype(np.float32)
    assert np.unique(indices).size * dim >= 3 * MIN
    results = []
    for threads in (1, 3, 7):
        with gdfast.threads(threads):
            optimizer = getattr(gdfast, rule)([table.copy()])
            for _ in range(2):
                optimizer.step([RowGrad(indices, values)])
        results.append(
            [optimizer.params[0].tobytes()]
            + [b.tobytes() for buffers in optimizer.state.values() for b in buffers]
        )
    assert results[1] == results[0] and results[2] == results[0]


def test_threads_context_manager_restores_also_on_exceptions():
    default = gdfast.get_num_threads()
    with gdfast.threads(3):
        assert gdfast.get_num_threads() == 3
        with gdfast.threads(1):
            assert gdfast.get_num_threads() == 1
        assert gdfast.get_num_threads() == 3
    assert gdfast.get_num_threads() == default
    with pytest.raises(RuntimeError, match="inside"):
        with gdfast.threads(5):
            raise RuntimeError("inside")
    assert gdfast.get_num_threads() == default
    gdfast.set_num_threads(2)
    try:
        with gdfast.threads(None):
            assert gdfast.get_num_threads() == default
        assert gdfast.get_num_threads() == 2
    finally:
        gdfast.set_num_threads(None)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (2**40, ValueError, "n: expected at most 256 threads"),
        (100_000, ValueError, "n: expected at most 256 threads"),
        (257, ValueError, "n: expected at most 256"),
        (0, ValueError, "n: expected at least 1"),
        (-3, ValueError, "n: expected at least 1"),
        (True, TypeError, "n: expected an int"),
        (2.0, TypeError, "n: expected an int"),
        ("2", TypeError, "n: expected an int"),
    ],
)
def test_bad_thread_counts_raise_and_change_nothing(bad, error, message):
    before = gdfast.get_num_threads()
    with pytest.raises(error, match=message):
        gdfast.set_num_threads(bad)
    assert gdfast.get_num_threads() == before
    with pytest.raises(error, match=message):
        with gdfast.threads(bad):
            pass
    assert gdfast.get_num_threads() == before


def test_256_threads_allowed_and_helpers_start_only_when_a_step_uses_them():
    out = run_python("""
        import numpy as np, gdfast
        from gdfast import _kernels
        gdfast.set_num_threads(256)
        assert gdfast.get_num_threads() == 256
        assert _kernels.helper_threads() == 0
        p = np.zeros(3 * _kernels.min_elements_per_thread(), np.float32)
        gdfast.SGD([p], lr=1.0).step([np.ones_like(p)])   # a team of 3 at most
        print(_kernels.helper_threads(), float(p.min()), float(p.max()))
    """)
    assert out.split() == ["2", "-1.0", "-1.0"]


def test_default_follows_omp_num_threads_and_never_exceeds_the_cpus():
    cpus = _threads.cpu_limit()
    code = "import gdfast; print(gdfast.get_num_threads())"
    assert run_python(code, {"OMP_NUM_THREADS": "1"}).strip() == "1"
    assert run_python(code, {"OMP_NUM_THREADS": "64"}).strip() == str(min(64, cpus))
    assert run_python(code, {"OMP_NUM_THREADS": "1,4"}).strip() == "1"
    assert run_python(code, {"OMP_NUM_THREADS": None}).strip() == str(cpus)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity API")
def test_default_follows_the_affinity_mask():
    out = run_python(
        """
        import os
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        import gdfast
        print(gdfast.get_num_threads())
    """,
        {"OMP_NUM_THREADS": None},
    )
    assert out.strip() == "1"


def test_cgroup_quota_v2_and_v1(tmp_path):
    (tmp_path / "v2" / "job" / "step").mkdir(parents=True)
    (tmp_path / "v2" / "job" / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "v2" / "job" / "step" / "cpu.max").write_text("max 100000\n")
    (tmp_path / "v2-cgroup").write_text("0::/job/step\n")
    assert _threads._cgroup_cpu_quota(str(tmp_path / "v2-cgroup"), str(tmp_path / "v2")) == 2
    (tmp_path / "v1" / "cpu" / "box").mkdir(parents=True)
    (tmp_path / "v1" / "cpu" / "box" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "v1" / "cpu" / "box" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "v1-cgroup").write_text("4:memory:/box\n1:cpu,cpuacct:/box\n0::/\n")
    assert _threads._cgroup_cpu_quota(str(tmp_path / "v1-cgroup"), str(tmp_path / "v1")) == 1
    (tmp_path / "v1" / "cpu" / "box" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _threads._cgroup_cpu_quota(str(tmp_path / "v1-cgroup"), str(tmp_path / "v1")) is None
    assert _threads._cgroup_cpu_quota(str(tmp_path / "missing")) is None


def test_threadpoolctl_limits_gdfast():
    pytest.importorskip("threadpoolctl")
    if not gdfast.openmp_enabled():
        pytest.skip("threadpoolctl limits gdfast through the OpenMP runtime it links")
    out = run_python(
        """
        import numpy as np, gdfast
        from gdfast import _kernels
        from threadpoolctl import threadpool_limits
        p = np.zeros(4 * _kernels.min_elements_per_thread(), np.float32)
        opt = gdfast.SGD([p], lr=1.0)
        with threadpool_limits(limits=1):
            inside = gdfast.get_num_threads()
            opt.step([np.ones_like(p)])
            helpers_inside = _kernels.helper_threads()
        outside = gdfast.get_num_threads()
        opt.step([np.ones_like(p)])
        print(inside, helpers_inside, outside, _kernels.helper_threads(), float(p.max()))
    """,
        {"OMP_NUM_THREADS": "2"},
    )
    inside, helpers_inside, outside, helpers_after, value = out.split()
    assert (inside, helpers_inside) == ("1", "0")
    assert outside == str(min(2, _threads.cpu_limit()))
    assert helpers_after == str(int(outside) - 1)
    assert value == "-2.0"
