"""`--cluster ray://HOST:PORT` against a real Ray head, started here on loopback: the cells that come back
through the Ray client are byte for byte the serial fallback's (outside ``timing``).

The head runs in its own process group with ports chosen free, a private temp dir and a marker in its
environment; teardown stops exactly its processes (by process group, then by the marker), never with
``ray stop``, which would stop every Ray instance of this user on the machine.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from .conftest import cell_files, without_timing
from .test_executors import _processes_with

ray = pytest.importorskip("ray", reason="needs ray[client] (pip install 'edgeprune[sweep]')")
ROOT = Path(__file__).resolve().parents[2]


def _free_ports(n: int) -> list[int]:
    """n distinct ports free on 127.0.0.1 right now (all held open until chosen, so no repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _listening_anywhere(port: int) -> bool:
    """A listener on ``port`` at any local address (Ray's runtime-env agent binds the node's own IP, not
    127.0.0.1, whatever --node-ip-address says)."""
    import psutil  # a dependency of ray

    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in psutil.net_connections("tcp"))


@pytest.fixture(scope="module")
def ray_head():
    """``ray start --head --block``, reached on 127.0.0.1; yields the client address ray://127.0.0.1:PORT and
    the environment a client needs: this Ray requires a token by default, so the head gets its own (never
    the user's ~/.ray/auth_token) and so does every client the tests start."""
    gcs, client, node_manager, object_manager, metrics, agent_listen, agent_grpc, runtime_env = _free_ports(8)
    temp_dir = tempfile.mkdtemp(prefix="ep-ray-", dir="/tmp")  # short: Ray puts unix sockets under it
    marker = f"EDGEPRUNE_TEST_RAY_HEAD={uuid.uuid4().hex}"
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {
        **os.environ,
        **auth,
        "PYTHONPATH": str(ROOT),
        "RAY_USAGE_STATS_ENABLED": "0",
        marker.split("=")[0]: marker.split("=")[1],
    }
    args = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(gcs),
        "--ray-client-server-port",
        str(client),
        "--node-manager-port",
        str(node_manager),
        "--object-manager-port",
        str(object_manager),
        "--metrics-export-port",
        str(metrics),
        "--dashboard-agent-listen-port",
        str(agent_listen),
        "--dashboard-agent-grpc-port",
        str(agent_grpc),
        "--runtime-env-agent-port",
        str(runtime_env),
        "--include-dashboard",
        "false",
        "--num-cpus",
        "2",
        "--object-store-memory",
        str(128 * 1024 * 1024),
        "--temp-dir",
        temp_dir,
        "--disable-usage-stats",
    ]
    log = open(Path(temp_dir) / "head.log", "wb")
    head = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # the client server's port opens before the agent that sets up a driver's runtime env (our shipped
        # code): a driver arriving in between can fail to start, so wait for that agent too
        while not (_listening(client) and _listening(gcs) and _listening_anywhere(runtime_env)):
            if head.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (Path(temp_dir) / "head.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"the Ray head did not come up (exit {head.poll()}):\n{tail}")
            time.sleep(0.5)
        yield f"ray://127.0.0.1:{client}", auth, Path(temp_dir)
    finally:
        _stop(head, marker)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert _processes_with(marker) == []  # nothing of the head is left


def _stop(head: subprocess.Popen, marker: str) -> None:
    """`ray start --block` itself first (it stops what it started, in order: signalling the whole group at
    once leaves it waiting 30 s for a GCS that is already gone), then its process group, then any
    straggler that carries our marker (a worker in another session), by pid."""
    head.send_signal(signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        head.kill()
        head.wait()
    try:
        os.killpg(head.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 20
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in _processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)


def _client_server_logs(temp_dir: Path) -> str:
    """The head's client-server logs, where Ray says why a driver's server did not start."""
    logs = sorted(temp_dir.glob("session_*/logs/ray_client_server*"))
    return "".join(f"\n--- {p.name}:\n{p.read_text(errors='replace')[-1500:]}" for p in logs[-4:])


def _sweep(address: str, checkpoint, run_dir: Path, env: dict) -> tuple[subprocess.Popen, str, str]:
    """`edgeprune sweep --cluster ray://...` as a user runs it (this edgeprune shipped to the head's workers)."""
    # two cells of the small grid (tests/sweep/conftest.py small_spec), the serial run has them too
    args = [
        sys.executable,
        "-m",
        "edgeprune",
        "sweep",
        str(checkpoint),
        "--methods",
        "magnitude,expander",
        "--sparsities",
        "0.9",
        "--seeds",
        "1",
        "--finetune-epochs",
        "1",
        "--targets",
        "c",
        "--accuracy-samples",
        "120",
        "--cluster",
        address,
        "--no-progress",
        "-o",
        str(run_dir),
    ]
    driver = subprocess.Popen(
        args, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    return driver, out, err


def test_ray_client_cluster_gives_the_serial_fallbacks_bytes(ray_head, serial_run, digits_checkpoint, tmp_path):
    address, auth, temp_dir = ray_head
    run_dir = tmp_path / "run"
    driver, out, err = _sweep(address, digits_checkpoint, run_dir, {**os.environ, **auth})
    assert driver.returncode == 0, err[-3000:] + _client_server_logs(temp_dir)
    on_cluster, serial = cell_files(run_dir), cell_files(serial_run[0])
    assert sorted(on_cluster) == ["expander-s0.9-seed1", "magnitude-s0.9-seed1"]
    for key, record in on_cluster.items():
        assert record["status"] == "ok", record["error"]
        assert without_timing(record) == without_timing(serial[key]), key
        assert record["timing"]["executor"] == f"ray {address}"
        # run by the head's workers: neither this process nor the sweep's driver
        assert record["timing"]["worker"]["pid"] not in (os.getpid(), driver.pid)
    assert f"(ray {address})" in out
    index = json.loads((run_dir / "index.json").read_text())
    assert index["running"] is False and index["finished"] == index["ok"] == 2


def test_a_client_without_the_token_gets_one_line_saying_what_to_set(ray_head, digits_checkpoint, tmp_path):
    address, _, _ = ray_head
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")}
    driver, out, err = _sweep(address, digits_checkpoint, tmp_path / "run", env)
    lines = [line for line in err.splitlines() if line.strip() and "warn" not in line.lower()]
    assert driver.returncode == 1
    assert lines[-1].startswith(f"edgeprune: error: could not connect to the Ray cluster at {address} (")
    assert "set RAY_AUTH_MODE=token and its token" in lines[-1]
    assert "Traceback" not in err
    assert not list((tmp_path / "run" / "cells").glob("*.json"))


def test_shipped_code_carries_the_c_runtime(tmp_path):
    """A worker's copy of edgeprune must compile C: from a checkout, the runtime's sources go along."""
    from edgeprune.runtime import source_dir
    from edgeprune.sweep.executors import code_to_ship

    shipped = Path(code_to_ship(tmp_path))
    assert shipped.name == "edgeprune" and (shipped / "sweep" / "executors.py").is_file()
    runtime_c = source_dir("c")
    for f in runtime_c.rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts:
            copy = shipped / "runtime" / "c" / f.relative_to(runtime_c)
            assert copy.read_bytes() == f.read_bytes(), f
    assert not list(shipped.rglob("__pycache__"))
