"""gdfast.torch's gradient clipping inside the step (max_grad_norm, error_if_nonfinite,
skip_if_nonfinite) against torch.nn.utils.clip_grad_norm_ + torch.optim, and
step_in_backward against backward-then-step."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import gdfast  # noqa: E402
import gdfast.torch as gt  # noqa: E402

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def make_params(dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(6, 5), (5,), (3, 2, 2)]
    return [torch.nn.Parameter(torch.randn(s, dtype=dtype, generator=generator)) for s in shapes]


def gradients(params, step, size=3.0):
    """Gradients of norm about `size` (clipped at max_grad_norm=1), some steps small."""
    small = step % 3 == 2
    return [
        torch.cos(p.detach() * (step + 1) + k) * (0.01 if small else size)
        for k, p in enumerate(params)
    ]


def relative(a, b):
    return (a.double() - b.double()).abs().max().item() / max(b.double().abs().max().item(), 1e-300)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "name, options",
    [
        ("Adam", {}),
        ("SGD", {"momentum": 0.9, "lr": 0.01}),
        ("RMSprop", {"lr": 1e-3}),
        ("NAdam", {}),
        ("Adagrad", {"weight_decay": 0.1}),
    ],
)
def test_max_grad_norm_equals_clip_grad_norm_then_step(name, options, dtype):
    theirs_params, ours_params = make_params(dtype), make_params(dtype)
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.002}]  # noqa: E731
    theirs = getattr(torch.optim, name)(groups(theirs_params), **options)
    ours = getattr(gt, name)(groups(ours_params), max_grad_norm=1.0, **options)
    for step in range(12):
        for params in (theirs_params, ours_params):
            for p, g in zip(params, gradients(params, step)):
                p.grad = g
        kept = [p.grad.clone() for p in ours_params]
        norm = torch.nn.utils.clip_grad_norm_(theirs_params, 1.0)
        theirs.step()
        ours.step()
        assert ours.grad_norm == pytest.approx(float(norm), rel=TOLERANCE[dtype])
        # the scale is applied inside the step: the gradients are not written
        assert all(torch.equal(p.grad, k) for p, k in zip(ours_params, kept))
    for p, q in zip(theirs_params, ours_params):
        assert relative(q.detach(), p.detach()) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_the_norm_has_the_same_bits_for_any_thread_count(dtype):
    sizes = (5, 16384, 40_000, 200_003, 3 * 65536 + 7)
    params = [torch.nn.Parameter(torch.randn(n, dtype=dtype)) for n in sizes]
    for p in params:
        p.grad = torch.sin(p.detach() * 3.0)
    norms = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            gdfast.set_num_threads(count)
            optimizer = gt.SGD(params, lr=0.0, max_grad_norm=1.0)
            optimizer.step()
            norms.append(optimizer.grad_norm)
    finally:
        torch.set_num_threads(threads)
        gdfast.set_num_threads(1)
    assert norms[0] == norms[1] == norms[2]
    exact = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
    assert norms[0] == pytest.approx(exact, rel=TOLERANCE[dtype] / 10)


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_error_if_nonfinite_raises_and_writes_nothing(bad):
    params = make_params(torch.float64)
    optimizer = gt.Adam(params, max_grad_norm=1.0, error_if_nonfinite=True)
    for p, g in zip(params, gradients(params, 0)):
        p.grad = g
    optimizer.step()
    before = [p.detach().clone() for p in params]
    state = {k: v.clone() for k, v in optimizer.state[params[0]].items()}
    params[2].grad[0, 0, 0] = bad
    with pytest.raises(RuntimeError, match=r"total norm of the gradients is (inf|nan)"):
        optimizer.step()
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before))
    assert all(torch.equal(optimizer.state[params[0]][k], v) for k, v in state.items())


def test_skip_if_nonfinite_skips_the_whole_step():
    params = make_params(torch.float64)
    optimizer = gt.Adam(params, skip_if_nonfinite=True)
    for p, g in zip(params, gradients(params, 0)):
        p.grad = g
    optimizer.step()
    before = [p.detach().clone() for p in params]
    params[0].grad[0, 0] = math.nan
    optimizer.step()
    assert math.isnan(optimizer.grad_norm)
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before))
    assert float(optimizer.state[params[0]]["step"]) == 1.0
    params[0].grad[0, 0] = 0.0
    optimizer.step()
    assert float(optimizer.state[params[0]]["step"]) == 2.0


def test_bad_clipping_options_are_refused():
    with pytest.raises(ValueError, match=r"max_grad_norm: expected a finite number > 0"):
        gt.Adam(make_params(torch.float64), max_grad_norm=0.0)
    with pytest.raises(ValueError, match=r"choose one"):
        gt.Adam(make_params(torch.float64), error_if_nonfinite=True, skip_if_nonfinite=True)


# ------------------------------------------------------------------- step in backward
class MLP(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(8, 16),
            torch.nn.Tanh(),
            torch.nn.Linear(16, 16),
            torch.nn.Tanh(),
            torch.nn.Linear(16, 1),
        ).double()

    def forward(self, x):
        return self.layers(x)


def batches(count=30):
    generator = torch.Generator().manual_seed(1)
    for _ in range(count):
        x = torch.randn(16, 8, dtype=torch.float64, generator=generator)
        yield x, torch.sin(x.sum(1, keepdim=True))


def test_step_in_backward_equals_backward_then_step_without_clipping():
    models = MLP(), MLP()
    reference = gt.AdamW(models[0].parameters(), lr=0.01)
    run = gt.step_in_backward(models[1], lambda ps: gt.AdamW(ps, lr=0.01))
    schedules = [
        torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5)
        for o in (reference, run.optimizer)
    ]
    for x, y in batches():
        reference.zero_grad()
        ((models[0](x) - y) ** 2).mean().backward()
        reference.step()
        ((models[1](x) - y) ** 2).mean().backward()
        assert all(p.grad is None for p in models[1].parameters())  # freed at once
        for schedule in schedules:
            schedule.step()
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**3)
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert relative(q.detach(), p.detach()) <= 1e-12
    run.remove()
    ((models[1](x) - y) ** 2).mean().backward()
    assert all(p.grad is not None for p in models[1].parameters())


def test_step_in_backward_clips_with_the_previous_norm_and_first_step_exact():
    model = MLP()
    run = gt.step_in_backward(model, lambda ps: gt.SGD(ps, lr=0.1), max_grad_norm=0.05)
    previous = None
    for number, (x, y) in enumerate(batches(5)):
        before = [p.detach().clone() for p in model.parameters()]
        ((model(x) - y) ** 2).mean().backward()
        # what the step did, against the gradients computed apart
        probe = MLP()
        probe.load_state_dict({k: v for k, v in zip(probe.state_dict(), before)})
        ((probe(x) - y) ** 2).mean().backward()
        grads = [p.grad for p in probe.parameters()]
        norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
        scale = min(1.0, 0.05 / ((norm if number == 0 else previous) + 1e-6))
        for p, b, g in zip(model.parameters(), before, grads):
            torch.testing.assert_close(p.detach(), b - 0.1 * scale * g, rtol=1e-12, atol=1e-14)
        assert run.grad_norm == pytest.approx(norm, rel=1e-12)
        previous = norm
    assert run.exact_steps == 1
