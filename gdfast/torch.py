"""torch.optim optimizers that run on gdfast's kernels: drop-in, same results.

    import gdfast.torch
    opt = gdfast.torch.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss.backward(); opt.step(); opt.zero_grad()

Each class subclasses torch.optim's class of the same name (SGD, Adam, AdamW, Adagrad,
Adadelta, RMSprop, Adamax, NAdam) and keeps its constructor: the same arguments, defaults,
checks and error messages, the same param-group keys (torch's `foreach`, `fused`,
`capturable`, `differentiable` flags included), the same state (`step` a 0-d float
tensor, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `sum`, `square_avg`, `acc_delta`,
`grad_avg`, `momentum_buffer`, `exp_inf`, `mu_product`) created when torch creates it, and
torch's `__setstate__`, so checkpoints move both ways (older ones too) and
`isinstance(opt, torch.optim.Adam)` holds.  Hyper-parameters are read from the groups at
every step: `torch.optim.lr_scheduler` works unchanged.  Only `step` is gdfast's.

How a step runs: the parameters, gradients and state tensors of a param group are handed
to one C call (one GIL release, one parallel region) that updates them in place through
their memory (numpy views: no copies).  The formulas are torch's, selected by gdfast's
torch convention (`<gdfast rule>.conventions["torch"]`, the one place it is written);
results agree with torch.optim's to rounding (tests: 1e-10 relative in float64, 1e-5 in
float32).  The views are cached per group and the cache is checked at every step against
`opt.state` (the dicts and the tensors in them, by identity), so every way of resetting
or replacing state (`opt.state.clear()`, `opt.state = defaultdict(dict)`,
`del opt.state[p]`, assigning an entry, `load_state_dict`) is seen as torch sees it.

Decisions (docs/torch.md has the full table):
- `foreach` and `fused` (any value torch accepts) change nothing: gdfast's step is always
  its own fused multi-tensor kernel.  `fused=True` does not make the optimizer take
  GradScaler's scale (torch's fused path does): GradScaler unscales the gradients itself.
- `capturable=True` (CUDA graph capture) and `differentiable=True` (autograd through the
  step) are refused with a ValueError: the C kernels run on CPU memory outside autograd.
- A Tensor `lr` or Tensor `betas`: the step is torch's own (torch rounds its step size in
  the tensor's dtype; this is the only way to give torch's numbers), on the same state.
- Hyper-parameters are checked at construction (torch's checks) and again by every step,
  before it writes anything, whenever a group's values changed (a scheduler, a user
  setting lr = -1 or NaN): a ValueError/TypeError naming the group and the key.
- load_state_dict refuses, before replacing anything, a state dict that cannot step here:
  a group lacking a hyper-parameter of this class (flags an older checkpoint lacks take the
  defaults, as torch's), a parameter's state missing an entry this class keeps or holding
  one it never makes (another optimizer's, e.g. Adam's into LAMB or SGD's into Muon), a
  meta tensor, or invalid values.  A dict of the same state (Adam's into RAdam) loads and
  steps as torch's does.
- Parameters or state tensors of one group that share memory are refused (the kernels
  step a group's tensors together; torch.optim would step them one after the other).
- Parameters: CPU, float32/float64, dense (strided) and non-overlapping in any dimension
  order (contiguous, channels_last, a transpose).  A gradient or loaded state tensor laid
  out differently from its parameter is copied into the parameter's layout.  Anything
  else (CUDA, sparse, complex, float16/bfloat16, a parameter with gaps or overlaps) raises
  TypeError/ValueError naming the parameter before anything is written.

gdfast's additions (keyword-only constructor arguments, attributes of the optimizer):
`max_grad_norm` clips the global 2-norm of all gradients, as
`torch.nn.utils.clip_grad_norm_(params, max_grad_norm)` followed by the step, without
writing the gradients (the scale goes into the kernel when the kernels take `grad_scale`);
the norm is one C reduction over all groups in a fixed order (docs/spec-reductions.md:
squares in float64, the same bits for any thread count).  `error_if_nonfinite` raises on a
non-finite norm (clip_grad_norm_'s test), `skip_if_nonfinite` skips the step (parameters,
state and counts untouched) when a gradient holds an inf or a NaN, as GradScaler does.
`grad_norm` is the last norm.
See `step_in_backward` for the step run inside backward.

Importing this module imports torch; `import gdfast` never does.
"""

from __future__ import annotations

import inspect
import math
import operator
from functools import partial
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch

from . import _validation as check
from . import optim as rules
from ._kernels import FAST_ALL, OwnedMemory, Staging, gradients_fast_ok, sum_of_squares
from .catalogue import Rule
from .catalogue._policy import DEFAULTS as POLICY_DEFAULTS
from .catalogue._policy import NATIVE, Q8_SIGNED, Q8_UNSIGNED, Policy, bfloat16_dtype
from .catalogue.rules.schedule_free import to_eval, to_train

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Adamax",
    "NAdam",
    "step_in_backward",
    "StepInBackward",
    "convert_state_dict",
]

# The arithmetic dtypes (and the only ones of torch.optim's Tensor-lr step and of the norm's
# C reduction); 16-bit parameters and gradients compute in float32 (SPEC L.5).
_DTYPES = (torch.float32, torch.float64)
_SIXTEEN_BIT = (torch.bfloat16, torch.float16)
_PARAM_DTYPES = _DTYPES + _SIXTEEN_BIT
# A state entry's storage (gdfast.catalogue._policy's formats) as a torch dtype: bfloat16 state
# is a torch.bfloat16 tensor (the NumPy classes keep its uint16 bit patterns), 8-bit state
# its uint8 codes plus `<name>_absmax`, the float32 scales.
_STORAGE = {"bfloat16": torch.bfloat16, Q8_SIGNED: torch.uint8, Q8_UNSIGNED: torch.uint8}
_STATE_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16"}
_data_ptr = torch.Tensor.data_ptr


def _step_dtype(group: dict[str, Any]) -> torch.dtype:
    """torch's dtype for state["step"] (torch.optim.optimizer._get_scalar_dtype, a private
    function, written here from its documented behaviour): float32 for fused, else float64
    under a float64 default dtype and float32 otherwise."""
    if group.get("fused"):
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _real(name: str, value: Any) -> float:
    """A Python number or a one-element tensor (torch allows a tensor lr) as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name}: a Tensor {name} must have one element, got shape {tuple(value.shape)}"
            )
        value = value.item()
    return check.real_number(name, value)


def _count(name: str, value: Any) -> int:
    """A step count (or a number of steps): an int in [0, 2**62) (the kernels' int64
    counts, with room to count on)."""
    count = check.integer(name, value, 0)
    if count >= 2**62:
        raise ValueError(f"{name}: expected an int below 2**62, got {count}")
    return count


def _at_least(name: str, value: Any) -> float:
    """A finite number >= 0 (a one-element tensor allowed)."""
    return check.nonnegative(name, _real(name, value))


def _unit(name: str, value: Any, closed: bool = True) -> float:
    """A number in [0, 1] or [0, 1) (a one-element tensor allowed)."""
    return check.unit_interval(name, _real(name, value), closed=closed)


def _betas(value: Any) -> tuple:
    """Check a (beta1, beta2) pair; keep torch's values (floats, or 1-element tensors)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"betas: expected a pair (beta1, beta2), got {value!r}")
    numbers = (_unit("betas[0]", value[0], closed=False), _unit("betas[1]", value[1], closed=False))
    # (a Tensor beta is kept: its step is torch's; torch's Adam refuses a float/Tensor mix,
    # its Adamax and NAdam accept one, and so does gdfast, each as torch)
    return tuple(value) if any(isinstance(beta, torch.Tensor) for beta in value) else numbers


def _uses_tensor_hyperparameters(group: dict[str, Any]) -> bool:
    return isinstance(group["lr"], torch.Tensor) or any(
        isinstance(beta, torch.Tensor) for beta in group.get("betas", ())
    )


def _snapshot(group: dict[str, Any]) -> Optional[tuple[dict[str, Any], list[type]]]:
    """A param group's entries and their types, to tell whether they changed since they
    were checked (`_unchanged`); None when a value is a tensor (it may change in place
    unseen: checked every time).  The checked values are immutable (numbers, tuples, str)
    but for `params`, which is not checked."""
    if any(isinstance(value, torch.Tensor) for value in group.values()):
        return None
    return dict(group), list(map(type, group.values()))


def _unchanged(snapshot: Optional[tuple[dict[str, Any], list[type]]], group: dict) -> bool:
    """The group holds the values of `snapshot`: the same types (so no tensor, whose ==
    is not a bool), then equal entries (one C comparison; the same objects compare equal
    by identity)."""
    return (
        snapshot is not None
        and list(map(type, group.values())) == snapshot[1]
        and group == snapshot[0]
    )


def _in_group(where: str, check_values: Callable[[], Any]) -> Any:
    """`check_values()`, its TypeError/ValueError prefixed with `where` (the group)."""
    try:
        return check_values()
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from None


def _is_flag(default: Any) -> bool:
    """A param-group key whose default is True, False or None: a flag, which torch adds
    over versions (foreach, maximize, capturable, ...) and fills in for a checkpoint that
    lacks it (`__setstate__`); every other key is a hyper-parameter a checkpoint must hold."""
    return default is None or isinstance(default, bool)


def _saved_groups(optimizer: torch.optim.Optimizer, state_dict: Any) -> list[dict[str, Any]]:
    """The param groups of a state dict that torch's load_state_dict would take, paired
    with the optimizer's; [] when torch's own checks will refuse it (not a dict, other
    numbers of groups or parameters): its errors then come as torch raises them."""
    groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        return []
    for saved, group in zip(groups, optimizer.param_groups):
        if not (
            isinstance(saved, dict)
            and isinstance(saved.get("params"), list)
            and len(saved["params"]) == len(group["params"])
        ):
            return []
    return groups


def _check_foreign_groups(optimizer: torch.optim.Optimizer, state_dict: Any) -> None:
    """A state dict of another optimizer refused by its param groups before anything is
    replaced: each must hold every hyper-parameter of this optimizer's defaults but the
    flags (`_is_flag`).  torch.optim takes such a dict and fails at the next step (a
    KeyError), or steps with another optimizer's values."""
    name = type(optimizer).__name__
    for index, saved in enumerate(_saved_groups(optimizer, state_dict)):
        missing = [k for k, v in optimizer.defaults.items() if k not in saved and not _is_flag(v)]
        if missing:
            raise ValueError(
                f"state_dict: param_groups[{index}] lacks {', '.join(map(repr, missing))}, "
                f"hyper-parameters of {name}: the state dict of another optimizer? "
                "(nothing was loaded)"
            )


def _check_foreign_state(
    optimizer: torch.optim.Optimizer,
    state_dict: Any,
    state_keys: Callable[[dict[str, Any], torch.Tensor], frozenset],
) -> None:
    """Each parameter's saved state (when not empty) must hold exactly the entries the
    optimizer keeps for that parameter under the saved group's options, `state_keys(group,
    param)`: a missing one would fail the step, an unexpected one is another optimizer's
    (or another configuration's) state.  Checked before anything is replaced."""
    states = state_dict.get("state") if isinstance(state_dict, dict) else None
    if not isinstance(states, dict):
        return
    name = type(optimizer).__name__
    pairs = zip(_saved_groups(optimizer, state_dict), optimizer.param_groups)
    for index, (saved, group) in enumerate(pairs):
        options = {**optimizer.defaults, **saved}
        for position, (saved_id, param) in enumerate(zip(saved["params"], group["params"])):
            entry = states.get(saved_id)
            if not isinstance(entry, dict) or not entry:
                continue
            for key, value in entry.items():
                if isinstance(value, torch.Tensor) and value.is_meta:
                    raise ValueError(
                        f"state_dict: state[{key!r}] of param_groups[{index}]['params']"
                        f"[{position}]: a tensor on the meta device holds no values "
                        "(nothing was loaded)"
                    )
            expected = state_keys(options, param)
            missing = [k for k in expected if k not in entry]
            unexpected = [k for k in entry if k not in expected]
            if missing or unexpected:
                found = ", ".join(
                    [f"missing {k!r}" for k in sorted(missing)]
                    + [f"unexpected {k!r}" for k in unexpected]
                )
                raise ValueError(
                    f"state_dict: state of param_groups[{index}]['params'][{position}] "
                    f"(id {saved_id!r}): {found}; {name} keeps {sorted(expected)} there: the "
                    "state dict of another optimizer or configuration? (nothing was loaded)"
                )


def _state_template(param: torch.Tensor) -> torch.Tensor:
    """An empty float tensor with the parameter's number of dimensions: `_new_state` of it
    names the state entries the parameter gets, allocating nothing."""
    return torch.empty((0,) * param.dim(), dtype=torch.float32)


def _dense(tensor: torch.Tensor) -> bool:
    """Every element at its own address, no gaps: the memory is one block of numel
    elements in some order of the dimensions (contiguous, channels_last, a transpose)."""
    if tensor.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(tensor.stride(), tensor.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Element i of a and of b at the same offset in their memory blocks."""
    return (a.is_contiguous() and b.is_contiguous()) or a.stride() == b.stride()


def _numpy_bfloat16() -> np.dtype:
    dtype = bfloat16_dtype()
    if dtype is None:
        raise TypeError(
            "torch.bfloat16 tensors: gdfast hands them to its kernels as ml_dtypes.bfloat16 "
            "arrays; install ml_dtypes (the gdfast[bfloat16] extra)"
        )
    return dtype


def _array(tensor: torch.Tensor) -> np.ndarray:
    """tensor.numpy(), a bfloat16 tensor's as an ml_dtypes.bfloat16 array (its bits, no
    copy: numpy has no bfloat16 of its own)."""
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(_numpy_bfloat16())
    return tensor.numpy()


def _memory(tensor: torch.Tensor) -> np.ndarray:
    """A numpy view of a dense tensor's memory: its own shape when contiguous (the step's
    fast path compares shapes), else its elements flat in memory order."""
    tensor = tensor.detach()
    if tensor.is_contiguous():
        return _array(tensor)
    return _array(tensor.as_strided((tensor.numel(),), (1,)))


def _filled(like: torch.Tensor, dtype: torch.dtype, values: np.ndarray) -> torch.Tensor:
    """A new tensor of `like`'s shape and layout holding `values` (its memory, in memory
    order, as the unsigned integers of `dtype`'s width: bit patterns or 8-bit codes)."""
    tensor = torch.empty_like(like, dtype=dtype, memory_format=torch.preserve_format)
    bits = np.dtype(f"u{tensor.element_size()}")
    _memory(tensor).view(bits).reshape(-1)[...] = values.view(bits).reshape(-1)
    return tensor


def _state_dtype(value: Any) -> Any:
    """state_dtype's torch spellings (torch.float32, torch.bfloat16) as the policy's strings."""
    if isinstance(value, torch.dtype):
        if value not in _STATE_DTYPE_NAMES:
            raise ValueError(
                "state_dtype: expected 'float32', 'bfloat16', 'int8', torch.float32 or "
                f"torch.bfloat16, got {value}"
            )
        return _STATE_DTYPE_NAMES[value]
    return value


def _sums_of_squares(grads: list[torch.Tensor]) -> tuple[float, np.ndarray, np.ndarray]:
    """(Σ g² of all, Σ g² of each, whether each holds an inf or a NaN) of float32/float64
    CPU gradients: the C reduction of src_c/reduce.c (each gradient read once, in memory
    order, squares in float64, the fixed order of docs/spec-reductions.md: the same bits
    for any thread count).  A gradient with gaps or a lazy negation is copied first."""
    return sum_of_squares(_gradient_memory(grads)[0])


def _gradient_memory(grads: list[torch.Tensor]) -> tuple[list[np.ndarray], bool]:
    """numpy views of the gradients' memory (copies of those with gaps or a lazy
    negation), and whether all of them are views (no copy)."""
    arrays, views = [], True
    for grad in grads:
        grad = grad.detach()
        if grad.dtype in _SIXTEEN_BIT:  # the reduction reads float32 (widening is exact)
            grad = grad.float()
            views = False
        if grad.is_neg() or not _dense(grad):
            grad = grad.resolve_neg().contiguous()
            views = False
        arrays.append(_memory(grad))
    return arrays, views


class _Plan:
    """A param group described to the kernels: numpy views of every parameter and state
    buffer (None where a parameter has no state yet), the group's step counters, the
    memory the step writes, and the state objects they came from (`fits` compares them
    with opt.state at every step, so that no view outlives what it was taken from).

    Under a dtype policy also: `extra[name]`, views of the entries the policy adds
    (`master`, `<name>_absmax`), `first`, the optimizer-wide index of the group's first
    parameter (the stochastic rounding's tensor number, SPEC L.2), and `staging`, the
    Staging of a step of the whole group with gradients of the parameters' dtypes."""

    def __init__(
        self,
        params: list[torch.Tensor],
        names: tuple[str, ...],
        states: list[Optional[dict]],
        structure: tuple,
        keeps_step: bool,
        step_dtype: torch.dtype,
        extra_names: tuple[str, ...] = (),
        first: int = 0,
        copies: tuple[np.ndarray, ...] = (),
        where: str = "param group",
    ):
        self.structure = structure
        self.pointers = [p.data_ptr() for p in params]
        self.param_np = tuple(_memory(p) for p in params)
        self.buffers = [[None if s is None else _memory(s[name]) for s in states] for name in names]
        self.extra = {
            name: [None if s is None else _memory(s[name]) for s in states] for name in extra_names
        }
        self.first = first
        self.staging: Optional[Staging] = None
        # the gradients last seen and their numpy views: when a step gets the same tensor
        # objects at the same addresses (zero_grad(set_to_none=False) keeps them), the
        # checked views are reused and only the addresses are compared
        self.grad_objects: list = []
        self.grad_pointers: list[int] = []
        self.grad_arrays: list[np.ndarray] = []
        self.has_state = [s is not None for s in states]
        self.complete = all(self.has_state)
        if keeps_step:
            steps = [0.0 if s is None else float(s["step"]) for s in states]
            known = [s["step"].dtype for s in states if s is not None]
            step_dtype = known[0] if known else step_dtype
        else:  # SGD: torch keeps no count; only "first step or not" matters
            steps = [0.0 if s is None else 1.0 for s in states]
        self.step_tensor = torch.tensor(steps, dtype=step_dtype)
        self.step_np = self.step_tensor.numpy()
        for index, s in enumerate(states):
            if keeps_step and s is not None:
                s["step"] = self.step_tensor[index]
        spans = [(check.byte_span(a), "param") for a in self.param_np]
        spans += [
            (check.byte_span(b), "state")
            for buffers in [*self.buffers, *self.extra.values()]
            for b in buffers
            if b is not None
        ]
        spans += [(check.byte_span(c), "param_copy") for c in copies]
        check.disjoint(
            where,
            [(check.byte_span(a), f"params[{i}]") for i, a in enumerate(self.param_np)]
            + [
                (check.byte_span(b), f"state[{name!r}] of params[{i}]")
                for name, buffers in zip(
                    [*names, *extra_names], [*self.buffers, *self.extra.values()]
                )
                for i, b in enumerate(buffers)
                if b is not None
            ]
            + [(check.byte_span(c), f"param_copy {i}") for i, c in enumerate(copies)],
        )
        self.owned = OwnedMemory(spans)
        self.dicts = [s if s else None for s in states]
        self.entries = self._entries(self.dicts)

    @staticmethod
    def _entries(dicts: list[Optional[dict]]) -> list:
        return [value for d in dicts if d for value in d.values()]

    def fits(self, params: list[torch.Tensor], structure: tuple, state: dict) -> bool:
        """Still valid: the same parameters at the same addresses, the same options, and
        opt.state holding the same dicts with the same tensors in them."""
        if structure != self.structure or list(map(_data_ptr, params)) != self.pointers:
            return False
        dicts = [state.get(p) or None for p in params]
        if not all(map(operator.is_, dicts, self.dicts)):
            return False
        entries = self._entries(dicts)
        return len(entries) == len(self.entries) and all(map(operator.is_, entries, self.entries))


class _KernelOptimizer(torch.optim.Optimizer):
    """Base class: torch's constructor and state format, gdfast's checks and step."""

    #: the torch.optim class this one replaces (set by each subclass)
    torch_class: ClassVar[type] = torch.optim.Optimizer
    #: the gdfast rule whose `conventions["torch"]` preset selects torch's formulas
    rule: ClassVar[Any] = None
    #: whether torch keeps state["step"] for this rule (all but SGD)
    _keeps_step: ClassVar[bool] = True
    #: whether `_run` needs the state dicts themselves (NAdam's mu_product)
    _needs_states: ClassVar[bool] = False
    #: whether torch_class has a step of its own (a Tensor lr or betas runs it)
    _has_torch_step: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # the constructor's signature: torch's, then gdfast's keyword-only additions
        theirs = inspect.signature(cls.torch_class)
        ours = [
            p
            for p in inspect.signature(_KernelOptimizer.__init__).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        cls.__signature__ = theirs.replace(parameters=list(theirs.parameters.values()) + ours)

    def __init__(
        self,
        *args: Any,
        max_grad_norm: Optional[float] = None,
        error_if_nonfinite: bool = False,
        skip_if_nonfinite: bool = False,
        state_dtype: Any = "float32",
        master_weights: bool = False,
        param_copy: Optional[list[Optional[torch.Tensor]]] = None,
        rounding: str = "nearest",
        seed: int = 0,
        block_size: int = 256,
        **kwargs: Any,
    ):
        """torch's constructor (arguments, defaults, checks), then gdfast's checks of every
        group; gdfast's own options are keyword-only (see the module docstring)."""
        self._plans: dict[int, _Plan] = {}
        self._checked_groups: dict[int, Any] = {}  # (`_snapshot`s)
        self._set_clipping(max_grad_norm, error_if_nonfinite, skip_if_nonfinite)
        self._policy_arguments: Optional[dict[str, Any]] = None  # (torch's constructor first)
        super().__init__(*args, **kwargs)
        if param_copy is not None and not isinstance(param_copy, (list, tuple)):
            param_copy = [param_copy]
        self._policy_arguments = {
            "state_dtype": _state_dtype(state_dtype),
            "master_weights": master_weights,
            "param_copy": None if param_copy is None else list(param_copy),
            "rounding": rounding,
            "seed": seed,
            "block_size": block_size,
        }
        self._set_policy()
        # state torch's constructor made (Adagrad's sum) stored as the policy says
        if self.policy.active:
            for group in self.param_groups:
                for param in group["params"]:
                    if self.state.get(param):
                        self.state[param] = self._create_state(group, param)
        # torch's fused=True asks GradScaler to hand over its scale; gdfast's step does not
        # take it, so GradScaler unscales the gradients itself (same results)
        self._step_supports_amp_scaling = False

    # ---------------------------------------------------------- dtype policy
    def _set_policy(self) -> None:
        """Check the dtype policy (SPEC L.5) against every parameter of every group:
        gdfast.catalogue's Policy.build on numpy views of the tensors (the refusals of L.5,
        naming the argument), after the checks only torch tensors need."""
        arguments = dict(self._policy_arguments or POLICY_DEFAULTS)
        params, names = [], []
        for index, group in enumerate(self.param_groups):
            for position, param in enumerate(group["params"]):
                params.append(param)
                names.append(self._where(index, position, param))
        copies = arguments["param_copy"]
        if copies is not None:
            if len(copies) > len(params):
                raise ValueError(
                    "param_copy: expected one bfloat16/float16 tensor (or None) per parameter, "
                    f"{len(params)} in all, got {len(copies)}"
                )
            # parameters added after the constructor (add_param_group) have no copy
            copies = list(copies) + [None] * (len(params) - len(copies))
            arguments["param_copy"] = [
                self._copy_memory(index, copy, param, len(params))
                for index, (copy, param) in enumerate(zip(copies, params))
            ]
        if arguments["state_dtype"] == "bfloat16" or any(p.dtype == torch.bfloat16 for p in params):
            _numpy_bfloat16()
        policy = Policy.build([_memory(p) for p in params], names, arguments)
        if policy.active:
            for group in self.param_groups:
                rule = self._rule(group)
                if not rule.elementwise:
                    raise ValueError(
                        "state_dtype, master_weights, param_copy, 16-bit parameters: "
                        f"{rule.rule} is not element-wise (its update reduces over a tensor); "
                        "it takes float32/float64 parameters and state only"
                    )
        self.policy = policy

    @staticmethod
    def _copy_memory(
        index: int, copy: Optional[torch.Tensor], param: torch.Tensor, count: int
    ) -> Optional[np.ndarray]:
        """A param_copy tensor's memory (None stays None), after the checks of a tensor;
        Policy.build checks the rest (dtype, shape, the parameter's dtype, aliasing)."""
        if copy is None:
            return None
        where = "param_copy" if count == 1 else f"param_copy[{index}]"
        if not isinstance(copy, torch.Tensor):
            raise TypeError(f"{where}: expected a torch.Tensor or None, got {type(copy).__name__}")
        if copy.device.type != "cpu" or copy.layout is not torch.strided:
            raise TypeError(
                f"{where}: expected a dense CPU tensor, got {copy.layout} on {copy.device}"
            )
        if copy.dtype not in _SIXTEEN_BIT:
            raise TypeError(
                f"{where}: dtype {copy.dtype} is not supported; expected torch.bfloat16 or "
                "torch.float16"
            )
        if copy.shape != param.shape:
            raise ValueError(
                f"{where}: shape {tuple(copy.shape)} does not match the parameter's shape "
                f"{tuple(param.shape)}"
            )
        if copy.requires_grad:
            raise ValueError(f"{where}: expected a tensor that does not require grad")
        if not (_dense(copy) and _same_layout(copy, param)):
            raise ValueError(
                f"{where}: expected a dense tensor laid out as its parameter (strides "
                f"{param.stride()}), got strides {copy.stride()}"
            )
        return _memory(copy)

    def _nonnegative(self, group: dict[str, Any]) -> frozenset[str]:
        """torch's names of the rule's non-negative state entries (8-bit: the unsigned map)."""
        rule = self._rule(group)
        torch_names = rule.torch_equivalent.state if rule.torch_equivalent is not None else {}
        return frozenset(torch_names.get(n, n) for n in rule.nonnegative_state)

    def _state_format(self, group: dict[str, Any], name: str) -> str:
        """The policy's storage of state entry `name` (torch's name) of `group`'s rule."""
        return self.policy.state_format(name, self._nonnegative(group))

    def _extra_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The state entries the policy adds: each 8-bit buffer's scales, the master."""
        scales = tuple(
            f"{name}_absmax"
            for name in self._state_names(group)
            if self._state_format(group, name) in (Q8_SIGNED, Q8_UNSIGNED)
        )
        return scales + (("master",) if self.policy.master_weights else ())

    def _storage(self, group: dict[str, Any], name: str, param: torch.Tensor) -> tuple:
        """(dtype, shape) of state entry `name` of `param`, buffers and policy entries."""
        if name == "master":
            return torch.float32, param.shape
        if name.endswith("_absmax") and name in self._extra_names(group):
            return torch.float32, torch.Size([-(-param.numel() // self.policy.block_size)])
        fmt = self._state_format(group, name)
        if fmt != NATIVE:
            return _STORAGE[fmt], param.shape
        return (param.dtype if param.dtype in _DTYPES else torch.float32), param.shape

    def _create_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        """A parameter's first state (torch's lazy state): the rule's initial values, in
        float32 for a 16-bit parameter, stored as the policy says (SPEC L.5: bfloat16
        rounded to nearest, 8-bit encoded with its scales), and the master weights (the
        parameter widened, exactly).  16-bit and 8-bit state is made in its storage piece by
        piece (Policy.fill): building costs the state's own bytes."""
        names = self._state_names(group)
        low = [
            name
            for name in names
            if self.policy.active and self._state_format(group, name) != NATIVE
        ]
        if low:
            # the rule's scalar entries (its buffers, empty here, are made below)
            state = self._new_state(group, torch.empty(0, dtype=torch.float32))
            for name in low:
                state.update(self._made(group, name, param))
        else:
            if param.dtype in _SIXTEEN_BIT:  # never written: no memory is touched
                template = torch.empty_like(
                    param, dtype=torch.float32, memory_format=torch.preserve_format
                )
            else:
                template = param.detach()
            state = self._new_state(group, template)
        if self.policy.master_weights:
            state["master"] = param.detach().to(torch.float32, memory_format=torch.preserve_format)
        return state

    def _made(self, group: dict[str, Any], name: str, param: torch.Tensor) -> dict[str, Any]:
        """State entry `name` of `param` (and its 8-bit scales) made in its 16-bit or 8-bit
        storage, laid out as the parameter, from the rule's initial values of each piece of
        the parameter's memory (a 16-bit parameter's: those of float32 zeros)."""
        fmt = self._state_format(group, name)
        tensor = torch.empty_like(param, dtype=_STORAGE[fmt], memory_format=torch.preserve_format)
        stored = _memory(tensor).view(np.dtype(f"u{tensor.element_size()}")).reshape(-1)
        entries = {name: tensor}
        scales = None
        if fmt in (Q8_SIGNED, Q8_UNSIGNED):
            scales = np.empty(-(-param.numel() // self.policy.block_size), np.float32)
            entries[f"{name}_absmax"] = torch.from_numpy(scales)
        wide = None if param.dtype in _SIXTEEN_BIT else _memory(param).reshape(-1)

        def values(begin: int, end: int) -> np.ndarray:
            piece = (
                torch.zeros(end - begin, dtype=torch.float32)
                if wide is None
                else torch.from_numpy(wide[begin:end])
            )
            return _memory(self._new_state(group, piece)[name])

        self.policy.fill(fmt, stored, scales, values)
        return entries

    def _stored(
        self, group: dict[str, Any], name: str, param: torch.Tensor, values: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """State entry `name` of `param` (and its scales) as the policy stores it, from
        `values` (float32, or the parameter's float64), laid out as the parameter."""
        fmt = self._state_format(group, name)
        if fmt == NATIVE:
            dtype = param.dtype if param.dtype in _DTYPES else torch.float32
            return {name: values.to(dtype)}
        stored, scales = self.policy.store(fmt, _memory(values).reshape(-1))
        entries = {name: _filled(param, _STORAGE[fmt], stored)}
        if scales is not None:
            entries[f"{name}_absmax"] = torch.from_numpy(scales)
        return entries

    def _staging(
        self, group: dict[str, Any], plan: _Plan, positions: list[int], grads: list[np.ndarray]
    ) -> Staging:
        """The policy's description of a step of the parameters at `positions`."""
        names = self._state_names(group)
        return Staging(
            *self.policy.staging_args(
                [plan.first + i for i in positions],
                grads,
                [self._state_format(group, name) for name in names],
                [
                    [plan.extra[f"{name}_absmax"][i] for i in positions]
                    if f"{name}_absmax" in plan.extra
                    else None
                    for name in names
                ],
                [plan.extra["master"][i] for i in positions] if "master" in plan.extra else None,
            )
        )

    def _set_clipping(self, max_grad_norm, error_if_nonfinite, skip_if_nonfinite) -> None:
        if max_grad_norm is not None:
            max_grad_norm = check.positive("max_grad_norm", max_grad_norm)
        self.max_grad_norm: Optional[float] = max_grad_norm
        self.error_if_nonfinite = check.flag("error_if_nonfinite", error_if_nonfinite)
        self.skip_if_nonfinite = check.flag("skip_if_nonfinite", skip_if_nonfinite)
        if self.error_if_nonfinite and self.skip_if_nonfinite:
            raise ValueError("error_if_nonfinite, skip_if_nonfinite: choose one")
        #: the global gradient 2-norm of the last step (None when not measured)
        self.grad_norm: Optional[float] = None

    # ------------------------------------------------------------- per rule
    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalize) a param group: torch's flags, the hyper-parameters
        every rule has here, then the rule's own (`_check_options`)."""
        if check.flag("differentiable", group.get("differentiable", False)):
            raise ValueError(
                f"differentiable=True: {type(self).__name__}'s step runs in C "
                "outside autograd; use torch.optim for a differentiable step"
            )
        if check.flag("capturable", group.get("capturable", False)):
            raise ValueError(
                "capturable=True: CUDA graph capture; gdfast's kernels run on "
                "the CPU (capturable=False changes nothing there)"
            )
        for flag in ("foreach", "fused"):
            if group.get(flag) is not None:
                group[flag] = check.flag(flag, group[flag])
        if not self._has_torch_step and _uses_tensor_hyperparameters(group):
            raise ValueError(
                f"lr, betas: give floats; gdfast.torch.{type(self).__name__} has no "
                "Tensor-lr step (the other classes run torch.optim's for one)"
            )
        _at_least("lr", group["lr"])
        group["weight_decay"] = _at_least("weight_decay", group["weight_decay"])
        group["maximize"] = check.flag("maximize", group["maximize"])
        self._check_options(group)

    def _check_options(self, group: dict[str, Any]) -> None:
        """Validate (and normalize) the rule's own hyper-parameters of a param group."""
        raise NotImplementedError

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The state buffers shaped like the parameter, in the kernel's order."""
        raise NotImplementedError

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = {"step": torch.tensor(0.0, dtype=_step_dtype(group))}
        for name in self._state_names(group):
            state[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def _rule(self, group: dict[str, Any]) -> type[Rule]:
        """The gdfast rule that runs this group (torch's flags may select another: SGD's
        momentum and nesterov, Adam's amsgrad)."""
        return self.rule

    def _state_keys(self, group: dict[str, Any], param: torch.Tensor) -> frozenset:
        """The entries of a parameter's state under `group`'s options (the dtype policy's
        included)."""
        keys = set(self._new_state(group, _state_template(param)))
        return frozenset(keys | set(self._extra_names(group) if self.policy.active else ()))

    def _kernel_arguments(self, rule: type[Rule], group: dict[str, Any]) -> dict[str, Any]:
        """The rule's hyper-parameters for a group, from its declaration: the spec's
        options, the torch convention's presets over them, then the group's values under
        torch's names (TorchEquivalent.names: RMSprop's rho is torch's alpha)."""
        names = rule.torch_equivalent.names if rule.torch_equivalent is not None else {}
        arguments = {**rule.spec_options(), **rule.conventions["torch"], **rule.fixed}
        for name in rule.hyperparameter_names:
            if names.get(name, name) in group:
                arguments[name] = group[names.get(name, name)]
        arguments["lr"] = _real("lr", group["lr"])
        return arguments

    def _scalar_state(self, states: list[dict]) -> list[list[np.ndarray]]:
        """The per-parameter scalar state lists the kernel takes after the buffers."""
        return []

    def _run(
        self,
        group: dict[str, Any],
        params: list[np.ndarray],
        grads: list[np.ndarray],
        buffers: list[list[np.ndarray]],
        steps: np.ndarray,
        states: list[dict],
        scaling: dict[str, float],
    ) -> None:
        """One kernel call on the active tensors of `group`; `scaling` holds the kernel's
        keywords beyond the rule's: {"grad_scale": c} (the kernel multiplies each gradient
        element by c) and {"lowp": Staging} (the dtype policy's step, SPEC L.6), or none."""
        rule = self._rule(group)
        rules.KERNELS[rule.rule](
            params,
            grads,
            *buffers,
            *self._scalar_state(states),
            steps,
            **self._kernel_arguments(rule, group),
            **scaling,
        )

    def _structure(self, group: dict[str, Any]) -> tuple:
        """The group options that decide the state entries (a plan is rebuilt on change)."""
        return self._state_names(group)

    # --------------------------------------------------------------- torch API
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        index = len(self.param_groups) - 1
        try:
            self._check_group(group)
            for position, param in enumerate(group["params"]):
                self._check_param(index, position, param)
            if getattr(self, "_policy_arguments", None) is not None:
                self._set_policy()  # (in the constructor: once every group is in)
        except Exception:
            self.param_groups.pop()
            raise
        self._plans.clear()

    def state_dict(self) -> dict[str, Any]:
        """torch's state dict; under a dtype policy also "policy" (SPEC L.5's record), the
        state entries as they are stored (bfloat16 tensors, uint8 codes and their
        `<name>_absmax` scales, `master`): saved and loaded losslessly."""
        state_dict = super().state_dict()
        if self.policy.active:
            state_dict["policy"] = self.policy.record()
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # the groups and the state's entries checked before torch replaces anything (on
        # copies, with the flags an older checkpoint lacks taken from this optimizer's
        # defaults, as __setstate__ does)
        _check_foreign_groups(self, state_dict)
        for index, saved in enumerate(_saved_groups(self, state_dict)):
            where = f"state_dict: param_groups[{index}]"
            _in_group(where, partial(self._check_group, {**self.defaults, **saved}))
        self._check_loaded_policy(state_dict)
        _check_foreign_state(self, state_dict, self._state_keys)
        super().load_state_dict(state_dict)
        if self.policy.active:
            self._restore_storage(state_dict)

    def _check_loaded_policy(self, state_dict: Any) -> None:
        """A state dict's dtype policy must be this optimizer's (a state dict of torch.optim
        or of an optimizer without a policy has none): state is never converted silently."""
        if not isinstance(state_dict, dict):
            return  # (torch's own error follows)
        self.policy.check_loaded(
            state_dict,
            "of torch.optim (state in the parameters dtype)",
            "gdfast.torch.convert_state_dict",
        )

    def _restore_storage(self, state_dict: dict[str, Any]) -> None:
        """torch's load_state_dict casts every state tensor but `step` to its parameter's
        dtype; under a policy the entries keep the dtype they were saved with (bfloat16 or
        float32 state, uint8 codes, float32 scales and master weights): put back."""
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for saved_id, param in zip(saved_ids, params):
            saved = state_dict["state"].get(saved_id)
            if not isinstance(saved, dict) or param not in self.state:
                continue
            state = self.state[param]
            for key, value in saved.items():
                if key != "step" and isinstance(value, torch.Tensor):
                    state[key] = value.to(device=param.device)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(
            max_grad_norm=self.max_grad_norm,
            error_if_nonfinite=self.error_if_nonfinite,
            skip_if_nonfinite=self.skip_if_nonfinite,
            _policy_arguments=self._policy_arguments,
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """torch's (copies, pickles, load_state_dict: older checkpoints get torch's
        defaults for the flags they lack, a `step` stored as a number becomes a tensor),
        then this class's defaults for any key still missing, and the checks."""
        super().__setstate__(state)
        self.__dict__.setdefault("max_grad_norm", None)
        self.__dict__.setdefault("error_if_nonfinite", False)
        self.__dict__.setdefault("skip_if_nonfinite", False)
        self.__dict__.setdefault("grad_norm", None)
        self.__dict__.setdefault("_policy_arguments", dict(POLICY_DEFAULTS))
        self._step_supports_amp_scaling = False
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            self._check_group(group)
        self._set_policy()
        self._plans = {}
        self._checked_groups = {}

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One update of every parameter that has a gradient (torch.optim's contract)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index in range(len(self.param_groups)):
            self._check_group_now(index)
        if any(map(_uses_tensor_hyperparameters, self.param_groups)):
            # torch's Tensor-lr arithmetic, on the same state (see the module docstring)
            self._refuse_torch_step()
            if self._clip(self._gradient_views(), in_kernel=False) is not None:
                inspect.unwrap(self.torch_class.step)(self)
            return loss
        plans = [self._plan(index, group) for index, group in enumerate(self.param_groups)]
        for index, group in enumerate(self.param_groups[1:], 1):
            self._check_grads_kind(index, group)  # (group 0's fail before any write anyway)
        scale = self._clip(self._gradient_views(), in_kernel=True)
        if scale is None:
            return loss
        for index, group in enumerate(self.param_groups):
            self._step_group(index, group, plans[index], scale)
        return loss

    def _check_group_now(self, index: int) -> None:
        """Group `index`'s hyper-parameters checked again before a step writes anything
        (torch checks them only in the constructor; a scheduler or a user may have set
        lr = -1 or NaN since): `_check_group` on a copy, its normalized values written
        back only when all are valid.  Skipped while the values are those last checked."""
        group = self.param_groups[index]
        if _unchanged(self._checked_groups.get(index), group):
            return
        copy = dict(group)
        _in_group(f"{type(self).__name__}: param_groups[{index}]", partial(self._check_group, copy))
        group.update(copy)
        self._checked_groups[index] = _snapshot(group)

    def _check_grads_kind(self, index: int, group: dict[str, Any]) -> None:
        """The checks of `_checked_grad` that need no copy (layout, device, dtype, shape), for
        a group after the first: a later group's bad gradient is refused before the groups
        before it are written."""
        for position, param in enumerate(group["params"]):
            if param.grad is not None:
                self._check_grad_kind(index, position, param, param.grad)

    def _check_grad_kind(
        self, group_index: int, position: int, param: torch.Tensor, grad: torch.Tensor
    ) -> str:
        """A gradient's layout, device, dtype and shape checked; returns where it is."""
        where = f"{type(self).__name__}: gradient of {self._where(group_index, position, param)}"
        if grad.is_sparse or grad.layout is not torch.strided:
            raise TypeError(
                f"{where}: sparse gradients are not supported; use "
                f"torch.optim.{self.torch_class.__name__}"
            )
        if grad.device != param.device:
            raise TypeError(f"{where}: the gradient is on {grad.device}")
        self._check_grad_dtype(where, param, grad)
        if grad.shape != param.shape:
            raise ValueError(
                f"{where}: gradient shape {tuple(grad.shape)} differs from the parameter's"
            )
        return where

    def _refuse_torch_step(self) -> None:
        """torch.optim's own step knows no dtype policy nor gradients of another dtype."""
        mixed = any(
            p.grad is not None and p.grad.dtype != p.dtype
            for group in self.param_groups
            for p in group["params"]
        )
        if self.policy.active or mixed:
            raise ValueError(
                "lr, betas: a Tensor lr or betas runs torch.optim's own step, which does not "
                "take a dtype policy (16-bit parameters, state_dtype, master_weights, "
                "param_copy) or gradients of another dtype than their parameter; give floats"
            )

    # -------------------------------------------------------------- clipping
    def _gradient_views(self) -> list[torch.Tensor]:
        if self.max_grad_norm is None and not (self.error_if_nonfinite or self.skip_if_nonfinite):
            return []
        return [
            p.grad
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
            and p.grad.layout is torch.strided
            and p.grad.device.type == "cpu"
            and p.grad.dtype in _PARAM_DTYPES
        ]

    def _gradient_arrays(self, grads: list[torch.Tensor]) -> list[np.ndarray]:
        """`_sums_of_squares`'s arrays of the gradients, kept from the last step while the
        same gradient tensors sit at the same addresses (zero_grad(set_to_none=False)
        keeps them; the numpy views cost ~2 µs a tensor to make) and only when they are
        views (a copy would hold the old values)."""
        kept = getattr(self, "_norm_arrays", None)  # (tensors, addresses, arrays)
        pointers = list(map(_data_ptr, grads))
        if (
            kept is not None
            and len(kept[0]) == len(grads)
            and all(map(operator.is_, grads, kept[0]))
            and pointers == kept[1]
        ):
            return kept[2]
        arrays, views = _gradient_memory(grads)
        self._norm_arrays = (grads, pointers, arrays) if views else None
        return arrays

    def _clip(self, grads: list[torch.Tensor], in_kernel: bool) -> Optional[float]:
        """The gradient scale the kernels are to apply (1.0: none), or None to skip the
        step.  The global norm is the square root of the fixed-order sum of squares of all
        gradients of all groups, in group and parameter order (`_sums_of_squares`);
        torch.nn.utils.clip_grad_norm_'s c = min(1, max_norm / (norm + 1e-6)).
        error_if_nonfinite raises on a non-finite norm (clip_grad_norm_'s test);
        skip_if_nonfinite skips when a gradient holds an inf or a NaN (GradScaler's test:
        float64 squares overflowing make the norm inf, and the step then runs with c = 0,
        as after clip_grad_norm_).  Without `in_kernel` the gradients are scaled here."""
        if not grads:
            return 1.0
        total, _, nonfinite = sum_of_squares(self._gradient_arrays(grads))
        norm = math.sqrt(total)
        self.grad_norm = norm
        if self.error_if_nonfinite and not math.isfinite(norm):
            raise RuntimeError(
                f"{type(self).__name__}: the total norm of the gradients "
                f"is {norm}; nothing was written (error_if_nonfinite)"
            )
        if self.skip_if_nonfinite and nonfinite.any():
            return None
        if self.max_grad_norm is None:
            return 1.0
        scale = min(1.0, self.max_grad_norm / (norm + 1e-6))
        if scale < 1.0 and not in_kernel:
            # the gradients scaled in place, as clip_grad_norm_ does (one extra pass
            # writing them): torch's own step
            for grad in grads:
                grad.mul_(scale)
            return 1.0
        return scale

    def _step_parameter(self, index: int, position: int, scale: float) -> None:
        """Step one parameter, params[position] of group `index` (its gradient times
        `scale`), as `step` would step it."""
        self._check_group_now(index)
        group = self.param_groups[index]
        if _uses_tensor_hyperparameters(group):
            raise ValueError(
                "step_in_backward: a Tensor lr or betas runs torch's own step, "
                "which steps whole groups; give floats"
            )
        self._step_group(index, group, self._plan(index, group), scale, only=position)

    # ---------------------------------------------------------------- checks
    def _where(self, group_index: int, position: int, tensor: torch.Tensor) -> str:
        return (
            f"param_groups[{group_index}]['params'][{position}] (shape "
            f"{tuple(tensor.shape)}, {tensor.dtype}, {tensor.device})"
        )

    def _check_param(self, group_index: int, position: int, param: torch.Tensor) -> None:
        where = f"{type(self).__name__}: {self._where(group_index, position, param)}"
        name = self.torch_class.__name__
        if param.device.type != "cpu":
            raise TypeError(
                f"{where}: only CPU tensors are supported; use "
                f"torch.optim.{name} for {param.device.type} tensors"
            )
        if param.layout is not torch.strided:
            raise TypeError(f"{where}: only dense (strided) tensors are supported")
        if param.dtype not in _PARAM_DTYPES:
            raise TypeError(
                f"{where}: dtype {param.dtype} is not supported; expected "
                "torch.float32, torch.float64, torch.bfloat16 or torch.float16"
            )
        if not _dense(param):
            raise ValueError(
                f"{where}: expected a dense tensor (every element at its own "
                "address, no gaps: contiguous, channels_last or any order of the "
                f"dimensions), got strides {param.stride()}; the kernels update "
                f"it in place; use torch.optim.{name} for such a view"
            )

    def _checked_grad(
        self,
        group_index: int,
        position: int,
        param: torch.Tensor,
        grad: torch.Tensor,
        owned: OwnedMemory,
    ) -> np.ndarray:
        where = self._check_grad_kind(group_index, position, param, grad)
        grad = grad.detach()
        if not (_dense(grad) and _same_layout(grad, param)):
            grad = torch.empty_like(param).copy_(grad)  # into the parameter's layout
        array = _memory(grad)
        start, stop = check.byte_span(array)
        if owned.overlapping(start, stop) is not None:
            raise ValueError(
                f"{where}: the gradient shares memory with a parameter or a state "
                "tensor that the step writes"
            )
        return array

    def _check_grad_dtype(self, where: str, param: torch.Tensor, grad: torch.Tensor) -> None:
        """SPEC L.5: a gradient has its parameter's dtype, or float32 (16-bit parameters),
        or bfloat16/float16 where the arithmetic has a float32 home (a float32 parameter, or
        master weights); float64 parameters take float64 gradients only."""
        home = param.dtype == torch.float32 or self.policy.master_weights
        if grad.dtype == param.dtype or (
            param.dtype != torch.float64
            and (grad.dtype == torch.float32 or (grad.dtype in _SIXTEEN_BIT and home))
        ):
            return
        if param.dtype == torch.float64:
            allowed = "torch.float64"
        elif home:
            allowed = "torch.float32, torch.bfloat16 or torch.float16"
        else:
            allowed = f"{param.dtype} or torch.float32"
        raise TypeError(
            f"{where}: gradient dtype {grad.dtype} does not fit the parameter's dtype "
            f"{param.dtype}; expected {allowed}"
            + (
                " (a 16-bit gradient of another format needs master_weights=True)"
                if param.dtype in _SIXTEEN_BIT and grad.dtype in _SIXTEEN_BIT
                else ""
            )
        )

    # ------------------------------------------------------------------ step
    def _plan(self, index: int, group: dict[str, Any]) -> _Plan:
        params = group["params"]
        structure = self._structure(group)
        plan = self._plans.get(index)
        if plan is not None and plan.fits(params, structure, self.state):
            return plan
        names = self._state_names(group)
        extra_names = self._extra_names(group) if self.policy.active else ()
        states: list[Optional[dict]] = []
        for position, param in enumerate(params):
            self._check_param(index, position, param)
            state = self.state.get(param)
            if not state:
                # nothing to create (SGD without momentum) or not stepped yet
                states.append({} if not names and not self._keeps_step else None)
                continue
            for name in names + extra_names:
                buffer = state.get(name)
                where = f"{type(self).__name__}: state[{name!r}] of {self._where(index, position, param)}"
                if not isinstance(buffer, torch.Tensor):
                    raise ValueError(
                        f"{where}: missing; the group's options "
                        f"({', '.join(map(str, structure))}) changed after the "
                        "state was created"
                    )
                dtype, shape = self._storage(group, name, param)
                if (
                    buffer.dtype != dtype
                    or buffer.shape != shape
                    or buffer.device != param.device
                    or buffer.layout is not torch.strided
                ):
                    raise ValueError(
                        f"{where}: expected a tensor of shape {tuple(shape)}, dtype {dtype} "
                        f"and device {param.device} (the parameter's and the dtype policy's), "
                        f"got {tuple(buffer.shape)} {buffer.dtype} {buffer.device}"
                    )
                if dtype == torch.uint8 and not (_dense(buffer) and _same_layout(buffer, param)):
                    raise ValueError(  # (8-bit blocks run in memory order: not re-laid out)
                        f"{where}: 8-bit state must be laid out as its parameter (strides "
                        f"{param.stride()}), got strides {buffer.stride()}"
                    )
                if name in extra_names and name != "master" and not buffer.is_contiguous():
                    raise ValueError(f"{where}: expected a contiguous tensor")
            if self._keeps_step and not isinstance(state.get("step"), torch.Tensor):
                raise ValueError(
                    f"{type(self).__name__}: state['step'] of "
                    f"{self._where(index, position, param)}: expected a tensor"
                )
            for name in names + extra_names:  # (after every check) laid out otherwise: copied
                buffer = state[name]
                if buffer.shape == param.shape and not (
                    _dense(buffer) and _same_layout(buffer, param)
                ):
                    state[name] = torch.empty_like(param, dtype=buffer.dtype).copy_(buffer)
            states.append(state)
        first = sum(len(g["params"]) for g in self.param_groups[:index])
        copies = self.policy.param_copy or [None] * (first + len(params))
        plan = _Plan(
            params,
            names,
            states,
            structure,
            self._keeps_step,
            _step_dtype(group),
            extra_names,
            first,
            tuple(c for c in copies[first : first + len(params)] if c is not None),
            f"{type(self).__name__}: param_groups[{index}]",
        )
        self._plans[index] = plan
        return plan

    def _step_group(
        self,
        index: int,
        group: dict[str, Any],
        plan: _Plan,
        scale: float,
        only: Optional[int] = None,
    ) -> None:
        """Step the parameters of `group` that have a gradient (with `only`: that one)."""
        params = group["params"]
        scaling = {} if scale == 1.0 else {"grad_scale": scale}
        if only is None and plan.complete:
            grads = [p.grad for p in params]
            arrays = None
            if (
                len(grads) == len(plan.grad_objects)
                and all(map(operator.is_, grads, plan.grad_objects))
                and list(map(_data_ptr, grads)) == plan.grad_pointers
            ):
                arrays = plan.grad_arrays  # the same tensors, already checked
            else:
                try:  # (a None gradient fails here too: no `None in grads`, a Tensor ==)
                    arrays = [_array(grad) for grad in grads]
                except (AttributeError, RuntimeError, TypeError):  # None, CUDA, sparse, ..
                    arrays = None
                if (
                    arrays is not None
                    and gradients_fast_ok(arrays, plan.param_np, plan.owned) != FAST_ALL
                ):
                    arrays = None
                if arrays is not None:
                    plan.grad_objects, plan.grad_arrays = grads, arrays
                    plan.grad_pointers = list(map(_data_ptr, grads))
            if arrays is not None:
                if self.policy.active and plan.staging is None:
                    plan.staging = self._staging(group, plan, list(range(len(params))), arrays)
                plan.step_np += 1
                self._run(
                    group,
                    list(plan.param_np),
                    arrays,
                    plan.buffers,
                    plan.step_np.astype(np.int64),
                    [self.state[p] for p in params] if self._needs_states else [],
                    scaling if plan.staging is None else {**scaling, "lowp": plan.staging},
                )
                return
        positions = range(len(params)) if only is None else (only,)
        active = [i for i in positions if params[i].grad is not None]
        if not active:
            return
        checked = [
            self._checked_grad(index, i, params[i], params[i].grad, plan.owned) for i in active
        ]  # every check before any write
        fresh = [i for i in active if not plan.has_state[i]]
        if fresh:  # a first gradient: torch's lazy state
            for i in fresh:
                self.state[params[i]] = self._create_state(group, params[i])
            self._plans.pop(index, None)
            plan = self._plan(index, group)
            plan.step_np[fresh] = 0  # (SGD's plan counts a stateful parameter as stepped)
        if self.policy.active or any(
            params[i].grad.dtype != params[i].dtype for i in active
        ):  # (a gradient of another dtype than its parameter's: staged too, SPEC L.6)
            scaling = {**scaling, "lowp": self._staging(group, plan, active, checked)}
        plan.step_np[active] += 1
        self._run(
            group,
            [plan.param_np[i] for i in active],
            checked,
            [[buffers[i] for i in active] for buffers in plan.buffers],
            plan.step_np[active].astype(np.int64),
            [self.state[params[i]] for i in active] if self._needs_states else [],
            scaling,
        )


def convert_state_dict(state_dict: dict[str, Any], optimizer: _KernelOptimizer) -> dict[str, Any]:
    """`state_dict` (of a gdfast.torch optimizer of the same class and parameters, with any
    dtype policy, or of torch.optim's class) converted to `optimizer`'s dtype policy,
    explicitly: each state buffer decoded to float32 (8-bit codes with their scales, SPEC
    L.4; bfloat16, float16 and float32 widened exactly), then stored as `optimizer`'s policy
    says (bfloat16 rounded to nearest, 8-bit re-encoded); the master weights taken from the
    state dict when it has them, else made from the parameters; `step` and scalar entries
    kept.  The result loads with `optimizer.load_state_dict` (`state_dict` is not changed).
    Only this conversion loses information: to bfloat16 or 8 bits, as the policy does."""
    if not isinstance(optimizer, _KernelOptimizer):
        raise TypeError(
            f"optimizer: expected a gdfast.torch optimizer, got {type(optimizer).__name__}"
        )
    source = state_dict.get("policy") or {}
    if not isinstance(source, dict):
        raise TypeError(f"state_dict['policy']: expected a dict, got {type(source).__name__}")
    decoder = Policy(
        source.get("state_dtype", "float32"),
        False,
        "nearest",
        0,
        source.get("block_size", POLICY_DEFAULTS["block_size"]),
        [],
        None,
    )
    saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
    pairs = [(group, p) for group in optimizer.param_groups for p in group["params"]]
    if len(saved_ids) != len(pairs):
        raise ValueError(f"state_dict: {len(saved_ids)} parameters, the optimizer has {len(pairs)}")
    state: dict[Any, Any] = {}
    for saved_id, (group, param) in zip(saved_ids, pairs):
        saved = state_dict["state"].get(saved_id)
        if not saved:
            continue
        names = optimizer._state_names(group)
        policy_entries = {"master"} | {f"{name}_absmax" for name in names}
        entry = {k: v for k, v in saved.items() if k not in names and k not in policy_entries}
        for name in names:
            stored = saved[name].detach()
            if stored.dtype == torch.uint8:  # 8-bit: decoded with its scales
                fmt = decoder.state_format(name, optimizer._nonnegative(group))
                values = decoder.load(
                    fmt, _memory(stored).reshape(-1), saved[f"{name}_absmax"].numpy()
                )
                wide = _filled(param, torch.float32, values)
            else:
                wide = stored if stored.dtype == torch.float64 else stored.float()
            entry.update(optimizer._stored(group, name, param, wide))
        if optimizer.policy.master_weights:
            master = saved.get("master")
            entry["master"] = (master if master is not None else param.detach()).to(
                torch.float32, memory_format=torch.preserve_format, copy=True
            )
        state[saved_id] = entry
    converted = {**state_dict, "state": state}
    converted.pop("policy", None)
    if optimizer.policy.active:
        converted["policy"] = optimizer.policy.record()
    return converted


class SGD(_KernelOptimizer, torch.optim.SGD):
    """torch.optim.SGD on gdfast's kernels (SPEC.md 1.2's torch convention).

    g ← −g if maximize ; g ← g + λ θ (weight_decay)
    momentum μ = 0:  θ ← θ − η g
    momentum μ > 0:  b ← μ b + (1 − d) g (b = g at a parameter's first step)
                     θ ← θ − η b, or with nesterov θ ← θ − η (g + μ b)
    = gdfast.SGD / Momentum / Nesterov with convention="torch".  State: momentum_buffer
    (only when μ > 0, as torch keeps it).
    """

    torch_class = torch.optim.SGD
    rule = rules.SGD

    def _rule(self, group: dict[str, Any]) -> type[Rule]:
        if group["momentum"] == 0:
            return rules.SGD
        return rules.Nesterov if group["nesterov"] else rules.Momentum

    _keeps_step = False

    def _check_options(self, group: dict[str, Any]) -> None:
        group["momentum"] = _at_least("momentum", group["momentum"])
        group["dampening"] = _unit("dampening", group["dampening"])
        group["nesterov"] = check.flag("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov: Nesterov momentum requires a momentum and zero dampening")

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        # no step: torch keeps none for SGD; "first step" (b = g) is "no buffer yet"
        return {
            name: torch.zeros_like(param, memory_format=torch.preserve_format)
            for name in self._state_names(group)
        }


class Adam(_KernelOptimizer, torch.optim.Adam):
    """torch.optim.Adam on gdfast's kernels.

    g ← −g if maximize ; L2: g ← g + λ θ, or decoupled (AdamW): θ ← θ (1 − η λ)
    m ← β1 m + (1 − β1) g ; v ← β2 v + (1 − β2) g²
    amsgrad=False: θ ← θ − η m̂ / (√v̂ + ε)                     (gdfast.Adam)
    amsgrad=True:  v_max ← max(v_max, v) ; θ ← θ − η m̂ / (√(v_max/(1 − β2^t)) + ε)
                   (gdfast.AMSGrad)
    State: step, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad).
    """

    torch_class = torch.optim.Adam
    rule = rules.Adam

    def _rule(self, group: dict[str, Any]) -> type[Rule]:
        return rules.AMSGrad if group["amsgrad"] else rules.Adam

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])
        group["eps"] = _at_least("eps", group["eps"])
        group["amsgrad"] = check.flag("amsgrad", group["amsgrad"])
        group["decoupled_weight_decay"] = check.flag(
            "decoupled_weight_decay", group["decoupled_weight_decay"]
        )

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())


class AdamW(Adam, torch.optim.AdamW):
    """torch.optim.AdamW on gdfast's kernels: Adam with decoupled weight decay,
    θ ← θ (1 − η λ) before the Adam step (default λ = 0.01)."""

    torch_class = torch.optim.AdamW


class Adagrad(_KernelOptimizer, torch.optim.Adagrad):
    """torch.optim.Adagrad on gdfast's kernels.

    η_t = η / (1 + (t − 1) lr_decay) ; G ← G + g² ; θ ← θ − η_t g / (√G + ε)
    (gdfast.Adagrad with convention="torch").  State (created at construction, by
    torch's constructor): step, sum (starting at initial_accumulator_value).
    """

    torch_class = torch.optim.Adagrad
    rule = rules.Adagrad

    def _check_options(self, group: dict[str, Any]) -> None:
        group["lr_decay"] = _at_least("lr_decay", group["lr_decay"])
        group["eps"] = _at_least("eps", group["eps"])
        group["initial_accumulator_value"] = _at_least(
            "initial_accumulator_value", group["initial_accumulator_value"]
        )

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        return {
            "step": torch.tensor(0.0, dtype=_step_dtype(group)),
            "sum": torch.full_like(
                param, group["initial_accumulator_value"], memory_format=torch.preserve_format
            ),
        }


class Adadelta(_KernelOptimizer, torch.optim.Adadelta):
    """torch.optim.Adadelta on gdfast's kernels (SPEC.md's Adadelta with the lr multiplier).
    State: step, square_avg, acc_delta."""

    torch_class = torch.optim.Adadelta
    rule = rules.Adadelta

    def _check_options(self, group: dict[str, Any]) -> None:
        group["rho"] = _unit("rho", group["rho"])
        group["eps"] = _at_least("eps", group["eps"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("square_avg", "acc_delta")


class RMSprop(_KernelOptimizer, torch.optim.RMSprop):
    """torch.optim.RMSprop on gdfast's kernels (gdfast.RMSprop with rho = alpha and
    convention="torch").  State: step, square_avg, momentum_buffer (momentum > 0),
    grad_avg (centered)."""

    torch_class = torch.optim.RMSprop
    rule = rules.RMSprop

    def _check_options(self, group: dict[str, Any]) -> None:
        group["alpha"] = _unit("alpha", group["alpha"])
        group["eps"] = _at_least("eps", group["eps"])
        group["momentum"] = _at_least("momentum", group["momentum"])
        group["centered"] = check.flag("centered", group["centered"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        # the kernel's order: square_avg, grad_avg, momentum_buffer
        return (
            ("square_avg",)
            + (("grad_avg",) if group["centered"] else ())
            + (("momentum_buffer",) if group["momentum"] > 0 else ())
        )


class Adamax(_KernelOptimizer, torch.optim.Adamax):
    """torch.optim.Adamax on gdfast's kernels: u ← max(β2 u, |g| + ε),
    θ ← θ − (η/(1 − β1^t)) m / u (gdfast.AdaMax with convention="torch").
    State: step, exp_avg, exp_inf."""

    torch_class = torch.optim.Adamax
    rule = rules.AdaMax

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])
        group["eps"] = _at_least("eps", group["eps"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_inf")


class NAdam(_KernelOptimizer, torch.optim.NAdam):
    """torch.optim.NAdam on gdfast's kernels: Dozat's schedule
    μ_t = β1 (1 − ½ 0.96^(t ψ)), ψ = momentum_decay, with the μ product P_t kept per
    parameter (gdfast.Nadam with convention="torch"); L2 or decoupled weight decay.
    State: step, mu_product (a 0-d tensor, torch's scalar dtype), exp_avg, exp_avg_sq."""

    torch_class = torch.optim.NAdam
    rule = rules.Nadam
    _needs_states = True

    def _scalar_state(self, states: list[dict]) -> list[list[np.ndarray]]:
        return [[state["mu_product"].numpy() for state in states]]

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])
        group["eps"] = _at_least("eps", group["eps"])
        group["momentum_decay"] = _at_least("momentum_decay", group["momentum_decay"])
        group["decoupled_weight_decay"] = check.flag(
            "decoupled_weight_decay", group["decoupled_weight_decay"]
        )

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = super()._new_state(group, param)
        state["mu_product"] = torch.ones((), dtype=_step_dtype(group))
        return state


# ---- the rules added in issue 15 (RAdam, Rprop, ASGD, Lion, SparseAdam, ...) ----

__all__ += ["RAdam", "Rprop", "ASGD", "Lion", "SparseAdam"]


class _AbsentKeys(_KernelOptimizer):
    """For a class whose param groups lack keys the common checks read (torch's Rprop and
    SparseAdam have no weight_decay, lion-pytorch's Lion no maximize): the checks run on a
    copy with those keys at their neutral values, and only the group's own keys are
    written back (its format stays its library's)."""

    _absent: ClassVar[dict[str, Any]] = {}

    def _check_group(self, group: dict[str, Any]) -> None:
        checked = {**self._absent, **group}
        super()._check_group(checked)
        group.update({key: checked[key] for key in group})


class RAdam(_KernelOptimizer, torch.optim.RAdam):
    """torch.optim.RAdam on gdfast's kernels (gdfast.RAdam with convention="torch": the
    rectified step where ρ_t > 5); decoupled_weight_decay=True is torch's RAdamW form,
    θ ← θ (1 − η λ) first.  State: step, exp_avg, exp_avg_sq."""

    torch_class = torch.optim.RAdam
    rule = rules.RAdam

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])
        group["eps"] = _at_least("eps", group["eps"])
        group["decoupled_weight_decay"] = check.flag(
            "decoupled_weight_decay", group["decoupled_weight_decay"]
        )

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")


class Rprop(_AbsentKeys, torch.optim.Rprop):
    """torch.optim.Rprop (iRprop−) on gdfast's kernels (gdfast.Rprop): the step sizes
    grow by η+ where the gradient kept its sign, shrink by η− where it changed (that
    gradient then counts as 0), within step_sizes; θ ← θ − sign(g) Δ.
    State: step, prev, step_size (filled with lr at the first step, as torch)."""

    torch_class = torch.optim.Rprop
    rule = rules.Rprop
    _absent = {"weight_decay": 0.0}

    def _check_options(self, group: dict[str, Any]) -> None:
        group["etas"] = check.rprop_etas("etas", tuple(map(_real, ("etas",) * 2, group["etas"])))
        group["step_sizes"] = check.rprop_step_sizes(
            "step_sizes", tuple(map(_real, ("step_sizes",) * 2, group["step_sizes"]))
        )

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("prev", "step_size")

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = super()._new_state(group, param)
        state["step_size"].fill_(_real("lr", group["lr"]))
        return state


class ASGD(_KernelOptimizer, torch.optim.ASGD):
    """torch.optim.ASGD on gdfast's kernels (gdfast.ASGD): θ ← θ (1 − λ η_t) − η_t g with
    η_t = η / (1 + λ η (t − 1))^α, and the average ax of θ from step ⌊t0⌋ + 2 on.
    State: step, eta, mu (0-d tensors of torch's scalar dtype, written after each step
    as torch writes them: the η_(t+1) and μ_(t+1) of the next step), ax.

    gdfast computes η_t and μ_t from t in double; torch reads them back from `eta` and
    `mu`, rounded to its default dtype (float32 unless torch.set_default_dtype(float64)):
    with float64 parameters and a float32 default, torch's η_t is off by up to 6e-8
    relative, and so its steps are (identical with a float64 default dtype).

    A learning-rate change (a scheduler) reaches this class one step earlier than torch's
    ASGD: torch computes η_(t+1) at the end of step t from that step's lr, gdfast computes
    η_t from the lr of step t.  With a constant lr the two agree to rounding; after a change
    they differ for one step (about 1e-5 relative in the parameters afterwards)."""

    torch_class = torch.optim.ASGD
    rule = rules.ASGD
    _needs_states = True

    def _check_options(self, group: dict[str, Any]) -> None:
        for name in ("lambd", "alpha", "t0"):
            group[name] = _at_least(name, group[name])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("ax",)

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = super()._new_state(group, param)
        state["eta"] = torch.tensor(_real("lr", group["lr"]), dtype=_step_dtype(group))
        state["mu"] = torch.ones((), dtype=_step_dtype(group))
        return state

    def _run(self, group, params, grads, buffers, steps, states, scaling) -> None:
        super()._run(group, params, grads, buffers, steps, states, scaling)
        lr, lambd, alpha, t0 = (float(group[name]) for name in ("lr", "lambd", "alpha", "t0"))
        for state, t in zip(states, steps.tolist()):  # torch's values for step t + 1
            with np.errstate(over="ignore"):  # (a huge alpha: eta 0, as torch's)
                eta = lr / float(np.power(1 + lambd * lr * t, alpha))
            # (copy_ rounds a value beyond float32 to inf, as torch's arithmetic; fill_ raises)
            state["eta"].copy_(torch.tensor(eta, dtype=torch.float64))
            state["mu"].fill_(1 / max(1, t - t0))


class _LionPytorch(torch.optim.Optimizer):
    """lion-pytorch 0.2.5's `Lion` constructor (its arguments, defaults and checks, as
    errors rather than asserts), without importing the package."""

    def __init__(
        self,
        params: Any,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        use_triton: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        if not _real("lr", lr) > 0:
            raise ValueError(f"lr: expected a number > 0 (lion-pytorch asserts lr > 0), got {lr}")
        if use_triton:
            raise ValueError("use_triton=True: Triton runs on CUDA; gdfast's Lion runs on the CPU")
        self._init_lr = lr
        self.decoupled_wd = check.flag("decoupled_weight_decay", decoupled_weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})


class Lion(_AbsentKeys, _LionPytorch):
    """lion-pytorch's `Lion` (0.2.5: same constructor, param-group keys and state) on
    gdfast's kernel (gdfast.Lion): θ ← θ (1 − η λ) ; θ ← θ − η sign(β1 m + (1 − β1) g) ;
    m ← β2 m + (1 − β2) g.  decoupled_weight_decay=True divides λ by the initial lr, as
    lion-pytorch does.  State: exp_avg (no step, as lion-pytorch keeps none).
    `isinstance(opt, lion_pytorch.Lion)` does not hold: the package is not imported."""

    torch_class = _LionPytorch
    rule = rules.Lion
    _keeps_step = False
    _absent = {"maximize": False}

    _has_torch_step = False

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg",)

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        return {"exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format)}

    def _kernel_arguments(self, rule: type[Rule], group: dict[str, Any]) -> dict[str, Any]:
        arguments = super()._kernel_arguments(rule, group)
        if self.decoupled_wd:  # lion-pytorch: λ / η0
            arguments["weight_decay"] = arguments["weight_decay"] / float(self._init_lr)
        return arguments


class SparseAdam(torch.optim.SparseAdam):
    """torch.optim.SparseAdam on gdfast's row-sparse Adam kernel (gdfast.Adam's RowGrad
    step with eps_hat, the form torch's sparse Adam computes: θ ← θ − (η √(1 − β2^t) /
    (1 − β1^t)) m / (√v + ε)), for the sparse COO gradients of embedding tables
    (`torch.nn.Embedding(..., sparse=True)`).  Only the rows a gradient names are read and
    written; their moments do not decay elsewhere (lazy), and t counts the steps that
    had a gradient, as torch's.  Same constructor, checks, groups and state (`step` a
    Python int, exp_avg, exp_avg_sq); a dense gradient raises torch's RuntimeError.
    torch writes m ← m + (g − m)(1 − β1) where gdfast writes β1 m + (1 − β1) g: they
    differ by an ulp a step (parity to 1e-10 in float64, 1e-5 in float32).

    A sparse gradient with several sparse dimensions steps the parameter viewed as rows
    of its dense dimensions (its sparse index flattened)."""

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for index, group in enumerate(self.param_groups):  # every check before any write
            if isinstance(group["lr"], torch.Tensor):
                _real("lr", group["lr"])
            hyper = {
                **rules.Adam.spec_options(),
                "lr": _at_least("lr", group["lr"]),
                "betas": _betas(group["betas"]),
                "eps": _at_least("eps", group["eps"]),
                "eps_hat": True,
                "maximize": check.flag("maximize", group.get("maximize", False)),
            }
            for position, param in enumerate(group["params"]):
                if param.grad is not None:
                    work.append((param, self._rows(index, position, param, param.grad), hyper))
                    self._check_state(index, position, param)
        for param, (indices, values, shape), hyper in work:
            state = self.state[param]
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            buffers = [state[name] for name in ("exp_avg", "exp_avg_sq")]
            state["step"] += 1
            rules.KERNELS["Adam"].rows(
                param.detach().numpy().reshape(shape),
                indices,
                values,
                *[b.numpy().reshape(shape) for b in buffers],
                int(state["step"]),
                **hyper,
            )
        return loss

    def _check_state(self, group: int, position: int, param: torch.Tensor) -> None:
        state = self.state.get(param)
        if not state:
            return
        buffers = [state.get(name) for name in ("exp_avg", "exp_avg_sq")]
        if not isinstance(state.get("step"), int) or not all(
            isinstance(b, torch.Tensor)
            and b.is_contiguous()
            and b.shape == param.shape
            and b.dtype == param.dtype
            and b.device == param.device
            for b in buffers
        ):
            raise ValueError(
                f"SparseAdam: state of param_groups[{group}]['params'][{position}]: expected an int "
                "step and exp_avg, exp_avg_sq contiguous tensors of the parameter's shape, dtype "
                "and device"
            )

    def _rows(self, group: int, position: int, param: torch.Tensor, grad: torch.Tensor):
        """(int64 row indices, C-contiguous values (nnz, row size), the parameter's shape as
        rows) of a sparse gradient, checked against its parameter."""
        where = (
            f"SparseAdam: param_groups[{group}]['params'][{position}] (shape "
            f"{tuple(param.shape)}, {param.dtype}, {param.device})"
        )
        if not grad.is_sparse:
            raise RuntimeError(
                "SparseAdam does not support dense gradients, please consider Adam instead"
            )
        if param.device.type != "cpu" or grad.device.type != "cpu":
            raise TypeError(f"{where}: only CPU tensors are supported; use torch.optim.SparseAdam")
        if param.dtype not in _DTYPES or grad.dtype != param.dtype:
            raise TypeError(
                f"{where}: expected float32 or float64 and a gradient of the same dtype, "
                f"got {param.dtype} and {grad.dtype}"
            )
        if not param.is_contiguous() or grad.shape != param.shape:
            raise ValueError(
                f"{where}: expected a contiguous parameter and a gradient of its shape, got "
                f"strides {param.stride()} and shape {tuple(grad.shape)}"
            )
        sparse = grad.sparse_dim()
        row_shape = tuple(param.shape[:sparse])
        indices = grad._indices().numpy()
        if indices.size and (indices.min() < 0 or (indices.max(axis=1) >= row_shape).any()):
            raise ValueError(f"{where}: the gradient's indices are out of range")
        rows = np.ravel_multi_index(indices, row_shape) if sparse else np.zeros(0, np.int64)
        row_size = math.prod(param.shape[sparse:])
        values = grad._values().detach().reshape(-1, row_size).numpy()
        values = np.array(values, order="C")  # a private copy, aliasing nothing the step writes
        shape = (math.prod(row_shape), row_size)
        return np.ascontiguousarray(rows, dtype=np.int64), values, shape


# ---- LAMB and Adafactor (issue 15) ----
__all__ += ["LAMB", "Adafactor"]


class _UnsupportedDtype(TypeError, RuntimeError):
    """A dtype a class does not take: gdfast's TypeError, and the RuntimeError torch.optim
    raises for it (its test tables expect that)."""


class _PerTensorRule(torch.optim.Optimizer):
    """Base of the adapters of the rules that are not element-wise (LAMB, Adafactor): each
    step is one call of the gdfast class's core (the two-pass kernel, per-tensor norms in a
    fixed order) on NumPy views of the CPU float32/float64 dense parameters that have a
    gradient (a parameter laid out otherwise, a transpose or channels_last, is stepped as a
    contiguous copy written back after the kernel: torch's results for its values); every
    check before any write, the group's hyper-parameters included (the gdfast rule's
    declarations check them at each step).  Gradient clipping as the other gdfast.torch
    classes (max_grad_norm, error_if_nonfinite, skip_if_nonfinite, keyword-only after the
    library's own arguments: see the module docstring), the clip scale applied inside the
    kernel.  The gradients are read in place (numpy views, a copy only of one that is not
    contiguous); one that shares memory with what the step writes (a parameter, a state
    tensor) is refused, as by the other classes."""

    rule: ClassVar[Any] = None

    def __init__(
        self,
        *args: Any,
        max_grad_norm: Optional[float] = None,
        error_if_nonfinite: bool = False,
        skip_if_nonfinite: bool = False,
        **kwargs: Any,
    ) -> None:
        """The library's arguments, then gdfast.torch's clipping options (keyword-only)."""
        self._set_clipping(max_grad_norm, error_if_nonfinite, skip_if_nonfinite)
        super().__init__(*args, **kwargs)

    _set_clipping = _KernelOptimizer._set_clipping
    _gradient_views = _KernelOptimizer._gradient_views
    _gradient_arrays = _KernelOptimizer._gradient_arrays
    _clip = _KernelOptimizer._clip

    # the clipping attributes and their defaults (kept by copies and pickles)
    _clipping_defaults: ClassVar[dict[str, Any]] = {
        "max_grad_norm": None,
        "error_if_nonfinite": False,
        "skip_if_nonfinite": False,
        "grad_norm": None,
    }

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), **{k: getattr(self, k) for k in self._clipping_defaults}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for name, default in self._clipping_defaults.items():
            self.__dict__.setdefault(name, default)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's, after the checks of a state dict of another optimizer and of every
        group's values (as a step checks them): nothing is replaced when one fails.  The
        flags (`_is_flag`) a group of an older checkpoint lacks are this optimizer's
        defaults (torch.optim's __setstate__ fills its own flags so)."""
        _check_foreign_groups(self, state_dict)
        groups = _saved_groups(self, state_dict)
        if groups:
            flags = {
                key: value
                for key, value in self.defaults.items()
                if _is_flag(value) and all(key in group for group in self.param_groups)
            }
            groups = [{**flags, **saved} for saved in groups]
            state_dict = {**state_dict, "param_groups": groups}
        for index, saved in enumerate(groups):
            where = f"state_dict: param_groups[{index}]"
            _in_group(where, partial(self._checked_arguments, {**self.defaults, **saved}))
        _check_foreign_state(self, state_dict, self._state_keys)
        super().load_state_dict(state_dict)

    def _state_keys(self, group: dict[str, Any], param: torch.Tensor) -> frozenset:
        return frozenset(self._new_state(group, _state_template(param)))

    def _rule(self, group: dict[str, Any]) -> Any:
        return self.rule

    _kernel_arguments = _KernelOptimizer._kernel_arguments

    def _checked_arguments(self, group: dict[str, Any]) -> dict[str, Any]:
        """The kernel's hyper-parameters of `group`, each checked by the gdfast rule's
        declaration: a step checks every group's values (a scheduler or a user may have
        changed them since the constructor) before it writes anything."""
        return {
            name: Rule.hyperparameter_of(self.rule, name).validate(name, value)
            for name, value in self._kernel_arguments(self.rule, group).items()
        }

    def _steps(self, group: dict[str, Any], states: list[dict]) -> np.ndarray:
        """t of this step for each active parameter (counted as the library counts)."""
        raise NotImplementedError

    def _buffers(self, group: dict[str, Any], param: torch.Tensor, state: dict) -> list:
        """The state arrays the core takes for `param`, in the declaration's order."""
        raise NotImplementedError

    def _state_shapes(self, param: torch.Tensor) -> dict[str, tuple[int, ...]]:
        """The state tensors of `param` the kernel reads and writes, and their shapes (those
        `_new_state` makes, in the parameter's dtype)."""
        raise NotImplementedError

    def _check_state(self, index: int, param: torch.Tensor) -> None:
        """A parameter's state (from earlier steps or load_state_dict) checked before any
        write: each tensor the kernel takes a dense CPU tensor of its shape and the
        parameter's dtype (else a ValueError naming it); one of another memory layout (a
        strided or transposed view, a broadcast) is replaced by a contiguous copy of its
        values, as torch.optim would read them."""
        state = self.state.get(param)
        if not state:
            return  # made at the step
        for name, shape in self._state_shapes(param).items():
            value = state.get(name)
            if not (
                isinstance(value, torch.Tensor)
                and value.dtype == param.dtype
                and tuple(value.shape) == tuple(shape)
                and value.device.type == "cpu"
                and value.layout is torch.strided
            ):
                found = (
                    f"{tuple(value.shape)} {value.dtype} on {value.device}"
                    if isinstance(value, torch.Tensor)
                    else type(value).__name__
                )
                raise ValueError(
                    f"{type(self).__name__}: param_groups[{index}]: state[{name!r}] must be a "
                    f"dense CPU tensor of shape {tuple(shape)} and dtype {param.dtype} "
                    f"(the parameter's), got {found}"
                )
            if not value.is_contiguous():
                state[name] = value.contiguous()

    def _checked(self, index: int, param: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        grad = param.grad
        where = f"{type(self).__name__}: param_groups[{index}]"
        for name, tensor in (("param", param), ("grad", grad)):
            if tensor.device.type != "cpu" or tensor.layout is not torch.strided:
                raise TypeError(f"{where}: the {name} must be a dense CPU tensor")
            if tensor.is_complex():  # (torch's words, torch's RuntimeError, and a TypeError)
                raise _UnsupportedDtype(
                    f"{where}: {type(self).__name__} does not support complex parameters "
                    f"(as torch's); it takes float32/float64 tensors, got {tensor.dtype}"
                )
            if tensor.dtype not in (torch.float32, torch.float64):
                raise TypeError(
                    f"{where}: {self.rule.rule} takes float32/float64 tensors, got {tensor.dtype}"
                )
        if grad.dtype != param.dtype or grad.shape != param.shape:
            raise ValueError(f"{where}: the gradient must have the parameter's dtype and shape")
        if not _dense(param):
            raise ValueError(
                f"{where}: the parameter must be dense (no gaps, no overlaps), got shape "
                f"{tuple(param.shape)} and strides {param.stride()}"
            )
        # a parameter laid out otherwise (a transpose, channels_last) is stepped as a
        # contiguous copy of it, written back after the kernel (`_write_back`): the step
        # of the same values laid out contiguously, as torch.optim's
        values = param.detach() if param.is_contiguous() else param.detach().contiguous()
        return values.numpy(), grad.detach().resolve_neg().contiguous().numpy()

    @staticmethod
    def _write_back(active: list[torch.Tensor], arrays: list) -> None:
        """The stepped contiguous copies of non-contiguous parameters copied into them."""
        for p, (param, _) in zip(active, arrays):
            if not p.is_contiguous():
                p.detach().copy_(torch.from_numpy(param).view(p.shape))

    def _check_not_aliased(self, checked: list) -> None:
        """Refuse a gradient sharing memory with a parameter or a state tensor of any group
        (the step writes those while the kernels read the gradients): checked before any
        write, as `_KernelOptimizer._checked_grad` does."""
        spans = []
        for index, (active, arrays) in enumerate(checked):
            check.disjoint(
                f"{type(self).__name__}: param_groups[{index}]",
                [(check.byte_span(_memory(p)), f"params[{i}]") for i, p in enumerate(active)]
                + [
                    (check.byte_span(_memory(value)), f"state[{key!r}] of params[{i}]")
                    for i, p in enumerate(active)
                    for key, value in self.state.get(p, {}).items()
                    if isinstance(value, torch.Tensor) and value.dim() > 0
                ],
            )
        for group, (active, arrays) in zip(self.param_groups, checked):
            for p, (param, _) in zip(active, arrays):
                spans.append((check.byte_span(param), "param"))
                if not p.is_contiguous():  # (stepped as a copy, written back)
                    spans.append((check.byte_span(_memory(p)), "param"))
                spans += [
                    (check.byte_span(_memory(value)), "state")
                    for value in self.state.get(p, {}).values()
                    if isinstance(value, torch.Tensor)
                    and value.device.type == "cpu"
                    and value.layout is torch.strided
                ]
        owned = OwnedMemory(spans)
        for index, (active, arrays) in enumerate(checked):
            for _, grad in arrays:
                if owned.overlapping(*check.byte_span(grad)) is not None:
                    raise ValueError(
                        f"{type(self).__name__}: param_groups[{index}]: a gradient shares "
                        "memory with a parameter or a state tensor that the step writes"
                    )

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        core = rules.KERNELS[self.rule.rule]
        checked, arguments = [], []
        for index, group in enumerate(self.param_groups):  # every check first
            where = f"{type(self).__name__}: param_groups[{index}]"
            arguments.append(_in_group(where, partial(self._checked_arguments, group)))
            active = [p for p in group["params"] if p.grad is not None]
            checked.append((active, [self._checked(index, p) for p in active]))
            for p in active:
                self._check_state(index, p)
        self._check_not_aliased(checked)
        scale = self._clip(self._gradient_views(), in_kernel=True)
        if scale is None:  # skip_if_nonfinite: nothing written
            return loss
        for group, (active, arrays), group_arguments in zip(self.param_groups, checked, arguments):
            if not active:
                continue
            states = []
            for p in active:
                if not self.state[p]:
                    self.state[p].update(self._new_state(group, p))
                states.append(self.state[p])
            steps = self._steps(group, states)
            buffers = [self._buffers(group, p, state) for p, state in zip(active, states)]
            core(
                [param for param, _ in arrays],
                [grad for _, grad in arrays],
                *[list(column) for column in zip(*buffers)],
                steps,
                **group_arguments,
                grad_scale=scale,
            )
            self._write_back(active, arrays)
        return loss


class _LambPytorchOptimizer(torch.optim.Optimizer):
    """pytorch-optimizer 4.1.0's `Lamb` constructor (names, defaults), for gdfast.torch.LAMB:
    the options gdfast does not offer (rectify, adam, fixed_decay, degenerated_to_sgd,
    adam_debias, adanorm) are refused.  pre_norm=True clips the gradients by their global
    norm as pytorch-optimizer does, c = min(1, max_grad_norm / (‖g‖ + eps)), which is
    gdfast.torch's max_grad_norm clipping (its 1e-6 for eps: eps other than 1e-6 is
    refused with pre_norm; max_grad_norm=0: no clipping); without pre_norm, max_grad_norm
    does nothing (pytorch-optimizer's)."""

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        rectify: bool = False,
        degenerated_to_sgd: bool = False,
        n_sma_threshold: int = 5,
        grad_averaging: bool = True,
        max_grad_norm: float = 1.0,
        adam: bool = False,
        pre_norm: bool = False,
        eps: float = 1e-6,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        **kwargs: Any,
    ):
        for name, value in (
            ("fixed_decay", fixed_decay),
            ("rectify", rectify),
            ("degenerated_to_sgd", degenerated_to_sgd),
            ("adam", adam),
            ("adam_debias", kwargs.pop("adam_debias", False)),
            ("adanorm", kwargs.pop("adanorm", False)),
        ):
            if check.flag(name, value):
                raise ValueError(
                    f"{name}=True: pytorch-optimizer's option is not offered by gdfast.torch.LAMB "
                    "(docs/spec.md section 1.3); use pytorch_optimizer.Lamb"
                )
        if kwargs:
            raise TypeError(f"LAMB: unexpected argument(s) {', '.join(kwargs)}")
        defaults = {
            "lr": check.learning_rate("lr", lr),
            "betas": check.betas("betas", tuple(betas)),
            "weight_decay": check.nonnegative("weight_decay", weight_decay),
            "weight_decouple": check.flag("weight_decouple", weight_decouple),
            "grad_averaging": check.flag("grad_averaging", grad_averaging),
            "eps": check.positive("eps", eps),
            "maximize": check.flag("maximize", maximize),
            "foreach": foreach,
        }
        max_grad_norm = check.nonnegative("max_grad_norm", max_grad_norm)
        self.pre_norm = check.flag("pre_norm", pre_norm)
        if self.pre_norm and defaults["eps"] != 1e-6:
            raise ValueError(
                "eps: with pre_norm=True, gdfast.torch.LAMB clips by max_grad_norm / (‖g‖ + "
                "1e-6) (clip_grad_norm_'s); pytorch-optimizer adds eps there: give eps=1e-6"
            )
        #: pre_norm's threshold, the clipping of gdfast.torch (None: none)
        self._pre_norm_clip = max_grad_norm if self.pre_norm and max_grad_norm != 0 else None
        super().__init__(params, defaults)


class LAMB(_PerTensorRule, _LambPytorchOptimizer):
    """pytorch-optimizer's `Lamb` (4.1.0) on gdfast's kernels: gdfast.LAMB with
    convention="torch" (uncorrected moments, step size η / (1 − β1^t), trust ratio
    min(‖θ‖, 10) / (‖u‖ + ε), decoupled decay with weight_decouple).  The same names,
    defaults and state: group["step"] (counted per group, as pytorch-optimizer), and per
    parameter exp_avg, exp_avg_sq.  pre_norm=True with max_grad_norm is the other classes'
    max_grad_norm clipping (`max_grad_norm` then holds the threshold, else None);
    error_if_nonfinite and skip_if_nonfinite (keyword-only) as theirs."""

    rule = rules.LAMB

    def __init__(
        self,
        *args: Any,
        error_if_nonfinite: bool = False,
        skip_if_nonfinite: bool = False,
        **kwargs: Any,
    ):
        # max_grad_norm is pytorch-optimizer's own argument here (with pre_norm)
        _LambPytorchOptimizer.__init__(self, *args, **kwargs)
        self._set_clipping(self._pre_norm_clip, error_if_nonfinite, skip_if_nonfinite)

    def _kernel_arguments(self, rule: Any, group: dict[str, Any]) -> dict[str, Any]:
        arguments = _KernelOptimizer._kernel_arguments(self, rule, group)
        arguments["decoupled_weight_decay"] = group["weight_decouple"]
        _count("step", group.get("step", 0))  # (the group's count, `_steps`)
        return arguments

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        return {name: param.new_zeros(param.shape) for name in ("exp_avg", "exp_avg_sq")}

    def _state_shapes(self, param: torch.Tensor) -> dict[str, tuple[int, ...]]:
        return {"exp_avg": tuple(param.shape), "exp_avg_sq": tuple(param.shape)}

    def _steps(self, group: dict[str, Any], states: list[dict]) -> np.ndarray:
        group["step"] = group.get("step", 0) + 1
        return np.full(len(states), group["step"], dtype=np.int64)

    def _buffers(self, group: dict[str, Any], param: torch.Tensor, state: dict) -> list:
        return [state["exp_avg"].numpy(), state["exp_avg_sq"].numpy()]


class Adafactor(_PerTensorRule, torch.optim.Adafactor):
    """torch.optim.Adafactor (2.13) on gdfast's kernels (gdfast.Adafactor): factored second
    moments for parameters of two or more dimensions, relative step, update clipping by d.
    torch's names, defaults and state: step (a float tensor), row_var and col_var
    (factored) or variance.  Keyword-only, as the other gdfast.torch classes:
    max_grad_norm, error_if_nonfinite, skip_if_nonfinite (gradient clipping by the global
    norm in the step)."""

    rule = rules.Adafactor

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state: dict[str, Any] = {"step": torch.tensor(0.0)}
        if param.dim() > 1:
            state["row_var"] = param.new_zeros(param.shape[:-1] + (1,))
            state["col_var"] = param.new_zeros(param.shape[:-2] + (1, param.shape[-1]))
        else:
            state["variance"] = param.new_zeros(param.shape)
        return state

    def _state_shapes(self, param: torch.Tensor) -> dict[str, tuple[int, ...]]:
        shape = tuple(param.shape)
        if param.dim() > 1:
            return {"row_var": shape[:-1] + (1,), "col_var": shape[:-2] + (1, shape[-1])}
        return {"variance": shape}

    def _check_state(self, index: int, param: torch.Tensor) -> None:
        super()._check_state(index, param)
        step = self.state.get(param, {}).get("step")
        if step is not None and not (isinstance(step, torch.Tensor) and step.numel() == 1):
            raise ValueError(
                f"Adafactor: param_groups[{index}]: state['step'] must be a one-element "
                f"tensor (torch.optim.Adafactor's), got {type(step).__name__}"
            )

    def _steps(self, group: dict[str, Any], states: list[dict]) -> np.ndarray:
        for state in states:
            state["step"] += 1
        return np.array([int(state["step"].item()) for state in states], dtype=np.int64)

    def _buffers(self, group: dict[str, Any], param: torch.Tensor, state: dict) -> list:
        empty = np.zeros(0, dtype=param.detach().numpy().dtype)
        return [
            state[name].numpy() if name in state else empty
            for name in ("row_var", "col_var", "variance")
        ]


# ---- ScheduleFreeAdamW, ScheduleFreeSGD and Muon (issue 15) ----

__all__ += ["ScheduleFreeAdamW", "ScheduleFreeSGD"]


class _ScheduleFreePackage(torch.optim.Optimizer):
    """The schedulefree package's (1.4.1) constructors, arguments, defaults, checks and
    param-group keys, without importing the package."""

    def __init__(self, params: Any, defaults: dict[str, Any]):
        defaults = {
            **defaults,
            "k": 0,
            "train_mode": False,
            "weight_sum": 0.0,
            "lr_max": -1.0,
            "scheduled_lr": 0.0,
        }
        super().__init__(params, defaults)


class _AdamWScheduleFree(_ScheduleFreePackage):
    def __init__(
        self,
        params: Any,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: Optional[bool] = True,
    ):
        options = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        schedule = {"warmup_steps": warmup_steps, "r": r, "weight_lr_power": weight_lr_power}
        super().__init__(params, {**options, **schedule, "foreach": foreach})


class _SGDScheduleFree(_ScheduleFreePackage):
    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2,
        foreach: Optional[bool] = True,
    ):
        options = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        schedule = {"warmup_steps": warmup_steps, "r": r, "weight_lr_power": weight_lr_power}
        super().__init__(params, {**options, **schedule, "foreach": foreach})


class _ScheduleFree(_AbsentKeys):
    """The schedulefree package's optimizers on gdfast's kernels (gdfast.ScheduleFreeAdamW,
    gdfast.ScheduleFreeSGD): the package's constructor, param-group keys (k, train_mode,
    weight_sum, lr_max, scheduled_lr) and state (z, and exp_avg_sq for AdamW).  As the
    package: it starts in eval mode; call `train()` before stepping (a step in eval mode
    raises) and `eval()` before evaluating or saving the model.  The count k, weight_sum
    and lr_max are per group, as the package's: a group with no gradient at all does not
    advance them (the package's step advances them anyway)."""

    _keeps_step = False
    _has_torch_step = False
    _absent = {"maximize": False}

    def _beta1(self, group: dict[str, Any]) -> float:
        raise NotImplementedError

    def _check_options(self, group: dict[str, Any]) -> None:
        group["warmup_steps"] = _count("warmup_steps", group["warmup_steps"])
        for name in ("r", "weight_lr_power"):
            group[name] = _at_least(name, group[name])
        group["train_mode"] = check.flag("train_mode", group["train_mode"])
        group["k"] = _count("k", group["k"])
        for name in ("weight_sum", "lr_max"):
            group[name] = _real(name, group[name])

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = {"z": torch.clone(param.detach(), memory_format=torch.preserve_format)}
        for name in self._state_names(group)[1:]:
            state[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def _kernel_arguments(self, rule: type[Rule], group: dict[str, Any]) -> dict[str, Any]:
        arguments = super()._kernel_arguments(rule, group)
        if "lr_bias_correction" in arguments:  # the package's AdamWScheduleFree
            arguments["lr_bias_correction"] = False
        return arguments

    def _run(self, group, params, grads, buffers, steps, states, scaling) -> None:
        """The kernel with the group's count and (W, γ_max) given to every tensor, then
        written back (each tensor's copy ends equal: the same t, the same start)."""
        t = int(group["k"]) + 1
        pairs = [np.array([group["weight_sum"], group["lr_max"]]) for _ in params]
        modes = [np.ones(()) for _ in params]
        rule = self._rule(group)
        rules.KERNELS[rule.rule](
            params,
            grads,
            buffers[0],
            pairs,
            modes,
            *buffers[1:],
            np.full(len(params), t, dtype=np.int64),
            **self._kernel_arguments(rule, group),
            **scaling,
        )
        group["weight_sum"], group["lr_max"] = float(pairs[0][0]), float(pairs[0][1])
        warm = t / group["warmup_steps"] if t <= group["warmup_steps"] else 1.0
        group["scheduled_lr"] = group["lr"] * warm
        group["k"] = t

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        for index in range(len(self.param_groups)):  # (train_mode read checked)
            self._check_group_now(index)
        if not self.param_groups[0]["train_mode"]:
            raise ValueError(
                f"{type(self).__name__}.step: the optimizer is in eval mode (the parameters "
                "hold the average x); call optimizer.train() before stepping, "
                "optimizer.eval() before evaluating"
            )
        return super().step(closure)

    def _switch(self, to_training: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == to_training:
                continue
            beta1 = self._beta1(group)
            params = [p for p in group["params"] if "z" in self.state.get(p, {})]
            arrays = [_memory(p) for p in params]
            z = [_memory(self.state[p]["z"]) for p in params]
            (to_train if to_training else to_eval)(arrays, z, beta1)
            group["train_mode"] = to_training

    def eval(self) -> None:
        """The parameters to x = lerp(y, z, 1 − 1/β1), the model to evaluate."""
        self._switch(False)

    def train(self) -> None:
        """The parameters to y = lerp(x, z, 1 − β1), where the gradient is taken."""
        self._switch(True)


class ScheduleFreeAdamW(_ScheduleFree, _AdamWScheduleFree):
    """schedulefree's `AdamWScheduleFree` (1.4.1) on gdfast's kernel (gdfast.ScheduleFreeAdamW
    with lr_bias_correction=False, the package's form: γ_t = η min(1, t/T_w),
    u = g / (√(v / (1 − β2^t)) + ε) + λ y).  State: z, exp_avg_sq."""

    torch_class = _AdamWScheduleFree
    rule = rules.ScheduleFreeAdamW

    def _beta1(self, group: dict[str, Any]) -> float:
        return float(group["betas"][0])

    def _check_options(self, group: dict[str, Any]) -> None:
        super()._check_options(group)
        group["betas"] = _betas(group["betas"])
        if not group["betas"][0] > 0:
            raise ValueError("betas[0]: expected a number in (0, 1) (eval() divides by it)")
        group["eps"] = _at_least("eps", group["eps"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("z", "exp_avg_sq")


class ScheduleFreeSGD(_ScheduleFree, _SGDScheduleFree):
    """schedulefree's `SGDScheduleFree` (1.4.1) on gdfast's kernel (gdfast.ScheduleFreeSGD).
    State: z."""

    torch_class = _SGDScheduleFree
    rule = rules.ScheduleFreeSGD

    def _beta1(self, group: dict[str, Any]) -> float:
        return float(group["momentum"])

    def _check_options(self, group: dict[str, Any]) -> None:
        super()._check_options(group)
        momentum = _real("momentum", group["momentum"])
        if not 0 < momentum < 1:
            raise ValueError(f"momentum: expected a number in (0, 1), got {momentum}")
        group["momentum"] = momentum

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("z",)


class StepInBackward:
    """The optimizer's step run inside backward, one parameter at a time, each gradient
    freed as soon as its parameter is stepped (see `step_in_backward`).

    Attributes: `optimizer` (schedulers, state_dict and param groups work on it as
    usual), `grad_norm` (the global gradient norm of the last backward), `exact_steps`
    (how many backwards stepped with the exact norm: the first, and any after a
    non-finite norm)."""

    def __init__(self, optimizer: _KernelOptimizer, max_grad_norm: Optional[float]):
        if not isinstance(optimizer, _KernelOptimizer):
            raise TypeError(
                "optimizer_factory: expected it to return a gdfast.torch "
                f"optimizer, got {type(optimizer).__name__}"
            )
        if max_grad_norm is not None:
            max_grad_norm = check.positive("max_grad_norm", max_grad_norm)
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self.grad_norm: Optional[float] = None
        self.exact_steps = 0
        #: each parameter's (group, position) and its rank in parameter order
        self._where = {
            param: (index, position)
            for index, group in enumerate(optimizer.param_groups)
            for position, param in enumerate(group["params"])
        }
        self._order = {param: k for k, param in enumerate(self._where)}
        self._scale: Optional[float] = None  # from the previous backward's norm
        self._sums: dict[int, float] = {}
        self._in_backward = False
        self._handles = [
            param.register_post_accumulate_grad_hook(self._on_gradient)
            for param in self._order
            if param.requires_grad
        ]

    def remove(self) -> None:
        """Take the hooks off: backward then only accumulates gradients."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _exact(self) -> bool:
        return self.max_grad_norm is not None and self._scale is None

    @torch.no_grad()
    def _on_gradient(self, param: torch.Tensor) -> None:
        if not self._in_backward:
            self._in_backward = True
            self._sums = {}
            torch.autograd.Variable._execution_engine.queue_callback(self._end_of_backward)
        if self._exact():
            return  # kept until the end of backward: stepped with the exact norm
        if self.max_grad_norm is not None:
            self._sums[self._order[param]] = _sums_of_squares([param.grad])[0]
        self.optimizer._step_parameter(
            *self._where[param], 1.0 if self._scale is None else self._scale
        )
        param.grad = None

    @torch.no_grad()
    def _end_of_backward(self) -> None:
        self._in_backward = False
        # the flag torch's lr schedulers read to check that a step came before theirs
        # (set by the optimizer.step they wrap, which step_in_backward does not call)
        self.optimizer._opt_called = True
        if self.max_grad_norm is None:
            return
        if self._exact():
            optimizer = self.optimizer
            saved = (optimizer.max_grad_norm, optimizer.skip_if_nonfinite)
            optimizer.max_grad_norm, optimizer.skip_if_nonfinite = self.max_grad_norm, True
            try:
                optimizer.step()
            finally:
                optimizer.max_grad_norm, optimizer.skip_if_nonfinite = saved
            optimizer.zero_grad(set_to_none=True)
            norm = optimizer.grad_norm if optimizer.grad_norm is not None else 0.0
            self.exact_steps += 1
        else:  # the norm of the gradients just stepped, added in parameter order
            norm = math.sqrt(sum(self._sums[k] for k in sorted(self._sums)))
        self.grad_norm = norm
        self._scale = min(1.0, self.max_grad_norm / (norm + 1e-6)) if math.isfinite(norm) else None


def step_in_backward(
    params: Any,
    optimizer_factory: Callable[[list], _KernelOptimizer],
    *,
    max_grad_norm: Optional[float] = None,
) -> StepInBackward:
    """Run the optimizer's step inside backward: each parameter is stepped by a
    `register_post_accumulate_grad_hook` as soon as its gradient is complete, and its
    gradient freed at once, so a backward never holds more than the gradients still being
    produced (torch's "fuse the optimizer step into backward" recipe, with one optimizer).

        run = gdfast.torch.step_in_backward(model, lambda ps: gdfast.torch.AdamW(ps, lr=1e-3),
                                            max_grad_norm=1.0)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(run.optimizer, T_max=1000)
        for x, y in batches:
            loss_fn(model(x), y).backward()     # the steps happen here
            scheduler.step()

    Do not call `run.optimizer.step()` or `zero_grad()` yourself; gradient accumulation
    over several backwards is not possible (each backward steps).

    Clipping by global norm (`max_grad_norm`): a parameter is stepped before the gradients
    after it exist, so the norm of *this* backward is not known yet.  Each backward's
    gradients are scaled with the coefficient of the previous backward's norm,
    c = min(1, max_grad_norm / (‖g_prev‖ + 1e-6)) (a one-step lag); the first backward, and
    any after a non-finite norm, keeps its gradients and steps at its end with its own
    exact norm (skipping the step if that norm is not finite).  `run.grad_norm` is the
    last norm.  docs/torch.md gives the measured effect of the lag on a training loss.

    params: a torch.nn.Module or an iterable of parameters / param groups, handed to
    `optimizer_factory` (which returns a gdfast.torch optimizer over them).
    """
    if isinstance(params, torch.nn.Module):
        params = params.parameters()
    return StepInBackward(optimizer_factory(list(params)), max_grad_norm)


# ---- Muon (issue 15; the muon engineer) ----

__all__ += ["Muon"]


class Muon(_PerTensorRule, torch.optim.Muon):
    """torch.optim.Muon (2.13) on gdfast's kernels (gdfast.Muon): the momentum and the
    update in C, the Newton–Schulz iteration with NumPy matrix products in the parameter's
    dtype (torch's runs in bfloat16: its steps differ by a few percent, docs/spec.md 1.3).
    torch's constructor, names, defaults and checks (2-D parameters only), param-group keys
    and state (momentum_buffer; no step, as torch keeps none).  adjust_lr_fn None or
    "original" is gdfast.Muon's match_rms_adamw=False, "match_rms_adamw" True."""

    rule = rules.Muon

    def _kernel_arguments(self, rule: Any, group: dict[str, Any]) -> dict[str, Any]:
        arguments = _KernelOptimizer._kernel_arguments(self, rule, group)
        if group["adjust_lr_fn"] not in (None, "original", "match_rms_adamw"):
            raise ValueError(
                f"adjust_lr_fn: expected None, 'original' or 'match_rms_adamw', got "
                f"{group['adjust_lr_fn']!r}"
            )
        arguments["match_rms_adamw"] = group["adjust_lr_fn"] == "match_rms_adamw"
        return arguments

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        return {"momentum_buffer": param.new_zeros(param.shape)}

    def _state_shapes(self, param: torch.Tensor) -> dict[str, tuple[int, ...]]:
        return {"momentum_buffer": tuple(param.shape)}

    def _checked(self, index: int, param: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if param.dim() != 2:  # (a group added after construction: torch refuses it in step)
            raise ValueError(
                f"Muon: param_groups[{index}]: Muon only supports 2D parameters, got a "
                f"{param.dim()}-D param of shape {tuple(param.shape)} (as torch.optim.Muon)"
            )
        return super()._checked(index, param)

    def _steps(self, group: dict[str, Any], states: list[dict]) -> np.ndarray:
        return np.zeros(len(states), dtype=np.int64)  # (Muon's update does not use t)

    def _buffers(self, group: dict[str, Any], param: torch.Tensor, state: dict) -> list:
        return [state["momentum_buffer"].numpy()]  # (checked by _check_state before the step)
