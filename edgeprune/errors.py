"""User-facing errors.

Every problem a user can cause (bad flag, corrupt file, missing dataset, invalid IR) raises an
``EdgepruneError``; the CLI prints its message as one line and exits non-zero. Anything else is a
bug and is reported as such.
"""


class EdgepruneError(Exception):
    """A problem with the user's input, reported as one line."""


class DatasetError(EdgepruneError):
    pass


class CheckpointError(EdgepruneError):
    pass


class ModelError(EdgepruneError):
    pass


class PruneError(EdgepruneError):
    pass


class IRError(EdgepruneError):
    pass


class BackendError(EdgepruneError):
    pass


class VerificationError(EdgepruneError):
    pass


class OutputError(EdgepruneError):
    """An output path that cannot be written (checked before slow work where possible)."""
