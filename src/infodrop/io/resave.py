"""Give a file of an earlier version its checksum: ``python -m infodrop.io.resave PATH ...``.

A checkpoint (``.pt``) or npz archive written before infodrop stored checksums (or an npz of
another tool) loads unverified with an :class:`~infodrop.io.EarlierVersionWarning`. Re-saving
reads it exactly as the loaders do (``weights_only=True`` / ``allow_pickle=False``, NaN/inf
refused) and writes it back atomically with the format marker and its SHA-256, so that from
then on a change to it, or the removal of its checksum, is refused.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from infodrop.io.checkpoints import load_checkpoint, save_checkpoint
from infodrop.io.errors import EarlierVersionWarning
from infodrop.io.npz import load_npz, save_npz

__all__ = ["resave"]


def resave(path: str | os.PathLike) -> Path:
    """Re-save the checkpoint or npz archive at ``path`` in place with its checksum; returns the path.

    Raises ValueError (one line naming the file) when it cannot be read or is damaged.
    """
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EarlierVersionWarning)  # re-saving is the fix it names
        if path.suffix == ".npz":
            return save_npz(path, **load_npz(path))
        # keep_previous=False: the earlier-version file is replaced, not kept as .prev.pt.
        return save_checkpoint(load_checkpoint(path), path, keep_previous=False)


def main(argv: list[str] | None = None) -> int:
    """Re-save every path given; one line per file, exit 2 on the first that cannot be read."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m infodrop.io.resave FILE.pt|FILE.npz ...", file=sys.stderr)
        return 2
    for name in paths:
        try:
            print(f"re-saved {resave(name)} with its checksum")
        except ValueError as error:
            print(f"infodrop: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
