"""The rule catalogue: every update rule declared once, with no compiled code needed.

Each rule is one declaration (a `Rule` subclass in gdfast/catalogue/rules/<rule>.py, next
to its NumPy core): hyper-parameters with defaults, checks and presets per convention, its
state entries, its equations (the docstring), the name of its C kernel (its entry of
gd_rules[], src_c/kernels.c), its place in the catalogue's order, its torch.optim
counterpart and its gallery settings.  The backends are derived from CATALOGUE:
gdfast.optim binds each declaration to its C kernel, and gdfast.reference to its NumPy
core; gdfast.torch, gdfast.bench, gdfast.gallery and the tests read the declarations.

Adding a rule (CONTRIBUTING.md): its C file (src_c/rules/<rule>.inc, ending with its
GD_RULE line), its module in gdfast/catalogue/rules/ (NumPy core + declaration, with its
catalogue_order), its row in tests/rules_table.py.  CATALOGUE finds the module by itself.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

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
from . import rules


def _declarations(package: ModuleType = rules) -> tuple[type[Rule], ...]:
    """Every declaration of the modules of `package` (gdfast/catalogue/rules/): each `Rule`
    subclass with a `rule` name defined there, in the order of their `catalogue_order` (the order
    of the command lines, the tables and the docs).  A module there without a declaration
    (but a private one, _name.py), or a declaration without its own catalogue_order, or
    two with the same, is refused here, at import."""
    found: list[type[Rule]] = []
    for module_info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if module_info.name.rpartition(".")[2].startswith("_"):
            continue
        module = importlib.import_module(module_info.name)
        declared = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Rule)
            and value.__module__ == module.__name__
            and value.rule
        ]
        if not declared:
            raise ImportError(f"{module.__name__}: no rule declared (a Rule subclass)")
        for rule in declared:
            if not isinstance(vars(rule).get("catalogue_order"), int):
                raise TypeError(f"{rule.__name__}: no catalogue_order (an int) in its class body")
        found += declared
    found.sort(key=lambda rule: vars(rule)["catalogue_order"])
    for before, after in zip(found, found[1:]):
        if vars(before)["catalogue_order"] == vars(after)["catalogue_order"]:
            raise TypeError(f"{before.__name__} and {after.__name__}: the same catalogue_order")
    return tuple(found)


# Every declaration, in the catalogue's order: nothing to list here (a new rule is its module
# in gdfast/catalogue/rules/, its declaration with the next catalogue_order).
CATALOGUE: tuple[type[Rule], ...] = _declarations()

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
