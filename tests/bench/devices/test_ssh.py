"""``ssh://`` against a real OpenSSH server on 127.0.0.1 (tests/bench/conftest.py starts and stops it)."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from edgeprune import checkpoint
from edgeprune.bench import bench
from edgeprune.bench.devices import DeviceError, parse
from edgeprune.bench.schema import validate
from edgeprune.models import ModelConfig, SequenceClassifier

from ..conftest import children_of, free_port, have, quick_settings

pytestmark = pytest.mark.skipif(have("gcc") is not None, reason="needs gcc")


def native(doc):
    return {r["id"]: r for r in doc["runtimes"] if r["call_path"] == "native"}


def test_ssh_run_equals_the_local_run(ir_artifacts, ir_programs, sshd):
    local = bench(str(ir_artifacts), parse("local"), quick_settings(), runtimes=["ir"])
    remote = bench(str(ir_artifacts), parse(sshd.url, ssh_config=sshd.config), quick_settings())
    validate(remote)
    assert remote["complete"] and remote["device"]["kind"] == "ssh" and remote["device"]["uname_m"] == "x86_64"
    here, there = native(local)["ir (native)"], native(remote)["ir (native)"]
    for mode in ("step", "sequence"):
        assert there["outputs"][mode] == here["outputs"][mode]  # same arch, same flags: the same program, bit for bit
        assert there["latency"][mode]["unit"] == "ns" and there["latency"][mode]["n"] >= 20
    assert there["accuracy"] == here["accuracy"]
    assert [r["call_path"] for r in remote["runtimes"]] == ["native"]  # Python runtimes cannot run on a board
    assert [s["id"] for s in remote["skipped"]] == ["torch"]
    assert list(sshd.remote_tmp.iterdir()) == []  # the board is left clean


def test_a_bad_device_url_is_one_line(run_cli, ir_artifacts, tmp_path):
    for url in ("ssh:/nohost", "ssh://user@:22", "ssh://h:notaport", "tcp://x", "serial:", "qemu-riscv"):
        r = run_cli("bench", ir_artifacts, "--device", url, "--json", tmp_path / "r.json")
        assert r.code != 0 and len(r.err_lines) == 1 and "bad device" in r.err, (url, r.err)
        assert not (tmp_path / "r.json").exists()


def test_an_unreachable_host_is_one_line_and_keeps_the_json(run_cli, ir_artifacts, ir_programs, tmp_path, sshd):
    out = tmp_path / "r.json"
    url = f"ssh://nobody@127.0.0.1:{free_port()}"  # nothing listens there
    r = run_cli("bench", ir_artifacts, "--device", url, "--ssh-config", sshd.config, "--json", out, "--quick")
    assert r.code != 0 and len(r.err_lines) == 1
    assert url in r.err and "Connection refused" in r.err
    doc = json.loads(out.read_text())
    validate(doc)
    assert doc["complete"] is False and doc["runtimes"] == [] and "Connection refused" in doc["errors"][0]


@pytest.fixture(scope="module")
def two_slow_artifacts(tmp_path_factory):
    """Two compiled LSTM 128s (untrained, dense, different weights): each program runs for about a second."""
    from edgeprune.cli import main

    d = tmp_path_factory.mktemp("slow")
    for seed, sub in enumerate(("a", "b")):
        torch.manual_seed(seed)
        model = SequenceClassifier(ModelConfig("lstm", 8, (128,), 10)).eval()
        checkpoint.save(model, d / f"{sub}.pt", {"dataset": "digits", "sequence_length": 8})
        assert (
            main(
                [
                    "compile",
                    str(d / f"{sub}.pt"),
                    "--target",
                    "ir",
                    "-o",
                    str(d / "root" / sub),
                    "--verify-samples",
                    "4",
                ]
            )
            == 0
        )
    return d / "root"


def _when_second_program_runs(remote_tmp, action):
    """Call ``action(pid)`` once the second program the harness starts on the board is running."""
    seen: list = []
    done = threading.Event()

    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not done.is_set():
            for pidfile in remote_tmp.glob("edgeprune-bench.*/pid"):
                if pidfile.parent.name not in seen and pidfile.read_text().strip():
                    seen.append(pidfile.parent.name)
                    if len(seen) == 2:
                        time.sleep(0.3)
                        action(int(pidfile.read_text()))
                        done.set()
                        return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, done


SLOW = ("--time-budget", "0.6", "--min-reps", "1", "--max-reps", "5000", "--device-samples", "2", "--runtimes", "ir*")


def test_a_killed_remote_process_is_one_line_and_keeps_partial_results(
    run_cli, two_slow_artifacts, ir_programs, sshd, tmp_path
):
    out = tmp_path / "r.json"
    thread, done = _when_second_program_runs(sshd.remote_tmp, lambda pid: os.kill(pid, signal.SIGKILL))
    r = run_cli("bench", two_slow_artifacts, "--device", sshd.url, "--ssh-config", sshd.config, "--json", out, *SLOW)
    thread.join(5)
    assert done.is_set()
    assert r.code != 0 and len(r.err_lines) == 1, r.err
    assert "was killed by SIGKILL on the board" in r.err
    doc = json.loads(out.read_text())
    validate(doc)
    first, second = doc["runtimes"]
    assert first["status"] == "ok" and first["latency"]["sequence"]["n"] >= 1 and len(first["outputs"]["step"]) == 2
    assert second["status"] == "failed" and "SIGKILL" in second["error"]
    assert doc["complete"] is False and "SIGKILL" in doc["errors"][0]
    assert "INCOMPLETE" in r.out  # the table of what was measured is still shown
    assert list(sshd.remote_tmp.iterdir()) == []


def test_a_dropped_connection_is_one_line_and_keeps_partial_results(
    run_cli, two_slow_artifacts, ir_programs, sshd, tmp_path
):
    def drop(_pid):  # kill the server side of the connection (the sshd session processes we started)
        for child in children_of(sshd.pid):
            os.kill(child, signal.SIGKILL)

    out = tmp_path / "r.json"
    thread, done = _when_second_program_runs(sshd.remote_tmp, drop)
    r = run_cli("bench", two_slow_artifacts, "--device", sshd.url, "--ssh-config", sshd.config, "--json", out, *SLOW)
    thread.join(5)
    assert done.is_set()
    assert r.code != 0 and len(r.err_lines) == 1, r.err
    assert "SSH failed while running ir#2" in r.err
    doc = json.loads(out.read_text())
    assert [x["status"] for x in doc["runtimes"]] == ["ok", "failed"] and doc["complete"] is False
    deadline = time.monotonic() + 10  # the orphaned program was killed by its pid over a new connection
    while list(sshd.remote_tmp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(sshd.remote_tmp.iterdir()) == []


def test_timeouts_are_reported_with_the_device(sshd, ir_artifacts, ir_programs, tmp_path):
    device = parse(sshd.url, ssh_config=sshd.config)
    device.open()
    from edgeprune.bench.devices import Job
    from edgeprune.bench.programs import BuiltProgram

    sleeper = tmp_path / "sleeper"
    sleeper.write_text("#!/bin/sh\nsleep 30\n")
    job = Job("sleeper", BuiltProgram(sleeper, "x86_64", "linux", "test"), np.zeros((1, 1, 1), np.float32), None, 1.0)
    start = time.monotonic()
    with pytest.raises(DeviceError, match=r"no answer within 1 s while running sleeper"):
        device.execute(job)
    assert time.monotonic() - start < 15
    assert list(sshd.remote_tmp.iterdir()) == []  # killed by pid, directory removed


# -- issue 18, item 3: nothing from a device URL reaches ssh as an option --------------------------------


def test_ssh_argv_ends_options_before_the_destination():
    """Before: [..., 'pi@board', '--', command]: a destination starting with '-' was read as an option."""
    device = parse("ssh://pi@board.local:2222", ssh_config="/dev/null")
    argv = device._argv("uname -m")
    assert argv[-3:] == ["--", "pi@board.local", "uname -m"]
    options = argv[1:-3]
    assert options[:4] == ["-F", "/dev/null", "-p", "2222"] and "-T" in options


@pytest.mark.parametrize(
    "url, what",
    [
        ("ssh://-oProxyCommand=x", "host"),
        ("ssh://-oProxyCommand=touch${IFS}pwned@127.0.0.1", "user"),
        ("ssh://-lroot@board", "user"),
        ("ssh://host;reboot", "host"),
        ("ssh://ho$t", "host"),
        ("ssh://user;id@host", "user"),
        ("ssh://a`id`@host", "user"),
        ("ssh://-board", "host"),
        ("ssh://board-.local", "host"),
        ("ssh://bo_ard", "host"),
    ],
)
def test_hosts_and_users_outside_their_grammar_are_refused(url, what):
    """Before: all of these were accepted by the URL parser and handed to ssh."""
    with pytest.raises(DeviceError, match=f"bad device {what} "):
        parse(url)


@pytest.mark.parametrize(
    "url",
    [
        "ssh://pi@board.local",
        "ssh://10.0.0.2:22",
        "ssh://[::1]:2222",
        "ssh://ci.user@rpi-4",
        "ssh://deploy_bot@build-01.example.org.",
        "ssh://board",
    ],
)
def test_ordinary_hosts_and_users_are_accepted(url):
    assert parse(url).kind == "ssh"


def test_an_option_injected_through_the_user_runs_nothing(run_cli, ir_artifacts, sshd, tmp_path, monkeypatch):
    """Against the real sshd: a ProxyCommand smuggled in as the URL's user is refused by edgeprune itself."""
    monkeypatch.chdir(tmp_path)  # where the injected command would create its file
    port = sshd.url.rsplit(":", 1)[1]
    url = f"ssh://-oProxyCommand=touch${{IFS}}pwned@127.0.0.1:{port}"
    r = run_cli("bench", ir_artifacts, "--device", url, "--ssh-config", sshd.config, "--quick")
    assert r.code == 1 and len(r.err_lines) == 1 and "bad device user '-oProxyCommand" in r.err, r.err
    assert list(tmp_path.iterdir()) == []
