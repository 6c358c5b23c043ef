"""Adagrad (Duchi, Hazan & Singer, 2011).

The rule's NumPy core (SPEC.md in code, part of gdfast.reference) and its declaration
(gdfast.catalogue); its kernel is src_c/rules/adagrad.inc.
"""

from __future__ import annotations


import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, TRANSFORM_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop


@ieee_nonstop
def adagrad(
    params,
    grads,
    sum_sq,
    steps,
    *,
    lr,
    eps,
    lr_decay=0.0,
    initial_accumulator_value=0.0,
    eps_inside_sqrt=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    # initial_accumulator_value: G's value before the first step (the class fills G with it)
    for theta, g, G, t in zip(params, grads, sum_sq, map(int, steps)):
        lr_t = lr / (1 + (t - 1) * lr_decay)
        g = gradient_transform(
            theta, g, lr_t, weight_decay, decoupled_weight_decay, maximize, grad_scale
        )
        G[...] = G + g * g
        if eps_inside_sqrt:
            theta -= lr_t * (g / np.sqrt(G + eps))
        else:
            theta -= lr_t * (g / (np.sqrt(G) + eps))


_EPS_SQRT_DOC = """eps_inside_sqrt : bool, optional
        True: √(· + ε) (SPEC.md, Keras).  False: √(·) + ε (torch).  Preset: paper True,
        torch False, keras True."""

# ε inside or outside the square root (Adagrad, RMSprop): the kernels' eps_inside field.
EPS_INSIDE_SQRT = Hyperparameter(
    check.flag, presets={"paper": True, "torch": False, "keras": True}, kernel="eps_inside"
)


class Adagrad(Rule):
    __doc__ = f"""Adagrad (Duchi, Hazan & Singer, 2011).

    G ← G + g²
    θ ← θ − η_t g / √(G + ε)           η_t = η / (1 + (t − 1) lr_decay)

    eps_inside_sqrt=False (torch): θ ← θ − η_t g / (√G + ε).  G starts at
    initial_accumulator_value.  Library defaults: torch lr 0.01, eps 1e-10,
    initial_accumulator_value 0; Keras lr 0.001, epsilon 1e-7, initial_accumulator_value 0.1.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    eps : float, default 1e-8
        ε (> 0).
    lr_decay : float, default 0.0
        Decay of η with t (>= 0; torch's lr_decay).
    initial_accumulator_value : float, default 0.0
        G before the first step (>= 0).
    {_EPS_SQRT_DOC}
    {TRANSFORM_DOC}
        (Decoupled decay uses η_t.)

    State: sum_sq = G (torch's `sum`).
    """
    rule = "Adagrad"
    catalogue_order = 4
    state_names = ("sum_sq",)
    lr = Hyperparameter(check.learning_rate, 0.01)
    eps = Hyperparameter(check.positive, 1e-8)
    lr_decay = Hyperparameter(check.nonnegative, 0.0, keyword=True)
    # fills sum_sq at construction; the kernel never reads it
    initial_accumulator_value = Hyperparameter(check.nonnegative, 0.0, keyword=True, kernel=None)
    eps_inside_sqrt = EPS_INSIDE_SQRT
    kernel = "adagrad"
    numpy_core = adagrad
    rows = True
    torch_equivalent = TorchEquivalent("Adagrad", state={"sum_sq": "sum"})
    gallery_lr = {"beale": 0.3, "rosenbrock": 0.3, "saddle": 0.01, "ravine": 1.0}
    adaptive = True

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        return np.full_like(param, self._hyper["initial_accumulator_value"])
