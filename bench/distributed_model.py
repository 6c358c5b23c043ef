"""The job-time model of gdfast.distributed.costs against measured jobs on this machine.

    python bench/distributed_model.py [--repeats 2] [--cases compute,messages]

For each case: `mpiexec -n 2 python bench/distributed_model.py --probe ...` measures the
unit costs of gdfast.distributed.costs (CPU time: a worker's step g, one process's Adagrad
step a, the server's work per update S through the engine's server loop and its rule
alone r); then each worker count
n = 1, 2, 3 runs `mpiexec -n n+1 python -m gdfast.distributed train` (Downpour, one
server, n_fetch = n_push = 1, a fixed job of U pushes shared by the workers), and one
process runs the same U Adagrad steps in a loop (gdfast.Adagrad, the same batches' size).
Printed: predicted and measured job time (wall) and CPU time (all ranks), median of the
repeats, the runs of every worker count interleaved.  `--cores` is the cores the
prediction assumes (default: this machine's); the machine's load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

CASES = {
    # a gradient costs more than the messages: batches of 1,024 rows x 256 parameters
    "compute": dict(rows=32_768, features=255, batch_size=1024, updates=3000, lr=0.3),
    # the README's small job: messages and the server dominate
    "messages": dict(rows=4096, features=32, batch_size=32, updates=3000, lr=0.3),
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def mpiexec() -> str:
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else "mpiexec"


def probe(case: dict) -> None:
    """Under mpiexec -n 2: print the unit costs as JSON (rank 1)."""
    from mpi4py import MPI

    from gdfast.distributed import generated
    from gdfast.distributed.costs import probe_compute, probe_server

    comm = MPI.COMM_WORLD
    data = generated("least_squares", case["rows"], case["features"], seed=0)
    params = np.zeros(data.X.shape[1])
    server_update = probe_server(comm, "downpour", params.shape[0], params.dtype)
    if comm.rank == 1:
        g, a, r = probe_compute(
            "downpour", data.objective, params, (data.X, data.y), case["batch_size"]
        )
        print(json.dumps(dict(gradient=g, local_step=a, server_update=server_update, rule=r)))


def one_process(case: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of U Adagrad steps on one process, batches drawn as a worker's."""
    import gdfast
    from gdfast.distributed import generated

    data = generated("least_squares", case["rows"], case["features"], seed=0)
    x = np.zeros(data.X.shape[1])
    adagrad = gdfast.Adagrad(x, lr=case["lr"])
    rng = np.random.default_rng(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(case["updates"]):
        rows = rng.integers(len(data.y), size=case["batch_size"])
        adagrad.step(data.objective.gradient(x, data.X[rows], data.y[rows]))
    return time.perf_counter() - wall, time.process_time() - cpu


def job(case: dict, workers: int) -> tuple[float, float]:
    """(job seconds, CPU seconds of all ranks) of one distributed run."""
    command = [
        mpiexec(),
        "-n",
        str(workers + 1),
        sys.executable,
        "-m",
        "gdfast.distributed",
        "train",
        "--algorithm",
        "downpour",
        "--rows",
        str(case["rows"]),
        "--features",
        str(case["features"]),
        "--batch-size",
        str(case["batch_size"]),
        "--lr",
        str(case["lr"]),
        "--steps",
        str(case["updates"] // workers),
    ]
    run = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900)
    if run.returncode:
        raise RuntimeError(run.stderr)
    seconds = float(re.search(r"updates, ([\d.]+) s", run.stdout).group(1))
    cpu = float(re.search(r"^cpu ([\d.]+) s", run.stdout, re.M).group(1))
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--probe", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(CASES[args.probe])
        return
    from gdfast.distributed.costs import Costs, predict

    loads = [os.getloadavg()[0]]
    for name in args.cases.split(","):
        case = CASES[name]
        probed = subprocess.run(
            [mpiexec(), "-n", "2", sys.executable, __file__, "--probe", name],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=600,
            check=True,
        )
        costs = Costs(**json.loads(probed.stdout.strip().splitlines()[-1]))
        measured: dict[int, list] = {0: [], 1: [], 2: [], 3: []}
        for _ in range(args.repeats):
            measured[0].append(one_process(case))
            for workers in (1, 2, 3):
                measured[workers].append(job(case, workers))
            loads.append(os.getloadavg()[0])
        print(f"\n## {name}: {case}")
        print(
            f"g {costs.gradient * 1e3:.3f} ms, a {costs.local_step * 1e3:.3f} ms, "
            f"S {costs.server_update * 1e3:.3f} ms (rule {costs.rule * 1e3:.3f} ms, messages "
            f"{costs.messages() * 1e3:.3f} ms)"
        )
        print("| workers | predicted s | measured s | predicted CPU s | measured CPU s |")
        print("|---:|---:|---:|---:|---:|")
        for workers in (0, 1, 2, 3):
            wall, cpu = np.median(measured[workers], axis=0)
            if workers == 0:
                expected = predict(costs, 1, case["updates"], args.cores)["one_process"]
                print(f"| one process | {expected:.2f} | {wall:.2f} | {expected:.2f} | {cpu:.2f} |")
                continue
            p = predict(costs, workers, case["updates"], args.cores)
            cluster = predict(costs, workers, case["updates"], workers + 1)["time"]
            print(
                f"| {workers} | {p['time']:.2f} (cluster {cluster:.2f}) | {wall:.2f} | "
                f"{p['cpu']:.2f} | {cpu:.2f} |"
            )
    print(f"\nload average during the runs: {min(loads):.1f}-{max(loads):.1f}, cores {args.cores}")


if __name__ == "__main__":
    main()
