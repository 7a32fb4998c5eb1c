"""Information plane of a ResNet-18 on CIFAR-10 (Adilova, Geiger & Fischer, ICLR 2023, Section 5,
Figs. 6 and 13; the reference code's ``mi_cifar_dropout.py``).

The network is the CIFAR ResNet-18 with an extra bottleneck of ``bottleneck`` (128) units and
Gaussian dropout before the output layer (``infodrop.models.ResNet18``); the plane is recorded at
that dropout layer. Training as the reference code: SGD lr 0.05, momentum 0.9, weight decay 5e-4,
cosine schedule, batch 64, 200 epochs, random crop (4-pixel padding) and horizontal flip; the plane
every ``plane_every`` (10) epochs.

Data: ``datasets/cifar10-train.npz`` and ``cifar10-test.npz``, written by
``infodrop cifar prepare with source=PATH/cifar-10-batches-py``.

Commands, the plane recipe (:mod:`infodrop.experiments.plane_recipe`): ``train`` (plane JSON at
``runs/cifar_resnet/<run name>/plane.json``, figures after training) and ``plot`` (re-reads the
JSON, writes ``plots/cifar_resnet/<run name>/``).
All information values are in nats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from infodrop.data import CIFAR_TEST_FILE, CIFAR_TRAIN_FILE, load_cifar_npz, random_crop, random_horizontal_flip
from infodrop.experiments import plane_recipe
from infodrop.experiments.config import entry
from infodrop.experiments.datasets import Split, take
from infodrop.experiments.entries import CosineSGD, Machine, RunFiles, UnitSubsetPlane, in_order, new_default
from infodrop.experiments.plane_recipe import BatchTransform, PlaneExperiment
from infodrop.models import ResNet18

__all__ = ["COMMANDS", "Config", "EXPERIMENT", "NAMED_CONFIGS", "build_model", "load_data", "plot", "train", "validate"]


@dataclass
class Network:
    """The cifar_resnet entries that come before the shared groups in the field order (and run names)."""

    dropout: str = entry("gaussian", "dropout before the output layer: gaussian, information or binary")
    variance: float = entry(2.0 / 3.0, "Gaussian dropout variance (2/3 = p/(1-p) at the reference code's rate p = 0.4)")
    dropout_rate: float = entry(0.4, "binary dropout: drop rate")
    bottleneck: int = entry(128, "units of the bottleneck layer before the output layer")
    activation: str = entry("softplus", "bottleneck activation: softplus, relu or identity (the reference code's linear layer)")
    beta: float = entry(10.0, "information dropout: weight of the KL term, divided by the training-set size")
    max_alpha: float = entry(0.7, "information dropout: largest noise scale alpha")
    data_dir: str = entry("datasets", "folder with cifar10-train.npz and cifar10-test.npz", in_run_name=False)
    train_subset: int = entry(0, "use the first N training images (0 = all)")
    test_subset: int = entry(0, "use the first N test images (0 = all)")
    augment: bool = entry(True, "random crop (pad 4) and horizontal flip of training batches")


@dataclass
class Config(*in_order(Network, CosineSGD, UnitSubsetPlane, Machine, RunFiles)):
    """Configuration of the CIFAR-10 ResNet18 planes of ICLR 2023 (bottleneck before the output)."""

    batch_size: int = new_default(CosineSGD, "batch_size", 64)
    lr: float = new_default(CosineSGD, "lr", 0.05)
    weight_decay: float = new_default(CosineSGD, "weight_decay", 5e-4)
    plane_every: int = new_default(UnitSubsetPlane, "plane_every", 10)


NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    # The reference code's bottleneck is a plain linear layer.
    "linear_bottleneck": {"activation": "identity"},
    "information": {"dropout": "information", "activation": "softplus"},
    "smoke": {"epochs": 1, "train_subset": 128, "test_subset": 64, "plane_samples": 64, "plane_every": 1, "progress": False},
}


def load_data(cfg: Any) -> tuple[dict[str, Split], str]:
    """``({'train': (images, labels), 'test': ...}, 'cifar10')`` from the prepared npz files
    (DataError naming ``infodrop cifar prepare`` when they are missing)."""
    splits = {}
    for name, file_name, size in (("train", CIFAR_TRAIN_FILE, cfg.train_subset), ("test", CIFAR_TEST_FILE, cfg.test_subset)):
        splits[name] = take(load_cifar_npz(Path(cfg.data_dir) / file_name), size, f"{name}_subset")
    return splits, "cifar10"


def network(cfg: Any, image_shape: tuple[int, ...]) -> nn.Module:
    """ResNet-18 with the bottleneck and its dropout, for images of shape C x H x W (not seeded)."""
    return ResNet18(num_classes=10, bottleneck=cfg.bottleneck, dropout=cfg.dropout, variance=cfg.variance,
                    in_channels=image_shape[0], activation=cfg.activation, dropout_rate=cfg.dropout_rate,
                    max_alpha=cfg.max_alpha)


def augmentation(cfg: Any) -> BatchTransform | None:
    """Random crop (pad 4) + horizontal flip of each training batch: ``transform(batch, generator)``."""
    if not cfg.augment:
        return None

    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # The engine passes its seeded augmentation generator (checkpointed with the run).
        return random_horizontal_flip(random_crop(images, 4, generator=generator), generator=generator)

    return transform


def _describe(cfg: Any) -> str:
    return f"ResNet18 + {cfg.bottleneck}-unit bottleneck with {cfg.dropout} dropout"


EXPERIMENT = PlaneExperiment(name="cifar_resnet", config=Config, load_data=load_data, network=network, describe=_describe,
                             image_shape=(3, 32, 32), augmentation=augmentation, plane_batch_size=256)


def build_model(cfg: Any, image_shape: tuple[int, ...] = (3, 32, 32)) -> nn.Module:
    """The ResNet-18 of the config, initialised from ``cfg.seed``."""
    return plane_recipe.build_model(cfg, EXPERIMENT, image_shape)


def validate(cfg: Any) -> None:
    """Raise ValueError naming the entry for a value the commands cannot use."""
    plane_recipe.validate(cfg, EXPERIMENT)


def train(cfg: Any) -> dict:
    """Train the ResNet-18 and record its information plane every ``plane_every`` epochs."""
    return plane_recipe.train(cfg, EXPERIMENT)


def plot(cfg: Any) -> list[str]:
    """Re-read ``runs/cifar_resnet/<run name>/plane.json`` and write the figures."""
    return plane_recipe.plot(cfg, EXPERIMENT)


COMMANDS: dict[str, Callable[[Any], object]] = {"train": train, "plot": plot}
