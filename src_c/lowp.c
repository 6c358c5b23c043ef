/*
 * Bulk conversions between float32 and the low-precision formats (lowp.h), for gdfast._formats:
 * checkpoint conversion (float32 state <-> 8-bit), parameter copies, tests against the NumPy
 * reference.  Arrays are cut into fixed chunks (whole blocks for 8-bit data) shared by an
 * OpenMP team with a static schedule; each element's result depends only on its value and
 * its index, so it is the same for any thread count.  Callers validate everything first.
 */
#include "lowp_bulk.h"

#include "lowp.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(GD_NO_CLONES) && !defined(__clang__)
#define GD_LOWP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GD_LOWP_CLONES
#endif

/* Elements per chunk of the parallel loops (a multiple of every block size up to 65536 that
 * is a power of two; other block sizes are chunked by whole blocks). */
#define GD_LOWP_CHUNK ((int64_t)65536)

static int gd_lowp_team(int64_t chunks, int threads)
{
    if (threads < 1) threads = 1;
    return chunks < threads ? (int)(chunks > 0 ? chunks : 1) : threads;
}

GD_LOWP_CLONES static void gd_to_bf16_span(const float *restrict x, uint16_t *restrict out,
                                           int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) GD_STORE_BF16(out, i, x[i]);
}

GD_LOWP_CLONES static void gd_to_bf16_sr_span(const float *restrict x, uint16_t *restrict out,
                                              int64_t n, uint32_t key, int64_t index)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) GD_STORE_BF16_SR(out, i, x[i], key, index + i);
}

GD_LOWP_CLONES static void gd_to_f16_span(const float *restrict x, uint16_t *restrict out,
                                          int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) GD_STORE_F16(out, i, x[i]);
}

GD_LOWP_CLONES static void gd_to_f16_sr_span(const float *restrict x, uint16_t *restrict out,
                                             int64_t n, uint32_t key, int64_t index)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) GD_STORE_F16_SR(out, i, x[i], key, index + i);
}

GD_LOWP_CLONES static void gd_from_bf16_span(const uint16_t *restrict h, float *restrict out,
                                             int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = GD_LOAD_BF16(h, i);
}

GD_LOWP_CLONES static void gd_from_f16_span(const uint16_t *restrict h, float *restrict out,
                                            int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = GD_LOAD_F16(h, i);
}

GD_LOWP_CLONES static void gd_random_span(uint32_t *restrict out, int64_t n, uint32_t key,
                                          int64_t index)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = gd_random_bits(key, index + i);
}

/* Elements [begin, end) of a rounding to 16 bits; `index` is that of element 0. */
static void gd_round_chunk(const gd_round_args *a, int64_t begin, int64_t end)
{
    if (!a->stochastic) {
        (a->format == GD_FORMAT_BF16 ? gd_to_bf16_span : gd_to_f16_span)(a->x + begin,
                                                                          a->out + begin,
                                                                          end - begin);
        return;
    }
    for (int64_t i = begin; i < end;) {
        const int64_t index = a->offset + i;
        const int64_t len = gd_span_within_key(index, end - i);
        const uint32_t key = gd_random_key(a->seed, a->step, a->tensor, a->stream,
                                           (uint32_t)((uint64_t)index >> 32));
        (a->format == GD_FORMAT_BF16 ? gd_to_bf16_sr_span : gd_to_f16_sr_span)(
            a->x + i, a->out + i, len, key, index);
        i += len;
    }
}

void gd_round_to_16(const gd_round_args *a, int threads)
{
    const int64_t chunks = (a->n + GD_LOWP_CHUNK - 1) / GD_LOWP_CHUNK;
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(gd_lowp_team(chunks, threads))
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t begin = c * GD_LOWP_CHUNK;
        const int64_t end = begin + GD_LOWP_CHUNK < a->n ? begin + GD_LOWP_CHUNK : a->n;
        gd_round_chunk(a, begin, end);
    }
}

void gd_widen_from_16(const uint16_t *h, float *out, int64_t n, int format, int threads)
{
    const int64_t chunks = (n + GD_LOWP_CHUNK - 1) / GD_LOWP_CHUNK;
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(gd_lowp_team(chunks, threads))
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t begin = c * GD_LOWP_CHUNK;
        const int64_t len = begin + GD_LOWP_CHUNK < n ? GD_LOWP_CHUNK : n - begin;
        (format == GD_FORMAT_BF16 ? gd_from_bf16_span : gd_from_f16_span)(h + begin, out + begin,
                                                                          len);
    }
}

void gd_random_words(uint32_t *out, int64_t n, uint64_t seed, uint64_t step, uint64_t tensor,
                     uint32_t stream, int64_t offset, int threads)
{
    const int64_t chunks = (n + GD_LOWP_CHUNK - 1) / GD_LOWP_CHUNK;
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(gd_lowp_team(chunks, threads))
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t end = (c + 1) * GD_LOWP_CHUNK < n ? (c + 1) * GD_LOWP_CHUNK : n;
        for (int64_t i = c * GD_LOWP_CHUNK; i < end;) {
            const int64_t index = offset + i;
            const int64_t len = gd_span_within_key(index, end - i);
            gd_random_span(out + i, len,
                           gd_random_key(seed, step, tensor, stream,
                                         (uint32_t)((uint64_t)index >> 32)),
                           index);
            i += len;
        }
    }
}

int gd_q8_map_build(gd_q8_map *map, const float *code) { return gd_q8_map_init(map, code); }

GD_LOWP_CLONES static float gd_q8_quantize_one(const gd_q8_map *map, const float *x, int64_t n,
                                               uint8_t *q)
{
    return gd_q8_quantize_block(map, x, n, q);
}

GD_LOWP_CLONES static void gd_q8_dequantize_one(const gd_q8_map *map, const uint8_t *q, int64_t n,
                                                float absmax, float *x)
{
    gd_q8_dequantize_block(map, q, n, absmax, x);
}

void gd_q8_quantize(const gd_q8_map *map, const float *x, int64_t n, int64_t block, uint8_t *q,
                    float *absmax, int threads)
{
    const int64_t blocks = (n + block - 1) / block;
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(gd_lowp_team(blocks, threads))
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t begin = b * block;
        const int64_t len = begin + block < n ? block : n - begin;
        absmax[b] = gd_q8_quantize_one(map, x + begin, len, q + begin);
    }
}

void gd_q8_dequantize(const gd_q8_map *map, const uint8_t *q, const float *absmax, int64_t n,
                      int64_t block, float *x, int threads)
{
    const int64_t blocks = (n + block - 1) / block;
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(gd_lowp_team(blocks, threads))
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t begin = b * block;
        const int64_t len = begin + block < n ? block : n - begin;
        gd_q8_dequantize_one(map, q + begin, len, absmax[b], x + begin);
    }
}
