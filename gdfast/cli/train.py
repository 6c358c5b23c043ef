"""`python -m gdfast train`: train one of gdfast's models with gdfast.fit, from the shell.

    python -m gdfast train --model mlp --data digits --optimizer adam --batch-size 32 \\
        --epochs 30 --batch-norm --schedule plateau:0.5:3 --early-stopping 5

Data (scikit-learn's bundled sets need the `data` extra; nothing is downloaded):
  digits          8×8 digit images, 10 classes, pixels scaled to [0, 1]
  breast_cancer   30 features, 2 classes, standardized with the training split's statistics
  synthetic       generated: --samples × --features Gaussian X; targets from a random
                  linear model (a real value for linear, a class for the classifiers)
A stratified --val-fraction of the examples (default 0.2) is held out for validation.

Strategies: --schedule (constant, step:N[:G], exp:G, inverse:K[:step], plateau[:F[:P[:T]]]),
--early-stopping PATIENCE[:MIN_DELTA], --grad-noise ETA (γ = 0.55),
--curriculum easy-first | paced[:START[:RAMP]] | combined[:MIX[:START[:RAMP]]], the difficulty
of an example being its distance to the centroid of its class (to the mean for regression).

--optimizer all trains every rule from the same start and prints one row per rule.
Prints a live progress bar (tqdm, the `progress` extra; a line per epoch without it)
and a final line with the train and validation loss and accuracy and samples/s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numpy as np

from .. import _validation
from ..rule_names import parse_list as parse_rules
from ..train import History, fit, make_optimizer, models, schedules
from ..train.strategies import Curriculum, EarlyStopping, GradientNoise

MODELS = ("linear", "logistic", "softmax", "mlp")
DATASETS = ("digits", "breast_cancer", "synthetic")


class CommandError(ValueError):
    """A bad combination of command-line options (printed, exit status 2)."""


# ------------------------------------------------------------------------ data
def load_data(
    name: str,
    model: str,
    val_fraction: float,
    seed: int,
    samples: int = 10_000,
    features: int = 50,
    classes: int = 10,
) -> dict[str, Any]:
    """Training and validation splits of a dataset, ready for `model`.

    Returns {"X", "y", "X_val", "y_val", "n_classes"} (n_classes 0 for regression).
    """
    if name not in DATASETS:
        raise CommandError(f"--data: expected one of {', '.join(DATASETS)}, got {name!r}")
    if not 0.0 < val_fraction < 1.0:
        raise CommandError(f"--val-fraction: expected a number in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    if name == "synthetic":
        if samples < 10 or features < 1:
            raise CommandError("--samples must be >= 10 and --features >= 1")
        X = rng.standard_normal((samples, features))
        weights = rng.standard_normal((features, classes if model in ("softmax", "mlp") else 1))
        scores = X @ weights / np.sqrt(features)
        if model == "linear":
            y = scores[:, 0] + 0.1 * rng.standard_normal(samples)
        elif model == "logistic":
            y = (scores[:, 0] + 0.3 * rng.standard_normal(samples) > 0).astype(np.int64)
        else:
            y = np.argmax(scores + 0.3 * rng.standard_normal(scores.shape), axis=1)
    else:
        if model == "linear":
            raise CommandError(
                f"--model linear is a regression; {name} is a classification "
                "dataset (use --data synthetic)"
            )
        try:
            from sklearn import datasets
        except ImportError:
            raise CommandError(
                f"--data {name} needs scikit-learn: pip install 'gdfast[data]'"
            ) from None
        loader = datasets.load_digits if name == "digits" else datasets.load_breast_cancer
        X, y = loader(return_X_y=True)
        if name == "digits":
            X = X / 16.0
        if model == "logistic" and len(np.unique(y)) != 2:
            raise CommandError(
                f"--model logistic is binary; {name} has "
                f"{len(np.unique(y))} classes (use softmax or mlp)"
            )
    train, val = _split(y, val_fraction, rng, stratify=model != "linear")
    X_train, X_val = X[train], X[val]
    if name != "digits":  # standardize with the training split's statistics only
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        std[std == 0] = 1.0
        X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    n_classes = 0 if model == "linear" else int(max(y.max() + 1, 2))
    return {"X": X_train, "y": y[train], "X_val": X_val, "y_val": y[val], "n_classes": n_classes}


def _split(
    y: np.ndarray, val_fraction: float, rng: np.random.Generator, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays of a (stratified) random split."""
    groups = (
        [np.flatnonzero(y == label) for label in np.unique(y)]
        if stratify
        else [np.arange(y.shape[0])]
    )
    held_out = []
    for members in groups:
        members = rng.permutation(members)
        held_out.append(members[: int(round(val_fraction * members.shape[0]))])
    val = np.sort(np.concatenate(held_out))
    train = np.setdiff1d(np.arange(y.shape[0]), val)
    return train, val


def difficulty(X: np.ndarray, y: np.ndarray, classification: bool) -> np.ndarray:
    """Distance of each example to the centroid of its class (to the mean for regression)."""
    if not classification:
        return np.linalg.norm(X - X.mean(axis=0), axis=1)
    scores = np.empty(X.shape[0])
    for label in np.unique(y):
        members = y == label
        scores[members] = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
    return scores


# ---------------------------------------------------------------- option parsing
def parse_curriculum(text: str | None, scores: np.ndarray, seed: int) -> Curriculum | None:
    """easy-first | paced[:START[:RAMP]] | combined[:MIX[:START[:RAMP]]] as a Curriculum."""
    if text is None or text == "none":
        return None
    kind, *fields = text.split(":")
    try:
        numbers = [float(field) for field in fields]
    except ValueError:
        raise CommandError(f"--curriculum: cannot read the numbers in {text!r}") from None
    if kind == "easy-first" and not numbers:
        return Curriculum(scores, seed=seed)
    if kind == "paced" and len(numbers) <= 2:
        start, ramp = (numbers + [0.2, 10][len(numbers) :])[:2]
        return Curriculum(scores, start=start, ramp_epochs=int(ramp), shuffle_slice=True, seed=seed)
    if kind == "combined" and len(numbers) <= 3:
        mix, start, ramp = (numbers + [0.2, 0.2, 10][len(numbers) :])[:3]
        return Curriculum(
            scores, start=start, ramp_epochs=int(ramp), mix=mix, shuffle_slice=True, seed=seed
        )
    raise CommandError(
        f"--curriculum: expected easy-first, paced[:START[:RAMP]] or "
        f"combined[:MIX[:START[:RAMP]]], got {text!r}"
    )


def parse_early_stopping(text: str | None) -> EarlyStopping | None:
    """PATIENCE[:MIN_DELTA] as an EarlyStopping that restores the best parameters."""
    if text is None:
        return None
    patience, _, min_delta = text.partition(":")
    try:
        return EarlyStopping(int(patience), float(min_delta or 0.0), restore_best=True)
    except ValueError as error:
        raise CommandError(
            f"--early-stopping: expected PATIENCE[:MIN_DELTA], got {text!r} ({error})"
        ) from None


def _word_or_positive_int(text: str, words: dict[str, Any], expected: str) -> Any:
    """argparse type: one of `words` (any case) mapped to its value, or an int >= 1."""
    if text.lower() in words:
        return words[text.lower()]
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def parse_seed(text: str) -> int:
    """A non-negative int (numpy's generators take no negative seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def parse_batch_size(text: str) -> int | None:
    """'full' (batch gradient descent) or a positive int."""
    return _word_or_positive_int(text, {"full": None}, "a positive int or 'full'")


# -------------------------------------------------------------------- training
def build_model(args: argparse.Namespace, n_features: int, n_classes: int) -> models.Model:
    """The model the options describe, on fresh parameters seeded by --seed."""
    common = {"l2": args.l2, "dtype": args.dtype, "seed": args.seed}
    if args.model == "linear":
        return models.LinearRegression(n_features, **common)
    if args.model == "logistic":
        return models.LogisticRegression(n_features, **common)
    if args.model == "softmax":
        return models.SoftmaxRegression(n_features, n_classes, **common)
    return models.MLP(
        n_features, n_classes, hidden=tuple(args.hidden), batch_norm=args.batch_norm, **common
    )


def train_once(
    args: argparse.Namespace, data: dict[str, Any], optimizer: str, progress: bool
) -> tuple[models.Model, History, float]:
    """Train a fresh model with `optimizer`; returns it, its history and the wall time."""
    model = build_model(args, data["X"].shape[1], data["n_classes"])
    X, X_val = data["X"].astype(args.dtype), data["X_val"].astype(args.dtype)
    if args.sparse:
        from scipy import sparse

        X, X_val = sparse.csr_matrix(X), sparse.csr_matrix(X_val)
    scores = difficulty(data["X"], data["y"], data["n_classes"] > 0)
    hyper = {} if args.lr is None else {"lr": args.lr}
    name = optimizer if args.backend == "c" else f"reference.{optimizer}"
    began = time.perf_counter()
    history = fit(
        model,
        model.params,
        X,
        data["y"],
        name,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        curriculum=parse_curriculum(args.curriculum, scores, args.seed),
        schedule=args.schedule,
        early_stopping=parse_early_stopping(args.early_stopping),
        grad_noise=args.grad_noise,
        validation=(X_val, data["y_val"]),
        progress=progress,
        blas_threads=args.blas_threads,
        **policy_options(args),
        **hyper,
    )
    return model, history, time.perf_counter() - began


def policy_options(args: argparse.Namespace) -> dict[str, Any]:
    """fit's dtype-policy keywords the options set (--state-dtype, --rounding, --block-size)."""
    given = (
        ("state_dtype", args.state_dtype),
        ("rounding", args.rounding),
        ("block_size", args.block_size),
    )
    return {name: value for name, value in given if value is not None}


def summary(model: models.Model, history: History, data: dict[str, Any]) -> dict[str, float]:
    """Final train/validation loss and score (accuracy, or R² for regression), samples/s."""
    trained = sum(n / rate for n, rate in zip(history.examples, history.samples_per_s) if rate)
    return {
        "train_loss": model.loss(data["X"], data["y"]),
        "train_score": model.score(data["X"], data["y"]),
        "val_loss": model.loss(data["X_val"], data["y_val"]),
        "val_score": model.score(data["X_val"], data["y_val"]),
        "samples_per_s": sum(history.examples) / trained if trained else float("nan"),
    }


def parse_blas_threads(text: str) -> int | str | None:
    """--blas-threads: "auto", "none" or a positive int."""
    return _word_or_positive_int(text, {"auto": "auto", "none": None}, "auto, none or an int >= 1")


def add_parser(subparsers: Any) -> None:
    """Register the `train` command."""
    parser = subparsers.add_parser(
        "train",
        help="train a model with gdfast.fit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", choices=MODELS, default="mlp")
    parser.add_argument("--data", choices=DATASETS, default="digits")
    parser.add_argument(
        "--optimizer",
        type=parse_rules,
        default=["Adam"],
        help="a rule in any case (adam, AdaMax, ...), or several comma-separated, "
        "or 'all', for a comparison table (default adam)",
    )
    parser.add_argument(
        "--lr", type=float, default=None, help="learning rate (default: the rule's own default)"
    )
    parser.add_argument(
        "--batch-size",
        type=parse_batch_size,
        default=32,
        help="examples per update: 1 is SGD, 'full' is batch GD (default 32)",
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[128], help="MLP hidden layer widths (default 128)"
    )
    parser.add_argument("--batch-norm", action="store_true", help="MLP: batch normalization")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights")
    parser.add_argument("--schedule", default=None, help="learning-rate schedule, e.g. step:10:0.5")
    parser.add_argument("--early-stopping", default=None, metavar="PATIENCE[:MIN_DELTA]")
    parser.add_argument(
        "--grad-noise",
        type=float,
        default=None,
        metavar="ETA",
        help="annealed gradient noise, η in {0.01, 0.3, 1.0}",
    )
    parser.add_argument(
        "--curriculum",
        default=None,
        help="easy-first | paced[:START[:RAMP]] | combined[:MIX[:START[:RAMP]]]",
    )
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--samples", type=int, default=10_000, help="synthetic: examples")
    parser.add_argument("--features", type=int, default=50, help="synthetic: features")
    parser.add_argument("--sparse", action="store_true", help="pass X as a scipy.sparse CSR matrix")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--backend",
        choices=["c", "reference"],
        default="c",
        help="gdfast's C kernels or the NumPy reference (default c)",
    )
    parser.add_argument(
        "--state-dtype",
        choices=["float32", "bfloat16", "int8"],
        default=None,
        help="the optimizer's state: float32 (default), bfloat16 (half the bytes) or int8 "
        "(8-bit blockwise, about a quarter); float32 models only",
    )
    parser.add_argument(
        "--rounding",
        choices=["nearest", "stochastic"],
        default=None,
        help="rounding of bfloat16 state (default nearest; stochastic is seeded by --seed)",
    )
    parser.add_argument(
        "--block-size",
        type=int,
        default=None,
        help="elements per scale of int8 state (a multiple of 16, at most 4096; default 256)",
    )
    parser.add_argument("--seed", type=parse_seed, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    parser.add_argument(
        "--blas-threads",
        type=parse_blas_threads,
        default="auto",
        help="BLAS threads during training: auto (1 for small models, where "
        "more only slow it down), a number, or none to leave the BLAS "
        "alone (default auto; needs threadpoolctl)",
    )
    parser.add_argument(
        "--history-json",
        metavar="FILE",
        default=None,
        help="write {optimizer: per-epoch history} as JSON "
        "(for `python -m gdfast plot --history FILE`)",
    )
    parser.set_defaults(command=main)


def _format_final(result: dict[str, float], history: History, classification: bool) -> str:
    metric = "acc" if classification else "R2"
    return (
        f"final: train loss {result['train_loss']:.4f} {metric} {result['train_score']:.4f}"
        f" | val loss {result['val_loss']:.4f} {metric} {result['val_score']:.4f}"
        f" | {result['samples_per_s']:,.0f} samples/s | {history.stop_message}"
    )


def check_options(args: argparse.Namespace) -> None:
    """Every option checked before any work, as a CommandError naming it."""
    if args.epochs < 1:
        raise CommandError("--epochs: expected >= 1")
    if args.batch_norm and args.model != "mlp":
        raise CommandError("--batch-norm: only the mlp model has batch normalization")
    if any(width < 1 for width in args.hidden):
        raise CommandError("--hidden: every width must be >= 1")
    checks = [
        ("--lr", lambda: args.lr is None or _validation.learning_rate("lr", args.lr)),
        ("--l2", lambda: _validation.nonnegative("l2", args.l2)),
        ("--schedule", lambda: args.schedule is None or schedules.parse(args.schedule)),
        ("--grad-noise", lambda: args.grad_noise is None or GradientNoise(args.grad_noise)),
        ("--curriculum", lambda: parse_curriculum(args.curriculum, np.zeros(1), 0)),
    ]
    for option, check in checks:
        try:
            check()
        except (TypeError, ValueError) as error:
            raise CommandError(f"{option}: {error}") from None
    parse_early_stopping(args.early_stopping)
    for rule in args.optimizer:  # the optimizer's own checks of the policy, on a stand-in
        try:
            make_optimizer(rule, np.zeros(1, args.dtype), **policy_options(args))
        except (TypeError, ValueError) as error:
            name = str(error).partition(":")[0]
            option = f"--{name.replace('_', '-')}" if name in vars(args) else f"--optimizer {rule}"
            raise CommandError(f"{option}: {error}") from None


def main(args: argparse.Namespace) -> int:
    """Run the `train` command; returns the exit status (2 for bad options)."""
    try:
        check_options(args)
        data = load_data(
            args.data, args.model, args.val_fraction, args.seed, args.samples, args.features
        )
    except CommandError as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    classification = data["n_classes"] > 0
    histories: dict[str, dict[str, list]] = {}
    if len(args.optimizer) == 1:
        rule = args.optimizer[0]
        model, history, _ = train_once(args, data, rule, not args.no_progress)
        print(_format_final(summary(model, history, data), history, classification))
        histories[rule] = history.as_dict()
    else:
        metric = "acc" if classification else "R2"
        print(
            f"{'rule':<9} {'lr':>7} {'train loss':>10} {'val loss':>9} {'val ' + metric:>8} "
            f"{'epochs':>6} {'seconds':>8}"
        )
        for rule in args.optimizer:
            model, history, seconds = train_once(args, data, rule, False)
            result = summary(model, history, data)
            lr = history.optimizer.lr if history.optimizer is not None else math.nan
            print(
                f"{rule:<9} {lr:>7.3g} {result['train_loss']:>10.4f} "
                f"{result['val_loss']:>9.4f} {result['val_score']:>8.4f} "
                f"{history.epochs:>6} {seconds:>8.2f}",
                flush=True,
            )
            histories[rule] = history.as_dict()
    if args.history_json:
        with open(args.history_json, "w", encoding="utf-8") as handle:
            json.dump(histories, handle, indent=1)
    return 0
