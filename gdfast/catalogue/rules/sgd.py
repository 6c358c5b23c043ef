"""SGD: θ ← θ − η g.

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/sgd.inc.
"""

from __future__ import annotations


from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop


@ieee_nonstop
def sgd(
    params,
    grads,
    steps,
    *,
    lr,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    for theta, g in zip(params, grads):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        theta -= lr * g


class SGD(Rule):
    __doc__ = f"""Stochastic gradient descent.

    θ ← θ − η g

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    {TRANSFORM_DOC}

    (torch.optim.SGD with momentum = 0 is this rule; with momentum see Momentum and
    Nesterov.)
    """
    rule = "SGD"
    catalogue_order = 1
    lr = Hyperparameter(check.learning_rate, 0.01)
    kernel = "sgd"
    numpy_core = sgd
    rows = True
    torch_equivalent = TorchEquivalent("SGD")
    gallery_lr = {"beale": 0.003, "rosenbrock": 0.001, "saddle": 0.01, "ravine": 0.1}
    adaptive = False
