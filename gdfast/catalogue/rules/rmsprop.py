"""RMSprop (Hinton, 2012).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/rmsprop.inc.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop
from .adagrad import _EPS_SQRT_DOC, EPS_INSIDE_SQRT


@ieee_nonstop
def rmsprop(
    params,
    grads,
    square_avg,
    *buffers_and_steps,
    lr,
    rho,
    eps,
    centered=False,
    momentum=0.0,
    eps_inside_sqrt=True,
    lr_in_buffer=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """Positional after square_avg: grad_avg (if centered), momentum_buffer (if
    momentum > 0), steps."""
    buffers = list(buffers_and_steps[:-1])
    grad_avg = buffers.pop(0) if centered else [None] * len(params)
    momentum_buffer = buffers.pop(0) if momentum > 0 else [None] * len(params)
    for theta, g, E_g, g_avg, b in zip(params, grads, square_avg, grad_avg, momentum_buffer):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        E_g[...] = rho * E_g + (1 - rho) * g * g
        if centered:
            g_avg[...] = rho * g_avg + (1 - rho) * g
            variance = E_g - g_avg**2
        else:
            variance = E_g
        if eps_inside_sqrt:
            denominator = np.sqrt(variance + eps)
        else:
            denominator = np.sqrt(variance) + eps
        if momentum > 0 and lr_in_buffer:
            b[...] = momentum * b + lr * g / denominator
            theta -= b
        elif momentum > 0:
            b[...] = momentum * b + g / denominator
            theta -= lr * b
        else:
            theta -= lr * (g / denominator)


class RMSprop(Rule):
    __doc__ = f"""RMSprop (Hinton, 2012).

    E_g ← ρ E_g + (1 − ρ) g²
    θ   ← θ − η g / √(E_g + ε)

    With the options (D the denominator):
      centered:   ḡ ← ρ ḡ + (1 − ρ) g,  D = √(E_g − ḡ² + ε)   (else D = √(E_g + ε))
      eps_inside_sqrt=False (torch): D = √(E_g − ḡ²) + ε, resp. √E_g + ε
      momentum γ > 0:  b ← γ b + η g / D, θ ← θ − b with lr_in_buffer (Keras);
                       b ← γ b + g / D,  θ ← θ − η b without (torch)
    torch calls ρ `alpha` (default 0.99, lr 0.01); Keras's defaults are lr 0.001,
    rho 0.9, epsilon 1e-7.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    rho : float, default 0.9
        ρ, in [0, 1].
    eps : float, default 1e-8
        ε (> 0).
    centered : bool, default False
        Divide by an estimate of the variance rather than of the second moment.
        Fixed at construction (it decides the state entries).
    momentum : float, default 0.0
        γ (>= 0).  Zero and non-zero are fixed at construction.
    {_EPS_SQRT_DOC}
    lr_in_buffer : bool, optional
        Where η goes with momentum (above).  Preset: paper True, torch False, keras True.
    {TRANSFORM_DOC}

    State: square_avg = E_g; grad_avg = ḡ when centered; momentum_buffer = b when γ > 0.
    """
    rule = "RMSprop"
    catalogue_order = 6
    state_names = ("square_avg",)
    lr = Hyperparameter(check.learning_rate, 0.001)
    rho = Hyperparameter(check.decay_rate, 0.9)
    eps = Hyperparameter(check.positive, 1e-8)
    centered = Hyperparameter(check.flag, False, keyword=True)
    momentum = Hyperparameter(check.nonnegative, 0.0, keyword=True)
    eps_inside_sqrt = EPS_INSIDE_SQRT
    lr_in_buffer = Hyperparameter(
        check.flag, presets={"paper": True, "torch": False, "keras": True}
    )
    kernel = "rmsprop"
    numpy_core = rmsprop
    rows = True
    torch_equivalent = TorchEquivalent("RMSprop", names={"rho": "alpha"})
    gallery_lr = {"beale": 0.001, "rosenbrock": 0.0003, "saddle": 0.01, "ravine": 0.01}
    adaptive = True

    @classmethod
    def state_layout(cls, hyper: dict[str, Any]) -> tuple[str, ...]:
        return (
            ("square_avg",)
            + (("grad_avg",) if hyper["centered"] else ())
            + (("momentum_buffer",) if hyper["momentum"] > 0 else ())
        )
