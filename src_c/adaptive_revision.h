/*
 * AdaptiveRevision's server rule (McMahan & Streeter 2014; SPEC.md section 3), the C
 * kernel of gdfast.distributed's parameter server.  The NumPy reference is
 * gdfast/distributed/rules.py (`adaptive_revision`); these functions do the same
 * operations in the same order on each coordinate, so the results are its bits:
 *
 *   ḡ_fwd = ḡ − ḡ_read ;  η_old = α / √(z' + δ²)
 *   z ← (z + g²) + (2 g) ḡ_fwd ;  z' ← max(z, z')          (NaN wins, as numpy.maximum)
 *   r = √(z' + δ²) ;  x ← (x − (g / r) α) + (η_old − α / r) ḡ_fwd ;  ḡ ← ḡ + g
 *
 * (z, z' are stored minus δ², as the reference does: `sum_sq`, `sum_sq_max`.)
 *
 * Dense form: coordinate i of every array; gbar_read NULL reads ḡ itself (a push computed
 * on a fetch of the ḡ the server still has: ḡ_fwd = ḡ − ḡ, one array less to stream), and
 * gbar_keep, when not NULL, receives ḡ as it was before the update (the server's copy of
 * the ḡ that pending fetches read, taken in the same pass).  into_read (with gbar_read, no
 * gbar_keep): ḡ + g is written into gbar_read and gbar is only read, so that a fetch's copy
 * of ḡ that dies with this push becomes ḡ and ḡ, as it was, the pending fetches' copy (one
 * array less written than gbar_keep).  Indexed form: grad[j] and gbar_read[j] belong
 * to coordinate index[j] of x, gbar, sum_sq, sum_sq_max (a sparse push); the indices must
 * be distinct and in [0, size).  Each coordinate's arithmetic is independent of the
 * others, so the results do not depend on `threads` (OpenMP, static split) or on the
 * instruction set (gcc target_clones, no fused multiply-add: -ffp-contract=off).
 * Nothing here checks its arguments or allocates: the caller (the Cython wrapper
 * gdfast/distributed/_server_kernels.pyx) validates everything first.
 */
#ifndef GDFAST_ADAPTIVE_REVISION_H
#define GDFAST_ADAPTIVE_REVISION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void adaptive_revision_f32(float *x, const float *grad, const float *gbar_read, float *gbar,
                           float *gbar_keep, float *sum_sq, float *sum_sq_max, int64_t n,
                           double lr, double eps, int threads, int into_read);
void adaptive_revision_f64(double *x, const double *grad, const double *gbar_read, double *gbar,
                           double *gbar_keep, double *sum_sq, double *sum_sq_max, int64_t n,
                           double lr, double eps, int threads, int into_read);
void adaptive_revision_indexed_f32(float *x, const int64_t *index, const float *grad,
                                   const float *gbar_read, float *gbar, float *sum_sq,
                                   float *sum_sq_max, int64_t n_index, double lr, double eps,
                                   int threads);
void adaptive_revision_indexed_f64(double *x, const int64_t *index, const double *grad,
                                   const double *gbar_read, double *gbar, double *sum_sq,
                                   double *sum_sq_max, int64_t n_index, double lr, double eps,
                                   int threads);
/* 1 when built with OpenMP (otherwise `threads` is ignored and one thread runs). */
int adaptive_revision_openmp(void);

#ifdef __cplusplus
}
#endif

#endif /* GDFAST_ADAPTIVE_REVISION_H */
