# cython: language_level=3
"""The C kernels, called with the GIL released, and the fast path of gradient checks.

Each rule function takes the *active* tensors of one step as parallel lists
(parameters, gradients, one list per state buffer, step counts) plus the
rule's hyper-parameters, and updates them in place with one C call: one GIL
release and one parallel region for the whole list.  The caller
(gdfast._optimizer.Optimizer) has already validated everything: dtypes
float32/float64 matching per tensor, C-contiguous, writeable, equal sizes,
no aliasing.  Nothing here checks again; kernels cannot fail.
"""
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport INT64_MAX, int64_t

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef extern from "gdfast.h" nogil:
    int gd_openmp_enabled()
    void gd_set_num_threads(int n)
    int gd_get_num_threads()
    int64_t gd_min_elements_per_thread()
    const char *gd_kernel_isa()

    ctypedef struct gd_tensors:
        int64_t count
        int slots
        void **data
        const int64_t *size
        const int64_t *step
        const unsigned char *is_double
        const double *mu_product

    ctypedef struct gd_hyper:
        double lr, momentum, beta1, beta2, eps, rho, grad_scale
        double weight_decay, dampening, lr_decay, momentum_decay
        int maximize, decoupled_weight_decay, eps_inside, lr_in_buffer, eps_hat
        int bias_correction, max_of_v_hat, centered, momentum_schedule

    void gd_sgd(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_momentum(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_nesterov(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_adagrad(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_adadelta(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_rmsprop(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_adam(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_adamax(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_nadam(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_amsgrad(const gd_tensors *tensors, const gd_hyper *hyper)
    void gd_roofline(const gd_tensors *tensors, const gd_hyper *hyper)

    ctypedef struct gd_rows:
        void *param
        void *state[3]
        int n_state
        int is_double
        int64_t n_rows, dim, step, n_indices
        const int64_t *indices
        const void *values
        int64_t *order
        int64_t *group_start
        void *summed

    int64_t gd_sgd_rows(const gd_rows *rows, const gd_hyper *hyper)
    int64_t gd_momentum_rows(const gd_rows *rows, const gd_hyper *hyper)
    int64_t gd_adagrad_rows(const gd_rows *rows, const gd_hyper *hyper)
    int64_t gd_rmsprop_rows(const gd_rows *rows, const gd_hyper *hyper)
    int64_t gd_adam_rows(const gd_rows *rows, const gd_hyper *hyper)

ctypedef void (*rule_fn)(const gd_tensors *tensors, const gd_hyper *hyper) noexcept nogil
ctypedef int64_t (*row_rule_fn)(const gd_rows *rows, const gd_hyper *hyper) noexcept nogil


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


# Lists of up to this many tensors are described on the stack: no allocation per step.
cdef enum:
    STACK_TENSORS = 32


cdef int _run(rule_fn rule, list params, list grads, tuple states, object steps,
              gd_hyper *hyper, object mu_product=None) except -1:
    """Describe the tensors to C (pointers, sizes, dtypes) and run `rule` once.

    `steps`: one step count per tensor (an int64 array is used as it is).
    `mu_product`: NAdam's schedule only, a float64 array with one entry per tensor."""
    cdef Py_ssize_t count = len(params), k
    cdef int slots = 2 + len(states), slot
    cdef void *data_stack[STACK_TENSORS * 5]
    cdef int64_t size_stack[STACK_TENSORS]
    cdef unsigned char double_stack[STACK_TENSORS]
    cdef void **data = data_stack
    cdef int64_t *size = size_stack
    cdef unsigned char *is_double = double_stack
    cdef cnp.ndarray array
    cdef gd_tensors tensors
    cdef cnp.ndarray step_array
    if not (isinstance(steps, cnp.ndarray) and cnp.PyArray_TYPE(steps) == cnp.NPY_INT64
            and cnp.PyArray_IS_C_CONTIGUOUS(steps)):
        steps = np.ascontiguousarray(steps, dtype=np.int64)
    step_array = <cnp.ndarray>steps
    if cnp.PyArray_SIZE(step_array) != count or len(grads) != count:
        raise ValueError("steps and grads: expected one entry per parameter")
    for slot in range(slots - 2):
        if len(<list>states[slot]) != count:
            raise ValueError("state lists: expected one buffer per parameter")
    if count > STACK_TENSORS:
        data = <void **>PyMem_Malloc(count * slots * sizeof(void *))
        size = <int64_t *>PyMem_Malloc(count * sizeof(int64_t))
        is_double = <unsigned char *>PyMem_Malloc(count * sizeof(unsigned char))
    try:
        if not (data and size and is_double):
            raise MemoryError()
        for k in range(count):
            array = <cnp.ndarray>params[k]
            size[k] = cnp.PyArray_SIZE(array)
            is_double[k] = cnp.PyArray_TYPE(array) == cnp.NPY_DOUBLE
            data[k * slots] = cnp.PyArray_DATA(array)
            data[k * slots + 1] = cnp.PyArray_DATA(<cnp.ndarray>grads[k])
            for slot in range(slots - 2):
                data[k * slots + 2 + slot] = cnp.PyArray_DATA(
                    <cnp.ndarray>(<list>states[slot])[k])
        tensors.count = count
        tensors.slots = slots
        tensors.data = data
        tensors.size = size
        tensors.step = <const int64_t *>cnp.PyArray_DATA(step_array)
        tensors.is_double = is_double
        tensors.mu_product = NULL
        if mu_product is not None:
            if len(mu_product) != count:
                raise ValueError("mu_product: expected one entry per parameter")
            tensors.mu_product = <const double *>cnp.PyArray_DATA(<cnp.ndarray>mu_product)
        with nogil:
            rule(&tensors, hyper)
    finally:
        if count > STACK_TENSORS:
            PyMem_Free(data)
            PyMem_Free(size)
            PyMem_Free(is_double)
    return 0


# Every field zero: each rule sets the hyper-parameters it has.
cdef gd_hyper NO_HYPER
NO_HYPER.lr = NO_HYPER.momentum = NO_HYPER.beta1 = NO_HYPER.beta2 = 0.0
NO_HYPER.eps = NO_HYPER.rho = 0.0
NO_HYPER.grad_scale = 1.0
NO_HYPER.weight_decay = NO_HYPER.dampening = NO_HYPER.lr_decay = NO_HYPER.momentum_decay = 0.0
NO_HYPER.maximize = NO_HYPER.decoupled_weight_decay = NO_HYPER.eps_inside = 0
NO_HYPER.lr_in_buffer = NO_HYPER.eps_hat = NO_HYPER.bias_correction = 0
NO_HYPER.max_of_v_hat = NO_HYPER.centered = NO_HYPER.momentum_schedule = 0

# Every rule takes the gradient transform of gdfast._optimizer (maximize, weight decay, L2 or
# decoupled) as keyword arguments; their defaults are SPEC.md's rule, so callers written for
# the plain rules (gdfast.training, gdfast.distributed, ...) keep working unchanged.
# `grad_scale` c (default 1: off) multiplies every gradient element by c cast to the tensor's
# dtype before anything else (g ← g · c, then maximize, then weight decay): gradient clipping by
# global norm (gdfast.torch) without a pass writing the gradients.  Not checked here.


cdef gd_hyper _hyper(double lr, double weight_decay, bint decoupled_weight_decay,
                     bint maximize, double grad_scale):
    cdef gd_hyper hyper = NO_HYPER
    hyper.lr = lr
    hyper.grad_scale = grad_scale
    hyper.weight_decay = weight_decay
    hyper.decoupled_weight_decay = decoupled_weight_decay
    hyper.maximize = maximize
    return hyper


def sgd(list params, list grads, object steps, *, double lr, double weight_decay=0.0,
        bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    _run(gd_sgd, params, grads, (), steps, &hyper)


cdef gd_hyper _momentum_hyper(double lr, double momentum, double dampening, bint lr_in_buffer,
                             double weight_decay, bint decoupled_weight_decay,
                             bint maximize, double grad_scale):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.momentum = momentum
    hyper.dampening = dampening
    hyper.lr_in_buffer = lr_in_buffer
    return hyper


def momentum(list params, list grads, list velocity, object steps, *, double lr,
             double momentum, double dampening=0.0, bint lr_in_buffer=True,
             double weight_decay=0.0, bint decoupled_weight_decay=False,
             bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _momentum_hyper(lr, momentum, dampening, lr_in_buffer, weight_decay,
                                          decoupled_weight_decay, maximize, grad_scale)
    _run(gd_momentum, params, grads, (velocity,), steps, &hyper)


def nesterov(list params, list grads, list velocity, object steps, *, double lr,
             double momentum, double dampening=0.0, bint lr_in_buffer=True,
             double weight_decay=0.0, bint decoupled_weight_decay=False,
             bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _momentum_hyper(lr, momentum, dampening, lr_in_buffer, weight_decay,
                                          decoupled_weight_decay, maximize, grad_scale)
    _run(gd_nesterov, params, grads, (velocity,), steps, &hyper)


cdef gd_hyper _adagrad_hyper(double lr, double eps, double lr_decay, bint eps_inside_sqrt,
                            double weight_decay, bint decoupled_weight_decay,
                            bint maximize, double grad_scale):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.eps = eps
    hyper.lr_decay = lr_decay
    hyper.eps_inside = eps_inside_sqrt
    return hyper


def adagrad(list params, list grads, list sum_sq, object steps, *, double lr, double eps,
            double lr_decay=0.0, double initial_accumulator_value=0.0,
            bint eps_inside_sqrt=True, double weight_decay=0.0,
            bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    """`initial_accumulator_value` is the value the optimizer filled sum_sq with; it is
    accepted (and unused) here so that a rule's hyper-parameters pass through unchanged."""
    cdef gd_hyper hyper = _adagrad_hyper(lr, eps, lr_decay, eps_inside_sqrt, weight_decay,
                                         decoupled_weight_decay, maximize, grad_scale)
    _run(gd_adagrad, params, grads, (sum_sq,), steps, &hyper)


def adadelta(list params, list grads, list square_avg, list acc_delta, object steps, *,
             double lr, double rho, double eps, double weight_decay=0.0,
             bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.rho = rho
    hyper.eps = eps
    _run(gd_adadelta, params, grads, (square_avg, acc_delta), steps, &hyper)


cdef gd_hyper _rmsprop_hyper(double lr, double rho, double eps, bint centered, double momentum,
                            bint eps_inside_sqrt, bint lr_in_buffer, double weight_decay,
                            bint decoupled_weight_decay, bint maximize, double grad_scale):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.rho = rho
    hyper.eps = eps
    hyper.centered = centered
    hyper.momentum = momentum
    hyper.eps_inside = eps_inside_sqrt
    hyper.lr_in_buffer = lr_in_buffer
    return hyper


cdef tuple _rmsprop_split(str caller, str steps_name, bint centered, double momentum,
                          tuple rest):
    """(grad_avg if centered + momentum_buffer if momentum > 0, the step count(s)): the
    positional arguments after square_avg."""
    expected = 1 + bool(centered) + (momentum > 0)
    if len(rest) != expected:
        raise TypeError(f"{caller}: expected {expected} positional argument(s) after "
                        "square_avg (grad_avg if centered, momentum_buffer if momentum > 0, "
                        f"{steps_name}), got {len(rest)}")
    # (no negative indices: the module is compiled with wraparound off)
    return rest[:expected - 1], rest[expected - 1]


def rmsprop(list params, list grads, list square_avg, *buffers_and_steps, double lr,
            double rho, double eps, bint centered=False, double momentum=0.0,
            bint eps_inside_sqrt=True, bint lr_in_buffer=True, double weight_decay=0.0,
            bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    """Positional after square_avg: grad_avg (when centered), momentum_buffer (when
    momentum > 0), then the step counts."""
    cdef gd_hyper hyper = _rmsprop_hyper(lr, rho, eps, centered, momentum, eps_inside_sqrt,
                                         lr_in_buffer, weight_decay, decoupled_weight_decay,
                                         maximize, grad_scale)
    buffers, steps = _rmsprop_split("rmsprop", "steps", centered, momentum, buffers_and_steps)
    _run(gd_rmsprop, params, grads, (square_avg,) + buffers, steps, &hyper)


cdef gd_hyper _adam_hyper(double lr, tuple betas, double eps, bint eps_hat, double weight_decay,
                         bint decoupled_weight_decay, bint maximize, double grad_scale):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.beta1 = betas[0]
    hyper.beta2 = betas[1]
    hyper.eps = eps
    hyper.eps_hat = eps_hat
    return hyper


def adam(list params, list grads, list exp_avg, list exp_avg_sq, object steps, *, double lr,
         tuple betas, double eps, bint eps_hat=False, double weight_decay=0.0,
         bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _adam_hyper(lr, betas, eps, eps_hat, weight_decay,
                                      decoupled_weight_decay, maximize, grad_scale)
    _run(gd_adam, params, grads, (exp_avg, exp_avg_sq), steps, &hyper)


# ---------------------------------------------------------------- row-sparse steps
# One 2-D parameter per call: `indices` (int64, in range), `values` (indices.size x dim,
# the parameter's dtype, C-contiguous, aliasing nothing the step writes) and the rule's
# state buffers, already checked by gdfast._optimizer; `step` is t of this update.  The
# rule's hyper-parameters are the dense function's.  Returns the distinct rows updated.

cdef int64_t _run_rows(row_rule_fn rule, cnp.ndarray param, cnp.ndarray indices,
                       cnp.ndarray values, tuple states, int64_t step,
                       gd_hyper *hyper) except -1:
    cdef gd_rows rows
    cdef Py_ssize_t slot
    cdef int64_t n = cnp.PyArray_SIZE(indices), distinct
    if len(states) > 3:
        raise ValueError("states: expected at most 3 state buffers")
    if cnp.PyArray_NDIM(param) != 2:
        raise ValueError("param: expected a 2-D array")
    if cnp.PyArray_TYPE(indices) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(indices):
        raise TypeError("indices: expected a C-contiguous int64 array")
    order = np.empty(4 * n, dtype=np.int64)   # two buffers of (index, position) pairs
    group_start = np.empty(n + 1, dtype=np.int64)
    summed = np.empty((n, param.shape[1]), dtype=param.dtype)
    rows.param = cnp.PyArray_DATA(param)
    rows.n_state = len(states)
    for slot in range(3):
        rows.state[slot] = NULL
    for slot in range(len(states)):
        rows.state[slot] = cnp.PyArray_DATA(<cnp.ndarray>states[slot])
    rows.is_double = cnp.PyArray_TYPE(param) == cnp.NPY_DOUBLE
    rows.n_rows = param.shape[0]
    rows.dim = param.shape[1]
    rows.step = step
    rows.n_indices = n
    rows.indices = <const int64_t *>cnp.PyArray_DATA(indices)
    rows.values = cnp.PyArray_DATA(values)
    rows.order = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>order)
    rows.group_start = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>group_start)
    rows.summed = cnp.PyArray_DATA(<cnp.ndarray>summed)
    with nogil:
        distinct = rule(&rows, hyper)
    return distinct


def sgd_rows(cnp.ndarray param, cnp.ndarray indices, cnp.ndarray values, int64_t step, *,
             double lr, double weight_decay=0.0, bint decoupled_weight_decay=False,
             bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    return _run_rows(gd_sgd_rows, param, indices, values, (), step, &hyper)


def momentum_rows(cnp.ndarray param, cnp.ndarray indices, cnp.ndarray values,
                  cnp.ndarray velocity, int64_t step, *, double lr, double momentum,
                  double dampening=0.0, bint lr_in_buffer=True, double weight_decay=0.0,
                  bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _momentum_hyper(lr, momentum, dampening, lr_in_buffer, weight_decay,
                                          decoupled_weight_decay, maximize, grad_scale)
    return _run_rows(gd_momentum_rows, param, indices, values, (velocity,), step, &hyper)


def adagrad_rows(cnp.ndarray param, cnp.ndarray indices, cnp.ndarray values,
                 cnp.ndarray sum_sq, int64_t step, *, double lr, double eps,
                 double lr_decay=0.0, double initial_accumulator_value=0.0,
                 bint eps_inside_sqrt=True, double weight_decay=0.0,
                 bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _adagrad_hyper(lr, eps, lr_decay, eps_inside_sqrt, weight_decay,
                                         decoupled_weight_decay, maximize, grad_scale)
    return _run_rows(gd_adagrad_rows, param, indices, values, (sum_sq,), step, &hyper)


def rmsprop_rows(cnp.ndarray param, cnp.ndarray indices, cnp.ndarray values,
                 cnp.ndarray square_avg, *buffers_and_step, double lr, double rho, double eps,
                 bint centered=False, double momentum=0.0, bint eps_inside_sqrt=True,
                 bint lr_in_buffer=True, double weight_decay=0.0,
                 bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    """Positional after square_avg: grad_avg (when centered), momentum_buffer (when
    momentum > 0), then the step count."""
    cdef gd_hyper hyper = _rmsprop_hyper(lr, rho, eps, centered, momentum, eps_inside_sqrt,
                                         lr_in_buffer, weight_decay, decoupled_weight_decay,
                                         maximize, grad_scale)
    buffers, step = _rmsprop_split("rmsprop_rows", "step", centered, momentum, buffers_and_step)
    return _run_rows(gd_rmsprop_rows, param, indices, values, (square_avg,) + buffers, step,
                     &hyper)


def adam_rows(cnp.ndarray param, cnp.ndarray indices, cnp.ndarray values, cnp.ndarray exp_avg,
              cnp.ndarray exp_avg_sq, int64_t step, *, double lr, tuple betas, double eps,
              bint eps_hat=False, double weight_decay=0.0, bint decoupled_weight_decay=False,
              bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _adam_hyper(lr, betas, eps, eps_hat, weight_decay,
                                      decoupled_weight_decay, maximize, grad_scale)
    return _run_rows(gd_adam_rows, param, indices, values, (exp_avg, exp_avg_sq), step,
                     &hyper)


def adamax(list params, list grads, list exp_avg, list exp_inf, object steps, *, double lr,
           tuple betas, double eps=0.0, bint eps_inside_max=False, double weight_decay=0.0,
           bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.beta1 = betas[0]
    hyper.beta2 = betas[1]
    hyper.eps = eps
    hyper.eps_inside = eps_inside_max
    _run(gd_adamax, params, grads, (exp_avg, exp_inf), steps, &hyper)


def nadam_mu_products(list mu_product, object steps, double beta1, double momentum_decay):
    """Multiply each tensor's μ product (a 0-d array, kept in its own dtype as torch keeps
    it) by this step's μ_t = β1 (1 − ½ 0.96^(t ψ)); return the products as float64."""
    cdef Py_ssize_t k, count = len(mu_product)
    values = np.empty(count, dtype=np.float64)
    for k in range(count):
        product = <cnp.ndarray>mu_product[k]
        product[...] = product * (beta1 * (1.0 - 0.5 * 0.96 ** (int(steps[k]) * momentum_decay)))
        values[k] = product
    return values


def nadam(list params, list grads, list exp_avg, list exp_avg_sq, *mu_product_and_steps,
          double lr, tuple betas, double eps, bint momentum_schedule=False,
          double momentum_decay=0.004, double weight_decay=0.0,
          bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    """Positional after exp_avg_sq: mu_product (with momentum_schedule: 0-d arrays, updated
    here by nadam_mu_products), then the step counts."""
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.beta1 = betas[0]
    hyper.beta2 = betas[1]
    hyper.eps = eps
    hyper.momentum_schedule = momentum_schedule
    hyper.momentum_decay = momentum_decay
    expected = 2 if momentum_schedule else 1
    if len(mu_product_and_steps) != expected:
        raise TypeError(f"nadam: expected {expected} positional argument(s) after exp_avg_sq "
                        "(mu_product with momentum_schedule, steps), got "
                        f"{len(mu_product_and_steps)}")
    steps = mu_product_and_steps[expected - 1]
    products = None
    if momentum_schedule:
        if len(mu_product_and_steps[0]) != len(params):
            raise ValueError("mu_product: expected one entry per parameter")
        products = nadam_mu_products(mu_product_and_steps[0], steps, betas[0], momentum_decay)
    _run(gd_nadam, params, grads, (exp_avg, exp_avg_sq), steps, &hyper, products)


def amsgrad(list params, list grads, list exp_avg, list exp_avg_sq, list max_exp_avg_sq,
            object steps, *, double lr, tuple betas, double eps, bint bias_correction=False,
            bint max_of_v_hat=False, bint eps_hat=False, double weight_decay=0.0,
            bint decoupled_weight_decay=False, bint maximize=False, double grad_scale=1.0):
    cdef gd_hyper hyper = _hyper(lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
    hyper.beta1 = betas[0]
    hyper.beta2 = betas[1]
    hyper.eps = eps
    hyper.bias_correction = bias_correction
    hyper.max_of_v_hat = max_of_v_hat
    hyper.eps_hat = eps_hat
    _run(gd_amsgrad, params, grads, (exp_avg, exp_avg_sq, max_exp_avg_sq), steps, &hyper)


def roofline(list params, list grads, tuple states):
    """Add each gradient to its parameter and to each of its state buffers, in one pass.

    The memory traffic of a rule with len(states) state buffers (0 to 3) and no
    arithmetic to speak of, with the kernels' thread split: the limit against which
    the benchmarks measure the rules.  Same contract as the rule functions: the
    caller passes valid, equally sized arrays of one dtype per tensor.
    """
    if len(states) > 3:
        raise ValueError(f"states: expected at most 3 lists of state buffers, got {len(states)}")
    cdef gd_hyper hyper = NO_HYPER
    _run(gd_roofline, params, grads, states, np.zeros(len(params), dtype=np.int64), &hyper)


def count_step(cnp.ndarray steps):
    """Add 1 to every entry of an int64 array of step counts (numpy's `+= 1` costs ~1 µs
    on a tiny array, half of a small step's overhead).  A count already at the largest
    int64 raises ValueError before any count changes (it would wrap to a negative t)."""
    if cnp.PyArray_TYPE(steps) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(steps):
        raise TypeError("steps: expected a C-contiguous int64 array")
    cdef int64_t *counts = <int64_t *>cnp.PyArray_DATA(steps)
    cdef Py_ssize_t k, n = cnp.PyArray_SIZE(steps)
    for k in range(n):
        if counts[k] == INT64_MAX:
            raise ValueError(f"params[{k}]: its step count is {INT64_MAX}, the largest there "
                             "is; this optimizer cannot step it again (load a state with a "
                             "smaller step count)")
    for k in range(n):
        counts[k] += 1


cdef class OwnedMemory:
    """The byte ranges of the buffers a step writes (parameters and state buffers),
    sorted and disjoint, with a label each, for the aliasing check of gradients."""
    cdef int64_t[::1] starts
    cdef int64_t[::1] stops
    cdef list labels

    def __init__(self, spans):
        """spans: iterable of ((start, stop), label); empty ranges are ignored."""
        ordered = sorted(((start, stop), label) for (start, stop), label in spans
                         if stop > start)
        self.starts = np.array([span[0][0] for span in ordered] or [0], dtype=np.int64)
        self.stops = np.array([span[0][1] for span in ordered] or [0], dtype=np.int64)
        self.labels = [span[1] for span in ordered]

    cdef Py_ssize_t find(self, int64_t start, int64_t stop) noexcept:
        """Index of the owned range that [start, stop) meets, or -1.  Binary search:
        the ranges are disjoint, so only the last one starting below `stop` can."""
        cdef Py_ssize_t low = 0, high = len(self.labels), middle
        if stop <= start:
            return -1
        while low < high:
            middle = (low + high) // 2
            if self.starts[middle] < stop:
                low = middle + 1
            else:
                high = middle
        return low - 1 if low > 0 and self.stops[low - 1] > start else -1

    def overlapping(self, int64_t start, int64_t stop):
        """(label, index) of the owned buffer that [start, stop) meets, or None."""
        cdef Py_ssize_t found = self.find(start, stop)
        return None if found < 0 else self.labels[found]


NOT_FAST, FAST_SOME, FAST_ALL = 0, 1, 2


def gradients_fast_ok(list grads, tuple params, OwnedMemory owned):
    """FAST_ALL when every gradient is an exact ndarray with its parameter's exact dtype
    (native byte order) and shape, C-contiguous, aligned, and sharing no memory with a
    parameter or state buffer; FAST_SOME when that holds but some are None; else
    NOT_FAST (0).

    The fast path of Optimizer.step: anything else (including every error) goes to
    the full checks in Python, which raise with a message or copy a strided gradient.
    Never accepts what the full checks reject.
    """
    cdef Py_ssize_t k, count = len(grads)
    cdef object grad
    cdef cnp.ndarray array, param
    cdef int64_t start
    cdef int result = FAST_ALL
    if count != len(params):
        return NOT_FAST
    for k in range(count):
        grad = grads[k]
        if grad is None:
            result = FAST_SOME
            continue
        if not cnp.PyArray_CheckExact(grad):   # subclasses (masked arrays...): full checks
            return NOT_FAST
        array = <cnp.ndarray>grad
        param = <cnp.ndarray>params[k]
        if cnp.PyArray_TYPE(array) != cnp.PyArray_TYPE(param):
            return NOT_FAST
        if not cnp.PyArray_SAMESHAPE(array, param):
            return NOT_FAST
        if not (cnp.PyArray_IS_C_CONTIGUOUS(array) and cnp.PyArray_ISALIGNED(array)
                and cnp.PyArray_ISNOTSWAPPED(array)):
            return NOT_FAST
        start = <int64_t><size_t>cnp.PyArray_DATA(array)
        if owned.find(start, start + cnp.PyArray_NBYTES(array)) >= 0:
            return NOT_FAST
    return result
