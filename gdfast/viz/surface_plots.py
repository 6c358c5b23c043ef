"""The optimizers on the test surfaces: paths on contour plots, their animation, and the
learning-rate sweep grid (gdfast.gallery computes what is drawn)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..gallery import surfaces as _surfaces
from ..gallery.runs import Trajectory
from ..gallery.sweeps import SweepPoint
from .figures import (
    RULE_COLORS,
    PathLike,
    Size,
    check_colors,
    new_figure,
    prepare_path,
    rgb_frame,
    save_figure,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_trajectories", "frame_steps", "animate_trajectories", "plot_sweep"]


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
    check_colors(colors)
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
        images.append(Image.fromarray(rgb_frame(figure)))
    # One palette for all frames keeps the colours steady and the file small.
    palette = images[-1].quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    frames_p = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    durations = [frame_ms] * (len(frames_p) - 1) + [frame_ms * 3]
    path = prepare_path(path)
    frames_p[0].save(
        path, save_all=True, append_images=frames_p[1:], duration=durations, loop=0, optimize=True
    )
    return path


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
            if point.converged and point.steps_to is not None:
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
