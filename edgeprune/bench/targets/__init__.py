"""What bench knows about a target beyond the backend contract, one module per backend name.

A module ``targets.<target>`` may define:

* ``PROVIDER`` — a ``programs.ProgramProvider`` that turns the target's artifacts into native
  benchmark programs for devices;
* ``memory_info(info: dict, directory: Path | None, artifact: dict | None) -> dict`` — the
  standard memory keys (``memory.INFO_KEYS``) read from what the backend reports in
  ``Artifact.info`` in its own shape (or from the artifact's files), until it reports them
  directly.

Neither is required: a backend without a module here is still measured through its ``Runner``.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


def module(target: str | None) -> ModuleType | None:
    if not target:
        return None
    try:
        return import_module(f"{__name__}.{target}")
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.{target}":
            return None
        raise


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def memory_info(target: str | None, info: dict, directory=None, artifact: dict | None = None) -> dict:
    """``info`` with the standard keys filled from the target's own shape (numbers it reports win)."""
    m = module(target)
    adapt = getattr(m, "memory_info", None) if m else None
    out = dict(info)
    if adapt is not None:
        for key, value in adapt(info, directory, artifact).items():
            if not _number(out.get(key)):
                out[key] = value
    return out
