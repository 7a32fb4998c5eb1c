"""Where files will go, checked before any work: a path that names a folder where a file belongs
(or a file where a folder belongs), or a folder that cannot be written (read-only file system,
permissions), is refused in one line naming the argument and the fix, instead of a traceback
after the computation."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_output_file", "check_output_folder"]


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (what a mkdir -p would start from)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_output_folder(path: str | os.PathLike, name: str) -> Path:
    """``path`` as a Path after checking that it is, or can be made, a writable folder.

    Raises ValueError naming ``name`` when it (or a part of it) is a file, or when the first
    existing folder on its way is not writable.
    """
    path = Path(path)
    existing = _existing_ancestor(path.absolute())
    if not existing.is_dir():
        raise ValueError(f"{name}={path}: {existing} is a file, not a folder; give a folder path, e.g. {name}={path.parent / (path.name + '_dir')}")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "a read-only file system" if _read_only(existing) else "no write permission"
        raise ValueError(f"{name}={path}: {existing} cannot be written ({reason}); give a folder you can write to")
    return path


def check_output_file(path: str | os.PathLike, name: str) -> Path:
    """``path`` as a Path after checking that it is not a folder and that its folder can be written."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name}={path} is a folder; give a file path, e.g. {name}={path / 'plane.json'}")
    check_output_folder(path.parent, f"the folder of {name}")
    return path


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
