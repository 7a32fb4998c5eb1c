"""Gaussian-dropout estimator against ground truths computed independently by quadrature.

Tolerances. For the toy problem the N inputs are themselves a random sample, so the error
has two parts: (i) sampling error, measured by the estimator's own ``i_xz_stderr_data``
(spread of the per-input terms / sqrt(N), noise included); (ii) the finite-N bias of the
mixture estimate, which is bracketed in expectation by E[i_xz] <= I(X;Z) <= E[i_xz_loo]
(lower: concavity of entropy, E h(p_N) <= h(E p_N); upper: Jensen on the leave-one-out
density, see GaussianDropoutMI). The tests assert i_xz - 4 se <= I <= i_xz_loo + 4 se, i.e. the
truth lies in the bias bracket widened by 4 standard errors (a two-sided 4-sigma event has
probability 6e-5), and, where the bracket is narrow (I well below log N), that it is.
N = 3000 inputs: the with-self estimate saturates at log N = 8.0 nats and its bias grows as
I(X;Z) approaches log N, so N must be large enough that log N - I is several nats for the
1-D and 2-D cases; a few thousand keeps the whole file at a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from infodrop.mi import gaussian_dropout_mi
from tests.mi._quadrature import toy_features as _toy_features
from tests.mi._quadrature import toy_mi_per_unit
from tests.mi._quadrature import two_point_mi as _two_point_mi

@pytest.mark.parametrize(
    "variance, dims",
    [(0.1, 1), (0.4, 1), (0.1, 2), (0.4, 2), (0.4, 5)],
)
def test_toy_problem_i_xz_matches_quadrature(variance, dims):
    truth = dims * toy_mi_per_unit(variance)  # independent coordinates: I = n * I_1
    result = gaussian_dropout_mi(_toy_features(3000, dims, seed=dims), variance, noise_samples=5, bounds=False)
    se = result.i_xz_stderr_data
    assert result.i_xz - 4 * se <= truth <= result.i_xz_loo + 4 * se
    if dims <= 2:
        # I is far below log N here, so the bias bracket itself is narrow: the estimate is accurate.
        assert result.i_xz_loo - result.i_xz < 0.06
        assert abs(result.i_xz - truth) < 4 * se + (result.i_xz_loo - result.i_xz)


def test_heterogeneous_unit_scales_give_the_same_mi():
    """Scaling unit k by s_k (1e-3 .. 1e3) leaves I(X;Z) unchanged; with the same noise the
    estimator's log-densities all shift by sum_k log s_k, so the estimate is unchanged to rounding."""
    features = _toy_features(800, 3, seed=7)
    scales = np.array([1e-3, 1.0, 1e3])
    plain = gaussian_dropout_mi(features, 0.4, noise_samples=4)
    scaled = gaussian_dropout_mi(features * scales, 0.4, noise_samples=4)
    assert scaled.i_xz == pytest.approx(plain.i_xz, abs=1e-9)
    assert scaled.i_xz_bounds == pytest.approx(plain.i_xz_bounds, abs=1e-9)
    assert scaled.h_z - plain.h_z == pytest.approx(float(np.log(scales).sum()), abs=1e-9)


def test_single_input_has_zero_mutual_information():
    result = gaussian_dropout_mi(np.array([[0.3, -2.0, 5.0]]), 0.2, noise_samples=50)
    assert result.i_xz == pytest.approx(0.0, abs=1e-12)
    assert result.i_xz_bounds == pytest.approx((0.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("a, b", [(1.0, 1.6), (1.0, -0.8), (2e-3, 3e-3)])
def test_two_point_input_matches_quadrature(a, b):
    """With X on two points the N = 2 mixture IS the law of Z: no finite-N bias, so the only
    error is Monte Carlo noise; 4 stderr. This also pins the component variance to
    variance * f^2 (the reference's sigma * |f| gives a different mixture)."""
    variance = 0.1
    truth = _two_point_mi(a, b, variance)
    result = gaussian_dropout_mi(np.array([[a], [b]]), variance, noise_samples=20000, labels=[0, 1])
    assert abs(result.i_xz - truth) < 4 * result.i_xz_stderr
    lower, upper = result.i_xz_bounds
    assert lower <= truth <= upper
    # Y = X here, so I(Z;Y) = I(X;Z).
    assert result.i_zy == pytest.approx(result.i_xz, abs=1e-9)
    assert 0 < truth < math.log(2)


def test_two_point_input_repeated_inputs_match_quadrature():
    """The same two-point law given by 200 copies of each point (labels = the point)."""
    truth = _two_point_mi(1.0, 1.6, 0.1)
    features = np.repeat([[1.0], [1.6]], 200, axis=0)
    labels = np.repeat([0, 1], 200)
    result = gaussian_dropout_mi(features, 0.1, noise_samples=50, labels=labels)
    assert abs(result.i_xz - truth) < 4 * result.i_xz_stderr
    assert abs(result.i_zy - truth) < 4 * (result.i_xz_stderr + result.i_zy_stderr)


def test_constant_labels_carry_no_information_and_identity_labels_carry_all():
    features = _toy_features(300, 2, seed=3)
    constant = gaussian_dropout_mi(features, 0.3, labels=np.zeros(300, dtype=int), noise_samples=3)
    assert constant.i_zy == pytest.approx(0.0, abs=1e-12)
    lower, upper = constant.i_zy_bounds  # h_lower(Z) - h_upper(Z), h_upper(Z) - h_lower(Z)
    assert lower == pytest.approx(-upper, abs=1e-9) and lower <= 0 <= upper
    identity = gaussian_dropout_mi(features, 0.3, labels=np.arange(300), noise_samples=3)
    assert identity.i_zy == pytest.approx(identity.i_xz, abs=1e-9)
    assert identity.h_z_given_y == pytest.approx(identity.h_z_given_x, abs=1e-9)
