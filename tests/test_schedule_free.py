"""The train/eval switch of the Schedule-Free rules (docs/spec.md section 1.3): the step in
train mode only, the mode in state dicts and state files, and gdfast.fit's use of it.
(Kernel against reference, bad input, threads: the catalogue's tests, tests/rules_table.py.)"""

from __future__ import annotations

import io

import numpy as np
import pytest

import gdfast
from gdfast import reference
from gdfast.catalogue.rules.schedule_free import to_eval, to_train
from gdfast.models import MLP
from gdfast.training import fit

RULES = ["ScheduleFreeAdamW", "ScheduleFreeSGD"]
BACKENDS = [gdfast.optim, reference]


def stepped(module, rule, steps=5):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    optimizer = getattr(module, rule)(params, lr=0.1)
    for _ in range(steps):
        optimizer.step([rng.standard_normal(p.shape) for p in params])
    return optimizer


@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
@pytest.mark.parametrize("rule", RULES)
def test_eval_gives_x_and_train_gives_y_back(rule, module):
    optimizer = stepped(module, rule)
    beta1 = optimizer._beta1()
    y = [p.copy() for p in optimizer.params]
    x = [p.copy() for p in y]
    to_eval(x, optimizer.state["z"], beta1)
    optimizer.eval()
    assert not optimizer.training
    for p, expected in zip(optimizer.params, x):
        np.testing.assert_array_equal(p, expected)
    optimizer.eval()  # a no-op in eval mode
    for p, expected in zip(optimizer.params, x):
        np.testing.assert_array_equal(p, expected)
    optimizer.train()
    assert optimizer.training
    back = [p.copy() for p in x]
    to_train(back, optimizer.state["z"], beta1)
    for p, expected, before in zip(optimizer.params, back, y):
        np.testing.assert_array_equal(p, expected)
        np.testing.assert_allclose(p, before, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
@pytest.mark.parametrize("rule", RULES)
def test_step_in_eval_mode_raises_and_changes_nothing(rule, module):
    optimizer = stepped(module, rule)
    optimizer.eval()
    before = [p.copy() for p in optimizer.params]
    state = optimizer.state_dict()
    with pytest.raises(ValueError, match=r"eval mode .* call optimizer.train\(\)"):
        optimizer.step([np.ones_like(p) for p in optimizer.params])
    for p, b in zip(optimizer.params, before):
        np.testing.assert_array_equal(p, b)
    assert optimizer.steps == tuple(state["steps"])


@pytest.mark.parametrize("rule", RULES)
def test_state_dict_and_state_file_record_the_mode(rule):
    optimizer = stepped(gdfast.optim, rule)
    optimizer.eval()
    file = io.BytesIO()
    gdfast.save_state(optimizer, file)
    file.seek(0)
    fresh = getattr(gdfast.optim, rule)([np.zeros((4, 3)), np.zeros(5)], lr=0.1)
    assert fresh.training
    fresh.load_state_dict(gdfast.load_state(file, fresh))
    assert not fresh.training
    fresh.train()
    assert fresh.training
    assert all(float(m) == 1.0 for m in fresh.state_dict()["state"]["training"])
    mixed = fresh.state_dict()
    mixed["state"]["training"][0][...] = 0.0
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\['training'\]: expected the same"):
        fresh.load_state_dict(mixed)
    assert fresh.training


@pytest.mark.parametrize("rule", RULES)
def test_fit_steps_in_train_mode_and_evaluates_in_eval_mode(rule):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    labels = (X[:, 0] > 0).astype(np.int64)
    model = MLP(5, 2, hidden=(8,), seed=0)
    optimizer = getattr(gdfast.optim, rule)(model.params, lr=0.01)
    modes = {"step": set(), "evaluate": set()}

    class Watched:
        def __call__(self, params, X_batch, y_batch):
            modes["step"].add(optimizer.training)
            return model(params, X_batch, y_batch)

        def evaluate(self, params, X_val, y_val):
            modes["evaluate"].add(optimizer.training)
            return model.evaluate(params, X_val, y_val)

    optimizer.eval()  # fit switches to train mode itself
    history = fit(
        Watched(),
        model.params,
        X,
        labels,
        optimizer,
        batch_size=16,
        epochs=3,
        validation=(X, labels),
        eval_every=2,
        progress=False,
    )
    assert history.stop_reason == "completed"
    assert modes == {"step": {True}, "evaluate": {False}}
    assert not optimizer.training  # the parameters returned are x
