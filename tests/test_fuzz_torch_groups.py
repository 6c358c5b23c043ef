"""Fuzzing gdfast.torch's param groups after construction: any key of any group set to an
odd value (numbers out of range, NaN, inf, huge, wrong types, tensors, tuples of the wrong
length), then a step.  The contract: the step runs, or raises TypeError/ValueError naming
the group, with the parameters and the state exactly as before; nothing else (no
KeyError, no RuntimeError from deep inside, no crash)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from test_torch_group_checks import CLASSES, _stepped  # noqa: E402

ODD = st.sampled_from(
    [
        -1.0,
        -0.0,
        0.0,
        0.5,
        1.0,
        2.0,
        math.nan,
        math.inf,
        -math.inf,
        1e308,
        10**30,
        -3,
        7,
        True,
        False,
        None,
        "x",
        "original",
        (0.9,),
        (0.9, 0.999, 0.5),
        (1.0, 1.0),
        (0.5, math.nan),
        [0.9, 0.99],
        np.float32(0.5),
        np.int64(3),
        torch.tensor(0.5),
        torch.tensor([0.1, 0.2]),
    ]
)


def _tensors(params, optimizer):
    out = [p.detach().clone() for p in params]
    for p in params:
        for _, value in sorted(optimizer.state[p].items()):
            if isinstance(value, torch.Tensor):
                out.append(value.detach().clone())
    return out


@pytest.mark.parametrize("name", CLASSES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_group_value_steps_or_is_refused_cleanly(name, data):
    params, optimizer = _stepped(name)
    group_index = data.draw(st.sampled_from([0, 1]), label="group")
    group = optimizer.param_groups[group_index]
    key = data.draw(st.sampled_from(sorted(k for k in group if k != "params")), label="key")
    value = data.draw(ODD, label="value")
    group[key] = value
    before = _tensors(params, optimizer)
    try:
        optimizer.step()
    except (TypeError, ValueError) as error:
        message = str(error)
        named = (f"param_groups[{group_index}]", "param group", "eval mode")  # (train_mode)
        assert any(words in message for words in named), error
        after = _tensors(params, optimizer)
        assert len(after) == len(before)
        assert all(torch.equal(a, b) for a, b in zip(before, after)), "written before refusing"
