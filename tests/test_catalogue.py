"""The catalogue is whole: every rule declared in gdfast.catalogue is present in every
layer (C kernel, reference, gdfast and gdfast.reference classes, torch adapter or an
explicit "no torch equivalent", bench, gallery, test table), and the reference runs
without the compiled extension."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gdfast
from gdfast import _kernels, bench, gallery, reference, rule_names
from gdfast.catalogue import CATALOGUE, Rule, TorchEquivalent, spec_rules
from rules_table import RULES

NAMES = [rule.rule for rule in CATALOGUE]


@pytest.mark.parametrize("rule", CATALOGUE, ids=NAMES)
def test_every_layer_has_the_rule(rule):
    assert issubclass(rule, Rule) and rule.__name__ == rule.rule
    for module in (gdfast, gdfast.optim, reference):
        bound = getattr(module, rule.rule)
        assert issubclass(bound, rule), f"{module.__name__}.{rule.rule}"
    assert rule.rule in gdfast.__all__ and rule.rule in reference.__all__
    # the C kernel, with a row-sparse form where the declaration takes RowGrad (AdamW
    # does not: its decay has no lazy form, though Adam's kernel has one)
    assert rule.kernel in _kernels.rule_names()
    assert gdfast.optim.KERNELS[rule.rule].takes_rows or not rule.rows
    # the NumPy core, public in gdfast.reference
    assert getattr(reference, rule.numpy_core.__name__) is rule.numpy_core
    assert f"{rule.numpy_core.__name__}_rows" in reference.ROW_CORES or not rule.rows
    # the gallery: a learning rate on every surface
    assert set(rule.gallery_lr) == set(gallery.BUDGET)
    # the test table
    assert rule.rule in RULES


def test_every_kernel_is_a_rules_kernel_and_every_row_a_rule():
    assert set(_kernels.rule_names()) == {rule.kernel for rule in CATALOGUE}
    assert set(RULES) == set(NAMES)


def test_the_rule_names_are_the_spec_rules():
    assert rule_names.rule_names() == tuple(rule.rule for rule in spec_rules())
    assert gallery.RULE_NAMES == rule_names.rule_names()
    assert set(gallery.GALLERY_LR["beale"]) == set(rule_names.rule_names())


@pytest.mark.parametrize("rule", CATALOGUE, ids=NAMES)
def test_torch_equivalent_is_declared_and_used(rule):
    """torch_equivalent is a TorchEquivalent or an explicit None; when given, gdfast.torch
    has that class, and torch's flags in it select this rule there; the bench times it."""
    torch = pytest.importorskip("torch")
    import gdfast.torch as gt

    assert "torch_equivalent" in vars(rule) or any(
        "torch_equivalent" in vars(base) for base in rule.__mro__[1:]
    )
    equivalent = rule.torch_equivalent
    if equivalent is None:
        return
    assert isinstance(equivalent, TorchEquivalent)
    adapter = getattr(gt, equivalent.name)
    assert issubclass(adapter, getattr(torch.optim, equivalent.name))
    optimizer = adapter([torch.zeros(2, requires_grad=True)], **equivalent.options)
    group = optimizer.param_groups[0]
    chosen = optimizer._rule(group)
    assert chosen.rule == (rule.variant_of or rule.rule)
    for name in rule.hyperparameter_names:
        assert name in optimizer._kernel_arguments(chosen, group) or name in rule.fixed
    if rule.variant_of is None:
        name, options = bench.TORCH_EQUIVALENT[rule.rule]
        assert name == equivalent.name and options == {"lr": rule.lr.default, **equivalent.options}


def _package_without_extensions(tmp_path: Path) -> Path:
    """A copy of the gdfast package with no compiled module in it."""
    source = Path(gdfast.__file__).parent
    shutil.copytree(
        source,
        tmp_path / "gdfast",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "*.html", "__pycache__"),
    )
    return tmp_path


def test_the_reference_runs_without_the_compiled_extension(tmp_path):
    """gdfast.reference imports and steps with the extensions absent (pure-Python
    fallbacks for the step's helpers), with the same bits as here; the first use of a
    kernel class raises the build message."""
    root = _package_without_extensions(tmp_path)
    code = """
import sys
# an editable install of gdfast (pip install -e .) answers for gdfast.* from its own tree,
# built: without it, only the copy on PYTHONPATH is seen, as in a tree where nothing was built
sys.meta_path[:] = [f for f in sys.meta_path if not f.__module__.startswith("__editable__")]
import numpy as np
import gdfast.reference as reference
from gdfast.catalogue import _fastpath
assert _fastpath.OwnedMemory.__module__ == "gdfast.catalogue._fastpath", "fallback expected"
for name in ("Adam", "Nadam", "RMSprop"):
    opt = getattr(reference, name)([np.linspace(-1, 1, 5), np.zeros((2, 2))], convention="torch")
    for step in range(3):
        opt.step([np.full(5, 0.5 - step), None if step == 1 else np.ones((2, 2))])
    try:
        opt.step([opt.params[0], None])
    except ValueError as error:
        assert "shares memory with params[0]" in str(error)
    print(name, [p.tobytes().hex() for p in opt.params])
import gdfast
try:
    gdfast.Adam
except ImportError as error:
    print("ImportError:", "compiled extension" in str(error))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "ImportError: True"
    for line in lines[:-1]:
        name, hexes = line.split(" ", 1)
        opt = getattr(reference, name)(
            [np.linspace(-1, 1, 5), np.zeros((2, 2))], convention="torch"
        )
        for step in range(3):
            opt.step([np.full(5, 0.5 - step), None if step == 1 else np.ones((2, 2))])
        assert hexes == str([p.tobytes().hex() for p in opt.params])
