"""The optimizer `gdfast.fit` trains with: one built on the parameters, from a name, a class
or an instance."""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import numpy as np

from .. import optim, reference
from ..catalogue import Optimizer
from ..catalogue._policy import DEFAULTS as POLICY_DEFAULTS
from ..rule_names import canonical

__all__ = ["evaluation_modes", "make_optimizer", "OptimizerSpec"]

OptimizerSpec = Union[str, Optimizer, type]


def make_optimizer(
    optimizer: OptimizerSpec, params: np.ndarray | Sequence[np.ndarray], **hyperparameters: Any
) -> Optimizer:
    """The optimizer `fit` uses: an instance (checked to own `params`), a class, or a name.

    A name is a rule's name in any case ("adam", "AMSGrad"), or
    "reference.<name>" for gdfast.reference's NumPy implementation;
    `hyperparameters` go to the constructor: the rule's hyper-parameters and the dtype
    policy's keywords (state_dtype, master_weights, param_copy, rounding, seed, block_size:
    see gdfast.Adam), which the constructor checks as it does for any caller.
    """
    if isinstance(optimizer, Optimizer):
        if hyperparameters:
            raise TypeError(
                f"{', '.join(sorted(hyperparameters))}: hyper-parameters are for an "
                "optimizer given by name or class (and so is the dtype policy); set them on "
                "the optimizer object (e.g. opt.lr = 0.01), the policy when you build it "
                "(e.g. gdfast.Adam(params, state_dtype='bfloat16'))"
            )
        arrays = [params] if isinstance(params, np.ndarray) else list(params)
        if len(arrays) != len(optimizer.params) or any(
            a is not b for a, b in zip(arrays, optimizer.params)
        ):
            raise ValueError(
                "optimizer: it was built on other arrays than params; build it on "
                "the same list (gdfast.Adam(params)) or pass its name"
            )
        return optimizer
    if isinstance(optimizer, str):
        prefix, _, name = optimizer.strip().rpartition(".")
        if prefix.casefold() not in ("", "reference"):
            raise ValueError(
                f"optimizer: unknown name {optimizer!r}; expected a rule name or 'reference.<name>'"
            )
        try:
            rule = canonical(name)
        except ValueError as error:
            raise ValueError(f"optimizer: {error} (or 'reference.<name>')") from None
        cls = getattr(reference if prefix else optim, rule)
    elif isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        cls = optimizer
    else:
        raise TypeError(
            "optimizer: expected a gdfast optimizer, an optimizer class or a name "
            f"such as 'adam', got {type(optimizer).__name__}"
        )
    unknown = sorted(set(hyperparameters) - set(cls.hyperparameter_names) - set(POLICY_DEFAULTS))
    if unknown:
        raise TypeError(
            f"{', '.join(unknown)}: not a hyper-parameter of {cls.__name__} "
            f"(it takes {', '.join(cls.hyperparameter_names)}, and the dtype policy's "
            f"{', '.join(POLICY_DEFAULTS)})"
        )
    return cls(params, **hyperparameters)


def _nothing() -> None:
    pass


def evaluation_modes(optimizer: Optimizer) -> tuple[Callable[[], None], Callable[[], None]]:
    """(to train mode, to eval mode) of an optimizer whose parameters differ between the
    point the gradient is taken at and the model to evaluate (the Schedule-Free rules'
    `train()` and `eval()`); two no-ops for every other rule.  fit steps in train mode and
    evaluates, keeps the best parameters and returns in eval mode."""
    train, evaluate = getattr(optimizer, "train", None), getattr(optimizer, "eval", None)
    if callable(train) and callable(evaluate):
        return train, evaluate
    return _nothing, _nothing
