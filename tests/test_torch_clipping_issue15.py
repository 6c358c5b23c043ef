"""gdfast.torch's LAMB, Adafactor, ScheduleFreeAdamW, ScheduleFreeSGD and Muon clip gradients in
the step as the other classes do (max_grad_norm, error_if_nonfinite, skip_if_nonfinite):
the same as torch.nn.utils.clip_grad_norm_ followed by the unclipped step.  LAMB's clipping
is pytorch-optimizer's pre_norm (with its max_grad_norm)."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
import gdfast.torch as gt  # noqa: E402

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}

# (class, clipping options, options of both)
CASES = {
    "LAMB": ("LAMB", {"pre_norm": True, "max_grad_norm": 1.0}, {"lr": 0.01}),
    "Adafactor": ("Adafactor", {"max_grad_norm": 1.0}, {"lr": 0.01}),
    "ScheduleFreeAdamW": ("ScheduleFreeAdamW", {"max_grad_norm": 1.0}, {"lr": 0.01}),
    "ScheduleFreeSGD": ("ScheduleFreeSGD", {"max_grad_norm": 1.0}, {"lr": 0.01}),
    "Muon": ("Muon", {"max_grad_norm": 1.0}, {"lr": 0.01}),
}
# torch.optim.Muon takes 2-D parameters only
SHAPES = {"Muon": [(6, 5), (4, 3)]}


def make_params(dtype, seed=0, name=None):
    generator = torch.Generator().manual_seed(seed)
    shapes = SHAPES.get(name, [(6, 5), (5,), (3, 2, 2)])
    return [torch.nn.Parameter(torch.randn(s, dtype=dtype, generator=generator)) for s in shapes]


def gradients(params, step):
    """Gradients of norm about 3 (clipped at 1), every third step small (not clipped)."""
    size = 0.01 if step % 3 == 2 else 3.0
    return [torch.cos(p.detach() * (step + 1) + k) * size for k, p in enumerate(params)]


def make(name, params, clipped):
    cls_name, clipping, options = CASES[name]
    optimizer = getattr(gt, cls_name)(params, **(clipping if clipped else {}), **options)
    if hasattr(optimizer, "train"):
        optimizer.train()
    return optimizer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_max_grad_norm_equals_clip_grad_norm_then_step(name, dtype):
    theirs_params, ours_params = make_params(dtype, name=name), make_params(dtype, name=name)
    theirs, ours = make(name, theirs_params, False), make(name, ours_params, True)
    clipped_steps = 0
    for step in range(9):
        for params in (theirs_params, ours_params):
            for p, g in zip(params, gradients(params, step)):
                p.grad = g
        norm = torch.nn.utils.clip_grad_norm_(theirs_params, 1.0)
        clipped_steps += bool(norm > 1.0)
        theirs.step()
        ours.step()
        assert ours.grad_norm == pytest.approx(float(norm), rel=TOLERANCE[dtype])
        for a, b in zip(ours_params, theirs_params):
            torch.testing.assert_close(a, b, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    assert clipped_steps == 6  # the clipping did act


@pytest.mark.parametrize("name", list(CASES))
def test_nonfinite_gradient(name):
    params = make_params(torch.float64, name=name)
    optimizer = make(name, params, True)
    for p, g in zip(params, gradients(params, 0)):
        p.grad = g
    params[1].grad[2] = float("nan")
    kept = [p.detach().clone() for p in params]
    cls_name, clipping, options = CASES[name]
    refusing = getattr(gt, cls_name)(params, error_if_nonfinite=True, **clipping, **options)
    if hasattr(refusing, "train"):
        refusing.train()
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        refusing.step()
    skipping = getattr(gt, cls_name)(params, skip_if_nonfinite=True, **clipping, **options)
    if hasattr(skipping, "train"):
        skipping.train()
    skipping.step()
    for p, k in zip(params, kept):
        assert torch.equal(p.detach(), k)
    del optimizer


@pytest.mark.parametrize("name", list(CASES))
def test_clipping_options_checked_and_kept(name):
    cls_name, clipping, options = CASES[name]
    cls = getattr(gt, cls_name)
    with pytest.raises(ValueError, match="max_grad_norm"):
        cls(make_params(torch.float64, name=name), **{**clipping, "max_grad_norm": -1.0})
    with pytest.raises(ValueError, match="choose one"):
        cls(make_params(torch.float64, name=name), error_if_nonfinite=True, skip_if_nonfinite=True)
    optimizer = cls(
        make_params(torch.float64, name=name), skip_if_nonfinite=True, **clipping, **options
    )
    copied = copy.deepcopy(optimizer)
    assert (copied.max_grad_norm, copied.skip_if_nonfinite) == (1.0, True)


def test_lamb_pre_norm_as_pytorch_optimizer():
    """Within 1e-6: pytorch-optimizer sums the squared norms in float32 (its
    get_global_gradient_norm), gdfast in float64, so its clip scale of float64 parameters
    carries float32 rounding."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    theirs_params, ours_params = make_params(torch.float64), make_params(torch.float64)
    theirs = pytorch_optimizer.Lamb(theirs_params, lr=0.01, pre_norm=True, max_grad_norm=1.0)
    ours = gt.LAMB(ours_params, lr=0.01, pre_norm=True, max_grad_norm=1.0)
    for step in range(9):
        for params in (theirs_params, ours_params):
            for p, g in zip(params, gradients(params, step)):
                p.grad = g
        theirs.step()
        ours.step()
        for a, b in zip(ours_params, theirs_params):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_lamb_max_grad_norm_without_pre_norm_does_nothing():
    """pytorch-optimizer's max_grad_norm acts only with pre_norm."""
    assert gt.LAMB(make_params(torch.float64), max_grad_norm=0.5).max_grad_norm is None
    with pytest.raises(ValueError, match="eps"):
        gt.LAMB(make_params(torch.float64), pre_norm=True, eps=1e-8)
