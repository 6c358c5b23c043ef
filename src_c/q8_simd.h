/*
 * 8-bit blockwise encode and decode (SPEC L.4) over runs of whole blocks, with the table
 * look-ups written out (byte permutations with VBMI, gathers on other AVX-512 CPUs, scalar
 * loads put together on AVX2): gcc's own vectorization of lowp.h's `omp simd` loops extracts
 * every lane one by one, which made 8-bit state the slowest layout.
 *
 * Three versions of each, chosen at run time (gd_q8_simd_level): AVX-512 (F+BW+VL), AVX2,
 * and lowp.h's portable block functions.  Every version computes the same integer and float32
 * operations (one product per element, a compare, a table look-up), so the three give the
 * same bits; tests/test_lowp_q8_simd.py runs each of them (GDFAST_Q8_SIMD=avx2|portable
 * lowers the level, for those tests) against the NumPy reference.
 * Included by lowp.h after the L.4 block functions.
 */
#ifndef GDFAST_Q8_SIMD_H
#define GDFAST_Q8_SIMD_H

#if defined(__GNUC__) && defined(__x86_64__) && !defined(GD_NO_CLONES)
#define GD_Q8_X86 1
#include <immintrin.h>
#else
#define GD_Q8_X86 0
#endif

enum { GD_Q8_PORTABLE = 0, GD_Q8_AVX2 = 1, GD_Q8_AVX512 = 2, GD_Q8_AVX512_VBMI = 3 };

/* The best level this CPU runs, lowered by the environment variable GDFAST_Q8_SIMD
 * ("portable", "avx2", "avx512": without VBMI); decided once per process (per translation unit). */
static inline int gd_q8_simd_level(void)
{
    static int level = -1;
    int known = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (known >= 0) return known;
    known = GD_Q8_PORTABLE;
#if GD_Q8_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) known = GD_Q8_AVX2;
    if (known == GD_Q8_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        known = GD_Q8_AVX512;
    if (known == GD_Q8_AVX512 && __builtin_cpu_supports("avx512vbmi")) known = GD_Q8_AVX512_VBMI;
#endif
    const char *wanted = getenv("GDFAST_Q8_SIMD");
    if (wanted != NULL && strcmp(wanted, "portable") == 0) known = GD_Q8_PORTABLE;
    if (wanted != NULL && strcmp(wanted, "avx2") == 0 && known > GD_Q8_AVX2) known = GD_Q8_AVX2;
    if (wanted != NULL && strcmp(wanted, "avx512") == 0 && known > GD_Q8_AVX512)
        known = GD_Q8_AVX512;
    __atomic_store_n(&level, known, __ATOMIC_RELAXED);
    return known;
}

#if GD_Q8_X86

#define GD_Q8_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl"), unused))
#define GD_Q8_TARGET_AVX2 __attribute__((target("avx2"), unused))

/* gd_q8_absmax (lowp.h) written out: the unsigned maximum of the patterns without sign, in
 * four accumulators.  gcc leaves lowp.h's `omp simd` reduction scalar when it is inlined into
 * the runs-of-blocks functions below. */
GD_Q8_TARGET_AVX512 static float gd_q8_absmax_avx512(const float *x, int64_t n)
{
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i largest[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int a = 0; a < 4; a++)
            largest[a] = _mm512_max_epu32(
                largest[a], _mm512_and_si512(_mm512_loadu_si512(x + i + 16 * a), abs_mask));
    for (; i < n; i += 16) {
        const __mmask16 lanes = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        largest[0] = _mm512_max_epu32(
            largest[0], _mm512_and_si512(_mm512_maskz_loadu_epi32(lanes, x + i), abs_mask));
    }
    return gd_q8_absmax_of_bits(_mm512_reduce_max_epu32(_mm512_max_epu32(
        _mm512_max_epu32(largest[0], largest[1]), _mm512_max_epu32(largest[2], largest[3]))));
}

GD_Q8_TARGET_AVX2 static float gd_q8_absmax_avx2(const float *x, int64_t n)
{
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    __m256i largest[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int a = 0; a < 4; a++)
            largest[a] = _mm256_max_epu32(
                largest[a],
                _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(x + i + 8 * a)),
                                 abs_mask));
    __m256i all = _mm256_max_epu32(_mm256_max_epu32(largest[0], largest[1]),
                                   _mm256_max_epu32(largest[2], largest[3]));
    __m128i half = _mm_max_epu32(_mm256_castsi256_si128(all), _mm256_extracti128_si256(all, 1));
    half = _mm_max_epu32(half, _mm_shuffle_epi32(half, 0x4E));
    half = _mm_max_epu32(half, _mm_shuffle_epi32(half, 0xB1));
    uint32_t top = (uint32_t)_mm_cvtsi128_si32(half);
    for (; i < n; i++) {
        const uint32_t a = gd_f32_bits(x[i]) & 0x7FFFFFFFu;
        top = a > top ? a : top;
    }
    return gd_q8_absmax_of_bits(top);
}

/* ---- AVX-512: 16 elements a vector, the block's tail under a mask ---------------------- */

GD_Q8_TARGET_AVX512 static void gd_q8_encode_block_avx512(const gd_q8_map *map,
                                                          const float *restrict x, int64_t n,
                                                          float absmax, uint8_t *restrict q)
{
    const __m512 inverse = _mm512_set1_ps(1.0f / absmax);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), lo = _mm512_set1_epi32(GD_Q8_MAG_LO),
                  hi = _mm512_set1_epi32(GD_Q8_MAG_HI), side = _mm512_set1_epi32(GD_Q8_SIDE),
                  low_byte = _mm512_set1_epi32(0xFF), one = _mm512_set1_epi32(1);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 lanes = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x + i), inverse);
        y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, y, _CMP_ORD_Q), y); /* NaN -> +0 */
        const __m512i bits = _mm512_castps_si512(y);
        __m512i mag = _mm512_and_si512(bits, abs_mask);
        mag = _mm512_min_epi32(_mm512_max_epi32(mag, lo), hi);
        const __m512i bucket = _mm512_add_epi32(
            _mm512_srli_epi32(_mm512_sub_epi32(mag, lo), 23 - GD_Q8_BUCKET_BITS),
            _mm512_and_si512(_mm512_srai_epi32(bits, 31), side));
        const __m512i first = _mm512_i32gather_epi32(bucket, (const void *)map->bucket, 1);
        __m512i code = _mm512_and_si512(first, low_byte);
        const __m512 mid = _mm512_i32gather_ps(code, map->mid, 4);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(y, mid, _CMP_GT_OQ), code, one);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, lanes, code);
    }
}

GD_Q8_TARGET_AVX512 static void gd_q8_dequantize_block_avx512(const gd_q8_map *map,
                                                              const uint8_t *restrict q, int64_t n,
                                                              float absmax, float *restrict x)
{
    const __m512 scale = _mm512_set1_ps(absmax);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 lanes = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512i code = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lanes, q + i));
        _mm512_mask_storeu_ps(x + i, lanes,
                              _mm512_mul_ps(_mm512_i32gather_ps(code, map->code, 4), scale));
    }
}

/* ---- AVX-512 VBMI: 64 elements a step, table look-ups by byte permutations ------------ */

#define GD_Q8_TARGET_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi"), unused))

/* Byte b of table[q] for 64 codes q at once: two 128-entry byte permutations (q's low 7 bits)
 * and a blend on q's top bit. */
GD_Q8_TARGET_VBMI static inline __m512i gd_q8_table_byte_vbmi(const uint8_t *table, __m512i q,
                                                              __mmask64 top)
{
    const __m512i low = _mm512_permutex2var_epi8(_mm512_loadu_si512(table), q,
                                                 _mm512_loadu_si512(table + 64));
    const __m512i high = _mm512_permutex2var_epi8(_mm512_loadu_si512(table + 128), q,
                                                  _mm512_loadu_si512(table + 192));
    return _mm512_mask_blend_epi8(top, low, high);
}

/* The order the byte-plane look-up takes its 64 codes in: byte 16l + 4g + r holds code
 * 16g + 4l + r (l, g, r = 0 ... 3).  The plane bytes become float32 through in-lane unpacks
 * (unpack g gets bytes 4g ... 4g + 3 of each 128-bit lane l), so in this order unpack g holds
 * codes 16g ... 16g + 15 in order.  The permutation is its own inverse; two unsigned packs of
 * four dword vectors (16g + 4l + r: vector g, lane l, dword r) give bytes in this order too. */
static const uint8_t gd_q8_lookup_order[64] __attribute__((aligned(64))) = {
    0,  1,  2,  3,  16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51,
    4,  5,  6,  7,  20, 21, 22, 23, 36, 37, 38, 39, 52, 53, 54, 55,
    8,  9,  10, 11, 24, 25, 26, 27, 40, 41, 42, 43, 56, 57, 58, 59,
    12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46, 47, 60, 61, 62, 63};

/* out[g] = table[code 16g + r], r = 0 ... 15, for 64 codes given in gd_q8_lookup_order: a
 * 256-entry float32 table given as its four byte planes (gd_q8_map's code_byte, mid_byte),
 * looked up without a gather. */
GD_Q8_TARGET_VBMI static inline void gd_q8_lookup_ordered_vbmi(const uint8_t (*planes)[256],
                                                               __m512i codes, __m512 out[4])
{
    const __mmask64 top = _mm512_movepi8_mask(codes);
    const __m512i b0 = gd_q8_table_byte_vbmi(planes[0], codes, top),
                  b1 = gd_q8_table_byte_vbmi(planes[1], codes, top),
                  b2 = gd_q8_table_byte_vbmi(planes[2], codes, top),
                  b3 = gd_q8_table_byte_vbmi(planes[3], codes, top);
    const __m512i low01 = _mm512_unpacklo_epi8(b0, b1), high01 = _mm512_unpackhi_epi8(b0, b1),
                  low23 = _mm512_unpacklo_epi8(b2, b3), high23 = _mm512_unpackhi_epi8(b2, b3);
    out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(low01, low23));
    out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(low01, low23));
    out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(high01, high23));
    out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(high01, high23));
}

/* The same for 64 codes in their own order. */
GD_Q8_TARGET_VBMI static inline void gd_q8_lookup_vbmi(const uint8_t (*planes)[256], __m512i q,
                                                       __m512 out[4])
{
    const __m512i order = _mm512_load_si512((const void *)gd_q8_lookup_order);
    gd_q8_lookup_ordered_vbmi(planes, _mm512_permutexvar_epi8(order, q), out);
}

GD_Q8_TARGET_VBMI static void gd_q8_dequantize_block_vbmi(const gd_q8_map *map,
                                                          const uint8_t *restrict q, int64_t n,
                                                          float absmax, float *restrict x)
{
    const __m512 scale = _mm512_set1_ps(absmax);
    for (int64_t i = 0; i < n; i += 64) {
        const __mmask64 lanes = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        __m512 code[4];
        gd_q8_lookup_vbmi(map->code_byte, _mm512_maskz_loadu_epi8(lanes, q + i), code);
        for (int g = 0; g < 4; g++) {
            const __mmask16 part = (__mmask16)(lanes >> (16 * g));
            _mm512_mask_storeu_ps(x + i + 16 * g, part, _mm512_mul_ps(code[g], scale));
        }
    }
}

/* The encoder's constant permutations: word 2j + 1 of two vectors (the top halves of their
 * 32 floats, in order); bytes 2e and 2e + 1 of two vectors of 32 words for e =
 * gd_q8_lookup_order[p] (word e's low and high byte, in the look-up order). */
static const uint16_t gd_q8_top_halves[32] __attribute__((aligned(64))) = {
      1,   3,   5,   7,   9,  11,  13,  15,  17,  19,  21,  23,  25,  27,  29,  31,
     33,  35,  37,  39,  41,  43,  45,  47,  49,  51,  53,  55,  57,  59,  61,  63};
static const uint8_t gd_q8_low_bytes_ordered[64] __attribute__((aligned(64))) = {
      0,   2,   4,   6,  32,  34,  36,  38,  64,  66,  68,  70,  96,  98, 100, 102,
      8,  10,  12,  14,  40,  42,  44,  46,  72,  74,  76,  78, 104, 106, 108, 110,
     16,  18,  20,  22,  48,  50,  52,  54,  80,  82,  84,  86, 112, 114, 116, 118,
     24,  26,  28,  30,  56,  58,  60,  62,  88,  90,  92,  94, 120, 122, 124, 126};
static const uint8_t gd_q8_high_bytes_ordered[64] __attribute__((aligned(64))) = {
      1,   3,   5,   7,  33,  35,  37,  39,  65,  67,  69,  71,  97,  99, 101, 103,
      9,  11,  13,  15,  41,  43,  45,  47,  73,  75,  77,  79, 105, 107, 109, 111,
     17,  19,  21,  23,  49,  51,  53,  55,  81,  83,  85,  87, 113, 115, 117, 119,
     25,  27,  29,  31,  57,  59,  61,  63,  89,  91,  93,  95, 121, 123, 125, 127};

/* The encoder with no gather: the bucket from gd_q8_map's `fine` table (its binade's start
 * and width by a word permutation, the part's code by byte permutations), the midpoint
 * above it from byte tables.  The part is found from the top 16 bits of y alone, 32 lanes a
 * vector (the maps it takes have fine16_ok: no binade cut finer than its top 7 mantissa
 * bits; the clamps to [2^-24, 1] give the same parts on 16 bits as on 32).  Same integer and
 * float32 operations as lowp.h's encoder, so the same codes (tests/test_lowp_q8_simd.py). */
GD_Q8_TARGET_VBMI static void gd_q8_encode_block_vbmi(const gd_q8_map *map,
                                                      const float *restrict x, int64_t n,
                                                      float absmax, uint8_t *restrict q)
{
    const float inverse_1 = 1.0f / absmax;
    const __m512 inverse = _mm512_set1_ps(inverse_1);
    /* y = x / absmax is NaN only where x is, or with a zero, infinite or NaN absmax, or one
     * whose inverse is infinite (0 · ∞): otherwise the NaN test is skipped */
    const int clean = isfinite(absmax) && isfinite(inverse_1);
    const __m512i abs_mask = _mm512_set1_epi16(0x7FFF),
                  lo = _mm512_set1_epi16((short)(GD_Q8_MAG_LO >> 16)),
                  hi = _mm512_set1_epi16((short)(GD_Q8_MAG_HI >> 16)),
                  mantissa = _mm512_set1_epi16(0x7F), start_mask = _mm512_set1_epi16(0x1FF),
                  side_bit = _mm512_set1_epi16(32);
    const __m512i binade_lo = _mm512_loadu_si512(map->binade16),
                  binade_hi = _mm512_loadu_si512(map->binade16 + 32);
    __m512i fine[8];
    for (int t = 0; t < 8; t++) fine[t] = _mm512_loadu_si512(map->fine + 64 * t);
    const __m512i top_half = _mm512_load_si512((const void *)gd_q8_top_halves),
                  low_of_word = _mm512_load_si512((const void *)gd_q8_low_bytes_ordered),
                  high_of_word = _mm512_load_si512((const void *)gd_q8_high_bytes_ordered),
                  order = _mm512_load_si512((const void *)gd_q8_lookup_order);
    for (int64_t i = 0; i < n; i += 64) {
        const __mmask64 lanes = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        __m512 y[4], mid[4];
        for (int g = 0; g < 4; g++) {
            const __mmask16 part = (__mmask16)(lanes >> (16 * g));
            y[g] = _mm512_mul_ps(_mm512_maskz_loadu_ps(part, x + i + 16 * g), inverse);
            if (!clean) /* NaN -> +0 */
                y[g] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y[g], y[g], _CMP_ORD_Q), y[g]);
        }
        __m512i index[2]; /* elements 32h ... 32h + 31: the 9-bit index of their part */
        for (int h = 0; h < 2; h++) {
            const __m512i top = _mm512_permutex2var_epi16(_mm512_castps_si512(y[2 * h]), top_half,
                                                          _mm512_castps_si512(y[2 * h + 1]));
            __m512i mag = _mm512_and_si512(top, abs_mask);
            mag = _mm512_min_epu16(_mm512_max_epu16(mag, lo), hi);
            const __m512i binade = _mm512_srli_epi16(_mm512_sub_epi16(mag, lo), 7);
            /* binade + 32 * sign: (top >> 10) & 32 | binade */
            const __m512i entry = _mm512_ternarylogic_epi32(_mm512_srli_epi16(top, 10), side_bit,
                                                            binade, 0xEA);
            const __m512i start = _mm512_permutex2var_epi16(binade_lo, entry, binade_hi);
            index[h] = _mm512_add_epi16(
                _mm512_and_si512(start, start_mask),
                _mm512_srlv_epi16(_mm512_and_si512(mag, mantissa), _mm512_srli_epi16(start, 9)));
        }
        const __m512i index_bytes = _mm512_permutex2var_epi8(index[0], low_of_word, index[1]);
        const __m512i ninth_bytes = _mm512_permutex2var_epi8(index[0], high_of_word, index[1]);
        const __mmask64 ninth = _mm512_test_epi8_mask(ninth_bytes, ninth_bytes);
        const __mmask64 eighth = _mm512_movepi8_mask(index_bytes);
        const __m512i low = _mm512_mask_blend_epi8(
            eighth, _mm512_permutex2var_epi8(fine[0], index_bytes, fine[1]),
            _mm512_permutex2var_epi8(fine[2], index_bytes, fine[3]));
        const __m512i upper = _mm512_mask_blend_epi8(
            eighth, _mm512_permutex2var_epi8(fine[4], index_bytes, fine[5]),
            _mm512_permutex2var_epi8(fine[6], index_bytes, fine[7]));
        const __m512i ordered = _mm512_mask_blend_epi8(ninth, low, upper);
        gd_q8_lookup_ordered_vbmi(map->mid_byte, ordered, mid);
        __mmask16 above[4];
        for (int g = 0; g < 4; g++) above[g] = _mm512_cmp_ps_mask(y[g], mid[g], _CMP_GT_OQ);
        const __mmask64 up = _mm512_kunpackd((__mmask64)_mm512_kunpackw(above[3], above[2]),
                                             (__mmask64)_mm512_kunpackw(above[1], above[0]));
        const __m512i codes = _mm512_permutexvar_epi8(order, ordered); /* back to element order */
        _mm512_mask_storeu_epi8(q + i, lanes,
                                _mm512_mask_add_epi8(codes, up, codes, _mm512_set1_epi8(1)));
    }
}

/* ---- AVX2: 8 elements a vector, the block's tail through lowp.h's scalar encode -------- */

/* The table look-ups here are eight scalar loads put together (_mm256_setr_*), not vector
 * gathers: AMD's cores run gathers as microcode, and on this EPYC eight loads took 0.16 ns a
 * value against a gather's 0.41 (decode), 0.18 against 0.33 for the 64-bit (code, midpoint)
 * pairs; Adam 1e7 with 8-bit state at this level 27.5 -> 17.5 ms.  (Intel's gathers are
 * faster; there the loads may cost a little.) */

GD_Q8_TARGET_AVX2 static void gd_q8_encode_block_avx2(const gd_q8_map *map,
                                                      const float *restrict x, int64_t n,
                                                      float absmax, uint8_t *restrict q)
{
    const float inverse_1 = 1.0f / absmax;
    const __m256 inverse = _mm256_set1_ps(inverse_1);
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), lo = _mm256_set1_epi32(GD_Q8_MAG_LO),
                  hi = _mm256_set1_epi32(GD_Q8_MAG_HI), side = _mm256_set1_epi32(GD_Q8_SIDE);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), inverse);
        y = _mm256_and_ps(y, _mm256_cmp_ps(y, y, _CMP_ORD_Q)); /* NaN -> +0 */
        const __m256i bits = _mm256_castps_si256(y);
        __m256i mag = _mm256_and_si256(bits, abs_mask);
        mag = _mm256_min_epi32(_mm256_max_epi32(mag, lo), hi);
        const __m256i bucket = _mm256_add_epi32(
            _mm256_srli_epi32(_mm256_sub_epi32(mag, lo), 23 - GD_Q8_BUCKET_BITS),
            _mm256_and_si256(_mm256_srai_epi32(bits, 31), side));
        /* each value's (code, midpoint) pair, elements 0-3 and 4-7, then the codes (low
         * words) and midpoints (high words) apart and back in element order */
        int32_t at[8] __attribute__((aligned(32)));
        _mm256_store_si256((__m256i *)(void *)at, bucket);
        const uint64_t *pairs = map->bucket_mid;
        const __m256 first = _mm256_castsi256_ps(_mm256_setr_epi64x(
                         (long long)pairs[at[0]], (long long)pairs[at[1]], (long long)pairs[at[2]],
                         (long long)pairs[at[3]])),
                     last = _mm256_castsi256_ps(_mm256_setr_epi64x(
                         (long long)pairs[at[4]], (long long)pairs[at[5]], (long long)pairs[at[6]],
                         (long long)pairs[at[7]]));
        __m256i code = _mm256_permute4x64_epi64(
            _mm256_castps_si256(_mm256_shuffle_ps(first, last, _MM_SHUFFLE(2, 0, 2, 0))),
            _MM_SHUFFLE(3, 1, 2, 0));
        const __m256 mid = _mm256_castsi256_ps(_mm256_permute4x64_epi64(
            _mm256_castps_si256(_mm256_shuffle_ps(first, last, _MM_SHUFFLE(3, 1, 3, 1))),
            _MM_SHUFFLE(3, 1, 2, 0)));
        /* y > mid: all ones (-1) in that lane, so subtracting it adds 1 */
        code = _mm256_sub_epi32(code, _mm256_castps_si256(_mm256_cmp_ps(y, mid, _CMP_GT_OQ)));
        const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(code),
                                               _mm256_extracti128_si256(code, 1));
        _mm_storel_epi64((__m128i *)(void *)(q + i), _mm_packus_epi16(words, words));
    }
    for (; i < n; i++) {
        const float y = x[i] * inverse_1;
        q[i] = gd_q8_encode(map, y == y ? y : 0.0f);
    }
}

GD_Q8_TARGET_AVX2 static void gd_q8_dequantize_block_avx2(const gd_q8_map *map,
                                                          const uint8_t *restrict q, int64_t n,
                                                          float absmax, float *restrict x)
{
    const __m256 scale = _mm256_set1_ps(absmax);
    const float *code = map->code; /* eight loads: faster than a gather here (above) */
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 value = _mm256_setr_ps(code[q[i]], code[q[i + 1]], code[q[i + 2]],
                                            code[q[i + 3]], code[q[i + 4]], code[q[i + 5]],
                                            code[q[i + 6]], code[q[i + 7]]);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(value, scale));
    }
    for (; i < n; i++) x[i] = gd_q8_decode(map, q[i], absmax);
}

/* gd_q8_load_<isa> and gd_q8_store_<isa>: a run of whole blocks (the last may be shorter)
 * through that instruction set's block functions. */
#define GD_Q8_RUNS_OF_BLOCKS(isa, absmax_isa, target)                                            \
    target static void gd_q8_load_##isa(const gd_q8_map *map, const uint8_t *restrict q,         \
                                        const float *restrict absmax, int64_t n, int64_t block,  \
                                        float *restrict out)                                     \
    {                                                                                            \
        for (int64_t b = 0; b < n; b += block)                                                   \
            gd_q8_dequantize_block_##isa(map, q + b, n - b < block ? n - b : block,              \
                                         absmax[b / block], out + b);                            \
    }                                                                                            \
    target static void gd_q8_store_##isa(const gd_q8_map *map, const float *restrict x,          \
                                         int64_t n, int64_t block, uint8_t *restrict q,          \
                                         float *restrict absmax)                                 \
    {                                                                                            \
        /* every block's scale first: no block's codes then wait for its own maximum */          \
        for (int64_t b = 0; b < n; b += block)                                                   \
            absmax[b / block] = gd_q8_absmax_##absmax_isa(x + b, n - b < block ? n - b : block); \
        for (int64_t b = 0; b < n; b += block)                                                   \
            gd_q8_encode_block_##isa(map, x + b, n - b < block ? n - b : block,                  \
                                     absmax[b / block], q + b);                                  \
    }
GD_Q8_RUNS_OF_BLOCKS(avx512, avx512, GD_Q8_TARGET_AVX512)
GD_Q8_RUNS_OF_BLOCKS(vbmi, avx512, GD_Q8_TARGET_VBMI)
GD_Q8_RUNS_OF_BLOCKS(avx2, avx2, GD_Q8_TARGET_AVX2)

#endif /* GD_Q8_X86 */

/* ---- the entry points: n values in whole blocks of `block` (the last may be shorter) ---- */

static inline void gd_q8_load_blocks(const gd_q8_map *map, const uint8_t *restrict q,
                                     const float *restrict absmax, int64_t n, int64_t block,
                                     float *restrict out)
{
#if GD_Q8_X86
    const int level = gd_q8_simd_level();
    if (level == GD_Q8_AVX512_VBMI) {
        gd_q8_load_vbmi(map, q, absmax, n, block, out);
        return;
    }
    if (level == GD_Q8_AVX512) {
        gd_q8_load_avx512(map, q, absmax, n, block, out);
        return;
    }
    if (level == GD_Q8_AVX2) {
        gd_q8_load_avx2(map, q, absmax, n, block, out);
        return;
    }
#endif
    for (int64_t b = 0; b < n; b += block)
        gd_q8_dequantize_block(map, q + b, n - b < block ? n - b : block, absmax[b / block],
                               out + b);
}

static inline void gd_q8_store_blocks(const gd_q8_map *map, const float *restrict x, int64_t n,
                                      int64_t block, uint8_t *restrict q, float *restrict absmax)
{
#if GD_Q8_X86
    const int level = gd_q8_simd_level();
    if (level == GD_Q8_AVX512_VBMI && map->fine16_ok) {
        gd_q8_store_vbmi(map, x, n, block, q, absmax);
        return;
    }
    if (level >= GD_Q8_AVX512) {
        gd_q8_store_avx512(map, x, n, block, q, absmax);
        return;
    }
    if (level == GD_Q8_AVX2) {
        gd_q8_store_avx2(map, x, n, block, q, absmax);
        return;
    }
#endif
    for (int64_t b = 0; b < n; b += block)
        absmax[b / block] = gd_q8_quantize_block(map, x + b, n - b < block ? n - b : block, q + b);
}

#endif /* GDFAST_Q8_SIMD_H */
