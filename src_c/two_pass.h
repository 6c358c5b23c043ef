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
 * doubles, written.  Callers validate; never allocates nor fails.  No policy (t->lowp NULL). */
void gd_step_two_pass(const gd_rule *rule, const gd_tensors *tensors, const gd_hyper *hyper,
                      double *scratch);

#endif
