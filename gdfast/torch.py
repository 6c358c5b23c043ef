"""torch.optim optimizers that run on gdfast's kernels: drop-in, same results.

    import gdfast.torch
    opt = gdfast.torch.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss.backward(); opt.step(); opt.zero_grad()

Each class subclasses `torch.optim.Optimizer` and takes torch.optim's name, arguments and
defaults: SGD, Adam, AdamW, Adagrad, Adadelta, RMSprop, Adamax, NAdam.  Param groups
carry their own options; hyper-parameters are read from the group at every step, so
`torch.optim.lr_scheduler` works unchanged.  The state is torch's (`step` a 0-d float
tensor, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `sum`, `square_avg`, `acc_delta`,
`grad_avg`, `momentum_buffer`, `exp_inf`, `mu_product`), created when torch creates it,
so a `state_dict()` saved by torch.optim.Adam loads into gdfast.torch.Adam and back.

How a step runs: the parameters, gradients and state tensors of a param group are handed
to one C call (one GIL release, one parallel region) that updates them in place through
their memory (`Tensor.numpy()` views: no copies).  The formulas are torch's, selected with
gdfast's named options (gdfast._optimizer); results agree with torch.optim's to rounding
(the tests hold them to 1e-10 relative in float64, 1e-5 in float32, over 100 steps).

What the kernels serve, and what they refuse: dense, C-contiguous CPU tensors of float32
or float64.  A CUDA, sparse, complex, float16/bfloat16 or non-contiguous parameter, or a
gradient of another kind than its parameter, raises TypeError/ValueError naming the
parameter (param group and index) before anything is written; use torch.optim for
those.  A non-contiguous gradient of the right kind is copied.  torch's `foreach`,
`fused`, `capturable` and `differentiable` arguments are not taken (gdfast always runs
its own fused multi-tensor kernel on the CPU, and does not support autograd through
the step).  The step counters of a param group are views of one tensor
(`state[p]["step"]` is a 0-d view), so that one operation counts a whole step.
Replacing a state tensor by assignment is not seen by a running optimizer; use
`load_state_dict`.  Gradient tensors kept from step to step (zero_grad(set_to_none=False))
are checked once and recognized by identity and address; resizing one in place (`resize_`)
between steps is not supported.

Importing this module imports torch; `import gdfast` never does.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable, ClassVar, Iterable, Optional

import numpy as np
import torch
from torch.optim.optimizer import _get_scalar_dtype

from . import _kernels
from . import _validation as check
from ._kernels import FAST_ALL, OwnedMemory, gradients_fast_ok

__all__ = ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "Adamax", "NAdam"]

_DTYPES = (torch.float32, torch.float64)
_data_ptr = torch.Tensor.data_ptr


def _real(name: str, value: Any) -> float:
    """A Python number or a one-element tensor (torch allows a tensor lr) as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    return check.real_number(name, value)


def _at_least(name: str, value: Any, low: float = 0.0) -> float:
    number = _real(name, value)
    if not (low <= number < math.inf):
        raise ValueError(f"{name}: expected a finite number >= {low:g}, got {value!r}")
    return number


def _unit(name: str, value: Any, closed: bool = True) -> float:
    number = _real(name, value)
    if not (0.0 <= number <= 1.0) or (not closed and number == 1.0):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
    return number


def _betas(value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"betas: expected a pair (beta1, beta2), got {value!r}")
    return (_unit("betas[0]", value[0], closed=False), _unit("betas[1]", value[1], closed=False))


class _Plan:
    """A param group described to the kernels: numpy views of every parameter and state
    buffer (None where a parameter has no state yet), the group's step counters, and the
    memory the step writes.  Valid while the group's tensors stay the same objects."""

    def __init__(self, params: list[torch.Tensor], names: tuple[str, ...],
                 states: list[Optional[dict]], structure: tuple, keeps_step: bool):
        self.structure = structure
        self.pointers = [p.data_ptr() for p in params]
        self.param_np = tuple(p.detach().numpy() for p in params)
        self.buffers = [[None if s is None else s[name].numpy() for s in states]
                        for name in names]
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
        else:   # SGD: torch keeps no count; only "first step or not" matters
            steps = [0.0 if s is None else 1.0 for s in states]
        self.step_tensor = torch.tensor(steps, dtype=_get_scalar_dtype())
        self.step_np = self.step_tensor.numpy()
        for index, s in enumerate(states):
            if keeps_step and s is not None:
                s["step"] = self.step_tensor[index]
        spans = [(check.byte_span(a), "param") for a in self.param_np]
        spans += [(check.byte_span(b), "state") for buffers in self.buffers
                  for b in buffers if b is not None]
        self.owned = OwnedMemory(spans)

    def fits(self, params: list[torch.Tensor], structure: tuple) -> bool:
        return structure == self.structure and [p.data_ptr() for p in params] == self.pointers


class _KernelOptimizer(torch.optim.Optimizer):
    """Base class: checks, lazy state in torch's format, the step through the kernels."""

    #: torch.optim's class of the same name (for messages and documentation).
    torch_name: ClassVar[str] = ""
    #: whether torch keeps state["step"] for this rule (all but SGD)
    _keeps_step: ClassVar[bool] = True

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self._plans: dict[int, _Plan] = {}
        super().__init__(params, defaults)

    # ------------------------------------------------------------- per rule
    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalize) a param group's hyper-parameters: those every rule
        has here, then the rule's own (`_check_options`)."""
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
        state = {"step": torch.tensor(0.0, dtype=_get_scalar_dtype())}
        for name in self._state_names(group):
            state[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def _run(self, group: dict[str, Any], params: list[np.ndarray], grads: list[np.ndarray],
             buffers: list[list[np.ndarray]], steps: np.ndarray, states: list[dict]) -> None:
        """One kernel call on the active tensors of `group`."""
        raise NotImplementedError

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
        except Exception:
            self.param_groups.pop()
            raise
        self._plans.clear()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            self._check_group(group)
        self._plans.clear()

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One update of every parameter that has a gradient (torch.optim's contract)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            self._step_group(index, group)
        return loss

    # ---------------------------------------------------------------- checks
    def _where(self, group_index: int, position: int, tensor: torch.Tensor) -> str:
        return (f"param group {group_index}, params[{position}] (shape "
                f"{tuple(tensor.shape)}, {tensor.dtype}, {tensor.device})")

    def _check_param(self, group_index: int, position: int, param: torch.Tensor) -> None:
        where = f"{type(self).__name__}: {self._where(group_index, position, param)}"
        if param.device.type != "cpu":
            raise TypeError(f"{where}: only CPU tensors are supported; use "
                            f"torch.optim.{self.torch_name} for {param.device.type} tensors")
        if param.layout is not torch.strided:
            raise TypeError(f"{where}: only dense (strided) tensors are supported")
        if param.dtype not in _DTYPES:
            raise TypeError(f"{where}: dtype {param.dtype} is not supported; expected "
                            "torch.float32 or torch.float64")
        if not param.is_contiguous():
            raise ValueError(f"{where}: expected a contiguous tensor (the kernels update it "
                             "in place)")

    def _checked_grad(self, group_index: int, position: int, param: torch.Tensor,
                      grad: torch.Tensor, owned: OwnedMemory) -> np.ndarray:
        where = f"{type(self).__name__}: gradient of {self._where(group_index, position, param)}"
        if grad.is_sparse or grad.layout is not torch.strided:
            raise TypeError(f"{where}: sparse gradients are not supported; use "
                            f"torch.optim.{self.torch_name}")
        if grad.device != param.device:
            raise TypeError(f"{where}: the gradient is on {grad.device}")
        if grad.dtype != param.dtype:
            raise TypeError(f"{where}: gradient dtype {grad.dtype} differs from the "
                            "parameter's")
        if grad.shape != param.shape:
            raise ValueError(f"{where}: gradient shape {tuple(grad.shape)} differs from the "
                             "parameter's")
        array = grad.detach().contiguous().numpy()
        start, stop = check.byte_span(array)
        if owned.overlapping(start, stop) is not None:
            raise ValueError(f"{where}: the gradient shares memory with a parameter or a state "
                             "tensor that the step writes")
        return array

    # ------------------------------------------------------------------ step
    def _plan(self, index: int, group: dict[str, Any]) -> _Plan:
        params = group["params"]
        structure = self._structure(group)
        plan = self._plans.get(index)
        if plan is not None and plan.fits(params, structure):
            return plan
        names = self._state_names(group)
        states: list[Optional[dict]] = []
        for position, param in enumerate(params):
            self._check_param(index, position, param)
            state = self.state.get(param)
            if not state:
                # nothing to create (SGD without momentum) or not stepped yet
                states.append({} if not names and not self._keeps_step else None)
                continue
            for name in names:
                buffer = state.get(name)
                where = f"{type(self).__name__}: state[{name!r}] of {self._where(index, position, param)}"
                if not isinstance(buffer, torch.Tensor):
                    raise ValueError(f"{where}: missing; the group's options "
                                     f"({', '.join(map(str, structure))}) changed after the "
                                     "state was created")
                if (buffer.dtype != param.dtype or buffer.shape != param.shape
                        or buffer.device != param.device or not buffer.is_contiguous()):
                    raise ValueError(f"{where}: expected a contiguous tensor of the "
                                     f"parameter's shape, dtype and device, got "
                                     f"{tuple(buffer.shape)} {buffer.dtype} {buffer.device}")
            if self._keeps_step and not isinstance(state.get("step"), torch.Tensor):
                raise ValueError(f"{type(self).__name__}: state['step'] of "
                                 f"{self._where(index, position, param)}: expected a tensor")
            states.append(state)
        plan = _Plan(params, names, states, structure, self._keeps_step)
        self._plans[index] = plan
        return plan

    def _step_group(self, index: int, group: dict[str, Any]) -> None:
        params = group["params"]
        grads = [p.grad for p in params]
        plan = self._plan(index, group)
        if plan.complete:
            arrays = None
            if (len(grads) == len(plan.grad_objects)
                    and all(map(operator.is_, grads, plan.grad_objects))
                    and list(map(_data_ptr, grads)) == plan.grad_pointers):
                arrays = plan.grad_arrays          # the same tensors, already checked
            else:
                try:   # (a None gradient fails here too: no `None in grads`, a Tensor ==)
                    arrays = [grad.numpy() for grad in grads]
                except (AttributeError, RuntimeError, TypeError):   # None, CUDA, sparse, ..
                    arrays = None
                if arrays is not None and gradients_fast_ok(arrays, plan.param_np,
                                                            plan.owned) != FAST_ALL:
                    arrays = None
                if arrays is not None:
                    plan.grad_objects, plan.grad_arrays = grads, arrays
                    plan.grad_pointers = list(map(_data_ptr, grads))
            if arrays is not None:
                plan.step_np += 1
                self._run(group, list(plan.param_np), arrays, plan.buffers,
                          plan.step_np.astype(np.int64), [self.state[p] for p in params]
                          if self._needs_states else [])
                return
        active = [i for i, grad in enumerate(grads) if grad is not None]
        if not active:
            return
        checked = [self._checked_grad(index, i, params[i], grads[i], plan.owned)
                   for i in active]   # every check before any write
        fresh = [i for i in active if not plan.has_state[i]]
        if fresh:   # a first gradient: torch's lazy state
            for i in fresh:
                self.state[params[i]] = self._new_state(group, params[i])
            self._plans.pop(index, None)
            plan = self._plan(index, group)
            plan.step_np[fresh] = 0   # (SGD's plan counts a stateful parameter as stepped)
        plan.step_np[active] += 1
        self._run(group, [plan.param_np[i] for i in active], checked,
                  [[buffers[i] for i in active] for buffers in plan.buffers],
                  plan.step_np[active].astype(np.int64),
                  [self.state[params[i]] for i in active] if self._needs_states else [])

    #: whether `_run` needs the state dicts themselves (NAdam's mu_product)
    _needs_states: ClassVar[bool] = False


def _transform(group: dict[str, Any], decoupled: bool = False) -> dict[str, Any]:
    return {"weight_decay": group["weight_decay"], "decoupled_weight_decay": decoupled,
            "maximize": group["maximize"]}


class SGD(_KernelOptimizer):
    """torch.optim.SGD on gdfast's kernels (SPEC.md 1.2's torch convention).

    g ← −g if maximize ; g ← g + λ θ (weight_decay)
    momentum μ = 0:  θ ← θ − η g
    momentum μ > 0:  b ← μ b + (1 − d) g (b = g at a parameter's first step)
                     θ ← θ − η b, or with nesterov θ ← θ − η (g + μ b)
    = gdfast.SGD / Momentum / Nesterov with lr_in_buffer=False.  State: momentum_buffer
    (only when μ > 0, as torch keeps it).
    """
    torch_name = "SGD"
    _keeps_step = False

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["momentum"] = _at_least("momentum", group["momentum"])
        group["dampening"] = _unit("dampening", group["dampening"])
        group["nesterov"] = check.flag("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov: Nesterov momentum requires a momentum and zero "
                             "dampening")

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        # no step: torch keeps none for SGD; "first step" (b = g) is "no buffer yet"
        return {name: torch.zeros_like(param, memory_format=torch.preserve_format)
                for name in self._state_names(group)}

    def _run(self, group, params, grads, buffers, steps, states) -> None:
        lr = float(group["lr"])
        if group["momentum"] == 0:
            _kernels.sgd(params, grads, steps, lr=lr, **_transform(group))
            return
        rule = _kernels.nesterov if group["nesterov"] else _kernels.momentum
        rule(params, grads, buffers[0], steps, lr=lr, momentum=group["momentum"],
             dampening=group["dampening"], lr_in_buffer=False, **_transform(group))


class Adam(_KernelOptimizer):
    """torch.optim.Adam on gdfast's kernels.

    g ← −g if maximize ; L2: g ← g + λ θ, or decoupled (AdamW): θ ← θ (1 − η λ)
    m ← β1 m + (1 − β1) g ; v ← β2 v + (1 − β2) g²
    amsgrad=False: θ ← θ − η m̂ / (√v̂ + ε)                     (gdfast.Adam)
    amsgrad=True:  v_max ← max(v_max, v) ; θ ← θ − η m̂ / (√(v_max/(1 − β2^t)) + ε)
                   (gdfast.AMSGrad with bias_correction=True)
    State: step, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad).
    """
    torch_name = "Adam"
    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay or self._decoupled)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])
        group["eps"] = _at_least("eps", group["eps"])
        group["amsgrad"] = check.flag("amsgrad", group["amsgrad"])
        group["decoupled_weight_decay"] = check.flag("decoupled_weight_decay",
                                                     group.get("decoupled_weight_decay",
                                                               self._decoupled))

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def _run(self, group, params, grads, buffers, steps, states) -> None:
        hyper = dict(lr=float(group["lr"]), betas=group["betas"], eps=group["eps"],
                     **_transform(group, group["decoupled_weight_decay"]))
        if group["amsgrad"]:
            _kernels.amsgrad(params, grads, *buffers, steps, bias_correction=True, **hyper)
        else:
            _kernels.adam(params, grads, *buffers, steps, **hyper)


class AdamW(Adam):
    """torch.optim.AdamW on gdfast's kernels: Adam with decoupled weight decay,
    θ ← θ (1 − η λ) before the Adam step (default λ = 0.01)."""
    torch_name = "AdamW"
    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


class Adagrad(_KernelOptimizer):
    """torch.optim.Adagrad on gdfast's kernels.

    η_t = η / (1 + (t − 1) lr_decay) ; G ← G + g² ; θ ← θ − η_t g / (√G + ε)
    (gdfast.Adagrad with eps_inside_sqrt=False).  State (created at construction, as torch
    does): step, sum (starting at initial_accumulator_value).
    """
    torch_name = "Adagrad"

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param] = self._new_state(group, param)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["lr_decay"] = _at_least("lr_decay", group["lr_decay"])
        group["eps"] = _at_least("eps", group["eps"])
        group["initial_accumulator_value"] = _at_least("initial_accumulator_value",
                                                       group["initial_accumulator_value"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        return {"step": torch.tensor(0.0, dtype=_get_scalar_dtype()),
                "sum": torch.full_like(param, group["initial_accumulator_value"],
                                       memory_format=torch.preserve_format)}

    def _run(self, group, params, grads, buffers, steps, states) -> None:
        _kernels.adagrad(params, grads, buffers[0], steps, lr=float(group["lr"]),
                         eps=group["eps"], lr_decay=group["lr_decay"], eps_inside_sqrt=False,
                         **_transform(group))


class Adadelta(_KernelOptimizer):
    """torch.optim.Adadelta on gdfast's kernels (SPEC.md's Adadelta with the lr multiplier).
    State: step, square_avg, acc_delta."""
    torch_name = "Adadelta"

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["rho"] = _unit("rho", group["rho"])
        group["eps"] = _at_least("eps", group["eps"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("square_avg", "acc_delta")

    def _run(self, group, params, grads, buffers, steps, states) -> None:
        _kernels.adadelta(params, grads, *buffers, steps, lr=float(group["lr"]),
                          rho=group["rho"], eps=group["eps"], **_transform(group))


class RMSprop(_KernelOptimizer):
    """torch.optim.RMSprop on gdfast's kernels (gdfast.RMSprop with rho = alpha,
    eps_inside_sqrt=False, lr_in_buffer=False).  State: step, square_avg, momentum_buffer
    (momentum > 0), grad_avg (centered)."""
    torch_name = "RMSprop"

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["alpha"] = _unit("alpha", group["alpha"])
        group["eps"] = _at_least("eps", group["eps"])
        group["momentum"] = _at_least("momentum", group["momentum"])
        group["centered"] = check.flag("centered", group["centered"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        # the kernel's order: square_avg, grad_avg, momentum_buffer
        return (("square_avg",) + (("grad_avg",) if group["centered"] else ())
                + (("momentum_buffer",) if group["momentum"] > 0 else ()))

    def _run(self, group, params, grads, buffers, steps, states) -> None:
        _kernels.rmsprop(params, grads, *buffers, steps, lr=float(group["lr"]),
                         rho=group["alpha"], eps=group["eps"], centered=group["centered"],
                         momentum=group["momentum"], eps_inside_sqrt=False,
                         lr_in_buffer=False, **_transform(group))


class Adamax(_KernelOptimizer):
    """torch.optim.Adamax on gdfast's kernels: u ← max(β2 u, |g| + ε),
    θ ← θ − (η/(1 − β1^t)) m / u (gdfast.AdaMax with eps_inside_max=True).
    State: step, exp_avg, exp_inf."""
    torch_name = "Adamax"

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])
        group["eps"] = _at_least("eps", group["eps"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_inf")

    def _run(self, group, params, grads, buffers, steps, states) -> None:
        _kernels.adamax(params, grads, *buffers, steps, lr=float(group["lr"]),
                        betas=group["betas"], eps=group["eps"], eps_inside_max=True,
                        **_transform(group))


class NAdam(_KernelOptimizer):
    """torch.optim.NAdam on gdfast's kernels: Dozat's schedule
    μ_t = β1 (1 − ½ 0.96^(t ψ)), ψ = momentum_decay, with the μ product P_t kept per
    parameter (gdfast.Nadam with momentum_schedule=True); L2 or decoupled weight decay.
    State: step, mu_product (a 0-d tensor, torch's scalar dtype), exp_avg, exp_avg_sq."""
    torch_name = "NAdam"
    _needs_states = True

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = _betas(group["betas"])
        group["eps"] = _at_least("eps", group["eps"])
        group["momentum_decay"] = _at_least("momentum_decay", group["momentum_decay"])
        group["decoupled_weight_decay"] = check.flag("decoupled_weight_decay",
                                                     group["decoupled_weight_decay"])

    def _state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _new_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = super()._new_state(group, param)
        state["mu_product"] = torch.ones((), dtype=_get_scalar_dtype())
        return state

    def _run(self, group, params, grads, buffers, steps, states) -> None:
        products = [state["mu_product"].numpy() for state in states]
        _kernels.nadam(params, grads, *buffers, products, steps, lr=float(group["lr"]),
                       betas=group["betas"], eps=group["eps"], momentum_schedule=True,
                       momentum_decay=group["momentum_decay"],
                       **_transform(group, group["decoupled_weight_decay"]))
