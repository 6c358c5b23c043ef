"""Push and fetch through gdfast.distributed's server loop, dense and sparse messages,
Adagrad (Downpour) and AdaptiveRevision servers; 1 server + 1 worker.

    OMP_NUM_THREADS=1 mpiexec -n 2 python bench/distributed_push.py \
        [--size 1000000] [--touched 1000] [--repeats 5] [--pushes 20]

Rank 0 runs the engine's `Server.serve`; rank 1 speaks the protocol (transport.py).  Each
block of `pushes` operations is timed at the worker, wall clock, and ends with a fetch, so
every push has been applied when the clock stops; the CPU time the server spends handling
the block's messages (receiving, applying the rule, answering; time.thread_time, the final
fetch included, waiting between messages not) is reported too.  Blocks of every (server rule, message kind) run in
turn, `repeats` times, and the medians are printed: interleaved, so load changes hit all
of them alike.  float32.  Rows:

  push dense    Downpour: g (size values); AdaptiveRevision: (g, ḡ_read), 2·size values
  push sparse   `touched` coordinates: k, the indices and their values (SPARSE_PUSH)
  fetch dense   STATUS + x (+ ḡ)
  fetch sparse  the `touched` coordinates' x (+ ḡ)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from mpi4py import MPI

from gdfast.distributed.costs import ProbeClient, serve_timed

RULES = {"Adagrad": "downpour", "AdaptiveRevision": "adaptive_revision"}


def block(comm, algorithm: str, operation: str, size: int, index: np.ndarray, pushes: int):
    """One block; on the worker (seconds, bytes, server CPU seconds) per operation."""
    if comm.rank == 0:
        serve_timed(comm, algorithm, size, np.float32)
        return None
    client = ProbeClient(comm, algorithm, size, np.float32, index)
    kind, form = operation.split()
    act = getattr(client, kind)
    began = time.perf_counter()
    for _ in range(pushes):
        sent = act(form == "sparse")
    client.fetch(True)  # every push applied
    seconds = (time.perf_counter() - began) / pushes
    return seconds, sent, client.done() / pushes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--touched", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pushes", type=int, default=20)
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    index = np.sort(np.random.default_rng(0).choice(args.size, args.touched, replace=False))
    operations = ["push dense", "push sparse", "fetch dense", "fetch sparse"]
    results: dict[tuple[str, str], list] = {}
    for _ in range(args.repeats):
        for rule, algorithm in RULES.items():
            for operation in operations:
                measured = block(comm, algorithm, operation, args.size, index, args.pushes)
                results.setdefault((rule, operation), []).append(measured)
    if comm.rank != 1:
        return
    print(
        f"{args.size:,} float32 parameters, {args.touched:,} touched, {args.repeats} blocks of "
        f"{args.pushes}, load average {os.getloadavg()[0]:.1f}"
    )
    print("| rule | operation | bytes | wall ms (median) | server CPU ms (median) |")
    print("|---|---|---:|---:|---:|")
    for (rule, operation), values in results.items():
        wall, sent, cpu = (np.median([v[i] for v in values]) for i in range(3))
        print(f"| {rule} | {operation} | {sent:,.0f} | {wall * 1e3:.3f} | {cpu * 1e3:.3f} |")


if __name__ == "__main__":
    main()
