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

Arithmetic is IEEE non-stop, like the kernels: NaN and Inf propagate and no
floating-point warning is raised (whatever numpy.seterr says).  A float32
array combined with a Python float stays float32 (NumPy >= 2, NEP 50), so the
reference computes in the dtype of the parameters, as the kernels do.
"""
from __future__ import annotations

import functools

import numpy as np

from . import _optimizer


def _ieee_nonstop(core):
    @functools.wraps(core)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            core(*args, **kwargs)
    return wrapper


@_ieee_nonstop
def sgd(params, grads, steps, *, lr):
    for theta, g in zip(params, grads):
        theta -= lr * g


@_ieee_nonstop
def momentum(params, grads, velocity, steps, *, lr, momentum):
    for theta, g, v in zip(params, grads, velocity):
        v[...] = momentum * v + lr * g
        theta -= v


@_ieee_nonstop
def nesterov(params, grads, velocity, steps, *, lr, momentum):
    """SPEC 1.1's form: the parameters hold φ = θ − γ v and g = ∇J(φ)."""
    for phi, g, v in zip(params, grads, velocity):
        v[...] = momentum * v + lr * g
        phi -= momentum * v + lr * g


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
def adagrad(params, grads, sum_sq, steps, *, lr, eps):
    for theta, g, G in zip(params, grads, sum_sq):
        G[...] = G + g**2
        theta -= lr * g / np.sqrt(G + eps)


@_ieee_nonstop
def adadelta(params, grads, square_avg, acc_delta, steps, *, lr, rho, eps):
    for theta, g, E_g, E_d in zip(params, grads, square_avg, acc_delta):
        E_g[...] = rho * E_g + (1 - rho) * g**2
        delta = -(np.sqrt(E_d + eps) / np.sqrt(E_g + eps)) * g
        E_d[...] = rho * E_d + (1 - rho) * delta**2
        theta += lr * delta


@_ieee_nonstop
def rmsprop(params, grads, square_avg, steps, *, lr, rho, eps):
    for theta, g, E_g in zip(params, grads, square_avg):
        E_g[...] = rho * E_g + (1 - rho) * g**2
        theta -= lr * g / np.sqrt(E_g + eps)


@_ieee_nonstop
def adam(params, grads, exp_avg, exp_avg_sq, steps, *, lr, betas, eps):
    beta1, beta2 = betas
    for theta, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, map(int, steps)):
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta -= lr * m_hat / (np.sqrt(v_hat) + eps)


@_ieee_nonstop
def adamax(params, grads, exp_avg, exp_inf, steps, *, lr, betas):
    beta1, beta2 = betas
    for theta, g, m, u, t in zip(params, grads, exp_avg, exp_inf, map(int, steps)):
        m[...] = beta1 * m + (1 - beta1) * g
        u[...] = np.maximum(beta2 * u, np.abs(g))
        m_over_u = np.divide(m, u, out=np.zeros_like(m), where=u != 0)  # 0/0 is 0 here
        theta -= (lr / (1 - beta1**t)) * m_over_u


@_ieee_nonstop
def nadam(params, grads, exp_avg, exp_avg_sq, steps, *, lr, betas, eps):
    beta1, beta2 = betas
    for theta, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, map(int, steps)):
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta -= lr / (np.sqrt(v_hat) + eps) * (beta1 * m_hat + (1 - beta1) * g / (1 - beta1**t))


@_ieee_nonstop
def amsgrad(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, steps, *, lr, betas, eps):
    beta1, beta2 = betas
    for theta, g, m, v, v_max in zip(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq):
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g**2
        v_max[...] = np.maximum(v_max, v)
        theta -= lr * m / (np.sqrt(v_max) + eps)


SGD = _optimizer.bind_backend(_optimizer.SGD, sgd, __name__)
Momentum = _optimizer.bind_backend(_optimizer.Momentum, momentum, __name__)
Nesterov = _optimizer.bind_backend(_optimizer.Nesterov, nesterov, __name__)
Adagrad = _optimizer.bind_backend(_optimizer.Adagrad, adagrad, __name__)
Adadelta = _optimizer.bind_backend(_optimizer.Adadelta, adadelta, __name__)
RMSprop = _optimizer.bind_backend(_optimizer.RMSprop, rmsprop, __name__)
Adam = _optimizer.bind_backend(_optimizer.Adam, adam, __name__)
AdaMax = _optimizer.bind_backend(_optimizer.AdaMax, adamax, __name__)
Nadam = _optimizer.bind_backend(_optimizer.Nadam, nadam, __name__)
AMSGrad = _optimizer.bind_backend(_optimizer.AMSGrad, amsgrad, __name__)

__all__ = ["SGD", "Momentum", "Nesterov", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdaMax",
           "Nadam", "AMSGrad", "sgd", "momentum", "nesterov", "nesterov_lookahead", "adagrad",
           "adadelta", "rmsprop", "adam", "adamax", "nadam", "amsgrad"]
