"""The pruning-method contract.

A method answers one question: *how to score*. It receives a torch-free ``PruneContext`` (what the
weights are and how they connect units) and returns boolean masks. Editing the model (applying
masks, fine-tuning) is done by ``edgeprune.prune.api`` so every method gets it the same way.

Signature of every method::

    def method(ctx: PruneContext, sparsity: float) -> MaskResult

A method registered with ``fixed_sparsity=False`` (sparsity is an outcome) gets ``sparsity=None``
when none was requested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import PruneError
from ..options import Option


@dataclass(frozen=True)
class WeightInfo:
    """One weight matrix seen as connections from source units to destination units.

    Rows are ``gates`` blocks of ``units`` rows each (torch gate order); row ``r`` belongs to
    destination unit ``r % units``. ``src``/``dst`` name node groups of the one-step-unrolled
    graph: ``x`` (inputs), ``h{l}@t`` (layer l now), ``h{l}@t-1`` (layer l at the previous step),
    ``y`` (head outputs).
    """

    name: str
    kind: str  # "input" | "recurrent" | "feedback" | "head"
    layer: int | None  # destination layer; None for the head
    cell: str | None
    gates: int
    values: np.ndarray  # float32 [gates * units, cols]
    src: str
    dst: str

    @property
    def units(self) -> int:
        return self.values.shape[0] // self.gates

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.values.shape)

    def gate_blocks(self) -> list[np.ndarray]:
        return [self.values[g * self.units : (g + 1) * self.units] for g in range(self.gates)]


# finetune(masks, epochs, rewind=None): apply masks, train ``epochs``, return the new weights. With
# ``rewind=k`` every weight is first reset to the model's initial weights after k dense epochs
# (k = 0: the initial weights), as lottery-ticket pruning does.
FinetuneHook = Callable[..., dict[str, np.ndarray]]


@dataclass
class PruneContext:
    weights: dict[str, WeightInfo]  # the matrices to mask, in model order
    frozen: dict[str, WeightInfo]  # the other weights (e.g. an unpruned head): structure only
    config: dict  # the model's config (cell, sizes, feedback)
    options: dict[str, Any]
    rng: np.random.Generator
    finetune: FinetuneHook | None = None  # apply masks (optionally rewind), train N epochs, return the weights

    def all_weights(self) -> dict[str, WeightInfo]:
        return {**self.weights, **self.frozen}


@dataclass
class MaskResult:
    masks: dict[str, np.ndarray]
    report: dict = field(default_factory=dict)
    finetuned_epochs: int = 0  # epochs the method already spent fine-tuning (iterative methods)
    reinitialize: bool = False  # sparse training from scratch: re-draw the weights under the masks
    # How ``prune_model`` checks the requested sparsity (see ``api.check_reached``):
    scope: str = "matrix"  # "matrix": every matrix within one granule of its count; "global": the total
    block: tuple[int, int] = (1, 1)  # the granule: one entry, or one tile of a block mask
    limits: dict[str, str] = field(default_factory=dict)  # matrix -> why it cannot reach the request


MethodFn = Callable[[PruneContext, float | None], MaskResult]


@dataclass(frozen=True)
class Method:
    name: str
    fn: MethodFn
    help: str
    options: tuple[Option, ...] = ()
    fixed_sparsity: bool = True  # False: sparsity is an outcome (e.g. lattice natural mode)


_REGISTRY: dict[str, Method] = {}


# Every method takes it; ``prune_model`` reads it (a method never has to).
ACCEPT_REACHED = Option(
    "accept_reached",
    False,
    "keep the sparsity the method can reach when it differs from --sparsity "
    "(default: refuse in one line, saying what it can reach and why)",
    bool,
)


def register(name: str, *, help: str, options: tuple[Option, ...] = (), fixed_sparsity: bool = True):
    def decorate(fn: MethodFn) -> MethodFn:
        if name in _REGISTRY:
            raise RuntimeError(f"pruning method '{name}' registered twice")
        _REGISTRY[name] = Method(name, fn, help, (*options, ACCEPT_REACHED), fixed_sparsity)
        return fn

    return decorate


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PruneError(f"unknown pruning method '{name}' (choose {', '.join(sorted(_REGISTRY))})") from None


def methods() -> dict[str, Method]:
    return dict(sorted(_REGISTRY.items()))


def keep_count(size: int, sparsity: float) -> int:
    """Entries to keep so that the pruned fraction is as close as possible to ``sparsity``."""
    return int(round((1.0 - sparsity) * size))


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` highest scores; ties go to the lower flat index (deterministic)."""
    flat = scores.ravel()
    mask = np.zeros(flat.shape, dtype=bool)
    if k > 0:
        order = np.argsort(-flat, kind="stable")
        mask[order[:k]] = True
    return mask.reshape(scores.shape)


def check_sparsity(sparsity: float) -> float:
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise PruneError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not (0.0 <= s < 1.0):
        raise PruneError(f"sparsity must be in [0, 1), got {sparsity}")
    return s
