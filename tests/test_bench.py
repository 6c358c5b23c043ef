"""`python -m gdfast bench`: rows, byte counts, limits, output files, filters, bad arguments.
(Timings are measured and reported, never asserted.)"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import gdfast
from gdfast import bench
from gdfast.__main__ import main

TINY = ["--dtypes", "float32", "--sizes", "1e3", "--threads", "1", "--rounds", "1"]


def test_bytes_per_element_follow_each_rules_traffic():
    assert bench.bytes_per_element(gdfast.Adam, np.float32) == 28  # p, g, m, v in; p, m, v out
    assert bench.bytes_per_element(gdfast.SGD, np.float64) == 24  # p, g in; p out
    assert bench.bytes_per_element(gdfast.AMSGrad, np.float32) == 36
    assert bench.bytes_per_element(gdfast.Adadelta, np.float64) == 56


def test_model_has_200_tensors_and_about_ten_million_parameters():
    shapes = bench.model_shapes()
    assert len(shapes) == 200
    total = sum(int(np.prod(shape)) for shape in shapes)
    assert 9.9e6 < total < 10.1e6


def test_roofline_kernel_adds_the_gradient_everywhere():
    params = [np.ones(70_001, np.float32), np.full(5, 2.0)]
    grads = [np.full(70_001, 0.5, np.float32), np.full(5, 1.0)]
    states = (
        [np.zeros(70_001, np.float32), np.zeros(5)],
        [np.ones(70_001, np.float32), np.ones(5)],
    )
    gdfast._kernels.roofline(params, grads, states)
    np.testing.assert_array_equal(params[0], 1.5)
    np.testing.assert_array_equal(params[1], 3.0)
    np.testing.assert_array_equal(states[0][0], 0.5)
    np.testing.assert_array_equal(states[1][1], 2.0)


def test_roofline_streams_write_only_the_masked_slots():
    p, g, m, v = (np.full(70_001, value, np.float32) for value in (1.0, 0.5, 2.0, 4.0))
    gdfast._kernels.roofline([p], [g], ([m], [v]), written=0b1100)  # LAMB's pass 1
    np.testing.assert_array_equal(p, 1.0)
    np.testing.assert_array_equal(g, 0.5)
    np.testing.assert_array_equal(m, 3.5)  # + p + g
    np.testing.assert_array_equal(v, 5.5)
    gdfast._kernels.roofline([p], [m], ([v],), written=0b1)  # its pass 2
    np.testing.assert_array_equal(p, 10.0)  # 1 + 3.5 + 5.5
    np.testing.assert_array_equal(m, 3.5)
    before = [a.copy() for a in (p, g)]
    gdfast._kernels.roofline([p], [g], (), written=0)  # a sum: reads only
    for a, b in zip((p, g), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "states, written", [((), 0b100), ((), 0b11), (([np.zeros(3)],) * 3, 0b11111), ((), -2)]
)
def test_roofline_refuses_masks_it_cannot_run(states, written):
    with pytest.raises(ValueError, match="written"):
        gdfast._kernels.roofline([np.zeros(3)], [np.zeros(3)], states, written)


def test_sweeps_follow_each_kernels_traffic():
    lamb = gdfast.LAMB([np.zeros(8, np.float32)])
    assert lamb.sweeps(0) == (
        (("param", "grad"), ("exp_avg", "exp_avg_sq")),
        (("exp_avg", "exp_avg_sq"), ("param",)),
    )
    decaying = gdfast.LAMB([np.zeros(8)], weight_decay=0.1, decoupled_weight_decay=True)
    assert decaying.sweeps(0)[0] == (("grad",), ("param", "exp_avg", "exp_avg_sq"))
    adafactor = gdfast.Adafactor([np.zeros((4, 5)), np.zeros(5)])
    assert [len(adafactor.sweeps(k)) for k in (0, 1)] == [3, 2]
    assert bench.sweep_bytes(adafactor.sweeps(1), 4) == 28  # θ, g, V in, V out; θ, g in, θ out
    # Schedule-Free's per-tensor weight sums are not a stream
    assert gdfast.ScheduleFreeAdamW([np.zeros(8)]).sweeps(0) == (
        (("grad",), ("param", "z", "exp_avg_sq")),
    )


def tiny_run(rules, sizes=(1000, bench.MODEL), **options):
    """One round of `rules`, float32, at `sizes` (1e3 and the 200-tensor model), 1 thread, no
    torch unless `options` say (bench.run's keywords)."""
    options = {"with_torch": False, **options}
    return bench.run(
        rules,
        ["float32"],
        list(sizes),
        [1],
        rounds=1,
        seconds_per_timing=0.001,
        progress=False,
        **options,
    )


def test_run_restores_gdfast_and_torch_thread_counts():
    """torch.set_num_threads is process-wide (and sets OpenMP's count, which gdfast's default
    follows): a run on one thread must leave both as it found them."""
    torch = pytest.importorskip("torch")
    gdfast.set_num_threads(None)
    default, torch_before = gdfast.get_num_threads(), torch.get_num_threads()
    tiny_run(["SGD"], [1000], with_reference=False, with_torch=True)
    assert torch.get_num_threads() == torch_before
    assert gdfast.get_num_threads() == default
    with gdfast.threads(None):
        assert gdfast.get_num_threads() == default


def test_run_reports_every_backend_with_consistent_figures():
    result = tiny_run(["Adam", "SGD"])
    assert {"cpu", "gdfast", "numpy", "kernel_isa"} <= set(result["header"])
    rows = result["rows"]
    assert {row["backend"] for row in rows} == {"gdfast", "roofline", "reference"}
    assert len(rows) == 2 * 2 * 3
    for row in rows:
        bytes_per_step = (
            bench.bytes_per_element(getattr(gdfast, row["rule"]), np.float32) * row["elements"]
        )
        assert row["gbps"] == pytest.approx(bytes_per_step / row["median_s"] / 1e9)
        assert row["median_s"] > 0
    model = [row for row in rows if row["size"] == bench.MODEL]
    assert all(row["elements"] > 9.9e6 for row in model)
    limit = {(r["rule"], r["size"]): r["median_s"] for r in rows if r["backend"] == "roofline"}
    for row in rows:
        assert row["percent_of_limit"] == pytest.approx(
            100 * limit[(row["rule"], row["size"])] / row["median_s"]
        )
    table = bench.format_table(result)
    assert "Adam" in table and "model 10.0M" in table and "% limit" in table
    assert "torch not installed" in table and "x torch" not in table
    assert "can exceed 100%" in table


def test_table_columns_are_aligned_and_separated():
    """Every cell sits under its title, two spaces at least from the next: no two columns
    run together, whatever a cell's width ("model 10.0M" next to "float32")."""
    result = tiny_run(["SGD"])
    lines = bench.format_table(result).splitlines()
    at = next(i for i, text in enumerate(lines) if text.startswith("rule"))
    title, dashes, rows = lines[at], lines[at + 1], lines[at + 2 : at + 4]
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    assert len(spans) == len(re.split(r"\s{2,}", title)) == 9  # 8 + reference
    for row in (title, *rows):
        cells = [row[begin:end].strip() for begin, end in spans]
        assert all(cells), row  # no cell outside its column
        assert all(row[end : end + 2].strip() == "" for _, end in spans), row
    assert [row[spans[2][0] : spans[2][1]].strip() for row in rows] == ["1,000", "model 10.0M"]
    assert lines[at + 4] == ""  # then the explanation of each column


def test_rule_names_any_case(capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--rules",
                "adam,AMSGRAD,adaMax",
                *TINY,
                "--no-reference",
                "--no-torch",
                "--quiet",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert {r["rule"] for r in json.loads(out.read_text())["rows"]} == {"Adam", "AMSGrad", "AdaMax"}


def test_quick_default_and_full_matrix():
    parser = __import__("argparse").ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    quick = parser.parse_args(["bench"])
    assert quick.rules is None and not quick.full
    assert bench.QUICK_RULES == ("SGD", "Adam", "RMSprop")
    full = bench.estimate_seconds(
        [(r, "float32", s, 1) for r in "ab" for s in (1000, 10**7)], 7, 0.02, True, True
    )
    assert full > bench.estimate_seconds([("a", "float32", 1000, 1)], 7, 0.02, True, True)


def test_command_writes_json_and_respects_filters(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--rules",
                "Nadam",
                "--dtypes",
                "float64",
                "--sizes",
                "1e3,2e3",
                "--threads",
                "1",
                "--rounds",
                "1",
                "--no-reference",
                "--quiet",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert {(r["rule"], r["dtype"], r["size"], r["threads"]) for r in data["rows"]} == {
        ("Nadam", "float64", 1000, 1),
        ("Nadam", "float64", 2000, 1),
    }
    assert "reference" not in {r["backend"] for r in data["rows"]}
    assert "Nadam" in capsys.readouterr().out


def test_command_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    assert (
        main(
            [
                "bench",
                "--rules",
                "SGD,Adam",
                *TINY,
                "--no-torch",
                "--quiet",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rules", "Adamw"], "unknown rule 'Adamw'"),
        (["--sizes", "0"], "expected a size >= 1"),
        (["--sizes", "big"], "expected a size such as 1e6"),
        (["--dtypes", "float16"], "expected a comma-separated subset"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["bench", *argv])
    assert message in capsys.readouterr().err


def test_two_pass_rules_count_their_second_pass():
    # LAMB: p, g, m, v in, p, m, v out (28 B), then p, g in, p out (12 B)
    assert bench.bytes_per_element(gdfast.LAMB, np.float32) == 40
    factored = gdfast.Adafactor([np.zeros((4, 5), np.float32)])
    assert bench.bytes_per_element(gdfast.Adafactor, np.float32, factored) == 24  # no V


@pytest.mark.parametrize(
    "size, shape", [(10**7, (3125, 3200)), (12, (3, 4)), (13, (1, 13)), (16, (4, 4))]
)
def test_matrix_shape_is_exact_and_nearly_square(size, shape):
    assert bench.matrix_shape(size) == shape
    assert bench.case_shapes("Adafactor", size) == [shape]
    assert bench.case_shapes("Adam", size) == [(size,)]


def test_two_pass_limit_and_muon_gflops_rows():
    result = tiny_run(["LAMB", "Muon"], [4096], with_reference=False)
    rows = {(r["rule"], r["backend"]): r for r in result["rows"]}
    assert ("LAMB", "roofline") in rows and ("Muon", "roofline") not in rows
    assert rows[("LAMB", "gdfast")]["gbps"] == pytest.approx(
        40 * 4096 / rows[("LAMB", "gdfast")]["median_s"] / 1e9
    )
    muon = {backend: row for (rule, backend), row in rows.items() if rule == "Muon"}
    assert set(muon) == {"gdfast", "newton-schulz", "matmul"}
    assert muon["gdfast"]["percent_of_limit"] is None
    # 64 x 64: A X is 2 · 64³ flops
    assert muon["matmul"]["gflops"] == pytest.approx(2 * 64**3 / muon["matmul"]["median_s"] / 1e9)
    table = bench.format_table(result)
    muon_line = next(line for line in table.splitlines() if line.startswith("Muon"))
    assert "NS GFLOP/s" in table and "%" not in muon_line
