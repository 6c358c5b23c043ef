"""`python -m gdfast demo`: all ten rules, C kernels against the NumPy reference, on one problem.

The problem is a separable ill-conditioned quadratic
    J(θ) = ½ Σ_i h_i (θ_i − c_i)²,   h_i log-spaced in [0.1, 10],
so ∇J(θ) = h (θ − c) is cheap and the time measured is the optimizer's.  Each rule
runs with its SPEC.md defaults from the same start, once with gdfast's kernels and once
with gdfast.reference; the table shows the final loss, optimizer steps per second of
both backends (time inside `step` only) and the largest deviation between the two
parameter vectors, relative to the reference's largest magnitude.
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np

from .. import optim, reference
from ..rule_names import canonical, parse_list as parse_rules, rule_names


def quadratic_problem(size: int, dtype: np.dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    curvature = np.logspace(-1, 1, size).astype(dtype)
    rng.shuffle(curvature)
    center = rng.standard_normal(size).astype(dtype)
    start = np.zeros(size, dtype=dtype)

    def loss(theta: np.ndarray) -> float:
        return 0.5 * float(np.sum(curvature * (theta - center) ** 2, dtype=np.float64))

    def gradient(theta: np.ndarray) -> np.ndarray:
        return curvature * (theta - center)

    return start, loss, gradient


def run(rule_class, start, gradient, steps: int):
    theta = start.copy()
    optimizer = rule_class(theta)
    seconds = 0.0
    for _ in range(steps):
        grad = gradient(theta)
        began = time.perf_counter()
        optimizer.step(grad)
        seconds += time.perf_counter() - began
    return theta, steps / seconds if seconds > 0 else float("inf")


def demo(
    size: int = 100_000,
    steps: int = 300,
    dtype: str = "float32",
    rules: Sequence[str] | None = None,
) -> list[dict]:
    """One row per rule (names in any case; default all ten)."""
    start, loss, gradient = quadratic_problem(size, np.dtype(dtype))
    rows = []
    for rule in rule_names() if rules is None else [canonical(name) for name in rules]:
        fast_class, reference_class = getattr(optim, rule), getattr(reference, rule)
        fast, fast_rate = run(fast_class, start, gradient, steps)
        slow, slow_rate = run(reference_class, start, gradient, steps)
        scale = max(float(np.max(np.abs(slow))), np.finfo(slow.dtype).tiny) if size else 1.0
        deviation = float(np.max(np.abs(fast - slow))) / scale if size else 0.0
        rows.append(
            {
                "rule": fast_class.__name__,
                "initial_loss": loss(start),
                "final_loss": loss(fast),
                "steps_per_s": fast_rate,
                "reference_steps_per_s": slow_rate,
                "max_rel_deviation": deviation,
            }
        )
    return rows


def format_table(rows: list[dict], size: int, steps: int, dtype: str) -> str:
    lines = [
        f"{steps} steps on a {size:,}-parameter {dtype} quadratic "
        f"(initial loss {rows[0]['initial_loss']:.4g}), SPEC.md defaults",
        f"{'rule':<9} {'final loss':>12} {'steps/s':>10} {'ref steps/s':>12} "
        f"{'speed-up':>9} {'max rel dev':>12}",
    ]
    for row in rows:
        lines.append(
            f"{row['rule']:<9} {row['final_loss']:>12.5g} {row['steps_per_s']:>10.0f} "
            f"{row['reference_steps_per_s']:>12.0f} "
            f"{row['steps_per_s'] / row['reference_steps_per_s']:>8.1f}x "
            f"{row['max_rel_deviation']:>12.2e}"
        )
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="all ten rules, C kernels vs the NumPy reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=100_000, help="parameters (default 100000)")
    parser.add_argument("--steps", type=int, default=300, help="steps per rule (default 300)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--rules",
        type=parse_rules,
        default=None,
        help="comma-separated rules in any case, or all (default: all)",
    )
    parser.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    if args.size < 0 or args.steps < 1:
        raise SystemExit("demo: --size must be >= 0 and --steps >= 1")
    rows = demo(args.size, args.steps, args.dtype, args.rules)
    print(format_table(rows, args.size, args.steps, args.dtype))
    return 0
