"""KSG estimator (Kraskov, Stögbauer & Grassberger 2004, estimator 1; Ross 2014 for labels)."""

import math

import numpy as np
import pytest
import torch
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from infodrop.mi import ksg_mi
from infodrop.mi.ksg import _brute_radius_and_counts, _count_within, _kth_distance, _strictly_below

N = 2000


def _gaussian_pair(rho: float, n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)


# Calibration (50 data seeds, N = 1000, k = 3): the standard deviation of the KSG estimate was
# 0.026 nats at rho = 0, 0.032 at rho = 0.6 and 0.040 at rho = 0.9, with |mean - truth| <= 0.008
# (KSG's bias is small for a bivariate Gaussian). At N = 2000 the standard deviation is about
# 1/sqrt(2) of that: <= 0.029, so 0.1 nats is 3.5 standard deviations, and 0.075 at rho = 0 is
# 4 standard deviations (0.026 / sqrt 2 = 0.018).
@pytest.mark.parametrize("rho", [0.6, 0.9])
def test_ksg_recovers_the_mi_of_correlated_gaussians(rho):
    x, y = _gaussian_pair(rho)
    assert ksg_mi(x, y) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.1)


def test_ksg_of_independent_variables_is_near_zero():
    rng = np.random.default_rng(1)
    assert abs(ksg_mi(rng.standard_normal(N), rng.standard_normal(N))) < 0.075


def test_ksg_equals_sklearn_mutual_info_regression_in_one_dimension():
    # Same algorithm (KSG estimator 1, max-norm, k neighbours). scikit-learn rescales to unit
    # variance (as standardize=True does) and adds noise of relative size 1e-10, which moves the
    # estimate by far less than 1e-6 unless two distances tie to 1e-10 (probability ~0 here).
    x, y = _gaussian_pair(0.7, n=1000, seed=2)
    for k in (1, 3, 10):
        reference = mutual_info_regression(x[:, None], y, n_neighbors=k, random_state=0)[0]
        assert ksg_mi(x, y, k=k) == pytest.approx(reference, abs=1e-6)


def test_ksg_with_class_labels_equals_sklearn_mutual_info_classif():
    # Ross (2014) for discrete y, the algorithm of mutual_info_classif.
    x, y = _gaussian_pair(0.5, n=1000, seed=3)
    labels = np.digitize(y, [-1.0, 0.0, 1.0])
    labels[:3] = [7, 8, 8]  # a class seen once (dropped) and one seen twice (k = 1 within it)
    reference = mutual_info_classif(x[:, None], labels, n_neighbors=3, random_state=0)[0]
    assert ksg_mi(x, labels) == pytest.approx(reference, abs=1e-6)


def test_euclidean_and_chebyshev_coincide_in_one_dimension_per_variable():
    x, y = _gaussian_pair(0.8, n=300, seed=4)
    assert ksg_mi(x, y, metric="euclidean") == pytest.approx(ksg_mi(x, y, metric="chebyshev"), abs=1e-12)


def test_ksg_euclidean_recovers_the_mi_of_two_dimensional_gaussians():
    # Two independent coordinate pairs with rho = 0.8: I = -log(1 - 0.64) = 1.02 nats. Measured
    # over 20 data seeds at N = 1000: mean error -0.022 (KSG's known negative bias grows with
    # dimension), standard deviation 0.040 (both metrics); 0.15 = 0.022 + 3.2 standard deviations.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 2))
    y = 0.8 * x + 0.6 * rng.standard_normal((1000, 2))
    assert ksg_mi(x, y, metric="euclidean") == pytest.approx(-math.log(1 - 0.64), abs=0.15)
    assert ksg_mi(x, y) == pytest.approx(-math.log(1 - 0.64), abs=0.15)


def test_duplicated_samples_raise_a_clear_error_and_seeded_jitter_resolves_them():
    x, y = _gaussian_pair(0.5, n=200, seed=6)
    x, y = np.concatenate([x, np.repeat(x[:1], 5)]), np.concatenate([y, np.repeat(y[:1], 5)])
    with pytest.raises(ValueError, match="duplicates"):
        ksg_mi(x, y)
    value = ksg_mi(x, y, jitter=1e-10, seed=1)
    assert math.isfinite(value)
    assert ksg_mi(x, y, jitter=1e-10, seed=1) == value


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 200}, "k must be smaller"),
        ({"k": 0}, "k must be an integer"),
        ({"metric": "manhattan"}, "metric"),
        ({"jitter": -1.0}, "jitter"),
        ({"workers": 0}, "workers"),
        ({"method": "ball-tree"}, "method must be one of"),
        ({"method": "tree", "metric": "euclidean"}, "method='tree' needs metric='chebyshev'"),
    ],
)
def test_ksg_rejects_bad_options(kwargs, match):
    x, y = _gaussian_pair(0.5, n=200)
    with pytest.raises(ValueError, match=match):
        ksg_mi(x, y, **kwargs)


def test_ksg_rejects_mismatched_rows_and_non_finite_values():
    x, y = _gaussian_pair(0.5, n=200)
    with pytest.raises(ValueError, match="same samples"):
        ksg_mi(x, y[:-1])
    y[3] = np.inf
    with pytest.raises(ValueError, match="y contains 1 NaN/inf"):
        ksg_mi(x, y)


def _correlated(n, d, seed, lattice=False):
    rng = np.random.default_rng(seed)
    if lattice:
        # Integer coordinates: max-norm distances are small integers, so many neighbours sit
        # exactly at the k-th distance and the "strictly closer" counts are exercised.
        x = rng.integers(0, 4, size=(n, d)).astype(float)
        y = x + rng.integers(-1, 2, size=(n, d))
        return x, y
    x = rng.standard_normal((n, d))
    return x, 0.7 * x + 0.7 * rng.standard_normal((n, d))


def _tree_radius_and_counts(x, y, k):
    radius = _kth_distance(np.hstack([x, y]), k, "chebyshev", method="tree")
    below = _strictly_below(radius)
    return radius, _count_within(x, below, "chebyshev", method="tree"), _count_within(y, below, "chebyshev", method="tree")


@pytest.mark.parametrize("d, k", [(1, 3), (3, 1), (25, 3)])
def test_brute_force_finds_the_same_neighbours_as_the_kd_tree_in_low_and_high_dimension(d, k):
    """Joint dimension 2, 6 and 50: the same k-th distances (bit for bit) and the same counts,
    hence the same estimate."""
    x, y = _correlated(600, d, seed=d)
    tree = _tree_radius_and_counts(x, y, k)
    brute = _brute_radius_and_counts(x, y, k, "chebyshev", torch.device("cpu"))
    for a, b in zip(tree, brute):
        np.testing.assert_array_equal(a, b)
    assert ksg_mi(x, y, k=k, method="brute", device="cpu") == pytest.approx(ksg_mi(x, y, k=k, method="tree"), abs=1e-6)


def test_ties_at_the_kth_distance_are_counted_as_the_kd_tree_counts_them():
    # 300 points on the 4^3 integer lattice (y = x + a lattice step): max-norm distances are
    # small integers, so many neighbours lie exactly at the k-th distance; some points repeat,
    # and k = 8 keeps every k-th distance above 0.
    x, y = _correlated(300, 3, seed=11, lattice=True)
    k = 8
    tree = _tree_radius_and_counts(x, y, k)
    assert len(np.unique(tree[0])) <= 4  # a handful of distinct distances: ties everywhere
    brute = _brute_radius_and_counts(x, y, k, "chebyshev", torch.device("cpu"))
    for a, b in zip(tree, brute):
        np.testing.assert_array_equal(a, b)
    options = dict(k=k, standardize=False)
    assert ksg_mi(x, y, method="brute", device="cpu", **options) == ksg_mi(x, y, method="tree", **options)


def test_brute_force_and_kd_tree_agree_for_class_labels_in_high_dimension():
    x, _ = _correlated(500, 30, seed=12)
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    labels[:3] = [7, 8, 8]  # a class seen once and one seen twice
    assert ksg_mi(x, labels, method="brute", device="cpu") == pytest.approx(ksg_mi(x, labels, method="tree"), abs=1e-6)


def test_both_methods_refuse_k_duplicates():
    x, y = _correlated(100, 20, seed=13)
    x, y = np.vstack([x, np.repeat(x[:1], 4, 0)]), np.vstack([y, np.repeat(y[:1], 4, 0)])
    for method in ("tree", "brute"):
        with pytest.raises(ValueError, match="duplicates"):
            ksg_mi(x, y, method=method, device="cpu")


def test_auto_uses_brute_force_in_high_dimension_with_the_same_value():
    x, y = _correlated(400, 25, seed=14)
    assert ksg_mi(x, y, device="cpu") == ksg_mi(x, y, method="brute", device="cpu")
    assert ksg_mi(x, y, device="cpu") == pytest.approx(ksg_mi(x, y, method="tree"), abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: the CPU brute force is tested above")
def test_cuda_brute_force_finds_the_same_neighbours_as_the_kd_tree():
    x, y = _correlated(3000, 25, seed=15)
    tree = _tree_radius_and_counts(x, y, 3)
    brute = _brute_radius_and_counts(x, y, 3, "chebyshev", torch.device("cuda"))
    for a, b in zip(tree, brute):
        np.testing.assert_array_equal(a, b)
