"""Schedule-Free AdamW and SGD (Defazio et al. 2024, "The Road Less Scheduled").

The rules' NumPy cores (docs/spec.md section 1.3 in code, part of gdfast.reference), the
train/eval switch they need, and their declarations (gdfast.catalogue); their kernels are
src_c/rules/schedule_free.inc.

The parameters hold y, the point where the gradient is taken; the model to evaluate is x,
the average of the base sequence z.  `optimizer.eval()` turns the parameters into x (before
a validation pass, a checkpoint of the model, the end of training), `optimizer.train()`
back into y (before the next step); `step` refuses to run in eval mode.  gdfast.fit does
both.  The mode is part of the state (entry `training`), so state dicts and
gdfast.save_state record it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import _validation as check
from .._machinery import PARAMS_DOC, Hyperparameter, Rule
from .._numpy_core import gradient_transform, ieee_nonstop
from .adam import BETAS


def lerp(start, end, weight):
    """start + weight (end − start), as torch.lerp computes it (spec section 0): from the
    nearer end (end − (end − start)(1 − weight) when |weight| >= 0.5), so a weight of 1 gives
    `end` exactly.  The schedulefree package writes its averages as lerp."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def schedule_free_lr(t, *, lr, warmup_steps, beta2=None):
    """γ_t = η min(1, t/T_w), times √(1 − β2^t) when beta2 is given (AdamW with
    lr_bias_correction)."""
    lr_t = lr * (t / warmup_steps if t <= warmup_steps else 1.0)
    return lr_t if beta2 is None else lr_t * math.sqrt(1 - beta2**t)


def schedule_free_weight(t, lr_t, pair, *, r, weight_lr_power):
    """This step's averaging weight c_t; `pair` (float64 [W, γ_max], the state entry
    weight_sum_lr_max) updated in place: γ_max ← max(γ_max, γ_t), W ← W + t^r γ_max^p."""
    pair[1] = max(float(pair[1]), lr_t)
    weight = t**r * float(pair[1]) ** weight_lr_power
    pair[0] = float(pair[0]) + weight
    return weight / float(pair[0]) if float(pair[0]) != 0 else 0.0


def _average_step(y, base, u, lr_t, c, beta1):
    """y ← lerp(y, z, c) ; y ← y + γ_t (β1 (1 − c) − 1) u ; z ← z − γ_t u."""
    y[...] = lerp(y, base, c)
    y += lr_t * (beta1 * (1 - c) - 1) * u
    base -= lr_t * u


@ieee_nonstop
def schedule_free_adamw(
    params,
    grads,
    z,
    weight_sum_lr_max,
    training,
    exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    weight_decay=0.0,
    warmup_steps=0.0,
    r=0.0,
    weight_lr_power=2.0,
    lr_bias_correction=True,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1.3: v ← β2 v + (1 − β2) g² ; u = g / (√(v / v_div) + ε) + λ y ; then the
    average step (y, z) with c_t.  `training` (the mode, 1: y) is not read by a step."""
    beta1, beta2 = betas
    for y, g, base, pair, v, t in zip(params, grads, z, weight_sum_lr_max, exp_avg_sq, steps):
        t = int(t)
        g = gradient_transform(None, g, 0.0, 0.0, False, maximize, grad_scale)
        if lr_bias_correction:  # the paper: γ_t = η min(1, t/T) √(1 − β2^t), D = √v + ε
            lr_t = schedule_free_lr(t, lr=lr, warmup_steps=warmup_steps, beta2=beta2)
            v_divisor = 1.0
        else:  # the schedulefree package's AdamWScheduleFree: D = √(v / (1 − β2^t)) + ε
            lr_t = schedule_free_lr(t, lr=lr, warmup_steps=warmup_steps)
            v_divisor = 1 - beta2**t
        c = schedule_free_weight(t, lr_t, pair, r=r, weight_lr_power=weight_lr_power)
        v[...] = beta2 * v + (1 - beta2) * g * g
        u = g / (np.sqrt(v / v_divisor) + eps)
        if weight_decay != 0:
            u = u + weight_decay * y
        _average_step(y, base, u, lr_t, c, beta1)


@ieee_nonstop
def schedule_free_sgd(
    params,
    grads,
    z,
    weight_sum_lr_max,
    training,
    steps,
    *,
    lr,
    momentum,
    weight_decay=0.0,
    warmup_steps=0.0,
    r=0.0,
    weight_lr_power=2.0,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1.3: u = g + λ y, β1 = momentum, then the average step (y, z) with c_t.
    `training` (the mode, 1: y) is not read by a step."""
    for y, g, base, pair, t in zip(params, grads, z, weight_sum_lr_max, steps):
        t = int(t)
        g = gradient_transform(None, g, 0.0, 0.0, False, maximize, grad_scale)
        lr_t = schedule_free_lr(t, lr=lr, warmup_steps=warmup_steps)
        c = schedule_free_weight(t, lr_t, pair, r=r, weight_lr_power=weight_lr_power)
        u = g + weight_decay * y if weight_decay != 0 else g
        _average_step(y, base, u, lr_t, c, momentum)


def to_eval(params, z, beta1):
    """y → x: x = lerp(y, z, 1 − 1/β1), in place (before evaluating)."""
    with np.errstate(all="ignore"):
        for y, base in zip(params, z):
            y[...] = lerp(y, base, 1 - 1 / beta1)


def to_train(params, z, beta1):
    """x → y: y = lerp(x, z, 1 − β1), in place (before training again)."""
    with np.errstate(all="ignore"):
        for x, base in zip(params, z):
            x[...] = lerp(x, base, 1 - beta1)


_COMMON_DOC = """weight_decay : float, default 0.0
        λ (>= 0), evaluated at y: u ← u + λ y (the paper's and the package's).
    warmup_steps : float, default 0
        T_w (>= 0): γ_t = η min(1, t/T_w), a linear warm-up (0: none).
    r : float, default 0.0
        The power of t in the averaging weight w = t^r γ_max^p (>= 0).
    weight_lr_power : float, default 2.0
        p (>= 0): the power of γ_max in the averaging weight.
    maximize : bool, default False
        Ascend: g ← −g.
    convention : {"paper", "torch", "keras"}, default "paper"
        (no option differs between conventions.)

    Training and evaluation: the parameters hold y (the gradient is taken there); call
    `eval()` before evaluating the model or saving it for use (x = lerp(y, z, 1 − 1/β)), and
    `train()` before stepping again (y = lerp(x, z, 1 − β)).  An optimizer starts in train
    mode; `step` in eval mode raises ValueError; `training` says which mode it is in and
    the state dict records it.  gdfast.fit calls both around each validation pass and at
    the end.  (The schedulefree package starts in eval mode and needs a train() first;
    gdfast.torch.ScheduleFreeAdamW does as the package does.)

    State: z (a copy of θ at the start), weight_sum_lr_max = (W, γ_max) per parameter (a
    float64 pair; the package keeps both per parameter group), training (the mode, a 0-d
    float64 per parameter, 1: train, 0: eval, so that the state dict and gdfast.save_state
    record whether the parameters hold y or x); t is `steps`, counted per
    parameter (the package counts per group: the same when every tensor gets a gradient
    every step)."""


class _ScheduleFree(Rule):
    """What both schedule-free rules share: z starts as θ, the pair (W, γ_max) as zeros,
    the train/eval switch and its record in the state dict."""

    # the kernel's per-tensor scalar is the first of these (gd_tensors.mu_product)
    scalar_state = ("weight_sum_lr_max", "training")
    # z is θ's running copy; train/eval move the parameters (not staged), so no dtype policy
    elementwise = False
    decoupled_weight_decay = None  # λ y in u, the paper's; no other form
    warmup_steps = Hyperparameter(check.nonnegative, 0.0, keyword=True)
    r = Hyperparameter(check.nonnegative, 0.0, keyword=True, kernel="average_power")
    weight_lr_power = Hyperparameter(check.nonnegative, 2.0, keyword=True)
    torch_equivalent = None  # not in torch.optim: gdfast.torch's class is the package's
    adaptive = False

    def _initial_state(self, name: str, param: np.ndarray) -> np.ndarray:
        if name == "weight_sum_lr_max":
            return np.zeros(2, dtype=np.float64)
        if name == "training":
            return np.ones((), dtype=np.float64)
        if name == "z":
            return param.copy()
        return np.zeros_like(param)

    def _state_spec(self, name: str, param: np.ndarray) -> tuple[tuple[int, ...], np.dtype]:
        if name == "weight_sum_lr_max":
            return (2,), np.dtype(np.float64)
        if name == "training":
            return (), np.dtype(np.float64)
        return param.shape, param.dtype

    def _beta1(self) -> float:
        raise NotImplementedError

    @property
    def training(self) -> bool:
        """True in train mode (the parameters hold y), False in eval mode (x)."""
        return getattr(self, "_training", True)

    def _set_mode(self, training: bool) -> None:
        self._training = training
        for mode in self.state["training"]:
            mode[...] = 1.0 if training else 0.0

    def eval(self) -> None:
        """The parameters to x, the point to evaluate (no-op in eval mode)."""
        if self.training:
            to_eval(self.params, self.state["z"], self._beta1())
            self._set_mode(False)

    def train(self) -> None:
        """The parameters back to y, the point to take gradients at (no-op in train mode)."""
        if not self.training:
            to_train(self.params, self.state["z"], self._beta1())
            self._set_mode(True)

    def step(self, grads: Any) -> None:
        if not self.training:
            raise ValueError(
                f"{self.rule}.step: the optimizer is in eval mode (the parameters hold the "
                "average x); call optimizer.train() before stepping"
            )
        super().step(grads)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As Optimizer.load_state_dict; the mode (state entry "training") comes with it.
        The parameters are not part of a state dict: load ones saved in the same mode."""
        mode = _loaded_mode(state_dict)
        super().load_state_dict(state_dict)
        if mode is not None:
            self._set_mode(mode)


def _loaded_mode(state_dict: Any) -> bool | None:
    """The mode a state dict records: train where every parameter's entry is nonzero (1.0
    as saved), eval where every one is 0.0; None where the entry is missing or malformed
    (the full load check then says why)."""
    try:
        modes = [float(np.asarray(m)) != 0.0 for m in state_dict["state"]["training"]]
    except (TypeError, KeyError, ValueError, IndexError):
        return None
    if len(set(modes)) > 1:
        raise ValueError(
            "state_dict['state']['training']: expected the same mode for every parameter "
            "(1.0: train, 0.0: eval), got both"
        )
    return modes[0] if modes else None


class ScheduleFreeAdamW(_ScheduleFree):
    __doc__ = f"""Schedule-Free AdamW (Defazio et al. 2024, Algorithm 1).

    γ_t = η min(1, t/T_w) √(1 − β2^t) ;  γ_max ← max(γ_max, γ_t)
    w = t^r γ_max^p ;  W ← W + w ;  c = w / W
    v ← β2 v + (1 − β2) g² ;  u = g / (√v + ε) + λ y
    y ← lerp(y, z, c) ;  y ← y + γ_t (β1 (1 − c) − 1) u ;  z ← z − γ_t u

    No learning-rate schedule: the average x of the z's is the model to use.
    lr_bias_correction=False is the schedulefree package's AdamWScheduleFree (what its
    users run): γ_t = η min(1, t/T_w) and u = g / (√(v / (1 − β2^t)) + ε).

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 0.0025
        η, the learning rate (>= 0); the package's default.
    betas : (float, float), default (0.9, 0.999)
        (β1, β2), each in [0, 1); β1 > 0 (the switch to x divides by it).
    eps : float, default 1e-8
        ε (> 0).
    lr_bias_correction : bool, default True
        √(1 − β2^t) in γ_t (the paper's Algorithm 1 and the package's
        AdamWScheduleFreePaper), else in D (the package's AdamWScheduleFree).
    {_COMMON_DOC}

    State: z, weight_sum_lr_max, training, exp_avg_sq = v.
    """
    rule = "ScheduleFreeAdamW"
    catalogue_order = 18
    state_names = ("z", "weight_sum_lr_max", "training", "exp_avg_sq")
    lr = Hyperparameter(check.learning_rate, 0.0025)
    betas = BETAS
    eps = Hyperparameter(check.positive, 1e-8)
    lr_bias_correction = Hyperparameter(check.flag, True, keyword=True)
    kernel = "schedule_free_adamw"
    numpy_core = schedule_free_adamw
    # the middle of the working range of gdfast.gallery.sweep over LR_GRID (settings.py)
    gallery_lr = {"beale": 0.01, "rosenbrock": 0.01, "saddle": 0.01, "ravine": 0.3}
    adaptive = True

    def _check_together(self, hyper: dict[str, Any]) -> None:
        if hyper["betas"][0] == 0:
            raise ValueError(
                "betas[0]: expected a number in (0, 1) for ScheduleFreeAdamW (eval() "
                "computes x = lerp(y, z, 1 − 1/β1)), got 0.0"
            )

    def _beta1(self) -> float:
        return self._hyper["betas"][0]


class ScheduleFreeSGD(_ScheduleFree):
    __doc__ = f"""Schedule-Free SGD (Defazio et al. 2024), the package's SGDScheduleFree.

    γ_t = η min(1, t/T_w) ;  γ_max ← max(γ_max, γ_t) ;  w = t^r γ_max^p ;  W ← W + w ;
    c = w / W ;  u = g + λ y
    y ← lerp(y, z, c) ;  y ← y + γ_t (μ (1 − c) − 1) u ;  z ← z − γ_t u

    Parameters
    ----------
    {PARAMS_DOC}
    lr : float, default 1.0
        η, the learning rate (>= 0); the package's default.
    momentum : float, default 0.9
        μ (β1 of the average), in (0, 1).
    {_COMMON_DOC}

    State: z, weight_sum_lr_max, training.
    """
    rule = "ScheduleFreeSGD"
    catalogue_order = 19
    state_names = ("z", "weight_sum_lr_max", "training")
    lr = Hyperparameter(check.learning_rate, 1.0)
    momentum = Hyperparameter(check.unit_interval, 0.9)
    kernel = "schedule_free_sgd"
    numpy_core = schedule_free_sgd
    # the middle of the working range of gdfast.gallery.sweep over LR_GRID (settings.py)
    gallery_lr = {"beale": 0.01, "rosenbrock": 0.003, "saddle": 0.01, "ravine": 0.3}

    def _check_together(self, hyper: dict[str, Any]) -> None:
        if not 0 < hyper["momentum"] < 1:
            raise ValueError(
                f"momentum: expected a number in (0, 1) for ScheduleFreeSGD (eval() computes "
                f"x = lerp(y, z, 1 − 1/momentum)), got {hyper['momentum']!r}"
            )

    def _beta1(self) -> float:
        return self._hyper["momentum"]
