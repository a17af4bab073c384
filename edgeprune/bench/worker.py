"""One runtime, measured in its own process: ``python -m edgeprune.bench.worker JOB.json``.

Isolation keeps runtimes from disturbing each other (allocator state, thread pools, JIT caches)
and makes the process's peak RSS that runtime's. Peak RSS is the kernel's high-water mark of
this process's own address space (``VmHWM``): ``getrusage``'s ``ru_maxrss`` is not usable for a
child on Linux, because it keeps the high-water mark of the parent's image copied at fork time
(hundreds of MB once the parent has imported torch). The worker also records its RSS just before
loading the model, so the difference is what the runtime and the model cost on top of the
interpreter, numpy and edgeprune. The parent sets the thread environment (OMP_NUM_THREADS, ...)
before this process starts.

The job file names the runtime (a ``RuntimeSpec``), the data (.npz written by ``harness.job_data``:
X_latency, lengths_latency, X_accuracy, y_accuracy, lengths_accuracy and ``every``, whether the
model has an output per step), the budget and where to write the result (.json) and the outputs
(.npz). The parent's side
(``run_worker``: write the job, start this module, wait with a timeout, read the result) is here
too, so that both ends of the job file's protocol are in one place.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .settings import BenchError, BenchSettings

if TYPE_CHECKING:
    from .runtimes import RuntimeSpec


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_now_bytes() -> int | None:
    return _status_kib("VmRSS")


def peak_rss_bytes() -> int | None:
    """High-water RSS of this process since exec (VmHWM); ru_maxrss where /proc is missing."""
    peak = _status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def os_threads() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def make_runner(spec, threads: int):
    """The Runner for ``spec`` and the storage facts the harness cannot read from compile.json."""
    if spec.kind == "torch":
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process (in-process measurement)
            pass
        from .memory import torch_storage
        from .torch_runtime import TorchDenseRunner

        runner = TorchDenseRunner(spec.checkpoint)
        return runner, torch_storage(runner.model)
    if spec.kind == "peer":
        import torch

        torch.set_num_threads(threads)
        from .memory import torch_storage
        from .peers import PeerRunner

        runner = PeerRunner(spec.checkpoint, spec.id, threads)
        return runner, torch_storage(runner.model)  # dense weights, as the peer holds them
    from .. import backends
    from ..backends.base import Backend
    from ..options import resolve

    backend = backends.get(spec.target)
    reason = backend.unavailable()
    if reason:
        raise RuntimeError(f"target {spec.target}: {reason}")
    options = resolve(backend.options, dict(spec.variant), f"target {spec.target}")
    artifact, directory = spec.make_artifact(), Path(spec.directory)
    if type(backend).build is not Backend.build:
        # A target that builds (C) runs what it built in this run from the sources: a binary found in
        # the artifact directory (which may come from someone else) is never loaded or executed.
        directory = _private_copy(artifact, directory)
        backend.build(artifact, directory, options)
    return backend.runner(artifact, directory, options), None


def _private_copy(artifact, directory: Path) -> Path:
    """The artifact's source files, copied into a fresh directory removed when this process exits."""
    import atexit
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="edgeprune-bench-"))
    atexit.register(shutil.rmtree, work, True)
    for name in artifact.files or [artifact.name]:
        source = directory / name
        if not source.is_file():
            raise RuntimeError(f"{source}: missing (the artifact lists it; compile again)")
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, work / name)
    return work


def measure(spec, data: dict, budget, threads: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Latency per mode and outputs per mode for ``spec``; runs in whatever process calls it."""
    from .measure import LATENCY, outputs_of

    baseline = rss_now_bytes()
    runner, info = make_runner(spec, threads)
    result: dict = {"latency": {}, "baseline_rss_bytes": baseline, "info": info}
    logits: dict[str, np.ndarray] = {}
    try:
        for mode in spec.modes:
            if mode not in LATENCY:
                continue
            result["latency"][mode] = LATENCY[mode](runner, data["X_latency"], budget, data["lengths_latency"])
        for mode in spec.modes:
            if mode in LATENCY and len(data["X_accuracy"]):
                logits[mode] = outputs_of(
                    runner, data["X_accuracy"], mode, bool(data["every"]), data["lengths_accuracy"]
                )
        result["os_threads"] = os_threads()
    finally:
        runner.close()
    return result, logits


# -- the parent's side -----------------------------------------------------------------------------
def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "EDGEPRUNE_NUM_THREADS",
    ):
        env[var] = str(threads)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(spec: RuntimeSpec, data_path: Path, settings: BenchSettings, work: Path) -> tuple[dict, dict]:
    """Measure ``spec`` in a fresh interpreter; returns (result, logits per mode)."""
    job = {
        "spec": {**spec.__dict__, "modes": list(spec.modes)},
        "data": str(data_path),
        "budget": settings.budget.to_dict(),
        "threads": settings.threads,
        "result": str(work / f"{spec.id.replace('/', '_')}.json"),
        "logits": str(work / "logits.npz"),
    }
    job_path = work / "job.json"
    job_path.write_text(json.dumps(job))
    Path(job["result"]).unlink(missing_ok=True)
    with open(work / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            [spec.python or sys.executable, "-m", "edgeprune.bench.worker", str(job_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=thread_env(settings.threads),
            start_new_session=True,
        )
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
        how = (
            f"was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited with status {proc.returncode}"
        )
        raise BenchError(f"{spec.id}: the worker {how}" + (f" ({tail[0][:200]})" if tail[0] else ""))
    result = json.loads(result_path.read_text())
    if "error" in result:
        raise BenchError(f"{spec.id}: {result['error']}")
    with np.load(job["logits"]) as f:
        logits = {k: f[k] for k in f.files}
    return result, logits


def measure_python(
    spec: RuntimeSpec, data_path: Path, data: dict, settings: BenchSettings, work: Path
) -> tuple[dict, dict]:
    """In a worker process (default), or in this one (``isolate=False``: no RSS figures)."""
    if settings.isolate:
        return run_worker(spec, data_path, settings, work)
    result, logits = measure(spec, data, settings.budget, settings.threads)
    result["baseline_rss_bytes"] = None
    return result, logits


# -- this process, started by run_worker ------------------------------------------------------------
def main(argv: list[str]) -> int:
    from .runtimes import RuntimeSpec
    from .stats import Budget

    job = json.loads(Path(argv[0]).read_text())
    out = Path(job["result"])
    try:
        spec = RuntimeSpec(**{**job["spec"], "modes": tuple(job["spec"]["modes"])})
        with np.load(job["data"]) as f:
            data = {k: f[k] for k in f.files}
        result, logits = measure(spec, data, Budget(**job["budget"]), int(job["threads"]))
        result["peak_rss_bytes"] = peak_rss_bytes()
        np.savez(job["logits"], **logits)
        out.write_text(json.dumps(result))
        return 0
    except Exception as e:  # reported to the parent as this runtime's error, one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        ours = type(e).__module__.startswith("edgeprune")  # our errors are already one readable line
        message = first if ours else f"{type(e).__name__}: {first}"
        out.write_text(json.dumps({"error": message[:500], "traceback": traceback.format_exc()[-4000:]}))
        return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main(sys.argv[1:]))
