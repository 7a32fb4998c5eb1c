"""Binning (histogram plug-in) estimator of mutual information, as used for the information
planes of Shwartz-Ziv & Tishby (2017) and Saxe et al. (ICLR 2018), and as the baseline of
Adilova, Geiger & Fischer (ICLR 2023, Section 4 and Appendix A.8, Figs. 4 and 14).

Every entry of a representation is put into one of a set of equal-width bins that span the
GLOBAL range of the array (the minimum and maximum over all of its entries, not per column);
the tuple of bin indices of a row is one discrete symbol, and the mutual information of the
symbols is the plug-in value ``H(X_b) + H(Y_b) - H(X_b, Y_b)`` in nats.

This module also holds the input handling shared by the baseline estimators (``_as_pair``):
validation at the door through :mod:`infodrop.checks`, and the rule that decides when ``y`` is
a vector of class labels.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from infodrop.checks import as_labels, as_matrix, check_int, check_positive

__all__ = ["binning_mi", "binning_entropy", "binning_coverage", "binning_saturated", "SATURATION_COVERAGE", "SaturatedEstimateWarning"]

# Below this Good-Turing coverage of the binned rows, most rows sit in a cell of their own and
# the plug-in value is pressed against log N: it measures the sample size, not the dependence.
# The one owner of the rule; the information plane flags its binning points with it too.
SATURATION_COVERAGE = 0.5
# Bin indices are computed in float64, which counts integers exactly only up to 2**52.
_MAX_BINS_PER_SPAN = 2.0**52


class SaturatedEstimateWarning(UserWarning):
    """A binning estimate is pressed against log N (see :func:`binning_saturated`)."""


# --------------------------------------------------------------------------- shared input handling


def _is_integer_dtype(y: Any) -> bool:
    if isinstance(y, torch.Tensor):
        return not y.is_floating_point() and not y.is_complex()
    array = np.asarray(y)
    return np.issubdtype(array.dtype, np.integer) or array.dtype == bool


def _is_one_column(y: Any) -> bool:
    shape = tuple(y.shape) if hasattr(y, "shape") else np.shape(y)
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def _as_pair(
    x: Any,
    y: Any,
    *,
    y_discrete: bool | None = None,
    min_rows: int = 2,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate ``x`` and ``y`` and return ``(x, y, y_is_labels)``.

    ``x`` becomes a float64 array N x d_x. ``y`` becomes either int64 labels of shape N (when it
    is a vector of class labels) or a float64 array N x d_y. ``y_discrete=None`` decides from the
    dtype: a one-column integer or boolean ``y`` is taken as labels, anything else as continuous.
    """
    if y_discrete not in (None, True, False):
        raise ValueError(f"y_discrete must be None (decide from the dtype), True or False, got {y_discrete!r}")
    x_matrix = as_matrix(x, "x", min_rows=min_rows).numpy()
    n_rows = x_matrix.shape[0]
    if y_discrete is None:
        y_discrete = _is_integer_dtype(y) and _is_one_column(y)
    if y_discrete:
        labels = as_labels(y, "y", n_rows).numpy()
        return x_matrix, labels, True
    y_matrix = as_matrix(y, "y", min_rows=1).numpy()
    if y_matrix.shape[0] != n_rows:
        raise ValueError(
            f"x and y must hold the same samples: x has {n_rows} rows but y has {y_matrix.shape[0]}; "
            "pass one row of y per row of x"
        )
    return x_matrix, y_matrix, False


def _entropy_of_counts(counts: np.ndarray) -> float:
    """Plug-in (maximum-likelihood) entropy in nats of a histogram of counts."""
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    return float(math.log(total) - np.dot(counts, np.log(counts)) / total)


def _symbols(rows: np.ndarray) -> np.ndarray:
    """One int64 symbol per row: rows that are equal get the same symbol (np.unique on axis 0)."""
    if rows.ndim == 1:
        return np.unique(rows, return_inverse=True)[1].reshape(-1)
    return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)


def _plugin_mi_of_symbols(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in MI in nats of two aligned vectors of non-negative int64 symbols."""
    joint = a.astype(np.int64) * (int(b.max()) + 1) + b.astype(np.int64)
    h_a = _entropy_of_counts(np.bincount(a))
    h_b = _entropy_of_counts(np.bincount(b))
    h_ab = _entropy_of_counts(np.unique(joint, return_counts=True)[1])
    # H(A) + H(B) - H(A, B) >= 0 exactly; a negative value is round-off only.
    return max(h_a + h_b - h_ab, 0.0)


# --------------------------------------------------------------------------------- the estimator


# Without options: 30 equal-width bins over the global range, the number of Shwartz-Ziv &
# Tishby (2017) and Saxe et al. (ICLR 2018); the information planes also record 10 and 100.
DEFAULT_BINS = 30


def _check_bins(bins: Any, bin_size: Any) -> tuple[int | None, float | None]:
    if bins is None and bin_size is None:
        return DEFAULT_BINS, None
    if bins is not None and bin_size is not None:
        raise ValueError(
            "give at most one of bins (the number of equal-width bins over the global range) and "
            f"bin_size (their width); got bins={bins!r}, bin_size={bin_size!r}"
        )
    if bins is not None:
        return check_int(bins, "bins", minimum=1), None
    return None, check_positive(bin_size, "bin_size")


def _check_bin_size(values: np.ndarray, bin_size: float | None, name: str) -> None:
    """Refuse a ``bin_size`` so small against the range of ``values`` that the bin indices
    overflow or lose their integer precision (the result would be a number from garbage)."""
    if bin_size is None:
        return
    span = float(values.max()) - float(values.min())
    if span / bin_size > _MAX_BINS_PER_SPAN:
        raise ValueError(
            f"bin_size={bin_size:g} is too small for the range {span:g} of {name}: it makes {span / bin_size:.3g} bins, "
            f"beyond the 2**52 that float64 indexes exactly; use bin_size >= {span / _MAX_BINS_PER_SPAN:.3g}, or give bins (a number of bins) instead"
        )


def _bin_indices(values: np.ndarray, bins: int | None, bin_size: float | None) -> np.ndarray:
    """Equal-width bin index of every entry, bins spanning [min, max] over ALL entries of ``values``."""
    low = float(values.min())
    high = float(values.max())
    if bin_size is None:
        width = (high - low) / bins
        if width == 0.0:  # a constant array: everything falls into the first bin
            return np.zeros(values.shape, dtype=np.int64)
        index = np.floor((values - low) / width).astype(np.int64)
        # The maximum itself lands on the right edge of the last bin, which is closed.
        return np.minimum(index, bins - 1)
    return np.floor((values - low) / bin_size).astype(np.int64)


def binning_entropy(x: Any, *, bins: int | None = None, bin_size: float | None = None) -> float:
    """Plug-in entropy H(X_b) in nats of the binned rows of ``x``.

    Args:
        x: array or tensor, N x d (1-D = one column).
        bins: number of equal-width bins over the global range [min(x), max(x)] (all entries).
        bin_size: width of the bins instead (bins start at min(x)). Give at most one of the
            two; neither means ``bins=30`` (``DEFAULT_BINS``, as Saxe et al. 2018).

    Returns:
        ``-sum_s p(s) log p(s)`` over the distinct binned rows s, in nats; at most log N.

    Bias: the plug-in entropy of a discrete variable is biased low (by about
    (K - 1) / (2N) for K occupied symbols, Miller-Madow). Cost: O(N d log N) time (sorting rows),
    O(N d) memory.
    """
    bins, bin_size = _check_bins(bins, bin_size)
    matrix = as_matrix(x, "x").numpy()
    symbols = _symbols(_bin_indices(matrix, bins, bin_size))
    return _entropy_of_counts(np.bincount(symbols))


def binning_mi(
    x: Any,
    y: Any,
    *,
    bins: int | None = None,
    bin_size: float | None = None,
    y_discrete: bool | None = None,
    warn_saturated: bool = True,
) -> float:
    """Binning estimate of I(X; Y) in nats: ``H(X_b) + H(Y_b) - H(X_b, Y_b)``.

    Algorithm: the entries of ``x`` are put into equal-width bins over the global range of ``x``
    (minimum and maximum over all entries, as in Saxe et al. 2018 and Adilova et al. 2023), those
    of ``y`` likewise over the global range of ``y``; each row's tuple of bin indices is one
    discrete symbol (rows hashed with ``np.unique(axis=0)``), and the entropies are plug-in
    entropies of the symbol frequencies. Class labels ``y`` are used as symbols directly.

    Args:
        x: array or tensor, N x d_x (1-D = one column); real-valued, finite.
        y: array or tensor, N x d_y, or N integer class labels.
        bins: number of equal-width bins over the global range (the same number for x and y).
        bin_size: bin width instead of a number (the same width for x and y). At most one of
            ``bins`` and ``bin_size``; neither means ``bins=30`` (``DEFAULT_BINS``: the number of
            Shwartz-Ziv & Tishby 2017 and Saxe et al. 2018), so ``binning_mi(x, y)`` works.
        y_discrete: True: ``y`` are class labels; False: ``y`` is binned like ``x``; None (default):
            a one-column integer/boolean ``y`` is labels, anything else is binned.
        warn_saturated: warn in one line (:class:`SaturatedEstimateWarning`) when the value is
            saturated (:func:`binning_saturated`, the flag of the information plane's binning).

    Returns:
        The plug-in MI in nats, in [0, min(H(X_b), H(Y_b))] and so at most log N.

    A ``bin_size`` that makes more than 2**52 bins over the range is refused (ValueError).

    Assumptions and bias: the estimate is the MI of the *binned* variables, a property of the
    chosen bins more than of X and Y (Saxe et al. 2018; Adilova et al. 2023, Sec. 2). For
    continuous data it underestimates with large bins (binning loses information, data
    processing inequality) and overestimates with small bins (the plug-in estimate is biased high
    by about (K_xy - K_x - K_y + 1) / (2N) for K occupied cells); for a deterministic map of N
    distinct inputs it saturates at log N as the bins shrink.

    Cost: O(N (d_x + d_y) log N) time for sorting the rows, O(N (d_x + d_y)) memory.
    """
    x_symbols, y_symbols, y_is_labels = _binned_pair(x, y, bins, bin_size, y_discrete)
    value = _plugin_mi_of_symbols(x_symbols, y_symbols)
    if warn_saturated and _coverage_of_symbols(_saturation_symbols(x_symbols, y_symbols, y_is_labels)) < SATURATION_COVERAGE:
        warnings.warn(
            f"binning_mi: most binned rows sit in a cell of their own (coverage below {SATURATION_COVERAGE}), so "
            f"{value:.3g} nats is pinned by the sample size (its ceiling is at most log N = {math.log(len(x_symbols)):.3g}), "
            "not a measure of the dependence; use fewer bins or more samples (binning_saturated says the same)",
            SaturatedEstimateWarning,
            stacklevel=2,
        )
    return value


def _binned_pair(x: Any, y: Any, bins: Any, bin_size: Any, y_discrete: bool | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """The validated pair as two aligned int64 symbol vectors (rows of bin indices, or labels),
    and whether y is class labels."""
    bins, bin_size = _check_bins(bins, bin_size)
    x_matrix, y_values, y_is_labels = _as_pair(x, y, y_discrete=y_discrete, min_rows=1)
    _check_bin_size(x_matrix, bin_size, "x")
    x_symbols = _symbols(_bin_indices(x_matrix, bins, bin_size))
    if y_is_labels:
        return x_symbols, _symbols(y_values), True
    _check_bin_size(y_values, bin_size, "y")
    return x_symbols, _symbols(_bin_indices(y_values, bins, bin_size)), False


def _coverage_of_symbols(symbols: np.ndarray) -> float:
    counts = np.bincount(symbols)
    return 1.0 - float(np.count_nonzero(counts == 1)) / len(symbols)


def _saturation_symbols(x_symbols: np.ndarray, y_symbols: np.ndarray, y_is_labels: bool) -> np.ndarray:
    # Class labels: the x cells decide (the plane's rule, where y may be the input's index);
    # binned y: the joint cells, whose singletons pin H(X_b, Y_b) at log N.
    if y_is_labels:
        return x_symbols
    return _symbols(np.stack([x_symbols, y_symbols], axis=1))


def binning_saturated(
    x: Any, y: Any, *, bins: int | None = None, bin_size: float | None = None, y_discrete: bool | None = None
) -> bool:
    """Whether :func:`binning_mi` with the same arguments is saturated: the Good-Turing coverage
    (:func:`binning_coverage`) of the binned rows of x (class labels y) or of the joint binned
    rows (binned y) is below ``SATURATION_COVERAGE`` = 0.5, so most rows sit in a cell of their
    own and the value measures N, not the dependence."""
    x_symbols, y_symbols, y_is_labels = _binned_pair(x, y, bins, bin_size, y_discrete)
    return _coverage_of_symbols(_saturation_symbols(x_symbols, y_symbols, y_is_labels)) < SATURATION_COVERAGE


def binning_coverage(x: Any, *, bins: int | None = None, bin_size: float | None = None) -> float:
    """Good-Turing sample coverage of the binned rows of ``x``: ``1 - f1 / N``, f1 the number of
    binned rows that occur exactly once among the N rows.

    f1 / N is Good's (1953) estimate of the probability that one more row falls into a cell not
    seen in the sample, so the coverage estimates the probability mass of the cells that were
    seen. Near 1 the histogram has seen the distribution of the binned variable and the plug-in
    entropy measures it; near 0 almost every row sits in a cell of its own, the plug-in entropy
    is pressed against log N and measures the sample size (with one row per input, every
    row alone gives exactly log N). Bins as in :func:`binning_entropy` (global range).

    Returns:
        A number in [0, 1].
    """
    bins, bin_size = _check_bins(bins, bin_size)
    matrix = as_matrix(x, "x").numpy()
    counts = np.bincount(_symbols(_bin_indices(matrix, bins, bin_size)))
    return 1.0 - float(np.count_nonzero(counts == 1)) / matrix.shape[0]
