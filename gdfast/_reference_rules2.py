"""The NumPy reference of the second set of rules: docs/spec-rules-2.md in code.

Schedule-Free AdamW and SGD and Muon (spec sections 5 and 8), each a
functional core with the signature of gdfast.reference's cores,

    core(params, grads, *state_buffers, steps, **hyperparameters)

(parallel lists of the tensors that have a gradient this step, an int64 array of their
step counts t, this step included), updating parameters and state in place, line by line
as the spec writes the rule (its section number is beside each core).  Sections 1 to 4
(Lion, RAdam, Rprop, ASGD) and 6, 7 (LAMB, Adafactor) are rules of the catalogue: their
cores are in gdfast/catalogue/rules/<rule>.py (gdfast.reference.lion, ...).  Arithmetic is in
the dtype of the parameters (NumPy >= 2, NEP 50) and IEEE non-stop, as in
gdfast.reference.  Per-step scalars (bias corrections, step sizes) are Python floats,
computed in double.

`lerp(a, b, w)` is a + w (b − a) computed as torch.lerp computes it (spec section 0): the
rules whose libraries write their averages as lerp (torch's Muon and Adafactor, the
schedulefree package) are written with it, so that they round as those libraries do.
"""

from __future__ import annotations

import math

import numpy as np

from .catalogue._numpy_core import gradient_transform as _gradient
from .catalogue._numpy_core import ieee_nonstop as _ieee_nonstop


def lerp(start, end, weight):
    """start + weight (end − start), as torch.lerp computes it: from the nearer end
    (end − (end − start)(1 − weight) when |weight| >= 0.5), so a weight of 1 gives `end`
    exactly."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _scaled(g, maximize, grad_scale):
    """g · c, then −g to maximize: the start of gdfast's gradient transform, for the rules
    whose weight decay is their own (LAMB, Schedule-Free and Adafactor place it
    themselves)."""
    return _gradient(None, g, 0.0, 0.0, False, maximize, grad_scale)


# ----------------------------------------------------- 5. Schedule-Free AdamW
def schedule_free_weight(t, lr_t, weight_sum, lr_max, *, r, weight_lr_power):
    """Spec 5: this step's averaging weight c_t, with the running sum and maximum (0-d
    float64 arrays) updated in place."""
    lr_max[...] = max(float(lr_max), lr_t)
    weight = t**r * float(lr_max) ** weight_lr_power
    weight_sum[...] = float(weight_sum) + weight
    return weight / float(weight_sum) if float(weight_sum) != 0 else 0.0


def schedule_free_warmup(t, warmup_steps):
    """min(1, t / T_warmup): the linear warm-up of the schedule-free rules."""
    return t / warmup_steps if t <= warmup_steps else 1.0


@_ieee_nonstop
def schedule_free_adamw(
    params,
    grads,
    z,
    exp_avg_sq,
    weight_sum,
    lr_max,
    steps,
    *,
    lr,
    betas,
    eps,
    weight_decay=0.0,
    warmup_steps=0,
    r=0.0,
    weight_lr_power=2.0,
    lr_bias_correction=True,
    maximize=False,
    grad_scale=1.0,
):
    """Spec 5: the parameters hold y (the point the gradient is taken at); z is the base
    sequence, x (what `schedule_free_eval` gives) their average."""
    beta1, beta2 = betas
    for y, g, base, v, total, top, t in zip(
        params, grads, z, exp_avg_sq, weight_sum, lr_max, map(int, steps)
    ):
        g = _scaled(g, maximize, grad_scale)
        correction2 = 1 - beta2**t
        if lr_bias_correction:  # the paper: γ_t = η √(1 − β2^t) min(1, t/T), D = √v + ε
            lr_t = lr * schedule_free_warmup(t, warmup_steps) * math.sqrt(correction2)
            v_divisor = 1.0
        else:  # the schedulefree package's AdamWScheduleFree: D = √(v / (1 − β2^t)) + ε
            lr_t = lr * schedule_free_warmup(t, warmup_steps)
            v_divisor = correction2
        c = schedule_free_weight(t, lr_t, total, top, r=r, weight_lr_power=weight_lr_power)
        v[...] = beta2 * v + (1 - beta2) * g * g
        u = g / (np.sqrt(v / v_divisor) + eps)
        if weight_decay != 0:
            u = u + weight_decay * y
        y[...] = lerp(y, base, c)
        y += lr_t * (beta1 * (1 - c) - 1) * u
        base -= lr_t * u


@_ieee_nonstop
def schedule_free_sgd(
    params,
    grads,
    z,
    weight_sum,
    lr_max,
    steps,
    *,
    lr,
    momentum,
    weight_decay=0.0,
    warmup_steps=0,
    r=0.0,
    weight_lr_power=2.0,
    maximize=False,
    grad_scale=1.0,
):
    """Spec 5.1: Schedule-Free AdamW with u = g (+ λ y), β1 = momentum."""
    for y, g, base, total, top, t in zip(params, grads, z, weight_sum, lr_max, map(int, steps)):
        g = _scaled(g, maximize, grad_scale)
        lr_t = lr * schedule_free_warmup(t, warmup_steps)
        c = schedule_free_weight(t, lr_t, total, top, r=r, weight_lr_power=weight_lr_power)
        u = g + weight_decay * y if weight_decay != 0 else g
        y[...] = lerp(y, base, c)
        y += lr_t * (momentum * (1 - c) - 1) * u
        base -= lr_t * u


def schedule_free_eval(params, z, beta1):
    """y → x (spec 5.2): x = y + (1 − 1/β1)(z − y), in place; before evaluating."""
    with np.errstate(all="ignore"):
        for y, base in zip(params, z):
            y[...] = lerp(y, base, 1 - 1 / beta1)


def schedule_free_train(params, z, beta1):
    """x → y (spec 5.2): y = x + (1 − β1)(z − x), in place; before training again."""
    with np.errstate(all="ignore"):
        for x, base in zip(params, z):
            x[...] = lerp(x, base, 1 - beta1)


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
