"""PlaneSettings owns every rule on how a plane is recorded; the tracker and the recipes ask it."""

from __future__ import annotations

import pytest

from infodrop.plane import PlaneSettings


def test_the_sample_rule_is_all_inputs_or_at_least_two():
    assert PlaneSettings(max_samples=0).max_samples is None and PlaneSettings(max_samples=None).max_samples is None
    assert PlaneSettings(max_samples=2).max_samples == 2
    with pytest.raises(ValueError, match=r"max_samples must be 0 \(all inputs\) or at least 2, got 1"):
        PlaneSettings(max_samples=1)


def test_errors_name_the_entry_the_caller_exposes():
    names = {"max_samples": "plane_samples", "formats": "plot_formats", "subsets": "plane_subsets"}
    with pytest.raises(ValueError, match=r"plane_samples must be 0 \(all inputs\) or at least 2"):
        PlaneSettings(max_samples=1, names=names)
    with pytest.raises(ValueError, match=r"plot_formats must be a non-empty subset of \['png', 'pdf', 'svg'\]"):
        PlaneSettings(formats=("gif",), names=names)
    with pytest.raises(ValueError, match=r"plane_subsets\[1\]"):
        PlaneSettings(subsets=(2, 0), names=names)


def test_estimators_bins_and_counts_are_checked_and_stored_as_tuples():
    settings = PlaneSettings(estimators=["binning"], bins=[30, 10], subsets=[4, 1, 4])
    assert settings.estimators == ("binning",) and settings.bins == (30, 10) and settings.subsets == (1, 4)
    with pytest.raises(ValueError, match="estimators must be a non-empty subset"):
        PlaneSettings(estimators=("ksg",))
    with pytest.raises(ValueError, match="bins is empty but estimators include 'binning'"):
        PlaneSettings(bins=())
    assert PlaneSettings(estimators=("auto",), bins=()).bins == ()
    for name in ("noise_samples", "mc_draws", "batch_size", "subset_draws"):
        with pytest.raises(ValueError, match=name):
            PlaneSettings(**{name: 0})
    with pytest.raises(ValueError, match="bounds must be true or false"):
        PlaneSettings(bounds="yes")


def test_binary_dropout_keeps_binning_only_and_subsets_need_gaussian_dropout_within_the_layer():
    # Theorems 3.1/3.2: I(X;Z) of binary dropout is infinite, so there is no 'auto' estimate.
    assert PlaneSettings().for_layer("binary", 8, "drop").estimators == ("binning",)
    with pytest.raises(ValueError, match="binary dropout has no 'auto' estimator"):
        PlaneSettings(estimators=("auto",)).for_layer("binary", 8, "drop")
    with pytest.raises(ValueError, match=r"subsets=\[1\] needs dropout=gaussian"):
        PlaneSettings(subsets=(1,)).for_layer("information", 8, "drop")
    with pytest.raises(ValueError, match=r"subsets=\[1, 9\]: \[9\] exceed the 8 units of the tracked layer 'drop'"):
        PlaneSettings(subsets=(1, 9)).for_layer("gaussian", 8, "drop")
    assert PlaneSettings(subsets=(1, 8)).for_layer("gaussian", 8, "drop").subsets == (1, 8)


def test_the_tracker_takes_settings_or_their_keywords_but_not_both(tmp_path):
    import torch
    from torch import nn

    from infodrop.nn import GaussianDropout
    from infodrop.plane import InformationPlane

    model = nn.Sequential(nn.Linear(3, 4), GaussianDropout(0.3), nn.Linear(4, 2))
    data = (torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1]))
    with pytest.raises(ValueError, match="not both"):
        InformationPlane(model, data, settings=PlaneSettings(), bins=(4,), output=tmp_path / "p.json")
    with pytest.raises(ValueError, match=r"unknown plane setting\(s\) \['bin'\]"):
        InformationPlane(model, data, bin=(4,), output=tmp_path / "p.json")
