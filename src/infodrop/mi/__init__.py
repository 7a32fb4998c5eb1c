"""Mutual-information estimators: arrays in, nats out. Imports nothing from infodrop but
infodrop.checks, so it can be used on any network's representations."""

# Baseline estimators (binning, KSG, EDGE, DoE, MINE, InfoNCE).
from infodrop.mi.binning import (
    SATURATION_COVERAGE,
    SaturatedEstimateWarning,
    binning_coverage,
    binning_entropy,
    binning_mi,
    binning_saturated,
)
from infodrop.mi.edge import edge_mi
from infodrop.mi.ksg import ksg_mi
from infodrop.mi.neural import doe_mi, infonce_mi, mine_mi
from infodrop.mi.regimes import OutsideMeasuredRegimeWarning

# One interface for the baselines (x, y -> MIEstimate) and the registry of their names.
from infodrop.mi.estimate import MIEstimate, MIEstimator
from infodrop.mi.registry import ESTIMATORS, estimator_names, get_estimator, register_estimator

# Gaussian-dropout mixture estimator and bounds; information-dropout estimates.
from infodrop.mi.dropout import GaussianDropoutMI, gaussian_dropout_mi, mixture_entropy
from infodrop.mi.dropout_result import Diagnostics, MixtureBand, MixtureBounds, PointEstimate
from infodrop.mi.options import MixtureOptions
from infodrop.mi.subsets import UnitSubsetMI, unit_subset_mi
from infodrop.mi.cost import MixtureCost, mixture_cost
from infodrop.mi.information_dropout import (
    InformationDropoutEstimate,
    information_dropout_izy_lower,
    information_dropout_mi,
)

# Disentanglement of a representation (Achille & Soatto, Section 8).
from infodrop.mi.total_correlation import gaussian_total_correlation

__all__ = [
    # dropout estimators
    "gaussian_dropout_mi",
    "GaussianDropoutMI",
    "PointEstimate",
    "MixtureBand",
    "MixtureBounds",
    "Diagnostics",
    "MixtureOptions",
    "mixture_entropy",
    "unit_subset_mi",
    "UnitSubsetMI",
    "mixture_cost",
    "MixtureCost",
    "information_dropout_mi",
    "information_dropout_izy_lower",
    "InformationDropoutEstimate",
    "gaussian_total_correlation",
    # baselines
    "binning_mi",
    "binning_entropy",
    "binning_coverage",
    "binning_saturated",
    "SaturatedEstimateWarning",
    "SATURATION_COVERAGE",
    "ksg_mi",
    "edge_mi",
    "doe_mi",
    "mine_mi",
    "infonce_mi",
    "OutsideMeasuredRegimeWarning",
    # the baselines' interface and registry
    "MIEstimate",
    "MIEstimator",
    "ESTIMATORS",
    "estimator_names",
    "get_estimator",
    "register_estimator",
]
