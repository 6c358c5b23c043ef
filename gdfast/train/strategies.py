"""The strategies that make SGD work (SPEC.md section 2), each usable on its own.

Example orders (what `gdfast.fit` iterates over in an epoch):
    Shuffle          a fresh permutation every epoch from a seeded generator
    Curriculum       easy-to-hard by the caller's difficulty scores, optionally paced
                     (a growing slice of the easiest examples) and mixed with examples
                     drawn uniformly at random (Zaremba & Sutskever's "combined" strategy)
Training control:
    EarlyStopping    stop after `patience` evaluations without an improvement of
                     `min_delta`, optionally restoring the best parameters
    GradientNoise    g_t ← g_t + N(0, σ_t²), σ_t² = η / (1 + t)^γ (Neelakantan et al., 2015)

Every random draw comes from a NumPy Generator seeded from `seed` (and the epoch
for the orders, so epoch e's order does not depend on which epochs were asked
for before it): the same seed gives the same run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .. import _validation as check

__all__ = ["Shuffle", "Curriculum", "CurriculumPlan", "EarlyStopping", "GradientNoise"]


def _check_seed(seed: Any) -> int:
    return check.integer("seed", seed, 0)


def _generator(seed: int, *key: int) -> np.random.Generator:
    """An independent, reproducible stream for (seed, key...), e.g. (seed, epoch)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class Shuffle:
    """A fresh permutation of range(n) every epoch, reproducible from `seed`.

    ``Shuffle(n, seed).order(epoch)`` is the same array every time it is
    asked for with the same (n, seed, epoch), and differs between epochs.
    """

    def __init__(self, n: int, seed: int = 0):
        self.n = check.integer("n", n, 0)
        self.seed = _check_seed(seed)

    def order(self, epoch: int) -> np.ndarray:
        """The indices of epoch `epoch` (int64, a permutation of range(n))."""
        epoch = check.integer("epoch", epoch, 0)
        return _generator(self.seed, 0, epoch).permutation(self.n)

    def __repr__(self) -> str:
        return f"Shuffle(n={self.n}, seed={self.seed})"


@dataclass(frozen=True)
class CurriculumPlan:
    """One epoch of a curriculum.

    indices : the examples in the order they are visited.
    uniform : True where the example was drawn uniformly at random (the
              combined strategy), False where it comes from the curriculum slice.
    slice_size : how many of the easiest examples the curriculum allows this epoch.
    """

    indices: np.ndarray
    uniform: np.ndarray
    slice_size: int


class Curriculum:
    """Easy-to-hard ordering by difficulty, with pacing and the combined strategy.

    At epoch e the curriculum allows the ``slice_size(e)`` easiest examples,

        slice_size(e) = ceil(n · min(1, start + (1 − start) · e / ramp_epochs))

    (all n from the start when ``ramp_epochs == 0``), visited easiest first
    (ties keep their index order), or in a seeded random order with
    ``shuffle_slice=True``.  With ``mix = p > 0`` this is Zaremba &
    Sutskever's (2014) combined strategy: examples drawn uniformly at random
    from all n (with replacement) are interleaved evenly, a fraction p of the
    epoch, so any run of b consecutive positions (a mini-batch) holds
    ⌊b·p⌋ or ⌈b·p⌉ of them; the epoch is ceil(slice_size / (1 − p)) long.

    Parameters
    ----------
    difficulty : array_like, shape (n,)
        One finite score per example; smaller is easier.
    start : float, default 1.0
        Fraction of the examples allowed at epoch 0, in (0, 1].
    ramp_epochs : int, default 0
        Epochs over which the slice grows linearly to all examples.
    mix : float, default 0.0
        Fraction of uniformly drawn examples, in [0, 1).
    shuffle_slice : bool, default False
        Visit the allowed slice in a random order instead of easiest first.
    seed : int, default 0
    """

    def __init__(
        self,
        difficulty: Any,
        start: float = 1.0,
        ramp_epochs: int = 0,
        mix: float = 0.0,
        shuffle_slice: bool = False,
        seed: int = 0,
    ):
        scores = np.asarray(difficulty)
        if scores.ndim != 1 or not (
            np.issubdtype(scores.dtype, np.number)
            and not np.issubdtype(scores.dtype, np.complexfloating)
        ):
            raise TypeError(
                "difficulty: expected a 1-d array of real scores, one per example, "
                f"got {scores.dtype} array of shape {scores.shape}"
            )
        if not np.all(np.isfinite(scores)):
            raise ValueError("difficulty: every score must be finite")
        self.difficulty = scores
        self.n = scores.shape[0]
        self.start = check.real_number("start", start)
        if not 0.0 < self.start <= 1.0:
            raise ValueError(f"start: expected a fraction in (0, 1], got {start!r}")
        self.ramp_epochs = check.integer("ramp_epochs", ramp_epochs, 0)
        self.mix = check.real_number("mix", mix)
        if not 0.0 <= self.mix < 1.0:
            raise ValueError(f"mix: expected a fraction in [0, 1), got {mix!r}")
        self.shuffle_slice = check.flag("shuffle_slice", shuffle_slice)
        self.seed = _check_seed(seed)
        self.easy_first = np.argsort(scores, kind="stable")

    def slice_size(self, epoch: int) -> int:
        """How many of the easiest examples epoch `epoch` may use."""
        epoch = check.integer("epoch", epoch, 0)
        if self.ramp_epochs == 0:
            return self.n
        fraction = min(1.0, self.start + (1.0 - self.start) * epoch / self.ramp_epochs)
        return min(self.n, math.ceil(self.n * fraction - 1e-9))

    def plan(self, epoch: int) -> CurriculumPlan:
        """The examples of epoch `epoch` and which of them were drawn uniformly."""
        size = self.slice_size(epoch)
        rng = _generator(self.seed, 1, epoch)
        allowed = self.easy_first[:size]
        if self.shuffle_slice:
            allowed = rng.permutation(allowed)
        if self.mix == 0.0 or self.n == 0:
            return CurriculumPlan(
                allowed.astype(np.int64, copy=False), np.zeros(allowed.shape[0], dtype=bool), size
            )
        length = math.ceil(size / (1.0 - self.mix))
        # Position i is uniform when ⌊(i+1)p⌋ > ⌊ip⌋: evenly spread, ⌊length·p⌋ in all.
        position = np.arange(length)
        uniform = np.floor((position + 1) * self.mix) > np.floor(position * self.mix)
        # The slice must fit in the non-uniform positions; rounding can leave one short.
        while length - int(uniform.sum()) < size:
            length += 1
            position = np.arange(length)
            uniform = np.floor((position + 1) * self.mix) > np.floor(position * self.mix)
        indices = np.empty(length, dtype=np.int64)
        curriculum_positions = np.flatnonzero(~uniform)
        indices[curriculum_positions[:size]] = allowed
        # positions past the slice (a rounding tail) are uniform draws too
        uniform[curriculum_positions[size:]] = True
        indices[uniform] = rng.integers(0, self.n, size=int(uniform.sum()))
        return CurriculumPlan(indices, uniform, size)

    def order(self, epoch: int) -> np.ndarray:
        """The indices visited in epoch `epoch` (see `plan`)."""
        return self.plan(epoch).indices

    def __repr__(self) -> str:
        return (
            f"Curriculum(n={self.n}, start={self.start}, ramp_epochs={self.ramp_epochs}, "
            f"mix={self.mix}, shuffle_slice={self.shuffle_slice}, seed={self.seed})"
        )


class EarlyStopping:
    """Stop when the monitored value (the validation loss) stops improving.

    ``update(value, params)`` after each evaluation returns True when training
    should stop: after `patience` evaluations in a row whose value did not beat
    the best so far by at least `min_delta` (v < best − min_delta; a NaN never
    does).  With ``restore_best=True`` it keeps a copy of the parameters at the
    best evaluation, and `restore(params)` writes them back.

    Parameters
    ----------
    patience : int, default 5
        Evaluations without improvement before stopping (>= 1).
    min_delta : float, default 0.0
        The smallest decrease that counts as an improvement (>= 0).
    restore_best : bool, default True
        Keep the best parameters (one copy, refreshed at each improvement).

    Attributes
    ----------
    best : float
        The best value seen (inf before the first update).
    best_evaluation : int
        Index (from 0) of the evaluation that gave `best`; -1 before any.
    evaluations : int
        Updates so far.
    wait : int
        Evaluations since the last improvement.
    stopped : bool
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True):
        self.patience = check.integer("patience", patience, 1)
        self.min_delta = check.nonnegative("min_delta", min_delta)
        self.restore_best = check.flag("restore_best", restore_best)
        self.reset()

    def reset(self) -> None:
        """Forget every evaluation (fit calls this at its start)."""
        self.best = math.inf
        self.best_evaluation = -1
        self.evaluations = 0
        self.wait = 0
        self.stopped = False
        self.best_params: list[np.ndarray] | None = None

    def update(self, value: float, params: Sequence[np.ndarray] | np.ndarray | None = None) -> bool:
        """Record one evaluation; True means stop now."""
        value = float(value)
        if params is not None and isinstance(params, np.ndarray):
            params = [params]
        if not math.isnan(value) and value < self.best - self.min_delta:
            self.best = value
            self.best_evaluation = self.evaluations
            self.wait = 0
            if self.restore_best and params is not None:
                if self.best_params is None or len(self.best_params) != len(params):
                    self.best_params = [np.array(p, copy=True) for p in params]
                else:
                    for kept, p in zip(self.best_params, params):
                        np.copyto(kept, p)
        else:
            self.wait += 1
        self.evaluations += 1
        self.stopped = self.wait >= self.patience
        return self.stopped

    def restore(self, params: Sequence[np.ndarray] | np.ndarray) -> bool:
        """Write the best parameters back into `params` in place; False if none were kept."""
        if isinstance(params, np.ndarray):
            params = [params]
        if self.best_params is None:
            return False
        if len(params) != len(self.best_params):
            raise ValueError(
                f"params: expected {len(self.best_params)} arrays (those given to "
                f"update), got {len(params)}"
            )
        for target, kept in zip(params, self.best_params):
            np.copyto(target, kept)
        return True

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"restore_best={self.restore_best})"
        )


class GradientNoise:
    """Annealed Gaussian gradient noise (Neelakantan et al., 2015).

    g_t ← g_t + N(0, σ_t²) element-wise, σ_t² = η / (1 + t)^γ, t the update
    counted from 1 (SPEC.md's convention).  The paper recommends
    η ∈ {0.01, 0.3, 1.0} and γ = 0.55.

    Parameters
    ----------
    eta : float, default 0.01
        η, the variance at t = 0 (> 0).
    gamma : float, default 0.55
        γ, the decay exponent (>= 0).
    seed : int, default 0
        Seeds one stream of draws: the same seed and the same sequence of
        calls give the same noise.  `reset` rewinds it (`gdfast.fit` does at
        its start).  One stream rather than a generator per update because
        seeding costs ~10 µs, more than the noise of a small model.
    """

    def __init__(self, eta: float = 0.01, gamma: float = 0.55, seed: int = 0):
        self.eta = check.positive("eta", eta)
        self.gamma = check.nonnegative("gamma", gamma)
        self.seed = _check_seed(seed)
        self.reset()

    def reset(self) -> None:
        """Rewind the stream of draws to its start."""
        self._rng = _generator(self.seed, 2)

    def variance(self, t: int) -> float:
        """σ_t² = η / (1 + t)^γ."""
        t = check.integer("t", t, 0)
        return self.eta / (1.0 + t) ** self.gamma

    def __call__(self, grads: Any, t: int) -> Any:
        """`grads` plus fresh noise for update t (new arrays; None entries stay None).

        Takes and returns one array or a list of arrays; the noise has each
        gradient's dtype and shape.
        """
        sigma = math.sqrt(self.variance(t))
        rng = self._rng
        single = isinstance(grads, np.ndarray)
        noisy: list[np.ndarray | None] = []
        for index, grad in enumerate([grads] if single else grads):
            if grad is None:
                noisy.append(None)
                continue
            if not isinstance(grad, np.ndarray) or grad.dtype not in check.FLOAT_DTYPES:
                raise TypeError(
                    f"grads[{index}]: expected a float32 or float64 ndarray, got "
                    f"{getattr(grad, 'dtype', type(grad).__name__)}"
                )
            noise = rng.standard_normal(grad.shape, dtype=grad.dtype)
            noise *= grad.dtype.type(sigma)
            noise += grad
            noisy.append(noise)
        return noisy[0] if single else noisy

    def __repr__(self) -> str:
        return f"GradientNoise(eta={self.eta}, gamma={self.gamma}, seed={self.seed})"
