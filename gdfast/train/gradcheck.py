"""Gradient checking: an objective's analytic gradient against central differences.

    errors = gdfast.check_grad(objective, params, X, y)   # one relative error per parameter
    assert errors.max() < 1e-6                              # float64: expect ~1e-8 or less

For each checked entry θ_i the numerical derivative is

    (J(θ + h e_i) − J(θ − h e_i)) / (2h)

and the relative error of a parameter is ‖a − d‖ / max(‖a‖ + ‖d‖, tiny) over
its checked entries (a analytic, d numerical; 0 when both are 0).  Check in
float64: with h = ε^(1/3) (ε the dtype's machine epsilon) the error of a correct
gradient is around 1e-9 in float64 but only around 1e-3 in float32.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .. import _validation as check

__all__ = ["check_grad", "numerical_gradient"]

# objective(params, X, y) -> (loss, gradients); params as the caller passed them (an array
# or a list of arrays), one gradient per parameter (a bare array for a single parameter).
Objective = Callable[[Any, Any, Any], tuple[float, Any]]


def _step_size(eps: float | None, dtype: np.dtype) -> float:
    if eps is None:
        return float(np.finfo(dtype).eps ** (1.0 / 3.0))
    return check.positive("eps", eps)


def _entries(size: int, max_entries: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_entries, replace=False))


def _loss(objective: Objective, params: Any, X: Any, y: Any) -> float:
    result = objective(params, X, y)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(
            f"objective: expected it to return (loss, grads), got {type(result).__name__}"
        )
    return float(result[0])


def numerical_gradient(
    objective: Objective,
    params: np.ndarray | Sequence[np.ndarray],
    X: Any = None,
    y: Any = None,
    eps: float | None = None,
    max_entries: int | None = None,
    seed: int = 0,
) -> list[np.ndarray]:
    """Central-difference gradient of ``objective(params, X, y)[0]``.

    Perturbs each entry of `params` in place and puts it back exactly (the
    parameters are unchanged on return, also when the objective raises).
    With `max_entries`, only that many entries per parameter (a seeded random
    sample) are computed; the others are NaN.

    Returns one array per parameter, of its shape and dtype float64.
    """
    return [numeric for numeric, _ in _differences(objective, params, X, y, eps, max_entries, seed)]


def _differences(
    objective: Objective,
    params: Any,
    X: Any,
    y: Any,
    eps: float | None,
    max_entries: int | None,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(numerical gradient, indices of the checked entries) per parameter.

    The objective gets `params` as given (one array stays one array).
    """
    arrays = check.parameters("params", params)
    if max_entries is not None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries: expected an int >= 1 or None, got {max_entries!r}")
    rng = np.random.default_rng(seed)
    results = []
    for array in arrays:
        h = _step_size(eps, array.dtype)
        flat = array.reshape(-1)
        numeric = np.full(array.size, np.nan)
        entries = _entries(array.size, max_entries, rng)
        for i in entries:
            original = flat[i].copy()
            try:
                flat[i] = original + h
                # the step actually taken after rounding, so the quotient is exact in h
                up = float(flat[i]) - float(original)
                plus = _loss(objective, params, X, y)
                flat[i] = original - h
                down = float(original) - float(flat[i])
                minus = _loss(objective, params, X, y)
            finally:
                flat[i] = original
            numeric[i] = (plus - minus) / (up + down)
        results.append((numeric.reshape(array.shape), entries))
    return results


def check_grad(
    objective: Objective,
    params: np.ndarray | Sequence[np.ndarray],
    X: Any = None,
    y: Any = None,
    eps: float | None = None,
    max_entries: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Relative error of the objective's gradient, per parameter.

    Parameters
    ----------
    objective : callable
        ``objective(params, X, y) -> (loss, grads)``, the signature `gdfast.fit` takes.
    params : ndarray or list of ndarray
        Where to check; perturbed in place during the check and restored exactly.
    X, y : passed to the objective unchanged.
    eps : float, optional
        The difference step h; default ε^(1/3) of each parameter's dtype.
    max_entries : int, optional
        Check at most this many entries per parameter (a seeded random sample);
        default all.
    seed : int, default 0

    Returns
    -------
    ndarray of float64, shape (len(params),)
        ‖a − d‖ / max(‖a‖ + ‖d‖, tiny) per parameter over its checked entries.
    """
    arrays = check.parameters("params", params)
    loss, returned = objective(params, X, y)
    analytic = [returned] if isinstance(returned, np.ndarray) else list(returned)
    if len(analytic) != len(arrays):
        raise ValueError(
            f"objective: returned {len(analytic)} gradient(s) for {len(arrays)} parameter(s)"
        )
    analytic = [np.array(g, dtype=np.float64, copy=True) for g in analytic]
    for index, (grad, array) in enumerate(zip(analytic, arrays)):
        if grad.shape != array.shape:
            raise ValueError(
                f"objective: gradient {index} has shape {grad.shape}, its parameter {array.shape}"
            )
    errors = np.empty(len(arrays))
    differences = _differences(objective, params, X, y, eps, max_entries, seed)
    for index, (a, (d, entries)) in enumerate(zip(analytic, differences)):
        a, d = a.reshape(-1)[entries], d.reshape(-1)[entries]
        scale = np.linalg.norm(a) + np.linalg.norm(d)
        # a NaN anywhere (objective or gradient) makes the error NaN, never hides it
        errors[index] = np.linalg.norm(a - d) / scale if scale != 0 else 0.0
    return errors
