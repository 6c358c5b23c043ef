"""Figures drawn on matplotlib's Agg canvas (no pyplot), written at an exact pixel size.

Needs the optional extra `viz` (matplotlib and Pillow: `pip install 'gdfast[viz]'`),
imported only when a figure is made.  Nothing here touches a display or pyplot's
global state.  Sizes are in pixels, (width, height); a file written has exactly that size.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..gallery.settings import RULE_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

Size = tuple[int, int]
PathLike = str | os.PathLike

# One colour per rule, the same in every figure (matplotlib's tab10, then tab20's light
# shades).
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
            # then tab20's light shades, rules 11 to 20
            "#aec7e8",
            "#ffbb78",
            "#98df8a",
            "#ff9896",
            "#c5b0d5",
            "#c49c94",
            "#f7b6d2",
            "#c7c7c7",
            "#dbdb8d",
            "#9edae5",
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


def prepare_path(path: PathLike) -> str:
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def save_figure(figure: "Figure", path: PathLike, colors: int | None = None) -> str:
    """Write `figure` to `path` (format from the extension) at its own pixel size.

    With `colors`, a PNG is written with a palette of that many colours (2 to 256):
    a fraction of the size, for files kept in the repository.
    """
    path = prepare_path(path)
    if colors is None:
        figure.savefig(path, dpi=_DPI)
        return path
    check_colors(colors)
    if not path.lower().endswith(".png"):
        raise ValueError(f"path: a palette image needs a .png file, got {path!r}")
    from PIL import Image

    image = Image.fromarray(rgb_frame(figure))
    image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    return path


def check_colors(colors: Any) -> None:
    if isinstance(colors, bool) or not isinstance(colors, int) or not 2 <= colors <= 256:
        raise ValueError(f"colors: expected an int in [2, 256], got {colors!r}")


def rgb_frame(figure: "Figure") -> np.ndarray:
    canvas: Any = figure.canvas  # the Agg canvas new_figure attached
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
