"""`train`: one distributed job on every rank of an MPI communicator.

Ranks 0 .. n_servers − 1 are parameter servers (gdfast.distributed.server), each owning
a contiguous slice of the flat parameter vector; the other ranks are workers
(gdfast.distributed.worker).  Synchronous EASGD has no servers: every rank is a worker
and the center is kept on all of them (gdfast.distributed.easgd).

All traffic is two-sided point-to-point messages (gdfast.distributed.transport): a
server loop answers fetches, applies pushes and elastic exchanges one message at a time.
One-sided MPI windows were measured as a fetch transport and dropped: slower as soon as
there is more than one worker, and a passive-target lock cannot be waited on with a
deadline, so a stopped server hung its readers (docs/distributed.md).

The start-up is collective and checked (gdfast.distributed.config); after it, every wait
has a deadline and any exception on any rank aborts the job with its rank and message.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from . import checkpoint as ckpt
from . import easgd
from .config import DEFAULT_TIMEOUT, TrainResult, agree, check_arrays, check_config
from .objectives import Objective
from .recorder import Batches, Recorder
from .server import Server
from .transport import Link, abort_on_error, mpi_type, resolve_wait, shard_bounds
from .worker import Worker


def train(
    algorithm: str,
    objective: Objective,
    params: np.ndarray,
    data: tuple[np.ndarray, np.ndarray] | None,
    *,
    comm: Any = None,
    n_servers: int | None = None,
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 0.1,
    n_fetch: int = 1,
    n_push: int = 1,
    local_lr: float = 0.0,
    eps: float = 1e-8,
    rho: float | None = None,
    tau: int = 4,
    momentum: float = 0.9,
    synchronous: bool = False,
    seed: int = 0,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    eval_data: Any = None,
    record_every: int = 0,
    log_every: int = 0,
    log: Callable[[str], None] = print,
    threads: int = 1,
    wait: str = "auto",
    timeout: float = DEFAULT_TIMEOUT,
    sparse: bool = False,
) -> TrainResult:
    """Train `params` with `algorithm` on every rank of `comm` (default MPI.COMM_WORLD).

    Call it on every rank with the same arguments, except `data` = (X, y), the rank's
    own rows (ignored on servers, which may pass None).  `params` (1-d float32/float64)
    is the start; servers take their slice of it.  Algorithms (SPEC.md section 3):

      downpour            servers apply Adagrad (gdfast's kernel), lr = η, eps = ε
      adaptive_revision   servers apply AdaptiveRevision, lr = α, eps = δ²
      easgd               workers: local SGD with lr = η; every `tau` steps the elastic
                          exchange with the center, α = lr·rho (default rho: α = 0.9/p,
                          Zhang et al.'s β = pα = 0.9).  synchronous=True: every rank a
                          worker, x̃ by Allreduce, the elastic step every `tau` steps
      eamsgd              easgd with Nesterov momentum `momentum` (δ), Zhang et al.'s
                          Algorithm 2: the elastic force acts on x_i

    Downpour / AdaptiveRevision workers fetch every `n_fetch` of their steps (the fetch
    overlaps the step before it) and push their accumulated gradient every `n_push`
    steps; `local_lr` > 0 also steps the worker's copy between fetches (Dean et al.'s
    client).  `steps`: steps per worker; the servers count the job: they stop it after
    n_workers·⌈steps/n_push⌉ pushes (EASGD: ⌈steps/tau⌉ exchanges per worker), so fast
    workers do more of them.  `checkpoint_every` > 0: servers save their state every that
    many updates into `checkpoint_dir` (EASGD workers their x_i and velocity too);
    `resume` continues from the largest update count every server has saved.

    `eval_data` (X, y), on the first worker (rank n_servers; default its own rows),
    is where the history's losses are evaluated, every `record_every` steps of that
    worker; `log_every` > 0 prints progress through rank 0's `log`.  `threads`: OpenMP
    (and BLAS, through threadpoolctl if present) threads per rank.  `wait`, how a rank
    waits for messages: "spin" tests without pause, "yield" gives the core away between
    tests, "sleep" sleeps 0.1 ms between tests, "backoff" yields for 0.2 ms then sleeps;
    "auto" (default): "backoff" with one server, "sleep" with several, the measured
    winners on a loaded 2-core machine (docs/distributed.md).

    `timeout` (seconds, default 30): a rank that waits this long for a peer (a server
    that does not answer, a worker that sends nothing, heartbeats included) raises
    PeerSilentError naming the peer's rank; it must exceed a worker's longest step.
    After start-up, any exception on any rank prints "rank R: error: ..." and aborts the
    whole MPI job (MPI_Abort), however it was launched.

    A bad configuration raises DistributedConfigError with the same message on every
    rank, before any training: n_fetch < 1, more servers than ranks allow, params of
    different shapes on different ranks, data that does not match params, …
    """
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    options = dict(
        wait=wait,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        n_fetch=n_fetch,
        n_push=n_push,
        local_lr=local_lr,
        eps=eps,
        rho=rho,
        tau=tau,
        momentum=momentum,
        synchronous=synchronous,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        log_every=log_every,
        record_every=record_every,
        timeout=timeout,
        sparse=sparse,
    )
    error, config, signature = None, None, None
    try:
        config = check_config(comm.size, algorithm, n_servers, **options)
    except (TypeError, ValueError) as exc:
        error = str(exc)
    agree(comm, error, None if config is None else config.signature(), "configuration")
    role = "server" if comm.rank < config.n_servers else "worker"
    error = None
    try:
        params, data, signature = check_arrays(params, data, role)
        if config.checkpoint_dir is not None and comm.rank == 0:
            os.makedirs(config.checkpoint_dir, exist_ok=True)
    except (TypeError, ValueError, OSError) as exc:
        error = str(exc)
    agree(comm, error, signature, "params (shape, dtype)")
    link = Link(comm, resolve_wait(wait, config.n_servers), config.timeout)
    threadpool = _limit_threads(threads)
    try:
        with abort_on_error(comm):
            return _run(comm, config, params, data, objective, role, eval_data, log, link)
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


def _resume_count(comm, config, server: Server | None) -> int | None:
    """Collective: the largest update count every server has a checkpoint of."""
    counts = comm.allgather(server.saved_counts() if server and config.resume else None)
    saved = counts[: config.n_servers]
    if not config.resume or not any(saved):
        return None
    common = ckpt.common_count(saved)
    if common is None:
        raise ValueError(
            f"checkpoint_dir {config.checkpoint_dir!r}: no update count saved "
            f"by every server (saved: {saved})"
        )
    return common


def _run(
    comm,
    config,
    params: np.ndarray,
    data,
    objective: Objective,
    role: str,
    eval_data,
    log,
    link: Link,
) -> TrainResult:
    rank, n_workers, first_worker = comm.rank, comm.size - config.n_servers, config.n_servers
    bounds = shard_bounds(params.shape[0], config.n_servers) if config.n_servers else []
    # MPI launchers name a dead rank by its pid only: say which rank each pid is.
    pids = comm.gather(os.getpid(), root=0)
    if rank == 0 and comm.size > 1:
        log(
            "ranks: "
            + ", ".join(
                f"{r} {'server' if r < config.n_servers else 'worker'} (pid {pid})"
                for r, pid in enumerate(pids)
            )
        )
    # Servers load their checkpoints first; a foreign or unreadable one stops every rank.
    server = loaded = resumed_from = None
    error = None
    try:
        if role == "server":
            server = Server(comm, config, params, rank, bounds[rank], n_workers, link, log)
        if config.synchronous:
            loaded = easgd.load(comm, config, params)
        else:
            resumed_from = _resume_count(comm, config, server)
            if server is not None and resumed_from is not None:
                server.load(resumed_from)
    except (ValueError, OSError) as exc:
        error = str(exc)
    agree(comm, error, None, "checkpoint")
    if config.resume and rank == 0 and config.n_servers:
        log(
            f"resuming from the checkpoints at {resumed_from} updates"
            if resumed_from is not None
            else f"no checkpoint in {config.checkpoint_dir!r}: starting from the beginning"
        )
    if role == "worker" and eval_data is None:
        eval_data = data
    recorder = Recorder(comm, config, objective, eval_data, rank == first_worker, log)
    batches = (
        Batches(data, config.batch_size, config.seed, rank, resumed_from or 0)
        if role == "worker"
        else None
    )

    traffic: dict[str, int] = {}  # a pushing worker's messages
    if config.synchronous:
        final = params.copy()
        resumed_from, local = easgd.run(
            comm, config, final, objective, batches, recorder, link, loaded
        )
        applied = config.steps
    else:
        if role == "server":
            server.serve(first_worker)
            shard, applied, local = server.x, server.applied, None
        else:
            worker = Worker(comm, config, params, bounds, objective, batches, recorder, link)
            worker.resumed_from = resumed_from
            worker.run()
            shard, applied, local = params[:0], 0, worker.x
            if config.pushes_gradients:
                traffic = worker.traffic
        link.barrier("the job")
        # The final parameters: servers' shards, gathered on every rank.
        final = np.empty_like(params)
        counts = [hi - lo for lo, hi in bounds] + [0] * n_workers
        displacements = [lo for lo, _ in bounds] + [0] * n_workers
        kind = mpi_type(params.dtype)
        comm.Allgatherv([np.ascontiguousarray(shard), kind], [final, counts, displacements, kind])
        applied = comm.bcast(applied, root=0)
    history = recorder.history() if rank == first_worker else None
    history = comm.bcast(history, root=first_worker)
    return TrainResult(final, history, applied, resumed_from, role, local, traffic)
