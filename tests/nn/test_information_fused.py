"""Information dropout's fused noise, scale and KL (infodrop.nn.information_fused): the same
numbers as the separate operations, and correct gradients."""

import pytest
import torch
from torch import nn

from infodrop.nn import InformationDropout
from infodrop.nn.information_fused import InformationDropoutFunction, composite_step, information_dropout_step


class Constant(nn.Module):
    """Returns a fixed tensor (a parameter) whatever the input."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = nn.Parameter(value.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value


def _layer_pair(shape, prior, dtype=torch.float32, seed=0):
    """Two layers with the same f(x), pre-sigmoid alpha and prior parameters, fused and not."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.rand(shape, generator=generator, dtype=dtype) * 2.0
    features[0].view(-1)[:3] = torch.tensor([0.0, 5e-5, 1e-4], dtype=dtype)  # at and below the log floor
    logits = torch.randn(shape, generator=generator, dtype=dtype) * 2.0
    layers = []
    for fused in (True, False):
        layer = InformationDropout(Constant(features), Constant(logits), prior=prior, max_alpha=0.7, fused=fused)
        if prior == "log-normal":
            with torch.no_grad():
                layer.mu1.fill_(0.3)
                layer.sigma1.fill_(-1.4)  # a negative sigma1: only sigma1^2 and |sigma1| enter
        layers.append(layer.to(dtype).train())
    return layers


def _run(layer, seed, weights):
    torch.manual_seed(seed)
    output = layer(torch.zeros(1))
    loss = (weights * output).sum() + 0.37 * layer.kl.mean()
    loss.backward()
    return output, {name: p.grad.clone() for name, p in layer.named_parameters()}


SHAPES = [(4, 3, 5, 5), (6, 7)]  # a convolution's N x C x H x W and a linear layer's N x d
PRIORS = ["log-uniform", "log-normal"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("prior", PRIORS)
def test_fused_layer_gives_the_same_noise_output_and_kl_bit_for_bit(shape, prior):
    fused, separate = _layer_pair(shape, prior)
    weights = torch.randn(shape)
    out_fused, _ = _run(fused, 11, weights)
    out_separate, _ = _run(separate, 11, weights)
    assert torch.equal(out_fused, out_separate)  # same noise from the same generator state
    for name in ("kl", "kl_map", "alpha", "features"):
        assert torch.equal(getattr(fused, name), getattr(separate, name)), name
    assert fused.kl.requires_grad and not fused.kl_map.requires_grad


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("prior", PRIORS)
def test_fused_gradients_equal_autograd_of_the_separate_operations(shape, prior):
    # float64: the two backward passes round differently, by ~1e-16 relative.
    fused, separate = _layer_pair(shape, prior, dtype=torch.float64)
    weights = torch.randn(shape, dtype=torch.float64)
    _, grads_fused = _run(fused, 5, weights)
    _, grads_separate = _run(separate, 5, weights)
    assert grads_fused.keys() == grads_separate.keys()
    for name in grads_fused:
        torch.testing.assert_close(grads_fused[name], grads_separate[name], rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("prior", PRIORS)
def test_fused_backward_passes_gradcheck_in_float64(prior):
    """Finite differences against the hand-written backward: f (both branches of the log floor,
    away from its kink), the pre-sigmoid alpha and, for the log-normal prior, mu1 and sigma1."""
    generator = torch.Generator().manual_seed(3)
    shape = (2, 3, 2, 2)
    features = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.05
    features[0, 0, 0] = torch.tensor([1e-5, 3e-6], dtype=torch.float64)  # below the 1e-4 floor
    features.requires_grad_()
    logits = torch.randn(shape, generator=generator, dtype=torch.float64).requires_grad_()
    eps = torch.randn(shape, generator=generator, dtype=torch.float64)
    if prior == "log-normal":
        mu1 = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
        sigma1 = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    else:
        mu1 = sigma1 = None

    def step(features, logits, mu1, sigma1):
        output, kl, _, _ = InformationDropoutFunction.apply(features, logits, eps, mu1, sigma1, 0.7, 1.3)
        return output, kl

    assert torch.autograd.gradcheck(step, (features, logits, mu1, sigma1))


@pytest.mark.parametrize("prior", PRIORS)
def test_fused_function_equals_the_composite_it_replaces(prior):
    generator = torch.Generator().manual_seed(4)
    features = torch.rand(3, 5, generator=generator)
    logits = torch.randn(3, 5, generator=generator)
    eps = torch.randn(3, 5, generator=generator)
    mu1, sigma1 = (torch.tensor(0.1), torch.tensor(1.2)) if prior == "log-normal" else (None, None)
    fused = InformationDropoutFunction.apply(features, logits, eps, mu1, sigma1, 0.5, 1.0)
    composite = composite_step(features, logits, eps, 0.5, 1.0, mu1, sigma1)
    for a, b in zip(fused, composite):
        assert torch.equal(a, b)


def test_evaluation_without_noise_returns_f_itself_whatever_the_setting():
    fused, _ = _layer_pair((2, 4), "log-uniform")
    fused.eval()
    output = fused(torch.zeros(1))
    assert output.data_ptr() == fused.layer.value.data_ptr()


def test_fused_step_rejects_mismatched_shapes_and_half_a_prior():
    with pytest.raises(ValueError, match="alpha has shape"):
        information_dropout_step(torch.ones(2, 3), torch.ones(2, 4), max_alpha=0.7)
    with pytest.raises(ValueError, match="mu1 and sigma1 together"):
        information_dropout_step(torch.ones(2, 3), torch.ones(2, 3), max_alpha=0.7, mu1=torch.tensor(0.0))


# torch's inductor itself calls a deprecated torch.jit helper while compiling.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_step_equals_the_fused_step_to_float32_rounding():
    """The torch.compile opt-in (compile=True), log-uniform prior (ReLU networks): the same
    noise, and output, KL and gradients equal to rounding (inductor reorders the sums and
    contracts multiply-adds). The first call compiles C++ on a CPU (10-40 s; cached after)."""
    prior = "log-uniform"
    shape = (3, 4, 3, 3)
    compiled, _ = _layer_pair(shape, prior)
    fused, _ = _layer_pair(shape, prior)
    compiled.compile = True
    weights = torch.randn(shape)
    out_compiled, grads_compiled = _run(compiled, 2, weights)
    out_fused, grads_fused = _run(fused, 2, weights)
    torch.testing.assert_close(out_compiled, out_fused, rtol=1e-6, atol=1e-6)
    # The KL sums 36 units of size ~1-10: float32 rounding of ~1e-5 relative at most.
    torch.testing.assert_close(compiled.kl, fused.kl, rtol=1e-5, atol=1e-5)
    for name in grads_fused:
        torch.testing.assert_close(grads_compiled[name], grads_fused[name], rtol=1e-5, atol=1e-5, msg=name)
