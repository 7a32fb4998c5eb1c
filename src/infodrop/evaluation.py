"""Testing a classifier with the dropout noise off: its error and loss, and the batch-norm
statistics recomputed without noise (the original code's "dry run", Achille & Soatto ``cifar.py``:
statistics gathered with dropout noise on are wrong once the noise is off, so they are recomputed
on the training set with the noise off before testing).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from infodrop.batches import DeviceTensors, evaluation_batches
from infodrop.checks import check_int, resolve_device

__all__ = ["check_dataset", "evaluate", "evaluation_sums", "recompute_batchnorm"]


def check_dataset(dataset: Any, name: str) -> int:
    """The size of ``dataset``, a non-empty map-style Dataset of (input tensor, label) pairs;
    ValueError naming ``name`` otherwise."""
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise ValueError(f"{name} must be a map-style torch Dataset (with __len__ and __getitem__), got {type(dataset).__name__}")
    size = len(dataset)
    if size == 0:
        raise ValueError(f"{name} is empty; pass at least one (image, label) sample")
    first = dataset[0]
    if not (isinstance(first, (tuple, list)) and len(first) == 2 and isinstance(first[0], torch.Tensor)):
        raise ValueError(f"{name}[0] must be an (input tensor, label) pair, e.g. from a TensorDataset(images, labels)")
    return size


def evaluation_sums(model: nn.Module, dataset: Dataset | DeviceTensors, batch_size: int, device: torch.device) -> torch.Tensor:
    """Float64 tensor [summed cross-entropy (nats), number of errors, number of samples], left on
    ``device`` (read once by the caller)."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    with torch.no_grad():
        for inputs, targets in evaluation_batches(dataset, batch_size, device):
            logits = model(inputs)
            totals[0] += F.cross_entropy(logits.float(), targets, reduction="sum").double()
            totals[1] += (logits.argmax(dim=1) != targets).sum()
            totals[2] += targets.shape[0]
    return totals


def evaluate(model: nn.Module, dataset: Dataset, *, batch_size: int = 256, device: Any = None) -> dict:
    """Classification error of ``model`` on ``dataset`` with the noise off (``model.eval()``, no grad).

    The model is moved to ``device`` (None: CUDA if available, else CPU) and left in eval mode.
    Returns ``{'error': fraction wrong, 'loss': mean cross-entropy in nats, 'accuracy': 1 - error}``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_dataset(dataset, "dataset")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = resolve_device(device)
    model.to(device)
    loss_sum, errors, count = evaluation_sums(model, dataset, batch_size, device).tolist()
    return {"error": errors / count, "loss": loss_sum / count, "accuracy": 1.0 - errors / count}


def recompute_batchnorm(model: nn.Module, dataset: Dataset, *, batch_size: int, device: Any = None) -> None:
    """Recompute every batch-norm layer's running mean and variance on ``dataset`` with the
    dropout noise off: the original code's "dry run" before testing.

    Statistics collected while training see noisy activations; at test time the noise is off, so
    they no longer match. The running statistics are reset, each layer's momentum is set to None
    (a cumulative average: every batch weighs the same) and ``dataset`` is passed through once
    in batches of ``batch_size`` (unshuffled, no gradients) with the model in ``eval()`` except
    the batch-norm layers in ``train()``, so dropout layers add no noise. The momenta are then
    restored and the whole model is left in ``eval()``. (The TensorFlow original kept its decay
    of 0.9 during the dry run, which weighs the last batches most; the cumulative average is
    the plain mean over the pass.) A model without batch-norm layers is left unchanged.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_dataset(dataset, "dataset")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = resolve_device(device)
    norms = [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    ]
    if not norms:
        return
    momenta = [module.momentum for module in norms]
    model.to(device)
    model.eval()
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
        module.train()
    try:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda")
        with torch.no_grad():
            for inputs, _ in loader:
                model(inputs.to(device, non_blocking=True))
    finally:
        for module, momentum in zip(norms, momenta):
            module.momentum = momentum
        model.eval()
