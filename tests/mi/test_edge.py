"""EDGE estimator (Noshad, Zeng & Hero 2019): one test per claim."""

import math
import warnings

import numpy as np
import pytest

from infodrop.mi import edge_mi
from infodrop.mi.edge import edge_weights

N = 2000


def _gaussian_pair(rho: float, n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, noise = rng.standard_normal(n), rng.standard_normal(n)
    return x, rho * x + math.sqrt(1 - rho**2) * noise


# Calibration (20 data seeds, N = 2000, default options): mean error +0.018 at rho = 0,
# +0.006 at rho = 0.6, -0.031 at rho = 0.9 (the ensemble leaves higher-order bias: small
# negative for strong dependence, small positive for none); standard deviation 0.004, 0.023,
# 0.026. The tolerance 0.12 is the largest |bias| (0.031) plus 3.5 standard deviations (0.026).
@pytest.mark.parametrize("rho", [0.6, 0.9])
def test_edge_is_roughly_right_on_correlated_gaussians(rho):
    x, y = _gaussian_pair(rho)
    assert edge_mi(x, y) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.12)


def test_edge_increases_with_the_correlation():
    # True values 0, 0.14, 0.51, 1.16 nats: steps of >= 0.14, over 5 standard deviations (<= 0.026).
    estimates = [edge_mi(*_gaussian_pair(rho, seed=1)) for rho in (0.0, 0.5, 0.8, 0.95)]
    assert all(later > earlier for earlier, later in zip(estimates, estimates[1:]))


def test_ensemble_weights_are_the_least_norm_solution_that_cancels_the_bias_terms():
    t = np.geomspace(1.0, 8.0, 10)
    powers = (2.0, -2.0)
    weights = edge_weights(t, powers)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    for power in powers:
        assert np.dot(weights, t**power) == pytest.approx(0.0, abs=1e-10)
    # Least norm: the KKT solution A^T (A A^T)^-1 e_1.
    system = np.vstack([np.ones_like(t), t**2.0, t**-2.0])
    expected = system.T @ np.linalg.solve(system @ system.T, np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    # So base estimates I + c2 t^2 + c t^-2 are combined into exactly I.
    biased = 0.7 + 0.3 * t**2 - 0.05 * t**-2.0
    assert np.dot(weights, biased) == pytest.approx(0.7, abs=1e-10)


def test_edge_with_class_labels_recovers_h_of_y_when_y_is_a_function_of_x():
    # y = 1[x > 0]: I(X; Y) = H(Y) = log 2. Measured over 3 seeds: 0.674 to 0.689 (cells that
    # straddle 0 blur the boundary); 0.04 covers that spread.
    rng = np.random.default_rng(2)
    x = rng.standard_normal(N)
    assert edge_mi(x, (x > 0).astype(int)) == pytest.approx(math.log(2), abs=0.04)


def test_edge_is_deterministic_given_the_seed():
    x, y = _gaussian_pair(0.6, n=500)
    assert edge_mi(x, y, seed=3) == edge_mi(x, y, seed=3)
    assert edge_mi(x, y, seed=3) != edge_mi(x, y, seed=4)  # new shifts and hashes


def test_paper_bias_powers_one_to_d_are_available():
    x, y = _gaussian_pair(0.6)
    # Theorem 3 of EDGE cancels t^1 .. t^d; d = 2 here, so three constraints and 10 bandwidths.
    assert math.isfinite(edge_mi(x, y, bias_powers="paper"))
    with pytest.raises(ValueError, match="cannot cancel"):
        edge_mi(x, y, bias_powers="paper", n_ensemble=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_ensemble": 2}, "cannot cancel 2 bias terms"),
        ({"t_range": (2.0, 1.0)}, "t_range"),
        ({"t_range": (0.0, 1.0)}, "t_range"),
        ({"hash_factor": 0}, "hash_factor"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"bias_powers": (0.0,)}, "non-zero"),
        ({"bias_powers": "theorem"}, "bias_powers"),
    ],
)
def test_edge_rejects_bad_options(kwargs, match):
    x, y = _gaussian_pair(0.5, n=100)
    with pytest.raises(ValueError, match=match):
        edge_mi(x, y, **kwargs)


def test_edge_rejects_mismatched_rows_and_non_finite_values():
    x, y = _gaussian_pair(0.5, n=100)
    with pytest.raises(ValueError, match="same samples"):
        edge_mi(x, y[:50])
    x[0] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        edge_mi(x, y)


def _regime_warnings(call) -> list[str]:
    """The OutsideMeasuredRegimeWarning messages of ``call()`` under Python's default filter."""
    from infodrop.mi import OutsideMeasuredRegimeWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, OutsideMeasuredRegimeWarning)]


def test_edge_warns_once_outside_the_regime_where_it_was_measured_within_20_percent():
    # Measured (docs/baselines.md): within 20 % only at d_x + d_y = 2, or d_x <= 3 with labels;
    # +40 % at 2 + 2 independent pairs, +322 % at 5 + 5 equicorrelated coordinates.
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((500, 2)), rng.standard_normal((500, 2))
    labels = rng.integers(0, 3, 500)

    def twice_from_one_line():
        for _ in range(2):
            edge_mi(x, y)

    (message,) = _regime_warnings(twice_from_one_line)
    assert message.startswith("edge_mi: x and y have 4 dimensions together") and "docs/baselines.md" in message
    assert _regime_warnings(lambda: edge_mi(x[:, 0], y[:, 0])) == []
    assert _regime_warnings(lambda: edge_mi(np.hstack([x, y[:, :1]]), labels)) == []
    (message,) = _regime_warnings(lambda: edge_mi(np.hstack([x, y]), labels))
    assert message.startswith("edge_mi: x has 4 dimensions; with class labels")
