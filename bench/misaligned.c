/*
 * What arrays that start off a cache line cost a memory-bound step: the roofline loop of one
 * state buffer (param += g, state += g: 20 bytes a float32 element) and Schedule-Free SGD's
 * loop (the same traffic, five loads an element where the roofline has three), on arrays
 * that start 0, 16 and 64 bytes past a 2 MB boundary (NumPy's large arrays start 16 bytes
 * past a page).  Interleaved rounds, medians.  Measures and prints; asserts nothing.
 * gd_native_segment (src_c/kernels.c) and GD_TWO_SUMS (src_c/two_pass.inc) start their
 * vector loops on a cache line because of what this shows.
 *
 *   cc -O3 -march=native -fopenmp-simd -fno-math-errno -fno-trapping-math \
 *       -ffp-contract=off bench/misaligned.c -o /tmp/misaligned && /tmp/misaligned 10000000
 *
 * Argument: elements (default 10,000,000).  -march=native: the vector width of this CPU
 * (a 64-byte AVX-512 vector 16 bytes off a line straddles two lines every time, a 32-byte
 * AVX2 vector every other time).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define ROUNDS 15
#define CALLS 10

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

__attribute__((noinline)) static void roofline(float *restrict p, const float *restrict g,
                                               float *restrict s, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        p[i] += g[i];
        s[i] += g[i];
    }
}

/* u = f g ; y <- lerp(y, z, c) + a u ; z <- z - b u (schedule_free_sgd_loop's arithmetic) */
__attribute__((noinline)) static void schedule_free(float *restrict y, const float *restrict g,
                                                    float *restrict z, int64_t n, float f,
                                                    float c, float a, float b)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float u = g[i] * f;
        const float lerp = y[i] + c * (z[i] - y[i]);
        y[i] = lerp + a * u;
        z[i] -= b * u;
    }
}

/* n floats starting `offset` bytes past a 2 MB boundary, on huge pages where the OS gives them */
static float *buffer(int64_t n, size_t offset, float value)
{
    void *base = NULL;
    const size_t bytes = (size_t)n * sizeof(float) + 4096;
    if (posix_memalign(&base, (size_t)1 << 21, bytes) != 0) exit(1);
#ifdef MADV_HUGEPAGE
    madvise(base, bytes, MADV_HUGEPAGE);
#endif
    float *out = (float *)((char *)base + offset);
    for (int64_t i = 0; i < n; i++) out[i] = value;
    return out;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const int64_t n = argc > 1 ? atoll(argv[1]) : 10000000;
    const size_t offsets[] = {0, 16, 64};
    double times[3][2][ROUNDS];
    float *arrays[3][3];
    for (int o = 0; o < 3; o++)
        for (int a = 0; a < 3; a++) arrays[o][a] = buffer(n, offsets[o], a == 1 ? 1e-3f : 1.0f);
    for (int r = 0; r < ROUNDS; r++)
        for (int o = 0; o < 3; o++) {
            float *p = arrays[o][0], *g = arrays[o][1], *s = arrays[o][2];
            double began = now();
            for (int c = 0; c < CALLS; c++) roofline(p, g, s, n);
            times[o][0][r] = (now() - began) / CALLS;
            began = now();
            for (int c = 0; c < CALLS; c++) schedule_free(p, g, s, n, 1.0f, 0.1f, -1e-3f, 1e-3f);
            times[o][1][r] = (now() - began) / CALLS;
        }
    printf("%lld float32 elements, 20 bytes each a step; median of %d interleaved rounds\n",
           (long long)n, ROUNDS);
    printf("%-14s %14s %18s\n", "arrays start", "roofline ms", "schedule-free ms");
    for (int o = 0; o < 3; o++) {
        double median[2];
        for (int k = 0; k < 2; k++) {
            qsort(times[o][k], ROUNDS, sizeof(double), by_value);
            median[k] = 1e3 * times[o][k][ROUNDS / 2];
        }
        printf("%3zu bytes off %14.3f %18.3f\n", offsets[o], median[0], median[1]);
    }
    return 0;
}
