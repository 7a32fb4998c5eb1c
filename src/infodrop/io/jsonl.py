"""JSON lines files (``metrics.jsonl``): one JSON object per line.

Our writers rewrite the whole file atomically (:func:`append_jsonl`, :func:`write_jsonl`), so
they never leave half a line. A file can still end in a cut-off line when something else cut it
(a copy or a sync that stopped, a full disk under another tool, an older version of infodrop):

- :func:`read_jsonl` drops a last line that is not valid JSON, with a one-line
  :class:`~infodrop.io.RecoveredFileWarning` naming the file; any other line that is not a JSON
  object is damage it cannot repair and raises :class:`~infodrop.io.DamagedFileError` naming the
  file and the line;
- :func:`append_jsonl` drops such a cut-off last line the same way and starts the new record on
  a line boundary (a complete last record without its final newline is kept).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from infodrop.io.atomic import write_text
from infodrop.io.errors import DamagedFileError, RecoveredFileWarning

__all__ = ["read_jsonl", "append_jsonl", "write_jsonl"]


def _parse(line: bytes) -> Any:
    return json.loads(line.decode("utf-8"))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records (dicts) of the JSON lines file ``path``; [] when it does not exist.

    Blank lines are skipped; a cut-off last line is dropped with a warning (module docstring).
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    records = []
    for position, (number, line) in enumerate(numbered):
        try:
            record = _parse(line)
        except (UnicodeDecodeError, ValueError) as error:
            if position == len(numbered) - 1:
                warnings.warn(
                    f"{path}: dropped its last line {number}, which is cut short ({error}); "
                    "the records before it are kept",
                    RecoveredFileWarning,
                    stacklevel=2,
                )
                break
            raise DamagedFileError(
                f"{path} line {number} is not valid JSON ({error}); the file is damaged: repair or delete that line"
            ) from error
        if not isinstance(record, dict):
            raise DamagedFileError(
                f"{path} line {number} holds a {type(record).__name__}, not a JSON object; repair or delete that line"
            )
        records.append(record)
    return records


def _line(record: Mapping[str, Any]) -> str:
    if not isinstance(record, Mapping):
        raise ValueError(f"a JSON lines record must be a dict, got {type(record).__name__}")
    return json.dumps(dict(record))


def write_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``records`` as JSON lines atomically (replacing the file)."""
    return write_text(path, "".join(_line(record) + "\n" for record in records))


def append_jsonl(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Append ``record`` as one JSON line; the file is rewritten atomically from its complete
    records (a cut-off last line dropped, with the warning of :func:`read_jsonl`), so the new
    line always starts on a line boundary and the file is never half a line."""
    new = _line(record)
    path = Path(path)
    old = path.read_bytes() if path.is_file() else b""
    if old and not old.endswith(b"\n"):
        cut = old.rfind(b"\n") + 1
        try:
            _parse(old[cut:])
        except (UnicodeDecodeError, ValueError):
            # Read (and warn) through read_jsonl, which also refuses damage further up.
            records = read_jsonl(path)
            return write_jsonl(path, [*records, record])
        old += b"\n"
    return write_text(path, old.decode("utf-8") + new + "\n")
