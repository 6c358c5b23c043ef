"""`python -m gdfast demo` and the command line's shell."""
from __future__ import annotations

import subprocess
import sys

from gdfast import demo
from gdfast.__main__ import main


def test_demo_rows_agree_with_the_reference():
    rows = demo.demo(size=1001, steps=50, dtype="float64")
    assert [row["rule"] for row in rows] == ["SGD", "Momentum", "Nesterov", "Adagrad",
                                             "Adadelta", "RMSprop", "Adam", "AdaMax",
                                             "Nadam", "AMSGrad"]
    for row in rows:
        assert row["max_rel_deviation"] <= 1e-12
        assert row["final_loss"] < row["initial_loss"]
        assert row["steps_per_s"] > 0


def test_demo_command_prints_the_table(capsys):
    assert main(["demo", "--size", "500", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert "max rel dev" in out and "AMSGrad" in out and len(out.splitlines()) == 12


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "gdfast", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("gdfast ") and "OpenMP" in result.stdout
