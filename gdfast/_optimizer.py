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
every parameter and every state entry exactly as it was.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence, TypeVar, Union

import numpy as np

from . import _validation as check
from ._kernels import FAST_ALL, OwnedMemory, count_step, gradients_fast_ok

ArrayOrArrays = Union[np.ndarray, Sequence[np.ndarray]]
GradOrGrads = Union[np.ndarray, None, Sequence[Union[np.ndarray, None]]]


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
        optimizer._hyper[self.name] = self.validate(self.name, value)


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
    state_names: ClassVar[tuple[str, ...]] = ()
    hyperparameter_names: ClassVar[tuple[str, ...]] = ()
    _core: ClassVar[Callable[..., None]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = tuple(name for name, value in vars(cls).items()
                         if isinstance(value, Hyperparameter))
        if declared:
            cls.hyperparameter_names = declared

    def __init__(self, params: ArrayOrArrays, **hyperparameters: Any):
        self._single = isinstance(params, np.ndarray)
        self.params = self._check_params(params)
        self._hyper: dict[str, Any] = {}
        for name in self.hyperparameter_names:
            setattr(self, name, hyperparameters[name])
        self.state = {name: tuple(np.zeros_like(p) for p in self.params)
                      for name in self.state_names}
        self._steps = np.zeros(len(self.params), dtype=np.int64)
        self._param_list = list(self.params)
        self._state_lists = tuple(list(buffers) for buffers in self.state.values())
        # Memory of every buffer the kernels write, for the aliasing check of gradients.
        self._owned = OwnedMemory((check.byte_span(array), label)
                                  for label, array in self._labelled_buffers())

    # ------------------------------------------------------------------ checks
    def _name(self, what: str, index: int) -> str:
        return what if self._single else f"{what}[{index}]"

    def _check_params(self, params: ArrayOrArrays) -> tuple[np.ndarray, ...]:
        if isinstance(params, np.ndarray):
            arrays = [params]
        elif isinstance(params, (list, tuple)):
            arrays = list(params)
        else:
            raise TypeError("params: expected an ndarray or a list of ndarrays, "
                            f"got {type(params).__name__}")
        for index, array in enumerate(arrays):
            check.parameter(self._name("params", index), array)
        spans = sorted((check.byte_span(a), i) for i, a in enumerate(arrays) if a.nbytes)
        for (previous, first), (current, second) in zip(spans, spans[1:]):
            if check.spans_overlap(previous, current):
                raise ValueError(f"params[{second}]: shares memory with params[{first}]; "
                                 "each parameter must own its memory")
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

    def _check_grads(self, grads: GradOrGrads) -> list[np.ndarray | None]:
        if grads is None or isinstance(grads, np.ndarray):
            grads = [grads]
        elif isinstance(grads, (list, tuple)):
            grads = list(grads)
        else:
            raise TypeError("grads: expected an ndarray, None, or a list of them (one per "
                            f"parameter), got {type(grads).__name__}")
        if len(grads) != len(self.params):
            raise ValueError(f"grads: expected {len(self.params)} gradient(s), one per "
                             f"parameter (None to skip one), got {len(grads)}")
        for index, (grad, param) in enumerate(zip(grads, self.params)):
            if grad is None:
                continue
            name = self._name("grads", index)
            check.float_array(name, grad)
            if grad.dtype != param.dtype:
                raise TypeError(f"{name}: dtype {grad.dtype} does not match the parameter's "
                                f"dtype {param.dtype}")
            if grad.shape != param.shape:
                raise ValueError(f"{name}: shape {grad.shape} does not match the parameter's "
                                 f"shape {param.shape}")
            aliased = self._aliased_buffer(grad)
            if aliased is not None:
                raise ValueError(f"{name}: shares memory with {aliased}, which the step "
                                 "writes; pass a gradient array of its own")
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
        """
        if type(grads) is np.ndarray:
            grads = [grads]
        elif type(grads) is tuple:
            grads = list(grads)
        verdict = type(grads) is list and gradients_fast_ok(grads, self.params, self._owned)
        if not verdict:
            grads = self._check_grads(grads)  # every check, with messages; may copy
        if verdict == FAST_ALL:
            count_step(self._steps)
            type(self)._core(self._param_list, grads, *self._state_lists, self._steps,
                             **self._hyper)
            return
        active = [index for index, grad in enumerate(grads) if grad is not None]
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

    # ------------------------------------------------------------------ access
    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(self._steps.tolist())

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The current hyper-parameters, by name (a copy)."""
        return dict(self._hyper)

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self._hyper.items())
        return f"{type(self).__module__}.{type(self).__name__}({len(self.params)} parameter(s), {settings})"

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue later, as plain data (arrays are copies).

        {"rule": str, "hyperparameters": {name: value}, "steps": [int, ...],
         "state": {state name: [ndarray per parameter]}}.  It loads into the
        same rule of either backend (gdfast or gdfast.reference).
        """
        return {
            "rule": self.rule,
            "hyperparameters": dict(self._hyper),
            "steps": self._steps.tolist(),
            "state": {name: [buffer.copy() for buffer in buffers]
                      for name, buffers in self.state.items()},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a `state_dict()`; checks all of it before changing anything."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict: expected a dict, got {type(state_dict).__name__}")
        expected_keys = {"rule", "hyperparameters", "steps", "state"}
        if set(state_dict) != expected_keys:
            raise ValueError(f"state_dict: expected the keys {sorted(expected_keys)}, "
                             f"got {sorted(state_dict)}")
        if state_dict["rule"] != self.rule:
            raise ValueError(f"state_dict['rule']: this is a {self.rule} optimizer, the state "
                             f"dict is from {state_dict['rule']!r}")
        hyper = state_dict["hyperparameters"]
        if not isinstance(hyper, dict) or set(hyper) != set(self.hyperparameter_names):
            raise ValueError(f"state_dict['hyperparameters']: expected the keys "
                             f"{list(self.hyperparameter_names)}, got "
                             f"{sorted(hyper) if isinstance(hyper, dict) else hyper!r}")
        checked_hyper = {name: getattr(type(self), name).validate(
            f"state_dict['hyperparameters'][{name!r}]", hyper[name])
            for name in self.hyperparameter_names}
        steps = self._check_loaded_steps(state_dict["steps"])
        buffers = self._check_loaded_state(state_dict["state"])
        # everything checked: write
        for name, arrays in buffers.items():
            for target, source in zip(self.state[name], arrays):
                np.copyto(target, source)
        self._steps[:] = steps
        self._hyper.update(checked_hyper)

    def _check_loaded_steps(self, steps: Any) -> list[int]:
        n = len(self.params)
        if not isinstance(steps, (list, tuple, np.ndarray)) or len(steps) != n:
            raise ValueError(f"state_dict['steps']: expected {n} step counts, got {steps!r}")
        counts = []
        for index, count in enumerate(steps):
            if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)):
                raise TypeError(f"state_dict['steps'][{index}]: expected an int, "
                                f"got {type(count).__name__}")
            if count < 0:
                raise ValueError(f"state_dict['steps'][{index}]: expected >= 0, got {count}")
            counts.append(int(count))
        return counts

    def _check_loaded_state(self, state: Any) -> dict[str, list[np.ndarray]]:
        if not isinstance(state, dict) or set(state) != set(self.state_names):
            raise ValueError(f"state_dict['state']: expected the entries "
                             f"{list(self.state_names)}, got "
                             f"{sorted(state) if isinstance(state, dict) else state!r}")
        for name in self.state_names:
            arrays = state[name]
            where = f"state_dict['state'][{name!r}]"
            if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self.params):
                raise ValueError(f"{where}: expected a list of {len(self.params)} arrays")
            for index, (array, param) in enumerate(zip(arrays, self.params)):
                check.float_array(f"{where}[{index}]", array)
                if array.shape != param.shape or array.dtype != param.dtype:
                    raise ValueError(f"{where}[{index}]: expected shape {param.shape} and dtype "
                                     f"{param.dtype} (those of the parameter), got shape "
                                     f"{array.shape} and dtype {array.dtype}")
        return {name: list(state[name]) for name in self.state_names}


OptimizerType = TypeVar("OptimizerType", bound=type)


def bind_backend(rule_class: OptimizerType, core: Callable[..., None],
                 module: str) -> OptimizerType:
    """The class `rule_class` running on the functional core `core`."""
    return type(rule_class.__name__, (rule_class,), {
        "_core": staticmethod(core),
        "__module__": module,
        "__qualname__": rule_class.__name__,
        "__doc__": rule_class.__doc__,
    })


# ---------------------------------------------------------------------------
# The ten rules: equations, hyper-parameters, defaults (the one place they live),
# state entries.  Symbols are those of SPEC.md section 1; t counts from 1 per
# parameter and all operations are element-wise.
# ---------------------------------------------------------------------------

_PARAMS_DOC = """params : ndarray or list of ndarray
        float32 or float64, C-contiguous, writeable, any shape (size 0 allowed);
        updated in place by `step`."""


class SGD(Optimizer):
    __doc__ = f"""Stochastic gradient descent.

    θ ← θ − η g

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    """
    rule = "SGD"
    lr = Hyperparameter(check.learning_rate)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.01):
        super().__init__(params, lr=lr)


class Momentum(Optimizer):
    __doc__ = f"""Gradient descent with (heavy-ball) momentum.

    v ← γ v + η g
    θ ← θ − v

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    momentum : float, default 0.9
        γ (>= 0).

    State: velocity = v.
    """
    rule = "Momentum"
    state_names = ("velocity",)
    lr = Hyperparameter(check.learning_rate)
    momentum = Hyperparameter(check.nonnegative)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(params, lr=lr, momentum=momentum)


class Nesterov(Optimizer):
    __doc__ = f"""Nesterov accelerated gradient, in the form of SPEC.md 1.1.

    The lookahead form v ← γ v + η ∇J(θ − γ v) ; θ ← θ − v needs the gradient
    at θ − γ v.  With φ = θ − γ v the same method needs only the gradient at
    the point held, g = ∇J(φ):

    v ← γ v + η g
    φ ← φ − (γ v + η g)        (v the new velocity)

    The parameters hold φ and `step` takes the gradient at φ, as everywhere
    else.  θ is recovered as φ + γ v.

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    momentum : float, default 0.9
        γ (>= 0).

    State: velocity = v.
    """
    rule = "Nesterov"
    state_names = ("velocity",)
    lr = Hyperparameter(check.learning_rate)
    momentum = Hyperparameter(check.nonnegative)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(params, lr=lr, momentum=momentum)


class Adagrad(Optimizer):
    __doc__ = f"""Adagrad (Duchi, Hazan & Singer, 2011).

    G ← G + g²
    θ ← θ − η g / √(G + ε)

    ε is inside the square root (PyTorch adds it outside: √G + ε).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.01
        η, the learning rate (>= 0).
    eps : float, default 1e-8
        ε (> 0).

    State: sum_sq = G.
    """
    rule = "Adagrad"
    state_names = ("sum_sq",)
    lr = Hyperparameter(check.learning_rate)
    eps = Hyperparameter(check.positive)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.01, eps: float = 1e-8):
        super().__init__(params, lr=lr, eps=eps)


class Adadelta(Optimizer):
    __doc__ = f"""Adadelta (Zeiler, 2012).

    E_g ← ρ E_g + (1 − ρ) g²
    Δ   ← −(√(E_d + ε) / √(E_g + ε)) g
    E_d ← ρ E_d + (1 − ρ) Δ²
    θ   ← θ + η Δ

    The pure method has no learning rate; `lr` is PyTorch's multiplier
    (default 1.0), which scales the step but not the Δ kept in E_d.

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 1.0
        η, the multiplier (>= 0).
    rho : float, default 0.9
        ρ, in [0, 1].
    eps : float, default 1e-6
        ε (> 0).

    State: square_avg = E_g, acc_delta = E_d.
    """
    rule = "Adadelta"
    state_names = ("square_avg", "acc_delta")
    lr = Hyperparameter(check.learning_rate)
    rho = Hyperparameter(check.decay_rate)
    eps = Hyperparameter(check.positive)

    def __init__(self, params: ArrayOrArrays, lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6):
        super().__init__(params, lr=lr, rho=rho, eps=eps)


class RMSprop(Optimizer):
    __doc__ = f"""RMSprop (Hinton, 2012).

    E_g ← ρ E_g + (1 − ρ) g²
    θ   ← θ − η g / √(E_g + ε)

    ε is inside the square root (PyTorch adds it outside, and calls ρ `alpha`
    with default 0.99).

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    rho : float, default 0.9
        ρ, in [0, 1].
    eps : float, default 1e-8
        ε (> 0).

    State: square_avg = E_g.
    """
    rule = "RMSprop"
    state_names = ("square_avg",)
    lr = Hyperparameter(check.learning_rate)
    rho = Hyperparameter(check.decay_rate)
    eps = Hyperparameter(check.positive)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.001, rho: float = 0.9,
                 eps: float = 1e-8):
        super().__init__(params, lr=lr, rho=rho, eps=eps)


class Adam(Optimizer):
    __doc__ = f"""Adam (Kingma & Ba, 2015).

    m ← β1 m + (1 − β1) g
    v ← β2 v + (1 − β2) g²
    m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
    θ ← θ − η m̂ / (√v̂ + ε)

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "Adam"
    state_names = ("exp_avg", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)
    eps = Hyperparameter(check.positive)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps)


class AdaMax(Optimizer):
    __doc__ = f"""AdaMax, Adam with the infinity norm (Kingma & Ba, 2015, section 7).

    m ← β1 m + (1 − β1) g
    u ← max(β2 u, |g|)
    θ ← θ − (η / (1 − β1^t)) m / u

    Where u = 0 (every gradient so far was 0) the step is 0, never NaN.
    (PyTorch's Adamax uses max(β2 u, |g| + ε).)

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.002
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).

    State: exp_avg = m, exp_inf = u; t is `steps`, counted per parameter.
    """
    rule = "AdaMax"
    state_names = ("exp_avg", "exp_inf")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.002,
                 betas: tuple[float, float] = (0.9, 0.999)):
        super().__init__(params, lr=lr, betas=betas)


class Nadam(Optimizer):
    __doc__ = f"""Nadam, Adam with Nesterov momentum (Dozat, 2016), constant β1.

    m, v, m̂, v̂ as Adam
    θ ← θ − η / (√v̂ + ε) · (β1 m̂ + (1 − β1) g / (1 − β1^t))

    (PyTorch's NAdam uses Dozat's momentum schedule μ_t instead of a constant β1.)

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.002
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).

    State: exp_avg = m, exp_avg_sq = v; t is `steps`, counted per parameter.
    """
    rule = "Nadam"
    state_names = ("exp_avg", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)
    eps = Hyperparameter(check.positive)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.002,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps)


class AMSGrad(Optimizer):
    __doc__ = f"""AMSGrad (Reddi, Kale & Kumar, 2018), without bias correction.

    m, v as Adam
    v_max ← max(v_max, v)
    θ ← θ − η m / (√v_max + ε)

    (PyTorch's Adam(amsgrad=True) applies both bias corrections.)

    Parameters
    ----------
    {_PARAMS_DOC}
    lr : float, default 0.001
        η, the learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1).
    eps : float, default 1e-8
        ε (> 0).

    State: exp_avg = m, exp_avg_sq = v, max_exp_avg_sq = v_max.
    """
    rule = "AMSGrad"
    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    lr = Hyperparameter(check.learning_rate)
    betas = Hyperparameter(check.betas)
    eps = Hyperparameter(check.positive)

    def __init__(self, params: ArrayOrArrays, lr: float = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps)


RULES: tuple[type[Optimizer], ...] = (
    SGD, Momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam, AdaMax, Nadam, AMSGrad)
