import os
import shutil
import subprocess
import sys

import pytest


def test_python_dash_m_and_console_script_agree(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    a = subprocess.run([sys.executable, "-m", "edgeprune", "--help"], capture_output=True, text=True, env=env)
    assert a.returncode == 0 and "compile" in a.stdout and "prune" in a.stdout
    exe = shutil.which("edgeprune")
    if exe is None:
        pytest.skip("edgeprune console script not installed (pip install -e .)")
    b = subprocess.run([exe, "--help"], capture_output=True, text=True, env=env)
    assert b.returncode == 0 and b.stdout == a.stdout


def test_error_exit_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    r = subprocess.run(
        [sys.executable, "-m", "edgeprune", "inspect", str(tmp_path / "nope.pt")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"edgeprune: error: {tmp_path / 'nope.pt'}: no such file"]
