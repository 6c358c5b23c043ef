"""Messages between ranks: tags, shards, and waiting with a deadline.

Every wait of the job goes through `Link.wait`, which tests the requests, idles between
tests the way `wait` says, and raises PeerSilentError naming the ranks that have not
answered once `timeout` seconds have passed.  Nothing in the job blocks inside MPI with
no deadline after start-up, so a stopped (SIGSTOP) or vanished peer becomes an error on
the ranks waiting for it; `abort_on_error` then turns that error, like any other
exception on any rank, into a message naming the rank and an MPI_Abort of the whole job,
however the job was launched.

Protocol, worker → server s (tags below):
    FETCH      ()                       → STATUS [stop, applied, budget], PARAMS x[s]
    PUSH       bytes: r, the numbers of r fetches, then r rows of the shard's values:
               Downpour [Σ g] (r = 1); AdaptiveRevision [g_1 .. g_r], one per fetch the
               gradients were computed on.  A worker numbers its fetches 0, 1, 2, ... (the
               servers count them alike); an AdaptiveRevision server keeps the ḡ it had
               when it answered each fetch (McMahan & Streeter's ḡ_old, server.SentGbar)
               until a push shows the worker has moved past it, so ḡ never travels
    EXCHANGE   x_i[s]                   → STATUS, DELTA d = α (x_i − x̃)   (EASGD)
    HEARTBEAT  ()                       the worker is alive (sent when it has been quiet)
  sparse=True (only the coordinates a worker touches; int64 indices into the shard):
    SPARSE_FETCH  indices               → STATUS, PARAMS x[s][indices]
    SPARSE_PUSH   bytes: r, r fetch numbers, k, k indices, then r rows of k values
    DONE       ()                       the worker has stopped
    LOG        [steps, seconds, loss]   progress from the first worker to rank 0
Messages between one pair of ranks are not overtaken (MPI's ordering rule), so a DONE is
always received after that worker's last PUSH, and a FETCH is answered after every PUSH
the same worker sent before it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from typing import Any, Iterator, Sequence

import numpy as np

from .config import DistributedConfigError

FETCH, STATUS, PARAMS, PUSH, EXCHANGE, DELTA, DONE, LOG, HEARTBEAT = range(1, 10)
SPARSE_FETCH, SPARSE_PUSH = 10, 11

SLEEP_SECONDS = 1e-4
BACKOFF_SECONDS = 2e-4  # "backoff": yield this long, then sleep
#: how long a failing rank waits between writing its error and aborting the job (mpiexec
#: forwards its output asynchronously; the abort drops what it has not yet read)
ABORT_DRAIN_SECONDS = 0.3


class PeerSilentError(RuntimeError):
    """A rank did not answer within the job's timeout (stopped, killed or hung)."""


def shard_bounds(size: int, n_servers: int) -> list[tuple[int, int]]:
    """[lo, hi) of each server's contiguous slice of a flat vector of `size` entries."""
    edges = np.linspace(0, size, n_servers + 1).round().astype(int)
    return [(int(edges[s]), int(edges[s + 1])) for s in range(n_servers)]


def pack_push(
    reads: Sequence[int],
    rows: np.ndarray,
    indices: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The bytes of a PUSH (indices None) or SPARSE_PUSH message: r = len(reads) (int64),
    the r fetch numbers (int64), [sparse: k (int64), the k shard indices (int64)], then
    `rows` (shape (r, k), the parameters' dtype) row by row.  out: a uint8 buffer to
    write it into (its first bytes are the message), else a new array."""
    r, k = rows.shape
    head = 1 + r + (0 if indices is None else 1 + k)
    size = 8 * head + rows.size * rows.itemsize
    message = np.empty(size, np.uint8) if out is None else out[:size]
    header = message[: 8 * head].view(np.int64)
    header[0] = r
    header[1 : 1 + r] = reads
    if indices is not None:
        header[1 + r] = k
        header[2 + r :] = indices
    message[8 * head :].view(rows.dtype).reshape(r, k)[...] = rows
    return message


def unpack_push(
    message: np.ndarray, dtype: np.dtype, sparse: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(reads, indices or None, rows) views of a push (`pack_push`'s inverse)."""
    r = int(message[:8].view(np.int64)[0])
    reads = message[8 : 8 * (1 + r)].view(np.int64)
    at, indices = 8 * (1 + r), None
    if sparse:
        k = int(message[at : at + 8].view(np.int64)[0])
        indices = message[at + 8 : at + 8 * (1 + k)].view(np.int64)
        at += 8 * (1 + k)
    values = message[at:].view(dtype)
    return reads, indices, values.reshape(r, values.shape[0] // max(r, 1))


def mpi_type(dtype: np.dtype):
    from mpi4py import MPI

    return MPI.FLOAT if dtype == np.float32 else MPI.DOUBLE


def resolve_wait(wait: str, n_servers: int) -> str:
    """The wait policy; "auto" is the measured winner of its regime (docs/distributed.md,
    scripts/distributed_defaults.py on a loaded 2-core machine): "backoff" with one
    server (and for synchronous EASGD, not measured), "sleep" with several servers,
    whose ranks idle more and, yielding, took the cores from the workers."""
    if wait != "auto":
        return wait
    return "sleep" if n_servers > 1 else "backoff"


def idle(wait: str, began: float) -> None:
    """One pause between two tests of a wait that started at `began` ("spin": none)."""
    if wait == "spin":
        return
    if wait == "sleep" or (wait == "backoff" and time.monotonic() - began > BACKOFF_SECONDS):
        time.sleep(SLEEP_SECONDS)
    else:
        os.sched_yield()


class Link:
    """A rank's waits: the policy between tests and the deadline after which a silent
    peer is an error."""

    def __init__(self, comm: Any, wait: str, timeout: float):
        self.comm, self.wait, self.timeout = comm, wait, timeout

    def wait_all(self, pending: Sequence[tuple[int, Any]], what: str) -> None:
        """Complete the (peer rank, request) pairs; PeerSilentError naming the peers
        whose requests are still pending after `timeout` seconds."""
        from mpi4py import MPI

        if not pending:
            return
        requests = [request for _, request in pending]
        began = time.monotonic()
        while not MPI.Request.Testall(requests):
            if time.monotonic() - began > self.timeout:
                silent = sorted({peer for peer, request in pending if not request.Test()})
                raise PeerSilentError(
                    f"{_ranks(silent)} did not answer within {self.timeout:g} s while this "
                    f"rank was {what} (stopped, killed or hung?)"
                )
            idle(self.wait, began)

    def barrier(self, what: str) -> None:
        """A barrier with the deadline (Ibarrier cannot say which rank is missing)."""
        self.wait_all([(-1, self.comm.Ibarrier())], f"at the end of {what}")


def _ranks(ranks: Sequence[int]) -> str:
    """ "rank 3", "ranks 1, 2"; peer -1 stands for a collective (MPI cannot say who)."""
    if any(rank < 0 for rank in ranks):
        return "some rank of a collective operation"
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


@contextlib.contextmanager
def abort_on_error(comm: Any) -> Iterator[None]:
    """Any exception on this rank (but a collective DistributedConfigError, raised
    alike on every rank) prints its traceback and "rank R: error: ..." and aborts the
    whole MPI job: the other ranks would otherwise wait for this one forever."""
    try:
        yield
    except DistributedConfigError:
        raise
    except BaseException as error:
        if comm.size == 1:
            raise
        # One write, the rank's line first: when the job aborts, mpiexec may forward only the
        # first part of what this rank wrote last (seen in CI: the traceback came through,
        # the line naming the rank written after it did not).
        sys.stderr.write(
            f"gdfast.distributed: rank {comm.rank}: error: "
            f"{type(error).__name__}: {error}; aborting the job\n" + traceback.format_exc()
        )
        sys.stderr.flush()
        # mpiexec forwards a rank's output asynchronously and drops what it has not read when
        # the abort kills the job (seen in CI under load: an empty stderr): give it a moment
        time.sleep(ABORT_DRAIN_SECONDS)
        comm.Abort(1)
