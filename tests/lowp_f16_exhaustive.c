/* Every float32 bit pattern through lowp.h's float16 conversions, against the integer formulas
 * of SPEC L.3 written out literally (nearest: round half to even on the dropped bits, in 64
 * bits; stochastic: four random words per input, in 64 bits) and,
 * where the CPU has F16C, against VCVTPS2PH / VCVTPH2PS (round to nearest even by the
 * instruction's immediate, not MXCSR).  Prints the mismatch counts; exit status 1 on any.
 * Run by tests/test_lowp_f16_exhaustive.py. */
#include <immintrin.h>
#include <inttypes.h>
#include <stdio.h>

#include "lowp.h"

/* SPEC L.3, float32 -> float16 nearest even, as literally as it is written. */
static uint16_t spec_f32_to_f16(uint32_t b)
{
    const uint32_t sign = (b >> 16) & 0x8000u, mag = b & 0x7FFFFFFFu;
    if (mag > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((mag & 0x7FFFFFu) >> 13));
    const uint32_t exponent = mag >> 23;
    const uint64_t significand = exponent ? ((mag & 0x7FFFFFu) | 0x800000u) : (mag & 0x7FFFFFu);
    /* value = significand * 2^(e - 150) with e = max(exponent, 1); float16 keeps multiples of
     * 2^(max(e, 113) - 150 + 13), i.e. drops (max(e, 113) - e) + 13 bits */
    const int64_t e = exponent ? exponent : 1;
    const int64_t drop = (e < 113 ? 113 - e : 0) + 13;
    uint64_t kept = drop < 64 ? significand >> drop : 0;
    const uint64_t rest = drop < 64 ? significand & ((UINT64_C(1) << drop) - 1) : significand;
    const uint64_t half = drop < 65 ? UINT64_C(1) << (drop - 1) : UINT64_MAX;
    kept += rest > half || (rest == half && (kept & 1));
    /* kept counts units of 2^(max(e,113) - 137); the pattern is (max(e,113) - 112) << 10 plus
     * the kept significand without its leading one (carries into the exponent are right) */
    uint64_t pattern = e < 113 ? kept : (((uint64_t)(e - 113)) << 10) + kept;
    if (pattern >= 0x7C00u) pattern = 0x7C00u; /* overflow (and infinity) */
    return (uint16_t)(sign | pattern);
}

/* SPEC L.3, float32 -> float16 stochastic, in 64 bits: the top s random bits added to the s
 * dropped ones, then truncation (s = 13 for normal results; d for subnormal ones, all 32 and
 * zeros below when d > 32, a result 0 when d > 32). */
static uint16_t spec_f32_to_f16_sr(uint32_t b, uint32_t random)
{
    const uint32_t sign = (b >> 16) & 0x8000u, mag = b & 0x7FFFFFFFu;
    if (mag > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((mag & 0x7FFFFFu) >> 13));
    if (mag >= 0x47800000u) return (uint16_t)(sign | 0x7C00u);
    if (mag >= 0x38800000u) {
        const uint32_t h = ((mag - (112u << 23)) + (random >> 19)) >> 13;
        return (uint16_t)(sign | h);
    }
    const uint32_t exponent = mag >> 23;
    const uint64_t significand = exponent ? ((mag & 0x7FFFFFu) | 0x800000u) : (mag & 0x7FFFFFu);
    const uint32_t drop = 126u - (exponent ? exponent : 1u);
    if (drop > 32) return (uint16_t)sign;
    const uint64_t added = (uint64_t)random >> (32 - drop);
    return (uint16_t)(sign | (uint32_t)((significand + added) >> drop));
}

__attribute__((target("f16c"))) static uint16_t f16c_f32_to_f16(float x)
{
    return (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("f16c"))) static float f16c_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

int main(void)
{
    __builtin_cpu_init();
    const int f16c = __builtin_cpu_supports("avx2"); /* every AVX2 CPU has F16C */
    uint64_t spec = 0, hardware = 0, widen = 0, widen_hw = 0, stochastic = 0;
    for (uint64_t u = 0; u <= UINT32_MAX; u++) {
        const uint32_t b = (uint32_t)u;
        const float x = gd_bits_f32(b);
        const uint16_t h = gd_f32_to_f16(x);
        if (h != spec_f32_to_f16(b) && spec++ < 5)
            printf("spec %08" PRIx32 ": %04x vs %04x\n", b, h, spec_f32_to_f16(b));
        if (f16c && h != f16c_f32_to_f16(x) && hardware++ < 5)
            printf("f16c %08" PRIx32 ": %04x vs %04x\n", b, h, f16c_f32_to_f16(x));
        /* stochastic: four random words per input, the extremes and two hashed ones */
        const uint32_t words[4] = {0, UINT32_MAX, gd_lowbias32(b), ~gd_lowbias32(b ^ 0x9E3779B9u)};
        for (int w = 0; w < 4; w++)
            if (gd_f32_to_f16_sr(x, words[w]) != spec_f32_to_f16_sr(b, words[w]) && stochastic++ < 5)
                printf("sr %08" PRIx32 " %08" PRIx32 ": %04x vs %04x\n", b, words[w],
                       gd_f32_to_f16_sr(x, words[w]), spec_f32_to_f16_sr(b, words[w]));
    }
    for (uint32_t h = 0; h <= 0xFFFFu; h++) {
        const uint32_t back = gd_f32_bits(gd_f16_to_f32((uint16_t)h));
        /* widening is exact: the float16 pattern comes back, NaNs included */
        if (gd_f32_to_f16(gd_bits_f32(back)) != h && ((h & 0x7C00u) != 0x7C00u || !(h & 0x3FFu) || (h & 0x200u)))
            widen++;
        /* F16C's VCVTPH2PS quiets a signalling NaN (sets bit 22); SPEC L.1 keeps the pattern:
         * those 1022 patterns may differ by that bit, nothing else may */
        const uint32_t hw = gd_f32_bits(f16c_f16_to_f32((uint16_t)h));
        const int signalling = (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) && !(h & 0x200u);
        if (f16c && back != hw && !(signalling && hw == (back | 0x00400000u)) && widen_hw++ < 5)
            printf("f16c widen %04" PRIx32 ": %08" PRIx32 " vs %08" PRIx32 "\n", h, back,
                   gd_f32_bits(f16c_f16_to_f32((uint16_t)h)));
    }
    printf("narrow: %" PRIu64 " differ from SPEC L.3, %" PRIu64 " from F16C (%s)\n", spec, hardware,
           f16c ? "checked" : "no F16C");
    printf("widen: %" PRIu64 " do not come back, %" PRIu64 " differ from F16C beyond the quiet bit\n",
           widen, widen_hw);
    printf("stochastic: %" PRIu64 " differ from SPEC L.3\n", stochastic);
    return spec || hardware || widen || widen_hw || stochastic;
}
