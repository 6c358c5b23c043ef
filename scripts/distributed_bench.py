"""Fetch and push times of gdfast.distributed's server loop, 1 server + 1 worker.

    OMP_NUM_THREADS=1 mpiexec -n 2 python scripts/distributed_bench.py --size 1000000 \
        --repeats 200

Rank 0 runs the engine's server (`Server.serve`), rank 1 speaks its protocol.  Measured
at the worker, wall clock and the server's CPU time, `repeats` operations after 10
warm-up ones, float32:

  fetch (x)               FETCH → STATUS + PARAMS, Downpour's fetch
  fetch (x, ḡ)            the same with ḡ (AdaptiveRevision)
  push + Adagrad          a PUSH of g, the server applying Adagrad (gdfast's C kernel);
                          a final fetch makes sure every push has been applied
  push + AdaptiveRevision a PUSH of (g, ḡ_read), the server applying AdaptiveRevision
                          (NumPy, in cache-sized blocks)

`--rules` (no MPI, one process): the CPU time of the server's update alone, interleaved
and repeated: Adagrad (gdfast's C kernel) against AdaptiveRevision as the server applies
it (blocks of REVISION_BLOCK coordinates) and in whole-shard NumPy passes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
from mpi4py import MPI

from gdfast.distributed.config import check_config
from gdfast.distributed.rules import adaptive_revision
from gdfast.distributed.server import Server
from gdfast.distributed.transport import DONE, FETCH, PARAMS, PUSH, STATUS, GBAR, Link


def rates(comm, size: int, repeats: int, algorithm: str) -> dict[str, float]:
    params = np.zeros(size, dtype=np.float32)
    config = _config(algorithm, comm.size)
    link = Link(comm, "spin", 60.0)
    if comm.rank == 0:
        cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        Server(comm, config, params, 0, (0, size), 1, link, print).serve(1)
        used = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu
        comm.send(used, 1)
        return {}
    status, x, gbar = np.zeros(3, np.int64), np.empty_like(params), np.empty_like(params)
    empty = np.zeros(0, np.int64)
    revision = algorithm == "adaptive_revision"
    rows = np.full((2 if revision else 1, size), 1e-3, dtype=np.float32)

    def fetch():
        requests = [comm.Irecv(status, 0, STATUS), comm.Irecv(x, 0, PARAMS)]
        if revision:
            requests.append(comm.Irecv(gbar, 0, GBAR))
        comm.Send(empty, 0, FETCH)
        MPI.Request.Waitall(requests)

    def push():
        comm.Send(rows, 0, PUSH)

    result = {}
    for name, operation in (("fetch", fetch), ("push", push)):
        for _ in range(10):
            operation()
        began = time.perf_counter()
        for _ in range(repeats):
            operation()
        fetch()  # every push applied
        result[name] = (time.perf_counter() - began) / repeats
    comm.Send(empty, 0, DONE)
    result["server cpu"] = comm.recv(source=0)
    return result


def _config(algorithm: str, ranks: int = 2):
    return check_config(
        ranks,
        algorithm,
        1,
        wait="spin",
        steps=10**9,
        batch_size=1,
        lr=0.01,
        n_fetch=1,
        n_push=1,
        local_lr=0.0,
        eps=1e-8,
        rho=0.0,
        tau=1,
        momentum=0.0,
        synchronous=False,
        seed=0,
        checkpoint_dir=None,
        checkpoint_every=0,
        resume=False,
        log_every=0,
        record_every=0,
        timeout=60.0,
    )


def rule_times(size: int, repeats: int, dtype: str) -> None:
    """Median CPU ms of one server update, the three rules interleaved."""
    rng = np.random.default_rng(0)
    params = rng.standard_normal(size).astype(dtype)
    rows = (rng.standard_normal((2, size)) * 1e-3).astype(dtype)
    adagrad = Server(None, _config("downpour"), params, 0, (0, size), 1, None, print)
    blocks = Server(None, _config("adaptive_revision"), params, 0, (0, size), 1, None, print)
    whole = Server(None, _config("adaptive_revision"), params, 0, (0, size), 1, None, print)
    scratch = np.empty((4, size), dtype)

    def whole_pass():
        state = whole.state
        adaptive_revision(
            whole.x,
            rows[0],
            rows[1],
            state["gbar"],
            state["sum_sq"],
            state["sum_sq_max"],
            lr=0.01,
            eps=1e-8,
            scratch=scratch,
        )

    operations = {
        "Adagrad (C kernel)": lambda: adagrad.apply_push(rows[:1]),
        "AdaptiveRevision, blocks": lambda: blocks.apply_push(rows),
        "AdaptiveRevision, whole": whole_pass,
    }
    times = {name: [] for name in operations}
    for _ in range(repeats):
        for name, operation in operations.items():
            began = time.process_time()
            operation()
            times[name].append(time.process_time() - began)
    base = np.median(times["Adagrad (C kernel)"])
    print(
        f"{size:,} {dtype} parameters, {repeats} updates each, interleaved, CPU time, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for name, values in times.items():
        print(
            f"{name:<28} median {np.median(values) * 1e3:7.2f} ms  p90 "
            f"{np.percentile(values, 90) * 1e3:7.2f} ms  x Adagrad "
            f"{np.median(values) / base:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", help="also write the times to this file")
    parser.add_argument(
        "--rules", action="store_true", help="time the server update rules alone (no MPI)"
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    if args.rules:
        rule_times(args.size, args.repeats, args.dtype)
        return
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        raise SystemExit("run with mpiexec -n 2 (one server, one worker)")
    downpour = rates(comm, args.size, args.repeats, "downpour")
    comm.Barrier()
    revision = rates(comm, args.size, args.repeats, "adaptive_revision")
    if comm.rank == 1:
        table = {
            "fetch (x)": downpour["fetch"],
            "fetch (x, gbar)": revision["fetch"],
            "push + Adagrad": downpour["push"],
            "push + AdaptiveRevision": revision["push"],
        }
        print(
            f"{args.size:,} float32 parameters, {args.repeats} operations each, "
            f"1 server + 1 worker, load average {os.getloadavg()[0]:.1f}"
        )
        for name, seconds in table.items():
            print(f"{name:<26} {seconds * 1e3:8.3f} ms")
        print(f"AdaptiveRevision push / Adagrad push: {revision['push'] / downpour['push']:.2f}")
        print(
            f"server CPU seconds: Downpour {downpour['server cpu']:.2f}, "
            f"AdaptiveRevision {revision['server cpu']:.2f}"
        )
        if args.json:
            with open(args.json, "w") as file:
                json.dump(table, file, indent=1)


if __name__ == "__main__":
    main()
