"""scikit-learn's bundled 8 x 8 digits (1797 images, no download) and a seeded train/test split."""

from __future__ import annotations

import numpy as np

from infodrop.checks import check_in_range, check_int


def load_digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """The UCI optical digits shipped with scikit-learn: images float32 1797 x 1 x 8 x 8 in
    [0, 1] (the 0..16 counts divided by 16), labels int64 1797 (classes 0..9)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    return images, digits.target.astype(np.int64)


def split(
    images: np.ndarray, labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0, *, stratify: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seeded train/test split: ``{'train': (images, labels), 'test': (images, labels)}``.

    With ``stratify`` each class contributes round(test_fraction * its count) examples to the
    test set, so both sets keep the class proportions; otherwise a plain random
    ``round(test_fraction * N)``. Both parts keep the original order of the examples they hold.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim < 1 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"images ({images.shape}) and labels ({labels.shape}) must have the same length N, labels 1-D")
    check_in_range(test_fraction, "test_fraction", 0.0, 1.0, low_open=True, high_open=True)
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    in_test = np.zeros(len(labels), dtype=bool)
    groups = [np.flatnonzero(labels == value) for value in np.unique(labels)] if stratify else [np.arange(len(labels))]
    for members in groups:
        chosen = rng.permutation(members)[: int(round(test_fraction * len(members)))]
        in_test[chosen] = True
    if in_test.all() or not in_test.any():
        raise ValueError(f"test_fraction={test_fraction} leaves the train or test set empty for {len(labels)} examples; choose a fraction nearer 0.5")
    return {
        "train": (images[~in_test], labels[~in_test]),
        "test": (images[in_test], labels[in_test]),
    }
