"""Checkpoints of a distributed job: one `.npz` per server (or one for synchronous EASGD).

Plain arrays and strings, written with np.savez and read with allow_pickle=False.
Layout of `server-<s>.npz` (s = the server's index, 0 .. n_servers − 1):

    format        "gdfast-distributed-1"
    algorithm     "downpour", "adaptive_revision", "easgd", "eamsgd" or "easgd-sync"
    dtype         the parameters' dtype name
    bounds        int64 [lo, hi, size, n_servers]: this shard is params[lo:hi] of `size`
    count         int64 [updates applied, budget]: the job's progress on this server
    <name>        the shard's arrays: params, then the rule's state
                  (sum_sq | gbar, sum_sq, sum_sq_max | center; easgd-sync: center, workers)

A file is written to `<name>.tmp` and renamed over the old one (os.replace is atomic
on POSIX), so a rank killed while writing leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "gdfast-distributed-1"


def path_for(directory: str | os.PathLike[str], server: int) -> Path:
    """The checkpoint file of server `server` in `directory`."""
    return Path(directory) / f"server-{server}.npz"


def save(path: str | os.PathLike[str], *, algorithm: str, bounds: tuple[int, int, int, int],
         count: tuple[int, int], arrays: dict[str, np.ndarray]) -> None:
    """Write one server's checkpoint atomically (see the module docstring for the layout)."""
    path = Path(path)
    entries: dict[str, Any] = {"format": np.array(FORMAT), "algorithm": np.array(algorithm),
                               "bounds": np.asarray(bounds, dtype=np.int64),
                               "count": np.asarray(count, dtype=np.int64)}
    dtypes = {array.dtype.name for array in arrays.values()}
    entries["dtype"] = np.array(dtypes.pop() if len(dtypes) == 1 else "mixed")
    for name, array in arrays.items():
        entries[f"array/{name}"] = array
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        np.savez(file, **entries)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def load(path: str | os.PathLike[str], *, algorithm: str, dtype: np.dtype,
         bounds: tuple[int, int, int, int], names: tuple[str, ...]) -> tuple[int, dict]:
    """Read and check a server's checkpoint; returns (updates applied, arrays by name).

    Raises ValueError naming the file and what differs when the checkpoint does not
    belong to this job (another algorithm, dtype, size or sharding).
    """
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    where = f"checkpoint {os.fspath(path)!r}"
    if "format" not in entries or str(entries["format"]) != FORMAT:
        raise ValueError(f"{where}: not a gdfast distributed checkpoint "
                         f"(expected format {FORMAT!r})")
    if str(entries["algorithm"]) != algorithm:
        raise ValueError(f"{where}: written by algorithm {str(entries['algorithm'])!r}, "
                         f"this job runs {algorithm!r}")
    if str(entries["dtype"]) != np.dtype(dtype).name:
        raise ValueError(f"{where}: holds {str(entries['dtype'])} parameters, this job has "
                         f"{np.dtype(dtype).name}")
    saved_bounds = tuple(int(b) for b in entries["bounds"])
    if saved_bounds != tuple(bounds):
        raise ValueError(f"{where}: shard [lo, hi, size, n_servers] = {list(saved_bounds)}, "
                         f"this job has {list(bounds)}; resume with the same parameters "
                         f"and --servers")
    arrays = {}
    for name in names:
        key = f"array/{name}"
        if key not in entries:
            raise ValueError(f"{where}: has no array {name!r}")
        arrays[name] = entries[key]
    return int(entries["count"][0]), arrays
