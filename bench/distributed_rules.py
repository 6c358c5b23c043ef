"""The parameter server's update alone: AdaptiveRevision (C kernel, NumPy reference) against
Adagrad, dense and sparse, as the server applies them.  One process, no MPI.

    python bench/distributed_rules.py [--size 1000000] [--repeats 50] [--touched 0.001]

CPU time of the calling thread (time.thread_time), so other processes on a loaded machine
count for little; the operations are interleaved (every repeat runs each once, in turn),
so load changes hit them alike.  One thread per rule (a server rank's default).  Rows:

  Adagrad, dense             the Downpour server's push: gdfast.Adagrad.step on the shard
  AdaptiveRevision C, dense  the AdaptiveRevision server's push: the C kernel, one pair
                             (g, ḡ_read): a delayed push, no fetch pending
  ... + copy of ḡ            the same and a separate copy of ḡ (np.copyto): how the server
                             kept a fetch's ḡ before (a copy per dense fetch)
  ... keeping ḡ              the same pass also writing ḡ's old value (gbar_keep): how it
                             keeps ḡ for a pending fetch now (one worker: every push)
  ... on ḡ itself            gbar_read=None: a push computed on the ḡ the server still has
  AdaptiveRevision NumPy     the reference rules.adaptive_revision, whole-shard passes
  Adagrad, sparse            a sparse push of `touched`·size coordinates: RowGrad
  AdaptiveRevision C, sparse the same coordinates through the kernel's indexed form
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import gdfast
from gdfast.distributed._server_kernels import adaptive_revision
from gdfast.distributed.rules import adaptive_revision as reference
from gdfast.distributed.rules import adaptive_revision_state


def operations(size: int, dtype: str, touched: float) -> dict:
    """Each server update as the server calls it, on its own state."""
    rng = np.random.default_rng(0)

    def fresh():
        x = rng.standard_normal(size).astype(dtype)
        return [x, *adaptive_revision_state(x, 1e-8).values()]  # x, ḡ, z − δ², √z'

    grad, gbar_read = (rng.standard_normal((2, size)) * 1e-3).astype(dtype)
    k = max(int(touched * size), 1)
    index = np.sort(rng.choice(size, size=k, replace=False))
    values = grad[index].copy()
    reads = gbar_read[index].copy()
    adagrad = gdfast.Adagrad(rng.standard_normal(size).astype(dtype), lr=0.01)
    table = rng.standard_normal((size, 1)).astype(dtype)
    adagrad_rows = gdfast.Adagrad(table, lr=0.01)
    c_dense, numpy_dense, c_sparse = fresh(), fresh(), fresh()
    c_copy, c_keep, c_fresh, kept = fresh(), fresh(), fresh(), np.empty(size, dtype)
    scratch = np.empty((4, size), dtype)
    return {
        "Adagrad, dense": lambda: adagrad.step(grad),
        "AdaptiveRevision C, dense": lambda: adaptive_revision(
            c_dense[0], grad, gbar_read, *c_dense[1:], lr=0.01, eps=1e-8
        ),
        "AdaptiveRevision C, dense + copy of ḡ": lambda: (
            np.copyto(kept, c_copy[2]),
            adaptive_revision(c_copy[0], grad, gbar_read, *c_copy[1:], lr=0.01, eps=1e-8),
        ),
        "AdaptiveRevision C, dense keeping ḡ": lambda: adaptive_revision(
            c_keep[0], grad, gbar_read, *c_keep[1:], lr=0.01, eps=1e-8, gbar_keep=kept
        ),
        "AdaptiveRevision C, dense on ḡ itself": lambda: adaptive_revision(
            c_fresh[0], grad, None, *c_fresh[1:], lr=0.01, eps=1e-8
        ),
        "AdaptiveRevision NumPy": lambda: reference(
            numpy_dense[0], grad, gbar_read, *numpy_dense[1:], lr=0.01, eps=1e-8, scratch=scratch
        ),
        "Adagrad, sparse": lambda: adagrad_rows.step(gdfast.RowGrad(index, values[:, None])),
        "AdaptiveRevision C, sparse": lambda: adaptive_revision(
            c_sparse[0], values, reads, *c_sparse[1:], lr=0.01, eps=1e-8, indices=index
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--touched", type=float, default=0.001)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    timed = operations(args.size, args.dtype, args.touched)
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(args.repeats):
        for name, operation in timed.items():
            began = time.thread_time()
            operation()
            times[name].append(time.thread_time() - began)
    base = float(np.median(times["Adagrad, dense"]))
    print(
        f"{args.size:,} {args.dtype} parameters, {args.repeats} updates each, interleaved, "
        f"CPU ms, load average {os.getloadavg()[0]:.1f}"
    )
    for name, values in times.items():
        median = float(np.median(values))
        print(
            f"{name:<40} median {median * 1e3:8.3f}  p90 {np.percentile(values, 90) * 1e3:8.3f}"
            f"  x Adagrad dense {median / base:6.3f}"
        )


if __name__ == "__main__":
    main()
