"""Push and fetch rates of gdfast.distributed's server loop, against one-sided MPI windows.

    OMP_NUM_THREADS=1 mpiexec -n 2 python -m mpi4py scripts/distributed_bench.py \
        --size 1000000 --repeats 200

Rank 0 is the server, rank 1 the worker (two ranks: one per core here).  Measured at the
worker, wall clock, `repeats` operations after 10 warm-up ones, float32:

  loop fetch         FETCH request → STATUS + PARAMS reply: the engine's fetch
  loop push+adagrad  PUSH of a gradient, the server applying Adagrad (gdfast's kernel) to
                     it; the time of the last push includes a final fetch, so every
                     update has been applied when the clock stops
  loop push+AdaRev   the same with AdaptiveRevision (x, ḡ twice as much data)
  window ...         the engine with fetch="window": MPI_Get of status, x (and ḡ) from
                     the server's window under a shared lock; pushes as above, the
                     server locking its own window exclusively around each update
  rma get            raw MPI_Get of the whole window under a shared passive-target lock
  rma accumulate     raw MPI_Accumulate(SUM) of a gradient under an exclusive lock: the
                     server's rule cannot run here (no one-sided Adagrad), the number is
                     an upper bound on what a one-sided Downpour would get

With MPICH the RMA target (rank 0) must be inside an MPI call to make progress; it
waits in MPI_Barrier (which polls) while the worker runs.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from mpi4py import MPI

from gdfast.distributed import engine


def server_loop_rates(comm, size: int, repeats: int, algorithm: str,
                      fetch: str = "message") -> dict[str, float]:
    params = np.zeros(size, dtype=np.float32)
    config = engine._check_config(comm.size, algorithm, 1, wait="spin", fetch=fetch,
                                  steps=10 ** 9, batch_size=1, lr=0.01, n_fetch=1, n_push=1,
                                  local_lr=0.0, eps=1e-8, rho=0.0, tau=1, momentum=0.0,
                                  synchronous=False, seed=0, checkpoint_dir=None,
                                  checkpoint_every=0, resume=False, log_every=0,
                                  record_every=0)
    bounds = engine._shard_bounds(size, 1)
    rates: dict[str, float] = {}
    window = None
    if fetch == "window":
        arrays = 2 if algorithm == "adaptive_revision" else 1
        window = MPI.Win.Allocate(engine._STATUS_BYTES + arrays * size * 4 if comm.rank == 0
                                  else 0, 1, comm=comm)
    if comm.rank == 0:
        engine._Server(comm, config, params, 0, bounds[0], 1, "spin", print, window).serve()
        if window is not None:
            window.Free()
        return rates
    worker = engine._Worker(comm, config, params, bounds, 1, None, None, None, "spin", window)
    grad = np.full(size, 1e-3, dtype=np.float32)
    for _ in range(10):
        worker.fetch()
    began = time.perf_counter()
    for _ in range(repeats):
        worker.fetch()
    rates["fetch"] = repeats / (time.perf_counter() - began)

    def push():
        requests = [comm.Isend(grad, 0, engine.PUSH)]
        if algorithm == "adaptive_revision":
            requests.append(comm.Isend(worker.gbar_read, 0, engine.PUSH_GBAR))
        MPI.Request.Waitall(requests)
    for _ in range(10):
        push()
    began = time.perf_counter()
    for _ in range(repeats):
        push()
    worker.fetch()  # every push applied
    rates["push"] = repeats / (time.perf_counter() - began)
    comm.Send(worker.empty, 0, engine.DONE)
    if window is not None:
        window.Free()
    return rates


def rma_rates(comm, size: int, repeats: int) -> dict[str, float]:
    itemsize = np.dtype(np.float32).itemsize
    window = MPI.Win.Allocate(size * itemsize if comm.rank == 0 else 0, itemsize, comm=comm)
    rates: dict[str, float] = {}
    if comm.rank == 1:
        buffer = np.empty(size, dtype=np.float32)
        grad = np.full(size, 1e-3, dtype=np.float32)
        for name, lock, operation in (
                ("get", MPI.LOCK_SHARED, lambda: window.Get(buffer, 0)),
                ("accumulate", MPI.LOCK_EXCLUSIVE,
                 lambda: window.Accumulate(grad, 0, op=MPI.SUM))):
            for count in (10, repeats):
                began = time.perf_counter()
                for _ in range(count):
                    window.Lock(0, lock)
                    operation()
                    window.Unlock(0)
                seconds = time.perf_counter() - began
            rates[name] = repeats / seconds
    comm.Barrier()  # rank 0 waits here, inside MPI, so that its window makes progress
    window.Free()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", help="also write the rates to this file")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        raise SystemExit("run with mpiexec -n 2 (one server, one worker)")
    downpour = server_loop_rates(comm, args.size, args.repeats, "downpour")
    comm.Barrier()
    revision = server_loop_rates(comm, args.size, args.repeats, "adaptive_revision")
    comm.Barrier()
    downpour_window = server_loop_rates(comm, args.size, args.repeats, "downpour", "window")
    comm.Barrier()
    revision_window = server_loop_rates(comm, args.size, args.repeats, "adaptive_revision",
                                        "window")
    comm.Barrier()
    rma = rma_rates(comm, args.size, args.repeats)
    if comm.rank == 1:
        megabytes = args.size * 4 / 1e6
        rows = [("loop fetch (x)", downpour["fetch"], 1),
                ("loop fetch (x, ḡ)", revision["fetch"], 2),
                ("loop push + Adagrad", downpour["push"], 1),
                ("loop push + AdaptiveRevision", revision["push"], 2),
                ("window fetch (x)", downpour_window["fetch"], 1),
                ("window fetch (x, ḡ)", revision_window["fetch"], 2),
                ("push + Adagrad, window mode", downpour_window["push"], 1),
                ("push + AdaRevision, window mode", revision_window["push"], 2),
                ("rma get (shared lock)", rma["get"], 1),
                ("rma accumulate (exclusive lock)", rma["accumulate"], 1)]
        print(f"{args.size:,} float32 parameters ({megabytes:.1f} MB), {args.repeats} "
              f"operations each, 1 server + 1 worker, MPICH {MPI.Get_version()}")
        print(f"{'operation':<34} {'per s':>8} {'ms each':>8} {'GB/s':>6}")
        for name, rate, arrays in rows:
            print(f"{name:<34} {rate:8.1f} {1e3 / rate:8.2f} "
                  f"{rate * megabytes * arrays / 1e3:6.2f}")
        if args.json:
            with open(args.json, "w") as file:
                json.dump({name: rate for name, rate, _ in rows}, file, indent=1)


if __name__ == "__main__":
    main()
