"""The one error every data loader raises for a missing or malformed file."""

from __future__ import annotations

import os
from pathlib import Path


class DataError(ValueError):
    """A data file is missing, truncated or not in the expected format.

    The message names the file and, where known, the command that prepares it, e.g.
    ``datasets/cifar10-train.npz: file not found; run `infodrop cifar prepare with source=...```.
    """


def data_error(path: str | os.PathLike, problem: str, hint: str | None = None) -> DataError:
    """Build a DataError whose one-line message is ``"<path>: <problem>[; <hint>]"``."""
    message = f"{os.fspath(path)}: {problem}"
    if hint:
        message += f"; {hint}"
    return DataError(message)


def require_data_file(path: str | os.PathLike, hint: str | None = None) -> Path:
    """``path`` as a Path; DataError naming it (and ``hint``) when it is missing or not a file."""
    path = Path(path)
    if not path.exists():
        raise data_error(path, "file not found", hint)
    if not path.is_file():
        raise data_error(path, "is not a file", hint)
    return path


def read_data_file(path: str | os.PathLike, hint: str | None = None) -> bytes:
    """The bytes of one data file; DataError naming ``path`` (and ``hint``) when it is missing, is
    not a file, or cannot be read."""
    path = require_data_file(path, hint)
    try:
        return path.read_bytes()
    except OSError as error:
        raise data_error(path, f"could not be read ({error.strerror or error})", hint) from error
