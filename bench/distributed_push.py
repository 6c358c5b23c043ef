"""Push and fetch through gdfast.distributed's server loop, dense and sparse messages,
Adagrad (Downpour) and AdaptiveRevision servers; 1 server + 1 worker.

    OMP_NUM_THREADS=1 mpiexec -n 2 python bench/distributed_push.py \
        [--size 1000000] [--touched 1000] [--repeats 5] [--pushes 20]

Rank 0 runs the engine's `Server.serve` (costs.TimedServer); rank 1 speaks the protocol
(transport.py, costs.ProbeClient: one fetch first, then each push computed on the last
fetch).  Each block of `pushes` operations is timed at the worker, wall clock; a push block
ends with a (sparse) fetch, so every push has been applied when the clock stops.  The CPU
time the server spends handling the block's messages of the operation's kind (receiving,
applying the rule, answering; time.thread_time, so other processes on a loaded machine
count for little, waiting between messages not) is reported per message, and the part of
a push's spent applying it (the server's rule, `apply_push`: costs.RULE) per push.  Blocks of every
(server rule, operation) run in turn, `repeats` times, and the medians are printed:
interleaved, so load changes hit all of them alike.  The AdaptiveRevision / Adagrad ratio
of each block's server CPU time is printed last (median and range over the blocks).
float32.  Rows:

  push dense    g (size values) and the fetch number it was computed on: AdaptiveRevision's
                server kept the ḡ that fetch read (server.SentGbar), so both rules push alike
  push sparse   `touched` coordinates: the fetch number, k, the indices and their values
  fetch dense   STATUS + x (an AdaptiveRevision server also copies ḡ: the read it keeps);
                each fetch is followed by an empty push that lets the server forget the
                read before it, as the next push of a worker does (not counted)
  fetch sparse  the `touched` coordinates' x (AdaptiveRevision: and keeps their ḡ)
  step dense    a worker's step with one worker (worker.py): the next dense fetch, then
                the dense push computed on the fetch before it (an AdaptiveRevision
                server reads that fetch's ḡ copy and, in the same pass, copies ḡ for the
                new fetch); server CPU of both messages
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from mpi4py import MPI

from gdfast.distributed import transport as wire
from gdfast.distributed.costs import RULE, ProbeClient, serve_timed

RULES = {"Adagrad": "downpour", "AdaptiveRevision": "adaptive_revision"}
TAGS = {
    "push dense": wire.PUSH,
    "push sparse": wire.SPARSE_PUSH,
    "fetch dense": wire.FETCH,
    "fetch sparse": wire.SPARSE_FETCH,
    "step dense": (wire.FETCH, wire.PUSH),
}


def block(comm, algorithm: str, operation: str, size: int, index: np.ndarray, pushes: int):
    """One block; on the worker (wall seconds, bytes, server CPU seconds) per operation."""
    if comm.rank == 0:
        serve_timed(comm, algorithm, size, np.float32)
        return None
    client = ProbeClient(comm, algorithm, size, np.float32, index)
    kind, form = operation.split()
    began = time.perf_counter()
    for _ in range(pushes):
        if kind == "step":
            sent = client.fetch(False) + client.push(False, behind=1)
        else:
            sent = getattr(client, kind)(form == "sparse")
        if kind == "fetch":
            client.release()  # as the worker's next push would
    if kind != "fetch":
        client.fetch(True)  # every push applied
    seconds = (time.perf_counter() - began) / pushes
    busy = client.done()
    tags = TAGS[operation] if kind == "step" else (TAGS[operation],)
    rule = busy[RULE][0] / pushes if kind != "fetch" else 0.0
    return seconds, sent, sum(busy[tag][0] / busy[tag][1] for tag in tags), rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--touched", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pushes", type=int, default=20)
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    index = np.sort(np.random.default_rng(0).choice(args.size, args.touched, replace=False))
    operations = list(TAGS)
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
    print(
        "| rule | operation | bytes | wall ms (median) | server CPU ms (median) "
        "| of which the rule (median) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for (rule, operation), values in results.items():
        wall, sent, cpu, applying = (np.median([v[i] for v in values]) for i in range(4))
        print(
            f"| {rule} | {operation} | {sent:,.0f} | {wall * 1e3:.3f} | {cpu * 1e3:.3f} "
            f"| {applying * 1e3:.3f} |"
        )
    print("\nAdaptiveRevision / Adagrad, per block (interleaved pairs): median [min, max]")
    for operation in operations:
        pairs = list(zip(results[("AdaptiveRevision", operation)], results[("Adagrad", operation)]))
        for name, column in (("server CPU", 2), ("wall", 0), ("rule", 3)):
            if name == "rule" and operation.startswith("fetch"):
                continue
            ratios = [revision[column] / adagrad[column] for revision, adagrad in pairs]
            print(
                f"{operation:<13} {name:<10} {np.median(ratios):5.2f} "
                f"[{min(ratios):.2f}, {max(ratios):.2f}]"
            )


if __name__ == "__main__":
    main()
