"""The one interface of the baseline estimators of I(X;Y): x and y in, an :class:`MIEstimate` out.

An estimator is any callable ``estimator(x, y, **options) -> MIEstimate`` with x of shape
N x d_x and y of shape N x d_y (1-D means one column; class labels where the estimator takes
them). The functions ``name_mi(x, y, **options) -> float`` of this package are the same
estimates as plain numbers; :mod:`infodrop.mi.registry` puts each behind this interface by name.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

__all__ = ["MIEstimate", "MIEstimator", "mean_estimate", "returns_value"]


@dataclass(frozen=True)
class MIEstimate:
    """An estimate of I(X;Y) in nats.

    value: the estimate (nats).
    stderr: its standard error (nats) where the estimator has one (the spread of the held-out
        terms it averages over the square root of their number), else None.
    """

    value: float
    stderr: float | None = None

    def __float__(self) -> float:
        return self.value


class MIEstimator(Protocol):
    """``estimator(x, y, **options) -> MIEstimate``: x is N x d_x, y is N x d_y or N labels."""

    def __call__(self, x: Any, y: Any, **options: Any) -> MIEstimate: ...


def mean_estimate(terms: torch.Tensor) -> MIEstimate:
    """The mean of ``terms`` (shape n, nats; accumulated in float64) with its standard error
    std / sqrt(n), None for fewer than two terms."""
    terms = terms.double().flatten()
    value = float(terms.mean())
    stderr = float(terms.std() / math.sqrt(terms.numel())) if terms.numel() >= 2 else None
    return MIEstimate(value, stderr)


def returns_value(estimator: Callable[..., MIEstimate], name: str) -> Callable[..., float]:
    """The ``name_mi(x, y, **options) -> float`` form of an estimator that returns an
    :class:`MIEstimate`: the same arguments and checks, the value alone."""

    @functools.wraps(estimator)
    def value(x: Any, y: Any, **options: Any) -> float:
        return estimator(x, y, **options).value

    value.__name__ = value.__qualname__ = name
    value.__signature__ = inspect.signature(estimator).replace(return_annotation="float")  # type: ignore[attr-defined]
    value.__doc__ = f"{estimator.__doc__}\n\n    ``{name}`` returns the estimate's value alone, as a float (nats).\n    "
    return value
