"""IDX files (MNIST / Fashion-MNIST format)."""

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infodrop.data import DataError, fashion_mnist_folder, load_idx_folder, read_idx, write_idx

HINT = "run `infodrop mnist prepare`"


@pytest.mark.parametrize("name", ["digits-idx3-ubyte", "digits-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_raw_and_gzip(tmp_path, name, dtype):
    array = (np.random.default_rng(0).normal(size=(5, 7, 3)) * 50).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)


def test_idx_header_is_big_endian_magic_and_sizes(tmp_path):
    path = write_idx(tmp_path / "labels-idx1-ubyte", np.arange(3, dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 0, 1, 2])


def test_truncated_idx_file_raises_data_error_naming_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated.*infodrop mnist prepare") as caught:
        read_idx(path, hint=HINT)
    assert str(path) in str(caught.value)


def test_truncated_gzip_stream_raises_data_error_naming_file(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="corrupt gzip") as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


def test_file_without_idx_magic_raises_data_error(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(gzip.compress(b"hello world, this is not an IDX file"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def _write_folder(folder, compressed, counts=(12, 5)):
    rng = np.random.default_rng(1)
    suffix = ".gz" if compressed else ""
    arrays = {}
    for prefix, count in zip(("train", "t10k"), counts):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("compressed", [False, True])
def test_idx_folder_gives_float_images_in_unit_interval_nchw(tmp_path, compressed):
    arrays = _write_folder(tmp_path, compressed)
    splits = load_idx_folder(tmp_path)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = splits[split]
        raw_images, raw_labels = arrays[prefix]
        assert images.dtype == np.float32 and images.shape == (len(raw_images), 1, 28, 28)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images[:, 0] * 255, raw_images.astype(np.float32))
        np.testing.assert_array_equal(labels, raw_labels)


def test_missing_idx_file_raises_data_error_naming_it_and_the_command(tmp_path):
    _write_folder(tmp_path, compressed=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\[\.gz\]: file not found; run `infodrop mnist prepare`"):
        load_idx_folder(tmp_path, hint=HINT)


def test_missing_idx_folder_raises_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: folder not found"):
        load_idx_folder(tmp_path / "nowhere")


def test_mismatched_image_and_label_counts_raise_data_error(tmp_path):
    _write_folder(tmp_path, compressed=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: has 3 labels but train-images-idx3-ubyte has 12 images"):
        load_idx_folder(tmp_path)


def test_real_fashion_mnist_has_60000_train_10000_test_images_in_10_classes():
    folder = fashion_mnist_folder()
    if folder is None:
        pytest.skip("Fashion-MNIST not installed at /usr/share/datasets/fashion-mnist")
    splits = load_idx_folder(folder)
    (train_images, train_labels), (test_images, test_labels) = splits["train"], splits["test"]
    assert train_images.shape == (60000, 1, 28, 28) and test_images.shape == (10000, 1, 28, 28)
    assert train_images.dtype == np.float32 and 0.0 <= train_images.min() and train_images.max() <= 1.0
    assert set(np.unique(train_labels)) == set(range(10)) == set(np.unique(test_labels))
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    assert (np.bincount(train_labels) == 6000).all() and (np.bincount(test_labels) == 1000).all()


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
    compressed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_idx_round_trip_holds_for_any_shape_and_dtype(tmp_path_factory, shape, dtype, compressed, seed):
    array = (np.random.default_rng(seed).normal(size=shape) * 100).astype(dtype)
    path = tmp_path_factory.mktemp("idx") / ("a.gz" if compressed else "a")
    np.testing.assert_array_equal(read_idx(write_idx(path, array)), array)
