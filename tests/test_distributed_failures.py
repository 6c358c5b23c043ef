"""Fail fast: an exception, a killed rank or a stopped rank ends the whole MPI job within a
bounded time, with a message naming the rank, however the job was launched.

Every job runs in a subprocess with a timeout, so a regression fails instead of hanging.
The jobs are launched as `mpiexec -n 4 python script.py` (no `-m mpi4py`).

Every deadline follows from one parameter, gdfast's `timeout` in these jobs: PEER_TIMEOUT,
GDFAST_TEST_PEER_TIMEOUT seconds (default 5; raise it on a slow machine).  A job must be
over within BOUND = 6 PEER_TIMEOUT of the failure (30 s at the default: the issue's
target); the tests wait for events (the job's log, its checkpoints), never for a guessed
number of seconds.  Any correct fail-fast diagnostic passes: the failing rank's own error
line, a PeerSilentError naming the silent rank, or MPICH's launcher reporting the killed
process (by pid; the job's log maps pids to ranks).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")

pytestmark = pytest.mark.mpi  # starts MPI processes: -m "not mpi" leaves them out
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
if MPIEXEC is None:  # pragma: no cover - depends on the machine
    pytest.skip("no mpiexec on PATH (pip install mpich)", allow_module_level=True)

PEER_TIMEOUT = float(os.environ.get("GDFAST_TEST_PEER_TIMEOUT", "5"))  # gdfast's `timeout`
BOUND = 6 * PEER_TIMEOUT  # the job must be over this long after the failure
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

JOB = r"""
import sys, time
import numpy as np
from mpi4py import MPI
from gdfast.distributed import generated, train
from gdfast.distributed import server as server_module

failure, marker = sys.argv[1], sys.argv[2]
comm = MPI.COMM_WORLD
data = generated("least_squares", 4096, 32)
mine = data.shard(comm.rank - 1, comm.size - 1) if comm.rank >= 1 else None
objective = data.objective


def failed():  # the moment of the failure (CLOCK_MONOTONIC: one clock for every process)
    with open(f"{marker}/failed", "w") as file:
        file.write(repr(time.monotonic()))


class FailingObjective:
    def __init__(self):
        self.calls = 0

    def loss(self, w, X, y):
        return objective.loss(w, X, y)

    def gradient(self, w, X, y):
        self.calls += 1
        if self.calls == 200:
            failed()
            raise RuntimeError("boom in a worker's gradient")
        return objective.gradient(w, X, y)


if failure == "worker-exception" and comm.rank == 2:
    objective = FailingObjective()
if failure == "server-exception" and comm.rank == 0:
    apply_push = server_module.Server.apply_push

    def failing(self, *args, **kwargs):
        if self.applied == 300:
            failed()
            raise OSError("boom in the server's update")
        apply_push(self, *args, **kwargs)

    server_module.Server.apply_push = failing


def log(line):
    with open(f"{marker}/log", "a") as file:
        file.write(line + "\n")


train("downpour", objective, np.zeros(33), mine, n_servers=1, lr=0.3, steps=10**7,
      timeout=float(sys.argv[3]), wait="sleep", log=log, log_every=100)
"""


def rank_pid(rank: int, marker: str) -> int | None:
    """The pid of MPI rank `rank` among processes whose command line has `marker`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            marker in cmdline
            and "mpiexec" not in cmdline
            and f"PMI_RANK={rank}".encode() in environ
        ):
            return int(entry.name)
    return None


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def wait_for(condition, what: str, job: subprocess.Popen, seconds: float) -> None:
    """Poll `condition()` until it holds; fail naming `what` if the job ends first or
    `seconds` pass (a start-up on a loaded machine, not a hang of gdfast)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert job.poll() is None, f"the job ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds:g} s"
        time.sleep(0.05)


def silent_peer(rank: int) -> str:
    """The PeerSilentError a rank waiting for the silent `rank` raises (transport.Link)."""
    return f"PeerSilentError: rank {rank} did not answer within {PEER_TIMEOUT:g} s"


def killed_rank_reported(rank: int, log: str, output: str) -> bool:
    """A correct diagnostic of killed `rank`: a peer's PeerSilentError naming it, or MPICH's
    launcher naming a dead process of the job by pid (usually the killed one; on a loaded
    machine sometimes one it killed itself while cleaning up) and the signal."""
    pids = dict(re.findall(r"(\d+) (?:server|worker) \(pid (\d+)\)", log))
    dead = re.search(r"PID (\d+) RUNNING AT", output)
    launcher = dead is not None and dead.group(1) in pids.values() and "signal 9" in output
    return launcher or silent_peer(rank) in output


def run_job(
    tmp_path, failure: str, signal_to: tuple[int, int] | None = None, launcher: tuple[str, ...] = ()
):
    """Launch the job; optionally send signal_to = (rank, signal) once it trains.
    Returns (the finished process, its stdout, its stderr, seconds from the failure, the
    signal or the raise, to the end of the job)."""
    script = tmp_path / f"job_{failure}.py"
    script.write_text(textwrap.dedent(JOB))
    marker = str(tmp_path)
    job = subprocess.Popen(
        [MPIEXEC, *launcher, "-n", "4", sys.executable, str(script), failure, marker]
        + [str(PEER_TIMEOUT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    stopped = None
    log = tmp_path / "log"
    try:
        began = time.monotonic()
        if signal_to is not None:
            rank, sig = signal_to
            # some training: the first worker's progress lines (every 100 steps) reach rank 0
            wait_for(lambda: _read(log).count("loss") >= 3, "training", job, 4 * BOUND)
            pid = rank_pid(rank, marker)
            assert pid is not None and job.poll() is None
            began = time.monotonic()
            os.kill(pid, sig)
            stopped = pid if sig == signal.SIGSTOP else None
        out, err = job.communicate(timeout=4 * BOUND)
        if (tmp_path / "failed").exists():  # an exception: the job wrote when it failed
            began = float(_read(tmp_path / "failed"))
        seconds = time.monotonic() - began
        print(f"{failure} {signal_to}: the job ended {seconds:.1f} s after the failure")
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
        if stopped is not None:
            for sig in (signal.SIGCONT, signal.SIGKILL):  # never leave a stopped rank
                try:
                    os.kill(stopped, sig)
                except ProcessLookupError:
                    pass
    return job, out, err, seconds


def test_an_exception_on_a_worker_aborts_the_job_naming_the_rank(tmp_path):
    job, _, err, seconds = run_job(tmp_path, "worker-exception")
    assert job.returncode != 0
    assert "rank 2: error: RuntimeError: boom in a worker's gradient" in err, err
    assert seconds < BOUND


def test_an_exception_on_a_server_aborts_the_job_naming_the_rank(tmp_path):
    job, _, err, seconds = run_job(tmp_path, "server-exception")
    assert job.returncode != 0
    assert "rank 0: error: OSError: boom in the server's update" in err, err
    assert seconds < BOUND


def test_a_stopped_server_is_named_by_the_workers_within_the_timeout(tmp_path):
    job, _, err, seconds = run_job(tmp_path, "none", signal_to=(0, signal.SIGSTOP))
    assert job.returncode != 0
    assert re.search(rf"rank [123]: error: {re.escape(silent_peer(0))}", err), err
    assert seconds < BOUND


@pytest.mark.parametrize("rank", [0, 2], ids=["server", "worker"])
def test_a_killed_rank_ends_the_job_naming_a_rank(tmp_path, rank):
    job, out, err, seconds = run_job(tmp_path, "none", signal_to=(rank, signal.SIGKILL))
    assert job.returncode != 0
    assert seconds < BOUND
    assert killed_rank_reported(rank, _read(tmp_path / "log"), out + err), out + err
