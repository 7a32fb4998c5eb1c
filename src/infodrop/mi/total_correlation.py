"""Total correlation of a Gaussian: how far a set of variables is from independent, as Achille &
Soatto (TPAMI 2018, Section 8, Fig. 5) measure the disentanglement of a layer's representation
(their ``normal_tc``)."""

from __future__ import annotations

from typing import Any

import torch

from infodrop.checks import as_matrix

__all__ = ["gaussian_total_correlation"]


def gaussian_total_correlation(samples: Any) -> float:
    """Total correlation of a Gaussian with the samples' covariance, per dimension (nats).

    samples: M x d (M observations of d variables). With C the sample covariance (ddof 1) and
    D its diagonal, TC = -0.5 * log det(D^-1 C) / d = -0.5 * log det(R) / d, R the correlation
    matrix: the KL from the Gaussian to the product of its marginals, divided by d as the
    original ``normal_tc`` does. Computed in float64. Raises ValueError when C is singular
    (e.g. d >= M, or a constant variable), where the estimate is infinite.
    """
    data = as_matrix(samples, "samples", dtype=torch.float64, min_rows=2)
    count, dim = data.shape
    singular = (
        f"the covariance of the {dim} variables over {count} samples is singular, so the total "
        "correlation is infinite; use more samples than variables"
    )
    if count - 1 < dim:  # a sample covariance has rank at most count - 1
        raise ValueError(singular)
    centred = data - data.mean(dim=0, keepdim=True)
    covariance = centred.T @ centred / (count - 1)
    scale = covariance.diagonal().sqrt()
    if bool((scale == 0).any()):
        raise ValueError(f"samples has {int((scale == 0).sum())} constant column(s); their correlation is undefined")
    correlation = covariance / scale[:, None] / scale[None, :]
    # Eigenvalues of R sum to dim; one below dim * float64 epsilon is rounding noise around zero,
    # where log det would be a meaningless large number instead of -inf.
    eigenvalues = torch.linalg.eigvalsh(correlation)
    if float(eigenvalues.min()) <= dim * torch.finfo(torch.float64).eps * float(eigenvalues.max()):
        raise ValueError(singular)
    return float(-0.5 * eigenvalues.log().sum() / dim)
