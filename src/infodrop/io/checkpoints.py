"""Checkpoints: a plain dict, saved with its checksum, loaded with ``weights_only=True`` and
verified, with the previous good one kept beside the latest.

Files: ``<name>.pt`` is the latest checkpoint and ``<name>.prev.pt`` the one before it
(:func:`previous_path`). :func:`save_checkpoint`

1. refuses a state with NaN or inf in a tensor (a diverged state must not push the last good
   checkpoint out),
2. adds the entry ``'sha256'``, the SHA-256 of the rest of the dict (:mod:`infodrop.io.checksum`),
3. writes it to a temporary file and flushes it to the disk,
4. renames the current latest to ``<name>.prev.pt`` if it loads cleanly (a damaged latest is
   simply replaced, so that the previous good one survives),
5. renames the temporary file to ``<name>.pt``.

A process killed at any moment leaves a usable state: the old latest (and its predecessor), the
new latest and the old one as previous, or, between steps 4 and 5, only ``<name>.prev.pt``, which
:func:`resume_checkpoint` uses.

:func:`load_checkpoint` reads exactly one file and refuses, with a one-line
:class:`~infodrop.io.DamagedFileError` naming it, a file that is unreadable (cut short, not a torch
file, or a pickle that ``weights_only`` refuses), not a dict, whose content does not match its
``'sha256'``, or that holds NaN or inf in a tensor (parameters, buffers, optimizer state).
Every checkpoint written now also carries ``'format': 'infodrop.checkpoint/2'`` (hashed with the
rest), so one whose ``'sha256'`` entry was removed is refused. Checkpoints of an earlier version
(neither entry: written before checksums existed) are read with ``weights_only=True``, checked
for NaN/inf like the others, which is all that can be checked without a stored digest, and named
in a one-line :class:`~infodrop.io.EarlierVersionWarning` that says how to re-save them
(``python -m infodrop.io.resave PATH``; training one epoch more re-saves them too). :func:`resume_checkpoint` is the training loop's loader:
the latest, or the previous one with a one-line :class:`~infodrop.io.RecoveredFileWarning` when
the latest is damaged or missing.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from infodrop.io.atomic import atomic_path
from infodrop.io.checksum import (
    CHECKPOINT_FORMAT,
    RESAVE_ADVICE,
    STATE_CHECKSUM_KEY,
    STATE_FORMAT_KEY,
    content_sha256,
    first_non_finite,
)
from infodrop.io.errors import DamagedFileError, EarlierVersionWarning, RecoveredFileWarning

__all__ = ["save_checkpoint", "load_checkpoint", "resume_checkpoint", "previous_path", "checkpoint_exists"]

_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def previous_path(path: str | os.PathLike) -> Path:
    """Where the checkpoint before ``path`` is kept: ``run.pt`` -> ``run.prev.pt`` (``run`` -> ``run.prev``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def checkpoint_exists(path: str | os.PathLike) -> bool:
    """Whether there is something to resume from: the latest checkpoint or the previous one."""
    return Path(path).is_file() or previous_path(path).is_file()


def _first_line(error: BaseException) -> str:
    # The first sentence: torch's messages go on for paragraphs.
    text = str(error).strip().splitlines()
    line = text[0].split(". ")[0][:200] if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load the checkpoint dict at ``path`` on the CPU with ``weights_only=True``, verified.

    Returns the dict without its ``'sha256'`` entry. Raises ValueError when the file does not
    exist and :class:`~infodrop.io.DamagedFileError` (a ValueError) when it cannot be used;
    both are one line naming the file and what to do. See the module docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist; check the path, or train first")
    advice = "delete it and train again, or restore it from a backup"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for damaged files; all mean the same here
        raise DamagedFileError(
            f"checkpoint {path} cannot be read ({_first_line(error)}): it is damaged or not a torch checkpoint; {advice}"
        ) from error
    if not isinstance(state, Mapping):
        raise DamagedFileError(f"checkpoint {path} holds a {type(state).__name__}, not a checkpoint dict; {advice}")
    state = dict(state)
    if STATE_CHECKSUM_KEY not in state and any(isinstance(v, str) and _HEX_DIGEST.match(v) for v in state.values()):
        # A digest under another name: the name of the checksum entry itself was damaged.
        raise DamagedFileError(f"checkpoint {path} is damaged: its checksum entry has lost its name; {advice}")
    _verify_checksum(path, state, advice)
    bad = first_non_finite(state, "")
    if bad is not None:
        raise DamagedFileError(
            f"checkpoint {path} holds NaN or inf in {bad}: training had diverged, or the file is damaged; "
            "delete it and train again (with a lower lr if training diverged)"
        )
    return state


def _verify_checksum(path: Path, state: dict, advice: str) -> None:
    """Check and remove the ``'sha256'`` and ``'format'`` entries of ``state`` (loaded from ``path``).

    A marked file must match its digest; a file with neither entry is of an earlier version and
    passes with a warning; a marked file without a digest was altered and is refused.
    """
    marker = state.get(STATE_FORMAT_KEY)
    if STATE_CHECKSUM_KEY not in state:
        if STATE_FORMAT_KEY in state:
            raise DamagedFileError(
                f"checkpoint {path} has no checksum, though its format {marker!r} always carries one: "
                f"the file was altered; {advice}"
            )
        warnings.warn(
            f"checkpoint {path} is of an earlier infodrop version (no checksum), so it is used unverified; "
            + RESAVE_ADVICE.format(path=path),
            EarlierVersionWarning,
            stacklevel=3,
        )
        return
    stored = state.pop(STATE_CHECKSUM_KEY)
    try:
        actual = content_sha256(state)
    except ValueError:
        actual = None
    if not isinstance(stored, str) or _HEX_DIGEST.match(stored) is None or stored != actual:
        raise DamagedFileError(
            f"checkpoint {path} is damaged: its content does not match the SHA-256 stored in it; {advice}"
        )
    # Files of the version between checksums and the marker have a digest and no marker.
    if state.pop(STATE_FORMAT_KEY, CHECKPOINT_FORMAT) != CHECKPOINT_FORMAT:
        raise DamagedFileError(
            f"checkpoint {path} has format {marker!r}, which this infodrop does not read; upgrade infodrop, or train again"
        )


def _loads_cleanly(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EarlierVersionWarning)
            load_checkpoint(path)
    except ValueError:
        return False
    return True


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike, *, keep_previous: bool = True) -> Path:
    """Save the checkpoint dict ``state`` atomically at ``path`` with its SHA-256, keeping the
    latest good one as :func:`previous_path` when ``keep_previous`` (see the module docstring).

    Raises ValueError naming the entry when a tensor holds NaN or inf (nothing is written), and
    :class:`~infodrop.io.DiskFullError` when the disk is full (the files on disk are untouched).
    The previous file is read back and verified before it is kept, which costs one load of a
    checkpoint per save.
    """
    if not isinstance(state, Mapping) or not all(isinstance(key, str) for key in state):
        raise ValueError(f"a checkpoint must be a dict with string keys, got {type(state).__name__}")
    path = Path(path)
    content = {key: value for key, value in state.items() if key not in (STATE_CHECKSUM_KEY, STATE_FORMAT_KEY)}
    bad = first_non_finite(content, "")
    if bad is not None:
        raise ValueError(
            f"refusing to save checkpoint {path}: {bad} holds NaN or inf (training diverged); "
            "lower the learning rate, or check the inputs"
        )
    content[STATE_FORMAT_KEY] = CHECKPOINT_FORMAT
    content[STATE_CHECKSUM_KEY] = content_sha256(content)
    buffer = io.BytesIO()
    # In memory first: torch's file writer reports a full disk as "unexpected pos", Python's as ENOSPC.
    torch.save(content, buffer)

    def keep_latest_as_previous() -> None:
        if keep_previous and path.is_file() and _loads_cleanly(path):
            os.replace(path, previous_path(path))

    with atomic_path(path, before_replace=keep_latest_as_previous) as temporary:
        temporary.write_bytes(buffer.getbuffer())
    return path


def resume_checkpoint(path: str | os.PathLike) -> tuple[dict, Path] | None:
    """The checkpoint to resume from: ``(state, file it came from)``, or None when neither
    ``path`` nor its previous one exists.

    The latest (``path``) when it loads; otherwise the previous one (:func:`previous_path`),
    with a one-line :class:`~infodrop.io.RecoveredFileWarning` that names both files and says
    why. Raises :class:`~infodrop.io.DamagedFileError` when neither can be used.
    """
    path = Path(path)
    previous = previous_path(path)
    if not path.is_file() and not previous.is_file():
        return None
    if path.is_file():
        try:
            return load_checkpoint(path), path
        except DamagedFileError as error:
            if not previous.is_file():
                raise
            reason = str(error)
    else:
        reason = f"checkpoint {path} is missing (a save was interrupted)"
    try:
        state = load_checkpoint(previous)
    except DamagedFileError as error:
        raise DamagedFileError(
            f"checkpoint {path} and the previous one {previous} are both unusable ({error}); delete both and train again"
        ) from error
    epoch = state.get("epoch")
    at = f" (epoch {epoch})" if isinstance(epoch, int) else ""
    warnings.warn(f"{reason.split(';')[0]}; using the previous checkpoint {previous}{at} instead", RecoveredFileWarning, stacklevel=2)
    return state, previous
