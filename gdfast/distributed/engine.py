"""Distributed training on MPI (mpi4py): Downpour, AdaptiveRevision and Elastic Averaging SGD.

`train(...)` is called on every rank of the job, with the same arguments except the
data, which is each rank's own shard.  Ranks 0 .. n_servers − 1 are parameter servers,
each owning a contiguous slice of the flat parameter vector; the other ranks are
workers.  Synchronous EASGD has no servers: every rank is a worker and the center is
kept on all of them by an Allreduce.

Transport: a server loop over two-sided point-to-point messages (mpi4py's buffer
methods, no pickling of arrays).  A server probes for the next request and answers it
whole, so a fetch of (x, ḡ) and the update a push triggers are atomic without locks.
One-sided windows with passive-target locks were measured against this loop
(scripts/distributed_bench.py): with MPICH a passive target makes progress only
while it is inside an MPI call, so a server must spin in MPI anyway, and an update
rule that reads and writes several arrays (Adagrad, AdaptiveRevision) needs an
exclusive lock per push; the loop was as fast or faster and simpler.

Protocol, worker → server s (tags below):
    FETCH      ()                      → STATUS [stop, applied, budget],
                                         PARAMS x[s] (+ GBAR ḡ[s])
    PUSH       g[s] (+ PUSH_GBAR ḡ_read[s])    the server applies the rule, no reply
    EXCHANGE   x_i[s]                  → STATUS, DELTA d = α (x_i − x̃)   (asynchronous EASGD)
    DONE       ()                      the worker has stopped
    LOG        [steps, seconds, loss]  progress from the first worker to rank 0
Messages between one pair of ranks are not overtaken (MPI's ordering rule), so a DONE
is always received after that worker's last PUSH.

The job's length is counted on the servers: each applies `budget` updates (pushes, or
elastic exchanges) and then tells workers to stop; later pushes are received and
dropped.  That makes a resumed job finish the same amount of work as an uninterrupted
one.  Servers checkpoint every `checkpoint_every` updates (gdfast.distributed.checkpoint).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import Adagrad, Nesterov, SGD
from . import checkpoint as ckpt
from .objectives import Objective
from .rules import adaptive_revision, adaptive_revision_state

ALGORITHMS = ("downpour", "adaptive_revision", "easgd", "eamsgd")

FETCH, STATUS, PARAMS, GBAR, PUSH, PUSH_GBAR, EXCHANGE, DELTA, DONE, LOG = range(1, 11)


class DistributedConfigError(ValueError):
    """A bad configuration, detected collectively: every rank raises the same message."""


@dataclass
class TrainResult:
    """What `train` returns on every rank.

    params: the final parameters (servers' shards gathered; EASGD: the center).
    history: (seconds since start, worker steps of the first worker, loss on the
    evaluation data) rows recorded by the first worker (index n_servers).
    applied: updates applied by server 0 over the whole job (including before a resume).
    resumed_from: server 0's update count at the checkpoint it resumed from, or None.
    role: "server" or "worker" for this rank.
    local_params: this worker's own parameters at the end (EASGD: x_i; Downpour and
    AdaptiveRevision: its last fetched copy), None on servers.
    """

    params: np.ndarray
    history: list[tuple[float, int, float]] = field(default_factory=list)
    applied: int = 0
    resumed_from: int | None = None
    role: str = "worker"
    local_params: np.ndarray | None = None


# --------------------------------------------------------------------- configuration
def _int_at_least(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _real_at_least(name: str, value: Any, low: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        relation = ">" if strict else ">="
        raise ValueError(f"{name}: expected a finite number {relation} {low}, got {value!r}")
    return value


@dataclass
class _Config:
    algorithm: str
    n_servers: int
    steps: int
    batch_size: int
    lr: float
    n_fetch: int
    n_push: int
    local_lr: float
    eps: float
    rho: float
    tau: int
    momentum: float
    synchronous: bool
    fetch: str
    seed: int
    checkpoint_dir: str | None
    checkpoint_every: int
    resume: bool
    log_every: int
    record_every: int

    def signature(self) -> tuple:
        """Everything that must be equal on all ranks."""
        return tuple(sorted(vars(self).items()))


def _check_config(size: int, algorithm: str, n_servers: int | None, **options: Any) -> _Config:
    """Local checks; the same on every rank given the same arguments."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {algorithm!r}")
    synchronous = bool(options["synchronous"])
    if synchronous and algorithm != "easgd":
        raise ValueError(f"synchronous: only algorithm='easgd' has a synchronous form, "
                         f"got algorithm={algorithm!r}")
    if synchronous:
        if n_servers not in (None, 0):
            raise ValueError(f"n_servers: synchronous EASGD keeps the center on every rank "
                             f"and uses no servers; pass None or 0, got {n_servers!r}")
        n_servers = 0
    else:
        n_servers = _int_at_least("n_servers", 1 if n_servers is None else n_servers, 1)
        if n_servers >= size:
            raise ValueError(f"n_servers: {n_servers} server(s) need at least {n_servers + 1} "
                             f"ranks (one worker or more), the job has {size}")
    if options["fetch"] not in FETCH_MODES:
        raise ValueError(f"fetch: expected one of {FETCH_MODES}, got {options['fetch']!r}")
    if options["fetch"] == "window" and algorithm not in ("downpour", "adaptive_revision"):
        raise ValueError(f"fetch: 'window' serves downpour and adaptive_revision; "
                         f"{algorithm} exchanges with the center by messages")
    if options["wait"] not in WAIT_MODES:
        raise ValueError(f"wait: expected one of {WAIT_MODES}, got {options['wait']!r}")
    config = _Config(
        algorithm=algorithm, n_servers=n_servers, synchronous=synchronous,
        fetch=(options["fetch"] if options["fetch"] != "auto" else
               "window" if algorithm in ("downpour", "adaptive_revision") else "message"),
        steps=_int_at_least("steps", options["steps"], 1),
        batch_size=_int_at_least("batch_size", options["batch_size"], 1),
        lr=_real_at_least("lr", options["lr"], 0.0),
        n_fetch=_int_at_least("n_fetch", options["n_fetch"], 1),
        n_push=_int_at_least("n_push", options["n_push"], 1),
        local_lr=_real_at_least("local_lr", options["local_lr"], 0.0),
        eps=_real_at_least("eps", options["eps"], 0.0, strict=True),
        rho=(_real_at_least("rho", options["rho"], 0.0) if options["rho"] is not None
             else _default_rho(size - n_servers, options["lr"])),
        tau=_int_at_least("tau", options["tau"], 1),
        momentum=_real_at_least("momentum", options["momentum"], 0.0),
        seed=_int_at_least("seed", options["seed"], 0),
        checkpoint_dir=None if options["checkpoint_dir"] is None
        else os.fspath(options["checkpoint_dir"]),
        checkpoint_every=_int_at_least("checkpoint_every", options["checkpoint_every"], 0),
        resume=bool(options["resume"]),
        log_every=_int_at_least("log_every", options["log_every"], 0),
        record_every=_int_at_least("record_every", options["record_every"], 0),
    )
    if config.momentum >= 1.0:
        raise ValueError(f"momentum: expected a number in [0, 1), got {config.momentum!r}")
    if (config.checkpoint_every or config.resume) and config.checkpoint_dir is None:
        raise ValueError("checkpoint_dir: checkpoint_every and resume need a directory")
    return config


def _default_rho(n_workers: int, lr: Any) -> float:
    """ρ with α = ηρ = 0.9/p (β = pα = 0.9, Zhang et al.'s choice); 0 when lr is 0."""
    lr = _real_at_least("lr", lr, 0.0)
    return 0.9 / (n_workers * lr) if lr > 0 else 0.0


def _check_arrays(params: Any, data: Any, role: str) -> tuple[np.ndarray, tuple]:
    if not isinstance(params, np.ndarray):
        raise ValueError(f"params: expected a 1-d ndarray, got {type(params).__name__}")
    if params.ndim != 1 or params.dtype not in (np.float32, np.float64):
        raise ValueError(f"params: expected a 1-d float32 or float64 array, got shape "
                         f"{params.shape} and dtype {params.dtype}")
    if role == "worker":
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError("data: expected a pair (X, y) on every worker rank")
        X, y = data
        if not (isinstance(X, np.ndarray) and isinstance(y, np.ndarray)) or X.ndim != 2 \
                or y.ndim != 1:
            raise ValueError("data: expected X a 2-d ndarray and y a 1-d ndarray")
        if X.shape[1] != params.shape[0]:
            raise ValueError(f"data: X has {X.shape[1]} columns but params has "
                             f"{params.shape[0]} entries")
        if X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"data: X has {X.shape[0]} rows and y {y.shape[0]}; expected "
                             f"the same number, at least one")
        if X.dtype != params.dtype or y.dtype != params.dtype:
            raise ValueError(f"data: X ({X.dtype}) and y ({y.dtype}) must have params' dtype "
                             f"{params.dtype}")
    return params, (params.shape, params.dtype.name)


def _agree(comm: Any, error: str | None, signature: Any, what: str) -> None:
    """Collective: every rank raises the same DistributedConfigError if any rank failed
    its local checks or disagrees with rank 0 on `signature`."""
    gathered = comm.allgather((error, signature))
    errors = [(rank, message) for rank, (message, _) in enumerate(gathered) if message]
    if errors:
        messages = {message for _, message in errors}
        if len(messages) == 1 and len(errors) == len(gathered):
            raise DistributedConfigError(f"{errors[0][1]} (on every rank)")
        raise DistributedConfigError("; ".join(f"rank {rank}: {message}"
                                               for rank, message in errors))
    reference = gathered[0][1]
    for rank, (_, other) in enumerate(gathered):
        if other != reference:
            raise DistributedConfigError(f"{what}: rank {rank} has {other!r} but rank 0 has "
                                         f"{reference!r}; every rank must pass the same")


# --------------------------------------------------------------------- shared helpers
def _shard_bounds(size: int, n_servers: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, size, n_servers + 1).round().astype(int)
    return [(int(edges[s]), int(edges[s + 1])) for s in range(n_servers)]


def _mpi_type(dtype: np.dtype):
    from mpi4py import MPI
    return MPI.FLOAT if dtype == np.float32 else MPI.DOUBLE


WAIT_MODES = ("auto", "spin", "yield", "sleep", "backoff")
SLEEP_SECONDS = 1e-4
BACKOFF_SECONDS = 2e-4  # "backoff": yield this long, then sleep
FETCH_MODES = ("auto", "message", "window")
_STATUS_BYTES = 24  # a window starts with the server's status, int64 [stop, applied, budget]


def _wait_mode(comm, wait: str) -> str:
    """"auto": spin when every rank on this node has a core of its own, else yield.
    Collective (every rank calls it)."""
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks_here = node.size
    node.Free()
    if wait != "auto":
        return wait
    return "spin" if ranks_here <= len(os.sched_getaffinity(0)) else "yield"


def _wait(requests: list, wait: str) -> None:
    """Waitall.  "spin": MPI's blocking wait (MPICH polls the network at full speed);
    "yield": test, and give the core away between tests (more ranks than cores);
    "sleep": test, and sleep 0.1 ms between tests (frees the core, adds latency);
    "backoff": yield for the first 0.2 ms of a wait, then sleep."""
    from mpi4py import MPI
    if wait == "spin":
        MPI.Request.Waitall(requests)
        return
    began = time.perf_counter()
    while not MPI.Request.Testall(requests):
        _idle(wait, began)


def _idle(wait: str, began: float) -> None:
    """One pause between two tests of a wait that started at `began`."""
    if wait == "sleep" or (wait == "backoff"
                           and time.perf_counter() - began > BACKOFF_SECONDS):
        time.sleep(SLEEP_SECONDS)
    else:
        os.sched_yield()


class _Batches:
    """Mini-batches of a worker's shard from its own seeded generator."""

    def __init__(self, data: tuple[np.ndarray, np.ndarray], batch_size: int, seed: int,
                 rank: int, start: int):
        self.X, self.y = data
        self.batch_size = min(batch_size, len(self.y))
        self.rng = np.random.default_rng([seed, rank, start])

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rng.integers(len(self.y), size=self.batch_size)
        return self.X[rows], self.y[rows]


class _Recorder:
    """Snapshots of the parameters on the first worker; losses evaluated at the end so
    that evaluation does not slow the run it measures.  Live progress (log_every) goes
    to rank 0 and does cost an evaluation each time."""

    def __init__(self, comm, config: _Config, objective: Objective, eval_data, active: bool,
                 log: Callable[[str], None]):
        self.comm, self.config, self.objective = comm, config, objective
        self.eval_data, self.active, self.log = eval_data, active, log
        self.started = time.perf_counter()
        self.snapshots: list[tuple[float, int, np.ndarray]] = []

    def wants(self, steps: int, final: bool = False) -> bool:
        """Whether a call at `steps` would record or log (to skip fetching a snapshot)."""
        every, log_every = self.config.record_every, self.config.log_every
        return self.active and (final or steps == 0 or bool(every and steps % every == 0)
                                or bool(log_every and steps % log_every == 0))

    def __call__(self, steps: int, params: np.ndarray, final: bool = False) -> None:
        if not self.active:
            return
        every = self.config.record_every
        if final or steps == 0 or (every and steps % every == 0):
            self.snapshots.append((time.perf_counter() - self.started, steps, params.copy()))
        if self.config.log_every and steps % self.config.log_every == 0 and not final:
            loss = self.objective.loss(params, *self.eval_data)
            line = np.array([steps, time.perf_counter() - self.started, loss])
            if self.comm.rank == 0:
                self.log(_progress_line(line))
            else:
                self.comm.Send(line, dest=0, tag=LOG)

    def history(self) -> list[tuple[float, int, float]]:
        return [(seconds, steps, self.objective.loss(params, *self.eval_data))
                for seconds, steps, params in self.snapshots]


def _progress_line(line: np.ndarray) -> str:
    return f"step {int(line[0]):>8d}  {line[1]:8.2f} s  loss {line[2]:.6g}"


# ------------------------------------------------------------------------- servers
def _budget(config: _Config, n_workers: int) -> int:
    """Updates each server applies over the whole job: pushes, or elastic exchanges."""
    unit = config.n_push if config.algorithm in ("downpour", "adaptive_revision") else config.tau
    return math.ceil(config.steps / unit) * n_workers


class _Server:
    """One parameter server: its shard of x, the rule's state, the update budget."""

    def __init__(self, comm, config: _Config, params: np.ndarray, index: int,
                 bounds: tuple[int, int], n_workers: int, wait: str,
                 log: Callable[[str], None], window: Any = None):
        self.comm, self.config, self.index = comm, config, index
        self.lo, self.hi = bounds
        self.window = window
        if window is None:
            self.x = params[self.lo:self.hi].copy()
            self.published = np.zeros(3, dtype=np.int64)
        else:  # x (and ḡ) live in the window that workers read with MPI_Get
            memory = window.tomemory()
            self.published = np.frombuffer(memory, dtype=np.int64, count=3)
            self.x = np.frombuffer(memory, dtype=params.dtype, count=self.hi - self.lo,
                                   offset=_STATUS_BYTES)
            self.x[...] = params[self.lo:self.hi]
        self.n_workers, self.wait, self.log = n_workers, wait, log
        algorithm = config.algorithm
        self.adagrad = None
        if algorithm == "downpour":
            self.adagrad = Adagrad(self.x, lr=config.lr, eps=config.eps)
            self.state = {"sum_sq": self.adagrad.state["sum_sq"][0]}
        elif algorithm == "adaptive_revision":
            self.state = adaptive_revision_state(self.x)
            if window is not None:
                self.state["gbar"] = np.frombuffer(
                    memory, dtype=params.dtype, count=self.hi - self.lo,
                    offset=_STATUS_BYTES + self.x.nbytes)
                self.state["gbar"][...] = 0
            self.scratch = np.empty((4,) + self.x.shape, dtype=self.x.dtype)
        else:
            self.state = {}
        self.budget = _budget(config, n_workers)
        self.applied = 0
        self.resumed_from: int | None = None
        self.size = params.shape[0]
        # workers read it only after the collective that follows construction and load
        self.published[...] = self.status()

    # checkpoints ---------------------------------------------------------------
    def _path(self):
        return ckpt.path_for(self.config.checkpoint_dir, self.index)

    def _bounds(self) -> tuple[int, int, int, int]:
        return (self.lo, self.hi, self.size, self.config.n_servers)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"params": self.x, **self.state}

    def load(self) -> None:
        """Resume from this server's checkpoint if there is one (raises if it is foreign)."""
        path = self._path()
        if not path.exists():
            return
        names = tuple(self.arrays())
        applied, arrays = ckpt.load(path, algorithm=self.config.algorithm, dtype=self.x.dtype,
                                    bounds=self._bounds(), names=names)
        for name, target in self.arrays().items():
            np.copyto(target, arrays[name])
        self.applied = self.resumed_from = applied
        self.published[...] = self.status()

    def save(self) -> None:
        ckpt.save(self._path(), algorithm=self.config.algorithm, bounds=self._bounds(),
                  count=(self.applied, self.budget), arrays=self.arrays())

    # the loop -----------------------------------------------------------------
    def status(self) -> np.ndarray:
        return np.array([self.applied >= self.budget, self.applied, self.budget],
                        dtype=np.int64)

    @contextlib.contextmanager
    def _exclusive(self, rank: int):
        """This server's window locked against workers' reads while the block updates x
        (and ḡ), then the new status published; nothing to lock without a window."""
        if self.window is None:
            yield
            return
        from mpi4py import MPI
        self.window.Lock(rank, MPI.LOCK_EXCLUSIVE)
        try:
            yield
        finally:
            self.published[...] = self.status()
            self.window.Unlock(rank)

    def serve(self) -> None:
        from mpi4py import MPI
        comm, config = self.comm, self.config
        empty = np.zeros(0, dtype=np.int64)
        grad = np.empty_like(self.x)
        gbar_read = np.empty_like(self.x)
        log_line = np.empty(3)
        status = MPI.Status()
        finished = 0
        every = config.checkpoint_every
        while finished < self.n_workers:
            if self.wait == "spin":
                comm.Probe(MPI.ANY_SOURCE, MPI.ANY_TAG, status)
            else:
                began = time.perf_counter()
                while not comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG, status):
                    _idle(self.wait, began)
            source, tag = status.Get_source(), status.Get_tag()
            if tag == FETCH:
                comm.Recv(empty, source, FETCH)
                comm.Send(self.status(), source, STATUS)
                comm.Send(self.x, source, PARAMS)
                if config.algorithm == "adaptive_revision":
                    comm.Send(self.state["gbar"], source, GBAR)
            elif tag == PUSH:
                comm.Recv(grad, source, PUSH)
                if config.algorithm == "adaptive_revision":
                    comm.Recv(gbar_read, source, PUSH_GBAR)
                if self.applied < self.budget:
                    with self._exclusive(comm.rank):
                        self.applied += 1
                        if config.algorithm == "downpour":
                            self.adagrad.step(grad)  # gdfast's C kernel
                        else:
                            state = self.state
                            adaptive_revision(self.x, grad, gbar_read, state["gbar"],
                                              state["sum_sq"], state["sum_sq_max"],
                                              lr=config.lr, eps=config.eps,
                                              scratch=self.scratch)
                    if every and self.applied % every == 0:
                        self.save()
            elif tag == EXCHANGE:
                comm.Recv(grad, source, EXCHANGE)
                delta = np.zeros_like(self.x)
                if self.applied < self.budget:
                    self.applied += 1
                    # d = α (x_i − x̃) ; x̃ ← x̃ + d ; the worker does x_i ← x_i − d
                    np.multiply(config.lr * config.rho, grad - self.x, out=delta)
                    self.x += delta
                    if every and self.applied % every == 0:
                        self.save()
                comm.Send(self.status(), source, STATUS)
                comm.Send(delta, source, DELTA)
            elif tag == DONE:
                comm.Recv(empty, source, DONE)
                finished += 1
            elif tag == LOG:
                comm.Recv(log_line, source, LOG)
                self.log(_progress_line(log_line))
            else:  # pragma: no cover - a protocol bug, not a user error
                raise RuntimeError(f"server {self.index}: unexpected tag {tag} from rank {source}")
        if every:
            self.save()


# ------------------------------------------------------------------------- workers
class _Worker:
    """An asynchronous worker: Downpour / AdaptiveRevision client or EASGD worker."""

    def __init__(self, comm, config: _Config, params: np.ndarray,
                 bounds: list[tuple[int, int]], n_workers: int, objective: Objective,
                 batches: _Batches, recorder: _Recorder, wait: str, window: Any = None):
        self.comm, self.config, self.bounds = comm, config, bounds
        self.window = window
        self.n_workers, self.objective, self.batches = n_workers, objective, batches
        self.recorder, self.wait = recorder, wait
        self.x = params.copy()
        self.gbar_read = np.zeros_like(self.x)
        self.stop_flags = np.zeros((len(bounds), 3), dtype=np.int64)
        self.empty = np.zeros(0, dtype=np.int64)

    def fetch(self, into: np.ndarray | None = None) -> bool:
        """x (and ḡ) from every server into `into` (default the worker's copy); True when
        every server has spent its budget."""
        target = self.x if into is None else into
        if self.window is not None:
            self._get(target)
            return bool(self.stop_flags[:, 0].all())
        requests = []
        for server, (lo, hi) in enumerate(self.bounds):
            requests.append(self.comm.Irecv(self.stop_flags[server], server, STATUS))
            requests.append(self.comm.Irecv(target[lo:hi], server, PARAMS))
            if self.config.algorithm == "adaptive_revision":
                requests.append(self.comm.Irecv(self.gbar_read[lo:hi], server, GBAR))
            self.comm.Send(self.empty, server, FETCH)
        _wait(requests, self.wait)
        return bool(self.stop_flags[:, 0].all())

    def _get(self, target: np.ndarray) -> None:
        """fetch="window": status, x (and ḡ) with MPI_Get under a shared lock, so that
        the server's exclusive lock around each update makes the read consistent."""
        from mpi4py import MPI
        mpi_type = _mpi_type(target.dtype)
        for server, (lo, hi) in enumerate(self.bounds):
            self.window.Lock(server, MPI.LOCK_SHARED)
            self.window.Get([self.stop_flags[server], MPI.INT64_T], server,
                            (0, 3, MPI.INT64_T))
            self.window.Get([target[lo:hi], mpi_type], server,
                            (_STATUS_BYTES, hi - lo, mpi_type))
            if self.config.algorithm == "adaptive_revision":
                self.window.Get([self.gbar_read[lo:hi], mpi_type], server,
                                (_STATUS_BYTES + (hi - lo) * target.itemsize, hi - lo,
                                 mpi_type))
            self.window.Unlock(server)

    def fetch_center(self) -> np.ndarray:
        """EASGD: a copy of the center x̃ (for the history), leaving x_i alone."""
        center = np.empty_like(self.x)
        self.fetch(into=center)
        return center

    def run(self) -> None:
        if self.config.algorithm in ("downpour", "adaptive_revision"):
            self.run_downpour()
        else:
            self.run_easgd()
        for server in range(len(self.bounds)):
            self.comm.Send(self.empty, server, DONE)

    def run_downpour(self) -> None:
        """Dean et al.'s client: fetch every n_fetch steps, push the accumulated gradient
        every n_push steps (without waiting for the server), optionally step locally."""
        config = self.config
        accumulated = np.zeros_like(self.x)
        outgoing = np.zeros_like(self.x)
        outgoing_gbar = np.zeros_like(self.x)
        pushes: list = []
        steps = 0
        local_sgd = SGD(self.x, lr=config.local_lr) if config.local_lr else None
        if self.fetch():
            return
        self.recorder(0, self.x)
        while True:
            if steps and steps % config.n_fetch == 0:
                _wait(pushes, self.wait)  # our own last push first, then read
                pushes = []
                if self.fetch():
                    break
            X, y = self.batches.next()
            g = self.objective.gradient(self.x, X, y)
            accumulated += g
            if local_sgd is not None:
                local_sgd.step(g)
            steps += 1
            if steps % config.n_push == 0:
                _wait(pushes, self.wait)
                outgoing, accumulated = accumulated, outgoing
                accumulated[:] = 0
                np.copyto(outgoing_gbar, self.gbar_read)
                pushes = []
                revision = config.algorithm == "adaptive_revision"
                for server, (lo, hi) in enumerate(self.bounds):
                    # Window reads do not queue behind our pushes the way fetch messages
                    # do; a synchronous send (done once the server has taken it) keeps a
                    # fast worker from running ahead on parameters that lack its pushes.
                    last = self.comm.Issend if self.window is not None else self.comm.Isend
                    pushes.append((self.comm.Isend if revision else last)(
                        outgoing[lo:hi], server, PUSH))
                    if revision:
                        pushes.append(last(outgoing_gbar[lo:hi], server, PUSH_GBAR))
            self.recorder(steps, self.x)
        _wait(pushes, self.wait)
        self.recorder(steps, self.x, final=True)

    def run_easgd(self) -> None:
        """Asynchronous EASGD / EAMSGD: local SGD (Nesterov) steps, and every τ steps the
        elastic exchange with the center, shard by shard."""
        config = self.config
        if self.fetch():  # start from the center (after a resume, the saved one)
            return
        local = (SGD(self.x, lr=config.lr) if config.algorithm == "easgd"
                 else Nesterov(self.x, lr=config.lr, momentum=config.momentum))
        delta = np.zeros_like(self.x)
        steps = 0
        record = self.recorder.wants
        if record(0):
            self.recorder(0, self.fetch_center())
        while True:
            X, y = self.batches.next()
            g = self.objective.gradient(self.x, X, y).astype(self.x.dtype, copy=False)
            local.step(g)  # gdfast's SGD or Nesterov (SPEC 1.1 form) kernel
            steps += 1
            if steps % config.tau == 0:
                requests = []
                for server, (lo, hi) in enumerate(self.bounds):
                    requests.append(self.comm.Irecv(self.stop_flags[server], server, STATUS))
                    requests.append(self.comm.Irecv(delta[lo:hi], server, DELTA))
                    self.comm.Send(self.x[lo:hi], server, EXCHANGE)
                _wait(requests, self.wait)
                self.x -= delta
                if self.stop_flags[:, 0].all():
                    break
            if record(steps):
                self.recorder(steps, self.fetch_center())
        if record(steps, final=True):
            self.recorder(steps, self.fetch_center(), final=True)


# ------------------------------------------------------------- synchronous EASGD
def _load_synchronous(comm, config: _Config, params: np.ndarray):
    """Rank 0 reads synchronous EASGD's checkpoint, if resuming and there is one."""
    if not (config.resume and comm.rank == 0):
        return None
    path = ckpt.path_for(config.checkpoint_dir, 0)
    if not path.exists():
        return None
    step, arrays = ckpt.load(path, algorithm="easgd-sync", dtype=params.dtype,
                             bounds=(0, params.shape[0], params.shape[0], 0),
                             names=("center", "workers"))
    if arrays["workers"].shape != (comm.size, params.shape[0]):
        raise ValueError(f"checkpoint {os.fspath(path)!r}: saved {arrays['workers'].shape[0]} "
                         f"workers, this job has {comm.size} ranks")
    return step, arrays


def _synchronous_easgd(comm, config: _Config, params: np.ndarray, objective: Objective,
                       batches: _Batches, recorder: _Recorder,
                       loaded) -> tuple[int | None, np.ndarray]:
    """Every rank a worker; x̃ replicated; one Allreduce of Σ_i (x_i − x̃) per step.
    Returns (the step it resumed from or None, this rank's x_i); x̃ ends up in `params`."""
    from mpi4py import MPI
    x = params.copy()
    center = params
    start = comm.bcast(loaded[0] if loaded else 0, root=0)
    if start:
        if comm.rank == 0:
            center[...] = loaded[1]["center"]
        comm.Bcast(center, root=0)
        comm.Scatter(loaded[1]["workers"] if comm.rank == 0 else None, x, root=0)
    bounds = (0, x.shape[0], x.shape[0], 0)
    pull = np.empty_like(x)
    mpi_type = _mpi_type(x.dtype)
    recorder(start, center)
    for step in range(start + 1, config.steps + 1):
        X, y = batches.next()
        g = objective.gradient(x, X, y).astype(x.dtype, copy=False)
        diff = x - center
        comm.Allreduce([diff, mpi_type], [pull, mpi_type], op=MPI.SUM)
        x -= config.lr * (g + config.rho * diff)
        center += (config.lr * config.rho) * pull
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            gathered = (np.empty((comm.size, x.shape[0]), dtype=x.dtype)
                        if comm.rank == 0 else None)
            comm.Gather(x, gathered, root=0)
            if comm.rank == 0:
                ckpt.save(ckpt.path_for(config.checkpoint_dir, 0), algorithm="easgd-sync",
                          bounds=bounds, count=(step, config.steps),
                          arrays={"center": center, "workers": gathered})
        recorder(step, center)
    recorder(config.steps, center, final=True)
    return (start or None), x


# --------------------------------------------------------------------------- train
def train(algorithm: str, objective: Objective, params: np.ndarray,
          data: tuple[np.ndarray, np.ndarray] | None, *, comm: Any = None,
          n_servers: int | None = None, steps: int = 1000, batch_size: int = 32,
          lr: float = 0.1, n_fetch: int = 1, n_push: int = 1, local_lr: float = 0.0,
          eps: float = 1e-8, rho: float | None = None, tau: int = 4, momentum: float = 0.9,
          synchronous: bool = False, seed: int = 0, checkpoint_dir: str | None = None,
          checkpoint_every: int = 0, resume: bool = False, eval_data: Any = None,
          record_every: int = 0, log_every: int = 0, log: Callable[[str], None] = print,
          threads: int = 1, wait: str = "auto", fetch: str = "auto") -> TrainResult:
    """Train `params` with `algorithm` on every rank of `comm` (default MPI.COMM_WORLD).

    Call it on every rank with the same arguments, except `data` = (X, y), the rank's
    own rows (ignored on servers, which may pass None).  `params` (1-d float32/float64)
    is the start; servers take their slice of it.  Algorithms (SPEC.md section 3):

      downpour            servers apply Adagrad (gdfast's kernel), lr = η, eps = ε
      adaptive_revision   servers apply AdaptiveRevision, lr = α, eps = δ²
      easgd               workers: local SGD with lr = η; every `tau` steps the elastic
                          exchange with the center, α = lr·rho (default rho: α = 0.9/p,
                          Zhang et al.'s β = pα = 0.9).  synchronous=True: every rank a
                          worker, x̃ by Allreduce, exchanges every step
      eamsgd              easgd with Nesterov momentum `momentum` (δ) on the local steps

    Downpour / AdaptiveRevision workers fetch every `n_fetch` steps and push their
    accumulated gradient every `n_push` steps; `local_lr` > 0 also steps the worker's
    copy between fetches (Dean et al.'s client).  `steps`: worker steps per worker; the
    servers stop the job after n_workers·⌈steps/n_push⌉ pushes (EASGD: ⌈steps/tau⌉
    exchanges per worker), so fast workers do more of them.  `checkpoint_every` > 0:
    servers save their state every that many updates into `checkpoint_dir`; `resume`
    continues from there (workers restart from the saved parameters).

    `eval_data` (X, y), on the first worker (rank n_servers; default its own rows),
    is where the history's losses are evaluated, every `record_every` steps of that
    worker; `log_every` > 0 prints progress through rank 0's `log`.  `threads`: OpenMP
    (and BLAS, through threadpoolctl if present) threads per rank.  `wait`: "spin" waits
    in MPI's blocking calls (MPICH spins at full speed), "yield" tests and gives the core
    away between tests, "sleep" sleeps 0.1 ms between tests, "backoff" yields for 0.2 ms
    then sleeps; "auto" (default) spins unless this node has more ranks than cores, then
    yields (measured best of the four on a 2-core machine, docs/distributed.md).
    `fetch`: "window" (Downpour and AdaptiveRevision) reads the servers' MPI windows with
    MPI_Get under a shared lock, the server holding an exclusive lock on its own window
    while it applies each update; "message" asks the server loop (EASGD always does);
    "auto" (default): window where it applies, 2-7x faster for 1e6 parameters on one node
    (scripts/distributed_bench.py).  A window read does not wait for the server loop, so
    it may miss the reader's own last push (one more update of staleness).

    A bad configuration raises DistributedConfigError with the same message on every
    rank, before any training: n_fetch < 1, more servers than ranks allow, params of
    different shapes on different ranks, data that does not match params, …
    """
    if comm is None:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    size, rank = comm.size, comm.rank
    options = dict(wait=wait, fetch=fetch, steps=steps, batch_size=batch_size, lr=lr, n_fetch=n_fetch,
                   n_push=n_push, local_lr=local_lr, eps=eps, rho=rho, tau=tau,
                   momentum=momentum, synchronous=synchronous, seed=seed,
                   checkpoint_dir=checkpoint_dir,
                   checkpoint_every=checkpoint_every, resume=resume, log_every=log_every,
                   record_every=record_every)
    error, config, signature = None, None, None
    try:
        config = _check_config(size, algorithm, n_servers, **options)
    except ValueError as exc:
        error = str(exc)
    _agree(comm, error, None if config is None else config.signature(), "configuration")
    role = "server" if rank < config.n_servers else "worker"
    error = None
    try:
        params, signature = _check_arrays(params, data, role)
        if config.checkpoint_dir is not None and rank == 0:
            os.makedirs(config.checkpoint_dir, exist_ok=True)
    except (ValueError, OSError) as exc:
        error = str(exc)
    _agree(comm, error, signature, "params (shape, dtype)")
    n_workers = size - config.n_servers
    first_worker = config.n_servers
    wait = _wait_mode(comm, wait)
    threadpool = _limit_threads(threads)
    try:
        return _run(comm, config, params, data, objective, role, n_workers, first_worker,
                    eval_data, log, wait)
    finally:
        if threadpool is not None:
            threadpool.restore_original_limits()


def _limit_threads(threads: int):
    from .. import set_num_threads
    set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def _run(comm, config: _Config, params: np.ndarray, data, objective: Objective, role: str,
         n_workers: int, first_worker: int, eval_data, log, wait: str) -> TrainResult:
    rank = comm.rank
    # Servers load their checkpoints first; a foreign or unreadable one stops every rank.
    server = loaded = window = None
    error = None
    bounds = _shard_bounds(params.shape[0], config.n_servers) if config.n_servers else []
    if config.fetch == "window":  # collective: servers expose status, x (and ḡ)
        from mpi4py import MPI
        arrays = 2 if config.algorithm == "adaptive_revision" else 1
        size = (_STATUS_BYTES + arrays * (bounds[rank][1] - bounds[rank][0]) *
                params.itemsize) if role == "server" else 0
        window = MPI.Win.Allocate(size, 1, comm=comm)
    try:
        if role == "server":
            server = _Server(comm, config, params, rank, bounds[rank], n_workers,
                             wait, log, window)
            if config.resume:
                server.load()
        elif config.synchronous:
            loaded = _load_synchronous(comm, config, params)
    except (ValueError, OSError) as exc:
        error = str(exc)
    _agree(comm, error, None, "checkpoint")
    resumed = comm.allgather(server.resumed_from if server else None)
    resumed_from = resumed[0] if config.n_servers else None
    if config.resume and rank == 0 and config.n_servers:
        found = [r for r in resumed[:config.n_servers] if r is not None]
        log(f"resuming from checkpoints at {resumed[:config.n_servers]} updates" if found
            else f"no checkpoint in {config.checkpoint_dir!r}: starting from the beginning")
    if role == "worker" and eval_data is None:
        eval_data = data
    recorder = _Recorder(comm, config, objective, eval_data, rank == first_worker, log)
    start = 0 if resumed_from is None else resumed_from
    batches = (_Batches(data, config.batch_size, config.seed, rank, start)
               if role == "worker" else None)

    if config.synchronous:
        final = params.copy()
        resumed_from, local = _synchronous_easgd(comm, config, final, objective, batches,
                                                 recorder, loaded)
        history = recorder.history() if rank == first_worker else None
        history = comm.bcast(history, root=first_worker)
        return TrainResult(final, history, config.steps, resumed_from, role, local)

    if role == "server":
        server.serve()
        shard, applied, local = server.x.copy(), server.applied, None
    else:
        worker = _Worker(comm, config, params, bounds, n_workers, objective, batches,
                         recorder, wait, window)
        worker.run()
        shard, applied, local = params[:0], 0, worker.x
    if window is not None:
        window.Free()
    # The final parameters: servers' shards, gathered on every rank.
    final = np.empty_like(params)
    counts = [hi - lo for lo, hi in bounds] + [0] * n_workers
    displacements = [lo for lo, _ in bounds] + [0] * n_workers
    mpi_type = _mpi_type(params.dtype)
    comm.Allgatherv([np.ascontiguousarray(shard), mpi_type],
                    [final, counts, displacements, mpi_type])
    applied = comm.bcast(applied, root=0)
    history = recorder.history() if rank == first_worker else None
    history = comm.bcast(history, root=first_worker)
    return TrainResult(final, history, applied, resumed_from, role, local)
