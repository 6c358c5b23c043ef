"""Bad input: a TypeError or ValueError naming the argument and what was expected, and
every parameter and every state entry bitwise as it was (validate all, then write)."""

from __future__ import annotations

import numpy as np
import pytest

import gdfast
from gdfast import reference
from rules_table import RULE_NAMES, bad_hyperparameters

BACKENDS = [gdfast.optim, reference]


def snapshot(optimizer):
    return (
        [p.tobytes() for p in optimizer.params],
        {name: [b.tobytes() for b in buffers] for name, buffers in optimizer.state.items()},
        optimizer.steps,
        optimizer.hyperparameters,
    )


def stepped(module, rule):
    """An optimizer on two float32 parameters, a few steps in, with non-trivial state."""
    params = [
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
        np.linspace(0, 1, 4, dtype=np.float32),
    ]
    optimizer = getattr(module, rule)(params)
    for _ in range(3):
        optimizer.step([np.full((2, 3), 0.3, np.float32), np.full(4, -0.2, np.float32)])
    return optimizer


def good_grads():
    return [np.full((2, 3), 0.1, np.float32), np.full(4, 0.1, np.float32)]


BAD_STEPS = {
    "too few gradients": (lambda o: [good_grads()[0]], ValueError, r"grads: expected 2 grad"),
    "too many gradients": (lambda o: good_grads() + [None], ValueError, r"grads: expected 2"),
    "not a list": (lambda o: {"a": 1}, TypeError, r"grads: expected an ndarray"),
    "shape mismatch": (
        lambda o: [np.zeros((3, 2), np.float32), good_grads()[1]],
        ValueError,
        r"grads\[0\]: shape \(3, 2\) does not match the parameter's shape \(2, 3\)",
    ),
    "dtype mismatch": (
        lambda o: [good_grads()[0], np.zeros(4, np.float64)],
        TypeError,
        r"grads\[1\]: dtype float64 does not match the parameter's dtype float32",
    ),
    "integer gradient": (
        lambda o: [good_grads()[0], np.zeros(4, np.int32)],
        TypeError,
        r"grads\[1\]: dtype int32 is not supported; expected float32 or float64",
    ),
    "complex gradient": (
        lambda o: [good_grads()[0], np.zeros(4, np.complex64)],
        TypeError,
        r"grads\[1\]: dtype complex64 is not supported",
    ),
    "object gradient": (
        lambda o: [good_grads()[0], np.zeros(4, object)],
        TypeError,
        r"grads\[1\]: dtype object is not supported",
    ),
    "list gradient": (
        lambda o: [good_grads()[0], [0.0] * 4],
        TypeError,
        r"grads\[1\]: expected a numpy.ndarray, got list",
    ),
    "gradient is a parameter": (
        lambda o: [good_grads()[0], o.params[1]],
        ValueError,
        r"grads\[1\]: shares memory with params\[1\]",
    ),
    "gradient is another parameter": (
        lambda o: [o.params[0], good_grads()[1]],
        ValueError,
        r"grads\[0\]: shares memory with params\[0\]",
    ),
    "gradient views a parameter": (
        lambda o: [good_grads()[0], o.params[1][::-1]],
        ValueError,
        r"grads\[1\]: shares memory with params\[1\]",
    ),
    "gradient is a state buffer": (
        lambda o: (
            [
                good_grads()[0],
                next(
                    o.state[n][1]
                    for n in reversed(o.state_names)
                    if o.state[n][1].shape == o.params[1].shape
                ),
            ]
            if o.state_names
            else [good_grads()[0], o.params[1]]
        ),
        ValueError,
        r"grads\[1\]: shares memory with",
    ),
}


@pytest.mark.parametrize("case", BAD_STEPS)
@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_bad_step_raises_and_changes_nothing(rule, module, case):
    optimizer = stepped(module, rule)
    make_grads, error, message = BAD_STEPS[case]
    grads = make_grads(optimizer)
    before = snapshot(optimizer)
    with pytest.raises(error, match=message):
        optimizer.step(grads)
    assert snapshot(optimizer) == before


BAD_PARAMS = {
    "not an array": ([[1.0, 2.0]], TypeError, r"params\[0\]: expected a numpy.ndarray, got list"),
    "integer": (
        [np.zeros(3, np.int64)],
        TypeError,
        r"params\[0\]: dtype int64 is not supported; expected float32 or float64",
    ),
    "complex": (np.zeros(3, np.complex128), TypeError, r"params: dtype complex128"),
    "int16": (np.zeros(3, np.int16), TypeError, r"params: dtype int16 is not supported"),
    "object": (np.zeros(3, object), TypeError, r"params: dtype object"),
    "non-contiguous": (
        np.zeros((4, 4))[:, ::2],
        ValueError,
        r"params: expected a C-contiguous array",
    ),
    "Fortran order": (
        np.asfortranarray(np.zeros((3, 4))),
        ValueError,
        r"params: expected a C-contiguous array",
    ),
    "read-only": (np.broadcast_to(np.zeros(1), (5,)), ValueError, r"params: expected a"),
    "a dict": ({"w": np.zeros(3)}, TypeError, r"params: expected an ndarray or a list"),
}


@pytest.mark.parametrize("case", BAD_PARAMS)
@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
def test_bad_params(module, case):
    params, error, message = BAD_PARAMS[case]
    with pytest.raises(error, match=message):
        module.Adam(params)


def test_read_only_parameter_message():
    theta = np.zeros(3)
    theta.flags.writeable = False
    with pytest.raises(ValueError, match=r"params: expected a writeable array"):
        gdfast.SGD(theta)


def test_parameters_sharing_memory():
    buffer = np.zeros(10)
    with pytest.raises(ValueError, match=r"params\[1\]: shares memory with params\[0\]"):
        gdfast.SGD([buffer[:6], buffer[4:]])
    with pytest.raises(ValueError, match=r"shares memory"):
        gdfast.SGD([buffer, buffer])


# every row's error inputs (rules_table.py), then one for the constructor alone
BAD_HYPER = bad_hyperparameters() + [
    ("Adam", {"beta1": 0.9}, TypeError, r"unexpected keyword argument 'beta1'"),
]


@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
@pytest.mark.parametrize("rule, hyper, error, message", BAD_HYPER)
def test_bad_hyperparameters(module, rule, hyper, error, message):
    with pytest.raises(error, match=message):
        getattr(module, rule)(np.zeros(3), **hyper)


@pytest.mark.parametrize("rule, hyper, error, message", BAD_HYPER[:-1])
def test_bad_hyperparameter_set_later_changes_nothing(rule, hyper, error, message):
    optimizer = stepped(gdfast.optim, rule)
    before = snapshot(optimizer)
    ((name, value),) = hyper.items()
    with pytest.raises(error, match=message):
        setattr(optimizer, name, value)
    assert snapshot(optimizer) == before


def _other_rule(rule):
    return RULE_NAMES[(RULE_NAMES.index(rule) + 1) % len(RULE_NAMES)]


BAD_STATE_DICTS = {
    "another rule": (
        lambda o, sd: stepped(gdfast.optim, _other_rule(o.rule)).state_dict(),
        ValueError,
        r"state_dict\['rule'\]: this is a",
    ),
    "missing key": (
        lambda o, sd: {k: v for k, v in sd.items() if k != "steps"},
        ValueError,
        r"state_dict: expected the keys",
    ),
    "wrong shape": (
        lambda o, sd: {
            **sd,
            "state": {n: [np.zeros((3, 2), np.float32), b[1]] for n, b in sd["state"].items()},
        },
        ValueError,
        r"expected shape \([\d, ]+\) and dtype float32",
    ),
    "wrong dtype": (
        lambda o, sd: {
            **sd,
            "state": {n: [b[0].astype(np.float64), b[1]] for n, b in sd["state"].items()},
        },
        ValueError,
        r"expected shape \([\d, ]+\) and dtype float32",
    ),
    "wrong count": (
        lambda o, sd: {**sd, "state": {n: b[:1] for n, b in sd["state"].items()}},
        ValueError,
        r"expected a list of 2 arrays",
    ),
    "negative step": (
        lambda o, sd: {**sd, "steps": [3, -1]},
        ValueError,
        r"state_dict\['steps'\]\[1\]: expected >= 0",
    ),
    "bad hyper": (
        lambda o, sd: {**sd, "hyperparameters": {**sd["hyperparameters"], "lr": -1}},
        ValueError,
        r"state_dict\['hyperparameters'\]\['lr'\]: expected a finite",
    ),
    "not a dict": (lambda o, sd: [sd], TypeError, r"state_dict: expected a dict"),
}


# SGD has no state buffers, so no buffer of its state dict can have a wrong shape.
STATE_DICT_CASES = [
    (rule, case)
    for rule in RULE_NAMES
    for case in BAD_STATE_DICTS
    if rule != "SGD" or case not in ("wrong shape", "wrong dtype", "wrong count")
]


@pytest.mark.parametrize("module", BACKENDS, ids=["gdfast", "reference"])
@pytest.mark.parametrize("rule, case", STATE_DICT_CASES)
def test_bad_state_dict_raises_and_changes_nothing(rule, case, module):
    optimizer = stepped(module, rule)
    make, error, message = BAD_STATE_DICTS[case]
    bad = make(optimizer, optimizer.state_dict())
    for _ in range(2):
        optimizer.step(good_grads())
    before = snapshot(optimizer)
    with pytest.raises(error, match=message):
        optimizer.load_state_dict(bad)
    assert snapshot(optimizer) == before


def test_not_a_state_file(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="file: not a gdfast state file"):
        gdfast.load_state(tmp_path / "other.npz")
