/*
 * AdaptiveRevision's server rule; see adaptive_revision.h for the equations and the
 * contract.  Build flags (setup.py): -O3 -fno-math-errno -fno-trapping-math
 * -ffp-contract=off, OpenMP when available, never -ffast-math.
 */
#include "adaptive_revision.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define AR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AR_CLONES
#endif

/* OpenMP pragmas only in an OpenMP build (a serial build runs the same loops, warning-free). */
#ifdef _OPENMP
#define AR_OMP(text) _Pragma(text)
#else
#define AR_OMP(text)
#endif

/* Below this many coordinates per thread a team costs more than it gains; chunks start on
 * multiples of 64 coordinates (whole cache lines for both dtypes). */
#define AR_MIN_PER_THREAD ((int64_t)32768)
#define AR_ALIGN ((int64_t)64)
/* A dense push streams six arrays in and four out (Adagrad's: three and two), more than the
 * hardware prefetchers keep ahead of: each cache line of every array is prefetched
 * AR_AHEAD bytes before the loop reaches it (measured on a 2-core Zen 3, 1e6 float32: a
 * delayed push 14% less time, 512 bytes ahead better than 256 or 1024).  A hint only: the
 * arithmetic, and so the bits, are the same. */
#define AR_LINE ((int64_t)64)
#define AR_AHEAD ((int64_t)512)

int adaptive_revision_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* One coordinate: x, gbar, sum_sq, sqrt_sum_sq_max at `at`, the pushed g at `j`, ḡ_read the
 * expression READ (gbar_read[j], or `before`: ḡ itself, no delay), then KEEP (a statement
 * that may store `before`, ḡ as it was), and ḡ + g stored in NEW (gbar[at], or
 * gbar_read[at]: ḡ left as it was).  Written in the reference's order of operations
 * (rules.py), with its r' ← maximum(√max(z + δ², 0), r') as one select: where z + δ² < 0
 * the root is NaN, which loses the test and leaves r' (≥ 0, as the reference's floored 0
 * does), while a NaN z wins as in numpy.maximum (gcc vectorises one such select per
 * coordinate, not two). */
#define AR_COORDINATE(at, j, READ, KEEP, NEW)                                       \
    do {                                                                            \
        const REAL g = grad[j];                                                     \
        const REAL before = gbar[at];                                               \
        const REAL forward = before - (READ);                                       \
        const REAL root_old = sqrt_sum_sq_max[at];                                  \
        const REAL eta_old = lr / root_old;                                         \
        const REAL z = (sum_sq[at] + g * g) + (g * (REAL)2) * forward;              \
        const REAL candidate = SQRT(z + eps);                                       \
        const REAL root = (candidate >= root_old || z != z) ? candidate : root_old; \
        const REAL stepped = x[at] - (g / root) * lr;                               \
        sum_sq[at] = z;                                                             \
        sqrt_sum_sq_max[at] = root;                                                 \
        x[at] = stepped + (eta_old - lr / root) * forward;                          \
        KEEP;                                                                       \
        NEW = before + g;                                                           \
    } while (0)

/* The threads worth using for n coordinates, at most `threads`. */
static int ar_team(int64_t n, int threads)
{
    int64_t useful = n / AR_MIN_PER_THREAD;
    int64_t team = threads < useful ? threads : useful;
    return team < 1 ? 1 : (int)team;
}

/* [lo, hi) of part `part` of `parts` of n coordinates, parts starting on AR_ALIGN. */
static void ar_part(int64_t n, int part, int parts, int64_t *lo, int64_t *hi)
{
    int64_t per = (n + parts - 1) / parts;
    per = (per + AR_ALIGN - 1) / AR_ALIGN * AR_ALIGN;
    *lo = per * part < n ? per * part : n;
    *hi = per * (part + 1) < n ? per * (part + 1) : n;
}

/* Prefetch the lines of coordinate `at` of every array the span reads or writes (the loop
 * reaches them AR_AHEAD bytes later). */
#define AR_PREFETCH(at)                                \
    do {                                               \
        __builtin_prefetch(x + (at), 1);               \
        __builtin_prefetch(grad + (at), 0);            \
        __builtin_prefetch(gbar + (at), 1);            \
        __builtin_prefetch(sum_sq + (at), 1);          \
        __builtin_prefetch(sqrt_sum_sq_max + (at), 1); \
        if (gbar_read != NULL)                         \
            __builtin_prefetch(gbar_read + (at), 0);   \
        if (keep != NULL)                              \
            __builtin_prefetch(keep + (at), 1);        \
    } while (0)

/* One dense span: ḡ_read from gbar_read or (NAME's READ) ḡ itself, ḡ as it was stored in
 * keep or not; four functions, each vectorised without a test per coordinate.  A line of
 * coordinates at a time while the prefetched lines are inside the arrays, then the rest. */
#define AR_DENSE_SPAN(NAME, READ, KEEP, NEW)                                                 \
    AR_CLONES static void NAME(REAL *restrict x, const REAL *restrict grad,                  \
                               REAL *restrict gbar_read, REAL *restrict gbar,                \
                               REAL *restrict keep, REAL *restrict sum_sq,                   \
                               REAL *restrict sqrt_sum_sq_max, int64_t n, REAL lr, REAL eps) \
    {                                                                                        \
        const int64_t line = AR_LINE / (int64_t)sizeof(REAL);                                \
        const int64_t ahead = AR_AHEAD / (int64_t)sizeof(REAL);                              \
        int64_t start = 0;                                                                   \
        for (; start + ahead + line <= n; start += line) {                                   \
            AR_PREFETCH(start + ahead);                                                      \
            AR_OMP("omp simd")                                                               \
            for (int64_t i = start; i < start + line; i++)                                   \
                AR_COORDINATE(i, i, READ, KEEP, NEW);                                        \
        }                                                                                    \
        AR_OMP("omp simd")                                                                   \
        for (int64_t i = start; i < n; i++) AR_COORDINATE(i, i, READ, KEEP, NEW);            \
    }

/* The kernels of one dtype: REAL and SQRT are #defined before each use. */
#define AR_DEFINE(SUFFIX)                                                                          \
    AR_DENSE_SPAN(ar_span_##SUFFIX, gbar_read[i], (void)0, gbar[i])                                \
    AR_DENSE_SPAN(ar_span_keep_##SUFFIX, gbar_read[i], keep[i] = before, gbar[i])                  \
    AR_DENSE_SPAN(ar_fresh_span_##SUFFIX, before, (void)0, gbar[i])                                \
    AR_DENSE_SPAN(ar_fresh_span_keep_##SUFFIX, before, keep[i] = before, gbar[i])                  \
    AR_DENSE_SPAN(ar_span_into_read_##SUFFIX, gbar_read[i], (void)0, gbar_read[i])                 \
    static void ar_dense_span_##SUFFIX(REAL *x, const REAL *grad, REAL *gbar_read,                 \
                                       REAL *gbar, REAL *keep, REAL *sum_sq,                       \
                                       REAL *sqrt_sum_sq_max, int64_t n, REAL lr, REAL eps,        \
                                       int into_read)                                              \
    {                                                                                              \
        if (into_read)                                                                             \
            ar_span_into_read_##SUFFIX(x, grad, gbar_read, gbar, keep, sum_sq, sqrt_sum_sq_max, n, \
                                       lr, eps);                                                   \
        else if (gbar_read != NULL && keep == NULL)                                                \
            ar_span_##SUFFIX(x, grad, gbar_read, gbar, keep, sum_sq, sqrt_sum_sq_max, n, lr, eps); \
        else if (gbar_read != NULL)                                                                \
            ar_span_keep_##SUFFIX(x, grad, gbar_read, gbar, keep, sum_sq, sqrt_sum_sq_max, n, lr,  \
                                  eps);                                                            \
        else if (keep == NULL)                                                                     \
            ar_fresh_span_##SUFFIX(x, grad, gbar_read, gbar, keep, sum_sq, sqrt_sum_sq_max, n,     \
                                   lr, eps);                                                       \
        else                                                                                       \
            ar_fresh_span_keep_##SUFFIX(x, grad, gbar_read, gbar, keep, sum_sq, sqrt_sum_sq_max,   \
                                        n, lr, eps);                                               \
    }                                                                                              \
    static void ar_indexed_span_##SUFFIX(                                                          \
        REAL *restrict x, const int64_t *restrict index, const REAL *restrict grad,                \
        const REAL *restrict gbar_read, REAL *restrict gbar, REAL *restrict sum_sq,                \
        REAL *restrict sqrt_sum_sq_max, int64_t n, REAL lr, REAL eps)                              \
    {                                                                                              \
        for (int64_t j = 0; j < n; j++) {                                                          \
            const int64_t i = index[j];                                                            \
            AR_COORDINATE(i, j, gbar_read[j], (void)0, gbar[i]);                                   \
        }                                                                                          \
    }                                                                                              \
    void adaptive_revision_##SUFFIX(REAL *x, const REAL *grad, const REAL *gbar_read,              \
                                    REAL *gbar, REAL *gbar_keep, REAL *sum_sq,                     \
                                    REAL *sqrt_sum_sq_max, int64_t n, double lr, double eps,       \
                                    int threads, int into_read)                                    \
    {                                                                                              \
        /* written only when into_read, and then the caller's writeable array */                   \
        REAL *read = (REAL *)gbar_read;                                                            \
        const int team = ar_team(n, threads);                                                      \
        if (team == 1) {                                                                           \
            ar_dense_span_##SUFFIX(x, grad, read, gbar, gbar_keep, sum_sq, sqrt_sum_sq_max, n,     \
                                   (REAL)lr, (REAL)eps, into_read);                                \
            return;                                                                                \
        }                                                                                          \
        AR_OMP("omp parallel for schedule(static, 1) num_threads(team)")                           \
        for (int part = 0; part < team; part++) {                                                  \
            int64_t lo, hi;                                                                        \
            ar_part(n, part, team, &lo, &hi);                                                      \
            ar_dense_span_##SUFFIX(x + lo, grad + lo, read ? read + lo : NULL, gbar + lo,          \
                                   gbar_keep ? gbar_keep + lo : NULL, sum_sq + lo,                 \
                                   sqrt_sum_sq_max + lo, hi - lo, (REAL)lr, (REAL)eps,             \
                                   into_read);                                                     \
        }                                                                                          \
    }                                                                                              \
    void adaptive_revision_indexed_##SUFFIX(REAL *x, const int64_t *index, const REAL *grad,       \
                                            const REAL *gbar_read, REAL *gbar, REAL *sum_sq,       \
                                            REAL *sqrt_sum_sq_max, int64_t n_index, double lr,     \
                                            double eps, int threads)                               \
    {                                                                                              \
        const int team = ar_team(n_index, threads);                                                \
        AR_OMP("omp parallel for schedule(static, 1) num_threads(team) if (team > 1)")             \
        for (int part = 0; part < team; part++) {                                                  \
            int64_t lo, hi;                                                                        \
            ar_part(n_index, part, team, &lo, &hi);                                                \
            ar_indexed_span_##SUFFIX(x, index + lo, grad + lo, gbar_read + lo, gbar, sum_sq,       \
                                     sqrt_sum_sq_max, hi - lo, (REAL)lr, (REAL)eps);               \
        }                                                                                          \
    }

#define REAL float
#define SQRT sqrtf
AR_DEFINE(f32)
#undef REAL
#undef SQRT
#define REAL double
#define SQRT sqrt
AR_DEFINE(f64)
#undef REAL
#undef SQRT
