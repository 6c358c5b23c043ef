/*
 * gdfast Hogwild! trainers: see hogwild.h for the contract.
 *
 * The file is read twice by the preprocessor: once for the code shared by
 * both dtypes (generator, order, chunks, losses, locks), then, through the
 * self-includes at the end of that part, once per dtype with HW_REAL set,
 * so the float32 and float64 trainers are one text.
 *
 * Why the hot loops look the way they do:
 *   - hogwild threads read and write shared coordinates with plain loads and
 *     stores, as Niu et al. (2011), LightFM and gensim do; a coordinate may be
 *     overwritten between a thread's read and its write, which is the
 *     algorithm's accepted cost, and why only serial runs are repeatable;
 *   - a row's margin is accumulated in double in the stored order of its
 *     non-zeros, and each coordinate's step is computed in double and rounded
 *     once to the stored dtype, so the NumPy reference can follow it exactly.
 */
#ifndef HW_REAL /* ---------------- part 1: shared by both dtypes ---------------- */

#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 199309L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#endif

#include "hogwild.h"

#include <math.h>
#include <stddef.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#include <pthread.h>
#endif

int hw_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* splitmix64 (Steele, Lea, Flood 2014): one 64-bit state, a full-period
 * stream, good enough mixing for shuffling and cheap to restate in Python. */
uint64_t hw_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Distinct, decorrelated streams for every (seed, epoch, thread): each input is
 * folded in through a full splitmix64 round. */
uint64_t hw_stream_state(uint64_t seed, int64_t epoch, int thread)
{
    uint64_t state = seed;
    state = hw_next(&state) ^ (uint64_t)epoch;
    state = hw_next(&state) ^ (uint64_t)thread;
    return state;
}

/* order[0..n) := this epoch's visiting order of all n examples: a Fisher-Yates
 * shuffle from the back with the generator of (seed, epoch, 0), j = draw mod (i + 1).
 * The modulo bias is below n / 2^64, far below anything measurable.  One order for
 * every thread count, drawn before the threads start. */
static void hw_fill_order(int64_t *order, int64_t n, const hw_options *options)
{
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    if (!options->shuffle) return;
    uint64_t state = hw_stream_state(options->seed, options->epoch, 0);
    for (int64_t i = n - 1; i > 0; --i) {
        int64_t j = (int64_t)(hw_next(&state) % (uint64_t)(i + 1));
        int64_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
}

/* Threads deal the order among themselves in chunks: each takes the next unclaimed
 * chunk when it has finished its last, so a thread that is descheduled (a busy core)
 * holds back at most one chunk, and every thread sees rows from the whole permutation
 * whatever the input's row order.  Chunks are small enough for about 16 per thread
 * (an even end of the epoch) and at most 256 rows (one atomic add per chunk is then
 * negligible next to the rows' work). */
static int64_t hw_chunk_size(int64_t n, int n_threads)
{
    int64_t chunk = n / ((int64_t)n_threads * 16);
    if (chunk > 256) chunk = 256;
    return chunk < 1 ? 1 : chunk;
}

/* The dispatcher's counter: the first unclaimed position of the order, alone in its
 * 64-byte line (the threads' other data on the master's stack must not share it). */
typedef struct {
    _Alignas(64) int64_t next;
    char padding[64 - sizeof(int64_t)];
} hw_dispatcher;

/* The first position of the next chunk (>= n when the epoch is done). */
static inline int64_t hw_claim(hw_dispatcher *dispatcher, int64_t chunk)
{
    return __atomic_fetch_add(&dispatcher->next, chunk, __ATOMIC_RELAXED);
}

/* Loss of margin z against target y, and its derivative d loss / d z.
 * Logistic: log(1 + exp(−yz)) with one exp and one log1p on the stable side. */
static inline double hw_loss(int loss, double z, double y, double *derivative)
{
    if (loss == HW_LOSS_LOGISTIC) {
        double m = y * z;
        if (m > 0.0) {
            double e = exp(-m);
            *derivative = -y * e / (1.0 + e);
            return log1p(e);
        }
        double e = exp(m);
        *derivative = -y / (1.0 + e);
        return log1p(e) - m;
    }
    if (loss == HW_LOSS_SQUARED) {
        double residual = z - y;
        *derivative = residual;
        return 0.5 * residual * residual;
    }
    double slack = 1.0 - y * z; /* hinge */
    *derivative = slack > 0.0 ? -y : 0.0;
    return slack > 0.0 ? slack : 0.0;
}

/* log(x) for a contraction x in [0, 1], and exp(d) for a sum of such logs d <= 0: the
 * flushes take them for every stepped replicated coordinate (thousands per flush), and most
 * contractions are close to 1 (rare features, small steps), where a few terms of the series
 * are exact to 1e-5 (log: x >= 0.9, error < (1 − x)^5 / 5 / x < 3e-6; exp: d >= −0.25,
 * error < |d|^5 / 120 < 1e-5); libm otherwise.  The correction they feed is first-order anyway. */
static inline double hw_log_near_one(double x)
{
    if (x < 0.9) return log(x > 1e-300 ? x : 1e-300);
    const double u = 1.0 - x;
    return -u * (1.0 + u * (0.5 + u * (1.0 / 3.0 + u * 0.25)));
}

static inline double hw_exp_near_zero(double d)
{
    if (d == 0.0) return 1.0;
    if (d < -0.25) return exp(d);
    return 1.0 + d * (1.0 + d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0))));
}

/* Seconds of a clock: the calling thread's CPU time or the wall (monotonic) time. */
static double hw_seconds(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* The replicas' scratch from its first 64-byte line on: the shared log-contractions first. */
static char *hw_replica_base(void *scratch)
{
    uintptr_t address = (uintptr_t)scratch;
    return (char *)((address + 63) & ~(uintptr_t)63);
}

/* The first position in [begin, end) of the ascending indices[] whose value is >= bound
 * (end if none), by bisection. */
static inline int64_t hw_first_at_least(const int32_t *indices, int64_t begin, int64_t end,
                                        int64_t bound)
{
    while (begin < end) {
        const int64_t middle = begin + (end - begin) / 2;
        if (indices[middle] < bound) begin = middle + 1;
        else end = middle;
    }
    return begin;
}

/* The loss's second derivative in the margin, from its first (hw_loss's `derivative`):
 * logistic σ(yz)(1 − σ(yz)) = |d|(1 − |d|) for labels ±1; squared 1; hinge 0. */
static inline double hw_curvature(int loss, double derivative)
{
    if (loss == HW_LOSS_LOGISTIC) {
        double d = fabs(derivative);
        return d * (1.0 - d);
    }
    return loss == HW_LOSS_SQUARED ? 1.0 : 0.0;
}

#ifdef _OPENMP
/* Fork safety.  A child made by fork() has only the forking thread: libgomp's pool
 * of worker threads is gone, but libgomp still believes it exists, and the child's
 * first parallel region with more than one thread waits for them forever (a hang,
 * issue 18).  So a forked child runs everything on one thread (the serial algorithm,
 * same results) from the fork on; a team of one does not touch the pool. */
static volatile int hw_in_forked_child = 0;
static void hw_mark_forked_child(void) { hw_in_forked_child = 1; }
__attribute__((constructor)) static void hw_register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, hw_mark_forked_child);
}
#endif

/* At most `requested` threads; one in a forked child. */
static inline int hw_threads(int requested)
{
#ifdef _OPENMP
    if (hw_in_forked_child) return 1;
#endif
    return requested > 0 ? requested : 1;
}

/* The threads an epoch runs with: one in serial mode, without OpenMP or in a forked child. */
static int hw_team(const hw_options *options, int64_t n)
{
#ifdef _OPENMP
    int64_t threads = options->mode == HW_MODE_SERIAL ? 1 : hw_threads(options->n_threads);
    if (threads > n) threads = n;
    return threads < 1 ? 1 : (int)threads;
#else
    (void)options;
    (void)n;
    return 1;
#endif
}

/* This thread's number in its team (0 without OpenMP). */
static inline int hw_thread_number(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Each array of the replicas fills whole 64-byte lines, so no two threads' replicas (nor
 * a replica and its flushed copy) share a cache line. */
static int64_t hw_replica_line(int64_t n_hot, int64_t itemsize)
{
    const int64_t per_line = 64 / itemsize;
    return (n_hot + per_line - 1) / per_line * per_line;
}

/* Entries (of `itemsize` bytes) of one thread's replica: four arrays of values (weights
 * and Adagrad sums, each as the thread's value and as last flushed) and two of doubles
 * (the contraction since the last flush, the shared log-contraction at the last reload). */
static int64_t hw_replica_thread_size(int64_t n_hot, int64_t itemsize)
{
    return 4 * hw_replica_line(n_hot, itemsize) + 2 * hw_replica_line(n_hot, 8) * 8 / itemsize;
}

int64_t hw_replica_size(int64_t n_hot, int64_t itemsize, int64_t n_threads)
{
    /* the shared log-contractions, every thread's replica, and slack to align */
    return hw_replica_line(n_hot, 8) * 8 / itemsize +
           n_threads * hw_replica_thread_size(n_hot, itemsize) + 64 / itemsize;
}

/* The one lock of locked mode (a no-op without OpenMP, where one thread runs). */
#ifdef _OPENMP
typedef omp_lock_t hw_lock;
static void hw_lock_init(hw_lock *lock) { omp_init_lock(lock); }
static void hw_lock_destroy(hw_lock *lock) { omp_destroy_lock(lock); }
static inline void hw_lock_set(hw_lock *lock) { omp_set_lock(lock); }
static inline void hw_lock_unset(hw_lock *lock) { omp_unset_lock(lock); }
#else
typedef int hw_lock;
static void hw_lock_init(hw_lock *lock) { *lock = 0; }
static void hw_lock_destroy(hw_lock *lock) { (void)lock; }
static inline void hw_lock_set(hw_lock *lock) { (void)lock; }
static inline void hw_lock_unset(hw_lock *lock) { (void)lock; }
#endif

#define HW_CAT2(a, b) a##b
#define HW_CAT(a, b) HW_CAT2(a, b)
#define HW_FN(name) HW_CAT(name, HW_SUFFIX)

#define HW_REAL float
#define HW_SUFFIX _f32
#include "hogwild.c"
#undef HW_REAL
#undef HW_SUFFIX

#define HW_REAL double
#define HW_SUFFIX _f64
#include "hogwild.c"
#undef HW_REAL
#undef HW_SUFFIX

#else /* ---------------- part 2: the functions of one dtype ---------------- */

/* One coordinate's step with gradient g: SGD θ ← θ − η g, or Adagrad
 * G ← G + g², θ ← θ − η g / √(G + ε) with the stored (rounded) G.  Returns the step's
 * rate (η, or η / √(G + ε)): the replicas' contraction needs it, the other callers drop it. */
static inline double HW_FN(hw_step)(HW_REAL *param, HW_REAL *sum_sq, double grad, double lr,
                                    double eps)
{
    if (sum_sq != NULL) {
        HW_REAL accumulated = (HW_REAL)((double)*sum_sq + grad * grad);
        double root = sqrt((double)accumulated + eps);
        *sum_sq = accumulated;
        *param = (HW_REAL)((double)*param - lr * grad / root);
        return lr / root;
    }
    *param = (HW_REAL)((double)*param - lr * grad);
    return lr;
}

/* One example of the linear model; returns its loss before the update, times row_weight
 * (which also scales the loss's derivative: 1.0 changes nothing, bit for bit).
 * Without replicas (replica_weights NULL) every coordinate is in the shared arrays.  With
 * them, the coordinates from hot_begin on (the intercept last) are this thread's replicas
 * replica_weights/replica_sum_sq[j - hot_begin]; the row's indices ascend (the caller sorts
 * them), so its hot non-zeros are its last ones, from `split` on, and each loop runs
 * without a test per non-zero.  Each step of a tracked coordinate (from tracked_begin on,
 * the hottest features and the intercept: their non-zeros are the row's last, from
 * `tracked` on) also multiplies its contraction by 1 − rate · (x_j² · loss'' + λ), floored
 * at 0: how much this step shrank the coordinate's distance to its optimum along it (see
 * hw_sync).  Always inlined: the path without replicas has no trace of them. */
static inline __attribute__((always_inline)) double HW_FN(hw_linear_example)(
    const int32_t *indices, const HW_REAL *values, int64_t nnz, double y, double row_weight,
    HW_REAL *weights, int64_t n_features, HW_REAL *sum_sq, HW_REAL *replica_weights,
    HW_REAL *replica_sum_sq, double *contraction, const hw_options *options)
{
    const int64_t hot = options->hot_begin;
    int64_t split = nnz, tracked = nnz;
    HW_REAL *intercept = &weights[n_features];
    HW_REAL *intercept_sum_sq = sum_sq ? &sum_sq[n_features] : NULL;
    if (replica_weights != NULL) {
        /* split := the first hot non-zero, tracked := the first tracked one, by bisection
         * (~7 steps each a row instead of a backward scan over its ~60 hot non-zeros) */
        split = hw_first_at_least(indices, 0, nnz, hot);
        tracked = hw_first_at_least(indices, split, nnz, options->tracked_begin);
        intercept = &replica_weights[n_features - hot];
        intercept_sum_sq = sum_sq ? &replica_sum_sq[n_features - hot] : NULL;
    }
    double margin = options->fit_intercept ? (double)*intercept : 0.0;
    for (int64_t k = 0; k < split; ++k)
        margin += (double)values[k] * (double)weights[indices[k]];
    for (int64_t k = split; k < nnz; ++k)
        margin += (double)values[k] * (double)replica_weights[indices[k] - hot];
    double derivative;
    double loss = row_weight * hw_loss(options->loss, margin, y, &derivative);
    const double curvature =
        replica_weights != NULL ? row_weight * hw_curvature(options->loss, derivative) : 0.0;
    derivative *= row_weight; /* the row's weight scales its loss, not the L2 term */
    const double lr = options->lr, l2 = options->l2, eps = options->eps;
    if (derivative == 0.0 && l2 == 0.0) return loss; /* every step would be θ − 0 */
    for (int64_t k = 0; k < split; ++k) {
        int32_t j = indices[k];
        double grad = derivative * (double)values[k] + l2 * (double)weights[j];
        HW_FN(hw_step)(&weights[j], sum_sq ? &sum_sq[j] : NULL, grad, lr, eps);
    }
    for (int64_t k = split; k < tracked; ++k) {
        int64_t j = indices[k] - hot;
        double grad = derivative * (double)values[k] + l2 * (double)replica_weights[j];
        HW_FN(hw_step)(&replica_weights[j], sum_sq ? &replica_sum_sq[j] : NULL, grad, lr, eps);
    }
    for (int64_t k = tracked; k < nnz; ++k) {
        int64_t j = indices[k] - hot;
        double x = (double)values[k];
        double grad = derivative * x + l2 * (double)replica_weights[j];
        double rate = HW_FN(hw_step)(&replica_weights[j], sum_sq ? &replica_sum_sq[j] : NULL,
                                     grad, lr, eps);
        double kept = 1.0 - rate * (x * x * curvature + l2);
        contraction[j] *= kept > 0.0 ? kept : 0.0;
    }
    if (options->fit_intercept) {
        double rate = HW_FN(hw_step)(intercept, intercept_sum_sq, derivative, lr, eps);
        if (replica_weights != NULL) {
            double kept = 1.0 - rate * curvature;
            contraction[n_features - hot] *= kept > 0.0 ? kept : 0.0;
        }
    }
    return loss;
}

/* A thread's replica: four arrays of values and two of doubles, each in whole lines, in
 * the block hw_replica_size counted; `shared_log` is every thread's (one per coordinate). */
typedef struct {
    HW_REAL *weights, *weights_flushed, *sum_sq, *sum_sq_flushed;
    double *contraction; /* Π (1 − rate · curvature) of this thread's steps since its flush */
    double *seen_log;    /* shared_log at this thread's last reload */
    double *shared_log;  /* Σ log(contraction) of every flush of the epoch so far */
} HW_FN(hw_replica);

static HW_FN(hw_replica) HW_FN(hw_replica_open)(void *scratch, int thread, int64_t n_hot,
                                                const HW_REAL *weights, const HW_REAL *sum_sq)
{
    const int64_t itemsize = (int64_t)sizeof(HW_REAL);
    const int64_t line = hw_replica_line(n_hot, itemsize), line_d = hw_replica_line(n_hot, 8);
    char *base = hw_replica_base(scratch);
    HW_REAL *block = (HW_REAL *)(base + 8 * line_d) +
                     thread * hw_replica_thread_size(n_hot, itemsize);
    double *doubles = (double *)(block + 4 * line);
    HW_FN(hw_replica) replica = {block,   block + line, block + 2 * line, block + 3 * line,
                                 doubles, doubles + line_d, (double *)base};
    for (int64_t i = 0; i < n_hot; ++i) {
        replica.seen_log[i] = replica.shared_log[i];
        replica.weights[i] = weights[i];
        replica.weights_flushed[i] = replica.weights[i];
        replica.sum_sq[i] = sum_sq != NULL ? sum_sq[i] : 0;
        replica.sum_sq_flushed[i] = replica.sum_sq[i];
        replica.contraction[i] = 1.0;
    }
    return replica;
}

/* A thread's flush of its replica into the shared coordinates `weights`/`sum_sq` (from the
 * first replicated one), then its reload from them.
 *
 * Adagrad's sums add the thread's whole increase: a sum of squares is the same sum in any
 * order.  A weight's move is different: two threads that step a coordinate from the same
 * value, each correcting (part of) the same error, would overshoot if their moves were
 * simply added (the intercept, in every row, swings from flush to flush at a large step;
 * Adagrad with every feature replicated ends below serial's objective).  Done one after
 * the other, the second thread's rows would have started from the first's result: along
 * the coordinate, with a locally quadratic loss, a run of steps moves it by (1 − ρ) times
 * its distance e to the optimum, where ρ = Π (1 − rate·curvature) is the run's
 * contraction, so runs A then B move it by (1 − ρ_A) e + (1 − ρ_B) ρ_A e = Δ_A + ρ_A Δ_B.
 * So each flush adds its move Δ times the contraction of the moves other threads flushed
 * since this thread's last reload (exp of the change in the shared sum of log-contractions,
 * which the flush's own log joins).  With small steps ρ ≈ 1 and the moves add up, as in plain
 * Hogwild!; a thread that ran alone (the other descheduled) adds its whole move; with
 * large ones the later moves shrink as the serial order would have shrunk them.  This is
 * a diagonal, first-order correction: it ignores how coordinates interact through the
 * margin, as the replicas themselves do for K examples.
 *
 * Flushes take turns under one lock (the caller holds it): only flushes touch the shared
 * replicated coordinates, so a flush is a plain loop of loads and stores, where one atomic
 * compare-and-swap per coordinate and array (a locked instruction each, on lines the other
 * thread's flushes wrote) made the flushes 16% of the threads' time on the rcv1 profile.
 * The first n_untracked coordinates (before hw_options.tracked_begin) keep no contraction:
 * their moves add whole. */
/* shared += delta (in double, rounded once to the stored dtype; nothing written for 0), then
 * the replica's value and its last flushed copy := the shared value (the reload). */
static inline void HW_FN(hw_flush_value)(HW_REAL *shared, HW_REAL *value, HW_REAL *flushed,
                                         double delta)
{
    if (delta != 0.0) *shared = (HW_REAL)((double)*shared + delta);
    *value = *flushed = *shared;
}

static void HW_FN(hw_sync)(HW_FN(hw_replica) *replica, HW_REAL *weights, HW_REAL *sum_sq,
                           int64_t n_untracked, int64_t n_hot)
{
    for (int64_t i = 0; i < n_hot; ++i) {
        double scale = 1.0; /* untracked, or not stepped since the last flush: the move whole */
        if (i >= n_untracked) {
            const double kept = replica->contraction[i];
            if (kept != 1.0) {
                const double before = replica->shared_log[i];
                replica->shared_log[i] = before + hw_log_near_one(kept);
                scale = hw_exp_near_zero(before - replica->seen_log[i]);
                replica->contraction[i] = 1.0;
            }
            replica->seen_log[i] = replica->shared_log[i];
        }
        HW_FN(hw_flush_value)(&weights[i], &replica->weights[i], &replica->weights_flushed[i],
                              scale * ((double)replica->weights[i] -
                                       (double)replica->weights_flushed[i]));
        if (sum_sq != NULL) /* sums of squares add whole */
            HW_FN(hw_flush_value)(&sum_sq[i], &replica->sum_sq[i], &replica->sum_sq_flushed[i],
                                  (double)replica->sum_sq[i] - (double)replica->sum_sq_flushed[i]);
    }
}

/* The next example of this thread: the row at `position` of the order, its loss returned.
 * Prefetches the following rows' data (shuffled rows sit at random places in memory). */
static inline __attribute__((always_inline)) double HW_FN(hw_linear_position)(
    const int64_t *indptr, const int32_t *indices, const HW_REAL *data, const double *y,
    const double *row_weights, HW_REAL *weights, int64_t n_features, HW_REAL *sum_sq,
    const int64_t *order,
    int64_t position, int64_t end, HW_REAL *replica_weights, HW_REAL *replica_sum_sq,
    double *contraction, const hw_options *options)
{
    int64_t row = order[position];
    int64_t start = indptr[row];
    if (position + 2 < end) __builtin_prefetch(&indptr[order[position + 2]]);
    if (position + 1 < end) {
        int64_t following = order[position + 1];
        __builtin_prefetch(&y[following]); /* its target: a random place in 8 bytes a row */
        if (row_weights) __builtin_prefetch(&row_weights[following]);
        for (int64_t k = indptr[following]; k < indptr[following + 1]; k += 16) {
            __builtin_prefetch(&indices[k]);
            __builtin_prefetch(&data[k]);
            if (sizeof(HW_REAL) == 8) __builtin_prefetch(&data[k + 8]);
        }
    }
    return HW_FN(hw_linear_example)(indices + start, data + start, indptr[row + 1] - start,
                                     y[row], row_weights ? row_weights[row] : 1.0, weights,
                                     n_features, sum_sq, replica_weights, replica_sum_sq,
                                     contraction, options);
}

double HW_FN(hw_linear_epoch)(const int64_t *indptr, const int32_t *indices,
                              const HW_REAL *data, int64_t n_rows, const double *y,
                              const double *row_weights, HW_REAL *weights, int64_t n_features,
                              HW_REAL *sum_sq, int64_t *order, HW_REAL *replicas,
                              const hw_options *options)
{
    const int locked = options->mode == HW_MODE_LOCKED;
    const int n_threads = hw_team(options, n_rows);
    const int replicated = options->mode == HW_MODE_HOGWILD && n_threads > 1 &&
                           options->sync_every > 0 && replicas != NULL;
    const int64_t hot_begin = options->hot_begin, n_hot = n_features + 1 - hot_begin;
    const int64_t n_untracked = options->tracked_begin - hot_begin;
    const int64_t sync_every = options->sync_every;
    const int64_t chunk = hw_chunk_size(n_rows, n_threads);
    hw_dispatcher next = {0};
    double total = 0.0;
    double *const clocks = options->clocks;
    const double serial_start = clocks ? hw_seconds(CLOCK_THREAD_CPUTIME_ID) : 0.0;
    hw_lock lock; /* locked mode: every update; with replicas: the flushes */
    hw_lock_init(&lock);
    hw_fill_order(order, n_rows, options);
    if (replicated) {
        double *shared_log = (double *)hw_replica_base(replicas);
        for (int64_t i = 0; i < n_hot; ++i) shared_log[i] = 0.0;
    }
    const double region_start = clocks ? hw_seconds(CLOCK_MONOTONIC) : 0.0;
    if (clocks) {
        clocks[0] = hw_seconds(CLOCK_THREAD_CPUTIME_ID) - serial_start;
        for (int t = 0; t < n_threads * HW_CLOCK_FIELDS; ++t) clocks[2 + t] = 0.0;
    }
#pragma omp parallel num_threads(n_threads) reduction(+ : total)
    {
        double local = 0.0;
        HW_FN(hw_replica) replica = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        int64_t since_flush = 0, rows = 0;
        double flush_seconds = 0.0, flush_start = 0.0;
        const double cpu_start = clocks ? hw_seconds(CLOCK_THREAD_CPUTIME_ID) : 0.0;
        if (replicated) { /* under the lock: another thread may be flushing already */
            hw_lock_set(&lock);
            replica = HW_FN(hw_replica_open)(replicas, hw_thread_number(), n_hot,
                                             weights + hot_begin,
                                             sum_sq ? sum_sq + hot_begin : NULL);
            hw_lock_unset(&lock);
        }
        for (int64_t begin = hw_claim(&next, chunk); begin < n_rows;
             begin = hw_claim(&next, chunk)) {
            const int64_t end = begin + chunk < n_rows ? begin + chunk : n_rows;
            for (int64_t position = begin; position < end; ++position) {
                if (replicated) {
                    local += HW_FN(hw_linear_position)(
                        indptr, indices, data, y, row_weights, weights, n_features, sum_sq,
                        order, position, end, replica.weights, replica.sum_sq,
                        replica.contraction, options);
                    /* due: flush, waiting for a flush of another thread to end (only
                     * trying the lock and flushing later when it is taken spread the
                     * losses under load: see docs/hogwild.md) */
                    if (++since_flush == sync_every) {
                        hw_lock_set(&lock);
                        if (clocks) flush_start = hw_seconds(CLOCK_THREAD_CPUTIME_ID);
                        HW_FN(hw_sync)(&replica, weights + hot_begin,
                                       sum_sq ? sum_sq + hot_begin : NULL, n_untracked, n_hot);
                        hw_lock_unset(&lock);
                        if (clocks)
                            flush_seconds += hw_seconds(CLOCK_THREAD_CPUTIME_ID) - flush_start;
                        since_flush = 0;
                    }
                    continue;
                }
                if (locked) hw_lock_set(&lock);
                local += HW_FN(hw_linear_position)(indptr, indices, data, y, row_weights,
                                                   weights, n_features, sum_sq, order, position,
                                                   end, NULL, NULL, NULL, options);
                if (locked) hw_lock_unset(&lock);
            }
            rows += end - begin;
        }
        if (clocks) flush_start = hw_seconds(CLOCK_THREAD_CPUTIME_ID);
        if (replicated) {
            hw_lock_set(&lock);
            HW_FN(hw_sync)(&replica, weights + hot_begin, sum_sq ? sum_sq + hot_begin : NULL,
                           n_untracked, n_hot);
            hw_lock_unset(&lock);
        }
        if (clocks) { /* each thread its own entries, written once */
            const double cpu_end = hw_seconds(CLOCK_THREAD_CPUTIME_ID);
            double *mine = clocks + 2 + HW_CLOCK_FIELDS * hw_thread_number();
            mine[0] = cpu_end - cpu_start;
            mine[1] = flush_seconds + (cpu_end - flush_start);
            mine[2] = (double)rows;
            mine[3] = hw_seconds(CLOCK_MONOTONIC); /* made relative after the region */
        }
        total += local;
    }
    hw_lock_destroy(&lock);
    if (clocks) {
        const double region_end = hw_seconds(CLOCK_MONOTONIC);
        clocks[1] = region_end - region_start;
        for (int t = 0; t < n_threads; ++t) {
            double *done = &clocks[2 + HW_CLOCK_FIELDS * t + 3];
            *done = region_end - *done;
        }
    }
    return total;
}

void HW_FN(hw_linear_margin)(const int64_t *indptr, const int32_t *indices, const HW_REAL *data,
                             int64_t n_rows, const HW_REAL *weights, int64_t n_features,
                             int fit_intercept, int n_threads, double *margin)
{
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(hw_threads(n_threads))
    for (int64_t row = 0; row < n_rows; ++row) {
        double z = fit_intercept ? (double)weights[n_features] : 0.0;
        for (int64_t k = indptr[row]; k < indptr[row + 1]; ++k)
            z += (double)data[k] * (double)weights[indices[k]];
        margin[row] = z;
    }
}

/* One rating of the factorization; returns ½ e² before the update. */
static inline double HW_FN(hw_mf_rating)(HW_REAL *user_row, HW_REAL *item_row,
                                         HW_REAL *user_sum_sq, HW_REAL *item_sum_sq,
                                         int64_t rank, double rating, const hw_options *options)
{
    double prediction = 0.0;
    for (int64_t k = 0; k < rank; ++k) prediction += (double)user_row[k] * (double)item_row[k];
    double error = prediction - rating;
    const double lr = options->lr, l2 = options->l2, eps = options->eps;
    for (int64_t k = 0; k < rank; ++k) {
        double user_value = (double)user_row[k], item_value = (double)item_row[k];
        double user_grad = error * item_value + l2 * user_value;
        double item_grad = error * user_value + l2 * item_value;
        HW_FN(hw_step)(&user_row[k], user_sum_sq ? &user_sum_sq[k] : NULL, user_grad, lr, eps);
        HW_FN(hw_step)(&item_row[k], item_sum_sq ? &item_sum_sq[k] : NULL, item_grad, lr, eps);
    }
    return 0.5 * error * error;
}

double HW_FN(hw_mf_epoch)(const int64_t *users, const int64_t *items, const double *ratings,
                          int64_t n_ratings, HW_REAL *user_factors, HW_REAL *item_factors,
                          int64_t rank, HW_REAL *user_sum_sq, HW_REAL *item_sum_sq,
                          int64_t *order, const hw_options *options)
{
    const int locked = options->mode == HW_MODE_LOCKED;
    const int n_threads = hw_team(options, n_ratings);
    const int64_t chunk = hw_chunk_size(n_ratings, n_threads);
    hw_dispatcher next = {0};
    double total = 0.0;
    hw_lock lock;
    hw_lock_init(&lock);
    hw_fill_order(order, n_ratings, options);
#pragma omp parallel num_threads(n_threads) reduction(+ : total)
    {
        double local = 0.0;
        for (int64_t begin = hw_claim(&next, chunk); begin < n_ratings;
             begin = hw_claim(&next, chunk)) {
            const int64_t end = begin + chunk < n_ratings ? begin + chunk : n_ratings;
            for (int64_t position = begin; position < end; ++position) {
                int64_t n = order[position];
                int64_t user = users[n] * rank, item = items[n] * rank;
                if (position + 1 < end) { /* the next rating's factor rows, ahead of time */
                    int64_t following = order[position + 1];
                    __builtin_prefetch(&user_factors[users[following] * rank], 1);
                    __builtin_prefetch(&item_factors[items[following] * rank], 1);
                }
                if (locked) hw_lock_set(&lock);
                local += HW_FN(hw_mf_rating)(user_factors + user, item_factors + item,
                                             user_sum_sq ? user_sum_sq + user : NULL,
                                             item_sum_sq ? item_sum_sq + item : NULL,
                                             rank, ratings[n], options);
                if (locked) hw_lock_unset(&lock);
            }
        }
        total += local;
    }
    hw_lock_destroy(&lock);
    return total;
}

void HW_FN(hw_mf_predict)(const int64_t *users, const int64_t *items, int64_t n_ratings,
                          const HW_REAL *user_factors, const HW_REAL *item_factors,
                          int64_t rank, int n_threads, double *prediction)
{
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(hw_threads(n_threads))
    for (int64_t n = 0; n < n_ratings; ++n) {
        const HW_REAL *user_row = user_factors + users[n] * rank;
        const HW_REAL *item_row = item_factors + items[n] * rank;
        double value = 0.0;
        for (int64_t k = 0; k < rank; ++k) value += (double)user_row[k] * (double)item_row[k];
        prediction[n] = value;
    }
}

#endif
