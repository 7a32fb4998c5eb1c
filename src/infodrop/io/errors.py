"""The errors and the warning of infodrop's file handling, each a one-line message that names
the file and says what to do."""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["DamagedFileError", "DiskFullError", "RecoveredFileWarning", "EarlierVersionWarning"]


class DamagedFileError(ValueError):
    """A file infodrop wrote cannot be used: unreadable, cut short, its checksum does not match
    its content, or it holds NaN/inf where numbers belong."""


class RecoveredFileWarning(UserWarning):
    """A damaged file was worked around: a cut-off last line dropped, or the previous good
    checkpoint used instead of a damaged latest one."""


class EarlierVersionWarning(UserWarning):
    """A file of an earlier version (written before infodrop stored checksums, or by another
    tool) was read unverified; the message names it and how to re-save it with a checksum."""


class DiskFullError(OSError):
    """A write failed for lack of space (ENOSPC) or quota (EDQUOT); the message is one line
    naming the file, and the file's previous version (if any) is untouched."""

    def __init__(self, path: Path, reason: str = "no space left on device") -> None:
        self.message = (
            f"cannot write {path}: the disk is full ({reason}); the previous {path.name} (if any) is intact; "
            f"free space on {path.parent} or write elsewhere, then run the same command again"
        )
        super().__init__(errno.ENOSPC, self.message, str(path))

    def __str__(self) -> str:
        # OSError's own form is "[Errno 28] message: 'path'"; ours already names the path.
        return self.message
