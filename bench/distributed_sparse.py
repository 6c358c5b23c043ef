"""Dense against sparse messages on sparse data: bytes on the wire and time per update.

    python bench/distributed_sparse.py [--features 1000000] [--steps 300] [--repeats 2]

A click-through-like logistic regression stored as CSR: `rows` rows, `features` binary
features with power-law frequencies, `active` per row, plus a bias column.  Each run is
`mpiexec -n 2 python bench/distributed_sparse.py --rank-job ...` (one server, one worker,
n_fetch = n_push = 1, batches of `batch_size`), Downpour (Adagrad server) and
AdaptiveRevision, with sparse=False (dense messages: the whole vector each way) and
sparse=True (the touched coordinates only), interleaved, `repeats` times; medians.
Printed per setting: bytes per push and per fetch (the worker's own count, replies
included), the wall time and the CPU time of both ranks per update, and the final loss
(the same model either way: the protocol gives the same bits).  Per update means the
marginal cost: every setting runs `steps` and 3·`steps` steps, and the figure is the
difference of the two jobs divided by the difference of their updates, so the job's fixed
costs (start-up, the final gather, the loss history) drop out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def problem(rows: int, features: int, active: int, seed: int = 0):
    """CSR X (rows × features + 1, the last column a bias) and labels y in {0, 1}."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    cdf = np.cumsum(np.arange(1, features + 1, dtype=np.float64) ** -1.1)
    cols = np.searchsorted(cdf / cdf[-1], rng.random((rows, active)))
    cols = np.hstack([np.minimum(cols, features - 1), np.full((rows, 1), features)])
    X = sparse.csr_matrix(
        (np.ones(cols.size), cols.ravel(), np.arange(0, cols.size + 1, active + 1)),
        shape=(rows, features + 1),
    )
    X.sum_duplicates()
    X.data[:] = 1.0
    w_true = rng.standard_normal(features + 1)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(X @ w_true)))).astype(np.float64)
    return X, y


def rank_job(args) -> None:
    from mpi4py import MPI

    from gdfast.distributed import Logistic, train

    comm = MPI.COMM_WORLD
    X, y = problem(args.rows, args.features, args.active)
    mine = (X, y) if comm.rank == 1 else None
    comm.Barrier()
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(
        args.algorithm,
        Logistic(),
        np.zeros(X.shape[1]),
        mine,
        n_servers=1,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=0.3,
        sparse=args.sparse == "1",
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cpus = comm.gather(cpu, root=0)
    traffic = comm.gather(result.traffic, root=0)
    if comm.rank == 0:
        counts = traffic[1]
        loss = Logistic().loss(result.params, X, y)
        print(
            json.dumps(dict(wall=wall, cpu=sum(cpus), loss=loss, updates=result.applied, **counts))
        )


def launch(args, algorithm: str, sparse: bool, steps: int) -> dict:
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    command = [
        mpiexec if os.path.exists(mpiexec) else "mpiexec",
        "-n",
        "2",
        sys.executable,
        __file__,
        "--rank-job",
        "--algorithm",
        algorithm,
        "--sparse",
        "1" if sparse else "0",
        "--rows",
        str(args.rows),
        "--features",
        str(args.features),
        "--active",
        str(args.active),
        "--steps",
        str(steps),
        "--batch-size",
        str(args.batch_size),
    ]
    run = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=1800)
    if run.returncode:
        raise RuntimeError(run.stderr)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--active", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rank-job", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--algorithm", default="downpour", help=argparse.SUPPRESS)
    parser.add_argument("--sparse", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_job:
        rank_job(args)
        return
    settings = [(a, s) for a in ("downpour", "adaptive_revision") for s in (False, True)]
    runs: dict = {setting: [] for setting in settings}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for setting in settings:
            short, full = (launch(args, *setting, steps) for steps in (args.steps, 3 * args.steps))
            updates = full["updates"] - short["updates"]
            marginal = {key: (full[key] - short[key]) / updates for key in ("wall", "cpu")}
            runs[setting].append({**full, **marginal})
            loads.append(os.getloadavg()[0])
    print(
        f"{args.rows:,} rows, {args.features:,} features + bias, {args.active} active per "
        f"row, batches of {args.batch_size}, {args.steps} and {3 * args.steps} steps, 1 server "
        f"+ 1 worker, "
        f"float64; medians of {args.repeats}; load average {min(loads):.1f}-{max(loads):.1f}"
    )
    print(
        "| server rule | messages | bytes per push | bytes per fetch | wall ms per update "
        "| CPU ms per update (both ranks) | final loss |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for (algorithm, sparse), values in runs.items():

        def median(key):
            return float(np.median([v[key] for v in values]))

        bytes_push = np.median([v["push_bytes"] / v["pushes"] for v in values])
        bytes_fetch = np.median([v["fetch_bytes"] / v["fetches"] for v in values])
        print(
            f"| {algorithm} | {'sparse' if sparse else 'dense'} | {bytes_push:,.0f} | "
            f"{bytes_fetch:,.0f} | {median('wall') * 1e3:.2f} | {median('cpu') * 1e3:.2f} | "
            f"{values[0]['loss']:.6f} |"
        )


if __name__ == "__main__":
    main()
