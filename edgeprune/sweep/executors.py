"""Where the cells run: Ray (a local instance, or an existing cluster), or serially in this process.

An executor takes the cells still to do and yields each cell's record as soon as it finishes,
in completion order. Ray does the scheduling (one task per cell, ``num_cpus=1`` each); we only
keep at most ``parallel`` tasks in flight so that an interrupted sweep has little to throw away.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import EdgepruneError
from .cell import evaluate_cell, failed_record
from .spec import Cell, SweepSpec

CLUSTERS = (
    "local (a Ray instance on this machine; serial without Ray), serial, auto (the Ray cluster this machine "
    "belongs to) or ray://HOST:PORT"
)
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "EDGEPRUNE_NUM_THREADS",
)


class ClusterError(EdgepruneError):
    pass


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def check_cluster(cluster: str) -> None:
    if cluster in ("local", "serial", "auto") or (cluster.startswith("ray://") and len(cluster) > len("ray://")):
        return
    raise ClusterError(f"--cluster: expected {CLUSTERS}, got '{cluster}'")


def machine_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class SerialExecutor:
    """The cells one after another in this process: same function, same results as on Ray."""

    name = "serial"

    def __init__(self, log: Callable[[str], None] = lambda m: None):
        self.parallel = 1

    def run(self, spec: SweepSpec, cells: list[Cell], checkpoint_bytes: bytes) -> Iterator[dict]:
        for cell in cells:
            yield evaluate_cell(spec, cell, checkpoint_bytes)

    def close(self) -> None:
        pass


class RayExecutor:
    """One Ray task per cell. ``address`` None: a fresh local instance sized to this machine."""

    def __init__(
        self,
        address: str | None,
        *,
        num_cpus: int | None = None,
        parallel: int | None = None,
        ship_code: bool = True,
        log: Callable[[str], None] = lambda m: None,
    ):
        import ray

        self.ray = ray
        self._staging: tempfile.TemporaryDirectory | None = None
        self.log = log
        self.started_here = address is None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report over the network
        if ray.is_initialized():  # a caller (a notebook, a test) already connected: use that
            self.started_here = False
            self.name = "ray (existing connection)"
        elif address is None:
            self.name = "ray local"
            cpus = num_cpus or machine_cpus()
            try:
                with _keep_python_signal_handlers(), _worker_environment():
                    ray.init(
                        address="local",
                        num_cpus=cpus,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level="ERROR",
                        _node_ip_address="127.0.0.1",
                        object_store_memory=256 * 1024 * 1024,
                    )
            except Exception as e:
                raise ClusterError(f"could not start a local Ray instance ({type(e).__name__}: {_line(e)})") from None
        else:
            self.name = f"ray {address}"
            runtime_env: dict = {"env_vars": {v: "1" for v in _THREAD_VARS}}
            if ship_code:  # this edgeprune, uploaded: workers need only its dependencies, never another version
                self._staging = tempfile.TemporaryDirectory(prefix="edgeprune-ship-")
                runtime_env["py_modules"] = [code_to_ship(Path(self._staging.name))]
                runtime_env["excludes"] = ["__pycache__", "*.pyc"]
            try:
                self._connect(address, runtime_env)
            except Exception as e:
                # Ray >= 2.5x heads require a token by default, and a client without RAY_AUTH_MODE sends none:
                # the connection then only times out, so say what to set
                hint = (
                    ""
                    if os.environ.get("RAY_AUTH_MODE")
                    else (
                        "; if the cluster uses token authentication, set RAY_AUTH_MODE=token and its token "
                        "(RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                    )
                )
                raise ClusterError(
                    f"could not connect to the Ray cluster at {address} ({type(e).__name__}: {_line(e)}){hint}"
                ) from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.parallel = max(1, parallel or cpus)
        self.remote = ray.remote(num_cpus=1, max_retries=1)(evaluate_cell)  # retried once if its worker dies

    # A Ray head starts one client server process per connecting driver; on a loaded head that start can fail
    # once ("Initialization failure from server") and succeed on the next try: retried, said in the log.
    CONNECT_ATTEMPTS = 3

    def _connect(self, address: str, runtime_env: dict) -> None:
        for attempt in range(1, self.CONNECT_ATTEMPTS + 1):
            try:
                with _keep_python_signal_handlers():
                    self.ray.init(address=address, log_to_driver=False, logging_level="ERROR", runtime_env=runtime_env)
                return
            except ConnectionAbortedError as e:  # the head answered but could not start our client server
                if attempt == self.CONNECT_ATTEMPTS:
                    raise
                self.log(f"the Ray head at {address} could not start a client server ({_line(e)}); retrying")
                self.ray.shutdown()
                time.sleep(2.0 * attempt)

    def run(self, spec: SweepSpec, cells: list[Cell], checkpoint_bytes: bytes) -> Iterator[dict]:
        ray = self.ray
        todo = list(cells)
        ckpt = ray.put(checkpoint_bytes)  # sent once; workers need no shared filesystem
        pending: dict = {}
        try:
            while todo or pending:
                while todo and len(pending) < self.parallel:
                    cell = todo.pop(0)
                    pending[self.remote.remote(spec, cell, ckpt)] = cell
                # a timeout, so that signals (Ctrl-C, SIGTERM) get through to Python between waits
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    cell = pending.pop(ref)
                    try:
                        record = ray.get(ref)
                    except Exception as e:  # the task itself died (worker crash, node lost, OOM kill)
                        record = failed_record(cell, f"the Ray task failed: {_task_error(e)}")
                    yield record
        finally:
            # interrupted: drop the cells in flight, they run again on resume. A local instance we
            # started goes with close() (its workers too): nothing to cancel. On a cluster, ask the
            # tasks to stop without force: force-killing a task whose reply is on its way crashes this
            # driver's Ray core (a failed check in TaskManager::CompletePendingTask, Ray 2.60: a stack
            # dump and exit 1 instead of our line), seen here about once in three SIGTERMs under load.
            for ref in [] if self.started_here else pending:
                try:
                    ray.cancel(ref, force=False)
                except Exception:
                    pass

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None


def code_to_ship(staging: Path) -> str:
    """The edgeprune package directory to upload, laid out as in the wheel. In a source checkout the C
    runtime's sources sit beside the package (``runtimes/c``), where a worker's copy of the package
    would not find them: then a copy staged in ``staging`` carries them at ``edgeprune/runtime/c``."""
    import edgeprune

    from ..runtime import source_dir

    package = Path(edgeprune.__file__).resolve().parent
    try:
        runtime_c = source_dir("c")
    except EdgepruneError:
        return str(package)
    if package in runtime_c.parents:  # a wheel: already inside
        return str(package)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    staged = staging / "edgeprune"
    shutil.copytree(package, staged, ignore=skip)
    shutil.copytree(runtime_c, staged / "runtime" / "c", ignore=skip)
    return str(staged)


@contextlib.contextmanager
def _worker_environment():
    """The processes of a local instance inherit the environment ray.init sees: 1 thread per worker,
    and this edgeprune first on the path. Restored afterwards: the driver's own settings are not ours."""
    saved = dict(os.environ)
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    if root not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _keep_python_signal_handlers():
    """ray.init installs its own SIGTERM handler in the driver (print a stack, die); put ours back, so
    that SIGTERM stops a sweep as cleanly as Ctrl-C (cells in flight cancelled, Ray shut down)."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            if callable(handler):
                signal.signal(sig, handler)


def _task_error(e: BaseException) -> str:
    """One line for a failed Ray task: its last line is the exception that killed it (without colours)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]


def _line(e: BaseException) -> str:
    """One line for a message: a server's traceback (Ray's client puts one after a header line) is reduced to
    its header and its last line, the exception it ended with."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    text = lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"
    return text[:300]


def make_executor(
    cluster: str, *, parallel: int | None = None, ship_code: bool = True, log: Callable[[str], None] = lambda m: None
):
    check_cluster(cluster)
    if cluster == "serial":
        return SerialExecutor(log)
    if not ray_available():
        if cluster == "local":
            log(
                "Ray is not installed: running the cells one after another here (pip install 'edgeprune[sweep]' "
                "for parallel cells)"
            )
            return SerialExecutor(log)
        raise ClusterError(f"--cluster {cluster} needs Ray (pip install 'edgeprune[sweep]')")
    if cluster == "local":
        return RayExecutor(None, num_cpus=parallel, parallel=parallel, log=log)
    return RayExecutor(cluster, parallel=parallel, ship_code=ship_code, log=log)


__all__ = [
    "ClusterError",
    "RayExecutor",
    "SerialExecutor",
    "check_cluster",
    "code_to_ship",
    "make_executor",
    "ray_available",
    "machine_cpus",
]
