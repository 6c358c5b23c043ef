"""Loss curves: loss against step or epoch, from trajectories or training histories."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..gallery.runs import Trajectory
from .figures import RULE_COLORS, PathLike, Size, new_figure, save_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["history_series", "plot_loss_curves", "plot_histories"]


def history_series(history: Any) -> dict[str, list[float]]:
    """The numeric series of a training history, by name.

    Accepts a list of per-epoch dicts ([{"epoch": 1, "train_loss": ..., ...}, ...]),
    a dict of lists ({"train_loss": [...], ...}), an object with an `as_dict()`
    method returning one (gdfast.History), or an object with either as its
    `history` or `records` attribute.  A series with any non-numeric entry is dropped.
    """
    if hasattr(history, "as_dict") and not isinstance(history, (dict, list, tuple)):
        history = history.as_dict()  # gdfast.History
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
        curves = {t.label: list(t.values) for t in paths}
    else:
        line_colors = {label: RULE_COLORS.get(label.split()[0]) for label in curves}
    figure = new_figure(size)
    axes = figure.add_axes((0.1, 0.12, 0.55, 0.76))
    lowest = math.inf
    for label, series in curves.items():
        values = np.asarray(series, dtype=np.float64)
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
