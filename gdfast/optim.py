"""gdfast's optimizers: every declaration of gdfast.catalogue on its C kernel.

`CLASSES` holds a class per declaration (gdfast.SGD ... gdfast.AMSGrad, AdamW included),
`OPTIMIZERS` the ten rules of SPEC.md's table (AdamW, a named variant of Adam, apart),
`KERNELS` each rule's C functional core by rule name (`kernel`: a gdfast._kernels.Kernel,
or what the rule's `bind_core` makes of it), the core the classes and gdfast.torch call.
"""

from __future__ import annotations

import functools
from typing import Any

from . import _build_check  # noqa: F401  (first: a clear ImportError when the extension is not built)
from . import _kernels
from .catalogue import CATALOGUE, Rule, bind_backend


def kernel(rule: type[Rule]) -> Any:
    """The C functional core of a declaration: its kernel (gdfast._kernels.Kernel) as the
    rule's `bind_core` binds it (a two-pass rule's TwoPassKernel, Adafactor's moments
    around it).  The one place a rule's C core is made."""
    return rule.bind_core(
        _kernels.Kernel(rule.kernel, rule.kernel_fields(), rule.state_layout, rule.scalar_state)
    )


KERNELS = {rule.rule: kernel(rule) for rule in CATALOGUE}

CLASSES: tuple[type[Rule], ...] = tuple(
    bind_backend(
        rule,
        KERNELS[rule.rule],
        "gdfast",
        KERNELS[rule.rule].rows if rule.rows else None,
        functools.partial(_kernels.FastStep, KERNELS[rule.rule]) if rule.elementwise else None,
    )
    for rule in CATALOGUE
)
globals().update({cls.__name__: cls for cls in CLASSES})

# The ten rules of SPEC.md (AdamW is Adam with one option fixed, listed apart).
OPTIMIZERS: tuple[type[Rule], ...] = tuple(cls for cls in CLASSES if cls.variant_of is None)

__all__ = [cls.__name__ for cls in CLASSES] + ["CLASSES", "OPTIMIZERS", "KERNELS", "kernel"]


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"module 'gdfast.optim' has no attribute {name!r}; its rules: "
        f"{', '.join(cls.__name__ for cls in CLASSES)}"
    )
