"""torch's conventions for the per-tensor adapters (LAMB, Adafactor, Muon) (the audit's).

torch.optim steps a non-contiguous parameter (a transposed weight, `nn.Parameter(w.t())`)
as any other, and so do gdfast.torch's element-wise classes; zero-size parameters and
parameters without a gradient are stepped (or skipped) without error.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import gdfast.torch as gt  # noqa: E402

PER_TENSOR = ["LAMB", "Adafactor", "Muon"]


def _steps(cls, param, steps=3):
    optimizer = cls([param], lr=0.01)
    for k in range(steps):
        param.grad = torch.linspace(-1, 1, param.numel()).reshape(param.shape) * (k + 1)
        optimizer.step()
    return param.detach()


@pytest.mark.parametrize("name", ["RAdam", "Adam", "NAdam"])
def test_element_wise_classes_step_a_transposed_parameter_as_its_copy(name):
    cls = getattr(gt, name)
    weight = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    transposed = torch.nn.Parameter(weight.t())
    copy = torch.nn.Parameter(weight.t().contiguous())
    assert torch.equal(_steps(cls, transposed), _steps(cls, copy))


@pytest.mark.parametrize("name", PER_TENSOR)
def test_per_tensor_classes_step_a_transposed_parameter_as_its_copy(name):
    cls = getattr(gt, name)
    weight = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    transposed = torch.nn.Parameter(weight.t())
    copy = torch.nn.Parameter(weight.t().contiguous())
    assert torch.equal(_steps(cls, transposed), _steps(cls, copy))


@pytest.mark.parametrize("name", PER_TENSOR)
@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (0, 0)])
def test_zero_size_and_frozen_parameters_are_left_alone(name, shape):
    cls = getattr(gt, name)
    empty = torch.nn.Parameter(torch.zeros(shape))
    frozen = torch.nn.Parameter(torch.ones(3, 2), requires_grad=False)
    live = torch.nn.Parameter(torch.ones(3, 2))
    optimizer = cls([empty, frozen, live], lr=0.01)
    empty.grad = torch.zeros(shape)
    live.grad = torch.linspace(-1, 1, 6).reshape(3, 2)
    optimizer.step()
    assert empty.shape == shape
    assert torch.equal(frozen.detach(), torch.ones(3, 2))
    assert not torch.equal(live.detach(), torch.ones(3, 2))
    assert frozen not in optimizer.state


@pytest.mark.parametrize("name", PER_TENSOR)
def test_a_complex_parameter_is_refused_by_name(name):
    param = torch.nn.Parameter(torch.ones(3, 2, dtype=torch.complex64))
    try:
        optimizer = getattr(gt, name)([param], lr=0.01)
    except (TypeError, ValueError) as error:
        assert "complex" in str(error)
        return
    param.grad = torch.ones_like(param)
    before = param.detach().clone()
    with pytest.raises((TypeError, ValueError), match="complex"):
        optimizer.step()
    assert torch.equal(param.detach(), before)
