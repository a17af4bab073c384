"""What a sweep is: the grid, the per-cell settings, and its identity (what a RUN_DIR is made of).

A ``SweepSpec`` is a plain picklable dataclass: it travels to every Ray worker with each cell.
It comes from flags, from a ``sweep.toml`` file, or both (flags win). ``identity()`` is the part
that decides a cell's result; a RUN_DIR records it and refuses to be resumed by a sweep whose
identity differs. Where and how the cells run (cluster, parallelism) is not part of it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgepruneError


class SweepConfigError(EdgepruneError):
    pass


@dataclass(frozen=True)
class Cell:
    """One point of the grid; ``key`` names its record (``cells/<key>.json``)."""

    method: str
    sparsity: float
    seed: int = 0

    @property
    def key(self) -> str:
        return f"{self.method}-s{self.sparsity:g}-seed{self.seed}"


@dataclass
class SweepSpec:
    checkpoint: str
    methods: list[str]
    sparsities: list[float]
    seeds: list[int] = field(default_factory=lambda: [0])
    finetune_epochs: int = 0
    finetune_lr: float | None = None  # None: the checkpoint's training rate, else 1e-3
    batch_size: int = 32
    method_options: dict = field(default_factory=dict)
    targets: list[str] = field(default_factory=lambda: ["c"])
    variants: dict | None = None  # {target: [options, ...]}; None: each target once with its defaults
    data: str | None = None
    data_dir: str | None = None
    accuracy_samples: int | None = None  # None: the whole test split
    device: str | None = None  # None: no latency; else a bench device URL measured from the worker
    ssh_config: str | None = None
    bench: object = None  # harness.BenchSettings for the latency runs (picklable)
    plugins: list[str] = field(default_factory=list)  # modules each worker imports first (custom methods)
    checkpoint_sha256: str = ""

    def cells(self) -> list[Cell]:
        return [
            Cell(m, float(s), int(seed)) for m, s, seed in itertools.product(self.methods, self.sparsities, self.seeds)
        ]

    def identity(self) -> dict:
        """Everything that decides the cells' results (JSON-ready); the RUN_DIR keeps it."""
        budget = getattr(self.bench, "budget", None)
        return {
            "checkpoint_sha256": self.checkpoint_sha256,
            "methods": list(self.methods),
            "sparsities": [float(s) for s in self.sparsities],
            "seeds": [int(s) for s in self.seeds],
            "finetune_epochs": self.finetune_epochs,
            "finetune_lr": self.finetune_lr,
            "batch_size": self.batch_size,
            "method_options": dict(sorted(self.method_options.items())),
            "targets": list(self.targets),
            "variants": self.variants,
            "data": self.data,
            "accuracy_samples": self.accuracy_samples,
            "device": self.device,
            "latency_budget": budget.to_dict() if (budget is not None and self.device) else None,
            "plugins": list(self.plugins),
        }


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- sweep.toml -----------------------------------------------------------------------------------
# key -> (accepted python types, description for errors)
_TOML_KEYS = {
    "checkpoint": ((str,), "a path"),
    "methods": ((list,), "a list of method names"),
    "sparsities": ((list,), "a list of numbers"),
    "seeds": ((list,), "a list of integers"),
    "finetune_epochs": ((int,), "an integer"),
    "finetune_lr": ((int, float), "a number"),
    "batch_size": ((int,), "an integer"),
    "targets": ((list,), "a list of target names"),
    "data": ((str,), "a dataset name or .npz path"),
    "data_dir": ((str,), "a directory"),
    "accuracy_samples": ((int,), "an integer"),
    "device": ((str,), "a device URL"),
    "ssh_config": ((str,), "a path"),
    "cluster": ((str,), "local, serial, auto or ray://HOST:PORT"),
    "parallel": ((int,), "an integer"),
    "plugins": ((list,), "a list of module names"),
    "method_options": ((dict,), "a table"),
}
_PATH_KEYS = ("checkpoint", "data_dir", "ssh_config")


def read_toml(path: str | os.PathLike) -> dict:
    """The settings of a ``sweep.toml`` (checked; relative paths resolved against the file)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise SweepConfigError("--config needs Python 3.11 (tomllib) or the tomli package") from None
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise SweepConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SweepConfigError(f"{p}: unreadable ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepConfigError(f"{p}: not valid TOML ({e})") from None
    raw = raw.get("sweep", raw) if set(raw) == {"sweep"} else raw  # a [sweep] table or top-level keys
    out = {}
    for key, value in raw.items():
        if key not in _TOML_KEYS:
            raise SweepConfigError(f"{p}: unknown key '{key}' (known: {', '.join(sorted(_TOML_KEYS))})")
        types, what = _TOML_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise SweepConfigError(f"{p}: '{key}' must be {what}, got {value!r}")
        if key in _PATH_KEYS and value:
            value = str((p.parent / value) if not Path(value).is_absolute() else Path(value))
        if key == "data" and value.endswith(".npz") and not Path(value).is_absolute():
            value = str(p.parent / value)
        out[key] = value
    for key, kind in (
        ("methods", str),
        ("targets", str),
        ("plugins", str),
        ("seeds", int),
        ("sparsities", (int, float)),
    ):
        if key in out and not all(isinstance(v, kind) and not isinstance(v, bool) for v in out[key]):
            raise SweepConfigError(f"{p}: '{key}' must be {_TOML_KEYS[key][1]}, got {out[key]!r}")
    return out


def check(spec: SweepSpec) -> None:
    """Fail before any work: unknown method/target/option, impossible sparsity, empty grid, bad counts."""
    from .. import backends
    from ..options import resolve
    from ..prune import check_sparsity, methods

    if not spec.methods or not spec.sparsities or not spec.seeds:
        raise SweepConfigError("a sweep needs at least one method, one sparsity and one seed")
    known = methods()
    for m in spec.methods:
        if m not in known:
            raise SweepConfigError(f"--methods: unknown method '{m}' (choose {', '.join(known)})")
    for s in spec.sparsities:
        check_sparsity(s)
    for name, values in (("--methods", spec.methods), ("--sparsities", spec.sparsities), ("--seeds", spec.seeds)):
        if len(set(values)) != len(values):
            raise SweepConfigError(
                f"{name}: {sorted(v for v in set(values) if values.count(v) > 1)[0]} is listed twice"
            )
    for flag, v, low in (("--finetune-epochs", spec.finetune_epochs, 0), ("--batch-size", spec.batch_size, 1)):
        if v < low:
            raise SweepConfigError(f"{flag} must be >= {low}, got {v}")
    if spec.accuracy_samples is not None and spec.accuracy_samples < 1:
        raise SweepConfigError(f"--accuracy-samples must be >= 1, got {spec.accuracy_samples}")
    given = {k: v for k, v in spec.method_options.items() if v is not None}
    declared = {o.name for m in spec.methods for o in known[m].options}
    stray = sorted(set(given) - declared)
    if stray:
        raise SweepConfigError(f"--{stray[0].replace('_', '-')} does not apply to any of {', '.join(spec.methods)}")
    for m in spec.methods:  # each method checks the values of its own options
        mine = {o.name for o in known[m].options}
        resolve(known[m].options, {k: v for k, v in given.items() if k in mine}, f"method '{m}'")
    if not spec.targets:
        raise SweepConfigError("--targets: at least one target")
    names = backends.names()
    for t in spec.targets:
        if t not in names:
            raise SweepConfigError(f"--targets: unknown target '{t}' (choose {', '.join(names)})")
    for t in spec.variants or {}:
        if t not in spec.targets:
            raise SweepConfigError(f"--variants names target '{t}', which is not in --targets")
