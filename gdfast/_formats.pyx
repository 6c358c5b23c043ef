# cython: language_level=3
"""Bulk conversions between float32 and the low-precision formats, in C (src_c/lowp.h, lowp.c).

The same functions, arguments and bits as the NumPy reference gdfast.formats (SPEC L): 16-bit
values are raw uint16 bit patterns, 8-bit state is (uint8 codes, float32 absmax per block).
Arguments are validated here, with the reference's checks, before any C call; the C loops
release the GIL and give the same bits for any `threads`.  Used for checkpoint conversion
(float32 state <-> 8-bit), parameter copies, and the tests.
"""
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

import numpy as np

from gdfast.formats import (
    check_counter,
    check_float32,
    check_rounding,
    check_uint,
    check_block_size,
    check_code,
)

cdef extern from "lowp_bulk.h" nogil:
    ctypedef struct gd_q8_map:
        pass
    enum:
        GD_FORMAT_BF16
        GD_FORMAT_F16
    ctypedef struct gd_round_args:
        const float *x
        uint16_t *out
        int64_t n
        int format
        int stochastic
        uint64_t seed, step, tensor
        uint32_t stream
        int64_t offset
    void gd_round_to_16(const gd_round_args *args, int threads)
    void gd_widen_from_16(const uint16_t *h, float *out, int64_t n, int format, int threads)
    void gd_random_words(uint32_t *out, int64_t n, uint64_t seed, uint64_t step,
                         uint64_t tensor, uint32_t stream, int64_t offset, int threads)
    int gd_q8_map_build(gd_q8_map *map, const float *code)
    void gd_q8_quantize(const gd_q8_map *map, const float *x, int64_t n, int64_t block,
                        uint8_t *q, float *absmax, int threads)
    void gd_q8_dequantize(const gd_q8_map *map, const uint8_t *q, const float *absmax,
                          int64_t n, int64_t block, float *x, int threads)

cdef extern from "lowp.h" nogil:
    size_t GD_Q8_MAP_SIZE "sizeof(gd_q8_map)"


def _threads(threads):
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads: expected an integer, got {type(threads).__name__}")
    if not 1 <= threads <= 1024:
        raise ValueError(f"threads: expected an integer in [1, 1024], got {threads}")
    return int(threads)


def _contiguous(x, name):
    if not x.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    return x


def _round(x, int fmt, rounding, seed, step, tensor, stream, offset, threads):
    x = _contiguous(check_float32(x, "x"), "x")
    stochastic = check_rounding(rounding) == "stochastic"
    cdef gd_round_args args
    args.seed = check_counter(seed, "seed")
    args.step = check_counter(step, "step")
    args.tensor = check_counter(tensor, "tensor")
    args.stream = check_counter(stream, "stream", 32)
    args.offset = check_counter(offset, "offset", 63)
    if args.offset + x.size >= (1 << 63):
        raise ValueError("offset + x.size: expected below 2**63")
    cdef int team = _threads(threads)
    out = np.empty(x.shape, dtype=np.uint16)
    if x.size == 0:
        return out
    cdef const float[::1] xs = x.reshape(-1)
    cdef uint16_t[::1] os = out.reshape(-1)
    args.x = &xs[0]
    args.out = &os[0]
    args.n = x.size
    args.format = fmt
    args.stochastic = stochastic
    with nogil:
        gd_round_to_16(&args, team)
    return out


def to_bfloat16(x, rounding="nearest", *, seed=0, step=0, tensor=0, stream=0, offset=0,
                threads=1):
    """float32 → bfloat16 bit patterns; see gdfast.formats.to_bfloat16."""
    return _round(x, GD_FORMAT_BF16, rounding, seed, step, tensor, stream, offset, threads)


def to_float16(x, rounding="nearest", *, seed=0, step=0, tensor=0, stream=0, offset=0,
               threads=1):
    """float32 → float16 bit patterns; see gdfast.formats.to_float16."""
    return _round(x, GD_FORMAT_F16, rounding, seed, step, tensor, stream, offset, threads)


def _widen(bits, int fmt, threads):
    bits = _contiguous(check_uint(bits, np.uint16, "bits"), "bits")
    cdef int team = _threads(threads)
    out = np.empty(bits.shape, dtype=np.float32)
    if bits.size == 0:
        return out
    cdef const uint16_t[::1] hs = bits.reshape(-1)
    cdef float[::1] os = out.reshape(-1)
    cdef int64_t n = bits.size
    with nogil:
        gd_widen_from_16(&hs[0], &os[0], n, fmt, team)
    return out


def from_bfloat16(bits, *, threads=1):
    """bfloat16 bit patterns → float32; see gdfast.formats.from_bfloat16."""
    return _widen(bits, GD_FORMAT_BF16, threads)


def from_float16(bits, *, threads=1):
    """float16 bit patterns → float32; see gdfast.formats.from_float16."""
    return _widen(bits, GD_FORMAT_F16, threads)


def random_bits(count, seed, step, tensor, stream, offset=0, *, threads=1):
    """The generator's words; see gdfast.formats.random_bits."""
    cdef int64_t n = check_counter(count, "count", 62)
    cdef uint64_t s = check_counter(seed, "seed")
    cdef uint64_t t = check_counter(step, "step")
    cdef uint64_t k = check_counter(tensor, "tensor")
    cdef uint32_t st = check_counter(stream, "stream", 32)
    cdef int64_t off = check_counter(offset, "offset", 62)
    cdef int team = _threads(threads)
    out = np.empty(n, dtype=np.uint32)
    if n == 0:
        return out
    cdef uint32_t[::1] os = out
    with nogil:
        gd_random_words(&os[0], n, s, t, k, st, off, team)
    return out


cdef class _Map:
    """A map's encoding tables (lowp.h gd_q8_map), built once per map."""
    cdef gd_q8_map *map

    def __cinit__(self, code):
        cdef const float[::1] cs = code
        self.map = <gd_q8_map *>malloc(GD_Q8_MAP_SIZE)
        if self.map == NULL:
            raise MemoryError()
        if gd_q8_map_build(self.map, &cs[0]) != 0:
            raise ValueError("code: two midpoints of this map fall in one bucket of the "
                             "C encoding table (lowp.h GD_Q8_BUCKET_BITS); it is too fine")

    def __dealloc__(self):
        free(self.map)


_maps = {}


cdef _Map _map_for(code):
    code = check_code(code)
    key = code.tobytes()
    if key not in _maps:
        _maps[key] = _Map(np.ascontiguousarray(code))
    return _maps[key]


def quantize_blockwise(x, code, block_size, *, threads=1):
    """float32 → (uint8 codes, float32 absmax per block); see gdfast.formats.quantize_blockwise."""
    x = _contiguous(check_float32(x, "x"), "x")
    cdef _Map m = _map_for(code)
    cdef int64_t block = check_block_size(block_size)
    cdef int team = _threads(threads)
    cdef int64_t n = x.size
    q = np.empty(x.shape, dtype=np.uint8)
    absmax = np.empty((n + block - 1) // block, dtype=np.float32)
    if n == 0:
        return q, absmax
    cdef const float[::1] xs = x.reshape(-1)
    cdef uint8_t[::1] qs = q.reshape(-1)
    cdef float[::1] am = absmax
    with nogil:
        gd_q8_quantize(m.map, &xs[0], n, block, &qs[0], &am[0], team)
    return q, absmax


def dequantize_blockwise(q, absmax, code, block_size, *, threads=1):
    """(codes, absmax) → float32; see gdfast.formats.dequantize_blockwise."""
    q = _contiguous(check_uint(q, np.uint8, "q"), "q")
    absmax = _contiguous(check_float32(absmax, "absmax"), "absmax")
    cdef _Map m = _map_for(code)
    cdef int64_t block = check_block_size(block_size)
    cdef int team = _threads(threads)
    cdef int64_t n = q.size
    n_blocks = (n + block - 1) // block
    if absmax.shape != (n_blocks,):
        raise ValueError(
            f"absmax: expected shape ({n_blocks},) for {n} codes in blocks of {block}, "
            f"got {absmax.shape}"
        )
    out = np.empty(q.shape, dtype=np.float32)
    if n == 0:
        return out
    cdef const uint8_t[::1] qs = q.reshape(-1)
    cdef const float[::1] am = absmax
    cdef float[::1] os = out.reshape(-1)
    with nogil:
        gd_q8_dequantize(m.map, &qs[0], &am[0], n, block, &os[0], team)
    return out
