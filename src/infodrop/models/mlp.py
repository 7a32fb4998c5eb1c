"""Fully connected network of Adilova, Geiger & Fischer (ICLR 2023), section 5: MNIST, three hidden
layers (512, 128, 32) with softplus activations and dropout on the last hidden layer."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from infodrop.checks import check_int
from infodrop.models._common import check_dropout_options
from infodrop.nn import InformationDropout, activation_module, make_dropout

__all__ = ["MLP"]


class MLP(nn.Module):
    """Multilayer perceptron with one dropout layer on a hidden representation.

    Hidden layer i computes act(W_i h + b_i). The hidden layer ``dropout_index`` (default -1, the last,
    32 units: the paper's FC net) is followed by the dropout; with ``dropout='information'`` it becomes
    ``InformationDropout.linear`` (its noiseless output f(x) is that layer's activation), with the
    log-normal prior for softplus (``lognorm_prior=None`` picks it) and log-uniform for ReLU.

    Args:
        in_features: input size; inputs of any shape N x ... are flattened to N x in_features.
        hidden: widths of the hidden layers. num_classes: number of logits.
        activation: 'softplus' (paper) or 'relu'. dropout: 'information'|'gaussian'|'binary'|'none'.
        variance: Gaussian-dropout variance (0.25 = p/(1-p) at the reference code's p = 0.2).
        dropout_rate: binary-dropout drop rate. max_alpha: bound of alpha for information dropout.
    Returns logits N x num_classes.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (512, 128, 32),
        num_classes: int = 10,
        activation: str = "softplus",
        dropout: str = "gaussian",
        variance: float = 0.25,
        *,
        dropout_rate: float = 0.2,
        dropout_index: int = -1,
        max_alpha: float = 0.7,
        lognorm_prior: Optional[bool] = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features")
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or len(hidden) == 0:
            raise ValueError(f"hidden must be a non-empty sequence of layer widths, got {hidden!r}")
        self.hidden = tuple(check_int(width, "hidden") for width in hidden)
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.activation, self.dropout, variance, dropout_rate, max_alpha, prior = check_dropout_options(
            activation, dropout, variance, dropout_rate, max_alpha, lognorm_prior
        )
        count = len(self.hidden)
        if isinstance(dropout_index, bool) or not isinstance(dropout_index, int) or not -count <= dropout_index < count:
            raise ValueError(f"dropout_index must be an integer in [{-count}, {count - 1}] (a hidden layer), got {dropout_index!r}")
        self.dropout_index = dropout_index % count

        layers = []
        width_in = self.in_features
        for index, width in enumerate(self.hidden):
            if index == self.dropout_index and self.dropout == "information":
                layers.append(InformationDropout.linear(width_in, width, activation=activation, prior=prior, max_alpha=max_alpha))
            else:
                parts = [nn.Linear(width_in, width), activation_module(activation)]
                if index == self.dropout_index and self.dropout != "none":
                    parts.append(make_dropout(self.dropout, rate=dropout_rate, variance=variance))
                layers.append(nn.Sequential(*parts))
            width_in = width
        self.layers = nn.Sequential(*layers)
        self.output = nn.Linear(width_in, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x ... with in_features values per sample -> logits N x num_classes."""
        out = x.reshape(x.shape[0], -1) if x.ndim != 2 else x
        if out.shape[1] != self.in_features:
            raise ValueError(f"x has {out.shape[1]} features per sample but the MLP expects in_features={self.in_features}")
        return self.output(self.layers(out))
