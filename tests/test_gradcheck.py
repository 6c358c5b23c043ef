"""check_grad: catches a wrong gradient, passes a right one, leaves the parameters alone."""

import numpy as np
import pytest

from gdfast.train.gradcheck import check_grad, numerical_gradient

RNG = np.random.default_rng(0)
A = RNG.standard_normal((6, 6))
B = RNG.standard_normal((3,))


def quadratic(params, X, y):
    w, v = params
    loss = 0.5 * w @ A @ w + np.sin(v) @ B
    return float(loss), [0.5 * (A + A.T) @ w, np.cos(v) * B]


def wrong_in_w(params, X, y):
    loss, (gw, gv) = quadratic(params, X, y)
    return loss, [A @ params[0], gv]  # forgets the symmetric part


def test_right_gradient_passes_and_wrong_one_is_flagged_per_parameter():
    w, v = RNG.standard_normal(6), RNG.standard_normal(3)
    errors = check_grad(quadratic, [w, v])
    assert errors.shape == (2,) and errors.max() < 1e-8
    errors = check_grad(wrong_in_w, [w, v])
    assert errors[0] > 1e-2 and errors[1] < 1e-8


def test_parameters_are_restored_exactly():
    w, v = RNG.standard_normal(6), RNG.standard_normal(3)
    before = [w.copy(), v.copy()]
    check_grad(quadratic, [w, v])
    assert np.array_equal(w, before[0]) and np.array_equal(v, before[1])

    def raises(params, X, y):
        if params[0][0] != before[0][0]:
            raise RuntimeError("boom")
        return quadratic(params, X, y)

    with pytest.raises(RuntimeError):
        check_grad(raises, [w, v])
    assert np.array_equal(w, before[0])


def test_numerical_gradient_matches_the_analytic_one_and_samples_entries():
    w, v = RNG.standard_normal(6), RNG.standard_normal(3)
    numeric = numerical_gradient(quadratic, [w, v])
    analytic = quadratic([w, v], None, None)[1]
    for d, a in zip(numeric, analytic):
        np.testing.assert_allclose(d, a, rtol=1e-7, atol=1e-9)
    sampled = numerical_gradient(quadratic, [w, v], max_entries=2, seed=3)
    assert np.isnan(sampled[0]).sum() == 4 and np.isnan(sampled[1]).sum() == 1
    assert check_grad(quadratic, [w, v], max_entries=2).max() < 1e-8


def test_float32_uses_a_larger_step():
    w = RNG.standard_normal(6).astype(np.float32)
    A32 = A.astype(np.float32)

    def objective(params, X, y):
        w = params[0]
        return float(0.5 * w @ A32 @ w), [0.5 * (A32 + A32.T) @ w]

    assert check_grad(objective, [w]).max() < 1e-3


def test_a_nan_gradient_is_not_hidden():
    def nan_gradient(params, X, y):
        loss, grads = quadratic(params, X, y)
        grads[1] = grads[1] * np.nan
        return loss, grads

    errors = check_grad(nan_gradient, [RNG.standard_normal(6), RNG.standard_normal(3)])
    assert np.isnan(errors[1])


def test_bad_input():
    w = np.zeros(3)
    with pytest.raises(TypeError, match="params"):
        check_grad(quadratic, "w")
    with pytest.raises(ValueError, match="params\\[0\\]"):
        check_grad(quadratic, [np.zeros((3, 3))[:, 0]])
    with pytest.raises(ValueError, match="objective"):
        check_grad(lambda p, X, y: (0.0, [w, w]), [w])
    with pytest.raises(ValueError, match="objective"):
        check_grad(lambda p, X, y: (0.0, [np.zeros(4)]), [w])
    with pytest.raises(ValueError, match="eps"):
        check_grad(lambda p, X, y: (0.0, [w]), [w], eps=0.0)
    with pytest.raises(ValueError, match="max_entries"):
        check_grad(lambda p, X, y: (0.0, [w]), [w], max_entries=0)


def test_a_single_array_is_passed_as_one_array():
    def objective(w, X, y):
        assert isinstance(w, np.ndarray)
        return float(0.5 * w @ w), w.copy()

    assert check_grad(objective, RNG.standard_normal(4))[0] < 1e-8
