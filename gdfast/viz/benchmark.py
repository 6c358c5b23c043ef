"""The benchmark's figure: GB/s per rule against the machine's limit and torch."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ..gallery.settings import RULE_NAMES
from .figures import PathLike, Size, new_figure, save_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["load_benchmark", "plot_benchmark"]


def load_benchmark(source: PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """The benchmark's JSON ({"header": {...}, "rows": [...]}) from a file or a dict."""
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        with open(source, encoding="utf-8") as handle:
            data = json.load(handle)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError("bench: expected a JSON object with a list under 'rows'")
    required = {"rule", "dtype", "size", "threads", "backend", "gbps"}
    for index, row in enumerate(data["rows"]):
        if not isinstance(row, Mapping) or not required <= set(row):
            raise ValueError(f"bench['rows'][{index}]: expected the keys {sorted(required)}")
    data.setdefault("header", {})
    return data


def plot_benchmark(
    bench: PathLike | Mapping[str, Any],
    path: PathLike | None = None,
    dtype: str | None = None,
    size: int | None = None,
    threads: int | None = None,
    figure_size: Size = (900, 480),
    colors: int | None = None,
) -> "Figure":
    """GB/s per rule and backend for one (dtype, size, threads) of the benchmark, with
    the machine limit (the "roofline" backend) as a black bar over each group.

    Defaults pick float32 if present, the largest numeric size (a named case such as
    "model" only when asked for, or when it is the only one) and the most threads.
    The gdfast bar is annotated with its percent of the limit when the JSON has it.
    """
    data = load_benchmark(bench)
    rows = data["rows"]
    if not rows:
        raise ValueError("bench: no rows to plot")

    def pick(name: str, wanted: Any, default: Any) -> Any:
        present = sorted({row[name] for row in rows}, key=str)
        if wanted is None:
            return default(present)
        if wanted not in present:
            raise ValueError(f"{name}: {wanted!r} is not in the benchmark (has {present})")
        return wanted

    def largest_number(present: list) -> Any:
        # Sizes are element counts, or names of composite cases such as "model".
        numbers = [p for p in present if isinstance(p, (int, float)) and not isinstance(p, bool)]
        return max(numbers) if numbers else present[0]

    dtype = pick("dtype", dtype, lambda p: "float32" if "float32" in p else p[0])
    size = pick("size", size, largest_number)
    threads = pick("threads", threads, largest_number)
    chosen = [r for r in rows if (r["dtype"], r["size"], r["threads"]) == (dtype, size, threads)]
    rules = [rule for rule in RULE_NAMES if any(r["rule"] == rule for r in chosen)]
    rules += sorted({r["rule"] for r in chosen} - set(rules))
    order = ["gdfast", "reference", "torch-fused", "torch-foreach", "torch-for-loop"]
    backends = [b for b in order if any(r["backend"] == b for r in chosen)]
    backends += sorted({r["backend"] for r in chosen} - set(order) - {"roofline"})
    value = {(r["rule"], r["backend"]): r for r in chosen}

    figure = new_figure(figure_size)
    axes = figure.add_axes((0.08, 0.15, 0.74, 0.72))
    width = 0.8 / max(len(backends), 1)
    bar_colors = ["#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]
    handles: list[Any] = []
    for index, backend in enumerate(backends):
        xs, heights = [], []
        for position, rule in enumerate(rules):
            row = value.get((rule, backend))
            if row is not None:
                xs.append(position - 0.4 + width * (index + 0.5))
                heights.append(row["gbps"])
                percent = row.get("percent_of_limit")
                if backend == "gdfast" and percent is not None:
                    axes.text(
                        xs[-1], row["gbps"], f"{percent:.0f}%", ha="center", va="bottom", fontsize=6
                    )
        handles.append(
            axes.bar(
                xs, heights, width=width, label=backend, color=bar_colors[index % len(bar_colors)]
            )
        )
    limits = [
        (position, value[(rule, "roofline")]["gbps"])
        for position, rule in enumerate(rules)
        if (rule, "roofline") in value
    ]
    if limits:
        handles.append(
            axes.hlines(
                [gbps for _, gbps in limits],
                [position - 0.45 for position, _ in limits],
                [position + 0.45 for position, _ in limits],
                color="black",
                linewidth=2,
                label="machine limit (roofline)",
            )
        )
    axes.set_xticks(range(len(rules)))
    axes.set_xticklabels(rules, rotation=30, fontsize=8)
    axes.set_ylabel("GB/s (bytes the step must move / median time)")
    axes.grid(True, axis="y", alpha=0.3)
    figure.legend(
        handles=handles, loc="center left", bbox_to_anchor=(0.83, 0.5), fontsize=7, frameon=False
    )
    header = data["header"]
    machine = ", ".join(
        f"{key}: {header[key]}" for key in ("cpu", "machine", "gdfast") if key in header
    )
    elements = chosen[0].get("elements") if chosen else None
    if isinstance(size, int):
        what = f"{size:,} parameters"
    elif isinstance(elements, int):
        what = f"{size!s} ({elements:,} parameters)"
    else:
        what = f"size {size!s}"
    figure.suptitle(
        f"Optimizer step throughput: {dtype}, {what}, {threads} "
        f"thread(s)" + (f"\n{machine}" if machine else ""),
        fontsize=9,
    )
    if path is not None:
        save_figure(figure, path, colors)
    return figure
