"""gdfast.torch.LAMB against pytorch-optimizer 4.1.0's Lamb and gdfast.torch.Adafactor
against torch 2.13's Adafactor: 100 steps of the same model, each constructor option, both
dtypes; every parameter and state entry within 1e-10 (float64) / 1e-5 (float32), relative
to its largest magnitude."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the 'test' extra)")
import gdfast.torch as gt  # noqa: E402

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
STEPS = 100


def model(dtype):
    generator = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(
        dtype
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, dtype=dtype, generator=generator) * 0.5)
    return net


def trajectory(make, dtype, sign):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(32, 6, dtype=dtype, generator=generator)
    y = torch.randn(32, 3, dtype=dtype, generator=generator)
    net = model(dtype)
    optimizer = make(net.parameters())
    for _ in range(STEPS):
        optimizer.zero_grad()
        (sign * ((net(x) - y) ** 2).mean()).backward()
        optimizer.step()
    return net, optimizer


def relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)) if b.size else 0.0


def assert_parity(ours, theirs, dtype, names, sign):
    (net, optimizer), (their_net, their_optimizer) = (
        trajectory(ours, dtype, sign),
        trajectory(theirs, dtype, sign),
    )
    start = model(dtype)
    moved = max(
        relative(p.detach(), q.detach()) for p, q in zip(net.parameters(), start.parameters())
    )
    assert moved > 1e-3
    for p, q in zip(net.parameters(), their_net.parameters()):
        assert relative(p.detach(), q.detach()) <= TOLERANCE[dtype]
        for name in names:
            if name in their_optimizer.state[q]:
                assert (
                    relative(optimizer.state[p][name], their_optimizer.state[q][name])
                    <= (TOLERANCE[dtype])
                ), name
            else:
                assert name not in optimizer.state[p]


LAMB_CONFIGS = [
    {},
    {"lr": 1e-2, "betas": (0.8, 0.99)},
    {"weight_decay": 0.01},
    {"weight_decay": 0.01, "weight_decouple": False},
    {"grad_averaging": False},
    {"eps": 1e-8},
    {"maximize": True},
]


@DTYPES
@pytest.mark.parametrize("config", LAMB_CONFIGS, ids=str)
def test_lamb_matches_pytorch_optimizer(config, dtype):
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    assert_parity(
        lambda params: gt.LAMB(params, **config),
        lambda params: pytorch_optimizer.Lamb(params, foreach=False, **config),
        dtype,
        ("exp_avg", "exp_avg_sq"),
        -1.0 if config.get("maximize") else 1.0,
    )


ADAFACTOR_CONFIGS = [
    {},
    {"lr": 1e-3},
    {"beta2_decay": -0.5},
    {"eps": (1e-20, 1e-2)},
    {"d": 2.0},
    {"weight_decay": 0.01},
    {"maximize": True},
]


@DTYPES
@pytest.mark.parametrize("config", ADAFACTOR_CONFIGS, ids=str)
def test_adafactor_matches_torch(config, dtype):
    assert_parity(
        lambda params: gt.Adafactor(params, **config),
        lambda params: torch.optim.Adafactor(params, foreach=False, **config),
        dtype,
        ("row_var", "col_var", "variance"),
        -1.0 if config.get("maximize") else 1.0,
    )


def test_lamb_refuses_the_options_gdfast_does_not_offer():
    param = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="rectify=True: pytorch-optimizer's option"):
        gt.LAMB([param], rectify=True)
    with pytest.raises(ValueError, match="eps: expected a finite number > 0"):
        gt.LAMB([param], eps=0.0)


def test_adafactor_state_is_torchs_format():
    weight, bias = torch.zeros(4, 3, requires_grad=True), torch.zeros(3, requires_grad=True)
    optimizer = gt.Adafactor([weight, bias])
    weight.grad, bias.grad = torch.ones(4, 3), torch.ones(3)
    optimizer.step()
    assert set(optimizer.state[weight]) == {"step", "row_var", "col_var"}
    assert optimizer.state[weight]["row_var"].shape == (4, 1)
    assert optimizer.state[weight]["col_var"].shape == (1, 3)
    assert set(optimizer.state[bias]) == {"step", "variance"}
    assert optimizer.state[bias]["step"].item() == 1.0
