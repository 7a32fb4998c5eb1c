"""The result of :func:`infodrop.mi.gaussian_dropout_mi` in four typed parts, all in nats:
the point estimates, the band for the input distribution, the bounds of the mixture, and
diagnostics of the call.

``GaussianDropoutMI`` keeps every flat name of earlier versions (``result.i_xz``,
``result.saturated``, ...) as a read-only property of its part, and :meth:`GaussianDropoutMI.to_dict`
gives the flat dict of those names, so code and files that read them do not change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Diagnostics", "GaussianDropoutMI", "MixtureBand", "MixtureBounds", "PointEstimate"]


@dataclass(frozen=True)
class PointEstimate:
    """Point estimates (Algorithm 1 of Adilova et al.) and their standard errors.

    i_xz: estimate of I(X;Z) = h_z - h_z_given_x.
    h_z: Monte Carlo estimate of h(Z), the entropy of the N-component mixture.
    h_z_given_x: h(Z|X), exact for the N inputs (closed form, averaged over inputs).
    i_zy: estimate of I(Z;Y) = h(Z) - sum_y p(y) h(Z|Y=y) with discrete labels, else None.
    h_z_given_y: estimate of h(Z|Y) with labels, else None.
    i_xz_stderr: Monte Carlo standard error of h_z (and so of i_xz) given the N inputs.
    i_xz_stderr_data: standard error of i_xz as an estimate for the population the N inputs were
        drawn from (spread of the per-input terms / sqrt(N)); includes the noise.
    i_zy_stderr: Monte Carlo standard error of i_zy given the inputs, else None.
    i_xz_loo: the leave-one-out counterpart of i_xz (each sample of Z scored against the mixture
        without its own component). Over draws of the N inputs,
        E[i_xz] <= I(X;Z) <= E[i_xz_loo]: the pair brackets the finite-N bias (the first by
        concavity of entropy, the second by Jensen). None when some input has no other input
        with its zero pattern (or N = 1).
    """

    i_xz: float
    h_z: float
    h_z_given_x: float
    i_zy: float | None
    h_z_given_y: float | None
    i_xz_stderr: float
    i_xz_stderr_data: float
    i_zy_stderr: float | None
    i_xz_loo: float | None


@dataclass(frozen=True)
class MixtureBand:
    """A band on I(X;Z) (and I(Z;Y)) of the continuous input distribution, and its ceiling.

    i_xz_lower, i_xz_upper: the multi-sample (InfoNCE, true critic) lower bound minus BAND_Z = 2
        standard errors, and the leave-one-out upper bound plus 2 standard errors (Poole et al.
        2019); standard errors (data and Monte Carlo) included. Covers the truth with probability
        >= 0.954 (infodrop.mi.band; docs/band_coverage.md). i_xz_lower <= log N; i_xz_upper is
        +inf when some input shares its zero pattern with no other input.
    log_n: log N, the ceiling of the lower estimate (and of i_xz).
    i_xz_sensitivity: how many nats the lower estimate moves per nat of true change,
        1 - mean own-component responsibility (infodrop.mi.band).
    saturated: True when i_xz_sensitivity (minus 2 standard errors) is below 1/2: the number
        is pressed against log N and measures the sample size rather than the network.
    i_zy_lower, i_zy_upper: the band on I(Z;Y) with labels (Barber-Agakov lower bound with the
        leave-one-out class posterior; h(Z) upper minus h(Z|Y) lower), 2 standard errors
        included; else None. i_zy_lower <= h_y.
    h_y: plug-in entropy of the labels, the ceiling of I(Z;Y), else None.
    i_zy_saturated: True when i_zy moves less than half as much as the class information
        (the own component dominates the mixtures), else False; None without labels.
    i_xz_terms: the N per-input terms of the lower estimate (numpy float64; their mean minus 2
        standard errors is i_xz_lower): the same inputs estimated at two epochs give a paired
        test of the change (infodrop.study.paired_change).
    """

    i_xz_lower: float
    i_xz_upper: float
    log_n: float
    i_xz_sensitivity: float
    saturated: bool
    i_zy_lower: float | None = None
    i_zy_upper: float | None = None
    h_y: float | None = None
    i_zy_saturated: bool | None = None
    i_xz_terms: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class MixtureBounds:
    """Bounds of the N-component mixture (infodrop.mi.bounds).

    h_z_gaussian_upper: entropy of a Gaussian with the Ledoit-Wolf covariance of the Z samples,
        an (estimated) upper bound on h(Z); None if a covariance was singular.
    i_xz_bounds: (lower, upper) on I(X;Z) of the mixture from the pairwise-distance bounds
        (Bhattacharyya lower, KL upper) minus h_z_given_x; None when ``bounds=False``.
    h_z_bounds: (lower, upper) on h(Z) from the same bounds; None when ``bounds=False``.
    i_zy_bounds: (lower, upper) on I(Z;Y): (h_lower(Z) - h_upper(Z|Y), h_upper(Z) - h_lower(Z|Y)),
        not clipped to [0, H(Y)]; None without labels or with ``bounds=False``.
    """

    h_z_gaussian_upper: float | None
    i_xz_bounds: tuple[float, float] | None
    h_z_bounds: tuple[float, float] | None
    i_zy_bounds: tuple[float, float] | None


@dataclass(frozen=True)
class Diagnostics:
    """What the call saw: h_pattern, the plug-in entropy H(B) of the pattern of nonzero units
    (0 without zeros); n_patterns, the number of distinct zero patterns (1 without zeros);
    n_samples N; n_units d; noise_samples, samples of Z drawn per input; variance."""

    h_pattern: float
    n_patterns: int
    n_samples: int
    n_units: int
    noise_samples: int
    variance: float


_PARTS = {"estimate": PointEstimate, "band": MixtureBand, "bounds": MixtureBounds, "diagnostics": Diagnostics}

# The flat names in the order earlier versions listed them (to_dict keeps it).
_FLAT_ORDER = (
    "i_xz", "h_z", "h_z_given_x", "h_z_gaussian_upper", "i_xz_bounds", "h_z_bounds", "i_zy", "i_zy_bounds",
    "h_z_given_y", "i_xz_stderr", "i_xz_stderr_data", "i_zy_stderr", "i_xz_loo", "h_pattern", "n_patterns",
    "n_samples", "n_units", "noise_samples", "variance", "i_xz_lower", "i_xz_upper", "log_n", "i_xz_sensitivity",
    "saturated", "i_zy_lower", "i_zy_upper", "h_y", "i_zy_saturated", "i_xz_terms",
)  # fmt: skip


@dataclass(frozen=True)
class GaussianDropoutMI:
    """Result of :func:`~infodrop.mi.gaussian_dropout_mi`, in nats: ``estimate``
    (:class:`PointEstimate`), ``band`` (:class:`MixtureBand`), ``bounds`` (:class:`MixtureBounds`)
    and ``diagnostics`` (:class:`Diagnostics`). Every field of a part is also a read-only
    attribute of the result under its own name (``result.i_xz`` is ``result.estimate.i_xz``)."""

    estimate: PointEstimate
    band: MixtureBand
    bounds: MixtureBounds
    diagnostics: Diagnostics

    @classmethod
    def from_fields(cls, **fields: Any) -> "GaussianDropoutMI":
        """The result from its flat names (each part takes the names it declares); TypeError
        naming any name no part declares."""
        unknown = sorted(set(fields) - set(_OWNER))
        if unknown:
            raise TypeError(f"GaussianDropoutMI has no field {', '.join(unknown)}")
        parts = {part: {} for part in _PARTS}
        for name, value in fields.items():
            parts[_OWNER[name]][name] = value
        return cls(**{part: kind(**parts[part]) for part, kind in _PARTS.items()})

    def to_dict(self) -> dict[str, Any]:
        """The flat names and their values, in the order of earlier versions (what
        ``dataclasses.asdict`` gave when the result was flat)."""
        return {name: getattr(self, name) for name in _FLAT_ORDER}


# Which part holds each flat name: one table, from the parts' own fields.
_OWNER = {spec.name: part for part, kind in _PARTS.items() for spec in dataclasses.fields(kind)}
assert set(_OWNER) == set(_FLAT_ORDER), "every flat name has exactly one part"


def _flat_property(part: str, name: str) -> property:
    def read(self: GaussianDropoutMI) -> Any:
        return getattr(getattr(self, part), name)

    read.__name__ = name
    read.__doc__ = f"``{part}.{name}`` (kept under its flat name for compatibility)."
    return property(read)


for _name, _part in _OWNER.items():
    setattr(GaussianDropoutMI, _name, _flat_property(_part, _name))
del _name, _part
