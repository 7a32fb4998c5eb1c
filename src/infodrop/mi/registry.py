"""The baseline estimators of I(X;Y) by name, each behind the one interface of
:mod:`infodrop.mi.estimate` (``estimator(x, y, **options) -> MIEstimate``, nats).

Names are those of the ICLR 2023 figures: ``binning``, ``edge``, ``ksg``, ``doe`` (Gaussian
densities), ``doe_l`` (logistic densities), ``mine``, ``infonce``. The toy experiment's
``compare`` and the information plane look estimators up here, so a name means one estimator
everywhere::

    from infodrop.mi import get_estimator
    estimate = get_estimator("ksg")(x, y, k=3)      # MIEstimate(value=..., stderr=None)
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from infodrop.mi.binning import binning_mi
from infodrop.mi.edge import edge_mi
from infodrop.mi.estimate import MIEstimate, MIEstimator
from infodrop.mi.ksg import ksg_mi
from infodrop.mi.neural import doe_estimate, infonce_estimate, mine_mi

__all__ = ["ESTIMATORS", "Baseline", "estimator_names", "get_estimator", "register_estimator"]


@dataclass(frozen=True)
class Baseline:
    """A baseline ``function(x, y, **fixed, **options)`` behind the interface.

    function: returns the estimate in nats, as a float or an :class:`MIEstimate`.
    fixed: options this name sets for good (``doe_l`` is DoE with ``parametrization='logistic'``).
    labels: whether y may be discrete class labels.
    """

    function: Callable[..., Any]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    labels: bool = True

    def __call__(self, x: Any, y: Any, **options: Any) -> MIEstimate:
        clash = sorted(set(options) & set(self.fixed))
        if clash:
            raise ValueError(f"{', '.join(clash)} is fixed by this estimator's name; choose the estimator by name instead")
        result = self.function(x, y, **self.fixed, **options)
        return result if isinstance(result, MIEstimate) else MIEstimate(float(result))

    def accepts(self, option: str) -> bool:
        """Whether ``option`` is a keyword argument this estimator takes (and does not fix)."""
        return option in inspect.signature(self.function).parameters and option not in self.fixed


_ESTIMATORS: dict[str, MIEstimator] = {
    "binning": Baseline(binning_mi),
    "edge": Baseline(edge_mi),
    "ksg": Baseline(ksg_mi),
    "doe": Baseline(doe_estimate, {"parametrization": "gaussian"}),
    "doe_l": Baseline(doe_estimate, {"parametrization": "logistic"}),
    "mine": Baseline(mine_mi, labels=False),
    "infonce": Baseline(infonce_estimate, labels=False),
}

ESTIMATORS: Mapping[str, MIEstimator] = types.MappingProxyType(_ESTIMATORS)


def estimator_names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_ESTIMATORS)


def get_estimator(name: str) -> MIEstimator:
    """The estimator registered as ``name``; ValueError naming the known names otherwise."""
    if name not in _ESTIMATORS:
        raise ValueError(f"estimator {name!r} is not known; use one of: {', '.join(_ESTIMATORS)}")
    return _ESTIMATORS[name]


def register_estimator(name: str, estimator: MIEstimator, *, replace: bool = False) -> None:
    """Add ``estimator`` (``estimator(x, y, **options) -> MIEstimate``) under ``name``; a name
    already taken raises ValueError unless ``replace=True``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(estimator):
        raise ValueError(f"estimator for {name!r} must be callable as estimator(x, y, **options), got {estimator!r}")
    if name in _ESTIMATORS and not replace:
        raise ValueError(f"estimator {name!r} is already registered; pass replace=True to replace it")
    _ESTIMATORS[name] = estimator
