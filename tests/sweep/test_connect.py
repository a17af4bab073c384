"""Connecting to a Ray cluster: a head that fails to start our client server once is retried; the error a user
sees is one line carrying the server's own reason (Ray puts a traceback after a header line)."""

from __future__ import annotations

import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.sweep import executors
from edgeprune.sweep.executors import RayExecutor, _line


class _FakeRay:
    """Stands in for the ``ray`` module: ``init`` fails ``failures`` times with what Ray's client raises."""

    def __init__(self, failures: int):
        self.failures = failures
        self.inits = 0
        self.shutdowns = 0

    def init(self, **kwargs):
        self.inits += 1
        if self.inits <= self.failures:
            raise ConnectionAbortedError(
                'Initialization failure from server:\nTraceback (most recent call last):\n  File "proxier.py"\n'
                "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err"
            )

    def shutdown(self):
        self.shutdowns += 1

    def is_initialized(self):
        return False

    def cluster_resources(self):
        return {"CPU": 2.0}

    def remote(self, **kwargs):
        return lambda f: f


def _executor(fake: _FakeRay, monkeypatch) -> tuple[RayExecutor, list[str]]:
    monkeypatch.setitem(__import__("sys").modules, "ray", fake)
    monkeypatch.setattr(executors.time, "sleep", lambda s: None)
    logged: list[str] = []
    return RayExecutor("ray://127.0.0.1:1", ship_code=False, log=logged.append), logged


def test_a_failed_client_server_start_is_retried_and_said(monkeypatch):
    fake = _FakeRay(failures=RayExecutor.CONNECT_ATTEMPTS - 1)
    executor, logged = _executor(fake, monkeypatch)
    assert fake.inits == RayExecutor.CONNECT_ATTEMPTS
    assert fake.shutdowns == RayExecutor.CONNECT_ATTEMPTS - 1
    assert executor.parallel == 2
    assert len(logged) == RayExecutor.CONNECT_ATTEMPTS - 1
    assert all("retrying" in m and "Starting Ray client server failed" in m for m in logged)


def test_a_head_that_keeps_failing_gives_one_line_with_the_servers_reason(monkeypatch):
    fake = _FakeRay(failures=RayExecutor.CONNECT_ATTEMPTS)
    with pytest.raises(EdgepruneError) as raised:
        _executor(fake, monkeypatch)
    message = str(raised.value)
    assert fake.inits == RayExecutor.CONNECT_ATTEMPTS
    assert "\n" not in message
    assert message.startswith("could not connect to the Ray cluster at ray://127.0.0.1:1")
    assert "Initialization failure from server: RuntimeError: Starting Ray client server failed" in message


def test_line_keeps_a_one_line_message_and_is_bounded():
    assert _line(ValueError("plain reason")) == "plain reason"
    assert _line(ValueError("")) == ""
    assert len(_line(ValueError("x" * 1000))) == 300
