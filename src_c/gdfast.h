/*
 * gdfast C kernels: one function per update rule and dtype.
 *
 * Every kernel updates `n` contiguous elements in place: the parameter and the
 * rule's state buffers are read and written, the gradient is only read.  The
 * math is SPEC.md section 1; argument names follow the Python API (state
 * buffers carry the names of the optimizer's state entries).  Per-call scalars
 * (bias corrections, step sizes) are computed once, in double, with pow().
 * `step` is the step count t of this update (t counts from 1).
 *
 * Kernels never allocate, never fail and never touch Python: callers
 * validate first.  Large arrays are split over an OpenMP team in
 * cache-line-aligned spans; the element-wise math is the same in every span,
 * so the result does not depend on the number of threads.
 */
#ifndef GDFAST_H
#define GDFAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the library was compiled with OpenMP, 0 otherwise. */
int gd_openmp_enabled(void);
/* Threads used by the kernels; n <= 0 restores OpenMP's default (OMP_NUM_THREADS). */
void gd_set_num_threads(int n);
int gd_get_num_threads(void);
/* Fewest elements a thread is given: steps below twice this run on one thread. */
int64_t gd_min_elements_per_thread(void);
/* Instruction set of the kernel clone selected on this CPU ("avx512f", "avx2", "default"). */
const char *gd_kernel_isa(void);

/* ---- Multi-tensor steps -------------------------------------------------
 * One call updates a whole list of tensors in one parallel region: the
 * tensors are laid end to end (each padded to a multiple of 64 elements) and
 * the threads share that index space in cache-line-aligned spans, so a list
 * of many small tensors costs one thread team, not one per tensor.
 */
enum { GD_SLOT_PARAM = 0, GD_SLOT_GRAD = 1, GD_SLOT_STATE = 2, GD_MAX_SLOTS = 5 };

/* A rule's per-call scalars (Adam's bias-corrected step size), computed by the first segment
 * of a call and reused by the segments after it that share them (the same hyper-parameters
 * and t): the rows of one chunk of a row-sparse step (gd_row_chunk), the stages of one
 * tensor's staged segment (gd_staged_segment).  filled: 0 until then. */
typedef struct {
    int filled;
    double value[4];
} gd_call_scalars;

typedef struct {
    int64_t count;              /* tensors in the list */
    int slots;                  /* pointers per tensor: param, grad, then the state buffers */
    void *const *data;          /* data[k * slots + slot] */
    const int64_t *size;        /* elements of tensor k */
    const int64_t *step;        /* t of this update for tensor k (counts from 1) */
    const unsigned char *is_double; /* 1: float64 tensor, 0: float32 */
    /* Nadam's momentum schedule only (else NULL): tensor k's μ product P = μ_1 ⋯ μ_(t−1),
     * a 0-d float64 (mu_product_is_double[k]) or float32 array that the step multiplies by
     * this step's μ_t (nadam_prepare), as torch keeps it. */
    void *const *mu_product;
    const unsigned char *mu_product_is_double;
    /* The dtype policy (SPEC L.5/L.6), or NULL: every slot float32/float64 as is_double says. */
    const struct gd_lowp *lowp;
    /* Scalars shared by every segment of this list, or NULL: each segment computes its own
     * (a dense step's tensors each have their own t). */
    gd_call_scalars *scalars;
} gd_tensors;

/* ---- Low precision (docs/spec-low-precision.md, SPEC L.5/L.6) ------------------------------
 * A slot's storage.  A tensor with a slot not GD_NATIVE (or a master / a parameter copy) runs
 * one of two ways, with the same bits: *fused*, where the rule's span loop was compiled for
 * the tensor's layout (fused.inc: the widening and rounding inside the rule's own loop), or
 * else *staged*: the driver widens blocks of it into float32 scratch, runs the rule's float32
 * segment there, and rounds or re-encodes what the rule wrote (lowp.h's arithmetic). */
enum {
    GD_NATIVE = 0,      /* float32 (or float64, is_double), used in place */
    GD_BF16 = 1,        /* bfloat16 bit patterns (uint16) */
    GD_F16 = 2,         /* IEEE float16 bit patterns (uint16) */
    GD_Q8_SIGNED = 3,   /* 8-bit codes (uint8), the signed dynamic map, a scale per block */
    GD_Q8_UNSIGNED = 4, /* 8-bit codes (uint8), the unsigned dynamic map, a scale per block */
};
/* Largest block of 8-bit state (elements). */
#define GD_LOWP_MAX_BLOCK 4096

typedef struct gd_lowp {
    const unsigned char *format; /* format[k * slots + slot]; the gradient slot is only read */
    void *const *master;         /* master[k]: tensor k's float32 master weights, or NULL */
    void *const *param_copy;     /* param_copy[k]: a 16-bit copy written each step, or NULL */
    const unsigned char *copy_format; /* copy_format[k]: GD_BF16 or GD_F16 */
    float *const *absmax;        /* absmax[k * slots + slot]: an 8-bit slot's block scales */
    const int64_t *tensor;       /* tensor[k]: its index in the optimizer (the generator's) */
    int64_t block_size;          /* 8-bit blocks: a positive multiple of 16, at most 4096 */
    uint64_t seed;               /* the generator's seed (SPEC L.2) */
    int stochastic;              /* 16-bit stores: 0 nearest even, 1 stochastic */
} gd_lowp;

/* The two 8-bit maps (256 increasing float32 values each: gdfast.formats.DYNAMIC_SIGNED and
 * DYNAMIC_UNSIGNED), set once before any 8-bit step; 0, or -1 for a map the encoder's table
 * cannot hold. */
int gd_lowp_set_maps(const float *signed_code, const float *unsigned_code);

/* Every rule's hyper-parameters and named variants; each rule reads the ones it
 * has (rules.inc gives each variant's formula).  Zero means the SPEC.md form,
 * except grad_scale (1: off) and the two flags marked "paper: 1". */
typedef struct {
    double lr, momentum, beta1, beta2, eps, rho;
    double grad_scale;          /* every rule: g ← g · (REAL)grad_scale, first; 1 is exact */
    double weight_decay;        /* λ: L2 (g ← g + λθ), or decoupled (θ ← θ(1 − ηλ)) */
    double dampening;           /* Momentum/Nesterov: d, v ← γ v + (1 − d)·… */
    double lr_decay;            /* Adagrad: η_t = η / (1 + (t − 1) lr_decay) */
    double momentum_decay;      /* Nadam with momentum_schedule: ψ */
    int maximize;               /* ascend: g ← −g */
    int decoupled_weight_decay; /* weight_decay is decoupled (AdamW) rather than L2 */
    int eps_inside;             /* Adagrad/RMSprop: ε inside √ (paper: 1); AdaMax: inside max */
    int lr_in_buffer;           /* Momentum/Nesterov/RMSprop: η inside the buffer (paper: 1) */
    int eps_hat;                /* Adam/AMSGrad: Kingma & Ba's ε̂ (Keras) */
    int bias_correction;        /* AMSGrad: bias-corrected (torch, Keras) */
    int max_of_v_hat;           /* AMSGrad: maximum of v̂ rather than v (optax) */
    int centered;               /* RMSprop: centered (grad_avg slot) */
    int momentum_schedule;      /* Nadam: Dozat's μ_t schedule (mu_product) */
    /* Not a hyper-parameter: a two-pass step's per-tensor scalars (LAMB's τ, Adafactor's step
     * size), set by gd_step_two_pass for its pass 2 (src_c/two_pass.h); NULL otherwise. */
    const double *per_tensor;
    /* Not a hyper-parameter either: gd_roofline's streams, bit s set where slot s is written. */
    int roofline_written;
    /* Each rule's own fields: the GD_HYPER(type, name) lines of its file, src_c/rules/<rule>.inc,
     * which setup.py gathers into rules_list.inc (kernels.c's gd_hyper_fields[] names them). */
#define GD_HYPER(type, name) type name;
#define GD_RULE_FIELDS
#include "rules_list.inc"
#undef GD_RULE_FIELDS
#undef GD_HYPER
} gd_hyper;

/* Updates elements [lo, lo + len) of tensor k: the rule's math for one dtype (rules.inc). */
typedef void (*gd_segment_fn)(const gd_tensors *t, int64_t k, int64_t lo, int64_t len,
                              const gd_hyper *h);

/* The catalogue of kernels: one entry per rule, listed once, in kernels.c's gd_rules[].
 * `name` is the `kernel` of the rule's Python declaration (gdfast/catalogue). */
typedef struct {
    const char *name;
    gd_segment_fn segment_f32, segment_f64;
    /* Run once per step on the calling thread before the segments (NULL: none): the update of
     * per-tensor scalar state, which must happen once per tensor, not once per chunk. */
    void (*prepare)(const gd_tensors *tensors, const gd_hyper *hyper);
    int rows;                   /* 1: it takes row-sparse steps (gd_step_rows) */
} gd_rule;

extern const gd_rule gd_rules[];
extern const int gd_rule_count;
/* The entry of gd_rules[] named `name`, or NULL. */
const gd_rule *gd_find_rule(const char *name);

/* One step of `rule` over a list of tensors (the only way a dense step runs). */
void gd_step(const gd_rule *rule, const gd_tensors *tensors, const gd_hyper *hyper);

/* The memory limit of a step, for benchmarks: a rule's streams with next to no math, with
 * the same thread split.  Every slot is read; those of hyper->roofline_written (bit s: slot
 * s, at most four) are written too, each with the sum of the read-only ones (one to three)
 * added; none written: the read ones are summed (a reduction sweep).  A rule with s state
 * buffers: param and the states written, the gradient read. */
void gd_roofline(const gd_tensors *tensors, const gd_hyper *hyper);

/* gd_hyper's fields by name, for the Python binding: {name, offset, is_int}, ending with
 * a NULL name.  A new field of gd_hyper gets its line in kernels.c's gd_hyper_fields[]. */
typedef struct {
    const char *name;
    size_t offset;
    int is_int;
} gd_hyper_field;
extern const gd_hyper_field gd_hyper_fields[];

/* ---- lowpf: fused low-precision span loops (issue 12) ---- */
/* A step with a dtype policy runs the rule's fused span loop (src_c/fused.inc) for the layouts
 * it has one for, staging the rest.  mode 1 (default): the widest fused instance the CPU has
 * (AVX-512 or AVX2); 2: the AVX2 one even on an AVX-512 CPU; 0: every policy staged (the tests
 * compare the three bit for bit).  Returns the instance that now runs: "avx512", "avx2",
 * "build" (a build without multiversioning: one instance) or "staged".  Not thread-safe
 * against a running step. */
const char *gd_lowp_set_fused(int mode);

/* The layout indices (fused.inc: H * 24 + P * 8 + G * 4 + S * 2 + R) that `rule` runs fused
 * with the instance gd_lowp_set_fused chose, as bits of the result; 0 when it stages them all
 * (for the tests: the layouts the documents call fused must be). */
uint64_t gd_lowp_fused_layouts(const gd_rule *rule);

/* ---- Row-sparse steps ----------------------------------------------------
 * One 2-D parameter (n_rows x dim, C order) and its state buffers, updated on the
 * rows a gradient names: `values` row i is the gradient of row indices[i].
 * Duplicate indices are summed first, in the order they occur, starting from 0
 * (numpy.add.at into zeros); then each distinct row gets the rule's element math
 * (the span loop of the dense step) with its summed gradient, the scalars of step t.
 * Rows no index names are not read or written, nor is their state (lazy update).
 * The distinct rows are shared over the threads with a static schedule; each row's
 * math is the same whichever thread does it, so results do not depend on the
 * thread count.  The caller checks everything (indices in [0, n_rows), shapes,
 * dtypes, no aliasing) and provides the scratch buffers.
 */
typedef struct {
    void *param;                        /* n_rows x dim */
    void *state[GD_MAX_SLOTS - 2];      /* the rule's state buffers, each n_rows x dim */
    int n_state;                        /* buffers in `state` */
    int is_double;                      /* 1: float64, 0: float32 (all arrays) */
    int64_t n_rows, dim;
    int64_t step;                       /* t of this update (counts from 1) */
    int64_t n_indices;
    const int64_t *indices;             /* n_indices, each in [0, n_rows) */
    const void *values;                 /* n_indices x dim */
    /* scratch, written by the call: */
    int64_t *order;                     /* 4 * n_indices: (index, position) pairs, twice */
    int64_t *group_start;               /* n_indices + 1 */
    void *summed;                       /* n_indices x dim: one summed gradient per distinct row */
} gd_rows;

/* A row-sparse step of `rule` (rule->rows is 1); returns the number of distinct rows it
 * updated. */
int64_t gd_step_rows(const gd_rule *rule, const gd_rows *rows, const gd_hyper *hyper);

/* ---- Reductions (sums of squares in a fixed order) ---- */
/* Σ x² of each tensor of a list and of the whole list, in the fixed order of
 * docs/spec-reductions.md: blocks of GD_SUM_BLOCK elements of each tensor; in a block,
 * element i squared in double into lane i mod GD_SUM_LANES (in element order), the lanes
 * added in order; a tensor's block sums added in block order; the tensors' sums added in
 * list order.  The blocks are shared by the step runtime's threads, each summed whole by
 * one thread: the same bits for any thread count and instruction set.  Float32 data is
 * widened to double before squaring (no overflow, no rounding of the squares).
 * data[k]: tensor k's size[k] contiguous elements, float64 if is_double[k] else float32.
 * block_sums: scratch of gd_sum_blocks(size, count) doubles (written: each block's sum).
 * per_tensor[k]: tensor k's sum; nonfinite[k] (NULL: not wanted): 1 if tensor k holds an
 * inf or a NaN.  Returns the total.  Callers validate; this never fails nor allocates. */
#define GD_SUM_BLOCK ((int64_t)4096)
#define GD_SUM_LANES 16
int64_t gd_sum_blocks(const int64_t *size, int64_t count);
double gd_sum_of_squares(int64_t count, const void *const *data, const int64_t *size,
                         const unsigned char *is_double, double *block_sums,
                         double *per_tensor, unsigned char *nonfinite);

#ifdef __cplusplus
}
#endif

#endif /* GDFAST_H */
