"""The NumPy reference of the second set of rules: docs/spec-rules-2.md in code.

LAMB, Adafactor and Muon (spec sections 6 to 8), each a
functional core with the signature of gdfast.reference's cores,

    core(params, grads, *state_buffers, steps, **hyperparameters)

(parallel lists of the tensors that have a gradient this step, an int64 array of their
step counts t, this step included), updating parameters and state in place, line by line
as the spec writes the rule (its section number is beside each core).  Sections 1 to 5
(Lion, RAdam, Rprop, ASGD, Schedule-Free) are rules of the catalogue: their cores are in
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


# ----------------------------------------------------------------- 6. LAMB
@_ieee_nonstop
def lamb(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    bias_correction=True,
    grad_averaging=True,
    trust_clip=math.inf,
    eps_in_trust_ratio=False,
    debias_step_size=False,
    maximize=False,
    grad_scale=1.0,
):
    """Spec 6: Adam's direction r, u = r + λ θ, θ ← θ − η (φ(‖θ‖) / ‖u‖) u per tensor."""
    beta1, beta2 = betas
    for theta, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, map(int, steps)):
        g = _scaled(g, maximize, grad_scale)
        m[...] = beta1 * m + (1 - beta1 if grad_averaging else 1.0) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        if weight_decay != 0 and decoupled_weight_decay:
            theta *= 1 - lr * weight_decay
        if bias_correction:
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        else:
            m_hat, v_hat = m, v
        u = m_hat / (np.sqrt(v_hat) + eps)
        if weight_decay != 0 and not decoupled_weight_decay:
            u = u + weight_decay * theta
        weight_norm = min(float(np.linalg.norm(theta)), trust_clip)
        update_norm = float(np.linalg.norm(u))
        if weight_norm == 0 or update_norm == 0:
            trust = 1.0
        else:
            trust = weight_norm / (update_norm + (eps if eps_in_trust_ratio else 0.0))
        step_size = lr / (1 - beta1**t) if debias_step_size else lr
        theta -= step_size * trust * u


# ------------------------------------------------------------ 7. Adafactor
def _rms(array):
    return float(np.linalg.norm(array)) / math.sqrt(array.size)


def adafactor_moments(g, row, col, full, t, *, beta2_decay, eps1):
    """Spec 7's second moments: R and C (factored, two or more dimensions) or V updated in
    place with g; returns V̂.  Shared by the reference and the kernel's caller (the
    kernels do the element arithmetic around it)."""
    one_minus_beta2 = t**beta2_decay
    if g.ndim > 1:
        row_mean = np.square(np.linalg.norm(g, axis=-1, keepdims=True)) / g.shape[-1]
        row[...] = lerp(row, row_mean, one_minus_beta2)
        col_mean = np.square(np.linalg.norm(g, axis=-2, keepdims=True)) / g.shape[-2]
        col[...] = lerp(col, col_mean, one_minus_beta2)
        return (row @ col) / np.maximum(row.mean(axis=-2, keepdims=True), eps1)
    full[...] = lerp(full, g * g, one_minus_beta2)
    return full.copy()


def adafactor_eps1(eps, dtype):
    """ε1: the machine epsilon of the parameter's dtype when eps[0] is None."""
    return float(np.finfo(dtype).eps) if eps[0] is None else eps[0]


@_ieee_nonstop
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
    """Spec 7: factored second moments (row_var R, col_var C) for parameters of two or
    more dimensions (over the last two), the full one (variance V) for the others; the
    unused entries are arrays of size 0."""
    eps2 = eps[1]
    for theta, g, row, col, full, t in zip(
        params, grads, row_var, col_var, variance, map(int, steps)
    ):
        if theta.size == 0:
            continue
        g = _scaled(g, maximize, grad_scale)
        e1 = adafactor_eps1(eps, theta.dtype)
        rho = min(lr, 1 / math.sqrt(t)) if relative_step else lr
        alpha = max(eps2, _rms(theta)) * rho if scale_parameter else rho
        if weight_decay != 0:
            theta *= 1 - lr * weight_decay
        v_hat = adafactor_moments(g, row, col, full, t, beta2_decay=beta2_decay, eps1=e1)
        update = g * (1 / np.sqrt(np.maximum(v_hat, e1 * e1)))
        clip = max(1.0, _rms(update) / d)
        theta -= alpha / clip * update


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
