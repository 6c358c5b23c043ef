"""Low-precision formats, the NumPy reference (SPEC section "Low precision", docs/spec-low-precision.md).

The spec in code, literal and slow, with no dependency beyond NumPy: every 16-bit value is a raw
``uint16`` bit pattern (``ml_dtypes.bfloat16`` / ``numpy.float16`` arrays are views of the same
bits: ``bits.view(ml_dtypes.bfloat16)``).  The C versions (src_c/lowp.h, exposed by
``gdfast._formats``) must give the same bits for every input.

- ``to_bfloat16`` / ``to_float16``: float32 → 16-bit, rounding ``"nearest"`` (to nearest, ties
  to even) or ``"stochastic"`` (SPEC L.3), NaN quieted with its sign and leading payload bits kept,
  overflow to ±inf as IEEE rounding gives it;
- ``from_bfloat16`` / ``from_float16``: 16-bit → float32 (exact);
- ``random_bits``: the counter-based generator of stochastic rounding, one 32-bit word per
  (seed, step, tensor, stream, element index) (SPEC L.2);
- ``quantize_blockwise`` / ``dequantize_blockwise``: 8-bit blockwise state with one absmax scale
  per block and bitsandbytes' dynamic maps ``DYNAMIC_SIGNED`` (first moments) and
  ``DYNAMIC_UNSIGNED`` (second moments) (SPEC L.4).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DYNAMIC_SIGNED",
    "DYNAMIC_UNSIGNED",
    "ROUNDINGS",
    "SIMD_WIDTH",
    "dequantize_blockwise",
    "from_bfloat16",
    "from_float16",
    "map_midpoints",
    "quantize_blockwise",
    "random_bits",
    "random_key",
    "to_bfloat16",
    "to_float16",
]

ROUNDINGS = ("nearest", "stochastic")
# Block sizes of 8-bit state are positive multiples of this: one AVX-512 vector of float32, so
# that no instruction-set clone ever needs a partial vector inside a block.
SIMD_WIDTH = 16

_U32 = np.uint32
_MASK64 = (1 << 64) - 1

# ---------------------------------------------------------------------------- the maps (L.4)
# bitsandbytes' create_dynamic_map(signed=True) and create_dynamic_map(signed=False)
# (bitsandbytes/functional.py, max_exponent_bits=7, total_bits=8), float32 values as that
# function returns them (computed with torch's float32 linspace; 0 to 2 ulp from the same
# formula in exact arithmetic, which is why the table, not the formula, is the definition).
# Sorted ascending; signed: 127 negative codes, 0 at index 127, 128 positive codes ending with
# 1.0 (there is no -1.0); unsigned: 0 at index 0, 255 positive codes ending with 1.0.
# fmt: off
_DYNAMIC_SIGNED_BITS = (
    0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
    0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
    0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
    0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
    0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
    0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
    0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
    0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
    0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
    0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
    0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
    0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
    0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
    0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
    0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
    0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
    0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
    0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
    0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
    0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
    0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
    0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
    0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
    0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
    0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
    0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
    0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
    0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
    0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
    0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
    0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
    0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000,
)
_DYNAMIC_UNSIGNED_BITS = (
    0x00000000, 0x34AE7BAA, 0x35500998, 0x360E9B38, 0x3692CCF6, 0x36DE4C51, 0x3714E5D5, 0x3783126E,
    0x37E171A0, 0x381FE868, 0x384F1800, 0x387E479A, 0x3896BB99, 0x38AE5364, 0x38C5EB31, 0x3906594B,
    0x394154CA, 0x397C5049, 0x399BA5E4, 0x39B923A2, 0x39D6A163, 0x39F41F22, 0x3A08CE71, 0x3A178D50,
    0x3A264C30, 0x3A350B10, 0x3A43C9EF, 0x3A5288D0, 0x3A6147AF, 0x3A70068E, 0x3A7EC56E, 0x3A958106,
    0x3ABA5E35, 0x3ADF3B64, 0x3B020C4A, 0x3B147AE1, 0x3B26E978, 0x3B395810, 0x3B4BC6A7, 0x3B5E3540,
    0x3B70A3D7, 0x3B818937, 0x3B8AC082, 0x3B93F7CF, 0x3B9D2F1A, 0x3BA66666, 0x3BAF9DB2, 0x3BB8D4FD,
    0x3BC20C4A, 0x3BCB4395, 0x3BD47AE1, 0x3BDDB22E, 0x3BE6E978, 0x3BF020C5, 0x3BF9580F, 0x3C0147AE,
    0x3C05E354, 0x3C0A7EF9, 0x3C0F1AA0, 0x3C13B645, 0x3C1851EB, 0x3C1CED92, 0x3C218937, 0x3C2F5C2A,
    0x3C466667, 0x3C5D70A3, 0x3C747AE2, 0x3C85C28F, 0x3C9147AF, 0x3C9CCCCD, 0x3CA851EB, 0x3CB3D70B,
    0x3CBF5C29, 0x3CCAE147, 0x3CD66667, 0x3CE1EB87, 0x3CED70A3, 0x3CF8F5C3, 0x3D023D70, 0x3D080000,
    0x3D0DC28F, 0x3D13851F, 0x3D1947AF, 0x3D1F0A3D, 0x3D24CCCD, 0x3D2A8F5C, 0x3D3051EB, 0x3D36147B,
    0x3D3BD70A, 0x3D41999A, 0x3D475C28, 0x3D4D1EB8, 0x3D52E147, 0x3D58A3D7, 0x3D5E6667, 0x3D6428F7,
    0x3D69EB87, 0x3D6FAE15, 0x3D7570A3, 0x3D7B3333, 0x3D807AE2, 0x3D835C2A, 0x3D863D71, 0x3D891EB8,
    0x3D8C0000, 0x3D8EE148, 0x3D91C290, 0x3D94A3D7, 0x3D97851F, 0x3D9A6667, 0x3D9D47AF, 0x3DA028F6,
    0x3DA30A3E, 0x3DA5EB85, 0x3DA8CCCD, 0x3DABAE15, 0x3DAE8F5C, 0x3DB170A4, 0x3DB451EB, 0x3DB73333,
    0x3DBA147B, 0x3DBCF5C3, 0x3DBFD70B, 0x3DC2B852, 0x3DC5999A, 0x3DC87AE2, 0x3DCB5C29, 0x3DD40000,
    0x3DE26666, 0x3DF0CCCD, 0x3DFF3333, 0x3E06CCCC, 0x3E0E0000, 0x3E153334, 0x3E1C6666, 0x3E23999A,
    0x3E2ACCCC, 0x3E320000, 0x3E393334, 0x3E406666, 0x3E47999A, 0x3E4ECCCC, 0x3E560000, 0x3E5D3334,
    0x3E646666, 0x3E6B999A, 0x3E72CCCC, 0x3E7A0000, 0x3E809999, 0x3E843333, 0x3E87CCCD, 0x3E8B6666,
    0x3E8F0000, 0x3E92999A, 0x3E963333, 0x3E99CCCC, 0x3E9D6666, 0x3EA10000, 0x3EA4999A, 0x3EA83333,
    0x3EABCCCC, 0x3EAF6666, 0x3EB30000, 0x3EB6999A, 0x3EBA3333, 0x3EBDCCCC, 0x3EC16666, 0x3EC50000,
    0x3EC8999A, 0x3ECC3333, 0x3ECFCCCC, 0x3ED36666, 0x3ED70000, 0x3EDA999A, 0x3EDE3333, 0x3EE1CCCC,
    0x3EE56666, 0x3EE90000, 0x3EEC999A, 0x3EF03333, 0x3EF3CCCC, 0x3EF76666, 0x3EFB0000, 0x3EFE9999,
    0x3F01199A, 0x3F02E666, 0x3F04B333, 0x3F068000, 0x3F084CCC, 0x3F0A199A, 0x3F0BE666, 0x3F0DB334,
    0x3F0F8000, 0x3F114CCD, 0x3F13199A, 0x3F14E666, 0x3F16B334, 0x3F188000, 0x3F1A4CCD, 0x3F1C199A,
    0x3F1DE666, 0x3F1FB334, 0x3F218000, 0x3F234CCD, 0x3F25199A, 0x3F26E666, 0x3F28B334, 0x3F2A8000,
    0x3F2C4CCD, 0x3F2E199A, 0x3F2FE666, 0x3F31B334, 0x3F338000, 0x3F354CCD, 0x3F37199A, 0x3F38E666,
    0x3F3AB334, 0x3F3C8000, 0x3F3E4CCD, 0x3F40199A, 0x3F41E666, 0x3F43B334, 0x3F458000, 0x3F474CCC,
    0x3F49199A, 0x3F4AE666, 0x3F4CB334, 0x3F4E8000, 0x3F504CCC, 0x3F52199A, 0x3F53E666, 0x3F55B334,
    0x3F578000, 0x3F594CCC, 0x3F5B199A, 0x3F5CE666, 0x3F5EB334, 0x3F608000, 0x3F624CCC, 0x3F64199A,
    0x3F65E666, 0x3F67B334, 0x3F698000, 0x3F6B4CCC, 0x3F6D199A, 0x3F6EE666, 0x3F70B334, 0x3F728000,
    0x3F744CCC, 0x3F76199A, 0x3F77E666, 0x3F79B334, 0x3F7B8000, 0x3F7D4CCC, 0x3F7F199A, 0x3F800000,
)

# fmt: on

DYNAMIC_SIGNED = np.array(_DYNAMIC_SIGNED_BITS, dtype=np.uint32).view(np.float32)
DYNAMIC_UNSIGNED = np.array(_DYNAMIC_UNSIGNED_BITS, dtype=np.uint32).view(np.float32)
DYNAMIC_SIGNED.flags.writeable = False
DYNAMIC_UNSIGNED.flags.writeable = False


# ---------------------------------------------------------------------------- argument checks
def check_float32(x: object, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name}: expected a numpy float32 array, got {got}")
    return x


def check_uint(x: object, dtype: type, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != dtype:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name}: expected a numpy {np.dtype(dtype).name} array, got {got}")
    return x


def check_counter(value: object, name: str, bits: int = 64) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if not 0 <= int(value) < (1 << bits):
        raise ValueError(f"{name}: expected an integer in [0, 2**{bits}), got {value}")
    return int(value)


def check_rounding(rounding: object) -> str:
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding: expected one of {ROUNDINGS}, got {rounding!r}")
    return str(rounding)


def check_block_size(block_size: object) -> int:
    """block_size as an int, or a ValueError/TypeError naming it (SPEC L.4)."""
    if isinstance(block_size, (bool, np.bool_)) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(f"block_size: expected an integer, got {type(block_size).__name__}")
    if block_size <= 0 or block_size % SIMD_WIDTH:
        raise ValueError(
            f"block_size: expected a positive multiple of {SIMD_WIDTH}, got {block_size}"
        )
    return int(block_size)


def check_code(code: object) -> np.ndarray:
    """A quantization map: 256 finite float32 values, strictly increasing (SPEC L.4)."""
    code = check_float32(code, "code")
    if code.shape != (256,):
        raise ValueError(f"code: expected shape (256,), got {code.shape}")
    if not np.all(np.isfinite(code)) or not np.all(code[1:] > code[:-1]):
        raise ValueError("code: expected 256 finite, strictly increasing values")
    return code


# ---------------------------------------------------------------------------- generator (L.2)
_GOLDEN64 = 0x9E3779B97F4A7C15


def _mix64(z: int) -> int:
    """splitmix64's finalizer (Steele, Lea, Flood 2014), on Python ints mod 2**64."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _absorb(key: int, word: int) -> int:
    return _mix64(((key ^ word) + _GOLDEN64) & _MASK64)


def random_key(seed: int, step: int, tensor: int, stream: int, high: int = 0) -> int:
    """The 32-bit key of elements high·2**32 ... high·2**32 + 2**32 − 1 (SPEC L.2)."""
    seed = check_counter(seed, "seed")
    step = check_counter(step, "step")
    tensor = check_counter(tensor, "tensor")
    stream = check_counter(stream, "stream", 32)
    high = check_counter(high, "high", 32)
    key = _mix64((seed + _GOLDEN64) & _MASK64)
    key = _absorb(key, step)
    key = _absorb(key, tensor)
    key = _absorb(key, (stream << 32) | high)
    return key & 0xFFFFFFFF


def _lowbias32(x: np.ndarray) -> np.ndarray:
    """Wellons' lowbias32 integer hash, on uint32 arrays (products wrap mod 2**32)."""
    x = x ^ (x >> _U32(16))
    x = x * _U32(0x7FEB352D)
    x = x ^ (x >> _U32(15))
    x = x * _U32(0x846CA68B)
    return x ^ (x >> _U32(16))


def random_bits(
    count: int, seed: int, step: int, tensor: int, stream: int, offset: int = 0
) -> np.ndarray:
    """The 32-bit random words of elements offset ... offset + count − 1 (SPEC L.2):
    r_i = lowbias32((i mod 2**32) XOR key(seed, step, tensor, stream, i div 2**32))."""
    count = check_counter(count, "count")
    offset = check_counter(offset, "offset")
    if offset + count > (1 << 64):
        raise ValueError("offset + count: expected at most 2**64 elements")
    index = np.arange(count, dtype=np.uint64) + np.uint64(offset)
    low = (index & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    high = (index >> np.uint64(32)).astype(np.uint32)
    keys = np.empty(count, dtype=np.uint32)
    for h in np.unique(high):
        keys[high == h] = random_key(seed, step, tensor, stream, int(h))
    return _lowbias32(low ^ keys)


def _random_for(
    x: np.ndarray, rounding: str, seed: int, step: int, tensor: int, stream: int, offset: int
) -> np.ndarray:
    if rounding == "nearest":
        return np.zeros(x.shape, dtype=np.uint32)
    return random_bits(x.size, seed, step, tensor, stream, offset).reshape(x.shape)


# ---------------------------------------------------------------------------- formats (L.1, L.3)
def to_bfloat16(
    x: np.ndarray,
    rounding: str = "nearest",
    *,
    seed: int = 0,
    step: int = 0,
    tensor: int = 0,
    stream: int = 0,
    offset: int = 0,
) -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16, x's shape).

    nearest: to nearest, ties to even: (b + 0x7FFF + bit16(b)) >> 16 on the float32 bits b;
    stochastic: (b + (r >> 16)) >> 16, r the element's random word (SPEC L.2): rounds away from
    zero with probability (discarded bits) / 2**16.  Both carry into the exponent, so a finite
    value above the largest bfloat16 becomes ±inf as IEEE rounding would.  NaN: quiet, sign and
    the 7 leading payload bits kept (b >> 16 | 0x0040)."""
    x = check_float32(x, "x")
    rounding = check_rounding(rounding)
    r = _random_for(x, rounding, seed, step, tensor, stream, offset)
    b = x.view(np.uint32)
    if rounding == "nearest":
        rounded = (b + _U32(0x7FFF) + ((b >> _U32(16)) & _U32(1))) >> _U32(16)
    else:
        rounded = (b + (r >> _U32(16))) >> _U32(16)
    nan = (b & _U32(0x7FFFFFFF)) > _U32(0x7F800000)
    out = np.where(nan, (b >> _U32(16)) | _U32(0x0040), rounded)
    return out.astype(np.uint16)


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns → float32 (exact: the 16 bits are the float32's top half)."""
    bits = check_uint(bits, np.uint16, "bits")
    return (bits.astype(np.uint32) << _U32(16)).view(np.float32)


def to_float16(
    x: np.ndarray,
    rounding: str = "nearest",
    *,
    seed: int = 0,
    step: int = 0,
    tensor: int = 0,
    stream: int = 0,
    offset: int = 0,
) -> np.ndarray:
    """float32 → IEEE binary16 bit patterns (uint16, x's shape).

    With m = |x|'s bits and s the bits the result drops (13 in the normal range 2**-14 ≤ |x|,
    13 + more for results that are subnormal):
    nearest: to nearest, ties to even; stochastic: the s dropped bits plus the top s bits of r
    (r >> (32 − s)), carried, then truncated — away from zero with probability
    (dropped bits) / 2**s; where s > 32 (|x| < 2**-33) the result is 0 (truncation).
    |x| ≥ 2**16: ±inf for both roundings (nearest turns everything from 65520 up into inf; a
    stochastic carry out of 65504 also gives inf).  NaN: quiet, sign and the 9 leading payload
    bits kept (0x7E00 | mantissa >> 13)."""
    x = check_float32(x, "x")
    rounding = check_rounding(rounding)
    r = _random_for(x, rounding, seed, step, tensor, stream, offset).astype(np.uint64)
    b = x.view(np.uint32).astype(np.uint64)
    sign = (b >> np.uint64(16)) & np.uint64(0x8000)
    mag = b & np.uint64(0x7FFFFFFF)
    exponent = mag >> np.uint64(23)
    mantissa = mag & np.uint64(0x7FFFFF)
    one = np.uint64(1)

    # Normal results: rebias the exponent (127 → 15) and drop 13 mantissa bits.
    shifted = mag - np.uint64(112 << 23)  # wraps where unused (mag below 2**-14)
    if rounding == "nearest":
        normal = (shifted + np.uint64(0xFFF) + ((shifted >> np.uint64(13)) & one)) >> np.uint64(13)
    else:
        normal = (shifted + (r >> np.uint64(19))) >> np.uint64(13)

    # Subnormal results: the significand M in units of 2**-24 is M >> s, s = 126 − max(E, 1).
    significand = np.where(exponent > 0, mantissa | np.uint64(0x800000), mantissa)
    drop = np.uint64(126) - np.maximum(exponent, one)  # 14 ... 125 where used
    drop_c = np.minimum(drop, np.uint64(63))
    if rounding == "nearest":
        kept = significand >> drop_c
        rest = significand & ((one << drop_c) - one)
        half = one << (drop_c - one)
        up = (rest > half) | ((rest == half) & ((kept & one) == one))
        subnormal = kept + up.astype(np.uint64)
    else:
        added = r >> (np.uint64(32) - np.minimum(drop_c, np.uint64(32)))
        subnormal = np.where(drop > 32, np.uint64(0), (significand + added) >> drop_c)

    nan = mag > np.uint64(0x7F800000)
    out = np.where(mag < np.uint64(0x38800000), subnormal, normal)
    out = np.where(mag >= np.uint64(0x47800000), np.uint64(0x7C00), out)
    out = np.where(nan, np.uint64(0x7E00) | (mantissa >> np.uint64(13)), out)
    return (out | sign).astype(np.uint16)


def from_float16(bits: np.ndarray) -> np.ndarray:
    """IEEE binary16 bit patterns → float32 (exact; NaN payloads kept)."""
    bits = check_uint(bits, np.uint16, "bits")
    h = bits.astype(np.uint32)
    sign = (h & _U32(0x8000)) << _U32(16)
    exponent = (h >> _U32(10)) & _U32(0x1F)
    mantissa = h & _U32(0x3FF)
    subnormal = (mantissa.astype(np.float32) * np.float32(2.0**-24)).view(np.uint32)
    normal = ((exponent + _U32(112)) << _U32(23)) | (mantissa << _U32(13))
    special = _U32(0x7F800000) | (mantissa << _U32(13))
    out = np.where(exponent == 0, subnormal, np.where(exponent == 31, special, normal))
    return (out | sign).view(np.float32)


# ---------------------------------------------------------------------------- 8-bit state (L.4)
_DEFAULT_NAN = np.array(0x7FC00000, dtype=np.uint32).view(np.float32)


def map_midpoints(code: np.ndarray) -> np.ndarray:
    """The 255 decision points of a map: fl32(fl32(c_j + c_{j+1}) · 0.5)."""
    code = check_code(code)
    return (code[:-1] + code[1:]) * np.float32(0.5)


def block_absmax(x: np.ndarray, block_size: int) -> np.ndarray:
    """max |x| over each block of block_size elements (the last may be shorter); the default
    NaN (0x7FC00000) for a block holding a NaN."""
    x = check_float32(x, "x").reshape(-1)
    block_size = check_block_size(block_size)
    n_blocks = -(-x.size // block_size)
    padded = np.zeros(n_blocks * block_size, dtype=np.float32)  # the last block padded with 0
    padded[: x.size] = x
    blocks = padded.reshape(n_blocks, block_size)
    largest = np.max(np.abs(blocks), axis=1, initial=np.float32(0.0))
    return np.where(np.isnan(blocks).any(axis=1), _DEFAULT_NAN, largest).astype(np.float32)


def quantize_blockwise(
    x: np.ndarray, code: np.ndarray, block_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """float32 → (codes: uint8, x's shape; absmax: float32, one per block of the flat array).

    Block b holds elements b·block_size ... (b + 1)·block_size − 1 of x in C order; its scale
    a_b = block_absmax; each element becomes the index of its nearest code:
        y = x · fl32(1 / a_b)   (y = 0 where that is NaN),
        q = #{ j : midpoint_j < y }          (a tie goes to the lower code).
    A block with a NaN or an infinity dequantizes to NaN in every element; a block of zeros
    to zeros."""
    x = check_float32(x, "x")
    code = check_code(code)
    block_size = check_block_size(block_size)
    flat = x.reshape(-1)
    absmax = block_absmax(flat, block_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.float32(1.0) / absmax
        y = flat * np.repeat(inverse, block_size)[: flat.size]
    y = np.where(np.isnan(y), np.float32(0.0), y)
    q = np.searchsorted(map_midpoints(code), y, side="left").astype(np.uint8)
    return q.reshape(x.shape), absmax


def dequantize_blockwise(
    q: np.ndarray, absmax: np.ndarray, code: np.ndarray, block_size: int
) -> np.ndarray:
    """(codes, absmax) → float32, q's shape: x = fl32(code[q] · a_b)."""
    q = check_uint(q, np.uint8, "q")
    absmax = check_float32(absmax, "absmax")
    code = check_code(code)
    block_size = check_block_size(block_size)
    n_blocks = -(-q.size // block_size)
    if absmax.shape != (n_blocks,):
        raise ValueError(
            f"absmax: expected shape ({n_blocks},) for {q.size} codes in blocks of "
            f"{block_size}, got {absmax.shape}"
        )
    with np.errstate(invalid="ignore"):
        x = code[q.reshape(-1)] * np.repeat(absmax, block_size)[: q.size]
    return x.reshape(q.shape)
