"""LeNet-5 (LeCun et al. 1998) as used by Adilova, Geiger & Fischer (ICLR 2023) on MNIST: softplus
activations and dropout on the penultimate (84-unit) layer."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from infodrop.checks import check_int
from infodrop.models._common import check_dropout_options
from infodrop.nn import InformationDropout, activation_module, make_dropout

__all__ = ["LeNet"]


class LeNet(nn.Module):
    """conv 6@5x5 - max-pool 2 - conv 16@5x5 - max-pool 2 - fc 120 - fc 84 (+ dropout) - fc num_classes.

    Convolutions are unpadded, so the flattened size is 16 * s^2 with s = ((image_size - 4) // 2 - 4) // 2
    (4 for 28 x 28 MNIST, 5 for 32 x 32). With ``dropout='information'`` the 84-unit layer is
    ``InformationDropout.linear`` (log-normal prior for softplus, log-uniform for ReLU by default).
    Other arguments as for :class:`~infodrop.models.MLP`. Input N x in_channels x image_size x image_size;
    returns logits N x num_classes.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        activation: str = "softplus",
        dropout: str = "gaussian",
        variance: float = 0.25,
        *,
        dropout_rate: float = 0.2,
        max_alpha: float = 0.7,
        lognorm_prior: Optional[bool] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.image_size = check_int(image_size, "image_size")
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.activation, self.dropout, variance, dropout_rate, max_alpha, prior = check_dropout_options(
            activation, dropout, variance, dropout_rate, max_alpha, lognorm_prior
        )
        side = ((self.image_size - 4) // 2 - 4) // 2
        if self.image_size < 5 or side < 1:
            raise ValueError(f"image_size={image_size} is too small for two 5x5 convs and two 2x2 pools; use image_size >= 16")

        self.features = nn.Sequential(
            nn.Conv2d(self.in_channels, 6, kernel_size=5),
            activation_module(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            activation_module(activation),
            nn.MaxPool2d(2),
        )
        self.fc1 = nn.Sequential(nn.Linear(16 * side * side, 120), activation_module(activation))
        if self.dropout == "information":
            self.fc2: nn.Module = InformationDropout.linear(120, 84, activation=activation, prior=prior, max_alpha=max_alpha)
        else:
            self.fc2 = nn.Sequential(
                nn.Linear(120, 84), activation_module(activation), make_dropout(self.dropout, rate=dropout_rate, variance=variance)
            )
        self.output = nn.Linear(84, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape N x {' x '.join(map(str, expected))}, got {tuple(x.shape)}")
        out = self.features(x).flatten(1)
        return self.output(self.fc2(self.fc1(out)))
