"""Schedule-Free AdamW/SGD at 1e7 float32 parameters, 1 thread: ms per step of gdfast's
kernel, of the same-run memory limit (gdfast._kernels.roofline: the traffic of the rule's
buffers, param + grad + 2 (AdamW) or 1 (SGD) state buffers, next to no math) and of the
schedulefree package's torch optimizer (foreach and for-loop), interleaved, medians of
`--repeats` rounds; also CPU time per step (resource.getrusage) for gdfast and the limit.

    PYTHONPATH=$PWD python bench/schedule_free_speed.py --repeats 15
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

import gdfast
from gdfast import _kernels


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def timed(call) -> tuple[float, float]:
    wall, used = time.perf_counter(), cpu()
    call()
    return time.perf_counter() - wall, cpu() - used


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    gdfast.set_num_threads(1)
    import schedulefree
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for rule, theirs, buffers in (
        ("ScheduleFreeAdamW", schedulefree.AdamWScheduleFree, 2),
        ("ScheduleFreeSGD", schedulefree.SGDScheduleFree, 1),
    ):
        param = rng.standard_normal(args.size).astype(np.float32)
        grad = (rng.standard_normal(args.size) * 1e-3).astype(np.float32)
        optimizer = getattr(gdfast, rule)(param, lr=1e-3)
        states = tuple([np.zeros_like(param)] for _ in range(buffers))
        limit_param = param.copy()
        tensors = {}
        for foreach in (True, False):
            p = torch.nn.Parameter(torch.from_numpy(param.copy()))
            p.grad = torch.from_numpy(grad.copy())
            opt = theirs([p], lr=1e-3, foreach=foreach)
            opt.train()
            tensors[foreach] = opt
        calls = {
            "gdfast": lambda: optimizer.step(grad),
            "memory limit": lambda: _kernels.roofline([limit_param], [grad], states),
            "schedulefree foreach": tensors[True].step,
            "schedulefree for-loop": tensors[False].step,
        }
        for call in calls.values():
            call()  # warm: state allocated, pages touched
        walls = {name: [] for name in calls}
        cpus = {name: [] for name in calls}
        for _ in range(args.repeats):
            for name, call in calls.items():
                wall, used = timed(call)
                walls[name].append(wall * 1e3)
                cpus[name].append(used * 1e3)
        median = {name: float(np.median(v)) for name, v in walls.items()}
        print(f"{rule}, {args.size:.0e} float32, 1 thread, load {os.getloadavg()[0]:.1f}:")
        for name in calls:
            print(
                f"  {name:24s} wall median {median[name]:8.2f} ms (p90 "
                f"{np.percentile(walls[name], 90):8.2f})  cpu median {np.median(cpus[name]):8.2f} ms"
            )
        print(
            f"  gdfast / memory limit: {median['memory limit'] / median['gdfast']:.0%} (wall), "
            f"{np.median(cpus['memory limit']) / np.median(cpus['gdfast']):.0%} (cpu); "
            f"vs schedulefree foreach {median['schedulefree foreach'] / median['gdfast']:.2f}x, "
            f"for-loop {median['schedulefree for-loop'] / median['gdfast']:.2f}x"
        )


if __name__ == "__main__":
    main()
