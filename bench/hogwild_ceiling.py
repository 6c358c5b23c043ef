"""What a second core can give Hogwild! on this machine: the same serial fit run alone and as
two independent processes at once (issue 16).

    python bench/hogwild_ceiling.py                      # rcv1 profile, 500k x 50k, 3 epochs
    python bench/hogwild_ceiling.py --data hot --repeats 7

Two processes share nothing but the machine (cores, caches, memory, whatever else runs on the
host), so their combined throughput against one process alone,

    ceiling = 2 x (seconds per epoch alone) / (seconds per epoch of each of the pair),

bounds what two Hogwild! threads, which also share the model, can gain over one.  The runs are
interleaved (alone, pair, alone, pair, ...) and the medians reported with the spread; each run
also reports its CPUs (CPU seconds / wall seconds) so that a pair that did not get two cores
shows.  It measures and reports, it never asserts.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_hogwild import DATA  # noqa: E402

from gdfast import hogwild  # noqa: E402


def serial_epochs(X, y, rule: str, epochs: int) -> tuple[float, float]:
    """Seconds and CPU seconds per epoch (medians over the epochs) of one serial fit."""
    model = hogwild.fit_linear(
        X,
        y,
        loss="logistic",
        rule=rule,
        lr=2.0,
        decay=0.5 if rule == "sgd" else 0.0,
        epochs=epochs,
        mode="serial",
        n_threads=1,
        seed=1,
        record_loss=False,
    )
    seconds = statistics.median(h["seconds"] for h in model.history)
    cpu = statistics.median(h["cpu_seconds"] for h in model.history)
    return seconds, cpu


def child(X, y, rule, epochs, barrier, out) -> None:
    barrier.wait()
    out.put(serial_epochs(X, y, rule, epochs))


def pair(X, y, rule: str, epochs: int) -> list[tuple[float, float]]:
    context = mp.get_context("fork")  # the children share the parent's arrays, no copy
    barrier = context.Barrier(2)
    out = context.Queue()
    workers = [
        context.Process(target=child, args=(X, y, rule, epochs, barrier, out)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    results = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=50_000)
    parser.add_argument("--nnz", type=int, default=80)
    parser.add_argument("--data", choices=sorted(DATA), default="rcv1")
    parser.add_argument("--rule", choices=["sgd", "adagrad"], default="sgd")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    X, y = DATA[args.data](args.rows, args.features, args.nnz, dtype=np.dtype("float32"))
    print(
        f"{args.data}: {args.rows} x {args.features}, {X.nnz / args.rows:.0f} nnz/row, "
        f"{args.rule}, {args.epochs} epochs a run, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    alone, each, ratios = [], [], []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        seconds, cpu = serial_epochs(X, y, args.rule, args.epochs)
        both = pair(X, y, args.rule, args.epochs)
        pair_seconds = statistics.mean(s for s, _ in both)
        alone.append(seconds)
        each.append(pair_seconds)
        ratios.append(2 * seconds / pair_seconds)
        print(
            f"  repeat {repeat}: alone {seconds:.3f} s/epoch (CPUs {cpu / seconds:.2f}), "
            f"pair {both[0][0]:.3f} / {both[1][0]:.3f} s/epoch "
            f"(CPUs {both[0][1] / both[0][0]:.2f} / {both[1][1] / both[1][0]:.2f}): "
            f"ceiling {ratios[-1]:.2f}x  [{time.perf_counter() - start:.0f} s]",
            flush=True,
        )
    print(
        f"median: alone {statistics.median(alone):.3f} s/epoch, each of a pair "
        f"{statistics.median(each):.3f}; two cores give at most "
        f"{statistics.median(ratios):.2f}x one [{min(ratios):.2f}, {max(ratios):.2f}]"
    )


if __name__ == "__main__":
    main()
