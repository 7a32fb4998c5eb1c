"""make_dropout, kl_divergence, set_mc, continuous_dropout_layers."""

import pytest
import torch
from torch import nn

from infodrop.nn import (
    GaussianDropout,
    InformationDropout,
    continuous_dropout_layers,
    kl_divergence,
    make_dropout,
    set_mc,
)


def two_layer_model():
    return nn.Sequential(
        InformationDropout.linear(4, 6, activation="softplus"),
        GaussianDropout(0.3),
        InformationDropout.linear(6, 3, activation="relu"),
    )


def test_make_dropout_builds_each_kind():
    assert isinstance(make_dropout("none"), nn.Identity)
    binary = make_dropout("binary", rate=0.5)
    assert isinstance(binary, nn.Dropout) and binary.p == 0.5
    assert make_dropout("gaussian", variance=0.3).variance == pytest.approx(0.3)
    assert make_dropout("gaussian", rate=0.2).variance == pytest.approx(0.25)
    info = make_dropout("information", layer=nn.Linear(2, 3), alpha_layer=nn.Linear(2, 3), max_alpha=0.5)
    assert isinstance(info, InformationDropout) and info.max_alpha == 0.5


def test_make_dropout_rejects_an_unknown_kind_naming_dropout_and_the_choices():
    with pytest.raises(ValueError, match=r"dropout='variational'.*'information', 'gaussian', 'binary', 'none'"):
        make_dropout("variational")


def test_information_dropout_needs_its_layers():
    with pytest.raises(ValueError, match="layer"):
        make_dropout("information")


def test_kl_divergence_sums_the_batch_mean_kl_of_every_layer():
    model = two_layer_model()
    model(torch.randn(5, 4))
    expected = model[0].kl.mean() + model[2].kl.mean()
    total = kl_divergence(model)
    assert total.ndim == 0
    torch.testing.assert_close(total, expected)
    total.backward()  # the sum keeps the graph for the training loss
    assert model[0].alpha_layer.weight.grad is not None


def test_kl_divergence_is_zero_without_information_dropout():
    total = kl_divergence(nn.Sequential(nn.Linear(2, 2), GaussianDropout(0.1)))
    assert total.ndim == 0 and total.item() == 0.0


def test_kl_divergence_before_a_forward_pass_raises():
    with pytest.raises(ValueError, match="forward"):
        kl_divergence(two_layer_model())


def test_set_mc_switches_every_continuous_dropout_layer():
    model = set_mc(two_layer_model(), True)
    assert all(module.mc for _, module in continuous_dropout_layers(model))
    set_mc(model, False)
    assert not any(module.mc for _, module in continuous_dropout_layers(model))
    with pytest.raises(ValueError, match="on"):
        set_mc(model, 1)


def test_continuous_dropout_layers_lists_them_in_order():
    model = nn.Sequential(nn.Dropout(0.5), *two_layer_model())
    names = [name for name, _ in continuous_dropout_layers(model)]
    assert names == ["1", "2", "3"]
