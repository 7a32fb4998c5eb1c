"""SHA-256 checksums of what a file holds, stored inside the file itself.

Design: the checksum is taken over the *content* (every key, number, string and the raw bytes,
dtype and shape of every tensor or array, in a fixed order) rather than over the bytes of the
file, and stored in the same file under the key ``sha256``:

- a checkpoint dict gets an entry ``'sha256'`` (hex digest of the dict without that entry);
- an npz archive gets an array ``'__sha256__'`` (hex digest of the other arrays, by name).

So the checksum is written by the same atomic rename as the data (a file and a sidecar could not
be renamed together), the file stays an ordinary torch checkpoint or npz archive that any tool
reads, and what is verified is exactly what is loaded: a flipped bit anywhere that the loader
uses changes the digest, and damage to parts of the file the loader skips is harmless. Damage
that makes the file unreadable is reported as such by the loaders.

The encoding hashed for a value is a type tag followed by its data: mappings as their number of
items then key, value pairs in order; lists and tuples as their length then the items; ints
and strings as UTF-8 text; floats as IEEE-754 binary64 (so NaN and -0.0 are distinct values);
tensors and arrays as dtype, shape and the C-order bytes.

Files written since the format marker (``'format': 'infodrop.checkpoint/2'`` in a checkpoint,
``'__format__': 'infodrop.npz/2'`` in an npz) must carry their checksum: a file without one is
refused unless it has no marker either, i.e. is a file of an earlier version, which is read
unverified with a one-line :class:`~infodrop.io.EarlierVersionWarning` naming
``python -m infodrop.io.resave PATH``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKSUM_KEY",
    "STATE_CHECKSUM_KEY",
    "FORMAT_KEY",
    "STATE_FORMAT_KEY",
    "CHECKPOINT_FORMAT",
    "NPZ_FORMAT",
    "RESAVE_ADVICE",
    "content_sha256",
    "arrays_sha256",
    "first_non_finite",
]

# The entry of a checkpoint dict that holds its checksum.
STATE_CHECKSUM_KEY = "sha256"
# The array of an npz archive that holds its checksum.
CHECKSUM_KEY = "__sha256__"
# The format marker written beside the checksum (and hashed with the content). A file that
# carries it must carry its checksum too, so deleting the checksum entry alone is refused; a
# file with neither is a file of an earlier version (or of another tool), read unverified
# with a warning that says how to re-save it.
STATE_FORMAT_KEY = "format"
FORMAT_KEY = "__format__"
CHECKPOINT_FORMAT = "infodrop.checkpoint/2"
NPZ_FORMAT = "infodrop.npz/2"
# How to give an earlier-version file its checksum (infodrop.io.resave).
RESAVE_ADVICE = "re-save it with a checksum: python -m infodrop.io.resave {path}"


def _feed(digest: Any, value: Any, where: str) -> None:
    def text(tag: bytes, content: str) -> None:
        data = content.encode("utf-8")
        digest.update(tag + len(data).to_bytes(8, "little") + data)

    if value is None:
        digest.update(b"N")
    elif isinstance(value, bool):  # before int: bool is an int
        digest.update(b"B1" if value else b"B0")
    elif isinstance(value, int):
        text(b"I", str(value))
    elif isinstance(value, float):
        digest.update(b"F" + struct.pack("<d", value))
    elif isinstance(value, str):
        text(b"S", value)
    elif isinstance(value, (bytes, bytearray)):
        digest.update(b"Y" + len(value).to_bytes(8, "little") + bytes(value))
    elif isinstance(value, torch.Tensor):
        tensor = value.detach()
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise ValueError(f"{where} is a {tensor.layout} tensor, which has no checksum here; store it dense")
        tensor = tensor.to("cpu").contiguous()
        text(b"T", str(tensor.dtype))
        text(b"", repr(tuple(tensor.shape)))
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise ValueError(f"{where} is an object array, which has no checksum here; store numbers")
        text(b"A", value.dtype.str)
        text(b"", repr(value.shape))
        digest.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
    elif isinstance(value, np.generic):
        _feed(digest, np.asarray(value), where)
    elif isinstance(value, Mapping):
        digest.update(b"D" + len(value).to_bytes(8, "little"))
        for key, item in value.items():
            _feed(digest, key, f"{where} key")
            _feed(digest, item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        digest.update((b"L" if isinstance(value, list) else b"U") + len(value).to_bytes(8, "little"))
        for index, item in enumerate(value):
            _feed(digest, item, f"{where}[{index}]")
    elif isinstance(value, (torch.dtype, torch.device)):
        text(b"O", str(value))
    else:
        raise ValueError(f"{where} has type {type(value).__name__}, which has no checksum here; store numbers, strings, lists, dicts and tensors")


def content_sha256(value: Any) -> str:
    """Hex SHA-256 of the content of ``value`` (nested dicts, lists, tuples, numbers, strings,
    tensors, arrays) in the encoding of the module docstring."""
    digest = hashlib.sha256()
    _feed(digest, value, "value")
    return digest.hexdigest()


def arrays_sha256(arrays: Mapping[str, Any]) -> str:
    """Hex SHA-256 of named arrays, in sorted name order (an npz archive's order is not kept)."""
    return content_sha256({name: np.asarray(arrays[name]) for name in sorted(arrays)})


def first_non_finite(value: Any, where: str) -> str | None:
    """The dotted name (``where`` first, then the keys, e.g. ``model.fc.weight``) of the first
    floating-point tensor or array in ``value`` that holds NaN or inf, or None when there is
    none. Python floats (logged metrics) are not checked."""
    if isinstance(value, torch.Tensor):
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            return where
        return None
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
            return where
        return None
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = first_non_finite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None

