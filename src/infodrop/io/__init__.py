"""Files infodrop writes and reads back.

- :mod:`~infodrop.io.atomic`: atomic writes (temp file, fsync, rename) of text, JSON, npz and
  torch files; a full disk is a one-line :class:`DiskFullError`; leftovers of a killed writer
  are recognised and removed (:func:`remove_temporaries`).
- :mod:`~infodrop.io.checksum`: SHA-256 of a file's content, stored in the file
  (checkpoints: entry ``'sha256'``; npz: array ``'__sha256__'``).
- :mod:`~infodrop.io.checkpoints`: verified checkpoints, the previous good one kept as
  ``<name>.prev.pt``, and the fallback to it.
- :mod:`~infodrop.io.jsonl`: JSON lines that survive a cut-off last line.
- :mod:`~infodrop.io.lock`: one writer per run (an ``fcntl`` lock held for the run's lifetime).

What is checksummed: checkpoints and the npz data files (what is loaded back into a
computation). Text files (JSON, YAML, CSV) are parsed strictly instead, since a person may edit
them; figures are never read back. IDX files are the public MNIST format and carry no
checksum of ours (their ``.gz`` form has gzip's CRC-32).
"""

from infodrop.io.atomic import (
    append_line,
    atomic_path,
    is_temporary,
    remove_temporaries,
    save_torch,
    write_json,
    write_text,
)
from infodrop.io.checkpoints import checkpoint_exists, load_checkpoint, previous_path, resume_checkpoint, save_checkpoint
from infodrop.io.npz import checksum_matches, load_npz, save_npz
from infodrop.io.errors import DamagedFileError, DiskFullError, EarlierVersionWarning, RecoveredFileWarning
from infodrop.io.jsonl import append_jsonl, read_jsonl, write_jsonl
from infodrop.io.lock import RunLock, RunLockedError

__all__ = [
    "atomic_path",
    "save_torch",
    "save_npz",
    "load_npz",
    "checksum_matches",
    "write_text",
    "write_json",
    "append_line",
    "is_temporary",
    "remove_temporaries",
    "save_checkpoint",
    "load_checkpoint",
    "resume_checkpoint",
    "previous_path",
    "checkpoint_exists",
    "read_jsonl",
    "append_jsonl",
    "write_jsonl",
    "RunLock",
    "RunLockedError",
    "DamagedFileError",
    "DiskFullError",
    "RecoveredFileWarning",
    "EarlierVersionWarning",
]
