/*
 * Adafactor's floor on one thread: the three sweeps its step cannot avoid (docs/spec.md 1.3:
 * the row and column sums of g² must be complete before any U, RMS(U) before any update),
 * as bare C loops with the least arithmetic each sweep needs, timed on a 3125 x 3200 float32
 * matrix (1e7 parameters, the bench's Adafactor case), beside gd_roofline's one-sweep loop:
 *   A  read g:          Σ g² in double (the sums' sweep; the column sums omitted)
 *   B  read θ, g:       Σ θ², Σ g² in double (pass 1, U = g without its scale)
 *   C  read θ, g, write θ:  θ ← k θ − s g (pass 2)
 *   roofline  read θ, g, write θ: θ += g (gdfast's limit loop, 3 streams)
 * A + B + C is what 6 streams cost when split into these three sweeps, beside two roofline
 * loops (6 streams too, in two sweeps of 3: the bench's limit for Adafactor until it measured
 * each rule's own sweeps, gdfast/bench.py).  Measures and prints medians of interleaved
 * rounds; asserts nothing.
 *
 *   cc -O3 -march=x86-64-v3 -fopenmp-simd -ffp-contract=off -fno-math-errno bench/adafactor_floor.c \
 *      -o /tmp/adafactor_floor && /tmp/adafactor_floor 15
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N ((int64_t)3125 * 3200)
#define LANES 16

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double sweep_a(const float *restrict g)
{
    double lane[LANES] = {0}, total = 0;
    for (int64_t i = 0; i < N; i += LANES)
#pragma omp simd
        for (int j = 0; j < LANES; j++) lane[j] += (double)g[i + j] * (double)g[i + j];
    for (int j = 0; j < LANES; j++) total += lane[j];
    return total;
}

static double sweep_b(const float *restrict p, const float *restrict g)
{
    double first[LANES] = {0}, second[LANES] = {0}, total = 0;
    for (int64_t i = 0; i < N; i += LANES)
#pragma omp simd
        for (int j = 0; j < LANES; j++) {
            first[j] += (double)p[i + j] * (double)p[i + j];
            second[j] += (double)g[i + j] * (double)g[i + j];
        }
    for (int j = 0; j < LANES; j++) total += first[j] + second[j];
    return total;
}

static void sweep_c(float *restrict p, const float *restrict g, float keep, float rate)
{
#pragma omp simd
    for (int64_t i = 0; i < N; i++) p[i] = keep * p[i] - rate * g[i];
}

static void roofline(float *restrict p, const float *restrict g)
{
#pragma omp simd
    for (int64_t i = 0; i < N; i++) p[i] += g[i];
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 15;
    float *p = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float));
    for (int64_t i = 0; i < N; i++) {
        p[i] = (float)((i % 1000) * 1e-3);
        g[i] = (float)((i % 777) * 1e-6);
    }
    double *times[4];
    for (int k = 0; k < 4; k++) times[k] = calloc(rounds, sizeof(double));
    volatile double sink = 0;
    for (int r = 0; r < rounds; r++) {
        double t = now();
        sink += sweep_a(g);
        times[0][r] = now() - t;
        t = now();
        sink += sweep_b(p, g);
        times[1][r] = now() - t;
        t = now();
        sweep_c(p, g, 1.0f, 1e-9f);
        times[2][r] = now() - t;
        t = now();
        roofline(p, g);
        times[3][r] = now() - t;
    }
    const char *names[4] = {"A read g (Σg²)", "B read θ, g (Σθ², Σg²)", "C θ ← kθ − s g",
                            "roofline θ += g"};
    double median[4];
    for (int k = 0; k < 4; k++) {
        qsort(times[k], rounds, sizeof(double), by_value);
        median[k] = times[k][rounds / 2];
        printf("%-26s %7.3f ms\n", names[k], 1e3 * median[k]);
    }
    printf("A + B + C                  %7.3f ms (the floor of Adafactor's three sweeps)\n",
           1e3 * (median[0] + median[1] + median[2]));
    printf("2 x roofline               %7.3f ms (the bench's limit: 6 streams in 2 sweeps)\n",
           2e3 * median[3]);
    return sink == 42.0;
}
