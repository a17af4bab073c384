"""Toolchain lookup and object-size parsing."""

import shutil
import subprocess

import pytest

from edgeprune.backends.c.toolchain import section_sizes, toolchain
from edgeprune.errors import BackendError


def test_missing_tools_name_the_package_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    assert "install gcc-aarch64-linux-gnu" in toolchain("aarch64").missing()
    assert toolchain("cortex-m4").missing().startswith("arm-none-eabi-gcc not found")


def test_host_compiler_comes_from_the_option_then_cc(monkeypatch):
    monkeypatch.setenv("CC", "clang -m64")
    assert toolchain("host").cc == ("clang", "-m64")
    assert toolchain("host", "gcc-12").cc == ("gcc-12",)


def test_unknown_arch():
    with pytest.raises(BackendError, match="--arch 'riscv' is not one of host, aarch64, cortex-m4"):
        toolchain("riscv")


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("size") is None, reason="needs cc and size")
def test_section_sizes_split_code_constants_data_and_bss(tmp_path):
    (tmp_path / "o.c").write_text(
        "const float k[100] = {1.0f};\nfloat d[3] = {1, 2, 3};\nfloat b[50];\n"
        "float f(int i);\nfloat f(int i) { return k[i] + d[i % 3] + b[i]; }\n"
    )
    subprocess.run(["cc", "-O2", "-c", "o.c"], cwd=tmp_path, check=True)
    sizes = section_sizes(tmp_path / "o.o")
    assert sizes["rodata"] >= 400 and sizes["data"] >= 12 and sizes["bss"] >= 200 and sizes["text"] > 0
    # the ELF reader agrees with binutils' own accounting
    listed = subprocess.run(["size", "-A", "o.o"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    by_name = {line.split()[0]: int(line.split()[1]) for line in listed.splitlines() if line.startswith(".")}
    for kind in sizes:
        assert sizes[kind] == sum(
            n for name, n in by_name.items() if name == f".{kind}" or name.startswith(f".{kind}.")
        )


def test_device_builds_never_assume_the_build_hosts_cpu():
    assert "-march=native" in toolchain("host").default_cflags
    for arch in ("aarch64", "cortex-m4"):
        assert "native" not in toolchain(arch).default_cflags


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("nm") is None, reason="needs cc and nm")
def test_symbol_sizes_list_defined_functions_and_used_names(tmp_path):
    from edgeprune.backends.c.toolchain import symbol_sizes

    (tmp_path / "o.c").write_text("float g(float);\nfloat f(float x);\nfloat f(float x) { return g(x) * 2.0f; }\n")
    subprocess.run(["cc", "-O2", "-c", "o.c"], cwd=tmp_path, check=True)
    assert symbol_sizes("nm", tmp_path / "o.o")["f"] > 0
    assert set(symbol_sizes("nm", tmp_path / "o.o", undefined=True)) == {"g"}
