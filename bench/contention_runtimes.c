/*
 * The thread runtimes considered for gdfast's steps (issue 11), side by side on one
 * Adam-like float32 loop, each step timed alone, the variants interleaved round by round:
 *
 *   serial       one thread
 *   omp-static   an OpenMP parallel region, one contiguous share per thread (gdfast before)
 *   omp-chunks   an OpenMP parallel region whose threads claim chunks from an atomic
 *                counter (the "do it inside OpenMP" design): the caller never waits for
 *                a chunk nobody started, but the region's closing barrier still waits for
 *                every team member to arrive, scheduled or not
 *   pool         src_c/threads.inc, gdfast's runtime
 *
 *   gcc -O3 -fopenmp -ffp-contract=off -fno-math-errno -Isrc_c bench/contention_runtimes.c \
 *       -o /tmp/runtimes -lm
 *   /tmp/runtimes [size] [seconds] [threads]          # e.g. 1000000 3 2
 *   (in another shell, or with `&`: a busy loop per other core; OMP_WAIT_POLICY and
 *    GOMP_SPINCOUNT change the two OpenMP variants)
 *
 * Prints, per variant: median and 99th percentile step time, CPU time per step (all
 * threads), ratio of the medians to serial.  It measures; it asserts nothing.
 */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define GD_SPAN_ALIGN ((int64_t)64)
#include "threads.inc"

typedef struct {
    float *p, *g, *m, *v;
} arrays;

static void adam_span(const arrays *a, int64_t lo, int64_t hi)
{
    const float b1 = 0.9f, b2 = 0.999f, lr = 1e-3f, eps = 1e-8f;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        a->m[i] = b1 * a->m[i] + (1 - b1) * a->g[i];
        a->v[i] = b2 * a->v[i] + (1 - b2) * a->g[i] * a->g[i];
        a->p[i] -= lr * a->m[i] / (sqrtf(a->v[i]) + eps);
    }
}

static void chunk_fn(void *ctx, int64_t begin, int64_t end, int64_t cursor[2])
{
    (void)cursor;
    adam_span((const arrays *)ctx, begin, end);
}

static int64_t n_elements, chunk_elements;
static int team;

static void run_serial(const arrays *a) { adam_span(a, 0, n_elements); }

static void run_omp_static(const arrays *a)
{
#pragma omp parallel num_threads(team)
    {
        const int64_t share = (n_elements + omp_get_num_threads() - 1) / omp_get_num_threads();
        const int64_t lo = omp_get_thread_num() * share;
        const int64_t hi = lo + share < n_elements ? lo + share : n_elements;
        if (lo < hi) adam_span(a, lo, hi);
    }
}

static void run_omp_chunks(const arrays *a)
{
    _Atomic int64_t next = 0;
    const int64_t chunks = (n_elements + chunk_elements - 1) / chunk_elements;
#pragma omp parallel num_threads(team)
    {
        for (int64_t c; (c = atomic_fetch_add(&next, 1)) < chunks;) {
            const int64_t lo = c * chunk_elements;
            adam_span(a, lo, lo + chunk_elements < n_elements ? lo + chunk_elements : n_elements);
        }
    }
}

static void run_pool(const arrays *a)
{
    gd_parallel_for(n_elements, chunk_elements, team, chunk_fn, (void *)a);
}

static double now_s(void) { return (double)gd_now_ns() * 1e-9; }

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static int by_value(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    n_elements = argc > 1 ? (int64_t)atof(argv[1]) : 1000000;
    const double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    team = argc > 3 ? atoi(argv[3]) : 2;
    chunk_elements = n_elements / (team * 16) / 64 * 64;
    if (chunk_elements < 16384) chunk_elements = 16384;
    if (chunk_elements > 65536) chunk_elements = 65536;
    gd_set_num_threads(team);
    arrays a;
    float **all[] = {&a.p, &a.g, &a.m, &a.v};
    for (int k = 0; k < 4; k++) {
        *all[k] = aligned_alloc(64, (size_t)(n_elements * 4 + 64) / 64 * 64);
        for (int64_t i = 0; i < n_elements; i++) (*all[k])[i] = k == 1 ? 0.01f * (i % 7) : 0.5f;
    }
    const char *names[] = {"serial", "omp-static", "omp-chunks", "pool"};
    void (*runs[])(const arrays *) = {run_serial, run_omp_static, run_omp_chunks, run_pool};
    enum { VARIANTS = 4, ROUNDS = 10, MAX_SAMPLES = 2000000 };
    double *samples[VARIANTS];
    int64_t counts[VARIANTS] = {0};
    double cpu[VARIANTS] = {0};
    for (int v = 0; v < VARIANTS; v++) {
        samples[v] = malloc(sizeof(double) * MAX_SAMPLES / VARIANTS);
        runs[v](&a); /* warm up */
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int v = 0; v < VARIANTS; v++) {
            const double end = now_s() + seconds / ROUNDS / VARIANTS;
            const double c0 = cpu_s();
            for (double t = now_s(); t < end && counts[v] < MAX_SAMPLES / VARIANTS;) {
                runs[v](&a);
                const double t1 = now_s();
                samples[v][counts[v]++] = t1 - t;
                t = t1;
            }
            cpu[v] += cpu_s() - c0;
        }
    printf("size %lld, %d threads, chunk %lld, %.1f s per variant\n", (long long)n_elements,
           team, (long long)chunk_elements, seconds / VARIANTS);
    double serial_median = 0;
    for (int v = 0; v < VARIANTS; v++) {
        qsort(samples[v], counts[v], sizeof(double), by_value);
        const double median = samples[v][counts[v] / 2];
        const double p99 = samples[v][(int64_t)(0.99 * (counts[v] - 1))];
        if (v == 0) serial_median = median;
        printf("%-11s median %9.1f us  p99 %9.1f us  cpu/step %9.1f us  median/serial %6.2f  (%lld steps)\n",
               names[v], median * 1e6, p99 * 1e6, cpu[v] / counts[v] * 1e6, median / serial_median,
               (long long)counts[v]);
    }
    return 0;
}
