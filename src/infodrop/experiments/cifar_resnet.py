"""Information plane of a ResNet-18 on CIFAR-10 (Adilova, Geiger & Fischer, ICLR 2023, Section 5,
Figs. 6 and 13; the reference code's ``mi_cifar_dropout.py``).

The network is the CIFAR ResNet-18 with an extra bottleneck of ``bottleneck`` (128) units and
Gaussian dropout before the output layer (``infodrop.models.ResNet18``); the plane is recorded at
that dropout layer. Training as the reference code: SGD lr 0.05, momentum 0.9, weight decay 5e-4,
cosine schedule, batch 64, 200 epochs, random crop (4-pixel padding) and horizontal flip; the plane
every ``plane_every`` (10) epochs.

Data: ``datasets/cifar10-train.npz`` and ``cifar10-test.npz``, written by
``infodrop cifar prepare with source=PATH/cifar-10-batches-py``.

Commands: ``train`` (plane JSON at ``runs/cifar_resnet/<run name>/plane.json``, figures after
training) and ``plot`` (re-reads the JSON, writes ``plots/cifar_resnet/<run name>/``).
All information values are in nats.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional

import numpy as np
import torch
from torch import nn

from infodrop.experiments.common import check_choice, check_subset, entry, information_loss, model_config, run_paths, take, to_plain
from infodrop.plots import plot_plane_figures

__all__ = ["Config", "NAMED_CONFIGS", "COMMANDS", "validate", "train", "plot", "load_data"]

EXPERIMENT = "cifar_resnet"


@dataclass
class Config:
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
    epochs: int = entry(200, "training epochs (reference code: 200)", in_run_name=False)
    batch_size: int = entry(64, "batch size (reference code: 64)")
    lr: float = entry(0.05, "SGD learning rate, annealed by a cosine schedule over the epochs")
    momentum: float = entry(0.9, "SGD momentum")
    weight_decay: float = entry(5e-4, "SGD weight decay")
    seed: int = entry(0, "random seed (initialisation, batches, augmentation, noise)")
    plane_every: int = entry(10, "record the information plane every k epochs (and at the first and last)", in_run_name=False)
    plane_samples: int = entry(5000, "inputs per split for the plane estimates (0 = all; the mixture costs O(N^2))", in_run_name=False)
    noise_samples: int = entry(10, "noise draws per input in the Gaussian mixture estimator", in_run_name=False)
    mc_draws: int = entry(1, "MC-dropout samples of Z per input for binning and MC predictions", in_run_name=False)
    plane_bounds: bool = entry(True, "pairwise bracket of the mixture estimate (O(N^2 d) elementwise: slow on a CPU for large N)", in_run_name=False)
    bins: List[int] = entry([10, 30, 100], "bin counts of the binning planes", in_run_name=False)
    estimators: List[str] = entry(["auto", "binning"], "plane estimators: auto (ours / variational) and binning", in_run_name=False)
    checkpoint_every: int = entry(10, "save a checkpoint every k epochs", in_run_name=False)
    device: Optional[str] = entry(None, "device: null = cuda if available else cpu", in_run_name=False)
    progress: bool = entry(True, "show progress bars", in_run_name=False)
    models_dir: str = entry("models", "folder for checkpoints", in_run_name=False)
    runs_dir: str = entry("runs", "folder for run logs and plane JSON", in_run_name=False)
    plots_dir: str = entry("plots", "folder for figures", in_run_name=False)
    plot_formats: List[str] = entry(["png", "pdf"], "file formats of the figures (png, pdf, svg)", in_run_name=False)


NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    # The reference code's bottleneck is a plain linear layer.
    "linear_bottleneck": {"activation": "identity"},
    "information": {"dropout": "information", "activation": "softplus"},
    "smoke": {"epochs": 1, "train_subset": 128, "test_subset": 64, "plane_samples": 64, "plane_every": 1, "progress": False},
}


def validate(cfg: Any) -> None:
    """Raise ValueError naming the entry for a value the commands cannot use."""
    from infodrop.checks import check_in_range, check_int, check_positive

    check_choice(cfg.dropout, "dropout", ("gaussian", "information", "binary"))
    check_choice(cfg.activation, "activation", ("softplus", "relu", "identity"))
    if cfg.dropout == "information" and cfg.activation == "identity":
        raise ValueError("dropout=information needs activation=softplus or relu (a positive f(x) for the log-normal noise)")
    check_positive(cfg.variance, "variance")
    check_in_range(cfg.dropout_rate, "dropout_rate", 0.0, 1.0, low_open=False, high_open=True)
    check_int(cfg.bottleneck, "bottleneck", minimum=1)
    check_positive(cfg.beta, "beta", allow_zero=True)
    check_in_range(cfg.max_alpha, "max_alpha", 0.0, 1.0)
    check_subset(cfg.train_subset, "train_subset")
    check_subset(cfg.test_subset, "test_subset")
    for name in ("epochs", "batch_size", "plane_every", "noise_samples", "mc_draws", "checkpoint_every"):
        check_int(cfg[name], name, minimum=1)
    check_int(cfg.seed, "seed", minimum=0)
    check_subset(cfg.plane_samples, "plane_samples")
    if 0 < cfg.plane_samples < 2:
        raise ValueError("plane_samples must be 0 (all) or at least 2")
    check_positive(cfg.lr, "lr")
    check_in_range(cfg.momentum, "momentum", 0.0, 1.0, low_open=False, high_open=True)
    check_positive(cfg.weight_decay, "weight_decay", allow_zero=True)
    if len(cfg.bins) == 0:
        raise ValueError("bins must list at least one bin count")
    for index, count in enumerate(cfg.bins):
        check_int(count, f"bins[{index}]", minimum=1)
    if not cfg.plot_formats or any(fmt not in ("png", "pdf", "svg") for fmt in cfg.plot_formats):
        raise ValueError(f"plot_formats must be a non-empty subset of [png, pdf, svg], got {list(cfg.plot_formats)}")
    if not cfg.estimators or any(name not in ("auto", "binning") for name in cfg.estimators):
        raise ValueError(f"estimators must be a non-empty subset of [auto, binning], got {list(cfg.estimators)}")


def load_data(cfg: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{'train': (images, labels), 'test': ...}`` from the prepared npz files (DataError naming
    ``infodrop cifar prepare`` when they are missing)."""
    from infodrop.data import CIFAR_TEST_FILE, CIFAR_TRAIN_FILE, load_cifar_npz

    splits = {}
    for name, file_name, size in (("train", CIFAR_TRAIN_FILE, cfg.train_subset), ("test", CIFAR_TEST_FILE, cfg.test_subset)):
        splits[name] = take(load_cifar_npz(Path(cfg.data_dir) / file_name), size, f"{name}_subset")
    return splits


def build_model(cfg: Any) -> nn.Module:
    from infodrop.models import ResNet18

    torch.manual_seed(cfg.seed)
    return ResNet18(num_classes=10, bottleneck=cfg.bottleneck, dropout=cfg.dropout, variance=cfg.variance,
                    activation=cfg.activation, dropout_rate=cfg.dropout_rate, max_alpha=cfg.max_alpha)


def _tracked_layer(model: nn.Module) -> str | None:
    from infodrop.nn import continuous_dropout_layers

    found = continuous_dropout_layers(model)
    if found:
        return found[0][0]
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Dropout)]
    return names[-1] if names else None


def _augmenter(cfg: Any) -> Callable | None:
    """Random crop (pad 4) + horizontal flip of each training batch: ``transform(batch, generator)``."""
    if not cfg.augment:
        return None
    from infodrop.data import random_crop, random_horizontal_flip

    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # The engine passes its seeded augmentation generator (checkpointed with the run).
        return random_horizontal_flip(random_crop(images, 4, generator=generator), generator=generator)

    return transform


def _loss(cfg: Any, train_size: int) -> Callable | None:
    """Information dropout: cross-entropy + beta * KL / N_train (the reference code's weighting);
    the weight decay stays in SGD, as in the reference PyTorch code. Others: the engine's cross-entropy."""
    if cfg.dropout != "information":
        return None
    return information_loss(beta=cfg.beta, train_size=train_size, weight_decay=0.0)


def train(cfg: Any) -> dict:
    """Train the ResNet-18 and record its information plane every ``plane_every`` epochs."""
    from infodrop.data import as_tensor_dataset
    from infodrop.engine import Checkpointing, Reporting, Run, Training, fit
    from infodrop.plane import InformationPlane

    paths = run_paths(cfg, sys.modules[__name__], EXPERIMENT)
    splits = load_data(cfg)
    model = build_model(cfg)
    plane_file = paths.run_dir / "plane.json"
    plane = InformationPlane(
        model,
        splits["train"],
        splits["test"],
        layer=_tracked_layer(model),
        estimators=tuple(cfg.estimators),
        bins=tuple(cfg.bins),
        noise_samples=cfg.noise_samples,
        mc_draws=cfg.mc_draws,
        output=plane_file,
        csv=plane_file.with_suffix(".csv"),
        max_samples=cfg.plane_samples or None,
        batch_size=256,
        seed=cfg.seed,
        device=cfg.device,
        append=paths.model_file.exists(),
        bounds=cfg.plane_bounds,
    )
    print(
        f"cifar_resnet: ResNet18 + {cfg.bottleneck}-unit bottleneck with {cfg.dropout} dropout "
        f"({len(splits['train'][1])} train / {len(splits['test'][1])} test images); plane at {plane.layer_name!r} -> {plane_file}"
    )
    sys.stdout.flush()
    if not paths.model_file.exists() and os.environ.get("RANK", "0") == "0":  # hooks run on rank 0 only
        plane.record(0)  # the initialisation: the start of the trajectory
    train_set = as_tensor_dataset(*splits["train"])
    history = fit(
        model,
        train_set,
        as_tensor_dataset(*splits["test"]),
        Training(
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            make_optimizer=lambda network: torch.optim.SGD(network.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
            make_scheduler=lambda optimizer: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs),
            loss=_loss(cfg, len(train_set)),
            batch_transform=_augmenter(cfg),
            seed=cfg.seed,
        ),
        # What defines the model, plus epochs, on which the cosine schedule depends (as in mnist).
        checkpointing=Checkpointing(path=paths.model_file, every=cfg.checkpoint_every,
                                    config=dict(model_config(cfg, sys.modules[__name__]), epochs=cfg.epochs)),
        reporting=Reporting(run=Run(paths.run_dir, config=to_plain(cfg)),
                            epoch_hooks=(plane.as_hook(every=cfg.plane_every, last=cfg.epochs),), progress=cfg.progress),
        device=cfg.device,
    )
    figures = plot_plane_figures(plane_file, paths.plots_dir, formats=cfg.plot_formats, title=f"cifar_resnet {paths.name}")
    return {"history": history, "plane": str(plane_file), "figures": [str(path) for path in figures]}


def plot(cfg: Any) -> list[str]:
    """Re-read ``runs/cifar_resnet/<run name>/plane.json`` and write the figures."""
    paths = run_paths(cfg, sys.modules[__name__], EXPERIMENT)
    figures = plot_plane_figures(paths.run_dir / "plane.json", paths.plots_dir, formats=cfg.plot_formats, title=f"cifar_resnet {paths.name}")
    for path in figures:
        print(path)
    return [str(path) for path in figures]


COMMANDS: dict[str, Callable[[Any], object]] = {"train": train, "plot": plot}
