"""Momentum and Nesterov: heavy-ball and Nesterov momentum (SPEC.md 1, 1.1).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/momentum.inc.
"""

from __future__ import annotations


import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop


@ieee_nonstop
def momentum(
    params,
    grads,
    velocity,
    steps,
    *,
    lr,
    momentum,
    dampening=0.0,
    lr_in_buffer=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    for theta, g, v, t in zip(params, grads, velocity, map(int, steps)):
        g = gradient_transform(
            theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        damp = 0.0 if t == 1 else dampening  # the first gradient enters whole
        if lr_in_buffer:
            v[...] = momentum * v + (1 - damp) * lr * g
            theta -= v
        else:
            v[...] = momentum * v + (1 - damp) * g
            theta -= lr * v


@ieee_nonstop
def nesterov(
    params,
    grads,
    velocity,
    steps,
    *,
    lr,
    momentum,
    dampening=0.0,
    lr_in_buffer=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1.1's form: the parameters hold φ = θ − γ v and g = ∇J(φ)."""
    for phi, g, v, t in zip(params, grads, velocity, map(int, steps)):
        g = gradient_transform(
            phi, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        damp = 0.0 if t == 1 else dampening
        if lr_in_buffer:
            v[...] = momentum * v + (1 - damp) * lr * g
            phi -= momentum * v + (1 - damp) * lr * g
        else:
            v[...] = momentum * v + (1 - damp) * g
            phi -= lr * (g + momentum * v)


def nesterov_lookahead(theta, velocity, gradient_at, *, lr, momentum):
    """One step of Nesterov's lookahead form, for one array (SPEC 1.1).

    v ← γ v + η ∇J(θ − γ v) ; θ ← θ − v, with the gradient evaluated by the
    callback `gradient_at(point)`.  Not an optimizer: the form `Nesterov` is
    shown to be equivalent to (φ = θ − γ v).
    """
    with np.errstate(all="ignore"):
        velocity[...] = momentum * velocity + lr * gradient_at(theta - momentum * velocity)
        theta -= velocity


_MOMENTUM_OPTIONS_DOC = """dampening : float, default 0.0
        d in [0, 1]: the gradient enters the buffer scaled by 1 − d, except at a
        parameter's first step, where it enters whole (torch's rule; its buffer starts as
        the gradient).
    lr_in_buffer : bool, optional
        True: the buffer holds steps, v ← γ v + (1 − d) η g, θ ← θ − v (SPEC.md, Keras).
        False: it holds gradients, v ← γ v + (1 − d) g, θ ← θ − η v (torch).  Equal at
        a constant η; they differ when η changes during training (a schedule).  Preset:
        paper True, torch False, keras True."""


class _MomentumRule(Rule):
    """Momentum and Nesterov: the same hyper-parameters, options and state."""

    state_names = ("velocity",)
    lr = Hyperparameter(check.learning_rate, 0.01)
    momentum = Hyperparameter(check.nonnegative, 0.9)
    dampening = Hyperparameter(check.decay_rate, 0.0, keyword=True)
    lr_in_buffer = Hyperparameter(
        check.flag, presets={"paper": True, "torch": False, "keras": True}
    )
    adaptive = False


class Momentum(_MomentumRule):
    __doc__ = f"""Gradient descent with (heavy-ball) momentum.

    v ← γ v + η g
    θ ← θ − v

    With the options: v ← γ v + s g, θ ← θ − o v, where (s, o) = ((1 − d) η, 1) with
    lr_in_buffer (paper, Keras's SGD(momentum)) and (1 − d, η) without (torch.optim.SGD).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    momentum : float, default 0.9
        γ (>= 0).
    {_MOMENTUM_OPTIONS_DOC}
    {TRANSFORM_DOC}

    State: velocity = v (torch's momentum_buffer).
    """
    rule = "Momentum"
    catalogue_order = 2
    kernel = "momentum"
    numpy_core = momentum
    rows = True
    torch_equivalent = TorchEquivalent(
        "SGD", {"momentum": 0.9}, state={"velocity": "momentum_buffer"}
    )
    gallery_lr = {"beale": 0.001, "rosenbrock": 0.0003, "saddle": 0.01, "ravine": 0.03}


class Nesterov(_MomentumRule):
    __doc__ = f"""Nesterov accelerated gradient, in the form of SPEC.md 1.1.

    The lookahead form v ← γ v + η ∇J(θ − γ v) ; θ ← θ − v needs the gradient
    at θ − γ v.  With φ = θ − γ v the same method needs only the gradient at
    the point held, g = ∇J(φ):

    v ← γ v + η g
    φ ← φ − (γ v + η g)        (v the new velocity)

    The parameters hold φ and `step` takes the gradient at φ, as everywhere
    else.  θ is recovered as φ + γ v.  With the options: v ← γ v + s g and
    φ ← φ − o (γ v + i g), where (s, o, i) = ((1 − d) η, 1, (1 − d) η) with lr_in_buffer
    (paper, Keras's SGD(nesterov=True)) and (1 − d, η, 1) without (torch.optim.SGD with
    nesterov=True, which requires d = 0).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    momentum : float, default 0.9
        γ (>= 0).
    {_MOMENTUM_OPTIONS_DOC}
    {TRANSFORM_DOC}

    State: velocity = v (torch's momentum_buffer).
    """
    rule = "Nesterov"
    catalogue_order = 3
    kernel = "nesterov"
    numpy_core = nesterov
    torch_equivalent = TorchEquivalent(
        "SGD", {"momentum": 0.9, "nesterov": True}, state={"velocity": "momentum_buffer"}
    )
    gallery_lr = {"beale": 0.0003, "rosenbrock": 0.0003, "saddle": 0.01, "ravine": 0.01}
