# cython: language_level=3
"""The Hogwild! trainers of src_c/hogwild.c, called with the GIL released.

Typed memoryviews in, pointers and sizes out.  The caller (gdfast.hogwild)
has validated everything: dtypes matching (`floating` is float32 or
float64 for data, weights and accumulators alike), contiguous, indices in
range, finite values, sizes.  Nothing here checks again; the C cannot fail.
"""
from cython cimport floating
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "hogwild.h" nogil:
    ctypedef struct hw_options:
        int loss
        int rule
        int mode
        int n_threads
        int fit_intercept
        int shuffle
        double lr
        double l2
        double eps
        uint64_t seed
        int64_t epoch
        int64_t sync_every
        int64_t hot_begin
        int64_t tracked_begin
        double *clocks

    enum: HW_CLOCK_FIELDS
    int hw_openmp_enabled()
    uint64_t hw_stream_state(uint64_t seed, int64_t epoch, int thread)
    uint64_t hw_next(uint64_t *state)
    int64_t hw_replica_size(int64_t n_hot, int64_t itemsize, int64_t n_threads)

    double hw_linear_epoch_f32(const int64_t *indptr, const int32_t *indices, const float *data,
                               int64_t n_rows, const double *y, const double *row_weights,
                               float *weights, int64_t n_features, float *sum_sq, int64_t *order,
                               float *replicas, const hw_options *options)
    double hw_linear_epoch_f64(const int64_t *indptr, const int32_t *indices, const double *data,
                               int64_t n_rows, const double *y, const double *row_weights,
                               double *weights, int64_t n_features, double *sum_sq, int64_t *order,
                               double *replicas, const hw_options *options)
    void hw_linear_margin_f32(const int64_t *indptr, const int32_t *indices, const float *data,
                              int64_t n_rows, const float *weights, int64_t n_features,
                              int fit_intercept, int n_threads, double *margin)
    void hw_linear_margin_f64(const int64_t *indptr, const int32_t *indices, const double *data,
                              int64_t n_rows, const double *weights, int64_t n_features,
                              int fit_intercept, int n_threads, double *margin)
    double hw_mf_epoch_f32(const int64_t *users, const int64_t *items, const double *ratings,
                           int64_t n_ratings, float *user_factors, float *item_factors,
                           int64_t rank, float *user_sum_sq, float *item_sum_sq, int64_t *order,
                           const hw_options *options)
    double hw_mf_epoch_f64(const int64_t *users, const int64_t *items, const double *ratings,
                           int64_t n_ratings, double *user_factors, double *item_factors,
                           int64_t rank, double *user_sum_sq, double *item_sum_sq,
                           int64_t *order, const hw_options *options)
    void hw_mf_predict_f32(const int64_t *users, const int64_t *items, int64_t n_ratings,
                           const float *user_factors, const float *item_factors, int64_t rank,
                           int n_threads, double *prediction)
    void hw_mf_predict_f64(const int64_t *users, const int64_t *items, int64_t n_ratings,
                           const double *user_factors, const double *item_factors,
                           int64_t rank, int n_threads, double *prediction)


def openmp_enabled() -> bool:
    """True when the trainers were compiled with OpenMP."""
    return bool(hw_openmp_enabled())


def replica_size(int64_t n_hot, int64_t itemsize, int64_t n_threads) -> int:
    """Entries of the replicas' scratch for `n_hot` coordinates and `n_threads` threads
    (hw_replica_size)."""
    return hw_replica_size(n_hot, itemsize, n_threads)


def stream_draws(uint64_t seed, int64_t epoch, int thread, Py_ssize_t count) -> list:
    """The first `count` draws of the generator of (seed, epoch, thread)."""
    cdef uint64_t state = hw_stream_state(seed, epoch, thread)
    return [hw_next(&state) for _ in range(count)]


cdef hw_options make_options(int loss, int rule, int mode, int n_threads, bint fit_intercept,
                             bint shuffle, double lr, double l2, double eps, uint64_t seed,
                             int64_t epoch, int64_t sync_every=0, int64_t hot_begin=0,
                             int64_t tracked_begin=0):
    cdef hw_options options
    options.loss = loss
    options.rule = rule
    options.mode = mode
    options.n_threads = n_threads
    options.fit_intercept = fit_intercept
    options.shuffle = shuffle
    options.lr = lr
    options.l2 = l2
    options.eps = eps
    options.seed = seed
    options.epoch = epoch
    options.sync_every = sync_every
    options.hot_begin = hot_begin
    options.tracked_begin = tracked_begin
    options.clocks = NULL
    return options


CLOCK_FIELDS = HW_CLOCK_FIELDS


def linear_epoch(const int64_t[::1] indptr, const int32_t[::1] indices,
                 const floating[::1] data, const double[::1] y,
                 const double[::1] row_weights, floating[::1] weights, floating[::1] sum_sq,
                 int64_t[::1] order, floating[::1] replicas, *,
                 int loss, int rule, int mode, int n_threads, bint fit_intercept, bint shuffle,
                 double lr, double l2, double eps, uint64_t seed, int64_t epoch,
                 int64_t sync_every, int64_t hot_begin, int64_t tracked_begin,
                 double[::1] clocks=None) -> float:
    """One epoch of the linear model in place; returns the progressive loss sum.

    `row_weights` is None when every row weighs 1, `sum_sq` None for SGD.  `weights` has
    n_features + 1 entries.  `replicas` is None
    when `sync_every` is 0, else replica_size(n_features + 1 - hot_begin, itemsize,
    n_threads) entries of scratch.  `clocks`, if given (2 + CLOCK_FIELDS * n_threads
    entries), receives where the epoch's time went (hw_options.clocks in hogwild.h).
    """
    cdef hw_options options = make_options(loss, rule, mode, n_threads, fit_intercept,
                                           shuffle, lr, l2, eps, seed, epoch, sync_every,
                                           hot_begin, tracked_begin)
    if clocks is not None:
        if clocks.shape[0] < 2 + HW_CLOCK_FIELDS * max(n_threads, 1):
            raise ValueError(f"clocks: expected at least {2 + HW_CLOCK_FIELDS * max(n_threads, 1)} "
                             f"entries for {n_threads} threads, got {clocks.shape[0]}")
        options.clocks = &clocks[0]
    cdef int64_t n_features = weights.shape[0] - 1
    if sync_every > 0 and replicas is not None:
        # the C loop indexes the replicas by these: check them here, it trusts them
        if not 0 <= hot_begin <= tracked_begin <= n_features:
            raise ValueError(f"hot_begin, tracked_begin: expected 0 <= {hot_begin} <= "
                             f"{tracked_begin} <= n_features = {n_features}")
        if replicas.shape[0] < hw_replica_size(n_features + 1 - hot_begin, sizeof(floating),
                                               max(n_threads, 1)):
            raise ValueError("replicas: smaller than replica_size(...) entries")
    cdef floating *replica_block = &replicas[0] if replicas is not None else NULL
    cdef const double *row_weight = (
        &row_weights[0] if row_weights is not None and row_weights.shape[0] else NULL)
    cdef int64_t n_rows = indptr.shape[0] - 1
    cdef floating *accumulator = &sum_sq[0] if sum_sq is not None else NULL
    cdef double total
    with nogil:
        if floating is float:
            total = hw_linear_epoch_f32(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                                        &data[0] if data.shape[0] else NULL, n_rows,
                                        &y[0] if y.shape[0] else NULL, row_weight, &weights[0],
                                        n_features, accumulator,
                                        &order[0] if order.shape[0] else NULL, replica_block,
                                        &options)
        else:
            total = hw_linear_epoch_f64(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                                        &data[0] if data.shape[0] else NULL, n_rows,
                                        &y[0] if y.shape[0] else NULL, row_weight, &weights[0],
                                        n_features, accumulator,
                                        &order[0] if order.shape[0] else NULL, replica_block,
                                        &options)
    return total


def linear_margin(const int64_t[::1] indptr, const int32_t[::1] indices,
                  const floating[::1] data, const floating[::1] weights, bint fit_intercept,
                  int n_threads, double[::1] margin) -> None:
    """margin[i] = intercept + x_i · w, in place."""
    cdef int64_t n_rows = indptr.shape[0] - 1
    cdef int64_t n_features = weights.shape[0] - 1
    if n_rows == 0:
        return
    with nogil:
        if floating is float:
            hw_linear_margin_f32(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                                 &data[0] if data.shape[0] else NULL, n_rows, &weights[0],
                                 n_features, fit_intercept, n_threads, &margin[0])
        else:
            hw_linear_margin_f64(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                                 &data[0] if data.shape[0] else NULL, n_rows, &weights[0],
                                 n_features, fit_intercept, n_threads, &margin[0])


def mf_epoch(const int64_t[::1] users, const int64_t[::1] items, const double[::1] ratings,
             floating[:, ::1] user_factors, floating[:, ::1] item_factors,
             floating[:, ::1] user_sum_sq, floating[:, ::1] item_sum_sq, int64_t[::1] order, *,
             int rule, int mode, int n_threads, bint shuffle, double lr, double l2, double eps,
             uint64_t seed, int64_t epoch) -> float:
    """One epoch of matrix factorization in place; returns Σ ½ e² (progressive).

    The sum-of-squares buffers are None for SGD.
    """
    cdef hw_options options = make_options(0, rule, mode, n_threads, False, shuffle, lr, l2,
                                           eps, seed, epoch)
    cdef int64_t n_ratings = ratings.shape[0]
    cdef int64_t rank = user_factors.shape[1]
    cdef floating *user_acc = &user_sum_sq[0, 0] if user_sum_sq is not None else NULL
    cdef floating *item_acc = &item_sum_sq[0, 0] if item_sum_sq is not None else NULL
    cdef double total
    if n_ratings == 0:
        return 0.0
    with nogil:
        if floating is float:
            total = hw_mf_epoch_f32(&users[0], &items[0], &ratings[0], n_ratings,
                                    &user_factors[0, 0], &item_factors[0, 0], rank,
                                    user_acc, item_acc, &order[0], &options)
        else:
            total = hw_mf_epoch_f64(&users[0], &items[0], &ratings[0], n_ratings,
                                    &user_factors[0, 0], &item_factors[0, 0], rank,
                                    user_acc, item_acc, &order[0], &options)
    return total


def mf_predict(const int64_t[::1] users, const int64_t[::1] items,
               const floating[:, ::1] user_factors, const floating[:, ::1] item_factors,
               int n_threads, double[::1] prediction) -> None:
    """prediction[n] = U[users[n]] · V[items[n]], in place."""
    cdef int64_t n_ratings = users.shape[0]
    cdef int64_t rank = user_factors.shape[1]
    if n_ratings == 0:
        return
    with nogil:
        if floating is float:
            hw_mf_predict_f32(&users[0], &items[0], n_ratings, &user_factors[0, 0],
                              &item_factors[0, 0], rank, n_threads, &prediction[0])
        else:
            hw_mf_predict_f64(&users[0], &items[0], n_ratings, &user_factors[0, 0],
                              &item_factors[0, 0], rank, n_threads, &prediction[0])
