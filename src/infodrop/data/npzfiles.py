"""Reading npz files safely (no pickles) and bringing the arrays of the layouts we accept
(ours: NCHW ``images``; the original authors': NHWC or flat ``data``, integer or one-hot
``labels``) to images float32 N x C x H x W and labels int64 N."""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from infodrop.io.npz import checksum_problem

from .errors import DataError, data_error, require_data_file


def read_npz(path: str | os.PathLike, hint: str | None) -> dict[str, np.ndarray]:
    """All arrays of an npz file, loaded eagerly with ``allow_pickle=False``, and verified
    against the SHA-256 that ``infodrop.io.save_npz`` stores with them (files of an earlier
    version without one, such as the original authors', are read unverified with a warning;
    an infodrop file whose checksum was removed is refused).

    Raises DataError naming ``path`` (and ``hint``) when it is missing, not an npz archive,
    holds object arrays (which would need unpickling), or does not match its checksum.
    """
    path = require_data_file(path, hint)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise data_error(path, "is a single .npy array, not an npz archive of named arrays", hint)
            arrays = {key: archive[key] for key in archive.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise data_error(path, f"not a readable npz file ({error})", hint) from error
    problem = checksum_problem(path, arrays)
    if problem is not None:
        raise data_error(path, f"{problem}; delete it", hint)
    return arrays


def images_to_nchw(path: Path, data: np.ndarray, channels: int, key: str, hint: str | None) -> np.ndarray:
    """Return ``data`` as float32 N x channels x H x W.

    Accepts N x C x H x W, N x H x W x C, N x H x W (when channels == 1) and flat N x (C*S*S)
    (square images, channel-major like the official CIFAR-10 batches). uint8 is scaled by 1/255.
    """
    shape = data.shape
    if data.ndim == 4 and shape[1] == channels and shape[3] != channels:
        images = data
    elif data.ndim == 4 and shape[3] == channels and shape[1] != channels:
        images = data.transpose(0, 3, 1, 2)
    elif data.ndim == 3 and channels == 1:
        images = data[:, None, :, :]
    elif data.ndim == 2 and shape[1] % channels == 0 and math.isqrt(shape[1] // channels) ** 2 == shape[1] // channels:
        side = math.isqrt(shape[1] // channels)
        images = data.reshape(shape[0], channels, side, side)
    else:
        raise data_error(path, f"array {key!r} has shape {shape}; expected N x {channels} x H x W, N x H x W x {channels} or flat N x ({channels}*S*S)", hint)
    if data.dtype == np.uint8:
        return np.ascontiguousarray(images, dtype=np.float32) / np.float32(255.0)
    if not np.issubdtype(data.dtype, np.floating):
        raise data_error(path, f"array {key!r} has dtype {data.dtype}; expected uint8 or floating point images", hint)
    images = np.ascontiguousarray(images, dtype=np.float32)
    if not np.isfinite(images).all():
        raise data_error(path, f"array {key!r} contains NaN or inf values", hint)
    return images


def labels_to_int(path: Path, labels: np.ndarray, count: int, key: str, hint: str | None) -> np.ndarray:
    """Return ``labels`` as int64 of length ``count``; one-hot rows (N x K of 0/1) become class indices."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:
        one_hot = np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all()
        if not one_hot:
            raise data_error(path, f"array {key!r} of shape {labels.shape} is 2-D but not one-hot", hint)
        labels = labels.argmax(axis=1)
    if labels.ndim != 1:
        raise data_error(path, f"array {key!r} has shape {labels.shape}; expected one label per image", hint)
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise data_error(path, f"array {key!r} has dtype {labels.dtype}; expected integer class labels", hint)
    if np.issubdtype(labels.dtype, np.floating) and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
        raise data_error(path, f"array {key!r} holds non-integer values; expected class labels", hint)
    if len(labels) != count:
        raise data_error(path, f"array {key!r} has {len(labels)} labels for {count} images", hint)
    if len(labels) and labels.min() < 0:
        raise data_error(path, f"array {key!r} holds negative class labels", hint)
    return labels.astype(np.int64)


def check_fits(path: Path, images: np.ndarray, labels: np.ndarray, *, side: int | None, classes: int, hint: str | None) -> None:
    """Refuse images (N x C x H x W) that are not ``side`` x ``side`` (any square side when None)
    and labels outside 0 .. ``classes`` - 1, in one line: a network fed other sizes still
    prints an error rate, and a label out of range fails deep inside the loss."""
    fix = hint or "prepare the data again"  # the hint names the prepare command
    height, width = images.shape[2:]
    if height != width or (side is not None and height != side):
        wanted = f"{side} x {side}" if side is not None else "square"
        raise data_error(path, f"images are {height} x {width} pixels, not {wanted} as this experiment needs", fix)
    if len(labels) and labels.max() >= classes:
        raise data_error(path, f"labels reach {int(labels.max())}, outside the {classes} classes 0..{classes - 1} this experiment has", fix)


def read_image_npz(
    path: Path, hint: str | None, *, channels: int, original: str, side: int | None = None, classes: int = 10
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The arrays of an image npz in our layout (``images``, ``labels``) or the original authors'
    (``data``, ``labels``; ``original`` names their script for the error message), with the
    images as float32 N x ``channels`` x H x W and the labels as int64 class indices, checked
    against what the experiment needs (:func:`check_fits`: ``side`` pixels, ``classes``)."""
    arrays = read_npz(path, hint)
    if "images" in arrays and "labels" in arrays:
        key = "images"
    elif "data" in arrays and "labels" in arrays:
        key = "data"
    else:
        raise data_error(
            path, f"unknown layout: keys {sorted(arrays)}; expected 'images'/'labels' (infodrop) or 'data'/'labels' ({original})", hint
        )
    images = images_to_nchw(path, arrays[key], channels, key, hint)
    labels = labels_to_int(path, arrays["labels"], len(images), "labels", hint)
    check_fits(path, images, labels, side=side, classes=classes, hint=hint)
    return arrays, images, labels
