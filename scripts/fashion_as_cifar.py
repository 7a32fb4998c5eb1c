"""Write Fashion-MNIST as a `cifar-10-batches-py` folder in the official CIFAR-10 format.

CIFAR-10 cannot be downloaded on an offline machine; Fashion-MNIST (Debian package
`dataset-fashion-mnist`) can be installed. This script turns its IDX files into the five training
batches, the test batch and `batches.meta` of the official Python release (pickled dicts with
bytes keys; `data`: uint8 rows of 3072 values, the 1024 red, then green, then blue pixels of a
32 x 32 image in row-major order), so that every CIFAR command runs on real images:

    python scripts/fashion_as_cifar.py /usr/share/datasets/fashion-mnist fashion-as-cifar
    infodrop cifar prepare with source=fashion-as-cifar

Each 28 x 28 grey image is padded with 2 black pixels per side to 32 x 32 and copied into the
three colour planes. Ten classes, 60,000 training (5 batches of 12,000) and 10,000 test images.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from infodrop.data import DataError, load_idx_folder
from infodrop.io import atomic_path

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def as_cifar_rows(images: np.ndarray) -> np.ndarray:
    """N x 28 x 28 (or N x 1 x 28 x 28) grey images, uint8 or floats in [0, 1] -> N x 3072 uint8 rows."""
    images = np.asarray(images).reshape(len(images), 28, 28)
    if images.dtype != np.uint8:
        images = np.rint(images * 255.0).astype(np.uint8)
    padded = np.zeros((len(images), 32, 32), dtype=np.uint8)
    padded[:, 2:30, 2:30] = images
    return np.repeat(padded.reshape(len(images), 1, 1024), 3, axis=1).reshape(len(images), 3072)


def write_batch(path: Path, batch: dict) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(pickle.dumps(batch, protocol=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="folder of the Fashion-MNIST (or MNIST) IDX files")
    parser.add_argument("out", help="folder to write, e.g. fashion-as-cifar")
    args = parser.parse_args(argv)
    try:
        splits = load_idx_folder(args.source)
    except DataError as error:
        parser.error(f"source: {error}")
    out = Path(args.out)
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["test"]
    rows = as_cifar_rows(train_images)
    for index, part in enumerate(np.array_split(np.arange(len(rows)), 5), start=1):
        write_batch(out / f"data_batch_{index}", {
            b"batch_label": f"training batch {index} of 5 (Fashion-MNIST)".encode(),
            b"labels": [int(label) for label in train_labels[part]],
            b"data": rows[part],
            b"filenames": [f"fashion_train_{i}.png".encode() for i in part],
        })
    write_batch(out / "test_batch", {
        b"batch_label": b"testing batch 1 of 1 (Fashion-MNIST)",
        b"labels": [int(label) for label in test_labels],
        b"data": as_cifar_rows(test_images),
        b"filenames": [f"fashion_test_{i}.png".encode() for i in range(len(test_labels))],
    })
    write_batch(out / "batches.meta", {b"label_names": [name.encode() for name in CLASSES], b"num_cases_per_batch": len(rows) // 5,
                                       b"num_vis": 3072})
    print(f"wrote {out}/data_batch_1..5 ({len(rows)} images) and test_batch ({len(test_labels)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
