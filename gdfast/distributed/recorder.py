"""What a worker draws and what the first worker records: mini-batches, loss history."""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np

from .config import Config
from .objectives import Objective
from .transport import LOG


class Batches:
    """Mini-batches of a worker's shard from its own seeded generator.

    `peek(k)` draws the next k batches ahead (a sparse worker fetches the coordinates of
    the batches it will compute next); `next` then returns them in order, so the stream
    is the same whether or not anyone peeked.  `state` is the generator's, so a
    checkpoint is taken with nothing drawn ahead (EASGD workers never peek)."""

    def __init__(
        self, data: tuple[np.ndarray, np.ndarray], batch_size: int, seed: int, rank: int, start: int
    ):
        self.X, self.y = data
        self.batch_size = min(batch_size, len(self.y))
        self.rng = np.random.default_rng([seed, rank, start])
        self.ahead: deque = deque()

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rng.integers(len(self.y), size=self.batch_size)
        return self.X[rows], self.y[rows]

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ahead.popleft() if self.ahead else self.draw()

    def peek(self, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The next `count` batches, without consuming them."""
        while len(self.ahead) < count:
            self.ahead.append(self.draw())
        return [self.ahead[i] for i in range(count)]

    def state(self) -> np.ndarray:
        """The generator's PCG64 state as uint64 words (for a checkpoint, no pickle)."""
        state = self.rng.bit_generator.state
        words = [state["state"]["state"], state["state"]["inc"]]
        return np.array(
            [w >> shift & (2**64 - 1) for w in words for shift in (64, 0)]
            + [state["has_uint32"], state["uinteger"]],
            dtype=np.uint64,
        )

    def restore(self, words: np.ndarray) -> None:
        """Continue the stream `state()` saved."""
        high_s, low_s, high_i, low_i, has_uint32, uinteger = (int(w) for w in words)
        self.rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "has_uint32": has_uint32,
            "uinteger": uinteger,
            "state": {"state": high_s << 64 | low_s, "inc": high_i << 64 | low_i},
        }


def columns(X) -> np.ndarray:
    """The sorted columns in which a batch has entries (CSR: stored ones; dense: non-zeros):
    for an objective of X w (least squares, logistic) the only coordinates its gradient
    depends on and touches."""
    if isinstance(X, np.ndarray):
        return np.flatnonzero((X != 0).any(axis=0))
    return np.unique(X.indices).astype(np.int64, copy=False)


def restricted(X, cols: np.ndarray):
    """The batch X with only the columns `cols` (sorted, every column where X has an
    entry), numbered 0 .. len(cols) − 1.  Each row keeps its entries in their order, so
    X w and Xᵀ r are summed in the same order as on the whole X."""
    if isinstance(X, np.ndarray):
        return X[:, cols]
    return type(X)(
        (X.data, np.searchsorted(cols, X.indices), X.indptr), shape=(X.shape[0], len(cols))
    )


class Recorder:
    """Snapshots of the parameters on the first worker; losses evaluated at the end so
    that evaluation does not slow the run it measures.  Live progress (log_every) goes
    to rank 0 and does cost an evaluation each time."""

    def __init__(
        self,
        comm,
        config: Config,
        objective: Objective,
        eval_data,
        active: bool,
        log: Callable[[str], None],
    ):
        self.comm, self.config, self.objective = comm, config, objective
        self.eval_data, self.active, self.log = eval_data, active, log
        self.started = time.perf_counter()
        self.snapshots: list[tuple[float, int, np.ndarray]] = []

    def wants(self, steps: int, final: bool = False) -> bool:
        """Whether a call at `steps` would record or log (to skip fetching a snapshot)."""
        every, log_every = self.config.record_every, self.config.log_every
        return self.active and (
            final
            or steps == 0
            or bool(every and steps % every == 0)
            or bool(log_every and steps % log_every == 0)
        )

    def __call__(self, steps: int, params: np.ndarray, final: bool = False) -> None:
        if not self.active:
            return
        every = self.config.record_every
        if final or steps == 0 or (every and steps % every == 0):
            self.snapshots.append((time.perf_counter() - self.started, steps, params.copy()))
        if self.config.log_every and steps % self.config.log_every == 0 and not final:
            loss = self.objective.loss(params, *self.eval_data)
            line = np.array([steps, time.perf_counter() - self.started, loss])
            if self.comm.rank == 0:
                self.log(progress_line(line))
            else:
                self.comm.Send(line, dest=0, tag=LOG)

    def history(self) -> list[tuple[float, int, float]]:
        return [
            (seconds, steps, self.objective.loss(params, *self.eval_data))
            for seconds, steps, params in self.snapshots
        ]


def progress_line(line: np.ndarray) -> str:
    """A progress line from [steps, seconds, loss]."""
    return f"step {int(line[0]):>8d}  {line[1]:8.2f} s  loss {line[2]:.6g}"
