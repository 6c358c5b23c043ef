"""Regenerate docs/choosing.md, its figures and the README gallery from measurements.

    python scripts/make_guide.py                # writes output/guide/, compares with docs/
    python scripts/make_guide.py --out docs     # regenerate the committed files in place
    python scripts/make_guide.py --check        # write to a temporary folder, compare, and
                                                # exit 1 if anything differs from docs/ (or
                                                # if gdfast.gallery.GALLERY_LR no longer
                                                # matches the sweep)
About two minutes on two cores, with a line of progress per surface and per rule.

What it measures (every number in docs/choosing.md comes from here):
  1. On the four surfaces of gdfast.gallery, each rule swept over the learning rates of
     gdfast.gallery.LR_GRID (other hyper-parameters at their SPEC.md defaults) for the
     surface's step budget: the steps to reach the surface's target loss and stay there.
     Also each rule at its default learning rate.
  2. On scikit-learn's digits (8×8 images, 10 classes, bundled with scikit-learn, no
     download): a one-hidden-layer MLP (gdfast.models.MLP, 32 ReLU units) trained with
     gdfast.fit, mini-batches of 32, 20 epochs, each rule at each rate of the
     grid; the rate is chosen on a validation split and the model is reported on a
     separate test split, over three seeds (initialization and shuffling).
Writes OUT/choosing.md, OUT/guide/*.png and OUT/gallery/* (the README gallery,
the same files as `python -m gdfast plot --out docs/gallery --no-loss` and
`python -m gdfast plot --out docs/gallery --surface saddle --gif --no-loss`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import filecmp
import statistics
import sys
import tempfile
import time

import numpy as np

from gdfast import gallery, optim, viz
from gdfast.gallery import LR_GRID, RULE_NAMES, SweepPoint, surfaces

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = {"hidden": (32,), "epochs": 20, "batch_size": 32, "accuracy": 0.95, "seeds": (0, 1, 2)}
SMALL_PNG_COLORS = 48


def progress(text: str) -> None:
    print(f"make_guide: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------- surfaces


def surface_measurements() -> dict:
    """Sweeps and default-lr runs on every surface."""
    sweeps, defaults = {}, {}
    for index, name in enumerate(surfaces.SURFACES, start=1):
        progress(f"surface {name} ({index}/{len(surfaces.SURFACES)})")
        budget = gallery.BUDGET[name]
        sweeps[name] = {rule: gallery.sweep(rule, name, budget) for rule in RULE_NAMES}
        defaults[name] = {}
        for rule in RULE_NAMES:
            path = gallery.run(rule, name, budget)
            defaults[name][rule] = (path.hyperparameters["lr"], path.steps_to(stay=True))
    return {"sweeps": sweeps, "defaults": defaults}


def gallery_mismatches(sweeps: dict) -> list[str]:
    """Where GALLERY_LR differs from the middle of the measured working range."""
    wrong = []
    for name in gallery.TUNED_SURFACES:
        for rule in RULE_NAMES:
            measured = gallery.middle_learning_rate(sweeps[name][rule])
            if gallery.GALLERY_LR[name][rule] != measured:
                wrong.append(
                    f"GALLERY_LR[{name!r}][{rule!r}] = "
                    f"{gallery.GALLERY_LR[name][rule]}, sweep says {measured}"
                )
    return wrong


# ----------------------------------------------------------------------- digits


def digits_split(seed: int = 0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(seed).permutation(len(X))
    n_train, n_val = int(0.6 * len(X)), int(0.2 * len(X))
    parts = np.split(order, [n_train, n_train + n_val])
    return [(X[p], y[p]) for p in parts]


def train_digits(rule: str, lr: float, seed: int, data) -> dict:
    """One training run; per-epoch validation accuracy recorded by a callback."""
    from gdfast import fit
    from gdfast.train.models import MLP

    (X_train, y_train), (X_val, y_val), (X_test, y_test) = data
    model = MLP(X_train.shape[1], 10, hidden=DIGITS["hidden"], seed=seed)
    accuracy: list[float] = []

    def record(history) -> bool:
        accuracy.append(model.score(X_val, y_val))
        return False

    history = fit(
        model,
        model.params,
        X_train,
        y_train,
        getattr(optim, rule),
        lr=lr,
        batch_size=DIGITS["batch_size"],
        epochs=DIGITS["epochs"],
        seed=seed,
        validation=(X_val, y_val),
        callbacks=[record],
        progress=False,
    )
    finite = all(np.all(np.isfinite(p)) for p in model.params)
    return {
        "history": history,
        "val_accuracy": accuracy,
        "completed": history.stop_reason == "completed" and finite,
        "val_loss": history.val_loss[-1] if history.val_loss else math.nan,
        "test_loss": model.evaluate(model.params, X_test, y_test) if finite else math.nan,
        "test_accuracy": model.score(X_test, y_test) if finite else math.nan,
    }


def digits_measurements() -> dict:
    data = digits_split()
    sweeps, chosen, runs, default_runs, grid_accuracy = {}, {}, {}, {}, {}
    for index, rule in enumerate(RULE_NAMES, start=1):
        progress(f"digits {rule} ({index}/{len(RULE_NAMES)}): {len(LR_GRID)} rates")
        points = []
        grid_accuracy[rule] = []
        for lr in LR_GRID:
            result = train_digits(rule, lr, 0, data)
            grid_accuracy[rule].append(
                result["val_accuracy"][-1] if result["val_accuracy"] else math.nan
            )
            reached = [
                i + 1 for i, a in enumerate(result["val_accuracy"]) if a >= DIGITS["accuracy"]
            ]
            final_ok = (
                bool(result["val_accuracy"]) and result["val_accuracy"][-1] >= DIGITS["accuracy"]
            )
            points.append(
                SweepPoint(
                    lr=lr,
                    steps_to=reached[0] if reached else None,
                    stayed=final_ok and result["completed"],
                    final_value=result["val_loss"],
                    diverged=not result["completed"],
                )
            )
        sweeps[rule] = points
        # The rate with the lowest final validation loss (test split untouched).
        candidates = [
            (p.final_value, p.lr) for p in points if not p.diverged and math.isfinite(p.final_value)
        ]
        chosen[rule] = min(candidates)[1]
        runs[rule] = [train_digits(rule, chosen[rule], seed, data) for seed in DIGITS["seeds"]]
        default_lr = getattr(optim, rule)(np.zeros(1)).lr
        default_runs[rule] = (
            default_lr,
            [train_digits(rule, default_lr, seed, data) for seed in DIGITS["seeds"]],
        )
    sizes = [len(part[1]) for part in data]
    return {
        "sweeps": sweeps,
        "chosen": chosen,
        "runs": runs,
        "defaults": default_runs,
        "sizes": sizes,
        "grid_accuracy": grid_accuracy,
    }


# ---------------------------------------------------------------------- writing


def cell(count: int | None) -> str:
    return "—" if count is None else f"{count:,}"


def point_text(point) -> str:
    return "(" + ", ".join(f"{float(v):.3g}" for v in point) + ")"


def lr_text(lr: float) -> str:
    return f"{lr:g}"


def mean_sd(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """mean ± sample standard deviation of values × scale, or "diverged"."""
    values = [v * scale for v in values]
    if any(not math.isfinite(v) for v in values):
        return "diverged"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def rotated_ravine(degrees: float) -> surfaces.Surface:
    """gdfast.gallery.RAVINE turned by `degrees` about the origin, start turned with it."""
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    hessian = rotation @ np.diag(surfaces.RAVINE_CURVATURE) @ rotation.T

    def value(x, y):
        return 0.5 * (hessian[0, 0] * x * x + 2 * hessian[0, 1] * x * y + hessian[1, 1] * y * y)

    def gradient(x, y):
        return (hessian[0, 0] * x + hessian[0, 1] * y, hessian[0, 1] * x + hessian[1, 1] * y)

    start = tuple(float(v) for v in rotation @ np.array(surfaces.RAVINE.start))
    return dataclasses.replace(
        surfaces.RAVINE,
        name=f"ravine rotated {degrees:g}°",
        start=start,
        loss_function=value,
        gradient_function=gradient,
    )


def first_step_sizes(rule: str, surface: str) -> np.ndarray:
    """|Δθ| of each coordinate on the first step, at the rule's defaults."""
    path = gallery.run(rule, surface, 1)
    return np.abs(path.points[1] - path.points[0])


def write_guide(surface_data: dict, digits: dict) -> str:
    sweeps, defaults = surface_data["sweeps"], surface_data["defaults"]
    names = list(surfaces.SURFACES)
    minima = [n for n in names if surfaces.SURFACES[n].minimum is not None]
    lines: list[str] = []
    add = lines.append
    grid = ", ".join(lr_text(lr) for lr in LR_GRID)
    add("# Choosing an optimizer: what the measurements say")
    add("")
    add(
        "*Generated by `python scripts/make_guide.py`; every number below comes from that "
        "script. Edit the script, not this file.*"
    )
    add("")
    add(
        "Four small problems and one real one. The surfaces are two-dimensional, so they "
        "show the dynamics of each rule (how it treats curvature, plateaus and saddles), "
        "not how it scales; the digits task is a real, if small, training run. Every rule "
        "uses its SPEC.md defaults for everything but the learning rate, which is swept "
        f"over the grid {grid} (Adadelta's `lr` is the multiplier of its unit-free step)."
    )
    add("")
    add("| surface | J(x, y) | start | budget | arrived when |")
    add("|---|---|---|---|---|")
    for name in names:
        s = surfaces.SURFACES[name]
        goal = (
            f"J ≤ {s.target:g} (escaped: y² ≥ x² + 1)"
            if s.minimum is None
            else f"J ≤ {s.target:g} (minimum {s.min_value:g} at {s.minimum})"
        )
        add(f"| {name} | {s.formula} | {s.start} | {gallery.BUDGET[name]:,} steps | {goal} |")
    add("")
    add(
        "A run *converged* when it reached the target and stayed there until the end of the "
        'budget; "steps" counts the steps to the first arrival of such a run. The saddle '
        "is kept apart (section 3): any large enough step jumps off it, so only a "
        "comparison at the same learning rate says anything there."
    )
    add("")

    # ---------------------------------------------------------------- table 1
    add("## 1. Steps to the minimum: tuned, and out of the box")
    add("")
    add(
        "Best: the fewest steps over the learning-rate grid (the rate in brackets). "
        "Default: at the rule's default learning rate. — : did not converge within the budget."
    )
    add("")
    add("| rule | " + " | ".join(f"{n}: best | {n}: default" for n in minima) + " |")
    add("|---|" + "---|---|" * len(minima))
    for rule in RULE_NAMES:
        row = [rule]
        for name in minima:
            best = gallery.best_learning_rate(sweeps[name][rule])
            point = next(p for p in sweeps[name][rule] if p.lr == best)
            row.append(f"{cell(point.steps_to)} ({lr_text(best)})" if point.converged else "—")
            default_lr, steps = defaults[name][rule]
            row.append(f"{cell(steps)} ({lr_text(default_lr)})")
        add("| " + " | ".join(row) + " |")
    add("")
    add("What this shows:")
    add("")
    for name in minima:
        ranked = sorted(
            (min(p.steps_to for p in sweeps[name][r] if p.converged), r)
            for r in RULE_NAMES
            if any(p.converged for p in sweeps[name][r])
        )
        top = ", ".join(f"{r} {c:,}" for c, r in ranked[:3])
        slow = ", ".join(f"{r} {c:,}" for c, r in ranked[-2:])
        missing = [r for r in RULE_NAMES if r not in {r for _, r in ranked}]
        add(
            f"- **{name}**, tuned: fastest {top}; slowest {slow}"
            + (f"; never converged at any rate: {', '.join(missing)}" if missing else "")
            + "."
        )
    out_of_box = {r: sum(defaults[n][r][1] is not None for n in minima) for r in RULE_NAMES}
    add(
        f"- **Out of the box** (default learning rate), surfaces converged out of "
        f"{len(minima)}: " + ", ".join(f"{r} {out_of_box[r]}" for r in RULE_NAMES) + "."
    )
    add("")

    # ---------------------------------------------------------------- table 2
    add("## 2. Sensitivity to the learning rate")
    add("")
    add(
        "The working range: log10(largest/smallest) over the longest run of consecutive "
        "grid rates at which the rule converged (0: at most one rate in a row). Wider is "
        "more forgiving; the grid's steps are half a decade, so 1.0 means three rates in "
        "a row. In brackets: how many of the "
        f"{len(LR_GRID)} rates converged at all. On digits (section 4) a rate counts as "
        f"converged when the validation accuracy is ≥ {DIGITS['accuracy']:.0%} after the "
        "last epoch."
    )
    add("")
    add("| rule | " + " | ".join(minima) + " | digits | mean |")
    add("|---|" + "---|" * (len(minima) + 2))
    ranges = {}
    for rule in RULE_NAMES:
        results = [sweeps[n][rule] for n in minima] + [digits["sweeps"][rule]]
        values = [gallery.working_range(r) for r in results]
        counts = [sum(p.converged for p in r) for r in results]
        ranges[rule] = statistics.mean(values)
        add(
            f"| {rule} | "
            + " | ".join(f"{v:.1f} ({c})" for v, c in zip(values, counts))
            + f" | {ranges[rule]:.2f} |"
        )
    add("")
    ranked = sorted(RULE_NAMES, key=lambda r: -ranges[r])
    add(
        f"Widest on average: {', '.join(f'{r} ({ranges[r]:.2f})' for r in ranked[:4])}; "
        f"narrowest: {', '.join(f'{r} ({ranges[r]:.2f})' for r in ranked[-3:])} decades."
    )
    add("")
    for name in minima:
        add(f"![{name}: steps to the target over the learning-rate grid](guide/sweep_{name}.png)")
    add("")

    # ---------------------------------------------------------------- saddle
    common = (0.001, 0.01, 0.1)
    at = {
        (r, lr): next(p.steps_to for p in sweeps["saddle"][r] if p.lr == lr)
        for r in RULE_NAMES
        for lr in common
    }
    adadelta_default = defaults["saddle"]["Adadelta"]
    add("## 3. Saddle points: the same step size, very different escapes")
    add("")
    start = surfaces.SADDLE.start
    add(
        f"Started at {start}, a hair off the line y = 0 along which plain descent slides into "
        "the saddle point; steps to J ≤ −1 at the same learning rate (Adadelta, whose `lr` "
        f"is not a step size, took {cell(adadelta_default[1])} at its default multiplier "
        f"{lr_text(adadelta_default[0])}):"
    )
    add("")
    rules = [r for r in RULE_NAMES if r != "Adadelta"]
    add("| lr | " + " | ".join(rules) + " |")
    add("|---|" + "---|" * len(rules))
    for lr in common:
        add(f"| {lr_text(lr)} | " + " | ".join(cell(at[r, lr]) for r in rules) + " |")
    add("")
    sgd = at["SGD", 0.01]
    normalized = ["RMSprop", "Adam", "AdaMax", "Nadam", "AMSGrad"]
    ratios = ", ".join(f"{r} {sgd / at[r, 0.01]:.1f}×" for r in normalized)
    add(
        f"At 0.01 SGD's y grows by (1 + 2·0.01) per step from the hair, so it needs {sgd} "
        "steps; the rules that divide by a running average of g² take steps of about η in y "
        f"however small the gradient is, and leave sooner ({ratios} fewer steps). Adagrad "
        "divides by the *sum* of all g² so far, so its steps shrink like 1/√t: "
        f"{cell(at['Adagrad', 0.01])} steps, slower than SGD. Momentum and Nesterov "
        f"({cell(at['Momentum', 0.01])}, {cell(at['Nesterov', 0.01])}) escape faster than SGD "
        "by accumulating velocity along y."
    )
    add("")
    hairs = (1e-3, 1e-7)
    escape = {
        (r, h): gallery.run(
            r, "saddle", gallery.BUDGET["saddle"], start=(1.0, h), lr=0.01
        ).steps_to()
        for r in ["SGD"] + normalized
        for h in hairs
    }
    add(
        f"How thin the hair is matters to SGD, not to the normalized rules: from "
        f"y = {hairs[0]:g} and from y = {hairs[1]:g} (lr 0.01), "
        + ", ".join(
            f"{r} {cell(escape[r, hairs[0]])} and {cell(escape[r, hairs[1]])}"
            for r in ["SGD"] + normalized
        )
        + " steps. SGD pays ln(10⁴)/ln(1.02) ≈ "
        f"{math.log(hairs[0] / hairs[1]) / math.log(1.02):.0f} steps more, as its closed "
        "form says. (tests/test_trajectories.py asserts the ordering, SGD's closed form and "
        "this independence.)"
    )
    add("")

    # ---------------------------------------------------------------- digits
    add("## 4. Training on digits")
    add("")
    train_n, val_n, test_n = digits["sizes"]
    add(
        f"scikit-learn's digits (1,797 8×8 images, pixels scaled to [0, 1]), split "
        f"{train_n}/{val_n}/{test_n} train/validation/test; `gdfast.models.MLP` with one "
        f"hidden layer of {DIGITS['hidden'][0]} ReLU units, `gdfast.fit`, batches "
        f"of {DIGITS['batch_size']}, {DIGITS['epochs']} epochs. The learning rate is the "
        "grid rate with the lowest final validation loss (seed 0); then three seeds "
        f"({', '.join(map(str, DIGITS['seeds']))}: initialization and shuffling) at that "
        "rate, reported on the test split (mean ± standard deviation), and the same at "
        "the rule's default rate."
    )
    add("")
    add(
        "| rule | chosen lr | test accuracy % | test loss | epochs to "
        f"{DIGITS['accuracy']:.0%} val. acc. | default lr | test accuracy % at default |"
    )
    add("|---|---|---|---|---|---|---|")
    tuned, untuned = {}, {}
    for rule in RULE_NAMES:
        runs = digits["runs"][rule]
        reached = [
            next(
                (i + 1 for i, a in enumerate(run["val_accuracy"]) if a >= DIGITS["accuracy"]), None
            )
            for run in runs
        ]
        default_lr, default_runs = digits["defaults"][rule]
        accuracy = [run["test_accuracy"] for run in runs]
        default_accuracy = [run["test_accuracy"] for run in default_runs]
        tuned[rule] = statistics.mean(accuracy)
        untuned[rule] = statistics.mean(default_accuracy)
        add(
            f"| {rule} | {lr_text(digits['chosen'][rule])} | {mean_sd(accuracy, 100, 1)} | "
            f"{mean_sd([run['test_loss'] for run in runs], 1, 3)} | "
            f"{', '.join(cell(r) for r in reached)} | {lr_text(default_lr)} | "
            f"{mean_sd(default_accuracy, 100, 1)} |"
        )
    add("")
    finite = {r: a for r, a in tuned.items() if math.isfinite(a)}
    best, worst = max(finite.values()), min(finite.values())
    gaps = {
        r: tuned[r] - untuned[r]
        for r in RULE_NAMES
        if math.isfinite(tuned[r]) and math.isfinite(untuned[r])
    }
    biggest = max(gaps, key=gaps.get)
    add(
        f"Tuned, every rule lands between {worst * 100:.1f}% and {best * 100:.1f}% mean test "
        f"accuracy ({(best - worst) * 100:.1f} points apart); one test image is "
        f"{100 / test_n:.2f} points, and the seed-to-seed spread is in the table, so most "
        "of these differences are noise. Between a rule's default rate and its tuned rate "
        f"the gap is up to {gaps[biggest] * 100:.1f} points ({biggest}: "
        f"{untuned[biggest] * 100:.1f}% → {tuned[biggest] * 100:.1f}%), median "
        f"{statistics.median(gaps.values()) * 100:.1f} points."
    )
    add("")
    add(
        "![digits: validation loss per epoch, each rule at its chosen learning rate, "
        "seed 0](guide/digits.png)"
    )
    add("")

    # ---------------------------------------------------------------- advice
    add("## 5. So which one?")
    add("")
    add(
        "Read with the caveat that these are four small problems; each statement cites "
        "the section its numbers come from."
    )
    add("")
    add(
        f"- **No time to tune:** prefer a rule with a wide working range (section 2): "
        f"{', '.join(f'{r} {ranges[r]:.2f}' for r in ranked[:3])} decades on average, "
        f"against {', '.join(f'{r} {ranges[r]:.2f}' for r in ranked[-2:])}."
    )
    add(
        "- **Saddle points:** the rules normalized by a running average of g² "
        f"({', '.join(normalized)}) left the saddle in "
        f"{min(at[r, 0.01] for r in normalized)}–{max(at[r, 0.01] for r in normalized)} "
        f"steps against SGD's {sgd} at lr 0.01 (section 3); Adagrad's ever-shrinking step "
        f"made it the slowest ({cell(at['Adagrad', 0.01])})."
    )
    ravine = {
        r: min((p.steps_to for p in sweeps["ravine"][r] if p.converged), default=None)
        for r in RULE_NAMES
    }
    same_lr = {
        r: next(p.steps_to for p in sweeps["ravine"][r] if p.lr == 0.1)
        for r in ("SGD", "Momentum", "Nesterov")
    }
    add(
        f"- **Ill-conditioned valleys:** at the same learning rate 0.1 on the ravine, "
        f"Momentum took {cell(same_lr['Momentum'])} steps and Nesterov "
        f"{cell(same_lr['Nesterov'])} against SGD's {cell(same_lr['SGD'])} (section 2's "
        f"grid). Each at its best rate: SGD {cell(ravine['SGD'])}, Momentum "
        f"{cell(ravine['Momentum'])}, Nesterov {cell(ravine['Nesterov'])}, Adam "
        f"{cell(ravine['Adam'])}, Nadam {cell(ravine['Nadam'])} (section 1)."
    )
    adagrad_lr = gallery.best_learning_rate(sweeps["ravine"]["Adagrad"])
    jump = gallery.run("Adagrad", "ravine", 2, lr=adagrad_lr).points
    tilted = rotated_ravine(30.0)
    tilted_sweep = gallery.sweep("Adagrad", tilted, gallery.BUDGET["ravine"])
    tilted_same = next(p.steps_to for p in tilted_sweep if p.lr == adagrad_lr)
    tilted_best = gallery.best_learning_rate(tilted_sweep)
    tilted_best_steps = next(p.steps_to for p in tilted_sweep if p.lr == tilted_best)
    add(
        f"  Adagrad's {cell(ravine['Adagrad'])} steps at lr {lr_text(adagrad_lr)} are a jump: "
        f"its first step is η·sign(g) in each coordinate, from {point_text(jump[0])} to "
        f"{point_text(jump[1])}, then {point_text(jump[2])}. That works because this "
        "ravine's axes are the coordinate axes: on the same ravine rotated by 30° (same "
        f"start relative to the valley) Adagrad at lr {lr_text(adagrad_lr)} takes "
        f"{cell(tilted_same)} steps and at its best rate on the grid "
        f"({lr_text(tilted_best)}) {cell(tilted_best_steps)}."
    )
    step = first_step_sizes("Adadelta", "beale")
    gradient = np.abs(surfaces.BEALE.gradient(surfaces.BEALE.start))
    digits_steps = digits["defaults"]["Adadelta"][1][0]["history"].steps[-1]
    add(
        f"- **Adadelta** needs no learning rate, but its first step is about √ε/√(1−ρ) "
        f"whatever the gradient (on Beale: {step[0]:.4f} and {step[1]:.4f} for gradient "
        f"components {gradient[0]:.3g} and {gradient[1]:.3g}) and grows only as its "
        f"running average of steps does: at its default it converged on "
        f"{out_of_box['Adadelta']} of the {len(minima)} surfaces within their budgets "
        f"(section 1); on digits ({digits_steps:,} steps) its default reached "
        f"{untuned['Adadelta'] * 100:.1f}% (section 4)."
    )
    add(
        f"- **Digits:** tuned rules are within {(best - worst) * 100:.1f} points of each "
        f"other; a rule at its default rate loses up to {gaps[biggest] * 100:.1f} points "
        "(section 4): tune the learning rate before switching rules."
    )
    add("")
    add("## The gallery")
    add("")
    add(
        "The README's pictures (`docs/gallery/`) show each rule at the middle of its working "
        "range from section 2 (`gdfast.gallery.GALLERY_LR`, which this script checks), "
        "and on the saddle at the common rate 0.01 (Adadelta at its default 1)."
    )
    add("")
    return "\n".join(lines) + "\n"


def write_figures(surface_data: dict, digits: dict, docs: str) -> list[str]:
    written = []
    guide = os.path.join(docs, "guide")
    for name, results in surface_data["sweeps"].items():
        s = surfaces.SURFACES[name]
        if s.minimum is None:
            continue
        title = (
            f"{name}: steps to J ≤ {s.target:g} within {gallery.BUDGET[name]:,} "
            f"from {s.start}, by learning rate"
        )
        figure = viz.plot_sweep(results, size=(640, 330), title=title)
        written.append(
            viz.save_figure(figure, os.path.join(guide, f"sweep_{name}.png"), SMALL_PNG_COLORS)
        )
    histories = {
        f"{rule} lr={lr_text(digits['chosen'][rule])}": digits["runs"][rule][0]["history"]
        for rule in RULE_NAMES
    }
    figure = viz.plot_histories(
        histories,
        size=(760, 420),
        keys=("val_loss",),
        title="digits, MLP with 32 ReLU units, batches of 32, seed 0: "
        "validation loss per epoch\neach rule at its chosen "
        "lr; other hyper-parameters: SPEC.md defaults",
    )
    written.append(viz.save_figure(figure, os.path.join(guide, "digits.png"), SMALL_PNG_COLORS))
    gallery_dir = os.path.join(docs, "gallery")
    written += viz.write_figures(gallery_dir, list(surfaces.SURFACES), loss=False)
    written += viz.write_figures(gallery_dir, ["saddle"], gif=True, loss=False)[1:]
    return written


def compare_with_committed(out: str, written: list[str]) -> list[str]:
    """Each written file that differs from (or is missing in) the committed docs/."""
    docs = os.path.join(ROOT, "docs")
    differ = []
    for path in written:
        committed = os.path.join(docs, os.path.relpath(path, out))
        if not os.path.exists(committed):
            differ.append(f"{os.path.relpath(committed, ROOT)}: not committed")
        elif not filecmp.cmp(path, committed, shallow=False):
            detail = ""
            if path.endswith(".md"):
                with open(path, encoding="utf-8") as new, open(committed, encoding="utf-8") as old:
                    new_lines, old_lines = new.read().splitlines(), old.read().splitlines()
                changed = sum(a != b for a, b in zip(new_lines, old_lines))
                changed += abs(len(new_lines) - len(old_lines))
                detail = f" ({changed} of {len(old_lines)} lines)"
            differ.append(f"{os.path.relpath(committed, ROOT)}: differs{detail}")
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        default=os.path.join(ROOT, "output", "guide"),
        help="where choosing.md, guide/ and gallery/ go (default: output/guide; "
        "--out docs regenerates the committed files)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write to a temporary folder and exit 1 if the results differ from docs/ "
        "or GALLERY_LR does not match the sweep",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="make_guide_") as scratch:
        return run(scratch if args.check else args.out, args.check)


def run(out: str, check: bool) -> int:
    began = time.perf_counter()
    surface_data = surface_measurements()
    progress(f"surfaces measured in {time.perf_counter() - began:.0f} s")
    digits = digits_measurements()
    progress(f"digits measured; {time.perf_counter() - began:.0f} s in all")
    os.makedirs(out, exist_ok=True)
    guide = os.path.join(out, "choosing.md")
    with open(guide, "w", encoding="utf-8") as handle:
        handle.write(write_guide(surface_data, digits))
    written = [guide, *write_figures(surface_data, digits, out)]
    if not check:
        for path in written:
            print(os.path.relpath(path))
    differ = compare_with_committed(out, written)
    if os.path.abspath(out) == os.path.join(ROOT, "docs"):
        differ = []  # regenerated in place: git diff shows what changed
    for line in differ:
        progress(f"the committed {line} (numbers from this CPU)")
    if not differ:
        progress(
            "every file equals the committed one"
            if os.path.abspath(out) != os.path.join(ROOT, "docs")
            else "docs/ regenerated; `git diff --stat docs` shows what changed"
        )
    mismatches = gallery_mismatches(surface_data["sweeps"])
    for line in mismatches:
        progress(line)
    return 1 if check and (mismatches or differ) else 0


if __name__ == "__main__":
    sys.exit(main())
