# cython: language_level=3
"""The C kernels, called with the GIL released; the step's fast path; thread settings.

`Kernel(name, ...)` is one rule's kernel (an entry of gd_rules[] in src_c/kernels.c) as
a functional core, `kernel(params, grads, *state_lists, steps, **hyperparameters)`: the
*active* tensors of one step as parallel lists, updated in place with one C call (one GIL
release, one parallel region for the whole list).  Its hyper-parameters arrive under the
names of the rule's declaration (gdfast.catalogue) and go to the gd_hyper fields the
declaration names.  `FastStep` is an optimizer's whole step for the common case (every
gradient present and in order): the list copy, the busy flag, the gradient checks, the
step counts and the pointers, in one call.

The callers (gdfast.catalogue's Optimizer, gdfast.torch) have validated the tensors:
float32/float64 matching per tensor, C-contiguous, writeable, equal sizes, no aliasing.
The kernels check nothing again and cannot fail.
"""
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport INT64_MAX, int64_t, uint64_t
from libc.string cimport memset

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef extern from "gdfast.h" nogil:
    int gd_openmp_enabled()
    void gd_set_num_threads(int n)
    int gd_get_num_threads()
    int64_t gd_min_elements_per_thread()
    const char *gd_kernel_isa()

cdef extern from "threads.h" nogil:
    int GD_MAX_THREADS
    void gd_set_cpu_limit(int n)
    int gd_helper_threads()
    enum: GD_STATS
    void gd_thread_stats(int64_t *counts)

cdef extern from "gdfast.h" nogil:
    ctypedef struct gd_tensors:
        int64_t count
        int slots
        void **data
        const int64_t *size
        const int64_t *step
        const unsigned char *is_double
        void **mu_product
        const unsigned char *mu_product_is_double
        const gd_lowp *lowp
        void *scalars

    ctypedef struct gd_lowp:
        const unsigned char *format
        void **master
        void **param_copy
        const unsigned char *copy_format
        float **absmax
        const int64_t *tensor
        int64_t block_size
        unsigned long long seed
        int stochastic

    enum:
        GD_NATIVE
        GD_BF16
        GD_F16
        GD_Q8_SIGNED
        GD_Q8_UNSIGNED
        GD_LOWP_MAX_BLOCK
    int gd_lowp_set_maps(const float *signed_code, const float *unsigned_code)
    const char *gd_lowp_set_fused(int mode)
    uint64_t gd_lowp_fused_layouts(const gd_rule *rule)

    # Filled through gd_hyper_fields (by name and offset): no field list here.
    ctypedef struct gd_hyper:
        double grad_scale

    ctypedef struct gd_rule:
        const char *name
        int rows

    ctypedef struct gd_hyper_field:
        const char *name
        size_t offset
        int is_int

    const gd_rule gd_rules[]
    const int gd_rule_count
    const gd_rule *gd_find_rule(const char *name)
    const gd_hyper_field gd_hyper_fields[]
    void gd_step(const gd_rule *rule, const gd_tensors *tensors, const gd_hyper *hyper)
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

    int64_t gd_step_rows(const gd_rule *rule, const gd_rows *rows, const gd_hyper *hyper)


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""
    return bool(gd_openmp_enabled())


def set_num_threads(int n) -> None:
    """n threads from now on (1 <= n <= max_threads(), checked by gdfast.set_num_threads);
    0: the default."""
    gd_set_num_threads(n)


def get_num_threads() -> int:
    return gd_get_num_threads()


def max_threads() -> int:
    """The most threads a step may use."""
    return GD_MAX_THREADS


def set_cpu_limit(int n) -> None:
    """The CPUs this process may use: the default thread count never exceeds it (0: no cap)."""
    gd_set_cpu_limit(n)


def helper_threads() -> int:
    """Helper threads the runtime has started in this process (none before the first
    parallel step, none in a forked child before its own first parallel step)."""
    return gd_helper_threads()


def thread_stats() -> dict:
    """Steps large enough for helpers since this process started: "steps" (all of them),
    "backed_off" (run on the caller alone after an earlier step was slower than the caller
    alone would have been), "slower" (such steps)."""
    cdef int64_t counts[GD_STATS]
    gd_thread_stats(counts)
    return {"steps": counts[0], "backed_off": counts[1], "slower": counts[2]}


def min_elements_per_thread() -> int:
    return gd_min_elements_per_thread()


def kernel_isa() -> str:
    return gd_kernel_isa().decode()


# Lists of up to this many tensors are described on the stack: no allocation per step.
cdef enum:
    # Lists of up to this many tensors are described on the stack: no allocation per step.
    STACK_TENSORS = 32
    # Pointers per tensor at most: param, grad and three state buffers (GD_MAX_SLOTS).
    MAX_SLOTS = 5


def rule_names():
    """The names of gd_rules[] (src_c/kernels.c): the kernels this build has."""
    return tuple(gd_rules[r].name.decode() for r in range(gd_rule_count))


cdef dict _read_hyper_fields():
    """gd_hyper's fields: {name: (byte offset, is_int)}."""
    cdef const gd_hyper_field *field = gd_hyper_fields
    fields = {}
    while field.name != NULL:
        fields[field.name.decode()] = (field.offset, field.is_int)
        field += 1
    return fields


HYPER_FIELDS = _read_hyper_fields()


cdef inline void _set_field(gd_hyper *hyper, tuple field, object value) except *:
    cdef size_t offset = field[0]
    if field[1]:
        (<int *>(<char *>hyper + offset))[0] = 1 if value else 0
    else:
        (<double *>(<char *>hyper + offset))[0] = value


cdef int _describe(gd_tensors *tensors, list params, list grads, tuple states, object steps,
                   list mu_product, void **data, int64_t *size, unsigned char *is_double,
                   void **mu, unsigned char *mu_double) except -1:
    """Fill `tensors` (pointers, sizes, dtypes) from the lists, into the arrays given."""
    cdef Py_ssize_t count = len(params), k
    cdef int slots = 2 + len(states), slot
    cdef cnp.ndarray array
    for k in range(count):
        array = <cnp.ndarray>params[k]
        size[k] = cnp.PyArray_SIZE(array)
        is_double[k] = cnp.PyArray_TYPE(array) == cnp.NPY_DOUBLE
        data[k * slots] = cnp.PyArray_DATA(array)
        data[k * slots + 1] = cnp.PyArray_DATA(<cnp.ndarray>grads[k])
        for slot in range(slots - 2):
            data[k * slots + 2 + slot] = cnp.PyArray_DATA(<cnp.ndarray>(<list>states[slot])[k])
        if mu_product is not None:
            array = <cnp.ndarray>mu_product[k]
            mu[k] = cnp.PyArray_DATA(array)
            mu_double[k] = cnp.PyArray_TYPE(array) == cnp.NPY_DOUBLE
    tensors.count = count
    tensors.slots = slots
    tensors.data = data
    tensors.size = size
    tensors.step = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>steps)
    tensors.is_double = is_double
    tensors.mu_product = mu if mu_product is not None else NULL
    tensors.mu_product_is_double = mu_double if mu_product is not None else NULL
    tensors.lowp = NULL
    tensors.scalars = NULL
    return 0


cdef object _int64_steps(object steps):
    if not (isinstance(steps, cnp.ndarray) and cnp.PyArray_TYPE(steps) == cnp.NPY_INT64
            and cnp.PyArray_IS_C_CONTIGUOUS(steps)):
        steps = np.ascontiguousarray(steps, dtype=np.int64)
    return steps


cdef int _run(const gd_rule *rule, list params, list grads, tuple states, object steps,
              gd_hyper *hyper, list mu_product=None, object lowp=None) except -1:
    """Describe the tensors to C and run one step of `rule` (NULL: the roofline).

    `steps`: one step count per tensor (an int64 array is used as it is).  `mu_product`:
    Nadam's schedule only, one 0-d float32/float64 array per tensor, updated by the step.
    `lowp`: the dtype policy of the step's tensors (a `Staging`), or None."""
    cdef Py_ssize_t count = len(params)
    cdef int slots = 2 + len(states), slot
    cdef void *data_stack[STACK_TENSORS * MAX_SLOTS]
    cdef void *mu_stack[STACK_TENSORS]
    cdef int64_t size_stack[STACK_TENSORS]
    cdef unsigned char double_stack[STACK_TENSORS]
    cdef unsigned char mu_double_stack[STACK_TENSORS]
    cdef void **data = data_stack
    cdef void **mu = mu_stack
    cdef int64_t *size = size_stack
    cdef unsigned char *is_double = double_stack
    cdef unsigned char *mu_double = mu_double_stack
    cdef gd_tensors tensors
    cdef gd_lowp policy
    cdef void **pointers = NULL
    steps = _int64_steps(steps)
    if slots > MAX_SLOTS:
        raise ValueError(f"states: expected at most {MAX_SLOTS - 2} state lists")
    if cnp.PyArray_SIZE(steps) != count or len(grads) != count:
        raise ValueError("steps and grads: expected one entry per parameter")
    for slot in range(slots - 2):
        if len(<list>states[slot]) != count:
            raise ValueError("state lists: expected one buffer per parameter")
    if mu_product is not None and len(mu_product) != count:
        raise ValueError("mu_product: expected one entry per parameter")
    if count > STACK_TENSORS:
        data = <void **>PyMem_Malloc(count * slots * sizeof(void *))
        mu = <void **>PyMem_Malloc(count * sizeof(void *))
        size = <int64_t *>PyMem_Malloc(count * sizeof(int64_t))
        is_double = <unsigned char *>PyMem_Malloc(count * sizeof(unsigned char))
        mu_double = <unsigned char *>PyMem_Malloc(count * sizeof(unsigned char))
    try:
        if not (data and mu and size and is_double and mu_double):
            raise MemoryError()
        _describe(&tensors, params, grads, states, steps, mu_product, data, size, is_double,
                  mu, mu_double)
        if lowp is not None:
            pointers = <void **>PyMem_Malloc(count * (2 + slots) * sizeof(void *) + 1)
            if not pointers:
                raise MemoryError()
            (<Staging>lowp).describe(&policy, count, slots, pointers)
            tensors.lowp = &policy
        with nogil:
            if rule == NULL:
                gd_roofline(&tensors, hyper)
            else:
                gd_step(rule, &tensors, hyper)
    finally:
        PyMem_Free(pointers)
        if count > STACK_TENSORS:
            PyMem_Free(data)
            PyMem_Free(mu)
            PyMem_Free(size)
            PyMem_Free(is_double)
            PyMem_Free(mu_double)
    return 0


# The 8-bit maps of SPEC L.4, set once (the kernels' encoder tables).
def _set_maps():
    from .formats import DYNAMIC_SIGNED, DYNAMIC_UNSIGNED
    cdef float[::1] signed = np.array(DYNAMIC_SIGNED, dtype=np.float32)
    cdef float[::1] unsigned = np.array(DYNAMIC_UNSIGNED, dtype=np.float32)
    if gd_lowp_set_maps(&signed[0], &unsigned[0]) != 0:
        raise RuntimeError("gdfast.formats' 8-bit maps do not fit the kernels' encoder table")


_set_maps()


def _set_fused(int mode) -> str:
    """Policy steps through the rules' fused span loops, the widest instance the CPU has (1 or
    True, the default), the AVX2 instance (2), or all staged (0 or False): for the tests that
    compare the paths bit for bit.  Returns the instance that now runs ("avx512", "avx2",
    "build" or "staged")."""
    return gd_lowp_set_fused(mode).decode()

def _fused_layouts(str rule not None) -> set:
    """The layout indices (src_c/fused.inc: H * 24 + P * 8 + G * 4 + S * 2 + R) that `rule`
    (a kernel name: "adam") runs fused with the instance `_set_fused` chose: for the tests."""
    cdef const gd_rule *found = gd_find_rule(rule.encode())
    if found == NULL:
        raise ValueError(f"rule: no kernel named {rule!r}")
    cdef uint64_t bits = gd_lowp_fused_layouts(found)
    return {layout for layout in range(64) if bits >> layout & 1}


# A slot's storage, by name (gdfast.catalogue's policy): src_c/gdfast.h's GD_NATIVE ...
FORMATS = {"native": GD_NATIVE, "bfloat16": GD_BF16, "float16": GD_F16,
           "int8 signed": GD_Q8_SIGNED, "int8 unsigned": GD_Q8_UNSIGNED}
MAX_BLOCK = GD_LOWP_MAX_BLOCK


cdef class Staging:
    """The dtype policy of one step's tensors (SPEC L.5/L.6), checked by the caller
    (gdfast.catalogue's policy): for tensor k of the step and slot s (param, grad, then the
    state buffers), `formats[k * slots + s]` (FORMATS' values, uint8), `absmax[k * slots + s]`
    (an 8-bit slot's float32 scales, else None); `master[k]` (float32, or None),
    `param_copy[k]` (uint16-sized 16-bit array, or None) with `copy_formats[k]`;
    `tensors[k]` its index in the optimizer (int64); block_size, seed, stochastic."""
    cdef object formats, copy_formats, tensors
    cdef list master, param_copy, absmax
    cdef int64_t block_size
    cdef unsigned long long seed
    cdef int stochastic

    def __init__(self, formats, list master, list param_copy, copy_formats, list absmax,
                 tensors, int64_t block_size, unsigned long long seed, bint stochastic):
        self.formats = np.ascontiguousarray(formats, dtype=np.uint8)
        self.copy_formats = np.ascontiguousarray(copy_formats, dtype=np.uint8)
        self.tensors = np.ascontiguousarray(tensors, dtype=np.int64)
        self.master = master
        self.param_copy = param_copy
        self.absmax = absmax
        count = len(master)
        if not (len(param_copy) == count and self.copy_formats.size == count
                and self.tensors.size == count and len(absmax) == self.formats.size
                and self.formats.size % max(count, 1) == 0):
            raise ValueError("Staging: expected one entry per tensor (per tensor and slot for "
                             "formats and absmax)")
        if not (0 < block_size <= GD_LOWP_MAX_BLOCK and block_size % 16 == 0):
            raise ValueError(f"block_size: expected a positive multiple of 16, at most "
                             f"{GD_LOWP_MAX_BLOCK}, got {block_size}")
        self.block_size = block_size
        self.seed = seed
        self.stochastic = stochastic

    cdef int describe(self, gd_lowp *policy, Py_ssize_t count, int slots,
                      void **pointers) except -1:
        """Fill `policy`; `pointers` has room for count * (2 + slots) pointers."""
        cdef Py_ssize_t k, j
        if len(self.master) != count or cnp.PyArray_SIZE(self.formats) != count * slots:
            raise ValueError("Staging: it describes another list of tensors")
        for k in range(count):
            pointers[k] = NULL if self.master[k] is None else \
                cnp.PyArray_DATA(<cnp.ndarray>self.master[k])
            pointers[count + k] = NULL if self.param_copy[k] is None else \
                cnp.PyArray_DATA(<cnp.ndarray>self.param_copy[k])
        for j in range(count * slots):
            pointers[2 * count + j] = NULL if self.absmax[j] is None else \
                cnp.PyArray_DATA(<cnp.ndarray>self.absmax[j])
        policy.format = <const unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>self.formats)
        policy.master = pointers
        policy.param_copy = pointers + count
        policy.copy_format = <const unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>self.copy_formats)
        policy.absmax = <float **>(pointers + 2 * count)
        policy.tensor = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>self.tensors)
        policy.block_size = self.block_size
        policy.seed = self.seed
        policy.stochastic = self.stochastic
        return 0


cdef class Kernel:
    """One rule's kernel as a functional core:

        kernel(params, grads, *state_lists, steps, **hyperparameters)
        kernel.rows(param, indices, values, *state_buffers, step, **hyperparameters)

    `name` is the rule's entry in gd_rules[]; `fields` maps each hyper-parameter of the
    rule's declaration to the gd_hyper field(s) it sets: a name, a tuple of names (one per
    item: betas -> beta1, beta2), or None (not the kernel's: initial_accumulator_value
    only fills the state).  `grad_scale` (gdfast.torch's clipping, 1: off) is taken too.
    `layout(hyper)` names the state lists of a call; those named in `scalars` (Nadam's
    mu_product: 0-d arrays) go to the kernel as per-tensor scalars, not as buffers.
    Every hyper-parameter of `fields` must be given."""
    cdef const gd_rule *rule
    cdef readonly str name
    cdef dict fields
    cdef object layout
    cdef frozenset scalars

    def __init__(self, str name, dict fields, layout, scalars=()):
        self.rule = gd_find_rule(name.encode())
        if self.rule == NULL:
            raise ValueError(f"kernel: {name!r} is not in gd_rules[] (src_c/kernels.c); "
                             f"this build has {', '.join(rule_names())}")
        self.name = name
        self.fields = {"grad_scale": (HYPER_FIELDS["grad_scale"],)}
        for hyper_name, targets in fields.items():
            if targets is None:
                targets = ()
            elif isinstance(targets, str):
                targets = (targets,)
            unknown = [target for target in targets if target not in HYPER_FIELDS]
            if unknown:
                raise ValueError(f"{name}: {hyper_name} -> {unknown[0]!r}: gd_hyper has no such "
                                 f"field (src_c/gdfast.h); it has {', '.join(HYPER_FIELDS)}")
            self.fields[hyper_name] = tuple(HYPER_FIELDS[target] for target in targets)
        self.layout = layout
        self.scalars = frozenset(scalars)

    # A policy's step (gdfast.catalogue._policy): `kernel(..., lowp=kernel.staging(...))`.
    stages = True

    def staging(self, *args):
        """A `Staging` of these arguments, for `kernel(..., lowp=...)`."""
        return Staging(*args)

    @property
    def takes_rows(self) -> bool:
        return bool(self.rule.rows)

    cdef gd_hyper hyper(self, dict values) except *:
        """The gd_hyper of these hyper-parameters (every field not set: 0)."""
        cdef gd_hyper hyper
        cdef Py_ssize_t given = 0
        memset(&hyper, 0, sizeof(gd_hyper))
        hyper.grad_scale = 1.0
        for name, value in values.items():
            targets = self.fields.get(name)
            if targets is None:
                raise TypeError(f"{self.name}: unexpected hyper-parameter {name!r}; expected "
                                f"{', '.join(self.fields)}")
            given += name != "grad_scale"
            if len(<tuple>targets) == 1:
                _set_field(&hyper, (<tuple>targets)[0], value)
            elif len(<tuple>targets) > 1:
                for field, item in zip(<tuple>targets, value):
                    _set_field(&hyper, field, item)
        if given != len(self.fields) - 1:
            missing = [name for name in self.fields if name not in values and name != "grad_scale"]
            raise TypeError(f"{self.name}: missing hyper-parameter(s) {', '.join(missing)}")
        return hyper

    cdef tuple split(self, tuple states, dict hyper):
        """(buffer lists, scalar lists or None) of a call's state lists."""
        if not self.scalars:
            return states, None
        names = self.layout(hyper)
        buffers = tuple(s for name, s in zip(names, states) if name not in self.scalars)
        scalars = [s for name, s in zip(names, states) if name in self.scalars]
        return buffers, (scalars[0] if scalars else None)

    def __call__(self, list params, list grads, *states_and_steps, Staging lowp=None, **hyper):
        cdef gd_hyper values = self.hyper(hyper)
        if not states_and_steps:
            raise TypeError(f"{self.name}: expected the step counts after the state lists")
        count = len(states_and_steps) - 1
        buffers, scalars = self.split(states_and_steps[:count], hyper)
        _run(self.rule, params, grads, buffers, states_and_steps[count], &values, scalars, lowp)

    def rows(self, cnp.ndarray param, cnp.ndarray indices, cnp.ndarray values,
             *states_and_step, **hyper):
        """A row-sparse step of one 2-D parameter: `indices` (int64, in range), `values`
        (indices.size x dim, the parameter's dtype, C-contiguous, aliasing nothing the step
        writes) and the rule's state buffers, already checked by the caller; the last
        positional argument is t of this update.  Returns the distinct rows updated."""
        cdef gd_hyper hyper_values = self.hyper(hyper)
        cdef gd_rows rows
        cdef Py_ssize_t slot, n_states = len(states_and_step) - 1
        cdef int64_t n = cnp.PyArray_SIZE(indices), distinct
        cdef int64_t step
        if n_states < 0:
            raise TypeError(f"{self.name}.rows: expected the step count after the state buffers")
        step = states_and_step[n_states]
        if not self.rule.rows:
            raise TypeError(f"{self.name}: no row-sparse kernel")
        if n_states > MAX_SLOTS - 2:
            raise ValueError(f"states: expected at most {MAX_SLOTS - 2} state buffers")
        if cnp.PyArray_NDIM(param) != 2:
            raise ValueError("param: expected a 2-D array")
        if cnp.PyArray_TYPE(indices) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(indices):
            raise TypeError("indices: expected a C-contiguous int64 array")
        order = np.empty(4 * n, dtype=np.int64)   # two buffers of (index, position) pairs
        group_start = np.empty(n + 1, dtype=np.int64)
        summed = np.empty((n, param.shape[1]), dtype=param.dtype)
        rows.param = cnp.PyArray_DATA(param)
        rows.n_state = n_states
        for slot in range(MAX_SLOTS - 2):
            rows.state[slot] = NULL
        for slot in range(n_states):
            rows.state[slot] = cnp.PyArray_DATA(<cnp.ndarray>states_and_step[slot])
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
            distinct = gd_step_rows(self.rule, &rows, &hyper_values)
        return distinct


def roofline(list params, list grads, tuple states, int written=-1):
    """A step's memory traffic with next to no arithmetic, with the kernels' thread split:
    the limit against which the benchmarks measure the rules.

    The slots of each tensor are its parameter (0), its gradient (1) and its state buffers
    (2, ...; at most 3).  Every slot is read; `written` (bit s: slot s) says which are also
    written, each with the sum of the others added (at most four written, one to three
    read only; none written: the read ones are summed, a reduction sweep).  The default,
    the parameter and the state buffers written and the gradient read, is the traffic of
    an element-wise rule with len(states) state buffers.  Same contract as the rule
    kernels: the caller passes valid, equally sized arrays of one dtype per tensor.
    """
    if len(states) > 3:
        raise ValueError(f"states: expected at most 3 lists of state buffers, got {len(states)}")
    cdef int slots = 2 + len(states)
    if written == -1:
        written = ((1 << slots) - 1) & ~2
    writes = bin(written).count("1")
    if written < 0 or written >> slots or writes > 4 or not 1 <= slots - writes <= 3:
        raise ValueError(f"written: expected a mask of at most 4 of the {slots} slots, leaving "
                         f"1 to 3 read only, got {written}")
    cdef gd_hyper hyper
    memset(&hyper, 0, sizeof(gd_hyper))
    # a mask, not a flag: written by its offset (_set_field stores an int field as 0 or 1)
    (<int *>(<char *>&hyper + <size_t>HYPER_FIELDS["roofline_written"][0]))[0] = written
    _run(NULL, params, grads, states, np.zeros(len(params), dtype=np.int64), &hyper)


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



cdef inline bint _gradient_fits(object grad, cnp.ndarray param, OwnedMemory owned):
    """An exact ndarray with its parameter's dtype (native byte order) and shape,
    C-contiguous, aligned, sharing no memory with a buffer the step writes."""
    cdef cnp.ndarray array
    cdef int64_t start
    if not cnp.PyArray_CheckExact(grad):   # None, subclasses (masked arrays...): full checks
        return False
    array = <cnp.ndarray>grad
    if cnp.PyArray_TYPE(array) != cnp.PyArray_TYPE(param):
        return False
    if not cnp.PyArray_SAMESHAPE(array, param):
        return False
    if not (cnp.PyArray_IS_C_CONTIGUOUS(array) and cnp.PyArray_ISALIGNED(array)
            and cnp.PyArray_ISNOTSWAPPED(array)):
        return False
    start = <int64_t><size_t>cnp.PyArray_DATA(array)
    return owned.find(start, start + cnp.PyArray_NBYTES(array)) < 0


NOT_FAST, FAST_SOME, FAST_ALL = 0, 1, 2


def gradients_fast_ok(list grads, tuple params, OwnedMemory owned):
    """FAST_ALL when every gradient fits its parameter (`_gradient_fits`); FAST_SOME when
    that holds but some are None; else NOT_FAST (0).  gdfast.torch's fast path: anything
    else (every error included) goes to the full checks, which raise with a message or
    copy a strided gradient.  Never accepts what the full checks reject."""
    cdef Py_ssize_t k, count = len(grads)
    cdef int result = FAST_ALL
    if count != len(params):
        return NOT_FAST
    for k in range(count):
        if grads[k] is None:
            result = FAST_SOME
        elif not _gradient_fits(grads[k], <cnp.ndarray>params[k], owned):
            return NOT_FAST
    return result


def concurrent_use(str owner, str call):
    """The RuntimeError of a call made while the optimizer is busy in another thread."""
    return RuntimeError(
        f"{owner}.{call}: this optimizer is busy in another thread (a step, "
        "load_state_dict or state_dict is running); an optimizer serves one thread at a "
        "time: use one optimizer per thread, or a lock around its calls")


cdef class FastStep:
    """An optimizer's step in the common case, in one call: every parameter has a gradient
    that fits it (`_gradient_fits`) and no step count is at its largest.

    `step(grads)` copies the caller's list (copy, then check the copy), refuses concurrent
    use (RuntimeError: `busy` is tested and set under the GIL with no Python code between),
    checks every gradient, then counts the steps and runs the kernel with the pointers of
    the parameters and state buffers gathered once, at construction (they never move: a
    state load copies into them).  Returns False, having written nothing, when the case is
    not the common one: the caller's full checks take over (and raise with a message).
    `set_hyper` must be called whenever the hyper-parameters change."""
    cdef Kernel kernel
    cdef gd_hyper values
    cdef public bint busy
    cdef str owner
    cdef tuple params
    cdef tuple states
    cdef list scalars
    cdef object steps
    cdef OwnedMemory owned
    cdef Py_ssize_t count
    cdef int slots
    cdef void **data
    cdef int64_t *size
    cdef unsigned char *is_double
    cdef void **mu
    cdef unsigned char *mu_double
    cdef gd_tensors tensors

    def __cinit__(self):
        self.data = self.mu = NULL
        self.size = NULL
        self.is_double = self.mu_double = NULL

    def __init__(self, Kernel kernel, str owner, tuple params, tuple state_lists, dict hyper,
                 cnp.ndarray steps, OwnedMemory owned):
        """state_lists: the optimizer's state, one list per entry of its layout (`hyper`'s);
        `steps` its int64 step counts, counted here in place."""
        cdef Py_ssize_t count = len(params)
        self.kernel = kernel
        self.owner = owner
        self.params = params
        buffers, scalars = kernel.split(state_lists, hyper)
        self.states = buffers
        self.scalars = scalars
        self.steps = steps
        self.owned = owned
        self.count = count
        self.slots = 2 + len(buffers)
        if self.slots > MAX_SLOTS or cnp.PyArray_TYPE(steps) != cnp.NPY_INT64 \
                or not cnp.PyArray_IS_C_CONTIGUOUS(steps) or cnp.PyArray_SIZE(steps) != count:
            raise ValueError("FastStep: expected at most 3 state lists and one int64 count "
                             "per parameter")
        self.data = <void **>PyMem_Malloc(max(count, 1) * self.slots * sizeof(void *))
        self.mu = <void **>PyMem_Malloc(max(count, 1) * sizeof(void *))
        self.size = <int64_t *>PyMem_Malloc(max(count, 1) * sizeof(int64_t))
        self.is_double = <unsigned char *>PyMem_Malloc(max(count, 1))
        self.mu_double = <unsigned char *>PyMem_Malloc(max(count, 1))
        if not (self.data and self.mu and self.size and self.is_double and self.mu_double):
            raise MemoryError()
        # the gradients' slots hold the parameters' pointers until a step fills them
        _describe(&self.tensors, list(params), list(params), buffers, steps, scalars,
                  self.data, self.size, self.is_double, self.mu, self.mu_double)
        self.set_hyper(hyper)

    def __dealloc__(self):
        PyMem_Free(self.data)
        PyMem_Free(self.mu)
        PyMem_Free(self.size)
        PyMem_Free(self.is_double)
        PyMem_Free(self.mu_double)

    def set_hyper(self, dict hyper):
        self.values = self.kernel.hyper(hyper)

    def step(self, object grads):
        cdef list own
        cdef Py_ssize_t k
        cdef int64_t *counts
        cdef gd_hyper values
        if type(grads) is list or type(grads) is tuple:
            own = list(grads)  # our own list: the caller's may change while we step
        elif cnp.PyArray_CheckExact(grads):
            own = [grads]
        else:
            return False
        if self.busy:
            raise concurrent_use(self.owner, "step")
        self.busy = True  # no Python code between the test and the set: atomic under the GIL
        try:
            if len(own) != self.count:
                return False
            for k in range(self.count):
                if not _gradient_fits(own[k], <cnp.ndarray>self.params[k], self.owned):
                    return False
            counts = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>self.steps)
            for k in range(self.count):
                if counts[k] == INT64_MAX:
                    return False  # the full checks refuse it, with a message
            for k in range(self.count):
                self.data[k * self.slots + 1] = cnp.PyArray_DATA(<cnp.ndarray>own[k])
                counts[k] += 1
            values = self.values  # a copy: `opt.lr = ...` from another thread meanwhile
            with nogil:           # changes the next step, never this one half-way
                gd_step(self.kernel.rule, &self.tensors, &values)
            return True
        finally:
            self.busy = False


# ---- Reductions: sums of squares in a fixed order (src_c/reduce.c) ----
cdef extern from "gdfast.h" nogil:
    int64_t gd_sum_blocks(const int64_t *size, int64_t count)
    double gd_sum_of_squares(int64_t count, const void *const *data, const int64_t *size,
                             const unsigned char *is_double, double *block_sums,
                             double *per_tensor, unsigned char *nonfinite)


def sum_of_squares(arrays):
    """(total, per_tensor, nonfinite): Σ x² of each array (float64 `per_tensor`), of all of
    them (`total`, a float) and whether each holds an inf or a NaN (bool `nonfinite`), in
    the fixed order of docs/spec-reductions.md: the same bits for any thread count.

    arrays: a list or tuple of C-contiguous, aligned, native-order float32/float64 numpy
    arrays (any shape; summed in memory order); the GIL is released while they are read."""
    cdef list own
    cdef Py_ssize_t k, count
    cdef cnp.ndarray array
    cdef int kind
    cdef double total
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"arrays: expected a list or tuple of numpy arrays, got {type(arrays).__name__}")
    own = list(arrays)  # our own list: the caller's may change while the GIL is released
    count = len(own)
    for k in range(count):
        if not isinstance(own[k], cnp.ndarray):
            raise TypeError(f"arrays[{k}]: expected a numpy array, got {type(own[k]).__name__}")
        array = <cnp.ndarray>own[k]
        kind = cnp.PyArray_TYPE(array)
        if kind != cnp.NPY_FLOAT and kind != cnp.NPY_DOUBLE:
            raise TypeError(f"arrays[{k}]: expected float32 or float64, got {array.dtype}")
        if not (cnp.PyArray_IS_C_CONTIGUOUS(array) and cnp.PyArray_ISALIGNED(array)
                and cnp.PyArray_ISNOTSWAPPED(array)):
            raise ValueError(f"arrays[{k}]: expected a C-contiguous, aligned, native-order array")
    per_tensor = np.zeros(count, dtype=np.float64)
    nonfinite = np.zeros(count, dtype=np.bool_)
    if count == 0:
        return 0.0, per_tensor, nonfinite
    cdef const void **data = <const void **>PyMem_Malloc(count * sizeof(void *))
    cdef int64_t *size = <int64_t *>PyMem_Malloc(count * sizeof(int64_t))
    cdef unsigned char *is_double = <unsigned char *>PyMem_Malloc(count)
    cdef double *block_sums = NULL
    cdef double *per = <double *>cnp.PyArray_DATA(<cnp.ndarray>per_tensor)
    cdef unsigned char *bad = <unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>nonfinite)
    try:
        if not (data and size and is_double):
            raise MemoryError()
        for k in range(count):
            array = <cnp.ndarray>own[k]
            data[k] = cnp.PyArray_DATA(array)
            size[k] = cnp.PyArray_SIZE(array)
            is_double[k] = cnp.PyArray_TYPE(array) == cnp.NPY_DOUBLE
        block_sums = <double *>PyMem_Malloc(max(gd_sum_blocks(size, count), 1) * sizeof(double))
        if not block_sums:
            raise MemoryError()
        with nogil:
            total = gd_sum_of_squares(count, data, size, is_double, block_sums, per, bad)
    finally:
        PyMem_Free(data)
        PyMem_Free(size)
        PyMem_Free(is_double)
        PyMem_Free(block_sums)
    return total, per_tensor, nonfinite


# ---- rules15c: the two-pass rules (LAMB, Adafactor; src_c/two_pass.h) ----
cdef extern from "two_pass.h" nogil:
    int gd_is_two_pass(const gd_rule *rule)
    int64_t gd_two_pass_scratch(const gd_tensors *tensors)
    void adafactor_sums_f32(const float *grad, int64_t batches, int64_t rows, int64_t cols,
                            double *row_sums, double *col_sums)
    void adafactor_sums_f64(const double *grad, int64_t batches, int64_t rows, int64_t cols,
                            double *row_sums, double *col_sums)
    void gd_step_two_pass(const gd_rule *rule, const gd_tensors *tensors, const gd_hyper *hyper,
                          const int64_t *matrix, double *scratch)


cdef class TwoPassKernel(Kernel):
    """The kernel of a rule whose step needs per-tensor norms (gd_is_two_pass: LAMB,
    Adafactor) as a functional core, called as `Kernel`; no dtype policy (such a rule is not
    element-wise).  One call: pass 1 over fixed blocks of every tensor, the per-tensor
    scalars, pass 2 (src_c/two_pass.inc), the GIL released throughout.  `matrix` (keyword):
    None, or an int64 array of 2 per tensor, the rows and columns of a factored tensor
    (Adafactor: its state slots are then the denominators, R, C), 0 columns where not factored."""

    def __init__(self, str name, dict fields, layout, scalars=()):
        super().__init__(name, fields, layout, scalars)
        if not gd_is_two_pass(self.rule):
            raise ValueError(f"kernel: {name!r} is not a two-pass rule (src_c/two_pass.h)")

    stages = False

    def __call__(self, list params, list grads, *states_and_steps, matrix=None, **hyper):
        cdef gd_hyper values = self.hyper(hyper)
        cdef Py_ssize_t count = len(params)
        cdef int slots = 1 + len(states_and_steps)
        cdef const int64_t *shapes = NULL
        cdef gd_tensors tensors
        cdef int64_t scratch_size
        cdef void **data = NULL
        cdef int64_t *size = NULL
        cdef unsigned char *is_double = NULL
        cdef double *scratch = NULL
        if not states_and_steps:
            raise TypeError(f"{self.name}: expected the step counts after the state lists")
        cdef tuple states = tuple(states_and_steps[:len(states_and_steps) - 1])
        steps = _int64_steps(states_and_steps[len(states_and_steps) - 1])
        if slots > MAX_SLOTS:
            raise ValueError(f"states: expected at most {MAX_SLOTS - 2} state lists")
        if cnp.PyArray_SIZE(steps) != count or len(grads) != count:
            raise ValueError("steps and grads: expected one entry per parameter")
        for state in states:
            if len(state) != count:
                raise ValueError("state lists: expected one buffer per parameter")
        data = <void **>PyMem_Malloc((count * slots + 1) * sizeof(void *))
        size = <int64_t *>PyMem_Malloc((count + 1) * sizeof(int64_t))
        is_double = <unsigned char *>PyMem_Malloc(count + 1)
        try:
            if not (data and size and is_double):
                raise MemoryError()
            _describe(&tensors, params, grads, states, steps, None, data, size, is_double,
                      NULL, NULL)
            if matrix is not None:
                matrix = np.ascontiguousarray(matrix, dtype=np.int64)
                if cnp.PyArray_SIZE(matrix) != 2 * count:
                    raise ValueError("matrix: expected 2 int64 per parameter")
                shapes = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>matrix)
            scratch_size = gd_two_pass_scratch(&tensors)
            scratch = <double *>PyMem_Malloc((scratch_size + 1) * sizeof(double))
            if not scratch:
                raise MemoryError()
            with nogil:
                gd_step_two_pass(self.rule, &tensors, &values, shapes, scratch)
        finally:
            PyMem_Free(data)
            PyMem_Free(size)
            PyMem_Free(is_double)
            PyMem_Free(scratch)


def adafactor_sums(cnp.ndarray grad, cnp.ndarray row_sums, cnp.ndarray col_sums):
    """Adafactor's Σ_j g_ij² and Σ_i g_ij² (src_c/rules/adafactor.inc, the fixed order of
    docs/spec.md 1.3) into row_sums (float64, shape [..., n, 1]) and col_sums (float64,
    [..., 1, m]), for g float32/float64 C-contiguous of shape [..., n, m]."""
    if grad.ndim < 2 or not cnp.PyArray_IS_C_CONTIGUOUS(grad):
        raise ValueError("grad: expected a C-contiguous array of two or more dimensions")
    cdef int64_t rows = grad.shape[grad.ndim - 2], cols = grad.shape[grad.ndim - 1]
    cdef int64_t batches = cnp.PyArray_SIZE(grad) // (rows * cols) if rows * cols else 0
    for out, size in ((row_sums, batches * rows), (col_sums, batches * cols)):
        if (cnp.PyArray_TYPE(out) != cnp.NPY_DOUBLE or not cnp.PyArray_IS_C_CONTIGUOUS(out)
                or cnp.PyArray_SIZE(out) != size):
            raise ValueError(f"row_sums, col_sums: expected C-contiguous float64 of {size}")
    cdef int kind = cnp.PyArray_TYPE(grad)
    if kind not in (cnp.NPY_FLOAT, cnp.NPY_DOUBLE):
        raise TypeError(f"grad: expected float32 or float64, got {grad.dtype}")
    cdef void *g = cnp.PyArray_DATA(grad)
    cdef double *r = <double *>cnp.PyArray_DATA(row_sums)
    cdef double *c = <double *>cnp.PyArray_DATA(col_sums)
    with nogil:
        if kind == cnp.NPY_FLOAT:
            adafactor_sums_f32(<const float *>g, batches, rows, cols, r, c)
        else:
            adafactor_sums_f64(<const double *>g, batches, rows, cols, r, c)


# ---- muon: Muon's kernels (src_c/rules/muon.inc) ----
