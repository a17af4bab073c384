"""Fixtures for the bench tests: a compiled IR artifact, the C test program provider, a loopback sshd."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeprune.bench import programs
from edgeprune.bench.settings import BenchSettings
from edgeprune.bench.stats import Budget

from .cprogram import IRProgramProvider


def quick_settings(**kw) -> BenchSettings:
    """Few repetitions, measured in this process: fast, same statistics."""
    base = dict(
        budget=Budget.quick(), isolate=False, latency_sequences=4, accuracy_samples=64, device_samples=6, timeout_s=120
    )
    base.update(kw)
    return BenchSettings(**base)


@pytest.fixture(scope="session")
def pruned_checkpoint(digits_checkpoint, tmp_path_factory):
    """The shared digits LSTM with 80% of its recurrent weights removed (magnitude)."""
    from edgeprune import checkpoint
    from edgeprune.prune import prune_model

    model, meta = checkpoint.load_with_meta(digits_checkpoint)
    outcome = prune_model(model, "magnitude", 0.8)
    path = tmp_path_factory.mktemp("bench") / "pruned.pt"
    checkpoint.save(outcome.model, path, {**meta, "pruning": outcome.report})
    return path


@pytest.fixture(scope="session")
def ir_artifacts(pruned_checkpoint, tmp_path_factory):
    """``edgeprune compile --target ir`` of the pruned digits LSTM."""
    from edgeprune.cli import main

    out = tmp_path_factory.mktemp("bench") / "ir"
    assert main(["compile", str(pruned_checkpoint), "--target", "ir", "-o", str(out), "--verify-samples", "16"]) == 0
    return out


@pytest.fixture
def ir_programs():
    """The IR interpreter (tests/bench/native) as the benchmark program of the ``ir`` target."""
    programs.register("ir", IRProgramProvider())
    yield
    programs.register("ir", None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have(*tools: str) -> str | None:
    missing = [t for t in tools if shutil.which(t) is None]
    return f"needs {', '.join(missing)}" if missing else None


@dataclass
class Sshd:
    url: str
    config: str  # ssh_config for the client
    remote_tmp: Path  # TMPDIR of remote sessions: where the harness makes its directories
    pid: int


SSHD = "/usr/sbin/sshd"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1 (free port, throw-away keys), stopped after the session."""
    if not Path(SSHD).exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs openssh-server (/usr/sbin/sshd) and openssh-client")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    remote_tmp = d / "remote-tmp"
    remote_tmp.mkdir()
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        Path("/run/sshd").mkdir(mode=0o755)  # sshd's privilege-separation directory, needed when run as root
    port = free_port()
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d / "host_key"}
AuthorizedKeysFile {d / "authorized_keys"}
PidFile {d / "sshd.pid"}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
SetEnv TMPDIR={remote_tmp}
""")
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    (d / "ssh_config").write_text(f"""Host *
  IdentityFile {d / "user_key"}
  IdentitiesOnly yes
  UserKnownHostsFile {d / "known_hosts"}
  StrictHostKeyChecking accept-new
  LogLevel ERROR
""")
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited: {(d / 'sshd.log').read_text()[-500:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield Sshd(f"ssh://{user}@127.0.0.1:{port}", str(d / "ssh_config"), remote_tmp, proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def children_of(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out
