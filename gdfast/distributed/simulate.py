"""A deterministic staleness simulator: p virtual workers and one server in one process.

Each virtual worker owns the data shard `rows i, i + p, i + 2p, …` and repeats: read
the server's state, compute a mini-batch gradient there, and deliver it some time
later.  How long a worker takes is drawn from a *delay model* in abstract time units
of mean 1:

    constant        1                       workers take turns: staleness exactly p − 1
    uniform         U(0, 2)                 staleness spread around p − 1
    heavy_tailed    Lomax(1.5) / 2          mean 1, infinite variance: now and then a
                                            gradient thousands of updates old

(or any callable `rng -> duration`).  The server applies deliveries in time order,
ties broken by worker index, so a run is a pure function of its arguments and seed.
Staleness, the number of server updates between a worker's read and its delivery,
is recorded for every update; with p workers its mean is p − 1, so 1,000 workers
means delays of about 1,000 updates.

Algorithms (SPEC.md section 3):
    downpour            server applies Adagrad per coordinate (gdfast's C kernel)
    adaptive_revision   server applies AdaptiveRevision (workers read and return ḡ)
    easgd               each delivery is one local SGD step of a worker (its gradient is
                        fresh); before every τ-th local step the worker does the elastic
                        exchange with the center (Zhang et al. 2015, Algorithm 1).
                        synchronous=True: all p workers step together, the elastic round
                        every τ steps (collective form, no delay model)
    eamsgd              easgd with Nesterov momentum δ on the local steps, Algorithm 2:
                        the gradient at x_i + δ v_i, the elastic force on x_i

With one worker, downpour and adaptive_revision see no delay and produce bitwise
identical parameters, and synchronous easgd with rho=0 is gdfast.SGD: the tests check both.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from .. import Adagrad
from .. import _validation as check
from .config import ALGORITHMS
from .objectives import Dataset
from .rules import (
    adaptive_revision,
    adaptive_revision_state,
    easgd_synchronous,
    elastic_exchange,
)

DelayModel = Union[str, Callable[[np.random.Generator], float]]

DELAY_MODELS: dict[str, Callable[[np.random.Generator], float]] = {
    "constant": lambda rng: 1.0,
    "uniform": lambda rng: rng.uniform(0.0, 2.0),
    "heavy_tailed": lambda rng: 0.5 * rng.pareto(1.5),
}


@dataclass
class SimulationResult:
    """What `simulate` returns.

    params: the server's parameters (the center x̃ for EASGD).  worker_params: each
    worker's local parameters (EASGD only, else None).  updates, loss: the full-data
    objective after that many updates (index 0 is the start).  staleness: for each
    server update, how many updates happened between its read and its delivery
    (EASGD: empty, its gradients are fresh).
    """

    algorithm: str
    workers: int
    params: np.ndarray
    worker_params: list[np.ndarray] | None
    updates: np.ndarray
    loss: np.ndarray
    staleness: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _delay_model(delay: DelayModel) -> Callable[[np.random.Generator], float]:
    if callable(delay):
        return delay
    if delay not in DELAY_MODELS:
        raise ValueError(
            f"delay: expected one of {sorted(DELAY_MODELS)} or a callable "
            f"rng -> duration, got {delay!r}"
        )
    return DELAY_MODELS[delay]


class _Shards:
    """Worker i's rows and its mini-batch draws (one shared, seeded generator)."""

    def __init__(
        self, data: Dataset, workers: int, batch_size: int | None, rng: np.random.Generator
    ):
        if workers > len(data.y):
            raise ValueError(
                f"workers: {workers} workers need at least as many examples, "
                f"the data has {len(data.y)}"
            )
        self.parts = [data.shard(i, workers) for i in range(workers)]
        self.objective = data.objective
        self.batch_size = batch_size
        self.rng = rng

    def gradient(self, worker: int, w: np.ndarray) -> np.ndarray:
        X, y = self.parts[worker]
        if self.batch_size is not None:
            rows = self.rng.integers(len(y), size=self.batch_size)
            X, y = X[rows], y[rows]
        return self.objective.gradient(w, X, y)


def simulate(
    algorithm: str,
    data: Dataset,
    *,
    workers: int = 1,
    updates: int = 1000,
    lr: float = 0.1,
    delay: DelayModel = "constant",
    batch_size: int | None = 1,
    eps: float = 1e-8,
    rho: float | None = None,
    tau: int = 1,
    momentum: float = 0.9,
    synchronous: bool = False,
    seed: int = 0,
    record_every: int | None = None,
    x0: np.ndarray | None = None,
) -> SimulationResult:
    """Run `algorithm` with `workers` virtual workers for `updates` gradient deliveries.

    lr: η (Adagrad's and AdaptiveRevision's α, EASGD's local step size).  eps: ε of
    Adagrad = δ² of AdaptiveRevision.  rho, tau, momentum: EASGD's ρ (α = η ρ; default
    α = 0.9/p, Zhang et al.'s β = pα = 0.9), period τ, and EAMSGD's Nesterov momentum δ.
    synchronous: EASGD only; then `updates` counts gradients too, updates // workers
    rounds.  batch_size: rows per gradient
    (None: the worker's whole shard).  record_every: updates between loss records
    (default: about 100 records).  x0: start (zeros by default), never modified.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {algorithm!r}")
    workers = check.integer("workers", workers, 1)
    check.nonnegative("lr", lr)
    check.positive("eps", eps)
    check.nonnegative("rho", 0.0 if rho is None else rho)
    updates = check.integer("updates", updates, 1)
    tau = check.integer("tau", tau, 1)
    if batch_size is not None:
        batch_size = check.integer("batch_size", batch_size, 1)
    if synchronous and algorithm not in ("easgd", "eamsgd"):
        raise ValueError(
            f"synchronous: only easgd and eamsgd have a synchronous form, "
            f"got algorithm={algorithm!r}"
        )
    if synchronous and algorithm == "eamsgd":
        raise ValueError("synchronous: SPEC.md defines EAMSGD asynchronously only")
    if rho is None:
        rho = 0.9 / (workers * lr) if lr > 0 else 0.0
    record_every = (
        max(updates // 100, 1)
        if record_every is None
        else check.integer("record_every", record_every, 1)
    )
    duration = _delay_model(delay)
    dim = data.X.shape[1]
    x = np.zeros(dim, dtype=data.X.dtype) if x0 is None else np.array(x0, dtype=data.X.dtype)
    if x.shape != (dim,):
        raise ValueError(f"x0: expected shape ({dim},) to match the data's columns, got {x.shape}")
    rng = np.random.default_rng(seed)
    shards = _Shards(data, workers, batch_size, rng)
    objective = data.objective
    recorded_updates, recorded_loss = [0], [objective.loss(x, data.X, data.y)]

    def record(done: int, point: np.ndarray) -> None:
        if done % record_every == 0 or done == updates:
            recorded_updates.append(done)
            recorded_loss.append(objective.loss(point, data.X, data.y))

    if synchronous:
        local = [x.copy() for _ in range(workers)]
        rounds = updates // workers
        for round_index in range(1, rounds + 1):
            grads = [shards.gradient(i, local[i]) for i in range(workers)]
            if (round_index - 1) % tau == 0:  # the elastic round every τ (t from 0)
                easgd_synchronous(local, grads, x, lr=lr, rho=rho)
            else:
                for w, g in zip(local, grads):
                    w -= lr * g
            done = round_index * workers
            if done % record_every < workers or round_index == rounds:
                recorded_updates.append(done)
                recorded_loss.append(objective.loss(x, data.X, data.y))
        return SimulationResult(
            algorithm, workers, x, local, np.array(recorded_updates), np.array(recorded_loss)
        )

    heap = [(duration(rng), i) for i in range(workers)]
    heapq.heapify(heap)
    staleness = np.zeros(0 if algorithm in ("easgd", "eamsgd") else updates, dtype=np.int64)

    if algorithm in ("easgd", "eamsgd"):
        # Zhang et al. (2015) Algorithm 1 (δ = 0) and 2: the exchange at t = kτ moves x_i
        # and x̃; the step uses the gradient at the x_i read before it, plus δ v_i.
        local = [x.copy() for _ in range(workers)]
        velocity = [np.zeros_like(x) for _ in range(workers)]
        delta = momentum if algorithm == "eamsgd" else 0.0
        local_steps = [0] * workers
        alpha = lr * rho
        for done in range(1, updates + 1):
            now, i = heapq.heappop(heap)
            g = shards.gradient(i, local[i] + delta * velocity[i])
            if local_steps[i] % tau == 0 and local_steps[i] > 0:
                elastic_exchange(local[i], x, alpha)
            velocity[i] *= delta
            velocity[i] -= lr * g
            local[i] += velocity[i]
            local_steps[i] += 1
            heapq.heappush(heap, (now + duration(rng), i))
            record(done, x)
        return SimulationResult(
            algorithm,
            workers,
            x,
            local,
            np.array(recorded_updates),
            np.array(recorded_loss),
            staleness,
        )

    # Downpour and AdaptiveRevision: each worker holds the gradient it computed at its
    # read and (AdaptiveRevision) the ḡ it read, until its delivery.
    pending = [shards.gradient(i, x) for i in range(workers)]
    read_at = np.zeros(workers, dtype=np.int64)
    if algorithm == "downpour":
        adagrad = Adagrad(x, lr=lr, eps=eps)
    else:
        state = adaptive_revision_state(x, eps)
        gbar_read = [state["gbar"].copy() for _ in range(workers)]
    for done in range(1, updates + 1):
        now, i = heapq.heappop(heap)
        staleness[done - 1] = done - 1 - read_at[i]
        if algorithm == "downpour":
            adagrad.step(pending[i])
        else:
            adaptive_revision(
                x,
                pending[i],
                gbar_read[i],
                state["gbar"],
                state["sum_sq"],
                state["sqrt_sum_sq_max"],
                lr=lr,
                eps=eps,
            )
            np.copyto(gbar_read[i], state["gbar"])
        pending[i] = shards.gradient(i, x)
        read_at[i] = done
        heapq.heappush(heap, (now + duration(rng), i))
        record(done, x)
    return SimulationResult(
        algorithm, workers, x, None, np.array(recorded_updates), np.array(recorded_loss), staleness
    )
