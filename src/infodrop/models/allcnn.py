"""All-convolutional networks of Achille & Soatto (TPAMI 2018), after the original ``cifar.py``
(CIFAR-10, 32 x 32) and ``cluttered.py`` (Cluttered MNIST, 96 x 96).

Each block is conv3 - conv3 - "dropout conv": a 3x3 stride-2 conv that halves the resolution and
carries the dropout. With information dropout that layer is ``InformationDropout.conv`` (the
original ``information_pool``); for the other kinds it is a plain conv + BN + activation followed
by the dropout. A head conv3 - conv1x1 - conv1x1 to ``num_classes`` channels, a global spatial mean
and a linear layer give the logits. Every conv has batch norm and the activation (TF
``contrib.layers`` defaults: no conv bias, BN eps 1e-3, Glorot-uniform weights, zero biases).

Differences from the TensorFlow original, on purpose:
* 'same' padding with stride 2 pads both sides by one (PyTorch) instead of right/bottom only.
* The batch norm has a learnable scale (PyTorch's default; TF's ``batch_norm`` has none by default).
* ``cluttered.py`` never sets ``is_training`` on its batch norm, so it normalises with batch
  statistics even at test time; here evaluation mode uses the running statistics, as in ``cifar.py``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from infodrop.checks import check_in_range, check_int, check_positive
from infodrop.models._common import check_max_alpha, check_rate, check_variance, conv_bn_act, prior_from_flag, tf_init
from infodrop.nn import InformationDropout, check_activation, check_dropout_kind, make_dropout

__all__ = ["AllCNN32", "AllCNN96"]


class _AllCNN(nn.Module):
    """Shared body: blocks of ``base_widths`` scaled by ``filter_percentage``, then the head."""

    base_widths: Sequence[int] = ()
    image_size: int = 0
    # The defaults in which the two originals differ, set by each network; None in __init__ takes these.
    default_max_alpha: float
    default_in_channels: int
    default_input_dropout: float

    @classmethod
    def block_widths(cls, filter_percentage: float) -> tuple[int, ...]:
        """The blocks' filter counts int(width * filter_percentage); ValueError naming
        ``filter_percentage`` when it is not positive or leaves a block without filters."""
        check_positive(filter_percentage, "filter_percentage")
        widths = tuple(int(width * filter_percentage) for width in cls.base_widths)
        if min(widths) < 1:
            raise ValueError(
                f"filter_percentage={filter_percentage!r} leaves a block with {min(widths)} filters "
                f"(widths {list(widths)}); use filter_percentage >= {1.0 / min(cls.base_widths):.4f}"
            )
        return widths

    def __init__(
        self,
        *,
        dropout: str = "information",
        filter_percentage: float = 1.0,
        activations: str = "relu",
        lognorm_prior: bool = False,
        max_alpha: float | None = None,
        num_classes: int = 10,
        in_channels: int | None = None,
        variance: float = 1.0,
        dropout_rate: float = 0.5,
        input_dropout: float | None = None,
        single_dropout: bool = False,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        max_alpha = self.default_max_alpha if max_alpha is None else max_alpha
        in_channels = self.default_in_channels if in_channels is None else in_channels
        input_dropout = self.default_input_dropout if input_dropout is None else input_dropout
        self.dropout = check_dropout_kind(dropout)
        self.widths = self.block_widths(filter_percentage)
        self.filter_percentage = float(filter_percentage)
        self.activations = check_activation(activations, "activations")
        self.max_alpha = check_max_alpha(max_alpha)
        prior = prior_from_flag(lognorm_prior, activations, "activations")
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.in_channels = check_int(in_channels, "in_channels")
        variance = check_variance(variance)
        dropout_rate = check_rate(dropout_rate, "dropout_rate")
        input_dropout = check_rate(input_dropout, "input_dropout")
        if not isinstance(single_dropout, bool):
            raise ValueError(f"single_dropout must be True or False, got {single_dropout!r}")
        self.single_dropout = single_dropout
        bn_momentum = check_in_range(bn_momentum, "bn_momentum", 0.0, 1.0)

        # The original applies binary dropout to the input for every dropout kind (initial_keep_prob).
        self.input_dropout = nn.Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        blocks = []
        channels = self.in_channels
        for index, width in enumerate(self.widths):
            carries_dropout = index == 0 or not single_dropout
            layers: list[nn.Module] = [
                conv_bn_act(channels, width, activation=activations, bn_momentum=bn_momentum),
                conv_bn_act(width, width, activation=activations, bn_momentum=bn_momentum),
            ]
            if self.dropout == "information" and carries_dropout:
                layers.append(
                    InformationDropout.conv(
                        width, width, stride=2, activation=activations, prior=prior,
                        max_alpha=self.max_alpha, bn_momentum=bn_momentum,
                    )
                )
            else:
                layers.append(conv_bn_act(width, width, stride=2, activation=activations, bn_momentum=bn_momentum))
                if carries_dropout and self.dropout != "none":
                    layers.append(make_dropout(self.dropout, rate=dropout_rate, variance=variance))
            blocks.append(nn.Sequential(*layers))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        head = self.widths[-1]
        self.head = nn.Sequential(
            conv_bn_act(channels, head, activation=activations, bn_momentum=bn_momentum),
            conv_bn_act(head, head, kernel_size=1, activation=activations, bn_momentum=bn_momentum),
            conv_bn_act(head, self.num_classes, kernel_size=1, activation=activations, bn_momentum=bn_momentum),
        )
        self.classifier = nn.Linear(self.num_classes, self.num_classes)
        tf_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x in_channels x H x W (H = W = ``image_size`` in the papers) -> logits N x num_classes."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        out = self.input_dropout(x)
        out = self.blocks(out)
        out = self.head(out)
        return self.classifier(out.mean(dim=(2, 3)))


class AllCNN32(_AllCNN):
    """The CIFAR-10 network of the original ``cifar.py`` (input 3 x 32 x 32).

    Input dropout (binary, rate ``input_dropout`` = 0.2, the original's keep 0.8, applied for every
    dropout kind as the original does); block 1: int(96 * filter_percentage) filters, 32 -> 16;
    block 2: int(192 * filter_percentage), 16 -> 8; head conv3, conv1x1 at int(192 * filter_percentage),
    conv1x1 to ``num_classes``; global mean; linear.

    Args:
        dropout: 'information' | 'gaussian' | 'binary' | 'none'. Binary drops with ``dropout_rate``
            (0.5, the original keep_prob); Gaussian uses ``variance`` (1.0 = p/(1-p) at p = 0.5).
        filter_percentage: width multiplier (> 0); 0.25 is the paper's small network.
        activations: 'relu' or 'softplus'. lognorm_prior: log-normal prior (needs softplus), else log-uniform.
        max_alpha: upper bound of alpha, in (0, 1]; default 0.7 (``default_max_alpha``).
        in_channels: input channels, default 3; input_dropout: rate of the input dropout, default 0.2.
            None for any of these three takes the network's default.
        single_dropout: the ICLR 2023 fullCNN variant (Fig. 7): only the first stride-2 layer (the
            third convolution) carries dropout; the second is a plain conv + BN + activation.
            (The authors' released PyTorch port instead kept the second one; we follow the paper's text.)
        bn_momentum: PyTorch BN momentum; 0.1 is TF's decay 0.9.
    """

    base_widths = (96, 192)
    image_size = 32
    default_max_alpha = 0.7
    default_in_channels = 3
    default_input_dropout = 0.2


class AllCNN96(_AllCNN):
    """The Cluttered MNIST network of the original ``cluttered.py`` (input 1 x 96 x 96).

    Four blocks of 32, 64, 96 and 192 filters (times ``filter_percentage``; the original has no
    multiplier, i.e. 1.0), each ending in a stride-2 dropout conv: 96 -> 48 -> 24 -> 12 -> 6; then
    conv3 and conv1x1 at the last width, conv1x1 to ``num_classes``, global mean, linear. No input
    dropout (``input_dropout=0.0``), ``max_alpha`` 1.0, as in the original. Arguments as for
    :class:`AllCNN32`; the KL heat maps of the paper are each layer's ``kl_map`` (N x H x W).
    """

    base_widths = (32, 64, 96, 192)
    image_size = 96
    default_max_alpha = 1.0
    default_in_channels = 1
    default_input_dropout = 0.0
