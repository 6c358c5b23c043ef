"""AdaMax, Adam with the infinity norm (Kingma & Ba, 2015, section 7).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/adamax.inc.
"""

from __future__ import annotations


import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop
from .adam import BETAS


@ieee_nonstop
def adamax(
    params,
    grads,
    exp_avg,
    exp_inf,
    steps,
    *,
    lr,
    betas,
    eps=0.0,
    eps_inside_max=False,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    beta1, beta2 = betas
    for theta, g, m, u, t in zip(params, grads, exp_avg, exp_inf, map(int, steps)):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        m[...] = beta1 * m + (1 - beta1) * g
        if eps_inside_max:
            u[...] = np.maximum(beta2 * u, np.abs(g) + eps)
            denominator = u
        else:
            u[...] = np.maximum(beta2 * u, np.abs(g))
            denominator = u + eps
        m_over_u = np.divide(
            m, denominator, out=np.zeros_like(m), where=denominator != 0
        )  # 0/0 is 0 here
        theta -= (lr / (1 - beta1**t)) * m_over_u


class AdaMax(Rule):
    __doc__ = f"""AdaMax, Adam with the infinity norm (Kingma & Ba, 2015, section 7).

    m ← β1 m + (1 − β1) g
    u ← max(β2 u, |g|)
    θ ← θ − (η / (1 − β1^t)) m / u

    Where u = 0 (every gradient so far was 0) the step is 0, never NaN.  With ε > 0:
      eps_inside_max (torch):  u ← max(β2 u, |g| + ε),  θ ← θ − (η/(1 − β1^t)) m / u
      else (Keras):            u as above,             θ ← θ − (η/(1 − β1^t)) m / (u + ε)
    Library defaults: torch eps 1e-8, Keras epsilon 1e-7.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.002
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 0.0
        ε (>= 0); 0 is the paper's rule.
    eps_inside_max : bool, optional
        Where ε goes (above).  Preset: paper False (irrelevant at ε = 0), torch True,
        keras False.
    {TRANSFORM_DOC}

    State: exp_avg = m, exp_inf = u; t is `steps`, counted per parameter.
    """
    rule = "AdaMax"
    catalogue_order = 9
    _bias_corrected = True
    state_names = ("exp_avg", "exp_inf")
    lr = Hyperparameter(check.learning_rate, 0.002)
    betas = BETAS
    eps = Hyperparameter(check.nonnegative, 0.0, keyword=True)
    eps_inside_max = Hyperparameter(
        check.flag, presets={"paper": False, "torch": True, "keras": False}, kernel="eps_inside"
    )
    kernel = "adamax"
    numpy_core = adamax
    torch_equivalent = TorchEquivalent("Adamax")
    gallery_lr = {"beale": 0.03, "rosenbrock": 0.03, "saddle": 0.01, "ravine": 0.3}
    adaptive = True
