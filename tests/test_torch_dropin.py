"""gdfast.torch where training code leans on torch.optim's edges: resetting the state,
copies and pickles, older checkpoints, torch's flags, Tensor hyper-parameters, layouts.

Each test runs the same code on torch.optim.<Name> and gdfast.torch.<Name> and compares
parameters and every state entry (1e-10 relative, float64), or checks that both refuse
the same input with the same kind of error."""

from __future__ import annotations

import collections
import copy
import pickle

import pytest

torch = pytest.importorskip("torch")
import gdfast.torch as gt  # noqa: E402

NAMES = ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "Adamax", "NAdam"]
#: options under which every class keeps state (SGD only with momentum)
OPTIONS = {
    "SGD": {"momentum": 0.9, "lr": 0.01},
    "RMSprop": {"lr": 1e-3, "centered": True},
    "Adam": {"amsgrad": True},
    "NAdam": {"weight_decay": 0.01},
}
TOLERANCE = 1e-10


def make_params(dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(shape, dtype=dtype, generator=generator))
        for shape in ((4, 3), (5,), (2, 2, 2))
    ]


def set_grads(params, step):
    for k, p in enumerate(params):
        p.grad = torch.cos(p.detach() * (step + 1) + k)


def run(optimizer, params, steps, start=0):
    for step in range(start, start + steps):
        set_grads(params, step)
        optimizer.step()


def relative(a, b) -> float:
    scale = b.double().abs().max().item() if b.numel() else 1.0
    return (a.double() - b.double()).abs().max().item() / max(scale, 1e-300) if b.numel() else 0.0


def assert_same(theirs, ours, their_params, our_params, tolerance=TOLERANCE, tolerances=None):
    """Parameters and every state entry; `tolerances` overrides the tolerance per key."""
    tolerances = tolerances or {}
    for k, (p, q) in enumerate(zip(their_params, our_params)):
        assert relative(q.detach(), p.detach()) <= tolerance, f"params[{k}]"
        expected, actual = theirs.state.get(p, {}), ours.state.get(q, {})
        assert sorted(actual) == sorted(expected), f"state keys of params[{k}]"
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                limit = tolerances.get(key, tolerance)
                assert relative(actual[key], value) <= limit, f"state[{key!r}] of params[{k}]"
            else:
                assert actual[key] == value


def pair(name, **extra):
    options = {**OPTIONS.get(name, {}), **extra}
    their_params, our_params = make_params(), make_params()
    return (
        getattr(torch.optim, name)(their_params, **options),
        their_params,
        getattr(gt, name)(our_params, **options),
        our_params,
    )


# ------------------------------------------------------------------ 1. state resets
def reset(optimizer, params, idiom):
    if idiom == "state.clear()":
        optimizer.state.clear()
    elif idiom == "state = defaultdict(dict)":
        optimizer.state = collections.defaultdict(dict)
    elif idiom == "del state[p]":
        del optimizer.state[params[1]]
    elif idiom == "state[p][key] = zeros":
        for key, value in optimizer.state[params[0]].items():
            if isinstance(value, torch.Tensor) and value.shape == params[0].shape:
                optimizer.state[params[0]][key] = torch.zeros_like(value)
    elif idiom == "state[p]['step'] = 0":
        for p in params:
            if "step" in optimizer.state[p]:
                optimizer.state[p]["step"] = torch.tensor(0.0)


IDIOMS = [
    "state.clear()",
    "state = defaultdict(dict)",
    "del state[p]",
    "state[p][key] = zeros",
    "state[p]['step'] = 0",
]


@pytest.mark.parametrize("idiom", IDIOMS)
@pytest.mark.parametrize("name", NAMES)
def test_state_resets_restart_the_moments_as_torch_does(name, idiom):
    theirs, their_params, ours, our_params = pair(name)
    for optimizer, params in ((theirs, their_params), (ours, our_params)):
        run(optimizer, params, 5)
        reset(optimizer, params, idiom)
        run(optimizer, params, 5, start=5)
    assert_same(theirs, ours, their_params, our_params)
    # what state_dict saves is what the next step uses
    saved = ours.state_dict()["state"]
    assert sorted(saved) == sorted(theirs.state_dict()["state"])
    resumed_params = [p.detach().clone().requires_grad_() for p in our_params]
    resumed = getattr(gt, name)(resumed_params, **OPTIONS.get(name, {}))
    resumed.load_state_dict(copy.deepcopy(ours.state_dict()))
    run(ours, our_params, 3, start=10)
    run(resumed, resumed_params, 3, start=10)
    # (load_state_dict casts NAdam's float32 mu_product to the parameter's dtype, in torch too)
    assert_same(ours, resumed, our_params, resumed_params, tolerances={"mu_product": 1e-6})


# ------------------------------------------------------------- 2. copies and pickles
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("name", NAMES)
def test_copies_and_pickles_step_like_torchs(name, how):
    duplicate = copy.deepcopy if how == "deepcopy" else (lambda o: pickle.loads(pickle.dumps(o)))
    theirs, _, ours, _ = pair(name)
    copies = []
    for optimizer in (theirs, ours):
        run(optimizer, optimizer.param_groups[0]["params"], 3)
        twin = duplicate(optimizer)
        run(twin, twin.param_groups[0]["params"], 4, start=3)
        copies.append(twin)
    assert type(copies[1]) is type(ours)
    assert_same(
        copies[0],
        copies[1],
        copies[0].param_groups[0]["params"],
        copies[1].param_groups[0]["params"],
    )


def test_copies_keep_gdfasts_options():
    params = make_params()
    optimizer = gt.Adam(params, max_grad_norm=0.5, skip_if_nonfinite=True)
    twin = copy.deepcopy(optimizer)
    assert (twin.max_grad_norm, twin.skip_if_nonfinite) == (0.5, True)


# -------------------------------------------------------------- 3. older checkpoints
def older(state_dict, flags, step_as_number=False, drop=()):
    state_dict = copy.deepcopy(state_dict)
    for group in state_dict["param_groups"]:
        for flag in tuple(flags) + tuple(drop):
            group.pop(flag, None)
    if step_as_number:
        for entry in state_dict["state"].values():
            for key in ("step", "mu_product"):
                if key in entry:
                    entry[key] = float(entry[key])
    return state_dict


@pytest.mark.parametrize(
    "step_as_number", [False, True], ids=["flags missing", "flags missing, step a number"]
)
@pytest.mark.parametrize("name", NAMES)
def test_older_checkpoints_load_as_torch_loads_them(name, step_as_number):
    """torch's test_can_load_older_state_dict (the flags a group of an older torch lacks,
    torch's `not_og_supported_flags`) and a `step` stored as a Python number."""
    flags = ("foreach", "differentiable", "fused", "maximize", "capturable")
    drop = ("decoupled_weight_decay",) if name == "NAdam" else ()
    theirs, their_params, ours, our_params = pair(name)
    for optimizer, params in ((theirs, their_params), (ours, our_params)):
        run(optimizer, params, 3)
        optimizer.load_state_dict(older(optimizer.state_dict(), flags, step_as_number, drop))
        run(optimizer, params, 3, start=3)
    assert_same(theirs, ours, their_params, our_params)
    assert ours.param_groups[0].keys() == theirs.param_groups[0].keys()


def test_checkpoint_groups_have_torchs_keys():
    for name in NAMES:
        theirs, _, ours, _ = pair(name)
        assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"], name


# --------------------------------------------------------------------- 4. torch's flags
def torch_flags(name):
    import inspect

    return [
        f
        for f in ("foreach", "fused", "differentiable", "capturable")
        if f in inspect.signature(getattr(torch.optim, name)).parameters
    ]


@pytest.mark.parametrize("name", NAMES)
def test_torchs_flags_that_change_nothing_are_accepted(name):
    values = {
        "foreach": [None, False, True],
        "fused": [None, False, True],
        "differentiable": [False],
        "capturable": [False],
    }
    for flag in torch_flags(name):
        for value in values[flag]:
            theirs, their_params, ours, our_params = pair(name, **{flag: value})
            run(theirs, their_params, 4)
            run(ours, our_params, 4)
            assert_same(theirs, ours, their_params, our_params, tolerance=1e-12)
            assert ours.param_groups[0][flag] == value


@pytest.mark.parametrize("name", NAMES)
def test_differentiable_and_capturable_are_refused_with_the_reason(name):
    for flag, reason in (("differentiable", "outside autograd"), ("capturable", "CUDA graph")):
        if flag in torch_flags(name):
            with pytest.raises(ValueError, match=rf"{flag}=True: .*{reason}"):
                getattr(gt, name)(make_params(), **{flag: True})


def test_fused_with_gradscaler_unscales_the_gradients():
    """torch's fused=True takes GradScaler's scale inside the step; gdfast's does not, so
    GradScaler must unscale itself: the step equals torch's."""
    results = []
    for module in (torch.optim, gt):
        params = make_params()
        optimizer = module.Adam(params, fused=True)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        for step in range(3):
            optimizer.zero_grad()
            loss = sum(((p * torch.cos(torch.tensor(step + 1.0))) ** 2).sum() for p in params)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        results.append((optimizer, params))
    (theirs, their_params), (ours, our_params) = results
    assert_same(theirs, ours, their_params, our_params, tolerance=1e-6)


# ------------------------------------------------------ 5. Tensor hyper-parameters
@pytest.mark.parametrize("shape", [(), (1,)], ids=["0-d", "1-element"])
@pytest.mark.parametrize("name", NAMES)
def test_tensor_lr_follows_torchs_tensor_path(name, shape):
    lr = torch.full(shape, 0.01)  # float32, as torch's tables write it
    theirs, their_params, ours, our_params = pair(name, lr=lr)
    ours.param_groups[0]["lr"] = lr.clone()
    run(theirs, their_params, 6)
    run(ours, our_params, 6)
    assert_same(theirs, ours, their_params, our_params, tolerance=0.0)  # torch's bits


@pytest.mark.parametrize("name", ["Adam", "AdamW", "NAdam", "Adamax"])
def test_tensor_betas_follow_torchs_tensor_path(name):
    betas = (torch.tensor(0.9), torch.tensor(0.99))
    theirs, their_params, ours, our_params = pair(name, betas=betas)
    run(theirs, their_params, 5)
    run(ours, our_params, 5)
    assert_same(theirs, ours, their_params, our_params, tolerance=0.0)


def same_refusal(name, params_factory, **options):
    """torch and gdfast refuse the same arguments with the same exception type."""
    outcomes = []
    for module in (torch.optim, gt):
        try:
            getattr(module, name)(params_factory(), **options)
            outcomes.append(None)
        except Exception as error:  # noqa: BLE001  (the type is what is compared)
            outcomes.append(type(error))
    assert outcomes[0] is not None, "torch accepts it: not a refusal test"
    assert outcomes[1] is outcomes[0], outcomes


@pytest.mark.parametrize("name", NAMES)
def test_bad_tensor_hyperparameters_and_params_none_are_refused_as_torch_does(name):
    same_refusal(name, make_params, lr=torch.tensor([0.001, 0.001]))
    same_refusal(name, lambda: None, lr=torch.tensor([0.001, 0.001]))
    same_refusal(name, lambda: None)
    if "betas" in getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(1))]).defaults:
        for betas in ((0.9, torch.tensor(0.99)), (torch.tensor(0.9), 0.99)):
            try:
                getattr(torch.optim, name)(make_params(), betas=betas)
            except ValueError:
                same_refusal(name, make_params, betas=betas)
            else:  # torch accepts the mix: so does gdfast, with torch's results
                theirs, their_params, ours, our_params = pair(name, betas=betas)
                run(theirs, their_params, 3)
                run(ours, our_params, 3)
                assert_same(theirs, ours, their_params, our_params, tolerance=0.0)


# ------------------------------------------------------------------------ 6. layouts
class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 4, 3, padding=1)
        self.head = torch.nn.Linear(4 * 8 * 8, 5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.head(x.flatten(1))


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "NAdam"])
def test_a_channels_last_cnn_trains_as_with_torch(name):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 8, 8, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=generator)
    x = x.contiguous(memory_format=torch.channels_last)
    results = []
    for module in (torch.optim, gt):
        model = SmallCNN().double().to(memory_format=torch.channels_last)
        assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert not model.conv1.weight.is_contiguous()
        optimizer = getattr(module, name)(model.parameters(), **OPTIONS.get(name, {}))
        losses = []
        for _ in range(15):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        results.append((optimizer, list(model.parameters()), losses))
        assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    (theirs, their_params, their_losses), (ours, our_params, our_losses) = results
    assert our_losses[-1] < our_losses[0]
    assert_same(theirs, ours, their_params, our_params)


def test_a_gradient_or_state_laid_out_otherwise_is_copied_into_the_parameters_layout():
    results = []
    for module in (torch.optim, gt):
        base = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        param = torch.nn.Parameter(base.t())  # a transpose: dense, not contiguous
        optimizer = module.Adam([param], lr=0.01)
        for step in range(4):
            grad = torch.cos(param.detach() * (step + 1))
            param.grad = grad.contiguous() if step % 2 else grad.t().contiguous().t()
            optimizer.step()
        state = optimizer.state_dict()
        for entry in state["state"].values():  # state saved contiguous
            entry["exp_avg"] = entry["exp_avg"].contiguous()
        optimizer.load_state_dict(state)
        param.grad = torch.ones_like(param)
        optimizer.step()
        results.append((optimizer, [param]))
    assert not results[1][1][0].is_contiguous()
    assert_same(*[r[0] for r in results], results[0][1], results[1][1])


@pytest.mark.parametrize("name", NAMES)
def test_a_parameter_with_gaps_is_refused_saying_why(name):
    base = torch.zeros(6, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"expected a dense tensor .*strides \(8, 1\)"):
        getattr(gt, name)([torch.nn.Parameter(base[::2])])
