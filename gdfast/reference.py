"""The NumPy reference: SPEC.md section 1 in code, literal and slow.

Each function is the functional core of one rule, written next to the rule's
declaration (gdfast/catalogue/rules/<rule>.py) and gathered here.  It takes parallel
lists of the tensors that have a gradient this step (parameters, gradients, one list
per state buffer, the step count t of this update) and the hyper-parameters,
and updates parameters and state in place, line by line as SPEC.md writes the
rule.  (Step counts arrive as an int64 array; `map(int, steps)` keeps t a Python int,
so β^t is a Python float and float32 stays float32.)  The classes below are
the same classes as gdfast's (same signatures,
defaults, checks and state dicts) running on these functions; gdfast's C
kernels are tested against them.

Where SPEC.md leaves the order of a product open, the code takes torch.optim's:
(1 − ρ) g² is written (1 - rho) * g * g, and η g / D as lr * (g / D).

Arithmetic is IEEE non-stop, like the kernels: NaN and Inf propagate and no
floating-point warning is raised (whatever numpy.seterr says).  A float32
array combined with a Python float stays float32 (NumPy >= 2, NEP 50), so the
reference computes in the dtype of the parameters, as the kernels do.

Needs no compiled code: `import gdfast.reference` works where nothing was built.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .catalogue import CATALOGUE, Rule, bind_backend
from .catalogue.rules.momentum import nesterov_lookahead


def _row_form(core):
    """The row-sparse form of a dense core (gdfast.rows), written literally:

        rows, where = unique(indices);  g = zeros((len(rows), dim));  add.at(g, where, values)
        θ_rows, state_rows = θ[rows], state[rows]        (copies of the rows named)
        core([θ_rows], [g], [state_rows]..., [t])        (the rule's lines on those rows)
        θ[rows], state[rows] = θ_rows, state_rows

    Duplicate indices are summed into zeros in the order they occur; rows not named are
    neither read nor written (lazy); t is the parameter's step count."""

    @functools.wraps(core)
    def row_core(param, indices, values, *buffers_and_step, **hyper):
        *buffers, step = buffers_and_step
        rows, where = np.unique(indices, return_inverse=True)
        g = np.zeros((rows.size, param.shape[1]), dtype=param.dtype)
        np.add.at(g, where.reshape(-1), values)
        theta = param[rows]
        state = [buffer[rows] for buffer in buffers]
        core([theta], [g], *[[s] for s in state], np.array([step], dtype=np.int64), **hyper)
        param[rows] = theta
        for buffer, s in zip(buffers, state):
            buffer[rows] = s
        return rows.size

    row_core.__name__ = row_core.__qualname__ = f"{core.__name__}_rows"
    return row_core


# The functional cores by name (sgd, adam, ...) and their row forms (sgd_rows, ...).
CORES: dict[str, Any] = {rule.numpy_core.__name__: rule.numpy_core for rule in CATALOGUE}
ROW_CORES: dict[str, Any] = {
    f"{rule.numpy_core.__name__}_rows": _row_form(rule.numpy_core)
    for rule in CATALOGUE
    if rule.rows
}

# A class per declaration, as gdfast.optim's but on the NumPy cores.
CLASSES: tuple[type[Rule], ...] = tuple(
    bind_backend(
        rule,
        rule.numpy_core,
        __name__,
        ROW_CORES[f"{rule.numpy_core.__name__}_rows"] if rule.rows else None,
    )
    for rule in CATALOGUE
)
globals().update(CORES)
globals().update(ROW_CORES)
globals().update({cls.__name__: cls for cls in CLASSES})

__all__ = [cls.__name__ for cls in CLASSES] + list(CORES) + ["nesterov_lookahead"] + list(ROW_CORES)


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"module 'gdfast.reference' has no attribute {name!r}; its rules: "
        f"{', '.join(cls.__name__ for cls in CLASSES)}"
    )
