"""The NumPy reference of the second set of rules: docs/spec-rules-2.md in code.

Muon (spec section 8), a
functional core with the signature of gdfast.reference's cores,

    core(params, grads, *state_buffers, steps, **hyperparameters)

(parallel lists of the tensors that have a gradient this step, an int64 array of their
step counts t, this step included), updating parameters and state in place, line by line
as the spec writes the rule (its section number is beside each core).  Sections 1 to 7
(Lion, RAdam, Rprop, ASGD, Schedule-Free, LAMB, Adafactor) are rules of the catalogue: their cores are in
gdfast/catalogue/rules/<rule>.py (gdfast.reference.lion, ...).  Arithmetic is in
the dtype of the parameters (NumPy >= 2, NEP 50) and IEEE non-stop, as in
gdfast.reference.  Per-step scalars (bias corrections, step sizes) are Python floats,
computed in double.

`lerp(a, b, w)` is a + w (b − a) computed as torch.lerp computes it (spec section 0;
gdfast/catalogue/rules/schedule_free.py): the rules whose libraries write their averages as
lerp (torch's Muon and Adafactor) are written with it, so that they round as torch does.
"""

from __future__ import annotations

import math

import numpy as np

from .catalogue._numpy_core import gradient_transform as _gradient
from .catalogue._numpy_core import ieee_nonstop as _ieee_nonstop
from .catalogue.rules.schedule_free import lerp


def _scaled(g, maximize, grad_scale):
    """g · c, then −g to maximize: the start of gdfast's gradient transform, for the rules
    whose weight decay is their own (LAMB, Schedule-Free and Adafactor place it
    themselves)."""
    return _gradient(None, g, 0.0, 0.0, False, maximize, grad_scale)


# ----------------------------------------------------------------- 8. Muon
MUON_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(matrix, coefficients=MUON_NS_COEFFICIENTS, steps=5, eps=1e-7):
    """Spec 8.1: the quintic Newton–Schulz iteration towards the orthogonal factor of a
    2-D array, in its dtype (NumPy matrix products: BLAS)."""
    a, b, c = coefficients
    wide = matrix.shape[0] <= matrix.shape[1]
    x = matrix if wide else matrix.T
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        gram_update = b * gram + c * (gram @ gram)
        x = a * x + gram_update @ x
    return x if wide else x.T


def muon_lr(lr, adjust_lr_fn, shape):
    """Spec 8: the learning rate adjusted to the shape (A, B) of the parameter."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


@_ieee_nonstop
def muon(
    params,
    grads,
    momentum_buffer,
    steps,
    *,
    lr,
    momentum,
    weight_decay=0.0,
    nesterov=True,
    ns_coefficients=MUON_NS_COEFFICIENTS,
    eps=1e-7,
    ns_steps=5,
    adjust_lr_fn="original",
    maximize=False,
    grad_scale=1.0,
):
    """Spec 8: momentum, then the Newton–Schulz orthogonalisation of the (Nesterov)
    momentum, then θ ← θ (1 − η λ) − η_adj O.  2-D parameters only."""
    for theta, g, buffer in zip(params, grads, momentum_buffer):
        g = _scaled(g, maximize, grad_scale)
        buffer[...] = lerp(buffer, g, 1 - momentum)
        direction = lerp(g, buffer, momentum) if nesterov else buffer
        orthogonal = newton_schulz(direction, ns_coefficients, ns_steps, eps)
        theta *= 1 - lr * weight_decay
        theta -= muon_lr(lr, adjust_lr_fn, theta.shape) * orthogonal
