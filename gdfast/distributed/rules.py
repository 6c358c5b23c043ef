"""The server-side update rules of SPEC.md section 3 that are not gdfast kernels, in NumPy:
the reference (the spec in code), and what the staleness simulator runs.

Downpour's server rule is Adagrad and runs on gdfast's C kernel (`gdfast.Adagrad` on the
shard).  The parameter server runs AdaptiveRevision as a C kernel
(gdfast.distributed._server_kernels, src_c/adaptive_revision.c), which
tests/test_distributed_kernels.py holds to `adaptive_revision` below bit for bit.  The
rules here work on one flat array (a server's shard), updated in place.

AdaptiveRevision (McMahan & Streeter 2014, "Delay-Tolerant Algorithms for
Asynchronous Distributed Online Learning"), per coordinate, SPEC.md section 3:

    state  z = z' = δ², x, ḡ = 0.  A worker reads (x, ḡ) and later sends (g, ḡ_read).
    ḡ_fwd = ḡ − ḡ_read ; η_old = α/√z' ; z ← z + g² + 2 g ḡ_fwd ;
    z' ← max(z, z') ;
    η = α/√z' ; x ← x − η g + (η_old − η) ḡ_fwd ; ḡ ← ḡ + g

gdfast's parameter server keeps each ḡ_read itself (server.SentGbar: the ḡ it had when it
answered each fetch) instead of sending ḡ to the worker and back: the same values, half
the bytes.

Names: lr = α, eps = δ² (so the default 1e-8 is Adagrad's ε).  gdfast stores z − δ²
(`sum_sq`, zeros at start) and, in place of z', r' = √z' (`sqrt_sum_sq_max`, √δ² at
start): η_old = α/r' needs no square root, and z' ← max(z, z') becomes r' ← max(√z, r')
with √z computed as √((z − δ²) + δ²), one square root per update instead of two.  The
numbers are those of storing z' − δ² and computing √((z' − δ²) + δ²), rounded alike:
adding δ², max and √ are monotone and correctly rounded, so the root of the larger is the
larger root in floating point too; where a negative revision makes (z − δ²) + δ² < 0,
z < z' and the root of max(·, 0), 0, never wins against r' ≥ 0 (the kernel tests hold
this to the two-root form bit for bit).  Every rounding of η is the way Adagrad's kernel
rounds G + ε, so with no delay (ḡ_read = ḡ, so ḡ_fwd = 0) every operation matches
Adagrad's `G ← G + g² ; θ ← θ − η g/√(G + ε)` bit for bit, which the tests check.
"""

from __future__ import annotations

import numpy as np


def adaptive_revision(
    x: np.ndarray,
    grad: np.ndarray,
    gbar_read: np.ndarray,
    gbar: np.ndarray,
    sum_sq: np.ndarray,
    sqrt_sum_sq_max: np.ndarray,
    *,
    lr: float,
    eps: float,
    scratch: np.ndarray | None = None,
) -> None:
    """Apply one AdaptiveRevision update in place (x, gbar, sum_sq, sqrt_sum_sq_max).

    x : the parameters (SPEC x); grad : the pushed gradient g; gbar_read : the ḡ
    the worker read with x; gbar : the server's running sum ḡ; sum_sq : z − δ²;
    sqrt_sum_sq_max : r' = √z'.  All arrays have one shape and dtype; lr = α, eps = δ².
    scratch : optional work space of shape (4, *x.shape) and x's dtype, so that a server
    applying many updates allocates nothing (large temporaries cost page faults).
    """
    if scratch is None:
        scratch = np.empty((4,) + x.shape, dtype=x.dtype)
    gbar_fwd, eta_old, root, step = scratch
    np.subtract(gbar, gbar_read, out=gbar_fwd)
    np.divide(lr, sqrt_sum_sq_max, out=eta_old)  # η_old = α/√z'
    # (z + g²) + 2 g ḡ_fwd, in SPEC order; with ḡ_fwd = 0 the second sum adds an exact 0.
    np.multiply(grad, grad, out=step)
    sum_sq += step
    np.multiply(grad, 2, out=step)
    step *= gbar_fwd
    sum_sq += step
    # r' ← max(√z, r'), √z = √max((z − δ²) + δ², 0)  (module docstring)
    np.add(sum_sq, eps, out=root)
    np.maximum(root, 0, out=root)
    np.sqrt(root, out=root)
    np.maximum(root, sqrt_sum_sq_max, out=sqrt_sum_sq_max)
    root = sqrt_sum_sq_max
    # α (g/√z'), rounded as gdfast's Adagrad rounds η (g/√(G + ε)); with no delay the
    # revision term below is an exact 0 and the whole update is Adagrad's, bit for bit.
    np.divide(grad, root, out=step)
    step *= lr
    x -= step
    np.divide(lr, root, out=step)  # η = α/√z'
    eta_old -= step
    eta_old *= gbar_fwd
    x += eta_old  # + (η_old − η) ḡ_fwd
    gbar += grad


def adaptive_revision_state(x: np.ndarray, eps: float) -> dict[str, np.ndarray]:
    """Fresh AdaptiveRevision state for parameters x and δ² = eps: ḡ and z − δ² zeros,
    √z' = √δ² (rounded in x's dtype, as the kernel computes √(0 + δ²))."""
    root = np.sqrt(np.zeros_like(x) + eps)
    return {"gbar": np.zeros_like(x), "sum_sq": np.zeros_like(x), "sqrt_sum_sq_max": root}


def elastic_exchange(x_local: np.ndarray, center: np.ndarray, alpha: float) -> None:
    """EASGD's asynchronous elastic step, SPEC.md section 3, in place:

    d = α (x_i − x̃) ; x_i ← x_i − d ; x̃ ← x̃ + d        (α = η ρ)
    """
    d = alpha * (x_local - center)
    x_local -= d
    center += d


def easgd_synchronous(
    workers: list[np.ndarray], grads: list[np.ndarray], center: np.ndarray, *, lr: float, rho: float
) -> None:
    """One synchronous EASGD round, SPEC.md section 3, in place, both from the old values:

    x_i ← x_i − η (g_i + ρ (x_i − x̃)) for every i ;
    x̃ ← x̃ + α Σ_i (x_i − x̃),  α = η ρ.
    With ρ = 0 the worker step is `x −= η g` exactly, gdfast.SGD's arithmetic.
    """
    alpha = lr * rho
    pull = np.zeros_like(center)
    for x, g in zip(workers, grads):
        diff = x - center
        pull += diff
        x -= lr * (g + rho * diff)
    center += alpha * pull
