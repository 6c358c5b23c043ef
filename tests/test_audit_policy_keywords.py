"""The dtype policy keywords (state_dtype, master_weights, rounding, seed, block_size) given
odd values, through gdfast.Adam, make_optimizer and fit (the audit's).

Contract: a value is refused with a TypeError/ValueError naming its keyword, or accepted;
an accepted policy steps, and its state goes through save_state/load_state/load_state_dict
unchanged (a policy that can be built must be one that can be saved and loaded).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gdfast
from gdfast.train.optimizer import make_optimizer

KEYWORDS = ("state_dtype", "master_weights", "rounding", "seed", "block_size")

odd_values = st.one_of(
    st.sampled_from(["float32", "bfloat16", "int8", "nearest", "stochastic", "", "INT8"]),
    st.sampled_from([np.str_("int8"), np.array("int8"), np.array(["int8"]), ["int8"]]),
    st.sampled_from([np.array(["nearest", "stochastic"]), np.array("stochastic")]),
    st.sampled_from([True, False, np.bool_(True), 1, 0, None]),
    st.sampled_from([64, 256, 4096, np.int16(64), np.int64(128), 2**70, -64, 3, 64.0]),
    st.sampled_from([np.float32, np.dtype("int8"), object()]),
)


def _build(keyword, value, via):
    params = [np.linspace(-1, 1, 300, dtype=np.float32)]
    policy = {keyword: value}
    if keyword in ("block_size",):
        policy["state_dtype"] = "int8"
    if via == "class":
        return gdfast.Adam(params, lr=0.01, **policy), params
    return make_optimizer("adam", params, lr=0.01, **policy), params


def _check(keyword, value, via):
    try:
        optimizer, params = _build(keyword, value, via)
    except (TypeError, ValueError) as error:
        assert keyword in str(error), f"{keyword}={value!r}: {error}"
        return
    optimizer.step([np.cos(np.arange(300, dtype=np.float32))])
    saved = io.BytesIO()
    gdfast.save_state(optimizer, saved)
    loaded = gdfast.load_state(io.BytesIO(saved.getvalue()), optimizer)
    before = optimizer.state_dict()
    optimizer.load_state_dict(loaded)
    after = optimizer.state_dict()
    for name, buffers in before["state"].items():
        for a, b in zip(buffers, after["state"][name]):
            assert a.tobytes() == b.tobytes()


@settings(max_examples=80, deadline=None)
@given(keyword=st.sampled_from(KEYWORDS), value=odd_values, via=st.sampled_from(["class", "name"]))
def test_a_policy_keyword_is_refused_by_name_or_round_trips(keyword, value, via):
    if keyword in ("state_dtype", "rounding") and isinstance(value, np.ndarray) and value.ndim:
        return  # the known defects below (a 1-element array accepted, a longer one unclear)
    _check(keyword, value, via)


def test_state_dtype_given_as_a_one_element_array():
    _check("state_dtype", np.array(["int8"]), "class")


@pytest.mark.parametrize("keyword", ["rounding", "state_dtype"])
def test_an_array_of_two_strings(keyword):
    _check(keyword, np.array(["nearest", "stochastic"]), "class")


def test_fit_refuses_policy_keywords_for_a_built_optimizer():
    params = np.ones(4, dtype=np.float32)
    optimizer = gdfast.Adam([params])
    before = params.copy()
    with pytest.raises(TypeError, match="state_dtype"):
        gdfast.fit(
            lambda p, X, y: (0.0, [np.ones_like(p)]),
            params,
            np.zeros((8, 1)),
            optimizer=optimizer,
            state_dtype="int8",
            epochs=1,
            progress=False,
        )
    assert params.tobytes() == before.tobytes()


@pytest.mark.parametrize("name", ["muon", "lamb", "adafactor", "schedulefreeadamw"])
@pytest.mark.parametrize("policy", [{"state_dtype": "int8"}, {"state_dtype": "bfloat16"}])
def test_rules_without_a_policy_refuse_one_by_name(name, policy):
    with pytest.raises(ValueError, match="state_dtype"):
        make_optimizer(name, [np.ones((4, 4), np.float32)], **policy)


@pytest.mark.parametrize(
    "policy, keyword",
    [
        ({"block_size": 64}, "block_size"),
        ({"state_dtype": "bfloat16", "block_size": 512}, "block_size"),
        ({"rounding": "stochastic"}, "rounding"),
        ({"state_dtype": "int8", "rounding": "stochastic"}, "rounding"),
    ],
)
@pytest.mark.parametrize("via", ["class", "make_optimizer"])
def test_a_keyword_with_nothing_to_act_on_is_refused(policy, keyword, via):
    """block_size without 8-bit state, stochastic rounding with nothing stored in 16 bits
    (float32 parameters and state, no param_copy; 8-bit codes are always nearest): refused
    by name, never accepted and ignored."""
    params = [np.linspace(-1, 1, 300, dtype=np.float32)]
    with pytest.raises(ValueError, match=keyword):
        if via == "class":
            gdfast.Adam(params, lr=0.01, **policy)
        else:
            make_optimizer("adam", params, lr=0.01, **policy)


def test_the_same_keywords_act_where_they_have_something_to_do():
    params = [np.linspace(-1, 1, 300, dtype=np.float32)]
    gdfast.Adam(params, lr=0.01, state_dtype="int8", block_size=64)
    gdfast.Adam(params, lr=0.01, state_dtype="bfloat16", rounding="stochastic")
    copy = [np.zeros(300, np.float16)]
    gdfast.Adam(params, lr=0.01, param_copy=copy, rounding="stochastic")
    gdfast.Adam([np.zeros(300, np.float16)], lr=0.01, rounding="stochastic")
