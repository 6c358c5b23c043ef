"""gdfast.torch.ScheduleFreeAdamW and ScheduleFreeSGD against the schedulefree package
(1.4.1), whose constructors, defaults, param-group keys and state they take.

For each class and each constructor option: train() then 100 steps on test_torch_parity's
model (five tensors, one frozen, one step with a None gradient), eval(), train() again: every
parameter, every state entry and the group's k, weight_sum and lr_max within 1e-10 relative
in float64 and 1e-5 in float32, after the steps and after each switch.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
schedulefree = pytest.importorskip("schedulefree")
import gdfast.torch as gt  # noqa: E402
import test_torch_parity as parity  # noqa: E402  (its helpers: Model, data, relative, ...)

TOLERANCE = parity.TOLERANCE
DTYPES = pytest.mark.parametrize("dtype", parity.DTYPES, ids=parity.DTYPE_IDS)

CONFIGS = {
    "ScheduleFreeAdamW": [
        {},
        {"lr": 1e-3, "betas": (0.95, 0.99), "eps": 1e-6},
        {"warmup_steps": 20},
        {"weight_decay": 0.01},
        {"r": 1.0, "weight_lr_power": 1.0},
        {"lr": 0.01, "warmup_steps": 10, "weight_decay": 0.05, "foreach": False},
    ],
    "ScheduleFreeSGD": [
        {"lr": 0.1},
        {"lr": 0.05, "momentum": 0.8},
        {"lr": 0.1, "warmup_steps": 20, "weight_decay": 0.01},
        {"lr": 0.1, "r": 0.5, "weight_lr_power": 1.0},
        {},
        {"lr": 0.1, "foreach": False},
    ],
}
THEIRS = {
    "ScheduleFreeAdamW": schedulefree.AdamWScheduleFree,
    "ScheduleFreeSGD": schedulefree.SGDScheduleFree,
}
CASES = [(name, config) for name, configs in CONFIGS.items() for config in configs]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in c.items()) or 'defaults'}" for name, c in CASES]


def train(model, optimizer, x, y, steps=100, none_at=37):
    optimizer.train()
    for step in range(steps):
        optimizer.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        if step == none_at:
            model.first.bias.grad = None  # one step without this gradient
        optimizer.step()


def assert_same(theirs_model, ours_model, theirs, ours, tolerance):
    parity.assert_same(theirs_model, ours_model, theirs, ours, tolerance)
    for mine, package in zip(ours.param_groups, theirs.param_groups):
        assert mine["k"] == package["k"]
        assert mine["train_mode"] == package["train_mode"]
        for key in ("weight_sum", "lr_max", "scheduled_lr"):
            assert abs(mine[key] - package[key]) <= tolerance * abs(package[key]), key


@DTYPES
@pytest.mark.parametrize("name, config", CASES, ids=IDS)
def test_hundred_steps_and_the_switch_match_schedulefree(name, config, dtype):
    x, y = parity.data(dtype)
    theirs_model, ours_model = parity.Model(dtype), parity.Model(dtype)
    theirs = THEIRS[name](theirs_model.parameters(), **config)
    ours = getattr(gt, name)(ours_model.parameters(), **config)
    assert sorted(ours.param_groups[0]) == sorted(theirs.param_groups[0])
    train(theirs_model, theirs, x, y)
    train(ours_model, ours, x, y)
    assert not ours.state.get(ours_model.frozen)
    assert_same(theirs_model, ours_model, theirs, ours, TOLERANCE[dtype])
    assert parity.relative(ours_model.first.weight, parity.Model(dtype).first.weight) > 1e-4
    for switch in ("eval", "train"):
        getattr(theirs, switch)()
        getattr(ours, switch)()
        assert_same(theirs_model, ours_model, theirs, ours, TOLERANCE[dtype])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_step_in_eval_mode_raises_as_the_package_does(name):
    model = parity.Model(torch.float64)
    ours = getattr(gt, name)(model.parameters(), lr=0.1)  # the package's: eval mode at first
    ((model(torch.ones(2, 6, dtype=torch.float64))) ** 2).sum().backward()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"eval mode .* call optimizer.train\(\)"):
        ours.step()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    ours.train()
    ours.step()
    assert ours.param_groups[0]["k"] == 1


@pytest.mark.parametrize(
    "name, config, message",
    [
        ("ScheduleFreeSGD", {"momentum": 1.0}, r"momentum: expected a number in \(0, 1\)"),
        ("ScheduleFreeAdamW", {"betas": (0.0, 0.999)}, r"betas\[0\]: expected a number in"),
        ("ScheduleFreeAdamW", {"warmup_steps": -1}, r"warmup_steps"),
        ("ScheduleFreeAdamW", {"lr": -1.0}, r"lr"),
    ],
)
def test_bad_options_raise(name, config, message):
    with pytest.raises(ValueError, match=message):
        getattr(gt, name)(parity.Model(torch.float64).parameters(), **config)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_round_trip_continues_as_the_package_does(name):
    """10 steps, eval(), state_dict into a new optimizer (and the model's weights into a new
    model), then 5 more steps of each: the same as the package doing the same."""
    x, y = parity.data(torch.float64)
    finals = []
    for make in (THEIRS[name], getattr(gt, name)):
        model = parity.Model(torch.float64)
        optimizer = make(model.parameters(), lr=0.01)
        train(model, optimizer, x, y, steps=10)
        optimizer.eval()
        copy = parity.Model(torch.float64)
        copy.load_state_dict(model.state_dict())
        restored = make(copy.parameters(), lr=0.01)
        restored.load_state_dict(optimizer.state_dict())
        assert restored.param_groups[0]["train_mode"] is False
        assert restored.param_groups[0]["k"] == 10
        train(copy, restored, x, y, steps=5)
        finals.append([p.detach().clone() for p in copy.parameters()])
    for theirs, ours in zip(*finals):
        assert parity.relative(ours, theirs) <= TOLERANCE[torch.float64]
