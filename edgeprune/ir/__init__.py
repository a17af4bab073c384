"""The torch-free IR of a pruned recurrent classifier: model, serialisation, reference executor."""

from .cells import CELLS, CellSpec, cell_spec
from .model import CSR, GATE_NAMES, IR_GATES, Head, Layer, Model
from .reference import ReferenceExecutor, State
from .serialize import dump, load, save

__all__ = ["CELLS", "CSR", "CellSpec", "GATE_NAMES", "IR_GATES", "Head", "Layer", "Model", "ReferenceExecutor", "State", "cell_spec", "dump", "load", "save"]
