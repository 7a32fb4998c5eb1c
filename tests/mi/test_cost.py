"""The cost line printed before an information plane's first record (issue 9, Scale)."""

from __future__ import annotations

import math

import pytest

from infodrop.mi import mixture_cost


def test_pairs_are_samples_times_components_and_bound_pairs_are_components_squared():
    cost = mixture_cost(60_000, 256, 10, bounds=True)
    assert cost.pairs == 60_000 * 10 * 60_000 and cost.bound_pairs == 60_000**2
    assert cost.seconds is None and "3.60e+10 pairs" in str(cost)
    assert mixture_cost(1000, 8, 5).bound_pairs == 0


def test_calibration_gives_a_positive_time_that_scales_with_the_pairs_and_the_ranks():
    one = mixture_cost(20_000, 16, 4, device="cpu", calibrate=True)
    assert one.seconds > 0 and math.isfinite(one.seconds) and one.pairs_per_second > 0
    assert one.seconds == pytest.approx(one.pairs / one.pairs_per_second)
    assert "expected ~" in str(one) and "pairs/s" in str(one)
    split = mixture_cost(20_000, 16, 4, device="cpu", calibrate=True, world_size=4, bounds=True, n_classes=3)
    assert split.bound_pairs_per_second > 0 and "over 4 ranks" in str(split)


@pytest.mark.parametrize(
    "options, name",
    [
        (dict(n=0, d=3), "n"),
        (dict(n=10, d=0), "d"),
        (dict(n=10, d=3, noise_samples=0), "noise_samples"),
        (dict(n=10, d=3, world_size=0), "world_size"),
        (dict(n=10, d=3, n_classes=-1), "n_classes"),
        (dict(n=10, d=3, calibrate="yes"), "calibrate"),
        (dict(n=10, d=3, dtype="float16"), "dtype"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(options, name):
    with pytest.raises(ValueError, match=name):
        mixture_cost(**options)
