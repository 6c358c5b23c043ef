"""Bytes per parameter: build bench/bytes_per_param.c with the project's flags, run it with
torch's fused Adam interleaved, print one table (issue 12, scope 5-6).

    python bench/bytes_per_param.py [--sizes 1e6 1e7 1e8] [--threads 1 2] [--rounds 3]
                                    [--steps 10] [--no-torch] [--json out.json]
    python bench/bytes_per_param.py --report out.json

Each round runs, for every size and thread count: the C benchmark on 4 KiB pages, on
transparent huge pages, with non-temporal copy-out stores, and torch 2.13
``Adam(fused=True)`` in float32 and in bfloat16 (parameters, gradients and state; 1e7 and
up), one process after the other, so that the machine's load falls on all of them alike.
Figures are the median over rounds of each process's median step; ``cpu`` is the step's
process CPU time over the thread count (the work's own time when the machine is loaded).
Then gdfast.Adam itself under each dtype policy (GDFAST_CONFIGS), each in its own process,
interleaved with the rest (`--only-gdfast`: those alone).  Nothing is asserted: this measures
and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# setup.py's BASE_FLAGS and OpenMP: the kernels' build contract (never -ffast-math).
FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-fopenmp"]
TRAFFIC = ["traffic28", "traffic22", "traffic20", "traffic16", "traffic14"]
ADAMS = ["adam28", "adam22", "adam20", "adam20sr", "adam16q8", "adam14sr"]
# Each prototype's own same-traffic loop.
SAME_TRAFFIC = {
    "adam28": "traffic28",
    "adam22": "traffic22",
    "adam20": "traffic20",
    "adam20sr": "traffic20",
    "adam16q8": "traffic16",
    "adam14sr": "traffic14",
}
WITH_COPY_OUT = ["traffic20", "traffic16", "adam20", "adam20sr", "adam16q8"]

TORCH_STEP = r"""
import sys, time, torch
n, threads, steps, dtype = int(float(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
dt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
p = torch.nn.Parameter(torch.randn(n, dtype=torch.float32).to(dt))
p.grad = (torch.randn(n, dtype=torch.float32) * 1e-3).to(dt)
opt = torch.optim.Adam([p], lr=1e-3, fused=True)
opt.step()
wall, cpu = [], []
for _ in range(steps):
    t0, c0 = time.perf_counter(), time.process_time()
    opt.step()
    wall.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
wall.sort(); cpu.sort()
print(1e3 * wall[len(wall) // 2], 1e3 * wall[0], 1e3 * cpu[len(cpu) // 2] / threads)
"""


# gdfast.Adam itself under each dtype policy (issue 12): name -> (bytes moved per parameter,
# parameter dtype, gradient dtype, policy keywords, with a bfloat16 parameter copy).
GDFAST_CONFIGS = {
    "gdfast fp32": (28, "float32", "float32", {}, False),
    "gdfast fp32 p, bf16 g+state": (18, "float32", "bfloat16", {"state_dtype": "bfloat16"}, False),
    "gdfast fp32 p+g, int8 state": (16, "float32", "float32", {"state_dtype": "int8"}, False),
    "gdfast bf16 p+master, bf16 g+state": (
        20,
        "bfloat16",
        "bfloat16",
        {"master_weights": True, "state_dtype": "bfloat16"},
        False,
    ),
    "gdfast fp32 p, bf16 g+state+copy": (
        20,
        "float32",
        "bfloat16",
        {"state_dtype": "bfloat16"},
        True,
    ),
    "gdfast fp32 p, bf16 g+copy, int8 state": (
        16,
        "float32",
        "bfloat16",
        {"state_dtype": "int8"},
        True,
    ),
    "gdfast bf16 p+g+state, stochastic": (
        14,
        "bfloat16",
        "bfloat16",
        {"state_dtype": "bfloat16", "rounding": "stochastic"},
        False,
    ),
}

GDFAST_STEP = r"""
import json, sys, time
import numpy as np, ml_dtypes, gdfast
n, threads, steps = int(float(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
param_dtype, grad_dtype, policy, copy = json.loads(sys.argv[4])
dtypes = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}
gdfast.set_num_threads(threads)
rng = np.random.default_rng(0)
p = rng.standard_normal(n, dtype=np.float32).astype(dtypes[param_dtype])
g = (rng.standard_normal(n, dtype=np.float32) * 1e-3).astype(dtypes[grad_dtype])
copies = [np.zeros(n, dtype=ml_dtypes.bfloat16)] if copy else None
opt = gdfast.Adam([p], lr=1e-3, param_copy=copies, **policy)
opt.step([g])
wall, cpu = [], []
for _ in range(steps):
    t0, c0 = time.perf_counter(), time.process_time()
    opt.step([g])
    wall.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
wall.sort(); cpu.sort()
print(1e3 * wall[len(wall) // 2], 1e3 * wall[0], 1e3 * cpu[len(cpu) // 2] / threads)
"""


def run_step_script(
    label: str, script: str, argv: list[str], env: dict[str, str] | None = None
) -> dict[str, float] | None:
    """A step script (TORCH_STEP, GDFAST_STEP) in its own process: its median wall time, best
    wall time and median CPU time per thread (ms), or None when it fails (said on stderr)."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", script, *argv],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    except subprocess.CalledProcessError as error:
        print(f"{label}: failed: {error.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    median, low, cpu = (float(v) for v in out.split())
    return {"ms": median, "min_ms": low, "cpu_ms": cpu}


def run_gdfast(n: float, threads: int, steps: int, name: str) -> dict[str, float] | None:
    """One gdfast.Adam configuration in its own process (this worktree's build)."""
    _, param_dtype, grad_dtype, policy, copy = GDFAST_CONFIGS[name]
    config = json.dumps([param_dtype, grad_dtype, policy, copy])
    argv = [f"{n:g}", str(threads), str(steps), config]
    return run_step_script(
        f"{name} n={n:g}", GDFAST_STEP, argv, dict(os.environ, PYTHONPATH=str(ROOT))
    )


def build(out: Path) -> Path:
    """Compiles the benchmark with the project's flags (gcc target_clones as in kernels.c)."""
    exe = out / "bytes_per_param"
    cc = os.environ.get("CC", sysconfig.get_config_var("CC").split()[0] or "gcc")
    subprocess.run([cc, *FLAGS, str(HERE / "bytes_per_param.c"), "-o", str(exe), "-lm"], check=True)
    return exe


def write_maps(out: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from gdfast.formats import DYNAMIC_SIGNED, DYNAMIC_UNSIGNED

    path = out / "maps.bin"
    np.concatenate([DYNAMIC_SIGNED, DYNAMIC_UNSIGNED]).astype(np.float32).tofile(path)
    return path


def run_c(
    exe: Path,
    maps: Path,
    n: float,
    threads: int,
    steps: int,
    huge: int,
    nt: int,
    configs: list[str],
) -> dict[str, dict[str, float]]:
    env = dict(os.environ, GD_MAPS=str(maps))
    args = [str(exe), f"{n:g}", str(threads), str(steps), str(huge), str(nt), *configs]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        name, bytes_, median, low, p90, cpu, cpu_min = line.split()
        rows[name] = {
            "bytes": float(bytes_),
            "ms": float(median),
            "min_ms": float(low),
            "p90_ms": float(p90),
            "cpu_ms": float(cpu),
            "cpu_min_ms": float(cpu_min),
        }
    return rows


def run_torch(n: float, threads: int, steps: int, dtype: str) -> dict[str, float] | None:
    argv = [f"{n:g}", str(threads), str(steps), dtype]
    return run_step_script(f"torch {dtype} n={n:g}", TORCH_STEP, argv)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--only-gdfast", action="store_true", help="gdfast.Adam's policies only")
    parser.add_argument("--json", type=Path, help="write the figures here after every run")
    parser.add_argument("--report", type=Path, help="only print the table of a saved --json")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        report(saved["results"], saved["loads"])
        return

    results: dict[str, list] = {}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        exe, maps = build(Path(tmp)), write_maps(Path(tmp))
        for round_ in range(args.rounds):
            for n in args.sizes:
                for threads in args.threads:
                    key = f"{n:g}/{threads}"
                    loads.append(load_average())
                    started = time.perf_counter()
                    runs: dict[str, Any] = {}
                    if not args.only_gdfast:
                        runs = {
                            "4k": run_c(exe, maps, n, threads, args.steps, 0, 0, TRAFFIC + ADAMS),
                            "huge": run_c(exe, maps, n, threads, args.steps, 1, 0, TRAFFIC + ADAMS),
                            "nt": run_c(exe, maps, n, threads, args.steps, 0, 1, WITH_COPY_OUT),
                            "huge+nt": run_c(
                                exe, maps, n, threads, args.steps, 1, 1, WITH_COPY_OUT
                            ),
                        }
                    for name in GDFAST_CONFIGS:  # interleaved with the loops and torch
                        runs[name] = run_gdfast(n, threads, args.steps, name)
                    if not args.no_torch and n >= 1e7:
                        for dtype in ("float32", "bfloat16"):
                            runs[f"torch-{dtype}"] = run_torch(n, threads, args.steps, dtype)
                    results.setdefault(key, []).append(runs)
                    if args.json:
                        args.json.write_text(json.dumps({"results": results, "loads": loads}))
                    print(
                        f"round {round_ + 1} n={n:g} threads={threads}: "
                        f"{time.perf_counter() - started:.0f} s, load {loads[-1]}",
                        file=sys.stderr,
                    )
    report(results, loads)


def median_of(runs: list, variant: str, name: str | None, field: str) -> float:
    values = []
    for run in runs:
        rows = run.get(variant)
        if rows is None:
            continue
        row = rows.get(name) if name is not None else rows
        if row is not None:
            values.append(row[field])
    return statistics.median(values) if values else float("nan")


def report(results: dict, loads: list[str]) -> None:
    variants = ("4k", "huge", "nt", "huge+nt")
    print(f"# load averages during the run (1/5/15 min): {', '.join(loads)}")
    print(
        "# wall: median over rounds of each run's median step (ms); cpu: the same for the "
        "step's process CPU time / threads (ms)"
    )
    for key, runs in results.items():
        n, threads = key.split("/")
        print(f"\n## {n} parameters, {threads} thread(s)")
        print(
            "| config | bytes/param | 4k wall | 4k cpu | huge cpu | NT cpu | huge+NT cpu "
            "| own traffic loop / this (cpu, best variant of each) | torch fp32 / this (cpu) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        torch32 = median_of(runs, "torch-float32", None, "cpu_ms")

        def best(name: str) -> float:
            values = [median_of(runs, v, name, "cpu_ms") for v in variants]
            return min((v for v in values if v == v), default=float("nan"))

        for name in TRAFFIC + ADAMS:
            if not any(name in (run.get("4k") or {}) for run in runs):
                continue
            cpus = [median_of(runs, v, name, "cpu_ms") for v in variants]
            own = f"{best(SAME_TRAFFIC[name]) / best(name):.2f}" if name in SAME_TRAFFIC else ""
            versus = f"{torch32 / best(name):.2f}" if torch32 == torch32 else ""
            cells = " | ".join("" if v != v else f"{v:.2f}" for v in cpus)
            print(
                f"| {name} | {median_of(runs, '4k', name, 'bytes'):g} "
                f"| {median_of(runs, '4k', name, 'ms'):.2f} | {cells} | {own} | {versus} |"
            )
        fp32 = median_of(runs, "gdfast fp32", None, "cpu_ms")
        for name, (bytes_, *_) in GDFAST_CONFIGS.items():
            cpu = median_of(runs, name, None, "cpu_ms")
            if cpu == cpu:
                wall = median_of(runs, name, None, "ms")
                loop = {
                    28: "traffic28",
                    22: "traffic22",
                    20: "traffic20",
                    16: "traffic16",
                    14: "traffic14",
                }.get(bytes_)
                limit = best(loop) if loop else float("nan")
                own = f"{limit / cpu:.2f}" if limit == limit else ""
                versus = f"{torch32 / cpu:.2f}" if torch32 == torch32 else ""
                print(
                    f"| {name} (fp32 gdfast / this: {fp32 / cpu:.2f}) | {bytes_} | {wall:.2f} "
                    f"| {cpu:.2f} | | | | {own} | {versus} |"
                )
        for dtype in ("float32", "bfloat16"):
            cpu = median_of(runs, f"torch-{dtype}", None, "cpu_ms")
            if cpu == cpu:
                wall = median_of(runs, f"torch-{dtype}", None, "ms")
                print(
                    f"| torch Adam(fused=True) {dtype} | {28 if dtype == 'float32' else 14} "
                    f"| {wall:.2f} | {cpu:.2f} | | | | | {torch32 / cpu:.2f} |"
                )


if __name__ == "__main__":
    main()
