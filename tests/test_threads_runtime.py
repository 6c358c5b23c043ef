"""The thread runtime on a machine where helpers cannot gain (src_c/threads.inc, GD_GAIN):
two threads squeezed onto one CPU send steps to the caller alone, with the same bits; a
forked child judges its own machine afresh.  Each case runs in a fresh interpreter, so
that no earlier step of the test session has taught the runtime anything."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 120  # seconds; a healthy run takes about one

COMMON = """
import hashlib, os
import numpy as np
import gdfast
from gdfast import _kernels

SIZE = 6 * _kernels.min_elements_per_thread() + 5   # a team of two, several chunks

def train(threads, steps):
    rng = np.random.default_rng(0)
    param = rng.standard_normal(SIZE).astype(np.float32)
    grad = rng.standard_normal(SIZE).astype(np.float32)
    with gdfast.threads(threads):
        optimizer = gdfast.Adam([param])
        for _ in range(steps):
            optimizer.step([grad])
    return hashlib.sha256(param.tobytes()).hexdigest()
"""


def run_python(body: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-c", COMMON + textwrap.dedent(body)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_two_threads_on_one_cpu_run_most_steps_on_the_caller_alone_same_bits():
    # The helper inherits the caller's affinity: both share one CPU, so a step with the
    # helper can never beat the caller alone, and the runtime must notice and stop waking
    # it, apart from rare tries.
    steps = 300
    expected, stats_steps, backed_off, slower = run_python(
        f"""
        os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
        expected = train(1, {steps})
        assert train(2, {steps}) == expected
        stats = _kernels.thread_stats()
        print(expected, stats["steps"], stats["backed_off"], stats["slower"])
        """
    )
    stats_steps, backed_off, slower = int(stats_steps), int(backed_off), int(slower)
    assert stats_steps == steps
    assert steps - backed_off >= 1  # the first step tried the helper
    assert backed_off >= steps // 3, (backed_off, steps)
    assert slower <= steps - backed_off


def test_forked_child_forgets_the_parents_verdict_and_tries_its_helpers():
    # The parent learns on one CPU that helpers lose; the child, free to use every CPU the
    # parent could, starts with fresh counts and its first step uses a helper.
    if not hasattr(os, "fork") or not hasattr(os, "sched_setaffinity"):
        pytest.skip("needs os.fork and CPU affinity")
    out = run_python(
        """
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        expected = train(1, 100)
        assert train(2, 100) == expected
        parent = _kernels.thread_stats()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.sched_setaffinity(0, cpus)
            fresh = _kernels.thread_stats()
            digest = train(2, 1)
            stats = _kernels.thread_stats()
            os.write(write, f"{fresh['steps']} {stats['steps']} {stats['backed_off']} "
                            f"{_kernels.helper_threads()} {digest}".encode())
            os._exit(0)
        os.close(write)
        answer = os.read(read, 1000).decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        print(parent["backed_off"], train(1, 1), answer)
        """
    )
    parent_backed_off, expected_one_step = int(out[0]), out[1]
    fresh_steps, steps, backed_off, helpers, digest = out[2:]
    assert parent_backed_off >= 1  # the parent had learnt to back off
    assert (int(fresh_steps), int(steps), int(backed_off)) == (0, 1, 0)
    assert int(helpers) >= 1
    assert digest == expected_one_step
