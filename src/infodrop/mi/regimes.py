"""Where the baseline estimators EDGE and DoE were measured to be within 20 % of the truth, and
the warning they give outside it.

Measured with ``benchmarks/baseline_regimes.py`` (table and command in ``docs/baselines.md``):
N = 10,000 samples, 3 seeds, default options, on Gaussian problems with closed-form MI at k + k
joint dimensions (k = 1, 2, 3, 5, 10, 20, 50): independent correlated pairs, one correlated pair
among independent noise, all coordinates equicorrelated ("dense", as the BMI benchmark's
multinormal-dense tasks), and binary labels with a mean shift along one axis.

- EDGE (``edge_mi``) was within 20 % only at d_x + d_y = 2 (1 + 1) with continuous y, and up to
  d_x = 3 with class labels. From 2 + 2 on it is off by -19 % to +1,900 %, mostly too high
  (every cell a vertex of its own; the ensemble cannot cancel that bias).
- DoE (``doe_mi``, Gaussian or logistic) was within 20 % up to 10 + 10 dimensions when the
  coordinates of y are uncorrelated, and up to d_x = 20 with labels. When they are correlated it
  overestimates (+27 % at 2 + 2 dense, +236 % at 10 + 10): its densities are products over the
  coordinates of y, so the cross-entropy of the marginal exceeds H(Y) by at least the total
  correlation TC(Y) = sum_i H(Y_i) - H(Y), which the conditional cancels only in part (by
  TC(Y | X)). For Gaussian y, TC(Y) = -1/2 log det R with R the correlation matrix of y. So the
  estimate is trusted only while TC(Y), estimated from the data, is at most 20 % of the
  estimate (or 0.02 nats). From 20 + 20 on, even uncorrelated y are underestimated (-56 % at
  20 + 20 with one correlated pair): the conditional model fits the noise coordinates.

Each estimator calls :func:`warnings.warn` at most once per call with an
:class:`OutsideMeasuredRegimeWarning`; the message names the reason without data-dependent
numbers, so Python's default filter shows it once per calling line.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from infodrop.mi.total_correlation import gaussian_total_correlation

__all__ = [
    "OutsideMeasuredRegimeWarning",
    "EDGE_MAX_JOINT_DIMENSIONS",
    "EDGE_MAX_DIMENSIONS_WITH_LABELS",
    "DOE_MAX_DIMENSIONS",
    "DOE_MAX_DIMENSIONS_WITH_LABELS",
    "total_correlation_of_columns",
    "warn_edge_regime",
    "warn_doe_regime",
]

EDGE_MAX_JOINT_DIMENSIONS = 2
EDGE_MAX_DIMENSIONS_WITH_LABELS = 3
DOE_MAX_DIMENSIONS = 10
DOE_MAX_DIMENSIONS_WITH_LABELS = 20
# TC(Y) above this share of the estimate (or above the floor) may bias DoE by more than 20 %.
DOE_TOTAL_CORRELATION_SHARE = 0.2
DOE_TOTAL_CORRELATION_FLOOR = 0.02  # nats; the sampling noise of TC at N = 10^4, d = 10 is 0.002

_SEE = "see docs/baselines.md"


class OutsideMeasuredRegimeWarning(UserWarning):
    """An estimator was called where it was not measured to be within 20 % of the truth."""


def _warn(message: str) -> None:
    # stacklevel 4 (_warn, warn_*_regime, edge_mi/doe_mi): the line that called the estimator.
    warnings.warn(message, OutsideMeasuredRegimeWarning, stacklevel=4)


def warn_edge_regime(x_dimensions: int, y_dimensions: int | None) -> None:
    """Warn when EDGE runs outside its measured regime; ``y_dimensions`` None means class labels."""
    if y_dimensions is None:
        if x_dimensions > EDGE_MAX_DIMENSIONS_WITH_LABELS:
            _warn(
                f"edge_mi: x has {x_dimensions} dimensions; with class labels EDGE was measured within 20 % of the "
                f"truth only up to {EDGE_MAX_DIMENSIONS_WITH_LABELS} (+29 % at 5, +75 % at 10, too high); "
                f"prefer ksg_mi or doe_mi here ({_SEE})"
            )
        return
    joint = x_dimensions + y_dimensions
    if joint > EDGE_MAX_JOINT_DIMENSIONS:
        _warn(
            f"edge_mi: x and y have {joint} dimensions together; EDGE was measured within 20 % of the truth only "
            f"up to {EDGE_MAX_JOINT_DIMENSIONS} (from 4 on it was off by -19 % to +1,900 %, mostly too high); "
            f"prefer ksg_mi or a neural estimator here ({_SEE})"
        )


def total_correlation_of_columns(y: np.ndarray) -> float:
    """TC(Y) = sum_i H(Y_i) - H(Y) of a Gaussian with the sample correlation R of the columns of
    ``y`` (N x d): -1/2 log det R in nats (the per-dimension
    :func:`~infodrop.mi.total_correlation.gaussian_total_correlation` times d); 0 for one
    column, inf when R is singular (collinear columns)."""
    if y.ndim != 2 or y.shape[1] < 2:
        return 0.0
    try:
        return y.shape[1] * gaussian_total_correlation(y)
    except ValueError:
        return math.inf


def warn_doe_regime(x_dimensions: int, y: np.ndarray | None, estimate: float) -> None:
    """Warn when DoE runs outside its measured regime. ``y``: the continuous y (N x d_y), or
    None for class labels; ``estimate``: DoE's value in nats."""
    if y is None:
        if x_dimensions > DOE_MAX_DIMENSIONS_WITH_LABELS:
            _warn(
                f"doe_mi: x has {x_dimensions} dimensions; with class labels DoE was measured within 20 % of the "
                f"truth only up to {DOE_MAX_DIMENSIONS_WITH_LABELS} (-99 % at 50); treat the value with care ({_SEE})"
            )
        return
    if max(x_dimensions, y.shape[1]) > DOE_MAX_DIMENSIONS:
        _warn(
            f"doe_mi: x and y have {x_dimensions} and {y.shape[1]} dimensions; DoE was measured within 20 % of the "
            f"truth only up to {DOE_MAX_DIMENSIONS} each (-56 % at 20 + 20 with one correlated pair, "
            f"+421 % with correlated coordinates); treat the value with care ({_SEE})"
        )
        return
    limit = max(DOE_TOTAL_CORRELATION_SHARE * abs(estimate), DOE_TOTAL_CORRELATION_FLOOR)
    if total_correlation_of_columns(y) > limit:
        _warn(
            "doe_mi: the coordinates of y are correlated (their Gaussian total correlation is above 20 % of the "
            "estimate), outside the regime where DoE was measured within 20 % of the truth; its per-coordinate "
            f"densities then overestimate I(X; Y) (+27 % to +236 % on dense Gaussians); prefer ksg_mi here ({_SEE})"
        )
