"""Atomic file writes: every file infodrop writes goes to a temporary file in the same folder,
is flushed to the disk and renamed into place, so a crash, Ctrl-C or kill -9 mid-write never
leaves a truncated file behind, and a full disk never damages the previous version.

The temporary file is named ``.<name>.<random characters>.tmp`` beside ``<name>`` (what
``tempfile.mkstemp`` makes of our prefix and suffix: 8 of ``[a-z0-9_]``). A process killed between creating it
and renaming it leaves it behind; :func:`remove_temporaries` deletes such leftovers (and only
names of exactly that form), which a run does at its start.

``save_npz`` and its verified reader live in :mod:`infodrop.io.npz`.

A write that fails because the disk (or the quota) is full raises :class:`DiskFullError`, a
one-line ``OSError`` that names the file and says that its previous version is intact.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from infodrop.io.errors import DiskFullError

__all__ = [
    "DiskFullError",
    "atomic_path",
    "save_torch",
    "write_text",
    "write_json",
    "append_line",
    "is_temporary",
    "remove_temporaries",
]

_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# tempfile.mkstemp's random part is 8 characters of [a-z0-9_]; any length is accepted.
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]+\.tmp$")


def _current_umask() -> int:
    # The only portable way to read the umask is to set it and put it back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _disk_full_reason(error: BaseException, folder: Path) -> str | None:
    """Why ``error`` means a full disk, or None when it does not.

    An OSError with errno ENOSPC or EDQUOT anywhere in the exception's chain counts. torch's
    C++ writer hides the errno: writing to a path it raises ``RuntimeError: [enforce fail at
    inline_container.cc] unexpected pos ...`` after a short write, so for a RuntimeError we also
    ask the file system whether a block is left.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in _DISK_FULL_ERRNOS:
            return os.strerror(cause.errno).lower()
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, RuntimeError):
        try:
            usage = os.statvfs(folder)
        except OSError:
            return None
        if usage.f_bavail == 0:
            return f"no space left on device ({error})".splitlines()[0]
    return None


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, before_replace: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    ``before_replace`` runs after the new content is safely on the disk and just before the
    rename (checkpoints move the old file aside there, see :mod:`infodrop.io.checkpoints`).
    A full disk raises :class:`DiskFullError`; any failure leaves ``path`` as it was and
    deletes the temporary file.
    """
    target = Path(path)
    temporary_path: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(handle)
        temporary_path = Path(temporary)
        yield temporary_path
        with open(temporary_path, "rb") as written:
            os.fsync(written.fileno())
        # mkstemp creates the file readable by its owner only; give it the mode a plain open() would.
        os.chmod(temporary_path, 0o666 & ~_current_umask())
        if before_replace is not None:
            before_replace()
        os.replace(temporary_path, target)
        _fsync_folder(target.parent)
    except (OSError, RuntimeError) as error:
        reason = None if isinstance(error, DiskFullError) else _disk_full_reason(error, target.parent)
        if reason is not None:
            raise DiskFullError(target, reason) from error
        raise
    finally:
        if temporary_path is not None and temporary_path.exists():
            temporary_path.unlink()


def _write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    with atomic_path(path) as temporary:
        writer(temporary)
    return Path(path)


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically. Load with ``torch.load(path, weights_only=True)``.

    Checkpoints should go through :func:`infodrop.io.save_checkpoint`, which adds a checksum
    and keeps the previous one. The object is serialised in memory and written with Python's
    file I/O, so that a full disk is reported as such (torch's own writer reports a short write
    as "unexpected pos").
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return _write_with(path, lambda temporary: temporary.write_bytes(buffer.getbuffer()))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return _write_with(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a text log; the file is rewritten atomically, so it is never half a
    line, and the new line starts on a line boundary even when the old text lacks its final
    newline. For JSON lines use :func:`infodrop.io.append_jsonl`, which also drops a cut-off
    last record."""
    target = Path(path)
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    write_text(target, old + line.rstrip("\n") + "\n")


# --------------------------------------------------------------------------- leftovers of kill -9


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_path`."""
    return _TEMPORARY.match(Path(path).name) is not None


def remove_temporaries(folder: str | os.PathLike, *, of: str | None = None, recursive: bool = False) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` leaves when its process is killed
    mid-write (checkpoints, npz, JSON, JSON lines, CSV, figures alike) and return their paths.

    Args:
        folder: where to look. A missing folder has nothing to clean.
        of: only the leftovers of the file of this name (for folders that several runs share,
            such as ``models/<experiment>/``, where another run may be writing right now).
            None: every leftover in ``folder`` (for a folder that belongs to one run, under its
            lock).
        recursive: also look in the sub-folders.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    removed = []
    for candidate in candidates:
        match = _TEMPORARY.match(candidate.name)
        if match is None or not candidate.is_file() or candidate.is_symlink():
            continue
        if of is not None and match["target"] != of:
            continue
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return sorted(removed)
