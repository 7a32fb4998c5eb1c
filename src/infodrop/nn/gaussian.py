"""Gaussian dropout (Srivastava et al., *Dropout: A Simple Way to Prevent Neural Networks from
Overfitting*, JMLR 2014, section 10): multiply each unit by independent N(1, variance) noise.

Binary dropout with drop rate p rescaled by 1/(1-p) has mean 1 and variance p/(1-p); the Gaussian
dropout with the same first two moments therefore has variance p/(1-p), i.e. standard deviation
sqrt(p/(1-p)) (the reference code of Adilova et al. used p/(1-p) as the standard deviation).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from infodrop.checks import check_in_range, check_positive

__all__ = ["GaussianDropout", "gaussian_dropout", "variance_from_rate"]


def variance_from_rate(p: float) -> float:
    """Variance p/(1-p) of the Gaussian dropout matching binary dropout of rate p in (0, 1)."""
    p = check_in_range(p, "p", 0.0, 1.0, low_open=True, high_open=True)
    return p / (1.0 - p)


def gaussian_dropout(
    x: torch.Tensor,
    variance: float,
    training: bool = True,
    *,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Return ``x * e`` with e ~ N(1, variance) independently per element when ``training``, else ``x``.

    Args:
        x: any shape. variance: the noise variance (> 0), dimensionless.
        training: draw noise only when True. generator: optional RNG for the noise.
    """
    if not training:
        return x
    variance = check_positive(variance, "variance")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x * (1.0 + math.sqrt(variance) * noise)


class GaussianDropout(nn.Module):
    """Multiplicative Gaussian noise z = x * e, e ~ N(1, variance) per unit (Srivastava et al. 2014).

    Noise only when ``self.training or self.mc`` (``mc=True`` keeps it on at inference, MC dropout).
    ``GaussianDropout.from_rate(p)`` matches binary dropout of rate p: variance p/(1-p).
    Shapes: any input; output of the same shape.
    """

    def __init__(self, variance: float, *, mc: bool = False) -> None:
        super().__init__()
        self._variance = check_positive(variance, "variance")
        self.mc = bool(mc)

    @classmethod
    def from_rate(cls, p: float, *, mc: bool = False) -> "GaussianDropout":
        """Gaussian dropout with variance p/(1-p), the moments of binary dropout of rate p in (0, 1)."""
        return cls(variance_from_rate(p), mc=mc)

    @property
    def variance(self) -> float:
        """The noise variance (the standard deviation is its square root)."""
        return self._variance

    @variance.setter
    def variance(self, value: float) -> None:
        self._variance = check_positive(value, "variance")

    @property
    def noisy(self) -> bool:
        """Whether the next forward draws noise: ``self.training or self.mc``."""
        return self.training or self.mc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_dropout(x, self._variance, self.noisy)

    def extra_repr(self) -> str:
        return f"variance={self._variance:g}, mc={self.mc}"
