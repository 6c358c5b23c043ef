"""Synchronous EASGD: every rank a worker, the center x̃ on every rank, no servers.

Zhang et al. (2015), synchronous form with communication period τ, worker i at step t
(both updates from the old values; SPEC.md section 3 is the case τ = 1):

    if τ divides t:  x_i ← x_i − η (g_i + ρ (x_i − x̃)) ;  x̃ ← x̃ + α Σ_j (x_j − x̃)
    otherwise:       x_i ← x_i − η g_i                       (α = η ρ)

Σ_j (x_j − x̃) is one Allreduce (non-blocking, waited on with the job's deadline).
"""

from __future__ import annotations

import os

import numpy as np

from . import checkpoint as ckpt
from .config import Config
from .objectives import Objective
from .recorder import Batches, Recorder
from .transport import Link, mpi_type

ALGORITHM = "easgd-sync"


def load(comm, config: Config, params: np.ndarray):
    """Rank 0 reads the latest checkpoint, if resuming and there is one."""
    if not (config.resume and comm.rank == 0):
        return None
    counts = ckpt.saved_counts(config.checkpoint_dir, "server", 0)
    if not counts:
        return None
    path = ckpt.path_for(config.checkpoint_dir, "server", 0, counts[-1])
    step, arrays = ckpt.load(
        path,
        algorithm=ALGORITHM,
        dtype=params.dtype,
        bounds=_bounds(params),
        names=("center", "workers"),
    )
    if arrays["workers"].shape != (comm.size, params.shape[0]):
        raise ValueError(
            f"checkpoint {os.fspath(path)!r}: saved {arrays['workers'].shape[0]} "
            f"workers, this job has {comm.size} ranks"
        )
    return step, arrays


def _bounds(params: np.ndarray) -> tuple[int, int, int, int]:
    return (0, params.shape[0], params.shape[0], 0)


def run(
    comm,
    config: Config,
    params: np.ndarray,
    objective: Objective,
    batches: Batches,
    recorder: Recorder,
    link: Link,
    loaded,
) -> tuple[int | None, np.ndarray]:
    """Train; x̃ ends up in `params`.  Returns (the step it resumed from or None, x_i)."""
    from mpi4py import MPI

    x = params.copy()
    center = params
    start = comm.bcast(loaded[0] if loaded else 0, root=0)
    if start:
        if comm.rank == 0:
            center[...] = loaded[1]["center"]
        comm.Bcast(center, root=0)
        comm.Scatter(loaded[1]["workers"] if comm.rank == 0 else None, x, root=0)
    diff, pull = np.empty_like(x), np.empty_like(x)
    kind = mpi_type(x.dtype)
    recorder(start, center)
    for step in range(start + 1, config.steps + 1):
        X, y = batches.next()
        g = objective.gradient(x, X, y).astype(x.dtype, copy=False)
        if (step - 1) % config.tau == 0:  # t = step − 1 counts from 0, as in the paper
            np.subtract(x, center, out=diff)
            request = comm.Iallreduce([diff, kind], [pull, kind], op=MPI.SUM)
            link.wait_all([(-1, request)], f"in the elastic Allreduce of step {step}")
            x -= config.lr * (g + config.rho * diff)
            center += (config.lr * config.rho) * pull
        else:
            x -= config.lr * g
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save(comm, config, link, step, center, x)
        recorder(step, center)
    recorder(config.steps, center, final=True)
    return (start or None), x


def save(comm, config: Config, link: Link, step: int, center: np.ndarray, x: np.ndarray) -> None:
    """Rank 0 gathers every x_i and writes them with the center."""
    gathered = np.empty((comm.size, x.shape[0]), dtype=x.dtype) if comm.rank == 0 else None
    link.wait_all([(0, comm.Igather(x, gathered, root=0))], "gathering a checkpoint")
    if comm.rank == 0:
        ckpt.save(
            ckpt.path_for(config.checkpoint_dir, "server", 0, step),
            algorithm=ALGORITHM,
            bounds=_bounds(x),
            count=(step, config.steps),
            arrays={"center": center, "workers": gathered},
        )
