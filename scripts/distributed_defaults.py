"""Measure the fetch transport and the wait policy over the README's configurations.

    python scripts/distributed_defaults.py --repeats 3 --out defaults.json
    python scripts/distributed_defaults.py --trees new=. old=/tmp/old \
        --settings new:-:sleep new:-:yield old:window:sleep old:message:sleep

A setting is tree:fetch:wait: the code tree on PYTHONPATH (--trees label=path, default
this checkout), the --fetch option ("-": none, the current code has no choice) and
--wait.  Each configuration is run with every setting, interleaved: repeat r runs
every configuration under every setting in a shuffled order before repeat r + 1 starts,
so a change in the machine's load hits all settings alike.  A run is
`mpiexec -n <ranks> python -m mpi4py -m gdfast.distributed train ...`; the figure kept is
the job time that the command line prints (rank 0's time inside `train`, MPI start-up
excluded).  Prints one row per (configuration, setting): median, min, max, and the
median's ratio to the best setting of that configuration; with --out, every run as JSON.
Also records the load average before each run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

CONFIGURATIONS = {
    # the README's command line (latency-bound: 33 parameters, batches of 32)
    "adarev-3w-1s": (
        4,
        ["--algorithm", "adaptive_revision", "--servers", "1", "--lr", "0.3", "--steps", "2000"],
    ),
    "downpour-3w-1s": (
        4,
        ["--algorithm", "downpour", "--servers", "1", "--lr", "0.3", "--steps", "2000"],
    ),
    "downpour-2w-2s": (
        4,
        [
            "--algorithm",
            "downpour",
            "--servers",
            "2",
            "--lr",
            "0.3",
            "--steps",
            "2000",
            "--n-fetch",
            "2",
            "--n-push",
            "2",
        ],
    ),
    "downpour-1w-1s": (
        2,
        ["--algorithm", "downpour", "--servers", "1", "--lr", "0.3", "--steps", "2000"],
    ),
    # compute-bound: 256 parameters, batches of 1,024 (the scaling job's shape)
    "downpour-2w-1s-big": (
        3,
        [
            "--algorithm",
            "downpour",
            "--servers",
            "1",
            "--lr",
            "0.3",
            "--steps",
            "500",
            "--rows",
            "32768",
            "--features",
            "255",
            "--batch-size",
            "1024",
        ],
    ),
    "adarev-1w-1s-big": (
        2,
        [
            "--algorithm",
            "adaptive_revision",
            "--servers",
            "1",
            "--lr",
            "0.3",
            "--steps",
            "500",
            "--rows",
            "32768",
            "--features",
            "255",
            "--batch-size",
            "1024",
        ],
    ),
}
WAITS = ["spin", "yield", "sleep", "backoff"]
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(ranks: int, args: list[str], tree: str, fetch: str, wait: str, timeout: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": tree}
    command = [
        "mpiexec",
        "-n",
        str(ranks),
        sys.executable,
        "-m",
        "mpi4py",
        "-m",
        "gdfast.distributed",
        "train",
        *args,
        "--wait",
        wait,
    ]
    if fetch != "-":
        command += ["--fetch", fetch]
    load = os.getloadavg()[0]
    began = time.perf_counter()
    try:
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tree
        )  # `python -m` puts the working directory first
    except subprocess.TimeoutExpired:
        return {"seconds": timeout, "wall": timeout, "loss": None, "load": load, "timeout": True}
    wall = time.perf_counter() - began
    match = re.search(r"updates(?:, resumed at \d+)?, ([\d.]+) s", run.stdout)
    loss = re.search(r"final loss (\S+)", run.stdout)
    if run.returncode or not match:
        return {
            "seconds": None,
            "wall": wall,
            "loss": None,
            "load": load,
            "error": run.stderr[-500:],
        }
    return {
        "seconds": float(match.group(1)),
        "wall": wall,
        "loss": float(loss.group(1)),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configurations", nargs="*", default=sorted(CONFIGURATIONS))
    parser.add_argument("--trees", nargs="*", default=[f"this={HERE}"])
    parser.add_argument("--settings", nargs="*", default=[f"this:-:{w}" for w in WAITS])
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--out", default=None)
    options = parser.parse_args()
    trees = dict(tree.split("=", 1) for tree in options.trees)
    settings = [tuple(setting.split(":")) for setting in options.settings]
    runs = []
    shuffle = random.Random(0)
    for repeat in range(options.repeats):
        order = list(itertools.product(options.configurations, settings))
        shuffle.shuffle(order)
        for name, (tree, fetch, wait) in order:
            ranks, args = CONFIGURATIONS[name]
            result = run_once(ranks, args, trees[tree], fetch, wait, options.timeout)
            result.update(configuration=name, tree=tree, fetch=fetch, wait=wait, repeat=repeat)
            runs.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            if options.out:
                with open(options.out, "w") as file:
                    json.dump(runs, file, indent=1)
    report(runs, options.configurations, settings)


def report(runs: list[dict], configurations: list[str], settings: list[tuple]) -> None:
    """One row per (configuration, setting): median, min, max, ratio to the best median."""
    print(
        f"{'configuration':<20} {'setting':<22} {'median':>8} {'min':>7} "
        f"{'max':>7} {'x best':>7}  load"
    )
    for name in configurations:
        medians, loads = {}, {}
        for setting in settings:
            mine = [
                r
                for r in runs
                if r["configuration"] == name
                and (r.get("tree", "this"), r["fetch"], r["wait"]) == setting
            ]
            times = [r["seconds"] for r in mine if r["seconds"]]
            if times:
                medians[setting] = (statistics.median(times), min(times), max(times))
                loads[setting] = [r["load"] for r in mine]
        best = min(m[0] for m in medians.values()) if medians else float("nan")
        for setting, (median, low, high) in sorted(medians.items(), key=lambda i: i[1]):
            print(
                f"{name:<20} {':'.join(setting):<22} {median:8.2f} {low:7.2f} {high:7.2f} "
                f"{median / best:7.2f}  {min(loads[setting]):.1f}-"
                f"{max(loads[setting]):.1f}"
            )


if __name__ == "__main__":
    main()
