"""Pictures of the optimizers: trajectories on contour plots, GIFs, loss curves, benchmark bars.

Needs the optional extra `viz` (matplotlib and Pillow: `pip install 'gdfast[viz]'`),
imported only when a function here is called.  Figures are drawn on matplotlib's Agg
canvas without pyplot, so nothing here touches a display or pyplot's global state.

Sizes are in pixels, (width, height); a file written has exactly that size.
Every figure names its hyper-parameters in its title or legend.

    from gdfast import trajectories, viz
    paths = trajectories.run_all("beale")
    viz.plot_trajectories("beale", paths, "beale.png")
    viz.animate_trajectories("beale", paths, "beale.gif")
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from . import surfaces as _surfaces
from .trajectories import RULE_NAMES, SweepPoint, Trajectory

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

Size = tuple[int, int]
PathLike = str | os.PathLike

# One colour per rule, the same in every figure (matplotlib's tab10).
RULE_COLORS: dict[str, str] = dict(
    zip(
        RULE_NAMES,
        (
            "#1f77b4",
            "#ff7f0e",
            "#2ca02c",
            "#d62728",
            "#9467bd",
            "#8c564b",
            "#e377c2",
            "#7f7f7f",
            "#bcbd22",
            "#17becf",
        ),
    )
)
_DPI = 100


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gdfast.viz needs matplotlib and Pillow: pip install 'gdfast[viz]'"
        ) from error
    return matplotlib, Figure, FigureCanvasAgg


def _check_size(size: Any, name: str = "size") -> Size:
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 50 for v in size)
    ):
        raise ValueError(
            f"{name}: expected (width, height) in pixels, two ints >= 50, got {size!r}"
        )
    return int(size[0]), int(size[1])


def new_figure(size: Size = (800, 600)) -> "Figure":
    """An empty matplotlib Figure of `size` pixels on an Agg canvas (no pyplot)."""
    width, height = _check_size(size)
    _, Figure, FigureCanvasAgg = _matplotlib()
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def _prepare(path: PathLike) -> str:
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def save_figure(figure: "Figure", path: PathLike, colors: int | None = None) -> str:
    """Write `figure` to `path` (format from the extension) at its own pixel size.

    With `colors`, a PNG is written with a palette of that many colours (2 to 256):
    a fraction of the size, for files kept in the repository.
    """
    path = _prepare(path)
    if colors is None:
        figure.savefig(path, dpi=_DPI)
        return path
    _check_colors(colors)
    if not path.lower().endswith(".png"):
        raise ValueError(f"path: a palette image needs a .png file, got {path!r}")
    from PIL import Image

    image = Image.fromarray(_rgb_frame(figure))
    image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    return path


def _check_colors(colors: Any) -> None:
    if isinstance(colors, bool) or not isinstance(colors, int) or not 2 <= colors <= 256:
        raise ValueError(f"colors: expected an int in [2, 256], got {colors!r}")


def _rgb_frame(figure: "Figure") -> np.ndarray:
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


# ------------------------------------------------------------- trajectories


def _draw_contours(axes, surface: _surfaces.Surface) -> None:
    from matplotlib.colors import LogNorm

    grid_x, grid_y, values = surface.grid(300)
    if surface.log_contours:
        low = max(float(np.min(values[values > 0])), 1e-3)
        levels = np.logspace(math.log10(low), math.log10(float(np.max(values))), 25)
        axes.contour(
            grid_x,
            grid_y,
            values,
            levels=levels,
            norm=LogNorm(),
            cmap="Greys_r",
            linewidths=0.6,
            alpha=0.6,
        )
    else:
        axes.contour(grid_x, grid_y, values, levels=25, cmap="Greys_r", linewidths=0.6, alpha=0.6)
    if surface.minimum is not None:
        axes.plot(*surface.minimum, marker="*", color="black", markersize=12, linestyle="none")
    axes.plot(*surface.start, marker="o", color="black", markersize=4, linestyle="none")
    axes.set_xlim(surface.xlim)
    axes.set_ylim(surface.ylim)
    axes.set_xlabel("x")
    axes.set_ylabel("y")


def _legend_label(path: Trajectory) -> str:
    arrived = path.steps_to()
    verdict = f"{arrived} steps" if arrived is not None else "not within budget"
    return f"{path.label}  [{verdict}]"


def _trajectory_title(surface: _surfaces.Surface, paths: Sequence[Trajectory]) -> str:
    budget = max((p.steps for p in paths), default=0)
    target = (
        f"J ≤ {surface.target:g}"
        if surface.minimum is not None
        else f"J ≤ {surface.target:g} (escaped)"
    )
    return (
        f"{surface.name}: J = {surface.formula}\nstart {surface.start}, up to {budget} "
        f"steps; legend: hyper-parameters [steps to {target}]"
    )


def _check_paths(surface: _surfaces.Surface, trajectories: Sequence[Trajectory]) -> None:
    for index, path in enumerate(trajectories):
        if not isinstance(path, Trajectory):
            raise TypeError(
                f"trajectories[{index}]: expected a Trajectory, got {type(path).__name__}"
            )
        if path.surface.name != surface.name:
            raise ValueError(
                f"trajectories[{index}]: ran on {path.surface.name!r}, not on {surface.name!r}"
            )


def _trajectory_axes(
    figure: "Figure", surface: _surfaces.Surface, trajectories: Sequence[Trajectory]
):
    # The contour plot on the left, the legend (labels carry the hyper-parameters) on the right.
    axes = figure.add_axes((0.08, 0.1, 0.5, 0.76))
    _draw_contours(axes, surface)
    lines = []
    for path in trajectories:
        (line,) = axes.plot(
            path.points[:, 0],
            path.points[:, 1],
            color=RULE_COLORS.get(path.rule, "black"),
            linewidth=1.2,
            label=_legend_label(path),
        )
        lines.append(line)
    figure.legend(
        handles=lines, loc="center left", bbox_to_anchor=(0.6, 0.5), fontsize=6.5, frameon=False
    )
    figure.suptitle(_trajectory_title(surface, trajectories), fontsize=8)
    return axes, lines


def plot_trajectories(
    surface: str | _surfaces.Surface,
    trajectories: Sequence[Trajectory],
    path: PathLike | None = None,
    size: Size = (900, 520),
    colors: int | None = None,
) -> "Figure":
    """Contours of `surface` with every trajectory's path; written to `path` if given
    (with a palette of `colors` colours if given, see `save_figure`).

    The legend gives each rule's hyper-parameters and the steps it took to the
    surface's target.
    """
    surface = _surfaces.get(surface)
    _check_paths(surface, trajectories)
    figure = new_figure(size)
    _trajectory_axes(figure, surface, trajectories)
    if path is not None:
        save_figure(figure, path, colors)
    return figure


def frame_steps(longest: int, frames: int) -> np.ndarray:
    """Step indices shown by the frames of an animation: log-spaced from 0 to `longest`
    (fast rules arrive in tens of steps, slow ones take thousands), no repeats."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames: expected an int >= 2, got {frames!r}")
    steps = np.unique(np.round(np.geomspace(1, longest + 1, frames)).astype(int) - 1)
    return steps


def animate_trajectories(
    surface: str | _surfaces.Surface,
    trajectories: Sequence[Trajectory],
    path: PathLike,
    size: Size = (720, 420),
    frames: int = 40,
    frame_ms: int = 120,
    colors: int = 64,
) -> str:
    """An animated GIF of the trajectories growing over log-spaced steps; returns the path.

    `colors` is the GIF palette size (fewer: smaller file).  The last frame is held
    three times as long.
    """
    from PIL import Image

    surface = _surfaces.get(surface)
    _check_paths(surface, trajectories)
    if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or frame_ms < 10:
        raise ValueError(f"frame_ms: expected an int >= 10, got {frame_ms!r}")
    _check_colors(colors)
    figure = new_figure(size)
    _, lines = _trajectory_axes(figure, surface, trajectories)
    heads = [
        figure.axes[0].plot(
            [], [], marker="o", markersize=4, color=line.get_color(), linestyle="none"
        )[0]
        for line in lines
    ]
    counter = figure.axes[0].text(
        0.02, 0.96, "", transform=figure.axes[0].transAxes, fontsize=8, va="top"
    )
    images = []
    for step in frame_steps(max(p.steps for p in trajectories) if trajectories else 0, frames):
        for trajectory, line, head in zip(trajectories, lines, heads):
            shown = trajectory.points[: step + 1]
            line.set_data(shown[:, 0], shown[:, 1])
            head.set_data(shown[-1:, 0], shown[-1:, 1])
        counter.set_text(f"step {step}")
        images.append(Image.fromarray(_rgb_frame(figure)))
    # One palette for all frames keeps the colours steady and the file small.
    palette = images[-1].quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    frames_p = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    durations = [frame_ms] * (len(frames_p) - 1) + [frame_ms * 3]
    path = _prepare(path)
    frames_p[0].save(
        path, save_all=True, append_images=frames_p[1:], duration=durations, loop=0, optimize=True
    )
    return path


# -------------------------------------------------------------- loss curves


def history_series(history: Any) -> dict[str, list[float]]:
    """The numeric series of a training history, by name.

    Accepts a list of per-epoch dicts ([{"epoch": 1, "train_loss": ..., ...}, ...]),
    a dict of lists ({"train_loss": [...], ...}), an object with an `as_dict()`
    method returning one (gdfast.training.History), or an object with either as its
    `history` or `records` attribute.  A series with any non-numeric entry is dropped.
    """
    if hasattr(history, "as_dict") and not isinstance(history, (dict, list, tuple)):
        history = history.as_dict()  # gdfast.training.History
    for attribute in ("history", "records"):
        if hasattr(history, attribute) and not isinstance(history, (dict, list, tuple)):
            history = getattr(history, attribute)
            break
    if isinstance(history, Mapping):
        series = {
            str(k): list(v) for k, v in history.items() if isinstance(v, (list, tuple, np.ndarray))
        }
    elif isinstance(history, (list, tuple)) and all(isinstance(r, Mapping) for r in history):
        keys = [k for k in (history[0] if history else {})]
        series = {str(k): [record.get(k) for record in history] for k in keys}
    else:
        raise TypeError(
            "history: expected a list of per-epoch dicts or a dict of lists, "
            f"got {type(history).__name__}"
        )
    numeric = {}
    for name, values in series.items():
        if (
            all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
            and values
        ):
            numeric[name] = [float(v) for v in values]
    return numeric


def plot_loss_curves(
    curves: Mapping[str, Sequence[float]] | Sequence[Trajectory],
    path: PathLike | None = None,
    size: Size = (800, 500),
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "loss",
    log: bool = True,
    styles: Mapping[str, str] | None = None,
    ylim: tuple[float | None, float | None] | None = None,
    first_x: int = 0,
    colors: int | None = None,
) -> "Figure":
    """Loss against step (or epoch), one line per entry.

    `curves` maps a label to its losses (index = step), or is a list of Trajectory,
    labelled with their rule and hyper-parameters.  For a loss that goes negative
    (the saddle) a symmetric log scale is used.  `styles` maps labels to line styles;
    `ylim` = (bottom, top) bounds the loss axis (None: free); `first_x` is the x of
    each curve's first value (0 for steps from the start, 1 for epochs).
    `title` should carry the hyper-parameters when the labels do not.
    """
    if not isinstance(curves, Mapping):
        paths = list(curves)
        for index, trajectory in enumerate(paths):
            if not isinstance(trajectory, Trajectory):
                raise TypeError(
                    f"curves[{index}]: expected a Trajectory, got {type(trajectory).__name__}"
                )
        line_colors = {t.label: RULE_COLORS.get(t.rule) for t in paths}
        curves = {t.label: t.values for t in paths}
    else:
        line_colors = {label: RULE_COLORS.get(label.split()[0]) for label in curves}
    figure = new_figure(size)
    axes = figure.add_axes((0.1, 0.12, 0.55, 0.76))
    lowest = math.inf
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"curves[{label!r}]: expected a 1-D sequence of losses")
        finite = values[np.isfinite(values)]
        lowest = min(lowest, float(finite.min()) if finite.size else math.inf)
        axes.plot(
            first_x + np.arange(len(values)),
            values,
            label=label,
            color=line_colors.get(label),
            linestyle=(styles or {}).get(label, "-"),
            linewidth=1.2,
        )
    if log:
        if lowest > 0:
            axes.set_yscale("log")
        else:
            axes.set_yscale("symlog", linthresh=1e-3)
    if ylim is not None:
        bottom, top = ylim
        if axes.get_yscale() == "log" and bottom is not None and bottom <= 0:
            bottom = None  # every loss was positive: a log axis has no room for it
        axes.set_ylim(bottom, top)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    figure.legend(loc="center left", bbox_to_anchor=(0.67, 0.5), fontsize=6.5, frameon=False)
    figure.suptitle(title, fontsize=8)
    if path is not None:
        save_figure(figure, path, colors)
    return figure


def plot_histories(
    histories: Mapping[str, Any],
    path: PathLike | None = None,
    size: Size = (800, 500),
    title: str = "",
    keys: Sequence[str] = ("train_loss", "val_loss"),
    colors: int | None = None,
) -> "Figure":
    """Loss per epoch from training histories (label → history, see `history_series`):
    one colour per label, solid for the first key, dashed for the second, and so on."""
    curves: dict[str, list[float]] = {}
    styles: dict[str, str] = {}
    dashes = ("-", "--", ":", "-.")
    for label, history in histories.items():
        series = history_series(history)
        for index, key in enumerate(keys):
            if key in series:
                curves[f"{label} {key}"] = series[key]
                styles[f"{label} {key}"] = dashes[index % len(dashes)]
    if not curves:
        raise ValueError(f"histories: none has any of the series {list(keys)}")
    return plot_loss_curves(
        curves,
        path,
        size=size,
        title=title,
        xlabel="epoch",
        styles=styles,
        first_x=1,
        colors=colors,
    )


# ---------------------------------------------------------------- benchmark


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
    handles = []
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


# ------------------------------------------------------------------- sweeps


def plot_sweep(
    results: Mapping[str, Sequence[SweepPoint]],
    path: PathLike | None = None,
    size: Size = (720, 420),
    title: str = "",
    colors: int | None = None,
) -> "Figure":
    """A rule × learning-rate grid: steps to the target in each cell, blank where the run
    did not converge (never arrived, or did not stay).  `results` maps a rule to its sweep.
    """
    from matplotlib.colors import LogNorm

    rules = list(results)
    if not rules:
        raise ValueError("results: expected at least one rule's sweep")
    rates = [point.lr for point in results[rules[0]]]
    grid = np.full((len(rules), len(rates)), np.nan)
    for row, rule in enumerate(rules):
        if [point.lr for point in results[rule]] != rates:
            raise ValueError(
                f"results[{rule!r}]: its learning rates differ from results[{rules[0]!r}]'s"
            )
        for column, point in enumerate(results[rule]):
            if point.converged:
                grid[row, column] = max(point.steps_to, 1)
    figure = new_figure(size)
    axes = figure.add_axes((0.13, 0.14, 0.72, 0.74))
    finite = grid[np.isfinite(grid)]
    norm = LogNorm(vmin=1, vmax=max(float(finite.max()), 2.0)) if finite.size else None
    image = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", norm=norm, aspect="auto")
    for row in range(len(rules)):
        for column in range(len(rates)):
            if np.isfinite(grid[row, column]):
                axes.text(
                    column,
                    row,
                    f"{int(grid[row, column])}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if grid[row, column] > 30 else "black",
                )
    axes.set_xticks(range(len(rates)))
    axes.set_xticklabels([f"{lr:g}" for lr in rates], fontsize=7)
    axes.set_yticks(range(len(rules)))
    axes.set_yticklabels(rules, fontsize=7)
    axes.set_xlabel(
        "learning rate (Adadelta: its multiplier); other hyper-parameters: SPEC.md defaults",
        fontsize=7,
    )
    colorbar_axes = figure.add_axes((0.87, 0.14, 0.025, 0.74))
    figure.colorbar(image, cax=colorbar_axes).set_label(
        "steps (blank: did not converge)", fontsize=7
    )
    figure.suptitle(title, fontsize=8)
    if path is not None:
        save_figure(figure, path, colors)
    return figure
