"""The NumPy cores of docs/spec-rules-2.md against the libraries they name.

torch 2.13's RAdam, Rprop, ASGD, Adafactor and Muon, and the reference packages for the
rules torch lacks: lion-pytorch (Lion), schedulefree (Schedule-Free AdamW and SGD, both
the package's form and its paper form) and pytorch-optimizer (LAMB).  For each constructor
option: 100 steps on a small two-layer model (one step without one gradient, where the
library counts steps per tensor), then every parameter and every state entry compared,
max |a − b| / max |b| <= 1e-10 in float64 and 1e-5 in float32.  The gradients of both
trajectories come from the same torch model code, each at its own parameters.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the 'test' extra)")
from gdfast import reference  # noqa: E402
from gdfast.catalogue.rules.asgd import asgd_scalars  # noqa: E402
from gdfast.catalogue.rules import muon, schedule_free  # noqa: E402
from test_torch_muon import newton_schulz_in_dtype  # noqa: E402

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64], ids=["float32", "float64"]
)
STEPS = 100
NONE_AT = 37


def package(name: str, version: str):
    """The reference package, or a skip that says it is missing."""
    return pytest.importorskip(
        name,
        reason=f"{name} is not installed: pip install --no-deps {name.replace('_', '-')}"
        f"=={version} (the 'test' extra)",
    )


class Model(torch.nn.Module):
    def __init__(self, dtype, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.first = torch.nn.Linear(6, 8).to(dtype)
        self.second = torch.nn.Linear(8, 3).to(dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, dtype=dtype, generator=generator) * 0.5)

    def forward(self, x):
        return self.second(torch.tanh(self.first(x)))


def data(dtype, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(32, 6, dtype=dtype, generator=generator),
        torch.randn(32, 3, dtype=dtype, generator=generator),
    )


def weights_only(model):
    return [model.first.weight, model.second.weight]


def loss_of(model, x, y, sign):
    return sign * ((model(x) - y) ** 2).mean()


@contextlib.contextmanager
def default_dtype(dtype):
    """torch keeps some per-tensor scalars (ASGD's η and μ) in its default dtype."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def run_theirs(optimizer, model, params, x, y, sign, none_at):
    if hasattr(optimizer, "train"):
        optimizer.train()
    for step in range(STEPS):
        optimizer.zero_grad()
        loss_of(model, x, y, sign).backward()
        if step == none_at:
            params[1].grad = None
        optimizer.step()


def run_ours(core, model, params, state, hyper, x, y, sign, none_at):
    """The same steps with a NumPy core: each step's gradient from `model` at our arrays."""
    arrays = [p.detach().numpy().copy() for p in params]
    steps = np.zeros(len(arrays), dtype=np.int64)
    buffers = [[init(a) for a in arrays] for init in state.values()]
    for step in range(STEPS):
        with torch.no_grad():
            for p, a in zip(params, arrays):
                p.copy_(torch.from_numpy(a))
        model.zero_grad()
        loss_of(model, x, y, sign).backward()
        active = [i for i in range(len(arrays)) if not (step == none_at and i == 1)]
        steps[active] += 1
        core(
            [arrays[i] for i in active],
            [params[i].grad.numpy().copy() for i in active],
            *[[b[i] for i in active] for b in buffers],
            steps[active],
            **hyper,
        )
    return arrays, dict(zip(state, buffers)), steps


def relative(actual: np.ndarray, expected: np.ndarray) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if expected.size == 0:
        return 0.0
    scale = max(float(np.abs(expected).max()), np.finfo(np.float64).tiny)
    return float(np.abs(actual - expected).max()) / scale


def compare(rule, optimizer, params, arrays, state, names, dtype, initial):
    tolerance = TOLERANCE[dtype]
    for index, (p, a) in enumerate(zip(params, arrays)):
        error = relative(a, p.detach().numpy())
        assert error <= tolerance, f"{rule} params[{index}]: relative error {error:.3g}"
        for ours, theirs in names.items():
            if theirs not in optimizer.state[p]:
                assert state[ours][index].size == 0, (rule, ours, index)
                continue
            expected = optimizer.state[p][theirs].detach().numpy()
            error = relative(state[ours][index], expected)
            assert error <= tolerance, f"{rule} state {ours}[{index}]: relative error {error:.3g}"
    moved = max(relative(a, b) for a, b in zip(arrays, initial))
    assert moved > 1e-4, f"{rule}: the trajectory did not move ({moved:.3g})"


def check_parity(
    rule,
    make_theirs,
    core,
    state,
    names,
    hyper,
    dtype,
    *,
    none_at=NONE_AT,
    select=lambda m: list(m.parameters()),
):
    """Both trajectories (the loss negated where hyper["maximize"]), then `compare`."""
    sign = -1.0 if hyper.get("maximize") else 1.0
    x, y = data(dtype)
    theirs_model, ours_model = Model(dtype), Model(dtype)
    theirs_params, ours_params = select(theirs_model), select(ours_model)
    initial = [p.detach().numpy().copy() for p in ours_params]
    optimizer = make_theirs(theirs_params)
    run_theirs(optimizer, theirs_model, theirs_params, x, y, sign, none_at)
    arrays, buffers, steps = run_ours(
        core, ours_model, ours_params, state, hyper, x, y, sign, none_at
    )
    compare(rule, optimizer, theirs_params, arrays, buffers, names, dtype, initial)
    return optimizer, theirs_params, arrays, buffers, steps


zeros = np.zeros_like
# Adam's state, for RAdam and LAMB: ours and the library's names are the same
MOMENTS = {"exp_avg": zeros, "exp_avg_sq": zeros}
SAME_NAMES = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}


# ---------------------------------------------------------------------- Lion
LION_CONFIGS = [
    {},
    {"lr": 3e-4},
    {"betas": (0.95, 0.98)},
    {"weight_decay": 0.1},
    {"weight_decay": 0.5, "decoupled_weight_decay": True},
]


@DTYPES
@pytest.mark.parametrize("config", LION_CONFIGS, ids=str)
def test_lion_matches_lion_pytorch(config, dtype):
    lion_pytorch = package("lion_pytorch", "0.2.5")
    lr = config.get("lr", 1e-4)
    weight_decay = config.get("weight_decay", 0.0)
    # lion-pytorch's decoupled_weight_decay divides λ by the initial lr: θ ← θ (1 − λ η/η0)
    if config.get("decoupled_weight_decay"):
        weight_decay /= lr
    check_parity(
        "Lion",
        lambda params: lion_pytorch.Lion(params, **config),
        reference.lion,
        {"exp_avg": zeros},
        {"exp_avg": "exp_avg"},
        {"lr": lr, "betas": config.get("betas", (0.9, 0.99)), "weight_decay": weight_decay},
        dtype,
    )


# --------------------------------------------------------------------- RAdam
RADAM_CONFIGS = [
    {},
    {"lr": 1e-2},
    {"betas": (0.8, 0.99), "eps": 1e-6},
    {"weight_decay": 0.01},
    {"weight_decay": 0.1, "decoupled_weight_decay": True},
    {"maximize": True},
]


@DTYPES
@pytest.mark.parametrize("config", RADAM_CONFIGS, ids=str)
def test_radam_matches_torch(config, dtype):
    hyper = {
        "lr": config.get("lr", 1e-3),
        "betas": config.get("betas", (0.9, 0.999)),
        "eps": config.get("eps", 1e-8),
        "rectify_threshold": 5.0,  # torch's ρ_t > 5 (the paper's: 4)
        "weight_decay": config.get("weight_decay", 0.0),
        "decoupled_weight_decay": config.get("decoupled_weight_decay", False),
        "maximize": config.get("maximize", False),
    }
    check_parity(
        "RAdam",
        lambda params: torch.optim.RAdam(params, **config),
        reference.radam,
        MOMENTS,
        SAME_NAMES,
        hyper,
        dtype,
    )


def test_radam_rectifies_from_the_threshold_on():
    """β2 = 0.999: ρ_t passes 4 at t = 5 and 5 at t = 6 (the SGD-like steps before)."""
    rho_inf = 2 / (1 - 0.999) - 1
    rho = [rho_inf - 2 * t * 0.999**t / (1 - 0.999**t) for t in range(1, 8)]
    assert [r > 4 for r in rho] == [False] * 4 + [True] * 3
    assert [r > 5 for r in rho] == [False] * 5 + [True] * 2


# --------------------------------------------------------------------- Rprop
RPROP_CONFIGS = [
    {},
    {"lr": 1e-3},
    {"etas": (0.3, 1.5)},
    {"step_sizes": (1e-4, 0.05)},
    {"maximize": True},
]


@DTYPES
@pytest.mark.parametrize("config", RPROP_CONFIGS, ids=str)
def test_rprop_matches_torch(config, dtype):
    lr = config.get("lr", 1e-2)
    check_parity(
        "Rprop",
        lambda params: torch.optim.Rprop(params, **config),
        reference.rprop,
        {"prev": zeros, "step_size": lambda a: np.full_like(a, lr)},
        {"prev": "prev", "step_size": "step_size"},
        {
            "lr": lr,
            "etas": config.get("etas", (0.5, 1.2)),
            "step_sizes": config.get("step_sizes", (1e-6, 50)),
            "maximize": config.get("maximize", False),
        },
        dtype,
    )


# ---------------------------------------------------------------------- ASGD
ASGD_CONFIGS = [
    {},
    {"t0": 10},
    {"t0": 10.5, "alpha": 0.5, "lambd": 1e-2},
    {"lr": 0.05, "t0": 0},
    {"weight_decay": 0.01, "t0": 20},
    {"maximize": True, "t0": 5},
]


@DTYPES
@pytest.mark.parametrize("config", ASGD_CONFIGS, ids=str)
def test_asgd_matches_torch(config, dtype):
    hyper = {
        "lr": config.get("lr", 1e-2),
        "lambd": config.get("lambd", 1e-4),
        "alpha": config.get("alpha", 0.75),
        "t0": config.get("t0", 1e6),
        "weight_decay": config.get("weight_decay", 0.0),
        "maximize": config.get("maximize", False),
    }
    with default_dtype(dtype):
        optimizer, params, _, _, steps = check_parity(
            "ASGD",
            lambda params: torch.optim.ASGD(params, **config),
            reference.asgd,
            {"ax": zeros},
            {"ax": "ax"},
            hyper,
            dtype,
        )
    # torch's η and μ after step t are spec 4's scalars of step t + 1
    scalars = {k: hyper[k] for k in ("lr", "lambd", "alpha", "t0")}
    for p, t in zip(params, steps):
        eta, mu = asgd_scalars(int(t) + 1, **scalars)
        assert math.isclose(optimizer.state[p]["eta"].item(), eta, rel_tol=1e-7)
        assert math.isclose(optimizer.state[p]["mu"].item(), mu, rel_tol=1e-7)


# ------------------------------------------------------- Schedule-Free AdamW / SGD
def scalar_state(value):
    return lambda a: np.array(value, dtype=np.float64)


SF_ADAMW_CONFIGS = [
    {},
    {"lr": 1e-3, "betas": (0.95, 0.99)},
    {"warmup_steps": 20},
    {"weight_decay": 0.01},
    {"r": 1.0, "weight_lr_power": 1.0},
    {"eps": 1e-6, "warmup_steps": 10, "weight_decay": 0.05},
]
SF_STATE = {  # the order of the core's state lists
    "z": np.copy,
    "weight_sum_lr_max": lambda a: np.zeros(2, dtype=np.float64),
    "training": scalar_state(1.0),
    "exp_avg_sq": zeros,
}


@DTYPES
@pytest.mark.parametrize("form", ["package", "paper"])
@pytest.mark.parametrize("config", SF_ADAMW_CONFIGS, ids=str)
def test_schedule_free_adamw_matches_schedulefree(config, form, dtype):
    schedulefree = package("schedulefree", "1.4.1")
    theirs = (
        schedulefree.AdamWScheduleFree
        if form == "package"
        else schedulefree.adamw_schedulefree_paper.AdamWScheduleFreePaper
    )
    hyper = {
        "lr": config.get("lr", 0.0025),
        "betas": config.get("betas", (0.9, 0.999)),
        "eps": config.get("eps", 1e-8),
        "weight_decay": config.get("weight_decay", 0.0),
        "warmup_steps": config.get("warmup_steps", 0),
        "r": config.get("r", 0.0),
        "weight_lr_power": config.get("weight_lr_power", 2.0),
        "lr_bias_correction": form == "paper",
    }
    # the package counts steps per group, not per tensor: every tensor steps every time
    optimizer, params, arrays, buffers, _ = check_parity(
        "ScheduleFreeAdamW",
        lambda params: theirs(params, foreach=False, **config),
        schedule_free.schedule_free_adamw,
        SF_STATE,
        {"z": "z", "exp_avg_sq": "exp_avg_sq"},
        hyper,
        dtype,
        none_at=-1,
    )
    check_eval_train(optimizer, params, arrays, buffers, hyper["betas"][0], dtype)


def check_eval_train(optimizer, params, arrays, buffers, beta1, dtype):
    """eval() gives x, train() gives y back, as the package's."""
    optimizer.eval()
    schedule_free.to_eval(arrays, buffers["z"], beta1)
    for p, a in zip(params, arrays):
        assert relative(a, p.detach().numpy()) <= TOLERANCE[dtype]
    optimizer.train()
    schedule_free.to_train(arrays, buffers["z"], beta1)
    for p, a in zip(params, arrays):
        assert relative(a, p.detach().numpy()) <= TOLERANCE[dtype]


SF_SGD_CONFIGS = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.8},
    {"lr": 0.1, "warmup_steps": 20, "weight_decay": 0.01},
    {"lr": 0.1, "r": 0.5},
]


@DTYPES
@pytest.mark.parametrize("config", SF_SGD_CONFIGS, ids=str)
def test_schedule_free_sgd_matches_schedulefree(config, dtype):
    schedulefree = package("schedulefree", "1.4.1")
    hyper = {
        "lr": config["lr"],
        "momentum": config.get("momentum", 0.9),
        "weight_decay": config.get("weight_decay", 0.0),
        "warmup_steps": config.get("warmup_steps", 0),
        "r": config.get("r", 0.0),
        "weight_lr_power": config.get("weight_lr_power", 2.0),
    }
    state = {k: v for k, v in SF_STATE.items() if k != "exp_avg_sq"}
    optimizer, params, arrays, buffers, _ = check_parity(
        "ScheduleFreeSGD",
        lambda params: schedulefree.SGDScheduleFree(params, foreach=False, **config),
        schedule_free.schedule_free_sgd,
        state,
        {"z": "z"},
        hyper,
        dtype,
        none_at=-1,
    )
    check_eval_train(optimizer, params, arrays, buffers, hyper["momentum"], dtype)


# ---------------------------------------------------------------------- LAMB
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
    pytorch_optimizer = package("pytorch_optimizer", "4.1.0")
    hyper = {
        "lr": config.get("lr", 1e-3),
        "betas": config.get("betas", (0.9, 0.999)),
        "eps": config.get("eps", 1e-6),
        "weight_decay": config.get("weight_decay", 0.0),
        "decoupled_weight_decay": config.get("weight_decouple", True),
        "grad_averaging": config.get("grad_averaging", True),
        "maximize": config.get("maximize", False),
        # pytorch-optimizer's form (the paper's: bias-corrected moments, no clip, no ε in the
        # ratio, η as the step size)
        "bias_correction": False,
        "debias_step_size": True,
        "trust_clip": 10.0,
        "eps_in_trust_ratio": True,
    }
    # pytorch-optimizer counts steps per group, not per tensor: every tensor steps every time
    check_parity(
        "LAMB",
        lambda params: pytorch_optimizer.Lamb(params, **config),
        reference.lamb,
        MOMENTS,
        SAME_NAMES,
        hyper,
        dtype,
        none_at=-1,
    )


# ----------------------------------------------------------------- Adafactor
ADAFACTOR_CONFIGS = [
    {},
    {"lr": 1e-3},
    {"beta2_decay": -0.5},
    {"eps": (1e-20, 1e-2)},
    {"d": 2.0},
    {"weight_decay": 0.01},
    {"maximize": True},
]


def row_state(a):
    return np.zeros(a.shape[:-1] + (1,), a.dtype) if a.ndim > 1 else np.zeros(0, a.dtype)


def col_state(a):
    return (
        np.zeros(a.shape[:-2] + (1, a.shape[-1]), a.dtype) if a.ndim > 1 else np.zeros(0, a.dtype)
    )


def full_state(a):
    return np.zeros(0, a.dtype) if a.ndim > 1 else np.zeros_like(a)


@DTYPES
@pytest.mark.parametrize("config", ADAFACTOR_CONFIGS, ids=str)
def test_adafactor_matches_torch(config, dtype):
    hyper = {
        "lr": config.get("lr", 1e-2),
        "beta2_decay": config.get("beta2_decay", -0.8),
        "eps": config.get("eps", (None, 1e-3)),
        "d": config.get("d", 1.0),
        "weight_decay": config.get("weight_decay", 0.0),
        "maximize": config.get("maximize", False),
    }
    check_parity(
        "Adafactor",
        lambda params: torch.optim.Adafactor(params, **config),
        reference.adafactor,
        {"row_var": row_state, "col_var": col_state, "variance": full_state},
        {"row_var": "row_var", "col_var": "col_var", "variance": "variance"},
        hyper,
        dtype,
    )


# ---------------------------------------------------------------------- Muon
MUON_CONFIGS = [
    {},
    {"lr": 1e-2, "weight_decay": 0.0},
    {"momentum": 0.9},
    {"nesterov": False},
    {"adjust_lr_fn": "match_rms_adamw"},
    {"ns_steps": 3, "ns_coefficients": (2.0, -1.5, 0.5)},
    {"eps": 1e-5},
]


@DTYPES
@pytest.mark.parametrize("config", MUON_CONFIGS, ids=str)
def test_muon_matches_torch_with_newton_schulz_in_the_parameters_dtype(config, dtype, monkeypatch):
    """torch computes the Newton–Schulz iteration in bfloat16 (3 significant digits);
    gdfast in the parameter's dtype.  With torch's iteration run in the parameter's dtype
    everything else — momentum, Nesterov, learning-rate adjustment, decay — is compared
    at the usual tolerances; test_muon_against_torch_bfloat16 bounds the difference the
    bfloat16 iteration itself makes."""
    from torch.optim import _muon

    monkeypatch.setattr(_muon, "_zeropower_via_newtonschulz", newton_schulz_in_dtype)
    hyper = {
        "lr": config.get("lr", 1e-3),
        "weight_decay": config.get("weight_decay", 0.1),
        "momentum": config.get("momentum", 0.95),
        "nesterov": config.get("nesterov", True),
        "ns_coefficients": config.get("ns_coefficients", muon.NS_COEFFICIENTS),
        "ns_steps": config.get("ns_steps", 5),
        "eps": config.get("eps", 1e-7),
        "match_rms_adamw": config.get("adjust_lr_fn") == "match_rms_adamw",
    }
    check_parity(
        "Muon",
        lambda params: torch.optim.Muon(params, **config),
        reference.muon,
        {"momentum_buffer": zeros},
        {"momentum_buffer": "momentum_buffer"},
        hyper,
        dtype,
        select=weights_only,
    )


def test_muon_against_torch_bfloat16():
    """One step from the same point: torch's bfloat16 iteration moves the parameters
    within 1% of the step of gdfast's float64 one."""
    model = Model(torch.float64)
    x, y = data(torch.float64)
    params = weights_only(model)
    before = [p.detach().numpy().copy() for p in params]
    loss_of(model, x, y, 1.0).backward()
    grads = [p.grad.numpy().copy() for p in params]
    torch.optim.Muon(params, lr=0.1, weight_decay=0.0).step()
    ours = [b.copy() for b in before]
    reference.muon(
        ours,
        grads,
        [zeros(b) for b in before],
        np.ones(2, np.int64),
        lr=0.1,
        momentum=0.95,
        weight_decay=0.0,
    )
    for p, b, a in zip(params, before, ours):
        theirs_step, our_step = p.detach().numpy() - b, a - b
        assert relative(our_step, theirs_step) < 0.02
