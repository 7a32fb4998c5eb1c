"""CIFAR-10: official batches, safe unpickling, the preprocessing of process_cifar.py, npz layouts."""

import io
import pickle
import tarfile

import numpy as np
import pytest

from infodrop.data import (
    DataError,
    ZCAWhitening,
    load_cifar_batches,
    load_cifar_npz,
    prepare_cifar,
    preprocess_cifar,
    standardize_per_image,
)

TRAIN_NAMES = [f"data_batch_{i}" for i in range(1, 6)]


class _Python2StylePickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the official batches: every str and bytes object is a
    Python 2 ``str`` (BINSTRING opcode), so unpickling with encoding='bytes' yields bytes keys and
    numpy's dtype arguments as bytes."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(obj)

    dispatch[str] = save_python2_str
    dispatch[bytes] = save_python2_str


def _python2_pickle(obj):
    buffer = io.BytesIO()
    _Python2StylePickler(buffer, protocol=2).dump(obj)
    # Python 2's numpy named its array rebuilder numpy.core.multiarray._reconstruct.
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _official_batch(rng, count):
    return {
        b"batch_label": b"synthetic batch",
        b"labels": [int(v) for v in rng.integers(0, 10, count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        b"filenames": [b"img%d.png" % i for i in range(count)],
    }


def _write_official_batches(folder, count=6, seed=0):
    """cifar-10-batches-py in the official format: protocol-2 pickles of dicts with bytes keys."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in TRAIN_NAMES + ["test_batch"]:
        batch = _official_batch(rng, count)
        (folder / name).write_bytes(_python2_pickle(batch))
        batches[name] = batch
    return batches


def test_official_format_batches_load_as_nchw_floats_with_labels(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    batches = _write_official_batches(folder)
    for source in (folder, tmp_path):  # the batch folder, or the folder holding it (as process_cifar.py)
        splits = load_cifar_batches(source)
        images, labels = splits["train"]
        assert images.shape == (30, 3, 32, 32) and images.dtype == np.float32 and labels.dtype == np.int64
        expected = np.concatenate([batches[name][b"data"] for name in TRAIN_NAMES]).reshape(-1, 3, 32, 32)
        np.testing.assert_array_equal(images * 255, expected.astype(np.float32))
        np.testing.assert_array_equal(labels, np.concatenate([batches[name][b"labels"] for name in TRAIN_NAMES]))
        test_images, test_labels = splits["test"]
        np.testing.assert_array_equal(test_images * 255, batches["test_batch"][b"data"].reshape(-1, 3, 32, 32).astype(np.float32))
        np.testing.assert_array_equal(test_labels, batches["test_batch"][b"labels"])


def test_python2_pickle_emulation_matches_the_official_files_opcodes():
    import pickletools

    ops = {op.name for op, _, _ in pickletools.genops(_python2_pickle(_official_batch(np.random.default_rng(0), 2)))}
    assert "BINUNICODE" not in ops and "SHORT_BINUNICODE" not in ops and "SHORT_BINSTRING" in ops


def test_batches_load_from_the_official_tar_gz_archive(tmp_path):
    batches = _write_official_batches(tmp_path / "cifar-10-batches-py", count=3)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    images, labels = load_cifar_batches(archive)["test"]
    np.testing.assert_array_equal(images * 255, batches["test_batch"][b"data"].reshape(-1, 3, 32, 32).astype(np.float32))
    np.testing.assert_array_equal(labels, batches["test_batch"][b"labels"])


def test_python3_pickles_of_any_protocol_load(tmp_path):
    rng = np.random.default_rng(3)
    for protocol in (2, 4, 5):
        folder = tmp_path / f"p{protocol}"
        folder.mkdir()
        for name in TRAIN_NAMES + ["test_batch"]:
            batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
            (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        assert load_cifar_batches(folder)["train"][0].shape == (10, 3, 32, 32)


class _Malicious:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        # Unpickling this with the standard unpickler calls open(marker, 'w'), creating the file.
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_refused_without_running_its_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_official_batches(folder)
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Malicious(marker), b"labels": [0]}, protocol=2)
    (folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(DataError, match=r"data_batch_3: not a safe CIFAR-10 pickle \(refused to load global (_?io|builtins)\.open") as caught:
        load_cifar_batches(folder)
    assert str(folder / "data_batch_3") in str(caught.value)
    assert not marker.exists()
    # Control: the standard unpickler does run it, so the test above can fail.
    pickle.loads(payload)
    assert marker.exists()


def test_missing_batch_raises_data_error_naming_it_and_the_prepare_command(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_official_batches(folder)
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match=r"cifar-10-batches-py/test_batch: file not found; run `infodrop cifar prepare with source="):
        load_cifar_batches(folder)
    with pytest.raises(DataError, match=r"nothing-here: folder not found"):
        load_cifar_batches(tmp_path / "nothing-here")


def test_batch_with_wrong_shape_raises_data_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_official_batches(folder)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DataError, match=r"data_batch_1: 'data' must be a uint8 array N x 3072"):
        load_cifar_batches(folder)


def test_zca_whitened_training_set_has_identity_covariance():
    rng = np.random.default_rng(0)
    # Strongly correlated features with singular values of (X - m)/sqrt(N-1) between ~0.1 and ~10.
    rotation, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    features = rng.normal(size=(3000, 24)) @ (rotation * np.logspace(-1, 1, 24)).T + 5.0
    zca = ZCAWhitening(1e-5).fit(features)
    white = zca.transform(features)
    covariance = np.cov(white.astype(np.float64), rowvar=False)
    # Exactly U diag(S^2 / (S + 1e-5)^2) U^T: off by 2e-5 / S <= 2e-4 at S_min ~ 0.1, plus float32
    # rounding of the output (~1e-7 relative); 1e-3 leaves room for both.
    assert zca.singular_values_.min() > 0.05
    np.testing.assert_allclose(covariance, np.eye(24), atol=1e-3)
    np.testing.assert_allclose(white.mean(axis=0), 0.0, atol=1e-4)
    # ZCA (not just any whitening): W is symmetric, the whitened data stays closest to the input.
    np.testing.assert_allclose(zca.matrix_, zca.matrix_.T, atol=1e-10)


def test_zca_with_fewer_samples_than_features_whitens_within_the_data_span():
    rng = np.random.default_rng(6)
    features = rng.normal(size=(30, 50)) @ rng.normal(size=(50, 50))
    white = ZCAWhitening(1e-5).fit(features).transform(features)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(white.astype(np.float64), rowvar=False)))[::-1]
    # 30 centred samples span 29 directions: those become white (same 1e-3 argument as above),
    # the others, where the data has no variance, stay at zero instead of being blown up.
    np.testing.assert_allclose(eigenvalues[:29], 1.0, atol=1e-3)
    np.testing.assert_allclose(eigenvalues[29:], 0.0, atol=1e-6)


def test_zca_matrix_matches_process_cifar_svd_formulation():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12))
    zca = ZCAWhitening(1e-5).fit(features)
    # process_cifar.py: D = features^T centred, U S V = svd(D / sqrt(n - 1)), W = U diag(1/(S + reg)) U^T.
    centred = (features - features.mean(axis=0)).T / np.sqrt(len(features) - 1)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    expected = u @ np.diag(1.0 / (s + 1e-5)) @ u.T
    np.testing.assert_allclose(zca.matrix_, expected, rtol=1e-8, atol=1e-8)


def test_per_image_standardisation_gives_zero_mean_unit_sample_std_and_keeps_constant_images():
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 1, size=(10, 3, 4, 4))
    images[0] = 0.25  # constant image: std below eps, only centred
    out = standardize_per_image(images)
    flat = out.reshape(10, -1).astype(np.float64)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(flat[1:].std(axis=1, ddof=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(out[0], 0.0)


def test_preprocessed_training_set_is_white_except_along_the_constant_image():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(4000, 48)) @ rng.normal(size=(48, 48)) * 0.1 + 0.5
    train, test = preprocess_cifar(base.reshape(-1, 3, 4, 4)[:3000], base.reshape(-1, 3, 4, 4)[3000:])
    assert train.shape == (3000, 3, 4, 4) and test.shape == (1000, 3, 4, 4) and train.dtype == np.float32
    # Per-image centring removes the constant-image direction, so only its complement can be
    # white: project it out (P = I - 11^T/48) and compare with P (same 1e-3 argument as above).
    projector = np.eye(48) - np.full((48, 48), 1 / 48)
    covariance = np.cov(train.reshape(3000, -1).astype(np.float64), rowvar=False)
    np.testing.assert_allclose(projector @ covariance @ projector, projector, atol=1e-3)


def test_prepare_cifar_writes_npz_files_that_load_back(tmp_path):
    batches = _write_official_batches(tmp_path / "cifar-10-batches-py", count=4)
    paths = prepare_cifar(tmp_path / "cifar-10-batches-py", tmp_path / "datasets")
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == ["cifar10-test.npz", "cifar10-train.npz"]
    images, labels = load_cifar_npz(paths["train"])
    assert images.shape == (20, 3, 32, 32) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, np.concatenate([batches[name][b"labels"] for name in TRAIN_NAMES]))
    test_images, test_labels = load_cifar_npz(paths["test"])
    assert test_images.shape == (4, 3, 32, 32) and np.isfinite(test_images).all()
    # The unwhitened pixels of the test set stay beside the whitened images, for the KL heat maps.
    raw = np.load(paths["test"])["raw"]
    assert raw.dtype == np.uint8 and raw.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(raw.reshape(4, -1), batches["test_batch"][b"data"])


def test_original_authors_nhwc_npz_loads_as_nchw(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.normal(size=(7, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, 7)
    np.savez(tmp_path / "cifar10-train.npz", data=data, labels=labels)
    images, loaded_labels = load_cifar_npz(tmp_path / "cifar10-train.npz")
    np.testing.assert_array_equal(images, data.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(loaded_labels, labels)
    # One-hot labels (as the networks were fed) become class indices.
    np.savez(tmp_path / "one-hot.npz", data=data, labels=np.eye(10)[labels])
    np.testing.assert_array_equal(load_cifar_npz(tmp_path / "one-hot.npz")[1], labels)


def test_unknown_npz_layout_raises_data_error_naming_the_keys(tmp_path):
    np.savez(tmp_path / "odd.npz", X=np.zeros((2, 3, 32, 32)), Y=np.zeros(2))
    with pytest.raises(DataError, match=r"odd.npz: unknown layout: keys \['X', 'Y'\]"):
        load_cifar_npz(tmp_path / "odd.npz")


def test_missing_npz_raises_data_error_naming_it_and_the_prepare_command(tmp_path):
    with pytest.raises(DataError, match=r"cifar10-train.npz: file not found; run `infodrop cifar prepare"):
        load_cifar_npz(tmp_path / "datasets" / "cifar10-train.npz")


def test_truncated_npz_raises_data_error_naming_it(tmp_path):
    np.savez(tmp_path / "cifar10-test.npz", images=np.zeros((4, 3, 32, 32), np.float32), labels=np.zeros(4, np.int64))
    raw = (tmp_path / "cifar10-test.npz").read_bytes()
    (tmp_path / "cifar10-test.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cifar10-test.npz: not a readable npz file .*infodrop cifar prepare"):
        load_cifar_npz(tmp_path / "cifar10-test.npz")


def test_npz_holding_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "objects.npz", images=np.array([{"a": 1}], dtype=object), labels=np.zeros(1))
    with pytest.raises(DataError, match=r"objects.npz: not a readable npz file"):
        load_cifar_npz(tmp_path / "objects.npz")
