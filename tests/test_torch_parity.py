"""gdfast.torch against torch.optim (torch 2.13): same trajectories, same state.

For each rule with a torch.optim counterpart (its declaration's torch_equivalent: the
class, the options selecting the rule in it, torch's names) and each of its configurations
(its row's torch_configs in tests/rules_table.py; its defaults alone if none): 100 steps on a small model with several
parameter tensors, one of them frozen (never a gradient) and one step where one gradient
is None; parameters and every state entry match torch's to 1e-10 relative in float64 and
1e-5 in float32 (max |a − b| / max |b|).  The problem and step sizes are chosen where
the trajectory is stable: there torch itself, started one ulp away, stays well inside
those tolerances (test_the_problem_is_stable_under_one_ulp); in a chaotic regime any
two roundings part ways, torch's own included.  Also: param groups with their own options,
lr_scheduler, checkpoints both ways, and gdfast's numpy classes with convention="torch".
"""

from __future__ import annotations

import copy
import inspect
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import gdfast  # noqa: E402
import gdfast.torch as gt  # noqa: E402
from gdfast.catalogue import CATALOGUE  # noqa: E402
from rules_table import RULES  # noqa: E402
from test_rules2_parity import default_dtype  # noqa: E402

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]

# The rules with a torch.optim counterpart, from their declarations (gdfast.catalogue):
# the torch class, the options that select the rule in it (torch.optim.SGD with
# momentum=0.9 is Momentum), the torch names of hyper-parameters named otherwise.
EQUIVALENT = {rule.rule: rule.torch_equivalent for rule in CATALOGUE if rule.torch_equivalent}


def torch_configs(rule: str) -> list[dict]:
    """The torch constructor arguments of `rule`'s parity runs."""
    options = dict(EQUIVALENT[rule].options)
    return [{**options, **extra} for extra in RULES[rule].torch_configs or ({},)]


def case_id(rule: str, config: dict) -> str:
    return f"{rule}-{'-'.join(f'{k}={v}' for k, v in config.items()) or 'defaults'}"


CASES = [(rule, config) for rule in EQUIVALENT for config in torch_configs(rule)]
CASE_IDS = [case_id(rule, config) for rule, config in CASES]


# torch keeps these rules' per-step scalars (ASGD's η_t and μ_t) in its default dtype, gdfast
# computes them in double: their runs take the parameters' dtype as torch's default.
SCALARS_IN_DEFAULT_DTYPE = {"ASGD"}


def torch_scalars(rule: str, dtype):
    """The default dtype `rule`'s torch runs take (a context manager)."""
    return default_dtype(dtype if rule in SCALARS_IN_DEFAULT_DTYPE else torch.get_default_dtype())


def test_every_configured_rule_has_a_counterpart():
    """A row's torch_configs run here against torch.optim, Lion's against lion-pytorch
    (test_torch_rules2)."""
    configured = {name for name, row in RULES.items() if row.torch_configs}
    assert configured - set(EQUIVALENT) == {"Lion"}


class Model(torch.nn.Module):
    """Five parameter tensors: two layers, a scale, and a frozen tensor no loss touches."""

    def __init__(self, dtype, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.first = torch.nn.Linear(6, 8).to(dtype)
        self.second = torch.nn.Linear(8, 3).to(dtype)
        self.scale = torch.nn.Parameter(torch.ones(3, dtype=dtype))
        self.frozen = torch.nn.Parameter(
            torch.randn(4, dtype=dtype, generator=generator), requires_grad=False
        )
        with torch.no_grad():
            for p in (self.first.weight, self.first.bias, self.second.weight, self.second.bias):
                p.copy_(torch.randn(p.shape, dtype=dtype, generator=generator) * 0.5)

    def forward(self, x):
        return self.second(torch.tanh(self.first(x))) * self.scale


def data(dtype, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(32, 6, dtype=dtype, generator=generator),
        torch.randn(32, 3, dtype=dtype, generator=generator),
    )


def train(model, optimizer, x, y, steps=100, none_at=37, scheduler=None):
    """`steps` steps on the mean squared error (its negative for maximize=True)."""
    sign = -1.0 if optimizer.param_groups[0]["maximize"] else 1.0
    for step in range(steps):
        optimizer.zero_grad()
        loss = sign * ((model(x) - y) ** 2).mean()
        loss.backward()
        if step == none_at:
            model.first.bias.grad = None  # one step without this gradient
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def relative(a, b) -> float:
    a, b = a.double(), b.double()
    scale = max(b.abs().max().item(), np.finfo(np.float64).tiny) if b.numel() else 1.0
    return (a - b).abs().max().item() / scale if b.numel() else 0.0


def assert_same(theirs_model, ours_model, theirs, ours, tolerance):
    for (name, p), q in zip(theirs_model.named_parameters(), ours_model.parameters()):
        error = relative(q, p)
        assert error <= tolerance, f"{name}: relative error {error:.3g}"
    for (name, p), q in zip(theirs_model.named_parameters(), ours_model.parameters()):
        expected, actual = theirs.state.get(p, {}), ours.state.get(q, {})
        assert sorted(actual) == sorted(expected), name
        for key, value in expected.items():
            if key == "step":
                assert float(actual[key]) == float(value), name
                continue
            error = relative(actual[key], value)
            assert error <= tolerance, f"state[{key!r}] of {name}: relative error {error:.3g}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("rule, config", CASES, ids=CASE_IDS)
def test_hundred_steps_match_torch(rule, config, dtype):
    name = EQUIVALENT[rule].name
    x, y = data(dtype)
    theirs_model, ours_model = Model(dtype), Model(dtype)
    with torch_scalars(rule, dtype):
        theirs = getattr(torch.optim, name)(theirs_model.parameters(), **config)
        ours = getattr(gt, name)(ours_model.parameters(), **config)
        train(theirs_model, theirs, x, y)
        train(ours_model, ours, x, y)
    assert isinstance(ours, getattr(torch.optim, name))
    # the frozen tensor: untouched, and state only where torch makes it eagerly (Adagrad)
    assert torch.equal(ours_model.frozen, Model(dtype).frozen)
    assert bool(ours.state.get(ours_model.frozen)) == (name == "Adagrad")
    assert_same(theirs_model, ours_model, theirs, ours, TOLERANCE[dtype])
    # the trajectory moved: the comparison is not between two untouched models
    assert relative(ours_model.first.weight, Model(dtype).first.weight) > 1e-4


def one_ulp_away(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.nextafter(p, p + 1))
    return model


@pytest.mark.parametrize("rule", ["RMSprop", "Adadelta", "AdaMax", "Nadam"])
def test_the_problem_is_stable_under_one_ulp(rule):
    """The parity problem in float32 is one where rounding differences do not grow past
    the tolerance: torch against torch started one ulp away, every configuration."""
    dtype = torch.float32
    name = EQUIVALENT[rule].name
    x, y = data(dtype)
    for config in torch_configs(rule):
        models = Model(dtype), one_ulp_away(Model(dtype))
        optimizers = [getattr(torch.optim, name)(m.parameters(), **config) for m in models]
        for model, optimizer in zip(models, optimizers):
            train(model, optimizer, x, y)
        assert_same(models[0], models[1], optimizers[0], optimizers[1], TOLERANCE[dtype] / 2)


@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop", "NAdam"])
def test_param_groups_with_their_own_options(name):
    dtype = torch.float64
    extra = {
        "Adam": [{"amsgrad": True, "lr": 0.01}, {"weight_decay": 0.1}],
        "SGD": [{"momentum": 0.9, "lr": 0.02}, {"momentum": 0.5, "nesterov": True}],
        "RMSprop": [{"centered": True, "lr": 1e-3}, {"momentum": 0.9, "alpha": 0.9}],
        "NAdam": [{"momentum_decay": 0.01}, {"decoupled_weight_decay": True, "weight_decay": 0.1}],
    }[name]
    x, y = data(dtype)
    models = Model(dtype), Model(dtype)
    optimizers = []
    for module, model in zip((torch.optim, gt), models):
        groups = [
            {"params": list(model.first.parameters()), **extra[0]},
            {"params": list(model.second.parameters()) + [model.scale, model.frozen], **extra[1]},
        ]
        optimizers.append(getattr(module, name)(groups, lr=0.005))
    for model, optimizer in zip(models, optimizers):
        train(model, optimizer, x, y)
    assert_same(models[0], models[1], optimizers[0], optimizers[1], TOLERANCE[dtype])


@pytest.mark.parametrize(
    "name, config",
    [("Adam", {}), ("SGD", {"momentum": 0.9}), ("RMSprop", {"momentum": 0.9}), ("Adagrad", {})],
)
def test_lr_scheduler_works_unchanged(name, config):
    dtype = torch.float64
    x, y = data(dtype)
    models = Model(dtype), Model(dtype)
    optimizers = [
        getattr(module, name)(model.parameters(), lr=0.05, **config)
        for module, model in zip((torch.optim, gt), models)
    ]
    for model, optimizer in zip(models, optimizers):
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)
        train(model, optimizer, x, y, scheduler=schedule)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.95**100)
    assert_same(models[0], models[1], optimizers[0], optimizers[1], TOLERANCE[dtype])


def round_trip(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer)


# Each rule's first configuration (its defaults but RMSprop's) and the one with the most
# arguments (the most state to carry over).
CHECKPOINT_CASES = [
    (rule, config)
    for rule in EQUIVALENT
    for config in {
        case_id(rule, c): c for c in (torch_configs(rule)[0], max(torch_configs(rule), key=len))
    }.values()
]


@pytest.mark.parametrize("direction", ["torch to gdfast", "gdfast to torch"])
@pytest.mark.parametrize(
    "rule, config", CHECKPOINT_CASES, ids=[case_id(*case) for case in CHECKPOINT_CASES]
)
def test_checkpoints_move_both_ways(rule, config, direction):
    """Run 50 steps with one library, save its state_dict (torch.save), load it into the
    other's optimizer over a copy of the model, run 50 more: the same as torch.optim doing
    both halves with the same checkpoint in between.  (Loading casts state to the
    parameter's dtype, NAdam's float32 mu_product included, in torch as here: hence torch
    with the same round trip as the baseline, not an uninterrupted run.)"""
    dtype = torch.float64
    name = EQUIVALENT[rule].name
    x, y = data(dtype)
    first, second = (torch.optim, gt) if direction == "torch to gdfast" else (gt, torch.optim)
    results = []
    for halves in ((torch.optim, torch.optim), (first, second)):
        model = Model(dtype)
        with torch_scalars(rule, dtype):
            optimizer = getattr(halves[0], name)(model.parameters(), **config)
            train(model, optimizer, x, y, steps=50)
            checkpoint = round_trip(optimizer.state_dict())
            resumed_model = copy.deepcopy(model)
            resumed = getattr(halves[1], name)(resumed_model.parameters(), **config)
            resumed.load_state_dict(checkpoint)
            train(resumed_model, resumed, x, y, steps=50, none_at=-1)
        results.append((resumed_model, resumed))
    (theirs_model, theirs), (ours_model, ours) = results
    assert type(ours).__module__.startswith(second.__name__)
    assert_same(theirs_model, ours_model, theirs, ours, TOLERANCE[dtype])


def numpy_arguments(rule: str, config: dict) -> dict | None:
    """gdfast's arguments for torch's `config` of `rule` (torch's defaults included, torch's
    names translated by the declaration); None when the configuration asks for something
    the rule's gdfast class has no hyper-parameter for (AdamW with amsgrad=True)."""
    equivalent = EQUIVALENT[rule]
    ours = {theirs: name for name, theirs in equivalent.names.items()}
    names = getattr(gdfast.optim, rule).hyperparameter_names
    if any(ours.get(key, key) not in names for key in set(config) - set(equivalent.options)):
        return None
    signature = inspect.signature(getattr(torch.optim, equivalent.name)).parameters
    defaults = {key: p.default for key, p in signature.items() if p.default is not p.empty}
    arguments = {ours.get(key, key): value for key, value in {**defaults, **config}.items()}
    return {name: value for name, value in arguments.items() if name in names}


# torch's ASGD takes a learning-rate change one step late: it computes η_(t+1) at the end of
# step t from that step's lr and keeps it in state["eta"]; gdfast's (and gdfast.torch.ASGD)
# compute η_t from the lr of step t (spec 1.3).  With a constant lr they agree to rounding
# (test_torch_rules2); this test halves lr mid-run, so it must fail for ASGD.
LR_CHANGE_ONE_STEP_LATE = {"ASGD"}
NUMPY_CASES = [
    pytest.param(
        *case,
        marks=pytest.mark.xfail(
            case[0] in LR_CHANGE_ONE_STEP_LATE,
            reason="torch's ASGD applies an lr change one step later (documented difference)",
            strict=True,
        ),
    )
    for case in CASES
    if numpy_arguments(*case) is not None
]


@pytest.mark.parametrize("rule, config", NUMPY_CASES, ids=[case_id(*c.values) for c in NUMPY_CASES])
def test_numpy_classes_with_the_torch_convention_reproduce_torch(rule, config):
    """gdfast.<Rule>(..., convention="torch") on numpy arrays = its torch.optim counterpart,
    with the learning rate changed halfway (where lr_in_buffer matters)."""
    rng = np.random.default_rng(3)
    start = [rng.standard_normal((4, 5)), rng.standard_normal(7)]
    curvature = [rng.uniform(0.5, 2.0, a.shape) for a in start]
    center = [a + rng.choice([-1.0, 1.0], a.shape) * rng.uniform(2, 4, a.shape) for a in start]
    cls, arguments = getattr(gdfast.optim, rule), numpy_arguments(rule, config)
    ours = cls([a.copy() for a in start], convention="torch", **arguments)
    tensors = [torch.nn.Parameter(torch.tensor(a)) for a in start]
    theirs = getattr(torch.optim, EQUIVALENT[rule].name)(tensors, **config)
    for step in range(100):  # a quadratic: the gradient h (θ − c) feeds back
        if step == 50:
            ours.lr = ours.lr / 2
            theirs.param_groups[0]["lr"] /= 2
        ours.step([h * (a - c) for h, a, c in zip(curvature, ours.params, center)])
        for tensor, h, c in zip(tensors, curvature, center):
            tensor.grad = torch.tensor(h * (tensor.detach().numpy() - c))
        theirs.step()
    for a, tensor in zip(ours.params, tensors):
        assert relative(torch.tensor(a), tensor.detach()) <= 1e-10
    assert not np.allclose(ours.params[0], start[0])
