"""One interface for the baselines: each registered name gives the number of its ``name_mi``
function, as an MIEstimate, with a standard error where the estimator averages held-out terms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infodrop import mi
from infodrop.mi.registry import Baseline

FAST = {"steps": 20, "device": "cpu"}


def _pairs(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 2))
    return x, x + rng.normal(size=(n, 2))


@pytest.mark.parametrize(
    "name, function, options",
    [
        ("binning", mi.binning_mi, {"bins": 5, "warn_saturated": False}),
        ("edge", mi.edge_mi, {"seed": 1}),
        ("ksg", mi.ksg_mi, {"k": 3, "seed": 1}),
        ("doe", mi.doe_mi, FAST),
        ("mine", mi.mine_mi, FAST),
        ("infonce", mi.infonce_mi, FAST),
    ],
)
@pytest.mark.filterwarnings("ignore::infodrop.mi.OutsideMeasuredRegimeWarning")
def test_each_name_gives_the_number_of_its_function(name, function, options):
    x, y = _pairs()
    estimate = mi.get_estimator(name)(x, y, **options)
    assert isinstance(estimate, mi.MIEstimate)
    assert estimate.value == function(x, y, **options)
    assert float(estimate) == estimate.value


def test_doe_l_is_doe_with_logistic_densities_and_refuses_another_parametrization():
    x, y = _pairs()
    assert mi.get_estimator("doe_l")(x, y, **FAST).value == mi.doe_mi(x, y, parametrization="logistic", **FAST)
    with pytest.raises(ValueError, match="parametrization"):
        mi.get_estimator("doe_l")(x, y, parametrization="gaussian", **FAST)


def test_doe_and_infonce_carry_the_standard_error_of_their_held_out_mean():
    x, y = _pairs(600)
    doe = mi.get_estimator("doe")(x, y, **FAST)
    assert doe.stderr is not None and 0 < doe.stderr < 1
    infonce = mi.get_estimator("infonce")(x, y, batch_size=64, **FAST)  # 300 held out: 4 batches
    assert infonce.stderr is not None and math.isfinite(infonce.stderr)
    assert mi.get_estimator("ksg")(x, y).stderr is None  # no standard error: None, not a guess


def test_an_unknown_name_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="use one of: binning, edge, ksg"):
        mi.get_estimator("kde")


def test_registering_a_name_twice_needs_replace(monkeypatch):
    monkeypatch.setattr(mi.registry, "_ESTIMATORS", dict(mi.registry._ESTIMATORS))
    constant = Baseline(lambda x, y: 0.5)
    mi.register_estimator("constant", constant)
    assert mi.get_estimator("constant")([1.0, 2.0], [3.0, 4.0]) == mi.MIEstimate(0.5)
    assert "constant" in mi.estimator_names()
    with pytest.raises(ValueError, match="replace=True"):
        mi.register_estimator("constant", constant)
    mi.register_estimator("constant", constant, replace=True)


def test_accepts_names_the_options_an_estimator_takes():
    assert mi.get_estimator("ksg").accepts("k")
    assert not mi.get_estimator("binning").accepts("seed")
    assert not mi.get_estimator("doe_l").accepts("parametrization")
