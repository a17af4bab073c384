"""The Cortex-M4 output's Makefile builds the example as firmware and runs it on QEMU's MPS2 AN386."""

import re
import subprocess

import numpy as np
import pytest

from edgeprune import frontend
from edgeprune.backends.c.toolchain import toolchain
from edgeprune.compiler import Source, compile_source
from edgeprune.ir import ReferenceExecutor

from ... import zoo


def _outputs(text: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(r"^logit \d+ (\S+)$", text, re.M)])


def test_make_firmware_and_run_qemu_print_what_the_host_example_prints(tmp_path):
    problem = toolchain("cortex-m4").missing()
    if problem:
        pytest.skip(problem)
    graph = frontend.lower(zoo.build("kws", sparsity=0.9))
    X = zoo.inputs("kws", n=2, steps=4)
    ref = ReferenceExecutor(graph)
    source = Source("kws", graph, ref.run, "numpy reference")
    out = tmp_path / "fw"
    compile_source(source, ["c"], out, options={"arch": "cortex-m4"}, X_verify=X)
    run = subprocess.run(["make", "-s", "run-qemu"], cwd=out, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (out / "example.elf").exists()
    host = subprocess.run(["make", "-s", "example"], cwd=out, capture_output=True, text=True, timeout=300)
    assert host.returncode == 0, host.stderr
    on_host = subprocess.run(["./example"], cwd=out, capture_output=True, text=True, timeout=60).stdout
    board, here = _outputs(run.stdout), _outputs(on_host)
    assert len(board) == graph.output_size and np.allclose(board, here, atol=1e-5)
    # and the same numbers as the float64 reference fed main.c's stand-in sensor
    steps = 8
    x = np.array([[((t * 7 + i * 3) % 11) / 10.0 for i in range(graph.input_size)] for t in range(steps)])
    np.testing.assert_allclose(board, ref.run(x[None])[0], atol=1e-4)


def test_make_firmware_without_a_board_says_what_to_do(tmp_path):
    graph = frontend.lower(zoo.build("kws"))
    source = Source("kws", graph, ReferenceExecutor(graph).run, "numpy reference")
    out = tmp_path / "host"
    compile_source(source, ["c"], out, X_verify=zoo.inputs("kws", n=2, steps=3))
    done = subprocess.run(["make", "-s", "firmware"], cwd=out, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "compile with --arch cortex-m4" in done.stderr
