"""Gaussian total correlation (Achille & Soatto, Section 8): closed form and the original ``normal_tc``."""

from __future__ import annotations

import numpy as np
import pytest

from infodrop.mi import gaussian_total_correlation


def test_total_correlation_of_a_bivariate_gaussian_is_minus_quarter_log_one_minus_rho_squared():
    rho, count = 0.8, 100_000
    rng = np.random.default_rng(1)
    samples = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=count)
    truth = -0.25 * np.log(1 - rho**2)
    # The estimate moves by d/drho = rho / (2 (1 - rho^2)) = 1.11 per unit of rho, whose
    # standard error is (1 - rho^2) / sqrt(count) = 0.0011: SE of the estimate 0.0013; 5 SE.
    assert abs(gaussian_total_correlation(samples) - truth) < 0.0065


def test_total_correlation_matches_the_original_normal_tc_formula():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    covariance = np.cov(data, rowvar=False)
    original = -0.5 * np.linalg.slogdet(np.diag(1.0 / np.diag(covariance)) @ covariance)[1] / covariance.shape[0]
    # Both in float64 on a well-conditioned 6 x 6 matrix: agreement to rounding.
    assert gaussian_total_correlation(data) == pytest.approx(original, rel=1e-9)


def test_total_correlation_of_fewer_samples_than_variables_is_refused_as_singular():
    samples = np.random.default_rng(3).normal(size=(5, 8))
    with pytest.raises(ValueError, match="singular"):
        gaussian_total_correlation(samples)
