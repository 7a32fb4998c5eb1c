"""I(X;Z_S) for random subsets S of a representation's units (issue 9, sub-representation planes).

Z_S is the Gaussian-dropout representation restricted to the units in S. By data processing
(Z_S is a function of Z), I(X;Z_S) <= I(X;Z), and for a small subset it stays below the log N
ceiling of the mixture estimate when the full layer does not, so its dynamics remain visible
in an information plane. Each subset is estimated with :func:`infodrop.mi.gaussian_dropout_mi`
on the columns of S (its own noise seed, derived from ``seed`` and the subset's position).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from infodrop.checks import as_matrix, check_int, resolve_device
from infodrop.mi.dropout import gaussian_dropout_mi

__all__ = ["UnitSubsetMI", "unit_subset_mi", "choose_unit_subsets"]


@dataclass(frozen=True)
class UnitSubsetMI:
    """Result of :func:`unit_subset_mi` (nats).

    mean, std: mean and sample standard deviation (ddof 1; 0 for one subset) of ``values``
    over the subsets. values: i_xz of each subset. lower, upper: each subset's band
    (i_xz_lower, i_xz_upper). saturated: True when any subset's estimate is saturated (a bool,
    as ``GaussianDropoutMI.saturated``); saturated_subsets: each subset's flag. subsets: the unit indices of
    each subset (sorted). k: units per subset.
    i_zy_mean, i_zy_std, i_zy_values: the same for I(Z_S;Y) when ``labels`` are given (the
    y coordinate of a sub-representation's information plane), else None.
    sensitivity: each subset's i_xz_sensitivity (nats moved per nat of true change).
    terms: each subset's per-input terms of its lower estimate (GaussianDropoutMI.i_xz_terms).
    """

    mean: float
    std: float
    values: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    saturated: bool
    saturated_subsets: tuple[bool, ...]
    subsets: tuple[tuple[int, ...], ...]
    k: int
    i_zy_mean: float | None = None
    i_zy_std: float | None = None
    i_zy_values: tuple[float, ...] | None = None
    terms: tuple[np.ndarray, ...] | None = field(default=None, repr=False, compare=False)
    sensitivity: tuple[float, ...] | None = None


def choose_unit_subsets(n_units: int, k: int, subsets: int, seed: int) -> list[tuple[int, ...]]:
    """``subsets`` distinct k-subsets of range(n_units), drawn uniformly without replacement;
    all C(n_units, k) of them (in lexicographic order) when there are no more than requested.
    Deterministic given the seed."""
    if math.comb(n_units, k) <= subsets:
        return list(itertools.combinations(range(n_units), k))
    rng = np.random.default_rng([int(seed), n_units, k])
    chosen: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    while len(chosen) < subsets:
        subset = tuple(sorted(int(u) for u in rng.choice(n_units, size=k, replace=False)))
        if subset not in seen:
            seen.add(subset)
            chosen.append(subset)
    return chosen


def _subset_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def unit_subset_mi(
    features: Any,
    variance: float,
    k: int,
    *,
    subsets: int = 8,
    noise_samples: int = 10,
    seed: int = 0,
    device: Any = None,
    labels: Any = None,
) -> UnitSubsetMI:
    """Estimate I(X;Z_S) for random subsets S of k units of a Gaussian-dropout representation.

    Args:
        features: f(x_i) of N inputs, N x d (array or tensor), as for gaussian_dropout_mi.
        variance: the Gaussian-dropout variance (> 0).
        k: units per subset, 1 <= k <= d.
        subsets: number of distinct subsets (>= 1); when d choose k is not larger, every
            subset is used once, so ``values`` may be shorter than ``subsets``.
        noise_samples, device: as for gaussian_dropout_mi (pairwise bounds are not computed).
        seed: chooses the subsets and, with each subset's position, its noise (>= 0).
        labels: optional N class labels: I(Z_S;Y) of each subset too (``i_zy_*``).

    Returns:
        :class:`UnitSubsetMI`; ``mean`` estimates the average of I(X;Z_S) over k-subsets.
    """
    dev = resolve_device(device)
    f = as_matrix(features, "features", dtype=torch.float64, device=dev)
    n_units = f.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_units:
        raise ValueError(f"k must be an integer from 1 to the number of units ({n_units}), got {k!r}")
    subsets = check_int(subsets, "subsets", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    chosen = choose_unit_subsets(n_units, int(k), subsets, seed)
    results = []
    for index, units in enumerate(chosen):
        results.append(
            gaussian_dropout_mi(
                f[:, list(units)],
                variance,
                noise_samples=noise_samples,
                seed=_subset_seed(seed, index),
                device=dev,
                bounds=False,
                labels=labels,
            )
        )
    values = tuple(r.i_xz for r in results)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    zy = {}
    if labels is not None:
        zy_values = tuple(r.i_zy for r in results)
        zy = {"i_zy_values": zy_values, "i_zy_mean": float(np.mean(zy_values)),
              "i_zy_std": float(np.std(zy_values, ddof=1)) if len(zy_values) > 1 else 0.0}
    return UnitSubsetMI(
        mean=float(np.mean(values)),
        std=std,
        values=values,
        lower=tuple(r.i_xz_lower for r in results),
        upper=tuple(r.i_xz_upper for r in results),
        saturated=any(bool(r.saturated) for r in results),
        saturated_subsets=tuple(bool(r.saturated) for r in results),
        subsets=tuple(chosen),
        k=int(k),
        terms=tuple(r.i_xz_terms for r in results),
        sensitivity=tuple(r.i_xz_sensitivity for r in results),
        **zy,
    )
