"""``ssh://[user@]host[:port]``: a Linux board reached over SSH.

The harness asks the board for its architecture (``uname -m``), builds the benchmark program for
it, copies it into a fresh directory on the board (through the SSH connection's stdin: the board
needs only a POSIX shell, no scp/sftp server), runs it and parses its JSON. The remote process
writes its pid first, so a timeout kills exactly that process; the directory is removed after.
Authentication, host keys and jump hosts come from the user's SSH configuration (or
``ssh_config``, passed as ``ssh -F``); ``BatchMode`` is on, so nothing ever prompts.

The host and user come from a URL a user may have been sent, and ``ssh`` reads any argument that
starts with ``-`` as an option (``-oProxyCommand=...`` runs a command). So both are checked against
the hostname and user-name grammars here, and every ``ssh`` argv ends its options with ``--``
before the destination.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil

from ..toolchains import ToolchainError, normalize_arch
from .base import Device, DeviceError, Job, Measurement
from .process import Timeout, describe_status, last_line, measurement_from_output, run

EXIT_MARK = "edgeprune-exit-status"

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens (an ssh_config
# Host alias must follow it too); IP addresses are checked by the ipaddress module.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# POSIX portable user names (plus the '$' some systems allow last); never a leading '-'.
_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}\$?\Z")


def check_host(host: str) -> str:
    """``host`` if it is a host name or IP address; anything else (``-o...``, ``;``, spaces) is refused."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not host or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise DeviceError(f"bad device host {host!r}: not a host name or IP address")
    return host


def check_user(user: str) -> str:
    if not _USER.match(user):
        raise DeviceError(
            f"bad device user {user!r}: a user name is letters, digits, '.', '_' and '-', not starting with '-'"
        )
    return user


class SshDevice(Device):
    kind = "ssh"

    def __init__(
        self,
        url: str,
        host: str,
        user: str | None = None,
        port: int | None = None,
        ssh_config: str | None = None,
        connect_timeout: float = 10.0,
    ):
        super().__init__(url)
        self.host = check_host(host)
        self.user = None if user is None else check_user(user)
        self.port = port
        self.ssh_config, self.connect_timeout = ssh_config, connect_timeout
        self._arch: str | None = None
        self._uname = ""

    # -- plumbing ------------------------------------------------------------------------------
    def _argv(self, command: str) -> list[str]:
        argv = ["ssh"]
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        if self.port:
            argv += ["-p", str(self.port)]
        argv += [
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={max(1, int(self.connect_timeout))}",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
            "-T",
        ]
        # '--' first: nothing after it is an option, whatever the destination looks like
        argv += ["--", f"{self.user}@{self.host}" if self.user else self.host, command]
        return argv

    def _run(self, command: str, *, timeout: float, stdin: bytes | None = None, what: str):
        try:
            done = run(self._argv(command), timeout=timeout, stdin=stdin)
        except Timeout:
            raise DeviceError(f"{self.url}: no answer within {timeout:g} s while {what}") from None
        if done.returncode == 255 and EXIT_MARK not in done.stderr:
            reason = last_line(done.stderr) or "connection lost"
            raise DeviceError(f"{self.url}: SSH failed while {what} ({reason})")
        return done

    # -- Device --------------------------------------------------------------------------------
    def open(self) -> None:
        if shutil.which("ssh") is None:
            raise DeviceError(f"{self.url}: the ssh client is not installed (Debian: openssh-client)")
        done = self._run("uname -m", timeout=self.connect_timeout + 20, what="connecting")
        if done.returncode != 0:
            raise DeviceError(f"{self.url}: 'uname -m' {describe_status(done.returncode)} ({last_line(done.stderr)})")
        self._uname = done.stdout.strip()
        try:
            self._arch = normalize_arch(self._uname)
        except ToolchainError as e:
            raise DeviceError(f"{self.url}: {e}") from None

    def arch(self) -> str:
        if self._arch is None:
            self.open()
        return self._arch

    def describe(self) -> dict:
        return {**super().describe(), "host": self.host, "uname_m": self._uname}

    def execute(self, job: Job) -> Measurement:
        data = job.program.path.read_bytes()
        upload = (
            'd=$(mktemp -d "${TMPDIR:-/tmp}/edgeprune-bench.XXXXXX") && cat > "$d/program" && '
            'chmod 700 "$d/program" && echo "$d"'
        )
        done = self._run(
            upload,
            timeout=self.connect_timeout + 60 + len(data) / 1e5,
            stdin=data,
            what=f"copying the program for {job.label}",
        )
        remote_dir = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else ""
        if not remote_dir.startswith("/"):
            raise DeviceError(f"{self.url}: cannot create a directory on the board ({last_line(done.stderr)})")
        d = shlex.quote(remote_dir)
        # the inner shell writes its pid, then becomes the program: that pid is the program's
        command = f"cd {d} && sh -c 'echo $$ > pid; exec ./program'; echo \"{EXIT_MARK} $?\" >&2"
        try:
            try:
                done = self._run(command, timeout=job.timeout_s, what=f"running {job.label}")
            except DeviceError:
                self._kill_remote(d)
                raise
            status = self._exit_status(done.stderr)
            if status != 0:
                raise DeviceError(
                    f"{self.url}: {job.label}: the benchmark program {describe_status(status)} on the board"
                )
            return measurement_from_output(done.stdout, f"{self.url}: {job.label}", program=job.program)
        finally:
            self._cleanup(d)

    def _exit_status(self, stderr: str) -> int:
        for line in reversed(stderr.splitlines()):
            if line.startswith(EXIT_MARK):
                return int(line.split()[1])
        return 255

    def _kill_remote(self, quoted_dir: str) -> None:
        """Best effort: kill the program we started (by its recorded pid), if the board still answers."""
        try:
            run(
                self._argv(f"test -f {quoted_dir}/pid && kill -9 $(cat {quoted_dir}/pid) 2>/dev/null; true"),
                timeout=self.connect_timeout + 5,
            )
        except (Timeout, DeviceError):
            pass

    def _cleanup(self, quoted_dir: str) -> None:
        try:
            run(self._argv(f"rm -rf {quoted_dir}"), timeout=self.connect_timeout + 5)
        except (Timeout, DeviceError):
            pass
