"""`python -m gdfast.distributed train|simulate ...` (also `python -m gdfast distributed ...`).

    mpiexec -n 4 python -m gdfast.distributed train --algorithm downpour --servers 1
    python -m gdfast.distributed simulate --algorithm adaptive_revision --workers 100

`train` runs on every rank of an MPI job: every rank builds the same data set (generated
from a seed, or one bundled with scikit-learn), workers take their shard of its rows,
rank 0 prints progress and the final full-data loss.  A bad configuration prints one
clear message on every rank and exits with status 2; an error on one rank during training
prints "rank R: error: ..." and aborts the whole job.  `simulate` runs the staleness
simulator in one process and prints its loss curve.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .config import ALGORITHMS, DEFAULT_TIMEOUT, WAIT_MODES, DistributedConfigError
from .objectives import Dataset, generated, scikit_learn, sparse_logistic
from .simulate import DELAY_MODELS


def load_data(name: str, rows: int, features: int, seed: int, dtype: str) -> Dataset:
    """--data: generated-least_squares, generated-logistic, diabetes or breast_cancer."""
    if name.startswith("generated-"):
        return generated(name.removeprefix("generated-"), rows, features, seed=seed, dtype=dtype)
    if name == "sparse-logistic":
        data = sparse_logistic(rows, features, seed=seed)
        return Dataset(data.X.astype(dtype), data.y.astype(dtype), data.objective, data.name)
    return scikit_learn(name, dtype=dtype)


DATA_CHOICES = [
    "generated-least_squares",
    "generated-logistic",
    "sparse-logistic",
    "diabetes",
    "breast_cancer",
]


def _command(commands, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A `train` or `simulate` sub-command with the options both take."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("--synchronous", action="store_true", help="synchronous EASGD")
    parser.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default="downpour",
        help="downpour: Adagrad servers; adaptive_revision: delay-tolerant "
        "Adagrad servers; easgd / eamsgd: elastic averaging (EAMSGD "
        "with Nesterov momentum); default downpour",
    )
    parser.add_argument(
        "--data",
        choices=DATA_CHOICES,
        default="generated-least_squares",
        help="the data set, built alike on every rank (workers take their "
        "shard of its rows); default generated-least_squares",
    )
    parser.add_argument("--rows", type=int, default=4096, help="generated data: rows")
    parser.add_argument("--features", type=int, default=32, help="generated data: features")
    parser.add_argument(
        "--lr",
        type=float,
        default=0.1,
        help="η (Adagrad, local SGD) or α (AdaptiveRevision); default 0.1",
    )
    parser.add_argument("--eps", type=float, default=1e-8, help="Adagrad ε = AdaptiveRevision δ²")
    parser.add_argument(
        "--rho",
        type=float,
        default=None,
        help="EASGD ρ (α = lr·ρ); default 0.9/(workers·lr), β = pα = 0.9",
    )
    parser.add_argument("--tau", type=int, default=4, help="EASGD period τ (default 4)")
    parser.add_argument("--momentum", type=float, default=0.9, help="EAMSGD δ (default 0.9)")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="examples per gradient (default 32)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the generated data and of every worker's batches",
    )
    return parser


def add_parser(subparsers) -> None:
    """Register `distributed` (with `train` and `simulate`) on gdfast's command line."""
    parser = subparsers.add_parser(
        "distributed",
        help="distributed SGD on MPI, and the staleness simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_commands(parser)


def add_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(title="commands", dest="distributed_command", required=True)
    train = _command(
        commands, "train", "train on MPI (run under mpiexec)", "Train on every rank of the MPI job."
    )
    train.add_argument(
        "--servers",
        type=int,
        default=None,
        help="parameter-server ranks (default 1; none with --synchronous)",
    )
    train.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="gradient steps per worker (default 1000); the servers count the "
        "job: they stop it after workers x ceil(steps/n_push) pushes "
        "(EASGD: ceil(steps/tau) exchanges per worker), so a fast worker "
        "may take more steps than this and a slow one fewer",
    )
    train.add_argument(
        "--n-fetch",
        type=int,
        default=1,
        help="Downpour/AdaptiveRevision: a worker fetches the parameters "
        "every this many of its steps (default 1)",
    )
    train.add_argument(
        "--n-push",
        type=int,
        default=1,
        help="Downpour/AdaptiveRevision: a worker pushes its summed gradient "
        "every this many of its steps (default 1)",
    )
    train.add_argument(
        "--local-lr",
        type=float,
        default=0.0,
        help="Downpour: worker's own SGD step between fetches (default 0)",
    )
    train.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float64",
        help="parameters' and data's dtype (default float64)",
    )
    train.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where servers (and EASGD workers) write their checkpoints",
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="server updates between checkpoints (0: none)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the checkpoints in --checkpoint-dir"
    )
    train.add_argument(
        "--log-every",
        type=int,
        default=0,
        help="first worker's steps between progress lines (0: none)",
    )
    train.add_argument(
        "--record-every",
        type=int,
        default=0,
        help="first worker's steps between history records (printed at the end)",
    )
    train.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads per rank")
    train.add_argument(
        "--wait",
        choices=WAIT_MODES,
        default="auto",
        help="how a rank waits for a message: spin (test without pause), "
        "yield (sched_yield between tests), sleep (0.1 ms between "
        "tests), backoff (yield 0.2 ms, then sleep); auto (default): backoff "
        "with one server, sleep with several (measured, "
        "docs/distributed.md)",
    )
    train.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds a rank waits for a silent peer before the job aborts "
        "naming its rank (default %(default)s); must exceed a worker's "
        "longest step",
    )
    train.add_argument(
        "--sparse",
        action="store_true",
        help="Downpour/AdaptiveRevision: keep the data as CSR (scipy) and send only the "
        "coordinates a worker touches: pushes of (indices, values), fetches of the "
        "coordinates of the next batches",
    )
    train.set_defaults(command=main_train)
    simulate = _command(
        commands,
        "simulate",
        "the staleness simulator (one process)",
        "p virtual workers, deterministic delays.",
    )
    simulate.add_argument(
        "--workers",
        type=int,
        default=100,
        help="virtual workers p (default 100); with constant delays each "
        "gradient is p - 1 updates stale",
    )
    simulate.add_argument(
        "--updates",
        type=int,
        default=20_000,
        help="server updates in the whole run, all workers together (default 20000)",
    )
    simulate.add_argument(
        "--delay",
        choices=sorted(DELAY_MODELS),
        default="constant",
        help="each worker's compute time, in units of p updates: constant "
        "(staleness p - 1), uniform U(0, 2), heavy_tailed Lomax(1.5)/2",
    )
    simulate.set_defaults(command=main_simulate)


def main_train(args: argparse.Namespace) -> int:
    from mpi4py import MPI

    from .job import train

    comm = MPI.COMM_WORLD
    data = load_data(args.data, args.rows, args.features, args.seed, args.dtype)
    if args.sparse:
        from scipy import sparse

        data = Dataset(sparse.csr_matrix(data.X), data.y, data.objective, data.name)
    n_servers = 0 if args.synchronous else (1 if args.servers is None else args.servers)
    n_workers = comm.size - n_servers
    worker = comm.rank - n_servers
    mine = data.shard(worker, n_workers) if 0 <= worker < n_workers else None
    params = np.zeros(data.X.shape[1], dtype=args.dtype)
    cpu_began = time.process_time()
    began = time.perf_counter()
    try:
        result = train(
            args.algorithm,
            data.objective,
            params,
            mine,
            comm=comm,
            n_servers=args.servers,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            n_fetch=args.n_fetch,
            n_push=args.n_push,
            local_lr=args.local_lr,
            eps=args.eps,
            rho=args.rho,
            tau=args.tau,
            momentum=args.momentum,
            synchronous=args.synchronous,
            seed=args.seed,
            checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            eval_data=(data.X, data.y),
            record_every=args.record_every,
            log_every=args.log_every,
            threads=args.threads,
            wait=args.wait,
            timeout=args.timeout,
            sparse=args.sparse,
            log=lambda line: print(line, flush=True),
        )
    except DistributedConfigError as error:
        print(f"gdfast.distributed: rank {comm.rank}: error: {error}", file=sys.stderr, flush=True)
        comm.Barrier()  # every rank has printed before any exits (and aborts the job)
        return 2
    seconds = time.perf_counter() - began
    # every rank's CPU seconds and messages, for rank 0 to print (allgather: never None)
    cpu = comm.allgather(time.process_time() - cpu_began)
    traffic = comm.allgather(result.traffic)
    if comm.rank == 0:
        for elapsed, steps, loss in result.history:
            print(f"history {elapsed:9.3f} s  step {steps:>8d}  loss {loss:.6g}")
        resumed = "" if result.resumed_from is None else f", resumed at {result.resumed_from}"
        print(
            f"{args.algorithm}{' (synchronous)' if args.synchronous else ''} on "
            f"{data.name}: {n_workers} worker(s), {n_servers} server(s), "
            f"{result.applied} updates{resumed}, {seconds:.2f} s"
        )
        print(f"cpu {sum(cpu):.2f} s (ranks: {', '.join(f'{c:.2f}' for c in cpu)})")
        for rank, counts in enumerate(traffic):
            if counts.get("pushes") and counts.get("fetches"):
                print(
                    f"rank {rank}: {counts['pushes']} pushes, "
                    f"{counts['push_bytes'] / counts['pushes']:.0f} bytes each; "
                    f"{counts['fetches']} fetches, "
                    f"{counts['fetch_bytes'] / counts['fetches']:.0f} bytes each"
                )
        print(f"final loss {data.objective.loss(result.params, data.X, data.y):.10g}", flush=True)
    return 0


def main_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate

    data = load_data(args.data, args.rows, args.features, args.seed, "float64")
    began = time.perf_counter()
    try:
        run = simulate(
            args.algorithm,
            data,
            workers=args.workers,
            updates=args.updates,
            lr=args.lr,
            delay=args.delay,
            batch_size=args.batch_size,
            eps=args.eps,
            rho=args.rho,
            tau=args.tau,
            momentum=args.momentum,
            synchronous=args.synchronous,
            seed=args.seed,
            record_every=max(args.updates // 10, 1),
        )
    except (TypeError, ValueError) as error:
        print(f"gdfast.distributed simulate: error: {error}", file=sys.stderr)
        return 2
    for done, loss in zip(run.updates, run.loss):
        print(f"update {done:>9d}  loss {loss:.6g}")
    staleness = (
        f"staleness mean {run.staleness.mean():.1f}, max {run.staleness.max()}"
        if run.staleness.size
        else "fresh gradients"
    )
    print(
        f"{args.algorithm} on {data.name}, {args.workers} workers, {args.delay} delays: "
        f"{staleness}; {time.perf_counter() - began:.2f} s"
    )
    return 0
