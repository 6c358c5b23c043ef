"""The optimizer classes, independent of the backend that does the arithmetic.

An optimizer checks its arguments, owns the state buffers and the step counts,
and hands each step's tensors to a *functional core*: one function per rule
with the signature

    core(params, grads, *state_buffers, steps, **hyperparameters)

taking parallel lists of the tensors that have a gradient this step (and an
int64 array of their step counts t, already counting this step) and updating
them in place.  gdfast binds the C kernels (gdfast._kernels) as the
core, gdfast.reference binds the literal NumPy functions of SPEC.md; both get
their classes from here through `bind_backend`, so signatures, defaults,
checks and state handling are the same code.

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
from typing import Any, Callable, ClassVar, Sequence, TypeVar, Union

import numpy as np

from . import _validation as check
from ._kernels import FAST_ALL, OwnedMemory, count_step, gradients_fast_ok
from .rows import RowGrad

ArrayOrArrays = Union[np.ndarray, Sequence[np.ndarray]]
GradOrGrads = Union[np.ndarray, RowGrad, None, Sequence[Union[np.ndarray, RowGrad, None]]]

# The largest step count: a step that would count past it is refused (int64 in C).
MAX_STEPS = np.iinfo(np.int64).max

# The rules that take RowGrad entries (gdfast.rows): their functional cores have a row form.
ROW_SPARSE_RULES = ("SGD", "Momentum", "Adagrad", "RMSprop", "Adam")


class _CheckedRows:
    """A RowGrad that passed every check against its parameter: int64 indices (a copy)
    and C-contiguous values."""

    __slots__ = ("indices", "values")

    def __init__(self, indices: np.ndarray, values: np.ndarray):
        self.indices = indices
        self.values = values


class Hyperparameter:
    """A hyper-parameter attribute, checked whenever it is set (`opt.lr = 0.1`)."""

    def __init__(self, validate: Callable[[str, Any], Any]):
        self.validate = validate

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

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
    hyperparameter_names: ClassVar[tuple[str, ...]] = ()
    # The named options each convention selects (presets): {convention: {option: value}}.
    # An option passed as None takes the value of the chosen convention.
    conventions: ClassVar[dict[str, dict[str, Any]]] = {}
    _core: ClassVar[Callable[..., None]]
    # The row form of the core, core(param, indices, values, *state_buffers, step,
    # **hyperparameters), for the rules of ROW_SPARSE_RULES; None: RowGrad is refused.
    _row_core: ClassVar[Callable[..., Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = tuple(
            name for name, value in vars(cls).items() if isinstance(value, Hyperparameter)
        )
        if declared:
            cls.hyperparameter_names = declared

    def __init__(self, params: ArrayOrArrays, convention: str = "paper", **hyperparameters: Any):
        self.convention = check.convention("convention", convention)
        preset = type(self).conventions.get(convention, {})
        self._single = isinstance(params, np.ndarray)
        self.params = self._check_params(params)
        # The dtypes of the parameters, each with the name of the first parameter of that dtype.
        self._dtypes = {
            param.dtype: self._name("params", index)
            for index, param in reversed(list(enumerate(self.params)))
        }
        self._hyper: dict[str, Any] = {}
        for name in self.hyperparameter_names:
            value = hyperparameters[name]
            setattr(self, name, preset[name] if value is None and name in preset else value)
        self._check_hyper(self._hyper)
        self.state_names = type(self).state_layout(self._hyper)
        self.state = {
            name: tuple(self._initial_state(name, p) for p in self.params)
            for name in self.state_names
        }
        self._steps = np.zeros(len(self.params), dtype=np.int64)
        # True while step, load_state_dict or state_dict runs (see _enter).
        self._busy = False
        self._param_list = list(self.params)
        self._state_lists = tuple(list(buffers) for buffers in self.state.values())
        # Memory of every buffer the kernels write, for the aliasing check of gradients.
        self._owned = OwnedMemory(
            (check.byte_span(array), label) for label, array in self._labelled_buffers()
        )

    # ----------------------------------------------------- options and state
    @classmethod
    def state_layout(cls, hyper: dict[str, Any]) -> tuple[str, ...]:
        """The state entries an optimizer with these hyper-parameters keeps."""
        return cls.state_names

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
        if type(self)._row_core is None:
            raise TypeError(
                f"{name}: {self.rule} does not take RowGrad (row-sparse) "
                f"gradients; the rules that do: {', '.join(ROW_SPARSE_RULES)}"
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
            check.float_array(name, grad)
            if grad.dtype != param.dtype:
                raise TypeError(
                    f"{name}: dtype {grad.dtype} does not match the parameter's dtype {param.dtype}"
                )
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
        if type(grads) is np.ndarray:
            grads = [grads]
        elif type(grads) is list or type(grads) is tuple:
            grads = [*grads]  # our own list: the caller's may change while we step
        if self._busy:
            raise self._concurrent("step")
        self._busy = True  # no eval-breaker check between the test and the set: atomic
        try:
            verdict = type(grads) is list and gradients_fast_ok(grads, self.params, self._owned)
            if not verdict:
                grads = self._check_grads(grads)  # every check, with messages; may copy
            if verdict == FAST_ALL:
                count_step(self._steps)  # refuses, before writing, a count at MAX_STEPS
                type(self)._core(
                    self._param_list, grads, *self._state_lists, self._steps, **self._hyper
                )
                return
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
                        **self._hyper,
                    )
            if not active:
                return
            self._steps[active] += 1
            type(self)._core(
                [self.params[i] for i in active],
                [grads[i] for i in active],
                *[[buffers[i] for i in active] for buffers in self._state_lists],
                self._steps[active],
                **self._hyper,
            )
        finally:
            self._busy = False

    def _concurrent(self, call: str) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__}.{call}: this optimizer is busy in another thread (a step, "
            "load_state_dict or state_dict is running); an optimizer serves one thread at a "
            "time: use one optimizer per thread, or a lock around its calls"
        )

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
        preset = cls.conventions.get("paper", {})
        return {
            name: preset[name] if parameter.default is None else parameter.default
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "convention"
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
            return {
                "rule": self.rule,
                "hyperparameters": dict(self._hyper),
                "steps": self._steps.tolist(),
                "state": {
                    name: [buffer.copy() for buffer in buffers]
                    for name, buffers in self.state.items()
                },
            }
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

    def _check_loaded_state(self, state: Any) -> dict[str, list[np.ndarray]]:
        """The state buffers, each a private copy checked against its parameter."""
        state = dict(state) if isinstance(state, dict) else state
        if not isinstance(state, dict) or set(state) != set(self.state_names):
            got = sorted(map(str, state)) if isinstance(state, dict) else _short(state)
            raise ValueError(
                f"state_dict['state']: expected the entries {list(self.state_names)}, got {got}"
            )
        copies: dict[str, list[np.ndarray]] = {}
        for name in self.state_names:
            arrays = state[name]
            where = f"state_dict['state'][{name!r}]"
            if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self.params):
                raise ValueError(f"{where}: expected a list of {len(self.params)} arrays")
            arrays = list(arrays)
            for index, array in enumerate(arrays):
                check.float_array(f"{where}[{index}]", array)
                arrays[index] = np.array(array, copy=True)  # copy first, check the copy
            copies[name] = arrays
            for index, (array, param) in enumerate(zip(arrays, self.params)):
                shape, dtype = self._state_spec(name, param)
                if array.shape != shape or array.dtype != dtype:
                    whose = " (those of the parameter)" if shape == param.shape else ""
                    raise ValueError(
                        f"{where}[{index}]: expected shape {shape} and dtype "
                        f"{dtype}{whose}, got shape "
                        f"{array.shape} and dtype {array.dtype}"
                    )
        return copies


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
) -> OptimizerType:
    """The class `rule_class` running on the functional core `core` (and, for the rules
    of ROW_SPARSE_RULES, on `row_core` for RowGrad entries)."""
    if (row_core is not None) != (rule_class.__name__ in ROW_SPARSE_RULES):
        raise ValueError(
            f"row_core: expected one exactly for the rules "
            f"{', '.join(ROW_SPARSE_RULES)}, not for {rule_class.__name__}"
        )
    return type(
        rule_class.__name__,
        (rule_class,),
        {
            "_core": staticmethod(core),
            "_row_core": None if row_core is None else staticmethod(row_core),
            "__module__": module,
            "__qualname__": rule_class.__name__,
            "__doc__": rule_class.__doc__,
        },
    )


# ---------------------------------------------------------------------------
# The ten rules (and AdamW): equations, hyper-parameters, defaults (the one place they
# live), named options with their conventions, state entries.  Symbols are those of
# SPEC.md section 1; t counts from 1 per parameter and all operations are element-wise.
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

_PARAMS_DOC = """params : ndarray or list of ndarray
        float32 or float64, C-contiguous, writeable, any shape (size 0 allowed);
        updated in place by `step`."""

_TRANSFORM_DOC = """weight_decay : float, default 0.0
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

_TRANSFORM_PRESET = {
    "paper": {"decoupled_weight_decay": False},
    "torch": {"decoupled_weight_decay": False},
    "keras": {"decoupled_weight_decay": True},
}


def _presets(**per_convention: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A rule's presets: the shared transform options plus its own."""
    return {
        name: {**_TRANSFORM_PRESET[name], **per_convention.get(name, {})}
        for name in check.CONVENTIONS
    }


class _Transformed(Optimizer):
    """The gradient transform's hyper-parameters, shared by every rule."""

    weight_decay = Hyperparameter(check.nonnegative)
    decoupled_weight_decay = Hyperparameter(check.flag)
    maximize = Hyperparameter(check.flag)

    # The rules whose step size η / (1 − β1^t) the kernels compute as one scalar.
    _bias_corrected = False

    def _largest_scalars(self, hyper: dict[str, Any]) -> dict[str, tuple[str, float]]:
        scalars = {}
        if hyper.get("decoupled_weight_decay", self.rule == "AdamW"):  # θ ← θ (1 − η λ)
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


def _names(*own: str) -> tuple[str, ...]:
    return own + ("weight_decay", "decoupled_weight_decay", "maximize")


class SGD(_Transformed):
    __doc__ = f"""Stochastic gradient descent.

    θ ← θ − η g

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    {_TRANSFORM_DOC}

    (torch.optim.SGD with momentum = 0 is this rule; with momentum see Momentum and
    Nesterov.)
    """
    rule = "SGD"
    lr = Hyperparameter(check.learning_rate)
    conventions = _presets()

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.01,
        *,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )


SGD.hyperparameter_names = _names("lr")

_MOMENTUM_OPTIONS_DOC = """dampening : float, default 0.0
        d in [0, 1]: the gradient enters the buffer scaled by 1 − d, except at a
        parameter's first step, where it enters whole (torch's rule; its buffer starts as
        the gradient).
    lr_in_buffer : bool, optional
        True: the buffer holds steps, v ← γ v + (1 − d) η g, θ ← θ − v (SPEC.md, Keras).
        False: it holds gradients, v ← γ v + (1 − d) g, θ ← θ − η v (torch).  Equal at
        a constant η; they differ when η changes during training (a schedule).  Preset:
        paper True, torch False, keras True."""

_MOMENTUM_PRESETS = _presets(
    paper={"lr_in_buffer": True}, torch={"lr_in_buffer": False}, keras={"lr_in_buffer": True}
)


class _MomentumRule(_Transformed):
    """Momentum and Nesterov: the same hyper-parameters, options and state."""

    state_names = ("velocity",)
    lr = Hyperparameter(check.learning_rate)
    momentum = Hyperparameter(check.nonnegative)
    dampening = Hyperparameter(check.decay_rate)
    lr_in_buffer = Hyperparameter(check.flag)
    conventions = _MOMENTUM_PRESETS

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.01,
        momentum: float = 0.9,
        *,
        dampening: float = 0.0,
        lr_in_buffer: bool | None = None,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            lr_in_buffer=lr_in_buffer,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )


_MomentumRule.hyperparameter_names = _names("lr", "momentum", "dampening", "lr_in_buffer")


class Momentum(_MomentumRule):
    __doc__ = f"""Gradient descent with (heavy-ball) momentum.

    v ← γ v + η g
    θ ← θ − v

    With the options: v ← γ v + s g, θ ← θ − o v, where (s, o) = ((1 − d) η, 1) with
    lr_in_buffer (paper, Keras's SGD(momentum)) and (1 − d, η) without (torch.optim.SGD).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    momentum : float, default 0.9
        γ (>= 0).
    {_MOMENTUM_OPTIONS_DOC}
    {_TRANSFORM_DOC}

    State: velocity = v (torch's momentum_buffer).
    """
    rule = "Momentum"


class Nesterov(_MomentumRule):
    __doc__ = f"""Nesterov accelerated gradient, in the form of SPEC.md 1.1.

    The lookahead form v ← γ v + η ∇J(θ − γ v) ; θ ← θ − v needs the gradient
    at θ − γ v.  With φ = θ − γ v the same method needs only the gradient at
    the point held, g = ∇J(φ):

    v ← γ v + η g
    φ ← φ − (γ v + η g)        (v the new velocity)

    The parameters hold φ and `step` takes the gradient at φ, as everywhere
    else.  θ is recovered as φ + γ v.  With the options: v ← γ v + s g and
    φ ← φ − o (γ v + i g), where (s, o, i) = ((1 − d) η, 1, (1 − d) η) with lr_in_buffer
    (paper, Keras's SGD(nesterov=True)) and (1 − d, η, 1) without (torch.optim.SGD with
    nesterov=True, which requires d = 0).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    momentum : float, default 0.9
        γ (>= 0).
    {_MOMENTUM_OPTIONS_DOC}
    {_TRANSFORM_DOC}

    State: velocity = v (torch's momentum_buffer).
    """
    rule = "Nesterov"


_EPS_SQRT_DOC = """eps_inside_sqrt : bool, optional
        True: √(· + ε) (SPEC.md, Keras).  False: √(·) + ε (torch).  Preset: paper True,
        torch False, keras True."""


class Adagrad(_Transformed):
    __doc__ = f"""Adagrad (Duchi, Hazan & Singer, 2011).

    G ← G + g²
    θ ← θ − η_t g / √(G + ε)           η_t = η / (1 + (t − 1) lr_decay)

    eps_inside_sqrt=False (torch): θ ← θ − η_t g / (√G + ε).  G starts at
    initial_accumulator_value.  Library defaults: torch lr 0.01, eps 1e-10,
    initial_accumulator_value 0; Keras lr 0.001, epsilon 1e-7, initial_accumulator_value 0.1.

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    eps : float, default 1e-8
        ε (> 0).
    lr_decay : float, default 0.0
        Decay of η with t (>= 0; torch's lr_decay).
    initial_accumulator_value : float, default 0.0
        G before the first step (>= 0).
    {_EPS_SQRT_DOC}
    {_TRANSFORM_DOC}
        (Decoupled decay uses η_t.)

    State: sum_sq = G (torch's `sum`).
    """
    rule = "Adagrad"
    state_names = ("sum_sq",)
    lr = Hyperparameter(check.learning_rate)
    eps = Hyperparameter(check.positive)
    lr_decay = Hyperparameter(check.nonnegative)
    initial_accumulator_value = Hyperparameter(check.nonnegative)
    eps_inside_sqrt = Hyperparameter(check.flag)
    conventions = _presets(
        paper={"eps_inside_sqrt": True},
        torch={"eps_inside_sqrt": False},
        keras={"eps_inside_sqrt": True},
    )

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.01,
        eps: float = 1e-8,
        *,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps_inside_sqrt: bool | None = None,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            eps=eps,
            lr_decay=lr_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps_inside_sqrt=eps_inside_sqrt,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        return np.full_like(param, self._hyper["initial_accumulator_value"])


Adagrad.hyperparameter_names = _names(
    "lr", "eps", "lr_decay", "initial_accumulator_value", "eps_inside_sqrt"
)


class Adadelta(_Transformed):
    __doc__ = f"""Adadelta (Zeiler, 2012).

    E_g ← ρ E_g + (1 − ρ) g²
    Δ   ← −(√(E_d + ε) / √(E_g + ε)) g
    E_d ← ρ E_d + (1 − ρ) Δ²
    θ   ← θ + η Δ

    The pure method has no learning rate; `lr` is PyTorch's multiplier
    (default 1.0), which scales the step but not the Δ kept in E_d.  torch and Keras
    use these formulas (Keras's defaults: lr 0.001, rho 0.95, epsilon 1e-7).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 1.0
        η, the multiplier (>= 0).
    rho : float, default 0.9
        ρ, in [0, 1].
    eps : float, default 1e-6
        ε (> 0).
    {_TRANSFORM_DOC}

    State: square_avg = E_g, acc_delta = E_d.
    """
    rule = "Adadelta"
    state_names = ("square_avg", "acc_delta")
    lr = Hyperparameter(check.learning_rate)
    rho = Hyperparameter(check.decay_rate)
    eps = Hyperparameter(check.positive)
    conventions = _presets()

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        *,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )


Adadelta.hyperparameter_names = _names("lr", "rho", "eps")


class RMSprop(_Transformed):
    __doc__ = f"""RMSprop (Hinton, 2012).

    E_g ← ρ E_g + (1 − ρ) g²
    θ   ← θ − η g / √(E_g + ε)

    With the options (D the denominator):
      centered:   ḡ ← ρ ḡ + (1 − ρ) g,  D = √(E_g − ḡ² + ε)   (else D = √(E_g + ε))
      eps_inside_sqrt=False (torch): D = √(E_g − ḡ²) + ε, resp. √E_g + ε
      momentum γ > 0:  b ← γ b + η g / D, θ ← θ − b with lr_in_buffer (Keras);
                       b ← γ b + g / D,  θ ← θ − η b without (torch)
    torch calls ρ `alpha` (default 0.99, lr 0.01); Keras's defaults are lr 0.001,
    rho 0.9, epsilon 1e-7.

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    rho : float, default 0.9
        ρ, in [0, 1].
    eps : float, default 1e-8
        ε (> 0).
    centered : bool, default False
        Divide by an estimate of the variance rather than of the second moment.
        Fixed at construction (it decides the state entries).
    momentum : float, default 0.0
        γ (>= 0).  Zero and non-zero are fixed at construction.
    {_EPS_SQRT_DOC}
    lr_in_buffer : bool, optional
        Where η goes with momentum (above).  Preset: paper True, torch False, keras True.
    {_TRANSFORM_DOC}

    State: square_avg = E_g; grad_avg = ḡ when centered; momentum_buffer = b when γ > 0.
    """
    rule = "RMSprop"
    state_names = ("square_avg",)
    lr = Hyperparameter(check.learning_rate)
    rho = Hyperparameter(check.decay_rate)
    eps = Hyperparameter(check.positive)
    centered = Hyperparameter(check.flag)
    momentum = Hyperparameter(check.nonnegative)
    eps_inside_sqrt = Hyperparameter(check.flag)
    lr_in_buffer = Hyperparameter(check.flag)
    conventions = _presets(
        paper={"eps_inside_sqrt": True, "lr_in_buffer": True},
        torch={"eps_inside_sqrt": False, "lr_in_buffer": False},
        keras={"eps_inside_sqrt": True, "lr_in_buffer": True},
    )

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-8,
        *,
        centered: bool = False,
        momentum: float = 0.0,
        eps_inside_sqrt: bool | None = None,
        lr_in_buffer: bool | None = None,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            rho=rho,
            eps=eps,
            centered=centered,
            momentum=momentum,
            eps_inside_sqrt=eps_inside_sqrt,
            lr_in_buffer=lr_in_buffer,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    @classmethod
    def state_layout(cls, hyper: dict[str, Any]) -> tuple[str, ...]:
        return (
            ("square_avg",)
            + (("grad_avg",) if hyper["centered"] else ())
            + (("momentum_buffer",) if hyper["momentum"] > 0 else ())
        )


RMSprop.hyperparameter_names = _names(
    "lr", "rho", "eps", "centered", "momentum", "eps_inside_sqrt", "lr_in_buffer"
)

_EPS_HAT_DOC = """eps_hat : bool, optional
        True: Kingma & Ba's ε̂ form (section 2 of the paper; Keras/TensorFlow):
        θ ← θ − η (√(1 − β2^t)/(1 − β1^t)) m / (√v + ε), i.e. ε is not scaled by the
        bias correction.  Preset: paper False, torch False, keras True."""


class Adam(_Transformed):
    __doc__ = f"""Adam (Kingma & Ba, 2015).

    m ← β1 m + (1 − β1) g
    v ← β2 v + (1 − β2) g²
    m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
    θ ← θ − η m̂ / (√v̂ + ε)

    torch.optim.Adam uses these formulas; Keras the ε̂ form (eps_hat, epsilon 1e-7).
    With decoupled_weight_decay this is AdamW (see AdamW).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    {_EPS_HAT_DOC}
    {_TRANSFORM_DOC}

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "Adam"
    _bias_corrected = True
    state_names = ("exp_avg", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)
    eps = Hyperparameter(check.positive)
    eps_hat = Hyperparameter(check.flag)
    conventions = _presets(
        paper={"eps_hat": False}, torch={"eps_hat": False}, keras={"eps_hat": True}
    )

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        eps_hat: bool | None = None,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_hat=eps_hat,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )


Adam.hyperparameter_names = _names("lr", "betas", "eps", "eps_hat")


class AdamW(Adam):
    __doc__ = f"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    θ ← θ (1 − η λ)
    then the Adam update of θ with the undecayed gradient g (see Adam).

    torch.optim.AdamW's defaults (λ = 0.01).  Keras's AdamW is this rule with eps_hat
    (weight_decay 0.004, epsilon 1e-7).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    weight_decay : float, default 0.01
        λ (>= 0).
    {_EPS_HAT_DOC}
    maximize : bool, default False
        Ascend: g ← −g.
    convention : {{"paper", "torch", "keras"}}, default "paper"
        The value of eps_hat when left as None.

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "AdamW"

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        eps_hat: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        Optimizer.__init__(
            self,
            params,
            convention,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_hat=eps_hat,
            weight_decay=weight_decay,
            maximize=maximize,
        )


AdamW.hyperparameter_names = ("lr", "betas", "eps", "eps_hat", "weight_decay", "maximize")


class AdaMax(_Transformed):
    __doc__ = f"""AdaMax, Adam with the infinity norm (Kingma & Ba, 2015, section 7).

    m ← β1 m + (1 − β1) g
    u ← max(β2 u, |g|)
    θ ← θ − (η / (1 − β1^t)) m / u

    Where u = 0 (every gradient so far was 0) the step is 0, never NaN.  With ε > 0:
      eps_inside_max (torch):  u ← max(β2 u, |g| + ε),  θ ← θ − (η/(1 − β1^t)) m / u
      else (Keras):            u as above,             θ ← θ − (η/(1 − β1^t)) m / (u + ε)
    Library defaults: torch eps 1e-8, Keras epsilon 1e-7.

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.002
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 0.0
        ε (>= 0); 0 is the paper's rule.
    eps_inside_max : bool, optional
        Where ε goes (above).  Preset: paper False (irrelevant at ε = 0), torch True,
        keras False.
    {_TRANSFORM_DOC}

    State: exp_avg = m, exp_inf = u; t is `steps`, counted per parameter.
    """
    rule = "AdaMax"
    _bias_corrected = True
    state_names = ("exp_avg", "exp_inf")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)
    eps = Hyperparameter(check.nonnegative)
    eps_inside_max = Hyperparameter(check.flag)
    conventions = _presets(
        paper={"eps_inside_max": False},
        torch={"eps_inside_max": True},
        keras={"eps_inside_max": False},
    )

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.002,
        betas: tuple[float, float] = (0.9, 0.999),
        *,
        eps: float = 0.0,
        eps_inside_max: bool | None = None,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_inside_max=eps_inside_max,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )


AdaMax.hyperparameter_names = _names("lr", "betas", "eps", "eps_inside_max")


class Nadam(_Transformed):
    __doc__ = f"""Nadam, Adam with Nesterov momentum (Dozat, 2016), constant β1.

    m, v, m̂, v̂ as Adam
    θ ← θ − η / (√v̂ + ε) · (β1 m̂ + (1 − β1) g / (1 − β1^t))

    momentum_schedule (torch.optim.NAdam with ψ = momentum_decay = 0.004; Keras 3's Nadam
    with 0.96^t, i.e. ψ = 1): μ_t = β1 (1 − ½ · 0.96^(t ψ)), P_t = μ_1 ⋯ μ_t,
    θ ← θ − η / (√v̂ + ε) · (μ_(t+1) m / (1 − P_t μ_(t+1)) + (1 − μ_t) g / (1 − P_t)).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.002
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    momentum_schedule : bool, optional
        Dozat's μ_t schedule instead of the constant β1.  Fixed at construction (it
        decides the state entries).  Preset: paper False, torch True, keras True.
    momentum_decay : float, optional
        ψ (>= 0), used by the schedule.  Preset: paper 0.004 (unused), torch 0.004,
        keras 1.0.
    {_TRANSFORM_DOC}

    State: exp_avg = m, exp_avg_sq = v; with the schedule also mu_product = P_t (a 0-d
    float64 array per parameter, starting at 1); t is `steps`, counted per parameter.
    """
    rule = "Nadam"
    state_names = ("exp_avg", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)
    eps = Hyperparameter(check.positive)
    momentum_schedule = Hyperparameter(check.flag)
    momentum_decay = Hyperparameter(check.nonnegative)
    conventions = _presets(
        paper={"momentum_schedule": False, "momentum_decay": 0.004},
        torch={"momentum_schedule": True, "momentum_decay": 0.004},
        keras={"momentum_schedule": True, "momentum_decay": 1.0},
    )

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.002,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        momentum_schedule: bool | None = None,
        momentum_decay: float | None = None,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            betas=betas,
            eps=eps,
            momentum_schedule=momentum_schedule,
            momentum_decay=momentum_decay,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    @classmethod
    def state_layout(cls, hyper: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("mu_product",) if hyper["momentum_schedule"] else ())

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        return np.ones((), dtype=np.float64) if name == "mu_product" else np.zeros_like(param)

    def _state_spec(self, name: str, param: np.ndarray) -> tuple[tuple[int, ...], np.dtype]:
        if name == "mu_product":
            return (), np.dtype(np.float64)
        return param.shape, param.dtype


Nadam.hyperparameter_names = _names("lr", "betas", "eps", "momentum_schedule", "momentum_decay")


class AMSGrad(_Transformed):
    __doc__ = f"""AMSGrad (Reddi, Kale & Kumar, 2018), without bias correction.

    m, v as Adam
    v_max ← max(v_max, v)
    θ ← θ − η m / (√v_max + ε)

    With the options:
      bias_correction (torch Adam(amsgrad=True), Keras):
          θ ← θ − η m̂ / (√(v_max / (1 − β2^t)) + ε),  m̂ = m / (1 − β1^t)
      ... and eps_hat (Keras): θ ← θ − η (√(1 − β2^t)/(1 − β1^t)) m / (√v_max + ε)
      ... and max_of_v_hat (optax): v_max ← max(v_max, v / (1 − β2^t)),
          θ ← θ − η m̂ / (√v_max + ε)

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).
    bias_correction : bool, optional
        Preset: paper False, torch True, keras True.
    max_of_v_hat : bool, default False
        Keep the maximum of v̂ rather than of v (needs bias_correction, excludes eps_hat).
    {_EPS_HAT_DOC}
    {_TRANSFORM_DOC}

    State: exp_avg = m, exp_avg_sq = v, max_exp_avg_sq = v_max.
    """
    rule = "AMSGrad"
    _bias_corrected = True
    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)
    eps = Hyperparameter(check.positive)
    bias_correction = Hyperparameter(check.flag)
    max_of_v_hat = Hyperparameter(check.flag)
    eps_hat = Hyperparameter(check.flag)
    conventions = _presets(
        paper={"bias_correction": False, "eps_hat": False},
        torch={"bias_correction": True, "eps_hat": False},
        keras={"bias_correction": True, "eps_hat": True},
    )

    def __init__(
        self,
        params: ArrayOrArrays,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        bias_correction: bool | None = None,
        max_of_v_hat: bool = False,
        eps_hat: bool | None = None,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | None = None,
        maximize: bool = False,
        convention: str = "paper",
    ):
        super().__init__(
            params,
            convention,
            lr=lr,
            betas=betas,
            eps=eps,
            bias_correction=bias_correction,
            max_of_v_hat=max_of_v_hat,
            eps_hat=eps_hat,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    def _check_together(self, hyper: dict[str, Any]) -> None:
        if hyper["max_of_v_hat"] and not hyper["bias_correction"]:
            raise ValueError("max_of_v_hat: needs bias_correction=True (v̂ is the bias-corrected v)")
        if hyper["max_of_v_hat"] and hyper["eps_hat"] and hyper["bias_correction"]:
            raise ValueError("eps_hat: not defined together with max_of_v_hat")


AMSGrad.hyperparameter_names = _names(
    "lr", "betas", "eps", "bias_correction", "max_of_v_hat", "eps_hat"
)


_ROWS_DOC = """
    Row-sparse steps: for a 2-D parameter (n_rows, dim), `step` also takes
    gdfast.RowGrad(indices, values): duplicate indices are summed, then only the rows
    named are updated with the equations above (the same element arithmetic as a dense
    step); other rows and their state are left as they are (lazy: their state does not
    decay), and t is the parameter's step count, as in torch.optim.SparseAdam.  Needs
    weight_decay = 0.  See gdfast.rows.
    """

for _rule_class in (SGD, Momentum, Adagrad, RMSprop, Adam):
    _rule_class.__doc__ = _rule_class.__doc__.rstrip() + "\n" + _ROWS_DOC

RULES: tuple[type[Optimizer], ...] = (
    SGD,
    Momentum,
    Nesterov,
    Adagrad,
    Adadelta,
    RMSprop,
    Adam,
    AdaMax,
    Nadam,
    AMSGrad,
)
