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


# ---------------------------------------------------------------- the digits MLP in torch
def _bench():
    """bench/lowp_convergence.py (one definition of the runs: the test and the table agree)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "lowp_convergence.py"
    spec = importlib.util.spec_from_file_location("lowp_convergence", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEEDS = (0, 1, 2)
EPOCHS = 20


def _median_ratio(bench, config, baseline):
    """Median over SEEDS of config's final validation loss over the baseline's, seed by seed."""
    import statistics

    return statistics.median(
        bench.torch_run(config, seed, EPOCHS)[0] / baseline[seed] for seed in SEEDS
    )


@pytest.fixture(scope="module")
def digits_baseline():
    pytest.importorskip("sklearn")
    bench = _bench()
    torch.set_num_threads(1)
    return bench, {s: bench.torch_run("fp32 params, fp32 state", s, EPOCHS)[0] for s in SEEDS}


# issue 12's convergence targets: within 1% of float32 state's final validation loss, 2% for
# stochastic rounding without master weights (torch MLP 64-128-10 on digits, AdamW lr 1e-3,
# 20 epochs; bench/lowp_convergence.py prints the whole table)
TARGETS = [
    ("fp32 params, bf16 state, stochastic", 1.01),
    ("fp32 params, int8 state", 1.01),
    ("bf16 params + master, fp32 state", 1.01),
    ("bf16 params + master, int8 state", 1.01),
    ("bf16 params, no master, stochastic", 1.02),
]


@pytest.mark.slow
@pytest.mark.parametrize("config, limit", TARGETS, ids=[t[0] for t in TARGETS])
def test_digits_torch_final_validation_loss_target(digits_baseline, config, limit):
    bench, baseline = digits_baseline
    assert _median_ratio(bench, config, baseline) <= limit


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="measured: bfloat16 state with nearest rounding ends ~2% above float32 state "
    "(Adam's second moment: (1 - beta2) g^2 is below half an ulp of v, so v lags); "
    "stochastic rounding of the state meets the 1% target (issue 12, reported)",
)
@pytest.mark.parametrize("config", ["fp32 params, bf16 state", "bf16 params + master, bf16 state"])
def test_digits_torch_bfloat16_state_nearest_target(digits_baseline, config):
    bench, baseline = digits_baseline
    assert _median_ratio(bench, config, baseline) <= 1.01


@pytest.mark.slow
def test_digits_torch_nearest_rounding_without_master_stalls(digits_baseline):
    """The failure on a real model: bfloat16 parameters without a master copy, nearest
    rounding, end far above float32 (measured 1.7x) once the updates fall below half an ulp."""
    bench, baseline = digits_baseline
    assert _median_ratio(bench, "bf16 params, no master, nearest", baseline) > 1.2
