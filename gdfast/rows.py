"""Row-sparse gradients: `RowGrad(indices, values)` for a 2-D parameter (an embedding table).

    table = np.zeros((n_rows, dim), dtype=np.float32)
    opt = gdfast.Adam([table], lr=1e-3)
    opt.step([gdfast.RowGrad(indices, values)])   # values[i] is the gradient of row indices[i]

SGD, Momentum, Adagrad, RMSprop and Adam (gdfast and gdfast.reference) accept a RowGrad
as an entry of `step(grads)`.  The update is *lazy* (like torch.optim.SparseAdam):

- duplicate indices are summed first (g_r = Σ values[i] over indices[i] = r, added to 0 in
  the order they occur, as numpy.add.at does), so a row named twice gets one update;
- each distinct row r named gets the rule's update with g_r, exactly the element math of
  the dense step (a RowGrad naming every row once equals the dense step, bitwise);
- every other row, and its state (velocity, G, E_g, m, v, ...), is neither read nor
  written: its state does not decay, its parameter does not move (where a dense step
  with a zero gradient would still move it under momentum, say);
- the step count t is the parameter's: `opt.steps` counts the step calls that gave the
  parameter a gradient (dense or RowGrad, empty ones included).  Adam's bias corrections
  1 − β1^t and 1 − β2^t, Adagrad's η_t and Momentum's undamped first step use that t,
  not a per-row count, as torch.optim.SparseAdam does; a row first named at step t > 1
  therefore starts from m = v = 0 with the corrections of step t.

Options without a lazy meaning are refused with a TypeError at `step`: weight_decay > 0
(L2 or decoupled: it would decay only the rows named).  Other rules refuse RowGrad too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validation as check

__all__ = ["RowGrad"]


@dataclass(frozen=True, eq=False)
class RowGrad:
    """The gradient of some rows of a 2-D parameter of shape (n_rows, dim).

    Parameters
    ----------
    indices : ndarray of integers, shape (k,)
        Row numbers in [0, n_rows), any order, repeats allowed (summed).  `step`
        copies them first and checks the copy against the parameter, so another thread
        changing this array meanwhile cannot make the step write outside the parameter.
    values : ndarray of float32 or float64, shape (k, dim)
        values[i] is the gradient of row indices[i]; the parameter's dtype.  Not
        copied unless it is not C-contiguous; it must not share memory with the
        parameter or the optimizer's state.
    """

    indices: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        indices, values = self.indices, self.values
        if not isinstance(indices, np.ndarray):
            raise TypeError(
                f"indices: expected a numpy.ndarray of integers, got {type(indices).__name__}"
            )
        check.not_masked("indices", indices)
        if indices.dtype == np.bool_ or not np.issubdtype(indices.dtype, np.integer):
            raise TypeError(f"indices: expected an integer dtype, got {indices.dtype}")
        if indices.ndim != 1:
            raise ValueError(f"indices: expected a 1-D array, got shape {indices.shape}")
        if not isinstance(values, np.ndarray):
            raise TypeError(f"values: expected a numpy.ndarray, got {type(values).__name__}")
        check.not_masked("values", values)
        if values.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(
                f"values: dtype {values.dtype} is not supported; expected float32 "
                "or float64 (native byte order)"
            )
        if values.ndim != 2 or values.shape[0] != indices.shape[0]:
            raise ValueError(
                f"values: expected shape ({indices.shape[0]}, dim), one row per "
                f"index, got {values.shape}"
            )

    def __repr__(self) -> str:
        return (
            f"RowGrad({self.indices.shape[0]} index(es), values {self.values.shape} "
            f"{self.values.dtype})"
        )
