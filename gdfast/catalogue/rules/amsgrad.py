"""AMSGrad (Reddi, Kale & Kumar, 2018).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/amsgrad.inc.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop
from .adam import _EPS_HAT_DOC, BETAS


@ieee_nonstop
def amsgrad(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    bias_correction=False,
    max_of_v_hat=False,
    eps_hat=False,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    beta1, beta2 = betas
    for theta, g, m, v, v_max, t in zip(
        params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, map(int, steps)
    ):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        if not bias_correction:
            v_max[...] = np.maximum(v_max, v)
            theta -= lr * m / (np.sqrt(v_max) + eps)
        elif max_of_v_hat:
            v_max[...] = np.maximum(v_max, v / (1 - beta2**t))
            theta -= lr * (m / (1 - beta1**t)) / (np.sqrt(v_max) + eps)
        elif eps_hat:
            v_max[...] = np.maximum(v_max, v)
            lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
            theta -= lr_t * m / (np.sqrt(v_max) + eps)
        else:
            v_max[...] = np.maximum(v_max, v)
            theta -= lr * (m / (1 - beta1**t)) / (np.sqrt(v_max / (1 - beta2**t)) + eps)


class AMSGrad(Rule):
    __doc__ = f"""AMSGrad (Reddi, Kale & Kumar, 2018), without bias correction.

    m, v as Adam
    v_max ← max(v_max, v)
    θ ← θ − η m / (√v_max + ε)

    With the options:
      bias_correction (torch Adam(amsgrad=True), Keras):
          θ ← θ − η m̂ / (√(v_max / (1 − β2^t)) + ε),  m̂ = m / (1 − β1^t)
      ... and eps_hat (Keras): θ ← θ − η (√(1 − β2^t)/(1 − β1^t)) m / (√v_max + ε)
      ... and max_of_v_hat (optax): v_max ← max(v_max, v / (1 − β2^t)),
          θ ← θ − η m̂ / (√v_max + ε)

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    bias_correction : bool, optional
        Preset: paper False, torch True, keras True.
    max_of_v_hat : bool, default False
        Keep the maximum of v̂ rather than of v (needs bias_correction, excludes eps_hat).
    {_EPS_HAT_DOC}
    {TRANSFORM_DOC}

    State: exp_avg = m, exp_avg_sq = v, max_exp_avg_sq = v_max.
    """
    rule = "AMSGrad"
    catalogue_order = 11
    _bias_corrected = True
    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    lr = Hyperparameter(check.learning_rate, 0.001)
    betas = BETAS
    eps = Hyperparameter(check.positive, 1e-8)
    bias_correction = Hyperparameter(
        check.flag, presets={"paper": False, "torch": True, "keras": True}
    )
    max_of_v_hat = Hyperparameter(check.flag, False, keyword=True)
    eps_hat = Hyperparameter(check.flag, presets={"paper": False, "torch": False, "keras": True})
    kernel = "amsgrad"
    numpy_core = amsgrad
    torch_equivalent = TorchEquivalent("Adam", {"amsgrad": True})
    gallery_lr = {"beale": 0.03, "rosenbrock": 0.03, "saddle": 0.01, "ravine": 0.3}
    adaptive = True

    def _check_together(self, hyper: dict[str, Any]) -> None:
        if hyper["max_of_v_hat"] and not hyper["bias_correction"]:
            raise ValueError("max_of_v_hat: needs bias_correction=True (v̂ is the bias-corrected v)")
        if hyper["max_of_v_hat"] and hyper["eps_hat"] and hyper["bias_correction"]:
            raise ValueError("eps_hat: not defined together with max_of_v_hat")
