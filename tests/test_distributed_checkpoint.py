"""Server checkpoints (gdfast.distributed.checkpoint): format 3, AdaptiveRevision's δ², and
format-2 files (z' − δ² stored) converted on load to the bits format 3 holds."""

import numpy as np
import pytest

from gdfast.distributed import checkpoint as ckpt
from gdfast.distributed.rules import adaptive_revision, adaptive_revision_state

BOUNDS = (0, 300, 300, 1)


def revision_job(dtype, eps, updates=12):
    """A shard after `updates` delayed updates: its format-3 arrays, and z' − δ² as format 2
    stored it (the running max of z − δ², from 0)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(BOUNDS[1]).astype(dtype)
    state = adaptive_revision_state(x, eps)
    sum_sq_max = np.zeros_like(x)
    for _ in range(updates):
        grad = rng.standard_normal(x.shape[0]).astype(dtype)
        read = (state["gbar"] - 2 * rng.standard_normal(x.shape[0])).astype(dtype)
        adaptive_revision(x, grad, read, *state.values(), lr=0.1, eps=eps)
        np.maximum(state["sum_sq"], sum_sq_max, out=sum_sq_max)
    return {"params": x, **state}, sum_sq_max


def write_format_2(path, arrays, sum_sq_max):
    """A checkpoint as format 2 wrote it (no eps entry, array/sum_sq_max)."""
    entries = {
        "format": np.array("gdfast-distributed-2"),
        "algorithm": np.array("adaptive_revision"),
        "bounds": np.asarray(BOUNDS, dtype=np.int64),
        "count": np.asarray([12, 100], dtype=np.int64),
        "dtype": np.array(arrays["params"].dtype.name),
        "array/params": arrays["params"],
        "array/gbar": arrays["gbar"],
        "array/sum_sq": arrays["sum_sq"],
        "array/sum_sq_max": sum_sq_max,
    }
    np.savez(path, **entries)


def load(path, dtype, eps, algorithm="adaptive_revision", names=None):
    names = names or ("params", "gbar", "sum_sq", "sqrt_sum_sq_max")
    return ckpt.load(
        path, algorithm=algorithm, dtype=np.dtype(dtype), bounds=BOUNDS, names=names, eps=eps
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [1e-8, 0.3])
def test_a_format_2_checkpoint_converts_to_the_bits_of_format_3(tmp_path, dtype, eps):
    arrays, sum_sq_max = revision_job(dtype, eps)
    assert (arrays["sum_sq"] < sum_sq_max).any()  # some negative revisions: z < z'
    path = tmp_path / "server-0-000000000012.npz"
    write_format_2(path, arrays, sum_sq_max)
    count, loaded = load(path, dtype, eps)
    assert count == 12
    for name, expected in arrays.items():
        assert loaded[name].dtype == expected.dtype
        assert loaded[name].tobytes() == expected.tobytes(), name


def test_format_3_keeps_eps_and_refuses_another(tmp_path):
    arrays, _ = revision_job(np.float32, 1e-8)
    path = tmp_path / "server-0-000000000012.npz"
    ckpt.save(
        path, algorithm="adaptive_revision", bounds=BOUNDS, count=(12, 100), arrays=arrays, eps=1e-8
    )
    with np.load(path, allow_pickle=False) as saved:
        assert str(saved["format"]) == "gdfast-distributed-3"
        assert float(saved["eps"]) == 1e-8
    count, loaded = load(path, np.float32, 1e-8)
    assert count == 12
    assert all(loaded[name].tobytes() == a.tobytes() for name, a in arrays.items())
    with pytest.raises(ValueError, match=r"eps = 1e-08.*eps = 1e-06"):
        load(path, np.float32, 1e-6)


def test_a_format_3_revision_checkpoint_without_eps_is_refused(tmp_path):
    arrays, _ = revision_job(np.float64, 1e-8)
    path = tmp_path / "server-0-000000000012.npz"
    ckpt.save(path, algorithm="adaptive_revision", bounds=BOUNDS, count=(12, 100), arrays=arrays)
    with pytest.raises(ValueError, match="eps"):
        load(path, np.float64, 1e-8)


def test_a_format_2_downpour_checkpoint_loads_unchanged(tmp_path):
    x, sum_sq = np.arange(300.0), np.full(300, 2.0)
    path = tmp_path / "server-0-000000000005.npz"
    np.savez(
        path,
        format=np.array("gdfast-distributed-2"),
        algorithm=np.array("downpour"),
        bounds=np.asarray(BOUNDS, dtype=np.int64),
        count=np.asarray([5, 9], dtype=np.int64),
        dtype=np.array("float64"),
        **{"array/params": x, "array/sum_sq": sum_sq},
    )
    count, loaded = load(path, np.float64, None, "downpour", ("params", "sum_sq"))
    assert count == 5
    assert loaded["params"].tobytes() == x.tobytes()
    assert loaded["sum_sq"].tobytes() == sum_sq.tobytes()


@pytest.mark.parametrize("written", ["gdfast-distributed-1", "gdfast-distributed-4", None])
def test_an_unknown_format_is_refused_naming_it(tmp_path, written):
    path = tmp_path / "server-0-000000000001.npz"
    entries = {"algorithm": np.array("downpour")}
    if written is not None:
        entries["format"] = np.array(written)
    np.savez(path, **entries)
    with pytest.raises(ValueError, match=f"format {written!r}.*gdfast-distributed-3"):
        load(path, np.float64, None, "downpour", ("params",))
