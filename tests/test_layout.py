"""The package's layout: every module imports, the old module paths still answer, and the
command line lists every command."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys

import pytest

import gdfast
from gdfast import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = sorted(info.name for info in pkgutil.walk_packages(gdfast.__path__, prefix="gdfast."))


def test_the_walk_sees_the_packages():
    packages = ("gdfast.train.loop", "gdfast.viz.figures", "gdfast.cli.train", "gdfast.hogwild")
    for name in (*packages, "gdfast.gallery.runs", "gdfast.gallery.sweeps"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


# The first address of each public name, as README.md and docs/ give it -> its home now.
OLD_PATHS = {
    "gdfast.training": ("gdfast.train", ("fit", "History", "make_optimizer", "STOP_REASONS")),
    "gdfast.schedules": ("gdfast.train.schedules", ("Schedule", "StepDecay", "parse")),
    "gdfast.strategies": ("gdfast.train.strategies", ("Shuffle", "Curriculum", "EarlyStopping")),
    "gdfast.models": ("gdfast.train.models", ("Model", "MLP", "LinearRegression", "BatchNorm")),
    "gdfast.gradcheck": ("gdfast.train.gradcheck", ("check_grad", "numerical_gradient")),
    "gdfast.viz": ("gdfast.viz.surface_plots", ("plot_trajectories", "animate_trajectories")),
    "gdfast.surfaces": ("gdfast.gallery.surfaces", ("Surface", "BEALE", "SURFACES", "get")),
}


@pytest.mark.parametrize("path", sorted(OLD_PATHS))
def test_the_documented_module_paths_still_work(path):
    home, names = OLD_PATHS[path]
    old, new = importlib.import_module(path), importlib.import_module(home)
    for name in names:
        assert getattr(old, name) is getattr(new, name)
    assert set(names) <= set(old.__all__)


def test_the_package_names_the_same_objects():
    assert gdfast.fit is gdfast.train.fit and gdfast.History is gdfast.train.History
    assert gdfast.check_grad is gdfast.train.check_grad
    assert gdfast.models.MLP is gdfast.train.models.MLP
    assert gdfast.schedules.parse is gdfast.train.schedules.parse
    assert gdfast.strategies.Shuffle is gdfast.train.strategies.Shuffle


def test_help_lists_every_command():
    """`python -m gdfast --help` (a fresh interpreter) names each command of gdfast.cli."""
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse's subparsers
    assert set(commands) >= {"demo", "bench", "train", "plot", "distributed"}
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    )
    result = subprocess.run(
        [sys.executable, "-m", "gdfast", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for command in commands:
        assert f"    {command}" in result.stdout, (command, result.stdout)
    bare = subprocess.run(
        [sys.executable, "-m", "gdfast"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert bare.returncode == 0 and bare.stdout == result.stdout
