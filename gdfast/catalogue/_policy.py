"""The dtype policy of an optimizer (docs/spec-low-precision.md, SPEC L.5/L.6).

`Policy.build` checks the policy's arguments against the parameters (every refusal of
L.5, naming the argument, before anything is made), then says how each tensor is stored:
the parameter's format, the state buffers' storage (float32, bfloat16 bit patterns in
uint16, or 8-bit codes in uint8 with a float32 scale per block), the fp32 master weights,
the 16-bit parameter copies.  `reference_step` is the step of SPEC L.6 written literally
with gdfast.formats (the NumPy reference); `staging` describes a step to the C driver
(gdfast._kernels.Staging), which must give the same bits.

16-bit arrays: bfloat16 parameters and gradients are `ml_dtypes.bfloat16` arrays (an
optional dependency, imported when one is met), float16 ones `numpy.float16`; bfloat16
*state* is stored as its uint16 bit patterns (no dependency, and .npz files without
pickle): `buffer.view(ml_dtypes.bfloat16)` reads it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .. import formats

STATE_DTYPES = ("float32", "bfloat16", "int8")
# Largest block of 8-bit state: the kernels stage whole blocks in a fixed scratch buffer.
MAX_BLOCK_SIZE = 4096
# Elements converted at a time when an optimizer makes its state in a 16-bit or 8-bit format
# (a whole number of 8-bit blocks): building the state then needs the storage and one piece's
# temporaries, not a float32 copy of every entry plus the conversion's (~25 bytes/parameter).
# Not above torch's grain size (32768): a piece's initial values in gdfast.torch are then made
# without waking torch's thread pool once per piece.
PIECE = 1 << 15
# Format names, as gdfast._kernels.FORMATS knows them.
NATIVE, BF16, F16, Q8_SIGNED, Q8_UNSIGNED = (
    "native",
    "bfloat16",
    "float16",
    "int8 signed",
    "int8 unsigned",
)
_FORMAT_CODES = {NATIVE: 0, BF16: 1, F16: 2, Q8_SIGNED: 3, Q8_UNSIGNED: 4}

# State entries that are never negative (8-bit state: the unsigned map); any other entry is
# stored with the signed map (right for any sign, coarser for non-negative values).  A rule
# can list its own in `Rule.nonnegative_state`.
NONNEGATIVE_STATE = frozenset(
    {"exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum_sq", "acc_delta", "exp_inf"}
)

DEFAULTS = {
    "state_dtype": "float32",
    "master_weights": False,
    "param_copy": None,
    "rounding": "nearest",
    "seed": 0,
    "block_size": 256,
}


def bfloat16_dtype() -> np.dtype | None:
    """ml_dtypes.bfloat16, or None when ml_dtypes is not installed."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


_SIXTEEN_BIT: dict[np.dtype, str | None] = {}


def _sixteen_bit(dtype: np.dtype) -> str:
    """BF16 or F16 for a dtype already checked to be one of them."""
    fmt = sixteen_bit_format(dtype)
    assert fmt is not None, f"{dtype} was checked to be a 16-bit format"
    return fmt


def sixteen_bit_format(dtype: np.dtype) -> str | None:
    """BF16, F16, or None for any other dtype (remembered per dtype: a step asks often)."""
    try:
        return _SIXTEEN_BIT[dtype]
    except KeyError:
        pass
    fmt = None
    if dtype == np.dtype(np.float16):
        fmt = F16
    elif dtype.kind == "V" or dtype.name == "bfloat16":
        bf16 = bfloat16_dtype()
        if bf16 is not None and dtype == bf16:
            fmt = BF16
    _SIXTEEN_BIT[dtype] = fmt
    return fmt


def widen(array: np.ndarray) -> np.ndarray:
    """A float32 copy of a float32/bfloat16/float16 array (exact, SPEC L.1)."""
    fmt = sixteen_bit_format(array.dtype)
    if fmt == BF16:
        return formats.from_bfloat16(array.view(np.uint16))
    if fmt == F16:
        return formats.from_float16(array.view(np.uint16))
    return np.array(array, dtype=np.float32, copy=True)


def low_precision_array(name: str, value: Any, *, writeable: bool) -> np.ndarray:
    """A C-contiguous, aligned bfloat16 or float16 ndarray (writeable if asked)."""
    if not isinstance(value, np.ndarray) or type(value) is not np.ndarray:
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(value).__name__}")
    if sixteen_bit_format(value.dtype) is None:
        raise TypeError(
            f"{name}: dtype {value.dtype} is not supported; expected float32, float64, "
            "bfloat16 (ml_dtypes) or float16"
        )
    if not value.flags.aligned or not value.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous, aligned array")
    if writeable and not value.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array (the optimizer updates it in place)")
    return value


class Policy:
    """A checked dtype policy for a list of parameters (SPEC L.5).

    active : False when every tensor runs as today (float32/float64 parameters and state,
        no copies): the policy's arguments then change nothing.
    param_formats[i], storage[name] (the state entries' storage) and the arrays an
    optimizer adds to its state: `master` (float32, with master weights) and
    `<name>_absmax` (8-bit state)."""

    def __init__(
        self,
        state_dtype: str,
        master_weights: bool,
        rounding: str,
        seed: int,
        block_size: int,
        param_formats: list[str],
        param_copy: list[np.ndarray | None] | None,
    ):
        self.state_dtype = state_dtype
        self.master_weights = master_weights
        self.rounding = rounding
        self.seed = seed
        self.block_size = block_size
        self.param_formats = param_formats
        self.param_copy = param_copy
        self.active = (
            state_dtype != "float32"
            or master_weights
            or param_copy is not None
            or any(fmt != NATIVE for fmt in param_formats)
        )

    def check_loaded(self, state_dict: dict[str, Any], unnamed: str, convert: str) -> None:
        """A loaded state dict's policy (its "policy" entry, None for a state saved without
        one: `unnamed` says what that state is) must be this one: state is never converted
        silently; `convert` names the function that converts it explicitly."""
        mine = self.record() if self.active else None
        theirs = state_dict.get("policy")
        if theirs is not None and not isinstance(theirs, dict):
            raise TypeError(f"state_dict['policy']: expected a dict, got {type(theirs).__name__}")
        if theirs != mine:
            raise ValueError(
                "state_dict['policy']: the state was saved with the dtype policy "
                f"{theirs if theirs is not None else unnamed}, this optimizer has "
                f"{mine if mine is not None else 'none (float32/float64 state)'}; nothing was "
                f"loaded.  Convert it explicitly with {convert}(state_dict, optimizer), or "
                "build an optimizer with the same policy"
            )

    def record(self) -> dict[str, Any]:
        """The policy as plain data (state dicts and files)."""
        return {
            "state_dtype": self.state_dtype,
            "master_weights": self.master_weights,
            "rounding": self.rounding,
            "seed": self.seed,
            "block_size": self.block_size,
            "param_copy": self.param_copy is not None,
        }

    @classmethod
    def build(
        cls, params: Sequence[np.ndarray], names: Sequence[str], arguments: dict[str, Any]
    ) -> "Policy":
        """Check the policy's arguments (L.5's refusals) against the parameters."""
        state_dtype = arguments["state_dtype"]
        if isinstance(state_dtype, np.dtype) or isinstance(state_dtype, type):
            state_dtype = np.dtype(state_dtype).name
        if not isinstance(state_dtype, str):  # (an array would compare element-wise)
            raise TypeError(
                f"state_dtype: expected one of {STATE_DTYPES} (a str or a numpy dtype), "
                f"got {type(state_dtype).__name__}"
            )
        if state_dtype not in STATE_DTYPES:
            raise ValueError(f"state_dtype: expected one of {STATE_DTYPES}, got {state_dtype!r}")
        master = arguments["master_weights"]
        if not isinstance(master, (bool, np.bool_)):
            raise TypeError(f"master_weights: expected a bool, got {type(master).__name__}")
        rounding = arguments["rounding"]
        if not isinstance(rounding, str):
            raise TypeError(
                f"rounding: expected one of {formats.ROUNDINGS}, got {type(rounding).__name__}"
            )
        if rounding not in formats.ROUNDINGS:
            raise ValueError(f"rounding: expected one of {formats.ROUNDINGS}, got {rounding!r}")
        seed = formats.check_counter(arguments["seed"], "seed")
        block_size = formats.check_block_size(arguments["block_size"])
        if block_size > MAX_BLOCK_SIZE:
            raise ValueError(
                f"block_size: expected at most {MAX_BLOCK_SIZE} (the kernels stage whole "
                f"blocks), got {block_size}"
            )
        param_formats = [
            NATIVE if p.dtype in (np.float32, np.float64) else _sixteen_bit(p.dtype) for p in params
        ]
        wide = [name for p, name in zip(params, names) if p.dtype == np.float64]
        if wide and state_dtype != "float32":
            raise ValueError(
                f"state_dtype: {state_dtype!r} needs float32, bfloat16 or float16 parameters; "
                f"{wide[0]} is float64 (its state stays float64)"
            )
        if master:
            full = [name for p, name, f in zip(params, names, param_formats) if f == NATIVE]
            if full:
                raise ValueError(
                    f"master_weights: True is for bfloat16/float16 parameters; {full[0]} is "
                    f"{params[names.index(full[0])].dtype} (use param_copy= for a 16-bit copy "
                    "of float32 parameters)"
                )
        copies = arguments["param_copy"]
        if copies is not None:
            copies = cls._check_copies(copies, params, names)
        if (wide and any(f != NATIVE for f in param_formats)) or (
            wide and len(wide) != len(params) and (master or copies is not None)
        ):
            raise ValueError(
                f"params: {wide[0]} is float64 and others are 16-bit; one optimizer's "
                "low-precision policy needs float32 arithmetic for all its parameters"
            )
        if block_size != DEFAULTS["block_size"] and state_dtype != "int8":
            raise ValueError(
                f"block_size: {block_size} sets the blocks of 8-bit state; with "
                f"state_dtype={state_dtype!r} there are none (give state_dtype='int8', or "
                "leave block_size at its default)"
            )
        rounded = (
            state_dtype == "bfloat16"
            or master
            or any(f != NATIVE for f in param_formats)
            or (copies is not None and any(c is not None for c in copies))
        )
        if rounding == "stochastic" and not rounded:
            raise ValueError(
                "rounding: 'stochastic' rounds bfloat16/float16 stores (16-bit parameters, "
                "param_copy, bfloat16 state); this configuration has none (8-bit state always "
                "encodes to the nearest code): give rounding='nearest'"
            )
        return cls(state_dtype, bool(master), rounding, seed, block_size, param_formats, copies)

    @staticmethod
    def _check_copies(
        copies: Any, params: Sequence[np.ndarray], names: Sequence[str]
    ) -> list[np.ndarray | None]:
        if isinstance(copies, np.ndarray):
            copies = [copies]
        if not isinstance(copies, (list, tuple)) or len(copies) != len(params):
            raise ValueError(
                f"param_copy: expected one bfloat16/float16 array (or None) per parameter, "
                f"{len(params)} in all"
            )
        checked: list[np.ndarray | None] = []
        for index, (copy, param, name) in enumerate(zip(copies, params, names)):
            where = "param_copy" if len(params) == 1 else f"param_copy[{index}]"
            if copy is None:
                checked.append(None)
                continue
            low_precision_array(where, copy, writeable=True)
            if param.dtype != np.float32:
                raise TypeError(
                    f"{where}: a parameter copy is for float32 parameters; {name} is {param.dtype}"
                )
            if copy.shape != param.shape:
                raise ValueError(
                    f"{where}: shape {copy.shape} does not match {name}'s shape {param.shape}"
                )
            checked.append(copy)
        arrays = [(a, n) for a, n in zip(params, names)] + [
            (c, f"param_copy[{i}]" if len(params) > 1 else "param_copy")
            for i, c in enumerate(checked)
            if c is not None
        ]
        for index, (copy, where) in enumerate(arrays[len(params) :]):
            for other, label in arrays[: len(params) + index]:
                if np.shares_memory(copy, other):
                    raise ValueError(
                        f"{where}: shares memory with {label}; each copy must own its memory"
                    )
        return checked

    # --------------------------------------------------------------- storage
    def arithmetic_dtype(self, param: np.ndarray) -> np.dtype:
        return np.dtype(np.float64) if param.dtype == np.float64 else np.dtype(np.float32)

    def state_format(self, name: str, nonnegative: frozenset[str]) -> str:
        if self.state_dtype == "bfloat16":
            return BF16
        if self.state_dtype == "int8":
            return Q8_UNSIGNED if name in nonnegative else Q8_SIGNED
        return NATIVE

    def blocks(self, param: np.ndarray) -> int:
        return -(-param.size // self.block_size)

    def store(self, fmt: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """float32 values in a state format: (storage, the 8-bit scales or None)."""
        if fmt == BF16:
            return formats.to_bfloat16(values), None
        if fmt in (Q8_SIGNED, Q8_UNSIGNED):
            return formats.quantize_blockwise(values, self.code(fmt), self.block_size)
        return values, None

    def pieces(self, size: int) -> Iterator[tuple[int, int]]:
        """[begin, end) of the pieces of `size` flat elements, each a whole number of 8-bit
        blocks (the last maybe shorter)."""
        step = self.block_size * max(1, PIECE // self.block_size)
        for begin in range(0, size, step):
            yield begin, min(size, begin + step)

    def empty_storage(self, fmt: str, size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Uninitialized flat storage of `size` elements in a 16-bit or 8-bit state format:
        (bit patterns or codes, the 8-bit scales or None)."""
        if fmt in (Q8_SIGNED, Q8_UNSIGNED):
            return np.empty(size, np.uint8), np.empty(-(-size // self.block_size), np.float32)
        return np.empty(size, np.uint16), None

    def fill(
        self,
        fmt: str,
        out: np.ndarray,
        scales: np.ndarray | None,
        values: Callable[[int, int], np.ndarray],
    ) -> None:
        """Flat storage `out` (and the 8-bit `scales`) of a 16-bit or 8-bit state format
        filled piece by piece with store() of values(begin, end), the float32 values of
        elements [begin, end): the bits store() gives the whole array (a 16-bit rounding is
        element by element, a piece holds whole 8-bit blocks), without its temporaries."""
        for begin, end in self.pieces(out.size):
            stored, piece_scales = self.store(fmt, values(begin, end))
            out[begin:end] = stored
            if piece_scales is not None:
                assert scales is not None, "8-bit state comes with its scales"
                first = begin // self.block_size
                scales[first : first + piece_scales.size] = piece_scales

    def master_weights_of(self, param: np.ndarray) -> np.ndarray:
        """A 16-bit parameter widened exactly to float32 (the master weights), piece by
        piece: the copy is the only array it makes."""
        master = np.empty(param.shape, np.float32)
        flat, source = master.reshape(-1), param.reshape(-1)
        for begin, end in self.pieces(param.size):
            flat[begin:end] = widen(source[begin:end])
        return master

    @staticmethod
    def code(fmt: str) -> np.ndarray:
        return formats.DYNAMIC_SIGNED if fmt == Q8_SIGNED else formats.DYNAMIC_UNSIGNED

    def load(self, fmt: str, stored: np.ndarray, absmax: np.ndarray | None) -> np.ndarray:
        """A state buffer widened to float32 (a copy; SPEC L.6 step 1)."""
        if fmt == BF16:
            return formats.from_bfloat16(stored)
        if fmt in (Q8_SIGNED, Q8_UNSIGNED):
            assert absmax is not None, "8-bit state comes with its scales"
            return formats.dequantize_blockwise(stored, absmax, self.code(fmt), self.block_size)
        return stored.copy()

    def round(
        self, values: np.ndarray, fmt: str, step: int, tensor: int, stream: int
    ) -> np.ndarray:
        """float32 values rounded to a 16-bit format: the uint16 bit patterns (L.1/L.3)."""
        to = formats.to_bfloat16 if fmt == BF16 else formats.to_float16
        return to(values, self.rounding, seed=self.seed, step=step, tensor=tensor, stream=stream)

    # ------------------------------------------------------------------ steps
    def reference_step(
        self,
        core: Any,
        indices: list[int],
        params: Sequence[np.ndarray],
        grads: Sequence[np.ndarray],
        states: list[tuple[str, str, list[np.ndarray], list[np.ndarray | None]]],
        steps: np.ndarray,
        master: list[np.ndarray] | None,
        hyper: dict[str, Any],
    ) -> None:
        """One step of the NumPy core `core` under this policy, SPEC L.6 literally: each
        tensor's values widened to float32 copies, the rule's core on them, then the stores.

        states: (name, format, buffers, absmax) per state entry of the rule's layout, in its
        order (format None: a scalar entry, passed as it is)."""
        for position, (i, g, t) in enumerate(zip(indices, grads, steps)):
            step = int(t)
            param = params[position]
            theta = master[position].copy() if master is not None else widen(param)
            g32 = widen(g)
            wide = [
                buffers[position]
                if fmt is None
                else self.load(fmt, buffers[position], None if absmax is None else absmax[position])
                for _, fmt, buffers, absmax in states
            ]
            core([theta], [g32], *[[w] for w in wide], np.array([step], dtype=np.int64), **hyper)
            buffer_index = 0
            for (_, fmt, buffers, absmax), new in zip(states, wide):
                if fmt is None:
                    continue
                buffer_index += 1
                if fmt == NATIVE:
                    np.copyto(buffers[position], new)
                elif fmt == BF16:
                    buffers[position][...] = self.round(new, BF16, step, i, buffer_index)
                else:
                    codes, scales = self.store(fmt, new)
                    scale_buffer = None if absmax is None else absmax[position]
                    assert scale_buffer is not None, "8-bit state comes with its scales"
                    buffers[position][...] = codes
                    scale_buffer[...] = scales
            param_format = self.param_formats[i]
            if master is not None:
                np.copyto(master[position], theta)
            if param_format == NATIVE:
                np.copyto(param, theta.astype(param.dtype))
            else:
                param.view(np.uint16)[...] = self.round(theta, param_format, step, i, 0)
            copy = None if self.param_copy is None else self.param_copy[i]
            if copy is not None:
                copy_format = _sixteen_bit(copy.dtype)
                copy.view(np.uint16)[...] = self.round(theta, copy_format, step, i, 0)

    def staging_args(
        self,
        indices: list[int],
        grads: Sequence[np.ndarray],
        buffer_formats: list[str],
        buffer_absmax: list[list[np.ndarray] | None],
        master: list[np.ndarray] | None,
    ) -> tuple[Any, ...]:
        """The arguments of gdfast._kernels.Staging for a step of the tensors `indices`."""
        slot_formats, absmax = [], []
        for position, i in enumerate(indices):
            grad_format = sixteen_bit_format(grads[position].dtype) or NATIVE
            slot_formats += [self.param_formats[i], grad_format] + buffer_formats
            absmax += [None, None] + [
                None if scales is None else scales[position] for scales in buffer_absmax
            ]
        copies = [None if self.param_copy is None else self.param_copy[i] for i in indices]
        copy_formats = [
            _FORMAT_CODES[_sixteen_bit(c.dtype)] if c is not None else 0 for c in copies
        ]
        return (
            np.array([_FORMAT_CODES[f] for f in slot_formats], dtype=np.uint8),
            [None] * len(indices) if master is None else list(master),
            copies,
            np.array(copy_formats, dtype=np.uint8),
            absmax,
            np.array(indices, dtype=np.int64),
            self.block_size,
            self.seed,
            self.rounding == "stochastic",
        )
