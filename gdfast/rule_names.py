"""One spelling of the rule names, read case-insensitively everywhere.

The canonical names are the classes' names (``gdfast.optim.OPTIMIZERS``: "SGD", "Adam",
"AdaMax", "AMSGrad", ...).  Every command line (bench --rules, train --optimizer, plot
--rules, demo --rules) and ``gdfast.fit`` accept them in any case: "adam", "ADAM", "Adam".
"""

from __future__ import annotations

import argparse

from . import optim


def rule_names() -> tuple[str, ...]:
    """The canonical names, in the catalogue's order."""
    return tuple(cls.__name__ for cls in optim.OPTIMIZERS)


def canonical(name: str) -> str:
    """The canonical spelling of a rule name given in any case; ValueError if unknown."""
    if not isinstance(name, str):
        raise TypeError(f"rule name: expected a str, got {type(name).__name__}")
    by_key = {rule.casefold(): rule for rule in rule_names()}
    rule = by_key.get(name.strip().casefold())
    if rule is None:
        raise ValueError(
            f"unknown rule {name!r}; expected one of {', '.join(rule_names())} (any case)"
        )
    return rule


def parse_list(text: str, allow_all: bool = True) -> list[str]:
    """argparse type: comma-separated rule names in any case (or "all"), canonical spelling."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if allow_all and [item.casefold() for item in items] == ["all"]:
        return list(rule_names())
    try:
        if not items:
            raise ValueError("no rule given")
        return [canonical(item) for item in items]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{error}; a comma-separated list{' or all' if allow_all else ''}"
        ) from None
