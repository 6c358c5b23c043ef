"""RAdam, rectified Adam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate
and Beyond").

The rule's NumPy core (docs/spec.md section 1 and 1.3 in code, part of gdfast.reference) and
its declaration (gdfast.catalogue); its kernel is src_c/rules/radam.inc.
"""

from __future__ import annotations

import math

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop
from .adam import BETAS


@ieee_nonstop
def radam(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    rectify_threshold=4.0,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1: Adam's m, v; rectified step where ρ_t > rectify_threshold, else SGD with
    momentum on m̂."""
    beta1, beta2 = betas
    rho_inf = 2 / (1 - beta2) - 1
    for theta, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, map(int, steps)):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        rho_t = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
        if rho_t > rectify_threshold:
            adaptive = math.sqrt(1 - beta2**t) / (np.sqrt(v) + eps)
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            theta -= m_hat * lr * adaptive * rect
        else:
            theta -= m_hat * lr


class RAdam(Rule):
    __doc__ = f"""RAdam, rectified Adam (Liu et al. 2020, Algorithm 2).

    m ← β1 m + (1 − β1) g ;  v ← β2 v + (1 − β2) g² ;  m̂ = m / (1 − β1^t)
    ρ∞ = 2/(1 − β2) − 1 ;  ρ_t = ρ∞ − 2 t β2^t / (1 − β2^t)
    ρ_t > ρ_thr:  θ ← θ − m̂ η (√(1 − β2^t) / (√v + ε)) r,
                  r = √((ρ_t − 4)(ρ_t − 2) ρ∞ / ((ρ∞ − 4)(ρ∞ − 2) ρ_t))
    else:         θ ← θ − m̂ η

    torch.optim.RAdam is this rule with ρ_thr = 5 (convention="torch"); its
    decoupled_weight_decay=True ("RAdamW") is decoupled_weight_decay here.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    rectify_threshold : float, optional
        ρ_thr (>= 4): the rectified step where ρ_t > ρ_thr.  Preset: paper 4, torch 5
        (torch.optim.RAdam and the authors' code), keras 5.
    {TRANSFORM_DOC}

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "RAdam"
    catalogue_order = 13
    state_names = ("exp_avg", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate, 0.001)
    betas = BETAS
    eps = Hyperparameter(check.positive, 1e-8)
    rectify_threshold = Hyperparameter(
        check.rectify_threshold, presets={"paper": 4.0, "torch": 5.0, "keras": 5.0}
    )
    kernel = "radam"
    numpy_core = radam
    torch_equivalent = TorchEquivalent("RAdam")
    # the middle of the working range of trajectories.sweep (scripts/make_guide.py); saddle 0.01
    gallery_lr = {"beale": 0.003, "rosenbrock": 0.001, "saddle": 0.01, "ravine": 0.1}
    adaptive = True
