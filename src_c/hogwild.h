/*
 * gdfast Hogwild! trainers (SPEC.md section 3): SGD on sparse data by several
 * threads sharing one parameter vector.
 *
 * Two models, each trained one epoch per call:
 *   - a sparse linear model on CSR rows (losses logistic, squared, hinge);
 *   - matrix factorization on (user, item, rating) triplets.
 * Update rules SGD (the caller passes this epoch's decayed step size) and
 * Adagrad per coordinate (dense accumulators, sparse updates).
 *
 * Modes:
 *   HW_MODE_SERIAL   one thread, one deterministic order: bitwise repeatable;
 *   HW_MODE_LOCKED   n_threads threads, every update (read, gradient, write)
 *                    under one lock: the baseline of Niu et al. (2011);
 *   HW_MODE_HOGWILD  n_threads threads, no locks at all.
 * Every epoch draws one permutation of all examples with the generator of
 * (seed, epoch); the threads take consecutive chunks of it, each the next
 * unclaimed chunk when done with its last (a dynamic schedule).  So every thread
 * sees examples from the whole data set whatever their stored order, and with
 * one thread every mode visits the examples in the serial order.
 * Multi-threaded runs are not bitwise repeatable: threads
 * read coordinates that others are writing.
 *
 * Replicas of the hot coordinates (linear model, HW_MODE_HOGWILD with more than
 * one thread, options->sync_every > 0): the coordinates hot_begin .. n_features
 * (the most frequent features, numbered last by the caller, and the intercept)
 * are written by nearly every update, so their cache lines bounce between the
 * cores.  Each thread then keeps a private replica of them: its updates read
 * and step the replica, and every sync_every examples (and at the end) it adds
 * what its replica moved since the last flush to the shared coordinates
 * (the flushes take turns under a lock) and reloads them (DimmWitted's
 * per-core replicas, HOGWILD!++).
 * Adagrad's sums of those coordinates are replicated the same way and add up;
 * a weight's move is scaled by the contraction of the moves other threads
 * flushed meanwhile, as if their rows had come first (hw_sync in hogwild.c).  The other
 * coordinates stay shared as in plain Hogwild!.  With replicas, the caller
 * gives rows whose indices ascend (the hot ones are then each row's last).
 *
 * Arithmetic is done in double; weights and accumulators are stored in the
 * array's dtype after each update (float32 storage rounds there, and only
 * there).  Functions never allocate, never fail and never touch Python:
 * callers validate first (indices in range, finite values, sizes).
 */
#ifndef GDFAST_HOGWILD_H
#define GDFAST_HOGWILD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { HW_LOSS_LOGISTIC = 0, HW_LOSS_SQUARED = 1, HW_LOSS_HINGE = 2 };
enum { HW_RULE_SGD = 0, HW_RULE_ADAGRAD = 1 };
enum { HW_MODE_SERIAL = 0, HW_MODE_LOCKED = 1, HW_MODE_HOGWILD = 2 };

/* The settings of one epoch. */
typedef struct {
    int loss;           /* HW_LOSS_*; linear model only */
    int rule;           /* HW_RULE_* */
    int mode;           /* HW_MODE_* */
    int n_threads;      /* threads of locked/hogwild; serial uses one */
    int fit_intercept;  /* linear model: weights[n_features] is the intercept */
    int shuffle;        /* 0: the stored order, no generator */
    double lr;          /* this epoch's step size η (decay already applied) */
    double l2;          /* λ: adds λ·w to the gradient of each touched coordinate */
    double eps;         /* Adagrad's ε, inside the square root */
    uint64_t seed;
    int64_t epoch;      /* counts from 0; selects the generators' streams */
    int64_t sync_every; /* linear model, hogwild mode: examples between a thread's flushes of
                           its replicas; 0: no replicas (every coordinate shared) */
    int64_t hot_begin;  /* the first replicated coordinate (<= n_features, the intercept) */
    int64_t tracked_begin; /* with replicas: the first coordinate whose contraction is tracked
                              (hot_begin <= tracked_begin <= n_features); the replicated ones
                              before it add their moves whole at a flush */
    double *clocks;     /* linear model: NULL, or HW_CLOCKS(n_threads) entries the epoch fills
                           with where its time went (below) */
} hw_options;

/* The clocks of one epoch of the linear model (options->clocks), for finding where the CPU
 * time of a multi-threaded run goes without hardware counters: [0] CPU seconds of the part
 * before the threads start (the permutation, the replicas' reset), [1] wall seconds of the
 * threads' region, then per thread t at 2 + HW_CLOCK_FIELDS * t: its CPU seconds from its
 * start to its last row (its own thread clock: time spent waiting for the others at the end
 * is not in it), the part of them spent in flushes, the rows it trained, and the wall
 * seconds from its last row to the region's end (waiting for the others). */
enum { HW_CLOCK_FIELDS = 4 };
#define HW_CLOCKS(n_threads) (2 + HW_CLOCK_FIELDS * (n_threads))

/* 1 when compiled with OpenMP (otherwise every mode runs on one thread). */
int hw_openmp_enabled(void);

/* The first value of the generator stream of (seed, epoch, thread) and the
 * next value after `state`: exposed so that the NumPy reference can check it
 * draws the same orders. */
uint64_t hw_stream_state(uint64_t seed, int64_t epoch, int thread);
uint64_t hw_next(uint64_t *state);

/* One epoch of a linear model.  Row i of X is indices/data[indptr[i]..indptr[i+1]),
 * target y[i] (±1 for logistic and hinge), weight row_weights[i] (a factor on
 * the row's loss and so on its gradient, not on the L2 term; NULL: every row
 * weighs 1, bit for bit the unweighted algorithm).  weights has n_features + 1
 * entries, the last the intercept (left alone unless fit_intercept).  sum_sq
 * (Adagrad's G, same size) is NULL for SGD.  order is scratch of n_rows
 * entries.  replicas is scratch of hw_replica_size(n_hot, itemsize, n_threads)
 * entries (NULL when options->sync_every is 0).  Returns the sum
 * over rows of the loss at the weights each row saw just before its update
 * (the "progressive" loss). */
double hw_linear_epoch_f32(const int64_t *indptr, const int32_t *indices, const float *data,
                           int64_t n_rows, const double *y, const double *row_weights,
                           float *weights, int64_t n_features, float *sum_sq, int64_t *order,
                           float *replicas,
                           const hw_options *options);
double hw_linear_epoch_f64(const int64_t *indptr, const int32_t *indices, const double *data,
                           int64_t n_rows, const double *y, const double *row_weights,
                           double *weights, int64_t n_features, double *sum_sq, int64_t *order,
                           double *replicas,
                           const hw_options *options);

/* Entries of the replicas' scratch of an epoch with n_threads threads and n_hot
 * replicated coordinates of `itemsize`-byte values: the shared log-contractions, then per
 * thread four arrays of values (weights and Adagrad sums, each as the thread's value and as
 * last flushed) and two of doubles, each padded to whole 64-byte lines (hogwild.c). */
int64_t hw_replica_size(int64_t n_hot, int64_t itemsize, int64_t n_threads);

/* margin[i] = intercept + Σ_k data_k · weights[indices_k] over row i, in that order. */
void hw_linear_margin_f32(const int64_t *indptr, const int32_t *indices, const float *data,
                          int64_t n_rows, const float *weights, int64_t n_features,
                          int fit_intercept, int n_threads, double *margin);
void hw_linear_margin_f64(const int64_t *indptr, const int32_t *indices, const double *data,
                          int64_t n_rows, const double *weights, int64_t n_features,
                          int fit_intercept, int n_threads, double *margin);

/* One epoch of matrix factorization: rating r of user u on item i is fitted by
 * Σ_k U[u,k] V[i,k] (row-major factors, `rank` columns).  Squared error ½ e²,
 * e = prediction − r; both factor rows step from their values before the step.
 * Sum-of-squares buffers are NULL for SGD.  Returns Σ ½ e² (progressive). */
double hw_mf_epoch_f32(const int64_t *users, const int64_t *items, const double *ratings,
                       int64_t n_ratings, float *user_factors, float *item_factors, int64_t rank,
                       float *user_sum_sq, float *item_sum_sq, int64_t *order,
                       const hw_options *options);
double hw_mf_epoch_f64(const int64_t *users, const int64_t *items, const double *ratings,
                       int64_t n_ratings, double *user_factors, double *item_factors,
                       int64_t rank, double *user_sum_sq, double *item_sum_sq, int64_t *order,
                       const hw_options *options);

/* prediction[n] = Σ_k U[users[n],k] V[items[n],k]. */
void hw_mf_predict_f32(const int64_t *users, const int64_t *items, int64_t n_ratings,
                       const float *user_factors, const float *item_factors, int64_t rank,
                       int n_threads, double *prediction);
void hw_mf_predict_f64(const int64_t *users, const int64_t *items, int64_t n_ratings,
                       const double *user_factors, const double *item_factors, int64_t rank,
                       int n_threads, double *prediction);

#ifdef __cplusplus
}
#endif

#endif /* GDFAST_HOGWILD_H */
