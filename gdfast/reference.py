"""The NumPy reference: SPEC.md section 1 in code, literal and slow.

Each function is the functional core of one rule.  It takes parallel lists of
the tensors that have a gradient this step (parameters, gradients, one list
per state buffer, the step count t of this update) and the hyper-parameters,
and updates parameters and state in place, line by line as SPEC.md writes the
rule.  (Step counts arrive as an int64 array; `map(int, steps)` keeps t a Python int,
so β^t is a Python float and float32 stays float32.)  The classes below are
the same classes as gdfast's (same signatures,
defaults, checks and state dicts) running on these functions; gdfast's C
kernels are tested against them.

Where SPEC.md leaves the order of a product open, the code takes torch.optim's:
(1 − ρ) g² is written (1 - rho) * g * g, and η g / D as lr * (g / D).

Arithmetic is IEEE non-stop, like the kernels: NaN and Inf propagate and no
floating-point warning is raised (whatever numpy.seterr says).  A float32
array combined with a Python float stays float32 (NumPy >= 2, NEP 50), so the
reference computes in the dtype of the parameters, as the kernels do.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _optimizer


def _ieee_nonstop(core):
    @functools.wraps(core)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            core(*args, **kwargs)

    return wrapper


def _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale):
    """The gradient transform every rule starts with (gdfast._optimizer): g ← g·c with
    c = grad_scale in the gradient's dtype (1: off; gradient clipping by global norm);
    g ← −g to maximize; L2 decay g ← g + λθ, or decoupled decay θ ← θ(1 − ηλ) (in place)."""
    g = g * g.dtype.type(grad_scale)
    if maximize:
        g = g * g.dtype.type(-1)  # −g as the kernels take it: a NaN keeps its sign bit
    if weight_decay and decoupled_weight_decay:
        theta *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * theta
    return g


@_ieee_nonstop
def sgd(
    params,
    grads,
    steps,
    *,
    lr,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    for theta, g in zip(params, grads):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        theta -= lr * g


@_ieee_nonstop
def momentum(
    params,
    grads,
    velocity,
    steps,
    *,
    lr,
    momentum,
    dampening=0.0,
    lr_in_buffer=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    for theta, g, v, t in zip(params, grads, velocity, map(int, steps)):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        damp = 0.0 if t == 1 else dampening  # the first gradient enters whole
        if lr_in_buffer:
            v[...] = momentum * v + (1 - damp) * lr * g
            theta -= v
        else:
            v[...] = momentum * v + (1 - damp) * g
            theta -= lr * v


@_ieee_nonstop
def nesterov(
    params,
    grads,
    velocity,
    steps,
    *,
    lr,
    momentum,
    dampening=0.0,
    lr_in_buffer=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """SPEC 1.1's form: the parameters hold φ = θ − γ v and g = ∇J(φ)."""
    for phi, g, v, t in zip(params, grads, velocity, map(int, steps)):
        g = _gradient(phi, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        damp = 0.0 if t == 1 else dampening
        if lr_in_buffer:
            v[...] = momentum * v + (1 - damp) * lr * g
            phi -= momentum * v + (1 - damp) * lr * g
        else:
            v[...] = momentum * v + (1 - damp) * g
            phi -= lr * (g + momentum * v)


def nesterov_lookahead(theta, velocity, gradient_at, *, lr, momentum):
    """One step of Nesterov's lookahead form, for one array (SPEC 1.1).

    v ← γ v + η ∇J(θ − γ v) ; θ ← θ − v, with the gradient evaluated by the
    callback `gradient_at(point)`.  Not an optimizer: the form `Nesterov` is
    shown to be equivalent to (φ = θ − γ v).
    """
    with np.errstate(all="ignore"):
        velocity[...] = momentum * velocity + lr * gradient_at(theta - momentum * velocity)
        theta -= velocity


@_ieee_nonstop
def adagrad(
    params,
    grads,
    sum_sq,
    steps,
    *,
    lr,
    eps,
    lr_decay=0.0,
    initial_accumulator_value=0.0,
    eps_inside_sqrt=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    # initial_accumulator_value: G's value before the first step (the class fills G with it)
    for theta, g, G, t in zip(params, grads, sum_sq, map(int, steps)):
        lr_t = lr / (1 + (t - 1) * lr_decay)
        g = _gradient(theta, g, lr_t, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        G[...] = G + g * g
        if eps_inside_sqrt:
            theta -= lr_t * (g / np.sqrt(G + eps))
        else:
            theta -= lr_t * (g / (np.sqrt(G) + eps))


@_ieee_nonstop
def adadelta(
    params,
    grads,
    square_avg,
    acc_delta,
    steps,
    *,
    lr,
    rho,
    eps,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    for theta, g, E_g, E_d in zip(params, grads, square_avg, acc_delta):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        E_g[...] = rho * E_g + (1 - rho) * g * g
        # Δ = −descent; SPEC's θ ← θ + ηΔ written without the (exact) negation, so that
        # every NaN made here is the default NaN, as in the kernel (see rules.inc)
        descent = (np.sqrt(E_d + eps) / np.sqrt(E_g + eps)) * g
        E_d[...] = rho * E_d + (1 - rho) * descent * descent
        theta -= lr * descent


@_ieee_nonstop
def rmsprop(
    params,
    grads,
    square_avg,
    *buffers_and_steps,
    lr,
    rho,
    eps,
    centered=False,
    momentum=0.0,
    eps_inside_sqrt=True,
    lr_in_buffer=True,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """Positional after square_avg: grad_avg (if centered), momentum_buffer (if
    momentum > 0), steps."""
    buffers = list(buffers_and_steps[:-1])
    grad_avg = buffers.pop(0) if centered else [None] * len(params)
    momentum_buffer = buffers.pop(0) if momentum > 0 else [None] * len(params)
    for theta, g, E_g, g_avg, b in zip(params, grads, square_avg, grad_avg, momentum_buffer):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        E_g[...] = rho * E_g + (1 - rho) * g * g
        if centered:
            g_avg[...] = rho * g_avg + (1 - rho) * g
            variance = E_g - g_avg**2
        else:
            variance = E_g
        if eps_inside_sqrt:
            denominator = np.sqrt(variance + eps)
        else:
            denominator = np.sqrt(variance) + eps
        if momentum > 0 and lr_in_buffer:
            b[...] = momentum * b + lr * g / denominator
            theta -= b
        elif momentum > 0:
            b[...] = momentum * b + g / denominator
            theta -= lr * b
        else:
            theta -= lr * (g / denominator)


@_ieee_nonstop
def adam(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    eps_hat=False,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    beta1, beta2 = betas
    for theta, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, map(int, steps)):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        if eps_hat:
            lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
            theta -= lr_t * m / (np.sqrt(v) + eps)
        else:
            m_hat = m / (1 - beta1**t)
            v_hat = v / (1 - beta2**t)
            theta -= lr * m_hat / (np.sqrt(v_hat) + eps)


@_ieee_nonstop
def adamax(
    params,
    grads,
    exp_avg,
    exp_inf,
    steps,
    *,
    lr,
    betas,
    eps=0.0,
    eps_inside_max=False,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    beta1, beta2 = betas
    for theta, g, m, u, t in zip(params, grads, exp_avg, exp_inf, map(int, steps)):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        m[...] = beta1 * m + (1 - beta1) * g
        if eps_inside_max:
            u[...] = np.maximum(beta2 * u, np.abs(g) + eps)
            denominator = u
        else:
            u[...] = np.maximum(beta2 * u, np.abs(g))
            denominator = u + eps
        m_over_u = np.divide(
            m, denominator, out=np.zeros_like(m), where=denominator != 0
        )  # 0/0 is 0 here
        theta -= (lr / (1 - beta1**t)) * m_over_u


@_ieee_nonstop
def nadam(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    *mu_product_and_steps,
    lr,
    betas,
    eps,
    momentum_schedule=False,
    momentum_decay=0.004,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    """Positional after exp_avg_sq: mu_product (with momentum_schedule), steps."""
    beta1, beta2 = betas
    steps = mu_product_and_steps[-1]
    mu_product = mu_product_and_steps[0] if momentum_schedule else [None] * len(params)
    for theta, g, m, v, P, t in zip(
        params, grads, exp_avg, exp_avg_sq, mu_product, map(int, steps)
    ):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        v_hat = v / (1 - beta2**t)
        if momentum_schedule:
            mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
            mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
            P[...] = P * mu
            direction = mu_next * m / (1 - P * mu_next) + (1 - mu) * g / (1 - P)
        else:
            m_hat = m / (1 - beta1**t)
            direction = beta1 * m_hat + (1 - beta1) * g / (1 - beta1**t)
        theta -= lr / (np.sqrt(v_hat) + eps) * direction


@_ieee_nonstop
def amsgrad(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    steps,
    *,
    lr,
    betas,
    eps,
    bias_correction=False,
    max_of_v_hat=False,
    eps_hat=False,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
    grad_scale=1.0,
):
    beta1, beta2 = betas
    for theta, g, m, v, v_max, t in zip(
        params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, map(int, steps)
    ):
        g = _gradient(theta, g, lr, weight_decay, decoupled_weight_decay, maximize, grad_scale)
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        if not bias_correction:
            v_max[...] = np.maximum(v_max, v)
            theta -= lr * m / (np.sqrt(v_max) + eps)
        elif max_of_v_hat:
            v_max[...] = np.maximum(v_max, v / (1 - beta2**t))
            theta -= lr * (m / (1 - beta1**t)) / (np.sqrt(v_max) + eps)
        elif eps_hat:
            v_max[...] = np.maximum(v_max, v)
            lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
            theta -= lr_t * m / (np.sqrt(v_max) + eps)
        else:
            v_max[...] = np.maximum(v_max, v)
            theta -= lr * (m / (1 - beta1**t)) / (np.sqrt(v_max / (1 - beta2**t)) + eps)


def _row_form(core):
    """The row-sparse form of a dense core (gdfast.rows), written literally:

        rows, where = unique(indices);  g = zeros((len(rows), dim));  add.at(g, where, values)
        θ_rows, state_rows = θ[rows], state[rows]        (copies of the rows named)
        core([θ_rows], [g], [state_rows]..., [t])        (the rule's lines on those rows)
        θ[rows], state[rows] = θ_rows, state_rows

    Duplicate indices are summed into zeros in the order they occur; rows not named are
    neither read nor written (lazy); t is the parameter's step count."""

    @functools.wraps(core)
    def row_core(param, indices, values, *buffers_and_step, **hyper):
        *buffers, step = buffers_and_step
        rows, where = np.unique(indices, return_inverse=True)
        g = np.zeros((rows.size, param.shape[1]), dtype=param.dtype)
        np.add.at(g, where.reshape(-1), values)
        theta = param[rows]
        state = [buffer[rows] for buffer in buffers]
        core([theta], [g], *[[s] for s in state], np.array([step], dtype=np.int64), **hyper)
        param[rows] = theta
        for buffer, s in zip(buffers, state):
            buffer[rows] = s
        return rows.size

    row_core.__name__ = row_core.__qualname__ = f"{core.__name__}_rows"
    return row_core


sgd_rows = _row_form(sgd)
momentum_rows = _row_form(momentum)
adagrad_rows = _row_form(adagrad)
rmsprop_rows = _row_form(rmsprop)
adam_rows = _row_form(adam)

SGD = _optimizer.bind_backend(_optimizer.SGD, sgd, __name__, sgd_rows)
Momentum = _optimizer.bind_backend(_optimizer.Momentum, momentum, __name__, momentum_rows)
Nesterov = _optimizer.bind_backend(_optimizer.Nesterov, nesterov, __name__)
Adagrad = _optimizer.bind_backend(_optimizer.Adagrad, adagrad, __name__, adagrad_rows)
Adadelta = _optimizer.bind_backend(_optimizer.Adadelta, adadelta, __name__)
RMSprop = _optimizer.bind_backend(_optimizer.RMSprop, rmsprop, __name__, rmsprop_rows)
Adam = _optimizer.bind_backend(_optimizer.Adam, adam, __name__, adam_rows)
AdamW = _optimizer.bind_backend(
    _optimizer.AdamW, functools.partial(adam, decoupled_weight_decay=True), __name__
)
AdaMax = _optimizer.bind_backend(_optimizer.AdaMax, adamax, __name__)
Nadam = _optimizer.bind_backend(_optimizer.Nadam, nadam, __name__)
AMSGrad = _optimizer.bind_backend(_optimizer.AMSGrad, amsgrad, __name__)

__all__ = [
    "SGD",
    "Momentum",
    "Nesterov",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Adam",
    "AdamW",
    "AdaMax",
    "Nadam",
    "AMSGrad",
    "sgd",
    "momentum",
    "nesterov",
    "nesterov_lookahead",
    "adagrad",
    "adadelta",
    "rmsprop",
    "adam",
    "adamax",
    "nadam",
    "amsgrad",
    "sgd_rows",
    "momentum_rows",
    "adagrad_rows",
    "rmsprop_rows",
    "adam_rows",
]
