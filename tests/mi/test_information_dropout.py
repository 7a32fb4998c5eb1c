"""Closed-form information-dropout estimates (Achille & Soatto 2018; Adilova et al. 2023, App. A.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from infodrop.mi import information_dropout_izy_lower, information_dropout_mi


def _kl_by_quadrature(log_f, alpha, mu, sigma):
    """KL(N(log f, alpha^2) || N(mu, sigma^2)) by numerical integration of q log(q / p)."""
    q = stats.norm(log_f, alpha)
    p = stats.norm(mu, sigma)
    lo, hi = log_f - 12 * alpha, log_f + 12 * alpha
    return integrate.quad(lambda t: q.pdf(t) * (q.logpdf(t) - p.logpdf(t)), lo, hi, limit=200)[0]


def test_log_normal_kl_matches_equation_7_by_quadrature():
    """Eq. (7): KL of the normals of log z, summed over units, averaged over samples."""
    features = np.array([[0.5, 2.0, 1.3], [3.0, 0.7, 0.05]])
    alpha = np.array([[0.3, 0.6, 0.2], [0.5, 0.1, 0.65]])
    mu, sigma = 0.2, 1.5
    expected = np.mean(
        [sum(_kl_by_quadrature(math.log(f), a, mu, sigma) for f, a in zip(fr, ar)) for fr, ar in zip(features, alpha)]
    )
    result = information_dropout_mi(features, alpha, mu=mu, sigma=sigma)
    assert result.value == pytest.approx(expected, abs=1e-8)
    assert result.bound == "upper" and result.is_mutual_information and result.kind == "kl-upper-bound-on-i_xz"


def test_log_normal_kl_vanishes_when_q_equals_the_prior():
    features = np.full((4, 3), math.exp(0.4))
    result = information_dropout_mi(features, 0.7, mu=0.4, sigma=0.7)
    assert result.value == pytest.approx(0.0, abs=1e-12)


def test_log_normal_kl_clamps_log_f_at_1e_minus_4_and_says_so():
    features = np.array([[0.0, 1e-6, 1.0]])
    result = information_dropout_mi(features, 0.5)
    clamped = information_dropout_mi(np.array([[1e-4, 1e-4, 1.0]]), 0.5)
    assert result.value == pytest.approx(clamped.value, abs=1e-12)
    assert result.n_clamped == 2 and math.isfinite(result.value)


def test_log_uniform_kl_is_flagged_as_not_a_mutual_information():
    features = np.array([[1.0, 0.0, 2.0], [0.5, 0.3, 0.0]])
    alpha = np.array([[0.5, 0.2, 0.1], [0.3, 0.6, 0.4]])
    result = information_dropout_mi(features, alpha, prior="log-uniform")
    assert not result.is_mutual_information and result.bound == "none"
    # -log alpha summed over the nonzero units, averaged over samples (up to a constant).
    expected = np.mean([-(np.log(0.5) + np.log(0.1)), -(np.log(0.3) + np.log(0.6))])
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.n_zero == 2


def test_convolutional_maps_are_summed_over_all_units():
    rng = np.random.default_rng(0)
    features = torch.tensor(rng.uniform(0.1, 2, size=(3, 2, 4, 4)))
    alpha = torch.tensor(rng.uniform(0.1, 0.7, size=(3, 2, 4, 4)))
    flat = information_dropout_mi(features.reshape(3, -1), alpha.reshape(3, -1))
    conv = information_dropout_mi(features, alpha)
    assert conv.value == pytest.approx(flat.value, abs=1e-12) and conv.n_units == 32


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(features=np.array([[1.0, -0.5]])), "features"),
        (dict(features=np.array([[1.0, np.nan]])), "features"),
        (dict(alpha=np.array([[0.5, 0.0]])), "alpha"),
        (dict(alpha=np.array([[0.5, 0.2, 0.3]])), "alpha"),
        (dict(alpha=-1.0), "alpha"),
        (dict(sigma=0.0), "sigma"),
        (dict(prior="gaussian"), "prior"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(kwargs, name):
    args = dict(features=np.array([[1.0, 0.5]]), alpha=np.array([[0.5, 0.2]]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        information_dropout_mi(args.pop("features"), args.pop("alpha"), **args)


def test_izy_lower_bound_is_label_entropy_minus_cross_entropy():
    labels = np.array([0, 0, 1, 2])
    h_y = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    result = information_dropout_izy_lower(labels, 0.3)
    assert result.value == pytest.approx(h_y - 0.3, abs=1e-12)
    assert result.bound == "lower" and result.is_mutual_information
    per_sample = information_dropout_izy_lower(labels, np.array([0.1, 0.2, 0.3, 0.6]))
    assert per_sample.value == pytest.approx(h_y - 0.3, abs=1e-12)
    with pytest.raises(ValueError, match="cross_entropy"):
        information_dropout_izy_lower(labels, np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="cross_entropy"):
        information_dropout_izy_lower(labels, -0.1)


def test_log_normal_estimate_equals_the_training_kl_of_the_layer():
    """The information-plane number is the regulariser that training uses (infodrop.nn), summed
    over units and averaged over samples: same formula, same 1e-4 clamp."""
    from infodrop.nn.information import log_normal_kl

    rng = np.random.default_rng(1)
    features = torch.tensor(rng.uniform(0, 3, size=(5, 7)))
    features[0, 0] = 0.0
    alpha = torch.tensor(rng.uniform(0.05, 0.7, size=(5, 7)))
    training = log_normal_kl(features, alpha, 0.3, 1.2).sum(1).mean()
    ours = information_dropout_mi(features, alpha, mu=0.3, sigma=1.2)
    assert ours.value == pytest.approx(float(training), abs=1e-12)


def test_standard_error_of_the_kl_bound_covers_its_population_mean_at_the_normal_rate():
    """The plane's band for the KL bound: its standard error is sd / sqrt(N) of the per-sample KL,
    and mean +- 2 standard errors holds the population mean of the bound in about 95% of data sets.
    With log f ~ N(m, s^2) and a constant alpha, the mean of Eq. (7) is known in closed form:
    log(sigma / alpha) + (alpha^2 + s^2 + (m - mu)^2) / (2 sigma^2) - 1/2 per unit."""
    from infodrop.nn.information import log_normal_kl

    m, s, alpha, mu, sigma, units, n = 0.3, 0.8, 0.4, 0.0, 1.0, 3, 100
    truth = units * (math.log(sigma / alpha) + (alpha**2 + s**2 + (m - mu) ** 2) / (2 * sigma**2) - 0.5)
    rng = np.random.default_rng(5)
    hits, trials = 0, 400
    for trial in range(trials):
        features = np.exp(rng.normal(m, s, size=(n, units)))
        result = information_dropout_mi(features, alpha, mu=mu, sigma=sigma)
        if trial == 0:
            per_sample = log_normal_kl(torch.tensor(features), torch.full((n, units), alpha, dtype=torch.float64), mu, sigma).sum(1)
            assert result.stderr == pytest.approx(float(per_sample.std()) / math.sqrt(n), rel=1e-9)
        hits += abs(result.value - truth) <= 2 * result.stderr
    # 95.4% nominal; the binomial sd of the rate over 400 data sets is 1.0%: 3 sd either side.
    assert 0.924 <= hits / trials <= 0.985


def test_izy_lower_bound_has_the_standard_error_of_the_cross_entropy():
    labels = np.array([0, 1, 0, 1, 2])
    ce = np.array([0.1, 0.5, 0.2, 0.9, 1.3])
    result = information_dropout_izy_lower(labels, ce)
    assert result.stderr == pytest.approx(ce.std(ddof=1) / math.sqrt(5), rel=1e-12)
    assert information_dropout_izy_lower(labels, 0.4).stderr is None  # a scalar carries no spread
