"""Nadam, Adam with Nesterov momentum (Dozat, 2016).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/nadam.inc.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop
from .adam import BETAS


@ieee_nonstop
def nadam(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    *mu_product_and_steps,
    lr,
    betas,
    eps,
    momentum_schedule=False,
    momentum_decay=0.004,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """Positional after exp_avg_sq: mu_product (with momentum_schedule), steps."""
    beta1, beta2 = betas
    steps = mu_product_and_steps[-1]
    mu_product = mu_product_and_steps[0] if momentum_schedule else [None] * len(params)
    for theta, g, m, v, P, t in zip(
        params, grads, exp_avg, exp_avg_sq, mu_product, map(int, steps)
    ):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        v_hat = v / (1 - beta2**t)
        if momentum_schedule:
            mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
            mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
            P[...] = P * mu
            direction = mu_next * m / (1 - P * mu_next) + (1 - mu) * g / (1 - P)
        else:
            m_hat = m / (1 - beta1**t)
            direction = beta1 * m_hat + (1 - beta1) * g / (1 - beta1**t)
        theta -= lr / (np.sqrt(v_hat) + eps) * direction


class Nadam(Rule):
    __doc__ = f"""Nadam, Adam with Nesterov momentum (Dozat, 2016), constant β1.

    m, v, m̂, v̂ as Adam
    θ ← θ − η / (√v̂ + ε) · (β1 m̂ + (1 − β1) g / (1 − β1^t))

    momentum_schedule (torch.optim.NAdam with ψ = momentum_decay = 0.004; Keras 3's Nadam
    with 0.96^t, i.e. ψ = 1): μ_t = β1 (1 − ½ · 0.96^(t ψ)), P_t = μ_1 ⋯ μ_t,
    θ ← θ − η / (√v̂ + ε) · (μ_(t+1) m / (1 − P_t μ_(t+1)) + (1 − μ_t) g / (1 − P_t)).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.002
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    momentum_schedule : bool, optional
        Dozat's μ_t schedule instead of the constant β1.  Fixed at construction (it
        decides the state entries).  Preset: paper False, torch True, keras True.
    momentum_decay : float, optional
        ψ (>= 0), used by the schedule.  Preset: paper 0.004 (unused), torch 0.004,
        keras 1.0.
    {TRANSFORM_DOC}

    State: exp_avg = m, exp_avg_sq = v; with the schedule also mu_product = P_t (a 0-d
    float64 array per parameter, starting at 1); t is `steps`, counted per parameter.
    """
    rule = "Nadam"
    catalogue_order = 10
    state_names = ("exp_avg", "exp_avg_sq")
    scalar_state = ("mu_product",)
    lr = Hyperparameter(check.learning_rate, 0.002)
    betas = BETAS
    eps = Hyperparameter(check.positive, 1e-8)
    momentum_schedule = Hyperparameter(
        check.flag, presets={"paper": False, "torch": True, "keras": True}
    )
    momentum_decay = Hyperparameter(
        check.nonnegative, presets={"paper": 0.004, "torch": 0.004, "keras": 1.0}
    )
    kernel = "nadam"
    numpy_core = nadam
    torch_equivalent = TorchEquivalent("NAdam")
    gallery_lr = {"beale": 0.003, "rosenbrock": 0.003, "saddle": 0.01, "ravine": 0.3}
    adaptive = True

    @classmethod
    def state_layout(cls, hyper: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("mu_product",) if hyper["momentum_schedule"] else ())
