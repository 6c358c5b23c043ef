"""Row-sparse steps (gdfast.RowGrad, issue 16 scope 5): time per step of SGD, Adagrad,
RMSprop and Adam on `--indices` random row numbers (with repeats) into a `--rows` x `--dim`
table, at 1 and 2 threads.

    python bench/bench_rows.py                       # 20k indices into 200k x 64, float32
    python bench/bench_rows.py --repeats 200 --dtype float64
    valgrind --tool=callgrind python bench/bench_rows.py --rule adam --repeats 20 --threads 1

Each configuration runs `--repeats` steps (fresh indices and values drawn beforehand, the
same for every configuration), interleaved with the others round by round (the machine is
shared); it prints the median and the 90th percentile of the wall time of one
``optimizer.step`` (the Python call included: argument checks, buffers, the kernel), and
the median CPU time of the process over the step (all threads: on a busy machine, where
wall times mean little, the work a step costs).  It measures and reports, it never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import gdfast

RULES = {
    "sgd": lambda table: gdfast.SGD(table, lr=0.01),
    "adagrad": lambda table: gdfast.Adagrad(table, lr=0.01),
    "rmsprop": lambda table: gdfast.RMSprop(table, lr=0.001),
    "adam": lambda table: gdfast.Adam(table, lr=0.001),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--indices", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=100, help="steps per configuration")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--rule", choices=sorted(RULES), action="append")
    parser.add_argument("--threads", type=int, action="append", help="default: 1 and 2")
    args = parser.parse_args(argv)
    rules = args.rule or list(RULES)
    thread_counts = args.threads or [1, 2]
    rng = np.random.default_rng(0)
    draws = [
        (
            rng.integers(0, args.rows, args.indices),
            rng.standard_normal((args.indices, args.dim)).astype(args.dtype),
        )
        for _ in range(min(args.repeats, 8))
    ]
    optimizers = {
        rule: RULES[rule](rng.standard_normal((args.rows, args.dim)).astype(args.dtype))
        for rule in rules
    }
    for optimizer in optimizers.values():  # the state buffers exist before timing
        optimizer.step([gdfast.RowGrad(*draws[0])])
    times: dict[tuple[str, int], list[float]] = {
        (rule, threads): [] for rule in rules for threads in thread_counts
    }
    cpu_times: dict[tuple[str, int], list[float]] = {key: [] for key in times}
    for repeat in range(args.repeats):
        indices, values = draws[repeat % len(draws)]
        grad = [gdfast.RowGrad(indices, values)]
        for rule, threads in times:
            gdfast.set_num_threads(threads)
            start, start_cpu = time.perf_counter(), time.process_time()
            optimizers[rule].step(grad)
            times[(rule, threads)].append(time.perf_counter() - start)
            cpu_times[(rule, threads)].append(time.process_time() - start_cpu)
    print(
        f"{args.indices} indices into {args.rows} x {args.dim} {args.dtype}; {args.repeats} "
        f"interleaved steps each; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'rule':10s} {'threads':>7s} {'median ms':>10s} {'p90 ms':>8s} {'CPU ms':>7s}")
    for (rule, threads), seconds in times.items():
        ordered = sorted(seconds)
        print(
            f"{rule:10s} {threads:7d} {statistics.median(ordered) * 1e3:10.3f} "
            f"{ordered[int(0.9 * (len(ordered) - 1))] * 1e3:8.3f} "
            f"{statistics.median(cpu_times[(rule, threads)]) * 1e3:7.3f}"
        )


if __name__ == "__main__":
    main()
