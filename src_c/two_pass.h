/* The rules whose step needs per-tensor norms (LAMB, Adafactor: docs/spec.md section 1.3),
 * run by their own entry point (src_c/two_pass.inc): pass 1 over fixed blocks, per-tensor
 * scalars, pass 2 the rule's gd_rules[] segments with hyper->per_tensor set. */
#ifndef GDFAST_TWO_PASS_H
#define GDFAST_TWO_PASS_H

#include "gdfast.h"

/* 1 if `rule` is a two-pass rule: it must be run by gd_step_two_pass, not gd_step. */
int gd_is_two_pass(const gd_rule *rule);
/* Doubles of scratch a two-pass step of these tensors needs. */
int64_t gd_two_pass_scratch(const gd_tensors *tensors);
/* One step of a two-pass rule (gd_is_two_pass); scratch: gd_two_pass_scratch(tensors)
 * doubles, written.  matrix: NULL, or 2 int64 per tensor, the rows n and columns m of its
 * last two dimensions (Adafactor's factored tensors: slots 2, 3, 4 hold the denominators,
 * R and C, adafactor.inc), 0 columns for a tensor that is not factored.  Callers
 * validate; never allocates nor fails.  No policy (t->lowp NULL). */
void gd_step_two_pass(const gd_rule *rule, const gd_tensors *tensors, const gd_hyper *hyper,
                      const int64_t *matrix, double *scratch);

/* Adafactor's row and column sums of g² (src_c/rules/adafactor.inc): rows_total = batches ·
 * rows rows of `cols` elements; row_sums: batches · rows doubles, col_sums: batches · cols. */
void adafactor_sums_f32(const float *grad, int64_t batches, int64_t rows, int64_t cols,
                        double *row_sums, double *col_sums);
void adafactor_sums_f64(const double *grad, int64_t batches, int64_t rows, int64_t cols,
                        double *row_sums, double *col_sums);

#endif
