"""Runtimes shipped with the package: source files that backends copy next to their artifacts."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(*parts: str) -> Path:
    """A file or folder of a shipped runtime, e.g. ``path("c", "edgeprune_rt.h")``."""
    return ROOT.joinpath(*parts)
