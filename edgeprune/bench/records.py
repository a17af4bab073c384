"""The result document of a run and the entries in it: machine facts, one record per runtime and
call path, its memory section, and JSON that is always valid (no NaN, no numpy scalars).

``sweep`` builds its cell records from the same entries (``runtime_record``, ``memory_record``).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import EdgepruneError
from ..fileio import dumps_json, write_text_atomic
from . import memory as memory_mod
from .devices import Device
from .prepare import Dataset, PreparedSource
from .runtimes import RuntimeSpec
from .schema import FORMAT, VERSION
from .settings import BenchSettings
from .targets import memory_info as target_memory_info


def machine() -> dict:
    cpu, flags = platform.processor() or "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu.strip() in ("", "x86_64", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                wanted = {"sse4_2", "avx", "avx2", "fma", "avx512f", "neon", "asimd"}
                flags = sorted(set(line.split(":", 1)[1].split()) & wanted)
    except OSError:
        pass
    return {
        "cpu": cpu or platform.machine(),
        "simd_flags": flags,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


class ResultDocument:
    """The JSON being built; saved after every change when a path is given."""

    def __init__(
        self,
        path: str | None,
        device: Device | None,
        device_url: str,
        source: PreparedSource | None,
        dataset: Dataset | None,
        settings: BenchSettings,
        command: str | None = None,
    ):
        self.path = Path(path) if path else None
        pruning = (source.meta.get("pruning") if source else None) or {}
        self.doc = {
            "format": FORMAT,
            "version": VERSION,
            "edgeprune": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command or " ".join(shlex.quote(a) for a in ["edgeprune", *sys.argv[1:]]),
            "complete": False,
            "machine": machine(),
            "device": {
                "url": device_url,
                "kind": getattr(device, "kind", "unknown"),
                "emulated": bool(getattr(device, "emulated", False)),
            },
            "source": {
                "path": source.path if source else "",
                "kind": source.kind if source else "artifacts",
                "model": source.model_description if source else None,
                "nnz": source.nnz if source else None,
                "sparsity": pruning.get("sparsity"),
                "method": pruning.get("method"),
            },
            "data": {
                "dataset": dataset.name if dataset else None,
                "split": "test",
                "accuracy_samples": int(len(dataset.X)) if dataset else None,
                "latency_sequences": settings.latency_sequences,
                "device_samples": settings.device_samples,
                "steps": int(dataset.X.shape[1]) if dataset else None,
                "task": dataset.task if dataset else None,
                "labels": dataset.labels if dataset else None,
                "metric": ("accuracy" if dataset.task == "classify" else "mse") if dataset else None,
                "min_length": int(np.min(dataset.lengths))
                if dataset and dataset.lengths is not None and len(dataset.lengths)
                else None,
            },
            "settings": {
                "threads": settings.threads,
                "isolated": settings.isolate,
                "budget": settings.budget.to_dict(),
                "timeout_s": settings.timeout_s,
            },
            "harness": {},
            "runtimes": [],
            "comparisons": [],
            "skipped": list(source.failures) if source else [],
            "errors": [],
        }
        for s in self.doc["skipped"]:
            s.setdefault("reason", s.get("error", ""))

    def save(self) -> None:
        if self.path is not None:
            write_text_atomic(self.path, dumps_json(clean_json(self.doc)))

    def add(self, record: dict) -> None:
        self.doc["runtimes"].append(record)
        self.save()


def clean_json(obj):
    """JSON without NaN/inf (null instead) and without numpy scalars."""
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def runtime_record(spec: RuntimeSpec, device_url: str | None, call_path: str, emulated: bool, threads: int) -> dict:
    """The entry of one runtime on one call path, before anything is measured (status ok, nothing filled in)."""
    return {
        "id": spec.id if call_path == "python" else f"{spec.id} ({call_path})",
        "kind": spec.kind,
        "runtime": spec.runtime,
        "target": spec.target,
        "artifact": (spec.artifact or {}).get("name"),
        "variant": dict(spec.variant),
        "modes": list(spec.modes),
        "device": device_url,
        "call_path": call_path,
        "emulated": emulated,
        "status": "ok",
        "error": None,
        "latency": {},
        "memory": {},
        "accuracy": {},
        "threads": threads,
        "os_threads": None,
    }


def memory_record(spec: RuntimeSpec, nnz: int | None, info: dict | None = None) -> dict:
    """The memory section of ``spec``'s entry: its stored bytes from the artifact, ``info`` (a runner's own
    storage facts) first."""
    if info is None and spec.target == "ir" and spec.directory:
        from .. import ir

        try:  # the IR is its own storage format: its figures are exact, not guessed
            info = memory_mod.ir_storage(ir.load(spec.directory))
        except EdgepruneError:
            info = None
    if info is not None and spec.artifact:
        info = {**spec.artifact.get("info", {}), **info}
    if info is None and spec.artifact:
        info = spec.artifact.get("info", {})
    if info is not None and spec.kind == "artifact":
        info = target_memory_info(spec.target, info, spec.directory, spec.artifact)
    return memory_mod.record(spec.artifact, spec.directory, spec.nnz if spec.nnz is not None else nnz, info)
