"""Pictures of the optimizers: trajectories on contour plots, GIFs, loss curves, benchmark bars.

Needs the optional extra `viz` (matplotlib and Pillow: `pip install 'gdfast[viz]'`),
imported only when a function here is called.  Figures are drawn on matplotlib's Agg
canvas without pyplot, so nothing here touches a display or pyplot's global state.

Sizes are in pixels, (width, height); a file written has exactly that size.
Every figure names its hyper-parameters in its title or legend.

    from gdfast import gallery, viz
    paths = gallery.run_all("beale")
    viz.plot_trajectories("beale", paths, "beale.png")
    viz.animate_trajectories("beale", paths, "beale.gif")

    figures         the canvas and the files: new_figure, save_figure, RULE_COLORS
    surface_plots   paths on the test surfaces, their animation, the learning-rate sweep grid
    curves          loss curves of trajectories and of training histories
    benchmark       the benchmark's GB/s chart
    gallery         the set of files `python -m gdfast plot` writes
"""

from .benchmark import load_benchmark, plot_benchmark
from .curves import history_series, plot_histories, plot_loss_curves
from .figures import RULE_COLORS, new_figure, save_figure
from .gallery import write_figures
from .surface_plots import animate_trajectories, frame_steps, plot_sweep, plot_trajectories

__all__ = [
    "new_figure",
    "save_figure",
    "RULE_COLORS",
    "plot_trajectories",
    "animate_trajectories",
    "frame_steps",
    "plot_sweep",
    "history_series",
    "plot_loss_curves",
    "plot_histories",
    "load_benchmark",
    "plot_benchmark",
    "write_figures",
]
