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


def test_nothing_printed_at_exit_follows_the_last_line(tmp_path):
    """A native library's thread that writes to the process's stdout/stderr while the interpreter shuts
    down (here: an exit handler writing to the file descriptors directly, as C++ code does) does not
    put anything after edgeprune's own last line, on success or on error."""
    noisy = (
        "import atexit, os, sys\n"
        "atexit.register(lambda: (os.write(1, b'late out\\n'), os.write(2, b'late err\\n')))\n"
        "from edgeprune.cli import run\n"
        "sys.argv = ['edgeprune', *sys.argv[1:]]\n"
        "run()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    bad = subprocess.run(
        [sys.executable, "-c", noisy, "inspect", str(tmp_path / "nope.pt")], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [f"edgeprune: error: {tmp_path / 'nope.pt'}: no such file"]
    good = subprocess.run([sys.executable, "-c", noisy, "--version"], capture_output=True, text=True, env=env)
    assert good.returncode == 0 and good.stderr == "" and good.stdout.startswith("edgeprune, version ")
    assert "late" not in good.stdout
