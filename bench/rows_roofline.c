/*
 * The memory floor of a row-sparse step (issue 16, scope 5): the traffic of Adam's step on
 * `indices` random rows of a rows x dim float32 table, and nothing else.
 *
 *     gcc -O2 -march=x86-64-v2 -Wall -o /tmp/rows_roofline bench/rows_roofline.c && /tmp/rows_roofline
 *     /tmp/rows_roofline ROWS DIM INDICES REPEATS
 *
 * Each repeat draws fresh row numbers (with repeats, as the benchmark does), sorts them,
 * and for each distinct row reads its parameter row, its two state rows and one gradient
 * row (the gradient rows in order of the indices' positions, as the real step reads them),
 * and writes the parameter and state rows back, with one multiply-add per element so the
 * loads and stores cannot be dropped: the bytes Adam's step must move, without its math,
 * its per-row scalars or its duplicate summing.  Three variants: rows in index order,
 * rows in index order with software prefetch 4 rows ahead, rows in the indices' order
 * (random).  Reports the median CPU time of the loop (CLOCK_THREAD_CPUTIME_ID: the time
 * this thread ran, whatever else the machine does) and the bytes moved per second.
 * It measures and reports, it never asserts.
 */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t state = 88172645463325252ull;
static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* NumPy asks for transparent huge pages on large arrays (madvise), so the floor does too:
 * with 4 KiB pages every row of a random walk over a 51 MB table is also a TLB miss. */
static float *table(int64_t n)
{
    const size_t bytes = ((size_t)n * sizeof(float) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    float *memory = aligned_alloc(2u << 20, bytes);
    madvise(memory, bytes, MADV_HUGEPAGE);
    return memory;
}

static int compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One pass: rows[0..n) (already in the variant's order), gradient row g of each. */
static void pass(float *param, float *m, float *v, const float *grad, const int64_t *rows,
                 const int64_t *grad_row, int64_t n, int64_t dim, int prefetch)
{
    for (int64_t i = 0; i < n; i++) {
        if (prefetch && i + 4 < n) {
            const int64_t ahead = rows[i + 4] * dim;
            for (int64_t b = 0; b < dim; b += 16) {
                __builtin_prefetch(param + ahead + b, 1);
                __builtin_prefetch(m + ahead + b, 1);
                __builtin_prefetch(v + ahead + b, 1);
                __builtin_prefetch(grad + grad_row[i + 4] * dim + b, 0);
            }
        }
        float *p = param + rows[i] * dim, *a = m + rows[i] * dim, *s = v + rows[i] * dim;
        const float *g = grad + grad_row[i] * dim;
        for (int64_t e = 0; e < dim; e++) {
            a[e] = a[e] * 0.9f + g[e];
            s[e] = s[e] * 0.999f + g[e];
            p[e] = p[e] - 1e-3f * a[e];
        }
    }
}

int main(int argc, char **argv)
{
    const int64_t n_rows = argc > 1 ? atoll(argv[1]) : 200000;
    const int64_t dim = argc > 2 ? atoll(argv[2]) : 64;
    const int64_t n_indices = argc > 3 ? atoll(argv[3]) : 20000;
    const int repeats = argc > 4 ? atoi(argv[4]) : 50;
    float *param = table(n_rows * dim), *m = table(n_rows * dim), *v = table(n_rows * dim);
    float *grad = table(n_indices * dim);
    int64_t *pairs = malloc(sizeof(int64_t) * n_indices), *rows = malloc(sizeof(int64_t) * n_indices);
    int64_t *grad_row = malloc(sizeof(int64_t) * n_indices);
    double *times[3];
    for (int k = 0; k < 3; k++) times[k] = malloc(sizeof(double) * repeats);
    for (int64_t i = 0; i < n_rows * dim; i++) param[i] = m[i] = v[i] = 1.0f;
    for (int64_t i = 0; i < n_indices * dim; i++) grad[i] = 0.5f;
    /* a buffer larger than the caches, walked between passes so each starts cold */
    const size_t flush_bytes = 64u << 20;
    char *flush = malloc(flush_bytes);
    memset(flush, 1, flush_bytes);
    int64_t distinct = 0, distinct_sorted = 0;
    for (int r = 0; r < repeats; r++) {
        for (int k = 0; k < 3; k++) {
            for (int64_t i = 0; i < n_indices; i++)
                pairs[i] = (int64_t)(next() % (uint64_t)n_rows) * n_indices + i;
            if (k < 2) qsort(pairs, n_indices, sizeof(int64_t), compare);
            distinct = 0;
            for (int64_t i = 0; i < n_indices; i++) {
                const int64_t row = pairs[i] / n_indices;
                if (k < 2 && distinct > 0 && rows[distinct - 1] == row) continue;
                rows[distinct] = row;
                grad_row[distinct++] = pairs[i] % n_indices;
            }
            if (k < 2) distinct_sorted = distinct;
            volatile char sink = 0;
            for (size_t b = 0; b < flush_bytes; b += 64) sink += flush[b]++;
            const double start = cpu_seconds();
            pass(param, m, v, grad, rows, grad_row, distinct, dim, k == 1);
            times[k][r] = cpu_seconds() - start;
        }
    }
    const char *names[3] = {"index order", "index order + prefetch", "random order"};
    const double bytes = (double)distinct_sorted * (double)dim * sizeof(float) * 7.0; /* 4 reads, 3 writes */
    printf("%lld x %lld float32, %lld indices (%lld distinct rows), %.1f MB moved a pass\n",
           (long long)n_rows, (long long)dim, (long long)n_indices, (long long)distinct_sorted, bytes / 1e6);
    for (int k = 0; k < 3; k++) {
        qsort(times[k], repeats, sizeof(double), compare_double);
        const double median = times[k][repeats / 2];
        printf("  %-24s median %.3f ms CPU (p10 %.3f, p90 %.3f), %.1f GB/s\n", names[k],
               1e3 * median, 1e3 * times[k][repeats / 10], 1e3 * times[k][repeats * 9 / 10],
               bytes / median / 1e9);
    }
    return 0;
}
