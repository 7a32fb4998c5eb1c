"""The blocked CPU pass of the mixture estimator (infodrop.mi.blocked_mixture) against float64.

Tolerances come from the rounding bound of the module docstring, evaluated per row rather than
guessed: with u = 2^-24 and K = 2d + 1, the float32 product gives each log-density s_rj with an
error of at most delta_rj = (K + 4) u (sum_k |z_k^2 r_jk^2| / (2 variance) + |z_k r_jk| / variance
+ |b_j|) (inputs rounded to float32, the K-term sum; the power-of-two unit scaling is exact and
leaves these magnitudes unchanged). For the exact weights p_rj of the log-sum-exp,
lse(s + delta) - lse(s) = log sum_j p_rj exp(delta_rj) <= sum_j p_rj (exp(delta_rj) - 1), to which
exp2 (1 ulp), torch's cascaded float32 sum and the float64 merge add (log2(N) + 24) u. A
Monte Carlo mean such as h(Z) is off by at most the mean of its rows' bounds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infodrop.mi import gaussian_dropout_mi
from infodrop.mi.blocked_mixture import blocked_columns, blocked_left, blocked_logsumexp, float32_safe
from infodrop.mi.mixture import NoiseSource, controlled_mean, mixture_pass, prepare_components

U32 = 2.0**-24


def _features(n: int, d: int, seed: int, relu: bool) -> np.ndarray:
    """Softplus-like features with unit-to-unit scales; with ``relu`` half the units are exact
    zeros for about half the inputs (several zero patterns, some inputs alone in theirs)."""
    rng = np.random.default_rng(seed)
    features = np.log1p(np.exp(rng.normal(size=(n, d)))) * np.exp(rng.normal(scale=0.5, size=(1, d)))
    if relu:
        half = d // 2 or 1
        features[:, :half] *= rng.random((n, half)) < 0.7
    return features


def _samples(comp, noise_samples: int, seed: int) -> torch.Tensor:
    eps = NoiseSource(comp.n, comp.d, noise_samples, seed, torch.device("cpu")).eps(0, comp.n)
    return comp.features.repeat_interleave(noise_samples, 0) * (1 + math.sqrt(comp.variance) * eps)


def _brute(comp, z: torch.Tensor, own: torch.Tensor, labels: torch.Tensor | None):
    """Directly in float64 from the differences (z - f) / f (no expansion): the log-densities
    s_rj (M x N, -inf for j = own_r or another zero pattern), the per-term rounding bounds
    delta_rj of the float32 product, and the allowed mask of the own class (or None)."""
    f, v = comp.features, comp.variance
    nonzero = f != 0
    same_pattern = ((z != 0)[:, None, :] == nonzero[None, :, :]).all(2)
    safe = torch.where(nonzero, f, torch.ones_like(f))
    quad = torch.stack([(((row - safe) / safe).square() * nonzero).sum(1) for row in z]) / v
    s = comp.log_norm[None, :] - 0.5 * quad
    allowed = same_pattern & (torch.arange(comp.n)[None, :] != own[:, None])
    s = s.masked_fill(~allowed, -math.inf)
    bias = comp.log_norm - 0.5 * comp.nonzero / v
    bias = bias - bias.mean()
    r = comp.inverse
    magnitude = z.square() @ (r.square() / (2 * v)).t() + z.abs() @ (r.abs() / v).t() + bias.abs()[None, :]
    delta = (2 * comp.d + 5) * U32 * magnitude
    in_class = None if labels is None else labels[None, :] == labels[own][:, None]
    return s, delta, in_class


def _lse_and_bound(s: torch.Tensor, delta: torch.Tensor, n: int):
    """Exact log-sum-exp per row and the bound on the float32 one (module docstring)."""
    lse = torch.logsumexp(s, dim=1)
    weights = torch.exp(s - torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[:, None])
    bound = (weights * torch.expm1(delta.clamp(max=50))).sum(1) + (math.log2(n) + 24) * U32
    return lse, bound


def _assert_within(ours: torch.Tensor, exact: torch.Tensor, bound: torch.Tensor, name: str):
    assert torch.equal(torch.isinf(ours), torch.isinf(exact)), f"{name}: infinities differ"
    finite = torch.isfinite(exact)
    assert bool(finite.any()), name
    error = (ours - exact)[finite].abs()
    assert bool((error <= bound[finite]).all()), f"{name}: error {float(error.max()):.2e} nats beyond its bound"


CASES = [(300, 4, 1.0, False), (400, 32, 0.1, False), (250, 64, 0.02, False), (300, 6, 0.3, True), (200, 32, 0.1, True)]


@pytest.mark.parametrize("n, d, variance, relu", CASES)
def test_float32_log_sums_equal_the_brute_force_log_sum_exp_within_the_rounding_bound(n, d, variance, relu):
    """log sum_{j != i} N_j(z) over the zero pattern, and over the own class, per row."""
    comp = prepare_components(torch.tensor(_features(n, d, seed=n + d, relu=relu)), variance)
    labels = torch.as_tensor(np.random.default_rng(d).integers(0, 5, n))
    z, own = _samples(comp, 2, seed=3), torch.arange(n).repeat_interleave(2)
    bias = comp.log_norm - 0.5 * comp.nonzero / variance
    shift = float(bias.mean())
    pattern = comp.pattern if comp.n_patterns > 1 else None
    columns = blocked_columns(comp.inverse, comp.features, bias - shift, variance, pattern, labels, torch.float32)
    rest, rest_class = blocked_logsumexp(columns, blocked_left(columns, z), own, row_labels=labels[own],
                                         row_pattern=comp.pattern[own] if pattern is not None else None)
    s, delta, in_class = _brute(comp, z, own, labels)
    exact, bound = _lse_and_bound(s, delta, n)
    _assert_within(rest + shift, exact, bound, "rest")
    exact_class, bound_class = _lse_and_bound(s.masked_fill(~in_class, -math.inf), delta, n)
    _assert_within(rest_class + shift, exact_class, bound_class, "class")
    assert relu == bool(torch.isneginf(exact).any() or comp.n_patterns > 1)


def test_column_tiles_narrower_than_n_give_the_same_sums(monkeypatch):
    """With 48-column tiles the row sums are merged in float64 across tiles and class slices
    straddle tiles: the same results as all N columns in one tile, within the rounding bound."""
    import infodrop.mi.blocked_mixture as blocked

    comp = prepare_components(torch.tensor(_features(500, 8, seed=1, relu=True)), 0.2)
    labels = torch.as_tensor(np.random.default_rng(2).integers(0, 3, 500))
    wide = mixture_pass(comp, 3, 4, labels=labels, dtype=torch.float32, backend="blocked")
    monkeypatch.setattr(blocked, "TILE_ELEMENTS", 48 * blocked.BLOCK_ROWS)
    narrow = mixture_pass(comp, 3, 4, labels=labels, dtype=torch.float32, backend="blocked")
    z, own = _samples(comp, 3, seed=4), torch.arange(500).repeat_interleave(3)
    s, delta, in_class = _brute(comp, z, own, labels)
    _, bound = _lse_and_bound(s, delta, 500)
    _, bound_class = _lse_and_bound(s.masked_fill(~in_class, -math.inf), delta, 500)
    # Both are within their bound of the exact value, so within twice the bound of each other.
    _assert_within(narrow.neg_log_loo, wide.neg_log_loo, 2 * bound, "loo")
    _assert_within(narrow.neg_log_class_loo, wide.neg_log_class_loo, 2 * bound_class, "class loo")


@pytest.mark.parametrize("n, d, variance, relu", CASES[:2] + CASES[3:4])
def test_mixture_pass_float32_equals_the_float64_pass_row_by_row(n, d, variance, relu):
    """-log p_N(z), the leave-one-out term and both class terms of the blocked float32 pass
    against the float64 pass (same noise) within each row's bound; the exact self terms agree
    bit for bit; h(Z) and I(Z;Y) within the mean bound."""
    comp = prepare_components(torch.tensor(_features(n, d, seed=7, relu=relu)), variance)
    labels = torch.as_tensor(np.random.default_rng(8).integers(0, 4, n))
    fast = mixture_pass(comp, 3, 5, labels=labels, dtype=torch.float32, backend="blocked")
    exact = mixture_pass(comp, 3, 5, labels=labels, dtype=torch.float64, backend="torch")
    z, own = _samples(comp, 3, seed=5), torch.arange(n).repeat_interleave(3)
    s, delta, in_class = _brute(comp, z, own, labels)
    _, bound = _lse_and_bound(s, delta, n)
    _, bound_class = _lse_and_bound(s.masked_fill(~in_class, -math.inf), delta, n)
    for name, row_bound in (("neg_log_p", bound), ("neg_log_loo", bound), ("neg_log_class", bound_class)):
        _assert_within(getattr(fast, name), getattr(exact, name), row_bound, name)
    assert torch.equal(fast.neg_log_self, exact.neg_log_self)
    h_fast = controlled_mean(fast.neg_log_p, fast.neg_log_self, comp.entropy, 3).value
    h_exact = controlled_mean(exact.neg_log_p, exact.neg_log_self, comp.entropy, 3).value
    # controlled_mean subtracts beta * (the same exact control) from every row: a shift of the
    # rows by at most their bound moves the mean by at most the mean bound (beta moves with it
    # only through the tiny covariance change, covered by the factor 2).
    assert abs(h_fast - h_exact) <= 2 * float(bound.mean())


def test_class_sum_far_below_the_rows_largest_term_keeps_its_precision():
    """Each input's nearest other component is of another class and its own class lies 100s of
    nats further: the class slice gets its own maximum, so the class term equals the brute-force
    sum (a shared maximum would push it below float32's exp range and lose it)."""
    rng = np.random.default_rng(11)
    centres = np.repeat(rng.uniform(1, 10, size=(30, 8)), 2, axis=0)  # 30 pairs of near-twins
    features = centres * np.exp(rng.normal(scale=0.01, size=centres.shape))
    labels = torch.tensor(np.arange(60) % 2)  # twins in different classes
    comp = prepare_components(torch.tensor(features), 0.0005)
    fast = mixture_pass(comp, 2, 1, labels=labels, dtype=torch.float32, backend="blocked")
    z, own = _samples(comp, 2, seed=1), torch.arange(60).repeat_interleave(2)
    s, delta, in_class = _brute(comp, z, own, labels)
    exact, bound = _lse_and_bound(s.masked_fill(~in_class, -math.inf), delta, 60)
    gap = torch.logsumexp(s, 1) - exact
    assert float(gap.min()) > 100  # the class sum lies beyond float32's exp range from the top
    counts = torch.bincount(labels).to(torch.float64)[labels[own]]
    _assert_within(fast.neg_log_class_loo, (counts - 1).log() - exact, bound, "class loo")


def test_results_do_not_depend_on_rows_per_product_or_chunk():
    comp = prepare_components(torch.tensor(_features(300, 6, seed=3, relu=True)), 0.2)
    labels = torch.as_tensor(np.random.default_rng(4).integers(0, 3, 300))
    default = mixture_pass(comp, 2, 6, labels=labels, dtype=torch.float32, backend="blocked")
    small = mixture_pass(comp, 2, 6, labels=labels, dtype=torch.float32, backend="blocked", chunk_rows=14)
    for name in ("neg_log_p", "neg_log_loo", "neg_log_class", "neg_log_class_loo"):
        assert torch.equal(getattr(default, name), getattr(small, name)), name


def test_float32_is_raised_to_float64_where_float32_would_overflow():
    """Features of 1e30 within one unit next to 1e-10 (the unit scaling cannot centre both) are
    out of float32's range: the pass runs in float64 and equals the float64 pass."""
    features = _features(120, 3, seed=5, relu=False)
    features[::2, 0] *= 1e30
    features[1::2, 0] *= 1e-10
    assert not float32_safe(torch.tensor(features), 0.1)
    assert float32_safe(torch.tensor(_features(120, 3, seed=5, relu=False)), 0.1)
    comp = prepare_components(torch.tensor(features), 0.1)
    raised = mixture_pass(comp, 2, 0, dtype=torch.float32, backend="blocked")
    exact = mixture_pass(comp, 2, 0, dtype=torch.float64, backend="blocked")
    assert torch.isfinite(raised.neg_log_p).all()
    assert torch.equal(raised.neg_log_p, exact.neg_log_p)


def test_float64_blocked_pass_equals_the_torch_path_to_1e12():
    comp = prepare_components(torch.tensor(_features(400, 10, seed=6, relu=True)), 0.3)
    labels = torch.as_tensor(np.random.default_rng(6).integers(0, 3, 400))
    blocked = mixture_pass(comp, 2, 2, labels=labels, dtype=torch.float64, backend="blocked")
    torch_path = mixture_pass(comp, 2, 2, labels=labels, dtype=torch.float64, backend="torch")
    for name in ("neg_log_p", "neg_log_loo", "neg_log_class"):
        ours, theirs = getattr(blocked, name), getattr(torch_path, name)
        assert torch.equal(torch.isinf(ours), torch.isinf(theirs)), name
        finite = torch.isfinite(theirs)
        assert float((ours - theirs)[finite].abs().max()) < 1e-12 * max(1.0, float(theirs[finite].abs().max())), name


def test_cpu_default_is_the_float32_blocked_path_and_agrees_with_float64():
    """gaussian_dropout_mi's default on a CPU (float32 blocks) against dtype='float64': the same
    noise, so I(X;Z), its leave-one-out bound and I(Z;Y) differ by rounding only, far inside the
    Monte Carlo standard error (rows' bounds here are below 1e-4 nats)."""
    features = _features(600, 16, seed=9, relu=False)
    labels = np.random.default_rng(9).integers(0, 5, 600)
    common = dict(labels=labels, noise_samples=4, seed=2, device="cpu", bounds=False)
    default = gaussian_dropout_mi(features, 0.2, **common)
    exact = gaussian_dropout_mi(features, 0.2, dtype="float64", **common)
    for field in ("i_xz", "i_xz_loo", "i_zy", "h_z"):
        assert getattr(default, field) == pytest.approx(getattr(exact, field), abs=1e-4), field
    assert abs(default.i_xz - exact.i_xz) < 0.01 * exact.i_xz_stderr
