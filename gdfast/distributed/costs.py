"""When distribution pays: a model of a Downpour/AdaptiveRevision job's time, calibrated by
measured costs (`probe_compute`, `probe_server`), against one process doing the same
updates.

The job: U updates (pushes) in all, n workers, one server, n_fetch = n_push = 1, on C
cores (one rank per core at best).  Measured, in CPU seconds:

    g   a worker's step: draw a batch, compute its gradient
    a   one process's optimizer step on the whole parameters (Adagrad)
    S   the server's work per update, measured through the engine's own server loop:
        receive a push, apply the rule, answer a fetch (message copies, the Python of
        the loop and the rule; waiting for messages not counted)
    m   the messaging part of S (S minus the rule alone); a worker's side of the same
        two messages is taken to cost as much (it packs what the server unpacks)

    worker, per step      W = g + m
    job time              T(n) = U · max(S, W / n, (S + W) / min(C, n + 1))
    one process           T_1 = U · (g + a)

The three terms of T(n) are the server's, the workers' and the cores' bound: the server
applies updates one at a time, the n workers share the U steps, and n + 1 ranks on C
cores cannot use more than C.  The fetch of the next step travels while the gradient is
computed (worker.py), so its latency is hidden when g exceeds a round trip, which the
model assumes; time spent polling for messages is not in it (the measured CPU time shows
it).  Distribution pays when T(n) < T_1; as n grows T(n) tends to U·S, so never unless
S < g + a: the server's work per update must be below one process's whole step.  Dense
messages cost the server ∝ the parameters; sparse messages (sparse=True) ∝ the
coordinates a batch touches.  docs/distributed.md has the measured table.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import transport as wire
from .config import Config, check_config
from .server import Server


@dataclass
class Costs:
    """Measured unit costs, CPU seconds (see the module's docstring)."""

    gradient: float  # g
    local_step: float  # a
    server_update: float  # S
    rule: float  # the server's rule alone (S − m)

    def messages(self) -> float:
        return max(self.server_update - self.rule, 0.0)

    def worker_step(self) -> float:
        return self.gradient + self.messages()


def predict(costs: Costs, workers: int, updates: int, cores: int) -> dict[str, float]:
    """Predicted seconds of a job of `updates` pushes by `workers` workers and one server
    on `cores` cores: each bound, the job ("time", their maximum), its CPU time, and one
    process doing the same updates."""
    server = updates * costs.server_update
    per_worker = updates * costs.worker_step() / workers
    cpu = updates * (costs.server_update + costs.worker_step())
    on_cores = cpu / min(cores, workers + 1)
    return {
        "server": server,
        "workers": per_worker,
        "cores": on_cores,
        "time": max(server, per_worker, on_cores),
        "cpu": cpu,
        "one_process": updates * (costs.gradient + costs.local_step),
    }


def median_seconds(operation: Callable[[], Any], repeats: int, clock=time.thread_time) -> float:
    """The median time of `repeats` calls (after one warm-up call), CPU time by default."""
    operation()
    times = []
    for _ in range(repeats):
        began = clock()
        operation()
        times.append(clock() - began)
    return float(np.median(times))


def probe_compute(
    algorithm: str,
    objective: Any,
    params: np.ndarray,
    data: tuple,
    batch_size: int,
    repeats: int = 20,
) -> tuple[float, float, float]:
    """(g, a, r) in CPU seconds, medians: a worker's step (draw a batch of `data`, its
    gradient), one process's Adagrad step, and the server's rule alone for one push of
    the whole `params` (Adagrad, or AdaptiveRevision's C kernel; AdaptiveRevision
    without delay is Adagrad, so one process runs Adagrad)."""
    from .. import Adagrad
    from ._server_kernels import adaptive_revision
    from .rules import adaptive_revision_state

    X, y = data
    rng = np.random.default_rng(0)

    def step() -> np.ndarray:
        rows = rng.integers(len(y), size=batch_size)
        return objective.gradient(params, X[rows], y[rows])

    grad = step()
    gradient = median_seconds(step, repeats)
    adagrad = Adagrad(params.copy(), lr=1e-3)
    local_step = median_seconds(lambda: adagrad.step(grad), repeats)
    if algorithm == "downpour":
        return gradient, local_step, local_step
    x, gbar_read = np.zeros_like(params), np.zeros_like(params)
    state = adaptive_revision_state(x, 1e-8)
    rule = median_seconds(
        lambda: adaptive_revision(x, grad, gbar_read, *state.values(), lr=1e-3, eps=1e-8),
        repeats,
    )
    return gradient, local_step, rule


# `busy`'s key for the rule's part of the pushes (MPI tags are never negative)
RULE = -1


class TimedServer(Server):
    """The engine's server, counting the CPU time it spends handling messages (receiving,
    applying, answering), not waiting for them: `busy`, by message tag, [seconds, count];
    under RULE, the part of it spent applying pushes (the server's rule)."""

    busy: dict[int, list]

    def _spent(self, key: int, began: float) -> None:
        spent = self.busy.setdefault(key, [0.0, 0])
        spent[0] += time.thread_time() - began
        spent[1] += 1

    def answer(self, source: int, tag: int, status) -> bool:
        began = time.thread_time()
        try:
            return super().answer(source, tag, status)
        finally:
            self._spent(tag, began)

    def apply_push(self, rows, indices=None, worker=-1, reads=None) -> None:
        began = time.thread_time()
        try:
            super().apply_push(rows, indices, worker, reads)
        finally:
            self._spent(RULE, began)


def probe_config(algorithm: str, ranks: int = 2) -> Config:
    """train's defaults for one server, with a budget that never ends the job."""
    from .job import train

    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(train).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name != "n_servers"
    }
    return check_config(ranks, algorithm, 1, **{**defaults, "steps": 10**9, "lr": 0.01})


class ProbeClient:
    """Rank 1 speaking the server's protocol (transport.py) without computing anything:
    dense or sparse pushes and fetches of `size` float parameters of `dtype`.  It fetches
    once first, as a worker does; its pushes are computed on the last fetch."""

    def __init__(self, comm: Any, algorithm: str, size: int, dtype, index: np.ndarray):
        self.comm, self.size, self.index = comm, size, index.astype(np.int64)
        self.status = np.zeros(3, np.int64)
        self.x = np.empty(size, dtype)
        self.empty = np.zeros(0, np.int64)
        self.fetches = 0
        self.fetch(False)
        grads = np.full((1, size), 1e-3, dtype)
        self.dense = wire.pack_push([0], grads)
        self.sparse = wire.pack_push([0], grads[:, : index.size], self.index)

    def fetch(self, sparse: bool) -> int:
        """One fetch, waited for; the bytes of the request and the replies."""
        from mpi4py import MPI

        comm, n = self.comm, self.index.size if sparse else self.size
        requests = [comm.Irecv(self.status, 0, wire.STATUS), comm.Irecv(self.x[:n], 0, wire.PARAMS)]
        if sparse:
            comm.Send([self.index, MPI.INT64_T], 0, wire.SPARSE_FETCH)
        else:
            comm.Send(self.empty, 0, wire.FETCH)
        MPI.Request.Waitall(requests)
        self.fetches += 1
        return (self.index.nbytes if sparse else 0) + self.status.nbytes + n * self.x.itemsize

    def push(self, sparse: bool, behind: int = 0) -> int:
        """One push of one gradient computed on the last fetch but `behind` (sent); its
        bytes."""
        from mpi4py import MPI

        message = self.sparse if sparse else self.dense
        message[8:16].view(np.int64)[0] = self.fetches - 1 - behind
        self.comm.Send([message, MPI.BYTE], 0, wire.SPARSE_PUSH if sparse else wire.PUSH)
        return message.nbytes

    def release(self) -> None:
        """An empty push computed on the last fetch: the server may forget the reads
        before it (a worker's pushes do that), as a job's server would."""
        from mpi4py import MPI

        message = wire.pack_push([self.fetches - 1], self.x[:0].reshape(1, 0), self.empty)
        self.comm.Send([message, MPI.BYTE], 0, wire.SPARSE_PUSH)

    def done(self) -> dict[int, list]:
        """End the server's loop; the CPU seconds it spent handling messages and their
        number, by tag: {tag: [seconds, count]}."""
        self.comm.Send(self.empty, 0, wire.DONE)
        return self.comm.recv(source=0)


def serve_timed(comm: Any, algorithm: str, size: int, dtype) -> None:
    """Rank 0's side of a probe: the engine's server until the client is done, then its
    busy CPU seconds by tag to rank 1."""
    server = TimedServer(
        comm,
        probe_config(algorithm),
        np.zeros(size, dtype),
        0,
        (0, size),
        1,
        wire.Link(comm, "backoff", 60.0),
        print,
    )
    server.busy = {}
    server.serve(1)
    comm.send(server.busy, 1)


def probe_server(
    comm: Any, algorithm: str, size: int, dtype=np.float64, updates: int = 50
) -> float:
    """S: the server's CPU seconds per update (a dense push and a dense fetch of `size`
    parameters), through the engine's server loop; ranks 0 and 1 of a 2-rank `comm`,
    both return it."""
    if comm.rank == 0:
        serve_timed(comm, algorithm, size, dtype)
        return comm.recv(source=1)
    client = ProbeClient(comm, algorithm, size, dtype, np.zeros(0, np.int64))
    for _ in range(updates):
        client.push(False)
        client.fetch(False)
    busy = client.done()
    per_update = busy[wire.PUSH][0] / busy[wire.PUSH][1] + busy[wire.FETCH][0] / busy[wire.FETCH][1]
    comm.send(per_update, 0)
    return per_update
