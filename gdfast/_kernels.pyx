# cython: language_level=3
"""The C kernels, called with the GIL released.

Each function takes the *active* tensors of one step as parallel lists
(parameters, gradients, one list per state buffer, step counts) plus the
rule's hyper-parameters, and updates them in place in one `nogil` block.
The caller (gdfast._optimizer.Optimizer) has already validated everything:
dtypes float32/float64 matching per tensor, C-contiguous, writeable, equal
sizes, no aliasing.  Nothing here checks again; kernels cannot fail.
"""
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t

cimport numpy as cnp

cnp.import_array()

cdef extern from "gdfast.h" nogil:
    int gd_openmp_enabled()
    void gd_set_num_threads(int n)
    int gd_get_num_threads()
    int64_t gd_min_elements_per_thread()
    const char *gd_kernel_isa()

    void sgd_f32(float *param, const float *grad, int64_t n, double lr)
    void sgd_f64(double *param, const double *grad, int64_t n, double lr)
    void momentum_f32(float *param, const float *grad, float *velocity, int64_t n,
                      double lr, double momentum)
    void momentum_f64(double *param, const double *grad, double *velocity, int64_t n,
                      double lr, double momentum)
    void nesterov_f32(float *param, const float *grad, float *velocity, int64_t n,
                      double lr, double momentum)
    void nesterov_f64(double *param, const double *grad, double *velocity, int64_t n,
                      double lr, double momentum)
    void adagrad_f32(float *param, const float *grad, float *sum_sq, int64_t n,
                     double lr, double eps)
    void adagrad_f64(double *param, const double *grad, double *sum_sq, int64_t n,
                     double lr, double eps)
    void adadelta_f32(float *param, const float *grad, float *square_avg, float *acc_delta,
                      int64_t n, double lr, double rho, double eps)
    void adadelta_f64(double *param, const double *grad, double *square_avg,
                      double *acc_delta, int64_t n, double lr, double rho, double eps)
    void rmsprop_f32(float *param, const float *grad, float *square_avg, int64_t n,
                     double lr, double rho, double eps)
    void rmsprop_f64(double *param, const double *grad, double *square_avg, int64_t n,
                     double lr, double rho, double eps)
    void adam_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                  int64_t n, double lr, double beta1, double beta2, double eps, int64_t step)
    void adam_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
                  int64_t n, double lr, double beta1, double beta2, double eps, int64_t step)
    void adamax_f32(float *param, const float *grad, float *exp_avg, float *exp_inf,
                    int64_t n, double lr, double beta1, double beta2, int64_t step)
    void adamax_f64(double *param, const double *grad, double *exp_avg, double *exp_inf,
                    int64_t n, double lr, double beta1, double beta2, int64_t step)
    void nadam_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                   int64_t n, double lr, double beta1, double beta2, double eps, int64_t step)
    void nadam_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
                   int64_t n, double lr, double beta1, double beta2, double eps, int64_t step)
    void amsgrad_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                     float *max_exp_avg_sq, int64_t n, double lr, double beta1, double beta2,
                     double eps)
    void amsgrad_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
                     double *max_exp_avg_sq, int64_t n, double lr, double beta1, double beta2,
                     double eps)
    void roofline_f32(float *param, const float *grad, float *state0, float *state1,
                      float *state2, int n_state, int64_t n)
    void roofline_f64(double *param, const double *grad, double *state0, double *state1,
                      double *state2, int n_state, int64_t n)


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""
    return bool(gd_openmp_enabled())


def set_num_threads(int n) -> None:
    gd_set_num_threads(n)


def get_num_threads() -> int:
    return gd_get_num_threads()


def min_elements_per_thread() -> int:
    return gd_min_elements_per_thread()


def kernel_isa() -> str:
    return gd_kernel_isa().decode()


cdef class _Tensors:
    """Raw pointers of one step's tensors, gathered under the GIL.

    slot 0 is the parameter, slot 1 the gradient, slots 2.. the state buffers.
    """
    cdef Py_ssize_t count
    cdef int n_slots
    cdef void **data          # data[k * n_slots + slot]
    cdef int64_t *size
    cdef int64_t *step
    cdef bint *is_double

    def __cinit__(self, list params, list grads, tuple states, list steps):
        cdef Py_ssize_t k
        cdef int slot
        cdef cnp.ndarray array
        self.count = len(params)
        self.n_slots = 2 + len(states)
        self.data = <void **>PyMem_Malloc(max(1, self.count * self.n_slots) * sizeof(void *))
        self.size = <int64_t *>PyMem_Malloc(max(1, self.count) * sizeof(int64_t))
        self.step = <int64_t *>PyMem_Malloc(max(1, self.count) * sizeof(int64_t))
        self.is_double = <bint *>PyMem_Malloc(max(1, self.count) * sizeof(bint))
        if not (self.data and self.size and self.step and self.is_double):
            raise MemoryError()
        for k in range(self.count):
            array = <cnp.ndarray>params[k]
            self.size[k] = cnp.PyArray_SIZE(array)
            self.is_double[k] = cnp.PyArray_TYPE(array) == cnp.NPY_DOUBLE
            self.step[k] = steps[k] if steps is not None else 0
            self.data[k * self.n_slots] = cnp.PyArray_DATA(array)
            self.data[k * self.n_slots + 1] = cnp.PyArray_DATA(<cnp.ndarray>grads[k])
            for slot in range(len(states)):
                self.data[k * self.n_slots + 2 + slot] = cnp.PyArray_DATA(
                    <cnp.ndarray>(<list>states[slot])[k])

    def __dealloc__(self):
        PyMem_Free(self.data)
        PyMem_Free(self.size)
        PyMem_Free(self.step)
        PyMem_Free(self.is_double)

    cdef inline void *ptr(self, Py_ssize_t k, int slot) noexcept nogil:
        return self.data[k * self.n_slots + slot]


def sgd(list params, list grads, list steps, *, double lr):
    cdef _Tensors t = _Tensors(params, grads, (), None)
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                sgd_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1), t.size[k], lr)
            else:
                sgd_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1), t.size[k], lr)


def momentum(list params, list grads, list velocity, list steps, *, double lr,
             double momentum):
    cdef _Tensors t = _Tensors(params, grads, (velocity,), None)
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                momentum_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                             <double *>t.ptr(k, 2), t.size[k], lr, momentum)
            else:
                momentum_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                             <float *>t.ptr(k, 2), t.size[k], lr, momentum)


def nesterov(list params, list grads, list velocity, list steps, *, double lr,
             double momentum):
    cdef _Tensors t = _Tensors(params, grads, (velocity,), None)
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                nesterov_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                             <double *>t.ptr(k, 2), t.size[k], lr, momentum)
            else:
                nesterov_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                             <float *>t.ptr(k, 2), t.size[k], lr, momentum)


def adagrad(list params, list grads, list sum_sq, list steps, *, double lr, double eps):
    cdef _Tensors t = _Tensors(params, grads, (sum_sq,), None)
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                adagrad_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                            <double *>t.ptr(k, 2), t.size[k], lr, eps)
            else:
                adagrad_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                            <float *>t.ptr(k, 2), t.size[k], lr, eps)


def adadelta(list params, list grads, list square_avg, list acc_delta, list steps, *,
             double lr, double rho, double eps):
    cdef _Tensors t = _Tensors(params, grads, (square_avg, acc_delta), None)
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                adadelta_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                             <double *>t.ptr(k, 2), <double *>t.ptr(k, 3), t.size[k],
                             lr, rho, eps)
            else:
                adadelta_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                             <float *>t.ptr(k, 2), <float *>t.ptr(k, 3), t.size[k],
                             lr, rho, eps)


def rmsprop(list params, list grads, list square_avg, list steps, *, double lr,
            double rho, double eps):
    cdef _Tensors t = _Tensors(params, grads, (square_avg,), None)
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                rmsprop_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                            <double *>t.ptr(k, 2), t.size[k], lr, rho, eps)
            else:
                rmsprop_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                            <float *>t.ptr(k, 2), t.size[k], lr, rho, eps)


def adam(list params, list grads, list exp_avg, list exp_avg_sq, list steps, *,
         double lr, tuple betas, double eps):
    cdef _Tensors t = _Tensors(params, grads, (exp_avg, exp_avg_sq), steps)
    cdef double beta1 = betas[0], beta2 = betas[1]
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                adam_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                         <double *>t.ptr(k, 2), <double *>t.ptr(k, 3), t.size[k],
                         lr, beta1, beta2, eps, t.step[k])
            else:
                adam_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                         <float *>t.ptr(k, 2), <float *>t.ptr(k, 3), t.size[k],
                         lr, beta1, beta2, eps, t.step[k])


def adamax(list params, list grads, list exp_avg, list exp_inf, list steps, *,
           double lr, tuple betas):
    cdef _Tensors t = _Tensors(params, grads, (exp_avg, exp_inf), steps)
    cdef double beta1 = betas[0], beta2 = betas[1]
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                adamax_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                           <double *>t.ptr(k, 2), <double *>t.ptr(k, 3), t.size[k],
                           lr, beta1, beta2, t.step[k])
            else:
                adamax_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                           <float *>t.ptr(k, 2), <float *>t.ptr(k, 3), t.size[k],
                           lr, beta1, beta2, t.step[k])


def nadam(list params, list grads, list exp_avg, list exp_avg_sq, list steps, *,
          double lr, tuple betas, double eps):
    cdef _Tensors t = _Tensors(params, grads, (exp_avg, exp_avg_sq), steps)
    cdef double beta1 = betas[0], beta2 = betas[1]
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                nadam_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                          <double *>t.ptr(k, 2), <double *>t.ptr(k, 3), t.size[k],
                          lr, beta1, beta2, eps, t.step[k])
            else:
                nadam_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                          <float *>t.ptr(k, 2), <float *>t.ptr(k, 3), t.size[k],
                          lr, beta1, beta2, eps, t.step[k])


def amsgrad(list params, list grads, list exp_avg, list exp_avg_sq, list max_exp_avg_sq,
            list steps, *, double lr, tuple betas, double eps):
    cdef _Tensors t = _Tensors(params, grads, (exp_avg, exp_avg_sq, max_exp_avg_sq), None)
    cdef double beta1 = betas[0], beta2 = betas[1]
    cdef Py_ssize_t k
    with nogil:
        for k in range(t.count):
            if t.is_double[k]:
                amsgrad_f64(<double *>t.ptr(k, 0), <const double *>t.ptr(k, 1),
                            <double *>t.ptr(k, 2), <double *>t.ptr(k, 3),
                            <double *>t.ptr(k, 4), t.size[k], lr, beta1, beta2, eps)
            else:
                amsgrad_f32(<float *>t.ptr(k, 0), <const float *>t.ptr(k, 1),
                            <float *>t.ptr(k, 2), <float *>t.ptr(k, 3),
                            <float *>t.ptr(k, 4), t.size[k], lr, beta1, beta2, eps)


def roofline(cnp.ndarray param, cnp.ndarray grad, list states):
    """Add grad to param and to each state buffer (0-3 of them) in one pass.

    The memory traffic of an update rule with len(states) state buffers and
    no arithmetic to speak of: the roofline against which benchmarks measure
    the kernels.  Arrays must share dtype (float32/float64) and size.
    """
    cdef int n_state = len(states)
    if n_state > 3:
        raise ValueError(f"states: expected at most 3 state buffers, got {n_state}")
    cdef _Tensors t = _Tensors([param], [grad], tuple([array] for array in states), None)
    cdef void *s[3]
    cdef int slot
    for slot in range(3):
        s[slot] = t.ptr(0, 2 + slot) if slot < n_state else NULL
    with nogil:
        if t.is_double[0]:
            roofline_f64(<double *>t.ptr(0, 0), <const double *>t.ptr(0, 1), <double *>s[0],
                         <double *>s[1], <double *>s[2], n_state, t.size[0])
        else:
            roofline_f32(<float *>t.ptr(0, 0), <const float *>t.ptr(0, 1), <float *>s[0],
                         <float *>s[1], <float *>s[2], n_state, t.size[0])
