"""ResNet-18 for CIFAR-10 (He et al. 2016, CIFAR variant: 3x3 stem, no max-pool) with the
bottleneck layer and Gaussian dropout before the output that Adilova, Geiger & Fischer (ICLR 2023,
section 5) add to measure the information plane of that layer."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from infodrop.checks import check_int
from infodrop.models._common import check_max_alpha, check_rate, check_variance, prior_from_flag
from infodrop.nn import InformationDropout, activation_module, check_dropout_kind, make_dropout

__all__ = ["BasicBlock", "ResNet18"]

BOTTLENECK_ACTIVATIONS = ("softplus", "relu", "identity")


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity (or 1x1 conv + BN projection) shortcut, ReLU after the sum."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3x3 stem (64) + BN + ReLU, BasicBlock stages [2, 2, 2, 2] of 64, 128, 256, 512
    channels (strides 1, 2, 2, 2), global average pool, then a bottleneck
    z = dropout(act(W h + b)) of ``bottleneck`` units and the output linear layer.

    The bottleneck activation defaults to softplus (our choice; the authors' code leaves the layer
    linear): softplus keeps every unit f(x) > 0, so the Gaussian-dropout conditional variance
    variance * f(x)^2 is never zero and h(Z|X) stays finite for the mixture estimator. 'relu' and
    'identity' (the authors' linear bottleneck) are available.

    Args:
        num_classes: logits. bottleneck: width of the dropout layer (128 in the paper).
        dropout: 'gaussian' (paper) | 'information' | 'binary' | 'none'.
        variance: Gaussian-dropout variance (2/3 = p/(1-p) at the reference code's p = 0.4).
        in_channels: input channels. activation: bottleneck activation.
    Input N x in_channels x H x W (32 x 32 for CIFAR; any size >= 8 works); returns N x num_classes.
    """

    def __init__(
        self,
        num_classes: int = 10,
        bottleneck: int = 128,
        dropout: str = "gaussian",
        variance: float = 2.0 / 3.0,
        in_channels: int = 3,
        *,
        activation: str = "softplus",
        dropout_rate: float = 0.4,
        max_alpha: float = 0.7,
        lognorm_prior: Optional[bool] = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.bottleneck_units = check_int(bottleneck, "bottleneck")
        self.dropout = check_dropout_kind(dropout)
        variance = check_variance(variance)
        self.in_channels = check_int(in_channels, "in_channels")
        if activation not in BOTTLENECK_ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not supported; use one of {', '.join(map(repr, BOTTLENECK_ACTIVATIONS))}")
        self.activation = activation
        dropout_rate = check_rate(dropout_rate)
        max_alpha = check_max_alpha(max_alpha)

        self.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, 64, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        stages = []
        channels = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(channels, width, stride), BasicBlock(width, width, 1)))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        if self.dropout == "information":
            if activation == "identity":
                raise ValueError("dropout='information' needs activation='softplus' or 'relu' on the bottleneck, not 'identity'")
            prior = prior_from_flag(lognorm_prior, activation, "activation")
            self.bottleneck: nn.Module = InformationDropout.linear(channels, self.bottleneck_units, activation=activation, prior=prior, max_alpha=max_alpha)
        else:
            act = nn.Identity() if activation == "identity" else activation_module(activation)
            self.bottleneck = nn.Sequential(
                nn.Linear(channels, self.bottleneck_units), act, make_dropout(self.dropout, rate=dropout_rate, variance=variance)
            )
        self.output = nn.Linear(self.bottleneck_units, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        out = self.pool(self.stages(self.stem(x))).flatten(1)
        return self.output(self.bottleneck(out))
