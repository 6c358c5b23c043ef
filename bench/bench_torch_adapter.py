"""gdfast.torch against torch.optim: time per step on a 200-tensor model, 1 thread.

    python bench/bench_torch_adapter.py [--sizes 1000000 10000000] [--repeats 15]

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
        p.spare_grad = p.grad.clone()      # the other set of gradient tensors ("fresh")
    return params


def swap_gradients(optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad, p.spare_grad = p.spare_grad, p.grad


def variants(rule: str, total: int) -> dict[str, torch.optim.Optimizer]:
    """Every implementation of `rule`, each on its own copy of the parameters."""
    made = {}
    for label, options in (("torch fused", {"fused": True}), ("torch foreach", {"foreach": True}),
                           ("torch for-loop", {"foreach": False})):
        try:
            made[label] = getattr(torch.optim, rule)(make_params(total), **options)
            made[label].step()
        except (RuntimeError, TypeError, ValueError):
            made.pop(label, None)     # this rule has no such implementation on the CPU
    made["gdfast.torch"] = getattr(gt, rule)(make_params(total))
    return made


def measure(rule: str, total: int, repeats: int, steps: int, fresh: bool) -> dict[str, float]:
    optimizers = variants(rule, total)
    times: dict[str, list[float]] = {label: [] for label in optimizers}
    for optimizer in optimizers.values():
        optimizer.step()                       # state created, caches warm
    for _ in range(repeats):
        for label, optimizer in optimizers.items():   # interleaved: same machine state
            elapsed = 0.0
            for _ in range(steps):
                if fresh:
                    swap_gradients(optimizer)
                began = time.perf_counter()
                optimizer.step()
                elapsed += time.perf_counter() - began
            times[label].append(elapsed / steps)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rules", nargs="+", default=RULES)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--gradients", choices=["kept", "fresh"], nargs="+",
                        default=["kept", "fresh"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    gdfast.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, float32, 200 tensors, kernel ISA "
          f"{gdfast.kernel_isa()}; median ms per step")
    for total, mode, rule in ((t, m, r) for t in args.sizes for m in args.gradients
                              for r in args.rules):
        steps = 10 if total <= 2_000_000 else 2
        result = measure(rule, total, args.repeats, steps, mode == "fresh")
        best_label = min((label for label in result if label != "gdfast.torch"),
                         key=result.get)
        ours = result["gdfast.torch"]
        cells = "  ".join(f"{label} {ms * 1e3:7.3f}" for label, ms in result.items())
        print(f"{total:>10,} {mode:5s} {rule:9s} {cells}  | vs {best_label}: "
              f"{result[best_label] / ours:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
