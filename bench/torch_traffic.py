"""ASGD against torch.optim.ASGD at 1e7 float32 on one thread, as memory traffic: how many
bytes per parameter each implementation moves, read off its time.

    PYTHONPATH=$PWD python bench/torch_traffic.py [--size 10000000] [--rounds 9]

gd_roofline (gdfast's C loop with no arithmetic) is timed with 0, 1, 2, 3 state buffers
(3, 5, 7, 9 float32 streams a parameter: param read and written, grad read, each state read
and written); a least-squares line through those four times gives the time of one stream.
Each step's median time divided by it is the number of streams the step moves as fast as bare
traffic would ("streams at the limit"): gdfast's ASGD reads param, grad, ax and writes param,
ax (5); torch's for-loop with μ_t = 1 (the default t0 = 1e6 keeps μ_t = 1 for a million steps)
runs param.mul_, param.add_(grad), ax.copy_(param): 2 + 3 + 2 = 7 streams; with μ_t < 1
(t0 = 0 here) ax.add_(param.sub(ax).mul_(μ)) adds 3 + 2 + 3: 13.  torch at its own limit is
then 7/5 = 1.4 or 13/5 = 2.6 times gdfast's limit: the most any kernel could gain over it.
Rounds interleave every step; medians.  Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import gdfast
from gdfast import _kernels, optim


def median_seconds(steps: dict, rounds: int) -> dict[str, float]:
    for step in steps.values():
        step()  # warm up: first touch
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            began = time.perf_counter()
            step()
            samples[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gdfast.set_num_threads(1)
    rng = np.random.default_rng(0)

    def arrays():
        return (
            rng.standard_normal(args.size).astype(np.float32),
            (rng.standard_normal(args.size) * 1e-3).astype(np.float32),
        )

    steps = {}
    for states in range(4):
        param, grad = arrays()
        buffers = tuple([np.zeros_like(param)] for _ in range(states))
        steps[f"roofline {3 + 2 * states}"] = lambda p=param, g=grad, b=buffers: _kernels.roofline(
            [p], [g], b
        )
    param, grad = arrays()
    ours = optim.ASGD([param])
    steps["gdfast ASGD"] = lambda: ours.step([grad])
    for t0 in (1e6, 0.0):
        for label, flags in (
            ("for-loop", {"foreach": False}),
            ("foreach", {"foreach": True}),
            ("for-loop capturable", {"foreach": False, "capturable": True}),
            ("foreach capturable", {"foreach": True, "capturable": True}),
        ):
            param, grad = arrays()
            weight = torch.nn.Parameter(torch.from_numpy(param))
            weight.grad = torch.from_numpy(grad)
            theirs = torch.optim.ASGD([weight], t0=t0, **flags)
            try:
                theirs.step()  # past step 1 (μ_1 = 1 for any t0)
            except (AssertionError, RuntimeError) as error:  # capturable: GPU devices only
                print(f"torch {label}: {str(error).splitlines()[0][:90]}")
                continue
            steps[f"torch {label}, t0={t0:g}"] = theirs.step
    seconds = median_seconds(steps, args.rounds)
    streams = np.array([3, 5, 7, 9], dtype=float)
    times = np.array([seconds[f"roofline {int(s)}"] for s in streams])
    per_stream, intercept = np.polyfit(streams, times, 1)
    print(
        f"{args.size:,} float32, 1 thread, {args.rounds} interleaved rounds (medians); "
        f"one stream {per_stream * 1e3:.3f} ms ({4 * args.size / per_stream / 1e9:.1f} GB/s), "
        f"intercept {intercept * 1e3:.3f} ms"
    )
    print(f"{'step':38s} {'ms':>8s} {'streams at the limit':>21s} {'x gdfast':>9s}")
    for name, value in seconds.items():
        ratio = value / seconds["gdfast ASGD"]
        print(f"{name:38s} {value * 1e3:8.3f} {value / per_stream:21.1f} {ratio:9.2f}")


if __name__ == "__main__":
    main()
