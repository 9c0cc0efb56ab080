"""Builds the compiled kernel. Compiler directives are set here, once.

Environment switches:
  CHURN_DEBUG=1     Cython bounds/wraparound/initialisation checks, -O0 -g
  CHURN_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer flags
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CHURN_DEBUG") == "1"
SANITIZE = os.environ.get("CHURN_SANITIZE") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "nonecheck": DEBUG,
    "embedsignature": True,
}

compile_args = ["-std=c11", "-fopenmp"]
link_args = ["-fopenmp"]
if DEBUG:
    compile_args += ["-O0", "-g"]
else:
    compile_args += ["-O3"]
if SANITIZE:
    # Python's own flags include -fwrapv, which would hide signed overflow from UBSan
    sanitize = [
        "-fsanitize=address,undefined",
        "-fsanitize=float-cast-overflow",
        "-fno-wrapv",
        "-fno-omit-frame-pointer",
        "-g",
    ]
    compile_args += sanitize
    link_args += sanitize
if sys.platform == "darwin":  # Apple clang has no bundled OpenMP
    compile_args = [a for a in compile_args if a != "-fopenmp"]
    link_args = [a for a in link_args if a != "-fopenmp"]

extensions = [
    Extension(
        "churn_engine._kernel",
        sources=[
            "src/churn_engine/_kernel.pyx",
            "csrc/churn_sort.c",
            "csrc/churn_group.c",
            "csrc/churn_partition.c",
            "csrc/churn_strings.c",
        ],
        include_dirs=["csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "churn_engine._columns",
        sources=["src/churn_engine/_columns.pyx"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "churn_engine._days",
        sources=["src/churn_engine/_days.pyx"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "churn_engine._summary",
        sources=["src/churn_engine/_summary.pyx"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "churn_engine._churn_rate",
        sources=["src/churn_engine/_churn_rate.pyx"],
        include_dirs=["csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "churn_engine._funnel",
        sources=["src/churn_engine/_funnel.pyx"],
        include_dirs=["csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
