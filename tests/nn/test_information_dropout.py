"""Information dropout (Achille & Soatto 2018; Adilova et al. 2023, Appendix A.1)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
from scipy import integrate, stats
from torch import nn

from infodrop.nn import InformationDropout, information_dropout, log_normal_kl, log_uniform_kl


class Constant(nn.Module):
    """Returns a fixed tensor whatever the input: lets a test choose f(x) and the pre-sigmoid alpha."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = nn.Parameter(value.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], *self.value.shape[1:])


def fixed_layer(features, pre_alpha, **kwargs):
    return InformationDropout(Constant(features), Constant(pre_alpha), **kwargs)


def test_log_uniform_kl_vanishes_at_the_largest_alpha():
    max_alpha = 0.7
    kl = log_uniform_kl(torch.tensor([max_alpha + 0.001], dtype=torch.float64), max_alpha)
    assert kl.item() == pytest.approx(0.0, abs=1e-12)
    # Through the layer the sigmoid saturates at 1 for a large pre-activation: alpha -> max_alpha + 0.001.
    layer = fixed_layer(torch.ones(1, 5), torch.full((1, 5), 40.0), max_alpha=max_alpha)
    layer(torch.zeros(3, 1))
    assert torch.all(layer.kl.abs() < 1e-5)  # float32 rounding of log near 1: ~1e-7 per unit


def test_log_uniform_kl_is_the_negative_entropy_of_log_noise_up_to_a_constant():
    # Appendix A.1: with an improper log-uniform prior (constant density in log z), the KL from
    # N(log f, alpha^2) is -h(N(log f, alpha^2)) + const. Check differences against quadrature.
    def entropy(alpha, mean=0.3):
        density = stats.norm(mean, alpha)
        value, _ = integrate.quad(lambda t: -density.pdf(t) * density.logpdf(t), mean - 12 * alpha, mean + 12 * alpha)
        return value

    alphas = np.array([0.02, 0.1, 0.35, 0.7])
    ours = log_uniform_kl(torch.tensor(alphas), 0.7).numpy()
    entropies = np.array([entropy(a) for a in alphas])
    # quad's absolute error is ~1e-10 here; float64 throughout.
    np.testing.assert_allclose(ours - ours[-1], -(entropies - entropies[-1]), atol=1e-8)


def _quadrature_kl(mean0, sigma0, mean1, sigma1):
    p, q = stats.norm(mean0, sigma0), stats.norm(mean1, sigma1)
    value, _ = integrate.quad(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)), mean0 - 14 * sigma0, mean0 + 14 * sigma0)
    return value


def test_log_normal_kl_matches_quadrature_of_the_kl_integral():
    # eq. (7): KL(N(log f, alpha^2) || N(mu1, sigma1^2)) per unit, summed over units into .kl
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(1, 6, generator=generator, dtype=torch.float64) * 3 + 0.05
    pre_alpha = torch.randn(1, 6, generator=generator, dtype=torch.float64)
    layer = fixed_layer(features, pre_alpha, prior="log-normal", max_alpha=0.7).double()
    with torch.no_grad():
        layer.mu1.fill_(0.4)
        layer.sigma1.fill_(1.7)
    layer(torch.zeros(2, 1, dtype=torch.float64))
    alpha = layer.alpha[0].numpy()
    expected = [_quadrature_kl(math.log(f), a, 0.4, 1.7) for f, a in zip(features[0].tolist(), alpha)]
    # quad's absolute error is ~1e-9 per unit; the closed form is exact in float64.
    np.testing.assert_allclose(layer.kl_map[0].numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(layer.kl.detach().numpy(), [sum(expected)] * 2, atol=1e-6)


def test_log_normal_kl_clamps_log_features_at_log_1e4():
    alpha = torch.full((3,), 0.3, dtype=torch.float64)
    below = log_normal_kl(torch.tensor([1e-6, 1e-5, 1e-4], dtype=torch.float64), alpha)
    np.testing.assert_allclose(below.numpy(), [_quadrature_kl(math.log(1e-4), 0.3, 0.0, 1.0)] * 3, atol=1e-7)


def test_log_normal_kl_depends_on_sigma1_only_through_its_square():
    features, alpha = torch.tensor([0.5, 2.0]), torch.tensor([0.2, 0.6])
    torch.testing.assert_close(log_normal_kl(features, alpha, 0.1, -1.3), log_normal_kl(features, alpha, 0.1, 1.3))


def test_noise_is_log_normal_with_standard_deviation_alpha():
    torch.manual_seed(0)
    features = torch.full((200_000,), 2.0, dtype=torch.float64)
    alpha = torch.full_like(features, 0.5)
    log_noise = torch.log(information_dropout(features, alpha, sigma0=1.0) / features)
    # std error of the mean is 0.5/sqrt(2e5) = 1.1e-3 and of the std 0.5/sqrt(4e5) = 7.9e-4; allow ~5 SE.
    assert log_noise.mean().item() == pytest.approx(0.0, abs=6e-3)
    assert log_noise.std().item() == pytest.approx(0.5, abs=4e-3)


def test_zero_sigma0_returns_the_noiseless_features():
    features = torch.randn(4, 3)
    assert information_dropout(features, torch.full_like(features, 0.5), sigma0=0.0) is features


def test_evaluation_mode_is_deterministic_and_outputs_f_x():
    torch.manual_seed(0)
    layer = InformationDropout.linear(5, 4, activation="softplus")
    x = torch.randn(8, 5)
    layer.eval()
    first, second = layer(x), layer(x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, layer.features, rtol=0, atol=0)


def test_evaluation_forward_keeps_the_module_in_evaluation_mode():
    # Regression: the reference PyTorch code tested `if self.train():`, which is always true
    # (train() returns the module) and switches the module back to training on every forward.
    layer = InformationDropout.conv(3, 4, activation="relu").eval()
    x = torch.randn(2, 3, 8, 8)
    out = layer(x)
    assert not layer.training
    assert not layer.layer[1].training  # batch norm must stay in evaluation mode too
    torch.testing.assert_close(out, layer.features, rtol=0, atol=0)


def test_training_mode_draws_noise():
    torch.manual_seed(0)
    layer = InformationDropout.linear(5, 4, activation="softplus").train()
    x = torch.randn(8, 5)
    assert not torch.equal(layer(x), layer.features)


def test_mc_mode_draws_noise_at_evaluation():
    torch.manual_seed(0)
    layer = InformationDropout.linear(5, 4, activation="softplus", mc=True).eval()
    x = torch.randn(8, 5)
    first, second = layer(x), layer(x)
    assert not torch.equal(first, second)
    assert not torch.equal(first, layer.features)


def test_kl_is_computed_in_evaluation_mode():
    layer = InformationDropout.linear(5, 4, activation="relu").eval()
    with torch.no_grad():
        layer(torch.randn(3, 5))
    expected = log_uniform_kl(layer.alpha, layer.max_alpha).sum(dim=1)
    torch.testing.assert_close(layer.kl, expected)


def test_gradients_reach_the_alpha_layer_through_the_noise():
    torch.manual_seed(0)
    layer = InformationDropout.conv(3, 4, activation="softplus").train()
    out = layer(torch.randn(2, 3, 8, 8))
    # Only the data term: alpha receives gradient through exp(alpha * eps) (reparametrisation).
    (out ** 2).sum().backward()
    assert layer.alpha_layer.weight.grad is not None
    assert layer.alpha_layer.weight.grad.abs().sum() > 0


def test_gradients_reach_the_prior_parameters_of_the_log_normal_kl():
    layer = InformationDropout.linear(5, 4, activation="softplus")
    layer(torch.randn(3, 5))
    layer.kl.mean().backward()
    assert layer.mu1.grad is not None and layer.sigma1.grad is not None
    assert layer.alpha_layer.weight.grad.abs().sum() > 0


def test_kl_map_of_a_convolution_sums_channels_per_location():
    layer = InformationDropout.conv(3, 5, stride=2)
    out = layer(torch.randn(2, 3, 9, 9))
    assert out.shape == (2, 5, 5, 5)
    assert layer.kl_map.shape == (2, 5, 5)
    assert layer.kl.shape == (2,)
    torch.testing.assert_close(layer.kl_map.sum(dim=(1, 2)), layer.kl.detach())
    assert layer.features.shape == layer.alpha.shape == (2, 5, 5, 5)
    assert not layer.features.requires_grad and not layer.alpha.requires_grad


def test_kl_map_of_a_linear_layer_is_per_unit():
    layer = InformationDropout.linear(6, 3)
    layer(torch.randn(4, 6))
    assert layer.kl_map.shape == (4, 3)
    torch.testing.assert_close(layer.kl_map.sum(dim=1), layer.kl.detach())


def test_alpha_lies_between_0_001_and_max_alpha_plus_0_001():
    layer = fixed_layer(torch.ones(1, 3), torch.tensor([[-50.0, 0.0, 50.0]]), max_alpha=0.5)
    layer(torch.zeros(1, 1))
    torch.testing.assert_close(layer.alpha[0], torch.tensor([0.001, 0.251, 0.501]))


def test_relu_units_with_zero_output_are_still_charged_the_kl_of_alpha():
    # As in the original code the log-uniform KL depends only on alpha, also where f(x) = 0.
    layer = fixed_layer(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), prior="log-uniform", max_alpha=0.7)
    layer(torch.zeros(1, 1))
    assert layer.kl_map[0, 0] == layer.kl_map[0, 1] > 0


def test_log_normal_prior_requires_softplus_units():
    with pytest.raises(ValueError, match="prior"):
        InformationDropout.conv(3, 4, activation="relu", prior="log-normal")
    with pytest.raises(ValueError, match="prior"):
        InformationDropout.linear(3, 4, activation="relu", prior="log-normal")


def test_default_prior_follows_the_activation():
    assert InformationDropout.linear(3, 4, activation="softplus").prior == "log-normal"
    assert InformationDropout.conv(3, 4, activation="relu").prior == "log-uniform"


@pytest.mark.parametrize(
    "kwargs, name",
    [({"prior": "gaussian"}, "prior"), ({"max_alpha": 0.0}, "max_alpha"), ({"max_alpha": float("nan")}, "max_alpha")],
)
def test_bad_hyper_parameters_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        InformationDropout(nn.Linear(2, 2), nn.Linear(2, 2), **kwargs)


def test_conv_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        InformationDropout.conv(3, 4, activation="tanh")


def test_alpha_of_the_wrong_shape_is_rejected():
    layer = InformationDropout(nn.Linear(3, 4), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="alpha"):
        layer(torch.randn(2, 3))


def test_extra_repr_shows_the_hyper_parameters():
    text = repr(InformationDropout.linear(3, 4, activation="softplus", max_alpha=0.5))
    assert "prior='log-normal'" in text and "max_alpha=0.5" in text and "mc=False" in text


@settings(max_examples=60, deadline=None)
@given(
    log_feature=st.floats(-9.0, 5.0),
    alpha=st.floats(0.001, 1.001),
    mu1=st.floats(-3.0, 3.0),
    sigma1=st.floats(0.05, 5.0),
)
def test_log_normal_kl_is_nonnegative_and_zero_only_at_the_prior(log_feature, alpha, mu1, sigma1):
    features = torch.tensor([math.exp(log_feature), math.exp(mu1)], dtype=torch.float64)
    alphas = torch.tensor([alpha, sigma1], dtype=torch.float64)
    kl = log_normal_kl(features, alphas, mu1, sigma1)
    # Gibbs' inequality; float64 cancellation error is below 1e-12 for these ranges.
    assert kl[0].item() >= -1e-12
    assert kl[1].item() == pytest.approx(0.0, abs=1e-12)  # mu1 >= -3 keeps exp(mu1) above the 1e-4 clamp
