"""The training loss of information dropout (infodrop.losses), against the original ``build_loss``."""

from __future__ import annotations

import torch

from infodrop.experiments import cifar
from infodrop.experiments.session import compose
from infodrop.losses import information_loss
from infodrop.nn import InformationDropout


def test_loss_is_cross_entropy_plus_beta_kl_over_n_plus_half_l2_of_the_original_variables():
    torch.manual_seed(0)
    model = cifar.build_model(compose("cifar", ["filter_percentage=0.05"]))
    images, targets = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    logits = model(images)
    loss = information_loss(beta=3.0, train_size=50000, weight_decay=0.001)
    value, parts = loss(model, logits, targets)
    kl = sum(layer.kl.sum() / 4 for layer in model.modules() if isinstance(layer, InformationDropout))
    # The original's trainable variables: all parameters but the batch-norm scales it lacks.
    scales = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    half_squares = sum((p**2).sum() for p in model.parameters() if id(p) not in scales) / 2
    expected = torch.nn.functional.cross_entropy(logits, targets) + 3.0 * kl / 50000 + 0.001 * half_squares
    # Same float32 sums in a different order: agreement to a few float32 ulps of the total.
    assert torch.allclose(value, expected, rtol=1e-5)
    assert torch.allclose(parts["kl"], kl, rtol=1e-5)
