"""The gallery's settings: which rules it shows, each rule's learning rate on each surface,
each surface's step budget, and the learning rates of the guide's sweep.

The learning rates are part of each rule's declaration (`gallery_lr` in
gdfast/catalogue/rules/<rule>.py); GALLERY_LR is their table, surface by surface.
"""

from __future__ import annotations

from ..catalogue import spec_rules
from .surfaces import SURFACES

__all__ = ["RULE_NAMES", "ADAPTIVE_RULES", "GALLERY_LR", "TUNED_SURFACES", "LR_GRID", "BUDGET"]

# The rules of SPEC.md's table, in the catalogue's order (AdamW, a named variant of Adam, apart).
RULE_NAMES: tuple[str, ...] = tuple(rule.rule for rule in spec_rules())
# Those with a per-element adaptive step size (their declarations' `adaptive`).
ADAPTIVE_RULES: tuple[str, ...] = tuple(rule.rule for rule in spec_rules() if rule.adaptive)

# Learning rate of each rule on each surface, for the gallery.  On Beale, Rosenbrock and
# the ravine: the middle of the rule's working range in the sweep over LR_GRID within
# BUDGET (see gdfast.gallery.sweeps.middle_learning_rate), as measured by
# `scripts/make_guide.py`, which checks this table against its sweep.  On the saddle: one
# common rate, 0.01, to compare the rules at the same step size (Adadelta, whose lr is only
# a multiplier, at its 1.0).  Other hyper-parameters are the SPEC.md defaults.
GALLERY_LR: dict[str, dict[str, float]] = {
    surface: {rule.rule: rule.gallery_lr[surface] for rule in spec_rules()} for surface in SURFACES
}
# The surfaces whose rates come from the sweep (the saddle's are one common rate).
TUNED_SURFACES: tuple[str, ...] = ("beale", "rosenbrock", "ravine")
# Learning rates of the sweep: half-decades from 1e-4 to 10.
LR_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
# Step budget of each surface, for the gallery and the guide.
BUDGET: dict[str, int] = {"beale": 10000, "rosenbrock": 10000, "saddle": 3000, "ravine": 3000}
