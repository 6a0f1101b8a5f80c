"""Errors a user can cause, each with a one-line message and an exit code.

The CLI maps `VqError` to its `exit_code` in one place (`vq.cli.app`); anything else
escaping a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class VqError(Exception):
    """Base of every user-facing error. `str(err)` is a single line."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def one_line(e: BaseException) -> str:
    """What a record says of an error: a `VqError`'s own line; anything else as its type
    and the first line of its message (a bad input in a batch, never a traceback)."""
    if isinstance(e, VqError):
        return str(e)
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


class UsageError(VqError):
    """Bad arguments or configuration."""

    exit_code = 2


class MissingExtraError(VqError):
    """An optional dependency group is not installed; the message names it."""

    exit_code = 3

    def __init__(self, what: str, extra: str, cause: BaseException | None = None):
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'vq[{extra}]'{detail}")
        self.extra = extra


class ModelError(VqError):
    """A model artifact is missing, malformed or fails its checksum."""

    exit_code = 4


class BackendError(VqError):
    """An inference backend cannot load or run a model."""

    exit_code = 5


class MediaError(VqError):
    """A media file cannot be opened, decoded or written."""

    exit_code = 6


class DeadlineExceeded(MediaError):
    """Decoding ran past the time it was given (the dedup job then takes its fallback path)."""


class RegistryError(VqError):
    """Unknown or conflicting plugin names."""

    exit_code = 2
