/*
 * The floor of AdaptiveRevision's dense push against Adagrad's (issue 17): the server's
 * rule next to a bare loop with exactly its memory traffic and no arithmetic to speak of,
 * with and without the receive's copy of the pushed gradient.
 *
 *   cc -O3 -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off \
 *      bench/distributed_push_floor.c src_c/adaptive_revision.c -lm -o /tmp/push_floor
 *   ./push_floor CONFIG N CALLS [COPY]
 *
 * One configuration per process (as a server holds one rule's state: Adagrad's 12 MB at
 * 1e6 float32 may stay in L3 between pushes, AdaptiveRevision's 24 MB may not), CALLS
 * calls after one warm-up call, thread CPU time of each; prints
 *   CONFIG N COPY median_ns_per_coordinate min p90
 * COPY=1: each call first copies the pushed gradient from a "wire" array of N floats into
 * g (what MPI's receive does into the server's buffer; both rules pay it).  Configurations
 * (float32; bytes per coordinate streamed by the loop, without the copy):
 *   adagrad_traffic  reads g, x, G; writes x, G                          (20)
 *   adagrad          the same with Adagrad's arithmetic (G += g²; x -= α g / (√G + ε))
 *   ar_traffic       reads g, ḡ_read, ḡ, x, z, r'; writes ḡ, x, z, r'     (40)
 *   ar_aos_traffic   the same bytes, x, ḡ, z, r' interleaved in one array of structs
 *                    (two streams in and one out instead of six and four)
 *   ar               src_c/adaptive_revision.c, a delayed push (ḡ_read given, no copy kept)
 * The bare loops add: no square roots or divisions, so they run at the memory's pace.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src_c/adaptive_revision.h"

/* src_c/adaptive_revision.c's instruction-set clones (gcc on x86-64 Linux only) */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

typedef struct {
    float x, gbar, sum_sq, root;
} ar_coordinate;

static double thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

CLONES static void adagrad_traffic(float *restrict x, const float *restrict g,
                                   float *restrict sum_sq, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        sum_sq[i] = sum_sq[i] + g[i];
        x[i] = x[i] - g[i];
    }
}

CLONES static void adagrad(float *restrict x, const float *restrict g, float *restrict sum_sq,
                           int64_t n, float lr, float eps)
{
    for (int64_t i = 0; i < n; i++) {
        const float s = sum_sq[i] + g[i] * g[i];
        sum_sq[i] = s;
        x[i] = x[i] - lr * g[i] / (sqrtf(s) + eps);
    }
}

CLONES static void ar_traffic(float *restrict x, const float *restrict g,
                              const float *restrict gbar_read, float *restrict gbar,
                              float *restrict sum_sq, float *restrict root, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float forward = gbar[i] - gbar_read[i];
        sum_sq[i] = sum_sq[i] + g[i];
        root[i] = root[i] + forward;
        x[i] = x[i] - g[i];
        gbar[i] = gbar[i] + g[i];
    }
}

CLONES static void ar_aos_traffic(ar_coordinate *restrict state, const float *restrict g,
                                  const float *restrict gbar_read, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float forward = state[i].gbar - gbar_read[i];
        state[i].sum_sq = state[i].sum_sq + g[i];
        state[i].root = state[i].root + forward;
        state[i].x = state[i].x - g[i];
        state[i].gbar = state[i].gbar + g[i];
    }
}

static float *filled(int64_t n, float value)
{
    float *a = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    if (a == NULL) {
        perror("aligned_alloc");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) a[i] = value + 1e-7f * (float)(i % 97);
    return a;
}

static int by_value(const void *a, const void *b)
{
    const double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG N CALLS [COPY]\n", argv[0]);
        return 2;
    }
    const char *config = argv[1];
    const int64_t n = atoll(argv[2]);
    const int calls = atoi(argv[3]);
    const int copy = argc > 4 ? atoi(argv[4]) : 0;
    float *wire = filled(n, 1e-3f), *g = filled(n, 1e-3f), *x = filled(n, 0.5f);
    float *sum_sq = NULL, *gbar = NULL, *gbar_read = NULL, *root = NULL;
    ar_coordinate *state = NULL;
    if (strncmp(config, "adagrad", 7) == 0) {
        sum_sq = filled(n, 1.0f);
    } else if (strcmp(config, "ar_aos_traffic") == 0) {
        state = aligned_alloc(64, (size_t)((n * 16 + 63) / 64 * 64));
        for (int64_t i = 0; i < n; i++) state[i] = (ar_coordinate){0.5f, 0.1f, 1.0f, 1.0f};
        gbar_read = filled(n, 0.05f);
    } else if (strcmp(config, "ar_traffic") == 0 || strcmp(config, "ar") == 0) {
        sum_sq = filled(n, 1.0f), gbar = filled(n, 0.1f), gbar_read = filled(n, 0.05f);
        root = filled(n, 1.0f);
    } else {
        fprintf(stderr, "unknown configuration %s\n", config);
        return 2;
    }
    double *seconds = malloc(sizeof(double) * (size_t)calls);
    for (int call = -1; call < calls; call++) {
        const double began = thread_seconds();
        if (copy) memcpy(g, wire, (size_t)n * sizeof(float));
        if (strcmp(config, "adagrad_traffic") == 0)
            adagrad_traffic(x, g, sum_sq, n);
        else if (strcmp(config, "adagrad") == 0)
            adagrad(x, g, sum_sq, n, 1e-3f, 1e-8f);
        else if (strcmp(config, "ar_traffic") == 0)
            ar_traffic(x, g, gbar_read, gbar, sum_sq, root, n);
        else if (strcmp(config, "ar_aos_traffic") == 0)
            ar_aos_traffic(state, g, gbar_read, n);
        else
            adaptive_revision_f32(x, g, gbar_read, gbar, NULL, sum_sq, root, n, 1e-3, 1e-8, 1,
                                  0);
        if (call >= 0) seconds[call] = thread_seconds() - began;
    }
    qsort(seconds, (size_t)calls, sizeof(double), by_value);
    const double per = 1e9 / (double)n;
    printf("%s %lld %d %.3f %.3f %.3f\n", config, (long long)n, copy,
           seconds[calls / 2] * per, seconds[0] * per, seconds[calls * 9 / 10] * per);
    return 0;
}
