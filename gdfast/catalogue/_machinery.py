"""The machinery of the rule catalogue: declarations, checks, state, steps, backends.

A rule is declared once, as a subclass of `Rule` (gdfast/catalogue/<rule>.py): its
hyper-parameters (`Hyperparameter`: check, default, presets per convention, the gd_hyper
field the kernel reads), its state entries, its equations (the docstring), its NumPy core,
its kernel's name, its torch.optim counterpart and its gallery settings.  Everything else
is derived from that declaration: the constructor's signature, `hyperparameter_names`,
`conventions`, `spec_options`, and, through `bind_backend`, the classes of each backend.

An optimizer checks its arguments, owns the state buffers and the step counts,
and hands each step's tensors to a *functional core*: one function per rule
with the signature

    core(params, grads, *state_buffers, steps, **hyperparameters)

taking parallel lists of the tensors that have a gradient this step (and an
int64 array of their step counts t, already counting this step) and updating
them in place.  gdfast.optim binds the C kernels (gdfast._kernels.Kernel) as the
core, gdfast.reference the rule's literal NumPy function; signatures, defaults,
checks and state handling are the same code.  The C backend also gives a fast path
(`gdfast._kernels.FastStep`) for the common step; this module needs no compiled code.

Validate everything, then write: a step or a state load that raises leaves
every parameter and every state entry exactly as it was.  What the caller could
still change while we work (a list of gradients, a RowGrad's indices, a state
dict's arrays) is copied first and the copy is checked and used.

Thread safety: an optimizer serves one thread at a time.  `step`, `load_state_dict` and
`state_dict` mark the optimizer busy while they run (the kernels run with the GIL
released); the same calls from another thread meanwhile raise RuntimeError before
reading or writing anything, so no update is lost silently and no state is read or
written half-way.  Different optimizers step in parallel.  (A flag tested and set under
the GIL, not a lock: a lock costs ~2,700 instructions a step, +28% on a small step.)
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Mapping, NamedTuple, Sequence, TypeVar, Union

import numpy as np

from .. import _validation as check
from ..rows import RowGrad
from ._fastpath import OwnedMemory, PythonStep, concurrent_use
from ._policy import DEFAULTS as POLICY_DEFAULTS
from ._policy import (
    NATIVE,
    NONNEGATIVE_STATE,
    Policy,
    low_precision_array,
    sixteen_bit_format,
    widen,
)

ArrayOrArrays = Union[np.ndarray, Sequence[np.ndarray]]
GradOrGrads = Union[np.ndarray, RowGrad, None, Sequence[Union[np.ndarray, RowGrad, None]]]

# One sweep of a kernel over a parameter's elements (Optimizer.sweeps): (the buffers it only
# reads, the buffers it reads and writes), by name.
Sweep = tuple[tuple[str, ...], tuple[str, ...]]

# The largest step count: a step that would count past it is refused (int64 in C).
MAX_STEPS = np.iinfo(np.int64).max


class _CheckedRows:
    """A RowGrad that passed every check against its parameter: int64 indices (a copy)
    and C-contiguous values."""

    __slots__ = ("indices", "values")

    def __init__(self, indices: np.ndarray, values: np.ndarray):
        self.indices = indices
        self.values = values


class Hyperparameter:
    """A hyper-parameter of a rule's declaration, checked whenever it is set (`opt.lr = 0.1`).

    validate : the check, validate(name, value) -> value (gdfast._validation)
    default : the value when the caller gives none (SPEC.md's)
    keyword : keyword-only in the constructor (a named option); an option with `presets`
        always is
    presets : {convention: value} for an option whose default follows `convention`
        ("paper" = SPEC.md, "torch", "keras"); the constructor's default is then None
    kernel : the gd_hyper field the C kernel reads ("", the default: the same name), a tuple of
        fields for a tuple value (betas -> ("beta1", "beta2")), or None: not the kernel's
    in_double : the kernels use it only in double (a per-tensor scalar: LAMB's trust_clip,
        Adafactor's d), never rounded to the parameters' dtype, so it is not checked against
        that dtype (∞ passes where its check allows it)
    """

    def __init__(
        self,
        validate: Callable[[str, Any], Any],
        default: Any = None,
        *,
        keyword: bool = False,
        presets: Mapping[str, Any] | None = None,
        kernel: str | tuple[str, ...] | None = "",
        in_double: bool = False,
    ):
        self.validate = validate
        self.in_double = in_double
        self.default = default
        self.presets = dict(presets) if presets is not None else None
        self.keyword = keyword or presets is not None
        self._kernel = kernel

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        if self.presets is not None and set(self.presets) != set(check.CONVENTIONS):
            raise TypeError(
                f"{owner.__name__}.{name}: presets for exactly {', '.join(check.CONVENTIONS)}"
            )

    @property
    def kernel(self) -> str | tuple[str, ...] | None:
        return self.name if self._kernel == "" else self._kernel

    def __get__(self, optimizer: Any, owner: type | None = None) -> Any:
        if optimizer is None:
            return self
        return optimizer._hyper[self.name]

    def __set__(self, optimizer: Any, value: Any) -> None:
        value = self.validate(self.name, value)
        if hasattr(optimizer, "state"):  # constructed: the options must still fit together
            candidate = {**optimizer._hyper, self.name: value}
            optimizer._check_hyper(candidate)
            if type(optimizer).state_layout(candidate) != optimizer.state_names:
                raise ValueError(
                    f"{self.name}: cannot change to {value!r} after construction: it changes "
                    f"the state entries ({', '.join(optimizer.state_names)}); build a new "
                    "optimizer"
                )
            optimizer._hyper[self.name] = value
            optimizer._hyper_changed()
        else:
            optimizer._hyper[self.name] = value


class TorchEquivalent(NamedTuple):
    """A rule's torch.optim counterpart: the class name, the arguments beyond the rule's
    own defaults that select this rule in it (torch.optim.SGD with momentum=0.9 is
    Momentum), the torch names of hyper-parameters torch calls otherwise
    ({"rho": "alpha"} for RMSprop) and of state entries ({"sum_sq": "sum"} for Adagrad).
    gdfast.torch (its adapter class of that name) and the benchmarks use it."""

    name: str
    options: Mapping[str, Any] = {}
    names: Mapping[str, str] = {}
    state: Mapping[str, str] = {}


class Optimizer:
    """Base class: parameters, state buffers, step counts, checks, state dicts.

    Attributes
    ----------
    params : tuple of ndarray
        The parameter arrays, updated in place by `step`.
    state : dict of str to tuple of ndarray
        The rule's state buffers, one per parameter, same shape and dtype.
    steps : tuple of int
        Updates applied to each parameter so far (the t of SPEC.md).
    """

    rule: ClassVar[str] = ""
    # The state entries with the default options; an instance's `state_names` can have more
    # (RMSprop's grad_avg and momentum_buffer, Nadam's mu_product), see `state_layout`.
    state_names: ClassVar[tuple[str, ...]] = ()
    # State entries that are one float64 number per parameter (0-d arrays), not buffers.
    scalar_state: ClassVar[tuple[str, ...]] = ()
    hyperparameter_names: ClassVar[tuple[str, ...]] = ()
    # Every rule's learning rate (its declaration's `lr = Hyperparameter(...)`), for the type
    # checker.
    lr: float
    # State entries that are never negative: 8-bit state stores them with the unsigned map
    # (SPEC L.4), the others with the signed map.  A rule with other such entries lists them.
    nonnegative_state: ClassVar[frozenset[str]] = NONNEGATIVE_STATE
    # Element-wise: each element's update reads only that element's values (every rule of
    # SPEC.md section 1).  A dtype policy stages tensors in blocks (SPEC L.6), so a rule that
    # reduces over a tensor (a trust ratio, a factored moment, a matrix iteration) declares
    # False and refuses a policy.
    elementwise: ClassVar[bool] = True
    # The named options each convention selects (presets): {convention: {option: value}}.
    # An option passed as None takes the value of the chosen convention.
    conventions: ClassVar[dict[str, dict[str, Any]]] = {}
    # Arguments the core always gets and the caller cannot set (AdamW's decoupled decay).
    fixed: ClassVar[dict[str, Any]] = {}
    _core: ClassVar[Callable[..., None]]
    # The row form of the core, core(param, indices, values, *state_buffers, step,
    # **hyperparameters), for the rules declared with `rows = True`; None: RowGrad refused.
    _row_core: ClassVar[Callable[..., Any] | None] = None
    # The backend's fast path: _fast_step(kernel args...) -> an object with `busy`,
    # `step(grads) -> bool` and `set_hyper(hyper)` (gdfast._kernels.FastStep), or None.
    _fast_step: ClassVar[Callable[..., Any] | None] = None
    _signature: ClassVar[inspect.Signature]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: dict[str, Hyperparameter | None] = {}
        transform: dict[str, Hyperparameter | None] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if name in TRANSFORM_NAMES:
                    transform[name] = value
                elif isinstance(value, Hyperparameter) or (value is None and name in declared):
                    declared[name] = value
        declared.update(transform)
        hyper = {name: h for name, h in declared.items() if isinstance(h, Hyperparameter)}
        cls.hyperparameter_names = tuple(hyper)
        cls.conventions = {
            convention: {
                name: h.presets[convention] for name, h in hyper.items() if h.presets is not None
            }
            for convention in check.CONVENTIONS
        }
        self_and_params = [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ]
        positional = [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=h.default)
            for name, h in hyper.items()
            if not h.keyword
        ]
        keyword = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None if h.presets is not None else h.default,
            )
            for name, h in hyper.items()
            if h.keyword
        ]
        convention = inspect.Parameter(
            "convention", inspect.Parameter.KEYWORD_ONLY, default="paper"
        )
        policy = [  # the dtype policy (SPEC L.5, gdfast.catalogue._policy)
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in POLICY_DEFAULTS.items()
        ]
        cls._signature = inspect.Signature(
            self_and_params + positional + keyword + [convention] + policy
        )
        if "__init__" not in vars(cls):
            cls.__signature__ = cls._signature.replace(  # type: ignore[attr-defined]
                parameters=list(cls._signature.parameters.values())[1:]
            )

    @classmethod
    def hyperparameter(cls, name: str) -> Hyperparameter:
        """The declaration of hyper-parameter `name`."""
        return getattr(cls, name)

    def __init__(self, *args: Any, **kwargs: Any):
        """(params, <the rule's hyper-parameters>, *, <its options>, convention="paper"):
        see the class docstring; `inspect.signature` of the class shows them."""
        bound = type(self)._signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        params = arguments.pop("params")
        convention = arguments.pop("convention")
        policy_arguments = {name: arguments.pop(name) for name in POLICY_DEFAULTS}
        self.convention = check.convention("convention", convention)
        preset = type(self).conventions.get(convention, {})
        self._single = isinstance(params, np.ndarray)
        self.params = self._check_params(params)
        names = [self._name("params", index) for index in range(len(self.params))]
        self.policy = Policy.build(self.params, names, policy_arguments)
        if self.policy.active and not type(self).elementwise:
            raise ValueError(
                f"state_dtype, master_weights, param_copy, 16-bit parameters: {self.rule} is "
                "not element-wise (its update reduces over a tensor); it takes float32/float64 "
                "parameters and state only"
            )
        # The arithmetic dtypes of the parameters (float32 for 16-bit ones), each with the name
        # of the first parameter of that dtype.
        self._dtypes = {
            self.policy.arithmetic_dtype(param): self._name("params", index)
            for index, param in reversed(list(enumerate(self.params)))
        }
        self._hyper: dict[str, Any] = {}
        for name in self.hyperparameter_names:
            value = arguments[name]
            setattr(self, name, preset[name] if value is None and name in preset else value)
        self._check_hyper(self._hyper)
        self.state_names = type(self).state_layout(self._hyper)
        # Each state entry's storage (SPEC L.5): a format of gdfast.catalogue._policy, or
        # None for the scalar entries (float64 numbers, never converted).
        self._state_formats = {
            name: None
            if name in self.scalar_state
            else self.policy.state_format(name, type(self).nonnegative_state)
            for name in self.state_names
        }
        self._make_state()
        self._steps = np.zeros(len(self.params), dtype=np.int64)
        self._param_list = list(self.params)
        self._state_lists = tuple(list(self.state[name]) for name in self.state_names)
        # Memory of every buffer the kernels write, for the aliasing check of gradients.
        self._owned = OwnedMemory(
            (check.byte_span(array), label) for label, array in self._labelled_buffers()
        )
        self._core_hyper = {**self._hyper, **self.fixed}
        # The step's fast path and the busy flag: True while step, load_state_dict or
        # state_dict runs (see step).
        fast_step = type(self)._fast_step
        self._fast = (
            PythonStep()
            if fast_step is None or self.policy.active or not type(self).elementwise
            else fast_step(
                type(self).__name__,
                self.params,
                self._state_lists,
                self._core_hyper,
                self._steps,
                self._owned,
            )
        )

    def _make_state(self) -> None:
        """The initial state (`_initial_state`'s values) in the policy's storage, plus the
        arrays a policy adds: `<name>_absmax` (8-bit state's scales) and `master` (float32
        master weights, the parameters widened exactly).  Made in its storage piece by piece
        (Policy.fill): building costs the state's own bytes.  A 16-bit parameter's initial
        values are those of a float32 one (the template: a zero-stride zero, no memory)."""
        templates = [
            p if sixteen_bit_format(p.dtype) is None else np.broadcast_to(np.float32(0), p.shape)
            for p in self.params
        ]
        self.state = {}
        scales = {}
        for name in self.state_names:
            fmt = self._state_formats[name]
            if fmt is None or fmt == NATIVE:
                self.state[name] = tuple(self._initial_state(name, t) for t in templates)
                continue
            made = [self._stored_initial_state(name, fmt, t) for t in templates]
            self.state[name] = tuple(stored for stored, _ in made)
            if made and made[0][1] is not None:
                scales[f"{name}_absmax"] = tuple(absmax for _, absmax in made)
        self.state.update(scales)
        if self.policy.master_weights:
            self.state["master"] = tuple(self.policy.master_weights_of(p) for p in self.params)

    def _stored_initial_state(
        self, name: str, fmt: str, template: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """State entry `name` of a parameter (`template`) made in a 16-bit or 8-bit format."""
        stored, scales = self.policy.empty_storage(fmt, template.size)
        flat = template.reshape(-1)
        self.policy.fill(
            fmt, stored, scales, lambda begin, end: self._initial_state(name, flat[begin:end])
        )
        return stored.reshape(template.shape), scales

    def _policy_step(self, active: list[int], grads: list[Any]) -> None:
        """The step of the tensors `active` under the dtype policy (SPEC L.6): the C kernel
        stages them (gdfast._kernels.Staging), the reference applies L.6 literally."""
        core = type(self)._core
        params = [self.params[i] for i in active]
        active_grads = [grads[i] for i in active]
        entries = [
            (
                name,
                self._state_formats[name],
                [self.state[name][i] for i in active],
                [self.state[f"{name}_absmax"][i] for i in active]
                if f"{name}_absmax" in self.state
                else None,
            )
            for name in self.state_names
        ]
        master = [self.state["master"][i] for i in active] if self.policy.master_weights else None
        steps = self._steps[active]
        if getattr(core, "stages", False):  # the C kernel: one staged pass
            buffers = [entry for entry in entries if entry[1] is not None]
            staging = core.staging(
                *self.policy.staging_args(
                    active,
                    active_grads,
                    [fmt for _, fmt, _, _ in buffers],
                    [absmax for _, _, _, absmax in buffers],
                    master,
                )
            )
            core(
                params,
                active_grads,
                *[entry[2] for entry in entries],
                steps,
                lowp=staging,
                **self._core_hyper,
            )
        else:
            self.policy.reference_step(
                core, active, params, active_grads, entries, steps, master, self._core_hyper
            )

    def _check_grad_dtype(self, name: str, grad: np.ndarray, index: int) -> None:
        """A gradient's dtype against its parameter's and the policy (SPEC L.5): the
        parameter's; float32 for a 16-bit parameter; bfloat16/float16 where the arithmetic has
        a float32 home (a float32 parameter, or master weights)."""
        param = self.params[index]
        if isinstance(grad, np.ndarray) and sixteen_bit_format(grad.dtype) is not None:
            if type(grad) is not np.ndarray or not grad.flags.aligned:
                low_precision_array(name, grad, writeable=False)
        else:
            check.float_array(name, grad)
        if grad.dtype == param.dtype:
            return
        home = param.dtype == np.float32 or self.policy.master_weights
        if grad.dtype == np.float32 and param.dtype != np.float64:
            return
        if sixteen_bit_format(grad.dtype) is not None and home:
            return
        allowed = "float32, bfloat16 or float16" if home else f"{param.dtype} or float32"
        if param.dtype == np.float64:
            allowed = "float64"
        raise TypeError(
            f"{name}: dtype {grad.dtype} does not match the parameter's dtype {param.dtype}; "
            f"expected {allowed}"
            + (
                " (a 16-bit gradient of another format needs master_weights=True)"
                if sixteen_bit_format(param.dtype) and not home
                else ""
            )
        )

    @property
    def _busy(self) -> bool:
        return self._fast.busy

    @_busy.setter
    def _busy(self, value: bool) -> None:
        self._fast.busy = value

    def _hyper_changed(self) -> None:
        """After every change of `_hyper`: what the cores and the fast path are given."""
        self._core_hyper = {**self._hyper, **self.fixed}
        self._fast.set_hyper(self._core_hyper)

    # ----------------------------------------------------- options and state
    @classmethod
    def state_layout(cls, hyper: dict[str, Any]) -> tuple[str, ...]:
        """The state entries an optimizer with these hyper-parameters keeps."""
        return cls.state_names

    def sweeps(self, index: int) -> tuple[Sweep, ...]:
        """The memory traffic of a step on parameter `index`, for the benchmark's limit
        (gdfast.bench): the kernel's sweeps over its elements, in order, each as (the buffers
        only read, the buffers read and written), by name: "param", "grad" and state entries
        with one element per parameter element.  An element-wise rule: one sweep that reads
        the gradient and updates the parameter and those state entries."""
        param = self.params[index]
        states = tuple(
            name for name in self.state_names if self.state[name][index].size == param.size
        )
        return ((("grad",), ("param", *states)),)

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        """State entry `name` of `param` before the first step (zeros unless a rule says)."""
        return np.zeros_like(param)

    def _state_spec(self, name: str, param: np.ndarray) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of state entry `name` of `param`."""
        return param.shape, param.dtype

    def _check_together(self, hyper: dict[str, Any]) -> None:
        """Raise ValueError for options that are valid alone but not together."""

    def _largest_scalars(self, hyper: dict[str, Any]) -> dict[str, tuple[str, float]]:
        """Per-step scalars a rule derives from its hyper-parameters, at their largest:
        {description: (hyper-parameter to blame, value)}; each must be finite in the dtype of
        every parameter (the kernels round them to it)."""
        return {}

    def _check_hyper(self, hyper: dict[str, Any]) -> None:
        """Options together, then every real hyper-parameter in the dtype of each parameter:
        finite there (1e39 is inf in float32), and still > 0 where it must be > 0 (eps=1e-46
        is 0 in float32); and each derived scalar of `_largest_scalars` finite there."""
        self._check_together(hyper)
        values = []
        for name in self.hyperparameter_names:
            value = hyper[name]
            if getattr(type(self), name).in_double:
                continue
            if isinstance(value, tuple):
                values += [(f"{name}[{i}]", name, v) for i, v in enumerate(value)]
            elif isinstance(value, float):
                values.append((name, name, value))
        for dtype, param_name in self._dtypes.items():
            overflow, underflow = check.ROUNDING_LIMITS[dtype]
            for label, name, value in values:
                positive = getattr(type(self), name).validate is check.positive
                if abs(value) >= overflow or (positive and value <= underflow):
                    with np.errstate(over="ignore"):
                        rounded = dtype.type(value)
                    raise ValueError(
                        f"{label}: {value!r} is {rounded} in {dtype}, the dtype of "
                        f"{param_name}; expected a finite number{' > 0' if positive else ''} "
                        f"in {dtype}"
                    )
            for description, (name, value) in self._largest_scalars(hyper).items():
                if abs(value) >= overflow:
                    raise ValueError(
                        f"{name}: {description} = {value!r} overflows {dtype}, the dtype of "
                        f"{param_name} (the kernels compute it in that dtype); use a smaller "
                        f"{name}"
                    )

    # ------------------------------------------------------------------ checks
    def _name(self, what: str, index: int) -> str:
        return what if self._single else f"{what}[{index}]"

    def _check_params(self, params: ArrayOrArrays) -> tuple[np.ndarray, ...]:
        if isinstance(params, np.ndarray):
            arrays = [params]
        elif isinstance(params, (list, tuple)):
            arrays = list(params)
        else:
            raise TypeError(
                f"params: expected an ndarray or a list of ndarrays, got {type(params).__name__}"
            )
        for index, array in enumerate(arrays):
            if isinstance(array, np.ndarray) and sixteen_bit_format(array.dtype) is not None:
                low_precision_array(self._name("params", index), array, writeable=True)
            else:
                check.parameter(self._name("params", index), array)
        spans = sorted((check.byte_span(a), i) for i, a in enumerate(arrays) if a.nbytes)
        for (previous, first), (current, second) in zip(spans, spans[1:]):
            if check.spans_overlap(previous, current):
                raise ValueError(
                    f"params[{second}]: shares memory with params[{first}]; "
                    "each parameter must own its memory"
                )
        return tuple(arrays)

    def _labelled_buffers(self):
        for index, param in enumerate(self.params):
            yield self._name("params", index), param
        for index, copy in enumerate(self.policy.param_copy or ()):
            if copy is not None:
                yield self._name("param_copy", index), copy
        for name, buffers in self.state.items():
            for index, buffer in enumerate(buffers):
                yield f"state[{name!r}][{index}]", buffer

    def _aliased_buffer(self, grad: np.ndarray) -> str | None:
        """Label of a parameter or state buffer that shares memory with grad, if any."""
        label = self._owned.overlapping(*check.byte_span(grad))
        if label is None or grad.flags.c_contiguous:
            return label
        owner = dict(self._labelled_buffers())[label]  # strided: ask for exact overlap
        return label if np.shares_memory(grad, owner) else None

    def _check_rows(self, name: str, grad: RowGrad, param: np.ndarray) -> _CheckedRows:
        """Every check of a RowGrad entry against its parameter (gdfast.rows)."""
        if self.policy.active:
            raise TypeError(
                f"{name}: RowGrad (row-sparse) steps are float32/float64 only; this "
                "optimizer has a low-precision policy (state_dtype, master_weights, "
                "param_copy or 16-bit parameters)"
            )
        if type(self)._row_core is None:
            raise TypeError(
                f"{name}: {self.rule} does not take RowGrad (row-sparse) "
                f"gradients; the rules that do: {', '.join(row_sparse_rules())}"
            )
        if self._hyper.get("weight_decay", 0.0) != 0:
            raise TypeError(
                f"{name}: {self.rule} with weight_decay="
                f"{self._hyper['weight_decay']!r} does not take RowGrad "
                "gradients (the decay has no lazy form: it would decay only the "
                "rows named); use weight_decay=0"
            )
        if param.ndim != 2:
            raise ValueError(
                f"{name}: a RowGrad needs a 2-D parameter (n_rows, dim); the "
                f"parameter has shape {param.shape}"
            )
        # Copy first, then check the copy: the kernel reads the indices with the GIL released,
        # and another thread may change the caller's array at any time.
        indices, values = np.array(grad.indices, order="C"), grad.values
        n_rows, dim = param.shape
        if indices.size:
            low, high = int(indices.min()), int(indices.max())
            if low < 0:
                raise ValueError(
                    f"{name}.indices: negative index {low}; expected row numbers in [0, {n_rows})"
                )
            if high >= n_rows:
                raise ValueError(
                    f"{name}.indices: index {high} out of range for a parameter of {n_rows} rows"
                )
        if values.dtype != param.dtype:
            raise TypeError(
                f"{name}.values: dtype {values.dtype} does not match the "
                f"parameter's dtype {param.dtype}"
            )
        if values.shape != (indices.shape[0], dim):
            raise ValueError(
                f"{name}.values: expected shape {(indices.shape[0], dim)} (one "
                f"row of the parameter's {dim} columns per index), got "
                f"{values.shape}"
            )
        check.float_array(f"{name}.values", values)
        aliased = self._aliased_buffer(values)
        if aliased is not None:
            raise ValueError(
                f"{name}.values: shares memory with {aliased}, which the step "
                "writes; pass a gradient array of its own"
            )
        # in range, so int64 holds every index exactly
        return _CheckedRows(indices.astype(np.int64, copy=False), np.ascontiguousarray(values))

    def _check_grads(self, grads: GradOrGrads) -> list[np.ndarray | _CheckedRows | None]:
        if grads is None or isinstance(grads, (np.ndarray, RowGrad)):
            grads = [grads]
        elif isinstance(grads, (list, tuple)):
            grads = list(grads)
        else:
            raise TypeError(
                "grads: expected an ndarray, a RowGrad, None, or a list of them "
                f"(one per parameter), got {type(grads).__name__}"
            )
        if len(grads) != len(self.params):
            raise ValueError(
                f"grads: expected {len(self.params)} gradient(s), one per "
                f"parameter (None to skip one), got {len(grads)}"
            )
        for index, (grad, param) in enumerate(zip(grads, self.params)):
            if grad is None:
                continue
            name = self._name("grads", index)
            if isinstance(grad, RowGrad):
                grads[index] = self._check_rows(name, grad, param)
                continue
            self._check_grad_dtype(name, grad, index)
            if grad.shape != param.shape:
                raise ValueError(
                    f"{name}: shape {grad.shape} does not match the parameter's shape {param.shape}"
                )
            aliased = self._aliased_buffer(grad)
            if aliased is not None:
                raise ValueError(
                    f"{name}: shares memory with {aliased}, which the step "
                    "writes; pass a gradient array of its own"
                )
            if not grad.flags.c_contiguous:
                grads[index] = np.ascontiguousarray(grad)
        return grads

    # -------------------------------------------------------------------- step
    def step(self, grads: GradOrGrads) -> None:
        """Apply one update to every parameter whose gradient is not None.

        `grads` has the structure of `params`: one array (or a list of one)
        for a single parameter, else a list with one entry per parameter, each
        an array of the parameter's shape and dtype, or None to leave that
        parameter, its state and its step count untouched this step.
        Non-contiguous gradients are copied; parameters are updated in place.

        SGD, Momentum, Adagrad, RMSprop and Adam also take a `gdfast.RowGrad(indices,
        values)` for a 2-D parameter: a lazy update of the rows named, duplicates summed
        (see gdfast.rows for the semantics, t included).

        Thread safety: one thread at a time.  While a step, `load_state_dict` or
        `state_dict` of this optimizer runs in another thread, `step` raises RuntimeError
        before touching anything.  A step refuses (ValueError, nothing written) a
        parameter whose step count is already 2**63 − 1.
        """
        if self._fast.step(grads):  # the common case, whole (gdfast._kernels.FastStep)
            return
        if type(grads) is np.ndarray:
            grads = [grads]
        elif type(grads) is list or type(grads) is tuple:
            grads = [*grads]  # our own list: the caller's may change while we step
        if self._busy:
            raise self._concurrent("step")
        self._busy = True  # no eval-breaker check between the test and the set: atomic
        try:
            grads = self._check_grads(grads)  # every check, with messages; may copy
            counted = [index for index, grad in enumerate(grads) if grad is not None]
            at_limit = [index for index in counted if self._steps[index] == MAX_STEPS]
            if at_limit:
                raise ValueError(
                    f"{self._name('params', at_limit[0])}: its step count is "
                    f"{MAX_STEPS}, the largest there is; this optimizer cannot step "
                    "it again (load a state with a smaller step count)"
                )
            active = [index for index, grad in enumerate(grads) if isinstance(grad, np.ndarray)]
            row_sparse = [
                index for index, grad in enumerate(grads) if isinstance(grad, _CheckedRows)
            ]
            if row_sparse:
                self._steps[row_sparse] += 1
                for i in row_sparse:
                    type(self)._row_core(
                        self.params[i],
                        grads[i].indices,
                        grads[i].values,
                        *[buffers[i] for buffers in self._state_lists],
                        int(self._steps[i]),
                        **self._core_hyper,
                    )
            if not active:
                return
            self._steps[active] += 1
            if self.policy.active or any(grads[i].dtype != self.params[i].dtype for i in active):
                self._policy_step(active, grads)
                return
            type(self)._core(
                [self.params[i] for i in active],
                [grads[i] for i in active],
                *[[buffers[i] for i in active] for buffers in self._state_lists],
                self._steps[active],
                **self._core_hyper,
            )
        finally:
            self._busy = False

    def _concurrent(self, call: str) -> RuntimeError:
        return concurrent_use(type(self).__name__, call)

    # ------------------------------------------------------------------ access
    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(self._steps.tolist())

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The current hyper-parameters, by name (a copy): the rule's own always, each
        named option only where it differs from SPEC.md's rule (`options` has them all;
        `state_dict()` keeps everything)."""
        spec = type(self).spec_options()
        return {
            name: value
            for name, value in self._hyper.items()
            if name not in spec or value != spec[name]
        }

    @property
    def options(self) -> dict[str, Any]:
        """Every named option (the keyword-only arguments), by name (a copy)."""
        return {name: self._hyper[name] for name in type(self).spec_options()}

    @classmethod
    def spec_options(cls) -> dict[str, Any]:
        """The named options and their values in SPEC.md's rule (convention "paper")."""
        declared = {name: cls.hyperparameter(name) for name in cls.hyperparameter_names}
        return {
            name: h.default if h.presets is None else h.presets["paper"]
            for name, h in declared.items()
            if h.keyword
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self._hyper.items())
        return (
            f"{type(self).__module__}.{type(self).__name__}({len(self.params)} parameter(s), "
            f"{settings})"
        )

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue later, as plain data (arrays are copies).

        {"rule": str, "hyperparameters": {name: value}, "steps": [int, ...],
         "state": {state name: [ndarray per parameter]}}.  It loads into the
        same rule of either backend (gdfast or gdfast.reference).
        """
        if self._busy:
            raise self._concurrent("state_dict")
        self._busy = True
        try:
            state = {
                "rule": self.rule,
                "hyperparameters": dict(self._hyper),
                "steps": self._steps.tolist(),
                "state": {
                    name: [buffer.copy() for buffer in buffers]
                    for name, buffers in self.state.items()
                },
            }
            if self.policy.active:  # the dtype policy that the state's storage follows
                state["policy"] = self.policy.record()
            return state
        finally:
            self._busy = False

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a `state_dict()`; checks all of it before changing anything.

        The arrays are copied first and the copies checked and loaded, so a caller changing
        the dict or its arrays meanwhile cannot make a load fail half-way."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict: expected a dict, got {type(state_dict).__name__}")
        state_dict = dict(state_dict)
        expected_keys = {"rule", "hyperparameters", "steps", "state"}
        self._check_loaded_policy(state_dict)
        if self.policy.active:
            expected_keys.add("policy")
        if set(state_dict) != expected_keys:
            raise ValueError(
                f"state_dict: expected the keys {sorted(expected_keys)}, got {sorted(state_dict)}"
            )
        if state_dict["rule"] != self.rule:
            raise ValueError(
                f"state_dict['rule']: this is a {self.rule} optimizer, the state "
                f"dict is from {state_dict['rule']!r}"
            )
        hyper = state_dict["hyperparameters"]
        hyper = dict(hyper) if isinstance(hyper, dict) else hyper
        if not isinstance(hyper, dict) or set(hyper) != set(self.hyperparameter_names):
            raise ValueError(
                f"state_dict['hyperparameters']: expected the keys "
                f"{list(self.hyperparameter_names)}, got "
                f"{sorted(hyper) if isinstance(hyper, dict) else hyper!r}"
            )
        checked_hyper = {
            name: getattr(type(self), name).validate(
                f"state_dict['hyperparameters'][{name!r}]", hyper[name]
            )
            for name in self.hyperparameter_names
        }
        self._check_hyper(checked_hyper)
        layout = type(self).state_layout(checked_hyper)
        if layout != self.state_names:
            raise ValueError(
                f"state_dict['hyperparameters']: they need the state entries "
                f"{list(layout)}, this optimizer keeps {list(self.state_names)}; "
                "build one with the same options"
            )
        steps = self._check_loaded_steps(state_dict["steps"])
        buffers = self._check_loaded_state(state_dict["state"])
        # everything checked (copies, nothing the caller holds): write
        if self._busy:
            raise self._concurrent("load_state_dict")
        self._busy = True
        try:
            for name, arrays in buffers.items():
                for target, source in zip(self.state[name], arrays):
                    np.copyto(target, source)
            self._steps[:] = steps
            self._hyper.update(checked_hyper)
            self._hyper_changed()
        finally:
            self._busy = False

    def _check_loaded_steps(self, steps: Any) -> np.ndarray:
        """The step counts as a new int64 array: ints (not bools, not floats) in
        [0, MAX_STEPS]."""
        n = len(self.params)
        if isinstance(steps, np.ndarray):
            steps = steps.tolist() if steps.ndim == 1 else steps
        if not isinstance(steps, (list, tuple)) or len(steps) != n:
            raise ValueError(
                f"state_dict['steps']: expected a list of {n} step count(s), got {_short(steps)}"
            )
        counts = np.zeros(n, dtype=np.int64)
        for index, count in enumerate(steps):
            if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)):
                raise TypeError(
                    f"state_dict['steps'][{index}]: expected an int, got {type(count).__name__}"
                )
            if count < 0:
                raise ValueError(f"state_dict['steps'][{index}]: expected >= 0, got {count}")
            if count > MAX_STEPS:
                raise ValueError(
                    f"state_dict['steps'][{index}]: expected <= {MAX_STEPS} "
                    f"(int64 step counts), got {count}"
                )
            counts[index] = int(count)
        return counts

    def _check_loaded_policy(self, state_dict: dict[str, Any]) -> None:
        """A state dict's dtype policy must be this optimizer's: state is never converted
        silently (convert_state converts it explicitly)."""
        self.policy.check_loaded(
            state_dict, "none (float32/float64 state)", "gdfast.catalogue.convert_state"
        )

    def _check_loaded_state(self, state: Any) -> dict[str, list[np.ndarray]]:
        """The state buffers, each a private copy checked against its parameter (under a
        dtype policy: every entry the optimizer keeps, codes, scales and master included,
        each of exactly its own buffer's shape and dtype)."""
        names = list(self.state) if self.policy.active else list(self.state_names)
        state = dict(state) if isinstance(state, dict) else state
        if not isinstance(state, dict) or set(state) != set(names):
            got = sorted(map(str, state)) if isinstance(state, dict) else _short(state)
            raise ValueError(f"state_dict['state']: expected the entries {names}, got {got}")
        copies: dict[str, list[np.ndarray]] = {}
        for name in names:
            arrays = state[name]
            where = f"state_dict['state'][{name!r}]"
            if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self.params):
                raise ValueError(f"{where}: expected a list of {len(self.params)} arrays")
            arrays = list(arrays)
            for index, array in enumerate(arrays):
                if not self.policy.active:
                    check.float_array(f"{where}[{index}]", array)
                elif not isinstance(array, np.ndarray):
                    raise TypeError(f"{where}[{index}]: expected a numpy.ndarray")
                arrays[index] = np.array(array, copy=True)  # copy first, check the copy
            copies[name] = arrays
            for index, (array, param) in enumerate(zip(arrays, self.params)):
                own = self.state[name][index]
                shape, dtype = (
                    (own.shape, own.dtype) if self.policy.active else self._state_spec(name, param)
                )
                if array.shape != shape or array.dtype != dtype:
                    whose = " (those of the parameter)" if shape == param.shape else ""
                    raise ValueError(
                        f"{where}[{index}]: expected shape {shape} and dtype "
                        f"{dtype}{whose}, got shape "
                        f"{array.shape} and dtype {array.dtype}"
                    )
        return copies


def convert_state(state_dict: dict[str, Any], optimizer: Optimizer) -> dict[str, Any]:
    """A state dict of the same rule converted to `optimizer`'s dtype policy (explicitly,
    never on load): every state buffer decoded to float32 (bfloat16 widened, 8-bit decoded
    with its scales), then stored as `optimizer`'s policy says (rounded to nearest,
    8-bit re-encoded); master weights taken from the state dict if it has them, else from
    `optimizer`'s parameters.  float32 -> 8-bit -> float32 is lossy (8-bit codes)."""
    if not isinstance(state_dict, dict) or not isinstance(state_dict.get("state"), dict):
        raise TypeError("state_dict: expected a state dict (Optimizer.state_dict())")
    source = state_dict.get("policy") or {"state_dtype": "float32", "block_size": 256}
    block = source.get("block_size", 256)
    decoder = Policy(source.get("state_dtype", "float32"), False, "nearest", 0, block, [], None)
    target = optimizer.policy
    state: dict[str, list[np.ndarray]] = {}
    for name in optimizer.state_names:
        if name not in state_dict["state"]:
            raise ValueError(f"state_dict['state']: no entry {name!r}")
        fmt = optimizer._state_formats[name]
        buffers = state_dict["state"][name]
        if fmt is None:
            state[name] = [np.array(b, copy=True) for b in buffers]
            continue
        source_fmt = decoder.state_format(name, type(optimizer).nonnegative_state)
        scales = state_dict["state"].get(f"{name}_absmax", [None] * len(buffers))
        wide = [
            decoder.load(source_fmt, np.asarray(b), s).astype(np.float32)
            for b, s in zip(buffers, scales)
        ]
        if fmt == NATIVE:
            state[name] = [
                w.astype(p.dtype) if p.dtype == np.float64 else w
                for w, p in zip(wide, optimizer.params)
            ]
            continue
        stored = [target.store(fmt, w) for w in wide]
        state[name] = [codes for codes, _ in stored]
        if stored and stored[0][1] is not None:
            state[f"{name}_absmax"] = [s for _, s in stored]
    if target.master_weights:
        master = state_dict["state"].get("master")
        state["master"] = (
            [np.array(m, dtype=np.float32) for m in master]
            if master is not None
            else [widen(p) for p in optimizer.params]
        )
    converted = {
        "rule": state_dict.get("rule"),
        "hyperparameters": state_dict.get("hyperparameters"),
        "steps": state_dict.get("steps"),
        "state": state,
    }
    if target.active:
        converted["policy"] = target.record()
    return converted


def _short(value: Any) -> str:
    """A value for an error message, at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


OptimizerType = TypeVar("OptimizerType", bound=type)


def bind_backend(
    rule_class: OptimizerType,
    core: Callable[..., None],
    module: str,
    row_core: Callable[..., Any] | None = None,
    fast_step: Callable[..., Any] | None = None,
) -> OptimizerType:
    """The declaration `rule_class` running on the functional core `core` (and, for a rule
    declared with `rows = True`, on `row_core` for RowGrad entries; `fast_step`: the
    backend's fast path, see Optimizer._fast_step), as a class of `module`.  `core` is
    taken as it is: the C backend's is `rule_class.bind_core(kernel)`, made once by
    gdfast.optim.kernel (a NumPy core needs no binding)."""
    if (row_core is not None) != rule_class.rows:
        raise ValueError(
            f"row_core: expected one exactly for the rules declared with rows = True "
            f"({', '.join(row_sparse_rules())}), not for {rule_class.__name__}"
        )
    return type(
        rule_class.__name__,
        (rule_class,),
        {
            "_core": staticmethod(core),
            "_row_core": None if row_core is None else staticmethod(row_core),
            "_fast_step": None if fast_step is None else staticmethod(fast_step),
            "__module__": module,
            "__qualname__": rule_class.__name__,
            "__doc__": rule_class.__doc__,
        },
    )


def two_pass_kernel(
    rule_class: type[Rule], fields: dict[str, Any] | None = None
) -> Callable[..., None]:
    """The C kernel of a rule whose step needs per-tensor norms (LAMB, Adafactor: spec 1.3),
    gdfast._kernels.TwoPassKernel: pass 1 over fixed blocks, per-tensor scalars, pass 2, in
    one call.  `fields`: the kernel's hyper-parameters and their gd_hyper fields (default:
    the declaration's, `kernel_fields`).  Such a rule is not element-wise: no fast path
    (`FastStep` runs plain kernels), no dtype policy."""
    from .. import _kernels  # compiled: only the C backend asks for it

    return _kernels.TwoPassKernel(
        rule_class.kernel,
        rule_class.kernel_fields() if fields is None else fields,
        rule_class.state_layout,
        rule_class.scalar_state,
    )


def row_sparse_rules() -> tuple[str, ...]:
    """The rules declared with `rows = True` (they take gdfast.RowGrad entries)."""
    from . import CATALOGUE

    return tuple(rule.rule for rule in CATALOGUE if rule.rows)


# ---------------------------------------------------------------------------
# The base of every declaration.  Symbols are those of SPEC.md section 1; t counts from 1
# per parameter and all operations are element-wise.
#
# Every rule takes the same gradient transform, applied before the rule's own update:
#   maximize:                g ← −g
#   weight_decay λ (L2):     g ← g + λ θ                   (torch's weight_decay)
#   decoupled_weight_decay:  θ ← θ (1 − η λ) instead        (AdamW; Keras's weight_decay)
# and `convention` ("paper" = SPEC.md, "torch", "keras") picks the value of every option
# left as None.  A preset selects formulas, never numbers: lr, eps, betas, rho, ... keep
# the signature's defaults (SPEC.md's) unless given; see each library's defaults in the
# docstrings.
# ---------------------------------------------------------------------------

TRANSFORM_NAMES = ("weight_decay", "decoupled_weight_decay", "maximize")

PARAMS_DOC = """params : ndarray or list of ndarray
        float32 or float64, C-contiguous, writeable, any shape (size 0 allowed);
        updated in place by `step`."""

TRANSFORM_DOC = """weight_decay : float, default 0.0
        λ (>= 0): L2 decay, g ← g + λ θ, or decoupled decay (below).
    decoupled_weight_decay : bool, optional
        True: θ ← θ (1 − η λ) before the update instead of the L2 term (Loshchilov &
        Hutter's decoupled decay; AdamW, and Keras's `weight_decay`).  Preset: paper
        False, torch False, keras True.
    maximize : bool, default False
        Ascend: g ← −g (torch's `maximize`).
    convention : {"paper", "torch", "keras"}, default "paper"
        The value of every option left as None (see the table in the class docstring).
        Explicit arguments override it."""

ROWS_DOC = """
    Row-sparse steps: for a 2-D parameter (n_rows, dim), `step` also takes
    gdfast.RowGrad(indices, values): duplicate indices are summed, then only the rows
    named are updated with the equations above (the same element arithmetic as a dense
    step); other rows and their state are left as they are (lazy: their state does not
    decay), and t is the parameter's step count, as in torch.optim.SparseAdam.  Needs
    weight_decay = 0.  See gdfast.rows.
    """

_REQUIRED = ("kernel", "numpy_core", "torch_equivalent", "gallery_lr", "adaptive")


class Rule(Optimizer):
    """A rule's declaration: subclass it once per rule (gdfast/catalogue/<rule>.py).

    Class attributes to set (a declaration missing one fails when it is defined):
      rule        the name ("Adam"); state_names: its state entries with the defaults
      <name> = Hyperparameter(...)   each hyper-parameter, in the constructor's order
      kernel      its entry in gd_rules[] (src_c/kernels.c)
      numpy_core  its NumPy functional core, the reference (SPEC.md in code)
      torch_equivalent  TorchEquivalent(...), or None: no torch.optim counterpart
      gallery_lr  {surface: learning rate} for the trajectory gallery (gdfast.gallery)
      adaptive    True for a per-element adaptive step size (the gallery's grouping)
    and optionally: rows = True (it takes RowGrad), scalar_state, fixed, variant_of (a
    named variant of another rule, listed apart from SPEC.md's table: AdamW), and the
    methods state_layout, _initial_state, _check_together.
    """

    weight_decay = Hyperparameter(check.nonnegative, 0.0, keyword=True)
    decoupled_weight_decay = Hyperparameter(
        check.flag, presets={"paper": False, "torch": False, "keras": True}
    )
    maximize = Hyperparameter(check.flag, False, keyword=True)

    kernel: ClassVar[str]
    numpy_core: ClassVar[Callable[..., None]]
    torch_equivalent: ClassVar[TorchEquivalent | None]
    gallery_lr: ClassVar[dict[str, float]]
    adaptive: ClassVar[bool]
    rows: ClassVar[bool] = False
    variant_of: ClassVar[str | None] = None
    # The rules whose step size η / (1 − β1^t) the kernels compute as one scalar.
    _bias_corrected: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.rule or "_core" in vars(cls):  # an abstract base, or a bound class
            return
        missing = [name for name in _REQUIRED if not hasattr(cls, name)]
        if missing:
            raise TypeError(f"{cls.__name__}: the declaration lacks {', '.join(missing)}")
        if "numpy_core" in vars(cls):  # a plain function as a class attribute: keep it one
            cls.numpy_core = staticmethod(vars(cls)["numpy_core"])
        if cls.rows and "__doc__" in vars(cls) and cls.__doc__:
            cls.__doc__ = cls.__doc__.rstrip() + "\n" + ROWS_DOC

    @classmethod
    def bind_core(cls, core: Callable[..., None]) -> Callable[..., None]:
        """The C functional core of this rule, given its plain kernel (gdfast._kernels.Kernel;
        gdfast.optim.kernel calls this, once): `core` itself, unless the rule's C step is
        more than one plain kernel call (see `two_pass_kernel`)."""
        return core

    @classmethod
    def kernel_fields(cls) -> dict[str, Any]:
        """{hyper-parameter or fixed argument: the gd_hyper field(s) the kernel reads}."""
        names = cls.hyperparameter_names + tuple(cls.fixed)
        return {name: Rule.hyperparameter_of(cls, name).kernel for name in names}

    @staticmethod
    def hyperparameter_of(cls: type, name: str) -> Hyperparameter:
        """The declaration of `name`, looked up through the bases (a fixed argument's
        declaration stays Rule's: AdamW sets its decoupled_weight_decay to None)."""
        for klass in cls.__mro__:
            value = vars(klass).get(name)
            if isinstance(value, Hyperparameter):
                return value
        raise KeyError(name)

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        if name in self.scalar_state:
            return np.ones((), dtype=np.float64)
        return np.zeros_like(param)

    def _state_spec(self, name: str, param: np.ndarray) -> tuple[tuple[int, ...], np.dtype]:
        if name in self.scalar_state:
            return (), np.dtype(np.float64)
        return param.shape, param.dtype

    def _largest_scalars(self, hyper: dict[str, Any]) -> dict[str, tuple[str, float]]:
        hyper = {**hyper, **self.fixed}
        scalars = {}
        if hyper.get("decoupled_weight_decay"):  # θ ← θ (1 − η λ); absent: no such decay
            scalars["lr * weight_decay"] = ("weight_decay", hyper["lr"] * hyper["weight_decay"])
        if self._bias_corrected and hyper.get("bias_correction", True):
            scalars.update(_bias_corrected_step(hyper))
        return scalars


def _bias_corrected_step(hyper: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """The step size η / (1 − β1^t) of Adam, AdaMax and bias-corrected AMSGrad is largest
    at t = 1: η / (1 − β1).  The kernels round it to the parameter's dtype, the reference
    computes η · (m / (1 − β1^t)); where the step size overflows the dtype the two would
    disagree ([nan, -inf] against [1, -1e38] for Adam(lr=1e38) in float32), so such an η is
    refused (SPEC: η / (1 − β1) must be finite in the dtype of every parameter)."""
    lr, beta1 = hyper["lr"], hyper["betas"][0]
    return {"lr / (1 - betas[0])": ("lr", lr / (1.0 - beta1))}


# ---- muon: what a rule that is not element-wise needs (Muon) ----
