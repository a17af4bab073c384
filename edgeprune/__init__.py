"""edgeprune: pruned recurrent networks that are actually fast and small on edge devices."""

__version__ = "0.1.0"


def save(model, path, meta=None):
    """Save a ``SequenceClassifier`` (config, weights, masks, metadata) to one checkpoint file."""
    from .checkpoint import save as _save

    return _save(model, path, meta)


def load(path):
    """Load a checkpoint written by ``save``; a corrupt or foreign file raises ``CheckpointError``."""
    from .checkpoint import load as _load

    return _load(path)
