"""Checkpoints of a distributed job: `.npz` files named by role, index and update count.

Plain arrays and strings, written with np.savez and read with allow_pickle=False.
`server-<s>-<count>.npz` (s = the server's index, 0 .. n_servers − 1; count = updates
applied, 12 digits) holds:

    format        "gdfast-distributed-3"
    algorithm     "downpour", "adaptive_revision", "easgd", "eamsgd" or "easgd-sync"
    dtype         the parameters' dtype name (of the first array)
    bounds        int64 [lo, hi, size, n_servers]: this shard is params[lo:hi] of `size`
    count         int64 [updates applied, budget]: the job's progress on this server
    <name>        the shard's arrays: params, then the rule's state
                  (sum_sq | gbar, sum_sq, sqrt_sum_sq_max | center; easgd-sync: center,
                  workers)
    eps           float64, AdaptiveRevision only: the δ² its state was computed with
                  (sqrt_sum_sq_max = √z' includes it; a job with another δ² is refused)

Format 2 (before AdaptiveRevision stored √z') had no `eps` and held z' − δ² as
`sum_sq_max`; `load` converts it with the job's δ², computing √(z' − δ² + δ²) in the
shard's dtype exactly as the kernel does, so the resumed job has the bits of one that ran
with format 3 all along (z' − δ² did not depend on δ²).  Every other format is refused.

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

FORMAT = "gdfast-distributed-3"
FORMAT_2 = "gdfast-distributed-2"
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
    eps: float | None = None,
) -> None:
    """Write one checkpoint atomically (layout: the module docstring), then delete this
    writer's files older than its last KEEP.  eps: the δ² the state depends on, if any."""
    entries: dict[str, Any] = {
        "format": np.array(FORMAT),
        "algorithm": np.array(algorithm),
        "bounds": np.asarray(bounds, dtype=np.int64),
        "count": np.asarray(count, dtype=np.int64),
    }
    entries["dtype"] = np.array(next(iter(arrays.values())).dtype.name)
    if eps is not None:
        entries["eps"] = np.float64(eps)
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
    eps: float | None = None,
) -> tuple[int, dict]:
    """Read and check a server's checkpoint; returns (updates applied, arrays by name).

    eps: this job's δ² when the state depends on it (AdaptiveRevision): a format-3 file
    must have been written with the same, a format-2 file is converted with it.
    Raises ValueError naming the file and what differs when the checkpoint does not
    belong to this job (another format, algorithm, dtype, size, sharding or δ²).
    """
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    where = f"checkpoint {os.fspath(path)!r}"
    saved_format = str(entries["format"]) if "format" in entries else None
    if saved_format not in (FORMAT, FORMAT_2):
        raise ValueError(
            f"{where}: not a gdfast distributed checkpoint of a known format (format "
            f"{saved_format!r}, expected {FORMAT!r} or {FORMAT_2!r})"
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
    if saved_format == FORMAT_2 and "array/sum_sq_max" in entries:
        if eps is None:  # pragma: no cover - a caller's bug: only AdaptiveRevision has it
            raise ValueError(f"{where}: converting its sum_sq_max needs the job's eps")
        entries["array/sqrt_sum_sq_max"] = sqrt_sum_sq_max_from_format_2(
            entries.pop("array/sum_sq_max"), eps
        )
    elif eps is not None and float(entries.get("eps", np.nan)) != eps:
        raise ValueError(
            f"{where}: written with eps = {float(entries.get('eps', np.nan))!r}, this job "
            f"has eps = {eps!r}; AdaptiveRevision's state (√z') includes δ² = eps: resume "
            "with the eps the job started with"
        )
    arrays = {}
    for name in names:
        key = f"array/{name}"
        if key not in entries:
            raise ValueError(f"{where}: has no array {name!r}")
        arrays[name] = entries[key]
    return int(entries["count"][0]), arrays


def sqrt_sum_sq_max_from_format_2(sum_sq_max: np.ndarray, eps: float) -> np.ndarray:
    """AdaptiveRevision's √z' from format 2's z' − δ²: √(z' − δ² + δ²) in the array's dtype,
    the operations and rounding of the kernel's r' (src_c/adaptive_revision.c)."""
    return np.sqrt(sum_sq_max + sum_sq_max.dtype.type(eps))
