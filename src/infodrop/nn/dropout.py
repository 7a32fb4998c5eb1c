"""One switch over the dropout kinds the experiments compare, and helpers that act on every
continuous-dropout layer of a model (KL penalty, MC-dropout mode, listing for the information plane)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from infodrop.checks import check_in_range
from infodrop.nn.gaussian import GaussianDropout, variance_from_rate
from infodrop.nn.information import InformationDropout

__all__ = [
    "DROPOUT_KINDS",
    "check_dropout_kind",
    "continuous_dropout_layers",
    "kl_divergence",
    "make_dropout",
    "set_mc",
]

DROPOUT_KINDS = ("information", "gaussian", "binary", "none")


def check_dropout_kind(kind: str) -> str:
    """Return ``kind`` if it is one of :data:`DROPOUT_KINDS`, else raise ValueError naming ``dropout``."""
    if kind not in DROPOUT_KINDS:
        allowed = ", ".join(repr(k) for k in DROPOUT_KINDS)
        raise ValueError(f"dropout={kind!r} is not a dropout kind; use one of {allowed}")
    return kind


def make_dropout(
    kind: str,
    *,
    rate: float = 0.5,
    variance: Optional[float] = None,
    layer: Optional[nn.Module] = None,
    alpha_layer: Optional[nn.Module] = None,
    prior: str = "log-uniform",
    max_alpha: float = 0.7,
    mc: bool = False,
) -> nn.Module:
    """Build a dropout module of the given kind.

    * ``'binary'``: ``torch.nn.Dropout(rate)`` (keep probability 1 - rate).
    * ``'gaussian'``: ``GaussianDropout(variance)``; without ``variance``, variance rate/(1-rate).
    * ``'information'``: ``InformationDropout(layer, alpha_layer, prior=..., max_alpha=...)``; it
      replaces the layer computing f(x), so ``layer`` and ``alpha_layer`` are required.
    * ``'none'``: ``torch.nn.Identity()``.
    """
    check_dropout_kind(kind)
    if kind == "none":
        return nn.Identity()
    if kind == "binary":
        rate = check_in_range(rate, "rate", 0.0, 1.0, low_open=False, high_open=True)
        return nn.Dropout(rate)
    if kind == "gaussian":
        if variance is None:
            variance = variance_from_rate(rate)
        return GaussianDropout(variance, mc=mc)
    if layer is None or alpha_layer is None:
        raise ValueError(
            "dropout='information' wraps the layer computing f(x): pass layer= and alpha_layer= "
            "(or use InformationDropout.conv / InformationDropout.linear)"
        )
    return InformationDropout(layer, alpha_layer, prior=prior, max_alpha=max_alpha, mc=mc)


def continuous_dropout_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs of every GaussianDropout / InformationDropout in ``model``, in order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, (GaussianDropout, InformationDropout))]


def kl_divergence(model: nn.Module) -> torch.Tensor:
    """Sum over the InformationDropout layers of ``model`` of their batch-mean KL ``.kl.mean()``.

    Returns a 0-dim tensor in nats per sample (the original's ``Lz`` before division by the training
    set size); zero when the model has no such layer. Uses the KL of the last forward pass.
    """
    total: Optional[torch.Tensor] = None
    for name, module in model.named_modules():
        if isinstance(module, InformationDropout):
            if module.kl is None:
                raise ValueError(f"InformationDropout layer {name or '(root)'!r} has no KL yet; run a forward pass first")
            term = module.kl.mean()
            total = term if total is None else total + term
    if total is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else None
        return torch.zeros((), device=device)
    return total


def set_mc(model: nn.Module, on: bool) -> nn.Module:
    """Switch MC-dropout mode (noise at inference) on or off on every Gaussian/Information dropout layer.

    Binary ``torch.nn.Dropout`` layers are not affected. Returns ``model``.
    """
    if not isinstance(on, bool):
        raise ValueError(f"on must be True or False, got {on!r}")
    for _, module in continuous_dropout_layers(model):
        module.mc = on
    return model
