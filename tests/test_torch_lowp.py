"""gdfast.torch's dtype policy (SPEC L.5/L.6): bfloat16/float16 parameters and gradients,
master weights, parameter copies, bfloat16 and 8-bit state, nearest and stochastic rounding.

What is checked:
- bit for bit against the NumPy-facing classes (gdfast.<Rule>, convention="torch") under the
  same policy: parameters, every state entry (bfloat16 state as its bits, 8-bit codes and
  scales, master weights) and the parameter copies, for every gdfast.torch class with
  state and every configuration, both roundings, sizes across 8-bit blocks;
- state dicts in torch's format with the policy recorded, lossless through torch.save /
  torch.load(weights_only=True); another policy's state refused, or converted explicitly;
- bad input: a TypeError/ValueError naming the argument, parameters and state untouched.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")  # bfloat16 tensors reach numpy through it

import gdfast.torch as gt  # noqa: E402

BF16, F16, F32, F64 = torch.bfloat16, torch.float16, torch.float32, torch.float64
SIZES = (1, 15, 300, 2049)  # across SIMD vectors and 8-bit blocks (256, 48)
STEPS = 3

# name: (parameter dtype, gradient dtype, policy keywords, with a bfloat16 parameter copy)
CONFIGS = {
    "bf16 params + master": (BF16, BF16, {"master_weights": True}, False),
    "bf16 params + master, fp32 grads, stochastic": (
        BF16,
        F32,
        {"master_weights": True, "rounding": "stochastic", "seed": 7},
        False,
    ),
    "bf16 params + master + bf16 state (torch dtype)": (
        BF16,
        BF16,
        {"master_weights": True, "state_dtype": torch.bfloat16},
        False,
    ),
    "bf16 params nearest": (BF16, BF16, {}, False),
    "bf16 params stochastic": (BF16, BF16, {"rounding": "stochastic", "seed": 3}, False),
    "fp32 params + bf16 state": (F32, F32, {"state_dtype": "bfloat16"}, False),
    "fp32 params + bf16 state stochastic": (
        F32,
        F32,
        {"state_dtype": "bfloat16", "rounding": "stochastic"},
        False,
    ),
    "fp32 params + int8 state": (F32, F32, {"state_dtype": "int8"}, False),
    "fp32 params + int8 state, block 48, bf16 grads": (
        F32,
        BF16,
        {"state_dtype": "int8", "block_size": 48},
        False,
    ),
    "fp32 params + bf16 param_copy stochastic": (F32, F32, {"rounding": "stochastic"}, True),
    "fp16 params + master + int8 state": (
        F16,
        F16,
        {"master_weights": True, "state_dtype": "int8"},
        False,
    ),
    "fp32 params, fp16 grads, no policy": (F32, F16, {}, False),
}

# gdfast.torch classes with state, with options that select each rule variant
CLASSES = {
    "SGD momentum": (gt.SGD, {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-3}),
    "SGD nesterov": (gt.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "Adam": (gt.Adam, {"lr": 1e-3, "weight_decay": 1e-2}),
    "Adam amsgrad": (gt.Adam, {"lr": 1e-3, "amsgrad": True}),
    "AdamW": (gt.AdamW, {"lr": 1e-3}),
    "Adagrad": (gt.Adagrad, {"lr": 0.01, "initial_accumulator_value": 0.1}),
    "Adadelta": (gt.Adadelta, {"lr": 1.0}),
    "RMSprop centered momentum": (
        gt.RMSprop,
        {"lr": 1e-3, "centered": True, "momentum": 0.5},
    ),
    "Adamax": (gt.Adamax, {"lr": 2e-3}),
    "NAdam": (gt.NAdam, {"lr": 2e-3}),
    "RAdam": (gt.RAdam, {"lr": 1e-3}),
    "Rprop": (gt.Rprop, {"lr": 1e-2}),
    "ASGD": (gt.ASGD, {"lr": 1e-2, "t0": 1.0}),
    "Lion": (gt.Lion, {"lr": 1e-4, "weight_decay": 0.1}),
}


def set_grad(param: torch.Tensor, grad: torch.Tensor) -> None:
    """param.grad = grad, also of another dtype (torch 2.13 checks `grad_dtype` first)."""
    if grad.dtype != param.dtype:
        param.grad_dtype = None
    param.grad = grad


def bits(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's memory as unsigned integers of its width (exact comparisons)."""
    tensor = tensor.detach().contiguous()
    if tensor.dtype == BF16:
        tensor = tensor.view(torch.int16)
    array = tensor.numpy()
    return array.view(f"u{array.itemsize}")


def as_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A numpy copy of a tensor, bfloat16 as ml_dtypes.bfloat16."""
    if tensor.dtype == BF16:
        return tensor.detach().view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return tensor.detach().numpy().copy()


def make(config, sizes=SIZES, seed=0):
    """Parameters, per-step gradients and parameter copies of a configuration."""
    param_dtype, grad_dtype, policy, with_copy = CONFIGS[config]
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(n, generator=gen).to(param_dtype) for n in sizes]
    grads = [[torch.randn(n, generator=gen).to(grad_dtype) for n in sizes] for _ in range(STEPS)]
    copies = [torch.zeros(n, dtype=BF16) for n in sizes] if with_copy else None
    return params, grads, copies, dict(policy)


def numpy_twin(optimizer, params, copies, policy):
    """The NumPy-facing class of the torch optimizer's rule, same hyper-parameters and
    policy, on numpy copies of the parameters (and copies)."""
    group = optimizer.param_groups[0]
    rule = optimizer._rule(group)
    arguments = optimizer._kernel_arguments(rule, group)
    hyper = {name: arguments[name] for name in rule.hyperparameter_names if name in arguments}
    policy = {
        **policy,
        "state_dtype": {BF16: "bfloat16", F32: "float32"}.get(
            policy.get("state_dtype"), policy.get("state_dtype", "float32")
        ),
    }
    arrays = [as_numpy(p) for p in params]
    np_copies = None if copies is None else [as_numpy(c) for c in copies]
    return rule(arrays, convention="torch", **hyper, **policy, param_copy=np_copies), np_copies


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", CLASSES)
def test_torch_classes_equal_the_numpy_classes_bitwise(name, config):
    cls, options = CLASSES[name]
    params, grads, copies, policy = make(config)
    optimizer = cls(params, **options, **policy, param_copy=copies)
    twin, np_copies = numpy_twin(optimizer, params, copies, policy)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            set_grad(p, g.clone())
        optimizer.step()
        twin.step([as_numpy(g) for g in step_grads])
    torch_names = optimizer._rule(optimizer.param_groups[0]).torch_equivalent
    renamed = {v: k for k, v in (torch_names.state if torch_names else {}).items()}
    for index, p in enumerate(params):
        assert np.array_equal(bits(p), twin.params[index].view(bits(p).dtype)), (index, "param")
        for key, value in optimizer.state[p].items():
            if key in ("step", "eta", "mu", "mu_product"):
                continue
            base, suffix = (
                (key[: -len("_absmax")], "_absmax") if key.endswith("_absmax") else (key, "")
            )
            theirs = renamed.get(base, base) + suffix
            expected = np.asarray(twin.state[theirs][index])
            assert np.array_equal(bits(value), expected.view(bits(value).dtype)), (index, key)
        if copies is not None:
            assert np.array_equal(bits(copies[index]), np_copies[index].view(np.uint16))


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_round_trip_is_lossless_and_records_the_policy(config):
    params, grads, copies, policy = make(config, sizes=(300, 70))
    twin_params = [p.clone() for p in params]
    twin_copies = None if copies is None else [c.clone() for c in copies]
    first = gt.Adam(params, lr=1e-3, **policy, param_copy=copies)
    for p, g in zip(params, grads[0]):
        set_grad(p, g.clone())
    first.step()
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)
    saved.seek(0)
    loaded = torch.load(saved, weights_only=True)
    if first.policy.active:
        assert loaded["policy"] == first.policy.record()
    # a second optimizer on copies of the stepped parameters, loaded from the file
    for q, p in zip(twin_params, params):
        q.data.copy_(p.detach())
    second = gt.Adam(twin_params, lr=1e-3, **policy, param_copy=twin_copies)
    second.load_state_dict(loaded)
    for p, q in zip(params, twin_params):
        for key, value in first.state[p].items():
            assert value.dtype == second.state[q][key].dtype, key
            assert np.array_equal(bits(value), bits(second.state[q][key])), key
    for step_grads in grads[1:]:
        for p, q, g in zip(params, twin_params, step_grads):
            set_grad(p, g.clone())
            set_grad(q, g.clone())
        first.step()
        second.step()
    for p, q in zip(params, twin_params):
        assert np.array_equal(bits(p), bits(q))
        for key, value in first.state[p].items():
            assert np.array_equal(bits(value), bits(second.state[q][key])), key
    if copies is not None:
        for c, d in zip(copies, twin_copies):
            assert np.array_equal(bits(c), bits(d))


def stepped(cls=gt.Adam, dtype=F32, steps=2, **policy):
    params = [torch.randn(300, generator=torch.Generator().manual_seed(1)).to(dtype)]
    optimizer = cls(params, lr=1e-3, **policy)
    for _ in range(steps):
        params[0].grad = torch.ones(300, dtype=dtype)
        optimizer.step()
    return optimizer, params


def snapshot(optimizer, params):
    return [bits(p) for p in params], {
        (i, key): bits(value)
        for i, p in enumerate(params)
        for key, value in optimizer.state[p].items()
        if isinstance(value, torch.Tensor)
    }


def assert_unchanged(optimizer, params, before):
    after = snapshot(optimizer, params)
    for a, b in zip(after[0], before[0]):
        assert np.array_equal(a, b)
    assert after[1].keys() == before[1].keys()
    for key in before[1]:
        assert np.array_equal(after[1][key], before[1][key]), key


@pytest.mark.parametrize(
    "source, target",
    [
        ({}, {"state_dtype": "int8"}),
        ({"state_dtype": "int8"}, {}),
        ({"state_dtype": "bfloat16"}, {"state_dtype": "int8", "block_size": 64}),
        ({"state_dtype": "int8", "block_size": 64}, {"state_dtype": "int8"}),
    ],
)
def test_another_policys_state_is_refused_then_converted_explicitly(source, target):
    saved_optimizer, _ = stepped(**source)
    state_dict = saved_optimizer.state_dict()
    optimizer, params = stepped(steps=1, **target)
    before = snapshot(optimizer, params)
    with pytest.raises(ValueError, match=r"state_dict\['policy'\].*convert_state_dict"):
        optimizer.load_state_dict(state_dict)
    assert_unchanged(optimizer, params, before)
    optimizer.load_state_dict(gt.convert_state_dict(state_dict, optimizer))
    # the values: the source decoded, then stored as the target's policy says
    saved_state = next(iter(saved_optimizer.state.values()))
    state = optimizer.state[params[0]]
    for name in ("exp_avg", "exp_avg_sq"):
        assert (
            state[name].dtype == optimizer._storage(optimizer.param_groups[0], name, params[0])[0]
        )
        wide = decoded(saved_optimizer, name, saved_state)
        expected = optimizer._stored(optimizer.param_groups[0], name, params[0], wide)
        for key, value in expected.items():
            assert np.array_equal(bits(state[key]), bits(value)), key
    assert state["step"] == saved_state["step"]


def decoded(optimizer, name, state):
    """A state buffer as float32 values, read the policy's way (SPEC L.4)."""
    value = state[name]
    if value.dtype != torch.uint8:
        return value.float()
    fmt = optimizer._state_format(optimizer.param_groups[0], name)
    codes = optimizer.policy.code(fmt)[value.numpy()]
    scales = np.repeat(state[f"{name}_absmax"].numpy(), optimizer.policy.block_size)
    return torch.from_numpy(codes * scales[: value.numel()])


def test_torch_optims_bfloat16_state_dict_needs_an_explicit_conversion():
    params = [torch.randn(40).to(BF16)]
    theirs = torch.optim.Adam(params, lr=1e-3)
    params[0].grad = torch.ones(40, dtype=BF16)
    theirs.step()
    ours = gt.Adam(params, lr=1e-3, state_dtype="bfloat16", master_weights=True)
    with pytest.raises(ValueError, match=r"state_dict\['policy'\]: .*torch.optim"):
        ours.load_state_dict(theirs.state_dict())
    ours.load_state_dict(gt.convert_state_dict(theirs.state_dict(), ours))
    state = ours.state[params[0]]
    assert torch.equal(state["exp_avg"], theirs.state[params[0]]["exp_avg"])
    assert torch.equal(state["master"], params[0].float())
    ours.step()


def test_deepcopy_keeps_the_policy_and_the_state_bits():
    optimizer, params = stepped(dtype=BF16, master_weights=True, state_dtype="int8")
    twin = copy.deepcopy(optimizer)
    assert twin.policy.record() == optimizer.policy.record()
    twin_param = twin.param_groups[0]["params"][0]
    for key, value in optimizer.state[params[0]].items():
        assert np.array_equal(bits(value), bits(twin.state[twin_param][key]))
    twin_param.grad = torch.ones(300, dtype=BF16)
    twin.step()


def test_views_are_zero_copy():
    params = [torch.randn(64).to(BF16), torch.randn(8, 8).t().to(BF16)]  # (a transpose too)
    optimizer = gt.Adam(params, lr=1e-3, master_weights=True, state_dtype="bfloat16")
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    plan = optimizer._plans[0]
    for p, array, exp_avg in zip(params, plan.param_np, plan.buffers[0]):
        assert array.ctypes.data == p.data_ptr()
        assert exp_avg.ctypes.data == optimizer.state[p]["exp_avg"].data_ptr()
    assert plan.extra["master"][0].ctypes.data == optimizer.state[params[0]]["master"].data_ptr()


def test_clipping_reads_16_bit_gradients_widened():
    params = [torch.randn(500).to(BF16), torch.randn(30).to(BF16)]
    optimizer = gt.Adam(params, lr=1e-3, master_weights=True, max_grad_norm=1.0)
    for p in params:
        p.grad = (10 * torch.randn_like(p.float())).to(BF16)
    expected = torch.linalg.vector_norm(torch.cat([p.grad.double().flatten() for p in params]))
    optimizer.step()
    assert optimizer.grad_norm == pytest.approx(float(expected), rel=1e-12)


def test_added_groups_join_the_policy_and_count_their_tensors_after_the_first():
    a, b = torch.randn(40).to(BF16), torch.randn(40).to(BF16)
    optimizer = gt.Adam([a], lr=1e-3, master_weights=True, rounding="stochastic")
    optimizer.add_param_group({"params": [b]})
    single = gt.Adam([a.clone(), b.clone()], lr=1e-3, master_weights=True, rounding="stochastic")
    a.grad = b.grad = torch.full((40,), 1e-3, dtype=BF16)
    for p in single.param_groups[0]["params"]:
        p.grad = torch.full((40,), 1e-3, dtype=BF16)
    optimizer.step()
    single.step()
    for p, q in zip((a, b), single.param_groups[0]["params"]):
        assert np.array_equal(bits(p), bits(q))
    with pytest.raises(TypeError, match=r"param_groups\[2\]\['params'\]\[0\].*torch.int16"):
        optimizer.add_param_group({"params": [torch.zeros(3, dtype=torch.int16)]})
    assert len(optimizer.param_groups) == 2


# ------------------------------------------------------------------ bad input
BAD_CONSTRUCTION = [
    ({"state_dtype": "float16"}, F32, ValueError, r"state_dtype: expected one of"),
    ({"state_dtype": torch.float16}, F32, ValueError, r"state_dtype: expected 'float32'"),
    ({"state_dtype": "int8"}, F64, ValueError, r"state_dtype: 'int8' needs float32"),
    ({"master_weights": True}, F32, ValueError, r"master_weights: True is for bfloat16"),
    ({"master_weights": "yes"}, BF16, TypeError, r"master_weights: expected a bool"),
    ({"rounding": "up"}, BF16, ValueError, r"rounding: expected one of"),
    ({"seed": -1}, BF16, ValueError, r"seed"),
    ({"block_size": 100, "state_dtype": "int8"}, F32, ValueError, r"block_size"),
    ({"block_size": 0, "state_dtype": "int8"}, F32, ValueError, r"block_size"),
    ({"block_size": 8192, "state_dtype": "int8"}, F32, ValueError, r"block_size: expected at most"),
    ({"param_copy": [torch.zeros(5, dtype=BF16)]}, F32, ValueError, r"param_copy: shape \(5,\)"),
    ({"param_copy": [torch.zeros(4)]}, F32, TypeError, r"param_copy: dtype torch.float32"),
    ({"param_copy": [torch.zeros(4, dtype=BF16)]}, BF16, TypeError, r"param_copy: a parameter"),
    ({"param_copy": [np.zeros(4)]}, F32, TypeError, r"param_copy: expected a torch.Tensor"),
    (
        {"param_copy": [torch.zeros(4, dtype=BF16)] * 2},
        F32,
        ValueError,
        r"param_copy: expected one bfloat16/float16 tensor",
    ),
    (
        {"param_copy": [torch.zeros(8, dtype=BF16)[::2]]},
        F32,
        ValueError,
        r"param_copy: expected a dense tensor laid out as its parameter",
    ),
]


@pytest.mark.parametrize("policy, dtype, error, message", BAD_CONSTRUCTION)
def test_bad_policies_are_refused_at_construction(policy, dtype, error, message):
    with pytest.raises(error, match=message):
        gt.Adam([torch.zeros(4, dtype=dtype)], lr=1e-3, **policy)


BAD_GRADIENTS = [
    (BF16, F16, {}, r"gradient dtype torch.float16 .* needs master_weights=True"),
    (F16, BF16, {}, r"gradient dtype torch.bfloat16 .* needs master_weights=True"),
    (F32, F64, {}, r"gradient dtype torch.float64 .*expected torch.float32, torch.bfloat16"),
    (F64, F32, {}, r"gradient dtype torch.float32 .*expected torch.float64"),
    (BF16, torch.int32, {"master_weights": True}, r"gradient dtype torch.int32"),
]


@pytest.mark.parametrize("param_dtype, grad_dtype, policy, message", BAD_GRADIENTS)
def test_gradients_of_a_dtype_that_does_not_fit_are_refused_and_nothing_written(
    param_dtype, grad_dtype, policy, message
):
    params = [torch.randn(300).to(param_dtype), torch.randn(20).to(param_dtype)]
    optimizer = gt.Adam(params, lr=1e-3, **policy)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    before = snapshot(optimizer, params)
    set_grad(params[1], torch.ones(20, dtype=grad_dtype))
    with pytest.raises(
        TypeError, match=r"gradient of param_groups\[0\]\['params'\]\[1\].*" + message
    ):
        optimizer.step()
    assert_unchanged(optimizer, params, before)


def test_a_tensor_lr_under_a_policy_is_refused_and_nothing_written():
    optimizer, params = stepped(dtype=BF16, master_weights=True)
    optimizer.param_groups[0]["lr"] = torch.tensor(1e-3)
    before = snapshot(optimizer, params)
    with pytest.raises(ValueError, match=r"lr, betas: a Tensor lr .* dtype policy"):
        optimizer.step()
    assert_unchanged(optimizer, params, before)


@pytest.mark.parametrize(
    "entry, replacement, message",
    [
        ("exp_avg", lambda t: t.float(), r"state\['exp_avg'\].*dtype torch.uint8"),
        ("exp_avg_absmax", lambda t: t[:1], r"state\['exp_avg_absmax'\].*shape \(2,\)"),
        ("master", lambda t: t.to(BF16), r"state\['master'\].*dtype torch.float32"),
    ],
)
def test_tampered_policy_state_is_refused_and_nothing_written(entry, replacement, message):
    optimizer, params = stepped(dtype=BF16, master_weights=True, state_dtype="int8", block_size=256)
    state = optimizer.state[params[0]]
    state[entry] = replacement(state[entry])
    before = snapshot(optimizer, params)
    with pytest.raises(ValueError, match=message):
        optimizer.step()
    assert_unchanged(optimizer, params, before)
