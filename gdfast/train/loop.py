"""`gdfast.fit`: batch, stochastic and mini-batch gradient descent with every strategy.

    history = gdfast.fit(objective, params, X, y, "adam", lr=1e-3, batch_size=32, epochs=20,
                         validation=(X_val, y_val), schedule="plateau:0.5:3",
                         early_stopping=EarlyStopping(patience=5))
    history.val_loss[-1], history.stop_reason

``objective(params, X_batch, y_batch) -> (loss, grads)`` is any Python function
(gdfast.train.models' models are such objectives); the optimizer (a gdfast or
gdfast.reference optimizer, or a name) applies each step in place.  The loop is
plain Python around two calls per step, and adds about a microsecond to them
(see the README for the measurement).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from .. import _validation as check
from .._progress import Progress
from . import blas
from .batches import batches, check_data
from .history import History
from .optimizer import OptimizerSpec, evaluation_modes, make_optimizer
from .schedules import ReduceOnPlateau, Schedule, parse as parse_schedule
from .strategies import Curriculum, EarlyStopping, GradientNoise, Shuffle

__all__ = ["fit"]

T = TypeVar("T")
# objective(params, X_batch, y_batch) -> (loss, grads); params as fit was given them: one
# ndarray or a sequence of them
Objective = Callable[[Any, Any, Any], tuple[float, Sequence[Any]]]


# ------------------------------------------------------- fit's own arguments
def _check_options(
    batch_size: Any, epochs: Any, shuffle: Any, eval_every: Any, callbacks: Any, validation: Any
) -> tuple[int | None, int, int | None, list]:
    if batch_size is not None:
        batch_size = check.integer("batch_size", batch_size, 1)
    epochs = check.integer("epochs", epochs, 0)
    if shuffle is not None:
        check.flag("shuffle", shuffle)
    if eval_every is not None:
        eval_every = check.integer("eval_every", eval_every, 1)
        if validation is None:
            raise ValueError("eval_every: evaluating every k steps needs validation=(X_val, y_val)")
    if callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for index, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(
                f"callbacks[{index}]: expected a callable, got {type(callback).__name__}"
            )
    return batch_size, epochs, eval_every, callbacks


def _strategy(
    name: str, value: Any, cls: type[T], convert: Callable[[Any], T], alternative: str
) -> T | None:
    """`value` if it is None or a `cls`, else `convert(value)` with errors naming `name`."""
    if value is None or isinstance(value, cls):
        return value
    try:
        return convert(value)
    except (TypeError, ValueError) as error:
        if str(error).startswith(f"{name}:"):
            raise
        raise type(error)(f"{name}: expected a {cls.__name__} or {alternative}; {error}") from None


# ------------------------------------------------------------------------- fit
def fit(
    objective: Objective,
    params: np.ndarray | Sequence[np.ndarray],
    X: Any,
    y: Any = None,
    optimizer: OptimizerSpec = "sgd",
    *,
    batch_size: int | None = 32,
    epochs: int = 10,
    shuffle: bool | None = None,
    seed: int = 0,
    curriculum: Curriculum | Sequence[float] | np.ndarray | None = None,
    schedule: Schedule | str | None = None,
    early_stopping: EarlyStopping | int | None = None,
    grad_noise: GradientNoise | float | None = None,
    validation: tuple[Any, Any] | None = None,
    eval_every: int | None = None,
    callbacks: Sequence[Callable[[History], Any]] = (),
    progress: bool = True,
    progress_file: Any = None,
    blas_threads: int | str | None = "auto",
    state_dtype: str | None = None,
    master_weights: bool | None = None,
    rounding: str | None = None,
    block_size: int | None = None,
    **hyperparameters: Any,
) -> History:
    """Train `params` by gradient descent on ``objective`` over the examples (X, y).

    Parameters
    ----------
    objective : callable
        ``objective(params, X_batch, y_batch) -> (loss, grads)``: the mean loss
        of the batch (a real number) and one gradient per parameter (None
        skips one).  If it also has ``evaluate(params, X, y) -> float`` (as
        gdfast.train.models' models do) that computes the validation loss; otherwise
        the objective itself does, and its gradient is thrown away.
    params : ndarray or list of ndarray
        The parameters, updated in place (C-contiguous float32/float64, or
        bfloat16 (ml_dtypes) / float16 for an objective that computes in them).
        The objective receives them as given: one array, or a sequence.
    X : ndarray or scipy.sparse matrix, shape (n, ...)
        The examples, one per row (a sparse matrix is cut into CSR batches).
    y : array_like of length n, optional
        The targets; None passes None to the objective.
    optimizer : str, Optimizer or Optimizer class, default "sgd"
        A name ("adam", "rmsprop", ..., "reference.adam" for the NumPy
        reference), a class (gdfast.Adam, gdfast.reference.Adam) built on
        `params` with ``**hyperparameters``, or an optimizer already built on
        `params` (its state carries over: call fit again to continue).
        An optimizer with ``train()`` and ``eval()`` (gdfast.ScheduleFreeAdamW,
        gdfast.ScheduleFreeSGD: the gradient is taken at another point than the
        model's) steps in train mode and is put in eval mode for each validation
        pass, for early stopping's copy of the best parameters and at the end: the
        parameters fit returns are the model to use (call ``opt.train()`` before
        stepping it yourself, or fit switches back itself).
    batch_size : int or None, default 32
        Examples per update: None is batch gradient descent (one update per
        epoch), 1 is stochastic gradient descent, b is mini-batch; the last
        partial batch of an epoch is kept.
    epochs : int, default 10
        Passes over the data (or over the curriculum's epoch).
    shuffle : bool, optional
        Visit the examples in a fresh permutation each epoch (`Shuffle`),
        seeded by `seed`; False keeps the stored order.  Unset means True,
        or the curriculum's order when there is one (a curriculum orders the
        examples itself, see its `shuffle_slice`; shuffle=True with a
        curriculum is a ValueError).
    seed : int, default 0
        Seeds the shuffling, the curriculum and the gradient noise when
        they are given as plain values, and the stochastic rounding of an
        optimizer fit builds with `rounding` given.
    curriculum : Curriculum or array_like of difficulty scores, optional
        Scores alone mean ``Curriculum(scores, seed=seed)``: easiest first every epoch.
    schedule : Schedule or str, optional
        A learning-rate schedule (gdfast.train.schedules) or its text ("step:10:0.5",
        see `gdfast.train.schedules.parse`).  Starts from the optimizer's lr unless
        it has its own; per-epoch schedules are advanced after each epoch,
        per-step ones after each update, ReduceOnPlateau after each evaluation
        with the monitored loss.
    early_stopping : EarlyStopping or int, optional
        An int is the patience.  Monitors the validation loss (the train loss
        without validation) at each evaluation.  When it stops training, or
        when training ends after the best evaluation, restore_best writes the
        best parameters back.
    grad_noise : GradientNoise or float, optional
        A float is η of ``GradientNoise(eta, seed=seed)``.
    validation : (X_val, y_val), optional
        Evaluated after every epoch, or every `eval_every` steps.
    eval_every : int, optional
        Evaluate (and let early stopping and ReduceOnPlateau count) every this
        many steps instead of every epoch.
    callbacks : sequence of callables
        Each ``callback(history)`` runs after every epoch; a true return value
        stops training (stop_reason "callback").
    progress : bool, default True
        A live tqdm bar (the `progress` extra) or, without tqdm, a line per epoch.
    progress_file : file, optional
        Where progress goes (default sys.stderr).
    blas_threads : "auto", int or None, default "auto"
        Threads of the BLAS (OpenBLAS, MKL) behind the objective's matrix
        products while fit runs, set with threadpoolctl (the `threads` extra)
        and restored afterwards. "auto": 1 thread when a batch's work is small
        (parameters × batch size ≤ 2**25, where threads only add overhead: a
        digits MLP trained ~10x faster with one thread than with two on a busy
        2-core machine), else the BLAS default; nothing when threadpoolctl is
        absent. An int: that many threads (needs threadpoolctl). None: leave
        the BLAS alone. History.blas_threads records the limit applied.
    **hyperparameters
        For an optimizer given by name or class, e.g. ``lr=0.01``.

    Returns
    -------
    History
        Per-epoch train loss, validation loss, lr, seconds, samples/s, and
        `stop_reason` / `stop_message`.

    Notes
    -----
    A NaN or infinite loss stops training at once with a RuntimeWarning and
    stop_reason "non_finite_loss"; the step is not taken.  The parameters are
    those at which the loss was last finite if they are finite; if they are
    not (a non-finite gradient went through on the step before), the
    parameters of the epoch's start are restored, and the message says so.
    """
    if not callable(objective):
        raise TypeError(
            f"objective: expected a callable (params, X, y) -> (loss, grads), got "
            f"{type(objective).__name__}"
        )
    X, y, n = check_data(X, y, "X")
    batch_size, epochs, eval_every, callbacks = _check_options(
        batch_size, epochs, shuffle, eval_every, callbacks, validation
    )
    seed = check.integer("seed", seed, 0)
    progress = check.flag("progress", progress)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation: expected a pair (X_val, y_val)")
        X_val, y_val, _ = check_data(validation[0], validation[1], "validation")
    policy = {
        name: value
        for name, value in (
            ("state_dtype", state_dtype),
            ("master_weights", master_weights),
            ("rounding", rounding),
            ("block_size", block_size),
        )
        if value is not None
    }
    if rounding is not None:
        policy["seed"] = seed  # the stream of stochastic rounding
    opt = make_optimizer(optimizer, params, **policy, **hyperparameters)
    # the objective gets params as given: one array stays one array
    given = params if isinstance(params, np.ndarray) else opt.params
    arrays = opt.params  # the parameters, updated in place
    curriculum = _strategy(
        "curriculum",
        curriculum,
        Curriculum,
        lambda scores: Curriculum(scores, seed=seed),
        "an array of difficulty scores",
    )
    if curriculum is not None and curriculum.n != n:
        raise ValueError(f"curriculum: it scores {curriculum.n} examples, X has {n} rows")
    if curriculum is not None and shuffle:
        raise ValueError(
            "shuffle: a curriculum orders the examples itself; leave shuffle "
            "unset (or use Curriculum(..., shuffle_slice=True))"
        )
    schedule = _strategy(
        "schedule", schedule, Schedule, parse_schedule, "a text such as 'step:10:0.5'"
    )
    stopper = _strategy(
        "early_stopping", early_stopping, EarlyStopping, EarlyStopping, "an int patience"
    )
    noise = _strategy(
        "grad_noise",
        grad_noise,
        GradientNoise,
        lambda eta: GradientNoise(eta, seed=seed),
        "a float eta",
    )

    history = History(optimizer=opt)
    if schedule is not None:
        opt.lr = schedule.start(None if schedule.own_lr else opt.lr)
    if stopper is not None:
        stopper.reset()
    if noise is not None:
        noise.reset()
    step_schedule = schedule if schedule is not None and schedule.per == "step" else None
    epoch_schedule = (
        schedule
        if schedule is not None and schedule.per == "epoch" and not _monitors(schedule)
        else None
    )
    plateau = schedule if schedule is not None and _monitors(schedule) else None
    evaluate = _validation_loss(objective)
    shuffler = Shuffle(n, seed) if shuffle is not False and curriculum is None else None
    display = Progress(
        progress and epochs > 0,
        epochs * -(-n // (batch_size if batch_size is not None else n)),
        unit="step",
        desc=f"epoch 1/{epochs}",
        stream=progress_file,
    )

    # Schedule-Free rules: the gradient is taken at y (train mode), the model to evaluate,
    # keep for early stopping and return is x (eval mode)
    to_train, to_eval = evaluation_modes(opt)

    def evaluation(step: int, train_loss: float) -> bool:
        """Evaluate (in eval mode, then back to train mode); True when early stopping says
        stop."""
        if validation is not None:
            to_eval()
        monitored = train_loss if validation is None else float(evaluate(given, X_val, y_val))
        history.evaluations.append((step, monitored))
        if plateau is not None:
            opt.lr = plateau.update(monitored)
        stops = stopper is not None and stopper.update(monitored, arrays)
        to_train()
        return stops

    step = 0
    stop = None
    # the hot loop's callables as locals: each attribute lookup is ~20 ns a step
    isfinite, take_step = math.isfinite, opt.step
    tick = display.tick
    history.blas_threads = blas.thread_limit(blas_threads, arrays, batch_size or n)
    limiter = blas.limiter(history.blas_threads)
    to_train()
    try:
        for epoch in range(epochs):
            began = time.perf_counter()
            order = (
                curriculum.order(epoch)
                if curriculum is not None
                else (shuffler.order(epoch) if shuffler is not None else None)
            )
            length = n if order is None else order.shape[0]
            size = batch_size if batch_size is not None else max(length, 1)
            # the expected total, corrected: a curriculum's epochs vary in length
            display.retarget(
                step + -(-length // size) * (epochs - epoch), f"epoch {epoch + 1}/{epochs}"
            )
            snapshot = [p.copy() for p in arrays]
            loss_sum = 0.0
            seen = 0
            for X_batch, y_batch, rows in batches(X, y, order, size):
                result = objective(given, X_batch, y_batch)
                try:
                    loss, grads = result
                except (TypeError, ValueError):
                    raise TypeError(
                        "objective: expected it to return (loss, grads), got "
                        f"{type(result).__name__}"
                    ) from None
                loss = float(loss)
                if not isfinite(loss):
                    stop = _non_finite(loss, epoch, step, arrays, snapshot)
                    break
                if noise is not None:
                    grads = noise(grads, step + 1)
                take_step(grads)
                step += 1
                loss_sum += loss * rows
                seen += rows
                if step_schedule is not None:
                    opt.lr = step_schedule.update()
                if eval_every is not None and step % eval_every == 0:
                    if evaluation(step, loss_sum / seen):
                        stop = "early_stopping"
                        break
                if tick is not None:
                    tick(1)
            trained = time.perf_counter() - began
            if seen:
                history.train_loss.append(loss_sum / seen)
                if stop is None and eval_every is None:
                    if evaluation(step, history.train_loss[-1]):
                        stop = "early_stopping"
                history.val_loss.append(
                    history.evaluations[-1][1]
                    if history.evaluations and validation is not None
                    else math.nan
                )
                if stop is None and epoch_schedule is not None:
                    opt.lr = epoch_schedule.update()
                history.lr.append(opt.lr)
                history.seconds.append(time.perf_counter() - began)
                history.samples_per_s.append(seen / trained if trained > 0 else math.inf)
                history.steps.append(step)
                history.examples.append(seen)
                _report_epoch(display, history, epochs)
            if stop is None:
                for callback in callbacks:
                    if callback(history):
                        stop = "callback"
                        break
            if stop is not None:
                break
    finally:
        display.close()
        if limiter is not None:
            limiter.restore_original_limits()

    to_eval()  # the parameters fit returns are the model to use
    _finish(history, stop or "completed", stopper, arrays, epochs, step)
    return history


def _report_epoch(display: Progress, history: History, epochs: int) -> None:
    """The epoch's losses and lr beside the bar, or a line with its time and speed."""
    if not display.enabled:
        return
    summary = {"loss": f"{history.train_loss[-1]:.4g}"}
    if not math.isnan(history.val_loss[-1]):
        summary["val_loss"] = f"{history.val_loss[-1]:.4g}"
    summary["lr"] = f"{history.lr[-1]:.3g}"
    fields = "  ".join(f"{key} {value}" for key, value in summary.items())
    display.report(
        summary,
        f"epoch {history.epochs}/{epochs}  {fields}  {history.seconds[-1]:.2f} s  "
        f"{history.samples_per_s[-1]:,.0f} samples/s",
    )


def _monitors(schedule: Schedule) -> bool:
    """Whether the schedule needs the monitored loss (ReduceOnPlateau)."""
    return isinstance(schedule, ReduceOnPlateau)


def _validation_loss(objective: Objective) -> Callable[[Any, Any, Any], float]:
    evaluate = getattr(objective, "evaluate", None)
    if callable(evaluate):
        return evaluate
    return lambda params, X, y: objective(params, X, y)[0]


def _non_finite(
    loss: float, epoch: int, step: int, params: Sequence[np.ndarray], snapshot: list[np.ndarray]
) -> str:
    where = f"at epoch {epoch + 1}, before update {step + 1}"
    if all(np.isfinite(p).all() for p in params):
        kept = "the parameters are those of the last finite loss"
    else:
        for target, saved in zip(params, snapshot):
            np.copyto(target, saved)
        kept = "the parameters had become non-finite; those of the epoch's start are restored"
    message = (
        f"the objective returned a non-finite loss ({loss}) {where}; training stopped and "
        f"{kept}. Try a smaller learning rate, or check the objective."
    )
    warnings.warn(f"fit: {message}", RuntimeWarning, stacklevel=3)
    return "non_finite_loss:" + message


def _finish(
    history: History,
    stop: str,
    stopper: EarlyStopping | None,
    params: Sequence[np.ndarray],
    epochs: int,
    step: int,
) -> None:
    reason, _, message = stop.partition(":")
    history.stop_reason = reason
    if stopper is not None and stopper.best_evaluation >= 0:
        history.best_evaluation = stopper.best_evaluation
        best_is_last = stopper.best_evaluation == stopper.evaluations - 1
        if stopper.restore_best and not best_is_last and reason != "non_finite_loss":
            history.restored_best = stopper.restore(params)
    if reason == "completed":
        message = f"completed {epochs} epoch(s), {step} update(s)"
    elif reason == "early_stopping" and stopper is not None:
        best_step, best_value = history.evaluations[stopper.best_evaluation]
        message = (
            f"early stopping after {stopper.evaluations} evaluation(s): no improvement "
            f"of at least {stopper.min_delta} in {stopper.patience}; best {best_value:.6g} "
            f"at update {best_step}" + (", parameters restored" if history.restored_best else "")
        )
    elif reason == "callback":
        message = f"a callback stopped training after epoch {history.epochs}"
    history.stop_message = message
