"""`python -m gdfast demo` and the command line's shell."""

from __future__ import annotations

import subprocess
import sys

from gdfast.cli import demo, main
from gdfast.rule_names import rule_names


def test_demo_rows_agree_with_the_reference():
    rows = demo.demo(size=1001, steps=50, dtype="float64")
    assert [row["rule"] for row in rows] == list(rule_names())
    for row in rows:
        assert row["max_rel_deviation"] <= 1e-12
        assert row["final_loss"] < row["initial_loss"]
        assert row["steps_per_s"] > 0


def test_demo_command_prints_the_table(capsys):
    assert main(["demo", "--size", "500", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert (
        "max rel dev" in out and "AMSGrad" in out and len(out.splitlines()) == 2 + len(rule_names())
    )


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "gdfast", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("gdfast ") and "OpenMP" in result.stdout


def test_bare_command_prints_help_with_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "bench", "train", "plot", "distributed"):
        assert command in out


def test_source_tree_without_extension_says_what_to_run(tmp_path):
    """gdfast imported from a clone where nothing was built: the ImportError says so and
    names the command, instead of "No module named 'gdfast._kernels'"."""
    from pathlib import Path

    import gdfast._build_check as build_check

    (tmp_path / "src_c").mkdir()
    (tmp_path / "setup.py").write_text("")
    package = tmp_path / "gdfast"
    package.mkdir()
    (package / "__init__.py").write_text("from . import _build_check  # noqa: F401\n")
    (package / "_build_check.py").write_text(Path(build_check.__file__).read_text())
    result = subprocess.run(
        [sys.executable, "-c", "import gdfast"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert any("ImportError: gdfast was imported from its source tree" in line for line in lines)
    assert "gdfast._kernels, gdfast._hogwild" in result.stderr
    assert "pip install -e ." in result.stderr and "build_ext --inplace" in result.stderr


def test_installed_package_without_extension_says_reinstall(tmp_path):
    import gdfast._build_check as build_check

    text = build_check.message(["gdfast._kernels"], tmp_path / "site-packages" / "gdfast")
    assert "installation is incomplete" in text and "pip install" in text


def test_rule_names_one_spelling_any_case():
    import argparse

    import pytest

    from gdfast import rule_names, train as training

    assert rule_names.canonical(" adamax ") == "AdaMax"
    assert rule_names.canonical("AMSGRAD") == "AMSGrad"
    assert rule_names.parse_list("sgd,Adam") == ["SGD", "Adam"]
    assert rule_names.parse_list("ALL") == list(rule_names.rule_names())
    with pytest.raises(ValueError, match="unknown rule 'adamw2'"):
        rule_names.canonical("adamw2")
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated"):
        rule_names.parse_list("adam,nope")
    import numpy as np

    params = [np.zeros(3)]
    assert type(training.make_optimizer("NADAM", params)).__name__ == "Nadam"
    assert training.make_optimizer("Reference.AdaMax", params).__module__ == "gdfast.reference"
    with pytest.raises(ValueError, match="optimizer: unknown rule"):
        training.make_optimizer("adamm", params)


def test_every_command_line_reads_rule_names_in_any_case():
    from gdfast.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["bench", "--rules", "ADAM,sgd"]).rules == ["Adam", "SGD"]
    assert parser.parse_args(["train", "--optimizer", "Adam"]).optimizer == ["Adam"]
    assert parser.parse_args(["train", "--optimizer", "adam"]).optimizer == ["Adam"]
    assert parser.parse_args(["plot", "--out", "x", "--rules", "rmsprop"]).rules == ["RMSprop"]
    assert parser.parse_args(["demo", "--rules", "adagrad"]).rules == ["Adagrad"]
