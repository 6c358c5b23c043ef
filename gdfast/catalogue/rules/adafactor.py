"""Adafactor (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory
Cost", Algorithm 4 with 5), as torch.optim.Adafactor (2.13).

The rule's NumPy core (docs/spec.md section 1.3 in code, part of gdfast.reference) and its
declaration (gdfast.catalogue).  The row and column sums of g² are C
in the C backend (adafactor_sums, in factored_sums's fixed order), the moments R and C (n + m
numbers) NumPy in both (`adafactor_moments`); the C kernel (src_c/rules/adafactor.inc, two
passes) forms U's scales block by block and does the element arithmetic and the per-tensor RMS in a
fixed order.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ... import _validation as check
from .schedule_free import lerp
from .._machinery import (
    PARAMS_DOC,
    Hyperparameter,
    Rule,
    Sweep,
    TorchEquivalent,
    two_pass_kernel,
)
from .._numpy_core import ieee_nonstop
from .lamb import fixed_order_norm, fixed_order_sum, scaled_gradient


def _rms(array):
    """√(Σx² / n), the sum in the fixed order (lamb.fixed_order_norm)."""
    return fixed_order_norm(array) / math.sqrt(array.size)


def factored_sums(g):
    """Σ_j g_ij² (shape [..., n, 1]) and Σ_i g_ij² ([..., 1, m]) of g [..., n, m], each g
    squared in float64: a row's sum in the fixed order (lamb.fixed_order_sum), a column's
    from +0.0 adding the rows in order.  src_c/rules/adafactor.inc's adafactor_sums sums
    in this order."""
    squares = np.square(g.astype(np.float64))
    row_sums = fixed_order_sum(squares)[..., np.newaxis]
    col_sums = np.zeros(g.shape[:-2] + (1, g.shape[-1]))
    for i in range(g.shape[-2]):
        col_sums = col_sums + squares[..., i : i + 1, :]
    return row_sums, col_sums


def adafactor_moments(g, row, col, full, t, *, beta2_decay, eps1, sums=factored_sums):
    """Spec 1.3's second moments updated in place with g: R and C (two or more dimensions;
    `sums(g)`: their sums of g², factored_sums or the kernel's) or V.  Returns, factored,
    V̂'s factors (1/√R_i, 1/√(C_j / max(mean(R), ε1))) (U_ij = g_ij min(their product,
    1/ε1)), or None (V̂ = V).  Shared by the reference and the kernel's core."""
    one_minus_beta2 = t**beta2_decay
    if g.ndim > 1:
        row_sums, col_sums = sums(g)
        row[...] = lerp(row, (row_sums / g.shape[-1]).astype(row.dtype), one_minus_beta2)
        col[...] = lerp(col, (col_sums / g.shape[-2]).astype(col.dtype), one_minus_beta2)
        denominator = np.maximum(row.mean(axis=-2, keepdims=True), eps1)
        return 1 / np.sqrt(row), 1 / np.sqrt(col / denominator)
    full[...] = lerp(full, g * g, one_minus_beta2)
    return None


def adafactor_eps1(eps, dtype):
    """ε1: the machine epsilon of the parameter's dtype when eps[0] is None."""
    return float(np.finfo(dtype).eps) if eps[0] is None else eps[0]


@ieee_nonstop
def adafactor(
    params,
    grads,
    row_var,
    col_var,
    variance,
    steps,
    *,
    lr,
    beta2_decay,
    eps,
    d,
    relative_step=True,
    scale_parameter=True,
    weight_decay=0.0,
    maximize=False,
    grad_scale=1.0,
):
    """Spec 1.3: factored second moments (row_var R, col_var C) for parameters of two or
    more dimensions (over the last two), the full one (variance V) for the others; the
    unused entries are arrays of size 0."""
    eps2 = eps[1]
    for theta, g, row, col, full, t in zip(
        params, grads, row_var, col_var, variance, map(int, steps)
    ):
        if theta.size == 0:
            continue
        g = scaled_gradient(g, maximize, grad_scale)
        e1 = adafactor_eps1(eps, theta.dtype)
        rho = min(lr, 1 / math.sqrt(t)) if relative_step else lr
        alpha = max(eps2, _rms(theta)) * rho if scale_parameter else rho
        if weight_decay != 0:
            theta *= 1 - lr * weight_decay
        factors = adafactor_moments(g, row, col, full, t, beta2_decay=beta2_decay, eps1=e1)
        if factors is None:  # 1/√max(V, ε1²)
            update = g * (1 / np.sqrt(np.maximum(full, e1 * e1)))
        else:  # 1/√max(V̂, ε1²) for V̂ = R_i C_j / max(mean(R), ε1), factored
            row_factor, col_factor = factors
            cap = 1 / e1 if e1 != 0 else math.inf  # 1/ε1 (ε1 = 0: none)
            update = g * np.minimum(row_factor * col_factor, cap)
        clip = max(1.0, _rms(update) / d)
        theta -= alpha / clip * update


# The C kernel's hyper-parameters: the declaration's, with eps split into ε1 (or the dtype's
# machine epsilon: eps1_machine) and ε2; beta2_decay for V (R and C: the NumPy moments).
_KERNEL_FIELDS = {
    "beta2_decay": "beta2_decay",
    "lr": "lr",
    "d": "clip_threshold",
    "relative_step": "relative_step",
    "scale_parameter": "scale_parameter",
    "weight_decay": "weight_decay",
    "eps1": "eps1",
    "eps2": "eps2",
    "eps1_machine": "eps1_machine",
}


def _aligned_like(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `values` whose address is `like`'s modulo a 64-byte line: the
    kernel reads a row's column factors beside the row of θ, in a vector loop that starts
    where θ reaches a line (src_c/rules/adafactor.inc), so the factors are read by whole lines
    too (the matrix's rows are a whole number of lines apart when its columns are)."""
    values = np.asarray(values)
    lanes = 64 // values.itemsize
    room = np.empty(values.size + lanes, values.dtype)
    shift = (like.ctypes.data - room.ctypes.data) % 64 // values.itemsize
    out = room[shift : shift + values.size].reshape(values.shape)
    out[...] = values
    return out


def adafactor_kernel_core(kernel: Callable[..., None]) -> Callable[..., None]:
    """The C backend's core: the sums of g² of each factored tensor (C, adafactor_sums),
    its moments R and C and V̂'s factors (NumPy, n + m numbers), then one two-pass kernel
    call over every tensor (param, g, then V, which pass 1 updates, or, factored, an unused
    empty V and the factors 1/√R_i and 1/√(C_j / max(mean(R), ε1)): the kernel forms
    min(their product, 1/ε1))."""
    from ... import _kernels  # compiled: only the C backend asks for it

    def kernel_sums(g):
        row_sums = np.empty(g.shape[:-1] + (1,))
        col_sums = np.empty(g.shape[:-2] + (1, g.shape[-1]))
        _kernels.adafactor_sums(np.ascontiguousarray(g), row_sums, col_sums)
        return row_sums, col_sums

    def core(
        params,
        grads,
        row_var,
        col_var,
        variance,
        steps,
        *,
        beta2_decay,
        eps,
        maximize,
        grad_scale=1.0,
        **hyper,
    ):
        active = [i for i, theta in enumerate(params) if theta.size]  # size 0: nothing to do
        scaled, variances, rows, cols, matrix = [], [], [], [], []
        with np.errstate(all="ignore"):
            for i in active:
                # an array even for a 0-d parameter (g · c of a 0-d array is a scalar)
                g = grads[i]
                if maximize or grad_scale != 1.0:  # (g · 1 is g: no copy of it)
                    g = np.asarray(scaled_gradient(g, maximize, grad_scale))
                theta = params[i]
                scaled.append(g)
                variances.append(variance[i])  # (size 0 where factored: not read)
                if theta.ndim < 2:  # V: updated by the kernel's pass 1
                    rows.append(row_var[i])  # (size 0: not read)
                    cols.append(col_var[i])
                    matrix.append((0, 0))
                    continue
                row_factor, col_factor = adafactor_moments(
                    g,
                    row_var[i],
                    col_var[i],
                    variance[i],
                    int(steps[i]),
                    beta2_decay=beta2_decay,
                    eps1=adafactor_eps1(eps, theta.dtype),
                    sums=kernel_sums,
                )
                rows.append(np.ascontiguousarray(row_factor))
                cols.append(_aligned_like(col_factor, theta))
                matrix.append(theta.shape[-2:])
        kernel(
            [params[i] for i in active],
            scaled,
            variances,
            rows,
            cols,
            np.asarray(steps)[active],
            matrix=np.array(matrix, dtype=np.int64).reshape(-1, 2),
            beta2_decay=beta2_decay,
            eps1=0.0 if eps[0] is None else eps[0],
            eps2=eps[1],
            eps1_machine=eps[0] is None,
            **hyper,
        )

    # as every gdfast.optim.KERNELS entry answers
    core.takes_rows = kernel.takes_rows  # type: ignore[attr-defined]
    return core


class Adafactor(Rule):
    __doc__ = f"""Adafactor (Shazeer & Stern 2018), torch.optim.Adafactor's form: factored
    second moments, a relative step size, update clipping.

    For θ of two or more dimensions (factored over the last two: n rows, m columns):
      1 − β̂ = t^c ;  R ← lerp(R, Σ_j g²/m, 1 − β̂) ;  C ← lerp(C, Σ_i g²/n, 1 − β̂)
      V̂ = R C / max(mean(R), ε1)
    else: V ← lerp(V, g², 1 − β̂), V̂ = V.  Then
      ρ_t = min(η, 1/√t) (relative_step; else η) ;  α = max(ε2, RMS(θ)) ρ_t (scale_parameter;
      else ρ_t) ;  θ ← θ (1 − η λ) ;  U = g / √max(V̂, ε1²) ;  θ ← θ − (α / max(1, RMS(U)/d)) U

    Memory: n + m numbers for an n × m matrix.  RMS over the whole tensor and the row sums
    summed in double in the fixed order of docs/spec-reductions.md, the column sums in row
    order (factored_sums).  Not element-wise: no dtype policy, float32/float64 only.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.01
        η (>= 0): the cap of the relative step size, the step size without it, and the
        weight decay's rate.
    beta2_decay : float, default -0.8
        c (<= 0): 1 − β̂_t = t^c.
    eps : (float or None, float), default (None, 0.001)
        (ε1, ε2), each >= 0; ε1 None: the machine epsilon of the parameter's dtype.
    d : float, default 1.0
        The update clipping threshold (> 0; inf: no clipping).
    weight_decay : float, default 0.0
        λ (>= 0): θ ← θ (1 − η λ) (decoupled, torch's).
    relative_step : bool, default True
        ρ_t = min(η, 1/√t) (the paper, torch); False: ρ_t = η (Hugging Face's
        relative_step=False).
    scale_parameter : bool, default True
        α = max(ε2, RMS(θ)) ρ_t (the paper, torch); False: α = ρ_t.
    maximize : bool, default False
        Ascend: g ← −g.

    State: row_var = R (shape [..., n, 1]), col_var = C ([..., 1, m]), variance = V (θ's
    shape); the entries a parameter does not use are arrays of size 0.  t is `steps`,
    counted per parameter.
    """
    rule = "Adafactor"
    catalogue_order = 17
    state_names = ("row_var", "col_var", "variance")
    lr = Hyperparameter(check.learning_rate, 0.01)
    beta2_decay = Hyperparameter(check.beta2_decay, -0.8, kernel=None)
    eps = Hyperparameter(check.adafactor_eps, (None, 1e-3), kernel=None, in_double=True)
    d = Hyperparameter(check.positive_or_infinite, 1.0, kernel="clip_threshold", in_double=True)
    weight_decay = Hyperparameter(check.nonnegative, 0.0)
    relative_step = Hyperparameter(check.flag, True, keyword=True)
    scale_parameter = Hyperparameter(check.flag, True, keyword=True)
    decoupled_weight_decay = None  # always decoupled, with η (torch's)
    kernel = "adafactor"
    numpy_core = adafactor
    torch_equivalent = TorchEquivalent("Adafactor")
    # the sweep's middle of the working range (scripts/make_guide.py checks it); Rosenbrock:
    # no rate of the grid converges within the budget, the lowest final loss
    gallery_lr = {"beale": 0.001, "rosenbrock": 0.003, "saddle": 0.03, "ravine": 0.3}
    adaptive = True
    elementwise = False  # RMS(θ), RMS(U) and the factored moments reduce over the tensor

    def sweeps(self, index: int) -> tuple[Sweep, ...]:
        # factored: the row and column sums of g² (adafactor_sums), then Σθ² and ΣU² (pass 1),
        # then the update (pass 2); unfactored: V updated in pass 1 (src_c/rules/adafactor.inc)
        if self.params[index].ndim > 1:
            return ((("grad",), ()), (("param", "grad"), ()), (("grad",), ("param",)))
        return ((("param", "grad"), ("variance",)), (("grad",), ("param",)))

    @classmethod
    def bind_core(cls, core: Callable[..., None]) -> Callable[..., None]:
        return adafactor_kernel_core(two_pass_kernel(cls, _KERNEL_FIELDS))

    def _state_spec(self, name: str, param: np.ndarray) -> tuple[tuple[int, ...], np.dtype]:
        factored = param.ndim > 1
        if name == "row_var" and factored:
            return param.shape[:-1] + (1,), param.dtype
        if name == "col_var" and factored:
            return param.shape[:-2] + (1, param.shape[-1]), param.dtype
        if name == "variance" and not factored:
            return param.shape, param.dtype
        return (0,), param.dtype

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        shape, dtype = self._state_spec(name, param)
        return np.zeros(shape, dtype)

    def _largest_scalars(self, hyper: dict[str, Any]) -> dict[str, tuple[str, float]]:
        return {"lr * weight_decay": ("weight_decay", hyper["lr"] * hyper["weight_decay"])}
