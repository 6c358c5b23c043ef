/*
 * What an IEEE-exact square root and division cost in the Adagrad loop, in cache:
 * the same loop with and without them (the second replaces g/sqrt(G+eps) by a product,
 * keeping the memory traffic).  Measures and prints; asserts nothing.
 *
 * Runs on any x86-64 CPU: each loop is compiled for AVX-512, AVX2 and the baseline
 * (gcc/clang target_clones, an indirect call: never inlined) and the best one this CPU
 * has is picked at run time; the output names it.  Elsewhere (no target_clones) the loops are built once, portably.
 *
 *   cc -O3 -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off \
 *       bench/sqrt_div_bound.c -o /tmp/sqrt_div_bound && /tmp/sqrt_div_bound 100000 2000
 *
 * Arguments: elements (default 100000), repetitions per timing (default 2000).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
static const char *isa(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2")) return "avx2";
  return "default";
}
#else
#define CLONES __attribute__((noinline))
static const char *isa(void) { return "portable"; }
#endif

CLONES void with_sqrt_div(float *restrict p, const float *restrict g,
                                                    float *restrict s, int64_t n, float lr,
                                                    float eps) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    s[i] = s[i] + g[i] * g[i];
    p[i] -= lr * g[i] / sqrtf(s[i] + eps);
  }
}

CLONES void without(float *restrict p, const float *restrict g,
                                              float *restrict s, int64_t n, float lr,
                                              float eps) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    s[i] = s[i] + g[i] * g[i];
    p[i] -= lr * g[i] * (s[i] + eps);
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? atol(argv[1]) : 100000;
  int reps = argc > 2 ? atoi(argv[2]) : 2000;
  if (n < 1 || reps < 1) {
    fprintf(stderr, "usage: %s [elements >= 1] [repetitions >= 1]\n", argv[0]);
    return 2;
  }
  size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64; /* aligned_alloc: a multiple */
  float *p = aligned_alloc(64, bytes), *g = aligned_alloc(64, bytes), *s = aligned_alloc(64, bytes);
  if (!p || !g || !s) {
    fprintf(stderr, "out of memory for %ld elements\n", (long)n);
    return 1;
  }
  for (int64_t i = 0; i < n; i++) {
    p[i] = 1;
    g[i] = 0.001f * (i % 7);
    s[i] = 1;
  }
  double a = 1e9, b = 1e9;
  for (int r = 0; r < 9; r++) {
    double t = now();
    for (int k = 0; k < reps; k++) with_sqrt_div(p, g, s, n, 1e-3f, 1e-8f);
    t = (now() - t) / reps;
    if (t < a) a = t;
    t = now();
    for (int k = 0; k < reps; k++) without(p, g, s, n, 1e-9f, 1e-8f);
    t = (now() - t) / reps;
    if (t < b) b = t;
  }
  printf("n=%ld (%s loops) Adagrad loop: with sqrt+div %.1f us (%.0f GB/s, %.2f ns/elem); "
         "without %.1f us (%.0f GB/s)\n",
         (long)n, isa(), a * 1e6, 20.0 * n / a / 1e9, a * 1e9 / n, b * 1e6, 20.0 * n / b / 1e9);
  free(p);
  free(g);
  free(s);
  return 0;
}
