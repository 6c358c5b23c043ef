"""gdfast._progress.Progress, the one progress display of the trainers."""

from __future__ import annotations

import io
import sys

import pytest

from gdfast._progress import Progress


def test_disabled_shows_nothing():
    stream = io.StringIO()
    display = Progress(False, 3, unit="epoch", desc="d", stream=stream)
    display.advance()
    display.retarget(5, "e")
    display.report({"loss": 1.0}, "a line")
    display.close()
    assert display.bar is None and display.tick is None and stream.getvalue() == ""


def test_plain_lines_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if not installed
    stream = io.StringIO()
    display = Progress(True, 2, unit="epoch", desc="run", stream=stream)
    assert display.bar is None and display.tick is None
    display.advance()
    display.report({"loss": 1.0}, "epoch 1/2  loss 1")
    display.retarget(3, "more")
    display.report({"loss": 0.5}, "epoch 2/3  loss 0.5")
    display.close()
    assert stream.getvalue() == "epoch 1/2  loss 1\nepoch 2/3  loss 0.5\n"
    assert (display.total, display.desc) == (3, "more")


def test_tqdm_bar():
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    display = Progress(True, 4, unit="step", desc="epoch 1/2", stream=stream)
    assert display.bar is not None and display.tick == display.bar.update
    display.advance(2)
    display.retarget(6, "epoch 2/2")
    display.report({"loss": "0.25"}, "not printed with a bar")
    display.close()
    shown = stream.getvalue()
    assert display.bar.n == 2 and display.bar.total == 6
    assert "epoch 2/2" in shown and "loss=0.25" in shown and "not printed" not in shown
