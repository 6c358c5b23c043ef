"""Damaged state files of the recent optimizers and of low-precision policies (the audit's).

save_state writes an optimizer's state (Muon, LAMB, Adafactor, ScheduleFreeAdamW, and Adam
with 8-bit or bfloat16 state, master weights, stochastic rounding) to an .npz; each case
rewrites one entry of that archive (another shape, another dtype, a bad policy value, a
missing or an extra entry, a truncated archive, a flipped byte), then loads it back into
the optimizer (`load_state(file, optimizer)`, `load_state_dict`) and takes a step.  The
contract: a TypeError or ValueError naming the file, the entry or the state dict, and the
optimizer bitwise unchanged, or (for a change that leaves a valid file) a clean load;
never a crash, never a sanitizer report (the cases run in child interpreters,
tests/fuzzing.py; under a sanitizer build, preload its runtime as test_fuzz_optim.py says).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdfast
from fuzzing import Case, run_cases, snapshot

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)


def _lowp_int8():
    p = np.linspace(-1, 1, 600).astype(BF16)
    o = gdfast.Adam([p], lr=0.01, state_dtype="int8", master_weights=True, rounding="stochastic")
    return o, [p], lambda: [np.linspace(1, -1, 600).astype(BF16)]


def _lowp_bf16_state():
    p = np.linspace(-1, 1, 300, dtype=np.float32)
    o = gdfast.AdamW([p], lr=0.01, state_dtype="bfloat16")
    return o, [p], lambda: [np.linspace(1, -1, 300, dtype=np.float32)]


def _plain(name, shapes, **kwargs):
    def make():
        params = [np.linspace(-1, 1, int(np.prod(s))).reshape(s) for s in shapes]
        o = getattr(gdfast, name)(params, **kwargs)
        return o, params, lambda: [np.cos(np.arange(p.size)).reshape(p.shape) for p in params]

    return make


MAKERS = {
    "Adam-int8-master": _lowp_int8,
    "AdamW-bf16-state": _lowp_bf16_state,
    "Muon": _plain("Muon", [(6, 5), (4,), (2, 3, 4)], lr=0.01),
    "LAMB": _plain("LAMB", [(6, 5), (4,)], lr=0.01),
    "Adafactor": _plain("Adafactor", [(6, 5), (4,), (2, 3, 4)]),
    "ScheduleFreeAdamW": _plain("ScheduleFreeAdamW", [(6, 5), (4,)], lr=0.01),
}


def trained(kind):
    optimizer, params, grads = MAKERS[kind]()
    optimizer.step(grads())
    optimizer.step(grads())
    buffer = io.BytesIO()
    gdfast.save_state(optimizer, buffer)
    return optimizer, params, grads, buffer.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def archive_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    return out.getvalue()


def npy(array) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.asarray(array), allow_pickle=False)
    return out.getvalue()


def read_npy(payload: bytes) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(payload), allow_pickle=False)


def load_and_step(kind, rewrite):
    """A setup: `rewrite(entries)` changes the archive's {member: bytes}; the call loads the
    result into the optimizer and steps."""

    def setup():
        optimizer, params, grads, data = trained(kind)
        entries = members(data)
        rewrite(entries)
        damaged = archive_of(entries)

        def call():
            state = gdfast.load_state(io.BytesIO(damaged), optimizer)
            optimizer.load_state_dict(state)
            optimizer.step(grads())

        return call, [optimizer]

    return setup


def replace(member, value_of):
    def rewrite(entries):
        entries[member] = npy(value_of(read_npy(entries[member])))

    return rewrite


def remove(member):
    def rewrite(entries):
        del entries[member]

    return rewrite


NAMES = ("file", "state_dict", "policy", "state", "steps", "hyperparameters")


def _state_edits():
    """Edits of a state buffer: each makes it unfit for its optimizer."""
    return {
        "one-more": lambda a: np.concatenate([a.ravel(), a.ravel()[:1]]),
        "flat": lambda a: a.ravel() if a.ndim > 1 else a.reshape(1, -1),
        "scalar": lambda a: a.ravel()[:1].reshape(()),
        "empty": lambda a: a.ravel()[:0],
        "float16": lambda a: a.astype(np.float16),
        "float64-or-32": lambda a: a.astype(np.float32 if a.dtype == np.float64 else np.float64),
        "uint8": lambda a: a.view(np.uint8) if a.dtype.itemsize == 1 else a.astype(np.uint8),
        "uint16": lambda a: a.astype(np.uint16),
        "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    }


def _cases() -> list[Case]:
    cases: list[Case] = []
    for kind in MAKERS:
        _, _, _, data = trained(kind)
        entries = members(data)
        for member in sorted(entries):
            name = member[: -len(".npy")]
            if name.startswith("state/"):
                for label, edit in _state_edits().items():
                    original = read_npy(entries[member])
                    try:
                        changed = edit(original)
                    except (TypeError, ValueError):
                        continue
                    if changed.dtype == original.dtype and changed.shape == original.shape:
                        continue  # the same buffer: nothing to refuse
                    cases.append(
                        Case(
                            f"{kind}:{name}:{label}",
                            load_and_step(kind, replace(member, edit)),
                            NAMES,
                        )
                    )
            if name.startswith(("state/", "policy/")) or name in ("steps", "rule"):
                cases.append(
                    Case(f"{kind}:{name}:missing", load_and_step(kind, remove(member)), NAMES)
                )
        policy_values = {
            "policy/state_dtype": ["int4", "float64", ""],
            "policy/block_size": ["0", "7", "99999999999999999999", "-256", "²"],
            "policy/seed": ["-1", "18446744073709551616", "x"],
            "policy/rounding": ["up", ""],
            "policy/master_weights": [np.array(2), "True"],
            "policy/param_copy": [True],
        }
        for name, values in policy_values.items():
            if f"{name}.npy" not in entries:
                continue
            for k, value in enumerate(values):
                cases.append(
                    Case(
                        f"{kind}:{name}:bad-{k}",
                        load_and_step(kind, replace(f"{name}.npy", lambda a, v=value: np.array(v))),
                        NAMES,
                    )
                )
        for label, value in {
            "negative": lambda a: -a - 1,
            "float": lambda a: a.astype(np.float64),
            "longer": lambda a: np.concatenate([a, a[:1]]),
        }.items():
            cases.append(
                Case(
                    f"{kind}:steps:{label}", load_and_step(kind, replace("steps.npy", value)), NAMES
                )
            )
        for member in sorted(m for m in entries if m.startswith("hyperparameters/")):
            for label, value in {
                "nan": lambda a: np.full(a.shape, np.nan) if a.dtype != bool else np.array(np.nan),
                "negative": lambda a: -np.abs(a.astype(np.float64)) - 1,
                "one-longer": lambda a: np.concatenate([np.atleast_1d(a), np.atleast_1d(a)[:1]]),
            }.items():
                cases.append(
                    Case(
                        f"{kind}:{member[:-4]}:{label}",
                        load_and_step(kind, replace(member, value)),
                        NAMES,
                    )
                )
        cases.append(
            Case(
                f"{kind}:extra-entry",
                load_and_step(kind, lambda e: e.__setitem__("state/extra/0.npy", npy(np.zeros(3)))),
                NAMES,
            )
        )
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def results():
    return {case.id: r for case, r in zip(CASES, run_cases("test_fuzz_state_files", len(CASES)))}


def test_there_are_many_cases():
    assert len(CASES) >= 150


def test_no_damaged_file_crashes_or_is_loaded_half_way(results):
    bad = {
        case_id: f"{r['outcome']}: {r['detail']}"
        for case_id, r in results.items()
        if r["outcome"] in ("crash", "sanitizer", "modified", "unclear")
    }
    assert not bad, "\n".join(f"{k}: {v}" for k, v in sorted(bad.items()))


def test_a_damaged_state_buffer_is_never_loaded(results):
    accepted = {
        case_id: r["detail"]
        for case_id, r in results.items()
        if case_id.split(":")[1].startswith("state/") and r["outcome"] == "silent"
    }
    assert not accepted, accepted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(MAKERS)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=4),
)
def test_truncated_or_flipped_files_are_refused_or_loaded_whole(kind, cut, flips):
    optimizer, params, grads, data = trained(kind)
    damaged = bytearray(data[: max(1, int(len(data) * cut))] if cut < 1 else data)
    for where, xor in flips:
        damaged[min(len(damaged) - 1, int(where * len(damaged)))] ^= xor
    before = snapshot([optimizer])
    try:
        state = gdfast.load_state(io.BytesIO(bytes(damaged)), optimizer)
        optimizer.load_state_dict(state)
    except (TypeError, ValueError) as error:
        assert snapshot([optimizer]) == before
        assert any(name in str(error) for name in NAMES), str(error)
        return
    # loaded: the file said something valid (a flip in a value); the optimizer still steps
    optimizer.step(grads())
