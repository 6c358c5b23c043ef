"""Build of gdfast's one extension module, gdfast._kernels (Cython + C99 kernels).

Flags, and why:
  -O3                  the kernels are plain loops that gcc vectorizes with `omp simd`
  -fno-math-errno      sqrt never sets errno, so gcc can vectorize it (Adam is ~6x slower without)
  -fno-trapping-math   FP exceptions are never observed, so selects with a division vectorize;
                       no result changes (unlike -ffast-math, which is never used)
  -ffp-contract=off    no fused multiply-add: the vector loop, its tail and every instruction-set
                       clone round exactly like the NumPy reference, for any thread split
  -fopenmp             when the compiler supports it; otherwise a warning and a serial build
No -march=native: AVX-512/AVX2 come from gcc target_clones in src_c/kernels.c, with a portable
default clone.  GDFAST_CYTHON_CHECKS=1 turns Cython's bounds and wraparound checks on (debugging).
"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BASE_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
OPENMP_FLAG = "-fopenmp"


def compiler_supports_openmp(compiler) -> bool:
    """Compile and link a tiny OpenMP program with the build's own compiler."""
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=[OPENMP_FLAG])
            compiler.link_executable(objects, "probe", output_dir=tmp,
                                     extra_postargs=[OPENMP_FLAG])
        except Exception:  # any compile or link failure means: no OpenMP here
            return False
    return True


class BuildWithOptionalOpenMP(build_ext):
    def build_extensions(self):
        with_openmp = compiler_supports_openmp(self.compiler)
        if not with_openmp:
            warnings.warn(
                "gdfast: this compiler has no OpenMP; building single-threaded kernels "
                "(gdfast.openmp_enabled() will return False)", stacklevel=1)
            print("*** gdfast: building WITHOUT OpenMP ***", file=sys.stderr)
        for ext in self.extensions:
            if with_openmp:
                ext.extra_compile_args.append(OPENMP_FLAG)
                ext.extra_link_args.append(OPENMP_FLAG)
        super().build_extensions()


checks = os.environ.get("GDFAST_CYTHON_CHECKS") == "1"
common = dict(
    include_dirs=["src_c", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)
EXTENSIONS = [
    Extension(
        "gdfast._kernels",
        sources=["gdfast/_kernels.pyx", "src_c/kernels.c"],
        depends=["src_c/gdfast.h", "src_c/rules.inc", "src_c/threads.h", "src_c/threads.inc"],
        extra_compile_args=list(BASE_FLAGS), extra_link_args=[], **common),
    Extension(
        "gdfast._hogwild",
        sources=["gdfast/_hogwild.pyx", "src_c/hogwild.c"],
        depends=["src_c/hogwild.h"],
        extra_compile_args=list(BASE_FLAGS), extra_link_args=[], **common),
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
