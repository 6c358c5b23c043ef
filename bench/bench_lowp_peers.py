"""Adam's step under low-precision layouts, gdfast.torch against its peers (issue 12, scope
6), interleaved in one run: median ms per step (wall) and CPU ms per step (process CPU
time, all threads), and each as a ratio to torch `Adam(fused=True)` fp32 of the same round.

    PYTHONPATH=$PWD python bench/bench_lowp_peers.py [--sizes 1e6 1e7 1e8] [--threads 1 2]
        [--rounds 7] [--slow-rounds 3]

prints, for each size and thread count, a table with wall and CPU times, and at the end one
README-ready table: each configuration's bytes moved and state bytes per parameter, and its
median ms/step with its ratio to torch fused fp32 at every size and thread count, headed by
the load average at the time.  A configuration whose warm-up step takes over a second
(bitsandbytes' 8-bit Adam at 1e8: ~5 s) is timed in only --slow-rounds of the rounds.

Configurations: gdfast fp32; gdfast bf16 params + fp32 master + bf16 grads + bf16 state
(the bf16 parameter is the copy-out); gdfast fp32 params + 8-bit state; gdfast bf16 params
and grads with fp32 state and no master (DeepSpeed's bf16 layout); torch
Adam(fused=True) fp32 and bf16 (params, grads, state); DeepSpeed CPUAdam (fp32, and bf16
params); bitsandbytes Adam8bit (CPU, fp32 params).  Peers that do not import or build are
listed and skipped.  Figures only: nothing is asserted.  The machine may be shared: say
the load (printed) with every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import gdfast
import gdfast.torch as gt


def gdfast_fp32(n):
    p = torch.zeros(n)
    p.grad = torch.full((n,), 1e-3)
    return gt.Adam([p], lr=1e-3)


def gdfast_bf16_master(n):
    p = torch.zeros(n, dtype=torch.bfloat16)
    p.grad = torch.full((n,), 1e-3, dtype=torch.bfloat16)
    return gt.Adam([p], lr=1e-3, master_weights=True, state_dtype="bfloat16")


def gdfast_bf16(n):
    p = torch.zeros(n, dtype=torch.bfloat16)
    p.grad = torch.full((n,), 1e-3, dtype=torch.bfloat16)
    return gt.Adam([p], lr=1e-3)


def gdfast_int8(n):
    p = torch.zeros(n)
    p.grad = torch.full((n,), 1e-3)
    return gt.Adam([p], lr=1e-3, state_dtype="int8")


def torch_fused(dtype):
    def make(n):
        p = torch.zeros(n, dtype=dtype)
        p.grad = torch.full((n,), 1e-3, dtype=dtype)
        return torch.optim.Adam([p], lr=1e-3, fused=True)

    return make


def deepspeed_cpuadam(dtype):
    def make(n):
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        p = torch.nn.Parameter(torch.zeros(n, dtype=dtype))
        p.grad = torch.full((n,), 1e-3, dtype=dtype)
        return DeepSpeedCPUAdam([p], lr=1e-3)

    return make


def bnb_adam8bit(n):
    import bitsandbytes as bnb

    p = torch.nn.Parameter(torch.zeros(n))
    p.grad = torch.full((n,), 1e-3)
    return bnb.optim.Adam8bit([p], lr=1e-3)


CONFIGS = {
    "torch fused fp32 (28 B)": torch_fused(torch.float32),
    "gdfast fp32 (28 B)": gdfast_fp32,
    "gdfast bf16 params+master, bf16 grads+state (20 B)": gdfast_bf16_master,
    "gdfast fp32 params, 8-bit state (16 B)": gdfast_int8,
    "gdfast bf16 params+grads, fp32 state (22 B)": gdfast_bf16,
    "torch fused bf16 (14 B)": torch_fused(torch.bfloat16),
    "DeepSpeed CPUAdam fp32 (28 B)": deepspeed_cpuadam(torch.float32),
    "DeepSpeed CPUAdam bf16 params+grads, fp32 state (22 B)": deepspeed_cpuadam(torch.bfloat16),
    "bitsandbytes Adam8bit (CPU)": bnb_adam8bit,
}
REFERENCE = "torch fused fp32 (28 B)"


def state_bytes_per_parameter(optimizer, n: int) -> float:
    """Bytes of the optimizer's per-element state (every tensor of `optimizer.state` but the
    step counters and bitsandbytes' 256-entry maps) per parameter, measured on the tensors."""
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.numel() > 256:
                total += value.numel() * value.element_size()
    return total / n


def timed(optimizer) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slow-rounds", type=int, default=3)
    args = parser.parse_args()
    summary: dict[str, dict[tuple[int, int], str]] = {name: {} for name in CONFIGS}
    state: dict[str, float] = {}
    loads = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        gdfast.set_num_threads(threads)
        for size in args.sizes:
            n = int(size)
            optimizers, missing, rounds = {}, {}, {}
            for name, make in CONFIGS.items():
                try:
                    optimizers[name] = make(n)
                    warm_up = time.perf_counter()
                    optimizers[name].step()  # warm-up (state allocated, kernels built)
                    slow = time.perf_counter() - warm_up > 1.0
                    rounds[name] = min(args.rounds, args.slow_rounds) if slow else args.rounds
                    state[name] = state_bytes_per_parameter(optimizers[name], n)
                except Exception as error:  # a peer that does not install or build
                    optimizers.pop(name, None)
                    missing[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:100]}"
            times = {name: [] for name in optimizers}
            load_before = os.getloadavg()[0]
            for round_ in range(args.rounds):  # interleaved: one step of each per round
                for name, optimizer in optimizers.items():
                    if round_ < rounds[name]:
                        times[name].append(timed(optimizer))
            load = max(load_before, os.getloadavg()[0])
            loads.append(load)
            print(
                f"\nAdam, {n:.0e} parameters, {threads} thread(s), {args.rounds} rounds "
                f"(slow ones {args.slow_rounds}), load average {load:.1f}",
                flush=True,
            )
            print(
                "| implementation | ms/step (median wall) | CPU ms/step (median) | "
                "× torch fused fp32 (wall) | × (CPU) |"
            )
            print("|---|---|---|---|---|")
            ref = times.get(REFERENCE)
            for name, samples in times.items():
                wall = statistics.median(s[0] for s in samples) * 1e3
                cpu = statistics.median(s[1] for s in samples) * 1e3
                if ref:  # the ratio of each round's pair, then the median
                    wall_ratio = statistics.median(s[0] / r[0] for s, r in zip(samples, ref))
                    cpu_ratio = statistics.median(
                        s[1] / max(r[1], 1e-9) for s, r in zip(samples, ref)
                    )
                    ratios = f"{wall_ratio:.2f} | {cpu_ratio:.2f}"
                    summary[name][threads, n] = f"{_ms(wall)} ({wall_ratio:.2f}×)"
                else:
                    ratios = "- | -"
                    summary[name][threads, n] = _ms(wall)
                print(f"| {name} | {wall:.2f} | {cpu:.2f} | {ratios} |", flush=True)
            for name, why in missing.items():
                print(f"| {name} | did not run: {why} | | | |")
                summary[name][threads, n] = "did not run"
            del optimizers
    columns = [(t, int(s)) for t in args.threads for s in args.sizes]
    print(
        f"\nAdam step, median ms (× torch fused fp32 of the same rounds), interleaved, "
        f"{args.rounds} rounds ({args.slow_rounds} for steps over 1 s); measured under a load "
        f"average of {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores\n"
    )
    print(
        "| implementation | state B/param | "
        + " | ".join(f"{n:.0e}, {t} thr" for t, n in columns)
        + " |"
    )
    print("|---|---|" + "---|" * len(columns))
    for name in CONFIGS:
        cells = [summary[name].get(column, "-") for column in columns]
        bytes_ = f"{state[name]:.2f}" if name in state else "-"
        print(f"| {name} | {bytes_} | " + " | ".join(cells) + " |")


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


if __name__ == "__main__":
    main()
