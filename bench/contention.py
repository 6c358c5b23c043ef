"""Step times with one thread and with the default thread count, on the machine as it is
and with a busy-loop process on every other CPU (gdfast issue 11: never slower on a busy
machine).

    python bench/contention.py                   # Adam float32, sizes 1e3 ... 1e7, < 3 min
    python bench/contention.py --huge            # adds 1e8 (1.6 GB of arrays for Adam float32)
    python bench/contention.py --json out.json   # the table's figures, machine readable
    python bench/contention.py --compare-to /tmp/main_build   # this build against another

--compare-to takes a folder holding another build's `gdfast` package (a worktree or a copy
of one, built in place): its steps are timed interleaved with this build's, round by round,
so that both see the same machine, and each row gains the other build's figures and the
ratios of this build's default-thread times to the other's.

For each condition ("as is", then "hogs": the benchmark starts one `while True: pass`
process per other CPU this process may run on, each in its own session like any other
program, and stops them when the condition is done, on an exception, or when their own
time bound runs out) and each size, the two thread counts are timed interleaved, round
by round, one step per sample.  The table gives the median and the 99th percentile of the
per-step wall times, their ratio default / one thread (below 1: the default is faster),
the CPU time of a step (all the process's threads) for each, and "alone": the share of
the default's steps the runtime ran on the calling thread alone because recent steps of
that size with helpers had been no clear gain over one thread (src_c/threads.inc,
GD_GAIN).  Beside the "as is" rows: the same ratio for the roofline loop (the memory
traffic of the step with next to no arithmetic), the gain RAM bandwidth allows.  The load average at the start of each
condition is printed: other programs on the machine change every figure.

It measures and reports; it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

import gdfast

HOG = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


class Hogs:
    """One busy-loop process per CPU but one, each bounded to `seconds`; a context manager."""

    def __init__(self, count: int, seconds: float):
        self.count, self.seconds, self.processes = count, seconds, []

    def __enter__(self) -> "Hogs":
        atexit.register(self.stop)
        for _ in range(self.count):
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", HOG, str(self.seconds)], start_new_session=True
                )
            )
        time.sleep(0.2)  # let them reach their loop
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        self.processes = []

    def __exit__(self, *exc) -> None:
        self.stop()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_build(folder: str):
    """The `gdfast` package under `folder`, imported as `gdfast_compared` (its own compiled
    kernels and thread runtime, beside this build's)."""
    package = os.path.join(os.path.abspath(folder), "gdfast")
    spec = importlib.util.spec_from_file_location(
        "gdfast_compared",
        os.path.join(package, "__init__.py"),
        submodule_search_locations=[package],
    )
    if spec is None:
        raise SystemExit(f"--compare-to: no gdfast package in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gdfast_compared"] = module
    spec.loader.exec_module(module)
    return module


def adam_step(size: int, dtype: str, build=gdfast):
    rng = np.random.default_rng(0)
    param = rng.standard_normal(size).astype(dtype)
    grad = rng.standard_normal(size).astype(dtype)
    optimizer = build.Adam([param], lr=1e-3)
    return lambda: optimizer.step([grad])


def roofline_step(size: int, dtype: str, build=gdfast):
    """The roofline loop with Adam's traffic (param, grad and two state buffers)."""
    arrays = [np.ones(size, dtype=dtype) for _ in range(4)]
    kernels = build._kernels
    return lambda: kernels.roofline([arrays[0]], [arrays[1]], ([arrays[2]], [arrays[3]]))


def time_interleaved(variants: dict, seconds: float, rounds: int) -> dict:
    """Per-step wall times and CPU time per step of each variant, name -> (step, build,
    thread count), the variants taking turns round by round."""
    walls = {name: [] for name in variants}
    cpu = {name: 0.0 for name in variants}
    alone = {name: 0 for name in variants}
    for step, build, n in variants.values():  # warm up: pages touched, helpers started
        with build.threads(n):
            step()
            step()
    for _ in range(rounds):
        for name, (step, build, n) in variants.items():
            with build.threads(n):
                budget_end = time.perf_counter() + seconds / rounds
                cpu_began = cpu_seconds()
                backed_off = build._kernels.thread_stats()["backed_off"]
                while True:
                    began = time.perf_counter()
                    step()
                    ended = time.perf_counter()
                    walls[name].append(ended - began)
                    if ended > budget_end:
                        break
                cpu[name] += cpu_seconds() - cpu_began
                alone[name] += build._kernels.thread_stats()["backed_off"] - backed_off
    return {
        name: {
            "median_s": statistics.median(walls[name]),
            "p99_s": float(np.percentile(walls[name], 99)),
            "cpu_per_step_s": cpu[name] / len(walls[name]),
            "backed_off_share": alone[name] / len(walls[name]),
            "steps": len(walls[name]),
        }
        for name in variants
    }


def variants_of(make_step, size: int, dtype: str, builds: dict, counts) -> dict:
    """(build label, thread count) -> (step, build, thread count), one step per build."""
    variants = {}
    for label, build in builds.items():
        step = make_step(size, dtype, build)
        for n in counts:
            variants[(label, n)] = (step, build, n)
    return variants


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.2f} ms"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(float(x)) for x in s.split(",")],
        default=[1000, 10_000, 70_000, 200_000, 1_000_000, 10_000_000],
        help="comma-separated parameter counts (default 1e3,1e4,7e4,2e5,1e6,1e7)",
    )
    parser.add_argument("--huge", action="store_true", help="add 1e8 (needs ~1.6 GB for float32)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="the thread count compared with one (default: gdfast's default, "
        f"{gdfast.get_num_threads()} here)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="timing budget per size, thread count and condition (default 2)",
    )
    parser.add_argument("--rounds", type=int, default=32, help="interleaving rounds (default 32)")
    parser.add_argument(
        "--conditions", default="as-is,hogs", help="comma-separated: as-is, hogs (default both)"
    )
    parser.add_argument("--no-roofline", action="store_true", help="skip the roofline columns")
    parser.add_argument(
        "--compare-to",
        metavar="FOLDER",
        help="also time the gdfast package under FOLDER (another build), interleaved",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    sizes = args.sizes + ([100_000_000] if args.huge else [])
    default = args.threads or gdfast.get_num_threads()
    counts = [1, default] if default != 1 else [1]
    cpus = len(os.sched_getaffinity(0))
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = set(conditions) - {"as-is", "hogs"}
    if unknown:
        parser.error(f"--conditions: unknown {sorted(unknown)}; expected as-is and/or hogs")
    builds = {"this": gdfast}
    if args.compare_to:
        builds["compared"] = load_build(args.compare_to)
    print(
        f"gdfast {gdfast.__version__}  kernel_isa={gdfast.kernel_isa()}  cpus={cpus}  "
        f"threads: 1 vs {default}  Adam {args.dtype}, one step per sample, "
        f"{args.seconds:g} s per cell"
    )
    if args.compare_to:
        print(f"compared with the build in {args.compare_to} (rows 'compared'), interleaved")
    roofline = not args.no_roofline and default != 1
    results = []
    for condition in conditions:
        hogs = cpus - 1 if condition == "hogs" else 0
        bound = len(sizes) * (args.seconds * len(counts) * len(builds) * 2 + 10) + 30
        with Hogs(hogs, bound):
            load = os.getloadavg()
            print(
                f"\n## {condition}: {hogs} busy-loop process(es); load average "
                f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
            )
            head = (
                f"{'size':>11} {'build':>8} | {'median 1T':>11} {'median dflt':>11} {'ratio':>6} | "
                f"{'p99 1T':>11} {'p99 dflt':>11} {'ratio':>6} | "
                f"{'cpu/step 1T':>11} {'dflt':>11} {'alone':>6}"
            )
            if args.compare_to:
                head += f" | {'dflt this/compared: median':>26} {'p99':>6}"
            if condition == "as-is" and roofline:
                head += f" | {'roofline median ratio':>21}"
            print(head)
            for size in sizes:
                timing = time_interleaved(
                    variants_of(adam_step, size, args.dtype, builds, counts),
                    args.seconds,
                    args.rounds,
                )
                row = {
                    "condition": condition,
                    "hogs": hogs,
                    "load_average": load,
                    "size": size,
                    "dtype": args.dtype,
                    "threads": default,
                }
                if condition == "as-is" and roofline:
                    roof = time_interleaved(
                        variants_of(roofline_step, size, args.dtype, {"this": gdfast}, counts),
                        args.seconds / 2,
                        args.rounds,
                    )
                    row["roofline"] = {str(n): roof[("this", n)] for n in counts}
                for label in builds:
                    one, other = timing[(label, 1)], timing[(label, default)]
                    row[label] = {"one_thread": one, "default": other}
                    line = (
                        f"{size:>11,} {label:>8} | {format_time(one['median_s'])} "
                        f"{format_time(other['median_s'])} "
                        f"{other['median_s'] / one['median_s']:6.2f} | "
                        f"{format_time(one['p99_s'])} {format_time(other['p99_s'])} "
                        f"{other['p99_s'] / one['p99_s']:6.2f} | "
                        f"{format_time(one['cpu_per_step_s'])} "
                        f"{format_time(other['cpu_per_step_s'])} "
                        f"{other['backed_off_share']:6.0%}"
                    )
                    if args.compare_to and label == "this":
                        base = timing[("compared", default)]
                        line += (
                            f" | {other['median_s'] / base['median_s']:26.2f} "
                            f"{other['p99_s'] / base['p99_s']:6.2f}"
                        )
                    elif args.compare_to:
                        line += f" | {'':>26} {'':>6}"
                    if condition == "as-is" and roofline and label == "this":
                        gain = roof[("this", default)]["median_s"] / roof[("this", 1)]["median_s"]
                        line += f" | {gain:21.2f}"
                    print(line, flush=True)
                results.append(row)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
