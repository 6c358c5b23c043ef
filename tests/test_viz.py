"""Figures: written, of the requested size, not blank, hyper-parameters on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from gdfast import gallery, viz  # noqa: E402

SMALL = (320, 200)


def pixel_std(path) -> float:
    """Standard deviation of the grey levels: 0 for a blank image."""
    with Image.open(path) as image:
        return float(np.asarray(image.convert("L"), dtype=np.float64).std())


def image_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def legend_texts(figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


@pytest.fixture(scope="module")
def saddle_paths():
    return gallery.run_all("saddle", 150, rules=("SGD", "Adam", "Adadelta"))


def test_blank_measure_can_fail(tmp_path):
    # The non-blank check means something: an empty figure has no pixel variance.
    path = viz.save_figure(viz.new_figure(SMALL), tmp_path / "blank.png")
    assert pixel_std(path) == 0.0


@pytest.mark.parametrize("size", [SMALL, (333, 211)])
def test_trajectory_plot_written_at_size_with_hyperparameters(tmp_path, saddle_paths, size):
    figure = viz.plot_trajectories("saddle", saddle_paths, tmp_path / "saddle.png", size=size)
    assert image_size(tmp_path / "saddle.png") == size
    assert pixel_std(tmp_path / "saddle.png") > 10
    labels = legend_texts(figure)
    assert any(label.startswith("Adam lr=0.01 β=(0.9, 0.999) ε=1e-08") for label in labels)
    assert any(label.startswith("Adadelta lr=1 ρ=0.9 ε=1e-06") for label in labels)
    # Steps to the target: SGD needs 582 from this start, so not within 150.
    assert any("SGD lr=0.01  [not within budget]" == label for label in labels)
    assert "x² − y²" in figure._suptitle.get_text()


def test_palette_png_is_smaller_and_keeps_the_rule_colours(tmp_path, saddle_paths):
    full = tmp_path / "full.png"
    small = tmp_path / "small.png"
    viz.plot_trajectories("saddle", saddle_paths, full, size=(480, 300))
    viz.plot_trajectories("saddle", saddle_paths, small, size=(480, 300), colors=32)
    with Image.open(small) as image:
        assert image.mode == "P" and image.size == (480, 300)
        palette = np.array(image.getpalette()[:96]).reshape(-1, 3)
    assert small.stat().st_size < full.stat().st_size
    # Adam's pink survives quantization (nearest palette entry within a few levels).
    adam = np.array([0xE3, 0x77, 0xC2])
    assert np.min(np.abs(palette - adam).sum(axis=1)) < 40


def test_animation_frames_grow(tmp_path, saddle_paths):
    path = viz.animate_trajectories(
        "saddle", saddle_paths, tmp_path / "saddle.gif", size=SMALL, frames=4, colors=32
    )
    with Image.open(path) as gif:
        assert gif.size == SMALL
        assert gif.n_frames == len(viz.frame_steps(150, 4)) == 4
        gif.seek(0)
        first = np.asarray(gif.convert("L"), dtype=float)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("L"), dtype=float)
    assert first.std() > 10 and not np.array_equal(first, last)


def test_frame_steps_are_log_spaced_and_end_at_the_last_step():
    steps = viz.frame_steps(1000, 10)
    assert steps[0] == 0 and steps[-1] == 1000
    assert np.all(np.diff(steps) > 0)
    assert steps[len(steps) // 2] < 100  # half the frames for the first tenth
    with pytest.raises(ValueError, match="frames"):
        viz.frame_steps(10, 1)


def test_loss_curves_from_trajectories_and_from_a_mapping(tmp_path, saddle_paths):
    figure = viz.plot_loss_curves(saddle_paths, tmp_path / "loss.png", size=SMALL)
    assert figure.axes[0].get_yscale() == "symlog"  # the saddle's J goes negative
    assert image_size(tmp_path / "loss.png") == SMALL and pixel_std(tmp_path / "loss.png") > 5
    figure = viz.plot_loss_curves(
        {"Adam lr=0.1": [1.0, 0.5, 0.2], "SGD lr=0.1": [1.0, 0.9]},
        size=SMALL,
        title="lr in the labels",
    )
    assert figure.axes[0].get_yscale() == "log"
    assert legend_texts(figure) == ["Adam lr=0.1", "SGD lr=0.1"]
    with pytest.raises(ValueError, match="curves"):
        viz.plot_loss_curves({"bad": [[1.0, 2.0]]})
    with pytest.raises(TypeError, match=r"curves\[0\]"):
        viz.plot_loss_curves(["not a trajectory"])


def test_histories_in_both_shapes(tmp_path):
    per_epoch = [
        {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "lr": 0.01, "note": "x"}
        for e in range(1, 6)
    ]
    columns = {"train_loss": [2.0, 1.0, 0.7], "val_loss": [2.1, 1.3, 1.1]}
    assert viz.history_series(per_epoch)["val_loss"] == pytest.approx(
        [1.2 / e for e in range(1, 6)]
    )
    assert "note" not in viz.history_series(per_epoch)
    figure = viz.plot_histories(
        {"Adam lr=0.001": per_epoch, "SGD lr=0.1": columns}, tmp_path / "history.png", size=SMALL
    )
    assert image_size(tmp_path / "history.png") == SMALL
    assert "Adam lr=0.001 val_loss" in legend_texts(figure)
    with pytest.raises(ValueError, match="histories"):
        viz.plot_histories({"x": {"accuracy": [0.5]}})
    with pytest.raises(TypeError, match="history"):
        viz.history_series(3)


def synthetic_bench() -> dict:
    rows = []
    for rule, limit in (("SGD", 20.0), ("Adam", 18.0)):
        for backend, gbps in (
            ("gdfast", 0.8 * limit),
            ("reference", 0.1 * limit),
            ("roofline", limit),
            ("torch-foreach", 0.5 * limit),
        ):
            for dtype in ("float32", "float64"):
                rows.append(
                    {
                        "rule": rule,
                        "dtype": dtype,
                        "size": 1_000_000,
                        "threads": 2,
                        "backend": backend,
                        "median_s": 1e-3,
                        "gbps": gbps,
                        "percent_of_limit": 80.0 if backend == "gdfast" else None,
                    }
                )
    # The bench's composite case has a name for a size; it must not confuse the default.
    rows.append(
        {
            "rule": "SGD",
            "dtype": "float32",
            "size": "model",
            "elements": 10_000_000,
            "threads": 2,
            "backend": "gdfast",
            "median_s": 1e-2,
            "gbps": 5.0,
            "percent_of_limit": 50.0,
        }
    )
    return {"header": {"cpu": "test CPU"}, "rows": rows}


def test_benchmark_chart(tmp_path):
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(synthetic_bench()))
    figure = viz.plot_benchmark(source, tmp_path / "bench.png", figure_size=(480, 300))
    assert image_size(tmp_path / "bench.png") == (480, 300)
    assert pixel_std(tmp_path / "bench.png") > 10
    title = figure._suptitle.get_text()
    assert "float32" in title and "1,000,000" in title and "2 thread" in title
    assert legend_texts(figure) == [
        "gdfast",
        "reference",
        "torch-foreach",
        "machine limit (roofline)",
    ]
    heights = sorted(round(p.get_height(), 6) for p in figure.axes[0].patches)
    assert heights == sorted([16.0, 2.0, 10.0, 14.4, 1.8, 9.0])
    assert [t.get_text() for t in figure.axes[0].texts] == ["80%", "80%"]


def test_benchmark_errors_name_the_problem():
    with pytest.raises(ValueError, match="rows"):
        viz.plot_benchmark({"header": {}})
    with pytest.raises(ValueError, match=r"rows'\]\[0\]"):
        viz.plot_benchmark({"rows": [{"rule": "SGD"}]})
    with pytest.raises(ValueError, match="dtype"):
        viz.plot_benchmark(synthetic_bench(), dtype="float16")
    with pytest.raises(ValueError, match="size"):
        viz.plot_benchmark(synthetic_bench(), size=10)


def test_benchmark_named_size():
    figure = viz.plot_benchmark(synthetic_bench(), size="model", figure_size=(400, 300))
    assert "model (10,000,000 parameters)" in figure._suptitle.get_text()
    assert [round(p.get_height(), 6) for p in figure.axes[0].patches] == [5.0]


def test_sweep_grid(tmp_path):
    results = {
        rule: gallery.sweep(rule, "ravine", 500, learning_rates=(0.01, 0.1, 1.0))
        for rule in ("SGD", "Adam")
    }
    figure = viz.plot_sweep(results, tmp_path / "sweep.png", size=SMALL, title="ravine")
    assert image_size(tmp_path / "sweep.png") == SMALL
    # One number per converged cell: SGD converges at 0.1 only within 500 steps.
    cells = [t.get_text() for t in figure.axes[0].texts]
    sgd = [p for p in results["SGD"] if p.converged]
    assert len(cells) == sum(p.converged for r in results.values() for p in r)
    assert [p.lr for p in sgd] == [0.1] and str(sgd[0].steps_to) in cells


def test_errors_name_the_argument(tmp_path, saddle_paths):
    with pytest.raises(ValueError, match="size"):
        viz.plot_trajectories("saddle", saddle_paths, size=(10, 10))
    with pytest.raises(ValueError, match="colors"):
        viz.save_figure(viz.new_figure(SMALL), tmp_path / "x.png", colors=1)
    with pytest.raises(ValueError, match="path"):
        viz.save_figure(viz.new_figure(SMALL), tmp_path / "x.svg", colors=16)
    with pytest.raises(ValueError, match=r"trajectories\[0\]"):
        viz.plot_trajectories("ravine", saddle_paths)
    with pytest.raises(ValueError, match="frame_ms"):
        viz.animate_trajectories("saddle", saddle_paths, tmp_path / "x.gif", frame_ms=0)
