"""IR -> IR passes and analyses that backends share (structure of each sparse matrix, ...).

Passes never import torch or a backend; backends call them to decide formats.
"""

from .quantize import QuantizedExecutor, QuantizedMatrix, QuantizedModel, quantize, quantize_matrix
from .structure import BlockStats, MatrixStructure, analyze, block_stats

__all__ = [
    "BlockStats",
    "MatrixStructure",
    "QuantizedExecutor",
    "QuantizedMatrix",
    "QuantizedModel",
    "analyze",
    "block_stats",
    "quantize",
    "quantize_matrix",
]
