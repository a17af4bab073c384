"""Mask methods (one per module, same signature) and the code that applies them to a model."""

from importlib import import_module

from .api import PruneOutcome, describe_weights, prune_model, sparsity_of
from .registry import (
    MaskResult,
    Method,
    PruneContext,
    WeightInfo,
    check_sparsity,
    get_method,
    keep_count,
    methods,
    register,
    top_k_mask,
)

# Each module registers one method on import.
METHOD_MODULES = (
    "magnitude",
    "random_uniform",
    "random_regular",
    "lattice",
    "expander",
    "block_expander",
    "ramanujan_imp",
)
for _module in METHOD_MODULES:
    import_module(f"{__name__}.{_module}")

__all__ = [
    "MaskResult",
    "Method",
    "PruneContext",
    "PruneOutcome",
    "WeightInfo",
    "check_sparsity",
    "describe_weights",
    "get_method",
    "keep_count",
    "methods",
    "prune_model",
    "register",
    "sparsity_of",
    "top_k_mask",
]
