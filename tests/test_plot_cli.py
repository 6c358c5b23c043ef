"""`python -m gdfast plot`: the files it writes, their sizes, its argument errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from gdfast import cli  # noqa: E402
from gdfast.cli import plot as plot_cli  # noqa: E402


def run_plot(argv: list[str]) -> int:
    """Parse and run `plot` through a parser holding only this command (the shared
    gdfast CLI registers it through COMMAND_MODULES)."""
    parser = argparse.ArgumentParser(prog="gdfast")
    plot_cli.add_parser(parser.add_subparsers(dest="command_name", required=True))
    args = parser.parse_args(["plot", *argv])
    return args.command(args)


def check_image(path, size) -> None:
    with Image.open(path) as image:
        assert image.size == size
        assert float(np.asarray(image.convert("L"), dtype=float).std()) > 5


def test_writes_the_requested_figures_at_the_requested_size(tmp_path, capsys):
    out = tmp_path / "figures"
    assert (
        run_plot(
            [
                "--out",
                str(out),
                "--surface",
                "saddle",
                "ravine",
                "--steps",
                "60",
                "--gif",
                "--frames",
                "3",
                "--size",
                "300x200",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "ravine.gif",
        "ravine.png",
        "ravine_loss.png",
        "saddle.gif",
        "saddle.png",
        "saddle_loss.png",
    ]
    for name in names:
        check_image(out / name, (300, 200))
    with Image.open(out / "saddle.gif") as gif:
        assert gif.n_frames == 3
    assert capsys.readouterr().out.split() == [
        str(out / n)
        for n in (
            "saddle.png",
            "saddle_loss.png",
            "saddle.gif",
            "ravine.png",
            "ravine_loss.png",
            "ravine.gif",
        )
    ]


def test_benchmark_and_history_charts(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(
            {
                "header": {},
                "rows": [
                    {
                        "rule": "Adam",
                        "dtype": "float32",
                        "size": 1000,
                        "threads": 1,
                        "backend": backend,
                        "median_s": 1e-4,
                        "gbps": gbps,
                        "percent_of_limit": None,
                    }
                    for backend, gbps in (("gdfast", 10.0), ("roofline", 12.0))
                ],
            }
        )
    )
    history = tmp_path / "history.json"
    history.write_text(
        json.dumps(
            {
                "Adam lr=0.001": [
                    {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1},
                    {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7},
                ]
            }
        )
    )
    out = tmp_path / "out"
    assert (
        run_plot(
            [
                "--out",
                str(out),
                "--surface",
                "saddle",
                "--steps",
                "5",
                "--bench",
                str(bench),
                "--history",
                str(history),
                "--size",
                "320x240",
                "--colors",
                "0",
                "--no-loss",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["bench.png", "history.png", "saddle.png"]
    check_image(out / "bench.png", (320, 240))
    check_image(out / "history.png", (320, 240))
    with Image.open(out / "bench.png") as image:
        assert image.mode == "RGBA"  # --colors 0: full colour


def test_argument_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        run_plot(["--out", str(tmp_path), "--size", "300by200"])
    assert error.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as error:
        run_plot(["--out", str(tmp_path), "--surface", "himmelblau"])
    assert error.value.code == 2 and "himmelblau" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--bench: no such file"):
        run_plot(["--out", str(tmp_path), "--bench", str(tmp_path / "missing.json")])
    with pytest.raises(SystemExit, match="--colors"):
        run_plot(["--out", str(tmp_path), "--colors", "1"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": [{"rule": "Adam"}]}))
    with pytest.raises(SystemExit, match=r"plot: bench\['rows'\]\[0\]"):
        run_plot(
            ["--out", str(tmp_path), "--surface", "saddle", "--steps", "2", "--bench", str(bad)]
        )


@pytest.mark.skipif(
    "gdfast.cli.plot" not in cli.COMMAND_MODULES,
    reason="plot is not yet registered in gdfast/__main__.py COMMAND_MODULES",
)
def test_registered_in_the_gdfast_command_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gdfast",
            "plot",
            "--out",
            str(tmp_path),
            "--surface",
            "saddle",
            "--steps",
            "5",
            "--size",
            "200x150",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split()[0] == str(tmp_path / "saddle.png")
    check_image(tmp_path / "saddle.png", (200, 150))
