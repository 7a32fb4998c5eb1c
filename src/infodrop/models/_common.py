"""Building blocks and door checks shared by the models."""

from __future__ import annotations

from typing import Optional

from torch import nn

from infodrop.checks import check_in_range, check_positive
from infodrop.nn import GaussianDropout, check_dropout_kind

ACTIVATIONS = ("relu", "softplus")


def check_activation(value: str, name: str) -> str:
    if value not in ACTIVATIONS:
        raise ValueError(f"{name}={value!r} is not supported; use 'relu' or 'softplus'")
    return value


def activation_module(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Softplus()


def check_max_alpha(max_alpha: float) -> float:
    """max_alpha bounds alpha (the std of log-noise) from above; the papers use values in (0, 1]."""
    return check_in_range(max_alpha, "max_alpha", 0.0, 1.0)


def check_variance(variance: float) -> float:
    return check_positive(variance, "variance")


def check_rate(rate: float, name: str = "dropout_rate") -> float:
    return check_in_range(rate, name, 0.0, 1.0, low_open=False, high_open=True)


def resolve_prior(lognorm_prior: Optional[bool], activation: str, activation_name: str) -> str:
    """Map the original's ``lognorm_prior`` flag to a prior name; None picks the paper's pairing."""
    if lognorm_prior is None:
        return "log-normal" if activation == "softplus" else "log-uniform"
    if not isinstance(lognorm_prior, bool):
        raise ValueError(f"lognorm_prior must be True, False (or None for the activation's default), got {lognorm_prior!r}")
    if lognorm_prior and activation != "softplus":
        raise ValueError(
            f"lognorm_prior=True needs positive activations (f(x) > 0) but {activation_name}={activation!r}; "
            f"set {activation_name}='softplus' (the 'softplus' preset) or lognorm_prior=False"
        )
    return "log-normal" if lognorm_prior else "log-uniform"


def tf_init(module: nn.Module) -> None:
    """TensorFlow ``contrib.layers`` defaults, as in the original code: Glorot-uniform weights, zero biases."""
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    *,
    kernel_size: int = 3,
    stride: int = 1,
    activation: str = "relu",
    bn_momentum: float = 0.1,
) -> nn.Sequential:
    """The original's ``conv``: 'same'-padded conv (no bias) + batch norm (eps 1e-3) + activation."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3, momentum=bn_momentum),
        activation_module(activation),
    )


def dropout_after(kind: str, *, rate: float, variance: float) -> nn.Module:
    """The dropout that follows a plain layer for the kinds other than information dropout."""
    check_dropout_kind(kind)
    if kind == "binary":
        return nn.Dropout(rate)
    if kind == "gaussian":
        return GaussianDropout(variance)
    return nn.Identity()


__all__ = [
    "ACTIVATIONS",
    "activation_module",
    "check_activation",
    "check_max_alpha",
    "check_rate",
    "check_variance",
    "conv_bn_act",
    "dropout_after",
    "resolve_prior",
    "tf_init",
]
