"""A forked child can train (issue 18 item 3, for src_c/hogwild.c).

libgomp's worker threads do not survive fork(); a child's first 2-thread parallel region
used to wait for them forever.  src_c/hogwild.c now runs a forked child on one thread.
The script runs in a child process with a timeout, so a hang fails instead of blocking.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import multiprocessing, os, sys
import numpy as np, scipy.sparse as sp
from gdfast import hogwild

X = sp.random(5000, 200, density=0.02, format="csr", random_state=0)
y = np.where(np.arange(5000) % 2, 1.0, -1.0)

def train(_=None):
    model = hogwild.fit_linear(X, y, mode="hogwild", n_threads=2, epochs=1)
    users = np.arange(5000) % 300
    hogwild.fit_mf(users, users % 200, np.ones(5000), mode="hogwild", n_threads=2, epochs=1)
    return float(model.decision_function(X)[0])

if __name__ == "__main__":  # spawn and forkserver workers import this file
    train()  # the parent's thread pool now exists
    start = sys.argv[1]

if __name__ == "__main__" and start == "os.fork":
    pid = os.fork()
    if pid == 0:
        train()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    print("ok")
elif __name__ == "__main__":
    with multiprocessing.get_context(start).Pool(2) as pool:
        values = pool.map(train, range(2))
    assert len(values) == 2
    print("ok")
"""


@pytest.mark.parametrize("start", ["os.fork", "fork", "forkserver", "spawn"])
def test_child_process_trains_after_threads_ran(start, tmp_path):
    script = tmp_path / "train_in_children.py"
    script.write_text(SCRIPT)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.environ.get("PYTHONPATH", ""),
            ]
        ),
    )
    try:
        process = subprocess.run(
            [sys.executable, str(script), start],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{start}: the child hung")
    assert process.returncode == 0 and process.stdout.strip() == "ok", process.stderr[-2000:]
