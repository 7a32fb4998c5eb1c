"""Issue 17, item 7: the estimators refuse or warn in one line where they used to return a wrong
number silently."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from infodrop.mi import binning_mi, doe_mi, gaussian_dropout_mi

pytestmark = pytest.mark.usefixtures("one_thread")


def _gaussian_pair(n: int, d: int, rho: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, rho * x + math.sqrt(1 - rho**2) * rng.normal(size=(n, d))


def test_doe_with_a_learning_rate_that_diverges_is_refused_naming_lr():
    x, y = _gaussian_pair(200, 1, 0.8)
    with pytest.raises(ValueError, match=r"doe_mi: training diverged .* with lr=1e\+30; use a smaller lr"):
        doe_mi(x, y, lr=1e30, steps=20, device="cpu")


def test_doe_on_a_y_that_varies_only_by_round_off_warns_in_one_line():
    from infodrop.mi import OutsideMeasuredRegimeWarning

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    y = 0.5 + 1e-12 * rng.normal(size=(200, 1))
    with pytest.warns(OutsideMeasuredRegimeWarning, match=r"doe_mi: y column\(s\) \[0\] vary by less than 1e-09 of their magnitude"):
        doe_mi(x, y, steps=20, device="cpu")


def test_binning_with_a_bin_size_that_overflows_the_bin_indices_is_refused_naming_bin_size():
    x, y = _gaussian_pair(500, 1, 0.9)
    with pytest.raises(ValueError, match=r"bin_size=1e-300 is too small for the range .* of x: .* use bin_size >= "):
        binning_mi(x, y, bin_size=1e-300)


def test_binning_pinned_by_n_warns_that_it_is_saturated_and_the_flag_says_so():
    from infodrop.mi import SaturatedEstimateWarning, binning_saturated

    x, y = _gaussian_pair(1000, 3, 0.9)
    with pytest.warns(SaturatedEstimateWarning, match=r"binning_mi: most binned rows sit in a cell of their own .* log N = 6.91"):
        value = binning_mi(x, y)
    assert isinstance(value, float) and value > 3 * 0.5 * -math.log(1 - 0.81)  # far above the truth 2.49
    assert binning_saturated(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        binning_mi(x[:, :1], y[:, :1], bins=4)  # 16 joint cells for 1000 rows: not saturated, no warning
    assert not binning_saturated(x[:, :1], y[:, :1], bins=4)


def test_gaussian_dropout_mi_of_features_whose_squares_overflow_is_refused_naming_the_rescale():
    f = np.random.default_rng(0).normal(size=(100, 4))
    with pytest.raises(ValueError, match=r"features reach .*e\+160 in magnitude.*divide features by"):
        gaussian_dropout_mi(f * 1e160, 0.25, device="cpu")
    assert math.isfinite(gaussian_dropout_mi(f * 1e50, 0.25, device="cpu").i_xz_upper)


# --------------------------------------------------------------------------- item 8: memory before allocating


def test_a_call_that_cannot_fit_in_memory_is_refused_before_allocating_naming_noise_samples():
    f = np.random.default_rng(0).normal(size=(1600, 8))
    # 1600 x 10**9 rows of Z: tens of terabytes, more than any machine has.
    with pytest.raises(ValueError, match=r"gaussian_dropout_mi: N=1,600 inputs x noise_samples=1,000,000,000 need about "
                                         r"[0-9.]+ GB on cpu, more than the [0-9.]+ GB available; lower noise_samples to at most"):
        gaussian_dropout_mi(f, 0.25, noise_samples=10**9, device="cpu")


def test_a_large_call_prints_the_cost_line_of_the_plane(monkeypatch, capsys):
    from infodrop.mi import dropout

    monkeypatch.setattr(dropout, "COST_LINE_PAIRS", 1000)  # what counts as large, scaled down to a small call
    gaussian_dropout_mi(np.random.default_rng(0).normal(size=(50, 3)), 0.25, noise_samples=2, device="cpu")
    assert capsys.readouterr().err == (
        "gaussian_dropout_mi: mixture estimate: N=50 inputs x S=2 samples x N components, d=3: 5.00e+03 pairs + 2.50e+03 bound pairs\n"
    )
