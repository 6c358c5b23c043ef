"""gdfast.torch's LAMB, Adafactor and Muon read the gradients in place (no copy per step):
a gradient sharing memory with what the step writes is refused before anything is
written; a non-contiguous gradient gives the same step as its contiguous copy; the clipping
keywords are the base class's, for all three."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the 'test' extra)")
import gdfast.torch as gt  # noqa: E402

CLASSES = [gt.LAMB, gt.Adafactor, gt.Muon]


def _stepped(cls, shape=(6, 4), steps=1, **options):
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(shape, dtype=torch.float64))
    optimizer = cls([weight], **options)
    for step in range(steps):
        weight.grad = torch.randn(shape, dtype=torch.float64) * 10**step
        optimizer.step()
    return weight, optimizer


def _snapshot(weight, optimizer):
    state = {k: v.clone() for k, v in optimizer.state[weight].items() if torch.is_tensor(v)}
    return weight.detach().clone(), state


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("target", ["param", "state"])
def test_aliased_gradient_is_refused_before_any_write(cls, target):
    # (Adafactor keeps a state of the parameter's shape for a vector only)
    weight, optimizer = _stepped(cls, (24,) if cls is gt.Adafactor else (6, 4))
    if target == "param":
        weight.grad = weight.detach()[:]  # a view of the parameter itself
    else:
        name = next(k for k, v in optimizer.state[weight].items() if v.shape == weight.shape)
        weight.grad = optimizer.state[weight][name]
    before_weight, before_state = _snapshot(weight, optimizer)
    with pytest.raises(ValueError, match="shares memory"):
        optimizer.step()
    assert torch.equal(weight.detach(), before_weight)
    for name, value in before_state.items():
        assert torch.equal(optimizer.state[weight][name], value), name


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_non_contiguous_gradient_steps_as_its_copy(cls):
    results = []
    for contiguous in (True, False):
        torch.manual_seed(1)
        weight = torch.nn.Parameter(torch.randn(5, 7, dtype=torch.float64))
        grad = torch.randn(7, 5, dtype=torch.float64).t()  # non-contiguous
        weight.grad = grad.contiguous() if contiguous else grad
        optimizer = cls([weight])
        optimizer.step()
        optimizer.step()
        results.append(weight.detach().clone())
        assert not contiguous or weight.grad.is_contiguous()
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize(
    "cls, options",
    # Adafactor's U = g / √V̂ does not see g's scale unless the ε1 floor holds V̂ up; Muon's
    # orthogonalised momentum sees the clip scales of two steps of different norms
    [(gt.Adafactor, {"eps": (1e-3, 1e-3)}), (gt.Muon, {"steps": 2})],
    ids=["Adafactor", "Muon"],
)
def test_clipping_keywords_come_from_the_base_class(cls, options):
    assert "__init__" not in vars(cls)  # the per-tensor base class takes them
    clipped, optimizer = _stepped(cls, max_grad_norm=1e-3, **options)
    plain, _ = _stepped(cls, **options)
    assert optimizer.max_grad_norm == 1e-3
    assert not torch.equal(clipped, plain)
