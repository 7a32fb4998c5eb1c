"""Augmentation for the CIFAR-10 ResNet experiment (the standard padded random crop and random
horizontal flip) and per-channel normalisation, on torch batches N x C x H x W; no torchvision.

Every random choice comes from an explicit ``torch.Generator``, so the same generator state
gives the same batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from infodrop.checks import check_in_range, check_int


def _check_batch(batch: torch.Tensor, name: str = "batch") -> None:
    if not isinstance(batch, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor N x C x H x W, got {type(batch).__name__}; use torch.from_numpy")
    if batch.ndim != 4:
        raise ValueError(f"{name} must have shape N x C x H x W, got {tuple(batch.shape)}")


def _check_generator(generator: torch.Generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), got {type(generator).__name__}")


def random_crop(batch: torch.Tensor, padding: int = 4, *, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each image by ``padding`` pixels on every side and cut out an H x W window at a
    uniformly random offset (each image its own offset). batch: N x C x H x W; returns the same shape."""
    _check_batch(batch)
    _check_generator(generator)
    padding = check_int(padding, "padding", minimum=0)
    if padding == 0:
        return batch.clone()
    count, channels, height, width = batch.shape
    padded = F.pad(batch, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, count), generator=generator, device=generator.device).to(batch.device)
    rows = offsets[0][:, None] + torch.arange(height, device=batch.device)
    cols = offsets[1][:, None] + torch.arange(width, device=batch.device)
    index_n = torch.arange(count, device=batch.device)[:, None, None, None]
    index_c = torch.arange(channels, device=batch.device)[None, :, None, None]
    return padded[index_n, index_c, rows[:, None, :, None], cols[:, None, None, :]]


def random_horizontal_flip(batch: torch.Tensor, p: float = 0.5, *, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``. batch: N x C x H x W; returns the same shape."""
    _check_batch(batch)
    _check_generator(generator)
    p = check_in_range(p, "p", 0.0, 1.0, low_open=False)
    flip = torch.rand(batch.shape[0], generator=generator, device=generator.device).to(batch.device) < p
    return torch.where(flip[:, None, None, None], batch.flip(-1), batch)


def augment_cifar(batch: torch.Tensor, *, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """The usual CIFAR-10 training augmentation: random crop with 4-pixel padding, then random flip."""
    return random_horizontal_flip(random_crop(batch, padding, generator=generator), generator=generator)


def channel_stats(images: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (float64, shape C) of images N x C x H x W,
    computed on the training set and passed to ``normalize``."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.ndim != 4 or array.shape[0] == 0:
        raise ValueError(f"images must have shape N x C x H x W with N >= 1, got {array.shape}")
    mean = array.mean(axis=(0, 2, 3), dtype=np.float64)
    std = array.std(axis=(0, 2, 3), dtype=np.float64)
    return mean, std


def normalize(batch: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray | torch.Tensor:
    """(batch - mean[c]) / std[c] for each channel c. batch: N x C x H x W (numpy or torch; the
    result has the same type, dtype and device)."""
    mean_array = np.asarray(mean, dtype=np.float64).reshape(-1)
    std_array = np.asarray(std, dtype=np.float64).reshape(-1)
    channels = batch.shape[1] if getattr(batch, "ndim", 0) == 4 else None
    if channels is None:
        raise ValueError(f"batch must have shape N x C x H x W, got {tuple(getattr(batch, 'shape', ()))}")
    if mean_array.shape != (channels,) or std_array.shape != (channels,):
        raise ValueError(f"mean and std must have one entry per channel ({channels}), got {mean_array.shape} and {std_array.shape}")
    if not (np.isfinite(std_array).all() and (std_array > 0).all()) or not np.isfinite(mean_array).all():
        raise ValueError("mean must be finite and std finite and > 0 for every channel")
    if isinstance(batch, torch.Tensor):
        shift = torch.as_tensor(mean_array, dtype=batch.dtype, device=batch.device)[None, :, None, None]
        scale = torch.as_tensor(std_array, dtype=batch.dtype, device=batch.device)[None, :, None, None]
        return (batch - shift) / scale
    batch = np.asarray(batch)
    return ((batch - mean_array[None, :, None, None]) / std_array[None, :, None, None]).astype(batch.dtype)


def as_tensor_dataset(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
    """A TensorDataset of (float32 image, int64 label) pairs from images N x ... and labels N."""
    images_tensor = torch.as_tensor(np.asarray(images, dtype=np.float32))
    labels_array = np.asarray(labels)
    if labels_array.ndim != 1 or not np.issubdtype(labels_array.dtype, np.integer):
        raise ValueError(f"labels must be 1-D integers, got {labels_array.dtype} of shape {labels_array.shape}")
    if len(labels_array) != images_tensor.shape[0]:
        raise ValueError(f"images has {images_tensor.shape[0]} rows but labels has {len(labels_array)}; pass one label per image")
    return TensorDataset(images_tensor, torch.as_tensor(labels_array.astype(np.int64)))
