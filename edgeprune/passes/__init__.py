"""IR -> IR passes and analyses that backends share (structure of each sparse matrix, ...).

Passes never import torch or a backend; backends call them to decide formats.
"""

from .structure import BlockStats, MatrixStructure, analyze, block_stats

__all__ = ["BlockStats", "MatrixStructure", "analyze", "block_stats"]
