/*
 * gdfast kernels: threads, instruction-set clones, and the two dtypes.
 *
 * The rules themselves are written once, in rules.inc, and compiled twice:
 * with REAL = float (suffix _f32) and REAL = double (suffix _f64).
 *
 * Build contract (setup.py): -O3 -fno-math-errno -ffp-contract=off, OpenMP
 * when available, never -ffast-math.  -fno-math-errno lets gcc vectorize
 * sqrt; -ffp-contract=off forbids fused multiply-adds, so the vector loop,
 * its scalar tail and every instruction-set clone round exactly like the
 * NumPy reference does, whatever the thread split.
 */
#include "gdfast.h"

#include <math.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Function multi-versioning: each span loop is compiled for AVX-512, AVX2 and
 * the portable baseline; the dynamic loader picks one for the running CPU. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(GD_NO_CLONES) && !defined(__clang__)
#define GD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define GD_HAVE_CLONES 1
#else
#define GD_CLONES
#define GD_HAVE_CLONES 0
#endif

/* Below 2 * GD_MIN_SPAN elements a thread team costs more than it gains. */
#define GD_MIN_SPAN ((int64_t)32768)
/* Spans start on multiples of 64 elements: a whole number of cache lines. */
#define GD_SPAN_ALIGN ((int64_t)64)

static int gd_requested_threads = 0;

int gd_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

void gd_set_num_threads(int n) { gd_requested_threads = n > 0 ? n : 0; }

int gd_get_num_threads(void)
{
#ifdef _OPENMP
    return gd_requested_threads > 0 ? gd_requested_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

int64_t gd_min_elements_per_thread(void) { return GD_MIN_SPAN; }

const char *gd_kernel_isa(void)
{
#if GD_HAVE_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "default";
}

/* Threads worth using for n elements. */
static int gd_team_size(int64_t n)
{
    int64_t threads = gd_get_num_threads();
    int64_t useful = n / GD_MIN_SPAN;
    if (threads > useful) threads = useful;
    return threads < 1 ? 1 : (int)threads;
}

/* The span [*lo, *lo + *len) of thread `thread` out of `team` over n elements. */
static inline void gd_thread_span(int64_t n, int thread, int team, int64_t *lo, int64_t *len)
{
    int64_t chunk = (n + team - 1) / team;
    chunk = (chunk + GD_SPAN_ALIGN - 1) / GD_SPAN_ALIGN * GD_SPAN_ALIGN;
    int64_t start = (int64_t)thread * chunk;
    if (start > n) start = n;
    int64_t stop = start + chunk < n ? start + chunk : n;
    *lo = start;
    *len = stop - start;
}

/* Run CALL with (lo, len) bound to each thread's span; one span when small. */
#ifdef _OPENMP
#define GD_FOR_SPANS(n, CALL)                                                  \
    do {                                                                       \
        int team_ = gd_team_size(n);                                           \
        if (team_ <= 1) {                                                      \
            const int64_t lo = 0, len = (n);                                   \
            CALL;                                                              \
        } else {                                                               \
            _Pragma("omp parallel num_threads(team_)")                         \
            {                                                                  \
                int64_t lo, len;                                               \
                gd_thread_span((n), omp_get_thread_num(), omp_get_num_threads(), \
                               &lo, &len);                                     \
                CALL;                                                          \
            }                                                                  \
        }                                                                      \
    } while (0)
#else
#define GD_FOR_SPANS(n, CALL)                                                  \
    do {                                                                       \
        const int64_t lo = 0, len = (n);                                       \
        CALL;                                                                  \
    } while (0)
#endif

#define GD_CAT_(a, b) a##b
#define GD_CAT(a, b) GD_CAT_(a, b)

#define REAL float
#define SFX _f32
#define SQRT sqrtf
#define FABS fabsf
#include "rules.inc"
#undef REAL
#undef SFX
#undef SQRT
#undef FABS

#define REAL double
#define SFX _f64
#define SQRT sqrt
#define FABS fabs
#include "rules.inc"
#undef REAL
#undef SFX
#undef SQRT
#undef FABS
