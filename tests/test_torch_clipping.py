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


# ------------------------------------------------ the fixed-order sum of squares (reduce.c)
from gdfast._kernels import sum_of_squares, thread_stats  # noqa: E402

np = pytest.importorskip("numpy")

BLOCK, LANES = 4096, 16  # docs/spec-reductions.md


def reference_sum_of_squares(arrays):
    """docs/spec-reductions.md's order, literally: per tensor, blocks of 4096 elements in
    memory order; in a block element i squared in float64 into lane i mod 16 (in element
    order, lanes from +0.0); the block's sum = lane 0 + lane 1 + ... + lane 15 (in order,
    from 0); the tensor's sum = its block sums in block order (from 0); the total = the
    tensors' sums in list order (from 0).  (Padding a block with zeros adds +0.0 to a lane,
    which changes no lane: lanes are never -0.0.)"""
    per_tensor = []
    for array in arrays:
        x = np.ascontiguousarray(array).reshape(-1).astype(np.float64)
        blocks = -(-x.size // BLOCK)
        squares = np.zeros(blocks * BLOCK)
        squares[: x.size] = x * x
        squares = squares.reshape(blocks, BLOCK // LANES, LANES)
        lanes = np.zeros((blocks, LANES))
        for row in range(BLOCK // LANES):  # element order within each lane
            lanes = lanes + squares[:, row, :]
        block_sums = np.zeros(blocks)
        for lane in range(LANES):
            block_sums = block_sums + lanes[:, lane]
        total = 0.0
        for value in block_sums.tolist():
            total = total + value
        per_tensor.append(total)
    total = 0.0
    for value in per_tensor:
        total = total + value
    return total, per_tensor


SIZES = (0, 1, 15, 16, 17, 4095, 4096, 4097, 3 * 4096 + 5, 100_003)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_sum_of_squares_is_the_fixed_order_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    arrays = [(rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4)).astype(dtype) for n in SIZES]
    arrays.append(rng.standard_normal((7, 300)).astype(dtype))  # any shape: memory order
    total, per_tensor, nonfinite = sum_of_squares(arrays)
    expected_total, expected = reference_sum_of_squares(arrays)
    assert per_tensor.dtype == np.float64 and per_tensor.tolist() == expected
    assert total == expected_total
    assert not nonfinite.any()
    exact = [math.fsum(x.astype(np.float64).reshape(-1) ** 2) for x in arrays]
    np.testing.assert_allclose(per_tensor, exact, rtol=1e-13)


def test_sum_of_squares_mixes_dtypes_and_counts_nothing_for_an_empty_list():
    rng = np.random.default_rng(4)
    # blocks read four at a time where four whole blocks of one dtype line up, else singly
    arrays = [
        rng.standard_normal(5000).astype(np.float32),
        rng.standard_normal(9000),
        rng.standard_normal(12 * 4096).astype(np.float32),
        rng.standard_normal(5 * 4096 + 7),
        rng.standard_normal(4096 * 4).astype(np.float32),
    ]
    total, per_tensor, _ = sum_of_squares(arrays)
    assert (total, per_tensor.tolist()) == reference_sum_of_squares(arrays)
    total, per_tensor, nonfinite = sum_of_squares([])
    assert total == 0.0 and per_tensor.shape == nonfinite.shape == (0,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_sum_of_squares_has_the_same_bits_for_any_thread_count(dtype):
    # 6.5M elements: the runtime gives 3 threads blocks of it (a block counts as 64
    # elements of a step: threads from 2 * 32768 * 64 elements), plus small tensors
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(n).astype(dtype) for n in (6_500_000, 4097, 33, 1_000_000)]
    results = []
    before = thread_stats()["steps"]
    try:
        for count in (1, 2, 3):
            gdfast.set_num_threads(count)
            total, per_tensor, _ = sum_of_squares(arrays)
            results.append((total, per_tensor.tolist()))
    finally:
        gdfast.set_num_threads(None)
    # the 2- and 3-thread calls went to the runtime (which runs them with helpers unless
    # the machine is too busy for them to gain: its verdict, threads.inc)
    assert thread_stats()["steps"] >= before + 2
    assert results[0] == results[1] == results[2]
    expected_total, expected = reference_sum_of_squares(arrays)
    assert results[0] == (expected_total, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_sum_of_squares_names_the_tensors_with_an_inf_or_a_nan(dtype):
    arrays = [np.ones(n, dtype=dtype) for n in (10, 5000, 9000, 3)]
    arrays[1][4500] = np.inf
    arrays[2][10] = np.nan
    arrays[2][8999] = -np.inf
    total, per_tensor, nonfinite = sum_of_squares(arrays)
    assert nonfinite.tolist() == [False, True, True, False]
    assert math.isnan(total) and per_tensor[1] == math.inf and math.isnan(per_tensor[2])
    assert per_tensor[0] == 10.0 and per_tensor[3] == 3.0
    # finite float64 values whose squares overflow: an infinite sum, but no inf or NaN
    total, per_tensor, nonfinite = sum_of_squares([np.array([1e200, 1.0]), np.ones(2)])
    assert total == math.inf and nonfinite.tolist() == [False, False]
    # float32 squares are taken in float64: no overflow
    total, _, nonfinite = sum_of_squares([np.full(3, 3e38, dtype=np.float32)])
    assert total == pytest.approx(3 * float(np.float32(3e38)) ** 2) and not nonfinite.any()


def test_sum_of_squares_refuses_what_it_cannot_read():
    with pytest.raises(TypeError, match=r"arrays: expected a list or tuple"):
        sum_of_squares(np.ones(3))
    with pytest.raises(TypeError, match=r"arrays\[1\]: expected a numpy array, got list"):
        sum_of_squares([np.ones(3), [1.0]])
    with pytest.raises(TypeError, match=r"arrays\[0\]: expected float32 or float64, got int64"):
        sum_of_squares([np.arange(3)])
    with pytest.raises(ValueError, match=r"arrays\[0\]: expected a C-contiguous"):
        sum_of_squares([np.ones((4, 4))[:, 1]])
    with pytest.raises(ValueError, match=r"arrays\[0\]: expected a C-contiguous"):
        sum_of_squares([np.ones(4, dtype=">f8")])


def large_params(dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(300, 70), (70,), (9000,), (64, 3, 3, 3)]
    return [torch.nn.Parameter(torch.randn(s, dtype=dtype, generator=generator)) for s in shapes]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["Adam", "SGD"])
def test_clipping_over_many_blocks_equals_torch_foreach_clip_then_fused_step(name, dtype):
    theirs_params, ours_params = large_params(dtype), large_params(dtype)
    # the last parameter channels_last: its gradient is read in memory order
    for params in (theirs_params, ours_params):
        params[3].data = params[3].data.contiguous(memory_format=torch.channels_last)
    options = {"lr": 0.01} if name == "SGD" else {}
    theirs = getattr(torch.optim, name)(
        [{"params": theirs_params[:2]}, {"params": theirs_params[2:], "lr": 0.003}],
        fused=True,
        **options,
    )
    ours = getattr(gt, name)(
        [{"params": ours_params[:2]}, {"params": ours_params[2:], "lr": 0.003}],
        max_grad_norm=2.0,
        **options,
    )
    for step in range(6):
        for params in (theirs_params, ours_params):
            for p, g in zip(params, gradients(params, step, size=0.5)):
                p.grad = g.contiguous(memory_format=torch.channels_last) if g.dim() == 4 else g
        norm = torch.nn.utils.clip_grad_norm_(theirs_params, 2.0, foreach=True)
        theirs.step()
        ours.step()
        assert ours.grad_norm == pytest.approx(float(norm), rel=TOLERANCE[dtype])
    for p, q in zip(theirs_params, ours_params):
        assert relative(q.detach(), p.detach()) <= TOLERANCE[dtype]


def test_the_norm_is_the_fixed_order_sum_over_all_groups():
    params = large_params(torch.float64)
    for p, g in zip(params, gradients(params, 0)):
        p.grad = g
    optimizer = gt.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.0, max_grad_norm=1.0)
    optimizer.step()
    total, _ = reference_sum_of_squares([p.grad.numpy() for p in params])
    assert optimizer.grad_norm == math.sqrt(total)


def test_skip_if_nonfinite_skips_on_an_inf_or_nan_but_not_on_overflowing_squares():
    params = make_params(torch.float64)
    reference = make_params(torch.float64)
    optimizer = gt.SGD(params, lr=0.1, max_grad_norm=1.0, skip_if_nonfinite=True)
    theirs = torch.optim.SGD(reference, lr=0.1)
    for ps in (params, reference):
        for p, g in zip(ps, gradients(ps, 0)):
            p.grad = g
            p.grad[0] = 1e200  # finite, but its square is not: the norm is inf
    norm = torch.nn.utils.clip_grad_norm_(reference, 1.0)
    theirs.step()
    optimizer.step()  # not skipped: c = 1 / (inf + 1e-6) = 0, as clip_grad_norm_ gives
    assert optimizer.grad_norm == math.inf == float(norm)
    for p, q in zip(reference, params):
        assert torch.equal(p.detach(), q.detach())


@pytest.mark.parametrize("layout", ["contiguous", "transposed view", "gaps"])
def test_the_norm_follows_gradients_written_in_place_between_steps(layout):
    # zero_grad(set_to_none=False) keeps the gradient tensors: their views are reused, and a
    # gradient that has to be copied (gaps) is copied again at every step
    params = [torch.nn.Parameter(torch.zeros(40, 30, dtype=torch.float64))]
    optimizer = gt.SGD(params, lr=0.0, max_grad_norm=1.0)
    base = torch.zeros(30, 80, dtype=torch.float64)
    if layout == "contiguous":
        params[0].grad = torch.zeros(40, 30, dtype=torch.float64)
    elif layout == "transposed view":
        params[0].grad = torch.zeros(30, 40, dtype=torch.float64).t()
    else:
        params[0].grad = base.t()[::2]
    for value in (1.0, 2.0, 3.0):
        params[0].grad.fill_(value)
        optimizer.step()
        assert optimizer.grad_norm == pytest.approx(value * math.sqrt(1200), rel=1e-14)
    params[0].grad = torch.full((40, 30), 5.0, dtype=torch.float64)  # a new tensor
    optimizer.step()
    assert optimizer.grad_norm == pytest.approx(5.0 * math.sqrt(1200), rel=1e-14)
