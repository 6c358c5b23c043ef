"""Checkpoints of a distributed job: `.npz` files named by role, index and update count.

Plain arrays and strings, written with np.savez and read with allow_pickle=False.
`server-<s>-<count>.npz` (s = the server's index, 0 .. n_servers − 1; count = updates
applied, 12 digits) holds:

    format        "gdfast-distributed-2"
    algorithm     "downpour", "adaptive_revision", "easgd", "eamsgd" or "easgd-sync"
    dtype         the parameters' dtype name (of the first array)
    bounds        int64 [lo, hi, size, n_servers]: this shard is params[lo:hi] of `size`
    count         int64 [updates applied, budget]: the job's progress on this server
    <name>        the shard's arrays: params, then the rule's state
                  (sum_sq | gbar, sum_sq, sum_sq_max | center; easgd-sync: center, workers)

Asynchronous EASGD / EAMSGD workers also write `worker-<rank>-<count>.npz` (x_i, the
velocity, the step counter and the batch generator's state) on their first exchange
after server 0 passed `count`.  Every writer keeps its last KEEP files, so that a resume
can pick the largest count that every server has saved (`common_count`).

A file is written to `<name>.tmp` and renamed over the old one (os.replace is atomic
on POSIX), so a rank killed while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "gdfast-distributed-2"
KEEP = 3


def path_for(directory: str | os.PathLike[str], role: str, index: int, count: int) -> Path:
    """The checkpoint of `role` ("server" or "worker") `index` at update `count`."""
    return Path(directory) / f"{role}-{index}-{count:012d}.npz"


def saved_counts(directory: str | os.PathLike[str], role: str, index: int) -> list[int]:
    """The update counts of the checkpoints `role` `index` has in `directory`, ascending."""
    pattern = re.compile(rf"{role}-{index}-(\d{{12}})\.npz")
    found = (pattern.fullmatch(path.name) for path in Path(directory).glob(f"{role}-{index}-*"))
    return sorted(int(match.group(1)) for match in found if match)


def common_count(counts_per_server: list[list[int]]) -> int | None:
    """The largest count saved by every server, None when there is none."""
    common = set.intersection(*(set(counts) for counts in counts_per_server))
    return max(common) if common else None


def save(
    path: Path,
    *,
    algorithm: str,
    bounds: tuple[int, int, int, int],
    count: tuple[int, int],
    arrays: dict[str, np.ndarray],
) -> None:
    """Write one checkpoint atomically (layout: the module docstring), then delete this
    writer's files older than its last KEEP."""
    entries: dict[str, Any] = {
        "format": np.array(FORMAT),
        "algorithm": np.array(algorithm),
        "bounds": np.asarray(bounds, dtype=np.int64),
        "count": np.asarray(count, dtype=np.int64),
    }
    entries["dtype"] = np.array(next(iter(arrays.values())).dtype.name)
    for name, array in arrays.items():
        entries[f"array/{name}"] = array
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        np.savez(file, **entries)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    role, index, _ = path.name.rsplit("-", 2)
    for count in saved_counts(path.parent, role, int(index))[:-KEEP]:
        path_for(path.parent, role, int(index), count).unlink(missing_ok=True)


def load(
    path: str | os.PathLike[str],
    *,
    algorithm: str,
    dtype: np.dtype,
    bounds: tuple[int, int, int, int],
    names: tuple[str, ...],
) -> tuple[int, dict]:
    """Read and check a server's checkpoint; returns (updates applied, arrays by name).

    Raises ValueError naming the file and what differs when the checkpoint does not
    belong to this job (another algorithm, dtype, size or sharding).
    """
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    where = f"checkpoint {os.fspath(path)!r}"
    if "format" not in entries or str(entries["format"]) != FORMAT:
        raise ValueError(
            f"{where}: not a gdfast distributed checkpoint (expected format {FORMAT!r})"
        )
    if str(entries["algorithm"]) != algorithm:
        raise ValueError(
            f"{where}: written by algorithm {str(entries['algorithm'])!r}, "
            f"this job runs {algorithm!r}"
        )
    if str(entries["dtype"]) != np.dtype(dtype).name:
        raise ValueError(
            f"{where}: holds {str(entries['dtype'])} parameters, this job has "
            f"{np.dtype(dtype).name}"
        )
    saved_bounds = tuple(int(b) for b in entries["bounds"])
    if saved_bounds != tuple(bounds):
        raise ValueError(
            f"{where}: shard [lo, hi, size, n_servers] = {list(saved_bounds)}, "
            f"this job has {list(bounds)}; resume with the same parameters "
            f"and --servers"
        )
    arrays = {}
    for name in names:
        key = f"array/{name}"
        if key not in entries:
            raise ValueError(f"{where}: has no array {name!r}")
        arrays[name] = entries[key]
    return int(entries["count"][0]), arrays
