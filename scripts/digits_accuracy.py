"""The validation accuracy of every rule of the catalogue on the digits MLP of gdfast.fit,
side by side, at each rule's documented default learning rate.

The problem of tests/test_rules2_digits.py (and the guide): scikit-learn's digits scaled
to [0, 1], split 60/20/20 by a seeded permutation, an MLP with one hidden layer of 32 ReLU
units, seeds 0, 1, 2 of initialization and shuffling.  Each rule at its constructor's
defaults, for the given batch sizes and epochs.

    PYTHONPATH=$PWD python scripts/digits_accuracy.py                   # batch 32 and 4, 20 epochs
    PYTHONPATH=$PWD python scripts/digits_accuracy.py --batch 1 --epochs 10 --rules Lion
    PYTHONPATH=$PWD python scripts/digits_accuracy.py --documented      # issue 15's closing table

--documented: each rule at its documented setting, one column: the rules of issue 15 at the
batch size and epochs of tests/test_rules2_digits.py's SETTINGS (read from that file: one
table), the others at batch 32, 20 epochs (the guide's setting).

Prints a markdown table: rule, default lr, then per setting the mean validation accuracy
over the seeds, (its minimum; the minimum test accuracy).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from gdfast import optim
from gdfast.catalogue import CATALOGUE
from gdfast.models import MLP
from gdfast.training import fit


def digits_split():
    """(train, validation, test) pairs of the digits data, as the digits test splits it."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    n_train, n_val = int(0.6 * len(X)), int(0.2 * len(X))
    parts = np.split(order, [n_train, n_train + n_val])
    return [(X[p], y[p]) for p in parts]


def accuracies(rule, data, batch_size, epochs, seeds=(0, 1, 2), **hyper):
    """(validation, test) accuracies of `rule` (a gdfast class), one per seed."""
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = data
    validation, test = [], []
    for seed in seeds:
        model = MLP(X_train.shape[1], 10, hidden=(32,), seed=seed)
        fit(
            model,
            model.params,
            X_train,
            y_train,
            rule,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
            progress=False,
            **hyper,
        )
        validation.append(model.score(X_val, y_val))
        test.append(model.score(X_test, y_test))
    return validation, test


def documented_settings() -> dict:
    """{rule: (batch size or None for the full batch, epochs)} of tests/test_rules2_digits.py."""
    path = Path(__file__).resolve().parent.parent / "tests" / "test_rules2_digits.py"
    spec = importlib.util.spec_from_file_location("test_rules2_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.SETTINGS


def documented_table(rules, data) -> None:
    """One row per rule at its documented setting (--documented)."""
    settings = documented_settings()
    print("| rule | default lr | batch, epochs | validation mean (min; test min) |")
    print("|---|---|---|---|")
    for name in rules:
        rule = getattr(optim, name)
        batch, epochs = settings.get(name, (32, 20))
        validation, test = accuracies(rule, data, batch, epochs)
        cell = f"{np.mean(validation):.3f} ({min(validation):.3f}; test {min(test):.3f})"
        shown = "full" if batch is None else batch
        default = rule.hyperparameter("lr").default
        print(f"| {name} | {default:g} | {shown}, {epochs} | {cell} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 4])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rules", nargs="+", default=[rule.rule for rule in CATALOGUE])
    parser.add_argument("--documented", action="store_true", help="each rule at its own setting")
    args = parser.parse_args(argv)
    data = digits_split()
    if args.documented:
        documented_table(args.rules, data)
        return 0
    settings = [f"batch {b}, {args.epochs} epochs" for b in args.batch]
    print("| rule | default lr | " + " | ".join(settings) + " |")
    print("|---|---|" + "---|" * len(settings))
    for name in args.rules:
        rule = getattr(optim, name)
        cells = []
        for batch in args.batch:
            validation, test = accuracies(rule, data, batch, args.epochs)
            cells.append(f"{np.mean(validation):.3f} ({min(validation):.3f}; test {min(test):.3f})")
        default = rule.hyperparameter("lr").default
        print(f"| {name} | {default:g} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
