"""After a kernel ran with two threads, a child process made by os.fork(), by multiprocessing
(fork, forkserver, spawn) or by a torch DataLoader worker runs large steps, with its own
helper threads, and gets the parent's bits.  Each scenario runs in its own session with a
timeout, and the whole session is killed on timeout, so a hang fails the test instead of
hanging the suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 120  # seconds; a healthy run takes a few (spawn and torch imports dominate)

COMMON = """
import hashlib, os, sys
import numpy as np
import gdfast
from gdfast import _kernels

SIZE = 8 * _kernels.min_elements_per_thread() + 5   # a team of two at least

def train(threads):
    rng = np.random.default_rng(0)
    param = rng.standard_normal(SIZE).astype(np.float32)
    grad = rng.standard_normal(SIZE).astype(np.float32)
    with gdfast.threads(threads):
        optimizer = gdfast.Adam([param])
        for _ in range(5):
            optimizer.step([grad])
    return hashlib.sha256(param.tobytes()).hexdigest()

def child_work(_=None):
    before = _kernels.helper_threads()
    digest = train(2)
    return before, _kernels.helper_threads(), digest
"""


def run_scenario(tmp_path, body: str) -> str:
    script = tmp_path / "scenario.py"
    script.write_text(COMMON + textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the scenario and every child it made
        process.communicate()
        pytest.fail(f"hung: no result within {TIMEOUT} s")
    assert process.returncode == 0, err
    return out


def check(out: str, children: int) -> None:
    lines = out.split()
    expected, parent_helpers = lines[0], int(lines[1])
    assert parent_helpers >= 1  # the parent's step did run with a helper
    results = lines[2:]
    assert len(results) == 3 * children
    for i in range(children):
        before, after, digest = results[3 * i : 3 * i + 3]
        assert digest == expected
        assert int(after) >= 1  # the child has helpers of its own: reinitialised, not serial
        assert int(before) in (0, int(after))


def test_os_fork_child_runs_large_steps_with_its_own_helpers(tmp_path):
    out = run_scenario(
        tmp_path,
        """
        expected = train(1)
        train(2)
        print(expected, _kernels.helper_threads())
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            before = _kernels.helper_threads()
            os.write(write, " ".join(map(str, child_work())).encode())
            os._exit(0 if before == 0 else 3)
        os.close(write)
        answer = os.read(read, 1000).decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        print(answer)
        assert train(2) == expected   # the parent's helpers still work
    """,
    )
    check(out, 1)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_children_run_large_steps(tmp_path, method):
    out = run_scenario(
        tmp_path,
        f"""
        import multiprocessing
        if __name__ == "__main__":
            expected = train(1)
            train(2)
            print(expected, _kernels.helper_threads())
            with multiprocessing.get_context("{method}").Pool(2) as pool:
                for result in pool.map(child_work, range(2)):
                    print(*result)
    """,
    )
    check(out, 2)


def test_torch_dataloader_workers_run_large_steps(tmp_path):
    pytest.importorskip("torch")
    out = run_scenario(
        tmp_path,
        """
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Steps(Dataset):
            def __len__(self):
                return 2
            def __getitem__(self, i):
                return " ".join(map(str, child_work()))

        if __name__ == "__main__":
            expected = train(1)
            train(2)
            print(expected, _kernels.helper_threads())
            loader = DataLoader(Steps(), batch_size=None, num_workers=2,
                                multiprocessing_context="fork")
            for item in loader:
                print(item)
    """,
    )
    check(out, 2)
