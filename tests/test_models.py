"""gdfast.models: gradient checks of every model, batch normalization, agreement with scikit-learn."""

import functools

import numpy as np
import pytest

from gdfast.train import models
from gdfast.train import check_grad

sparse = pytest.importorskip("scipy.sparse")
datasets = pytest.importorskip("sklearn.datasets")

RNG = np.random.default_rng(42)


def perturb(model, scale=0.3, seed=0):
    """Move every parameter off its initial value so no gradient is trivially 0."""
    rng = np.random.default_rng(seed)
    for p in model.params:
        p += rng.standard_normal(p.shape) * scale
    return model


@pytest.fixture(scope="module")
def digits():
    X, y = datasets.load_digits(return_X_y=True)
    return X / 16.0, y


def regression_data(n=40, d=6):
    X = RNG.standard_normal((n, d))
    return X, X @ RNG.standard_normal(d) + 0.5 + 0.1 * RNG.standard_normal(n)


# -------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("as_sparse", [False, True])
def test_linear_and_logistic_gradients(l2, as_sparse):
    X, y = regression_data()
    if as_sparse:
        X = sparse.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    for model, target in [
        (models.LinearRegression(6, l2=l2), y),
        (models.LogisticRegression(6, l2=l2), (y > 0.5).astype(int)),
    ]:
        perturb(model)
        assert check_grad(model, model.params, X, target).max() < 1e-7


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_mlp_gradients(digits, batch_norm, training):
    X, y = digits
    model = perturb(models.MLP(64, 10, hidden=(12, 7), batch_norm=batch_norm, l2=0.05), 0.2)
    if batch_norm:  # give evaluation mode non-trivial running statistics
        for norm in model.norms:
            norm.running_mean[:] = RNG.standard_normal(norm.n_features)
            norm.running_var[:] = RNG.uniform(0.5, 2.0, norm.n_features)
    objective = functools.partial(model.loss_and_grad, training=training, update_running=False)
    errors = check_grad(objective, model.params, X[:25], y[:25], max_entries=40)
    assert errors.shape == (len(model.params),)
    assert errors.max() < 1e-6


def test_softmax_regression_gradients_sparse(digits):
    X, y = digits
    model = perturb(models.SoftmaxRegression(64, 10, l2=0.1))
    assert model.param_names == ("W_out", "b_out")
    assert (
        check_grad(model, model.params, sparse.csr_matrix(X[:30]), y[:30], max_entries=60).max()
        < 1e-7
    )


def test_a_broken_backward_pass_is_caught(digits, monkeypatch):
    """The gradient check is able to fail: drop batch norm's mean term and it does."""
    X, y = digits
    model = perturb(models.MLP(64, 10, hidden=(8,), batch_norm=True), 0.2)
    original = models.BatchNorm.backward

    def without_mean_term(dy, cache):
        dx, dgamma, dbeta = original(dy, cache)
        x_hat, inv_std, gamma, training = cache
        return dx + (dy * gamma).mean(axis=0) * inv_std, dgamma, dbeta

    monkeypatch.setattr(models.BatchNorm, "backward", staticmethod(without_mean_term))
    objective = functools.partial(model.loss_and_grad, update_running=False)
    assert check_grad(objective, model.params, X[:20], y[:20], max_entries=30)[0] > 1e-3


# ---------------------------------------------------------- batch normalization
def test_batch_norm_forward_training_and_running_averages():
    norm = models.BatchNorm(3, eps=1e-5, momentum=0.1)
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    x = RNG.standard_normal((50, 3)) * [1.0, 3.0, 0.1] + [5.0, -2.0, 0.0]
    out, _ = norm.forward(x, gamma, beta)
    x_hat = (out - beta) / gamma
    np.testing.assert_allclose(x_hat.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        x_hat.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-5), rtol=1e-12
    )
    np.testing.assert_allclose(norm.running_mean, 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-12)
    # update_running=False leaves them; evaluation mode uses them
    kept = norm.running_mean.copy(), norm.running_var.copy()
    norm.forward(x * 2, gamma, beta, update_running=False)
    assert np.array_equal(norm.running_mean, kept[0])
    evaluated, _ = norm.forward(x, gamma, beta, training=False)
    np.testing.assert_allclose(
        evaluated, gamma * (x - kept[0]) / np.sqrt(kept[1] + 1e-5) + beta, rtol=1e-12
    )


def test_batch_norm_converges_to_the_population_statistics():
    norm = models.BatchNorm(2, momentum=0.1)
    rng = np.random.default_rng(0)
    for _ in range(300):
        norm.forward(rng.normal([1.0, -3.0], [2.0, 0.5], size=(64, 2)), np.ones(2), np.zeros(2))
    np.testing.assert_allclose(norm.running_mean, [1.0, -3.0], atol=0.15)
    np.testing.assert_allclose(norm.running_var, [4.0, 0.25], rtol=0.15)


def test_batch_norm_backward_standalone_gradient():
    norm = models.BatchNorm(4)
    x = RNG.standard_normal((9, 4))
    weights = RNG.standard_normal((9, 4))

    def objective(params, X, y):
        x, gamma, beta = params
        out, cache = norm.forward(x, gamma, beta, update_running=False)
        return float(np.sum(weights * out**2)), list(norm.backward(2 * weights * out, cache))

    params = [x, RNG.uniform(0.5, 2, 4), RNG.standard_normal(4)]
    assert check_grad(objective, params).max() < 1e-7


# ------------------------------------------------------------- against sklearn
def test_logistic_gradient_vanishes_at_sklearns_optimum():
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = datasets.load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    l2 = 0.01
    reference = linear_model.LogisticRegression(
        C=1 / (l2 * X.shape[0]), tol=1e-12, max_iter=10_000
    ).fit(X, y)
    model = models.LogisticRegression(30, l2=l2)
    model.params[0][:] = reference.coef_[0]
    model.params[1][:] = reference.intercept_
    loss, grads = model(model.params, X, y)
    assert max(np.abs(g).max() for g in grads) < 1e-6
    assert model.score(X, y) == pytest.approx(reference.score(X, y))
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X)[:, 1], rtol=1e-10)


def test_linear_regression_gradient_vanishes_at_least_squares():
    X, y = regression_data(200, 6)
    solution, *_ = np.linalg.lstsq(np.c_[X, np.ones(200)], y, rcond=None)
    model = models.LinearRegression(6)
    model.params[0][:], model.params[1][:] = solution[:6], solution[6]
    loss, grads = model(model.params, X, y)
    assert max(np.abs(g).max() for g in grads) < 1e-10
    assert model.score(X, y) > 0.99
    residual = X @ solution[:6] + solution[6] - y
    assert loss == pytest.approx(0.5 * np.mean(residual**2), rel=1e-12)


def test_softmax_matches_a_direct_formula(digits):
    X, y = digits
    model = perturb(models.SoftmaxRegression(64, 10, l2=0.2))
    W, b = model.params
    logits = X @ W + b
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_probs[np.arange(len(y)), y].mean() + 0.1 * np.sum(W**2)
    assert model.loss(X, y) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(log_probs), rtol=1e-10)
    assert model.score(X, y) == pytest.approx(np.mean(np.argmax(logits, axis=1) == y))


# ----------------------------------------------------------------- API, errors
def test_mlp_structure_and_dtypes():
    model = models.MLP(5, 3, hidden=(4, 2), batch_norm=True, dtype=np.float32, seed=1)
    assert model.param_names == ("W0", "gamma0", "beta0", "W1", "gamma1", "beta1", "W_out", "b_out")
    assert [p.shape for p in model.params] == [(5, 4), (4,), (4,), (4, 2), (2,), (2,), (2, 3), (3,)]
    assert all(p.dtype == np.float32 and p.flags.c_contiguous for p in model.params)
    loss, grads = model(model.params, np.ones((6, 5)), np.arange(6) % 3)
    assert all(g.dtype == np.float32 and g.shape == p.shape for g, p in zip(grads, model.params))
    same = models.MLP(5, 3, hidden=(4, 2), batch_norm=True, dtype=np.float32, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(model.params, same.params))
    assert models.MLP(5, 3, hidden=(4,)).param_names == ("W0", "b0", "W_out", "b_out")


def test_evaluate_has_no_side_effects():
    model = perturb(models.MLP(4, 2, hidden=(3,), batch_norm=True))
    X, y = RNG.standard_normal((10, 4)), np.arange(10) % 2
    kept = model.norms[0].running_mean.copy()
    model.evaluate(model.params, X, y)
    model.predict(X)
    assert np.array_equal(model.norms[0].running_mean, kept)
    model(model.params, X, y)
    assert not np.array_equal(model.norms[0].running_mean, kept)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: models.MLP(0, 3), ValueError, "n_features"),
        (lambda: models.MLP(4, 1), ValueError, "n_classes"),
        (lambda: models.MLP(4, 3, hidden=5), TypeError, "hidden"),
        (lambda: models.MLP(4, 3, hidden=(0,)), ValueError, "hidden\\[0\\]"),
        (lambda: models.MLP(4, 3, dtype=np.int32), TypeError, "dtype"),
        (lambda: models.LinearRegression(4, l2=-1), ValueError, "l2"),
        (lambda: models.BatchNorm(3, momentum=2.0), ValueError, "momentum"),
        (lambda: models.MLP(4, 3).loss(np.ones((2, 5)), [0, 1]), ValueError, "X"),
        (lambda: models.MLP(4, 3).loss(np.ones((2, 4)), [0, 3]), ValueError, "y"),
        (lambda: models.MLP(4, 3).loss(np.ones((2, 4)), [0.5, 1]), TypeError, "y"),
        (lambda: models.MLP(4, 3).loss(np.ones((2, 4)), [0, 1, 2]), ValueError, "y"),
        (lambda: models.LogisticRegression(4).loss(np.ones((2, 4)), [0, 2]), ValueError, "y"),
        (
            lambda: models.LinearRegression(4)([np.zeros(4)], np.ones((2, 4)), [0, 1]),
            ValueError,
            "params",
        ),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
