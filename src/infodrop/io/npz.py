"""npz archives with their checksum: :func:`save_npz` stores the SHA-256 of the arrays as one
more array, ``'__sha256__'`` (:mod:`infodrop.io.checksum`), and :func:`load_npz` verifies it.

Archives without it (written by other tools, the original authors' scripts, or infodrop before
checksums) load unverified; numpy's zip reader still checks each array's CRC-32.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from infodrop.io.atomic import atomic_path
from infodrop.io.checksum import CHECKSUM_KEY, arrays_sha256
from infodrop.io.errors import DamagedFileError

__all__ = ["save_npz", "load_npz", "checksum_matches"]


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` atomically (the file name is kept exactly, no '.npz' appended), with the
    SHA-256 of the arrays stored beside them as ``'__sha256__'``."""
    if CHECKSUM_KEY in arrays:
        raise ValueError(f"{CHECKSUM_KEY!r} is the name save_npz gives the checksum; call the array something else")
    digest = arrays_sha256(arrays)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays, **{CHECKSUM_KEY: np.array(digest)})
    return Path(path)


def checksum_matches(arrays: dict[str, np.ndarray]) -> bool | None:
    """Remove the ``'__sha256__'`` entry from ``arrays`` (as loaded from an archive) and say
    whether it matches the other arrays: True or False, or None when there is no such entry."""
    if CHECKSUM_KEY not in arrays:
        return None
    stored = arrays.pop(CHECKSUM_KEY)
    return stored.shape == () and stored.dtype.kind == "U" and str(stored) == arrays_sha256(arrays)


def load_npz(path: str | os.PathLike, *, advice: str = "delete it and write it again") -> dict[str, np.ndarray]:
    """All arrays of the npz archive ``path``, loaded eagerly with ``allow_pickle=False`` and
    verified (:func:`checksum_matches`). A missing file raises ValueError, an unreadable or damaged
    one :class:`~infodrop.io.DamagedFileError`, each naming ``path`` and ``advice``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist; {advice}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, AttributeError) as error:
        raise DamagedFileError(f"{path} is not a readable npz archive ({type(error).__name__}: {error}); {advice}") from error
    if checksum_matches(arrays) is False:
        raise DamagedFileError(f"{path} is damaged: its arrays do not match the SHA-256 stored with them; {advice}")
    return arrays
