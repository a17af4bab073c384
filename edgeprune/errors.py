"""User-facing errors.

Every problem a user can cause (bad flag, corrupt file, missing dataset, invalid IR) raises an
``EdgepruneError``; the CLI prints its message as one line and exits non-zero. Anything else is a
bug and is reported as such.
"""


class EdgepruneError(Exception):
    """A problem with the user's input, reported as one line."""


def first_line(e: BaseException, limit: int | None = 200) -> str:
    """The first line of ``e``'s message (its type name if empty), at most ``limit`` characters: how a
    third-party exception (protobuf, onnxruntime, a compiler) is quoted inside one-line errors.
    ``limit=None`` keeps the whole line."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


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
