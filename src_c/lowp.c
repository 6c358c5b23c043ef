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

static inline int gd_lowp_team(int64_t chunks, int threads)
{
    if (threads < 1) threads = 1;
    return chunks < threads ? (int)(chunks > 0 ? chunks : 1) : threads;
}

/* Runs `body` for each piece [begin, end) of [0, total) cut every `piece` elements, the pieces
 * shared by an OpenMP team of `threads` (the enclosing function's argument) with a static
 * schedule. */
#define GD_LOWP_FOR_PIECES(total, piece, begin, end, body)                                   \
    do {                                                                                     \
        const int64_t pieces_ = ((total) + (piece) - 1) / (piece);                           \
        (void)threads;                                                                       \
        _Pragma("omp parallel for schedule(static) num_threads(gd_lowp_team(pieces_, threads))") \
        for (int64_t k_ = 0; k_ < pieces_; k_++) {                                           \
            const int64_t begin = k_ * (piece);                                              \
            const int64_t end = begin + (piece) < (total) ? begin + (piece) : (total);       \
            body;                                                                            \
        }                                                                                    \
    } while (0)

/* One span loop per conversion, all with one signature: `index` is that of element 0 in its
 * tensor and `key` the generator's key of the span (used by the stochastic ones only).  In the
 * loop, `low` is element i's index mod 2^32 (a span stays within one key), counted in 32-bit
 * lanes: (uint32_t)(index + i) would be counted in 64-bit lanes and narrowed. */
#define GD_LOWP_SPAN(name, in_t, out_t, element)                                           \
    GD_LOWP_CLONES static void name(const void *in, void *to, int64_t n, uint32_t key,      \
                                    int64_t index)                                         \
    {                                                                                      \
        const in_t *restrict x = (const in_t *)in;                                         \
        out_t *restrict out = (out_t *)to;                                                 \
        uint32_t low = (uint32_t)index;                                                    \
        (void)x;                                                                           \
        (void)key;                                                                         \
        _Pragma("omp simd linear(low : 1)") for (int64_t i = 0; i < n; i++) {              \
            element;                                                                       \
            low++;                                                                         \
        }                                                                                  \
    }
GD_LOWP_SPAN(gd_to_bf16_span, float, uint16_t, GD_STORE_BF16(out, i, x[i]))
GD_LOWP_SPAN(gd_to_bf16_sr_span, float, uint16_t, GD_STORE_BF16_SR(out, i, x[i], key, low))
GD_LOWP_SPAN(gd_to_f16_span, float, uint16_t, GD_STORE_F16(out, i, x[i]))
GD_LOWP_SPAN(gd_to_f16_sr_span, float, uint16_t, GD_STORE_F16_SR(out, i, x[i], key, low))
GD_LOWP_SPAN(gd_from_bf16_span, uint16_t, float, out[i] = GD_LOAD_BF16(x, i))
GD_LOWP_SPAN(gd_from_f16_span, uint16_t, float, out[i] = GD_LOAD_F16(x, i))
GD_LOWP_SPAN(gd_random_span, uint32_t, uint32_t, out[i] = gd_random_bits(key, low))

typedef void (*gd_lowp_span_fn)(const void *x, void *out, int64_t n, uint32_t key, int64_t index);

/* Runs `span` over [begin, end) in pieces that share a generator key (2^32 elements). */
static void gd_keyed_spans(gd_lowp_span_fn span, const char *x, size_t in_size, char *out,
                           size_t out_size, int64_t begin, int64_t end, const gd_round_args *key)
{
    for (int64_t i = begin; i < end;) {
        const int64_t index = key->offset + i;
        const int64_t len = gd_span_within_key(index, end - i);
        span(x ? x + (size_t)i * in_size : NULL, out + (size_t)i * out_size, len,
             gd_random_key(key->seed, key->step, key->tensor, key->stream,
                           (uint32_t)((uint64_t)index >> 32)),
             index);
        i += len;
    }
}

/* Elements [begin, end) of a rounding to 16 bits. */
static void gd_round_chunk(const gd_round_args *a, int64_t begin, int64_t end)
{
    const int bf16 = a->format == GD_FORMAT_BF16;
    const gd_lowp_span_fn span = a->stochastic ? (bf16 ? gd_to_bf16_sr_span : gd_to_f16_sr_span)
                                               : (bf16 ? gd_to_bf16_span : gd_to_f16_span);
    gd_keyed_spans(span, (const char *)a->x, sizeof(float), (char *)a->out, sizeof(uint16_t),
                   begin, end, a);
}

void gd_round_to_16(const gd_round_args *a, int threads)
{
    GD_LOWP_FOR_PIECES(a->n, GD_LOWP_CHUNK, begin, end, gd_round_chunk(a, begin, end));
}

void gd_widen_from_16(const uint16_t *h, float *out, int64_t n, int format, int threads)
{
    const gd_lowp_span_fn span = format == GD_FORMAT_BF16 ? gd_from_bf16_span : gd_from_f16_span;
    GD_LOWP_FOR_PIECES(n, GD_LOWP_CHUNK, begin, end,
                       span(h + begin, out + begin, end - begin, 0, 0));
}

void gd_random_words(uint32_t *out, int64_t n, uint64_t seed, uint64_t step, uint64_t tensor,
                     uint32_t stream, int64_t offset, int threads)
{
    const gd_round_args key = {.seed = seed, .step = step, .tensor = tensor, .stream = stream,
                               .offset = offset};
    GD_LOWP_FOR_PIECES(n, GD_LOWP_CHUNK, begin, end,
                       gd_keyed_spans(gd_random_span, NULL, 0, (char *)out, sizeof(uint32_t),
                                      begin, end, &key));
}

int gd_q8_map_build(gd_q8_map *map, const float *code) { return gd_q8_map_init(map, code); }

void gd_q8_quantize(const gd_q8_map *map, const float *x, int64_t n, int64_t block, uint8_t *q,
                    float *absmax, int threads)
{
    GD_LOWP_FOR_PIECES(n, block, begin, end,
                       gd_q8_store_blocks(map, x + begin, end - begin, block, q + begin,
                                          absmax + begin / block));
}

void gd_q8_dequantize(const gd_q8_map *map, const uint8_t *q, const float *absmax, int64_t n,
                      int64_t block, float *x, int threads)
{
    GD_LOWP_FOR_PIECES(n, block, begin, end,
                       gd_q8_load_blocks(map, q + begin, absmax + begin / block, end - begin, block,
                                         x + begin));
}
