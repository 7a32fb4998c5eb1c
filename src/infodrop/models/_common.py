"""Building blocks and door checks shared by the models."""

from __future__ import annotations

from typing import Optional

from torch import nn

from infodrop.checks import check_in_range, check_positive
from infodrop.nn import activation_module, check_activation, check_dropout_kind, resolve_prior


def check_max_alpha(max_alpha: float) -> float:
    """max_alpha bounds alpha (the std of log-noise) from above; the papers use values in (0, 1]."""
    return check_in_range(max_alpha, "max_alpha", 0.0, 1.0)


def check_variance(variance: float) -> float:
    return check_positive(variance, "variance")


def check_rate(rate: float, name: str = "dropout_rate") -> float:
    return check_in_range(rate, name, 0.0, 1.0, low_open=False, high_open=True)


def prior_from_flag(lognorm_prior: Optional[bool], activation: str, activation_name: str) -> str:
    """The prior named by the original's ``lognorm_prior`` flag (None: the paper's pairing for the
    activation), checked against the activation by :func:`infodrop.nn.resolve_prior`."""
    if lognorm_prior is not None and not isinstance(lognorm_prior, bool):
        raise ValueError(f"lognorm_prior must be True, False (or None for the activation's default), got {lognorm_prior!r}")
    prior = None if lognorm_prior is None else ("log-normal" if lognorm_prior else "log-uniform")
    return resolve_prior(activation, prior, activation_name=activation_name, prior_name="lognorm_prior=True")


def check_dropout_options(
    activation: str, dropout: str, variance: float, dropout_rate: float, max_alpha: float, lognorm_prior: Optional[bool]
) -> tuple[str, str, float, float, float, str]:
    """The dense networks' (LeNet, MLP) activation and dropout arguments, checked in this order:
    (activation, dropout kind, variance, dropout_rate, max_alpha, prior named by ``lognorm_prior``)."""
    activation = check_activation(activation, "activation")
    dropout = check_dropout_kind(dropout)
    variance = check_variance(variance)
    dropout_rate = check_rate(dropout_rate)
    max_alpha = check_max_alpha(max_alpha)
    prior = prior_from_flag(lognorm_prior, activation, "activation")
    return activation, dropout, variance, dropout_rate, max_alpha, prior


def tf_init(module: nn.Module) -> None:
    """TensorFlow ``contrib.layers`` defaults, as in the original code: Glorot-uniform weights, zero biases."""
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


def conv_bn_act(
    in_channels: int, out_channels: int, *, kernel_size: int = 3, stride: int = 1, activation: str = "relu",
    bn_momentum: float = 0.1,
) -> nn.Sequential:
    """The original's ``conv``: 'same'-padded conv (no bias) + batch norm (eps 1e-3) + activation."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3, momentum=bn_momentum),
        activation_module(activation),
    )


__all__ = [
    "check_dropout_options",
    "check_max_alpha",
    "check_rate",
    "check_variance",
    "conv_bn_act",
    "prior_from_flag",
    "tf_init",
]
