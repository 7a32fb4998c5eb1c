"""The one error every data loader raises for a missing or malformed file."""

from __future__ import annotations

import os


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
