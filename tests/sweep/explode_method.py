"""A pruning method that raises on a degenerate request (sparsity > 0.6), registered on import.

Sweeps load it in every worker with ``plugins=["tests.sweep.explode_method"]`` (``--plugin``), the
way a user ships a custom method to a Ray cluster.
"""

import numpy as np

from edgeprune.errors import PruneError
from edgeprune.prune import registry
from edgeprune.prune.registry import MaskResult

NAME = "test-explode-plugin"


def explode(ctx, sparsity):
    if sparsity > 0.6:
        raise PruneError("cannot prune that far")
    # the requested count by |w|: a mask that keeps everything is refused at s > 0
    return MaskResult(
        {
            n: registry.top_k_mask(np.abs(w.values), registry.keep_count(w.values.size, sparsity))
            for n, w in ctx.weights.items()
        }
    )


if NAME not in registry._REGISTRY:
    registry.register(NAME, help="test method: raises above sparsity 0.6")(explode)


CRASH = "test-crash-plugin"


def crash(ctx, sparsity):
    """Kills its whole process above sparsity 0.6, as a segfaulting backend or the OOM killer would."""
    if sparsity > 0.6:
        import os

        os._exit(3)
    return explode(ctx, sparsity)


if CRASH not in registry._REGISTRY:
    registry.register(CRASH, help="test method: kills its process above sparsity 0.6")(crash)
