"""The benchmark run: measure every prepared runtime on the device, keep the results.

Results are written (atomically) after every runtime, so a run that is interrupted or loses its
device still leaves everything measured so far in the JSON, with ``complete: false`` and the
error. A failing Python runtime is recorded and the others still run; a device failure stops the
run (the board's state is unknown) after saving.

Where the rest is: ``prepare`` (compile the source, load the data), ``records`` (the result
document and its entries), ``worker`` (one Python runtime in its own process), ``settings``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import metrics
from ..errors import EdgepruneError
from . import memory as memory_mod
from .devices import Device, DeviceError, Job
from .measure import accuracy_record, reference_outputs
from .prepare import Dataset, PreparedSource, prepare
from .programs import ProgramSettings, provider_for
from .records import ResultDocument, memory_record, runtime_record
from .runtimes import RuntimeSpec
from .settings import BenchError, BenchSettings
from .stats import summarize, timer_overhead_ns
from .worker import measure_python


class Bench:
    """One benchmark run of a prepared source on one device."""

    def __init__(
        self,
        source: PreparedSource,
        dataset: Dataset,
        device: Device,
        settings: BenchSettings,
        json_path: str | None = None,
        log: Callable[[str], None] = lambda m: None,
        command: str | None = None,
    ):
        self.source, self.dataset, self.device, self.settings, self.log = source, dataset, device, settings, log
        self.acc = dataset.head(settings.accuracy_samples)
        self.lat = dataset.head(max(1, settings.latency_sequences))
        self.dev = _device_samples(dataset, max(1, settings.device_samples))
        self.result = ResultDocument(json_path, device, device.url, source, self.acc, settings, command)
        self.reference_acc = self._reference(self.acc)
        self.reference_dev = self._reference(self.dev)

    def _reference(self, ds: Dataset) -> np.ndarray | None:
        return reference_outputs(self.source.reference, ds.X, ds.every, ds.lengths) if self.source.reference else None

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
                data = job_data(self.lat, self.acc)
                np.savez(data_path, **data)
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
        if spec.kind == "peer":
            from .peers import unavailable

            reason = "a Python runtime: host only" if not local else unavailable(spec.id, spec.python)
            if reason:
                self.doc["skipped"].append({"id": spec.id, "reason": reason})
                return
        if local and not spec.verified:
            self.doc["skipped"].append(
                {"id": spec.id, "reason": "compile could not run it on this host (no runtime here)"}
            )
        elif local:
            self.log(f"measuring {spec.id} ({spec.runtime})")
            self._measure_python(spec, work, data_path, data)
        provider = provider_for(spec.target) if spec.kind == "artifact" else None
        if provider is None:
            if not local:
                reason = (
                    "a Python runtime: host only"
                    if spec.kind in ("torch", "peer")
                    else f"target {spec.target} has no benchmark program (host only)"
                )
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
        record = runtime_record(spec, self.device.url, "python", False, self.settings.threads)
        try:
            result, logits = measure_python(spec, data_path, data, self.settings, work)
        except EdgepruneError as e:
            record.update(status="failed", error=str(e))
            record["memory"] = memory_record(spec, self.source.nnz)
            self.result.add(record)
            return
        for mode, stat in result["latency"].items():
            if not self.settings.keep_samples:
                stat.pop("samples", None)
            record["latency"][mode] = stat
        record["memory"] = memory_record(spec, self.source.nnz, result.get("info"))
        record["memory"]["peak_rss_bytes"] = result.get("peak_rss_bytes")
        record["memory"]["baseline_rss_bytes"] = result.get("baseline_rss_bytes")
        record["os_threads"] = result.get("os_threads")
        for mode, outputs in logits.items():
            record["accuracy"][mode] = accuracy_record(
                outputs,
                self.acc.y,
                mode,
                self.acc.task,
                self.acc.lengths,
                self.reference_acc,
                self.source.reference_name,
            )
        self.result.add(record)

    def _measure_program(self, spec: RuntimeSpec, provider, work: Path) -> None:
        emulated = self.device.emulated
        record = runtime_record(spec, self.device.url, "native", emulated, 1)
        record["memory"] = memory_record(spec, self.source.nnz)
        settings = self.settings.program_settings(spec.modes, emulated)
        if self.device.kind == "local":
            settings = dataclasses.replace(settings, on_build_host=True)
        try:
            program = provider.build(
                spec, self.device.arch(), np.ascontiguousarray(self.dev.X, dtype=np.float32), settings, work
            )
            record["runtime"] = program.runtime
            record["memory"]["program"] = {**program.sizes, "kind": program.kind, "arch": program.arch}
            job = Job(spec.id, program, self.dev.X, settings, self.settings.timeout_s)
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
        self._fill_from_measurement(record, measurement, self.reference_dev)
        self.result.add(record)

    def _measure_firmware(self, work: Path) -> None:
        """A board that runs its own firmware: one runtime, whatever model it was built from."""
        spec = RuntimeSpec("firmware", "artifact", "board firmware", ("step", "sequence"))
        record = runtime_record(spec, self.device.url, "firmware", self.device.emulated, 1)
        record["id"] = "firmware"
        record["memory"] = memory_mod.record(None, None, self.source.nnz, {})
        settings = self.settings.program_settings(("step", "sequence"), False)
        settings = ProgramSettings(
            settings.warmup,
            min(settings.min_reps, 200),
            min(settings.max_reps, 400),
            settings.budget_ns,
            settings.modes,
        )
        try:
            measurement = self.device.execute(Job("firmware", None, self.dev.X, settings, self.settings.timeout_s))
        except DeviceError as e:
            record.update(status="failed", error=str(e))
            self.doc["errors"].append(str(e))
            self.result.add(record)
            raise
        record["runtime"] = f"firmware '{measurement.info.get('model', '')}'"
        self._fill_from_measurement(record, measurement, self.reference_dev)
        self.result.add(record)

    def _fill_from_measurement(self, record: dict, m, reference: np.ndarray | None) -> None:
        record["emulated"] = bool(m.emulated)
        record["info"] = dict(m.info)
        for mode, samples in m.samples.items():
            if not samples:
                continue
            stat = summarize(
                samples,
                m.unit,
                clock=m.clock,
                stopped_by="program",
                warmup=m.warmup.get(mode, 0),
                keep_samples=self.settings.keep_samples,
            )
            if m.info.get("clock_hz"):
                stat["clock_hz"] = float(m.info["clock_hz"])
            record["latency"][mode] = stat
        # the program's logits are small (device samples x classes): kept so runs can be compared
        record["outputs"] = {mode: np.asarray(v, dtype=np.float64).tolist() for mode, v in m.outputs.items()}
        dev = self.dev
        for mode, outputs in m.outputs.items():
            if dev.every and outputs.ndim == 2 and outputs.shape[0] == len(dev.y):
                record["accuracy"][mode] = self._last_step_only(outputs, mode, reference)
                continue
            expected = (len(dev.y), dev.X.shape[1]) if dev.every else (len(dev.y),)
            if tuple(outputs.shape[: len(expected)]) != expected or outputs.ndim != len(expected) + 1:
                record.update(
                    status="failed",
                    error=f"the program returned outputs shaped {list(outputs.shape)} for "
                    f"{'per-step' if dev.every else 'per-sequence'} labels {list(dev.y.shape)}",
                )
                continue
            record["accuracy"][mode] = accuracy_record(
                outputs, dev.y, mode, dev.task, dev.lengths, reference, self.source.reference_name
            )

    def _last_step_only(self, outputs: np.ndarray, mode: str, reference: np.ndarray | None) -> dict:
        """A program that prints the outputs after the last step only, for a model with an output at
        every step: checked against the reference's outputs at that step, not scored on the labels
        (one step per sequence is not the per-step metric)."""
        dev = self.dev
        record = {
            "accuracy": None,
            "samples": int(len(outputs)),
            "mode": mode,
            "task": dev.task,
            "metric": "accuracy" if dev.task == "classify" else "mse",
            "per_step": False,
            "note": "the program prints the last step's outputs only: compared with the reference, not scored",
        }
        if reference is not None:
            last = reference[:, -1]
            record["reference"] = self.source.reference_name
            record["max_abs_vs_reference"] = metrics.max_abs(outputs, last)
            record["agreement_vs_reference"] = metrics.agreement(outputs, last) if dev.task == "classify" else None
        return record

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
                    self.doc["comparisons"].append(
                        {
                            "id": py["id"],
                            "mode": mode,
                            "python_p50_ns": a["p50"],
                            "native_p50_ns": b["p50"],
                            "python_overhead_ns": a["p50"] - b["p50"],
                        }
                    )


def job_data(latency: Dataset, accuracy: Dataset) -> dict:
    """What a worker measures on (saved as the job's .npz): sequences, labels, true lengths, layout."""

    def lengths(ds: Dataset) -> np.ndarray:
        return np.full(len(ds.X), ds.X.shape[1], np.int64) if ds.lengths is None else np.asarray(ds.lengths, np.int64)

    return {
        "X_latency": latency.X,
        "lengths_latency": lengths(latency),
        "X_accuracy": accuracy.X,
        "y_accuracy": accuracy.y,
        "lengths_accuracy": lengths(accuracy),
        "every": np.asarray(accuracy.every),
    }


def _device_samples(dataset: Dataset, n: int) -> Dataset:
    """The sequences a benchmark program embeds. A program runs every step it is given (it has no
    length input), so for a per-sequence model on variable-length data it gets full-length sequences
    when there are any: its output after the last step is then the sequence's own."""
    if dataset.every or dataset.lengths is None:
        return dataset.head(n)
    full = np.flatnonzero(dataset.lengths == dataset.X.shape[1])
    if len(full) == 0 or len(full) == len(dataset.X):
        return dataset.head(n)
    pick = full[:n]
    return Dataset(dataset.name, dataset.X[pick], dataset.y[pick], dataset.lengths[pick], dataset.task, dataset.labels)


def bench(
    source: str,
    device: Device,
    settings: BenchSettings,
    *,
    runtimes: list[str] | None = None,
    peers: list[str] | None = None,
    variants: dict | None = None,
    data: str | None = None,
    data_dir: str | None = None,
    json_path: str | None = None,
    keep_artifacts: str | None = None,
    log=lambda m: None,
    command: str | None = None,
) -> dict:
    """Benchmark ``source`` (checkpoint or compile output) on ``device``; the result document."""
    prepared, dataset = prepare(
        source,
        runtimes=runtimes,
        peers=peers,
        variants=variants,
        data=data,
        data_dir=data_dir,
        keep_artifacts=keep_artifacts,
        compile_targets=device.builds_programs,
        log=log,
    )
    try:
        if not prepared.specs:
            why = "; ".join(f"{f['id']}: {f.get('error') or f.get('reason')}" for f in prepared.failures[:3])
            raise BenchError("nothing to benchmark (" + (why or "no runtime matches") + ")")
        return Bench(prepared, dataset, device, settings, json_path, log, command).run()
    finally:
        prepared.cleanup()
