"""LAMB, layer-wise adaptive moments (You et al. 2020, "Large Batch Optimization for Deep
Learning: Training BERT in 76 minutes", Algorithm 2).

The rule's NumPy core (docs/spec.md section 1.3 in code, part of gdfast.reference) and its
declaration (gdfast.catalogue); its kernel is src_c/rules/lamb.inc, two passes
(src_c/two_pass.inc): the per-tensor norms are reduced in a fixed order.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ... import _validation as check
from .._machinery import (
    PARAMS_DOC,
    Hyperparameter,
    Rule,
    Sweep,
    two_pass_kernel,
)
from .._numpy_core import gradient_transform, ieee_nonstop
from .adam import BETAS


# docs/spec-reductions.md's order (src_c/reduce.c, and the kernels' pass 1): blocks of
# 4096 elements, lanes of 16.
SUM_BLOCK, SUM_LANES = 4096, 16


def fixed_order_sum(squares):
    """Σ over the last axis of the float64 array `squares`, in docs/spec-reductions.md's
    order, literally: blocks of 4096 elements in memory order; in a block, element i into
    lane i mod 16 (in element order, from +0.0); the block's sum = lane 0 + ... + lane 15 in
    order; the sum = its block sums in block order, from +0.0.  The kernels sum in this order
    (so that no result depends on the thread count): kernel and reference agree bit for
    bit.  Returns an array of the leading shape."""
    squares = np.asarray(squares, dtype=np.float64)
    lead, size = squares.shape[:-1], squares.shape[-1]
    rows = squares.reshape(math.prod(lead), size)
    blocks = -(-size // SUM_BLOCK)
    padded = np.zeros((rows.shape[0], blocks * SUM_BLOCK))
    padded[:, :size] = rows  # padding adds +0.0 to a lane: no change
    padded = padded.reshape(rows.shape[0], blocks, SUM_BLOCK // SUM_LANES, SUM_LANES)
    lanes = np.zeros((rows.shape[0], blocks, SUM_LANES))
    for row in range(SUM_BLOCK // SUM_LANES):  # element order within each lane
        lanes = lanes + padded[:, :, row, :]
    block_sums = np.zeros((rows.shape[0], blocks))
    for lane in range(SUM_LANES):
        block_sums = block_sums + lanes[:, :, lane]
    total = np.zeros(rows.shape[0])
    for block in range(blocks):
        total = total + block_sums[:, block]
    return total.reshape(lead)


def fixed_order_norm(array):
    """‖array‖ = √Σx² over the whole array, each x squared in float64, the sum in the fixed
    order (fixed_order_sum)."""
    x = np.ascontiguousarray(array).reshape(-1).astype(np.float64)
    return math.sqrt(float(fixed_order_sum(x * x)))


def scaled_gradient(g, maximize, grad_scale):
    """g · c, then −g to maximize: the gradient transform without its weight decay, for the
    rules that place their decay themselves (LAMB, Adafactor)."""
    return gradient_transform(None, g, 0.0, 0.0, False, maximize, grad_scale)


@ieee_nonstop
def lamb(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    bias_correction=True,
    grad_averaging=True,
    trust_clip=math.inf,
    eps_in_trust_ratio=False,
    debias_step_size=False,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """Spec 1.3: Adam's direction r, u = r + λ θ, θ ← θ − η (φ(‖θ‖) / ‖u‖) u per tensor."""
    beta1, beta2 = betas
    for theta, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, map(int, steps)):
        g = scaled_gradient(g, maximize, grad_scale)
        m[...] = beta1 * m + (1 - beta1 if grad_averaging else 1.0) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        if weight_decay != 0 and decoupled_weight_decay:
            theta *= 1 - lr * weight_decay
        # m̂ / (√v̂ + ε) as (m a) / (√v b + ε), a = 1/(1 − β1^t), b = 1/√(1 − β2^t): Adam's
        # form, one root and one division an element (a = b = 1 without bias correction)
        a, b = (1 / (1 - beta1**t), 1 / math.sqrt(1 - beta2**t)) if bias_correction else (1.0, 1.0)
        u = (m * a) / (np.sqrt(v) * b + eps)
        if weight_decay != 0 and not decoupled_weight_decay:
            u = u + weight_decay * theta
        weight_norm = min(fixed_order_norm(theta), trust_clip)
        update_norm = fixed_order_norm(u)
        if weight_norm == 0 or update_norm == 0:
            trust = 1.0
        else:
            trust = weight_norm / (update_norm + (eps if eps_in_trust_ratio else 0.0))
        step_size = lr / (1 - beta1**t) if debias_step_size else lr
        theta -= step_size * trust * u


class LAMB(Rule):
    __doc__ = f"""LAMB (You et al. 2020, Algorithm 2): Adam's direction, scaled per tensor by
    the trust ratio ‖θ‖ / ‖u‖.

    m ← β1 m + β3 g ;  v ← β2 v + (1 − β2) g²        (β3 = 1 − β1, or 1)
    m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t)            (bias_correction; else m, v)
    r = m̂ / (√v̂ + ε) ;  u = r + λ θ                    (decoupled: θ ← θ (1 − η λ), u = r)
    τ = min(‖θ‖, trust_clip) / (‖u‖ + ε_τ), 1 where either norm is 0
    θ ← θ − η τ u                                       (debias_step_size: η / (1 − β1^t))

    Norms over the whole tensor, summed in double in the fixed order of
    docs/spec-reductions.md (the same bits for any thread count).  Not element-wise: no dtype policy, float32/float64 only.  No torch.optim
    counterpart; convention="torch" is pytorch-optimizer's `Lamb` (gdfast.torch.LAMB).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-6
        ε (> 0).
    weight_decay : float, default 0.0
        λ (>= 0): in u (scaled by τ, the paper's), or decoupled (below).
    bias_correction : bool, optional
        m̂, v̂ bias-corrected.  Preset: paper True, torch False (pytorch-optimizer), keras
        True.
    grad_averaging : bool, default True
        β3 = 1 − β1 (False: β3 = 1).
    trust_clip : float, optional
        φ(z) = min(z, trust_clip) on ‖θ‖ (> 0; inf: none).  Preset: paper inf, torch 10,
        keras inf.
    eps_in_trust_ratio : bool, optional
        ε_τ = ε (else 0).  Preset: paper False, torch True, keras False.
    debias_step_size : bool, optional
        Step size η / (1 − β1^t).  Preset: paper False, torch True, keras False.
    decoupled_weight_decay : bool, optional
        θ ← θ (1 − η λ) before the norms instead of λ θ in u.  Preset: paper False, torch
        True (pytorch-optimizer's weight_decouple), keras True.
    maximize : bool, default False
        Ascend: g ← −g.
    convention : {{"paper", "torch", "keras"}}, default "paper"
        The value of every option left as None.

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "LAMB"
    catalogue_order = 16
    state_names = ("exp_avg", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate, 0.001)
    betas = BETAS
    eps = Hyperparameter(check.positive, 1e-6)
    bias_correction = Hyperparameter(
        check.flag, presets={"paper": True, "torch": False, "keras": True}
    )
    grad_averaging = Hyperparameter(check.flag, True, keyword=True)
    trust_clip = Hyperparameter(
        check.positive_or_infinite,
        presets={"paper": math.inf, "torch": 10.0, "keras": math.inf},
        in_double=True,
    )
    eps_in_trust_ratio = Hyperparameter(
        check.flag, presets={"paper": False, "torch": True, "keras": False}
    )
    debias_step_size = Hyperparameter(
        check.flag, presets={"paper": False, "torch": True, "keras": False}
    )
    decoupled_weight_decay = Hyperparameter(
        check.flag, presets={"paper": False, "torch": True, "keras": True}
    )
    kernel = "lamb"
    numpy_core = lamb
    torch_equivalent = None  # pytorch-optimizer's Lamb: gdfast.torch.LAMB
    # the sweep's middle of the working range (scripts/make_guide.py checks it); Rosenbrock:
    # no rate of the grid converges within the budget, the lowest final loss
    gallery_lr = {"beale": 0.0003, "rosenbrock": 0.003, "saddle": 0.01, "ravine": 0.03}
    adaptive = True
    elementwise = False  # τ reduces over the tensor

    def sweeps(self, index: int) -> tuple[Sweep, ...]:
        # pass 1 updates m and v and sums θ², u² (θ written only by the decoupled decay);
        # pass 2 forms u again from m and v and updates θ (src_c/rules/lamb.inc)
        decays = self._hyper["weight_decay"] != 0 and self._hyper["decoupled_weight_decay"]
        moments = ("exp_avg", "exp_avg_sq")
        first = (("grad",), ("param", *moments)) if decays else (("param", "grad"), moments)
        return (first, (moments, ("param",)))

    @classmethod
    def bind_core(cls, core: Callable[..., None]) -> Callable[..., None]:
        return two_pass_kernel(cls)  # its own entry point: `core` (one pass) writes nothing

    def _largest_scalars(self, hyper: dict[str, Any]) -> dict[str, tuple[str, float]]:
        scalars = super()._largest_scalars(hyper)
        if hyper["debias_step_size"]:  # η / (1 − β1^t), largest at t = 1
            scalars["lr / (1 - betas[0])"] = ("lr", hyper["lr"] / (1.0 - hyper["betas"][0]))
        return scalars
