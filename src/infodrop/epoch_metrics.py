"""The metrics of an epoch of :func:`infodrop.engine.fit`: summed over the ranks, checked
finite, and joined by the epoch hooks' numbers (losses in nats, errors as fractions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["ENGINE_KEYS", "EpochHook", "TrainingDiverged", "check_finite", "epoch_metrics", "hook_results"]

# Names fit puts in every metrics line; loss parts and hook results may not reuse them.
ENGINE_KEYS = ("epoch", "loss", "train_error", "test_error", "test_loss", "lr", "seconds")

EpochHook = Callable[[int, nn.Module], "Mapping[str, Any] | None"]


class TrainingDiverged(FloatingPointError, ValueError):
    """The training loss, the test loss or the weights stopped being finite: one line,
    "training diverged at epoch N (...); lower lr". A ValueError too, since the fix is a value."""

    def __init__(self, epoch: int, what: str) -> None:
        super().__init__(f"training diverged at epoch {epoch} ({what}); lower lr")
        self.epoch = epoch


def epoch_metrics(epoch: int, lr: float, sums: dict[str, torch.Tensor], errors: torch.Tensor, count: int,
                  tests: torch.Tensor, *, distributed: bool) -> dict:
    """The epoch's metrics from this process's sums (float64 tensors on one device: the loss and
    its parts and the errors summed over ``count`` samples; ``tests`` = [summed test loss, test
    errors, test samples]), added up over the ranks when ``distributed``."""
    names = list(sums)
    clash = [name for name in names[1:] if name in ENGINE_KEYS]
    if clash:
        raise ValueError(f"loss parts {clash} reuse names of fit's own metrics {ENGINE_KEYS}; rename them")
    totals = torch.stack([*(sums[name] for name in names), errors, torch.tensor(float(count), dtype=torch.float64, device=errors.device)])
    if distributed:
        dist.all_reduce(totals)
        dist.all_reduce(tests)
    totals, tests = totals.tolist(), tests.tolist()
    metrics = {"epoch": epoch}
    metrics.update({name: totals[index] / totals[-1] for index, name in enumerate(names)})
    metrics.update(train_error=totals[-2] / totals[-1], test_error=tests[1] / tests[2], test_loss=tests[0] / tests[2], lr=lr)
    return metrics


def check_finite(epoch: int, metrics: dict, model: nn.Module) -> None:
    """Raise :class:`TrainingDiverged` when the epoch's losses or the weights are not finite.

    Checked before the epoch hooks (an information plane of NaN features says nothing) and before
    the checkpoint (the last good one stays). The weights can turn NaN in the last step of an
    epoch whose losses were still finite, so they are checked too (one sync per epoch).
    """
    for key, label in (("loss", "training loss"), ("test_loss", "test loss")):
        if not math.isfinite(metrics[key]):
            raise TrainingDiverged(epoch, f"{label} {metrics[key]}")
    parameters = [parameter.detach() for parameter in model.parameters() if parameter.is_floating_point()]
    if parameters and not bool(torch.stack([torch.isfinite(parameter).all() for parameter in parameters]).all()):
        raise TrainingDiverged(epoch, "NaN or inf in the weights")


def hook_results(hooks: Sequence[EpochHook], epoch: int, model: nn.Module, metrics: dict, *, main: bool = True) -> dict:
    """The epoch hooks' numbers, refused when they reuse a metric's name. Off rank 0 only
    the hooks marked ``all_ranks`` run (they take part in collectives); their numbers are dropped."""
    extras: dict = {}
    for hook in hooks:
        if not main and not getattr(hook, "all_ranks", False):
            continue
        extra = hook(epoch, model)
        if extra is None:
            continue
        if not isinstance(extra, Mapping):
            raise ValueError(f"epoch hook {hook!r} returned {type(extra).__name__}; return a dict or None")
        clash = [key for key in extra if key in metrics or key in extras]
        if clash:
            raise ValueError(f"epoch hook {hook!r} returned keys {clash} that are already metrics; rename them")
        extras.update(extra)
    return extras
