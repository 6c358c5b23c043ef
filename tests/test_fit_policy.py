"""gdfast.fit and the `train` command take the optimizer's dtype policy (issue 12):
state_dtype, master_weights, rounding, block_size (and fit's seed for stochastic rounding)
go to the optimizer fit builds, which checks them itself (the same errors as the class), so a
fit with the keywords is bitwise a fit with the optimizer built by hand, and a bad value
raises before the first step with parameters untouched."""

from __future__ import annotations

import numpy as np
import pytest

import gdfast
from gdfast.train import models
from test_train_cli import run as run_cli

RNG = np.random.default_rng(0)
X = RNG.standard_normal((96, 12)).astype(np.float32)
Y = RNG.integers(0, 3, 96)
X_VAL = RNG.standard_normal((32, 12)).astype(np.float32)
Y_VAL = RNG.integers(0, 3, 32)


def train(optimizer, model=None, **keywords):
    model = model or models.MLP(12, 3, hidden=(16,), dtype=np.float32, seed=1)
    optimizer = optimizer(model.params) if callable(optimizer) else optimizer
    history = gdfast.fit(
        model,
        model.params,
        X,
        Y,
        optimizer,
        batch_size=16,
        epochs=2,
        validation=(X_VAL, Y_VAL),
        progress=False,
        **keywords,
    )
    return history, [p.copy() for p in model.params]


POLICIES = [
    {"state_dtype": "bfloat16"},
    {"state_dtype": "int8", "block_size": 32},
    {"state_dtype": "bfloat16", "rounding": "stochastic"},
]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: "-".join(map(str, p.values())))
def test_fit_with_policy_keywords_is_fit_with_the_optimizer_built_by_hand(policy):
    if policy.get("rounding") == "stochastic":
        pytest.importorskip("ml_dtypes")
    by_keywords, params = train("adam", lr=3e-3, seed=5, **policy)
    model = models.MLP(12, 3, hidden=(16,), dtype=np.float32, seed=1)
    seeded = {"seed": 5} if "rounding" in policy else {}
    built = gdfast.Adam(model.params, lr=3e-3, **policy, **seeded)
    by_hand, hand_params = train(built, model, seed=5)
    assert by_keywords.optimizer.policy.record() == built.policy.record()
    assert by_keywords.val_loss == by_hand.val_loss  # bitwise: the same floats
    assert by_keywords.train_loss == by_hand.train_loss
    for mine, theirs in zip(params, hand_params):
        np.testing.assert_array_equal(mine, theirs)
    # and the policy changed something: float32 state gives other numbers
    assert train("adam", lr=3e-3, seed=5)[0].val_loss != by_keywords.val_loss


def test_fit_seed_seeds_stochastic_rounding():
    pytest.importorskip("ml_dtypes")
    one = train("adam", lr=3e-3, seed=5, state_dtype="bfloat16", rounding="stochastic")[1]
    other = train("adam", lr=3e-3, seed=5, state_dtype="bfloat16", rounding="nearest")[1]
    assert any(not np.array_equal(a, b) for a, b in zip(one, other))


def test_fit_master_weights_with_bfloat16_parameters():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    target = RNG.standard_normal(12).astype(np.float32)

    def objective(params, X_batch, y_batch):  # least squares computed in float32
        w = params[0].astype(np.float32)
        residual = X_batch @ w - X_batch @ target
        grad = X_batch.T @ residual / len(X_batch)
        return float(0.5 * np.mean(residual**2)), [grad.astype(ml_dtypes.bfloat16)]

    def run(optimizer, **keywords):
        w = [np.zeros(12, dtype=ml_dtypes.bfloat16)]
        optimizer = optimizer(w) if callable(optimizer) else optimizer
        history = gdfast.fit(
            objective, w, X, None, optimizer, batch_size=16, epochs=3, progress=False, **keywords
        )
        return history, w[0]

    history, w = run("adam", lr=1e-2, master_weights=True)
    by_hand, w_hand = run(lambda params: gdfast.Adam(params, lr=1e-2, master_weights=True))
    assert "master" in history.optimizer.state
    assert history.train_loss == by_hand.train_loss
    np.testing.assert_array_equal(w.view(np.uint16), w_hand.view(np.uint16))
    assert history.train_loss[-1] < history.train_loss[0]


BAD = [
    ({"state_dtype": "float8"}, ValueError),
    ({"state_dtype": "int8", "block_size": 24}, ValueError),
    ({"state_dtype": "int8", "block_size": 8192}, ValueError),
    ({"state_dtype": "int8", "block_size": 2.0}, TypeError),
    ({"rounding": "up"}, ValueError),
    ({"master_weights": True}, ValueError),  # float32 parameters
    ({"master_weights": "yes"}, TypeError),
]


@pytest.mark.parametrize("policy, error", BAD, ids=lambda v: str(v))
def test_fit_refuses_a_bad_policy_before_training_with_the_class_message(policy, error):
    model = models.MLP(12, 3, hidden=(16,), dtype=np.float32, seed=1)
    before = [p.copy() for p in model.params]
    calls = []

    def objective(params, X_batch, y_batch):
        calls.append(1)
        return model(params, X_batch, y_batch)

    with pytest.raises(error) as from_class:
        gdfast.Adam(model.params, **policy)
    with pytest.raises(error) as from_fit:
        gdfast.fit(objective, model.params, X, Y, "adam", epochs=1, progress=False, **policy)
    assert str(from_fit.value) == str(from_class.value)
    assert str(from_fit.value).split(":")[0] in policy  # names the argument
    assert not calls
    for param, saved in zip(model.params, before):
        np.testing.assert_array_equal(param, saved)


def test_fit_refuses_policy_keywords_with_an_optimizer_already_built():
    model = models.MLP(12, 3, hidden=(16,), dtype=np.float32, seed=1)
    with pytest.raises(TypeError, match=r"^state_dtype: .*gdfast.Adam\(params, state_dtype="):
        gdfast.fit(
            model, model.params, X, Y, gdfast.Adam(model.params), state_dtype="int8", epochs=1
        )


def test_fit_refuses_a_policy_for_a_rule_that_is_not_elementwise():
    model = models.MLP(12, 3, hidden=(16,), dtype=np.float32, seed=1)
    with pytest.raises(ValueError, match="state_dtype.*not element-wise"):
        gdfast.fit(model, model.params, X, Y, "lamb", state_dtype="bfloat16", epochs=1)


# ------------------------------------------------------------------ the train command
CLI = ["--data", "synthetic", "--samples", "200", "--features", "8", "--epochs", "2"]


def test_train_command_state_dtype(capsys):
    pytest.importorskip("sklearn")
    status, out, err = run_cli(
        capsys, *CLI, "--no-progress", "--state-dtype", "int8", "--block-size", "64"
    )
    assert status == 0, err
    assert out.splitlines()[-1].startswith("final:")


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--state-dtype", "int8", "--block-size", "10"], "--block-size: block_size:"),
        (["--state-dtype", "bfloat16", "--dtype", "float64"], "--state-dtype: state_dtype:"),
        (["--state-dtype", "int8", "--optimizer", "lamb"], "--optimizer LAMB: state_dtype"),
    ],
)
def test_train_command_refuses_a_bad_policy(capsys, argv, option):
    status, out, err = run_cli(capsys, *CLI, *argv)
    assert status == 2
    assert err.startswith(f"train: {option}")
