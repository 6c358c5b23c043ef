"""gdfast.torch's checks after construction: a param group's hyper-parameters changed to
invalid values (each step checks them before writing), state dicts of other optimizers
(refused at load, or taken and stepped as torch takes them), non-contiguous parameters of
the per-tensor classes, and the dtype-policy keywords that would have nothing to act on."""

from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")

import gdfast.torch as gt  # noqa: E402

CLASSES = [
    name
    for name in gt.__all__
    if name[0].isupper() and name not in ("StepInBackward", "SparseAdam")
]
#: the classes whose torch.optim namesake takes a Tensor lr (the others refuse one)
TENSOR_LR = [
    name for name in CLASSES if name not in ("Lion", "ScheduleFreeAdamW", "ScheduleFreeSGD")
]


def _stepped(name, shapes=((3, 4), (2, 5)), **options):
    """Two groups, one parameter each, after one step of gradients of ones."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator)) for s in shapes]
    optimizer = getattr(gt, name)([{"params": [p]} for p in params], lr=0.01, **options)
    if hasattr(optimizer, "train"):
        optimizer.train()
    for p in params:
        p.grad = torch.linspace(-1, 1, p.numel()).reshape(p.shape)
    optimizer.step()
    return params, optimizer


def _everything(params, optimizer):
    tensors = [p.detach().clone() for p in params]
    for p in params:
        for key, value in sorted(optimizer.state[p].items()):
            tensors.append(value.clone() if isinstance(value, torch.Tensor) else value)
    return tensors


def _same(a, b):
    return len(a) == len(b) and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(a, b)
    )


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize(
    "value", [-1.0, math.nan, math.inf, "0.1", None, torch.tensor([0.01, 0.02]), torch.tensor(-1.0)]
)
@pytest.mark.parametrize("group", [0, 1])
def test_an_invalid_lr_set_after_construction_is_refused_before_any_write(name, value, group):
    params, optimizer = _stepped(name)
    optimizer.param_groups[group]["lr"] = value
    before = _everything(params, optimizer)
    with pytest.raises((TypeError, ValueError), match=rf"param_groups\[{group}\].*lr"):
        optimizer.step()
    assert _same(before, _everything(params, optimizer))
    assert optimizer.param_groups[group]["lr"] is value  # (nothing normalized either)


@pytest.mark.parametrize(
    "name, key, value",
    [
        ("Adam", "betas", (1.5, 0.9)),
        ("Adam", "eps", -1e-8),
        ("Adam", "weight_decay", math.nan),
        ("SGD", "momentum", -0.5),
        ("SGD", "nesterov", "yes"),
        ("RMSprop", "alpha", 2.0),
        ("Adagrad", "lr_decay", -1.0),
        ("NAdam", "momentum_decay", math.inf),
        ("LAMB", "betas", (0.9, -0.1)),
        ("LAMB", "eps", 0.0),
        ("Adafactor", "d", -1.0),
        ("Muon", "momentum", math.nan),
        ("Muon", "ns_steps", -3),
        ("Lion", "betas", (0.9, 1.5)),
        ("ScheduleFreeAdamW", "warmup_steps", -1),
    ],
)
def test_other_invalid_values_set_after_construction_are_refused(name, key, value):
    params, optimizer = _stepped(name)
    optimizer.param_groups[1][key] = value
    before = _everything(params, optimizer)
    with pytest.raises((TypeError, ValueError), match=rf"param_groups\[1\].*{key}"):
        optimizer.step()
    assert _same(before, _everything(params, optimizer))


@pytest.mark.parametrize("name", CLASSES)
def test_lr_zero_set_after_construction_steps_as_torch(name):
    """lr = 0 is valid (torch accepts it): the step runs; the parameters stay (Rprop's step
    sizes were filled with the first lr: it moves, as torch's)."""
    params, optimizer = _stepped(name)
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    before = [p.detach().clone() for p in params]
    optimizer.step()
    if name != "Rprop":
        assert all(torch.equal(a, p) for a, p in zip(before, params))


# (Muon: torch's Newton-Schulz runs in bfloat16, its steps differ by a few percent)
@pytest.mark.parametrize("name", [n for n in TENSOR_LR if hasattr(torch.optim, n) and n != "Muon"])
def test_a_tensor_lr_set_after_construction_steps_as_torch(name):
    ours_params, ours = _stepped(name)
    theirs_params = [torch.nn.Parameter(p.detach().clone()) for p in ours_params]
    theirs = getattr(torch.optim, name)([{"params": [p]} for p in theirs_params], lr=0.01)
    theirs.load_state_dict(copy.deepcopy(ours.state_dict()))  # (torch loads without copying)
    for optimizer, params in ((ours, ours_params), (theirs, theirs_params)):
        for group in optimizer.param_groups:
            group["lr"] = torch.tensor(0.02)
        for p in params:
            p.grad = torch.linspace(-2, 1, p.numel()).reshape(p.shape)
        optimizer.step()
    for a, b in zip(ours_params, theirs_params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["Lion", "ScheduleFreeAdamW", "ScheduleFreeSGD"])
def test_a_tensor_lr_is_refused_where_there_is_no_torch_step(name):
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="lr"):
        getattr(gt, name)([p], lr=torch.tensor(0.01))
    params, optimizer = _stepped(name)
    optimizer.param_groups[0]["lr"] = torch.tensor(0.01)
    before = _everything(params, optimizer)
    with pytest.raises(ValueError, match=r"param_groups\[0\].*lr"):
        optimizer.step()
    assert _same(before, _everything(params, optimizer))


# ------------------------------------------------------------ other optimizers' dicts
@pytest.mark.parametrize(
    "source, target", [("Adam", "RAdam"), ("RAdam", "Adam"), ("Adam", "AdamW")]
)
def test_a_state_dict_of_the_same_state_is_taken_as_torch_takes_it(source, target):
    """Adam's and RAdam's state entries are the same (step, exp_avg, exp_avg_sq): torch's
    RAdam takes Adam's state dict and steps on it; gdfast.torch's does the same, to
    rounding of torch's."""
    _, donor = _stepped(source)
    ours_params, ours = _stepped(target)
    theirs_params = [torch.nn.Parameter(p.detach().clone()) for p in ours_params]
    theirs = getattr(torch.optim, target)([{"params": [p]} for p in theirs_params], lr=0.01)
    for optimizer, params in ((ours, ours_params), (theirs, theirs_params)):
        optimizer.load_state_dict(copy.deepcopy(donor.state_dict()))
        for _ in range(3):
            for p in params:
                p.grad = torch.linspace(-2, 1, p.numel()).reshape(p.shape)
            optimizer.step()
    for a, b in zip(ours_params, theirs_params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, edit, message",
    [
        ("Adam", lambda sd: sd["state"][0].pop("exp_avg_sq"), "missing 'exp_avg_sq'"),
        ("Adam", lambda sd: sd["state"][1].update(momentum_buffer=torch.zeros(2, 5)), "unexpected"),
        ("SGD", lambda sd: sd["param_groups"][1].pop("momentum"), "lacks 'momentum'"),
        ("LAMB", lambda sd: sd["param_groups"][0].pop("betas"), "lacks 'betas'"),
        ("Muon", lambda sd: sd["state"][0].update(step=torch.tensor(1.0)), "unexpected 'step'"),
        ("Adafactor", lambda sd: sd["state"][1].pop("col_var"), "missing 'col_var'"),
        ("Adam", lambda sd: sd["param_groups"][1].update(lr=-1.0), r"param_groups\[1\].*lr"),
        ("LAMB", lambda sd: sd["param_groups"][1].update(lr=math.nan), r"param_groups\[1\].*lr"),
        ("Adam", lambda sd: sd["state"][1].update(step=torch.tensor(1.0, device="meta")), "meta"),
        (
            "Muon",
            lambda sd: sd["state"][0].update(momentum_buffer=torch.zeros(3, 4, device="meta")),
            "meta",
        ),
    ],
)
def test_a_state_dict_that_cannot_step_is_refused_at_load(name, edit, message):
    options = {"momentum": 0.9} if name == "SGD" else {}
    params, optimizer = _stepped(name, **options)
    state_dict = optimizer.state_dict()
    state_dict = {
        "state": {k: dict(v) for k, v in state_dict["state"].items()},
        "param_groups": [dict(g) for g in state_dict["param_groups"]],
    }
    edit(state_dict)
    before = _everything(params, optimizer)
    groups = [dict(g) for g in optimizer.param_groups]
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(state_dict)
    assert _same(before, _everything(params, optimizer))
    assert [dict(g) for g in optimizer.param_groups] == groups


@pytest.mark.parametrize("name", ["LAMB", "Adafactor", "Muon", "Adam", "SGD"])
def test_an_older_state_dict_without_the_flags_loads_and_steps(name):
    """torch's test_can_load_older_state_dict: flags (foreach, maximize, ...) missing from
    a checkpoint take the optimizer's defaults."""
    params, optimizer = _stepped(name)
    state_dict = optimizer.state_dict()
    for group in state_dict["param_groups"]:
        for flag in ("foreach", "maximize", "capturable", "differentiable", "fused"):
            group.pop(flag, None)
    _, twin = _stepped(name)
    twin.load_state_dict(state_dict)
    assert twin.param_groups[0].get("maximize", False) is False
    for p in params:
        p.grad = torch.ones_like(p)
    twin.step()


# ------------------------------------------------------------------ other layouts
@pytest.mark.parametrize("name", ["LAMB", "Adafactor"])
def test_per_tensor_classes_step_a_channels_last_parameter_as_its_copy(name):
    weight = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1))
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        p = torch.nn.Parameter(weight.clone().to(memory_format=layout))
        optimizer = getattr(gt, name)([p], lr=0.01)
        for k in range(3):
            p.grad = (torch.linspace(-1, 1, p.numel()).reshape(p.shape) * (k + 1)).to(
                memory_format=layout
            )
            optimizer.step()
        assert p.stride() == weight.clone().to(memory_format=layout).stride()
        results.append(p.detach().contiguous())
    assert torch.equal(*results)


@pytest.mark.parametrize("name", ["LAMB", "Adafactor", "Muon"])
def test_per_tensor_classes_refuse_a_parameter_with_overlaps(name):
    p = torch.zeros(1, 4).expand(3, 4)
    p.grad = torch.ones(3, 4)
    optimizer = getattr(gt, name)([p], lr=0.01)
    with pytest.raises(ValueError, match="dense"):
        optimizer.step()


# --------------------------------------------------------------- policy keywords
@pytest.mark.parametrize(
    "options, keyword",
    [
        ({"block_size": 64}, "block_size"),
        ({"state_dtype": torch.bfloat16, "block_size": 64}, "block_size"),
        ({"rounding": "stochastic"}, "rounding"),
        ({"state_dtype": "int8", "rounding": "stochastic"}, "rounding"),
    ],
)
def test_policy_keywords_with_nothing_to_act_on_are_refused(options, keyword):
    p = torch.nn.Parameter(torch.zeros(300))
    with pytest.raises(ValueError, match=keyword):
        gt.Adam([p], lr=0.01, **options)
    gt.Adam([p.detach().bfloat16().requires_grad_()], lr=0.01, rounding="stochastic")
    gt.Adam([p], lr=0.01, state_dtype="int8", block_size=64)


# ----------------------------------------------------------------- shared memory
@pytest.mark.parametrize("name", CLASSES)
def test_parameters_sharing_memory_are_refused_before_any_write(name):
    """Two parameters over overlapping memory (a Parameter of a view of another's data):
    gdfast's kernels step a group's tensors together, in parallel: refused by name."""
    base = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    whole, rows = torch.nn.Parameter(base), torch.nn.Parameter(base[2:])
    optimizer = getattr(gt, name)([whole, rows], lr=0.01)
    if hasattr(optimizer, "train"):
        optimizer.train()
    whole.grad, rows.grad = torch.ones(4, 3), torch.ones(2, 3)
    before = base.clone()
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] share memory"):
        optimizer.step()
    assert torch.equal(before, base)


@pytest.mark.parametrize(
    "name, entry",
    [
        ("Adam", "exp_avg"),
        ("SGD", "momentum_buffer"),
        ("LAMB", "exp_avg"),
        ("Muon", "momentum_buffer"),
    ],
)
def test_a_state_tensor_sharing_its_parameters_memory_is_refused(name, entry):
    options = {"momentum": 0.9} if name == "SGD" else {}
    params, optimizer = _stepped(name, **options)
    optimizer.state[params[0]][entry] = params[0].detach()
    before = _everything(params, optimizer)
    with pytest.raises(ValueError, match="share memory"):
        optimizer.step()
    assert _same(before, _everything(params, optimizer))
