"""Hogwild! measurements on generated sparse data (issues 6 and 16).

    python bench/bench_hogwild.py                          # 500k x 50k, 8 epochs, 3 repeats
    python bench/bench_hogwild.py --rows 50000 --repeats 1   # a quick look
    python bench/bench_hogwild.py --data uniform           # another column profile
    python bench/bench_hogwild.py --mf                     # matrix factorization, 2M ratings

Data (``--data``), n rows and d features, rows idf-weighted and L2-normalized, labels the
sign of a random linear score plus noise (about 10% disagree with the score):
  rcv1     the column profile of a text corpus like RCV1: feature j (by rank) is in a share
           min(0.3, c / j) of the rows, c set for `nnz` non-zeros per row on average, so
           a few features are in a third of the rows, none in every row, and most in very
           few (a Zipf law of document frequencies; not fitted to RCV1's own numbers);
  hot      ~Poisson(nnz') term draws per row from a Zipf(s=1.1) vocabulary, term counts
           summed: the top features are in nearly every row (the most contended case);
  uniform  every feature equally likely: nnz/d of the rows each (the least contended).

For SGD and Adagrad it runs serial, locked and plain hogwild (no replicas) at 1 and 2 threads,
hogwild at 2 threads with per-thread replicas of the hot coordinates (``--replicas K:H``),
Vowpal Wabbit (the ``vowpalwabbit`` package, if installed; the run says when it is not) with
its defaults on the same rows, and
scikit-learn's SGDClassifier(loss="log_loss") one epoch per partial_fit call (losses; the
time includes its input checks) and as one fit(max_iter=epochs, tol=None) (time), all on
the same data and epochs, repeats everything `--repeats` times interleaved (the machine is
shared) and prints medians: training seconds per epoch (the loss evaluation is excluded),
updates per second, CPUs (CPU seconds of all threads / wall seconds: below 2 for a
2-thread run means the threads did not have two free cores), CPU-s (CPU seconds of all
threads per epoch: the work, stalls on shared cache lines included), CPU-ns/upd (the same
per example), the mean training log-loss after each epoch, and for each run against serial
of its rule the speed-up and the ratio of CPU seconds per update.  On a loaded machine the
threads seldom run at the same time (CPUs well below 2), so CPU/update then measures the
work without most of the contention; only runs with CPUs near 2 show the contention.  It measures and reports,
it never asserts.  `--json PATH` also writes every raw run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time

# Before OpenMP starts: idle threads sleep instead of spinning, so that a serial run does not
# share its core with this process's own idle threads (the machine's scheduler shares CPU
# between sessions, not threads).  Override by setting it yourself.  The BLAS keeps its
# default threads, as a user's process has them: training calls no BLAS function (with one,
# OpenBLAS's threads spun between epochs on the second thread's core: 2026-12-04).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import gdfast  # noqa: E402
from gdfast import hogwild  # noqa: E402
from gdfast.hogwild._checks import DEFAULTS  # noqa: E402

DEFAULT_REPLICAS = f"{DEFAULTS['sync_every']}:{DEFAULTS['hot_features']}"


def hot_features(
    n_rows: int, n_features: int, nnz: int, seed: int = 0, dtype=np.float32
) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    frequency = 1.0 / np.arange(1, n_features + 1) ** 1.1
    probability = frequency / frequency.sum()
    cdf = np.cumsum(probability)
    # Repeated draws merge into term frequencies: find the draws per row whose expected
    # number of distinct features, sum_j 1 - (1 - p_j)^m, is `nnz` (bisection on m).
    low, high = float(nnz), 50.0 * nnz
    for _ in range(50):
        middle = 0.5 * (low + high)
        low, high = (
            (middle, high)
            if np.sum(-np.expm1(middle * np.log1p(-probability))) < nnz
            else (low, middle)
        )
    counts = np.maximum(1, rng.poisson(low, n_rows))
    features = np.searchsorted(cdf, rng.random(int(counts.sum())), side="right")
    features = np.minimum(features, n_features - 1)
    rng.shuffle(permutation := np.arange(n_features))  # frequent features spread over the vector
    features = permutation[features].astype(np.int32)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    X = sp.csr_matrix(
        (np.ones(rows.shape[0], dtype=np.float64), (rows, features)), shape=(n_rows, n_features)
    )
    X.sum_duplicates()
    return tfidf_with_labels(X, rng, dtype)


def by_row_share(
    n_rows: int, n_features: int, share: np.ndarray, seed: int = 0, dtype=np.float32
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Feature j in about share[j] of the rows (drawn independently), term counts 1 + Poisson(1)."""
    rng = np.random.default_rng(seed)
    per_feature = rng.binomial(n_rows, share)
    features = np.repeat(np.arange(n_features, dtype=np.int64), per_feature)
    rows = rng.integers(0, n_rows, features.shape[0])
    rng.shuffle(permutation := np.arange(n_features))  # frequent features spread over the vector
    X = sp.csr_matrix(
        (1.0 + rng.poisson(1.0, features.shape[0]), (rows, permutation[features])),
        shape=(n_rows, n_features),
    )
    X.sum_duplicates()  # a repeated (row, feature) draw: a larger count
    return tfidf_with_labels(X, rng, dtype)


def rcv1_profile(
    n_rows: int, n_features: int, nnz: int, seed: int = 0, dtype=np.float32
) -> tuple[sp.csr_matrix, np.ndarray]:
    rank = np.arange(1, n_features + 1, dtype=np.float64)
    low, high = 0.0, float(n_features)  # bisection on c: sum_j min(0.3, c / j) = nnz
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if np.minimum(0.3, middle / rank).sum() < nnz else (low, middle)
    return by_row_share(n_rows, n_features, np.minimum(0.3, low / rank), seed, dtype)


def uniform(
    n_rows: int, n_features: int, nnz: int, seed: int = 0, dtype=np.float32
) -> tuple[sp.csr_matrix, np.ndarray]:
    return by_row_share(
        n_rows, n_features, np.full(n_features, min(1.0, nnz / n_features)), seed, dtype
    )


DATA = {"rcv1": rcv1_profile, "hot": hot_features, "uniform": uniform}


def tfidf_with_labels(
    X: sp.csr_matrix, rng: np.random.Generator, dtype
) -> tuple[sp.csr_matrix, np.ndarray]:
    """log(1 + count) * idf, rows L2-normalized; labels from a random linear score + noise."""
    n_rows, n_features = X.shape
    document_frequency = np.bincount(X.indices, minlength=n_features)
    idf = np.log((1.0 + n_rows) / (1.0 + document_frequency)) + 1.0
    X.data = np.log1p(X.data) * idf[X.indices]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X)
    truth = rng.standard_normal(n_features) * 3.0
    score = X @ truth
    score -= np.median(score)
    y = np.where(score + 0.4 * np.std(score) * rng.standard_normal(n_rows) > 0, 1.0, -1.0)
    return X.astype(dtype), y


def mean_log_loss(margin: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, -y * margin)))


def run_gdfast(
    X, y, rule: str, mode: str, threads: int, epochs: int, lr: float, decay: float, **options
) -> dict:
    model = hogwild.fit_linear(
        X,
        y,
        loss="logistic",
        rule=rule,
        lr=lr,
        decay=decay,
        epochs=epochs,
        mode=mode,
        n_threads=threads,
        seed=1,
        **options,
    )
    return {
        "seconds": [h["seconds"] for h in model.history],
        "cpu_seconds": [h["cpu_seconds"] for h in model.history],
        # the C driver's clocks: each thread's CPU seconds to its last row, their part in
        # replica flushes, and the serial part before the threads start
        "thread_cpu_seconds": [sum(h["thread_cpu_seconds"]) for h in model.history],
        "flush_cpu_seconds": [sum(h["flush_cpu_seconds"]) for h in model.history],
        "setup_cpu_seconds": [h["setup_cpu_seconds"] for h in model.history],
        "thread_updates": [h["thread_updates"] for h in model.history],
        "loss": [h["loss"] for h in model.history],
        "accuracy": float(np.mean(np.sign(model.decision_function(X)) == y)),
    }


def cpu_split(runs: list[dict], n_rows: int) -> str:
    """One line of where a configuration's CPU time went, medians over its epochs."""

    def median(key: str) -> float:
        return statistics.median(value for run in runs for value in run[key])

    rows = median("thread_cpu_seconds")
    flush = median("flush_cpu_seconds")
    setup = median("setup_cpu_seconds")
    rest = statistics.median(
        c - t - s
        for run in runs
        for c, t, s in zip(run["cpu_seconds"], run["thread_cpu_seconds"], run["setup_cpu_seconds"])
    )
    shares = statistics.median(
        max(counts) / max(sum(counts), 1) for run in runs for counts in run["thread_updates"]
    )
    return (
        f"rows {rows / n_rows * 1e9:6.0f} ns/upd (flushes {flush / max(rows, 1e-12):5.1%}), "
        f"setup {setup / n_rows * 1e9:4.0f}, rest {rest / n_rows * 1e9:5.0f} ns/upd; "
        f"busiest thread {shares:.0%} of rows"
    )


def run_sklearn(X64, y, epochs: int, alpha: float) -> dict:
    from sklearn.linear_model import SGDClassifier

    classifier = SGDClassifier(loss="log_loss", alpha=alpha, random_state=1)
    seconds, cpu_seconds, loss = [], [], []
    for _ in range(epochs):
        start, start_cpu = time.perf_counter(), time.process_time()
        classifier.partial_fit(X64, y, classes=np.array([-1.0, 1.0]))
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - start_cpu)
        loss.append(mean_log_loss(classifier.decision_function(X64), y))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "loss": loss,
        "accuracy": float(classifier.score(X64, y)),
    }


def run_sklearn_fit(X64, y, epochs: int, alpha: float) -> dict:
    """One fit of `epochs` epochs (no per-call validation): time only, seconds per epoch."""
    from sklearn.linear_model import SGDClassifier

    classifier = SGDClassifier(
        loss="log_loss", alpha=alpha, max_iter=epochs, tol=None, random_state=1
    )
    start, start_cpu = time.perf_counter(), time.process_time()
    classifier.fit(X64, y)
    seconds = (time.perf_counter() - start) / epochs
    cpu_seconds = (time.process_time() - start_cpu) / epochs
    final = mean_log_loss(classifier.decision_function(X64), y)
    return {
        "seconds": [seconds] * epochs,
        "cpu_seconds": [cpu_seconds] * epochs,
        "loss": [math.nan] * (epochs - 1) + [final],
        "accuracy": float(classifier.score(X64, y)),
    }


def vowpal_wabbit_available() -> str | None:
    """The vowpalwabbit version, or None when the package is not installed."""
    try:
        import vowpalwabbit
    except ImportError:
        return None
    return getattr(vowpalwabbit, "__version__", "?")


def run_vowpal_wabbit(X64, y, epochs: int, workdir: str) -> dict:
    """Vowpal Wabbit (its default adaptive, normalized, invariant SGD; logistic loss) on the
    same rows, written once as a VW text file (not timed).  Timed: one Workspace that runs
    `epochs` passes (the first parses the text into VW's cache, the others read the cache),
    so seconds per epoch = total / epochs.  The loss is computed from a second, test-only
    pass's raw predictions."""
    from vowpalwabbit import Workspace

    data_path = os.path.join(workdir, "train.vw")
    if not os.path.exists(data_path):
        with open(data_path, "w") as f:
            for row in range(X64.shape[0]):
                start, end = X64.indptr[row], X64.indptr[row + 1]
                features = " ".join(
                    f"{j}:{v:.7g}" for j, v in zip(X64.indices[start:end], X64.data[start:end])
                )
                f.write(f"{int(y[row])} | {features}\n")
    model_path = os.path.join(workdir, "model.vw")
    cache_path = os.path.join(workdir, "train.cache")
    if os.path.exists(cache_path):
        os.remove(cache_path)
    bits = max(18, int(math.ceil(math.log2(X64.shape[1]))) + 2)
    start, start_cpu = time.perf_counter(), time.process_time()
    workspace = Workspace(
        f"-d {data_path} --loss_function logistic --passes {epochs} --holdout_off -k "
        f"--cache_file {cache_path} -b {bits} -f {model_path} --quiet"
    )
    workspace.run_parser()
    workspace.finish()
    seconds = (time.perf_counter() - start) / epochs
    cpu_seconds = (time.process_time() - start_cpu) / epochs
    predictions_path = os.path.join(workdir, "predictions.txt")
    tester = Workspace(f"-d {data_path} -t -i {model_path} -p {predictions_path} --quiet")
    tester.run_parser()
    tester.finish()
    margin = np.loadtxt(predictions_path, usecols=0)
    return {
        "seconds": [seconds] * epochs,
        "cpu_seconds": [cpu_seconds] * epochs,
        "loss": [math.nan] * (epochs - 1) + [mean_log_loss(margin, y)],
        "accuracy": float(np.mean(np.where(margin > 0, 1.0, -1.0) == y)),
    }


def bench_mf(args) -> None:
    """Matrix factorization: serial, locked, hogwild on ratings of a noisy low-rank matrix."""
    rng = np.random.default_rng(0)
    n_users, n_items, rank, n = 6_000, 4_000, 10, args.ratings
    left = rng.standard_normal((n_users, rank)) / rank**0.25
    right = rng.standard_normal((n_items, rank)) / rank**0.25
    users = rng.integers(0, n_users, n)
    items = np.minimum(rng.zipf(1.3, n) - 1, n_items - 1)  # popular items are rated more
    ratings = np.einsum("nk,nk->n", left[users], right[items]) + 0.1 * rng.standard_normal(n)
    print(
        f"MF: {n} ratings, {n_users} users x {n_items} items, rank {rank}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for rule, lr in (("sgd", 0.02), ("adagrad", 0.1)):
        for mode, threads in (("serial", 1), ("locked", 2), ("hogwild", 1), ("hogwild", 2)):
            times, cpus, rmse = [], [], []
            for _ in range(args.repeats):
                model = hogwild.fit_mf(
                    users,
                    items,
                    ratings,
                    n_users=n_users,
                    n_items=n_items,
                    rank=rank,
                    rule=rule,
                    lr=lr,
                    l2=1e-3,
                    epochs=args.epochs,
                    mode=mode,
                    n_threads=threads,
                    dtype=np.float32,
                    init_scale=0.5,
                )
                times += [h["seconds"] for h in model.history]
                cpus += [h["cpu_seconds"] / h["seconds"] for h in model.history]
                rmse.append(model.history[-1]["rmse"])
            per_epoch = statistics.median(times)
            print(
                f"  {rule:8s} {mode:8s} T={threads}: {per_epoch:.3f} s/epoch, "
                f"{n / per_epoch / 1e6:.2f} M updates/s, CPUs {statistics.median(cpus):.2f}, "
                f"final RMSE {statistics.median(rmse):.4f}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=50_000)
    parser.add_argument("--nnz", type=int, default=80)
    parser.add_argument("--data", choices=sorted(DATA), default="rcv1")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--sgd-lr", type=float, default=2.0)
    parser.add_argument("--sgd-decay", type=float, default=0.5)
    parser.add_argument("--adagrad-lr", type=float, default=2.0)
    parser.add_argument(
        "--alpha",
        type=float,
        default=1e-6,
        help="SGDClassifier's alpha (its L2; gdfast runs with l2=0)",
    )
    parser.add_argument(
        "--replicas",
        action="append",
        metavar="K:H",
        help="hogwild T=2 with replicas of the intercept and H features (an int or auto) "
        "flushed every K examples; repeat for a sweep (default: fit_linear's, "
        f"{DEFAULT_REPLICAS})",
    )
    parser.add_argument(
        "--only-gdfast", action="store_true", help="skip scikit-learn and Vowpal Wabbit"
    )
    parser.add_argument(
        "--rules", default="sgd,adagrad", help="comma-separated, of sgd and adagrad"
    )
    parser.add_argument("--json", help="write every run here")
    parser.add_argument(
        "--mf", action="store_true", help="measure matrix factorization (fit_mf) instead"
    )
    parser.add_argument("--ratings", type=int, default=2_000_000, help="with --mf")
    args = parser.parse_args(argv)
    if args.mf:
        bench_mf(args)
        return

    start = time.perf_counter()
    X, y = DATA[args.data](args.rows, args.features, args.nnz, dtype=np.dtype(args.dtype))
    X64 = X.astype(np.float64)  # SGDClassifier trains in float64 only
    share = np.bincount(X.indices, minlength=X.shape[1]) / X.shape[0]
    print(
        f"data {args.data}: {X.shape[0]} x {X.shape[1]}, {X.nnz / X.shape[0]:.1f} nnz/row, "
        f"{args.dtype}; most frequent feature in {share.max():.0%} of rows, "
        f"{np.mean(share < 1e-3):.0%} of features in < 0.1% of rows; "
        f"positives {np.mean(y > 0):.0%}; built in {time.perf_counter() - start:.1f} s"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"gdfast threads {gdfast.get_num_threads()}, hogwild OpenMP "
        f"{hogwild.openmp_enabled()}, python {sys.version.split()[0]}, load average "
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows threads down), "
        f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    )

    sweep = [
        (int(k), h if h == "auto" else int(h))
        for k, h in (item.split(":") for item in args.replicas or [DEFAULT_REPLICAS])
    ]
    configs = []
    for rule in args.rules.split(","):
        for mode, threads in (
            ("serial", 1),
            ("locked", 1),
            ("locked", 2),
            ("hogwild", 1),
            ("hogwild", 2),
        ):
            # plain: every coordinate shared (the replicas, on by default, are swept below)
            plain = dict(sync_every=None) if mode == "hogwild" else {}
            configs.append(
                (f"{rule:8s} {mode:8s} T={threads}", "gdfast", rule, mode, threads, plain)
            )
        for sync_every, hot in sweep:
            configs.append(
                (
                    f"{rule:8s} hogwild  T=2 replicas K={sync_every} H={hot}",
                    "gdfast",
                    rule,
                    "hogwild",
                    2,
                    dict(sync_every=sync_every, hot_features=hot),
                )
            )
    configs.append(
        (
            f"sklearn SGDClassifier(log_loss, alpha={args.alpha:g}) partial_fit",
            "sklearn",
            None,
            None,
            1,
            {},
        )
    )
    configs.append(
        (
            f"sklearn SGDClassifier(log_loss, alpha={args.alpha:g}) fit",
            "sklearn-fit",
            None,
            None,
            1,
            {},
        )
    )
    vw_version = None if args.only_gdfast else vowpal_wabbit_available()
    if args.only_gdfast:
        configs = [config for config in configs if config[1] == "gdfast"]
    elif vw_version is None:
        print("Vowpal Wabbit: unavailable (the vowpalwabbit package is not installed; a wheel")
        print("  for CPython 3.11 x86-64 Linux exists: pip install vowpalwabbit==9.11.9)")
    else:
        configs.append(
            (f"Vowpal Wabbit {vw_version} (defaults, 1 learner)", "vw", None, None, 1, {})
        )
    workdir = tempfile.mkdtemp(prefix="bench_hogwild_")
    runs: dict[str, list[dict]] = {name: [] for name, *_ in configs}
    # Untimed: the first run after building the data pays for faulting in pages and warming
    # caches (it made serial look 5-15% slower than hogwild T=1, which runs the same code).
    run_gdfast(X, y, "sgd", "serial", 1, 1, args.sgd_lr, args.sgd_decay)
    for repeat in range(args.repeats):
        # interleaved, in another order each repeat, so no configuration always follows
        # the same one (scikit-learn's and Vowpal Wabbit's runs evict the caches)
        for name, kind, rule, mode, threads, options in random.Random(repeat).sample(
            configs, len(configs)
        ):
            if kind == "sklearn":
                result = run_sklearn(X64, y, args.epochs, args.alpha)
            elif kind == "sklearn-fit":
                result = run_sklearn_fit(X64, y, args.epochs, args.alpha)
            elif kind == "vw":
                result = run_vowpal_wabbit(X64, y, args.epochs, workdir)
            else:
                lr = args.sgd_lr if rule == "sgd" else args.adagrad_lr
                decay = args.sgd_decay if rule == "sgd" else 1.0
                result = run_gdfast(X, y, rule, mode, threads, args.epochs, lr, decay, **options)
            runs[name].append(result)
            print(
                f"  repeat {repeat + 1}: {name}: {sum(result['seconds']):.2f} s, "
                f"final loss {result['loss'][-1]:.5f}",
                flush=True,
            )

    print(
        f"\nmedians over {args.repeats} interleaved repeats, {args.epochs} epochs, "
        f"{X.shape[0]} updates per epoch; load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'configuration':60s} {'s/epoch':>8s} {'Mupd/s':>8s} {'CPUs':>5s} {'CPU-s':>6s} "
        f"{'CPU-ns/upd':>10s} {'acc':>6s}  loss after each epoch  (vs serial: speed, CPU/update)"
    )
    split_lines = []
    serial_seconds, serial_cpu = {}, {}
    for name, *_ in configs:
        per_epoch = statistics.median(s for run in runs[name] for s in run["seconds"])
        cpus = statistics.median(
            c / s for run in runs[name] for c, s in zip(run["cpu_seconds"], run["seconds"])
        )
        cpu_seconds = statistics.median(c for run in runs[name] for c in run["cpu_seconds"])
        losses = [
            statistics.median(run["loss"][e] for run in runs[name]) for e in range(args.epochs)
        ]
        rule = name.split()[0]
        if "serial" in name:
            serial_seconds[rule], serial_cpu[rule] = per_epoch, cpu_seconds
        speedup = ""
        if rule in serial_seconds and "serial" not in name:
            speedup = (
                f"  ({serial_seconds[rule] / per_epoch:.2f}x, "
                f"{cpu_seconds / serial_cpu[rule]:.2f}x CPU)"
            )
        accuracy = statistics.median(run["accuracy"] for run in runs[name])
        print(
            f"{name:60s} {per_epoch:8.3f} {X.shape[0] / per_epoch / 1e6:8.2f} {cpus:5.2f} "
            f"{cpu_seconds:6.3f} {cpu_seconds / X.shape[0] * 1e9:10.0f} {accuracy:6.4f}  "
            + " ".join("    -  " if math.isnan(value) else f"{value:.5f}" for value in losses)
            + speedup
        )
        if "thread_cpu_seconds" in runs[name][0]:
            split_lines.append(f"{name:60s} " + cpu_split(runs[name], X.shape[0]))
    print(
        "\nwhere the CPU time went (the C driver's clocks, medians per epoch): ns per update in"
        " the threads' rows (flushes included), the flushes' share of it, the serial setup"
        " (permutation) and the rest of the process's CPU (waiting threads, Python) per"
        " update, and each thread's share of the rows"
    )
    for line in split_lines:
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
