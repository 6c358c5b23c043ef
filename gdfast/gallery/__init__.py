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

from .runs import (
    BACKENDS,
    LIMIT,
    Trajectory,
    format_hyperparameters,
    gallery_hyperparameters,
    rule_class,
    run,
    run_all,
)
from .settings import ADAPTIVE_RULES, BUDGET, GALLERY_LR, LR_GRID, RULE_NAMES, TUNED_SURFACES
from .surfaces import (
    BEALE,
    RAVINE,
    RAVINE_CURVATURE,
    ROSENBROCK,
    SADDLE,
    SURFACES,
    Surface,
    get as get_surface,
)
from .sweeps import SweepPoint, best_learning_rate, middle_learning_rate, sweep, working_range

__all__ = [
    "Surface",
    "BEALE",
    "ROSENBROCK",
    "SADDLE",
    "RAVINE",
    "RAVINE_CURVATURE",
    "SURFACES",
    "get_surface",
    "RULE_NAMES",
    "ADAPTIVE_RULES",
    "GALLERY_LR",
    "TUNED_SURFACES",
    "LR_GRID",
    "BUDGET",
    "LIMIT",
    "BACKENDS",
    "Trajectory",
    "format_hyperparameters",
    "rule_class",
    "run",
    "gallery_hyperparameters",
    "run_all",
    "SweepPoint",
    "sweep",
    "best_learning_rate",
    "working_range",
    "middle_learning_rate",
]
