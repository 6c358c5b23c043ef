"""Adadelta (Zeiler, 2012).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/adadelta.inc.
"""

from __future__ import annotations


import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop


@ieee_nonstop
def adadelta(
    params,
    grads,
    square_avg,
    acc_delta,
    steps,
    *,
    lr,
    rho,
    eps,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    for theta, g, E_g, E_d in zip(params, grads, square_avg, acc_delta):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        E_g[...] = rho * E_g + (1 - rho) * g * g
        # Δ = −descent; SPEC's θ ← θ + ηΔ written without the (exact) negation, so that
        # every NaN made here is the default NaN, as in the kernel (see src_c/rules/adadelta.inc)
        descent = (np.sqrt(E_d + eps) / np.sqrt(E_g + eps)) * g
        E_d[...] = rho * E_d + (1 - rho) * descent * descent
        theta -= lr * descent


class Adadelta(Rule):
    __doc__ = f"""Adadelta (Zeiler, 2012).

    E_g ← ρ E_g + (1 − ρ) g²
    Δ   ← −(√(E_d + ε) / √(E_g + ε)) g
    E_d ← ρ E_d + (1 − ρ) Δ²
    θ   ← θ + η Δ

    The pure method has no learning rate; `lr` is PyTorch's multiplier
    (default 1.0), which scales the step but not the Δ kept in E_d.  torch and Keras
    use these formulas (Keras's defaults: lr 0.001, rho 0.95, epsilon 1e-7).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 1.0
        η, the multiplier (>= 0).
    rho : float, default 0.9
        ρ, in [0, 1].
    eps : float, default 1e-6
        ε (> 0).
    {TRANSFORM_DOC}

    State: square_avg = E_g, acc_delta = E_d.
    """
    rule = "Adadelta"
    catalogue_order = 5
    state_names = ("square_avg", "acc_delta")
    lr = Hyperparameter(check.learning_rate, 1.0)
    rho = Hyperparameter(check.decay_rate, 0.9)
    eps = Hyperparameter(check.positive, 1e-6)
    kernel = "adadelta"
    numpy_core = adadelta
    torch_equivalent = TorchEquivalent("Adadelta")
    gallery_lr = {"beale": 0.01, "rosenbrock": 0.03, "saddle": 1.0, "ravine": 1.0}
    adaptive = True
