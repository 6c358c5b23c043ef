"""Muon's speed on one thread: the Newton–Schulz iteration against NumPy's own matmul, and
the whole step against torch.optim.Muon's.

    python bench/muon_speed.py [--shapes 1024x1024,4096x1024] [--dtype float32] [--rounds 5]

For each A × B shape (the iteration works on the wide orientation, m = min(A, B) rows and
n = max(A, B) columns), it prints:
- NS GFLOP/s: gdfast's `newton_schulz` (5 iterations, Keller Jordan's coefficients) with the
  flops counted exactly: the normalisation 3mn (‖X‖²: 2mn, X / ‖X‖: mn) and, per iteration,
  X Xᵀ 2m²n, A A 2m³, b A + c A A 3m², (…) X 2m²n, a X + … 2mn;
- matmul GFLOP/s: NumPy's X @ Xᵀ (2m²n flops) on the same X, the BLAS's speed on that shape;
- the whole step (momentum kernel, iteration, update kernel) of gdfast.Muon and of
  torch.optim.Muon (its iteration in bfloat16, fixed: it has no option for another dtype),
  and their ratio;
- torch's side of that gap: torch.optim.Muon's own iteration (torch.optim._muon's
  _zeropower_via_newtonschulz, bfloat16) beside the same iteration run by torch in float32
  (`torch_newton_schulz`), and the general product A X (the m × m A by the m × n X, one of
  the iteration's own, 2m²n flops: not X Xᵀ, which NumPy computes as a symmetric product
  with half the flops) by NumPy in float32 and by torch in float32 and bfloat16.
Times are CPU seconds of this process (time.process_time: robust to other programs on the
machine), BLAS, torch and gdfast pinned to one thread (threadpoolctl, the optional extra, pins
NumPy's BLAS; without it the BLAS runs as OPENBLAS_NUM_THREADS says and the script says so).
Rounds alternate gdfast and torch; medians and the slowest round are printed.  It measures and
prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np

import gdfast
from gdfast.catalogue.rules.muon import NS_COEFFICIENTS, newton_schulz, newton_schulz_flops

STEPS = 5


def cpu_seconds(run, rounds: int) -> list[float]:
    run()  # warm up: first-touch pages, BLAS buffers
    times = []
    for _ in range(rounds):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return times


def one_thread():
    """NumPy's BLAS on one thread (threadpoolctl), or a note that it is not pinned."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed: NumPy's BLAS threads are not pinned")
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def torch_newton_schulz(torch, grad, dtype):
    """torch.optim.Muon's iteration on the wide matrix, in `dtype` (torch.float32: the
    iteration gdfast runs through NumPy, on torch's matmul instead)."""
    a, b, c = NS_COEFFICIENTS
    x = grad.to(dtype)
    if x.size(0) > x.size(1):
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(STEPS):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x


def torch_rates(torch, grad: np.ndarray, rounds: int) -> str:
    """torch's own iteration (bfloat16), the same in float32, and X @ Xᵀ in both dtypes."""
    from torch.optim._muon import _zeropower_via_newtonschulz

    tensor = torch.from_numpy(grad)
    m, n = min(grad.shape), max(grad.shape)
    ns_flops, mm_flops = newton_schulz_flops(m, n, STEPS), 2 * m * m * n
    wide = np.ascontiguousarray(grad if grad.shape[0] <= grad.shape[1] else grad.T)
    square = np.ascontiguousarray(wide[:, :m])
    rates = {
        "NumPy A X float32": mm_flops
        / statistics.median(cpu_seconds(lambda: square @ wide, rounds))
        / 1e9
    }
    for label, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        x, a = torch.from_numpy(wide).to(dtype), torch.from_numpy(square).to(dtype)
        mm = cpu_seconds(lambda: a @ x, rounds)
        rates[f"torch A X {label}"] = mm_flops / statistics.median(mm) / 1e9
    own = cpu_seconds(
        lambda: _zeropower_via_newtonschulz(tensor, NS_COEFFICIENTS, STEPS, 1e-7), rounds
    )
    rates["torch.optim.Muon NS (bfloat16)"] = ns_flops / statistics.median(own) / 1e9
    fp32 = cpu_seconds(lambda: torch_newton_schulz(torch, tensor, torch.float32), rounds)
    rates["the same NS in float32"] = ns_flops / statistics.median(fp32) / 1e9
    return "; ".join(f"{name} {rate:.1f}" for name, rate in rates.items()) + " GFLOP/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="1024x1024,4096x1024")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    gdfast.set_num_threads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
        print("torch is not installed: no torch.optim.Muon column")
    rng = np.random.default_rng(0)
    with one_thread():
        print(f"{args.dtype}, 1 thread, {args.rounds} rounds, CPU seconds (median / slowest)")
        for text in args.shapes.split(","):
            rows, cols = map(int, text.split("x"))
            m, n = min(rows, cols), max(rows, cols)
            grad = rng.standard_normal((rows, cols)).astype(dtype)
            wide = np.ascontiguousarray(grad if rows <= cols else grad.T)

            ns = cpu_seconds(lambda: newton_schulz(grad, NS_COEFFICIENTS, STEPS, 1e-7), args.rounds)
            mm = cpu_seconds(lambda: wide @ wide.T, args.rounds)
            ns_rate = newton_schulz_flops(m, n, STEPS) / statistics.median(ns) / 1e9
            mm_rate = 2 * m * m * n / statistics.median(mm) / 1e9
            print(
                f"{rows}x{cols}: NS {statistics.median(ns):.3f} s, {ns_rate:.1f} GFLOP/s; "
                f"NumPy matmul X Xᵀ {mm_rate:.1f} GFLOP/s; NS at {ns_rate / mm_rate:.0%} of it"
            )

            if torch is not None and dtype == np.float32:
                print(f"  torch: {torch_rates(torch, grad, args.rounds)}")

            param = rng.standard_normal((rows, cols)).astype(dtype)
            ours = gdfast.Muon([param.copy()])
            ours_times, theirs_times = [], []
            if torch is not None:
                weight = torch.nn.Parameter(torch.from_numpy(param.copy()))
                weight.grad = torch.from_numpy(grad.copy())
                theirs = torch.optim.Muon([weight])
            for _ in range(args.rounds):  # interleaved
                ours_times += cpu_seconds(lambda: ours.step([grad]), 1)
                if torch is not None:
                    theirs_times += cpu_seconds(theirs.step, 1)
            line = (
                f"  step: gdfast.Muon {statistics.median(ours_times):.3f} s "
                f"(slowest {max(ours_times):.3f})"
            )
            if theirs_times:
                line += (
                    f", torch.optim.Muon {statistics.median(theirs_times):.3f} s "
                    f"(slowest {max(theirs_times):.3f}); torch / gdfast "
                    f"{statistics.median(theirs_times) / statistics.median(ours_times):.2f}"
                )
            print(line)


if __name__ == "__main__":
    main()
