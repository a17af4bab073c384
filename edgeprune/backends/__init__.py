"""Backends, one module each, found by module name (``edgeprune.backends.<name>``).

No backend imports another; they share only ``base`` and the IR.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from ..errors import BackendError
from .base import Artifact, Backend, Runner

_NOT_BACKENDS = {"base"}


def names() -> list[str]:
    found = [
        m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_BACKENDS and not m.name.startswith("_")
    ]
    order = {"ir": 0, "c": 1, "onnx": 2, "tflite": 3}
    return sorted(found, key=lambda n: (order.get(n, 99), n))


def get(name: str) -> Backend:
    if name not in names():
        raise BackendError(f"unknown target '{name}' (choose {', '.join(names())} or all)")
    return import_module(f"{__name__}.{name}").BACKEND


def all_backends() -> list[Backend]:
    return [get(n) for n in names()]


__all__ = ["Artifact", "Backend", "BackendError", "Runner", "all_backends", "get", "names"]
