"""What `gdfast.fit` returns: the per-epoch record of a training run, and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalogue import Optimizer

__all__ = ["History", "STOP_REASONS"]

STOP_REASONS = ("completed", "early_stopping", "non_finite_loss", "callback")
"""Why `fit` returned: all epochs done; early stopping; the objective's loss was
NaN or infinite; a callback asked to stop."""


@dataclass
class History:
    """What `fit` did, one entry per epoch in each list.

    Attributes
    ----------
    train_loss : list of float
        Mean of the epoch's batch losses, weighted by batch size (the
        parameters move during the epoch, as in every library's report).
    val_loss : list of float
        The latest validation loss at the end of the epoch (NaN without
        validation; with ``eval_every``, that of the last evaluation so far).
    lr : list of float
        The optimizer's learning rate at the end of the epoch.
    seconds : list of float
        Wall time of the epoch, validation included.
    samples_per_s : list of float
        Examples trained on per second of the training part of the epoch.
    steps : list of int
        Optimizer updates made by the end of the epoch (cumulative).
    examples : list of int
        Examples trained on in the epoch (n, or the curriculum's epoch length).
    evaluations : list of (int, float)
        (step, monitored loss) of every evaluation (per epoch, or every
        ``eval_every`` steps): the validation loss, or without validation the
        epoch's train loss (what early stopping and ReduceOnPlateau see).
    stop_reason : str
        One of STOP_REASONS.
    stop_message : str
        A sentence saying why, and where.
    best_evaluation : int or None
        With early stopping: index into `evaluations` of the best one.
    restored_best : bool
        True when early stopping wrote the best parameters back.
    optimizer : Optimizer
        The optimizer used (with its state: pass it to `fit` again to continue).
    blas_threads : int or None
        The BLAS thread limit fit applied (see fit's `blas_threads`), None if none.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    samples_per_s: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    evaluations: list[tuple[int, float]] = field(default_factory=list)
    stop_reason: str = "completed"
    stop_message: str = ""
    best_evaluation: int | None = None
    restored_best: bool = False
    optimizer: Optimizer | None = field(default=None, repr=False)
    blas_threads: int | None = None

    @property
    def epochs(self) -> int:
        """Epochs completed."""
        return len(self.train_loss)

    def __len__(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, list]:
        """The per-epoch columns, e.g. for ``pandas.DataFrame(history.as_dict())``."""
        return {
            "epoch": list(range(1, self.epochs + 1)),
            "train_loss": list(self.train_loss),
            "val_loss": list(self.val_loss),
            "lr": list(self.lr),
            "seconds": list(self.seconds),
            "samples_per_s": list(self.samples_per_s),
            "steps": list(self.steps),
            "examples": list(self.examples),
        }
