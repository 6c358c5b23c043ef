"""Lion, evolved sign momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
Algorithms").

The rule's NumPy core (docs/spec.md section 1 and 1.3 in code, part of gdfast.reference) and
its declaration (gdfast.catalogue); its kernel is src_c/rules/lion.inc.
"""

from __future__ import annotations

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule
from .._numpy_core import gradient_transform, ieee_nonstop


@ieee_nonstop
def lion(
    params,
    grads,
    exp_avg,
    steps,
    *,
    lr,
    betas,
    weight_decay=0.0,
    decoupled_weight_decay=True,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1: c = β1 m + (1 − β1) g ; θ ← θ − η sign(c) ; m ← β2 m + (1 − β2) g."""
    beta1, beta2 = betas
    for theta, g, m in zip(params, grads, exp_avg):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        c = beta1 * m + (1 - beta1) * g
        theta -= lr * np.sign(c)
        m[...] = beta2 * m + (1 - beta2) * g


class Lion(Rule):
    __doc__ = f"""Lion, evolved sign momentum (Chen et al. 2023, Algorithm 2).

    c = β1 m + (1 − β1) g
    θ ← θ − η sign(c)
    m ← β2 m + (1 − β2) g

    One state buffer and no square root.  Weight decay is decoupled, as in the paper and
    every library: θ ← θ (1 − η λ) first (decoupled_weight_decay=False: L2 decay instead).
    lion-pytorch, optax and bitsandbytes use these formulas and defaults (lion-pytorch's
    decoupled_weight_decay=True divides λ by the initial learning rate: pass λ/η0 here).
    Its η is typically 3-10x smaller than AdamW's, λ 3-10x larger.  gdfast.torch.Lion is
    lion-pytorch's class on this kernel.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.0001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.99)
        (β1, β2), each in [0, 1).
    {TRANSFORM_DOC}
        (Lion's decay is decoupled in every convention.)

    State: exp_avg = m.
    """
    rule = "Lion"
    catalogue_order = 12
    state_names = ("exp_avg",)
    lr = Hyperparameter(check.learning_rate, 1e-4)
    betas = Hyperparameter(check.betas, (0.9, 0.99), kernel=("beta1", "beta2"))
    decoupled_weight_decay = Hyperparameter(
        check.flag, presets={"paper": True, "torch": True, "keras": True}
    )
    kernel = "lion"
    numpy_core = lion
    torch_equivalent = None  # not in torch.optim: gdfast.torch.Lion is lion-pytorch's class
    # the middle of the working range of trajectories.sweep (scripts/make_guide.py); saddle 0.01
    gallery_lr = {"beale": 0.001, "rosenbrock": 0.0003, "saddle": 0.01, "ravine": 0.003}
    adaptive = True
