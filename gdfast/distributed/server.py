"""A parameter server: one contiguous shard of x, its update rule's state, the budget.

The server answers one message at a time (so a fetch and the update a push triggers are
atomic without locks) and counts the job's length: it applies `budget`
updates (pushes, or elastic exchanges), then answers every fetch and exchange with
"stop"; later pushes are received and dropped.  A resumed job therefore finishes the
same amount of work as an uninterrupted one.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from .. import Adagrad, RowGrad, get_num_threads
from . import checkpoint as ckpt
from .config import Config
from .recorder import progress_line
from .rules import adaptive_revision_state
from .transport import (
    DONE,
    EXCHANGE,
    FETCH,
    HEARTBEAT,
    LOG,
    PARAMS,
    PUSH,
    SPARSE_FETCH,
    SPARSE_PUSH,
    STATUS,
    DELTA,
    Link,
    PeerSilentError,
    idle,
    unpack_push,
)


def max_push_rows(config: Config) -> int:
    """Rows of the largest push: AdaptiveRevision sends one g_j for each fetch the
    gradients of one push period were computed on, at most ⌈n_push/n_fetch⌉ + 1."""
    if config.algorithm == "adaptive_revision":
        return -(-config.n_push // config.n_fetch) + 1
    return 1


class SentGbar:
    """AdaptiveRevision's ḡ_read, kept where it was read: for each worker, the shard's ḡ as
    it was when the server answered each of that worker's fetches (McMahan & Streeter's
    ḡ_old, one per read), by fetch number, until a push shows the worker has moved past
    it.  Pushes then carry g alone, the size of Downpour's.

    Dense reads are copied lazily and shared: every dense fetch answered since ḡ last
    changed read the same ḡ, so they share one `Snapshot`, and its copy of ḡ is taken only
    when ḡ is about to change, by the dense update's own pass over ḡ (`for_update` hands
    the kernel the buffer, gbar_keep) or, before a sparse update, by a copy
    (`changing`).  A fetch that no update follows (the last one, several workers'
    fetches between two pushes, n_fetch < n_push) costs no copy, and a dense push
    computed on ḡ as it still is reads ḡ itself (no ḡ_read array streamed).  Copies are
    buffers reused (large temporaries cost page faults).  Sparse reads keep the fetched
    coordinates' values, copied when the fetch is answered."""

    class Snapshot:
        """ḡ as some dense fetches read it: `values` None while ḡ is still that value."""

        def __init__(self) -> None:
            self.values: np.ndarray | None = None
            self.readers = 0

    def __init__(self) -> None:
        self.fetches: dict[int, int] = {}  # each worker's next fetch number
        self.kept: dict[int, dict[int, tuple[np.ndarray | None, Any]]] = {}
        self.current: SentGbar.Snapshot | None = None  # dense reads of ḡ as it is now
        self.spare: list[np.ndarray] = []

    def fetched(self, worker: int, gbar: np.ndarray, indices: np.ndarray | None) -> None:
        """Keep ḡ (or ḡ[indices]) as the value read by the worker's next fetch."""
        number = self.fetches.get(worker, 0)
        self.fetches[worker] = number + 1
        if indices is None:
            if self.current is None:
                self.current = SentGbar.Snapshot()
            self.current.readers += 1
            kept = self.current
        else:
            kept = gbar[indices]
        self.kept.setdefault(worker, {})[number] = (indices, kept)

    def changing(self, gbar: np.ndarray) -> None:
        """ḡ is about to change: copy it for the dense reads of its present value."""
        if self.current is not None:
            values = self.spare.pop() if self.spare else np.empty_like(gbar)
            np.copyto(values, gbar)
            self.current.values = values
            self.current = None

    def for_update(
        self, worker: int, number: int, at: np.ndarray | None, gbar: np.ndarray, last: bool = False
    ):
        """(ḡ_read, gbar_keep, gbar_into_read) for the rule's update of ḡ with a g computed
        on the worker's fetch `number`, at shard coordinates `at` (None: a dense update).
        Dense: ḡ_read is None when that fetch read ḡ as it still is (the kernel reads ḡ
        itself), and gbar_keep a buffer the kernel must fill with ḡ as it was when some
        dense fetch read the present ḡ (else None).  Sparse: ḡ is copied for those reads
        first (`changing`) and gbar_keep is None.

        `last`: no later update uses this fetch's ḡ_read (the worker has fetched since and
        this push carried all it computed on it).  If that dense read's copy is its own and
        some dense fetch read the present ḡ, gbar_into_read is True: the kernel writes the
        new ḡ into the copy, which becomes ḡ (the caller's), and the present ḡ, unchanged,
        becomes those fetches' copy — one array less written than gbar_keep."""
        if at is not None:
            self.changing(gbar)
            return self.read(worker, number, at, gbar), None, False
        indices, kept = self.kept[worker][number]
        if indices is not None:
            read = self.read(worker, number, None, gbar)  # a new array
        else:
            read = None if kept is self.current else kept.values
        keep = None
        if self.current is not None:
            if last and indices is None and read is not None and kept.readers == 1:
                kept.values = None  # the buffer is ḡ's from now on, not a spare
                del self.kept[worker][number]
                self.current.values = gbar
                self.current = None
                return read, None, True
            keep = self.spare.pop() if self.spare else np.empty_like(gbar)
            self.current.values = keep  # filled by the update's pass
            self.current = None
        return read, keep, False

    def read(self, worker: int, number: int, at: np.ndarray | None, gbar: np.ndarray):
        """ḡ_read of the worker's fetch `number` at shard coordinates `at` (None: all).
        A coordinate that fetch did not return has g = 0 in the push (the worker computes
        only on what it fetched), where any ḡ_read leaves it unchanged: ḡ's value is used.
        Call `changing` first if ḡ may have moved since the fetch (a dense read of ḡ as it
        is now is ḡ itself)."""
        indices, kept = self.kept[worker][number]
        if indices is None:
            values = gbar if kept.values is None else kept.values
            return values if at is None else values[at]
        read = gbar.copy() if at is None else gbar[at]
        where = np.arange(gbar.shape[0]) if at is None else at
        slots = np.minimum(np.searchsorted(indices, where), max(indices.shape[0] - 1, 0))
        hit = indices[slots] == where if indices.shape[0] else np.zeros(where.shape, bool)
        read[hit] = kept[slots[hit]]
        return read

    def release(self, worker: int, below: int | None = None) -> None:
        """Forget the worker's reads numbered below `below` (None: all of them)."""
        kept = self.kept.get(worker, {})
        for number in [n for n in kept if below is None or n < below]:
            indices, snapshot = kept.pop(number)
            if indices is None:
                snapshot.readers -= 1
                if snapshot.readers == 0:
                    if snapshot.values is not None:
                        self.spare.append(snapshot.values)
                    if snapshot is self.current:
                        self.current = None


class Server:
    """Server `index` of the job, holding params[lo:hi]."""

    def __init__(
        self,
        comm,
        config: Config,
        params: np.ndarray,
        index: int,
        bounds: tuple[int, int],
        n_workers: int,
        link: Link,
        log: Callable[[str], None],
    ):
        self.comm, self.config, self.index, self.link, self.log = comm, config, index, link, log
        self.lo, self.hi = bounds
        self.x = params[self.lo : self.hi].copy()
        self.n_workers = n_workers
        self.adagrad = None
        if config.algorithm == "downpour":
            # the shard as a column (n, 1), so that a sparse push is a RowGrad of its rows
            self.adagrad = Adagrad(self.x.reshape(-1, 1), lr=config.lr, eps=config.eps)
            self.state = {"sum_sq": self.adagrad.state["sum_sq"][0].reshape(-1)}
        elif config.algorithm == "adaptive_revision":
            # imported here: the simulator and the other algorithms run without this build
            from ._server_kernels import adaptive_revision

            self.revision_rule = adaptive_revision
            self.state = adaptive_revision_state(self.x, config.eps)
            self.sent = SentGbar()
        else:
            self.state = {}
        self.budget = config.budget(n_workers)
        self.applied = 0
        self.size = params.shape[0]

    # checkpoints ---------------------------------------------------------------
    def bounds(self) -> tuple[int, int, int, int]:
        return (self.lo, self.hi, self.size, self.config.n_servers)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"params": self.x, **self.state}

    def saved_counts(self) -> list[int]:
        return ckpt.saved_counts(self.config.checkpoint_dir, "server", self.index)

    def load(self, count: int) -> None:
        """Restore this server's checkpoint at `count` updates (raises if it is foreign)."""
        path = ckpt.path_for(self.config.checkpoint_dir, "server", self.index, count)
        applied, arrays = ckpt.load(
            path,
            algorithm=self.config.algorithm,
            dtype=self.x.dtype,
            bounds=self.bounds(),
            names=tuple(self.arrays()),
            eps=self.state_eps(),
        )
        for name, target in self.arrays().items():
            np.copyto(target, arrays[name])
        self.applied = applied

    def save(self) -> None:
        ckpt.save(
            ckpt.path_for(self.config.checkpoint_dir, "server", self.index, self.applied),
            algorithm=self.config.algorithm,
            bounds=self.bounds(),
            count=(self.applied, self.budget),
            arrays=self.arrays(),
            eps=self.state_eps(),
        )

    def state_eps(self) -> float | None:
        """δ², when the rule's state depends on it (AdaptiveRevision's √z')."""
        return self.config.eps if self.config.algorithm == "adaptive_revision" else None

    def status(self) -> np.ndarray:
        return np.array([self.applied >= self.budget, self.applied, self.budget], dtype=np.int64)

    # the loop -----------------------------------------------------------------
    def serve(self, first_worker: int) -> None:
        """Answer workers until every one has said DONE; PeerSilentError if a worker that
        has not finished sends nothing for `timeout` seconds."""
        from mpi4py import MPI

        comm = self.comm
        self.received = np.empty(self.x.shape[0], self.x.dtype)
        self.log_line = np.empty(3)
        # a dense push's bytes (pack_push): header, then max_push_rows rows of the shard
        rows = max_push_rows(self.config)
        self.message = np.empty(8 * (1 + rows) + rows * self.x.nbytes, np.uint8)
        status = MPI.Status()
        now = time.monotonic()
        heard = {rank: now for rank in range(first_worker, first_worker + self.n_workers)}
        while heard:
            began = time.monotonic()
            while not comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG, status):
                now = time.monotonic()
                quiet = min(heard, key=heard.get)
                if now - heard[quiet] > self.link.timeout:
                    raise PeerSilentError(
                        f"rank {quiet} (a worker) sent nothing to server rank {comm.rank} "
                        f"for {self.link.timeout:g} s (stopped, killed or hung?)"
                    )
                idle(self.link.wait, began)
            source, tag = status.Get_source(), status.Get_tag()
            heard[source] = time.monotonic()
            if self.answer(source, tag, status):
                del heard[source]
        if self.config.checkpoint_every:
            self.save()

    def answer(self, source: int, tag: int, status) -> bool:
        """Receive and handle one message; True when it was the sender's DONE."""
        from mpi4py import MPI

        comm, config = self.comm, self.config
        if tag in (PUSH, SPARSE_PUSH):
            size = status.Get_count(MPI.BYTE)
            if self.message.shape[0] < size:
                self.message = np.empty(size, np.uint8)
            message = self.message[:size]
            comm.Recv([message, MPI.BYTE], source, tag)
            reads, indices, rows = unpack_push(message, self.x.dtype, tag == SPARSE_PUSH)
            if self.applied < self.budget:
                self.apply_push(rows, indices, source, reads)
            if config.algorithm == "adaptive_revision" and reads.shape[0]:
                self.sent.release(source, below=int(reads[-1]))
        elif tag in (FETCH, SPARSE_FETCH):
            indices = None
            if tag == FETCH:
                comm.Recv(self.received[:0], source, FETCH)
            else:
                indices = np.empty(status.Get_count(MPI.INT64_T), np.int64)
                comm.Recv([indices, MPI.INT64_T], source, SPARSE_FETCH)
            replies = [
                comm.Isend(self.status(), source, STATUS),
                comm.Isend(self.x if indices is None else self.x[indices], source, PARAMS),
            ]
            if config.algorithm == "adaptive_revision":
                self.sent.fetched(source, self.state["gbar"], indices)
            self.link.wait_all([(source, reply) for reply in replies], "answering a fetch")
        elif tag == EXCHANGE:
            x_i = self.received
            comm.Recv(x_i, source, EXCHANGE)
            delta = np.zeros_like(self.x)
            if self.applied < self.budget:
                # d = α (x_i − x̃) ; x̃ ← x̃ + d ; the worker does x_i ← x_i − d
                np.subtract(x_i, self.x, out=delta)
                delta *= config.lr * config.rho
                self.x += delta
                self.count_update()
            replies = [comm.Isend(self.status(), source, STATUS), comm.Isend(delta, source, DELTA)]
            self.link.wait_all(
                [(source, reply) for reply in replies], "answering an elastic exchange"
            )
        elif tag == LOG:
            comm.Recv(self.log_line, source, LOG)
            self.log(progress_line(self.log_line))
        elif tag in (DONE, HEARTBEAT):
            comm.Recv(self.received[:0], source, tag)
            if tag == DONE and config.algorithm == "adaptive_revision":
                self.sent.release(source)
            return tag == DONE
        else:  # pragma: no cover - a protocol bug, not a user error
            raise RuntimeError(f"server {self.index}: unexpected tag {tag} from rank {source}")
        return False

    def apply_push(
        self,
        rows: np.ndarray,
        indices: np.ndarray | None = None,
        worker: int = -1,
        reads: np.ndarray | None = None,
    ) -> None:
        """Downpour: Adagrad (gdfast's C kernel) on the pushed gradient.  AdaptiveRevision:
        its C kernel (src_c/adaptive_revision.c, the bits of rules.adaptive_revision) once
        per g_j, in the order the worker read them, with the ḡ_read `worker`'s fetch
        reads[j] was answered with (SentGbar.for_update: ḡ itself when it has not moved
        since, and the copy pending fetches need taken in the same pass).  `indices`: a sparse
        push, rows[:, j] belong to shard coordinate indices[j] and no other coordinate is
        touched (the dense rules leave a coordinate with g = 0 unchanged too)."""
        if indices is not None and indices.shape[0] == 0:
            pass  # the worker touched nothing of this shard: an update that moves nothing
        elif self.adagrad is not None:
            if indices is None:
                self.adagrad.step(rows[0].reshape(-1, 1))
            else:
                self.adagrad.step(RowGrad(indices, rows[0].reshape(-1, 1)))
        else:
            state = self.state
            # the worker's fetches after the last read this push carries were answered
            # before it (one sender's messages arrive in order), and a worker pushes all it
            # computed on a read before it computes on the next: that read is then done
            done = self.sent.fetches.get(worker, 0) - 1
            for row, (grad, number) in enumerate(zip(rows, reads)):
                last = row == rows.shape[0] - 1 and int(number) < done
                read, keep, into_read = self.sent.for_update(
                    worker, int(number), indices, state["gbar"], last
                )
                self.revision_rule(
                    self.x,
                    grad,
                    read,
                    state["gbar"],
                    state["sum_sq"],
                    state["sqrt_sum_sq_max"],
                    lr=self.config.lr,
                    eps=self.config.eps,
                    indices=indices,
                    threads=get_num_threads(),
                    gbar_keep=keep,
                    gbar_into_read=into_read,
                )
                if into_read:
                    state["gbar"] = read
        self.count_update()

    def count_update(self) -> None:
        self.applied += 1
        every = self.config.checkpoint_every
        if every and self.applied % every == 0:
            self.save()
