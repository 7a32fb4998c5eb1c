"""Cluttered MNIST (re-implementation of DeepMind's mnist-cluttered)."""

import numpy as np
import pytest

from infodrop.data import (
    DataError,
    fashion_mnist_folder,
    generate_cluttered,
    load_cluttered_npz,
    prepare_cluttered,
    read_idx,
    write_idx,
)


def _source_digits(count=20, seed=0):
    """Digit-like sources: blobs of k/255 values on a zero background, all different."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 1, 28, 28)).astype(np.float32) / 255
    images[:, :, :4], images[:, :, -4:] = 0, 0
    return images, rng.integers(0, 10, count)


def _distractor_mask(boxes, canvas, size):
    mask = np.zeros((canvas, canvas), dtype=bool)
    for row, col in boxes:
        mask[row : row + size, col : col + size] = True
    return mask


def _check_digit_where_positions_say(data, sources, canvas, size):
    for image, position, source, boxes in zip(data.images[:, 0], data.positions, data.sources, data.distractor_positions):
        row, col = position
        assert 0 <= row <= canvas - 28 and 0 <= col <= canvas - 28  # fully inside the canvas
        crop = image[row : row + 28, col : col + 28]
        covered = _distractor_mask(boxes, canvas, size)[row : row + 28, col : col + 28]
        digit = sources[source, 0]
        np.testing.assert_array_equal(crop[~covered], digit[~covered])
        assert (crop >= digit).all()  # max-combination never darkens the digit
        outside = np.ones((canvas, canvas), dtype=bool)
        outside[row : row + 28, col : col + 28] = False
        outside &= ~_distractor_mask(boxes, canvas, size)
        assert (image[outside] == 0).all()  # nothing but digit and distractors on the canvas


def test_cluttered_images_have_the_canvas_size_and_values_in_unit_interval():
    images, labels = _source_digits()
    data = generate_cluttered(images, labels, count=50, canvas=60, distractors=6, distractor_size=8, seed=0)
    assert data.images.shape == (50, 1, 60, 60) and data.images.dtype == np.float32
    assert data.labels.dtype == np.int64 and data.positions.shape == (50, 2)
    assert data.images.min() >= 0 and data.images.max() <= 1
    np.testing.assert_array_equal(data.labels, labels[data.sources])


def test_digit_lies_where_the_positions_say_unless_a_distractor_overlaps():
    images, labels = _source_digits()
    data = generate_cluttered(images, labels, count=40, canvas=48, distractors=8, distractor_size=8, seed=1)
    _check_digit_where_positions_say(data, images, 48, 8)


def test_distractors_are_crops_of_other_digits():
    # Two constant "digits" of different brightness: every clutter pixel outside the labelled
    # digit must have the other digit's value.
    values = np.float32([0.5, 0.9])
    images = np.broadcast_to(values[:, None, None, None], (2, 1, 28, 28)).copy()
    data = generate_cluttered(images, np.arange(2), count=20, canvas=48, distractors=8, distractor_size=8, seed=2)
    for image, (row, col), source, boxes in zip(data.images[:, 0], data.positions, data.sources, data.distractor_positions):
        outside = np.ones_like(image, dtype=bool)
        outside[row : row + 28, col : col + 28] = False
        mask = _distractor_mask(boxes, 48, 8)
        np.testing.assert_array_equal(image[outside & mask], values[1 - source])
        assert (image[~mask & outside] == 0).all()
    assert data.distractor_positions.shape == (20, 8, 2)
    assert (data.distractor_positions >= 0).all() and (data.distractor_positions <= 48 - 8).all()


def test_digits_are_drawn_as_random_permutations_of_the_source_set():
    images, labels = _source_digits(count=20)
    data = generate_cluttered(images, labels, count=40, canvas=32, distractors=2, seed=3)
    # As mnist_cluttered.lua: each pass over the sources uses every digit exactly once.
    assert sorted(data.sources[:20]) == list(range(20)) and sorted(data.sources[20:]) == list(range(20))


def test_add_combination_clips_sums_at_one_like_the_lua_code():
    images = np.full((3, 1, 28, 28), 0.6, dtype=np.float32)
    data = generate_cluttered(images, np.arange(3), count=30, canvas=40, distractors=8, seed=4, combine="add")
    assert data.images.max() == 1.0 and data.images.min() == 0.0
    assert np.isin(np.unique(data.images), np.float32([0.0, 0.6, 1.0])).all()


def test_same_seed_same_data_different_seed_different_data():
    images, labels = _source_digits()
    first = generate_cluttered(images, labels, count=16, canvas=40, seed=7)
    again = generate_cluttered(images, labels, count=16, canvas=40, seed=7)
    other = generate_cluttered(images, labels, count=16, canvas=40, seed=8)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.images, other.images)
    assert not np.array_equal(first.positions, other.positions)


def test_generator_rejects_bad_arguments_naming_them():
    images, labels = _source_digits()
    with pytest.raises(ValueError, match="canvas=20 is smaller than the digits"):
        generate_cluttered(images, labels, canvas=20, seed=0)
    with pytest.raises(ValueError, match="distractor_size=30"):
        generate_cluttered(images, labels, distractor_size=30, seed=0)
    with pytest.raises(ValueError, match=r"images must be finite and lie in \[0, 1\]"):
        generate_cluttered(images * 255, labels, seed=0)
    with pytest.raises(ValueError, match="seed"):
        generate_cluttered(images, labels, seed=-1)


def test_cluttered_from_real_fashion_mnist():
    folder = fashion_mnist_folder()
    if folder is None:
        pytest.skip("Fashion-MNIST not installed at /usr/share/datasets/fashion-mnist")
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")[:500, None].astype(np.float32) / 255
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:500].astype(np.int64)
    data = generate_cluttered(images, labels, count=64, seed=0)
    assert data.images.shape == (64, 1, 96, 96)
    assert set(np.unique(data.labels)) <= set(range(10))
    _check_digit_where_positions_say(data, images, 96, 8)


def _idx_folder(folder, train=60, test=20):
    rng = np.random.default_rng(9)
    for prefix, count in (("train", train), ("t10k", test)):
        digits = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", digits)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count).astype(np.uint8))
    return folder


def test_prepare_cluttered_writes_train_valid_test_files_that_load_back(tmp_path):
    source = _idx_folder(tmp_path / "mnist")
    out = tmp_path / "datasets"
    options = dict(train_count=30, valid_count=12, test_count=10, canvas=40, distractors=4, distractor_size=6, seed=5)
    paths = prepare_cluttered(source, out, **options)
    assert sorted(p.name for p in out.iterdir()) == ["cluttered-test.npz", "cluttered-train.npz", "cluttered-valid.npz"]
    for split, count in (("train", 30), ("valid", 12), ("test", 10)):
        images, labels, positions = load_cluttered_npz(paths[split], with_positions=True)
        assert images.shape == (count, 1, 40, 40) and images.dtype == np.float32 and labels.dtype == np.int64
        assert images.min() >= 0 and images.max() <= 1 and positions.shape == (count, 2)
    first = load_cluttered_npz(paths["train"])[0]
    prepare_cluttered(source, tmp_path / "again", **options)
    np.testing.assert_array_equal(first, load_cluttered_npz(tmp_path / "again" / "cluttered-train.npz")[0])


def test_stored_bytes_reproduce_the_generated_floats_exactly(tmp_path):
    # prepare_cluttered stores uint8; digits read from IDX are k/255 and max keeps that grid.
    images = np.random.default_rng(0).integers(0, 256, (10, 1, 28, 28)).astype(np.float32) / 255
    data = generate_cluttered(images, np.arange(10), count=10, canvas=40, seed=0)
    np.savez(tmp_path / "c.npz", images=np.rint(data.images * 255).astype(np.uint8), labels=data.labels)
    np.testing.assert_array_equal(load_cluttered_npz(tmp_path / "c.npz")[0], data.images)


def test_original_authors_cluttered_layout_loads(tmp_path):
    # cluttered.py reads 'data' and 'labels', reshapes data to N x 96 x 96 x 1 and feeds the
    # labels as one-hot rows.
    rng = np.random.default_rng(6)
    data = rng.uniform(size=(5, 96 * 96)).astype(np.float32)
    labels = rng.integers(0, 10, 5)
    np.savez(tmp_path / "cluttered-train.npz", data=data, labels=np.eye(10)[labels])
    images, loaded = load_cluttered_npz(tmp_path / "cluttered-train.npz")
    np.testing.assert_array_equal(images, data.reshape(5, 1, 96, 96))
    np.testing.assert_array_equal(loaded, labels)
    np.savez(tmp_path / "nhwc.npz", data=data.reshape(5, 96, 96, 1), labels=labels)
    np.testing.assert_array_equal(load_cluttered_npz(tmp_path / "nhwc.npz")[0], data.reshape(5, 1, 96, 96))


def test_missing_cluttered_file_raises_data_error_naming_it_and_the_prepare_command(tmp_path):
    with pytest.raises(DataError, match=r"cluttered-test.npz: file not found; run `infodrop cluttered prepare"):
        load_cluttered_npz(tmp_path / "cluttered-test.npz")
    with pytest.raises(DataError, match=r"no-mnist: folder not found; run `infodrop cluttered prepare"):
        prepare_cluttered(tmp_path / "no-mnist", tmp_path / "out", train_count=1, valid_count=1, test_count=1)
