"""Adam's step under low-precision layouts, gdfast.torch against its peers (issue 12, scope
6), interleaved in one run: median ms per step (wall) and CPU ms per step (process CPU
time, all threads), and each as a ratio to torch `Adam(fused=True)` fp32 of the same round.

    PYTHONPATH=$PWD python bench/bench_lowp_peers.py [--sizes 1e6 1e7 1e8] [--threads 1 2]
        [--rounds 7]

Configurations: gdfast fp32; gdfast bf16 params + fp32 master + bf16 grads + bf16 state
(the bf16 parameter is the copy-out); gdfast fp32 params + 8-bit state; torch
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
    "torch fused bf16 (14 B)": torch_fused(torch.bfloat16),
    "DeepSpeed CPUAdam fp32": deepspeed_cpuadam(torch.float32),
    "DeepSpeed CPUAdam bf16 params": deepspeed_cpuadam(torch.bfloat16),
    "bitsandbytes Adam8bit (CPU)": bnb_adam8bit,
}
REFERENCE = "torch fused fp32 (28 B)"


def timed(optimizer) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        gdfast.set_num_threads(threads)
        for size in args.sizes:
            n = int(size)
            optimizers, missing = {}, {}
            for name, make in CONFIGS.items():
                try:
                    optimizers[name] = make(n)
                    optimizers[name].step()  # warm-up (state allocated, kernels built)
                except Exception as error:  # a peer that does not install or build
                    missing[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:100]}"
            times = {name: [] for name in optimizers}
            for _ in range(args.rounds):  # interleaved: one step of each per round
                for name, optimizer in optimizers.items():
                    times[name].append(timed(optimizer))
            load = os.getloadavg()[0]
            print(
                f"\nAdam, {n:.0e} parameters, {threads} thread(s), {args.rounds} rounds, "
                f"load {load:.1f}"
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
                if ref:
                    wall_ratio = statistics.median(s[0] / r[0] for s, r in zip(samples, ref))
                    cpu_ratio = statistics.median(
                        s[1] / max(r[1], 1e-9) for s, r in zip(samples, ref)
                    )
                    ratios = f"{wall_ratio:.2f} | {cpu_ratio:.2f}"
                else:
                    ratios = "- | -"
                print(f"| {name} | {wall:.2f} | {cpu:.2f} | {ratios} |")
            for name, why in missing.items():
                print(f"| {name} | did not run: {why} | | | |")
            del optimizers


if __name__ == "__main__":
    main()
