"""gdfast.optim.KERNELS: each rule's C functional core, the one the classes run.

Called directly as a functional core (parameters, gradients, state lists, steps, the
hyper-parameters), `KERNELS[rule]` must update parameters and state exactly as the class's
step does: a two-pass rule's core (LAMB, Adafactor) included, made once by
`gdfast.optim.kernel` through the rule's `bind_core`.
"""

import numpy as np
import pytest

from gdfast import optim
from gdfast.catalogue import CATALOGUE

SHAPES = ((7, 5), (13,), ())


def _arrays(seed, dtype):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.rule)
def test_kernel_core_steps_as_the_class(rule, dtype):
    cls = getattr(optim, rule.__name__)
    by_class = cls(_arrays(0, dtype))
    by_core = cls(_arrays(0, dtype))  # its state lists and hyper-parameters, stepped by hand
    core = optim.KERNELS[rule.rule]
    steps = np.zeros(len(SHAPES), dtype=np.int64)
    for step in range(3):
        grads = _arrays(100 + step, dtype)
        by_class.step([g.copy() for g in grads])
        steps += 1
        core(
            list(by_core.params),
            grads,
            *[list(states) for states in by_core._state_lists],
            steps.copy(),
            **by_core._core_hyper,
        )
    for ours, theirs, start in zip(by_core.params, by_class.params, _arrays(0, dtype)):
        assert not np.array_equal(ours, start)  # it did write
        np.testing.assert_array_equal(ours, theirs)
    for ours, theirs in zip(by_core._state_lists, by_class._state_lists):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def test_kernel_is_made_once():
    """The classes run the very object in KERNELS (bind_backend binds nothing again)."""
    for rule in CATALOGUE:
        assert getattr(optim, rule.__name__)._core is optim.KERNELS[rule.rule]
