"""gdfast.torch against torch.optim: time per step on a 200-tensor model, 1 thread.

    python bench/bench_torch_adapter.py [--sizes 1000000 10000000] [--repeats 15]
    python bench/bench_torch_adapter.py --clip [--sizes 10000000]
    python bench/bench_torch_adapter.py --step-in-backward [--width 4096]
    python bench/bench_torch_adapter.py --clip-lag
    python bench/bench_torch_adapter.py --training-loop [--width 1024] [--rounds 3]

--clip: Adam's step alone against the same step with max_grad_norm clipping every step
(the norm pass, the scale inside the kernel), and torch's clip_grad_norm_ + Adam (foreach)
for comparison; interleaved, wall and CPU time medians, ratios to gdfast's step alone.
--step-in-backward: an MLP of three width x width layers (4096: 50.3M parameters,
float32) trained with AdamW on generated data, backward-then-step against
gdfast.torch.step_in_backward, each in its own process (alternating, 3 rounds): peak
resident memory above the iteration's start (VmHWM reset through /proc/self/clear_refs,
malloc's mmap threshold fixed so that freed tensors leave the process), and the median
time per iteration.

--training-loop: the step where it runs in training, right after torch's own forward and
backward at torch's default thread count: an MLP of three width x width layers (batch 64,
Adam, lr 1e-3), gdfast.torch.Adam on 1 and 2 threads against torch's Adam (fused, foreach),
each in its own process (alternating, `rounds` rounds), once as Python starts by default and
once with OMP_WAIT_POLICY=PASSIVE (torch's OpenMP threads sleep as soon as an op ends instead
of spinning on the cores for a while): median ms of the step, of forward+backward and of the
iteration.

For each rule, each torch implementation it has on the CPU (fused, foreach, for-loop)
and gdfast.torch run interleaved, `repeats` rounds of a few steps each, on the same
float32 parameters split into 200 tensors of equal size; the step alone is timed (no
forward or backward).  Two gradient modes: "kept" (the same gradient tensors every step,
as zero_grad(set_to_none=False) leaves them) and "fresh" (new gradient tensor objects
before every step, as the default zero_grad() and backward() make them; the swap is not
timed).  Reports the median time per step and the ratio to torch's best variant.
Measures and reports; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import gdfast
import gdfast.torch as gt

RULES = ["Adam", "RMSprop", "Adadelta", "Adamax", "NAdam"]


def make_params(total: int, tensors: int = 200) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(0)
    size = total // tensors
    params = [torch.nn.Parameter(torch.randn(size, generator=generator)) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(size, generator=generator) * 1e-3
        p.spare_grad = p.grad.clone()  # the other set of gradient tensors ("fresh")
    return params


def swap_gradients(optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad, p.spare_grad = p.spare_grad, p.grad


def variants(rule: str, total: int) -> dict[str, torch.optim.Optimizer]:
    """Every implementation of `rule`, each on its own copy of the parameters."""
    made = {}
    for label, options in (
        ("torch fused", {"fused": True}),
        ("torch foreach", {"foreach": True}),
        ("torch for-loop", {"foreach": False}),
    ):
        try:
            made[label] = getattr(torch.optim, rule)(make_params(total), **options)
            made[label].step()
        except (RuntimeError, TypeError, ValueError):
            made.pop(label, None)  # this rule has no such implementation on the CPU
    made["gdfast.torch"] = getattr(gt, rule)(make_params(total))
    return made


def measure(rule: str, total: int, repeats: int, steps: int, fresh: bool) -> dict[str, float]:
    optimizers = variants(rule, total)
    times: dict[str, list[float]] = {label: [] for label in optimizers}
    for optimizer in optimizers.values():
        optimizer.step()  # state created, caches warm
    for _ in range(repeats):
        for label, optimizer in optimizers.items():  # interleaved: same machine state
            elapsed = 0.0
            for _ in range(steps):
                if fresh:
                    swap_gradients(optimizer)
                began = time.perf_counter()
                optimizer.step()
                elapsed += time.perf_counter() - began
            times[label].append(elapsed / steps)
    return {label: statistics.median(values) for label, values in times.items()}


def measure_clip(total: int, repeats: int) -> None:
    """Adam step alone, with max_grad_norm (active: the norm is ~10x the limit), and torch's
    clip_grad_norm_ + Adam(foreach), interleaved."""

    def setup(label):
        params = make_params(total)
        if label == "gdfast step":
            return params, gt.Adam(params), None
        if label == "gdfast clip+step":
            return params, gt.Adam(params, max_grad_norm=1e-3), None
        return params, torch.optim.Adam(params, foreach=True), 1e-3

    runs = {
        label: setup(label)
        for label in ("gdfast step", "gdfast clip+step", "torch clip_grad_norm_+step")
    }
    wall: dict[str, list[float]] = {label: [] for label in runs}
    cpu: dict[str, list[float]] = {label: [] for label in runs}
    for params, optimizer, clip in runs.values():
        optimizer.step()
    for _ in range(repeats):
        for label, (params, optimizer, clip) in runs.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            wall[label].append(time.perf_counter() - began)
            cpu[label].append(time.process_time() - began_cpu)
            if clip is not None:  # undo the in-place scaling: same gradients each round
                for p in params:
                    p.grad.copy_(p.spare_grad)
    base = statistics.median(wall["gdfast step"]), statistics.median(cpu["gdfast step"])
    for label in runs:
        w, c = statistics.median(wall[label]), statistics.median(cpu[label])
        tail = sorted(wall[label])[int(0.9 * (len(wall[label]) - 1))]
        print(
            f"{total:>10,} {label:28s} wall {w * 1e3:8.2f} ms (p90 {tail * 1e3:8.2f}, "
            f"x{w / base[0]:.3f})  cpu {c * 1e3:8.2f} ms (x{c / base[1]:.3f})",
            flush=True,
        )


BACKWARD_CHILD = r"""
import os, re, statistics, sys, time
import torch
import gdfast, gdfast.torch as gt
mode, width, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1); gdfast.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(),
                            torch.nn.Linear(width, width), torch.nn.ReLU(),
                            torch.nn.Linear(width, width))
x = torch.randn(32, width); y = torch.randn(32, width)
if mode == "step-in-backward":
    run = gt.step_in_backward(model, lambda ps: gt.AdamW(ps, lr=1e-4), max_grad_norm=1.0)
    optimizer = None
else:
    optimizer = gt.AdamW(model.parameters(), lr=1e-4, max_grad_norm=1.0)
def rss(field):
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\s+(\d+) kB", status.read()).group(1)) * 1024
def iteration():
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    if optimizer is not None:
        optimizer.step(); optimizer.zero_grad(set_to_none=True)
    return loss.item()
iteration(); iteration()               # state created, allocator warm
peaks, times, losses = [], [], []
for _ in range(iterations):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                    # reset the peak (VmHWM) to the current RSS
    start = rss("VmRSS")
    began = time.perf_counter()
    losses.append(iteration())
    times.append(time.perf_counter() - began)
    peaks.append(rss("VmHWM") - start)
params = sum(p.numel() for p in model.parameters())
print(params, statistics.median(peaks), statistics.median(times), losses[-1])
"""


def run_child(code: str, args: list, env: dict) -> list[str]:
    """`code` run by a fresh Python with `args` and `env`: the words it printed."""
    import subprocess
    import sys

    command = [sys.executable, "-c", code, *map(str, args)]
    return subprocess.run(
        command, env=env, check=True, capture_output=True, text=True
    ).stdout.split()


def measure_step_in_backward(width: int, rounds: int = 3, iterations: int = 5) -> None:
    import os

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    results: dict[str, list[tuple[float, float]]] = {
        "backward-then-step": [],
        "step-in-backward": [],
    }
    for _ in range(rounds):
        for mode in results:
            out = run_child(BACKWARD_CHILD, [mode, width, iterations], env)
            params = int(out[0])
            results[mode].append((float(out[1]), float(out[2])))
    print(
        f"MLP 3 x {width}x{width}: {params:,} parameters (float32), AdamW, "
        f"max_grad_norm=1.0, 1 thread; medians over {rounds} processes x {iterations} "
        "iterations"
    )
    summary = {}
    for mode, values in results.items():
        peak = statistics.median(v[0] for v in values)
        seconds = statistics.median(v[1] for v in values)
        summary[mode] = peak, seconds
        print(
            f"  {mode:20s} peak memory above start {peak / 2**20:8.1f} MiB   "
            f"time/iteration {seconds * 1e3:8.1f} ms   (per process: "
            + ", ".join(f"{v[0] / 2**20:.0f} MiB {v[1] * 1e3:.0f} ms" for v in values)
            + ")"
        )
    (p0, t0), (p1, t1) = summary["backward-then-step"], summary["step-in-backward"]
    print(f"  step-in-backward: {100 * (1 - p1 / p0):.1f}% less peak memory, time x{t1 / t0:.3f}")


def measure_clip_lag(iterations: int = 300, max_grad_norm: float = 0.02) -> None:
    """Training loss with exact clipping (backward, then a clipped step) against
    step_in_backward's previous-norm clipping, same model, data and seed."""
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(64, 8, generator=generator)
    data = [torch.randn(128, 64, generator=generator) for _ in range(iterations)]
    curves = {}
    for mode in ("exact (backward, then clipped step)", "step_in_backward (previous norm)"):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 256),
            torch.nn.GELU(),
            torch.nn.Linear(256, 256),
            torch.nn.GELU(),
            torch.nn.Linear(256, 8),
        )
        make = lambda ps: gt.AdamW(ps, lr=3e-3)  # noqa: E731
        if mode.startswith("exact"):
            optimizer, run = (
                gt.AdamW(model.parameters(), lr=3e-3, max_grad_norm=max_grad_norm),
                None,
            )
        else:
            optimizer, run = None, gt.step_in_backward(model, make, max_grad_norm=max_grad_norm)
        losses, clipped = [], 0
        for x in data:
            y = torch.tanh(x @ teacher)
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            if optimizer is not None:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            norm = (optimizer or run).grad_norm
            clipped += norm > max_grad_norm
            losses.append(loss.item())
        curves[mode] = losses, clipped
    print(
        f"clipping at max_grad_norm={max_grad_norm}: MLP 64-256-256-8, AdamW lr 3e-3, "
        f"{iterations} iterations of 128 generated samples; mean loss over windows"
    )
    for mode, (losses, clipped) in curves.items():
        windows = [statistics.mean(losses[k : k + 50]) for k in range(0, len(losses), 50)]
        print(
            f"  {mode:38s} clipped {clipped:3d}/{iterations}  "
            + "  ".join(f"{w:.5f}" for w in windows)
        )


LOOP_CHILD = r"""
import statistics, sys, time, torch, gdfast, gdfast.torch as gt
name, width, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(),
                            torch.nn.Linear(width, width), torch.nn.ReLU(),
                            torch.nn.Linear(width, width))
x, y = torch.randn(64, width), torch.randn(64, width)
if name.startswith("gdfast"):
    gdfast.set_num_threads(int(name[-1]))
    optimizer = gt.Adam(model.parameters(), lr=1e-3)
else:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **{name: True})
steps, passes = [], []
for i in range(iterations):
    began = time.perf_counter()
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    middle = time.perf_counter()
    optimizer.step()
    ended = time.perf_counter()
    if i >= 10:
        steps.append(ended - middle)
        passes.append(middle - began)
print(sum(p.numel() for p in model.parameters()), torch.get_num_threads(),
      statistics.median(steps), statistics.median(passes),
      statistics.median(s + p for s, p in zip(steps, passes)))
"""


def measure_training_loop(width: int, rounds: int, iterations: int = 110) -> None:
    import os

    names = {
        "gdfast.torch Adam, 1 thread": "gdfast1",
        "gdfast.torch Adam, 2 threads": "gdfast2",
        "torch Adam(fused=True)": "fused",
        "torch Adam(foreach=True)": "foreach",
    }
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    for policy in ("default", "PASSIVE"):
        env = base if policy == "default" else dict(base, OMP_WAIT_POLICY=policy)
        results: dict[str, list[list[float]]] = {label: [] for label in names}
        for _ in range(rounds):
            for label, name in names.items():
                out = run_child(LOOP_CHILD, [name, width, iterations], env)
                params, torch_threads = int(out[0]), int(out[1])
                results[label].append([float(v) * 1e3 for v in out[2:]])
        print(
            f"MLP 3 x {width}x{width} ({params:,} parameters), batch 64, torch threads "
            f"{torch_threads}, OMP_WAIT_POLICY {policy}; medians over {rounds} processes x "
            f"{iterations - 10} iterations, load {os.getloadavg()[0]:.1f}"
        )
        for label, values in results.items():
            step, passes, whole = (statistics.median(v[i] for v in values) for i in range(3))
            print(
                f"  {label:30s} step {step:7.3f} ms   forward+backward {passes:7.3f} ms   "
                f"iteration {whole:7.3f} ms   (steps per process: "
                + ", ".join(f"{v[0]:.2f}" for v in values)
                + ")",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", action="store_true")
    parser.add_argument("--step-in-backward", action="store_true")
    parser.add_argument("--clip-lag", action="store_true")
    parser.add_argument("--training-loop", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--width",
        type=int,
        help="layer width (default 4096 with --step-in-backward, 1024 with --training-loop)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rules", nargs="+", default=RULES)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--gradients", choices=["kept", "fresh"], nargs="+", default=["kept", "fresh"]
    )
    args = parser.parse_args()
    if args.training_loop:  # before torch.set_num_threads: the children keep torch's default
        measure_training_loop(args.width or 1024, args.rounds)
        return
    torch.set_num_threads(1)
    gdfast.set_num_threads(1)
    if args.step_in_backward:
        measure_step_in_backward(args.width or 4096)
        return
    if args.clip_lag:
        measure_clip_lag()
        return
    if args.clip:
        for total in args.sizes:
            measure_clip(total, args.repeats)
        return
    print(
        f"torch {torch.__version__}, 1 thread, float32, 200 tensors, kernel ISA "
        f"{gdfast.kernel_isa()}; median ms per step"
    )
    for total, mode, rule in (
        (t, m, r) for t in args.sizes for m in args.gradients for r in args.rules
    ):
        steps = 10 if total <= 2_000_000 else 2
        result = measure(rule, total, args.repeats, steps, mode == "fresh")
        best_label = min((label for label in result if label != "gdfast.torch"), key=result.get)
        ours = result["gdfast.torch"]
        cells = "  ".join(f"{label} {ms * 1e3:7.3f}" for label, ms in result.items())
        print(
            f"{total:>10,} {mode:5s} {rule:9s} {cells}  | vs {best_label}: "
            f"{result[best_label] / ours:4.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
