"""Bundled 8x8 digits, the seeded split, CIFAR augmentation and tensor datasets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infodrop.data import (
    as_tensor_dataset,
    augment_cifar,
    channel_stats,
    load_digits_8x8,
    normalize,
    random_crop,
    random_horizontal_flip,
    split,
)


def test_bundled_digits_are_1797_images_8x8_in_unit_interval_with_10_classes():
    images, labels = load_digits_8x8()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32 and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(np.unique(labels)) == set(range(10))


def test_split_is_a_seeded_stratified_partition():
    images, labels = load_digits_8x8()
    parts = split(images, labels, test_fraction=0.25, seed=3)
    again = split(images, labels, test_fraction=0.25, seed=3)
    other = split(images, labels, test_fraction=0.25, seed=4)
    (train_x, train_y), (test_x, test_y) = parts["train"], parts["test"]
    assert len(train_x) + len(test_x) == 1797
    np.testing.assert_array_equal(test_x, again["test"][0])
    assert not np.array_equal(test_y, other["test"][1]) or not np.array_equal(test_x, other["test"][0])
    # Stratified: each class gives round(0.25 * its count) test examples.
    expected = np.round(0.25 * np.bincount(labels)).astype(int)
    np.testing.assert_array_equal(np.bincount(test_y, minlength=10), expected)
    # A partition: splitting the indices puts each one in exactly one part.
    index_parts = split(np.arange(1797), labels, test_fraction=0.25, seed=3)
    np.testing.assert_array_equal(np.sort(np.concatenate([index_parts["train"][0], index_parts["test"][0]])), np.arange(1797))
    np.testing.assert_array_equal(images[index_parts["test"][0]], test_x)


def test_split_rejects_fractions_outside_the_open_unit_interval():
    images, labels = load_digits_8x8()
    with pytest.raises(ValueError, match="test_fraction"):
        split(images, labels, test_fraction=1.0, seed=0)


def _batch():
    return torch.arange(4 * 3 * 6 * 5, dtype=torch.float32).reshape(4, 3, 6, 5) + 1


def test_random_crop_is_a_window_of_the_zero_padded_image_and_deterministic():
    batch = _batch()
    out = random_crop(batch, 2, generator=torch.Generator().manual_seed(0))
    again = random_crop(batch, 2, generator=torch.Generator().manual_seed(0))
    assert out.shape == batch.shape
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    padded = F.pad(batch, (2, 2, 2, 2))
    for image, source in zip(out, padded):
        windows = [source[:, r : r + 6, c : c + 5] for r in range(5) for c in range(5)]
        assert any(torch.equal(image, window) for window in windows)
    offsets = {random_crop(batch, 2, generator=torch.Generator().manual_seed(s))[0, 0, 0, 0].item() for s in range(20)}
    assert len(offsets) > 1  # different seeds move the window


def test_random_flip_mirrors_some_images_and_is_deterministic():
    batch = _batch().repeat(8, 1, 1, 1)
    out = random_horizontal_flip(batch, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, random_horizontal_flip(batch, generator=torch.Generator().manual_seed(1)), rtol=0, atol=0)
    flipped = [torch.equal(o, b.flip(-1)) for o, b in zip(out, batch)]
    kept = [torch.equal(o, b) for o, b in zip(out, batch)]
    assert all(f or k for f, k in zip(flipped, kept))
    # 32 fair coin flips all landing the same way has probability 2^-31.
    assert any(flipped) and any(kept)
    assert torch.equal(random_horizontal_flip(batch, p=1.0, generator=torch.Generator()), batch.flip(-1))
    assert torch.equal(random_horizontal_flip(batch, p=0.0, generator=torch.Generator()), batch)


def test_augmentation_requires_an_explicit_generator():
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        random_crop(_batch(), 4, generator=0)
    out = augment_cifar(_batch(), generator=torch.Generator().manual_seed(2))
    assert out.shape == (4, 3, 6, 5)


def test_normalize_with_training_channel_stats_gives_zero_mean_unit_std_per_channel():
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(50, 3, 4, 4)) * [[[[2.0]], [[0.5]], [[3.0]]]] + [[[[1.0]], [[-2.0]], [[0.0]]]]).astype(np.float32)
    mean, std = channel_stats(images)
    out = normalize(torch.from_numpy(images), mean, std)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    np.testing.assert_allclose(normalize(images, mean, std), out.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="one entry per channel"):
        normalize(images, mean[:2], std[:2])


def test_tensor_dataset_pairs_float_images_with_int64_labels():
    images, labels = load_digits_8x8()
    dataset = as_tensor_dataset(images[:10], labels[:10])
    image, label = dataset[3]
    assert len(dataset) == 10 and image.dtype == torch.float32 and label.dtype == torch.int64
    assert image.shape == (1, 8, 8) and int(label) == labels[3]
    with pytest.raises(ValueError, match="one label per image"):
        as_tensor_dataset(images[:10], labels[:9])
