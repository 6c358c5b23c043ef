"""ASGD, averaged SGD (Polyak & Juditsky 1992), in the form torch.optim.ASGD uses.

The rule's NumPy core (docs/spec.md section 1 and 1.3 in code, part of gdfast.reference) and
its declaration (gdfast.catalogue); its kernel is src_c/rules/asgd.inc.
"""

from __future__ import annotations

from ... import _validation as check
from .._machinery import PARAMS_DOC, Hyperparameter, Rule, TorchEquivalent
from .._numpy_core import gradient_transform, ieee_nonstop


def asgd_scalars(t, *, lr, lambd, alpha, t0):
    """(η_t, μ_t) of step t (spec R2 4): the values torch keeps in state['eta'] and
    state['mu'] after step t − 1."""
    eta = lr / (1 + lambd * lr * (t - 1)) ** alpha
    mu = 1.0 if t == 1 else 1 / max(1, t - 1 - t0)
    return eta, mu


@ieee_nonstop
def asgd(
    params,
    grads,
    ax,
    steps,
    *,
    lr,
    lambd,
    alpha,
    t0,
    weight_decay=0.0,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1: θ ← θ (1 − λ η_t) − η_t g ; the average ā of θ from step ⌊t0⌋ + 2 on."""
    for theta, g, average, t in zip(params, grads, ax, map(int, steps)):
        eta, mu = asgd_scalars(t, lr=lr, lambd=lambd, alpha=alpha, t0=t0)
        g = gradient_transform(theta, g, lr, weight_decay, False, maximize, grad_scale)
        theta *= 1 - lambd * eta
        theta -= eta * g
        if mu != 1:
            average[...] = average + (theta - average) * mu
        else:
            average[...] = theta


class ASGD(Rule):
    __doc__ = f"""ASGD: SGD with a decaying rate and Polyak averaging, as torch.optim.ASGD.

    η_t = η / (1 + λ η (t − 1))^α ;  μ_t = 1 at t = 1, else 1 / max(1, t − 1 − t0)
    θ ← θ (1 − λ η_t) − η_t g
    ā ← θ where μ_t = 1, else ā + (θ − ā) μ_t

    Evaluate with ā (state["ax"]): the average of θ from step ⌊t0⌋ + 2 on (a copy of θ
    before).  With the default t0 = 1e6 no average is taken in a short run.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.01
        η (>= 0).
    lambd : float, default 1e-4
        λ, the decay term (>= 0).
    alpha : float, default 0.75
        α, the power of the rate's decay (>= 0).
    t0 : float, default 1e6
        The step from which the average starts (>= 0).
    weight_decay : float, default 0.0
        L2 decay λ_wd (>= 0): g ← g + λ_wd θ (torch's; ASGD has no decoupled form).
    maximize : bool, default False
        Ascend: g ← −g.
    convention : {{"paper", "torch", "keras"}}, default "paper"
        (ASGD has no named option: every convention is the same rule.)

    State: ax = ā.  (torch also keeps eta, mu and step: η_t, μ_t and t here.)
    """
    rule = "ASGD"
    catalogue_order = 15
    state_names = ("ax",)
    lr = Hyperparameter(check.learning_rate, 0.01)
    lambd = Hyperparameter(check.nonnegative, 1e-4)
    alpha = Hyperparameter(check.nonnegative, 0.75)
    t0 = Hyperparameter(check.nonnegative, 1e6)
    decoupled_weight_decay = None  # L2 only, as torch's
    kernel = "asgd"
    numpy_core = asgd
    torch_equivalent = TorchEquivalent("ASGD")
    # the middle of the working range of trajectories.sweep (scripts/make_guide.py); saddle 0.01
    gallery_lr = {"beale": 0.003, "rosenbrock": 0.001, "saddle": 0.01, "ravine": 0.1}
    adaptive = False
