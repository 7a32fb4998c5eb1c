"""The result of gaussian_dropout_mi in typed parts (estimate, band, bounds, diagnostics) with every
flat name of earlier versions kept, and one options object for how it computes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from infodrop.mi import GaussianDropoutMI, MixtureOptions, gaussian_dropout_mi, mixture_entropy

FLAT_NAMES = [
    "i_xz", "h_z", "h_z_given_x", "h_z_gaussian_upper", "i_xz_bounds", "h_z_bounds", "i_zy", "i_zy_bounds",
    "h_z_given_y", "i_xz_stderr", "i_xz_stderr_data", "i_zy_stderr", "i_xz_loo", "h_pattern", "n_patterns",
    "n_samples", "n_units", "noise_samples", "variance", "i_xz_lower", "i_xz_upper", "log_n", "i_xz_sensitivity",
    "saturated", "i_zy_lower", "i_zy_upper", "h_y", "i_zy_saturated", "i_xz_terms",
]  # fmt: skip


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(4)
    return np.maximum(rng.normal(size=(120, 3)) + 0.3, 0.0), rng.integers(0, 3, size=120)


@pytest.fixture(scope="module")
def result(problem):
    features, labels = problem
    return gaussian_dropout_mi(features, 0.3, labels=labels, noise_samples=3, seed=1, device="cpu", chunk_size=30)


def test_the_result_has_four_parts_and_every_flat_name_reads_its_part(result):
    assert [spec.name for spec in dataclasses.fields(GaussianDropoutMI)] == ["estimate", "band", "bounds", "diagnostics"]
    assert result.i_xz == result.estimate.i_xz == result.h_z - result.h_z_given_x
    assert result.saturated is result.band.saturated
    assert result.i_xz_bounds == result.bounds.i_xz_bounds
    assert result.n_samples == result.diagnostics.n_samples == 120
    assert list(result.to_dict()) == FLAT_NAMES
    for name in FLAT_NAMES[:-1]:
        assert result.to_dict()[name] == getattr(result, name)


def test_flat_names_are_read_only(result):
    with pytest.raises(AttributeError):
        result.i_xz = 0.0


def test_from_fields_rebuilds_the_result_and_refuses_unknown_names(result):
    assert GaussianDropoutMI.from_fields(**result.to_dict()) == result
    with pytest.raises(TypeError, match="i_xy"):
        GaussianDropoutMI.from_fields(i_xy=1.0, **result.to_dict())


def test_options_give_the_numbers_of_the_same_keywords(problem, result):
    features, labels = problem
    options = MixtureOptions(chunk_size=30, device="cpu")
    again = gaussian_dropout_mi(features, 0.3, labels=labels, noise_samples=3, seed=1, options=options)
    assert again == result
    assert mixture_entropy(features, 0.3, noise_samples=3, seed=1, options=options) == mixture_entropy(
        features, 0.3, noise_samples=3, seed=1, chunk_size=30, device="cpu"
    )


def test_a_setting_given_as_keyword_and_in_options_is_refused_naming_it(problem):
    features, _ = problem
    with pytest.raises(ValueError, match="chunk_size is given both"):
        gaussian_dropout_mi(features, 0.3, chunk_size=30, options=MixtureOptions(chunk_size=60, device="cpu"))
    with pytest.raises(ValueError, match="options must be a MixtureOptions"):
        gaussian_dropout_mi(features, 0.3, options={"device": "cpu"})
