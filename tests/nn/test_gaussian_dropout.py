"""Gaussian dropout (Srivastava et al. 2014)."""

import math

import pytest
import torch

from infodrop.nn import GaussianDropout, gaussian_dropout


def test_from_rate_has_variance_p_over_1_minus_p():
    assert GaussianDropout.from_rate(0.2).variance == pytest.approx(0.25)
    assert GaussianDropout.from_rate(0.5).variance == pytest.approx(1.0)


def test_noise_has_mean_one_and_the_given_variance():
    torch.manual_seed(0)
    n, variance = 400_000, 0.25
    noise = GaussianDropout(variance).train()(torch.ones(n, dtype=torch.float64))
    # SE of the mean sqrt(0.25/n) = 7.9e-4; SE of the variance sqrt(2 * 0.25^2 / n) = 5.6e-4; allow ~5 SE.
    assert noise.mean().item() == pytest.approx(1.0, abs=4e-3)
    assert noise.var().item() == pytest.approx(variance, abs=3e-3)


def test_from_rate_noise_has_standard_deviation_sqrt_p_over_1_minus_p():
    # Regression: the reference code used p/(1-p) as the standard deviation.
    torch.manual_seed(1)
    noise = GaussianDropout.from_rate(0.4)(torch.ones(400_000, dtype=torch.float64))
    # sqrt(2/3) = 0.816 vs the wrong 0.667; SE of the std is 0.816/sqrt(8e5) = 9e-4.
    assert noise.std().item() == pytest.approx(math.sqrt(0.4 / 0.6), abs=5e-3)


def test_evaluation_mode_returns_the_input():
    layer = GaussianDropout(0.5).eval()
    x = torch.randn(5, 3)
    assert layer(x) is x
    assert not layer.training


def test_mc_mode_draws_noise_at_evaluation():
    torch.manual_seed(0)
    layer = GaussianDropout(0.5, mc=True).eval()
    x = torch.randn(5, 3)
    assert not torch.equal(layer(x), x)


def test_pure_function_is_identity_when_not_training():
    x = torch.randn(3)
    assert gaussian_dropout(x, 0.3, False) is x


@pytest.mark.parametrize("variance", [0.0, -1.0, float("inf")])
def test_variance_must_be_positive(variance):
    with pytest.raises(ValueError, match="variance"):
        GaussianDropout(variance)
    layer = GaussianDropout(1.0)
    with pytest.raises(ValueError, match="variance"):
        layer.variance = variance


@pytest.mark.parametrize("p", [0.0, 1.0, 1.5])
def test_rate_must_lie_in_the_open_unit_interval(p):
    with pytest.raises(ValueError, match="p"):
        GaussianDropout.from_rate(p)


def test_extra_repr_shows_the_variance():
    assert "variance=0.25" in repr(GaussianDropout.from_rate(0.2))
