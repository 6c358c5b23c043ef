"""What every NumPy functional core shares: IEEE non-stop arithmetic and the gradient
transform.  The cores themselves are in the rules' modules (gdfast/catalogue/<rule>.py)
and together make gdfast.reference."""

from __future__ import annotations

import functools


import numpy as np


def ieee_nonstop(core):
    """The core with NaN and Inf propagating and no floating-point warning raised, like
    the kernels (whatever numpy.seterr says)."""

    @functools.wraps(core)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            core(*args, **kwargs)

    return wrapper


def gradient_transform(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale):
    """The gradient transform every rule starts with (gdfast.catalogue): g ← g·c with
    c = grad_scale in the gradient's dtype (1: off; gradient clipping by global norm);
    g ← −g to maximize; L2 decay g ← g + λθ, or decoupled decay θ ← θ(1 − ηλ) (in place)."""
    g = g * g.dtype.type(grad_scale)
    if maximize:
        g = g * g.dtype.type(-1)  # −g as the kernels take it: a NaN keeps its sign bit
    if weight_decay and decoupled_weight_decay:
        theta *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * theta
    return g
