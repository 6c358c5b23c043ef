"""A distributed job's configuration: checked on every rank, then agreed on collectively.

`check_config` and `check_arrays` are local checks (the same on every rank given the same
arguments); `agree` turns any rank's failure, or a disagreement with rank 0, into the
same DistributedConfigError on every rank before any training starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validation as check

ALGORITHMS = ("downpour", "adaptive_revision", "easgd", "eamsgd")
WAIT_MODES = ("auto", "spin", "yield", "sleep", "backoff")
DEFAULT_TIMEOUT = 30.0


class DistributedConfigError(ValueError):
    """A bad configuration, detected collectively: every rank raises the same message."""


@dataclass
class TrainResult:
    """What `train` returns on every rank.

    params: the final parameters (servers' shards gathered; EASGD: the center).
    history: (seconds since start, worker steps of the first worker, loss on the
    evaluation data) rows recorded by the first worker (index n_servers).
    applied: updates applied by server 0 over the whole job (including before a resume).
    resumed_from: the update count of the checkpoint the job resumed from, or None.
    role: "server" or "worker" for this rank.
    local_params: this worker's own parameters at the end (EASGD: x_i; Downpour and
    AdaptiveRevision: its last fetched copy, with sparse=True fresh only at the
    coordinates of its last fetch), None on servers.
    traffic: on a Downpour/AdaptiveRevision worker, what it sent and received:
    "pushes", "push_bytes" (payload of its pushes), "fetches", "fetch_bytes" (payload
    of its fetch requests and of the replies); empty elsewhere.
    """

    params: np.ndarray
    history: list[tuple[float, int, float]] = field(default_factory=list)
    applied: int = 0
    resumed_from: int | None = None
    role: str = "worker"
    local_params: np.ndarray | None = None
    traffic: dict[str, int] = field(default_factory=dict)


@dataclass
class Config:
    """The checked configuration; every field is equal on every rank."""

    algorithm: str
    n_servers: int
    steps: int
    batch_size: int
    lr: float
    n_fetch: int
    n_push: int
    local_lr: float
    eps: float
    rho: float
    tau: int
    momentum: float
    synchronous: bool
    seed: int
    checkpoint_dir: str | None
    checkpoint_every: int
    resume: bool
    log_every: int
    record_every: int
    timeout: float
    sparse: bool = False

    def signature(self) -> tuple:
        """Everything that must be equal on all ranks."""
        return tuple(sorted(vars(self).items()))

    @property
    def pushes_gradients(self) -> bool:
        """Downpour and AdaptiveRevision: workers push gradients to the servers' rule."""
        return self.algorithm in ("downpour", "adaptive_revision")

    def budget(self, n_workers: int) -> int:
        """Updates each server applies over the whole job: pushes, or elastic exchanges."""
        unit = self.n_push if self.pushes_gradients else self.tau
        return math.ceil(self.steps / unit) * n_workers


def check_config(size: int, algorithm: str, n_servers: int | None, **options: Any) -> Config:
    """Local checks; the same on every rank given the same arguments."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {algorithm!r}")
    synchronous = bool(options["synchronous"])
    if synchronous and algorithm != "easgd":
        raise ValueError(
            f"synchronous: only algorithm='easgd' has a synchronous form, "
            f"got algorithm={algorithm!r}"
        )
    if synchronous:
        if n_servers not in (None, 0):
            raise ValueError(
                f"n_servers: synchronous EASGD keeps the center on every rank "
                f"and uses no servers; pass None or 0, got {n_servers!r}"
            )
        n_servers = 0
    else:
        n_servers = check.integer("n_servers", 1 if n_servers is None else n_servers, 1)
        if n_servers >= size:
            raise ValueError(
                f"n_servers: {n_servers} server(s) need at least {n_servers + 1} "
                f"ranks (one worker or more), the job has {size}"
            )
    if options["wait"] not in WAIT_MODES:
        raise ValueError(f"wait: expected one of {WAIT_MODES}, got {options['wait']!r}")
    config = Config(
        algorithm=algorithm,
        n_servers=n_servers,
        synchronous=synchronous,
        steps=check.integer("steps", options["steps"], 1),
        batch_size=check.integer("batch_size", options["batch_size"], 1),
        lr=check.nonnegative("lr", options["lr"]),
        n_fetch=check.integer("n_fetch", options["n_fetch"], 1),
        n_push=check.integer("n_push", options["n_push"], 1),
        local_lr=check.nonnegative("local_lr", options["local_lr"]),
        eps=check.positive("eps", options["eps"]),
        rho=(
            check.nonnegative("rho", options["rho"])
            if options["rho"] is not None
            else default_rho(size - n_servers, options["lr"])
        ),
        tau=check.integer("tau", options["tau"], 1),
        momentum=check.nonnegative("momentum", options["momentum"]),
        seed=check.integer("seed", options["seed"], 0),
        checkpoint_dir=None
        if options["checkpoint_dir"] is None
        else os.fspath(options["checkpoint_dir"]),
        checkpoint_every=check.integer("checkpoint_every", options["checkpoint_every"], 0),
        resume=bool(options["resume"]),
        log_every=check.integer("log_every", options["log_every"], 0),
        record_every=check.integer("record_every", options["record_every"], 0),
        timeout=check.positive("timeout", options["timeout"]),
        sparse=bool(options.get("sparse", False)),
    )
    if config.sparse and not config.pushes_gradients:
        raise ValueError(
            f"sparse: sparse messages are for the algorithms that push gradients "
            f"(downpour, adaptive_revision), got algorithm={algorithm!r}"
        )
    if config.sparse and config.local_lr:
        raise ValueError(
            f"local_lr: a worker's own step is not available with sparse messages (its "
            f"copy is fresh only at the coordinates it fetched), got {config.local_lr!r}"
        )
    if config.momentum >= 1.0:
        raise ValueError(f"momentum: expected a number in [0, 1), got {config.momentum!r}")
    if (config.checkpoint_every or config.resume) and config.checkpoint_dir is None:
        raise ValueError("checkpoint_dir: checkpoint_every and resume need a directory")
    return config


def default_rho(n_workers: int, lr: Any) -> float:
    """ρ with α = ηρ = 0.9/p (β = pα = 0.9, Zhang et al.'s choice); 0 when lr is 0."""
    lr = check.nonnegative("lr", lr)
    return 0.9 / (n_workers * lr) if lr > 0 else 0.0


def check_arrays(params: Any, data: Any, role: str) -> tuple[np.ndarray, Any, tuple]:
    """params a 1-d float array; on a worker, data = (X, y) matching it, X dense or
    CSR (then a checked private copy).  Returns params, data and the signature."""
    if not isinstance(params, np.ndarray):
        raise ValueError(f"params: expected a 1-d ndarray, got {type(params).__name__}")
    if params.ndim != 1 or params.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"params: expected a 1-d float32 or float64 array, got shape "
            f"{params.shape} and dtype {params.dtype}"
        )
    if role == "worker":
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError("data: expected a pair (X, y) on every worker rank")
        X, y = data
        X = check.csr_matrix("data", X) if check.is_sparse(X) else X
        if (
            not ((isinstance(X, np.ndarray) or check.is_sparse(X)) and isinstance(y, np.ndarray))
            or X.ndim != 2
            or y.ndim != 1
        ):
            raise ValueError(
                "data: expected X a 2-d ndarray or scipy.sparse CSR matrix and y a 1-d ndarray"
            )
        if X.shape[1] != params.shape[0]:
            raise ValueError(
                f"data: X has {X.shape[1]} columns but params has {params.shape[0]} entries"
            )
        if X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(
                f"data: X has {X.shape[0]} rows and y {y.shape[0]}; expected "
                f"the same number, at least one"
            )
        if X.dtype != params.dtype or y.dtype != params.dtype:
            raise ValueError(
                f"data: X ({X.dtype}) and y ({y.dtype}) must have params' dtype {params.dtype}"
            )
        data = (X, y)
    return params, data, (params.shape, params.dtype.name)


def agree(comm: Any, error: str | None, signature: Any, what: str) -> None:
    """Collective: every rank raises the same DistributedConfigError if any rank failed
    its local checks or disagrees with rank 0 on `signature`."""
    gathered = comm.allgather((error, signature))
    errors = [(rank, message) for rank, (message, _) in enumerate(gathered) if message]
    if errors:
        messages = {message for _, message in errors}
        if len(messages) == 1 and len(errors) == len(gathered):
            raise DistributedConfigError(f"{errors[0][1]} (on every rank)")
        raise DistributedConfigError(
            "; ".join(f"rank {rank}: {message}" for rank, message in errors)
        )
    reference = gathered[0][1]
    for rank, (_, other) in enumerate(gathered):
        if other != reference:
            raise DistributedConfigError(
                f"{what}: rank {rank} has {other!r} but rank 0 has "
                f"{reference!r}; every rank must pass the same"
            )
