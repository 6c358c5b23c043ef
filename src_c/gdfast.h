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

typedef struct {
    int64_t count;              /* tensors in the list */
    int slots;                  /* pointers per tensor: param, grad, then the state buffers */
    void *const *data;          /* data[k * slots + slot] */
    const int64_t *size;        /* elements of tensor k */
    const int64_t *step;        /* t of this update for tensor k (counts from 1) */
    const unsigned char *is_double; /* 1: float64 tensor, 0: float32 */
    /* NAdam's momentum schedule only (else NULL): P_t = μ_1 ⋯ μ_t of tensor k, this
     * step's μ_t included (the caller keeps the product, as torch does). */
    const double *mu_product;
} gd_tensors;

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
} gd_hyper;

void gd_sgd(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_momentum(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_nesterov(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_adagrad(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_adadelta(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_rmsprop(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_adam(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_adamax(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_nadam(const gd_tensors *tensors, const gd_hyper *hyper);
void gd_amsgrad(const gd_tensors *tensors, const gd_hyper *hyper);
/* The memory limit of a step, for benchmarks: adds grad to param and to each
 * state buffer (slots - 2 of them, at most 3) in one pass with the same thread
 * split: the traffic of a rule with that many state buffers, next to no math. */
void gd_roofline(const gd_tensors *tensors, const gd_hyper *hyper);

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

/* Each returns the number of distinct rows it updated. */
int64_t gd_sgd_rows(const gd_rows *rows, const gd_hyper *hyper);
int64_t gd_momentum_rows(const gd_rows *rows, const gd_hyper *hyper);
int64_t gd_adagrad_rows(const gd_rows *rows, const gd_hyper *hyper);
int64_t gd_rmsprop_rows(const gd_rows *rows, const gd_hyper *hyper);
int64_t gd_adam_rows(const gd_rows *rows, const gd_hyper *hyper);

/* ---- One tensor, one dtype ------------------------------------------------
 * The same kernels on a single array (a list of one).
 */
void sgd_f32(float *param, const float *grad, int64_t n, double lr);
void sgd_f64(double *param, const double *grad, int64_t n, double lr);

void momentum_f32(float *param, const float *grad, float *velocity, int64_t n,
                  double lr, double momentum);
void momentum_f64(double *param, const double *grad, double *velocity, int64_t n,
                  double lr, double momentum);

void nesterov_f32(float *param, const float *grad, float *velocity, int64_t n,
                  double lr, double momentum);
void nesterov_f64(double *param, const double *grad, double *velocity, int64_t n,
                  double lr, double momentum);

void adagrad_f32(float *param, const float *grad, float *sum_sq, int64_t n,
                 double lr, double eps);
void adagrad_f64(double *param, const double *grad, double *sum_sq, int64_t n,
                 double lr, double eps);

void adadelta_f32(float *param, const float *grad, float *square_avg, float *acc_delta,
                  int64_t n, double lr, double rho, double eps);
void adadelta_f64(double *param, const double *grad, double *square_avg, double *acc_delta,
                  int64_t n, double lr, double rho, double eps);

void rmsprop_f32(float *param, const float *grad, float *square_avg, int64_t n,
                 double lr, double rho, double eps);
void rmsprop_f64(double *param, const double *grad, double *square_avg, int64_t n,
                 double lr, double rho, double eps);

void adam_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
              int64_t n, double lr, double beta1, double beta2, double eps, int64_t step);
void adam_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
              int64_t n, double lr, double beta1, double beta2, double eps, int64_t step);

void adamax_f32(float *param, const float *grad, float *exp_avg, float *exp_inf,
                int64_t n, double lr, double beta1, double beta2, int64_t step);
void adamax_f64(double *param, const double *grad, double *exp_avg, double *exp_inf,
                int64_t n, double lr, double beta1, double beta2, int64_t step);

void nadam_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
               int64_t n, double lr, double beta1, double beta2, double eps, int64_t step);
void nadam_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
               int64_t n, double lr, double beta1, double beta2, double eps, int64_t step);

void amsgrad_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                 float *max_exp_avg_sq, int64_t n, double lr, double beta1, double beta2,
                 double eps);
void amsgrad_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
                 double *max_exp_avg_sq, int64_t n, double lr, double beta1, double beta2,
                 double eps);

#ifdef __cplusplus
}
#endif

#endif /* GDFAST_H */
