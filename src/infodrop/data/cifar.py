"""CIFAR-10: the official python batches, the preprocessing of Achille & Soatto's
``process_cifar.py`` (per-image standardisation, then ZCA whitening fitted on the training set),
and the npz files the experiments read.

The official batches (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``) are Python
pickles. Unpickling can run arbitrary code, so they are read with an unpickler that only
rebuilds numpy arrays and the builtin containers the pickle opcodes make by themselves, and
refuses every other global.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from infodrop.checks import check_positive
from infodrop.io import remove_temporaries, save_npz

from .errors import DataError, data_error, read_data_file
from .npzfiles import read_image_npz

CIFAR_PREPARE_HINT = "run `infodrop cifar prepare with source=PATH/cifar-10-batches-py`"
CIFAR_TRAIN_FILE = "cifar10-train.npz"
CIFAR_TEST_FILE = "cifar10-test.npz"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
_BATCH_FOLDER = "cifar-10-batches-py"


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes bytes at pickle protocol 2 as _codecs.encode(text, 'latin1'); that is the
    # only use of codecs a data pickle needs, so no other codec is reachable.
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


# The functions numpy's own __reduce__ names; taken from numpy itself so that the deprecated
# module path numpy.core (numpy >= 2 warns on import) is never imported.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name} (only numpy arrays and builtin containers are allowed)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent id")


def safe_unpickle(raw: bytes, path: str | os.PathLike, hint: str | None = None) -> Any:
    """Unpickle ``raw`` (read from ``path``) allowing only numpy arrays and builtin containers.

    Python 2 pickles (the official CIFAR-10 batches) are read with ``encoding='bytes'``, so their
    dict keys come back as bytes. Any refused global or malformed stream raises DataError naming
    ``path``; no code named by the pickle runs.
    """
    try:
        return _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OverflowError) as error:
        raise data_error(path, f"not a safe CIFAR-10 pickle ({error})", hint) from error


def _parse_batch(batch: Any, path: str, hint: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, dict):
        raise data_error(path, f"expected a pickled dict, got {type(batch).__name__}", hint)
    entries = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if "data" not in entries or "labels" not in entries:
        raise data_error(path, f"expected keys 'data' and 'labels', found {sorted(map(str, entries))}", hint)
    data, labels = entries["data"], entries["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", None)
        raise data_error(path, f"'data' must be a uint8 array N x 3072, got {type(data).__name__} {getattr(data, 'dtype', '')} of shape {shape}", hint)
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError) as error:
        raise data_error(path, f"'labels' is not a list of integers ({error})", hint) from error
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise data_error(path, f"'labels' must be a list of integers, got {labels.dtype} of shape {labels.shape}", hint)
    if len(labels) != len(data):
        raise data_error(path, f"has {len(labels)} labels for {len(data)} images", hint)
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise data_error(path, f"labels must lie in 0..9, got {labels.min()}..{labels.max()}", hint)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _batch_reader(source: Path, hint: str | None) -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    """A function batch name -> (uint8 N x 3 x 32 x 32, int64 N) reading from a folder or tarball."""
    if source.is_file() and tarfile.is_tarfile(source):
        def read_from_tar(name: str) -> tuple[np.ndarray, np.ndarray]:
            member_name = f"{_BATCH_FOLDER}/{name}"
            label = f"{source}:{member_name}"
            try:
                with tarfile.open(source) as archive:
                    member = archive.getmember(member_name)
                    handle = archive.extractfile(member)
                    if handle is None:
                        raise data_error(label, "is not a regular file in the archive", hint)
                    raw = handle.read()
            except KeyError as error:
                raise data_error(label, "not found in the archive", hint) from error
            except (tarfile.TarError, OSError, EOFError) as error:
                raise data_error(source, f"corrupt tar archive ({error})", hint) from error
            return _parse_batch(safe_unpickle(raw, label, hint), label, hint)

        return read_from_tar

    folder = source
    if (source / _BATCH_FOLDER).is_dir():
        # The original process_cifar.py took the folder that contains cifar-10-batches-py.
        folder = source / _BATCH_FOLDER
    if not folder.is_dir():
        raise data_error(source, f"folder not found (expected the {_BATCH_FOLDER} folder or cifar-10-python.tar.gz)", hint)

    def read_from_folder(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = folder / name
        return _parse_batch(safe_unpickle(read_data_file(path, hint), path, hint), str(path), hint)

    return read_from_folder


def load_cifar_batches(source: str | os.PathLike, *, hint: str | None = CIFAR_PREPARE_HINT) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the official CIFAR-10 python batches.

    ``source`` is the ``cifar-10-batches-py`` folder, the folder that contains it, or the
    ``cifar-10-python.tar.gz`` archive. Returns ``{'train': (images, labels), 'test': (images,
    labels)}`` with images float32 N x 3 x 32 x 32 in [0, 1] (pixel / 255) and labels int64 N
    (50000 train from data_batch_1..5, 10000 test from test_batch).
    """
    read = _batch_reader(Path(source), hint)
    train = [read(name) for name in TRAIN_BATCHES]
    test_images, test_labels = read(TEST_BATCH)
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    scale = np.float32(255.0)
    return {
        "train": (train_images.astype(np.float32) / scale, train_labels),
        "test": (test_images.astype(np.float32) / scale, test_labels),
    }


def standardize_per_image(images: np.ndarray, *, eps: float = 1e-8) -> np.ndarray:
    """Subtract each image's mean and divide by its standard deviation (over C, H, W, ddof=1).

    As ``process_cifar.py``: an image whose standard deviation is below ``eps`` (a constant
    image) is only centred. images: N x ... float; returns float32 of the same shape.
    """
    images = np.asarray(images)
    if images.ndim < 2 or images.shape[0] == 0 or int(np.prod(images.shape[1:])) < 2:
        raise ValueError(f"images must have shape N x C x H x W with N >= 1 and at least 2 values per image, got {images.shape}")
    check_positive(eps, "eps")
    flat = images.reshape(len(images), -1)
    out = np.empty(flat.shape, dtype=np.float32)
    # In float64 chunks: per-image statistics need no other images, and 50000 CIFAR images
    # in float64 would take 1.2 GB per temporary.
    for start in range(0, len(flat), 4096):
        block = flat[start : start + 4096].astype(np.float64)
        block -= block.mean(axis=1, keepdims=True)
        std = block.std(axis=1, ddof=1, keepdims=True)
        std[std < eps] = 1.0
        out[start : start + 4096] = block / std
    return out.reshape(images.shape)


class ZCAWhitening:
    """ZCA whitening with a regulariser on the singular values, as in ``process_cifar.py``.

    Fitted on X (N x D): mean m, covariance C = (X - m)^T (X - m) / (N - 1) = U diag(S^2) U^T
    (S are the singular values of (X - m) / sqrt(N - 1), the square roots of C's eigenvalues).
    The whitening map is x -> (x - m) W with W = U diag(1 / (S + regularizer)) U^T, so the
    training set's covariance becomes U diag(S^2 / (S + regularizer)^2) U^T, the identity up to
    a relative 2 * regularizer / S in each direction. Like the original's thin SVD, at most
    min(N, D) directions are kept, and directions of numerically zero variance (S below
    numpy's matrix-rank tolerance) are dropped; dropped directions are mapped to zero.

    Attributes after ``fit``: ``mean_`` (D,), ``components_`` U (D x K), ``singular_values_`` S
    (K,), ``matrix_`` W (D x D), all float64.
    """

    def __init__(self, regularizer: float = 1e-5) -> None:
        self.regularizer = check_positive(regularizer, "regularizer", allow_zero=True)

    def fit(self, features: np.ndarray, *, chunk_size: int = 4096) -> "ZCAWhitening":
        """Fit on ``features`` (N x D, N >= 2)."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] < 1:
            raise ValueError(f"features must have shape N x D with N >= 2, got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("features contain NaN or inf; fix the input images before whitening")
        count, dimension = features.shape
        mean = features.mean(axis=0, dtype=np.float64)
        if count <= dimension:
            # Thin SVD of the N x D centred data, O(N^2 D), as the original's SVD.
            centred = (features.astype(np.float64) - mean) / np.sqrt(count - 1)
            _, singular, right = np.linalg.svd(centred, full_matrices=False)
            components = right.T
        else:
            # Eigendecomposition of the D x D covariance, accumulated in float64 chunks
            # (50000 x 3072 in float64 would need 1.2 GB at once).
            covariance = np.zeros((dimension, dimension))
            for start in range(0, count, chunk_size):
                block = features[start : start + chunk_size].astype(np.float64) - mean
                covariance += block.T @ block
            covariance /= count - 1
            eigenvalues, vectors = np.linalg.eigh(covariance)
            order = np.argsort(eigenvalues)[::-1]
            singular = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
            components = vectors[:, order]
        # Directions with singular value zero at float64 precision (numpy's matrix_rank
        # tolerance) carry no data and an arbitrary orientation; W would blow them up by
        # 1 / regularizer, so they are dropped.
        keep = singular > singular[0] * max(count, dimension) * np.finfo(np.float64).eps
        singular, components = singular[keep], components[:, keep]
        self.mean_ = mean
        self.components_ = components
        self.singular_values_ = singular
        self.matrix_ = (components / (singular + self.regularizer)) @ components.T
        return self

    def transform(self, features: np.ndarray, *, chunk_size: int = 4096) -> np.ndarray:
        """Whiten ``features`` (N x D) -> float32 N x D."""
        if not hasattr(self, "matrix_"):
            raise ValueError("this ZCAWhitening is not fitted; call fit(training_features) first")
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"features must have shape N x {self.mean_.shape[0]}, got {features.shape}")
        out = np.empty(features.shape, dtype=np.float32)
        for start in range(0, len(features), chunk_size):
            block = features[start : start + chunk_size].astype(np.float64) - self.mean_
            out[start : start + chunk_size] = block @ self.matrix_
        return out


def preprocess_cifar(
    train_images: np.ndarray, test_images: np.ndarray, *, regularizer: float = 1e-5
) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessing of ``process_cifar.py``: per-image standardisation of both sets, then ZCA
    whitening fitted on the training set and applied to both.

    images: N x C x H x W; returns float32 arrays of the same shapes.
    """
    train = standardize_per_image(train_images)
    test = standardize_per_image(test_images)
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(f"train_images {train.shape} and test_images {test.shape} must have the same image shape")
    zca = ZCAWhitening(regularizer).fit(train.reshape(len(train), -1))
    return (
        zca.transform(train.reshape(len(train), -1)).reshape(train.shape),
        zca.transform(test.reshape(len(test), -1)).reshape(test.shape),
    )


def _pixels(images: np.ndarray) -> np.ndarray:
    """Images as uint8 pixels (the batches' floats in [0, 1] times 255), for display only."""
    images = np.asarray(images)
    if np.issubdtype(images.dtype, np.floating):
        images = np.clip(np.round(images * 255.0), 0, 255)
    return images.astype(np.uint8)


def prepare_cifar(
    source: str | os.PathLike,
    out_dir: str | os.PathLike = "datasets",
    *,
    regularizer: float = 1e-5,
    hint: str | None = CIFAR_PREPARE_HINT,
) -> dict[str, Path]:
    """Read the official batches at ``source`` (see ``load_cifar_batches``), preprocess them as
    ``process_cifar.py`` does, and write ``out_dir/cifar10-train.npz`` and ``cifar10-test.npz``
    atomically, each with ``images`` (float32 N x 3 x 32 x 32) and ``labels`` (int64 N); the test
    file also keeps the unwhitened pixels as ``raw`` (uint8 N x 3 x 32 x 32, 30 MB), which the KL
    heat maps show beside the whitened input.

    Returns ``{'train': path, 'test': path}``. Temp files of these two that a killed earlier
    ``prepare`` left are deleted first.
    """
    for name in (CIFAR_TRAIN_FILE, CIFAR_TEST_FILE):
        remove_temporaries(out_dir, of=name)
    batches = load_cifar_batches(source, hint=hint)
    (train_images, train_labels), (test_images, test_labels) = batches["train"], batches["test"]
    train, test = preprocess_cifar(train_images, test_images, regularizer=regularizer)
    out = Path(out_dir)
    return {
        "train": save_npz(out / CIFAR_TRAIN_FILE, images=train, labels=train_labels),
        "test": save_npz(out / CIFAR_TEST_FILE, images=test, labels=test_labels, raw=_pixels(test_images)),
    }


def load_cifar_npz(path: str | os.PathLike, *, hint: str | None = CIFAR_PREPARE_HINT) -> tuple[np.ndarray, np.ndarray]:
    """Load a preprocessed CIFAR-10 npz: images float32 N x 3 x 32 x 32, labels int64 N.

    Two layouts are recognised:
    - ours (``prepare_cifar``): ``images`` N x 3 x H x W and ``labels``;
    - the original authors' (``process_cifar.py``, and the ``cifar10.tar.gz`` they distribute):
      ``data`` N x 32 x 32 x 3 (NHWC, transposed here to NCHW) and ``labels`` (integers, or
      one-hot rows, which become class indices).
    Anything else, images that are not 3 x 32 x 32, or labels outside 0..9 raise DataError in
    one line naming the file.
    """
    path = Path(path)
    _, images, labels = read_image_npz(path, hint, channels=3, original="original process_cifar.py", side=32, classes=10)
    return images, labels


__all__ = [
    "CIFAR_PREPARE_HINT",
    "CIFAR_TRAIN_FILE",
    "CIFAR_TEST_FILE",
    "DataError",
    "ZCAWhitening",
    "load_cifar_batches",
    "load_cifar_npz",
    "prepare_cifar",
    "preprocess_cifar",
    "safe_unpickle",
    "standardize_per_image",
]
