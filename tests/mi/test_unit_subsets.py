"""Sub-representation planes (issue 9, part 3): I(X;Z_S) over random subsets S of k units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infodrop.mi import gaussian_dropout_mi, unit_subset_mi
from infodrop.mi.subsets import choose_unit_subsets
from tests.mi._quadrature import toy_features, toy_mi_per_unit


@pytest.fixture(scope="module")
def eight_units():
    return toy_features(2000, 8, seed=8)


@pytest.mark.parametrize("k", [1, 2])
def test_subsets_of_independent_units_give_k_times_the_one_unit_information(eight_units, k):
    """Toy problem (f = 2X + 0.5, independent units), n = 8, variance 0.1, N = 2000:
    I(X;Z_S) = k I_1 for every S of k units; the mean over subsets is within 5 % (the
    estimate's standard error is ~0.03 nats per subset, 1.6 % of I_1 = 1.79)."""
    truth = k * toy_mi_per_unit(0.1)
    result = unit_subset_mi(eight_units, 0.1, k, subsets=8, noise_samples=10, seed=0, device="cpu")
    assert len(result.values) == 8
    assert abs(result.mean - truth) < 0.05 * truth
    assert result.saturated is False and not any(result.saturated_subsets)


def test_a_subset_carries_no_more_than_the_whole_layer(eight_units):
    """Data processing: I(X;Z_S) <= I(X;Z). Here the whole layer (8 x 1.79 = 14 nats) is
    saturated at log N = 7.6 while subsets of two units (3.6 nats) are not."""
    whole = gaussian_dropout_mi(eight_units, 0.1, noise_samples=10, bounds=False, device="cpu")
    pairs = unit_subset_mi(eight_units, 0.1, 2, subsets=4, device="cpu")
    assert whole.saturated and pairs.saturated is False and not any(pairs.saturated_subsets)
    assert max(pairs.values) < whole.i_xz_upper


def test_subsets_are_distinct_deterministic_and_all_of_them_when_few_exist():
    chosen = choose_unit_subsets(10, 3, 20, seed=4)
    assert len(set(chosen)) == 20 and all(len(s) == 3 and list(s) == sorted(s) for s in chosen)
    assert chosen == choose_unit_subsets(10, 3, 20, seed=4)
    assert chosen != choose_unit_subsets(10, 3, 20, seed=5)
    assert choose_unit_subsets(4, 2, 8, seed=0) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert choose_unit_subsets(5, 5, 3, seed=0) == [(0, 1, 2, 3, 4)]


def test_same_seed_gives_the_same_values_and_one_subset_has_zero_spread():
    features = np.random.default_rng(0).normal(size=(200, 5)) + 2.0
    a = unit_subset_mi(features, 0.3, 2, subsets=3, noise_samples=4, seed=9, device="cpu")
    b = unit_subset_mi(features, 0.3, 2, subsets=3, noise_samples=4, seed=9, device="cpu")
    assert a == b
    whole = unit_subset_mi(features, 0.3, 5, subsets=3, noise_samples=4, seed=9, device="cpu")
    assert len(whole.values) == 1 and whole.std == 0.0 and whole.mean == whole.values[0]
    assert math.isfinite(whole.mean)


@pytest.mark.parametrize(
    "options, name",
    [
        (dict(k=0), "k"),
        (dict(k=4), "k"),
        (dict(k=1.5), "k"),
        (dict(k=1, subsets=0), "subsets"),
        (dict(k=1, seed=-1), "seed"),
        (dict(k=1, noise_samples=0), "noise_samples"),
        (dict(k=1, variance=0.0), "variance"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(options, name):
    features = np.ones((10, 3))
    variance = options.pop("variance", 0.1)
    with pytest.raises(ValueError, match=name):
        unit_subset_mi(features, variance, device="cpu", **options)


def test_non_finite_features_raise_naming_features():
    features = np.ones((10, 3))
    features[2, 1] = np.nan
    with pytest.raises(ValueError, match="features"):
        unit_subset_mi(features, 0.1, 1, device="cpu")


def test_with_labels_each_subset_also_gives_its_information_about_the_labels():
    """The y coordinate of a sub-representation plane: I(Z_S;Y) of each subset is the mixture
    estimate of gaussian_dropout_mi on that subset's columns with the same noise, and by data
    processing it is at most H(Y) (up to its Monte Carlo error)."""
    from infodrop.mi.subsets import _subset_seed

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 300)
    features = np.log1p(np.exp(rng.normal(size=(300, 6)) + labels[:, None] * np.linspace(0.0, 1.5, 6)))
    result = unit_subset_mi(features, 0.2, 2, subsets=3, noise_samples=4, seed=1, device="cpu", labels=labels)
    for index, units in enumerate(result.subsets):
        alone = gaussian_dropout_mi(features[:, list(units)], 0.2, labels=labels, noise_samples=4,
                                    seed=_subset_seed(1, index), device="cpu", bounds=False)
        assert result.i_zy_values[index] == pytest.approx(alone.i_zy, rel=1e-12)
        assert result.values[index] == pytest.approx(alone.i_xz, rel=1e-12)
        assert result.i_zy_values[index] <= alone.h_y + 4 * alone.i_zy_stderr
    assert result.i_zy_mean == pytest.approx(np.mean(result.i_zy_values))
    assert unit_subset_mi(features, 0.2, 2, subsets=3, noise_samples=4, seed=1, device="cpu").i_zy_values is None
