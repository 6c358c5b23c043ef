"""gdfast._validation, the one module of argument checks: the flag rule everywhere, the
checks the training, Hogwild! and distributed modules share."""

from __future__ import annotations

import io

import numpy as np
import pytest

import gdfast
from gdfast import _validation as check
from gdfast.train import fit, models
from gdfast.train.strategies import Curriculum, EarlyStopping

YES_OR_NO = [
    (True, True),
    (False, False),
    (np.True_, True),
    (np.False_, False),
    (1, True),
    (0, False),
]
NOT_A_FLAG = [2, -1, 0.5, "yes", "", None, [True], np.array([True, False])]


@pytest.mark.parametrize("value, expected", YES_OR_NO)
def test_flag_accepts_bools_and_0_or_1(value, expected):
    assert check.flag("f", value) is expected


@pytest.mark.parametrize("value", NOT_A_FLAG)
def test_flag_refuses_anything_else_and_shows_it(value):
    with pytest.raises(TypeError, match=r"^f: expected True or False, got "):
        check.flag("f", value)


def _objective(params, X, y):
    return 0.0, [np.zeros_like(params[0])]


@pytest.mark.parametrize("value, expected", YES_OR_NO)
def test_one_flag_rule_in_the_optimizers_and_in_training(value, expected):
    """Before, an optimizer took maximize=1 while fit refused shuffle=1 ("expected a bool"):
    both call sites now follow _validation.flag."""
    w = np.zeros(2)
    assert gdfast.Adam([w], maximize=value).maximize is expected
    assert Curriculum([1.0, 2.0], shuffle_slice=value).shuffle_slice is expected
    assert EarlyStopping(restore_best=value).restore_best is expected
    assert models.MLP(2, 2, hidden=(2,), batch_norm=value).batch_norm is expected
    shown = io.StringIO()
    history = fit(
        _objective,
        [w],
        np.zeros((4, 1)),
        shuffle=value,
        epochs=1,
        progress=value,
        progress_file=shown,
    )
    assert history.epochs == 1 and bool(shown.getvalue()) is expected


@pytest.mark.parametrize("value", [2, "yes", None])
def test_one_flag_message_in_the_optimizers_and_in_training(value):
    w = np.zeros(2)
    message = r"expected True or False, got "
    for name, build in [
        ("maximize", lambda: gdfast.Adam([w], maximize=value)),
        ("shuffle_slice", lambda: Curriculum([1.0, 2.0], shuffle_slice=value)),
        ("restore_best", lambda: EarlyStopping(restore_best=value)),
        ("batch_norm", lambda: models.MLP(2, 2, hidden=(2,), batch_norm=value)),
        ("progress", lambda: fit(_objective, [w], np.zeros((4, 1)), progress=value)),
    ]:
        with pytest.raises(TypeError, match=f"^{name}: {message}"):
            build()
    with pytest.raises(TypeError, match=f"^shuffle: {message}"):
        fit(_objective, [w], np.zeros((4, 1)), shuffle="yes", progress=False)


def test_integer_and_float_dtype_and_is_sparse():
    assert check.integer("n", np.int64(3), 1) == 3 and type(check.integer("n", 3, 1)) is int
    with pytest.raises(TypeError, match="n: expected an int, got bool"):
        check.integer("n", True, 0)
    with pytest.raises(ValueError, match="n: expected an int >= 1, got 0"):
        check.integer("n", 0, 1)
    assert check.float_dtype("dtype", "float32") == np.float32
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got float16"):
        check.float_dtype("dtype", np.float16)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got 'nope'"):
        check.float_dtype("dtype", "nope")
    scipy_sparse = pytest.importorskip("scipy.sparse")
    assert check.is_sparse(scipy_sparse.csr_matrix((2, 2))) and not check.is_sparse(np.zeros(2))


def test_parameters_one_array_or_a_list():
    w, v = np.zeros(3), np.zeros((2, 2), dtype=np.float32)
    assert check.parameters("params", w)[0] is w
    assert [a is b for a, b in zip(check.parameters("params", (w, v)), (w, v))] == [True, True]
    with pytest.raises(TypeError, match=r"^params: expected an ndarray or a list of ndarrays"):
        check.parameters("params", "w")
    with pytest.raises(ValueError, match=r"^params\[1\]: expected a C-contiguous array"):
        check.parameters("params", [w, np.zeros((3, 3))[:, 0]])
    with pytest.raises(ValueError, match=r"^params: expected a C-contiguous array"):
        check.parameters("params", np.zeros((3, 3))[:, 0])


def test_one_of():
    assert check.one_of("mode", "serial", ("serial", "locked")) == "serial"
    assert check.one_of("mode", "locked", {"serial": 0, "locked": 1}) == "locked"
    with pytest.raises(TypeError, match=r"^mode: expected one of 'serial', 'locked', got int$"):
        check.one_of("mode", 1, ("serial", "locked"))
    with pytest.raises(ValueError, match=r"^mode: expected one of 'serial', 'locked', got 'x'$"):
        check.one_of("mode", "x", ("serial", "locked"))
    # convention() is one_of over CONVENTIONS, its messages unchanged
    with pytest.raises(TypeError, match=r"^c: expected one of 'paper', 'torch', 'keras', got int$"):
        check.convention("c", 3)
    with pytest.raises(
        ValueError, match=r"^c: expected one of 'paper', 'torch', 'keras', got 'x'$"
    ):
        check.convention("c", "x")


def test_unit_interval_and_the_checks_built_on_it():
    assert check.unit_interval("rho", 1) == 1.0 and check.unit_interval("b", 0.0, closed=False) == 0
    with pytest.raises(ValueError, match=r"^b: expected a number in \[0, 1\), got 1.0$"):
        check.unit_interval("b", 1.0, closed=False)
    with pytest.raises(ValueError, match=r"^rho: expected a number in \[0, 1\], got 1.5$"):
        check.decay_rate("rho", 1.5)
    with pytest.raises(TypeError, match=r"^rho: expected a real number, got str$"):
        check.decay_rate("rho", "0.5")
    assert check.betas("betas", (0.9, 0)) == (0.9, 0.0)
    with pytest.raises(ValueError, match=r"^betas\[1\]: expected a number in \[0, 1\), got 1.0$"):
        check.betas("betas", [0.9, 1.0])
    with pytest.raises(TypeError, match=r"^betas\[1\]: expected a real number, got bool$"):
        check.betas("betas", (1.5, True))  # both converted before either is range-checked
