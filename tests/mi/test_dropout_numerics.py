"""Numerics of the Gaussian-dropout estimator: each piece against a brute-force or library
computation, the float32 cancellation regression, determinism, and devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.covariance import LedoitWolf

from infodrop.mi import gaussian_dropout_mi
from infodrop.mi.bounds import ledoit_wolf, pairwise_bounds
from infodrop.mi.mixture import NoiseSource, mixture_pass, prepare_components


def _brute_log_density(features: np.ndarray, variance: float, z: np.ndarray) -> np.ndarray:
    """log N(z_m; f_j, variance diag f_j^2) for all rows m and components j, directly in float64,
    from the differences (z - f) / f (no expansion). Zero units: only pattern-mates count."""
    nonzero = features != 0
    out = np.full((z.shape[0], features.shape[0]), -np.inf)
    for j, f in enumerate(features):
        same = np.all((z != 0) == nonzero[j], axis=1)
        u = nonzero[j]
        std = math.sqrt(variance) * np.abs(f[u])
        quad = (((z[same][:, u] - f[u]) / std) ** 2).sum(1)
        out[same, j] = -0.5 * quad - np.log(std).sum() - 0.5 * u.sum() * math.log(2 * math.pi)
    return out


def _samples(features: np.ndarray, variance: float, noise_samples: int, seed: int) -> np.ndarray:
    eps = NoiseSource(features.shape[0], features.shape[1], noise_samples, seed, torch.device("cpu"))
    eps = eps.eps(0, features.shape[0]).numpy()
    return np.repeat(features, noise_samples, axis=0) * (1 + math.sqrt(variance) * eps)


def test_h_z_given_x_uses_the_standard_deviation_sqrt_variance_times_f():
    """h(Z|X) = sum_k 1/2 log(2 pi e variance f_k^2): the entropy of N(f, variance f^2), checked
    against scipy's normal entropy with scale = sqrt(variance) |f| (the reference used the
    variance where the standard deviation belongs, off by log(sigma) per unit)."""
    from scipy.stats import norm

    features = np.array([[0.5, -3.0], [2.0, 0.01]])
    variance = 0.3
    expected = np.mean([sum(norm(scale=math.sqrt(variance) * abs(v)).entropy() for v in row) for row in features])
    result = gaussian_dropout_mi(features, variance, noise_samples=2)
    assert result.h_z_given_x == pytest.approx(expected, abs=1e-12)


def test_mixture_log_density_matches_brute_force_over_all_components():
    """Every one of N = 1100 > 1000 components enters (the reference truncated to 1000), across
    several row chunks and column tiles."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(1100, 2)) * 2 + 0.3
    variance = 0.2
    comp = prepare_components(torch.tensor(features), variance)
    result = mixture_pass(comp, 1, seed=5, chunk_rows=300)
    z = _samples(features, variance, 1, seed=5)
    brute = -(logsumexp(_brute_log_density(features, variance, z), axis=1) - math.log(1100))
    np.testing.assert_allclose(result.neg_log_p.numpy(), brute, rtol=0, atol=1e-9)


def test_float32_cancellation_regression_features_spanning_six_orders_of_magnitude():
    """f spans 1e-3..1e3 across units and inputs, variance 0.01 (small variance is the hard case:
    the expanded quadratic cancels terms of size ~2d/variance down to ~d).
    float64 (default): agrees with the direct (z - f)/f evaluation to 1e-9 nats.
    float32: the exact self term keeps the dominant component exact; the other terms carry a
    relative error ~ eps32 * 2d(1 + 4 sqrt(v))^2 / v ~ 1.2e-7 * 16 * 2 / 0.01 ~ 4e-4 nats, so 1e-2
    is a safe bound that a scale-dependent cancellation (errors ~ f_max/f_min * eps32) would
    exceed by orders of magnitude."""
    rng = np.random.default_rng(1)
    n, d, variance = 300, 8, 0.01
    scales = 10.0 ** rng.uniform(-3, 3, size=(1, d))
    features = scales * np.exp(rng.normal(scale=0.05, size=(n, d))) * rng.choice([-1, 1], size=(n, d))
    z = _samples(features, variance, 2, seed=9)
    brute = -(logsumexp(_brute_log_density(features, variance, z), axis=1) - math.log(n))
    comp = prepare_components(torch.tensor(features), variance)
    exact = mixture_pass(comp, 2, seed=9, dtype=torch.float64).neg_log_p.numpy()
    fast = mixture_pass(comp, 2, seed=9, dtype=torch.float32).neg_log_p.numpy()
    assert np.all(np.isfinite(exact)) and np.all(np.isfinite(fast))
    np.testing.assert_allclose(exact, brute, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast, brute, rtol=0, atol=1e-2)


def _brute_pairwise(features, variance, labels=None):
    """Kolchinsky-Tracey bounds by explicit per-pair formulas of the KL divergence and the
    Bhattacharyya distance of diagonal Gaussians (on the nonzero units; inf across patterns)."""
    n = features.shape[0]
    nonzero = features != 0

    def parts(i, j):
        if not np.array_equal(nonzero[i], nonzero[j]):
            return np.inf, np.inf
        u = nonzero[i]
        s1, s2 = variance * features[i, u] ** 2, variance * features[j, u] ** 2
        diff2 = (features[i, u] - features[j, u]) ** 2
        kl = 0.5 * np.sum(s1 / s2 + diff2 / s2 - 1 + np.log(s2 / s1))
        s = (s1 + s2) / 2
        bd = np.sum(diff2 / (8 * s) + 0.5 * np.log(s / np.sqrt(s1 * s2)))
        return kl, bd

    kl = np.zeros((n, n))
    bd = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            kl[i, j], bd[i, j] = parts(i, j)
    entropy = np.array(
        [0.5 * np.sum(np.log(2 * np.pi * np.e * variance * features[i, nonzero[i]] ** 2)) for i in range(n)]
    )
    out = {
        "h_upper": entropy.mean() - np.mean(logsumexp(-kl, axis=1) - math.log(n)),
        "h_lower": entropy.mean() - np.mean(logsumexp(-bd, axis=1) - math.log(n)),
    }
    if labels is not None:
        same = labels[:, None] == labels[None, :]
        count = same.sum(1)
        out["h_given_y_upper"] = entropy.mean() - np.mean(logsumexp(np.where(same, -kl, -np.inf), axis=1) - np.log(count))
        out["h_given_y_lower"] = entropy.mean() - np.mean(logsumexp(np.where(same, -bd, -np.inf), axis=1) - np.log(count))
    return out


@pytest.mark.parametrize("with_zeros", [False, True])
def test_pairwise_kl_and_bhattacharyya_bounds_match_brute_force(with_zeros):
    rng = np.random.default_rng(2)
    features = rng.normal(size=(23, 3)) * np.exp(rng.normal(size=(23, 3)))
    if with_zeros:
        features = np.maximum(features, 0)  # ReLU: several zero patterns
    labels = rng.integers(0, 3, size=23)
    comp = prepare_components(torch.tensor(features), 0.25)
    # Small blocks: several row chunks and 5 x 5 Bhattacharyya blocks (partial last block,
    # mirrored off-diagonal blocks) are all exercised.
    ours = pairwise_bounds(comp, labels=torch.tensor(labels), chunk_rows=5, pair_block=5)
    default = pairwise_bounds(comp, labels=torch.tensor(labels))
    for key in ours:
        assert default[key] == pytest.approx(ours[key], abs=1e-10), key
    brute = _brute_pairwise(features, 0.25, labels)
    for key in brute:
        assert ours[key] == pytest.approx(brute[key], abs=1e-10), key
    assert ours["h_lower"] <= ours["h_upper"]


@pytest.mark.parametrize("shape", [(60, 5), (12, 20), (400, 3)])
def test_ledoit_wolf_matches_scikit_learn(shape):
    data = np.random.default_rng(3).normal(size=shape) @ np.diag(np.linspace(0.2, 3, shape[1]))
    reference = LedoitWolf().fit(data)
    cov, shrinkage = ledoit_wolf(torch.tensor(data))
    assert shrinkage == pytest.approx(reference.shrinkage_, abs=1e-12)
    np.testing.assert_allclose(cov.numpy(), reference.covariance_, rtol=1e-10, atol=1e-12)


def test_gaussian_upper_bound_is_the_ledoit_wolf_entropy_of_the_z_samples():
    """The streamed (one pass, shifted sums) estimate equals sklearn's LedoitWolf on the very
    same Z samples, and lies above the mixture entropy estimate."""
    rng = np.random.default_rng(4)
    features = rng.normal(size=(700, 4)) + 1.0
    variance, s = 0.3, 3
    result = gaussian_dropout_mi(features, variance, noise_samples=s, seed=11, chunk_size=60, device="cpu")
    z = _samples(features, variance, s, seed=11)
    cov = LedoitWolf().fit(z).covariance_
    expected = 0.5 * (4 * math.log(2 * math.pi * math.e) + np.linalg.slogdet(cov)[1])
    assert result.h_z_gaussian_upper == pytest.approx(expected, abs=1e-9)
    assert result.h_z_gaussian_upper >= result.h_z


def test_same_seed_same_result_and_chunk_size_does_not_change_it():
    features = np.random.default_rng(5).normal(size=(1200, 3)) + 0.5
    labels = np.arange(1200) % 4
    first = gaussian_dropout_mi(features, 0.2, labels=labels, noise_samples=3, seed=7, device="cpu")
    again = gaussian_dropout_mi(features, 0.2, labels=labels, noise_samples=3, seed=7, device="cpu")
    chunked = gaussian_dropout_mi(features, 0.2, labels=labels, noise_samples=3, seed=7, chunk_size=31, device="cpu")
    other = gaussian_dropout_mi(features, 0.2, labels=labels, noise_samples=3, seed=8, device="cpu")
    assert first == again
    for field in ("i_xz", "h_z", "i_zy", "h_z_gaussian_upper", "i_xz_loo"):
        assert getattr(chunked, field) == pytest.approx(getattr(first, field), abs=1e-10), field
    assert chunked.i_xz_bounds == pytest.approx(first.i_xz_bounds, abs=1e-10)
    assert other.h_z != first.h_z


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: the CPU path is tested everywhere")
def test_cuda_matches_cpu_within_monte_carlo_error():
    features = np.random.default_rng(6).normal(size=(500, 4)) + 0.5
    cpu = gaussian_dropout_mi(features, 0.2, device="cpu")
    gpu = gaussian_dropout_mi(features, 0.2, device="cuda")
    # Different generators per device: compare within the two Monte Carlo errors (4 sigma).
    assert abs(cpu.i_xz - gpu.i_xz) < 4 * math.hypot(cpu.i_xz_stderr, gpu.i_xz_stderr)
    assert gpu.i_xz_bounds == pytest.approx(cpu.i_xz_bounds, abs=1e-8)
    assert gpu.h_z_given_x == pytest.approx(cpu.h_z_given_x, abs=1e-10)


def test_class_leave_one_out_of_a_class_with_no_other_member_in_the_pattern_is_infinite():
    """-log p_{N,-i}(z | y_i) is +inf when no other input of class y_i shares i's zero pattern
    (an empty sum), not a large finite number from the exponent floor of the online sum.
    Inputs 0 and 1 are alone in their class (0 by label, 1 by its zero pattern); the rest match
    a brute-force sum over the same class (densities across patterns are 0)."""
    rng = np.random.default_rng(3)
    features = np.abs(rng.normal(size=(40, 3))) + 0.5
    features[1, 0] = 0.0  # a zero pattern of its own
    labels = np.array([0] + [1] * 39)
    variance = 0.2
    comp = prepare_components(torch.tensor(features), variance)
    result = mixture_pass(comp, 2, seed=4, labels=torch.tensor(labels), chunk_rows=16)
    loo = result.neg_log_class_loo.numpy().reshape(40, 2)
    assert np.all(np.isposinf(loo[:2]))
    z = _samples(features, variance, 2, seed=4)
    log_density = _brute_log_density(features, variance, z)
    pattern = features != 0
    for row in range(4, 80):  # inputs 2..39: class 1, their own pattern shared by 37 others
        i = row // 2
        # 1/(n_y - 1) over the other class members; those of another pattern have density 0 at z
        mates = [j for j in range(40) if j != i and labels[j] == labels[i]]
        others = [j for j in mates if np.array_equal(pattern[j], pattern[i])]
        expected = -(logsumexp(log_density[row, others]) - math.log(len(mates)))
        assert loo[i, row % 2] == pytest.approx(expected, abs=1e-9)
