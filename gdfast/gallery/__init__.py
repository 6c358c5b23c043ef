"""The gallery: the update rules at work on four two-dimensional test surfaces, as data.

    from gdfast import gallery, viz
    paths = gallery.run_all("beale")        # one Trajectory per rule, at its gallery lr
    viz.plot_trajectories("beale", paths, "beale.png")

    surfaces  the four losses J(x, y) with their gradients, start points, windows, targets
    settings  the rules shown, each rule's learning rate per surface (from its declaration's
              `gallery_lr`), each surface's step budget, the sweep's learning rates
    runs      run: one rule on one surface, the path kept (Trajectory); run_all: every rule
    sweeps    sweep: one rule over the learning rates; the best rate, the working range

Pure NumPy and the optimizers; the pictures are gdfast.viz's, the command line
`python -m gdfast plot`.
"""

from . import runs, settings, surfaces, sweeps
from .runs import *  # noqa: F403
from .settings import *  # noqa: F403
from .surfaces import *  # noqa: F403
from .sweeps import *  # noqa: F403

__all__ = [*surfaces.__all__, *settings.__all__, *runs.__all__, *sweeps.__all__]
