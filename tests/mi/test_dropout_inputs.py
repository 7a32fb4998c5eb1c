"""Validation at the door and the treatment of exactly-zero (ReLU) units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infodrop.mi import gaussian_dropout_mi


GOOD = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(features=np.array([[1.0, np.nan], [1.0, 2.0]])), "features"),
        (dict(features=np.array([[1.0, np.inf], [1.0, 2.0]])), "features"),
        (dict(features=np.ones((2, 3, 4))), "features"),
        (dict(features=np.ones((3, 0))), "features"),
        (dict(features=np.ones((0, 3))), "features"),
        (dict(features=np.array([["a", "b"]])), "features"),
        (dict(variance=0.0), "variance"),
        (dict(variance=-0.1), "variance"),
        (dict(variance=float("nan")), "variance"),
        (dict(labels=[0, 1]), "labels"),
        (dict(labels=[[0, 1, 1], [0, 1, 1]]), "labels"),
        (dict(labels=[0.5, 1.0, 2.0]), "labels"),
        (dict(noise_samples=0), "noise_samples"),
        (dict(noise_samples=2.5), "noise_samples"),
        (dict(seed=-1), "seed"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(device="not-a-device"), "device"),
        (dict(dtype="float16"), "dtype"),
        pytest.param(
            dict(device="cuda"),
            "device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
        ),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(kwargs, name):
    args = dict(features=GOOD, variance=0.1)
    args.update(kwargs)
    features = args.pop("features")
    variance = args.pop("variance")
    with pytest.raises(ValueError, match=name):
        gaussian_dropout_mi(features, variance, **args)


def test_tensor_and_list_inputs_are_accepted_and_agree():
    from_array = gaussian_dropout_mi(GOOD, 0.1, noise_samples=3)
    from_tensor = gaussian_dropout_mi(torch.tensor(GOOD, dtype=torch.float32), 0.1, noise_samples=3)
    from_list = gaussian_dropout_mi(GOOD.tolist(), 0.1, noise_samples=3)
    assert from_array == from_list
    # float32 input is promoted to float64; its rounding changes the numbers by ~1e-7 only.
    assert from_tensor.i_xz == pytest.approx(from_array.i_xz, abs=1e-5)


def _relu_features(n, d, seed):
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(size=(n, d)) + 0.3, 0.0)


def test_zero_units_are_finite_and_follow_the_pattern_decomposition():
    """Theorem 3.3 / A.4: I(X;Z) = H(B) + sum_b p(b) I(X; Z_b | B = b), B the pattern of nonzero
    units. The bounds are exact functions of the features, so the decomposition must hold for them
    to rounding; the MC estimate within 4 standard errors of the per-pattern estimates."""
    features = _relu_features(400, 2, seed=0)  # 4 patterns, all populated
    variance = 0.2
    full = gaussian_dropout_mi(features, variance, noise_samples=4)
    assert full.n_patterns == 4
    for value in (full.i_xz, full.h_z, full.h_z_given_x, full.h_z_gaussian_upper, *full.i_xz_bounds):
        assert math.isfinite(value)
    nonzero = features != 0
    patterns, inverse, counts = np.unique(nonzero, axis=0, return_inverse=True, return_counts=True)
    p = counts / counts.sum()
    h_pattern = float(-(p * np.log(p)).sum())
    assert full.h_pattern == pytest.approx(h_pattern, abs=1e-12)
    lower = upper = mc = h_pattern
    variance_mc = full.i_xz_stderr**2
    for b, units in enumerate(patterns):
        group = features[inverse.ravel() == b][:, units]
        if group.shape[1] == 0 or group.shape[0] == 1:
            continue  # a point mass or a single component: I(X; Z_b | b) = 0
        part = gaussian_dropout_mi(group, variance, noise_samples=4)
        lower += p[b] * part.i_xz_bounds[0]
        upper += p[b] * part.i_xz_bounds[1]
        mc += p[b] * part.i_xz
        variance_mc += (p[b] * part.i_xz_stderr) ** 2
    assert full.i_xz_bounds == pytest.approx((lower, upper), abs=1e-9)
    assert abs(full.i_xz - mc) < 4 * math.sqrt(variance_mc)


def test_relu_features_with_all_distinct_patterns_give_log_n():
    """Every input has its own zero pattern: Z reveals the input, I(X;Z) = H(B) = log N exactly."""
    n = 16
    features = np.array([[(i >> k) & 1 for k in range(4)] for i in range(n)], dtype=float) * 1.7
    features[0, 0] = 0.0  # the all-zero row is a point mass at 0; still a valid input
    result = gaussian_dropout_mi(features, 0.3, noise_samples=3)
    assert result.n_patterns == n
    assert result.i_xz == pytest.approx(math.log(n), abs=1e-12)
    assert result.i_xz_bounds == pytest.approx((math.log(n), math.log(n)), abs=1e-12)
    assert result.i_xz_loo is None  # no pattern-mate to leave one out against


def test_softplus_features_have_a_single_pattern():
    x = np.random.default_rng(1).normal(size=(50, 3))
    result = gaussian_dropout_mi(np.log1p(np.exp(x)), 0.1, noise_samples=2)
    assert result.n_patterns == 1 and result.h_pattern == 0.0
