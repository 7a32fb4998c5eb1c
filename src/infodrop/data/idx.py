"""IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (TT the element type code, DD the number
of dimensions), then DD big-endian uint32 sizes, then the elements in C order, big-endian.
http://yann.lecun.com/exdb/mnist/ describes it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from infodrop.io import atomic_path

from .errors import data_error, read_data_file

# IDX type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"

FASHION_MNIST_FOLDER = Path("/usr/share/datasets/fashion-mnist")

# Both spellings occur in the wild: "train-images-idx3-ubyte" (LeCun's site, Fashion-MNIST) and
# "train-images.idx3-ubyte" (some mirrors); each may be gzip-compressed.
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path, hint: str | None) -> bytes:
    raw = read_data_file(path, hint)
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise data_error(path, f"corrupt gzip stream ({error})", hint) from error
    return raw


def read_idx(path: str | os.PathLike, *, hint: str | None = None) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed: detected from its first bytes, not its name).

    Returns an array of the stored shape, in native byte order (uint8 for MNIST images
    N x 28 x 28 and labels N). Raises DataError naming ``path`` (and ``hint``) when the file is
    missing, the magic number or type code is wrong, or its length does not match the header
    (truncated or with trailing bytes).
    """
    path = Path(path)
    raw = _read_bytes(path, hint)
    if len(raw) < 4:
        raise data_error(path, f"too short for an IDX header ({len(raw)} bytes)", hint)
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise data_error(path, f"not an IDX file (magic bytes {raw[:4].hex()})", hint)
    dtype = IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise data_error(path, f"truncated IDX header ({ndim} dimensions, {len(raw)} bytes)", hint)
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "has trailing bytes"
        raise data_error(
            path, f"{state}: header says shape {shape} of {dtype.newbyteorder('=').name} ({expected} bytes), file has {len(raw)} bytes", hint
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz`` (atomically).

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (at least one dimension).
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"array has dtype {array.dtype}; IDX stores uint8, int8, int16, int32, float32 or float64, so cast it first")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array must have 1 to 255 dimensions, got shape {array.shape}")
    header = bytes([0, 0, _CODES[native], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()
    if str(path).endswith(".gz"):
        # mtime=0 so the same array always gives the same bytes.
        payload = gzip.compress(payload, mtime=0)
    with atomic_path(path) as temporary:
        temporary.write_bytes(payload)
    return Path(path)


def _find_split_file(folder: Path, prefix: str, kind: str, ndim: int) -> Path | None:
    for separator in ("-", "."):
        for suffix in (".gz", ""):
            candidate = folder / f"{prefix}-{kind}{separator}idx{ndim}-ubyte{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_idx_folder(folder: str | os.PathLike, *, hint: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load an MNIST-style folder: ``{'train': (images, labels), 'test': (images, labels)}``.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; ``.idx3-ubyte`` spelling also accepted).
    images: float32 N x 1 x H x W in [0, 1] (uint8 / 255); labels: int64 N.
    Raises DataError naming the folder or file when anything is missing or inconsistent.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise data_error(folder, "folder not found", hint)
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, prefix in _SPLIT_PREFIX.items():
        image_path = _find_split_file(folder, prefix, "images", 3)
        label_path = _find_split_file(folder, prefix, "labels", 1)
        for found, name in ((image_path, f"{prefix}-images-idx3-ubyte[.gz]"), (label_path, f"{prefix}-labels-idx1-ubyte[.gz]")):
            if found is None:
                raise data_error(folder / name, "file not found", hint)
        images = read_idx(image_path, hint=hint)
        labels = read_idx(label_path, hint=hint)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise data_error(image_path, f"expected uint8 images N x H x W, got {images.dtype} of shape {images.shape}", hint)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise data_error(label_path, f"expected integer labels of shape N, got {labels.dtype} of shape {labels.shape}", hint)
        if len(labels) != len(images):
            raise data_error(label_path, f"has {len(labels)} labels but {image_path.name} has {len(images)} images", hint)
        splits[split] = (
            (images.astype(np.float32) / np.float32(255.0))[:, None, :, :],
            labels.astype(np.int64),
        )
    return splits


def fashion_mnist_folder() -> Path | None:
    """The Debian-packaged Fashion-MNIST folder, ``/usr/share/datasets/fashion-mnist``, if it holds
    the four IDX files (``train-images-idx3-ubyte.gz`` etc.); else None."""
    folder = FASHION_MNIST_FOLDER
    if not folder.is_dir():
        return None
    for prefix in _SPLIT_PREFIX.values():
        if _find_split_file(folder, prefix, "images", 3) is None or _find_split_file(folder, prefix, "labels", 1) is None:
            return None
    return folder


__all__ = ["read_idx", "write_idx", "load_idx_folder", "fashion_mnist_folder", "FASHION_MNIST_FOLDER"]
