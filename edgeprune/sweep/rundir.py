"""RUN_DIR: where a sweep keeps its results, one file per finished cell, so it can always resume.

```
RUN_DIR/
  sweep.json          the sweep's identity (grid + settings + checkpoint hash) and its cell keys
  cells/<key>.json    one record per finished cell (ok or failed), written atomically when it finishes
  index.json          a summary of every cell (status, accuracy, bytes), rewritten after each cell
  report/             report.md, result.json and the plots, written at the end
  .lock               held (flock) while a sweep runs here
```

The cell files are the truth: ``index.json`` is rebuilt from them, so a sweep killed between
writing a cell and the index loses nothing. Everything is written through ``fileio`` (temporary
file + rename), so a kill never leaves half a file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
from pathlib import Path

from .. import __version__
from ..errors import EdgepruneError
from ..fileio import dumps_json, write_text_atomic
from .cell import CELL_FORMAT

RUN_FORMAT, INDEX_FORMAT, VERSION = "edgeprune.sweep", "edgeprune.sweep-index", 1
MANIFEST, INDEX, CELLS, REPORT, LOCK = "sweep.json", "index.json", "cells", "report", ".lock"


class RunDirError(EdgepruneError):
    pass


def _describe(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.cells_dir = self.path / CELLS
        self._lock = None

    # -- opening ---------------------------------------------------------------------------------
    def open(self, identity: dict, keys: list[str], checkpoint: str) -> dict[str, dict]:
        """Create the RUN_DIR or check that it belongs to this sweep; lock it; the finished cells."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path}: exists and is not a directory")
        manifest_path = self.path / MANIFEST
        if self.path.is_dir() and not manifest_path.exists():
            stray = [p.name for p in self.path.iterdir() if p.name != LOCK]
            if stray:
                raise RunDirError(
                    f"{self.path}: exists, is not empty and is not a sweep run directory "
                    f"(no {MANIFEST}); choose a new RUN_DIR"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        self._acquire()
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError) as e:
                raise RunDirError(f"{manifest_path}: unreadable ({e})") from None
            if manifest.get("format") != RUN_FORMAT:
                raise RunDirError(f"{manifest_path}: not an edgeprune sweep manifest")
            before = manifest.get("identity", {})
            for key in sorted(set(before) | set(identity)):
                if before.get(key) != identity.get(key):
                    what = "the checkpoint's contents" if key == "checkpoint_sha256" else key
                    raise RunDirError(
                        f"{self.path} was made by a different sweep ({what}: {_describe(before.get(key))} there, "
                        f"{_describe(identity.get(key))} here); resume it with the same settings or choose a new "
                        "RUN_DIR"
                    )
        else:
            manifest = {
                "format": RUN_FORMAT,
                "version": VERSION,
                "edgeprune": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "checkpoint": str(checkpoint),
                "identity": identity,
                "cells": keys,
            }
            write_text_atomic(manifest_path, dumps_json(manifest))
        self.manifest = manifest
        return self.finished(keys)

    def _acquire(self) -> None:
        lock = open(self.path / LOCK, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            lock.close()
            raise RunDirError(
                f"{self.path}: another sweep is running here" + (f" (pid {holder})" if holder else "")
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def close(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.seek(0)
                self._lock.truncate()
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # -- cells -----------------------------------------------------------------------------------
    def cell_path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.json"

    def finished(self, keys: list[str]) -> dict[str, dict]:
        """Records of the grid's cells that have a (readable) file; anything else runs again."""
        out = {}
        for key in keys:
            path = self.cell_path(key)
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("format") == CELL_FORMAT and record.get("key") == key:
                out[key] = record
        return out

    def write_cell(self, record: dict) -> Path:
        from ..bench.records import clean_json

        return write_text_atomic(self.cell_path(record["key"]), dumps_json(clean_json(record)))

    def write_index(self, keys: list[str], records: dict[str, dict], *, running: bool) -> Path:
        rows = []
        for key in keys:
            r = records.get(key)
            if r is None:
                rows.append({"key": key, "status": "pending"})
                continue
            rows.append(
                {
                    "key": key,
                    "method": r["method"],
                    "sparsity": r["sparsity"],
                    "seed": r["seed"],
                    "status": r["status"],
                    "stage": r["stage"],
                    "error": r["error"],
                    "file": f"{CELLS}/{key}.json",
                    **headline(r),
                }
            )
        done = [r for r in rows if r["status"] != "pending"]
        index = {
            "format": INDEX_FORMAT,
            "version": VERSION,
            "running": running,
            "total": len(keys),
            "finished": len(done),
            "ok": sum(r["status"] == "ok" for r in done),
            "failed": sum(r["status"] == "failed" for r in done),
            "cells": rows,
        }
        return write_text_atomic(self.path / INDEX, dumps_json(index))


def headline(record: dict) -> dict:
    """The figures a table of cells shows: achieved sparsity, the task's metric (accuracy, or MSE for a
    regression model; ``metric_text`` formats it) and bytes of the first artifact."""
    from ..bench.measure import metric_value
    from ..bench.report import fmt_metric

    pruning = record.get("pruning") or {}
    ok = [r for r in record.get("runtimes", []) if r["status"] == "ok"]
    chosen = next((r for r in ok if r["kind"] == "artifact"), ok[0] if ok else None)
    a = (chosen["accuracy"].get("sequence") or chosen["accuracy"].get("step") or {}) if chosen else {}
    return {
        "achieved_sparsity": pruning.get("sparsity"),
        "accuracy_torch": pruning.get("accuracy_finetuned", pruning.get("accuracy_pruned")),
        "runtime": chosen["id"] if chosen else None,
        "accuracy": a.get("accuracy"),
        "metric": a.get("metric", "accuracy") if a else None,
        "score": metric_value(a),
        "metric_text": fmt_metric(a) if a else "-",
        "storage_bytes": chosen["memory"].get("storage_bytes") if chosen else None,
        "wall_s": (record.get("timing") or {}).get("wall_s"),
    }
