"""Build of gdfast's extension modules (Cython + C99):
gdfast._kernels (the update rules, src_c/kernels.c), gdfast._hogwild (src_c/hogwild.c),
gdfast._formats (low-precision conversions, src_c/lowp.c) and
gdfast.distributed._server_kernels (AdaptiveRevision's server rule, src_c/adaptive_revision.c).

Flags, and why:
  -O3                  the kernels are plain loops that the compiler vectorizes with `omp simd`
  -fno-math-errno      sqrt never sets errno, so it vectorizes (Adam is ~6x slower without)
  -fno-trapping-math   FP exceptions are never observed, so selects with a division vectorize;
                       no result changes (unlike -ffast-math, which is never used)
  -ffp-contract=off    no fused multiply-add: the vector loop, its tail and every instruction-set
                       clone round exactly like the NumPy reference, for any thread split
  -fopenmp             when the compiler supports it; otherwise a warning and a serial build
  (no -fwrapv)         Python's CFLAGS carry it; removed: signed loop counters may not wrap,
                       so the span loops vectorize better, and UBSan sees signed overflow
No -march=native: AVX-512/AVX2 come from gcc target_clones in src_c/kernels.c, with a portable
default clone.

Switches (environment variables), for developers and CI:
  GDFAST_OPENMP=0         build without OpenMP even if the compiler has it (serial kernels)
  GDFAST_CYTHON_CHECKS=1  Cython's bounds and wraparound checks on (debugging)
  GDFAST_SANITIZE=address | undefined | address,undefined
                          -fsanitize=... -fno-omit-frame-pointer -g, and findings abort
                          (-fno-sanitize-recover).  An ASan build runs under
                          LD_PRELOAD=$(cc -print-file-name=libasan.so) (see .ci/sanitize)
  CC=clang                another compiler; OpenMP is probed with it (clang needs libomp)

Before anything else it writes src_c/rules_list.inc from src_c/rules/*.inc (write_rule_list):
the list of the rules' C files and their entries of gd_rules[], so that a new rule's C is its
file alone.
"""

import glob
import os
import re
import sys
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BASE_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
OPENMP_FLAG = "-fopenmp"
SANITIZERS = ("address", "undefined")


def switch(name: str, allowed: tuple[str, ...]) -> str:
    """An environment switch's value, or a clear error naming the variable."""
    value = os.environ.get(name, "")
    if value not in allowed:
        raise SystemExit(f"setup.py: {name}={value!r}: expected one of {allowed}")
    return value


def sanitizers() -> list[str]:
    """GDFAST_SANITIZE's sanitizers, in order, each checked."""
    value = os.environ.get("GDFAST_SANITIZE", "")
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SANITIZERS]
    if unknown:
        raise SystemExit(
            f"setup.py: GDFAST_SANITIZE={value!r}: expected a comma-separated "
            f"list of {SANITIZERS}, got {unknown}"
        )
    return names


def compiler_supports_openmp(compiler) -> bool:
    """Compile and link a tiny OpenMP program with the build's own compiler."""
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=[OPENMP_FLAG])
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=[OPENMP_FLAG])
        except Exception:  # any compile or link failure means: no OpenMP here
            return False
    return True


# A rule file's entry of gd_rules[] (src_c/rules.inc): its name, its two segment functions
# spelled out (so that grep finds what FN(name_segment) defines), prepare or NULL, rows 0/1.
RULE_ENTRY = re.compile(r'GD_RULE\("\w+", (\w+)_f32, \1_f64, (NULL|\w+), [01]\)')
# A rule file's own field of gd_hyper (gdfast.h): its type and name, a comment after.
TWO_PASS_ENTRY = re.compile(r'GD_TWO_PASS\("(\w+)", (\w+)_f32, \2_f64, \w+\)')
HYPER_FIELD = re.compile(r"GD_HYPER\((double|int), (\w+)\)(\s*/\*.*\*/)?")
RULE_LIST = "src_c/rules_list.inc"


def write_rule_list() -> None:
    """src_c/rules_list.inc: an #include of every src_c/rules/*.inc in name order (rules.inc
    includes the list once per dtype); under GD_RULE_ENTRIES, every rule file's GD_RULE
    lines, copied as they are (kernels.c fills gd_rules[] with them); under GD_RULE_FIELDS,
    every rule file's GD_HYPER lines (its own fields of gd_hyper, gdfast.h, and of
    gd_hyper_fields[], kernels.c); under GD_TWO_PASS_ENTRIES, the GD_TWO_PASS lines of the
    two-pass rules (pass 1 and finish: gd_two_pass_rules[], kernels.c).  Written only when
    its text changes, so that an unchanged tree is not recompiled."""
    includes, entries, fields, two_pass = [], [], {}, []
    for path in sorted(glob.glob("src_c/rules/*.inc")):
        with open(path) as f:
            marked = [line.strip() for line in f if line.startswith("GD_")]
        lines = [line for line in marked if line.startswith("GD_RULE")]
        if not lines:
            raise SystemExit(
                f"setup.py: {path}: no GD_RULE(...) line (its entry of gd_rules[]: "
                'see src_c/rules.inc), e.g. GD_RULE("adam", adam_segment_f32, '
                "adam_segment_f64, NULL, 1)"
            )
        for line in lines:
            if not RULE_ENTRY.fullmatch(line):
                raise SystemExit(
                    f"setup.py: {path}: {line!r}: expected "
                    'GD_RULE("name", name_segment_f32, name_segment_f64, '
                    "prepare or NULL, 0 or 1)"
                )
        includes.append(f'#include "rules/{os.path.basename(path)}"')
        entries += lines
        for line in (line for line in marked if line.startswith("GD_TWO_PASS")):
            entry = TWO_PASS_ENTRY.fullmatch(line)
            if not entry:
                raise SystemExit(
                    f"setup.py: {path}: {line!r}: expected "
                    'GD_TWO_PASS("name", name_block_f32, name_block_f64, finish)'
                )
            if not any(rule.startswith(f'GD_RULE("{entry.group(1)}",') for rule in lines):
                raise SystemExit(
                    f"setup.py: {path}: {line!r}: the file has no GD_RULE line of "
                    f"{entry.group(1)!r} (its gd_rules[] entry: pass 2)"
                )
            two_pass.append(line)
        for line in (line for line in marked if line.startswith("GD_HYPER")):
            field = HYPER_FIELD.fullmatch(line)
            if not field:
                raise SystemExit(
                    f"setup.py: {path}: {line!r}: expected GD_HYPER(double or int, name)"
                )
            type_, name = field.group(1, 2)
            if name in fields and fields[name][0] != type_:
                raise SystemExit(f"setup.py: {path}: {name}: declared as another type before")
            fields.setdefault(name, (type_, line))
    text = "\n".join(
        [
            "/* Written by setup.py (write_rule_list) from src_c/rules/<rule>.inc at every build: do",
            " * not edit.  Without GD_RULE_ENTRIES: every rule's file (rules.inc, once per dtype);",
            " * with GD_RULE_ENTRIES: every rule's GD_RULE line as its file has it (gd_rules[],",
            " * kernels.c); with GD_RULE_FIELDS: every rule's GD_HYPER line (gd_hyper, gdfast.h);",
            " * with GD_TWO_PASS_ENTRIES: every GD_TWO_PASS line (gd_two_pass_rules[], kernels.c). */",
            "#if defined(GD_RULE_FIELDS)",
            *(line for _, line in fields.values()),
            "#elif defined(GD_TWO_PASS_ENTRIES)",
            *two_pass,
            "#elif defined(GD_RULE_ENTRIES)",
            *entries,
            "#else",
            *includes,
            "#endif",
            "",
        ]
    )
    if os.path.exists(RULE_LIST):
        with open(RULE_LIST) as f:
            if f.read() == text:
                return
    with open(RULE_LIST, "w") as f:
        f.write(text)


class BuildWithOptionalOpenMP(build_ext):
    def build_extensions(self):
        if OPENMP_WANTED:
            with_openmp = compiler_supports_openmp(self.compiler)
            if not with_openmp:
                warnings.warn(
                    "gdfast: this compiler has no OpenMP; building single-threaded kernels "
                    "(gdfast.openmp_enabled() will return False)",
                    stacklevel=1,
                )
                print("*** gdfast: building WITHOUT OpenMP ***", file=sys.stderr)
        else:
            with_openmp = False
            print("*** gdfast: GDFAST_OPENMP=0: building WITHOUT OpenMP ***", file=sys.stderr)
        extra = [OPENMP_FLAG] if with_openmp else []
        if SANITIZE:
            extra += [
                f"-fsanitize={','.join(SANITIZE)}",
                "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer",
                "-g",
            ]
            print(f"*** gdfast: sanitized build: {','.join(SANITIZE)} ***", file=sys.stderr)
        # Python's own CFLAGS carry -fwrapv, which defines signed overflow: gcc may then not
        # assume that a signed loop counter never wraps, and the span loops vectorize worse
        # (Adam, 1e7, 8-bit state, one thread: 9.6 against 8.2 ms, bench/lowp_step.c built
        # with and without it); it would also hide signed overflow from UBSan.  Nothing here
        # relies on wrapping (the UBSan build checks).
        self.compiler.compiler_so = [
            flag for flag in self.compiler.compiler_so if flag != "-fwrapv"
        ]
        for ext in self.extensions:
            ext.extra_compile_args.extend(extra)
            ext.extra_link_args.extend(extra)
        super().build_extensions()


write_rule_list()
checks = switch("GDFAST_CYTHON_CHECKS", ("", "0", "1")) == "1"
OPENMP_WANTED = switch("GDFAST_OPENMP", ("", "0", "1")) != "0"
SANITIZE = sanitizers()
common = dict(
    include_dirs=["src_c", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)
EXTENSIONS = [
    Extension(
        "gdfast._kernels",
        sources=["gdfast/_kernels.pyx", "src_c/kernels.c", "src_c/reduce.c"],
        # every header and included file of src_c (the rules, the fused layouts, q8_simd.h):
        # an incremental build recompiles when any of them changes
        depends=sorted({RULE_LIST, *glob.glob("src_c/*.h"), *glob.glob("src_c/*.inc")})
        + sorted(glob.glob("src_c/rules/*.inc")),
        extra_compile_args=list(BASE_FLAGS),
        extra_link_args=[],
        **common,
    ),
    Extension(
        "gdfast._hogwild",
        sources=["gdfast/_hogwild.pyx", "src_c/hogwild.c"],
        depends=["src_c/hogwild.h"],
        extra_compile_args=list(BASE_FLAGS),
        extra_link_args=[],
        **common,
    ),
    Extension(
        "gdfast._formats",
        sources=["gdfast/_formats.pyx", "src_c/lowp.c"],
        depends=["src_c/lowp.h", "src_c/lowp_bulk.h", "src_c/q8_simd.h"],
        extra_compile_args=list(BASE_FLAGS),
        extra_link_args=[],
        **common,
    ),
    Extension(
        "gdfast.distributed._server_kernels",
        sources=["gdfast/distributed/_server_kernels.pyx", "src_c/adaptive_revision.c"],
        depends=["src_c/adaptive_revision.h"],
        extra_compile_args=list(BASE_FLAGS),
        extra_link_args=[],
        **common,
    ),
]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        compiler_directives={
            "language_level": 3,
            "boundscheck": checks,
            "wraparound": checks,
            "cdivision": True,
        },
    ),
    cmdclass={"build_ext": BuildWithOptionalOpenMP},
)
