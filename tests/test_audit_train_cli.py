"""The `train` command's dtype-policy and seed options given bad values (the audit's): each
ends in status 2 (or argparse's exit) with a message naming the option, never a traceback."""

from __future__ import annotations

import argparse

import pytest

from gdfast.cli import train as train_cli

SMALL = ["--data", "synthetic", "--samples", "64", "--features", "5", "--epochs", "1"]


def run(capsys, *argv):
    parser = argparse.ArgumentParser(prog="gdfast")
    train_cli.add_parser(parser.add_subparsers())
    try:
        args = parser.parse_args(["train", *SMALL, "--no-progress", *argv])
        status = args.command(args)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--optimizer", "muon", "--state-dtype", "int8"], "--optimizer"),
        (["--optimizer", "lamb", "--state-dtype", "bfloat16"], "--optimizer"),
        (["--optimizer", "adafactor", "--state-dtype", "int8"], "--optimizer"),
        (["--state-dtype", "int8", "--block-size", "17"], "--block-size"),
        (["--state-dtype", "int8", "--block-size", "0"], "--block-size"),
        (["--state-dtype", "int8", "--block-size", "8192"], "--block-size"),
        (["--state-dtype", "int8", "--block-size", "1e3"], "--block-size"),
        (["--dtype", "float64", "--state-dtype", "bfloat16"], "--state-dtype"),
        (["--state-dtype", "int4"], "--state-dtype"),
        (["--rounding", "up"], "--rounding"),
        # nothing to act on: no 8-bit blocks, nothing rounded to 16 bits
        (["--block-size", "64"], "--block-size"),
        (["--state-dtype", "bfloat16", "--block-size", "64"], "--block-size"),
        (["--rounding", "stochastic"], "--rounding"),
        (["--state-dtype", "int8", "--rounding", "stochastic"], "--rounding"),
    ],
)
def test_bad_policy_options_are_refused_by_name(capsys, argv, option):
    status, _, err = run(capsys, *argv)
    assert status == 2 and option in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["--optimizer", "adam", "--state-dtype", "int8", "--block-size", "64"],
        ["--optimizer", "muon", "--model", "mlp"],
        ["--optimizer", "adafactor", "--model", "softmax"],
        ["--optimizer", "adam", "--state-dtype", "bfloat16", "--rounding", "stochastic"],
    ],
)
def test_good_policy_options_train(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status in (0, None) and "final:" in out, err


@pytest.mark.parametrize("argv", [["--seed", "-1"], ["--rounding", "stochastic", "--seed", "-1"]])
def test_a_negative_seed_is_refused_by_name(capsys, argv):
    status, _, err = run(capsys, *argv)
    assert status == 2 and "--seed" in err, err
