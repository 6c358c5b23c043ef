"""The rule catalogue: every update rule declared once, with no compiled code needed.

Each rule is one declaration (a `Rule` subclass in gdfast/catalogue/rules/<rule>.py, next
to its NumPy core): hyper-parameters with defaults, checks and presets per convention, its
state entries, its equations (the docstring), the name of its C kernel (gd_rules[] in
src_c/kernels.c), its torch.optim counterpart and its gallery settings.  The backends are
derived from CATALOGUE: gdfast.optim binds each declaration to its C kernel, and
gdfast.reference to its NumPy core; gdfast.torch, gdfast.bench, gdfast.gallery and
the tests read the declarations.

Adding a rule (CONTRIBUTING.md): its C file and its line in gd_rules[], its module here
(NumPy core + declaration), its line in CATALOGUE below, its row in tests/rules_table.py.
"""

from __future__ import annotations

from ._machinery import (
    MAX_STEPS,
    Hyperparameter,
    Optimizer,
    Rule,
    TorchEquivalent,
    bind_backend,
    convert_state,
    row_sparse_rules,
)
from .rules.adadelta import Adadelta
from .rules.adagrad import Adagrad
from .rules.adam import Adam, AdamW
from .rules.adamax import AdaMax
from .rules.amsgrad import AMSGrad
from .rules.asgd import ASGD
from .rules.lion import Lion
from .rules.momentum import Momentum, Nesterov
from .rules.nadam import Nadam
from .rules.radam import RAdam
from .rules.rmsprop import RMSprop
from .rules.rprop import Rprop
from .rules.sgd import SGD

# ---- imports of LAMB and Adafactor (issue 15) ----
# ---- imports of Schedule-Free and Muon (issue 15) ----
from .rules.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD

# Every declaration, in the catalogue's order (the order of the command lines, the tables
# and the docs).  One line per rule.
CATALOGUE: tuple[type[Rule], ...] = (
    SGD,
    Momentum,
    Nesterov,
    Adagrad,
    Adadelta,
    RMSprop,
    Adam,
    AdamW,
    AdaMax,
    Nadam,
    AMSGrad,
    Lion,
    RAdam,
    Rprop,
    ASGD,
    # ---- LAMB and Adafactor (issue 15) ----
    # ---- Schedule-Free and Muon (issue 15) ----
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
)

__all__ = [
    "CATALOGUE",
    "MAX_STEPS",
    "Hyperparameter",
    "Optimizer",
    "Rule",
    "TorchEquivalent",
    "bind_backend",
    "convert_state",
    "row_sparse_rules",
    "rules",
]


def by_name(name: str) -> type[Rule]:
    """The declaration of the rule named `name` (exact spelling)."""
    for rule in CATALOGUE:
        if rule.rule == name:
            return rule
    raise KeyError(name)


def spec_rules() -> tuple[type[Rule], ...]:
    """The rules of SPEC.md's table, without the named variants (AdamW)."""
    return tuple(rule for rule in CATALOGUE if rule.variant_of is None)
