"""Devices ``bench --device`` can measure on; ``parse`` turns a device URL into one."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .base import Device, DeviceError, Job, Measurement

USAGE = (
    "local, ssh://[user@]host[:port], qemu-aarch64, qemu-m4, qemu-x86_64, serial:///dev/ttyX[?baud=N] "
    "or serial:socket://host:port"
)
EMULATED = ("qemu-aarch64", "qemu-m4", "qemu-x86_64")


def parse(url: str, *, ssh_config: str | None = None, connect_timeout: float = 10.0) -> Device:
    """A ``Device`` for ``url`` (not opened yet); a malformed URL is a one-line ``DeviceError``."""
    url = (url or "").strip()
    bad = DeviceError(f"bad device '{url}': expected {USAGE}")
    if url == "local":
        from .local import LocalDevice

        return LocalDevice()
    if url in EMULATED:
        from .qemu import QemuAarch64Device, QemuM4Device, QemuX86Device

        return {"qemu-aarch64": QemuAarch64Device, "qemu-m4": QemuM4Device, "qemu-x86_64": QemuX86Device}[url](url)
    if url.startswith("ssh://"):
        from .ssh import SshDevice

        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise bad from None
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.password:
            raise bad
        return SshDevice(url, parts.hostname, parts.username, port, ssh_config, connect_timeout)
    if url.startswith("serial:"):
        from .serial import SerialDevice

        rest = url[len("serial:") :]
        if rest.startswith("//"):  # serial:///dev/ttyUSB0?baud=115200
            parts = urlsplit(url)
            if parts.netloc or not parts.path.startswith("/"):
                raise bad
            query = parse_qs(parts.query)
            try:
                baud = int(query.get("baud", ["115200"])[0])
            except ValueError:
                raise bad from None
            return SerialDevice(url, parts.path, baud)
        if "://" in rest:  # any pyserial URL: socket://, rfc2217://, loop://
            return SerialDevice(url, rest)
        raise bad
    raise bad


__all__ = ["Device", "DeviceError", "Job", "Measurement", "USAGE", "parse"]
