"""Optimizer state bytes per parameter under the dtype policy (issue 12's memory target:
8 for float32 state, 4 for bfloat16, <= 2.05 for 8-bit, plus 4 for a master copy), Adam,
measured three ways: the state arrays' bytes (`nbytes` of every state entry: buffers, 8-bit
scales, master weights), the resident memory the optimizer adds (RSS after its second
step minus RSS before it was built, in a fresh process per configuration), and the peak
on the way (the process's largest RSS, ru_maxrss, minus RSS before it was built: building
the state and two steps), for the NumPy classes and gdfast.torch.

    PYTHONPATH=$PWD python bench/lowp_memory.py [--n 10000000] [--only numpy|torch]

Each process first builds and steps the same configuration on 4096 parameters: the first
optimizer of a process pays one-time costs that are not per parameter (torch.optim's first
optimizer imports torch._dynamo and ~800 modules, ~75 MB: torch.optim.Adam pays the same),
and charged to n parameters they read as bytes per parameter (~7 at 1e7).  The last two
columns run the child with glibc's mmap threshold fixed (MALLOC_MMAP_THRESHOLD_=131072):
by default glibc raises the threshold after large frees and then may keep freed heap memory
(the temporaries of a step or of a conversion); with a fixed threshold RSS added is the
arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

CONFIGS = {  # name: (parameter dtype, policy keywords)
    "fp32 state": ("float32", {}),
    "bf16 state": ("float32", {"state_dtype": "bfloat16"}),
    "int8 state": ("float32", {"state_dtype": "int8"}),
    "bf16 params + master, fp32 state": ("bfloat16", {"master_weights": True}),
    "bf16 params + master, bf16 state": (
        "bfloat16",
        {"master_weights": True, "state_dtype": "bfloat16"},
    ),
    "bf16 params + master, int8 state": (
        "bfloat16",
        {"master_weights": True, "state_dtype": "int8"},
    ),
}


# parameters of the configuration built and stepped first, in the same process
WARM_UP = 4096


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def state_bytes_numpy(config: str, n: int) -> tuple[int, int, int]:
    """(bytes of the state arrays, RSS the optimizer added, peak RSS added) of gdfast.Adam
    on n parameters."""
    import ml_dtypes
    import numpy as np

    import gdfast

    dtype_name, policy = CONFIGS[config]
    dtype = ml_dtypes.bfloat16 if dtype_name == "bfloat16" else np.float32
    added = 0
    for size in (WARM_UP, n):
        param = np.ones(size, dtype=dtype)
        grad = np.full(size, 1e-3, dtype=dtype)
        before = rss_bytes()
        optimizer = gdfast.Adam([param], lr=1e-3, **policy)
        optimizer.step([grad])
        optimizer.step([grad])
        added = rss_bytes() - before
    arrays = sum(np.asarray(a).nbytes for entry in optimizer.state.values() for a in entry)
    return arrays, added, peak_rss_bytes() - before


def state_bytes_torch(config: str, n: int) -> tuple[int, int, int]:
    """(bytes of the state tensors but `step`, RSS added, peak RSS added) of
    gdfast.torch.Adam."""
    import torch

    import gdfast.torch as gt

    dtype_name, policy = CONFIGS[config]
    added = 0
    for size in (WARM_UP, n):
        param = torch.ones(size, dtype=getattr(torch, dtype_name))
        param.grad = torch.full_like(param, 1e-3)
        before = rss_bytes()
        optimizer = gt.Adam([param], lr=1e-3, **policy)
        optimizer.step()
        optimizer.step()
        added = rss_bytes() - before
    arrays = sum(
        v.numel() * v.element_size() for k, v in optimizer.state[param].items() if k != "step"
    )
    return arrays, added, peak_rss_bytes() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--only", choices=["numpy", "torch"], default=None)
    parser.add_argument("--torch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child process: one configuration, printed as JSON
        measure = state_bytes_torch if args.torch else state_bytes_numpy
        print(json.dumps(measure(args.one, args.n)))
        return
    for backend in ("numpy", "torch"):
        if args.only not in (None, backend):
            continue
        label = "gdfast.torch.Adam" if backend == "torch" else "gdfast.Adam"
        print(f"\n{label}, {args.n:.0e} parameters (state bytes per parameter)")
        print(
            "| configuration | state arrays | RSS added | RSS added, glibc mmap threshold "
            "fixed | peak RSS added, threshold fixed |"
        )
        print("|---|---|---|---|---|")
        for config in CONFIGS:
            command = [sys.executable, __file__, "--n", str(args.n), "--one", config]
            command += ["--torch"] if backend == "torch" else []
            added = []
            for env in ({}, {"MALLOC_MMAP_THRESHOLD_": "131072"}):
                output = subprocess.run(
                    command,
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, **env},
                ).stdout
                arrays, rss, peak = json.loads(output.strip().splitlines()[-1])
                added.append(rss / args.n)
            print(
                f"| {config} | {arrays / args.n:.4f} | {added[0]:.3f} | {added[1]:.3f} | "
                f"{peak / args.n:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
