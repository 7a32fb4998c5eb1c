"""Information dropout's noise, scale and KL as one step (Achille & Soatto, TPAMI 2018).

In training, an information-dropout layer turns its two branch outputs, f(x) and the pre-sigmoid
g(x), into

    alpha = 0.001 + max_alpha * sigmoid(g),      z = f * exp(alpha * sigma0 * eps),
    KL    = -log(alpha / (max_alpha + 0.001))                                 (log-uniform prior)
          = 0.5 ((alpha^2 + (log max(f, 1e-4) - mu1)^2) / sigma1^2 - 1) + log|sigma1| - log alpha
                                                                              (log-normal prior)

(Adilova et al., ICLR 2023, Appendix A.1, eqs. (5) and (7)), elementwise, then sums the KL per
sample and over channels. Written as separate torch operations, autograd keeps about five
activation-sized tensors per layer and runs a dozen elementwise kernels each way.

:class:`InformationDropoutFunction` does the same arithmetic, in the same order, in one forward
that keeps only f (which the layer keeps anyway, as ``.features``), the noise, eps and
sigmoid(g), and a backward that writes the input gradients in place with a handful of passes and
recomputes alpha (one multiply-add) instead of storing it:

    dL/df = dL/dz * e,                     e = exp(alpha sigma0 eps)
    dL/dg = (dL/dz * f * e * sigma0 eps + dL/dKL * dKL/dalpha) * max_alpha * s (1 - s),  s = sigmoid(g)
    dKL/dalpha = -1/alpha  (log-uniform),  alpha/sigma1^2 - 1/alpha  (log-normal; plus the f, mu1
    and sigma1 terms of the log-normal KL).

The output and the KL are bit for bit those of the separate operations (same noise from the same
generator, same operation order); gradients agree to rounding (tests/nn/test_information_fused.py,
with torch.autograd.gradcheck in float64). ``compiled=True`` instead hands the plain composite
(:func:`composite_step`) to torch.compile, which fuses each direction into one loop (measured
effect in benchmarks/README.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["InformationDropoutFunction", "InformationDropoutStep", "composite_step", "information_dropout_step"]

#: Added to alpha for numerical stability (the original code's 0.001): alpha lies in (0.001, 0.001 + max_alpha).
ALPHA_FLOOR = 0.001
#: The original TensorFlow code evaluates log f(x) as log(max(f(x), 1e-4)) in the log-normal KL.
LOG_FEATURE_FLOOR = 1e-4


@dataclass
class InformationDropoutStep:
    """output: z (shape of f); kl: per-sample KL summed over units (N, nats, with its graph);
    kl_map: detached per-location KL (N x H x W for N x C x H x W, summed over channels; N x d for
    N x d); alpha: detached alpha (shape of f)."""

    output: torch.Tensor
    kl: torch.Tensor
    kl_map: torch.Tensor
    alpha: torch.Tensor


def _kl_map(unit_kl: torch.Tensor) -> torch.Tensor:
    return unit_kl.sum(dim=1) if unit_kl.ndim > 2 else unit_kl


def composite_step(
    features: torch.Tensor,
    alpha_logits: torch.Tensor,
    eps: Optional[torch.Tensor],
    max_alpha: float,
    sigma0: float,
    mu1: Optional[torch.Tensor],
    sigma1: Optional[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The layer's arithmetic as separate torch operations (autograd differentiates it; what
    torch.compile fuses): returns (z, kl, kl_map, alpha) with kl_map and alpha detached.
    ``mu1``/``sigma1`` None means the log-uniform prior; ``eps`` None means no noise (z = f)."""
    alpha = ALPHA_FLOOR + max_alpha * torch.sigmoid(alpha_logits)
    if mu1 is None:
        unit_kl = math.log(max_alpha + ALPHA_FLOOR) - torch.log(alpha)
    else:
        log_features = torch.log(torch.clamp(features, min=LOG_FEATURE_FLOOR))
        unit_kl = (
            0.5 * ((alpha * alpha + (log_features - mu1) ** 2) / (sigma1 * sigma1) - 1.0)
            + torch.log(torch.abs(sigma1))
            - torch.log(alpha)
        )
    kl = unit_kl.flatten(1).sum(dim=1)
    output = features if eps is None else features * torch.exp(alpha * (sigma0 * eps))
    return output, kl, _kl_map(unit_kl.detach()), alpha.detach()


class InformationDropoutFunction(torch.autograd.Function):
    """Fused forward/backward of :func:`composite_step` with noise (see the module docstring).

    apply(features, alpha_logits, eps, mu1, sigma1, max_alpha, sigma0) -> (z, kl, kl_map, alpha);
    mu1 and sigma1 are 0-dim tensors (log-normal prior) or None (log-uniform).
    """

    @staticmethod
    def forward(ctx, features, alpha_logits, eps, mu1, sigma1, max_alpha, sigma0):
        s = torch.sigmoid(alpha_logits)
        # Same operations and order as composite_step, so the values are identical bit for bit.
        alpha = torch.mul(s, max_alpha).add_(ALPHA_FLOOR)
        if mu1 is None:
            unit_kl = torch.log(alpha).neg_().add_(math.log(max_alpha + ALPHA_FLOOR))
        else:
            log_features = torch.log(torch.clamp(features, min=LOG_FEATURE_FLOOR))
            square = (alpha * alpha).add_((log_features - mu1).pow_(2))
            unit_kl = square.div_(sigma1 * sigma1).sub_(1.0).mul_(0.5).add_(torch.log(torch.abs(sigma1)))
            unit_kl.sub_(torch.log(alpha))
        kl = unit_kl.flatten(1).sum(dim=1)
        kl_map = _kl_map(unit_kl)
        scaled_eps = eps if sigma0 == 1.0 else sigma0 * eps
        noise = torch.mul(alpha, scaled_eps).exp_()
        output = features * noise
        ctx.save_for_backward(features, noise, scaled_eps, s, mu1, sigma1)
        ctx.max_alpha = max_alpha
        ctx.mark_non_differentiable(kl_map, alpha)
        # kl_map and alpha get no gradient: do not have autograd fill two zero tensors for them.
        ctx.set_materialize_grads(False)
        return output, kl, kl_map, alpha

    @staticmethod
    def backward(ctx, grad_output, grad_kl, _grad_kl_map, _grad_alpha):
        features, noise, scaled_eps, s, mu1, sigma1 = ctx.saved_tensors
        max_alpha = ctx.max_alpha
        if grad_output is None:
            grad_output = torch.zeros_like(features)
        if grad_kl is None:
            grad_kl = torch.zeros(features.shape[0], dtype=features.dtype, device=features.device)
        grad_features = grad_mu1 = grad_sigma1 = None
        if ctx.needs_input_grad[0]:
            grad_features = grad_output * noise
        # dL/dalpha from the noise, in autograd's order for z = f * exp(alpha * sigma0 eps).
        grad_alpha = torch.mul(grad_output, features).mul_(noise).mul_(scaled_eps)
        # dL/dKL_unit is dL/dkl of the unit's sample, broadcast over the unit's other axes.
        per_sample = grad_kl.reshape((-1,) + (1,) * (features.ndim - 1))
        alpha = torch.mul(s, max_alpha).add_(ALPHA_FLOOR)
        grad_alpha.addcdiv_(per_sample.expand_as(alpha), alpha, value=-1.0)  # d(-log alpha)
        if mu1 is not None:
            variance1 = sigma1 * sigma1
            grad_alpha.addcmul_(per_sample.expand_as(alpha), alpha / variance1)  # d(alpha^2 / 2 sigma1^2)
            kept = features >= LOG_FEATURE_FLOOR  # torch.clamp passes gradient where f >= floor
            clamped = torch.clamp(features, min=LOG_FEATURE_FLOOR)
            centred = torch.log(clamped).sub_(mu1)
            weighted = per_sample * centred  # dL/dKL * (log f - mu1)
            if grad_features is not None:
                grad_features.add_(torch.where(kept, weighted / (variance1 * clamped), 0.0))
            if ctx.needs_input_grad[3]:
                grad_mu1 = -weighted.sum() / variance1
            if ctx.needs_input_grad[4]:
                # KL = A / (2 sigma1^2) - 1/2 + log|sigma1| - log alpha, A = alpha^2 + (log f - mu1)^2
                square = torch.addcmul(alpha * alpha, centred, centred)
                total = per_sample.expand_as(alpha).sum()
                grad_sigma1 = -(per_sample * square).sum() / (variance1 * sigma1) + total / sigma1
        # d alpha / d g = max_alpha * s * (1 - s)
        grad_logits = grad_alpha.mul_(torch.addcmul(s, s, s, value=-1.0)).mul_(max_alpha)
        return grad_features, grad_logits, None, grad_mu1, grad_sigma1, None, None


_COMPILED = None


def _compiled_step():
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = torch.compile(composite_step, dynamic=False)
    return _COMPILED


def information_dropout_step(
    features: torch.Tensor,
    alpha_logits: torch.Tensor,
    *,
    max_alpha: float,
    mu1: Optional[torch.Tensor] = None,
    sigma1: Optional[torch.Tensor] = None,
    sigma0: float = 1.0,
    generator: Optional[torch.Generator] = None,
    compiled: bool = False,
) -> InformationDropoutStep:
    """Noise, scale and KL of one information-dropout layer in training (module docstring).

    Args:
        features: f(x), N x ... ; alpha_logits: the pre-sigmoid g(x), same shape.
        max_alpha: alpha lies in (0.001, 0.001 + max_alpha).
        mu1, sigma1: the log-normal prior's 0-dim parameters, or None for the log-uniform prior.
        sigma0: noise multiplier (> 0; the layer's path without noise does not come here).
        generator: for eps ~ N(0, 1), drawn exactly as :func:`infodrop.nn.information_dropout`
            draws it (same shape, dtype, device, generator), so the noise is the same.
        compiled: run torch.compile's fusion of :func:`composite_step` instead of the
            hand-written backward (first call per shape compiles, tens of seconds on a CPU).
    """
    if features.shape != alpha_logits.shape:
        raise ValueError(
            f"alpha has shape {tuple(alpha_logits.shape)} but features have shape {tuple(features.shape)}; "
            "the alpha branch must produce one noise scale per unit"
        )
    if features.ndim < 2:
        raise ValueError(f"features must have a batch axis and at least one unit axis (N x ...), got shape {tuple(features.shape)}")
    if (mu1 is None) != (sigma1 is None):
        raise ValueError("pass mu1 and sigma1 together (log-normal prior) or neither (log-uniform prior)")
    if not sigma0 > 0:
        raise ValueError(f"sigma0 must be > 0 here (no noise: use the layer's evaluation path), got {sigma0!r}")
    eps = torch.randn(features.shape, generator=generator, dtype=features.dtype, device=features.device)
    if compiled:
        output, kl, kl_map, alpha = _compiled_step()(features, alpha_logits, eps, max_alpha, sigma0, mu1, sigma1)
    else:
        output, kl, kl_map, alpha = InformationDropoutFunction.apply(
            features, alpha_logits, eps, mu1, sigma1, max_alpha, sigma0
        )
    return InformationDropoutStep(output, kl, kl_map, alpha)
