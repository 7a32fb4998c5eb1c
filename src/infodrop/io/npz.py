"""npz archives with their checksum: :func:`save_npz` stores the format marker
``'__format__'`` and the SHA-256 of the arrays (marker included) as one more array,
``'__sha256__'`` (:mod:`infodrop.io.checksum`), and :func:`load_npz` verifies it.

A marked archive without its checksum was altered and is refused. Archives with neither
(written by other tools, the original authors' scripts, or infodrop before checksums) load
unverified with a one-line :class:`~infodrop.io.EarlierVersionWarning` naming
``python -m infodrop.io.resave PATH``; numpy's zip reader still checks each array's CRC-32.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from infodrop.io.atomic import atomic_path
from infodrop.io.checksum import CHECKSUM_KEY, FORMAT_KEY, NPZ_FORMAT, RESAVE_ADVICE, arrays_sha256
from infodrop.io.errors import DamagedFileError, EarlierVersionWarning

__all__ = ["save_npz", "load_npz", "checksum_matches", "checksum_problem"]


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` atomically (the file name is kept exactly, no '.npz' appended), with the
    SHA-256 of the arrays stored beside them as ``'__sha256__'``."""
    for reserved in (CHECKSUM_KEY, FORMAT_KEY):
        if reserved in arrays:
            raise ValueError(f"{reserved!r} is a name save_npz gives its own entries; call the array something else")
    marked = {**arrays, FORMAT_KEY: np.array(NPZ_FORMAT)}
    digest = arrays_sha256(marked)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **marked, **{CHECKSUM_KEY: np.array(digest)})
    return Path(path)


def checksum_matches(arrays: dict[str, np.ndarray]) -> bool | None:
    """Remove the ``'__sha256__'`` and ``'__format__'`` entries from ``arrays`` (as loaded from an
    archive) and say whether the checksum matches the other arrays: True or False (also for a
    marked archive without its checksum), or None for an unmarked archive without one."""
    if CHECKSUM_KEY not in arrays:
        return False if arrays.pop(FORMAT_KEY, None) is not None else None
    stored = arrays.pop(CHECKSUM_KEY)
    matches = stored.shape == () and stored.dtype.kind == "U" and str(stored) == arrays_sha256(arrays)
    arrays.pop(FORMAT_KEY, None)
    return matches


def checksum_problem(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> str | None:
    """What is wrong with the checksum of ``arrays`` (loaded from ``path``; its entries are
    removed), or None: a mismatch, or a marked archive without its checksum. An archive of an
    earlier version (neither entry) passes with an :class:`~infodrop.io.EarlierVersionWarning`."""
    stripped = FORMAT_KEY in arrays and CHECKSUM_KEY not in arrays
    matches = checksum_matches(arrays)
    if matches is None:
        warnings.warn(
            f"{path} has no checksum (an earlier infodrop version or another tool wrote it), so it is used unverified; "
            + RESAVE_ADVICE.format(path=path),
            EarlierVersionWarning,
            stacklevel=3,
        )
        return None
    if matches:
        return None
    if stripped:
        return f"altered: it has no checksum, though its format {NPZ_FORMAT!r} always carries one"
    return "damaged: its arrays do not match the SHA-256 stored with them"


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
    problem = checksum_problem(path, arrays)
    if problem is not None:
        raise DamagedFileError(f"{path} is {problem}; {advice}")
    return arrays
