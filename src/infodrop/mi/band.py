"""Bands and saturation for the Gaussian-dropout mixture estimator of I(X;Z) and I(Z;Y).

The N inputs x_1..x_N are a sample from the continuous input distribution, and the quantities
of interest are I(X;Z) and I(Z;Y) of that distribution, not of the N-point mixture. Each sample
z of Z is drawn from the component p_i = N(f_i, variance diag(f_i^2)) of its input i (S samples
per input), and :func:`infodrop.mi.mixture.mixture_pass` scores it against all N components.

Lower estimate of I(X;Z): the multi-sample bound with the true critic
-----------------------------------------------------------------------
    t(z) = log p_i(z) - log (1/N) sum_j p_j(z)                          (own component included)

is the InfoNCE term with the exact critic log p(z|x) (van den Oord et al. 2018; Poole et al.,
"On variational bounds of mutual information", ICML 2019, eq. (10)-(12)). Over draws of the
inputs and of the noise, E[t] <= I(X;Z), and t <= log N for every sample (the sum contains
p_i(z) itself). Its mean is ``i_xz`` without the control variate (the two have the same
expectation up to O(1/M)); here the plain mean is used so that the lower estimate never exceeds
log N.

Upper estimate of I(X;Z): leave one out
---------------------------------------
    u(z) = log p_i(z) - log (1/(N-1)) sum_{j != i} p_j(z)

is the leave-one-out upper bound of Poole et al. (eq. (13)): the x_j, j != i, are independent of
z, so by Jensen E[-log (1/(N-1)) sum_{j != i} p_j(z)] >= -log p(z), and E[u] >= I(X;Z). It is
+inf when some input shares its zero pattern with no other input (ReLU features; nothing in the
sample can then bound the pattern entropy from above).

Standard errors and the band
----------------------------
Per input, t_i and u_i are the means over its S samples; the standard error of the mean over
inputs is std(t_i) / sqrt(N). The t_i are independent draws of (x_i, noise) up to the shared
mixture in the denominator, whose first-order effect is constant: including an x_k as a
component changes the expected sum over the other samples by E_{z ~ p}[p(z|x_k) / p(z)] = 1 for
every x_k. So std(t_i)/sqrt(N) contains the data variance and the Monte Carlo variance both
(var t_i = var_x E[t|x] + E var(t|x) / S). The band is

    i_xz_lower = mean(t) - BAND_Z * SE(t),     i_xz_upper = mean(u) + BAND_Z * SE(u),

with BAND_Z = 2. Since E mean(t) <= I <= E mean(u), the truth lies outside the band only if
mean(t) exceeds its own expectation by 2 SE or mean(u) falls short of its expectation by 2 SE;
with normal means each has probability Phi(-2) = 0.0228, so the band covers the truth with
probability at least 1 - 2 Phi(-2) = 0.954 (nominal; more where the finite-N bias widens it).
docs/band_coverage.md measures the rate on the toy problem.

Saturation
----------
Write the own component's share of the mixture at z (its posterior responsibility) as
w(z) = p_i(z) / sum_j p_j(z) = exp(t(z)) / N, so t = log N + log w = log N - log(1 + R) with
R = sum_{j != i} p_j(z) / p_i(z). If the truth grows by delta nats in the sense that every
density ratio p_j(z) / p_i(z), j != i, shrinks by exp(-delta), the lower estimate grows by

    d mean(t) / d delta = mean( R / (1 + R) ) = 1 - mean(w)  =: i_xz_sensitivity.

When the other components carry most of the mass at z (w ~ 0) the estimate follows the truth
one to one; when the own component dominates (w ~ 1) the number is pinned at log N and measures
N, not the network. ``saturated`` is True when the estimate moves less than half as much as the
truth, with the standard error of mean(w) counted against it:

    saturated  <=>  i_xz_sensitivity - BAND_Z * SE(w) < 1/2.

If the pointwise information log p_i(z)/p(z) were the constant I, then R ~ (N-1) e^{-I} and the
sensitivity is 1 - e^{-h} with headroom h = log N - mean(t): the criterion becomes h < log 2,
i.e. I > log N. Averaged over the actual per-sample terms, 1 - mean(w) <= 1 - exp(-h) (Jensen),
so the per-sample criterion is the stricter one; on the toy problem it sits slightly below the
measured finite-difference slope d mean(t)/dI (tests/mi/test_dropout_band.py).

I(Z;Y) with discrete labels
---------------------------
Ceiling: I(Z;Y) <= H(Y); ``h_y`` is the plug-in H(Y) of the N labels.

* Lower (Barber & Agakov, "The IM algorithm", NIPS 2003): for any classifier q(y|z) that does
  not look at (x_i, z, y_i), E[log q(y_i|z)] <= -H(Y|Z). The leave-one-out class posterior of
  the mixture, q_{-i}(y|z) = sum_{j != i, y_j = y} p_j(z) / sum_{j != i} p_j(z), is such a
  classifier; it is mixed with weight 1/N with the label frequencies of the other inputs, so
  that a sample whose zero pattern no other input of its class shares scores a finite
  log q (any fixed rule applied to the other inputs keeps the bound). With the plug-in entropy
  (E H_plugin <= H(Y)), the per-input term is -log(n_{y_i}/N) + mean_s log q(y_i|z), and
  E[mean] <= I(Z;Y); it is <= h_y for every sample. -inf when a class has a single sample.
* Upper: I(Z;Y) = h(Z) - h(Z|Y), with E[-log p_{N,-i}(z)] >= h(Z) (as above) and
  E[-log p_{N_y}(z)] <= h(Z|Y=y) (concavity: the class mixture with its own component is
  sampled by its own components), so the per-sample term log p_{N_y}(z) - log p_{N,-i}(z) has
  expectation >= I(Z;Y). +inf under the same condition as i_xz_upper.
* Saturation: the point estimate ``i_zy`` uses the mixtures with the own component, so its
  per-sample term is log(N/n_y) + log(w + (1 - w) q) with q = q_{-i}(y_i|z): as w -> 1 it tends
  to the plug-in H(Y) whatever the classes look like. Its sensitivity to the class information
  log q is (1 - w) q / (w + (1 - w) q); ``i_zy_saturated`` applies the same 1/2 rule to the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from infodrop.mi.mixture import MixturePass

__all__ = ["BAND_Z", "XZBand", "ZYBand", "xz_band", "zy_band"]

# Half-width of the band in standard errors: coverage >= 1 - 2 Phi(-2) = 0.954.
BAND_Z = 2.0
# The sensitivity below which an estimate counts as saturated.
SATURATION_SENSITIVITY = 0.5


@dataclass(frozen=True)
class XZBand:
    """Band edges (nats), sensitivity and flag; the estimates and standard errors behind the
    edges: lower = lower_estimate - BAND_Z * lower_stderr, upper likewise with +. lower_terms:
    the N per-input terms t_i (float64, nats) whose mean is lower_estimate, for paired tests of
    a change between two epochs on the same inputs (infodrop.study.paired_change)."""

    lower: float
    upper: float
    sensitivity: float
    saturated: bool
    lower_estimate: float
    lower_stderr: float
    upper_estimate: float
    upper_stderr: float
    lower_terms: torch.Tensor | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ZYBand:
    lower: float
    upper: float
    h_y: float
    sensitivity: float
    saturated: bool


def _mean_and_stderr(per_input: torch.Tensor) -> tuple[float, float]:
    """Mean over inputs and its standard error std / sqrt(N) (0 for one input; the mean is then
    exact or not a sample, and an infinite mean keeps its infinity)."""
    n = per_input.shape[0]
    mean = float(per_input.mean())
    if n < 2 or not math.isfinite(mean):
        return mean, 0.0
    return mean, float(per_input.std(unbiased=True)) / math.sqrt(n)


def _saturated(sensitivity_per_input: torch.Tensor) -> tuple[float, bool]:
    value, stderr = _mean_and_stderr(sensitivity_per_input)
    return value, value - BAND_Z * stderr < SATURATION_SENSITIVITY


def xz_band(passes: MixturePass, n: int, noise_samples: int) -> XZBand:
    """The band [i_xz_lower, i_xz_upper] on I(X;Z) and the saturation flag (module docstring).

    passes: a full :class:`MixturePass` over all M = N * noise_samples rows with the
    leave-one-out column. With N = 1 there is no other input: the lower estimate is 0 (exact),
    the upper +inf.
    """
    s = noise_samples
    t = (passes.neg_log_p - passes.neg_log_self).reshape(n, s)
    terms = t.mean(1)
    lower, lower_se = _mean_and_stderr(terms)
    if n > 1:
        upper, upper_se = _mean_and_stderr((passes.neg_log_loo - passes.neg_log_self).reshape(n, s).mean(1))
    else:
        upper, upper_se = math.inf, 0.0
    own_share = torch.exp(t - math.log(n))
    sensitivity, saturated = _saturated(1.0 - own_share.mean(1))
    return XZBand(
        lower - BAND_Z * lower_se, upper + BAND_Z * upper_se, sensitivity, saturated, lower, lower_se, upper, upper_se,
        terms.detach().to("cpu", torch.float64),
    )


def zy_band(passes: MixturePass, labels: torch.Tensor, n: int, noise_samples: int) -> ZYBand:
    """The band [i_zy_lower, i_zy_upper] on I(Z;Y), the plug-in H(Y) and the saturation of i_zy.

    labels: N int64 class indices 0..C-1; passes must carry the class columns.
    """
    s = noise_samples
    own_class = labels.repeat_interleave(s)
    counts = torch.bincount(labels).to(torch.float64)
    n_y = counts[own_class]
    log_p_y = (n_y / n).log()
    h_y = float(-(counts[counts > 0] / n * (counts[counts > 0] / n).log()).sum())
    if n < 2:
        return ZYBand(0.0, math.inf, h_y, 0.0, True)
    # log sum_{j != i} p_j(z) and log sum_{j != i, y_j = y_i} p_j(z) (up to the same constant).
    log_rest = math.log(n - 1) - passes.neg_log_loo
    log_rest_class = (n_y - 1).clamp(min=1).log() - passes.neg_log_class_loo
    log_prior = (n_y - 1).log() - math.log(n - 1)  # label frequency among the other inputs
    kernel = torch.where(torch.isfinite(log_rest), log_rest_class - log_rest, log_prior)
    log_q = torch.logaddexp(kernel + math.log1p(-1.0 / n), log_prior - math.log(n))
    lower, lower_se = _mean_and_stderr((log_q - log_p_y).reshape(n, s).mean(1))
    upper_terms = passes.neg_log_loo - passes.neg_log_class
    upper, upper_se = _mean_and_stderr(upper_terms.reshape(n, s).mean(1))
    own_share = torch.exp(passes.neg_log_p - passes.neg_log_self - math.log(n))
    q = kernel.exp()
    mixed = own_share + (1.0 - own_share) * q
    sensitivity_terms = torch.where(mixed > 0, (1.0 - own_share) * q / mixed, torch.zeros_like(mixed))
    sensitivity, saturated = _saturated(sensitivity_terms.reshape(n, s).mean(1))
    return ZYBand(lower - BAND_Z * lower_se, upper + BAND_Z * upper_se, h_y, sensitivity, saturated)
