"""A tiny CIFAR-format problem for the engine tests: 3 x 8 x 8 float32 images, int64 labels.

The label is learnable: bit 0 says whether channel 0 is brighter than average, bit 1 whether
channel 1 is (4 balanced classes).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


def make_data(size: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(size, 3, 8, 8, generator=generator)
    means = images.mean(dim=(2, 3))
    labels = (means[:, 0] > 0).long() + 2 * (means[:, 1] > 0).long()
    return TensorDataset(images, labels)


class NoisyScale(nn.Module):
    """Multiplicative N(1, variance) noise in training mode; records the mode of every forward."""

    def __init__(self, variance: float = 0.25):
        super().__init__()
        self.variance = variance
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        if not self.training:
            return x
        return x * (1 + self.variance**0.5 * torch.randn_like(x))


class TinyNet(nn.Module):
    def __init__(self, width: int = 8, classes: int = 4):
        super().__init__()
        self.noise_in = NoisyScale()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.conv(self.noise_in(x))))
        return self.head(x.mean(dim=(2, 3)))


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def step_lr(optimizer: torch.optim.Optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
