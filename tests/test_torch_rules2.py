"""gdfast.torch's classes for issue 15's rules against their libraries, beyond
test_torch_parity (which runs RAdam, Rprop and ASGD against torch.optim with their rows'
torch_configs, tests/rules_table.py): ASGD under torch's float32 scalars; Lion against
lion-pytorch 0.2.5 with its row's torch_configs (100 steps on test_torch_parity's model,
every parameter and state entry within 1e-10 relative in float64 and 1e-5 in float32);
SparseAdam against torch.optim (100 steps of an embedding table with sparse gradients,
repeated rows included).  And torch's own OptimizerInfo tables (configurations and error
inputs) for RAdam, Rprop, ASGD and SparseAdam, as test_torch_tables.py runs them for the
first eight classes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import gdfast.torch as gt  # noqa: E402
import test_rules2_parity as rules2_parity  # noqa: E402  (its default_dtype)
import test_torch_parity as parity  # noqa: E402  (its helpers: Model, data, train, ...)
from rules_table import RULES  # noqa: E402

TOLERANCE = parity.TOLERANCE
DTYPES = pytest.mark.parametrize("dtype", parity.DTYPES, ids=parity.DTYPE_IDS)

# torch keeps ASGD's η_t and μ_t in its default dtype; gdfast computes them in double (the
# class docstring): the float64 comparisons run with a float64 default dtype
default_dtype = rules2_parity.default_dtype


def test_asgd_with_torchs_float32_scalars_is_within_their_rounding():
    """float64 parameters under torch's float32 default: torch rounds η_t to float32
    (relative 6e-8), gdfast does not; the trajectories stay that close."""
    x, y = parity.data(torch.float64)
    theirs_model, ours_model = parity.Model(torch.float64), parity.Model(torch.float64)
    config = {"lr": 0.05, "t0": 10}
    theirs = torch.optim.ASGD(theirs_model.parameters(), **config)
    ours = gt.ASGD(ours_model.parameters(), **config)
    parity.train(theirs_model, theirs, x, y)
    parity.train(ours_model, ours, x, y)
    assert ours.state[ours_model.second.weight]["eta"].dtype == torch.float32
    parity.assert_same(theirs_model, ours_model, theirs, ours, 1e-6)


# ---------------------------------------------------------------- Lion
@DTYPES
@pytest.mark.parametrize("config", RULES["Lion"].torch_configs, ids=lambda c: str(c) or "defaults")
def test_lion_matches_lion_pytorch(config, dtype):
    lion_pytorch = pytest.importorskip(
        "lion_pytorch", reason="pip install --no-deps lion-pytorch==0.2.5 (the 'test' extra)"
    )
    x, y = parity.data(dtype)
    theirs_model, ours_model = parity.Model(dtype), parity.Model(dtype)
    theirs = lion_pytorch.Lion(theirs_model.parameters(), **config)
    ours = gt.Lion(ours_model.parameters(), **config)
    for model, optimizer in ((theirs_model, theirs), (ours_model, ours)):
        optimizer.param_groups[0].setdefault("maximize", False)  # (parity.train reads it)
    parity.train(theirs_model, theirs, x, y)
    parity.train(ours_model, ours, x, y)
    parity.assert_same(theirs_model, ours_model, theirs, ours, TOLERANCE[dtype])
    assert parity.relative(ours_model.first.weight, parity.Model(dtype).first.weight) > 1e-4
    assert ours.param_groups[0].keys() == theirs.param_groups[0].keys()


def test_lion_refuses_what_lion_pytorch_refuses():
    params = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match="lr: expected a number > 0"):
        gt.Lion(params, lr=0.0)
    with pytest.raises(ValueError, match="use_triton=True"):
        gt.Lion(params, use_triton=True)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        gt.Lion(params, betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="lr, betas: give floats"):
        gt.Lion(params, lr=torch.tensor(1e-3))


# ---------------------------------------------------------- SparseAdam
def embedding_steps(optimizer_class, dtype, config, steps=100):
    generator = torch.Generator().manual_seed(3)
    table = torch.nn.Embedding(50, 4, sparse=True).to(dtype)
    with torch.no_grad():
        table.weight.copy_(torch.randn(50, 4, dtype=dtype, generator=generator))
    target = torch.randn(50, 4, dtype=dtype, generator=generator)
    optimizer = optimizer_class(table.parameters(), **config)
    sign = -1.0 if config.get("maximize") else 1.0
    for step in range(steps):
        rows = torch.randint(0, 50, (12,), generator=generator)  # repeats included
        optimizer.zero_grad()
        (sign * ((table(rows) - target[rows]) ** 2).sum()).backward()
        assert table.weight.grad.is_sparse
        optimizer.step()
    return table, optimizer


@DTYPES
@pytest.mark.parametrize(
    "config",
    [{}, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}, {"lr": 0.01, "maximize": True}],
    ids=["defaults", "options", "maximize"],
)
def test_sparse_adam_matches_torch(config, dtype):
    theirs_table, theirs = embedding_steps(torch.optim.SparseAdam, dtype, config)
    ours_table, ours = embedding_steps(gt.SparseAdam, dtype, config)
    tolerance = TOLERANCE[dtype]
    assert parity.relative(ours_table.weight, theirs_table.weight) <= tolerance
    expected, actual = theirs.state[theirs_table.weight], ours.state[ours_table.weight]
    assert sorted(actual) == sorted(expected) and actual["step"] == expected["step"]
    for key in ("exp_avg", "exp_avg_sq"):
        assert parity.relative(actual[key], expected[key]) <= tolerance, key


def test_sparse_adam_refuses_dense_gradients_before_writing():
    params = [torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(3, 2))]
    optimizer = gt.SparseAdam(params)
    params[0].grad = torch.sparse_coo_tensor([[0, 2]], torch.ones(2, 2), (3, 2))
    params[1].grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        optimizer.step()
    assert torch.equal(params[0].detach(), torch.ones(3, 2)) and not optimizer.state


def test_sparse_adam_refuses_out_of_range_rows_before_writing():
    params = [torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(3, 2))]
    optimizer = gt.SparseAdam(params)
    params[0].grad = torch.sparse_coo_tensor([[0, 2]], torch.ones(2, 2), (3, 2))
    params[1].grad = torch.sparse_coo_tensor(
        [[0, 7]], torch.ones(2, 2), (3, 2), check_invariants=False
    )
    with pytest.raises(
        ValueError, match=r"param_groups\[0\]\['params'\]\[1\].*indices are out of range"
    ):
        optimizer.step()
    assert torch.equal(params[0].detach(), torch.ones(3, 2)) and not optimizer.state


# ------------------------------------------------------ torch's own tables
tables_test = pytest.importorskip("test_torch_tables")
NEW = ["RAdam", "Rprop", "ASGD", "SparseAdam"]
INFOS = {
    info.optim_cls.__name__: info
    for info in tables_test.tables.optim_db
    if info.optim_cls.__name__ in NEW
}


def configurations():
    cases = []
    for name, info in INFOS.items():
        for dtype_name, dtype in tables_test.DTYPES.items():
            inputs = tables_test.tables._get_optim_inputs_including_global_cliquey_kwargs(
                "cpu", dtype, info
            )
            for number, optim_input in enumerate(inputs):
                label = f"{name}-{dtype_name}-{number}-{optim_input.desc}"
                cases.append(pytest.param(name, dtype, optim_input, id=label))
    return cases


@pytest.mark.parametrize("name, dtype, optim_input", configurations())
def test_torchs_configurations_match_or_are_refused(name, dtype, optim_input, monkeypatch):
    """test_torch_tables.py's test on these classes (SparseAdam: on an embedding table)."""
    if name == "SparseAdam":  # its problem: an embedding table with sparse gradients
        theirs_table, _ = embedding_steps(torch.optim.SparseAdam, dtype, optim_input.kwargs, 20)
        ours_table, _ = embedding_steps(gt.SparseAdam, dtype, optim_input.kwargs, 20)
        assert parity.relative(ours_table.weight, theirs_table.weight) <= TOLERANCE[dtype]
        return
    monkeypatch.setitem(tables_test.INFOS, name, INFOS[name])
    with default_dtype(dtype if name == "ASGD" else torch.get_default_dtype()):
        tables_test.test_torchs_configurations_match_or_are_refused(name, dtype, optim_input)


def error_inputs():
    return [
        pytest.param(name, number, id=f"{name}-{number}-{error.error_regex}")
        for name, info in INFOS.items()
        for number, error in enumerate(
            info.optim_error_inputs_func(device="cpu", dtype=torch.float32)
        )
    ]


@pytest.mark.parametrize("name, number", error_inputs())
def test_torchs_error_inputs_are_refused_as_torch_refuses_them(name, number, monkeypatch):
    """test_torch_tables.py's test on these classes."""
    monkeypatch.setitem(tables_test.INFOS, name, INFOS[name])
    tables_test.test_torchs_error_inputs_are_refused_as_torch_refuses_them(name, number)
