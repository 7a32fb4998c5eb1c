"""The networks of the two papers: shapes, where the dropout sits, hyper-parameter checks."""

import pytest
import torch
from torch import nn

from infodrop.models import MLP, AllCNN32, AllCNN96, LeNet, ResNet18
from infodrop.nn import GaussianDropout, InformationDropout, continuous_dropout_layers, kl_divergence, set_mc


def information_layers(model):
    return [module for module in model.modules() if isinstance(module, InformationDropout)]


@pytest.mark.parametrize("filter_percentage", [1.0, 0.25])
@torch.no_grad()
def test_allcnn32_maps_cifar_images_to_logits(filter_percentage):
    torch.manual_seed(0)
    model = AllCNN32(filter_percentage=filter_percentage)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert model.widths == (int(96 * filter_percentage), int(192 * filter_percentage))
    # The two information-dropout layers halve the resolution: 32 -> 16 -> 8.
    first, second = information_layers(model)
    assert first.kl_map.shape == (2, 16, 16) and second.kl_map.shape == (2, 8, 8)
    assert first.features.shape[1] == model.widths[0] and second.features.shape[1] == model.widths[1]


@pytest.mark.parametrize("filter_percentage", [1.0, 0.25])
@torch.no_grad()
def test_allcnn96_maps_cluttered_mnist_to_logits_through_four_stride_2_layers(filter_percentage):
    torch.manual_seed(0)
    model = AllCNN96(filter_percentage=filter_percentage)
    out = model(torch.randn(2, 1, 96, 96))
    assert out.shape == (2, 10)
    assert [layer.kl_map.shape[-1] for layer in information_layers(model)] == [48, 24, 12, 6]
    assert model.widths == tuple(int(w * filter_percentage) for w in (32, 64, 96, 192))
    assert all(layer.max_alpha == 1.0 for layer in information_layers(model))
    assert isinstance(model.input_dropout, nn.Identity)  # cluttered.py has no input dropout


@pytest.mark.parametrize("dropout", ["information", "gaussian", "binary", "none"])
@torch.no_grad()
def test_allcnn32_builds_every_dropout_kind(dropout):
    model = AllCNN32(dropout=dropout, filter_percentage=0.25)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    kinds = {"information": InformationDropout, "gaussian": GaussianDropout, "binary": nn.Dropout}
    if dropout in kinds:
        found = [m for m in model.blocks.modules() if isinstance(m, kinds[dropout])]
        assert len(found) == 2
    else:
        assert not any(isinstance(m, (nn.Dropout, GaussianDropout, InformationDropout)) for m in model.blocks.modules())


def test_allcnn32_drops_20_percent_of_the_input_as_the_original_does():
    for dropout in ("information", "binary"):
        model = AllCNN32(dropout=dropout, filter_percentage=0.25)
        assert isinstance(model.input_dropout, nn.Dropout) and model.input_dropout.p == pytest.approx(0.2)
    assert AllCNN32(dropout="binary", filter_percentage=0.25).blocks[0][-1].p == pytest.approx(0.5)


@torch.no_grad()
def test_single_dropout_has_exactly_one_information_dropout_after_the_third_convolution():
    model = AllCNN32(filter_percentage=0.25, single_dropout=True)
    layers = information_layers(model)
    assert len(layers) == 1
    assert layers[0] is model.blocks[0][2]  # block 1: conv, conv, then the stride-2 information layer
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_lognorm_prior_with_softplus_gives_log_normal_layers():
    model = AllCNN32(filter_percentage=0.25, activations="softplus", lognorm_prior=True)
    assert all(layer.prior == "log-normal" for layer in information_layers(model))


@torch.no_grad()
def test_kl_divergence_of_allcnn32_sums_its_layers():
    model = AllCNN32(filter_percentage=0.25)
    model(torch.randn(2, 3, 32, 32))
    expected = sum(layer.kl.mean() for layer in information_layers(model))
    torch.testing.assert_close(kl_divergence(model), expected)


@torch.no_grad()
def test_mlp_applies_dropout_after_the_last_hidden_layer():
    model = MLP()
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    (name, layer), = continuous_dropout_layers(model)
    assert isinstance(layer, GaussianDropout) and name == "layers.2.2"
    assert model.layers[2][0].out_features == 32


@torch.no_grad()
def test_mlp_information_dropout_is_a_log_normal_linear_layer_of_32_units():
    model = MLP(dropout="information")
    out = model(torch.randn(4, 784))
    assert out.shape == (4, 10)
    (layer,) = information_layers(model)
    assert layer.prior == "log-normal" and layer.kl_map.shape == (4, 32)


@torch.no_grad()
def test_mlp_dropout_index_selects_the_hidden_layer():
    model = MLP(hidden=(20, 10), dropout="gaussian", dropout_index=0)
    assert isinstance(model.layers[0][-1], GaussianDropout)
    assert model(torch.randn(2, 784)).shape == (2, 10)


@pytest.mark.parametrize("dropout", ["gaussian", "information"])
@torch.no_grad()
def test_lenet_has_dropout_on_the_84_unit_layer(dropout):
    model = LeNet(dropout=dropout)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    (name, layer), = continuous_dropout_layers(model)
    assert name.startswith("fc2")
    if dropout == "information":
        assert layer.kl_map.shape == (2, 84)


@torch.no_grad()
def test_lenet_accepts_32x32_colour_images():
    assert LeNet(in_channels=3, image_size=32)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@torch.no_grad()
def test_resnet18_has_a_128_unit_bottleneck_with_gaussian_dropout():
    torch.manual_seed(0)
    model = ResNet18()
    shapes = []
    model.stages.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(output.shape)))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # No max-pool: 32 x 32 inputs reach the last stage at 4 x 4.
    assert shapes == [(2, 512, 4, 4)]
    (name, layer), = continuous_dropout_layers(model)
    assert isinstance(layer, GaussianDropout) and name == "bottleneck.2"
    assert model.bottleneck[0].out_features == 128 and model.output.in_features == 128


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: AllCNN32(filter_percentage=0.0), "filter_percentage"),
        (lambda: AllCNN32(filter_percentage=0.001), "filter_percentage"),
        (lambda: AllCNN32(max_alpha=0.0), "max_alpha"),
        (lambda: AllCNN32(max_alpha=1.5), "max_alpha"),
        (lambda: AllCNN32(dropout="dropconnect"), "dropout"),
        (lambda: AllCNN32(activations="tanh"), "activations"),
        (lambda: AllCNN32(lognorm_prior=True), "lognorm_prior"),
        (lambda: AllCNN32(dropout="gaussian", variance=0.0), "variance"),
        (lambda: AllCNN96(dropout_rate=1.0), "dropout_rate"),
        (lambda: AllCNN96(single_dropout="yes"), "single_dropout"),
        (lambda: MLP(dropout_index=3), "dropout_index"),
        (lambda: MLP(hidden=()), "hidden"),
        (lambda: MLP(activation="relu", lognorm_prior=True), "lognorm_prior"),
        (lambda: LeNet(image_size=8), "image_size"),
        (lambda: ResNet18(bottleneck=0), "bottleneck"),
        (lambda: ResNet18(dropout="information", activation="identity"), "activation"),
    ],
)
def test_bad_hyper_parameters_raise_naming_the_argument(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_inputs_of_the_wrong_shape_are_rejected():
    with pytest.raises(ValueError, match="x"):
        AllCNN32(filter_percentage=0.25)(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="in_features"):
        MLP()(torch.randn(2, 100))


@torch.no_grad()
def test_same_seed_gives_the_same_model_and_the_same_noisy_output():
    def run():
        torch.manual_seed(3)
        model = AllCNN32(filter_percentage=0.25).train()
        return model(torch.ones(2, 3, 32, 32))

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)


@torch.no_grad()
def test_evaluation_mode_makes_the_whole_network_deterministic():
    torch.manual_seed(0)
    model = AllCNN32(filter_percentage=0.25, dropout="information")
    model(torch.randn(4, 3, 32, 32))  # one training step's worth of batch-norm statistics
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


@torch.no_grad()
def test_mc_dropout_keeps_the_noise_on_in_evaluation_mode():
    torch.manual_seed(0)
    model = set_mc(AllCNN32(filter_percentage=0.25).eval(), True)
    x = torch.randn(2, 3, 32, 32)
    assert not torch.equal(model(x), model(x))
    set_mc(model, False)
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
