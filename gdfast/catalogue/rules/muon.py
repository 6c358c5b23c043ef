"""Muon, momentum orthogonalised by Newton–Schulz (Jordan et al. 2024, "Muon: An optimizer
for hidden layers in neural networks"), as torch.optim.Muon (2.13).

The rule's NumPy core (docs/spec.md section 1.3 in code, part of gdfast.reference) and its
declaration (gdfast.catalogue).  Its C step is two kernels (src_c/rules/muon.inc: the
momentum, then the parameter update) with the Newton–Schulz iteration between them in NumPy
(`newton_schulz`, matrix products: BLAS), the same function the reference calls.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, Hyperparameter, Rule
from .._numpy_core import ieee_nonstop
from .lamb import scaled_gradient
from .schedule_free import lerp

# Keller Jordan's quintic coefficients (torch's defaults)
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def as_matrix(array):
    """The matrix Muon orthogonalises for a parameter: a 2-D one as it is; one of three or
    more dimensions as (shape[0], the rest) (Keller Jordan's rule for convolution filters);
    a 1-D or 0-d one as a single row (spec 1.3: torch refuses them)."""
    array = np.asarray(array)
    if array.ndim == 2:
        return array
    return array.reshape(array.shape[0], -1) if array.ndim > 2 else array.reshape(1, -1)


def newton_schulz(matrix, coefficients=NS_COEFFICIENTS, steps=5, eps=1e-7):
    """Spec 1.3: the quintic Newton–Schulz iteration towards the orthogonal factor of a 2-D
    array, in its dtype.  NumPy matrix products (BLAS): the result depends on the BLAS (its
    kernels, its thread count), so the C backend calls this same function."""
    a, b, c = coefficients
    wide = matrix.shape[0] <= matrix.shape[1]
    x = matrix if wide else matrix.T
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        gram_update = b * gram + c * (gram @ gram)
        x = a * x + gram_update @ x
    return x if wide else x.T


def newton_schulz_flops(m, n, steps=5):
    """Floating-point operations of `newton_schulz` on a wide m × n matrix (m <= n), counted
    as the code computes them: the normalisation 3mn (‖X‖²: 2mn, X / ‖X‖: mn) and, per
    iteration, X Xᵀ 2m²n, A A 2m³, b A + c A A 3m², (…) X 2m²n, a X + … 2mn."""
    per_iteration = 2 * m * m * n + 2 * m**3 + 3 * m * m + 2 * m * m * n + 2 * m * n
    return 3 * m * n + steps * per_iteration


def muon_lr(lr, match_rms_adamw, shape):
    """η_adj of an A × B matrix: η √max(1, A/B) (Keller Jordan's, torch's "original"), or
    0.2 η √max(A, B) (Moonshot's, torch's "match_rms_adamw")."""
    rows, cols = shape
    if match_rms_adamw:
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr * math.sqrt(max(1, rows / cols))


@ieee_nonstop
def muon(
    params,
    grads,
    momentum_buffer,
    steps,
    *,
    lr,
    momentum,
    weight_decay=0.1,
    nesterov=True,
    ns_coefficients=NS_COEFFICIENTS,
    eps=1e-7,
    ns_steps=5,
    match_rms_adamw=False,
    maximize=False,
    grad_scale=1.0,
):
    """Spec 1.3: B ← lerp(B, g, 1 − μ) ; D = lerp(g, B, μ) (nesterov) or B ; O = NS_k(D) ;
    θ ← θ (1 − η λ) ; θ ← θ − η_adj O.  A tensor of size 0 is left as it is."""
    for theta, g, buffer in zip(params, grads, momentum_buffer):
        if theta.size == 0:
            continue
        g = scaled_gradient(g, maximize, grad_scale)
        buffer[...] = lerp(buffer, g, 1 - momentum)
        direction = lerp(g, buffer, momentum) if nesterov else buffer
        orthogonal = newton_schulz(as_matrix(direction), ns_coefficients, ns_steps, eps)
        theta *= 1 - lr * weight_decay
        theta -= muon_lr(lr, match_rms_adamw, orthogonal.shape) * orthogonal.reshape(theta.shape)


def muon_kernel_core(momentum_kernel, update_kernel) -> Callable[..., None]:
    """The C backend's core: the kernel's momentum over every tensor (writing each direction
    D into a new array), `newton_schulz` per tensor, then the kernel's update over every
    tensor with η_adj per tensor (a 0-d float64 array each)."""

    @ieee_nonstop
    def core(
        params,
        grads,
        momentum_buffer,
        steps,
        *,
        lr,
        weight_decay,
        ns_coefficients,
        eps,
        ns_steps,
        match_rms_adamw,
        **momentum_hyper,  # momentum, nesterov, maximize (and grad_scale): the first kernel's
    ):
        active = [i for i, theta in enumerate(params) if theta.size]  # size 0: nothing to do
        steps = np.asarray(steps)[active]
        directions = [np.empty_like(params[i]) for i in active]
        momentum_kernel(
            directions,
            [grads[i] for i in active],
            [momentum_buffer[i] for i in active],
            steps,
            **momentum_hyper,
        )
        orthogonal, rates = [], []
        for direction in directions:
            o = newton_schulz(as_matrix(direction), ns_coefficients, ns_steps, eps)
            rates.append(np.array(muon_lr(lr, match_rms_adamw, o.shape), dtype=np.float64))
            orthogonal.append(np.ascontiguousarray(o).reshape(direction.shape))
        update_kernel(
            [params[i] for i in active], orthogonal, rates, steps, lr=lr, weight_decay=weight_decay
        )

    core.takes_rows = False  # as every gdfast.optim.KERNELS entry answers: no row-sparse form
    return core


def _kernels() -> tuple[Any, Any]:
    """The two calls of a step to the rule's C kernel (src_c/rules/muon.inc), as
    gdfast._kernels.Kernel: the momentum (muon_update 0, the default), the update."""
    from ... import _kernels  # compiled: only the C backend asks for it

    momentum = _kernels.Kernel(
        "muon",
        {"momentum": "momentum", "nesterov": "nesterov", "maximize": "maximize"},
        lambda hyper: ("momentum_buffer",),
    )
    # η_adj per tensor goes to the kernel as a per-tensor scalar (gd_tensors.mu_product)
    update = _kernels.Kernel(
        "muon",
        {"lr": "lr", "weight_decay": "weight_decay", "muon_update": "muon_update"},
        lambda hyper: ("lr_adjusted",),
        ("lr_adjusted",),
    )
    return momentum, functools.partial(update, muon_update=True)


class Muon(Rule):
    __doc__ = f"""Muon (Jordan et al. 2024), torch.optim.Muon's form: momentum, orthogonalised
    by a Newton–Schulz iteration, as the step of a weight matrix.

    B ← lerp(B, g, 1 − μ) ;  D = lerp(g, B, μ) (nesterov) or B
    O = NS_k(D): X = D (transposed if taller than wide) / max(‖D‖, ε) ; k times:
        A = X Xᵀ ; X ← a X + (b A + c A A) X
    θ ← θ (1 − η λ) ;  θ ← θ − η_adj O,  η_adj = η √max(1, A/B) for an A × B matrix
        (match_rms_adamw: 0.2 η √max(A, B))

    Made for the 2-D weight matrices of hidden layers; Muon's authors (and torch's docs)
    give the other parameters (biases, gains, embeddings, the output layer) to AdamW: use
    two optimizers.  torch.optim.Muon refuses a parameter that is not 2-D (so does
    gdfast.torch.Muon); this class orthogonalises it as a matrix instead: one of three or
    more dimensions as (shape[0], the rest), Keller Jordan's rule for convolution filters;
    a 1-D or 0-d one as a single row, whose orthogonal factor is D / ‖D‖ (a step of norm
    about η: normalised SGD with momentum).

    The Newton–Schulz iteration runs in the parameter's dtype with NumPy matrix products
    (BLAS); torch's runs in bfloat16 (its steps differ by a few percent).  Its result depends
    on the BLAS (its kernels and thread count); the momentum and the update are C kernels
    (the same bits for any thread count).  Not element-wise: no dtype policy,
    float32/float64 only.

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.001
        η (>= 0), torch's default (Keller Jordan's code: 0.02).
    momentum : float, default 0.95
        μ (>= 0).
    weight_decay : float, default 0.1
        λ (>= 0): θ ← θ (1 − η λ), decoupled, with η (not η_adj), as torch.
    nesterov : bool, default True
        D = lerp(g, B, μ); False: D = B.
    ns_coefficients : (float, float, float), default (3.4445, -4.775, 2.0315)
        (a, b, c), Keller Jordan's quintic.
    eps : float, default 1e-7
        ε (> 0): X = D / max(‖D‖, ε).
    ns_steps : int, default 5
        k, in [0, 100).
    match_rms_adamw : bool, default False
        η_adj = 0.2 η √max(A, B) (Moonshot, "Muon is Scalable for LLM Training"; torch's
        adjust_lr_fn="match_rms_adamw"); False: torch's "original".
    maximize : bool, default False
        Ascend: g ← −g.

    State: momentum_buffer = B (torch's name).  Steps are counted (`steps`) but Muon's
    update does not depend on t.
    """
    rule = "Muon"
    catalogue_order = 20
    state_names = ("momentum_buffer",)
    lr = Hyperparameter(check.learning_rate, 1e-3)
    momentum = Hyperparameter(check.nonnegative, 0.95)
    weight_decay = Hyperparameter(check.nonnegative, 0.1)
    nesterov = Hyperparameter(check.flag, True, keyword=True)
    ns_coefficients = Hyperparameter(
        check.muon_ns_coefficients, NS_COEFFICIENTS, keyword=True, kernel=None
    )
    eps = Hyperparameter(check.positive, 1e-7, keyword=True, kernel=None)
    ns_steps = Hyperparameter(check.muon_ns_steps, 5, keyword=True, kernel=None)
    match_rms_adamw = Hyperparameter(check.flag, False, keyword=True, kernel=None)
    decoupled_weight_decay = None  # always decoupled, with η (torch's)
    kernel = "muon"
    numpy_core = muon
    # torch.optim.Muon takes 2-D parameters only, so it cannot stand in for this class on
    # any model: gdfast.torch.Muon is its adapter (tests/test_torch_muon.py)
    torch_equivalent = None
    # each step has norm about η on the gallery's 1-D surfaces (a single row: D / ‖D‖)
    # (the sweep's middle of the working range, scripts/make_guide.py checks it)
    gallery_lr = {"beale": 0.003, "rosenbrock": 0.001, "saddle": 0.01, "ravine": 0.01}
    adaptive = False
    elementwise = False  # the Newton–Schulz iteration works on the whole matrix

    @classmethod
    def bind_core(cls, core: Callable[..., None]) -> Callable[..., None]:
        return muon_kernel_core(*_kernels())  # its own two calls: `core` alone is one

    def _largest_scalars(self, hyper: dict[str, Any]) -> dict[str, tuple[str, float]]:
        return {"lr * weight_decay": ("weight_decay", hyper["lr"] * hyper["weight_decay"])}
