"""Information-plane estimates for information dropout (Achille & Soatto, TPAMI 2018), as used
by Adilova, Geiger & Fischer (ICLR 2023, Section 4 and Appendix A.1).

Information dropout outputs Z = f(X) * eps with log eps ~ N(0, alpha(X)^2), so given x,
log Z_k ~ N(log f_k(x), alpha_k(x)^2). The training regulariser is the KL divergence to a prior
on Z, and its average over the data is a variational UPPER bound on I(X;Z):

    I(X;Z) <= E_x sum_k KL( q(z_k | x) || p(z_k) ).

* Log-normal prior (softplus activations), Appendix A.1 eq. (7): KL between the normals of
  log z, N(log f, alpha^2) and N(mu, sigma^2):

      KL = log(sigma / alpha) + (alpha^2 + (log f - mu)^2) / (2 sigma^2) - 1/2       (nats).

  As in the original TensorFlow code, log f is taken of max(f, clamp) with clamp = 1e-4, so a
  softplus output that underflows does not give -inf; the result reports how many entries were
  clamped (``n_clamped``). Negative features are rejected (not a log-normal variable).
* Log-uniform prior (ReLU), Appendix A.1 eqs. (1)-(6): the improper prior makes the KL known
  only up to a constant, -log alpha per nonzero unit (a zero unit contributes -log of the
  unknown weight of the prior's point mass, which is dropped). That number is NOT a mutual
  information and the result says so (``is_mutual_information=False``).

I(Z;Y) is bounded from below by the decoder's cross-entropy: I(Z;Y) >= H(Y) - CE, with CE the
average cross-entropy (nats) of a classifier q(y|z) on samples of the noisy Z
(:func:`information_dropout_izy_lower`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from infodrop.checks import as_labels, as_matrix, check_finite, check_positive
from infodrop.mi.estimate import mean_estimate

__all__ = ["InformationDropoutEstimate", "information_dropout_mi", "information_dropout_izy_lower"]

PRIORS = ("log-normal", "log-uniform")


@dataclass(frozen=True)
class InformationDropoutEstimate:
    """A closed-form information-dropout estimate (nats).

    value: the number. kind: 'kl-upper-bound-on-i_xz', 'kl-up-to-constant' or
    'cross-entropy-lower-bound-on-i_zy'. bound: 'upper', 'lower' or 'none' (what ``value`` is to
    the mutual information). is_mutual_information: False when ``value`` is only a KL up to an
    unknown constant and must not be plotted as an MI. prior: the prior of the KL (or None).
    n_samples / n_units: the data's shape. n_clamped: entries where f < clamp was raised to
    clamp (log-normal prior). n_zero: entries with f == 0 (left out under the log-uniform prior).
    h_y / cross_entropy: the two terms of the I(Z;Y) lower bound (else None).
    stderr: standard error of ``value`` as an estimate of its population mean, the sample
    standard deviation of the N per-sample terms (KL, or cross-entropy) over sqrt(N); None when
    only a scalar was given or N = 1. It measures the data's sampling error of the bound, not
    the gap between the bound and the mutual information.
    """

    value: float
    kind: str
    bound: str
    is_mutual_information: bool
    prior: str | None
    n_samples: int
    n_units: int
    n_clamped: int = 0
    n_zero: int = 0
    h_y: float | None = None
    cross_entropy: float | None = None
    stderr: float | None = None


def _standard_error(per_sample: torch.Tensor) -> float | None:
    """Standard error of the mean of N per-sample values: sd (ddof 1) / sqrt(N); None for N < 2."""
    return mean_estimate(per_sample).stderr


def _estimate(per_sample: torch.Tensor, prior: str, n_units: int, **fields: Any) -> InformationDropoutEstimate:
    """The KL estimate of one prior from its per-sample values: their mean and standard error."""
    return InformationDropoutEstimate(
        value=float(per_sample.mean()),
        stderr=_standard_error(per_sample),
        prior=prior,
        n_samples=int(per_sample.shape[0]),
        n_units=n_units,
        **fields,
    )


def _as_per_sample(x: Any, name: str) -> torch.Tensor:
    """N x (anything) -> N x units float64 on CPU (conv maps N x C x H x W are flattened)."""
    tensor = x.detach() if isinstance(x, torch.Tensor) else x
    if getattr(tensor, "ndim", 0) > 2:
        tensor = tensor.reshape(tensor.shape[0], -1)
    return as_matrix(tensor, name, dtype=torch.float64, device="cpu")


def information_dropout_mi(
    features: Any,
    alpha: Any,
    *,
    mu: float = 0.0,
    sigma: float = 1.0,
    prior: str = "log-normal",
    clamp: float = 1e-4,
) -> InformationDropoutEstimate:
    """Average KL of information dropout, summed over units (Appendix A.1 eq. (7)), in nats.

    Args:
        features: noiseless activations f(x), shape N x units (N x C x H x W is flattened); >= 0.
        alpha: the noise scale (standard deviation of log eps), same shape as ``features`` or a
            positive scalar.
        mu, sigma: mean and standard deviation of the log-normal prior on log z (sigma > 0).
        prior: 'log-normal' (an upper bound on I(X;Z)) or 'log-uniform' (KL up to a constant,
            flagged ``is_mutual_information=False``).
        clamp: log f is computed as log(max(f, clamp)) for the log-normal prior (1e-4 as in the
            original code; the count of clamped entries is reported).

    Returns:
        :class:`InformationDropoutEstimate`.
    """
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    f = _as_per_sample(features, "features")
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        check_positive(alpha, "alpha")
        a = torch.full_like(f, float(alpha))
    else:
        a = _as_per_sample(alpha, "alpha")
        if a.shape != f.shape:
            raise ValueError(
                f"alpha must have the shape of features {tuple(f.shape)} (after flattening) or be a scalar, "
                f"got {tuple(a.shape)}"
            )
    if bool((a <= 0).any()):
        raise ValueError("alpha must be > 0 everywhere (it is a standard deviation); got values <= 0")
    if bool((f < 0).any()):
        raise ValueError(
            "features must be >= 0 (outputs of ReLU/softplus) for information dropout; got negative values"
        )
    d = f.shape[1]
    if prior == "log-uniform":
        nonzero = f != 0
        per_sample = torch.where(nonzero, -a.log(), torch.zeros_like(a)).sum(1)
        return _estimate(
            per_sample, prior, d, kind="kl-up-to-constant", bound="none", is_mutual_information=False,
            n_zero=int((~nonzero).sum()),
        )
    mu = float(mu)
    if not math.isfinite(mu):
        raise ValueError(f"mu must be finite, got {mu!r}")
    sigma = check_positive(sigma, "sigma")
    clamp = check_positive(clamp, "clamp")
    clamped = f < clamp
    log_f = f.clamp(min=clamp).log()
    kl = math.log(sigma) - a.log() + (a.square() + (log_f - mu).square()) / (2 * sigma**2) - 0.5
    check_finite(kl, "the KL (check features and alpha)")
    per_sample = kl.sum(1)
    return _estimate(
        per_sample, prior, d, kind="kl-upper-bound-on-i_xz", bound="upper", is_mutual_information=True,
        n_clamped=int(clamped.sum()), n_zero=int((f == 0).sum()),
    )


def information_dropout_izy_lower(labels: Any, cross_entropy: Any) -> InformationDropoutEstimate:
    """Variational lower bound I(Z;Y) >= H(Y) - CE, in nats.

    Args:
        labels: the N class labels (integers); H(Y) is their plug-in entropy.
        cross_entropy: the decoder's cross-entropy in nats: a scalar (the mean over the same N
            samples) or N per-sample values (averaged here). Use the loss on noisy samples of Z.

    Returns:
        :class:`InformationDropoutEstimate` with kind 'cross-entropy-lower-bound-on-i_zy'.
    """
    y = as_labels(labels, "labels", _length(labels))
    stderr = None
    if isinstance(cross_entropy, (int, float)) and not isinstance(cross_entropy, bool):
        ce = check_positive(cross_entropy, "cross_entropy", allow_zero=True)
    else:
        values = _as_per_sample(cross_entropy, "cross_entropy")
        if values.numel() != y.shape[0] and values.numel() != 1:
            raise ValueError(
                f"cross_entropy must be a scalar or hold one value per label ({y.shape[0]}), got {values.numel()}"
            )
        if bool((values < 0).any()):
            raise ValueError("cross_entropy must be >= 0 (it is a negative log-likelihood in nats)")
        ce = float(values.mean())
        # H(Y) is the plug-in entropy of the same labels; the spread is the cross-entropy's.
        stderr = _standard_error(values)
    _, counts = torch.unique(y, return_counts=True)
    p = counts.to(torch.float64) / y.shape[0]
    h_y = float(-(p * p.log()).sum())
    return InformationDropoutEstimate(
        value=h_y - ce,
        kind="cross-entropy-lower-bound-on-i_zy",
        bound="lower",
        is_mutual_information=True,
        prior=None,
        n_samples=int(y.shape[0]),
        n_units=0,
        h_y=h_y,
        cross_entropy=ce,
        stderr=stderr,
    )


def _length(labels: Any) -> int:
    shape = tuple(labels.shape) if hasattr(labels, "shape") else np.shape(labels)
    if len(shape) == 0:
        raise ValueError("labels must be 1-D (one label per sample), got a scalar")
    return int(shape[0])
