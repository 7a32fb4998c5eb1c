"""Information dropout (Achille & Soatto, *Information Dropout: Learning Optimal Representations
Through Noisy Computation*, TPAMI 2018).

A layer computes a noiseless activation f(x) and, from the same input, a noise scale

    alpha(x) = 0.001 + max_alpha * sigmoid(g(x)),

and outputs z = f(x) * e with log-normal multiplicative noise e = exp(alpha(x) * eps), eps ~ N(0, 1)
(reparametrised so that gradients reach g). The information-bottleneck penalty is the KL divergence
KL(p(z|x) || q(z)) between the noisy unit and a fixed prior q, in closed form for two priors
(Adilova, Geiger & Fischer, ICLR 2023, Appendix A.1):

* log-uniform prior (ReLU units), eq. (5):  KL = -log alpha + const. As in the original code the
  constant is chosen so the KL vanishes at the largest alpha: KL = -log(alpha / (max_alpha + 0.001)).
* log-normal prior (softplus units), eq. (7): log z ~ N(log f(x), alpha^2) against the prior
  log z ~ N(mu1, sigma1^2), the KL between two normals.

All KL values are in nats.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from infodrop.checks import check_in_range, check_int, check_positive
# ALPHA_FLOOR and LOG_FEATURE_FLOOR are defined beside the fused step, which needs them too.
from infodrop.nn.information_fused import ALPHA_FLOOR, LOG_FEATURE_FLOOR, information_dropout_step


def _check_input(module: nn.Module, x: torch.Tensor, name: str) -> None:
    """Refuse, in one line naming the width, an ``x`` that a wrapped Linear (last dimension) or
    convolution (dimension 1) cannot take; torch would fail deep inside the matrix product."""
    if isinstance(module, nn.Linear) and (x.ndim == 0 or x.shape[-1] != module.in_features):
        width = x.shape[-1] if x.ndim else "no"
        raise ValueError(
            f"x has {width} features in its last dimension but the wrapped {name} is a Linear layer with "
            f"in_features={module.in_features}; give x that width, or build the layer for the width of x"
        )
    if isinstance(module, nn.modules.conv._ConvNd) and (x.ndim < 2 or x.shape[1] != module.in_channels):
        raise ValueError(
            f"x of shape {tuple(x.shape)} has {x.shape[1] if x.ndim >= 2 else 'no'} channels but the wrapped {name} is a "
            f"convolution with in_channels={module.in_channels}; give x N x {module.in_channels} x ..., or build the layer for it"
        )

__all__ = [
    "ALPHA_FLOOR",
    "LOG_FEATURE_FLOOR",
    "ACTIVATIONS",
    "PRIORS",
    "InformationDropout",
    "activation_module",
    "check_activation",
    "information_dropout",
    "log_normal_kl",
    "log_uniform_kl",
    "resolve_prior",
]

PRIORS = ("log-uniform", "log-normal")
ACTIVATIONS = ("relu", "softplus")


def information_dropout(
    features: torch.Tensor,
    alpha: torch.Tensor,
    *,
    sigma0: float = 1.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Multiply ``features`` by log-normal noise: ``features * exp(alpha * sigma0 * eps)``, eps ~ N(0, 1).

    Args:
        features: the noiseless activation f(x), any shape.
        alpha: the noise scale, same shape as ``features`` (the standard deviation of log e).
        sigma0: global noise multiplier; 1 while training (or MC dropout), 0 makes the output
            deterministic (``features`` itself), as the original's ``sigma0`` placeholder.
        generator: optional ``torch.Generator`` for the noise; the global RNG otherwise.

    Returns:
        A tensor of the shape of ``features``. Gradients flow to ``alpha`` through the noise
        (reparametrisation trick).
    """
    if features.shape != alpha.shape:
        raise ValueError(
            f"alpha has shape {tuple(alpha.shape)} but features have shape {tuple(features.shape)}; "
            "the alpha branch must produce one noise scale per unit"
        )
    sigma0 = check_positive(sigma0, "sigma0", allow_zero=True)
    if sigma0 == 0.0:
        return features
    eps = torch.randn(features.shape, generator=generator, dtype=features.dtype, device=features.device)
    return features * torch.exp(alpha * (sigma0 * eps))


def log_uniform_kl(alpha: torch.Tensor, max_alpha: float) -> torch.Tensor:
    """Per-unit KL (nats) to the log-uniform prior, renormalised to vanish at alpha = max_alpha + 0.001.

    ``-log(alpha / (max_alpha + 0.001))``, elementwise, same shape as ``alpha`` (paper: Appendix A.1
    eq. (5), -h(log z | x) = -log alpha - log sqrt(2 pi e) up to the prior's constant). It does not
    depend on f(x), so for ReLU units with f(x) = 0 (where the noise has no effect) the original
    code, and this function, still charge the KL of alpha.
    """
    return math.log(max_alpha + ALPHA_FLOOR) - torch.log(alpha)


def log_normal_kl(
    features: torch.Tensor,
    alpha: torch.Tensor,
    mu1: torch.Tensor | float = 0.0,
    sigma1: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Per-unit KL (nats) between N(log f, alpha^2) and the prior N(mu1, sigma1^2) of log z.

    Paper: Appendix A.1 eq. (7); the KL of the log-normals equals that of the normals of their logs:

        KL = 0.5 * ((alpha/sigma1)^2 + (log f - mu1)^2 / sigma1^2 - 1) + log|sigma1| - log alpha.

    log f is evaluated as ``log(max(f, 1e-4))`` exactly as the original TensorFlow code does, so
    units with f <= 1e-4 are charged as if f = 1e-4 (and get no gradient through f). Only sigma1^2
    enters the prior, hence |sigma1| (a learnable sigma1 may change sign).

    Args:
        features: f(x), any shape; alpha: same shape; mu1, sigma1: scalars or broadcastable tensors.

    Returns:
        Elementwise KL, shape of ``features``.
    """
    log_features = torch.log(torch.clamp(features, min=LOG_FEATURE_FLOOR))
    if not isinstance(sigma1, torch.Tensor):
        sigma1 = torch.as_tensor(sigma1, dtype=features.dtype, device=features.device)
    variance1 = sigma1 * sigma1
    return (
        0.5 * ((alpha * alpha + (log_features - mu1) ** 2) / variance1 - 1.0)
        + torch.log(torch.abs(sigma1))
        - torch.log(alpha)
    )


def _check_prior(prior: str) -> str:
    if prior not in PRIORS:
        raise ValueError(f"prior={prior!r} is not supported; use one of {', '.join(repr(p) for p in PRIORS)}")
    return prior


def _check_max_alpha(max_alpha: float) -> float:
    return check_positive(max_alpha, "max_alpha")


def check_activation(value: str, name: str = "activation") -> str:
    """Return ``value`` if it is an activation the layers support (:data:`ACTIVATIONS`), else raise
    ValueError naming the argument ``name``."""
    if value not in ACTIVATIONS:
        raise ValueError(f"{name}={value!r} is not supported; use one of {', '.join(map(repr, ACTIVATIONS))}")
    return value


def activation_module(name: str) -> nn.Module:
    """The module of an activation of :data:`ACTIVATIONS`: ``nn.ReLU()`` or ``nn.Softplus()``."""
    return nn.ReLU() if check_activation(name) == "relu" else nn.Softplus()


def resolve_prior(
    activation: str, prior: Optional[str] = None, *, activation_name: str = "activation", prior_name: str = "prior"
) -> str:
    """The prior of information-dropout units with ``activation`` (the one home of this rule).

    ``prior=None`` picks the paper's pairing: log-uniform for ReLU, log-normal for softplus. The
    log-normal prior needs strictly positive activations, since its KL (Appendix A.1, eq. (7))
    takes log f(x); with another activation it is refused by a ValueError that names the caller's
    arguments ``prior_name`` and ``activation_name``.
    """
    if prior is None:
        return "log-normal" if activation == "softplus" else "log-uniform"
    _check_prior(prior)
    if prior == "log-normal" and activation != "softplus":
        raise ValueError(
            f"{prior_name} selects the log-normal prior, which needs strictly positive activations f(x) > 0 "
            f"(its KL takes log f(x)), but {activation_name}={activation!r}; set {activation_name}='softplus' "
            "or choose the log-uniform prior"
        )
    return prior


class InformationDropout(nn.Module):
    r"""Information dropout: z = f(x) * exp(alpha(x) * eps), eps ~ N(0, 1) (Achille & Soatto 2018).

    ``layer`` computes f(x); ``alpha_layer`` computes the pre-sigmoid noise scale from the same input
    (same output shape), alpha = 0.001 + max_alpha * sigmoid(alpha_layer(x)). Noise is drawn only
    when ``self.training or self.mc``; otherwise the output is f(x) exactly.

    The KL penalty (nats) is computed on every forward, in evaluation mode too (the information plane
    and the heat maps need it), against

    * ``prior='log-uniform'`` (ReLU, Appendix A.1 eq. (5)): ``-log(alpha / (max_alpha + 0.001))``,
      which vanishes at the largest alpha. Units with f(x) = 0 are charged this KL as in the
      original code, although their noise carries no information about x.
    * ``prior='log-normal'`` (softplus, eq. (7)): KL(N(log f, alpha^2) || N(mu1, sigma1^2)) with
      learnable scalars ``mu1`` (init 0) and ``sigma1`` (init 1); log f is clamped at log(1e-4)
      as in the original TensorFlow code. f(x) must be positive for the prior to make sense.

    After each forward:
        ``kl``: shape N, per-sample KL summed over units (keeps its graph, for the loss);
        ``kl_map``: detached, N x H x W for convolutional outputs (summed over channels), N x d for linear;
        ``features``: detached f(x); ``alpha``: detached alpha. Without noise the output *is* f(x),
        so ``features`` shares its storage: do not modify the output in place if you read ``features``.

    Shapes: input as ``layer`` expects; output the shape of f(x) (N x C x H x W or N x d).

    With noise, ``fused=True`` (default) computes noise, scale and KL in one autograd step
    (:mod:`infodrop.nn.information_fused`: identical outputs and KL, same noise, less memory and
    fewer passes); ``fused=False`` runs the separate torch operations; ``compile=True`` hands
    them to torch.compile (first call per input shape compiles). All three are plain attributes
    that can be switched on a built model.
    """

    def __init__(
        self,
        layer: nn.Module,
        alpha_layer: nn.Module,
        *,
        prior: str = "log-uniform",
        max_alpha: float = 0.7,
        mc: bool = False,
        fused: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(layer, nn.Module) or not isinstance(alpha_layer, nn.Module):
            raise ValueError("layer and alpha_layer must be torch.nn.Module instances computing f(x) and the pre-sigmoid alpha")
        self.layer = layer
        self.alpha_layer = alpha_layer
        self.prior = _check_prior(prior)
        self.max_alpha = _check_max_alpha(max_alpha)
        self.mc = bool(mc)
        self.fused = bool(fused)
        self.compile = bool(compile)
        if self.prior == "log-normal":
            self.mu1 = nn.Parameter(torch.zeros(()))
            self.sigma1 = nn.Parameter(torch.ones(()))
        else:
            self.register_parameter("mu1", None)
            self.register_parameter("sigma1", None)
        self.kl: Optional[torch.Tensor] = None
        self.kl_map: Optional[torch.Tensor] = None
        self.features: Optional[torch.Tensor] = None
        self.alpha: Optional[torch.Tensor] = None

    @property
    def noisy(self) -> bool:
        """Whether the next forward draws noise: ``self.training or self.mc`` (never ``self.train()``)."""
        return self.training or self.mc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self.layer, x, "layer")
        features = self.layer(x)
        if self.noisy and (self.fused or self.compile):
            step = information_dropout_step(
                features, self.alpha_layer(x), max_alpha=self.max_alpha, mu1=self.mu1, sigma1=self.sigma1,
                compiled=self.compile,
            )
            self.kl, self.kl_map, self.alpha = step.kl, step.kl_map, step.alpha
            self.features = features.detach()
            return step.output
        alpha = ALPHA_FLOOR + self.max_alpha * torch.sigmoid(self.alpha_layer(x))
        if self.prior == "log-uniform":
            unit_kl = log_uniform_kl(alpha, self.max_alpha)
        else:
            unit_kl = log_normal_kl(features, alpha, self.mu1, self.sigma1)
        self.kl = unit_kl.flatten(1).sum(dim=1)
        kl_map = unit_kl.detach()
        self.kl_map = kl_map.sum(dim=1) if kl_map.ndim > 2 else kl_map
        self.features = features.detach()
        self.alpha = alpha.detach()
        return information_dropout(features, alpha, sigma0=1.0 if self.noisy else 0.0)

    def extra_repr(self) -> str:
        extra = ", fused=False" if not self.fused else ""
        extra += ", compile=True" if self.compile else ""
        return f"prior={self.prior!r}, max_alpha={self.max_alpha}, mc={self.mc}{extra}"

    @classmethod
    def conv(
        cls,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 2,
        activation: str = "relu",
        prior: Optional[str] = None,
        max_alpha: float = 0.7,
        bn_momentum: float = 0.1,
        mc: bool = False,
    ) -> "InformationDropout":
        """The original ``information_pool``: f(x) = act(BN(conv3x3(x), stride, padding 1)) and
        alpha from a second 3x3 conv (with bias) of the same input and stride.

        BN uses eps 1e-3 (TensorFlow's) and ``bn_momentum`` (TF decay 0.9 = torch momentum 0.1).
        Weights are Glorot-uniform and biases zero, TensorFlow's ``conv2d`` defaults.
        ``prior=None`` picks log-uniform for ReLU and log-normal for softplus; the log-normal prior
        requires softplus. Input N x in_channels x H x W; output N x out_channels x ceil(H/stride) x ceil(W/stride).
        """
        in_channels = check_int(in_channels, "in_channels")
        out_channels = check_int(out_channels, "out_channels")
        stride = check_int(stride, "stride")
        bn_momentum = check_in_range(bn_momentum, "bn_momentum", 0.0, 1.0)
        prior = resolve_prior(activation, prior)
        conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        layer = nn.Sequential(conv, nn.BatchNorm2d(out_channels, eps=1e-3, momentum=bn_momentum), activation_module(activation))
        alpha_layer = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=True)
        for module in (conv, alpha_layer):
            nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(alpha_layer.bias)
        return cls(layer, alpha_layer, prior=prior, max_alpha=max_alpha, mc=mc)

    @classmethod
    def linear(
        cls,
        in_features: int,
        out_features: int,
        *,
        activation: str = "softplus",
        prior: Optional[str] = None,
        max_alpha: float = 0.7,
        mc: bool = False,
    ) -> "InformationDropout":
        """Fully connected form: f(x) = act(W x + b), alpha from a second linear map of x.

        PyTorch's default initialisation (the ICLR 2023 networks are PyTorch). ``prior=None`` picks
        log-uniform for ReLU and log-normal for softplus. Input N x in_features; output N x out_features.
        """
        in_features = check_int(in_features, "in_features")
        out_features = check_int(out_features, "out_features")
        prior = resolve_prior(activation, prior)
        layer = nn.Sequential(nn.Linear(in_features, out_features), activation_module(activation))
        alpha_layer = nn.Linear(in_features, out_features)
        return cls(layer, alpha_layer, prior=prior, max_alpha=max_alpha, mc=mc)
