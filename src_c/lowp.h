/*
 * gdfast low-precision formats in C: the arithmetic of docs/spec-low-precision.md (SPEC L),
 * bit for bit what gdfast/formats.py (the NumPy reference) computes.
 *
 *   L.1/L.3  float32 <-> bfloat16 and IEEE float16, rounding to nearest even or stochastic;
 *   L.2      the counter-based generator of stochastic rounding (lowbias32 of the element
 *            index, keyed by splitmix64 of (seed, step, tensor, stream, index >> 32));
 *   L.4      8-bit blockwise quantization with a 256-value map (bitsandbytes' dynamic maps)
 *            and one absmax scale per block;
 *   L.6      large buffers on transparent huge pages.
 *
 * Everything here is `static inline`, branch-free integer and float arithmetic that gcc
 * vectorizes inside an `omp simd` loop on the baseline instruction set (no F16C, no AVX-512
 * BF16 needed: the results are defined by the integer formulas, so every clone and the scalar
 * tail agree).  Builds follow kernels.c's contract: no -ffast-math, -ffp-contract=off.
 *
 * A rule's span loop loads and stores through the macros:
 *     const float p = GD_LOAD_BF16(param, i);                 // bf16 -> float, exact
 *     GD_STORE_BF16(param, i, p_new);                          // nearest even
 *     GD_STORE_BF16_SR(param, i, p_new, key, (uint32_t)lo + (uint32_t)i); // stochastic,
 *                                                          // element lo + i (its index mod 2^32)
 * with `key = gd_random_key(seed, step, tensor, stream, (lo + i) >> 32)` computed once per span
 * (gd_span_within_key() says how far one key reaches).
 */
#ifndef GDFAST_LOWP_H
#define GDFAST_LOWP_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

/* Block sizes of 8-bit state are positive multiples of this (one AVX-512 vector of floats). */
#define GD_LOWP_SIMD_WIDTH 16

static inline uint32_t gd_f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float gd_bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- L.2 the generator ---------------------------------------------------------------- */

/* splitmix64's finalizer. */
static inline uint64_t gd_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

#define GD_GOLDEN64 UINT64_C(0x9E3779B97F4A7C15)

/* The 32-bit key of elements high * 2^32 ... high * 2^32 + 2^32 - 1 (scalar, once per span). */
static inline uint32_t gd_random_key(uint64_t seed, uint64_t step, uint64_t tensor,
                                     uint32_t stream, uint32_t high)
{
    uint64_t key = gd_mix64(seed + GD_GOLDEN64);
    key = gd_mix64((key ^ step) + GD_GOLDEN64);
    key = gd_mix64((key ^ tensor) + GD_GOLDEN64);
    key = gd_mix64((key ^ (((uint64_t)stream << 32) | high)) + GD_GOLDEN64);
    return (uint32_t)key;
}

/* Elements from `index` on that share its key: up to the next multiple of 2^32. */
static inline int64_t gd_span_within_key(int64_t index, int64_t len)
{
    const int64_t room = (int64_t)((UINT64_C(1) << 32) - ((uint64_t)index & 0xFFFFFFFFu));
    return len < room ? len : room;
}

/* Chris Wellons' lowbias32 integer hash: two multiplications, three xor-shifts. */
static inline uint32_t gd_lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= UINT32_C(0x7FEB352D);
    x ^= x >> 15;
    x *= UINT32_C(0x846CA68B);
    x ^= x >> 16;
    return x;
}

/* lowbias32(index ^ key) up to its last xor-shift, which leaves the top 16 bits as they are:
 * the word's top half, all a bfloat16 rounding uses (gd_f32_to_bf16_sr).  The first xor-shift
 * is taken apart, (index ^ key) ^ (index ^ key) >> 16 = (index ^ index >> 16) ^ (key ^ key >>
 * 16), so that in a span loop the key's half is hoisted out of the loop and the index's half is
 * shared by every stream rounded at that element.  `index`: the element's index mod 2^32,
 * `key` from gd_random_key(..., index >> 32). */
static inline uint32_t gd_random_top16(uint32_t key, uint32_t index)
{
    uint32_t x = (index ^ (index >> 16)) ^ (key ^ (key >> 16));
    x *= UINT32_C(0x7FEB352D);
    x ^= x >> 15;
    return x * UINT32_C(0x846CA68B);
}

/* The random word of an element (SPEC L.2): lowbias32(index ^ key), every bit. */
static inline uint32_t gd_random_bits(uint32_t key, uint32_t index)
{
    const uint32_t x = gd_random_top16(key, index);
    return x ^ (x >> 16);
}

/* ---- L.1/L.3 bfloat16 ------------------------------------------------------------------ */

static inline float gd_bf16_to_f32(uint16_t h) { return gd_bits_f32((uint32_t)h << 16); }

/* The rounded 32-bit pattern, or for a NaN the quiet one (sign and payload kept), shifted into
 * 16 bits once: one narrowing per store (the NaN test is a float comparison, one instruction). */
static inline uint16_t gd_bf16_finish(float x, uint32_t rounded)
{
    /* the NaN choice as a mask on 32-bit lanes (gcc otherwise narrows both candidates to 16
     * bits before choosing: two packs instead of one; 19% fewer instructions narrowing) */
    const uint32_t nan = (uint32_t)0 - (uint32_t)(x != x);
    return (uint16_t)((((gd_f32_bits(x) | 0x00400000u) & nan) | (rounded & ~nan)) >> 16);
}

static inline uint16_t gd_f32_to_bf16(float x)
{
    const uint32_t b = gd_f32_bits(x);
    return gd_bf16_finish(x, b + 0x7FFFu + ((b >> 16) & 1u));
}

/* Stochastic: the top 16 random bits added to the 16 dropped ones, then truncation (`random`:
 * the element's word, or gd_random_top16's, which has the same top 16 bits). */
static inline uint16_t gd_f32_to_bf16_sr(float x, uint32_t random)
{
    return gd_bf16_finish(x, gd_f32_bits(x) + (random >> 16));
}

/* ---- L.1/L.3 IEEE float16 -------------------------------------------------------------- */

static inline float gd_f16_to_f32(uint16_t h)
{
    const uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    const uint32_t exponent = ((uint32_t)h >> 10) & 0x1Fu;
    const uint32_t mantissa = (uint32_t)h & 0x3FFu;
    const uint32_t subnormal = gd_f32_bits((float)mantissa * 0x1p-24f); /* exact */
    const uint32_t normal = ((exponent + 112u) << 23) | (mantissa << 13);
    const uint32_t special = 0x7F800000u | (mantissa << 13);
    const uint32_t mag = exponent == 0 ? subnormal : exponent == 31 ? special : normal;
    return gd_bits_f32(mag | sign);
}

/* The cases every float16 rounding shares: subnormal results are computed by the caller. */
static inline uint16_t gd_f16_finish(uint32_t b, uint32_t normal, uint32_t subnormal)
{
    /* the choices as masks on 32-bit lanes (as gd_bf16_finish: gcc otherwise narrows some
     * candidates to 16 bits and then cannot vectorize the stochastic rounding's loop) */
    const uint32_t mag = b & 0x7FFFFFFFu;
    const uint32_t small = (uint32_t)0 - (mag < 0x38800000u);
    const uint32_t inf = (uint32_t)0 - (mag >= 0x47800000u);   /* |x| >= 2^16: inf */
    const uint32_t nan = (uint32_t)0 - (mag > 0x7F800000u);    /* NaN: quiet */
    uint32_t out = (subnormal & small) | (normal & ~small);
    out = (0x7C00u & inf) | (out & ~inf);
    out = ((0x7E00u | ((mag & 0x7FFFFFu) >> 13)) & nan) | (out & ~nan);
    return (uint16_t)(out | ((b >> 16) & 0x8000u));
}

static inline uint16_t gd_f32_to_f16(float x)
{
    const uint32_t b = gd_f32_bits(x);
    const uint32_t mag = b & 0x7FFFFFFFu;
    const uint32_t shifted = mag - (112u << 23);
    const uint32_t normal = (shifted + 0xFFFu + ((shifted >> 13) & 1u)) >> 13;
    /* |x| < 2^-14: |x| + 0.5 is rounded by the float addition (nearest even, the default
     * mode) to a multiple of 2^-24, float16's subnormal step, so its low bits are the rounded
     * result (1024 when it rounds up to 2^-14, the smallest normal: the right pattern).  Exact
     * where it matters even under DAZ/FTZ (a float32 subnormal rounds to 0 either way), and in
     * 32-bit lanes, so it vectorizes (tests/lowp_f16_exhaustive.c: the same bits as the
     * integer formula and as F16C's VCVTPS2PH for all 2^32 inputs). */
    const uint32_t subnormal = gd_f32_bits(gd_bits_f32(mag) + 0.5f) - 0x3F000000u;
    return gd_f16_finish(b, normal, subnormal);
}

/* Stochastic: the top s random bits added to the s dropped ones (s = 13 for normal results,
 * more for subnormal ones; a result that would drop more than 32 bits is 0).  In 32-bit lanes,
 * so it vectorizes: (M + added) >> d as ((M >> 1) + (added >> 1) + (M & added & 1)) >> (d - 1),
 * which cannot overflow (tests/lowp_f16_exhaustive.c: the same bits as SPEC L.3's 64-bit
 * formula). */
static inline uint16_t gd_f32_to_f16_sr(float x, uint32_t random)
{
    const uint32_t b = gd_f32_bits(x);
    const uint32_t mag = b & 0x7FFFFFFFu;
    const uint32_t normal = ((mag - (112u << 23)) + (random >> 19)) >> 13;
    /* the significand M in units of 2^-24 and the d bits it drops, for results below 2^-14
     * (14 <= d; other lanes' d is clamped into 1..32 only to keep the shifts defined) */
    const uint32_t exponent = mag >> 23;
    const uint32_t significand = exponent > 0 ? ((mag & 0x7FFFFFu) | 0x800000u) : (mag & 0x7FFFFFu);
    const uint32_t drop = 126u - (exponent > 0 ? exponent : 1u); /* wraps for normal results */
    const uint32_t d = drop - 1u < 32u ? drop : 32u;
    const uint32_t added = random >> (32u - d);
    const uint32_t sum_half = (significand >> 1) + (added >> 1) + (significand & added & 1u);
    /* a mask, not a choice: gcc leaves `drop > 32 ? 0 : ...` a branch, which stops the
     * loop vectorizing */
    const uint32_t subnormal = (sum_half >> (d - 1u)) & ((uint32_t)0 - (drop <= 32u));
    return gd_f16_finish(b, normal, subnormal);
}

/* ---- span-loop macros ------------------------------------------------------------------ */
#define GD_LOAD_BF16(p, i) gd_bf16_to_f32((p)[i])
#define GD_LOAD_F16(p, i) gd_f16_to_f32((p)[i])
#define GD_STORE_BF16(p, i, v) ((p)[i] = gd_f32_to_bf16(v))
#define GD_STORE_F16(p, i, v) ((p)[i] = gd_f32_to_f16(v))
/* `index`: the element's index in its tensor mod 2^32 (uint32_t: a span loop counts it in
 * 32-bit lanes), `key` that of its span. */
#define GD_STORE_BF16_SR(p, i, v, key, index) \
    ((p)[i] = gd_f32_to_bf16_sr((v), gd_random_top16((key), (index))))
#define GD_STORE_F16_SR(p, i, v, key, index) \
    ((p)[i] = gd_f32_to_f16_sr((v), gd_random_bits((key), (index))))

/* ---- L.4 8-bit blockwise quantization --------------------------------------------------- */

/* Encoding looks the code up by the top bits of y = x / absmax: a bucket is one binade of
 * |y| between 2^-24 and 1 cut into 2^GD_Q8_BUCKET_BITS equal parts (plus a sign), small
 * enough that it holds at most one midpoint of the dynamic maps (gd_q8_map_init checks);
 * the bucket gives the lowest code of its values and one comparison with the midpoint
 * above that code finishes the job.  |y| below 2^-24 (no midpoint there) and above 1 are
 * clamped into the first and last bucket. */
#define GD_Q8_BUCKET_BITS 8
#define GD_Q8_MAG_LO UINT32_C(0x33800000) /* 2^-24 */
#define GD_Q8_MAG_HI UINT32_C(0x3F800000) /* 1.0 */
#define GD_Q8_SIDE ((int)((GD_Q8_MAG_HI - GD_Q8_MAG_LO) >> (23 - GD_Q8_BUCKET_BITS)) + 1)
#define GD_Q8_BUCKETS (2 * GD_Q8_SIDE)

typedef struct {
    float code[256];
    float mid[256];               /* mid[j] = fl32(fl32(code[j] + code[j+1]) * 0.5); mid[255] = inf */
    uint8_t code_byte[4][256];    /* byte b of code[j] and of mid[j]: byte-table look-ups */
    uint8_t mid_byte[4][256];     /* (q8_simd.h) */
    /* The buckets again, each binade of |y| cut into just enough equal parts (at most 256)
     * for one midpoint a part, all of them in 512 entries (q8_simd.h's byte-table encoder):
     * binade e of side s starts at fine[binade[s][e] & 0xFFFF], its parts are
     * (mantissa >> (binade[s][e] >> 16)); fine_ok = 0 when the map does not fit. */
    uint8_t fine[512];
    int32_t binade[2][32];
    int fine_ok;
    /* The same per binade for the encoder on the top 16 bits of y (q8_simd.h): entry
     * e + 32 * side = start | (shift - 16) << 9; fine16_ok when every shift is >= 16, so that
     * the parts depend on those bits alone (the dynamic maps' finest binade has 128 parts). */
    uint16_t binade16[64];
    int fine16_ok;
    /* The lowest code of each bucket; 3 bytes of padding so that a vector gather of 32-bit
     * words at byte offsets (q8_simd.h) stays inside the table. */
    uint8_t bucket[GD_Q8_BUCKETS + 3];
    /* The same codes j with the bits of mid[j] above them (j | mid_bits << 32): the AVX2
     * encoder's one 64-bit load a value where a code and then its midpoint took two
     * dependent 32-bit gathers. */
    uint64_t bucket_mid[GD_Q8_BUCKETS];
} gd_q8_map;

static inline int gd_q8_bucket_of(float y)
{
    const uint32_t b = gd_f32_bits(y);
    uint32_t mag = b & 0x7FFFFFFFu;
    mag = mag < GD_Q8_MAG_LO ? GD_Q8_MAG_LO : mag;
    mag = mag > GD_Q8_MAG_HI ? GD_Q8_MAG_HI : mag;
    return (int)((mag - GD_Q8_MAG_LO) >> (23 - GD_Q8_BUCKET_BITS)) + ((b >> 31) ? GD_Q8_SIDE : 0);
}

/* The reference's definition, for building the table: #{ j : mid[j] < y }. */
static inline int gd_q8_count_below(const float *mid, float y)
{
    int lo = 0, hi = 255; /* answer in [lo, hi] */
    while (lo < hi) {
        const int m = (lo + hi) / 2;
        if (mid[m] < y) lo = m + 1;
        else hi = m;
    }
    return lo;
}

/* The lowest code of part k of binade e (2^-24 · 2^e ... ; e = 24: 1 and above) cut into 2^bits
 * parts on side `side` (1: negative y), and whether the part holds at most one midpoint. */
static inline int gd_q8_part(const gd_q8_map *map, int side, int e, int bits, int k, int *fits)
{
    const uint32_t width = UINT32_C(1) << (23 - bits);
    const uint32_t first = GD_Q8_MAG_LO + ((uint32_t)e << 23) + (uint32_t)k * width;
    const float small = e == 0 && k == 0 ? 0.0f : gd_bits_f32(first);
    const float large = e == 24 ? INFINITY : gd_bits_f32(first + width - 1);
    const float a = side ? -large : small, b = side ? -small : large;
    const int qa = gd_q8_count_below(map->mid, a), qb = gd_q8_count_below(map->mid, b);
    *fits = qb - qa <= 1;
    return qa;
}

static inline void gd_q8_fine_init(gd_q8_map *map)
{
    int used = 0, fits;
    memset(map->binade, 0, sizeof map->binade);
    for (int side = 0; side < 2; side++) {
        for (int e = 0; e <= 24; e++) {
            int bits = 0;
            for (; bits <= 8; bits++) {
                int all = 1;
                for (int k = 0; k < (1 << bits) && all; k++)
                    (void)gd_q8_part(map, side, e, bits, k, &all);
                if (all) break;
            }
            if (bits > 8 || used + (1 << bits) > 512) {
                map->fine_ok = map->fine16_ok = 0;
                return;
            }
            map->binade[side][e] = used | ((23 - bits) << 16);
            for (int k = 0; k < (1 << bits); k++)
                map->fine[used + k] = (uint8_t)gd_q8_part(map, side, e, bits, k, &fits);
            used += 1 << bits;
        }
    }
    map->fine_ok = 1;
    map->fine16_ok = 1;
    memset(map->binade16, 0, sizeof map->binade16);
    for (int side = 0; side < 2; side++) {
        for (int e = 0; e <= 24; e++) {
            const int shift = map->binade[side][e] >> 16, start = map->binade[side][e] & 0xFFFF;
            if (shift < 16) map->fine16_ok = 0;
            else map->binade16[32 * side + e] = (uint16_t)(start | (shift - 16) << 9);
        }
    }
}

/* Fills `map` from 256 strictly increasing finite values; returns 0, or -1 when a bucket
 * would hold two midpoints (a map too fine for GD_Q8_BUCKET_BITS). */
static inline int gd_q8_map_init(gd_q8_map *map, const float *code)
{
    for (int j = 0; j < 256; j++) map->code[j] = code[j];
    for (int j = 0; j < 255; j++) map->mid[j] = (code[j] + code[j + 1]) * 0.5f;
    map->mid[255] = INFINITY;
    for (int j = 0; j < 256; j++) {
        for (int b = 0; b < 4; b++) {
            map->code_byte[b][j] = (uint8_t)(gd_f32_bits(map->code[j]) >> (8 * b));
            map->mid_byte[b][j] = (uint8_t)(gd_f32_bits(map->mid[j]) >> (8 * b));
        }
    }
    const uint32_t width = UINT32_C(1) << (23 - GD_Q8_BUCKET_BITS);
    for (int side = 0; side < 2; side++) {
        for (int k = 0; k < GD_Q8_SIDE; k++) {
            /* The bucket's extreme magnitudes, clamping included. */
            const uint32_t first = GD_Q8_MAG_LO + (uint32_t)k * width;
            const float small = k == 0 ? 0.0f : gd_bits_f32(first);
            const float large = k == GD_Q8_SIDE - 1 ? INFINITY : gd_bits_f32(first + width - 1);
            const float a = side ? -large : small, b = side ? -small : large;
            const int qa = gd_q8_count_below(map->mid, a), qb = gd_q8_count_below(map->mid, b);
            if (qb - qa > 1) return -1;
            map->bucket[side * GD_Q8_SIDE + k] = (uint8_t)qa;
            map->bucket_mid[side * GD_Q8_SIDE + k] =
                (uint64_t)qa | (uint64_t)gd_f32_bits(map->mid[qa]) << 32;
        }
    }
    memset(map->bucket + GD_Q8_BUCKETS, 0, 3);
    gd_q8_fine_init(map);
    return 0;
}

/* y: finite or ±inf, not NaN (the callers replace NaN by 0). */
static inline uint8_t gd_q8_encode(const gd_q8_map *map, float y)
{
    const int j = map->bucket[gd_q8_bucket_of(y)];
    return (uint8_t)(j + (y > map->mid[j]));
}

static inline float gd_q8_decode(const gd_q8_map *map, uint8_t q, float absmax)
{
    return map->code[q] * absmax;
}

/* max |x[i]|, or the default NaN when a NaN is among them.  On the bit patterns: without
 * their sign, non-NaN floats order as their patterns do and every NaN's pattern is above
 * infinity's, so one unsigned maximum finds both (a float max needs a separate NaN test,
 * and its longer latency made the absmax half of an 8-bit encode's time). */
static inline float gd_q8_absmax_of_bits(uint32_t largest)
{
    return largest > 0x7F800000u ? gd_bits_f32(0x7FC00000u) : gd_bits_f32(largest);
}

static inline float gd_q8_absmax(const float *x, int64_t n)
{
    uint32_t largest = 0;
#pragma omp simd reduction(max : largest)
    for (int64_t i = 0; i < n; i++) {
        const uint32_t a = gd_f32_bits(x[i]) & 0x7FFFFFFFu;
        largest = a > largest ? a : largest;
    }
    return gd_q8_absmax_of_bits(largest);
}

/* One block: q[i] = encode(x[i] * fl32(1 / absmax)), NaN products encoded as 0. */
static inline float gd_q8_quantize_block(const gd_q8_map *map, const float *restrict x, int64_t n,
                                         uint8_t *restrict q)
{
    const float absmax = gd_q8_absmax(x, n);
    const float inverse = 1.0f / absmax;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float y = x[i] * inverse;
        q[i] = gd_q8_encode(map, y == y ? y : 0.0f);
    }
    return absmax;
}

static inline void gd_q8_dequantize_block(const gd_q8_map *map, const uint8_t *restrict q, int64_t n,
                                          float absmax, float *restrict x)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) x[i] = gd_q8_decode(map, q[i], absmax);
}

/* The same, vectorised by hand (AVX-512 / AVX2 gathers, runtime dispatch), over whole runs
 * of blocks: gd_q8_load_blocks, gd_q8_store_blocks. */
#include "q8_simd.h"

/* ---- L.6 huge pages --------------------------------------------------------------------- */

/* Buffers of at least this many bytes are given transparent huge pages (2 MiB aligned). */
#define GD_HUGE_PAGE ((size_t)2 << 20)

/* Zeroed memory for a state buffer; `huge`: align to 2 MiB and madvise(MADV_HUGEPAGE) when
 * the buffer spans at least one huge page.  Free with free().  NULL when out of memory. */
static inline void *gd_alloc_state(size_t bytes, int huge)
{
    void *p = NULL;
    if (huge && bytes >= GD_HUGE_PAGE) {
        const size_t rounded = (bytes + GD_HUGE_PAGE - 1) / GD_HUGE_PAGE * GD_HUGE_PAGE;
        p = aligned_alloc(GD_HUGE_PAGE, rounded);
        if (p == NULL) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice: refused is fine */
#endif
        memset(p, 0, bytes);
        return p;
    }
    p = aligned_alloc(64, (bytes + 63) / 64 * 64 + (bytes == 0 ? 64 : 0));
    if (p == NULL) return NULL;
    memset(p, 0, bytes);
    return p;
}

#endif /* GDFAST_LOWP_H */
