"""Checkpoints of :func:`infodrop.engine.fit`: reading them back, and the random states they carry.

A checkpoint is a plain dict, saved atomically with its SHA-256, the previous good one kept as
``<name>.prev.pt`` (``infodrop.io.save_checkpoint``), and read back with ``weights_only=True``
and verified (``infodrop.io.load_checkpoint``; a damaged latest one falls back to the previous
one through ``infodrop.io.resume_checkpoint``)::

    {'model': state_dict, 'optimizer': ..., 'scheduler': ..., 'epoch': last completed epoch,
     'config': dict, 'metrics': that epoch's metrics, 'rng': [per-rank random states]}

The random states are python's, numpy's, torch's (CPU and CUDA) and the engine's two generators
(batch order, augmentation), as tensors, lists and numbers, so that a resumed run draws exactly
what an uninterrupted one would.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infodrop.io import load_checkpoint as _load_verified
from infodrop.io import previous_path, remove_temporaries

__all__ = ["check_same_config", "cpu_copy", "load_checkpoint", "remove_stale_temporaries", "rng_state", "set_rng_state"]


def load_checkpoint(path: Path | str) -> dict:
    """Load a checkpoint dict on the CPU with ``weights_only=True``, verified against its SHA-256
    and refused when it holds NaN or inf (:func:`infodrop.io.load_checkpoint`).

    A missing file raises ValueError, an unusable one :class:`infodrop.io.DamagedFileError`
    (a ValueError); each message is one line naming the file and what to do.
    """
    return _load_verified(path)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temp files that a write of the checkpoint ``path`` (or of its previous one) left
    when its process was killed; other files of the folder, which other runs share, stay."""
    path = Path(path)
    removed = remove_temporaries(path.parent, of=path.name)
    return removed + remove_temporaries(path.parent, of=previous_path(path).name)


def cpu_copy(value: Any) -> Any:
    """A deep copy with every tensor copied to the CPU (states keep changing while training goes on)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        items = {key: cpu_copy(item) for key, item in value.items()}
        if isinstance(value, (collections.OrderedDict, collections.Counter)):
            return type(value)(items)
        return items
    if isinstance(value, list):
        return [cpu_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(cpu_copy(item) for item in value)
    return value


def rng_state(loader_generator: torch.Generator, augment_generator: torch.Generator) -> dict:
    """Every random state of this process as tensors, lists and numbers (loadable with weights_only)."""
    version, internal, gauss_next = random.getstate()
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_generator.get_state(),
        "augment": augment_generator.get_state(),
    }


def set_rng_state(state: dict, loader_generator: torch.Generator, augment_generator: torch.Generator) -> None:
    """Put back the random states :func:`rng_state` took (CUDA's only on as many devices as saved them)."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    loader_generator.set_state(state["loader"])
    augment_generator.set_state(state["augment"])


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, Mapping):
        return {prefix: config} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def check_same_config(stored: Any, config: dict | None, path: Path) -> None:
    """Refuse a checkpoint whose stored config differs from ``config``, naming the differing keys
    (nested dicts compared key by key, ``model.width``); ``config=None`` accepts any."""
    if config is None:
        return
    old, new = _flatten(stored or {}), _flatten(config)
    missing = object()
    differing = sorted(key for key in old.keys() | new.keys() if old.get(key, missing) != new.get(key, missing))
    if differing:
        details = ", ".join(f"{key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}" for key in differing)
        raise ValueError(
            f"checkpoint {path} was trained with a different config ({details}); "
            "use another checkpoint path for this config or delete the checkpoint"
        )
