"""gdfast.distributed under `mpiexec -n 4` (mpi4py + MPICH, the `mpi` extra).

Every job runs in a subprocess with a timeout: a hang fails the test instead of CI.
Each rank uses one OpenMP/BLAS thread.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")

pytestmark = pytest.mark.mpi  # starts MPI processes: -m "not mpi" leaves them out
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
if MPIEXEC is None:  # pragma: no cover - depends on the machine
    pytest.skip("no mpiexec on PATH (pip install mpich)", allow_module_level=True)

from gdfast.distributed import generated  # noqa: E402
from test_distributed_failures import (  # noqa: E402
    BOUND,
    PEER_TIMEOUT,
    rank_pid,
    silent_peer,
    wait_for,
)

TIMEOUT = 60
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def mpirun(ranks: int, *args: str, timeout: float = TIMEOUT, script: str | None = None):
    command = [MPIEXEC, "-n", str(ranks), sys.executable]
    command += [script] if script else ["-m", "gdfast.distributed", "train"]
    return subprocess.run(
        command + list(args), capture_output=True, text=True, timeout=timeout, env=ENV
    )


def final_loss(output: str) -> float:
    match = re.search(r"final loss (\S+)", output)
    assert match, output
    return float(match.group(1))


def optimum(kind: str = "least_squares") -> float:
    data = generated(kind, 4096, 32)
    w = np.linalg.lstsq(data.X, data.y, rcond=None)[0]
    return data.objective.loss(w, data.X, data.y)


CONVERGENCE = {
    "downpour": ["--algorithm", "downpour", "--lr", "0.3"],
    "downpour-2-servers": [
        "--algorithm",
        "downpour",
        "--lr",
        "0.3",
        "--servers",
        "2",
        "--n-fetch",
        "2",
        "--n-push",
        "2",
    ],
    "downpour-yield": ["--algorithm", "downpour", "--lr", "0.3", "--wait", "yield"],
    "downpour-backoff": ["--algorithm", "downpour", "--lr", "0.3", "--wait", "backoff"],
    "adaptive_revision-2-servers-fetch-every-step-push-every-3": [
        "--algorithm",
        "adaptive_revision",
        "--lr",
        "0.3",
        "--servers",
        "2",
        "--n-push",
        "3",
    ],
    "adaptive_revision": ["--algorithm", "adaptive_revision", "--lr", "0.3"],
    "easgd": ["--algorithm", "easgd", "--lr", "0.05", "--tau", "4"],
    "eamsgd": ["--algorithm", "eamsgd", "--lr", "0.01", "--tau", "4"],
    "easgd-synchronous": ["--algorithm", "easgd", "--synchronous", "--lr", "0.05"],
}


@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_each_algorithm_converges_on_four_ranks(name):
    run = mpirun(4, *CONVERGENCE[name], "--steps", "800", "--batch-size", "32")
    assert run.returncode == 0, run.stderr
    start = generated("least_squares", 4096, 32)
    initial = start.objective.loss(np.zeros(33), start.X, start.y)
    loss = final_loss(run.stdout)
    assert loss < 1.2 * optimum() < 1e-3 * initial, run.stdout


def test_logistic_regression_on_scikit_learn_data():
    pytest.importorskip("sklearn")
    # one worker: it takes every step, so its progress lines are certain
    run = mpirun(
        2,
        "--algorithm",
        "adaptive_revision",
        "--data",
        "breast_cancer",
        "--lr",
        "0.3",
        "--steps",
        "400",
        "--log-every",
        "200",
    )
    assert run.returncode == 0, run.stderr
    assert final_loss(run.stdout) < 0.15  # from log 2 = 0.69 at w = 0
    assert "step      200" in run.stdout  # progress printed by rank 0


def test_synchronous_easgd_one_rank_rho_zero_equals_sgd(tmp_path):
    script = tmp_path / "sync.py"
    script.write_text(
        textwrap.dedent("""
        import numpy as np, gdfast
        from gdfast.distributed import train, generated
        data = generated("logistic", 512, 6, seed=3)
        w = np.zeros(7)
        result = train("easgd", data.objective, w, (data.X, data.y), synchronous=True,
                       rho=0.0, lr=0.2, steps=300, batch_size=512, seed=1)
        x = np.zeros(7)
        sgd = gdfast.SGD(x, lr=0.2)
        rows = np.random.default_rng([1, 0, 0])
        for _ in range(300):
            batch = rows.integers(512, size=512)
            sgd.step(data.objective.gradient(x, data.X[batch], data.y[batch]))
        # rho = 0: the center stays at the start, the worker is plain SGD
        assert np.array_equal(result.params, np.zeros(7))
        print("worker equals SGD:", bool(np.array_equal(result.local_params, x)))
    """)
    )
    run = mpirun(1, script=str(script))
    assert run.returncode == 0, run.stderr
    assert "worker equals SGD: True" in run.stdout


# ----------------------------------------------------------------- bad configurations
def assert_fails_on_every_rank(run, message: str, ranks: int = 4):
    assert run.returncode != 0
    for rank in range(ranks):
        assert re.search(rf"rank {rank}: error: .*{message}", run.stderr), run.stderr


def test_n_fetch_zero_fails_fast_on_every_rank():
    began = time.perf_counter()
    run = mpirun(4, "--n-fetch", "0")
    assert_fails_on_every_rank(run, r"n_fetch: expected an int >= 1, got 0")
    assert time.perf_counter() - began < 20


def test_more_servers_than_ranks_fails_fast_on_every_rank():
    run = mpirun(4, "--servers", "4")
    assert_fails_on_every_rank(run, r"n_servers: 4 server\(s\) need at least 5 ranks")


MISMATCH = """
import sys
import numpy as np
from mpi4py import MPI
from gdfast.distributed import DistributedConfigError, LeastSquares, train
comm = MPI.COMM_WORLD
case = sys.argv[1]
size = 9 if (case == "params" and comm.rank == 2) else 8
columns = 7 if (case == "data" and comm.rank == 3) else size
X = np.ones((16, columns)); y = np.ones(16)
try:
    train("downpour", LeastSquares(), np.zeros(size), (X, y), steps=10)
except DistributedConfigError as error:
    print(f"rank {comm.rank}: error: {error}", file=sys.stderr, flush=True)
    comm.Barrier()
    sys.exit(3)
"""


def test_mismatched_parameter_shapes_fail_fast_on_every_rank(tmp_path):
    script = tmp_path / "mismatch.py"
    script.write_text(MISMATCH)
    run = mpirun(4, "params", script=str(script))
    assert_fails_on_every_rank(
        run,
        r"params \(shape, dtype\): rank 2 has \(\(9,\), "
        r"'float64'\) but rank 0 has \(\(8,\), 'float64'\)",
    )
    run = mpirun(4, "data", script=str(script))
    assert_fails_on_every_rank(run, r"rank 3: data: X has 7 columns but params has 8")


# ------------------------------------------------------------------ kill and resume
# Few features, a small rate and large batches: run-to-run noise in the final loss ~0.1%,
# so a 1% tolerance tests the resume and not luck.
# Two servers: the resume must pick an update count that both have saved.
KILL_RUN = [
    "--algorithm",
    "downpour",
    "--servers",
    "2",
    "--features",
    "8",
    "--lr",
    "0.05",
    "--steps",
    "6000",
    "--batch-size",
    "512",
    "--checkpoint-every",
    "200",
]


def latest(directory: Path, role: str = "server", index: int = 0) -> Path | None:
    """The checkpoint file of `role` `index` with the largest update count."""
    found = sorted(directory.glob(f"{role}-{index}-*.npz"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def uninterrupted_loss(tmp_path_factory):
    run = mpirun(4, *KILL_RUN, "--checkpoint-dir", str(tmp_path_factory.mktemp("full")))
    assert run.returncode == 0, run.stderr
    return final_loss(run.stdout)


FAILURES = {
    "kill-worker": (2, signal.SIGKILL),
    "kill-server": (0, signal.SIGKILL),
    "stop-server": (0, signal.SIGSTOP),
    "worker-exception": (2, None),
    "server-exception": (0, None),
}

# The command line's job with an exception on one rank once server 0 has saved at 1000
# updates or more: python failing_cli.py <failure> <checkpoint dir> <train arguments>
FAILING_CLI = """
import sys
from pathlib import Path
from mpi4py import MPI
from gdfast.distributed import objectives, server
from gdfast.distributed.__main__ import main

failure, directory = sys.argv[1], Path(sys.argv[2])
rank = MPI.COMM_WORLD.rank


def saved_1000():
    return any(int(p.stem.split("-")[-1]) >= 1000 for p in directory.glob("server-0-*.npz"))


if failure == "worker-exception" and rank == 2:
    gradient = objectives.LeastSquares.gradient

    def failing_gradient(self, *args):
        if saved_1000():
            raise RuntimeError("boom in a worker's gradient")
        return gradient(self, *args)

    objectives.LeastSquares.gradient = failing_gradient
if failure == "server-exception" and rank == 0:
    apply_push = server.Server.apply_push

    def failing_push(self, *args, **kwargs):
        if saved_1000():
            raise OSError("boom in the server's update")
        return apply_push(self, *args, **kwargs)

    server.Server.apply_push = failing_push
sys.exit(main(["train", *sys.argv[3:]]))
"""


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_resume_after_a_failure_reaches_the_uninterrupted_loss(
    tmp_path, uninterrupted_loss, failure
):
    """Fail rank 0 (a server) or 2 (a worker) after >= 1000 updates (a signal, or an
    exception), resume from the largest count both servers saved, and end within 1% of
    the uninterrupted loss."""
    rank, sig = FAILURES[failure]
    killed_dir = tmp_path / "killed"
    if sig is None:
        script = tmp_path / "failing_cli.py"
        script.write_text(FAILING_CLI)
        program = [str(script), failure, str(killed_dir)]
    else:
        program = ["-m", "gdfast.distributed", "train"]
    command = [
        MPIEXEC,
        "-n",
        "4",
        sys.executable,
        *program,
        *KILL_RUN,
        "--checkpoint-dir",
        str(killed_dir),
        "--timeout",
        str(PEER_TIMEOUT),
    ]
    job = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    pid = None
    try:

        def saved_1000() -> bool:
            checkpoint = latest(killed_dir)
            return checkpoint is not None and int(checkpoint.stem.split("-")[-1]) >= 1000

        if sig is not None:
            wait_for(saved_1000, "checkpoint at 1000 updates", job, 4 * BOUND)
            assert job.poll() is None, "the job ended before it could be failed"
            pid = rank_pid(rank, str(killed_dir))
            assert pid is not None
            os.kill(pid, sig)
        _, err = job.communicate(timeout=8 * BOUND)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
        for cleanup in (signal.SIGCONT, signal.SIGKILL) if sig == signal.SIGSTOP else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, cleanup)
    assert job.returncode != 0  # fail-stop: the job died with its rank
    if sig is None:
        assert re.search(rf"rank {rank}: error: \w+Error: boom in", err), err
    if sig == signal.SIGSTOP:
        # the stopped server is named by a worker waiting for it, or its silence shows first
        # as that worker's silence to the other server: either way a PeerSilentError within
        # the deadline aborts the job
        assert (
            silent_peer(0) in err or f"sent nothing to server rank 1 for {PEER_TIMEOUT:g} s" in err
        ), err
    with np.load(latest(killed_dir), allow_pickle=False) as saved:
        budget = int(saved["count"][1])
    counts = [
        {int(p.stem.split("-")[-1]) for p in killed_dir.glob(f"server-{s}-*.npz")} for s in (0, 1)
    ]
    common = max(counts[0] & counts[1])
    assert 1000 <= common < budget

    resumed = mpirun(4, *KILL_RUN, "--checkpoint-dir", str(killed_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed at {common}," in resumed.stdout, resumed.stdout
    assert re.search(rf"\b{budget} updates", resumed.stdout), resumed.stdout
    loss = final_loss(resumed.stdout)
    print(
        f"{failure}: resumed at {common} of {budget}, final loss {loss:.6g} against "
        f"{uninterrupted_loss:.6g} uninterrupted ({loss / uninterrupted_loss - 1:+.3%})"
    )
    assert abs(loss - uninterrupted_loss) <= 0.01 * uninterrupted_loss


def test_resume_refuses_a_checkpoint_of_another_algorithm(tmp_path):
    first = mpirun(
        3,
        "--algorithm",
        "downpour",
        "--steps",
        "20",
        "--checkpoint-every",
        "10",
        "--checkpoint-dir",
        str(tmp_path),
    )
    assert first.returncode == 0, first.stderr
    run = mpirun(
        3,
        "--algorithm",
        "adaptive_revision",
        "--steps",
        "20",
        "--resume",
        "--checkpoint-dir",
        str(tmp_path),
    )
    assert_fails_on_every_rank(
        run,
        r"written by algorithm 'downpour', this job runs "
        r"'adaptive_revision'",
        ranks=3,
    )


@pytest.mark.parametrize("algorithm", ["adaptive_revision", "eamsgd"])
def test_resuming_a_finished_job_restores_its_exact_state(tmp_path, algorithm):
    """The last checkpoint holds the whole server state: resuming a job that had spent
    its budget applies nothing and returns the very same parameters."""
    args = [
        "--algorithm",
        algorithm,
        "--lr",
        "0.05",
        "--steps",
        "120",
        "--checkpoint-every",
        "50",
        "--checkpoint-dir",
        str(tmp_path),
    ]
    first = mpirun(3, *args)
    assert first.returncode == 0, first.stderr
    with np.load(latest(tmp_path), allow_pickle=False) as saved:
        names = set(saved.files)
        count = [int(c) for c in saved["count"]]
    expected = {
        "adaptive_revision": {
            "array/params",
            "array/gbar",
            "array/sum_sq",
            "array/sqrt_sum_sq_max",
            "eps",
        },
        "eamsgd": {"array/params"},
    }[algorithm]
    assert expected <= names and count[0] == count[1]
    again = mpirun(3, *args, "--resume")
    assert again.returncode == 0, again.stderr
    assert f"resumed at {count[0]}" in again.stdout
    assert final_loss(again.stdout) == final_loss(first.stdout)


def test_synchronous_easgd_resumes_from_its_checkpoint(tmp_path):
    args = [
        "--algorithm",
        "easgd",
        "--synchronous",
        "--lr",
        "0.05",
        "--checkpoint-every",
        "50",
        "--checkpoint-dir",
        str(tmp_path),
    ]
    first = mpirun(3, *args, "--steps", "200")
    assert first.returncode == 0, first.stderr
    longer = mpirun(3, *args, "--steps", "400", "--resume")
    assert longer.returncode == 0, longer.stderr
    assert "resumed at 200" in longer.stdout
    assert final_loss(longer.stdout) < final_loss(first.stdout)
