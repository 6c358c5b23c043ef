"""lowp.h's float16 conversions over every float32 bit pattern (2^32) and every float16 one,
against SPEC L.3's integer rule written literally and against the F16C instructions
and for stochastic rounding four random words per input (tests/lowp_f16_exhaustive.c;
about a minute)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def test_float16_conversions_every_pattern(tmp_path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the exhaustive check")
    binary = tmp_path / "lowp_f16_exhaustive"
    flags = ["-O2", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
    subprocess.run(
        [
            compiler,
            *flags,
            f"-I{HERE.parent / 'src_c'}",
            str(HERE / "lowp_f16_exhaustive.c"),
            "-o",
            str(binary),
        ],
        check=True,
    )
    run = subprocess.run([str(binary)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert "narrow: 0 differ from SPEC L.3, 0 from F16C" in run.stdout
    assert "widen: 0 do not come back, 0 differ" in run.stdout
    assert "stochastic: 0 differ from SPEC L.3" in run.stdout
