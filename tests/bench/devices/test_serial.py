"""``serial:``: the serial server firmware, on the host under sanitizers and on QEMU's UART."""

import json
import re
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from edgeprune import data, ir
from edgeprune.bench.devices import DeviceError, Job, parse
from edgeprune.bench.devices.serial import SerialDevice, float_words, words_to_floats
from edgeprune.bench.programs import ProgramSettings
from edgeprune.bench.schema import validate
from edgeprune.bench.toolchains import WARNINGS, native_dir

from ..conftest import free_port, have
from ..cprogram import NATIVE, build_serial_firmware, model_header


def test_float_words_round_trip_exactly():
    x = np.array([0.0, -0.0, 1.5, -3.25e-7, np.float32(np.pi), 3.4e38], dtype=np.float32)
    assert np.array_equal(words_to_floats(float_words(x).split()).view(np.uint32), x.view(np.uint32))
    assert float_words(np.array([1.0], np.float32)) == "3f800000"


@pytest.fixture(scope="module")
def host_server(ir_artifacts, tmp_path_factory):
    """The serial server built for the host with ASan/UBSan, talking on stdin/stdout."""
    if have("gcc"):
        pytest.skip(have("gcc"))
    d = tmp_path_factory.mktemp("serial-host")
    (d / "model_data.h").write_text(model_header(ir.load(ir_artifacts), name="host-test"))
    exe = d / "server"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O1",
            "-g",
            *WARNINGS,
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            f"-I{d}",
            f"-I{NATIVE}",
            f"-I{native_dir()}",
            str(native_dir() / "ep_serial.c"),
            str(NATIVE / "serial_host.c"),
            str(NATIVE / "irmodel.c"),
            "-o",
            str(exe),
            "-lm",
        ],
        check=True,
    )
    return exe


def converse(exe, lines):
    proc = subprocess.run(
        [str(exe)], input="".join(l + "\n" for l in lines), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # sanitizers print to stderr
    return proc.stdout.splitlines()


def test_protocol_on_the_host_under_sanitizers(host_server, ir_artifacts):
    model = ir.load(ir_artifacts)
    X = data.load("digits").X_test[:2]
    reference = ir.ReferenceExecutor(model).run(X)
    F, T = X.shape[2], X.shape[1]
    lines = ["HELLO", "RESET"] + [f"STEP {float_words(X[0, t])}" for t in range(T)]
    lines += [f"LOAD {t} {float_words(X[1, t])}" for t in range(T)] + [f"RUN {T}"]
    bad = [
        "NOPE",
        "STEP 3f80",
        "STEP " + " ".join(["zzzzzzzz"] * F),
        f"LOAD 64 {float_words(X[0, 0])}",
        "RUN 0",
        "RUN 65",
        "STEP " + "0" * 5000,
        "HELLOX",
    ]
    replies = converse(host_server, lines + bad)
    assert len(replies) == len(lines) + len(bad)  # one reply per command, always
    hello = replies[0].split()
    assert hello[:3] == ["OK", "edgeprune-serial", "1"]
    fields = dict(w.split("=") for w in hello[3:])
    assert fields == {
        "model": "host-test",
        "inputs": str(F),
        "classes": "10",
        "max_steps": "64",
        "clock": "host-test",
        "clock_hz": "0",
    }
    assert replies[1] == "OK"
    step_reply = replies[1 + T].split()
    assert step_reply[0] == "OK" and int(step_reply[1]) == 7
    assert np.abs(words_to_floats(step_reply[2:]) - reference[0]).max() < 1e-5
    assert all(r == "OK" for r in replies[2 + T : 2 + 2 * T])
    run_reply = replies[2 + 2 * T].split()
    assert np.abs(words_to_floats(run_reply[2:]) - reference[1]).max() < 1e-5
    errors = replies[len(lines) :]
    assert all(r.startswith("ERR ") for r in errors), errors
    assert (
        errors[0] == "ERR unknown command" and errors[-2] == "ERR line too long" and errors[-1] == "ERR unknown command"
    )


@pytest.fixture(scope="module")
def firmware(ir_artifacts, tmp_path_factory):
    if have("arm-none-eabi-gcc", "qemu-system-arm"):
        pytest.skip(have("arm-none-eabi-gcc", "qemu-system-arm"))
    return build_serial_firmware(ir.load(ir_artifacts), tmp_path_factory.mktemp("fw") / "serial.elf")


def start_qemu(firmware, serial_spec):
    return subprocess.Popen(
        [
            "qemu-system-arm",
            "-M",
            "mps2-an386",
            "-nographic",
            "-monitor",
            "none",
            "-icount",
            "shift=0",
            "-serial",
            serial_spec,
            "-kernel",
            str(firmware),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def qemu_pty(firmware):
    """QEMU running the serial firmware, its UART on a pseudo-terminal (like a USB serial board)."""
    proc = start_qemu(firmware, "pty")
    line = proc.stdout.readline()
    match = re.search(r"(/dev/pts/\d+)", line)
    assert match, line
    yield match.group(1)
    proc.kill()
    proc.wait()


def test_cli_bench_on_the_board_over_a_pty(run_cli, ir_artifacts, qemu_pty, tmp_path):
    out = tmp_path / "r.json"
    r = run_cli(
        "bench",
        ir_artifacts,
        "--device",
        f"serial://{qemu_pty}",
        "--json",
        out,
        "--device-samples",
        "3",
        "--min-reps",
        "10",
        "--max-reps",
        "10",
    )
    assert r.code == 0, r.err
    doc = json.loads(out.read_text())
    validate(doc)
    (run,) = doc["runtimes"]
    assert run["id"] == "firmware" and run["call_path"] == "firmware" and doc["device"]["kind"] == "serial"
    assert doc["device"]["board"]["model"] == "ir-interpreter-serial"
    reference = ir.ReferenceExecutor(ir.load(ir_artifacts)).run(data.load("digits").X_test[:3])
    for mode in ("step", "sequence"):
        assert np.abs(np.array(run["outputs"][mode]) - reference).max() < 1e-5
        stat = run["latency"][mode]
        assert stat["unit"] == "cycles" and stat["clock_hz"] == 25e6 and stat["p50"] > 0
    # with -icount shift=0 one instruction is 1 ns of virtual time: SysTick at 25 MHz ticks every 40;
    # a whole sequence of 8 steps is about 8 steps
    assert 6 < run["latency"]["sequence"]["p50"] / run["latency"]["step"]["p50"] < 10


def test_socket_url_and_protocol_errors(firmware, ir_artifacts):
    port = free_port()
    proc = start_qemu(firmware, f"tcp:127.0.0.1:{port},server=on,wait=off")
    try:
        device = parse(f"serial:socket://127.0.0.1:{port}")
        import time

        deadline = time.monotonic() + 10
        while True:  # until QEMU listens
            try:
                device.open()
                break
            except DeviceError:
                if time.monotonic() > deadline:
                    raise
        assert device.hello["inputs"] == 8 and device.hello["classes"] == 10
        with pytest.raises(DeviceError, match="the board refused BOGUS: unknown command"):
            device.command("BOGUS")
        X = np.zeros((1, 8, 5), np.float32)  # 5 features: not this board's model
        with pytest.raises(DeviceError, match="takes 8 inputs, the data has 5"):
            device.execute(Job("fw", None, X, ProgramSettings(min_reps=1, max_reps=1)))
        proc.kill()  # the board goes away mid-session
        proc.wait()
        device.reply_timeout = 1.0
        with pytest.raises(DeviceError, match=r"(connection lost during RESET|no reply to RESET within 1 s)"):
            device.command("RESET")
        device.close()
    finally:
        proc.kill()
        proc.wait()


def test_silent_port_is_one_clear_error():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    device = SerialDevice("serial:socket://test", f"socket://127.0.0.1:{server.getsockname()[1]}", boot_timeout=1.5)
    with pytest.raises(DeviceError, match=r"no edgeprune-serial firmware answered within 1.5 s"):
        device.open()
    server.close()


def test_late_boot_replies_are_not_taken_for_the_next_command():
    """A board that answers the first HELLO after the host gave up on it and sent another."""
    hello = "OK edgeprune-serial 1 model=m inputs=2 classes=3 max_steps=4 clock=c clock_hz=1\n"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def board():
        conn, _ = server.accept()
        hellos = 0
        with conn, conn.makefile("rwb", buffering=0) as f:
            for raw in f:
                line = raw.decode().strip()
                if line == "HELLO":
                    hellos += 1
                    if hellos == 1:
                        time.sleep(1.5)  # longer than the host's 1 s HELLO timeout: it sends another
                    f.write(hello.encode())
                elif line.startswith("SYNC"):
                    f.write(f"OK{line[4:]}\n".encode())
                elif line == "RESET":
                    f.write(b"OK\n")

    threading.Thread(target=board, daemon=True).start()
    device = SerialDevice("serial:socket://test", f"socket://127.0.0.1:{server.getsockname()[1]}", boot_timeout=5)
    try:
        device.open()
        assert device.hello["classes"] == 3
        assert device.command("RESET") == []  # not the second HELLO's reply
    finally:
        device.close()
        server.close()
