"""Packaging beyond pyproject.toml: ship the C runtime (top-level ``runtimes/c``) inside the wheel.

The sources live at the top of the repository (emlearn-style) and are installed as data of the
``edgeprune.runtime`` package, under ``edgeprune/runtime/c``, where ``edgeprune.runtime.source_dir``
finds them; in a source checkout or an editable install it finds ``runtimes/c`` itself.
"""

from setuptools import find_packages, setup

RUNTIME_PACKAGE = "edgeprune.runtime.c"

setup(
    packages=find_packages(include=["edgeprune", "edgeprune.*"]) + [RUNTIME_PACKAGE],
    package_dir={RUNTIME_PACKAGE: "runtimes/c"},
    package_data={
        RUNTIME_PACKAGE: ["*.c", "*.h", "*.in", "templates/*.in", "boards/*/*"],
        # the benchmark harness's native sources (its serial firmware, the C bench main)
        "edgeprune.bench": ["native/*.c", "native/*.h"],
    },
    exclude_package_data={RUNTIME_PACKAGE: ["tests/*"]},
)
