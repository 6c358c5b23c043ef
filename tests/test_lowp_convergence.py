"""The failure stochastic rounding fixes (issue 12, SPEC L.3), fast: Adam on a noisy
quadratic with bfloat16 parameters and no master copy.  Its ~1e-3 steps are below half an
ulp of bfloat16 at |θ| in [1, 2) (2^-8): nearest rounding never moves a parameter,
stochastic rounding moves them on average as far as float32 does.  The digits figures are
bench/lowp_convergence.py's."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ml_dtypes")
import gdfast.torch as gt  # noqa: E402


def quadratic(dtype, steps=200, n=10_000, **policy):
    gen = torch.Generator().manual_seed(0)
    theta0 = 1 + torch.rand(n, generator=gen)
    target = theta0 - 0.1
    param = theta0.to(dtype)
    start = param.clone()
    optimizer = gt.Adam([param], lr=1e-3, **policy)
    for _ in range(steps):
        noise = 0.01 * torch.randn(n, generator=gen)
        param.grad = ((param.float() - target) + noise).to(dtype)
        optimizer.step()
    loss = 0.5 * float(((param.double() - target.double()) ** 2).sum())
    return loss / (0.5 * 0.01 * n), float((param == start).float().mean())


def test_nearest_rounding_stalls_and_stochastic_rounding_does_not():
    fp32, _ = quadratic(torch.float32)
    nearest, frozen = quadratic(torch.bfloat16)
    stochastic, moving_frozen = quadratic(torch.bfloat16, rounding="stochastic", seed=1)
    master, _ = quadratic(torch.bfloat16, master_weights=True)
    assert frozen == 1.0 and nearest == pytest.approx(1.0, rel=1e-2)  # nothing moved
    assert moving_frozen < 0.01
    assert fp32 < 0.01 and stochastic < 0.05 and master < 0.05
