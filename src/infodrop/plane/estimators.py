"""The estimators of an information plane behind one interface, chosen by dropout kind.

Each :class:`PlaneEstimator` turns one split's :class:`~infodrop.plane.layer.Representations` into
the points of one key of a :class:`~infodrop.plane.record.SplitRecord` (values in nats):

``auto`` (the estimator that suits the dropout kind)
    Gaussian dropout, :class:`MixtureEstimator`: the mixture estimator
    :func:`infodrop.mi.gaussian_dropout_mi` (Adilova et al., ICLR 2023, Sec. 4, Algorithm 1) with
    its band, pairwise bracket, ceiling log N and saturation flag, for I(X;Z) and I(Z;Y).
    Information dropout, :class:`VariationalEstimator`: I(X;Z) <= E_x KL(p(z|x) || prior), in
    closed form for the log-normal prior (softplus networks); for the log-uniform prior (ReLU) the
    KL is defined only up to a constant and is recorded with ``is_mi`` False (Appendix A.1).
    I(Z;Y) >= H(Y) - cross-entropy of the MC predictions. Each bound carries the band +-
    ``BAND_Z`` standard errors of its mean over the N inputs (the band of the *bound* as an
    estimate of its population value); never saturated: the KL is not capped at log N.
    Binary dropout: none (Theorems 3.1/3.2: I(X;Z) is infinite).
``binning``, :class:`BinningEstimator`
    The plug-in estimate on the binned noisy samples (:func:`infodrop.mi.binning_mi`) for each bin
    count: I(X;Z_b) with the sample index as X, and I(Z_b;Y); saturated when the Good-Turing
    coverage of the binned samples is below 1/2 (most samples sit in a cell of their own).
``subsets``, :class:`SubsetEstimator` (Gaussian dropout)
    I(X;Z_S) over random subsets S of k units (:func:`infodrop.mi.unit_subset_mi`): the mean, the
    spread over subsets and each subset's value. By data processing I(X;Z_S) <= I(X;Z), and for
    small k it stays below log N, so it shows where the whole layer's estimate is saturated.

:func:`estimators_for` builds the ones a layer's settings ask for from :data:`REGISTRY`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from torch import nn

from infodrop.mi import (
    # Binning: below this Good-Turing coverage most samples of Z_b sit in a cell of their own
    # (the rule is binning_mi's, which warns by it).
    SATURATION_COVERAGE,
    binning_coverage,
    binning_mi,
    gaussian_dropout_mi,
    information_dropout_izy_lower,
    information_dropout_mi,
    unit_subset_mi,
)
from infodrop.plane.layer import Representations
from infodrop.plane.record import BinningPoint, MixtureEstimate, SubsetPoint, VariationalEstimate
from infodrop.plane.settings import PlaneSettings

__all__ = ["BAND_Z", "BinningEstimator", "Estimated", "MixtureEstimator", "PlaneEstimator", "REGISTRY",
           "SubsetEstimator", "VariationalEstimator", "estimators_for"]

# Half-width of the information-dropout bands in standard errors of the mean (about 95% for a
# normal sampling distribution of the mean; the mixture estimator's bands use the same 2).
BAND_Z = 2.0


@dataclass
class Estimated:
    """What an estimator gives for one split: ``points`` (the record's value at its key) and the
    per-input terms of its mixture estimates by (subset size k or None for the whole layer, index)."""

    points: Any
    terms: dict[tuple[int | None, int], np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Tracked:
    """What an estimator knows about the tracked layer and where it computes."""

    layer: nn.Module
    kind: str
    settings: PlaneSettings
    device: Any
    distributed: bool = False

    @property
    def variance(self) -> float | None:
        return float(self.layer.variance) if self.kind == "gaussian" else None

    @property
    def prior(self) -> str | None:
        return getattr(self.layer, "prior", None) if self.kind == "information" else None


class PlaneEstimator(Protocol):
    """One estimator of the plane: ``name`` says what it is for the layer (the file's
    ``estimators`` entry), ``estimate`` gives one split's points."""

    name: str

    def estimate(self, representations: Representations) -> Estimated: ...


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _pair(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _band(value: float, stderr: float | None) -> tuple[float | None, float | None]:
    """value -+ BAND_Z standard errors, or (None, None) without a standard error."""
    if stderr is None:
        return None, None
    return value - BAND_Z * stderr, value + BAND_Z * stderr


def _floats(values: Any) -> list[float]:
    return [float(value) for value in values]


class MixtureEstimator:
    """The mixture estimator of a Gaussian-dropout layer (Sec. 4, Algorithm 1)."""

    name = "gaussian-mixture"

    def __init__(self, tracked: Tracked) -> None:
        self.tracked = tracked

    def estimate(self, representations: Representations) -> Estimated:
        tracked, settings = self.tracked, self.tracked.settings
        result = gaussian_dropout_mi(representations.features, tracked.variance, labels=representations.labels,
                                     noise_samples=settings.noise_samples, seed=settings.seed, device=tracked.device,
                                     bounds=settings.bounds, distributed=tracked.distributed)
        point = MixtureEstimate(
            i_xz=float(result.i_xz), i_zy=_number(result.i_zy), i_xz_bounds=_pair(result.i_xz_bounds),
            i_zy_bounds=_pair(result.i_zy_bounds), i_xz_loo=_number(result.i_xz_loo),
            i_xz_stderr=_number(result.i_xz_stderr), i_zy_stderr=_number(result.i_zy_stderr), h_z=float(result.h_z),
            h_z_given_x=float(result.h_z_given_x), h_z_gaussian_upper=_number(result.h_z_gaussian_upper), is_mi=True,
            i_xz_lower=float(result.i_xz_lower), i_xz_upper=float(result.i_xz_upper),
            i_zy_lower=_number(result.i_zy_lower), i_zy_upper=_number(result.i_zy_upper), log_n=float(result.log_n),
            saturated=bool(result.saturated), i_xz_sensitivity=float(result.i_xz_sensitivity),
            i_zy_saturated=None if result.i_zy_saturated is None else bool(result.i_zy_saturated),
            kind=MixtureEstimate.KIND,
        )
        return Estimated(point, {(None, 0): result.i_xz_terms})


class VariationalEstimator:
    """The variational bounds of Achille & Soatto that training optimises, for an
    information-dropout layer, each with its band."""

    def __init__(self, tracked: Tracked) -> None:
        self.tracked = tracked
        self.name = "variational" if tracked.prior == "log-normal" else "variational-kl (log-uniform prior: not an MI)"

    def estimate(self, representations: Representations) -> Estimated:
        layer, prior = self.tracked.layer, self.tracked.prior
        options: dict[str, Any] = {"prior": prior}
        if prior == "log-normal":
            options.update(mu=float(layer.mu1.detach()), sigma=abs(float(layer.sigma1.detach())))
        upper = information_dropout_mi(representations.features, representations.alpha, **options)
        # Per-input cross-entropy of the MC predictions, averaged over the draws.
        lower = information_dropout_izy_lower(representations.labels, -representations.log_probs.mean(dim=0))
        xz_band, zy_band = _band(upper.value, upper.stderr), _band(lower.value, lower.stderr)
        return Estimated(VariationalEstimate(
            i_xz=upper.value, i_zy=lower.value, i_xz_kind=upper.kind, i_zy_kind=lower.kind,
            is_mi=bool(upper.is_mutual_information), kl_training=float(representations.kl.mean()),
            n_clamped=upper.n_clamped,
            note=None if upper.is_mutual_information else (
                "log-uniform prior (ReLU): the KL is known only up to a constant; not an MI value (Appendix A.1)"),
            i_xz_lower=xz_band[0], i_xz_upper=xz_band[1], i_zy_lower=zy_band[0], i_zy_upper=zy_band[1],
            i_xz_stderr=upper.stderr, i_zy_stderr=lower.stderr, log_n=math.log(upper.n_samples),
            # The KL is computed in closed form per input, not from a mixture of N components:
            # nothing caps it at log N.
            saturated=False,
            kind=VariationalEstimate.KIND,
        ))


class BinningEstimator:
    """The plug-in binning estimate at every bin count of the settings."""

    name = "binning"

    def __init__(self, tracked: Tracked) -> None:
        self.bins = tracked.settings.bins

    def estimate(self, representations: Representations) -> Estimated:
        draws, n, width = representations.noisy.shape
        z = representations.noisy.reshape(draws * n, width).numpy().astype(np.float64)
        index = np.tile(np.arange(n, dtype=np.int64), draws)
        labels = np.tile(representations.labels, draws)
        span = float(z.max() - z.min())
        points = {}
        for count in self.bins:
            coverage = binning_coverage(z, bins=count)
            points[str(count)] = BinningPoint(
                # The point carries the flag itself (below), so binning_mi need not warn.
                i_xz=binning_mi(z, index, bins=count, y_discrete=True, warn_saturated=False),
                i_zy=binning_mi(z, labels, bins=count, y_discrete=True, warn_saturated=False),
                bin_size=span / count,
                # With the input's index as X the plug-in I(X;Z_b) <= H(X) = log N.
                log_n=math.log(n),
                coverage=coverage,
                saturated=coverage < SATURATION_COVERAGE,
            )
        return Estimated(points)


class SubsetEstimator:
    """I(X;Z_S) and I(Z_S;Y) over random subsets S of k units for each size k of the settings;
    a point is saturated when any of its subsets is."""

    name = "subsets"

    def __init__(self, tracked: Tracked) -> None:
        self.tracked = tracked

    def estimate(self, representations: Representations) -> Estimated:
        tracked, settings = self.tracked, self.tracked.settings
        points, terms = {}, {}
        for k in settings.subsets:
            # Every rank computes the (small) subset estimates itself; they agree, as they use the
            # same features and seeds.
            result = unit_subset_mi(representations.features, tracked.variance, k, subsets=settings.subset_draws,
                                    noise_samples=settings.noise_samples, seed=settings.seed, device=tracked.device,
                                    labels=representations.labels)
            terms.update({(k, index): values for index, values in enumerate(result.terms or ())})
            points[str(k)] = SubsetPoint(
                k=k, mean=float(result.mean), std=float(result.std), values=_floats(result.values),
                i_zy=_number(result.i_zy_mean), i_zy_std=_number(result.i_zy_std), i_zy_values=_floats(result.i_zy_values),
                lower=_floats(result.lower), upper=_floats(result.upper),
                units=[[int(unit) for unit in subset] for subset in result.subsets],
                log_n=math.log(len(representations.labels)), saturated=result.saturated,
                saturated_subsets=list(result.saturated_subsets), sensitivity=_floats(result.sensitivity),
            )
        return Estimated(points, terms)


# Estimator key of a split record -> its estimator, or (for 'auto') the estimator of each dropout
# kind. Which kinds a key can measure is the settings' rule (settings.DROPOUT_ESTIMATORS), checked
# before any estimator is built.
REGISTRY: dict[str, type | dict[str, type]] = {
    "auto": {"gaussian": MixtureEstimator, "information": VariationalEstimator},
    "binning": BinningEstimator,
    "subsets": SubsetEstimator,
}


def estimators_for(tracked: Tracked) -> dict[str, PlaneEstimator]:
    """The estimators of ``tracked.settings`` (already checked for the layer by
    :meth:`PlaneSettings.for_layer`) by record key, ``subsets`` last when there are sizes."""
    keys = list(tracked.settings.estimators) + (["subsets"] if tracked.settings.subsets else [])
    chosen = {key: REGISTRY[key] for key in keys}
    return {key: (entry[tracked.kind] if isinstance(entry, dict) else entry)(tracked) for key, entry in chosen.items()}
