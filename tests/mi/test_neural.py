"""Neural MI estimators: DoE (McAllester & Stratos 2020), MINE (Belghazi et al. 2018), InfoNCE
(van den Oord et al. 2018). Small networks, a few hundred steps, N = 2000 (1000 held out)."""

import math
import warnings

import numpy as np
import pytest

from infodrop.mi import doe_mi, infonce_mi, mine_mi

SMALL = dict(steps=300, batch_size=64, hidden=32, device="cpu")


def _gaussian_pairs(dim: int, rho: float = 0.8, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """dim independent coordinate pairs with correlation rho: I = -(dim/2) log(1 - rho^2)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, dim))
    return x, y, -0.5 * dim * math.log(1 - rho**2)


# Calibration: 6 data/model seeds per row, rho = 0.8, the SMALL settings above.
#   estimator        d = 1: mean error, sd     d = 2: mean error, sd
#   doe (gaussian)   -0.001, 0.034             -0.009, 0.054
#   doe (logistic)   +0.057, 0.025             +0.097, 0.041   (mis-specified density: biased high)
#   mine             -0.020, 0.037             -0.042, 0.058
#   infonce          -0.022, 0.041             -0.053, 0.057
# Each tolerance is |mean error| + 3.5 sd, rounded up to 0.01.
@pytest.mark.parametrize(
    "parametrization, dim, tolerance",
    [("gaussian", 1, 0.12), ("gaussian", 2, 0.2), ("logistic", 1, 0.15), ("logistic", 2, 0.25)],
)
def test_doe_recovers_the_mi_of_correlated_gaussians(parametrization, dim, tolerance):
    x, y, truth = _gaussian_pairs(dim)
    assert doe_mi(x, y, parametrization=parametrization, **SMALL) == pytest.approx(truth, abs=tolerance)


@pytest.mark.parametrize("dim, tolerance", [(1, 0.15), (2, 0.25)])
def test_mine_recovers_the_mi_of_correlated_gaussians(dim, tolerance):
    x, y, truth = _gaussian_pairs(dim)
    assert mine_mi(x, y, **SMALL) == pytest.approx(truth, abs=tolerance)


@pytest.mark.parametrize("dim, tolerance", [(1, 0.17), (2, 0.25)])
def test_infonce_recovers_the_mi_of_correlated_gaussians(dim, tolerance):
    x, y, truth = _gaussian_pairs(dim)
    assert infonce_mi(x, y, **SMALL) == pytest.approx(truth, abs=tolerance)


@pytest.mark.parametrize("critic", ["concat", "separable"])
def test_infonce_never_exceeds_the_log_of_the_batch_size(critic):
    # I(X; Y) = 4.6 nats here, far above log 8 = 2.08, so only the cap limits the bound.
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1000)
    y = x + 0.01 * rng.standard_normal(1000)
    value = infonce_mi(x, y, steps=300, batch_size=8, hidden=32, critic=critic, device="cpu")
    assert value <= math.log(8)
    assert value > 1.0  # and the critic did learn (measured 1.52 to 1.63 over 4 seeds)


def test_doe_with_class_labels_recovers_h_of_y_when_y_is_a_function_of_x():
    # y = 1[x > 0]: I = H(Y) = log 2. Measured over 4 seeds: 0.648 to 0.663 (the held-out
    # cross-entropy of a classifier at a sharp boundary after 300 steps); 0.07 covers that.
    rng = np.random.default_rng(2)
    x = rng.standard_normal(1000)
    assert doe_mi(x, (x > 0).astype(int), **SMALL) == pytest.approx(math.log(2), abs=0.07)


def test_doe_refuses_a_y_with_zero_variance_naming_y():
    # I(X; Y) = 0 for a constant Y, but DoE's fitted scales shrink without bound and the
    # difference of two diverging cross-entropies was arbitrary (-2.56, 1.31, 2.4 to 3.1).
    x = np.random.default_rng(0).standard_normal((200, 2))
    with pytest.raises(ValueError, match=r"^y has zero variance \(it is constant\)"):
        doe_mi(x, np.full((200, 2), 3.0), **SMALL)
    y = np.random.default_rng(1).standard_normal((200, 3))
    y[:, 1] = -1.0
    with pytest.raises(ValueError, match=r"^y has zero variance in column\(s\) \[1\].*drop those columns"):
        doe_mi(x, y, **SMALL)


def test_doe_of_a_single_class_is_zero():
    # Labels have no density to degenerate: one class gives H(Y) = H(Y|X) = 0 and I = 0.
    x = np.random.default_rng(0).standard_normal((200, 2))
    assert doe_mi(x, np.zeros(200, dtype=int), **SMALL) == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("estimator", [doe_mi, mine_mi, infonce_mi])
def test_neural_estimates_are_deterministic_given_the_seed(estimator):
    x, y, _ = _gaussian_pairs(1, n=400)
    settings = dict(steps=30, batch_size=32, hidden=16, device="cpu")
    first = estimator(x, y, seed=5, **settings)
    assert estimator(x, y, seed=5, **settings) == first
    assert estimator(x, y, seed=6, **settings) != first


@pytest.mark.parametrize(
    "estimator, kwargs, match",
    [
        (doe_mi, {"parametrization": "laplace"}, "parametrization"),
        (doe_mi, {"steps": 0}, "steps"),
        (mine_mi, {"batch_size": 1}, "batch_size"),
        (mine_mi, {"ema_rate": 1.5}, "ema_rate"),
        (infonce_mi, {"lr": -1.0}, "lr"),
        (infonce_mi, {"critic": "bilinear"}, "critic"),
        (doe_mi, {"device": "tpu:0"}, "device"),
    ],
)
def test_neural_estimators_reject_bad_options(estimator, kwargs, match):
    x, y, _ = _gaussian_pairs(1, n=100)
    with pytest.raises(ValueError, match=match):
        estimator(x, y, **kwargs)


@pytest.mark.parametrize("estimator", [mine_mi, infonce_mi])
def test_critic_bounds_refuse_class_labels_and_say_what_to_use(estimator):
    x, _, _ = _gaussian_pairs(1, n=100)
    labels = (x[:, 0] > 0).astype(int)
    with pytest.raises(ValueError, match="continuous y"):
        estimator(x, labels)
    # Saying that the integers are numbers is the documented way round.
    assert math.isfinite(estimator(x, labels, y_discrete=False, steps=5, batch_size=16, hidden=8, device="cpu"))


def test_neural_estimators_reject_mismatched_rows_nan_and_too_few_samples():
    x, y, _ = _gaussian_pairs(1, n=100)
    with pytest.raises(ValueError, match="same samples"):
        doe_mi(x, y[:99])
    y[7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mine_mi(x, y)
    with pytest.raises(ValueError, match="at least 4 samples"):
        infonce_mi(x[:3], x[:3])


def _regime_warnings(call) -> list[str]:
    """The OutsideMeasuredRegimeWarning messages of ``call()`` under Python's default filter."""
    from infodrop.mi import OutsideMeasuredRegimeWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, OutsideMeasuredRegimeWarning)]


def _equicorrelated(k: int, c: float, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All 2k coordinates standard normal with correlation c (the BMI benchmark's dense tasks)."""
    covariance = np.full((2 * k, 2 * k), c) + (1 - c) * np.eye(2 * k)
    joint = np.random.default_rng(seed).multivariate_normal(np.zeros(2 * k), covariance, size=n, method="cholesky")
    return joint[:, :k], joint[:, k:]


def test_doe_warns_once_when_the_coordinates_of_y_are_correlated():
    # 5 + 5 equicorrelated (c = 0.5): I = 0.593 nats, DoE measured +124 % (1.33); TC(Y) = 0.84 nats.
    x, y = _equicorrelated(5, 0.5)
    (message,) = _regime_warnings(lambda: doe_mi(x, y, **SMALL))
    assert message.startswith("doe_mi: the coordinates of y are correlated") and "docs/baselines.md" in message
    # 5 independent pairs (TC(Y) = 0): measured -2 % to -7 %, no warning.
    x, y, _ = _gaussian_pairs(5)
    assert _regime_warnings(lambda: doe_mi(x, y, **SMALL)) == []


def test_doe_warns_above_the_dimensions_where_it_was_measured():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 11)), rng.standard_normal((200, 2))
    (message,) = _regime_warnings(lambda: doe_mi(x, y, steps=1, device="cpu"))
    assert message.startswith("doe_mi: x and y have 11 and 2 dimensions")
    assert _regime_warnings(lambda: doe_mi(x[:, :10], rng.integers(0, 2, 200), steps=1, device="cpu")) == []
    (message,) = _regime_warnings(lambda: doe_mi(np.hstack([x, x]), rng.integers(0, 2, 200), steps=1, device="cpu"))
    assert message.startswith("doe_mi: x has 22 dimensions; with class labels")


def test_the_total_correlation_of_the_columns_of_y_matches_its_closed_form():
    from infodrop.mi.regimes import total_correlation_of_columns

    _, y = _equicorrelated(5, 0.5, n=20000)
    # det of a 5 x 5 equicorrelation matrix: (1 - c)^4 (1 + 4c) = 0.1875; TC = -log(0.1875)/2 = 0.837.
    assert total_correlation_of_columns(y) == pytest.approx(-0.5 * math.log(0.1875), abs=0.02)
    assert total_correlation_of_columns(y[:, :1]) == 0.0
    assert total_correlation_of_columns(np.hstack([y[:, :1], y[:, :1]])) == math.inf
