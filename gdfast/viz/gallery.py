"""The set of figures `python -m gdfast plot --out DIR` writes (its --help lists the files):
per surface the paths on the contours, the loss per step and the animation; the
benchmark's chart; training histories' curves.

Each rule runs with its gallery learning rate (gdfast.gallery.GALLERY_LR, from each rule's declaration) and the
SPEC.md defaults for the rest.
"""

from __future__ import annotations

import json
import os

from .. import gallery
from .benchmark import plot_benchmark
from .curves import plot_histories, plot_loss_curves
from .figures import save_figure
from .surface_plots import animate_trajectories, plot_trajectories

__all__ = ["write_figures", "SIZE"]

SIZE = (960, 500)


def write_figures(
    out: str,
    names: list[str],
    steps: int | None = None,
    gif: bool = False,
    size: tuple[int, int] = SIZE,
    frames: int = 30,
    colors: int | None = 64,
    bench: str | None = None,
    history: str | None = None,
    loss: bool = True,
    rules: list[str] | None = None,
) -> list[str]:
    """Write the figures into `out` (see gdfast.cli.plot for the files); return their paths.

    `steps` overrides each surface's budget; `colors` is the palette size of the PNGs
    and GIFs (None: full-colour PNGs); loss=False skips the SURFACE_loss.png files;
    `rules`: the rules drawn (canonical names; default all ten).
    """
    written = []
    for name in names:
        surface = gallery.surfaces.get(name)
        paths = gallery.run_all(surface, steps, rules or gallery.RULE_NAMES)
        figure = plot_trajectories(surface, paths, size=size)
        written.append(save_figure(figure, os.path.join(out, f"{name}.png"), colors))
        if loss:
            figure = plot_loss_curves(
                paths,
                size=size,
                title=f"{name}: J = {surface.formula}, start {surface.start}; "
                f"legend: hyper-parameters (other than lr: SPEC.md defaults)",
                # Escaping the saddle sends J to -inf; the story is over well before -100.
                ylim=None if surface.minimum is not None else (-100.0, None),
            )
            written.append(save_figure(figure, os.path.join(out, f"{name}_loss.png"), colors))
        if gif:
            written.append(
                animate_trajectories(
                    surface,
                    paths,
                    os.path.join(out, f"{name}.gif"),
                    size=size,
                    frames=frames,
                    colors=colors or 256,
                )
            )
    if bench is not None:
        figure = plot_benchmark(bench, figure_size=size)
        written.append(save_figure(figure, os.path.join(out, "bench.png"), colors))
    if history is not None:
        with open(history, encoding="utf-8") as handle:
            histories = json.load(handle)
        if not isinstance(histories, dict):
            raise ValueError(
                f"--history: expected a JSON object mapping a label to a "
                f"history, got {type(histories).__name__}"
            )
        figure = plot_histories(
            histories, size=size, title=f"training histories from {os.path.basename(history)}"
        )
        written.append(save_figure(figure, os.path.join(out, "history.png"), colors))
    return written
