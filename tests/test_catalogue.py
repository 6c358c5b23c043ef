"""The catalogue is whole: every rule declared in gdfast.catalogue is present in every
layer (C kernel, reference, gdfast and gdfast.reference classes, torch adapter or an
explicit "no torch equivalent", bench, gallery, test table), every C rule file's entry is
in this build's gd_rules[] and belongs to a declaration, the catalogue finds its rules by
itself (and refuses a module without one), and the reference runs without the compiled
extension."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gdfast
from gdfast import _kernels, bench, gallery, reference, rule_names
from gdfast.catalogue import CATALOGUE, Rule, TorchEquivalent, _declarations, spec_rules
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


SOURCE_RULES = Path(__file__).resolve().parents[1] / "src_c" / "rules"


@pytest.mark.skipif(not SOURCE_RULES.is_dir(), reason="needs the source tree (src_c/rules)")
def test_every_c_rule_file_is_in_the_build_and_in_the_catalogue():
    """Each src_c/rules/<rule>.inc ends with its GD_RULE(...) entries (setup.py copies them
    into gd_rules[]): this build has exactly those kernels, and each is a declaration's."""
    entries = []
    for path in sorted(SOURCE_RULES.glob("*.inc")):
        lines = [line for line in path.read_text().splitlines() if line.startswith("GD_RULE")]
        assert lines, f"{path.name}: no GD_RULE line"
        entries += [re.fullmatch(r'GD_RULE\("(\w+)", .*\)', line).group(1) for line in lines]
    assert sorted(entries) == sorted(_kernels.rule_names())
    assert set(entries) == {rule.kernel for rule in CATALOGUE}


def test_the_catalogue_is_every_declaration_in_its_declared_order():
    orders = [vars(rule)["catalogue_order"] for rule in CATALOGUE]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    modules = {rule.__module__ for rule in CATALOGUE}
    rules_dir = Path(gdfast.catalogue.rules.__path__[0])
    assert modules == {f"gdfast.catalogue.rules.{p.stem}" for p in rules_dir.glob("[!_]*.py")}


def _package(tmp_path: Path, monkeypatch, name: str, modules: dict[str, str]):
    """A package `name` of rule modules, importable."""
    (tmp_path / name).mkdir()
    for module, text in modules.items():
        (tmp_path / name / f"{module}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


RULE_A = """
    from gdfast.catalogue.rules.sgd import SGD
    class A(SGD):
        rule = "A"
        catalogue_order = 2
"""


def test_discovery_orders_and_refuses_what_is_not_a_declaration(tmp_path, monkeypatch):
    b = RULE_A.replace('"A"', '"B"').replace("A(", "B(").replace("= 2", "= 1")
    found = _declarations(_package(tmp_path, monkeypatch, "found_ok", {"a": RULE_A, "b": b}))
    assert [rule.rule for rule in found] == ["B", "A"]
    helper = {"a": RULE_A, "_helper": "X = 1\n"}  # a private module: no rule needed
    assert len(_declarations(_package(tmp_path, monkeypatch, "found_helper", helper))) == 1
    empty = _package(tmp_path, monkeypatch, "found_empty", {"a": RULE_A, "b": "X = 1\n"})
    with pytest.raises(ImportError, match=r"found_empty\.b: no rule declared"):
        _declarations(empty)
    unordered = RULE_A.replace("catalogue_order = 2", "pass")
    with pytest.raises(TypeError, match="A: no catalogue_order"):
        _declarations(_package(tmp_path, monkeypatch, "found_unordered", {"a": unordered}))
    same = b.replace("= 1", "= 2")
    with pytest.raises(TypeError, match="A and B: the same catalogue_order|B and A"):
        _declarations(_package(tmp_path, monkeypatch, "found_same", {"a": RULE_A, "b": same}))


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
