"""What `gdfast.fit` adds per step beyond the objective and the optimizer.

The objective is trivial (it returns a precomputed gradient) and the data small
(epochs of 1,000 batches of 32 rows × 4 features), so nearly all the time is the
loop's; progress=True draws a tqdm bar into os.devnull.  Baseline: a bare Python loop calling objective(params,
X_batch, y_batch) and opt.step(grads) the same number of times on the same
(pre-cut) batches.  Overhead = (fit's time − baseline's time) / steps, the best
of several repeats for both (timeit's convention: the minimum is the least
disturbed measurement).  The clock is the CPU time of this thread
(time.thread_time), so other processes on a busy machine do not count; the arrays
are too small for the kernels to start threads.

    python bench/fit_overhead.py [--steps 100000] [--batch-size 32] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import gdfast
from gdfast import fit


clock = time.thread_time


def measure(
    steps: int,
    batch_size: int,
    repeats: int,
    shuffle: bool,
    progress: bool,
    steps_per_epoch: int = 1000,
) -> dict:
    rng = np.random.default_rng(0)
    if steps % steps_per_epoch:
        raise SystemExit(f"--steps must be a multiple of {steps_per_epoch}")
    epochs = steps // steps_per_epoch
    n = steps_per_epoch * batch_size
    X = rng.standard_normal((n, 4))
    y = rng.standard_normal(n)
    w = np.zeros(4)
    grads = [np.full(4, 1e-9)]

    def objective(params, X_batch, y_batch):
        return 0.5, grads

    batches = [
        (X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)
    ] * epochs
    baseline, inside = [], []
    for _ in range(repeats):
        opt = gdfast.SGD([w], lr=1e-3)
        began = clock()
        for X_batch, y_batch in batches:
            loss, g = objective(opt.params, X_batch, y_batch)
            opt.step(g)
        baseline.append(clock() - began)
        opt = gdfast.SGD([w], lr=1e-3)
        began = clock()
        with open(os.devnull, "w") as sink:  # the bar's cost, not the terminal's
            history = fit(
                objective,
                [w],
                X,
                y,
                opt,
                batch_size=batch_size,
                epochs=epochs,
                shuffle=shuffle,
                progress=progress,
                progress_file=sink,
            )
        inside.append(clock() - began)
        assert history.steps[-1] == steps
    return {
        "steps": steps,
        "baseline_us": min(baseline) / steps * 1e6,
        "fit_us": min(inside) / steps * 1e6,
        "overhead_us": (min(inside) - min(baseline)) / steps * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.steps} steps, batch {args.batch_size}, best of {args.repeats}")
    print(f"{'setting':<28} {'objective+step':>15} {'fit':>9} {'overhead':>9}  (µs/step)")
    for shuffle, progress in ((False, False), (True, False), (True, True)):
        row = measure(args.steps, args.batch_size, args.repeats, shuffle, progress)
        label = f"shuffle={shuffle}, progress={progress}"
        print(
            f"{label:<28} {row['baseline_us']:>15.3f} {row['fit_us']:>9.3f} "
            f"{row['overhead_us']:>9.3f}"
        )


if __name__ == "__main__":
    main()
