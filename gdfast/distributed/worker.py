"""Asynchronous workers: the Downpour / AdaptiveRevision client and the EASGD worker.

Both keep communication in flight while they compute: a Downpour worker sends the fetch
it will need after this step before computing this step's gradient (Dean et al.'s
client fetches in the background), and an EASGD worker computes its gradient while its
elastic exchange travels, exactly as Zhang et al.'s Algorithms 1 and 2 evaluate the
gradient at the x_i read before the exchange.
"""

from __future__ import annotations

import time

import numpy as np

from .. import SGD
from . import checkpoint as ckpt
from .config import Config
from .objectives import Objective
from .recorder import Batches, Recorder, columns, restricted
from .server import max_push_rows
from .transport import (
    DELTA,
    DONE,
    EXCHANGE,
    FETCH,
    HEARTBEAT,
    PARAMS,
    PUSH,
    SPARSE_FETCH,
    SPARSE_PUSH,
    STATUS,
    Link,
    pack_push,
)


class Worker:
    """One worker rank; `x` is its own copy of the parameters (EASGD: x_i)."""

    def __init__(
        self,
        comm,
        config: Config,
        params: np.ndarray,
        bounds: list[tuple[int, int]],
        objective: Objective,
        batches: Batches,
        recorder: Recorder,
        link: Link,
    ):
        self.comm, self.config, self.bounds, self.link = comm, config, bounds, link
        self.objective, self.batches, self.recorder = objective, batches, recorder
        self.x = params.copy()
        self.fetches = 0  # the number of the next fetch (the servers count them alike)
        self.stop_flags = np.zeros((len(bounds), 3), dtype=np.int64)
        self.empty = np.zeros(0, dtype=np.int64)
        self.servers = list(range(len(bounds)))
        self.last_sent = time.monotonic()
        self.resumed_from: int | None = None  # set by the job before run()
        self.traffic = {"pushes": 0, "push_bytes": 0, "fetches": 0, "fetch_bytes": 0}
        self.requested: list[np.ndarray] = []  # a sparse fetch's indices, until it completes
        self.outgoing: list[np.ndarray] = []  # dense pushes' buffers, one per server

    # messages -----------------------------------------------------------------
    def send_all(self, buffers: list[np.ndarray], tag: int) -> list:
        """Isend buffers[s] to every server s; (server, request) pairs."""
        self.last_sent = time.monotonic()
        return [
            (server, self.comm.Isend(buffer, server, tag)) for server, buffer in enumerate(buffers)
        ]

    def receive(self, buffer: np.ndarray, server: int, tag: int) -> tuple:
        return server, self.comm.Irecv(buffer, server, tag)

    def heartbeat(self) -> None:
        """Tell the servers this worker is alive when it has been quiet for a while
        (long gradients, large n_push), so that they time out only on a silent rank."""
        if time.monotonic() - self.last_sent > self.link.timeout / 4:
            self.link.wait_all(
                self.send_all([self.empty] * len(self.servers), HEARTBEAT), "sending a heartbeat"
            )

    def begin_fetch(self, into: np.ndarray, wanted: np.ndarray | None = None) -> list:
        """Ask every server for status and x into `into`; `wanted` (sorted coordinates):
        only those, into into[:len(wanted)] (a sparse fetch).  This is fetch number
        `self.fetches` (counted up here)."""
        from mpi4py import MPI

        requests, asks = [], []
        self.requested = []
        self.fetches += 1
        for server, (lo, hi) in enumerate(self.bounds):
            if wanted is not None:
                lo, hi = np.searchsorted(wanted, self.bounds[server])
                self.requested.append(wanted[lo:hi] - self.bounds[server][0])
                asks.append([self.requested[-1], MPI.INT64_T])
            requests.append(self.receive(self.stop_flags[server], server, STATUS))
            requests.append(self.receive(into[lo:hi], server, PARAMS))
        if wanted is None:
            return requests + self.send_all([self.empty] * len(self.servers), FETCH)
        return requests + self.send_all(asks, SPARSE_FETCH)

    def count_fetch(self, wanted: np.ndarray | None) -> None:
        """Add a training fetch's request and replies to `traffic`."""
        k = self.x.shape[0] if wanted is None else wanted.shape[0]
        asked = 0 if wanted is None else 8 * k
        self.traffic["fetches"] += 1
        self.traffic["fetch_bytes"] += asked + self.stop_flags.nbytes + k * self.x.dtype.itemsize

    def finish(self, requests: list, what: str) -> bool:
        """Complete `requests` to the servers; True when every server has spent its budget."""
        self.link.wait_all(requests, what)
        return bool(self.stop_flags[:, 0].all())

    def fetch_center(self) -> np.ndarray:
        """A copy of the servers' x (EASGD: the center x̃, for the history)."""
        center = np.empty_like(self.x)
        self.finish(self.begin_fetch(center), "fetching the center")
        return center

    def run(self) -> None:
        if self.config.pushes_gradients:
            self.run_pushing()
        else:
            self.run_elastic()
        self.link.wait_all(
            self.send_all([self.empty] * len(self.servers), DONE), "saying it is done"
        )

    # Downpour and AdaptiveRevision ---------------------------------------------
    def run_pushing(self) -> None:
        """Dean et al.'s client: fetch every n_fetch steps, push the accumulated gradient
        every n_push steps, optionally step locally (local_lr).  AdaptiveRevision pushes
        one Σ g per fetch the period's gradients were computed on, with that fetch's number
        (the servers kept the ḡ each fetch read).

        sparse=True: a fetch asks only for the coordinates of the n_fetch batches that will
        be computed on it (drawn ahead), a push sends only the coordinates of its period's
        batches; every other coordinate has g = 0, where the servers' rules change nothing,
        so the servers end with the dense protocol's bits."""
        config, x = self.config, self.x
        revision = config.algorithm == "adaptive_revision"
        rows = max_push_rows(config)
        grads = np.zeros((rows,) + x.shape, dtype=x.dtype)  # Σ g since the push, per read
        reads = [0] * rows  # the number of the fetch each segment's gradients used
        used = 0  # segments of this period (the last one still open)
        computed = False  # the open segment has a gradient in it
        touched: list[np.ndarray] = []  # sparse: the columns of this period's batches
        incoming = np.empty_like(x)
        local_sgd = SGD(x, lr=config.local_lr) if config.local_lr else None

        def wanted(skip: int) -> np.ndarray | None:
            """sparse: the columns of the n_fetch batches after the next `skip`."""
            if not config.sparse:
                return None
            ahead = self.batches.peek(skip + config.n_fetch)[skip:]
            return np.unique(np.concatenate([columns(X) for X, _ in ahead]))

        def land(fetched: np.ndarray | None, target: np.ndarray, values: np.ndarray) -> None:
            if fetched is None:
                np.copyto(target, values)
            else:
                target[fetched] = values[: fetched.shape[0]]

        fetched = wanted(0)
        reads[0] = self.fetches
        if self.finish(self.begin_fetch(incoming, fetched), "fetching"):
            return
        self.count_fetch(fetched)
        land(fetched, x, incoming)
        pushes: list = []
        steps = 0
        self.record(0)
        while True:
            self.heartbeat()
            # the fetch due after this step travels while the gradient is computed
            fetching = None
            if (steps + 1) % config.n_fetch == 0:
                fetched = wanted(1)
                number = self.fetches
                fetching = self.begin_fetch(incoming, fetched)
            X, y = self.batches.next()
            if config.sparse:  # the gradient on the batch's columns only
                cols = columns(X)
                grads[used, cols] += self.objective.gradient(x[cols], restricted(X, cols), y)
                touched.append(cols)
            else:
                g = self.objective.gradient(x, X, y)
                grads[used] += g
            computed = True
            if local_sgd is not None:
                local_sgd.step(g.astype(x.dtype, copy=False))
            steps += 1
            if steps % config.n_push == 0:
                self.link.wait_all(pushes, "pushing")
                count = used + 1
                period = np.unique(np.concatenate(touched)) if config.sparse else None
                pushes = self.push(grads, reads, count, period)
                if period is None:
                    grads[:count] = 0
                else:
                    grads[:count, period] = 0
                touched = []
                reads[0] = reads[used]  # the open segment's read: the next period's first
                used, computed = 0, False
            if fetching is not None:
                stop = self.finish(fetching, "fetching")
                self.count_fetch(fetched)
                land(fetched, x, incoming)
                if stop:
                    break
                if computed and revision:  # gradients were computed on the previous read
                    used += 1
                    computed = False
                reads[used] = number
            self.record(steps)
        self.link.wait_all(pushes, "pushing")
        self.record(steps, final=True)

    def push(
        self, grads: np.ndarray, reads: list[int], count: int, period: np.ndarray | None
    ) -> list:
        """Send the period's `count` segments to every server, each server its shard:
        Downpour [Σ g], AdaptiveRevision [g_1 .. g_count], with the numbers of the
        fetches they were computed on (transport.pack_push); `period` (sorted
        coordinates): a sparse push of only those."""
        from mpi4py import MPI

        if period is None and not self.outgoing:  # reused: large temporaries fault pages
            self.outgoing = [
                np.empty(8 * (1 + grads.shape[0]) + grads[:, lo:hi].nbytes, np.uint8)
                for lo, hi in self.bounds
            ]
        messages = []
        for server, (lo, hi) in enumerate(self.bounds):
            if period is None:  # the previous push has completed: its buffer is free
                message = pack_push(reads[:count], grads[:count, lo:hi], out=self.outgoing[server])
            else:
                a, b = np.searchsorted(period, (lo, hi))
                part = period[a:b]
                message = pack_push(reads[:count], grads[:count, part], part - lo)
            messages.append([message, MPI.BYTE])
        self.traffic["pushes"] += 1
        self.traffic["push_bytes"] += sum(message[0].nbytes for message in messages)
        return self.send_all(messages, PUSH if period is None else SPARSE_PUSH)

    def record(self, steps: int, final: bool = False) -> None:
        """Record the parameters: this worker's copy, or (sparse, where the copy is fresh
        only at the coordinates it fetched last) the servers' x, fetched for it."""
        if not self.config.sparse:
            self.recorder(steps, self.x, final=final)
        elif self.recorder.wants(steps, final=final):
            self.recorder(steps, self.fetch_center(), final=final)

    # EASGD and EAMSGD -----------------------------------------------------------
    def run_elastic(self) -> None:
        """Zhang et al. (2015) Algorithm 1 (EASGD, δ = 0) and 2 (EAMSGD), worker i:

            x ← x_i
            if τ divides t:  x_i ← x_i − α (x − x̃) ;  x̃ ← x̃ + α (x − x̃)   (the exchange)
            v_i ← δ v_i − η g(x + δ v_i) ;  x_i ← x_i + v_i ;  t ← t + 1

        The gradient is evaluated at the x read before the exchange, so it is computed
        while the exchange travels.  The exchange at t = 0 is skipped: there x_i = x̃
        (the worker starts from the center) and it would move nothing.  The worker stops
        at the exchange after which the servers have spent their budget."""
        config, x = self.config, self.x
        momentum = config.momentum if config.algorithm == "eamsgd" else 0.0
        velocity = np.zeros_like(x)
        point, step, sent, delta = (np.empty_like(x) for _ in range(4))
        center = self.fetch_center()
        if self.stop_flags[:, 0].all():
            return
        t = self.restore(velocity) if self.config.resume else None
        if t is None:
            t = 0
            np.copyto(x, center)
        saved = self.stop_flags[0, 1] // config.checkpoint_every if config.checkpoint_every else 0
        record = self.recorder.wants
        if record(0):
            self.recorder(0, center)
        while True:
            self.heartbeat()
            exchanging = None
            if t % config.tau == 0 and t > 0:
                np.copyto(sent, x)
                exchanging = [self.receive(self.stop_flags[s], s, STATUS) for s in self.servers]
                exchanging += [
                    self.receive(delta[lo:hi], s, DELTA) for s, (lo, hi) in enumerate(self.bounds)
                ]
                exchanging += self.send_all([sent[lo:hi] for lo, hi in self.bounds], EXCHANGE)
            np.multiply(velocity, momentum, out=point)
            point += x  # x + δ v_i
            X, y = self.batches.next()
            g = self.objective.gradient(point, X, y)
            if exchanging is not None:
                stop = self.finish(exchanging, "in an elastic exchange")
                x -= delta  # x_i ← x_i − α (x − x̃)
                if stop:
                    break
            velocity *= momentum
            np.multiply(g, config.lr, out=step)
            velocity -= step  # v_i ← δ v_i − η g
            x += velocity
            t += 1
            if config.checkpoint_every and exchanging is not None:
                boundary = self.stop_flags[0, 1] // config.checkpoint_every
                if boundary > saved:
                    saved = boundary
                    self.save(int(boundary * config.checkpoint_every), t, velocity)
            if record(t):
                self.recorder(t, self.fetch_center())
        if record(t, final=True):
            self.recorder(t, self.fetch_center(), final=True)

    def _file_bounds(self) -> tuple[int, int, int, int]:
        return (0, self.x.shape[0], self.x.shape[0], self.config.n_servers)

    def save(self, count: int, t: int, velocity: np.ndarray) -> None:
        """x_i, v_i, t and the batch stream, keyed by server 0's update count."""
        ckpt.save(
            ckpt.path_for(self.config.checkpoint_dir, "worker", self.comm.rank, count),
            algorithm=self.config.algorithm,
            bounds=self._file_bounds(),
            count=(count, self.stop_flags[0, 2]),
            arrays={
                "params": self.x,
                "velocity": velocity,
                "steps": np.array([t], dtype=np.int64),
                "rng": self.batches.state(),
            },
        )

    def restore(self, velocity: np.ndarray) -> int | None:
        """On resume: this worker's state saved at the largest count not beyond the
        servers' (self.resumed_from); None when it saved none."""
        counts = [
            c
            for c in ckpt.saved_counts(self.config.checkpoint_dir, "worker", self.comm.rank)
            if self.resumed_from is not None and c <= self.resumed_from
        ]
        if not counts:
            return None
        path = ckpt.path_for(self.config.checkpoint_dir, "worker", self.comm.rank, counts[-1])
        _, arrays = ckpt.load(
            path,
            algorithm=self.config.algorithm,
            dtype=self.x.dtype,
            bounds=self._file_bounds(),
            names=("params", "velocity", "steps", "rng"),
        )
        np.copyto(self.x, arrays["params"])
        np.copyto(velocity, arrays["velocity"])
        self.batches.restore(arrays["rng"])
        return int(arrays["steps"][0])
