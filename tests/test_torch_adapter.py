"""gdfast.torch: what it refuses (a clear error naming the tensor, nothing written), how it
keeps torch's state format, and that `import gdfast` never imports torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import gdfast.torch as gt  # noqa: E402

CLASSES = [gt.SGD, gt.Adam, gt.AdamW, gt.Adagrad, gt.Adadelta, gt.RMSprop, gt.Adamax, gt.NAdam]


def test_import_gdfast_does_not_import_torch():
    code = (
        "import sys, gdfast; import gdfast.optim, gdfast.reference; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


GDFAST_OPTIONS = {
    "max_grad_norm": None,
    "error_if_nonfinite": False,
    "skip_if_nonfinite": False,
    # the dtype policy (SPEC L.5; tests/test_torch_lowp.py)
    "state_dtype": "float32",
    "master_weights": False,
    "param_copy": None,
    "rounding": "nearest",
    "seed": 0,
    "block_size": 256,
}


def test_classes_subclass_torchs_with_torchs_signature_and_gdfasts_keyword_options():
    import inspect

    for cls in CLASSES:
        theirs_class = getattr(torch.optim, cls.__name__)
        assert issubclass(cls, theirs_class)
        theirs = inspect.signature(theirs_class).parameters
        ours = inspect.signature(cls).parameters
        assert list(ours) == list(theirs) + list(GDFAST_OPTIONS), cls.__name__
        for name, parameter in theirs.items():
            assert ours[name].default == parameter.default, (cls.__name__, name)
        for name, default in GDFAST_OPTIONS.items():
            assert ours[name].default == default and ours[name].kind is ours[name].KEYWORD_ONLY


BAD_PARAMS = {  # (bfloat16 and float16 are supported: tests/test_torch_lowp.py)
    "int16": (
        lambda: torch.zeros(3, dtype=torch.int16),
        TypeError,
        r"\['params'\]\[1\] \(shape \(3,\), torch.int16, cpu\): dtype torch.int16 is not",
    ),
    "complex": (
        lambda: torch.zeros(3, dtype=torch.complex64),
        TypeError,
        r"dtype torch.complex64 is not supported",
    ),
    "meta device (as CUDA would)": (
        lambda: torch.zeros(3, device="meta"),
        TypeError,
        r"only CPU tensors are supported; use torch.optim",
    ),
    "with gaps": (
        lambda: torch.zeros(4, 6)[:, ::2],
        ValueError,
        r"\['params'\]\[1\] \(shape \(4, 3\).*expected a dense tensor",
    ),
}


@pytest.mark.parametrize("case", BAD_PARAMS)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unsupported_parameters_are_refused_at_construction(cls, case):
    make, error, message = BAD_PARAMS[case]
    good = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(error, match=message):
        cls([good, torch.nn.Parameter(make(), requires_grad=False)])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_sparse_gradient_raises_and_writes_nothing(cls):
    params = [torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(5))]
    optimizer = cls(params, lr=0.1)
    for p in params:
        p.grad = torch.full_like(p, 0.5)
    optimizer.step()
    before = [p.detach().clone() for p in params]
    state_before = {
        k: v.clone() for k, v in optimizer.state[params[0]].items() if isinstance(v, torch.Tensor)
    }
    params[0].grad = torch.full_like(params[0], 0.5)
    params[1].grad = torch.ones(5).to_sparse()
    with pytest.raises(TypeError, match=r"gradient of param_groups\[0\]\['params'\]\[1\].*sparse"):
        optimizer.step()
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b)
    for key, value in state_before.items():
        assert torch.equal(optimizer.state[params[0]][key], value), key


# torch's constructor checks first (its messages); gdfast's checks then refuse what torch
# lets through and the kernels cannot take (its messages name the argument)
BAD_OPTIONS = [
    (gt.Adam, {"lr": -1.0}, ValueError, r"Invalid learning rate: -1.0"),
    (gt.Adam, {"lr": float("inf")}, ValueError, r"lr: expected a finite number >= 0"),
    (gt.Adam, {"betas": (0.9, 1.0)}, ValueError, r"Invalid beta parameter at index 1"),
    (gt.Adam, {"amsgrad": "yes"}, TypeError, r"amsgrad: expected True or False"),
    (
        gt.SGD,
        {"momentum": 0.0, "nesterov": True},
        ValueError,
        r"Nesterov momentum requires a momentum and zero dampening",
    ),
    (gt.SGD, {"dampening": 2.0}, ValueError, r"dampening: expected a number in \[0, 1\]"),
    (gt.RMSprop, {"alpha": 1.5}, ValueError, r"alpha: expected a number in \[0, 1\]"),
    (gt.Adagrad, {"lr_decay": -0.1}, ValueError, r"Invalid lr_decay value: -0.1"),
    (gt.NAdam, {"momentum_decay": float("nan")}, ValueError, r"Invalid momentum_decay value: nan"),
]


@pytest.mark.parametrize("cls, options, error, message", BAD_OPTIONS)
def test_bad_options_name_the_argument(cls, options, error, message):
    with pytest.raises(error, match=message):
        cls([torch.nn.Parameter(torch.zeros(2))], **options)


def test_bad_options_in_an_added_group_leave_the_groups_alone():
    optimizer = gt.Adam([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match=r"eps: expected"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(3))], "eps": -1})
    assert len(optimizer.param_groups) == 1


def test_state_format_is_torchs():
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    expected = {
        gt.Adam: {"step", "exp_avg", "exp_avg_sq"},
        gt.Adagrad: {"step", "sum"},
        gt.Adadelta: {"step", "square_avg", "acc_delta"},
        gt.Adamax: {"step", "exp_avg", "exp_inf"},
        gt.NAdam: {"step", "mu_product", "exp_avg", "exp_avg_sq"},
    }
    for cls, keys in expected.items():
        optimizer = cls(params)
        for p in params:
            p.grad = torch.ones_like(p)
        optimizer.step()
        optimizer.step()
        theirs = getattr(torch.optim, cls.__name__)([torch.nn.Parameter(torch.ones(3))])
        theirs.param_groups[0]["params"][0].grad = torch.ones(3)
        theirs.step()
        their_state = theirs.state[theirs.param_groups[0]["params"][0]]
        state = optimizer.state[params[0]]
        assert set(state) == keys == set(their_state), cls.__name__
        assert state["step"].dtype == their_state["step"].dtype and state["step"].ndim == 0
        assert float(state["step"]) == 2.0
    optimizer = gt.SGD(params, momentum=0.9)
    optimizer.step()
    assert set(optimizer.state[params[0]]) == {"momentum_buffer"}
    optimizer = gt.RMSprop(params, centered=True, momentum=0.5)
    optimizer.step()
    assert set(optimizer.state[params[0]]) == {"step", "square_avg", "grad_avg", "momentum_buffer"}


def test_updates_happen_in_place_on_the_tensors_memory():
    param = torch.nn.Parameter(torch.ones(1000))
    address = param.data_ptr()
    optimizer = gt.Adam([param], lr=0.1)
    param.grad = torch.ones(1000)
    optimizer.step()
    assert param.data_ptr() == address and float(param.detach()[0]) == pytest.approx(0.9)
    exp_avg = optimizer.state[param]["exp_avg"]
    optimizer.step()
    assert optimizer.state[param]["exp_avg"] is exp_avg


def test_changing_a_structural_option_after_state_exists_is_an_error():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = gt.Adam([param])
    param.grad = torch.ones(3)
    optimizer.step()
    optimizer.param_groups[0]["amsgrad"] = True
    with pytest.raises(ValueError, match=r"state\['max_exp_avg_sq'\].*missing"):
        optimizer.step()


def test_closure_is_called_and_its_loss_returned():
    param = torch.nn.Parameter(torch.tensor([2.0]))
    optimizer = gt.SGD([param], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (param**2).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).detach().item() == 4.0
    assert float(param.detach()) == pytest.approx(2.0 - 0.25 * 4.0)


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "NAdam"])
def test_kept_and_replaced_gradient_tensors_are_both_seen(name):
    """zero_grad(set_to_none=False) keeps the gradient tensors (their checked views are
    reused); a gradient replaced by another tensor, or written in place, is seen."""

    def run(module):
        params = [
            torch.nn.Parameter(torch.linspace(-1, 1, 5, dtype=torch.float64) * k)
            for k in (1.0, 2.0)
        ]
        optimizer = getattr(module, name)(params, lr=0.01)
        for step in range(30):
            optimizer.zero_grad(set_to_none=False)
            for p in params:
                if step in (0, 10):
                    p.grad = torch.zeros_like(p)  # a new tensor object
                p.grad.add_(torch.cos(p.detach() * (step + 1)))  # written in place
            optimizer.step()
        return params

    for ours, theirs in zip(run(gt), run(torch.optim)):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)


def test_loaded_state_of_the_wrong_shape_is_refused_before_any_write():
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    source = torch.optim.Adam(
        [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(4))]
    )
    for p in source.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    source.step()
    optimizer = gt.Adam(params)
    with pytest.raises(ValueError):  # torch's own check (size mismatch) or ours
        optimizer.load_state_dict(source.state_dict())
        for p in params:
            p.grad = torch.ones_like(p)
        optimizer.step()
    assert all(torch.equal(p.detach(), torch.ones_like(p)) for p in params)
