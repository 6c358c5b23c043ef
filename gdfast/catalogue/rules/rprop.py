"""Rprop, resilient backpropagation (Riedmiller & Braun 1993), in torch's iRprop− form.

The rule's NumPy core (docs/spec.md section 1 and 1.3 in code, part of gdfast.reference) and
its declaration (gdfast.catalogue); its kernel is src_c/rules/rprop.inc.
"""

from __future__ import annotations

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, Hyperparameter, Rule, TorchEquivalent
from .._policy import NONNEGATIVE_STATE
from .._numpy_core import gradient_transform, ieee_nonstop


@ieee_nonstop
def rprop(
    params,
    grads,
    prev,
    step_size,
    steps,
    *,
    lr,
    etas,
    step_sizes,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1 (iRprop−): the step sizes grow where the gradient kept its sign, shrink
    where it changed (and that gradient is then taken as 0); θ moves by sign(g) · step.
    `lr` is the step sizes' initial value (the class fills step_size with it)."""
    eta_minus, eta_plus = etas
    smallest, largest = step_sizes
    for theta, g, g_prev, delta in zip(params, grads, prev, step_size):
        g = gradient_transform(None, g, lr, 0.0, False, maximize, grad_scale)  # no decay
        product = g * g_prev
        factor = np.where(product > 0, eta_plus, np.where(product < 0, eta_minus, 1.0))
        delta[...] = np.minimum(np.maximum(delta * factor.astype(delta.dtype), smallest), largest)
        g = np.where(product < 0, g.dtype.type(0), g)
        theta -= np.sign(g) * delta
        g_prev[...] = g


class Rprop(Rule):
    __doc__ = f"""Rprop (Riedmiller & Braun 1993) as torch.optim.Rprop: iRprop− (Igel &
    Hüsken 2000).

    s = g g_prev ;  f = η+ where s > 0, η− where s < 0, 1 elsewhere
    Δ ← min(max(Δ f, Δ_min), Δ_max) ;  g ← 0 where s < 0
    θ ← θ − sign(g) Δ ;  g_prev ← g

    A full-batch method: the sign test misfires on mini-batch noise.  No weight decay (as
    torch's); the gradient transform is maximize (and gdfast.torch's clipping) only.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.01
        The initial step size Δ (>= 0), the value step_size starts at.
    etas : (float, float), default (0.5, 1.2)
        (η−, η+), 0 < η− < 1 < η+.
    step_sizes : (float, float), default (1e-6, 50)
        (Δ_min, Δ_max), 0 <= Δ_min <= Δ_max.
    maximize : bool, default False
        Ascend: g ← −g.
    convention : {{"paper", "torch", "keras"}}, default "paper"
        (Rprop has no named option: every convention is the same rule.)

    State: prev = g_prev (zeros), step_size = Δ (filled with lr at construction).
    """
    rule = "Rprop"
    catalogue_order = 14
    state_names = ("prev", "step_size")
    nonnegative_state = NONNEGATIVE_STATE | {"step_size"}  # 8-bit state: the unsigned map
    lr = Hyperparameter(check.learning_rate, 0.01)
    etas = Hyperparameter(check.rprop_etas, (0.5, 1.2), kernel=("eta_minus", "eta_plus"))
    step_sizes = Hyperparameter(
        check.rprop_step_sizes, (1e-6, 50.0), kernel=("step_size_min", "step_size_max")
    )
    weight_decay = None  # torch's Rprop has none, nor has the paper
    decoupled_weight_decay = None
    kernel = "rprop"
    numpy_core = rprop
    torch_equivalent = TorchEquivalent("Rprop", state={"step_size": "step_size"})
    # the middle of the working range of trajectories.sweep (scripts/make_guide.py); saddle 0.01
    gallery_lr = {"beale": 0.03, "rosenbrock": 0.01, "saddle": 0.01, "ravine": 0.03}
    adaptive = True

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        if name == "step_size":
            return np.full_like(param, self._hyper["lr"])
        return np.zeros_like(param)
