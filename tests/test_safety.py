"""Regression tests of issue 18 (optimizer core): races, step-count limits, validate-then-write,
edge numerics, masked arrays and untrusted state files.  The table of bad inputs is in
test_fuzz_optim.py; these are the cases that need threads, memory measurement or a
specific numeric check."""

from __future__ import annotations

import io
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

import gdfast
from gdfast import reference

BACKENDS = [gdfast.optim, reference]
IDS = ["gdfast", "reference"]
INT64_MAX = np.iinfo(np.int64).max


def state_bytes(opt):
    return (
        [p.tobytes() for p in opt.params]
        + [opt.steps]
        + [b.tobytes() for name in opt.state_names for b in opt.state[name]]
    )


# ------------------------------------------------------------------ item 2: check, then use
class RewrittenAfterCheck(np.ndarray):
    """Indices whose min()/max() report a valid range while the buffer holds row 10**7:
    exactly what a check sees when another thread writes the array between the range check
    and the copy the kernel reads (the old order: check the caller's array, copy later)."""

    def min(self, *args, **kwargs):
        return 0

    def max(self, *args, **kwargs):
        return 0


@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
def test_row_indices_are_copied_before_they_are_checked(module):
    table = np.zeros((4, 3), dtype=np.float32)
    opt = module.Adam(table)
    before = state_bytes(opt)
    indices = np.array([1, 10**7]).view(RewrittenAfterCheck)
    with pytest.raises(ValueError, match=r"grads.indices: index 10000000 out of range"):
        opt.step(gdfast.RowGrad(indices, np.ones((2, 3), dtype=np.float32)))
    assert state_bytes(opt) == before


def test_the_step_uses_its_own_list_of_gradients():
    """The caller's list is copied before the fast-path check: a list that changes after
    `step` returned is not the optimizer's business, and the step used what was checked."""
    param = np.zeros(3)
    opt = gdfast.SGD([param], lr=1.0)
    grads = [np.ones(3)]
    opt.step(grads)
    grads[0] = None  # no effect on the finished step, no reference kept
    np.testing.assert_array_equal(param, -1.0)


# ----------------------------------------------------------- items 4 and 5: steps and limits
@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
@pytest.mark.parametrize(
    "steps",
    [[2**63, 0], [2**64 - 1, 0], np.array([2**63, 0], dtype=np.uint64)],
    ids=["2**63", "2**64-1", "uint64"],
)
def test_load_state_dict_checks_steps_before_writing_state(module, steps):
    opt = module.Adam([np.zeros(3), np.zeros(2)])
    opt.step([np.ones(3), np.ones(2)])
    before = state_bytes(opt)
    state = opt.state_dict()
    state["state"]["exp_avg"][0][:] = 5.0
    state["steps"] = steps
    with pytest.raises(
        ValueError, match=r"state_dict\['steps'\]\[0\]: expected <= 9223372036854775807"
    ):
        opt.load_state_dict(state)
    assert state_bytes(opt) == before


@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
@pytest.mark.parametrize("grads", ["dense-fast", "dense-some-none", "rows"])
def test_step_count_never_wraps(module, grads):
    """At t = 2**63 − 1 a step is refused before anything is written (it used to wrap to
    a negative t and make NaN)."""
    opt = module.Adam([np.zeros((3, 2)), np.zeros(2)])
    state = opt.state_dict()
    state["steps"] = [INT64_MAX, 5]
    opt.load_state_dict(state)
    before = state_bytes(opt)
    given = {
        "dense-fast": [np.ones((3, 2)), np.ones(2)],
        "dense-some-none": [np.ones((3, 2)), None],
        "rows": [gdfast.RowGrad(np.array([1]), np.ones((1, 2))), None],
    }[grads]
    with pytest.raises(ValueError, match="step count is 9223372036854775807"):
        opt.step(given)
    assert state_bytes(opt) == before
    opt.step([None, np.ones(2)])  # the other parameter still steps
    assert opt.steps == (INT64_MAX, 6)


@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
def test_step_count_check_is_before_any_write(module):
    """The fast path (gdfast._kernels.FastStep) counts no step when one count is at the
    limit: the full checks refuse the step, naming the parameter, every count unchanged."""
    opt = module.SGD([np.zeros(2), np.zeros(2), np.zeros(2)])
    state = opt.state_dict()
    state["steps"] = [3, INT64_MAX, 4]
    opt.load_state_dict(state)
    with pytest.raises(ValueError, match="params\\[1\\]"):
        opt.step([np.ones(2)] * 3)
    assert opt.steps == (3, INT64_MAX, 4)
    assert all(np.all(param == 0) for param in opt.params)


# ------------------------------------------------------------------- item 6: threads
def _race(opt, work_a, work_b):
    """Run two callables in two threads at once; each returns its count of RuntimeErrors."""
    refused = [0, 0]

    def run(which, work):
        refused[which] = work()

    threads = [
        threading.Thread(target=run, args=(0, work_a)),
        threading.Thread(target=run, args=(1, work_b)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return refused


def _steps(opt, grads, count):
    def work():
        refused = 0
        for _ in range(count):
            try:
                opt.step(grads)
            except RuntimeError as error:
                assert "busy in another thread" in str(error)
                refused += 1
        return refused

    return work


def test_concurrent_steps_on_one_optimizer_never_lose_an_update():
    """Two threads x 20 steps of SGD(lr=1), gradient 1, on 2e6 elements (the kernel runs
    with the GIL released): every step either ran whole or raised RuntimeError before
    touching anything, so the parameter is exactly minus the number of steps counted (it
    used to lose updates silently: 67,588 wrong elements in the issue's run)."""
    param = np.zeros(2_000_000)
    opt = gdfast.SGD([param], lr=1.0)
    grads = [np.ones_like(param)]
    refused = _race(opt, _steps(opt, grads, 20), _steps(opt, grads, 20))
    (done,) = opt.steps
    assert done == 40 - sum(refused)
    assert np.count_nonzero(param != -float(done)) == 0


@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
def test_a_busy_optimizer_refuses_every_call_before_touching_anything(module):
    """What another thread sees while a step runs: RuntimeError, state bitwise unchanged."""
    opt = module.Adam([np.zeros(3)])
    opt.step([np.ones(3)])
    saved = opt.state_dict()
    before = state_bytes(opt)
    opt._busy = True  # as during another thread's step
    for call in (
        lambda: opt.step([np.ones(3)]),
        lambda: opt.load_state_dict(saved),
        opt.state_dict,
    ):
        with pytest.raises(RuntimeError, match="busy in another thread"):
            call()
        assert state_bytes(opt) == before
    opt._busy = False
    opt.step([np.ones(3)])
    assert opt.steps == (2,)


def test_load_state_dict_concurrent_with_steps_never_mixes_states():
    """Loads and steps from two threads: each either runs whole or is refused, so the state
    stays one that whole steps and loads produce (it used to turn NaN)."""
    param = np.zeros(400_000)
    opt = gdfast.Adam([param], lr=1e-3)
    opt.step([np.ones_like(param)])
    saved = opt.state_dict()

    def loads():
        refused = 0
        for _ in range(30):
            try:
                opt.load_state_dict(saved)
            except RuntimeError:
                refused += 1
        return refused

    _race(opt, loads, _steps(opt, [np.full_like(param, 0.5)], 30))
    assert np.isfinite(param).all()
    assert (opt.state["exp_avg_sq"][0] >= 0).all()
    assert len(set(opt.state["exp_avg"][0][::50_000].tolist())) == 1


# ------------------------------------------------------------- items 7 and 8: hyper-parameters
@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
def test_a_learning_rate_beyond_float_range_is_a_value_error(module):
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        module.Adam([np.zeros(2)], lr=10**400)
    opt = module.Adam([np.zeros(2)])
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        opt.lr = 10**400
    assert opt.lr == 0.001


@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
def test_hyperparameters_are_checked_in_the_parameters_dtype(module):
    """eps = 1e-46 is > 0 in float64 but 0 in float32 (NaN steps): refused for float32
    parameters, naming the parameter; accepted for float64 ones."""
    module.Adam([np.zeros(2)], eps=1e-46).step([np.zeros(2)])
    with pytest.raises(ValueError, match=r"eps: 1e-46 is 0.0 in float32, the dtype of params\[1\]"):
        module.Adam([np.zeros(2), np.zeros(2, dtype=np.float32)], eps=1e-46)
    with pytest.raises(ValueError, match="lr: 1e\\+39 is inf in float32"):
        module.SGD([np.zeros(2, dtype=np.float32)], lr=1e39)


@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
def test_an_overflowing_adam_step_size_is_refused_in_that_dtype(module):
    """η/(1 − β1^t) is largest at t = 1; where η/(1 − β1) overflows the dtype the kernel
    (one rounded step-size scalar: [nan, -inf]) and the reference (η · m̂: [1, -1e38]) used
    to disagree.  Now refused with a ValueError for float32; float64 takes it."""
    with pytest.raises(ValueError, match=r"lr: lr / \(1 - betas\[0\]\) = .* overflows float32"):
        module.Adam([np.array([1.0, -1.0], dtype=np.float32)], lr=1e38)
    param = np.array([1.0, -1.0])
    module.Adam([param], lr=1e38).step([np.array([0.0, 1.0])])
    assert param[0] == 1.0 and param[1] == pytest.approx(-1e38, rel=1e-6)


def test_a_large_but_representable_adam_step_agrees_with_the_reference():
    params = [np.array([1.0, -1.0], dtype=np.float32) for _ in range(2)]
    for module, param in zip(BACKENDS, params):
        module.Adam([param], lr=1e37).step([np.array([0.0, 1.0], dtype=np.float32)])
    np.testing.assert_allclose(params[0], params[1], rtol=1e-6)
    assert np.isfinite(params[0]).all()


# --------------------------------------------------------------------- item 9: masked arrays
@pytest.mark.parametrize("module", BACKENDS, ids=IDS)
def test_masked_arrays_are_refused(module):
    masked = np.ma.array(np.ones(3), mask=[0, 1, 0])
    with pytest.raises(TypeError, match="params: .*MaskedArray"):
        module.SGD(masked)
    opt = module.SGD(np.zeros(3))
    with pytest.raises(TypeError, match="grads: .*MaskedArray"):
        opt.step(masked)
    with pytest.raises(TypeError, match="indices: .*MaskedArray"):
        gdfast.RowGrad(np.ma.array([0, 1]), np.ones((2, 3)))
    assert opt.steps == (0,)


# ----------------------------------------------------------------- items 7 and 9: state files
def _saved(opt):
    buffer = io.BytesIO()
    gdfast.save_state(opt, buffer)
    return buffer.getvalue()


def _rewrite(data, drop=(), add=()):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename not in drop:
                target.writestr(info, source.read(info))
        for name, payload in add:
            target.writestr(name, payload)
    return out.getvalue()


def test_state_file_errors_name_the_file_and_entry():
    opt = gdfast.Adam([np.zeros(3)])
    data = _saved(opt)
    with pytest.raises(ValueError, match="file: not a readable .npz"):
        gdfast.load_state(io.BytesIO(data[: len(data) // 2]))
    with pytest.raises(ValueError, match="file: no entry 'steps'"):
        gdfast.load_state(io.BytesIO(_rewrite(data, drop={"steps.npy"})))
    with pytest.raises(ValueError, match="entry 'notes.txt' is not a .npy array"):
        gdfast.load_state(io.BytesIO(_rewrite(data, add=[("notes.txt", b"hello")])))


def _npy(array):
    stream = io.BytesIO()
    np.lib.format.write_array(stream, array)
    return stream.getvalue()


def test_non_integral_or_huge_steps_in_a_file_are_refused():
    opt = gdfast.Adam([np.zeros(3)])
    data = _rewrite(_saved(opt), drop={"steps.npy"}, add=[("steps.npy", _npy(np.array([2.7])))])
    with pytest.raises(ValueError, match="entry 'steps' has dtype float64"):
        gdfast.load_state(io.BytesIO(data))
    data = _rewrite(
        _saved(opt),
        drop={"steps.npy"},
        add=[("steps.npy", _npy(np.array([2**63], dtype=np.uint64)))],
    )
    before = state_bytes(opt)
    with pytest.raises(ValueError, match=r"steps'\]\[0\]"):
        opt.load_state_dict(gdfast.load_state(io.BytesIO(data)))
    assert state_bytes(opt) == before


def test_an_unused_entry_is_not_read():
    """A 256 MiB entry of zeros deflated into a file under 1 MiB: refused by name, never
    decompressed (np.load of every entry used to allocate it all)."""
    opt = gdfast.Adam([np.zeros(3)])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_saved(opt))) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        unused = zipfile.ZipInfo("unused.npy")
        unused.compress_type = zipfile.ZIP_DEFLATED
        with target.open(unused, "w", force_zip64=True) as member:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": (2**25,)}
            )
            member.write(header.getvalue())
            block = bytes(1 << 20)
            for _ in range(256):
                member.write(block)
    data = out.getvalue()
    assert len(data) < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="unexpected entry 'unused'"):
            gdfast.load_state(io.BytesIO(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_state_buffers_are_bounded_by_the_optimizer_before_reading():
    """With optimizer=, a buffer's header is checked against the optimizer's own buffer
    before numpy allocates it."""
    opt = gdfast.Adam([np.zeros(3)])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6,)}
    )
    data = _rewrite(
        _saved(opt),
        drop={"state/exp_avg/0.npy"},
        add=[("state/exp_avg/0.npy", header.getvalue() + bytes(8 * 10**6))],
    )
    with pytest.raises(ValueError, match=r"entry 'state/exp_avg/0' has shape \(1000000,\)"):
        gdfast.load_state(io.BytesIO(data), optimizer=opt)
    lying = _rewrite(
        _saved(opt),
        drop={"state/exp_avg/0.npy"},
        add=[("state/exp_avg/0.npy", header.getvalue() + bytes(64))],
    )
    with pytest.raises(ValueError, match="more than the .* bytes it holds"):
        gdfast.load_state(io.BytesIO(lying))
