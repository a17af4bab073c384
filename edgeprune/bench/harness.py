"""The benchmark run: prepare the source, measure every runtime on the device, keep the results.

Results are written (atomically) after every runtime, so a run that is interrupted or loses its
device still leaves everything measured so far in the JSON, with ``complete: false`` and the
error. A failing Python runtime is recorded and the others still run; a device failure stops the
run (the board's state is unknown) after saving.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import EdgepruneError
from ..fileio import dumps_json, write_text_atomic
from . import memory as memory_mod
from .devices import Device, DeviceError, Job
from .measure import accuracy_record
from .programs import ProgramSettings, provider_for
from .runtimes import (RuntimeSpec, available_targets, compile_checkpoint, dedupe, default_variants, select,
                       specs_from_compile_dir, torch_spec)
from .schema import FORMAT, VERSION
from .stats import Budget, summarize, timer_overhead_ns
from .targets import memory_info as target_memory_info


class BenchError(EdgepruneError):
    """A run that did not complete; ``doc`` holds what was measured (also saved to the JSON)."""

    doc: dict | None = None


@dataclass
class BenchSettings:
    budget: Budget = field(default_factory=Budget)
    threads: int = 1
    isolate: bool = True  # each Python runtime in its own process (peak RSS, no interference)
    latency_sequences: int = 16  # distinct test sequences the latency loops cycle through
    accuracy_samples: int | None = None  # None: the whole test split
    device_samples: int = 32  # sequences embedded in device programs (outputs + accuracy there)
    timeout_s: float = 600.0  # per runtime
    native: bool = True  # on the host, also run each program-capable artifact as a native program
    keep_samples: bool = True
    program: ProgramSettings | None = None  # None: derived from ``budget``

    def program_settings(self, modes, emulated: bool) -> ProgramSettings:
        if emulated:
            return ProgramSettings.emulated(modes)
        if self.program is not None:
            return ProgramSettings(self.program.warmup, self.program.min_reps, self.program.max_reps,
                                   self.program.budget_ns, tuple(modes))
        b = self.budget
        return ProgramSettings(max(b.warmup, 1), b.min_reps, b.max_reps, int(b.time_s * 1e9), tuple(modes))


@dataclass
class Dataset:
    name: str
    X: np.ndarray  # test split (capped to accuracy_samples)
    y: np.ndarray


@dataclass
class PreparedSource:
    path: str
    kind: str  # "checkpoint" | "artifacts"
    specs: list[RuntimeSpec]
    model_description: str | None
    nnz: int | None
    meta: dict
    reference: Callable[[np.ndarray], np.ndarray] | None
    reference_name: str | None
    failures: list[dict] = field(default_factory=list)
    work_dir: tempfile.TemporaryDirectory | None = None

    def cleanup(self) -> None:
        if self.work_dir is not None:
            self.work_dir.cleanup()
            self.work_dir = None


# -- preparing ---------------------------------------------------------------------------------
def _is_checkpoint(path: Path) -> bool:
    return path.is_file() and path.name != "compile.json"


def _targets_for(patterns: list[str] | None) -> list[str]:
    import fnmatch

    avail = available_targets()
    if not patterns:
        return [t for t in avail if t != "ir"]  # the numpy reference is a check, not a deployment runtime
    return [t for t in avail if any(fnmatch.fnmatchcase(t, p.split("[")[0].split("/")[0]) for p in patterns)]


def prepare(source: str, *, runtimes: list[str] | None = None, variants: dict | None = None,
            data: str | None = None, data_dir: str | None = None, keep_artifacts: str | None = None,
            compile_targets: bool = True, log: Callable[[str], None] = lambda m: None) -> tuple[PreparedSource, Dataset]:
    """Compile a checkpoint (or read a compile output) and load the test split to measure on."""
    from ..compiler import load_source

    path = Path(source)
    if not path.exists():
        raise BenchError(f"{source}: no such file or directory")
    if _is_checkpoint(path):
        src = load_source(path)
        dataset = _load_data(data or src.meta.get("dataset"), data_dir, src.model.input_size)
        targets = _targets_for(runtimes)
        chosen = variants if variants is not None else default_variants(targets)
        chosen = {t: v for t, v in chosen.items() if t in targets or variants is not None}
        if not compile_targets:  # a board running its own firmware: only the reference and the data matter
            chosen = {}
        work = None
        if keep_artifacts:
            out_dir = Path(keep_artifacts)
            if out_dir.exists() and any(out_dir.iterdir()):
                raise BenchError(f"--keep-artifacts {out_dir}: exists and is not empty")
        else:
            work = tempfile.TemporaryDirectory(prefix="edgeprune-bench-")
            out_dir = Path(work.name)
        X_verify = dataset.X[:64]
        if chosen:
            log(f"compiling {path.name} for {', '.join(sorted(chosen))}")
        specs, failures = compile_checkpoint(str(path), out_dir, chosen, X_verify,
                                             f"{len(X_verify)} test samples of {dataset.name}", log=log)
        specs, duplicates = dedupe([torch_spec(str(path))] + specs)
        failures += duplicates
        pruning = src.meta.get("pruning") or {}
        prepared = PreparedSource(str(path), "checkpoint", select(specs, runtimes), src.model.describe(),
                                  src.model.nnz(include_head=True), {**src.meta, "pruning": pruning},
                                  src.reference, src.reference_name, failures, work)
        return prepared, dataset
    if variants is not None:
        raise BenchError("--variants applies to a checkpoint (bench compiles it); a compile output has its artifacts already")
    specs = specs_from_compile_dir(path)
    reports = sorted(path.glob("compile.json")) or sorted(path.glob("*/compile.json"))
    docs = [json.loads(r.read_text()) for r in reports]
    doc = docs[0]
    reference = reference_name = input_size = None
    meta: dict = {}
    model_desc, nnz = doc.get("model", {}).get("description"), doc.get("model", {}).get("nnz_with_head")
    origin = Path(doc.get("source", ""))
    mixed = len({d.get("source") for d in docs}) > 1 or len({json.dumps(d.get("model")) for d in docs}) > 1
    if mixed:  # artifacts of different models: no common reference, no single torch baseline
        log(f"{path}: its compile outputs come from different sources; accuracy is against labels only")
        origin = Path("")
    if origin.is_file():  # the checkpoint it was compiled from: the torch baseline and the reference
        try:
            src = load_source(origin)
            reference, reference_name, meta = src.reference, src.reference_name, src.meta
            input_size = src.model.input_size
            specs = [torch_spec(str(origin))] + specs
        except EdgepruneError as e:
            log(f"not using {origin} as reference ({e})")
    if reference is None and not mixed:
        ir_dirs = [Path(s.directory) for s in specs if s.target == "ir"]
        if ir_dirs:
            src = load_source(ir_dirs[0])
            reference, reference_name, meta = src.reference, src.reference_name, src.meta
            input_size = src.model.input_size
    specs, duplicates = dedupe(specs)
    if not meta:
        for s in specs:
            if s.target == "ir":
                meta = json.loads((Path(s.directory) / "model.json").read_text()).get("meta", {})
    dataset = _load_data(data or meta.get("dataset"), data_dir, input_size)
    return PreparedSource(str(path), "artifacts", select(specs, runtimes), model_desc, nnz, meta, reference,
                          reference_name, duplicates), dataset


def _load_data(name: str | None, data_dir: str | None, input_size: int | None) -> Dataset:
    if not name:
        raise BenchError("the model records no dataset; pass --data NAME|FILE.npz")
    from ..data import load

    ds = load(name, data_dir)
    if input_size is not None and ds.features != input_size:
        raise BenchError(f"dataset {ds.name} has {ds.features} features but the model takes {input_size}")
    return Dataset(ds.name, ds.X_test, ds.y_test)


# -- the result document -----------------------------------------------------------------------
def machine() -> dict:
    cpu, flags = platform.processor() or "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu.strip("x86_64 "):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                wanted = {"sse4_2", "avx", "avx2", "fma", "avx512f", "neon", "asimd"}
                flags = sorted(set(line.split(":", 1)[1].split()) & wanted)
    except OSError:
        pass
    return {"cpu": cpu or platform.machine(), "simd_flags": flags, "cores": os.cpu_count(),
            "machine": platform.machine(), "os": platform.platform(), "python": platform.python_version(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


class ResultDocument:
    """The JSON being built; saved after every change when a path is given."""

    def __init__(self, path: str | None, device: Device | None, device_url: str, source: PreparedSource | None,
                 dataset: Dataset | None, settings: BenchSettings, command: str | None = None):
        self.path = Path(path) if path else None
        pruning = (source.meta.get("pruning") if source else None) or {}
        self.doc = {
            "format": FORMAT, "version": VERSION, "edgeprune": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command or " ".join(shlex.quote(a) for a in ["edgeprune", *sys.argv[1:]]),
            "complete": False,
            "machine": machine(),
            "device": {"url": device_url, "kind": getattr(device, "kind", "unknown"),
                       "emulated": bool(getattr(device, "emulated", False))},
            "source": {"path": source.path if source else "", "kind": source.kind if source else "artifacts",
                       "model": source.model_description if source else None, "nnz": source.nnz if source else None,
                       "sparsity": pruning.get("sparsity"), "method": pruning.get("method")},
            "data": {"dataset": dataset.name if dataset else None, "split": "test",
                     "accuracy_samples": int(len(dataset.X)) if dataset else None,
                     "latency_sequences": settings.latency_sequences, "device_samples": settings.device_samples,
                     "steps": int(dataset.X.shape[1]) if dataset else None},
            "settings": {"threads": settings.threads, "isolated": settings.isolate, "budget": settings.budget.to_dict(),
                         "timeout_s": settings.timeout_s},
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
            write_text_atomic(self.path, dumps_json(_clean(self.doc)))

    def add(self, record: dict) -> None:
        self.doc["runtimes"].append(record)
        self.save()


def _clean(obj):
    """JSON without NaN/inf (null instead) and without numpy scalars."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _base_record(spec: RuntimeSpec, device_url: str, call_path: str, emulated: bool, threads: int) -> dict:
    return {"id": spec.id if call_path == "python" else f"{spec.id} ({call_path})", "kind": spec.kind,
            "runtime": spec.runtime, "target": spec.target, "artifact": (spec.artifact or {}).get("name"),
            "variant": dict(spec.variant), "modes": list(spec.modes), "device": device_url, "call_path": call_path,
            "emulated": emulated, "status": "ok", "error": None, "latency": {}, "memory": {}, "accuracy": {},
            "threads": threads, "os_threads": None}


def _memory_for(spec: RuntimeSpec, nnz: int | None, info: dict | None = None) -> dict:
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


# -- measuring ---------------------------------------------------------------------------------
def _thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "EDGEPRUNE_NUM_THREADS"):
        env[var] = str(threads)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(spec: RuntimeSpec, data_path: Path, settings: BenchSettings, work: Path) -> tuple[dict, dict]:
    """Measure ``spec`` in a fresh interpreter; returns (result, logits per mode)."""
    job = {"spec": {**spec.__dict__, "modes": list(spec.modes)}, "data": str(data_path),
           "budget": settings.budget.to_dict(), "threads": settings.threads,
           "result": str(work / f"{spec.id.replace('/', '_')}.json"), "logits": str(work / "logits.npz")}
    job_path = work / "job.json"
    job_path.write_text(json.dumps(job))
    Path(job["result"]).unlink(missing_ok=True)
    with open(work / "worker.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "edgeprune.bench.worker", str(job_path)], stdout=log,
                                stderr=subprocess.STDOUT, env=_thread_env(settings.threads), start_new_session=True)
        deadline = time.monotonic() + settings.timeout_s
        try:
            proc.wait(timeout=settings.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the worker's own process group
            proc.wait()
            raise BenchError(f"{spec.id}: no result within {settings.timeout_s:g} s") from None
        except BaseException:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise
    result_path = Path(job["result"])
    if not result_path.exists():
        tail = (work / "worker.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with status {proc.returncode}"
        raise BenchError(f"{spec.id}: the worker {how}" + (f" ({tail[0][:200]})" if tail[0] else ""))
    result = json.loads(result_path.read_text())
    if "error" in result:
        raise BenchError(f"{spec.id}: {result['error']}")
    with np.load(job["logits"]) as f:
        logits = {k: f[k] for k in f.files}
    return result, logits


def measure_python(spec: RuntimeSpec, data_path: Path, data: dict, settings: BenchSettings, work: Path) -> tuple[dict, dict]:
    """In a worker process (default), or in this one (``isolate=False``: no RSS figures)."""
    if settings.isolate:
        return run_worker(spec, data_path, settings, work)
    from .worker import measure

    result, logits = measure(spec, data, settings.budget, settings.threads)
    result["baseline_rss_bytes"] = None
    return result, logits


class Bench:
    """One benchmark run of a prepared source on one device."""

    def __init__(self, source: PreparedSource, dataset: Dataset, device: Device, settings: BenchSettings,
                 json_path: str | None = None, log: Callable[[str], None] = lambda m: None, command: str | None = None):
        self.source, self.dataset, self.device, self.settings, self.log = source, dataset, device, settings, log
        n = settings.accuracy_samples
        self.X_acc = dataset.X if n is None else dataset.X[:n]
        self.y_acc = dataset.y if n is None else dataset.y[:n]
        self.X_lat = dataset.X[:max(1, settings.latency_sequences)]
        self.X_dev = dataset.X[:max(1, settings.device_samples)]
        self.y_dev = dataset.y[:len(self.X_dev)]
        self.result = ResultDocument(json_path, device, device.url, source,
                                     Dataset(dataset.name, self.X_acc, self.y_acc), settings, command)
        self.reference_acc = source.reference(self.X_acc) if source.reference else None
        self.reference_dev = source.reference(self.X_dev) if source.reference else None

    @property
    def doc(self) -> dict:
        return self.result.doc

    def run(self) -> dict:
        """Measure everything; raises ``BenchError``/``DeviceError`` (after saving) when the run is incomplete."""
        doc = self.doc
        try:
            self.device.open()
        except DeviceError as e:
            doc["errors"].append(str(e))
            self.result.save()
            e.doc = doc
            raise
        try:
            doc["device"] = {**doc["device"], **self.device.describe()}
            doc["harness"]["timer"] = timer_overhead_ns()
            self.result.save()
            with tempfile.TemporaryDirectory(prefix="edgeprune-bench-run-") as tmp:
                work = Path(tmp)
                data_path = work / "data.npz"
                np.savez(data_path, X_latency=self.X_lat, X_accuracy=self.X_acc, y_accuracy=self.y_acc)
                data = {"X_latency": self.X_lat, "X_accuracy": self.X_acc, "y_accuracy": self.y_acc}
                if self.device.builds_programs:
                    for spec in self.source.specs:
                        self._measure_spec(spec, work, data_path, data)
                else:
                    self._measure_firmware(work)
        except EdgepruneError as e:
            if not doc["errors"] or doc["errors"][-1] != str(e):
                doc["errors"].append(str(e))
            self.result.save()
            e.doc = doc
            raise
        finally:
            self.device.close()
        self._comparisons()
        if not doc["runtimes"]:
            reasons = "; ".join(f"{s['id']}: {s['reason']}" for s in doc["skipped"][:3]) or "no runtime"
            doc["errors"].append(f"nothing could run on {self.device.url} ({reasons})")
            self.result.save()
            error = BenchError(doc["errors"][-1])
            error.doc = doc
            raise error
        failed = [r for r in doc["runtimes"] if r["status"] != "ok"]
        doc["complete"] = not failed and not doc["errors"]
        self.result.save()
        if failed:
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            error = BenchError(f"{first['id']} failed: {first['error']}{more}")
            error.doc = doc
            raise error
        return doc

    def _measure_spec(self, spec: RuntimeSpec, work: Path, data_path: Path, data: dict) -> None:
        local = self.device.kind == "local"
        if local and not spec.verified:
            self.doc["skipped"].append({"id": spec.id, "reason": "compile could not run it on this host (no runtime here)"})
        elif local:
            self.log(f"measuring {spec.id} ({spec.runtime})")
            self._measure_python(spec, work, data_path, data)
        provider = provider_for(spec.target) if spec.kind == "artifact" else None
        if provider is None:
            if not local:
                reason = ("a Python runtime: host only" if spec.kind == "torch"
                          else f"target {spec.target} has no benchmark program (host only)")
                self.doc["skipped"].append({"id": spec.id, "reason": reason})
            return
        if local and not self.settings.native:
            return
        reason = provider.unavailable(spec, self.device.arch())
        if reason:
            self.doc["skipped"].append({"id": spec.id, "reason": reason})
            return
        self.log(f"measuring {spec.id} on {self.device.url} (native program)")
        self._measure_program(spec, provider, work)

    def _measure_python(self, spec: RuntimeSpec, work: Path, data_path: Path, data: dict) -> None:
        record = _base_record(spec, self.device.url, "python", False, self.settings.threads)
        try:
            result, logits = measure_python(spec, data_path, data, self.settings, work)
        except EdgepruneError as e:
            record.update(status="failed", error=str(e))
            record["memory"] = _memory_for(spec, self.source.nnz)
            self.result.add(record)
            return
        for mode, stat in result["latency"].items():
            if not self.settings.keep_samples:
                stat.pop("samples", None)
            record["latency"][mode] = stat
        record["memory"] = _memory_for(spec, self.source.nnz, result.get("info"))
        record["memory"]["peak_rss_bytes"] = result.get("peak_rss_bytes")
        record["memory"]["baseline_rss_bytes"] = result.get("baseline_rss_bytes")
        record["os_threads"] = result.get("os_threads")
        for mode, lg in logits.items():
            record["accuracy"][mode] = accuracy_record(lg, self.y_acc, mode, self.reference_acc, self.source.reference_name)
        self.result.add(record)

    def _measure_program(self, spec: RuntimeSpec, provider, work: Path) -> None:
        emulated = self.device.emulated
        record = _base_record(spec, self.device.url, "native", emulated, 1)
        record["memory"] = _memory_for(spec, self.source.nnz)
        settings = self.settings.program_settings(spec.modes, emulated)
        try:
            program = provider.build(spec, self.device.arch(), np.ascontiguousarray(self.X_dev, dtype=np.float32),
                                     settings, work)
            record["runtime"] = program.runtime
            record["memory"]["program"] = {**program.sizes, "kind": program.kind, "arch": program.arch}
            job = Job(spec.id, program, self.X_dev, settings, self.settings.timeout_s)
            measurement = self.device.execute(job)
        except DeviceError as e:
            record.update(status="failed", error=str(e))
            self.doc["errors"].append(str(e))
            self.result.add(record)
            raise
        except EdgepruneError as e:  # could not build this one: record, go on
            record.update(status="failed", error=str(e))
            self.result.add(record)
            return
        self._fill_from_measurement(record, measurement, self.y_dev, self.reference_dev)
        self.result.add(record)

    def _measure_firmware(self, work: Path) -> None:
        """A board that runs its own firmware: one runtime, whatever model it was built from."""
        spec = RuntimeSpec("firmware", "artifact", "board firmware", ("step", "sequence"))
        record = _base_record(spec, self.device.url, "firmware", self.device.emulated, 1)
        record["id"] = "firmware"
        record["memory"] = memory_mod.record(None, None, self.source.nnz, {})
        settings = self.settings.program_settings(("step", "sequence"), False)
        settings = ProgramSettings(settings.warmup, min(settings.min_reps, 200), min(settings.max_reps, 400),
                                   settings.budget_ns, settings.modes)
        try:
            measurement = self.device.execute(Job("firmware", None, self.X_dev, settings, self.settings.timeout_s))
        except DeviceError as e:
            record.update(status="failed", error=str(e))
            self.doc["errors"].append(str(e))
            self.result.add(record)
            raise
        record["runtime"] = f"firmware '{measurement.info.get('model', '')}'"
        self._fill_from_measurement(record, measurement, self.y_dev, self.reference_dev)
        self.result.add(record)

    def _fill_from_measurement(self, record: dict, m, y: np.ndarray, reference: np.ndarray | None) -> None:
        record["emulated"] = bool(m.emulated)
        record["info"] = dict(m.info)
        for mode, samples in m.samples.items():
            if not samples:
                continue
            stat = summarize(samples, m.unit, clock=m.clock, stopped_by="program", warmup=m.warmup.get(mode, 0),
                             keep_samples=self.settings.keep_samples)
            if m.info.get("clock_hz"):
                stat["clock_hz"] = float(m.info["clock_hz"])
            record["latency"][mode] = stat
        # the program's logits are small (device samples x classes): kept so runs can be compared
        record["outputs"] = {mode: np.asarray(v, dtype=np.float64).tolist() for mode, v in m.outputs.items()}
        for mode, logits in m.outputs.items():
            if logits.shape[0] != len(y):
                record.update(status="failed", error=f"the program returned {logits.shape[0]} outputs for {len(y)} inputs")
                continue
            record["accuracy"][mode] = accuracy_record(logits, y, mode, reference, self.source.reference_name)

    def _comparisons(self) -> None:
        """Python call path vs the same artifact's native program on this host (same kernel)."""
        by_id = {r["id"]: r for r in self.doc["runtimes"] if r["status"] == "ok"}
        for r in list(by_id.values()):
            if r["call_path"] != "native" or r["emulated"]:
                continue
            py = by_id.get(r["id"].rsplit(" (", 1)[0])
            if py is None or py["device"] != r["device"]:
                continue
            for mode in ("step", "sequence"):
                a, b = py["latency"].get(mode), r["latency"].get(mode)
                if a and b and a["unit"] == b["unit"] == "ns":
                    self.doc["comparisons"].append({"id": py["id"], "mode": mode, "python_p50_ns": a["p50"],
                                                    "native_p50_ns": b["p50"], "python_overhead_ns": a["p50"] - b["p50"]})


def bench(source: str, device: Device, settings: BenchSettings, *, runtimes: list[str] | None = None,
          variants: dict | None = None, data: str | None = None, data_dir: str | None = None,
          json_path: str | None = None, keep_artifacts: str | None = None, log=lambda m: None,
          command: str | None = None) -> dict:
    """Benchmark ``source`` (checkpoint or compile output) on ``device``; the result document."""
    prepared, dataset = prepare(source, runtimes=runtimes, variants=variants, data=data, data_dir=data_dir,
                                keep_artifacts=keep_artifacts, compile_targets=device.builds_programs, log=log)
    try:
        if not prepared.specs:
            raise BenchError("nothing to benchmark (no runtime matches)")
        return Bench(prepared, dataset, device, settings, json_path, log, command).run()
    finally:
        prepared.cleanup()

