"""Binning estimator (Saxe et al. 2018; Adilova et al. 2023, Sec. 4): one test per claim."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from infodrop.mi import binning_entropy, binning_mi


def _plugin_mi_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """sum_ab p(a, b) log(p(a, b) / (p(a) p(b))) from the contingency table."""
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1.0)
    joint = table / table.sum()
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    present = joint > 0
    return float(np.sum(joint[present] * np.log(joint[present] / outer[present])))


def test_binning_of_discrete_data_equals_the_plugin_mi_computed_by_hand():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 500)
    b = (a + (rng.random(500) < 0.2)) % 2  # dependent on a, not a function of it
    expected = _plugin_mi_by_hand(a, b)
    # With 3 bins over [0, 2] every integer value gets its own bin; labels are used as symbols.
    assert binning_mi(a.astype(float), b, bins=3) == pytest.approx(expected, abs=1e-12)
    # Binned as continuous values instead (3 bins for b over [0, 1] too) gives the same symbols.
    assert binning_mi(a.astype(float), b.astype(float), bins=3) == pytest.approx(expected, abs=1e-12)


def test_binning_mi_of_x_with_itself_is_its_binned_entropy_at_most_log_n():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 4))
    for bins in (2, 10, 1000):
        entropy = binning_entropy(x, bins=bins)
        assert binning_mi(x, x, bins=bins) == pytest.approx(entropy, abs=1e-12)
        assert entropy <= math.log(300) + 1e-12
    # Fine bins separate every row: the entropy of the empirical distribution, log N.
    assert binning_entropy(x, bins=100_000) == pytest.approx(math.log(300), abs=1e-12)


def test_a_number_of_bins_and_the_matching_bin_size_give_the_same_estimate():
    rng = np.random.default_rng(2)
    x = rng.uniform(-3.0, 5.0, size=(400, 3))
    labels = rng.integers(0, 4, 400)
    span = x.max() - x.min()
    for bins in (3, 7, 30):
        # The relative 1e-12 keeps the global maximum inside the last bin (bins=n closes it);
        # no other value of continuous data lies within 1e-12 of an edge.
        size = span / bins * (1 + 1e-12)
        assert binning_mi(x, labels, bins=bins) == binning_mi(x, labels, bin_size=size)
        assert binning_entropy(x, bins=bins) == binning_entropy(x, bin_size=size)


def test_bins_span_the_global_range_of_all_entries_not_each_column():
    rng = np.random.default_rng(3)
    small = rng.uniform(0.0, 1.0, 200)  # all in the first of 2 bins over the global range [0, 100]
    large = np.concatenate([[0.0, 100.0], rng.uniform(0.0, 100.0, 198)])
    x = np.stack([small, large], axis=1)
    fraction_high = np.mean(large >= 50.0)
    expected = -(fraction_high * math.log(fraction_high) + (1 - fraction_high) * math.log(1 - fraction_high))
    assert binning_entropy(x, bins=2) == pytest.approx(expected, abs=1e-12)


def test_integer_class_labels_are_symbols_whatever_their_values():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(300)
    labels = (x > 0).astype(np.int64)
    renamed = np.where(labels == 1, 1000, -7)
    assert binning_mi(x, renamed, bins=10) == pytest.approx(binning_mi(x, labels, bins=10), abs=1e-12)
    # y = 1[x > 0] is a function of the binned x when 0 is a bin edge: I = H(Y).
    symmetric = np.concatenate([x, [-4.0, 4.0]])
    labels = (symmetric > 0).astype(int)
    p = labels.mean()
    assert binning_mi(symmetric, labels, bins=10) == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)), abs=1e-12)


def test_binning_accepts_torch_tensors_like_numpy_arrays():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((100, 2)), rng.standard_normal(100)
    assert binning_mi(torch.from_numpy(x), torch.from_numpy(y), bins=5) == binning_mi(x, y, bins=5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bins": 10, "bin_size": 0.1}, "at most one of bins"),
        ({"bins": 0}, "bins"),
        ({"bin_size": -1.0}, "bin_size"),
        ({"bins": 2.5}, "bins"),
    ],
)
def test_binning_rejects_bad_bin_options(kwargs, match):
    x = np.arange(10.0)
    with pytest.raises(ValueError, match=match):
        binning_mi(x, x, **kwargs)


def test_binning_mi_works_without_options_with_30_bins_over_the_global_range():
    # Every other baseline runs as name_mi(x, y); binning's documented default is 30 bins.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 2))
    y = x[:, :1] + 0.5 * rng.standard_normal((500, 1))
    assert binning_mi(x, y) == binning_mi(x, y, bins=30)
    assert binning_mi(x, y) != binning_mi(x, y, bins=10)
    assert binning_entropy(x) == binning_entropy(x, bins=30)


def test_binning_rejects_mismatched_rows_and_non_finite_values():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="same samples"):
        binning_mi(x, np.arange(9.0), bins=3)
    with pytest.raises(ValueError, match="y has 9 entries"):
        binning_mi(x, np.arange(9), bins=3)
    bad = x.copy()
    bad[4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        binning_mi(bad, x, bins=3)
    with pytest.raises(ValueError, match="NaN"):
        binning_entropy(np.array([1.0, np.inf]), bins=3)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 60),
    bins=st.integers(1, 12),
    dims=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_binning_mi_is_symmetric_and_between_zero_and_the_smaller_entropy(seed, n, bins, dims):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims[0]))
    y = x[:, :1] + rng.standard_normal((n, dims[1]))
    forward, backward = binning_mi(x, y, bins=bins), binning_mi(y, x, bins=bins)
    assert forward == pytest.approx(backward, abs=1e-12)
    assert -1e-12 <= forward <= min(binning_entropy(x, bins=bins), binning_entropy(y, bins=bins)) + 1e-12


def test_coverage_is_one_minus_the_share_of_rows_alone_in_their_cell():
    from infodrop.mi import binning_coverage

    # 4 bins over [0, 4]: cells 0, 0, 1, 2, 3, 3 -> cells 1 and 2 hold one row each.
    rows = np.array([[0.1], [0.2], [1.5], [2.5], [3.6], [4.0]])
    assert binning_coverage(rows, bins=4) == pytest.approx(1 - 2 / 6)
    # Every row alone: coverage 0 and the plug-in entropy is exactly log N (it measures N).
    spread = np.arange(10.0).reshape(-1, 1)
    assert binning_coverage(spread, bins=10) == 0.0
    assert binning_entropy(spread, bins=10) == pytest.approx(math.log(10))
    assert binning_coverage(np.zeros((5, 2)), bins=3) == 1.0


def test_coverage_estimates_the_mass_of_the_seen_cells():
    """Good-Turing: 1 - f1/N estimates the probability of the cells the sample has seen. Uniform on
    K cells with N draws: the expected seen mass is 1 - (1 - 1/K)^N, checked over 200 samples."""
    from infodrop.mi import binning_coverage

    rng = np.random.default_rng(0)
    cells, n = 400, 300
    estimates, seen = [], []
    for _ in range(200):
        draws = rng.integers(0, cells, n)
        estimates.append(binning_coverage(draws.astype(float).reshape(-1, 1), bin_size=1.0))
        seen.append(len(np.unique(draws)) / cells)
    expected = 1 - (1 - 1 / cells) ** n
    assert np.mean(seen) == pytest.approx(expected, abs=0.01)  # the sampling itself
    # Good-Turing is unbiased for the seen mass up to O(1/N); 200 samples: s.e. of the mean ~ 0.002.
    assert np.mean(estimates) == pytest.approx(expected, abs=0.01)
