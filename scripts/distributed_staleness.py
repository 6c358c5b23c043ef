"""Staleness study with gdfast.distributed.simulate: Adagrad (Downpour's server rule),
AdaptiveRevision and asynchronous EASGD from 1 to 1,000 virtual workers.

    python scripts/distributed_staleness.py --plot docs/distributed_staleness.png

Problem: sparse logistic regression, 20,000 rows, 1,000 binary features with power-law
frequencies (10 active per row) plus a bias: the click-through-like setting of McMahan &
Streeter (2014).  Every run: 40,000 gradient deliveries of one example each, p workers,
mean delay p − 1 updates (constant or heavy-tailed delays), final full-data loss.  Each
algorithm gets its best learning rate from a grid, per (p, delay model), as in the paper.
Deterministic: the same command prints the same numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from gdfast.distributed import simulate, sparse_logistic

WORKERS = (1, 10, 100, 300, 1000)
DELAYS = ("constant", "heavy_tailed")
ALGORITHMS = ("downpour", "adaptive_revision", "easgd")
LABELS = {
    "downpour": "Adagrad (Downpour server)",
    "adaptive_revision": "AdaptiveRevision",
    "easgd": "async EASGD (τ=4)",
}
RATES = (0.1, 0.3, 1.0, 3.0)
UPDATES = 40_000

_data = None


def _run(job: tuple[str, int, str, float]) -> tuple[tuple, float, list[float], list[int]]:
    global _data
    if _data is None:
        _data = sparse_logistic(20_000, 1_000, 10, seed=0)
    algorithm, workers, delay, lr = job
    result = simulate(
        algorithm,
        _data,
        workers=workers,
        updates=UPDATES,
        lr=lr,
        delay=delay,
        batch_size=1,
        tau=4,
        rho=0.9 / (workers * lr),
        seed=0,
        record_every=UPDATES // 20,
    )
    return job, float(result.loss[-1]), result.loss.tolist(), result.updates.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="write the figure here (PNG)")
    parser.add_argument("--json", help="write every run's final loss here")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--replot", help="read the runs from a --json file instead of running")
    args = parser.parse_args()
    jobs = list(itertools.product(ALGORITHMS, WORKERS, DELAYS, RATES))
    began = time.perf_counter()
    if args.replot:
        with open(args.replot) as file:
            results = {
                (r["algorithm"], r["workers"], r["delay"], r["lr"]): (
                    r["final_loss"],
                    r["curve"],
                    r["updates"],
                )
                for r in json.load(file)
            }
    else:
        with ProcessPoolExecutor(args.processes) as pool:
            results = {
                job: (loss, curve, updates) for job, loss, curve, updates in pool.map(_run, jobs)
            }
    seconds = time.perf_counter() - began
    data = sparse_logistic(20_000, 1_000, 10, seed=0)
    start_loss = float(np.log(2))
    print(
        f"{len(jobs)} simulations of {UPDATES:,} updates in {seconds:.0f} s "
        f"(data: {data.X.shape[0]:,} x {data.X.shape[1]:,}, loss at w=0: {start_loss:.4f})"
    )
    best: dict[tuple[str, int, str], tuple[float, float]] = {}
    for algorithm, workers, delay in itertools.product(ALGORITHMS, WORKERS, DELAYS):
        losses = {lr: results[(algorithm, workers, delay, lr)][0] for lr in RATES}
        finite = {lr: loss for lr, loss in losses.items() if np.isfinite(loss)}
        lr = min(finite, key=finite.get)
        best[(algorithm, workers, delay)] = (finite[lr], lr)
    for delay in DELAYS:
        print(f"\nbest final loss over lr in {RATES} ({delay} delays, mean p - 1 updates)")
        print("| workers p | " + " | ".join(LABELS[a] for a in ALGORITHMS) + " |")
        print("|---:|" + "---:|" * len(ALGORITHMS))
        for workers in WORKERS:
            cells = [
                f"{best[(a, workers, delay)][0]:.4f} (lr {best[(a, workers, delay)][1]:g})"
                for a in ALGORITHMS
            ]
            print(f"| {workers} | " + " | ".join(cells) + " |")
    print("\nfinal loss by lr at p = 1000, constant delays")
    for algorithm in ALGORITHMS:
        print(
            f"  {LABELS[algorithm]:<28}"
            + "  ".join(
                f"lr {lr:g}: {results[(algorithm, 1000, 'constant', lr)][0]:.4f}" for lr in RATES
            )
        )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                [
                    {
                        "algorithm": a,
                        "workers": p,
                        "delay": d,
                        "lr": lr,
                        "final_loss": loss,
                        "curve": curve,
                        "updates": updates,
                    }
                    for (a, p, d, lr), (loss, curve, updates) in results.items()
                ],
                file,
            )
    if args.plot:
        plot(args.plot, results, best)


def plot(path: str, results: dict, best: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"downpour": "tab:red", "adaptive_revision": "tab:blue", "easgd": "tab:green"}
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for delay, style in zip(DELAYS, ("-", "--")):
        for algorithm in ("downpour", "adaptive_revision"):
            axes[0].plot(
                WORKERS,
                [best[(algorithm, p, delay)][0] for p in WORKERS],
                style,
                marker="o",
                color=colors[algorithm],
                label=f"{LABELS[algorithm]}, {delay.replace('_', '-')} delays",
            )
    axes[0].set(
        xscale="log",
        xlabel="workers p (mean delay p − 1 updates)",
        ylabel="final loss at the best lr",
        title="Adagrad vs AdaptiveRevision, best-tuned",
    )
    axes[0].legend(fontsize=8)
    for algorithm in ALGORITHMS:
        axes[1].plot(
            RATES,
            [results[(algorithm, 1000, "constant", lr)][0] for lr in RATES],
            marker="o",
            color=colors[algorithm],
            label=LABELS[algorithm],
        )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="learning rate",
        ylabel="final loss",
        title="p = 1000, constant delays: each lr",
    )
    axes[1].legend(fontsize=8)
    for algorithm in ALGORITHMS:
        loss, lr = best[(algorithm, 1000, "constant")]
        _, curve, updates = results[(algorithm, 1000, "constant", lr)]
        axes[2].plot(
            np.asarray(updates) / 1000,
            curve,
            color=colors[algorithm],
            label=f"{LABELS[algorithm]}, p = 1000 (lr {lr:g})",
        )
        lr = best[(algorithm, 1, "constant")][1]
        _, curve, updates = results[(algorithm, 1, "constant", lr)]
        axes[2].plot(
            np.asarray(updates) / 1000,
            curve,
            ":",
            color=colors[algorithm],
            label=f"{LABELS[algorithm]}, p = 1 (lr {lr:g})",
        )
    axes[2].set(
        xlabel="updates (thousands)",
        ylabel="full-data loss",
        ylim=(0.35, 0.75),
        title="Loss curves at the best lr, constant delays",
    )
    axes[2].legend(fontsize=7)
    figure.suptitle(
        f"gdfast.distributed.simulate: sparse logistic regression, {UPDATES:,} one-example updates"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
