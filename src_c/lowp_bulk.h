/*
 * Whole-array conversions between float32 and the low-precision formats (lowp.c), threaded,
 * for gdfast._formats.  The per-element arithmetic is lowp.h's.
 */
#ifndef GDFAST_LOWP_BULK_H
#define GDFAST_LOWP_BULK_H

#include <stdint.h>

#include "lowp.h"

enum { GD_FORMAT_BF16 = 0, GD_FORMAT_F16 = 1 };

typedef struct {
    const float *x;
    uint16_t *out;
    int64_t n;
    int format;     /* GD_FORMAT_BF16 or GD_FORMAT_F16 */
    int stochastic; /* 0: nearest even; 1: stochastic with the generator below */
    uint64_t seed, step, tensor;
    uint32_t stream;
    int64_t offset; /* index of x[0] in its tensor */
} gd_round_args;

void gd_round_to_16(const gd_round_args *args, int threads);
void gd_widen_from_16(const uint16_t *h, float *out, int64_t n, int format, int threads);
void gd_random_words(uint32_t *out, int64_t n, uint64_t seed, uint64_t step, uint64_t tensor,
                     uint32_t stream, int64_t offset, int threads);
/* 0, or -1 when the map is too fine for the encoding table (lowp.h). */
int gd_q8_map_build(gd_q8_map *map, const float *code);
void gd_q8_quantize(const gd_q8_map *map, const float *x, int64_t n, int64_t block, uint8_t *q,
                    float *absmax, int threads);
void gd_q8_dequantize(const gd_q8_map *map, const uint8_t *q, const float *absmax, int64_t n,
                      int64_t block, float *x, int threads);

#endif /* GDFAST_LOWP_BULK_H */
