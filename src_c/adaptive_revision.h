/*
 * AdaptiveRevision's server rule (McMahan & Streeter 2014; SPEC.md section 3), the C
 * kernel of gdfast.distributed's parameter server.  The NumPy reference is
 * gdfast/distributed/rules.py (`adaptive_revision`); these functions do the same
 * operations in the same order on each coordinate, so the results are its bits:
 *
 *   ḡ_fwd = ḡ − ḡ_read ;  η_old = α / r'
 *   z ← (z + g²) + (2 g) ḡ_fwd ;  r' ← max(√max(z + δ², 0), r')   (NaN wins, as numpy.maximum)
 *   x ← (x − (g / r') α) + (η_old − α / r') ḡ_fwd ;  ḡ ← ḡ + g
 *
 * z is stored minus δ² (`sum_sq`), and in place of the paper's z' its square root
 * r' = √z' = √(z' − δ² + δ²) (`sqrt_sum_sq_max`, √δ² at start): max, + δ² and √ are
 * monotone and correctly rounded, so √(max(z, z') + δ²) rounds to max(√(z + δ²), √(z' + δ²))
 * (where z + δ² < 0, z < 0 ≤ z' − δ² and the floored root 0 never wins): one square root per
 * coordinate instead of two, the same bits of x, ḡ and z.
 *
 * Dense form: coordinate i of every array; gbar_read NULL reads ḡ itself (a push computed
 * on a fetch of the ḡ the server still has: ḡ_fwd = ḡ − ḡ, one array less to stream), and
 * gbar_keep, when not NULL, receives ḡ as it was before the update (the server's copy of
 * the ḡ that pending fetches read, taken in the same pass).  into_read (with gbar_read, no
 * gbar_keep): ḡ + g is written into gbar_read and gbar is only read, so that a fetch's copy
 * of ḡ that dies with this push becomes ḡ and ḡ, as it was, the pending fetches' copy (one
 * array less written than gbar_keep).  Indexed form: grad[j] and gbar_read[j] belong
 * to coordinate index[j] of x, gbar, sum_sq, sqrt_sum_sq_max (a sparse push); the indices must
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
                           float *gbar_keep, float *sum_sq, float *sqrt_sum_sq_max, int64_t n,
                           double lr, double eps, int threads, int into_read);
void adaptive_revision_f64(double *x, const double *grad, const double *gbar_read, double *gbar,
                           double *gbar_keep, double *sum_sq, double *sqrt_sum_sq_max, int64_t n,
                           double lr, double eps, int threads, int into_read);
void adaptive_revision_indexed_f32(float *x, const int64_t *index, const float *grad,
                                   const float *gbar_read, float *gbar, float *sum_sq,
                                   float *sqrt_sum_sq_max, int64_t n_index, double lr, double eps,
                                   int threads);
void adaptive_revision_indexed_f64(double *x, const int64_t *index, const double *grad,
                                   const double *gbar_read, double *gbar, double *sum_sq,
                                   double *sqrt_sum_sq_max, int64_t n_index, double lr, double eps,
                                   int threads);
/* 1 when built with OpenMP (otherwise `threads` is ignored and one thread runs). */
int adaptive_revision_openmp(void);

#ifdef __cplusplus
}
#endif

#endif /* GDFAST_ADAPTIVE_REVISION_H */
