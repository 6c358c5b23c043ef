"""Loss against wall time for 1, 2 and 3 Downpour workers (one server), on MPI.

    python scripts/distributed_scaling.py --plot docs/distributed_scaling.png

Launches `mpiexec -n <workers + 1> python -m mpi4py scripts/distributed_scaling.py --rank-job`
for each worker count (and each algorithm given), one OpenMP/BLAS thread per rank.  The
problem is least squares, 32,768 rows x 256 parameters, mini-batches of 1,024, so that a
gradient (about 1 ms on one core) costs more than a message; the job is a fixed total of
3,000 pushes, shared among the workers (the servers count them).  The first worker snapshots the parameters it fetches every 50 of its
steps; losses are evaluated after the run (not timed).

This machine has 2 cores: 1 worker + 1 server fits, 2 and 3 workers oversubscribe it
(with "--wait auto" the ranks back off: yield, then sleep).  Read the 3-worker curve as what
oversubscription costs, not as scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

TOTAL_PUSHES = 3000
ROWS, FEATURES, BATCH = 32_768, 255, 1024


def rank_job(algorithm: str, workers: int, lr: float, wait: str = "auto") -> None:
    from mpi4py import MPI

    from gdfast.distributed import generated, train

    comm = MPI.COMM_WORLD
    data = generated("least_squares", ROWS, FEATURES, seed=0)
    mine = data.shard(comm.rank - 1, workers) if comm.rank >= 1 else None
    comm.Barrier()
    began = time.perf_counter()
    result = train(
        algorithm,
        data.objective,
        np.zeros(data.X.shape[1]),
        mine,
        n_servers=1,
        steps=TOTAL_PUSHES // workers,
        batch_size=BATCH,
        lr=lr,
        record_every=20,
        eval_data=(data.X, data.y),
        wait=wait,
    )
    seconds = time.perf_counter() - began
    if comm.rank == 0:
        final = data.objective.loss(result.params, data.X, data.y)
        optimum = data.objective.loss(
            np.linalg.lstsq(data.X, data.y, rcond=None)[0], data.X, data.y
        )
        print(
            json.dumps(
                {
                    "history": result.history,
                    "final_loss": final,
                    "seconds": seconds,
                    "optimum": optimum,
                }
            )
        )


def launch(algorithm: str, workers: int, lr: float, wait: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        mpiexec = "mpiexec"
    run = subprocess.run(
        [
            mpiexec,
            "-n",
            str(workers + 1),
            sys.executable,
            "-m",
            "mpi4py",
            os.path.abspath(__file__),
            "--rank-job",
            algorithm,
            str(workers),
            str(lr),
            wait,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank-job", nargs=4, metavar=("ALGORITHM", "WORKERS", "LR", "WAIT"))
    parser.add_argument("--wait", default="auto", help="train(wait=...): auto, yield, sleep")
    parser.add_argument("--algorithms", nargs="+", default=["downpour", "adaptive_revision"])
    parser.add_argument("--lr", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=2, help="runs per point (median time)")
    parser.add_argument("--plot")
    args = parser.parse_args()
    if args.rank_job:
        algorithm, workers, lr, wait = args.rank_job
        rank_job(algorithm, int(workers), float(lr), wait)
        return
    runs: dict[tuple[str, int], dict] = {}
    print(
        f"{TOTAL_PUSHES} pushes of {BATCH}-row gradients, {FEATURES + 1} parameters, "
        f"1 server, lr {args.lr:g}, wait {args.wait}; median of {args.repeats} runs by job time"
    )
    print(
        "| algorithm | workers | job time (s) | first worker's time to loss <= 1.02 x "
        "optimum (s) | final loss / optimum |"
    )
    print("|---|---:|---:|---:|---:|")
    for algorithm in args.algorithms:
        for workers in (1, 2, 3):
            attempts = [launch(algorithm, workers, args.lr, args.wait) for _ in range(args.repeats)]
            attempts.sort(key=lambda r: r["seconds"])
            run = attempts[len(attempts) // 2]
            runs[(algorithm, workers)] = run
            reached = [t for t, _, loss in run["history"] if loss <= 1.02 * run["optimum"]]
            print(
                f"| {algorithm} | {workers} | {run['seconds']:.2f} | "
                f"{reached[0] if reached else float('nan'):.2f} | "
                f"{run['final_loss'] / run['optimum']:.4f} |",
                flush=True,
            )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(
            1, len(args.algorithms), figsize=(6 * len(args.algorithms), 4.2), squeeze=False
        )
        for axis, algorithm in zip(axes[0], args.algorithms):
            for workers in (1, 2, 3):
                history = runs[(algorithm, workers)]["history"]
                axis.plot(
                    [h[0] for h in history], [h[2] for h in history], label=f"{workers} worker(s)"
                )
            axis.set(
                yscale="log",
                xlabel="wall time (s)",
                ylabel="full-data loss",
                title=f"{algorithm}, 1 server, lr {args.lr:g}, 2-core machine",
            )
            axis.legend()
        figure.tight_layout()
        figure.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
