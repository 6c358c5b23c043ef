"""Optimizer state in `.npz` files: plain arrays and strings, never pickle.

Layout of the archive (one entry per array):
    format                      "gdfast-state-1"
    rule                        the rule's name, e.g. "Adam"
    hyperparameters/<name>      bool for a flag; else float64, 0-d, or 1-d for a tuple such as betas
    steps                       int64, one step count per parameter
    state/<entry>/<index>       the state buffer of parameter <index>

`load_state` reads an untrusted file: every entry's .npy header (dtype, shape) is read
and checked before any array is, entries it does not know are refused unread, and any
malformed input ends in a ValueError naming the file and the entry.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import IO, Any, Union

import numpy as np

from .catalogue import Optimizer

FORMAT = "gdfast-state-1"
PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]

# Entries other than state buffers are small: more elements than this is not a state file.
_SMALL = 1 << 20
# What reading a damaged archive member can raise (zipfile, zlib, numpy's header parser).
_READ_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    SyntaxError,
)


def save_state(state: Union[Optimizer, dict[str, Any]], file: PathOrFile) -> None:
    """Write an optimizer's state (or a `state_dict()`) to an .npz file."""
    if isinstance(state, Optimizer):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise TypeError(f"state: expected an optimizer or a state dict, got {type(state).__name__}")
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
    for name, value in (state.get("policy") or {}).items():  # the dtype policy (SPEC L.5)
        exact = isinstance(value, int) and not isinstance(value, bool)  # a 64-bit seed
        arrays[f"policy/{name}"] = np.asarray(str(value) if exact else value)
    np.savez(file, **arrays)


def load_state(file: PathOrFile, optimizer: Optimizer | None = None) -> dict[str, Any]:
    """Read a state dict written by `save_state` (pass it to `load_state_dict`).

    With `optimizer`, each state buffer's shape and dtype are checked against that
    optimizer's from the file's headers before anything is read, so a file cannot make
    this allocate more than the optimizer's own state.  Without it, buffers may be of any
    size (`load_state_dict` checks them after).
    """
    where = "file"
    try:
        archive = zipfile.ZipFile(file)
    except FileNotFoundError:
        raise
    except _READ_ERRORS as error:
        raise ValueError(f"{where}: not a readable .npz archive ({error})") from None
    with archive:
        return _read_state(archive, where, optimizer)


def _read_state(
    archive: zipfile.ZipFile, where: str, optimizer: Optimizer | None
) -> dict[str, Any]:
    members = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ValueError(f"{where}: entry {info.filename!r} is not a .npy array")
        members[info.filename[: -len(".npy")]] = info
    if "format" not in members:
        raise ValueError(
            f"{where}: not a gdfast state file (no entry 'format', expected {FORMAT!r})"
        )
    for name in ("rule", "steps"):
        if name not in members:
            raise ValueError(f"{where}: no entry {name!r}; not a complete gdfast state file")
    headers = {name: _header(archive, info, where, name) for name, info in members.items()}

    def read(name: str, kinds: str, max_size: int = _SMALL) -> np.ndarray:
        shape, dtype = headers[name]
        if dtype.kind not in kinds:
            raise ValueError(
                f"{where}: entry {name!r} has dtype {dtype}, expected {_KIND_NAMES[kinds]}"
            )
        size = int(np.prod(shape, dtype=object))
        if size > max_size:
            raise ValueError(
                f"{where}: entry {name!r} has shape {shape}, more than {max_size} elements"
            )
        if size * dtype.itemsize > members[name].file_size:  # before numpy allocates it
            raise ValueError(
                f"{where}: entry {name!r} declares shape {shape} of {dtype}, "
                f"more than the {members[name].file_size} bytes it holds"
            )
        try:
            with archive.open(members[name]) as stream:
                return np.lib.format.read_array(stream, allow_pickle=False)
        except _READ_ERRORS as error:
            raise ValueError(f"{where}: entry {name!r} cannot be read ({error})") from None

    fmt = read("format", "U", 64)
    if fmt.shape != () or str(fmt) != FORMAT:
        raise ValueError(f"{where}: not a gdfast state file (expected format {FORMAT!r})")
    rule = read("rule", "U", 64)
    if rule.shape != ():
        raise ValueError(f"{where}: entry 'rule' has shape {rule.shape}, expected ()")
    if optimizer is not None and str(rule) != optimizer.rule:
        raise ValueError(
            f"{where}: entry 'rule' is {str(rule)!r}, the optimizer is a {optimizer.rule}"
        )
    hyperparameters: dict[str, Any] = {}
    policy: dict[str, Any] = {}
    by_entry: dict[str, dict[int, str]] = {}
    for name in members:
        group, _, rest = name.partition("/")
        if group == "hyperparameters" and rest:
            value = read(name, "bfiu", 3)  # a number, or a tuple of 2 (betas) or 3 (Muon's)
            if value.ndim > 1 or (value.dtype == bool and value.ndim != 0):
                raise ValueError(
                    f"{where}: entry {name!r} has shape {value.shape}, "
                    "expected () or (k,) with k <= 3"
                )
            if value.dtype == bool:
                hyperparameters[rest] = bool(value)
            else:
                hyperparameters[rest] = (
                    float(value) if value.ndim == 0 else tuple(float(x) for x in value)
                )
        elif group == "state":
            entry, _, index = rest.rpartition("/")
            if not (entry and index.isdigit() and index == str(int(index))):
                raise ValueError(f"{where}: entry {name!r} is not state/<entry>/<index>")
            by_entry.setdefault(entry, {})[int(index)] = name
        elif group == "policy" and rest:
            value = read(name, "bU", 64)
            if value.ndim != 0:
                raise ValueError(f"{where}: entry {name!r} has shape {value.shape}, expected ()")
            text = str(value)
            policy[rest] = (
                bool(value)
                if value.dtype == bool
                else int(text)
                if text.isascii() and text.isdigit()
                else text
            )
        elif name not in ("format", "rule", "steps"):
            raise ValueError(f"{where}: unexpected entry {name!r} (not read)")
    n_params = len(optimizer.params) if optimizer is not None else _SMALL
    steps = read("steps", "iu", n_params)
    if steps.ndim != 1:
        raise ValueError(f"{where}: entry 'steps' has shape {steps.shape}, expected (n,)")
    state: dict[str, list[np.ndarray]] = {}
    for entry, by_index in by_entry.items():
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(
                f"{where}: entries state/{entry}/<index> are not numbered 0 to {len(by_index) - 1}"
            )
        if optimizer is not None:
            _check_against(optimizer, entry, by_index, headers, where)
        state[entry] = [
            read(by_index[i], "fu", np.iinfo(np.int64).max) for i in range(len(by_index))
        ]
    loaded = {
        "rule": str(rule),
        "hyperparameters": hyperparameters,
        "steps": steps.tolist(),
        "state": state,
    }
    if policy:
        loaded["policy"] = policy
    return loaded


_KIND_NAMES = {
    "U": "a string",
    "bfiu": "a number or a bool",
    "iu": "an integer dtype",
    "f": "float32 or float64",
    "fu": "float32, float64, or the uint8/uint16 storage of a dtype policy",
    "bU": "a bool or a string",
}


def _header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, name: str
) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from an entry's .npy header, the array itself unread."""
    try:
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unsupported .npy version {version}")
    except _READ_ERRORS as error:
        raise ValueError(
            f"{where}: entry {name!r} is not a readable .npy array ({error})"
        ) from None
    if dtype.hasobject:
        raise ValueError(f"{where}: entry {name!r} holds Python objects (pickle); refused")
    return shape, dtype


def _check_against(
    optimizer: Optimizer,
    entry: str,
    by_index: dict[int, str],
    headers: dict[str, tuple[tuple[int, ...], np.dtype]],
    where: str,
) -> None:
    """The headers of state/<entry>/<i> against the optimizer's own buffers."""
    if entry not in optimizer.state:
        raise ValueError(
            f"{where}: state entry {entry!r}; a {optimizer.rule} optimizer "
            f"with these options keeps {list(optimizer.state_names)}"
        )
    buffers = optimizer.state[entry]
    if len(by_index) != len(buffers):
        raise ValueError(
            f"{where}: state entry {entry!r} has {len(by_index)} buffer(s), the "
            f"optimizer {len(buffers)}"
        )
    for index, buffer in enumerate(buffers):
        shape, dtype = headers[by_index[index]]
        if tuple(shape) != buffer.shape or dtype != buffer.dtype:
            raise ValueError(
                f"{where}: entry {by_index[index]!r} has shape {tuple(shape)} and "
                f"dtype {dtype}, the optimizer's buffer {buffer.shape} and "
                f"{buffer.dtype}"
            )
