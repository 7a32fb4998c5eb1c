"""The training loss of information dropout (Achille & Soatto, TPAMI 2018, eq. (6) and the
original ``build_loss``), as a loss of :func:`infodrop.engine.fit`.

    loss = CE + beta * kl_divergence(model) / N_train + weight_decay * sum_p ||p||^2 / 2

in nats per sample: CE the batch-mean cross-entropy, ``kl_divergence`` the batch-mean per-sample
KL summed over the information-dropout layers (:func:`infodrop.nn.kl_divergence`), and the last
term TensorFlow's ``l2_loss`` over the parameters the original has as trainable variables
(:func:`weight_decay_parameters`).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional

from infodrop.checks import check_int, check_positive
from infodrop.nn import kl_divergence

__all__ = ["information_loss", "weight_decay_parameters"]


def weight_decay_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of ``model`` except the batch-norm scales.

    TensorFlow's ``batch_norm`` has no scale by default, PyTorch's has one; decaying it would add
    a regulariser the original lacks. Batch-norm shifts, biases and the log-normal prior's
    ``mu1``/``sigma1`` are included, as in the original.
    """
    scales = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._NormBase) and module.weight is not None
    }
    return [p for p in model.parameters() if p.requires_grad and id(p) not in scales]


def information_loss(*, beta: float, train_size: int, weight_decay: float) -> Callable[..., Any]:
    """The loss ``loss(model, logits, targets) -> (loss, parts)`` of the module docstring.

    ``beta >= 0`` weighs the KL (the information bottleneck's Lagrange multiplier), divided by the
    ``train_size`` training samples; ``weight_decay >= 0`` weighs the half sum of squares of
    :func:`weight_decay_parameters`. ``parts`` holds detached 0-dim tensors: ``cross_entropy``,
    ``kl`` (per sample, before the division by ``train_size``) and, with weight decay, ``l2`` (the
    half sum of squares, before the factor ``weight_decay``).
    """
    beta = check_positive(beta, "beta", allow_zero=True)
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    train_size = check_int(train_size, "train_size", minimum=1)

    decayed: dict[int, list[nn.Parameter]] = {}

    def loss(model: nn.Module, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cross_entropy = functional.cross_entropy(logits, targets)
        kl = kl_divergence(model)
        total = cross_entropy + beta * kl / train_size
        # Detached tensors, not floats: a float() per batch would synchronise with the GPU.
        parts = {"cross_entropy": cross_entropy.detach(), "kl": kl.detach()}
        if weight_decay > 0:
            if id(model) not in decayed:
                decayed[id(model)] = weight_decay_parameters(model)
            half_squares = torch.stack([p.pow(2).sum() for p in decayed[id(model)]]).sum() / 2
            total = total + weight_decay * half_squares
            parts["l2"] = half_squares.detach()
        return total, parts

    return loss
