# cython: language_level=3
"""The parameter server's AdaptiveRevision rule in C (src_c/adaptive_revision.c).

`adaptive_revision` checks every argument first (a TypeError or ValueError naming it, and
nothing written), then runs the kernel with the GIL released.  Its results are the bits of
the NumPy reference gdfast.distributed.rules.adaptive_revision for any thread count.
"""
from libc.stdint cimport int64_t

cimport numpy as cnp
import numpy as np

from gdfast import _validation as check

cdef extern from "adaptive_revision.h" nogil:
    void adaptive_revision_f32(float *x, const float *grad, const float *gbar_read,
                               float *gbar, float *gbar_keep, float *sum_sq,
                               float *sqrt_sum_sq_max, int64_t n, double lr, double eps,
                               int threads, int into_read)
    void adaptive_revision_f64(double *x, const double *grad, const double *gbar_read,
                               double *gbar, double *gbar_keep, double *sum_sq,
                               double *sqrt_sum_sq_max, int64_t n, double lr, double eps,
                               int threads, int into_read)
    void adaptive_revision_indexed_f32(float *x, const int64_t *index, const float *grad,
                                       const float *gbar_read, float *gbar, float *sum_sq,
                                       float *sqrt_sum_sq_max, int64_t n_index, double lr,
                                       double eps, int threads)
    void adaptive_revision_indexed_f64(double *x, const int64_t *index, const double *grad,
                                       const double *gbar_read, double *gbar, double *sum_sq,
                                       double *sqrt_sum_sq_max, int64_t n_index, double lr,
                                       double eps, int threads)
    int adaptive_revision_openmp()

cnp.import_array()

MAX_THREADS = 256


def openmp_enabled() -> bool:
    """Whether the kernel was built with OpenMP (otherwise `threads` > 1 runs one thread)."""
    return bool(adaptive_revision_openmp())


def adaptive_revision(x, grad, gbar_read, gbar, sum_sq, sqrt_sum_sq_max, *, lr, eps,
                      indices=None, threads=1, gbar_keep=None, gbar_into_read=False):
    """One AdaptiveRevision update in place (x, gbar, sum_sq, sqrt_sum_sq_max), in C.

    The arguments are the NumPy reference's (gdfast.distributed.rules.adaptive_revision):
    lr = α ≥ 0, eps = δ² > 0, all arrays 1-d, C-contiguous, of x's dtype (float32 or
    float64), the four updated ones writeable and sharing no memory with any other.
    indices=None: grad and gbar_read have x's length.  indices (distinct integers in
    [0, len(x))): a sparse push, grad[j] and gbar_read[j] are coordinate indices[j]'s
    and every other coordinate is neither read nor written (where the dense rule with
    g = 0 leaves it unchanged too, up to the sign of a zero x).  threads ≥ 1: OpenMP
    threads; the results are the same bits for any count.

    Dense pushes only: gbar_read=None reads ḡ itself (a push computed on a fetch of the ḡ
    the server still has; the reference's bits with gbar_read = gbar.copy()), and
    gbar_keep (an array like x, written) receives ḡ as it was before the update, in the
    same pass (the server's copy of the ḡ its pending fetches read).  gbar_into_read=True
    (with a writeable gbar_read, no gbar_keep): the new ḡ is written into gbar_read and gbar
    is left as it was (a fetch's copy of ḡ that dies with this push becomes ḡ, and ḡ the
    copy pending fetches read: one array less written than with gbar_keep).
    """
    lr = check.learning_rate("lr", lr)
    eps = check.positive("eps", eps)
    if check.integer("threads", threads, 1) > MAX_THREADS:
        raise ValueError(f"threads: expected an int in [1, {MAX_THREADS}], got {threads}")
    if not isinstance(gbar_into_read, bool):
        raise TypeError(f"gbar_into_read: expected a bool, got {type(gbar_into_read).__name__}")
    if gbar_into_read and (gbar_read is None or gbar_keep is not None or indices is not None):
        raise ValueError(
            "gbar_into_read: expected a dense push with gbar_read and no gbar_keep"
        )
    x = check.vector("x", x, None, True)
    written = {"x": x}
    updated = (("sum_sq", sum_sq), ("sqrt_sum_sq_max", sqrt_sum_sq_max))
    updated += (("gbar_read", gbar_read),) if gbar_into_read else (("gbar", gbar),)
    if gbar_keep is not None:
        updated += (("gbar_keep", gbar_keep),)
    for name, value in updated:
        written[name] = check.vector(name, value, x.dtype, True)
        if value.shape != x.shape:
            raise ValueError(f"{name}: expected x's shape {x.shape}, got {value.shape}")
    if gbar_into_read:
        check.vector("gbar", gbar, x.dtype, False)
        if gbar.shape != x.shape:
            raise ValueError(f"gbar: expected x's shape {x.shape}, got {gbar.shape}")
    index = None if indices is None else check.distinct_indices("indices", indices, x.shape[0])
    if index is not None:
        for name, value in (("gbar_read", gbar_read), ("gbar_keep", gbar_keep)):
            if (value is None) == (name == "gbar_read"):
                expected = "an array" if value is None else "None"
                raise ValueError(f"{name}: expected {expected} with indices (a sparse push)")
    pushed = x.shape[0] if index is None else index.shape[0]
    read = {"grad": grad} if gbar_read is None else {"grad": grad, "gbar_read": gbar_read}
    if gbar_into_read:
        read = {"grad": grad, "gbar": gbar}
    for name, value in read.items():
        check.vector(name, value, x.dtype, False)
        if value.shape[0] != pushed:
            what = "x's length" if index is None else "one value per index"
            raise ValueError(f"{name}: expected {pushed} entries ({what}), got {value.shape[0]}")
    spans = {name: _span(value) for name, value in {**written, **read}.items() if value.size}
    for name in written:
        for other, span in spans.items():
            if other != name and name in spans and check.spans_overlap(spans[name], span):
                raise ValueError(
                    f"{name} and {other}: expected arrays that share no memory ({name} is "
                    "updated in place)"
                )
    _run(x, grad, gbar_read, gbar, gbar_keep, sum_sq, sqrt_sum_sq_max, index, lr, eps, int(threads),
         gbar_into_read)


cdef tuple _span(cnp.ndarray array):
    """[low, high) addresses of a C-contiguous 1-d array's elements (check.byte_span's
    answer for such arrays, at a per-push cost the server notices: a push makes 6-7)."""
    cdef size_t low = <size_t>cnp.PyArray_DATA(array)
    return (low, low + <size_t>cnp.PyArray_NBYTES(array))


ctypedef fused real:
    float
    double


cdef void _run(x, grad, gbar_read, gbar, gbar_keep, sum_sq, sqrt_sum_sq_max, index, double lr,
               double eps, int threads, bint into_read):
    cdef int64_t n = x.shape[0] if index is None else index.shape[0]
    cdef const int64_t[::1] index_view
    cdef const int64_t *index_pointer = NULL
    if n == 0:
        return
    if index is not None:
        index_view = index
        index_pointer = &index_view[0]
    if x.dtype == np.float32:
        _update[float](x, grad, gbar_read, gbar, gbar_keep, sum_sq, sqrt_sum_sq_max, index_pointer,
                       n, lr, eps, threads, into_read)
    else:
        _update[double](x, grad, gbar_read, gbar, gbar_keep, sum_sq, sqrt_sum_sq_max,
                        index_pointer, n, lr, eps, threads, into_read)


cdef void _update(real[::1] x, const real[::1] grad, const real[::1] gbar_read,
                  const real[::1] gbar, real[::1] gbar_keep, real[::1] sum_sq,
                  real[::1] sqrt_sum_sq_max, const int64_t *index, int64_t n, double lr, double eps,
                  int threads, bint into_read):
    """The kernel of x's dtype; gbar_read and gbar_keep None: NULL (dense pushes only).
    gbar (read-only view) is written unless into_read, and gbar_read only then: the
    wrapper checked the written one is writeable."""
    cdef const real *read = NULL
    cdef real *keep = NULL
    if gbar_read is not None:
        read = &gbar_read[0]
    if gbar_keep is not None:
        keep = &gbar_keep[0]
    with nogil:
        if real is float:
            if index == NULL:
                adaptive_revision_f32(&x[0], &grad[0], read, <float *>&gbar[0], keep,
                                      &sum_sq[0], &sqrt_sum_sq_max[0], n, lr, eps, threads,
                                      into_read)
            else:
                adaptive_revision_indexed_f32(&x[0], index, &grad[0], read, <float *>&gbar[0],
                                              &sum_sq[0], &sqrt_sum_sq_max[0], n, lr, eps, threads)
        else:
            if index == NULL:
                adaptive_revision_f64(&x[0], &grad[0], read, <double *>&gbar[0], keep,
                                      &sum_sq[0], &sqrt_sum_sq_max[0], n, lr, eps, threads,
                                      into_read)
            else:
                adaptive_revision_indexed_f64(&x[0], index, &grad[0], read, <double *>&gbar[0],
                                              &sum_sq[0], &sqrt_sum_sq_max[0], n, lr, eps, threads)
