"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/adam.inc.
"""

from __future__ import annotations

import math

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop


@ieee_nonstop
def adam(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    eps_hat=False,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    beta1, beta2 = betas
    for theta, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, map(int, steps)):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        if eps_hat:
            lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
            theta -= lr_t * m / (np.sqrt(v) + eps)
        else:
            m_hat = m / (1 - beta1**t)
            v_hat = v / (1 - beta2**t)
            theta -= lr * m_hat / (np.sqrt(v_hat) + eps)


# (β1, β2): the kernels' beta1 and beta2.
BETAS = Hyperparameter(check.betas, (0.9, 0.999), kernel=("beta1", "beta2"))

_EPS_HAT_DOC = """eps_hat : bool, optional
        True: Kingma & Ba's ε̂ form (section 2 of the paper; Keras/TensorFlow):
        θ ← θ − η (√(1 − β2^t)/(1 − β1^t)) m / (√v + ε), i.e. ε is not scaled by the
        bias correction.  Preset: paper False, torch False, keras True."""


class Adam(Rule):
    __doc__ = f"""Adam (Kingma & Ba, 2015).

    m ← β1 m + (1 − β1) g
    v ← β2 v + (1 − β2) g²
    m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
    θ ← θ − η m̂ / (√v̂ + ε)

    torch.optim.Adam uses these formulas; Keras the ε̂ form (eps_hat, epsilon 1e-7).
    With decoupled_weight_decay this is AdamW (see AdamW).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    {_EPS_HAT_DOC}
    {TRANSFORM_DOC}

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "Adam"
    catalogue_order = 7
    _bias_corrected = True
    state_names = ("exp_avg", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate, 0.001)
    betas = BETAS
    eps = Hyperparameter(check.positive, 1e-8)
    eps_hat = Hyperparameter(check.flag, presets={"paper": False, "torch": False, "keras": True})
    kernel = "adam"
    numpy_core = adam
    rows = True
    torch_equivalent = TorchEquivalent("Adam")
    gallery_lr = {"beale": 0.03, "rosenbrock": 0.01, "saddle": 0.01, "ravine": 0.3}
    adaptive = True


class AdamW(Adam):
    __doc__ = f"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    θ ← θ (1 − η λ)
    then the Adam update of θ with the undecayed gradient g (see Adam).

    torch.optim.AdamW's defaults (λ = 0.01).  Keras's AdamW is this rule with eps_hat
    (weight_decay 0.004, epsilon 1e-7).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    weight_decay : float, default 0.01
        λ (>= 0).
    {_EPS_HAT_DOC}
    maximize : bool, default False
        Ascend: g ← −g.
    convention : {{"paper", "torch", "keras"}}, default "paper"
        The value of eps_hat when left as None.

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "AdamW"
    catalogue_order = 8
    variant_of = "Adam"
    rows = False
    # positional, default 0.01 (torch.optim.AdamW's), always decoupled
    weight_decay = Hyperparameter(check.nonnegative, 0.01)
    decoupled_weight_decay = None
    fixed = {"decoupled_weight_decay": True}
    torch_equivalent = TorchEquivalent("AdamW")
