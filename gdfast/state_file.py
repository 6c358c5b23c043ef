"""Optimizer state in `.npz` files: plain arrays and strings, never pickle.

Layout of the archive (one entry per array):
    format                      "gdfast-state-1"
    rule                        the rule's name, e.g. "Adam"
    hyperparameters/<name>      bool for a flag; else float64, 0-d, or 1-d for a tuple such as betas
    steps                       int64, one step count per parameter
    state/<entry>/<index>       the state buffer of parameter <index>
"""
from __future__ import annotations

import os
from typing import IO, Any, Union

import numpy as np

from ._optimizer import Optimizer

FORMAT = "gdfast-state-1"
PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]


def save_state(state: Union[Optimizer, dict[str, Any]], file: PathOrFile) -> None:
    """Write an optimizer's state (or a `state_dict()`) to an .npz file."""
    if isinstance(state, Optimizer):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise TypeError(f"state: expected an optimizer or a state dict, got "
                        f"{type(state).__name__}")
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "rule": np.array(state["rule"]),
        "steps": np.asarray(state["steps"], dtype=np.int64),
    }
    for name, value in state["hyperparameters"].items():
        flag = isinstance(value, (bool, np.bool_))
        arrays[f"hyperparameters/{name}"] = np.asarray(value, dtype=bool if flag else np.float64)
    for entry, buffers in state["state"].items():
        for index, buffer in enumerate(buffers):
            arrays[f"state/{entry}/{index}"] = np.asarray(buffer)
    np.savez(file, **arrays)


def load_state(file: PathOrFile) -> dict[str, Any]:
    """Read a state dict written by `save_state` (pass it to `load_state_dict`)."""
    with np.load(file, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    if "format" not in entries or str(entries["format"]) != FORMAT:
        raise ValueError(f"file: not a gdfast state file (expected format {FORMAT!r})")
    hyperparameters: dict[str, Any] = {}
    buffers: dict[str, dict[int, np.ndarray]] = {}
    for key, value in entries.items():
        group, _, rest = key.partition("/")
        if group == "hyperparameters":
            if value.dtype == bool:
                hyperparameters[rest] = bool(value)
            else:
                hyperparameters[rest] = float(value) if value.ndim == 0 else tuple(
                    float(x) for x in value)
        elif group == "state":
            entry, _, index = rest.rpartition("/")
            buffers.setdefault(entry, {})[int(index)] = value
    return {
        "rule": str(entries["rule"]),
        "hyperparameters": hyperparameters,
        "steps": [int(count) for count in entries["steps"]],
        "state": {entry: [by_index[i] for i in sorted(by_index)]
                  for entry, by_index in buffers.items()},
    }
