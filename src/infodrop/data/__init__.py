"""Datasets of the two papers as numpy arrays: images float32 N x C x H x W, labels int64 N.

- IDX files (MNIST, Fashion-MNIST): ``read_idx``, ``write_idx``, ``load_idx_folder``,
  ``fashion_mnist_folder``.
- CIFAR-10: ``load_cifar_batches`` (official python batches, read with a restricted unpickler),
  ``prepare_cifar`` (per-image standardisation + ZCA, as the original ``process_cifar.py``),
  ``load_cifar_npz`` (our files and the original authors').
- Cluttered MNIST: ``generate_cluttered``, ``prepare_cluttered``, ``load_cluttered_npz``.
- ``load_digits_8x8`` and ``split``; augmentation ``random_crop``, ``random_horizontal_flip``,
  ``normalize``; ``as_tensor_dataset``.

Every missing or malformed file raises ``DataError`` (a ValueError) naming the file and the
command that prepares it.
"""

from .augment import augment_cifar, as_tensor_dataset, channel_stats, normalize, random_crop, random_horizontal_flip
from .cifar import (
    CIFAR_PREPARE_HINT,
    CIFAR_TEST_FILE,
    CIFAR_TRAIN_FILE,
    ZCAWhitening,
    load_cifar_batches,
    load_cifar_npz,
    prepare_cifar,
    preprocess_cifar,
    safe_unpickle,
    standardize_per_image,
)
from .cluttered import CLUTTERED_FILES, CLUTTERED_PREPARE_HINT, ClutteredData, generate_cluttered, load_cluttered_npz, prepare_cluttered
from .digits import load_digits_8x8, split
from .errors import DataError
from .idx import FASHION_MNIST_FOLDER, fashion_mnist_folder, load_idx_folder, read_idx, write_idx

__all__ = [
    "CIFAR_PREPARE_HINT",
    "CIFAR_TEST_FILE",
    "CIFAR_TRAIN_FILE",
    "CLUTTERED_FILES",
    "CLUTTERED_PREPARE_HINT",
    "ClutteredData",
    "DataError",
    "FASHION_MNIST_FOLDER",
    "ZCAWhitening",
    "as_tensor_dataset",
    "augment_cifar",
    "channel_stats",
    "fashion_mnist_folder",
    "generate_cluttered",
    "load_cifar_batches",
    "load_cifar_npz",
    "load_cluttered_npz",
    "load_digits_8x8",
    "load_idx_folder",
    "normalize",
    "prepare_cifar",
    "prepare_cluttered",
    "preprocess_cifar",
    "random_crop",
    "random_horizontal_flip",
    "read_idx",
    "safe_unpickle",
    "split",
    "standardize_per_image",
    "write_idx",
]
