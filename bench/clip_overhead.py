"""What clipping by global norm costs on top of a step: gdfast.torch's `max_grad_norm` (the
fixed-order C sum of squares, then the step with the scale inside the kernel) against the
step alone, and torch's `clip_grad_norm_(foreach=True)` + `Adam(fused=True)` (SGD:
`fused=True`) against torch's step alone.

The parameters are a list of float32 tensors (a few large, many small: the sizes of a
model's weights and biases) adding up to --sizes elements.  For each size, thread count
and rule, the variants run interleaved (rep r runs them in a rotated order), each rep
timed by the wall clock and by the process's CPU time (all its threads: what the machine
was asked to do, which other programs' load changes much less than the wall time).  The
reductions alone are timed too (gdfast's sum of squares; torch's clip_grad_norm_ with
max_norm=inf, which computes the norm and multiplies by 1), and gdfast's memory roofline
of the step (src_c: gd_roofline, one pass with the traffic of the rule's buffers).  Last,
the sum of squares of gradients just written (hot in cache: what a post-accumulate-grad
hook would pay during backward) against the same after other memory was read (cold: what
the step pays after backward), in CPU time.

Reported: per variant the median, 90th percentile and maximum wall time per call, the
median CPU time; then the ratios clip+step / step (medians, wall and CPU, and the median of
the per-rep ratios), the load average before and after.  Nothing is asserted.

    PYTHONPATH=$PWD python bench/clip_overhead.py [--sizes 1e6 1e7] [--threads 1 2]
        [--rules adam sgd] [--reps 25] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

import gdfast
import gdfast.torch as gt
from gdfast._kernels import roofline, sum_of_squares

MAX_NORM = 1.0
LR = 1e-7  # small: the parameters barely move over the reps


def shapes(total: int) -> list[int]:
    """A model's tensor sizes adding up to `total`: 4 large weights, 12 small biases."""
    small = [min(4096, total // 64)] * 12
    large = total - sum(small)
    return [large // 4] * 3 + [large - 3 * (large // 4)] + small


def make(total: int, seed: int) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    params = []
    for n in shapes(total):
        p = torch.nn.Parameter(torch.randn(n, generator=generator))
        p.grad = torch.randn(n, generator=generator) * 1e-3  # global norm ~ 1e-3 √total > 1
        params.append(p)
    return params


def optimizer(library: str, rule: str, params, clip: bool):
    if library == "gdfast":
        kwargs = {"max_grad_norm": MAX_NORM} if clip else {}
        if rule == "adam":
            return gt.Adam(params, lr=LR, **kwargs)
        return gt.SGD(params, lr=LR, **kwargs)
    if rule == "adam":
        return torch.optim.Adam(params, lr=LR, fused=True)
    return torch.optim.SGD(params, lr=LR, fused=True)


def variants(total: int, rule: str) -> dict:
    """name -> a function doing one call (each variant on its own parameters)."""
    calls = {}
    for library in ("gdfast", "torch"):
        for clip in (False, True):
            params = make(total, seed=1)
            opt = optimizer(library, rule, params, clip)
            opt.step()  # state created outside the timing
            if library == "torch" and clip:

                def call(params=params, opt=opt):
                    torch.nn.utils.clip_grad_norm_(params, MAX_NORM, foreach=True)
                    opt.step()

            else:
                call = opt.step
            calls[f"{library} {'clip+step' if clip else 'step'}"] = call
    params = make(total, seed=1)
    grads = [p.grad.numpy() for p in params]
    calls["gdfast norm alone"] = lambda: sum_of_squares(grads)
    calls["torch norm alone"] = lambda: torch.nn.utils.clip_grad_norm_(
        params, float("inf"), foreach=True
    )
    arrays = [p.detach().numpy() for p in params]
    states = [[np.zeros_like(a) for a in arrays] for _ in range(2 if rule == "adam" else 0)]
    calls["gdfast roofline of the step"] = lambda: roofline(arrays, grads, tuple(states))
    return calls


def measure(total: int, threads: int, rule: str, reps: int) -> dict:
    gdfast.set_num_threads(threads)
    torch.set_num_threads(threads)
    calls = variants(total, rule)
    names = list(calls)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    load_before = os.getloadavg()[0]
    for name in names:  # warm-up
        calls[name]()
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            c0, w0 = time.process_time(), time.perf_counter()
            calls[name]()
            w1, c1 = time.perf_counter(), time.process_time()
            wall[name].append(w1 - w0)
            cpu[name].append(c1 - c0)
    load_after = os.getloadavg()[0]

    def stats(name):
        w = sorted(wall[name])
        return {
            "median_ms": 1e3 * statistics.median(w),
            "p90_ms": 1e3 * w[int(0.9 * (len(w) - 1))],
            "max_ms": 1e3 * w[-1],
            "cpu_median_ms": 1e3 * statistics.median(cpu[name]),
        }

    result = {
        "elements": total,
        "threads": threads,
        "rule": rule,
        "reps": reps,
        "load_before": load_before,
        "load_after": load_after,
        "variants": {name: stats(name) for name in names},
        "ratios": {},
    }
    for library in ("gdfast", "torch"):
        step, clip = wall[f"{library} step"], wall[f"{library} clip+step"]
        result["ratios"][library] = {
            "wall_median_ratio": statistics.median(clip) / statistics.median(step),
            "median_of_rep_ratios": statistics.median(c / s for c, s in zip(clip, step)),
            "cpu_median_ratio": statistics.median(cpu[f"{library} clip+step"])
            / statistics.median(cpu[f"{library} step"]),
        }
    result["ratios"]["gdfast clip+step / torch clip+step"] = statistics.median(
        wall["gdfast clip+step"]
    ) / statistics.median(wall["torch clip+step"])
    return result


def hot_and_cold(total: int, tensor: int, reps: int) -> dict:
    """The sum of squares of `total` elements in tensors of `tensor` elements, one thread:
    each tensor summed just after it was written (hot in cache, as in a
    post-accumulate-grad hook during backward) against all of them summed after 64 MB of
    other memory was read (cold, as at the step after backward).  Per tensor and rep: the
    gradient written by a copy (as autograd writes it), then the sum timed alone."""
    gdfast.set_num_threads(1)
    source = np.random.default_rng(0).standard_normal(tensor).astype(np.float32)
    grads = [np.empty(tensor, dtype=np.float32) for _ in range(total // tensor)]
    flush = np.ones(16 * 1024 * 1024, dtype=np.float32)
    hot, cold = [], []
    for _ in range(reps):
        spent = 0.0
        for g in grads:
            np.copyto(g, source)
            began = time.thread_time()
            sum_of_squares([g])
            spent += time.thread_time() - began
        hot.append(spent)
        flush.sum()
        began = time.thread_time()
        sum_of_squares(grads)
        cold.append(time.thread_time() - began)
    return {
        "elements": total,
        "tensor": tensor,
        "hot_cpu_median_ms": 1e3 * statistics.median(hot),
        "cold_cpu_median_ms": 1e3 * statistics.median(cold),
    }


def report(result: dict) -> None:
    print(
        f"\n{result['rule']}, {result['elements']:.0e} float32 elements, "
        f"{result['threads']} thread(s), {result['reps']} interleaved reps, "
        f"load average {result['load_before']:.1f} -> {result['load_after']:.1f}"
    )
    print(f"  {'':32s} {'median':>8s} {'p90':>8s} {'max':>8s} {'cpu med':>8s}  (ms)")
    for name, s in result["variants"].items():
        print(
            f"  {name:32s} {s['median_ms']:8.2f} {s['p90_ms']:8.2f} {s['max_ms']:8.2f} "
            f"{s['cpu_median_ms']:8.2f}"
        )
    for library in ("gdfast", "torch"):
        r = result["ratios"][library]
        print(
            f"  {library} clip+step / step: wall {r['wall_median_ratio']:.3f} "
            f"(per-rep median {r['median_of_rep_ratios']:.3f}), cpu {r['cpu_median_ratio']:.3f}"
        )
    print(
        "  gdfast clip+step / torch clip+step (wall medians): "
        f"{result['ratios']['gdfast clip+step / torch clip+step']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rules", nargs="+", default=["adam", "sgd"], choices=["adam", "sgd"])
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    print(f"gdfast kernels: {gdfast.kernel_isa() if hasattr(gdfast, 'kernel_isa') else ''}")
    results = []
    for total in args.sizes:
        for threads in args.threads:
            for rule in args.rules:
                result = measure(int(total), threads, rule, args.reps)
                report(result)
                results.append(result)
    for total in args.sizes:
        for tensor in (262_144, 1_048_576):
            if tensor <= total:
                r = hot_and_cold(int(total), tensor, args.reps)
                print(
                    f"\nsum of squares of {r['elements']:.0e} float32 elements in tensors of "
                    f"{tensor}, 1 thread, CPU time: each just written (hot) "
                    f"{r['hot_cpu_median_ms']:.2f} ms, all after 64 MB read elsewhere (cold) "
                    f"{r['cold_cpu_median_ms']:.2f} ms"
                )
                results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
