"""The torch-free IR of a pruned recurrent model: a chain of stages, serialisation, reference executor."""

from .cells import CELLS, Act, CellSpec, cell_spec
from .csr import CSR
from .model import OUTPUTS, TASKS, Head, Model
from .reference import ReferenceExecutor, State
from .serialize import dump, load, save
from .stages import (
    ACTIVATIONS,
    GATE_NAMES,
    IR_GATES,
    STAGE_TYPES,
    Conv1d,
    Dense,
    Layer,
    LayerNorm,
    Normalize,
    Pool,
    Recurrent,
    Stage,
)

__all__ = [
    "ACTIVATIONS",
    "Act",
    "CELLS",
    "CSR",
    "CellSpec",
    "cell_spec",
    "GATE_NAMES",
    "IR_GATES",
    "OUTPUTS",
    "STAGE_TYPES",
    "TASKS",
    "Conv1d",
    "Dense",
    "Head",
    "Layer",
    "LayerNorm",
    "Model",
    "Normalize",
    "Pool",
    "Recurrent",
    "ReferenceExecutor",
    "Stage",
    "State",
    "dump",
    "load",
    "save",
]
