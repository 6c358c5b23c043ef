"""Hogwild! matrix factorization: serial C against the literal reference, threaded modes
against serial, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gdfast import hogwild

from conftest import relative_error


def ratings(
    n_users: int = 30,
    n_items: int = 20,
    rank: int = 3,
    n: int = 200,
    seed: int = 0,
    noise: float = 0.05,
):
    """Triplets sampled from a rank-`rank` matrix plus noise."""
    rng = np.random.default_rng(seed)
    left, right = rng.standard_normal((n_users, rank)), rng.standard_normal((n_items, rank))
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    values = np.einsum("nk,nk->n", left[users], right[items]) + noise * rng.standard_normal(n)
    return users, items, values


@pytest.mark.parametrize("rule", ["sgd", "adagrad"])
@pytest.mark.parametrize(
    "dtype, tolerance", [(np.float32, 1e-5), (np.float64, 1e-12)], ids=["float32", "float64"]
)
def test_serial_equals_reference(dtype, tolerance, rule):
    users, items, values = ratings()
    settings = dict(
        rank=4,
        rule=rule,
        lr=0.05,
        decay=0.9,
        l2=0.01,
        epochs=3,
        seed=4,
        dtype=dtype,
        init_scale=0.5,
    )
    fast = hogwild.fit_mf(users, items, values, mode="serial", **settings)
    slow = hogwild.reference_fit_mf(users, items, values, **settings)
    assert fast.user_factors.dtype == dtype
    assert relative_error(fast.user_factors, slow.user_factors) <= tolerance
    assert relative_error(fast.item_factors, slow.item_factors) <= tolerance
    if rule == "adagrad":
        assert relative_error(fast.user_sum_sq, slow.user_sum_sq) <= tolerance
        assert relative_error(fast.item_sum_sq, slow.item_sum_sq) <= tolerance
    for a, b in zip(fast.history, slow.history):
        assert a["progressive_loss"] == pytest.approx(b["progressive_loss"], rel=tolerance)
    assert fast.history[-1]["loss"] < fast.history[0]["progressive_loss"]


def test_one_rating_by_hand():
    """Both rows step from their values before the step."""
    model = hogwild.fit_mf(
        [0],
        [0],
        [2.0],
        rank=2,
        rule="sgd",
        lr=0.1,
        l2=0.5,
        epochs=1,
        mode="serial",
        init_scale=1.0,
        seed=1,
    )
    start = hogwild.fit_mf([0], [0], [2.0], rank=2, epochs=0, init_scale=1.0, seed=1)
    u, v = start.user_factors[0], start.item_factors[0]
    error = u @ v - 2.0
    np.testing.assert_allclose(model.user_factors[0], u - 0.1 * (error * v + 0.5 * u), rtol=1e-15)
    np.testing.assert_allclose(model.item_factors[0], v - 0.1 * (error * u + 0.5 * v), rtol=1e-15)


@pytest.mark.parametrize("rule, lr, epochs", [("sgd", 0.05, 10), ("adagrad", 0.3, 20)])
@pytest.mark.parametrize("mode", ["hogwild", "locked"])
def test_threads_converge_like_serial(mode, rule, lr, epochs):
    users, items, values = ratings(n_users=300, n_items=200, n=20_000, seed=1)
    settings = dict(rank=3, rule=rule, lr=lr, l2=1e-3, epochs=epochs, seed=2, init_scale=1.0)
    serial = hogwild.fit_mf(users, items, values, mode="serial", **settings)
    threaded = hogwild.fit_mf(users, items, values, mode=mode, n_threads=2, **settings)
    # both down to the noise level (0.05) of a rank-3 matrix, within 5% of each other
    assert serial.history[-1]["rmse"] < 0.06
    assert threaded.history[-1]["rmse"] == pytest.approx(serial.history[-1]["rmse"], rel=0.05)


def test_one_thread_is_the_serial_algorithm():
    users, items, values = ratings(seed=2)
    serial = hogwild.fit_mf(users, items, values, mode="serial", epochs=2)
    hog = hogwild.fit_mf(users, items, values, mode="hogwild", n_threads=1, epochs=2)
    np.testing.assert_array_equal(serial.user_factors, hog.user_factors)


def test_predict():
    users, items, values = ratings(seed=3)
    model = hogwild.fit_mf(users, items, values, mode="serial", epochs=2, rank=3)
    expected = np.einsum("nk,nk->n", model.user_factors[users], model.item_factors[items])
    np.testing.assert_allclose(model.predict(users, items), expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"items: indices must lie in \[0, "):
        model.predict([0], [10**6])


USERS, ITEMS, VALUES = ratings(n=10)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((USERS[:-1], ITEMS, VALUES), {}, ValueError, r"users: expected 10 entries"),
        (
            (USERS, ITEMS, np.where(np.arange(10) == 2, np.nan, VALUES)),
            {},
            ValueError,
            r"ratings: contains NaN",
        ),
        ((USERS, ITEMS, VALUES), {"n_users": 1}, ValueError, r"users: indices must lie in"),
        ((USERS - 100, ITEMS, VALUES), {"n_users": 50}, ValueError, r"users: indices must be >= 0"),
        ((USERS.astype(float), ITEMS, VALUES), {}, TypeError, r"users: expected integer indices"),
        ((USERS, ITEMS, VALUES), {"rank": 0}, ValueError, r"rank: expected an int >= 1"),
        ((USERS, ITEMS, VALUES), {"lr": -1.0}, ValueError, r"lr: expected a finite number >= 0"),
        ((USERS, ITEMS, VALUES), {"rule": "adam"}, ValueError, r"rule: expected one of"),
    ],
)
def test_bad_input_is_named(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        hogwild.fit_mf(*args, **kwargs)
