"""Neural estimators of mutual information: difference of entropies (DoE), MINE and InfoNCE.

- DoE: McAllester & Stratos, "Formal limitations on the measurement of mutual information",
  AISTATS 2020. ``I = H(Y) - H(Y|X)``, each entropy replaced by the cross-entropy of a trained
  model (an upper bound on that entropy); Adilova et al. (ICLR 2023) plot it as ``doe``
  (Gaussian) and ``doe_l`` (logistic) in Fig. 4.
- MINE: Belghazi et al., "Mutual information neural estimation", ICML 2018. The
  Donsker-Varadhan lower bound ``I >= E_P[T] - log E_{P_X P_Y}[exp T]`` maximised over a critic
  network T, with the moving-average correction of the biased gradient.
- InfoNCE: van den Oord, Li & Vinyals, "Representation learning with contrastive predictive
  coding", 2018 (bound analysed by Poole et al., ICML 2019). A lower bound that never exceeds
  the log of the batch size.

All three train on one half of the samples (a random split fixed by ``seed``) and report the
value on the other, held-out half, so that the number is not inflated by over-fitting. x and y
are standardised with the training half's mean and standard deviation first; MI and all three
estimates are invariant to such affine maps (for DoE, both entropies shift by the same
sum of log-scales). Same seed, same device: same number.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from infodrop.checks import check_int, check_positive, resolve_device
from infodrop.mi.binning import _as_pair
from infodrop.mi.estimate import MIEstimate, mean_estimate, returns_value
from infodrop.mi.regimes import OutsideMeasuredRegimeWarning, warn_doe_regime

__all__ = ["doe_estimate", "doe_mi", "infonce_estimate", "infonce_mi", "mine_mi"]

_LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------------------------ plumbing


def _check_training(steps: Any, batch_size: Any, hidden: Any, layers: Any, lr: Any, seed: Any) -> tuple:
    return (
        check_int(steps, "steps", minimum=1),
        check_int(batch_size, "batch_size", minimum=2),
        check_int(hidden, "hidden", minimum=1),
        check_int(layers, "layers", minimum=1),
        check_positive(lr, "lr"),
        check_int(seed, "seed", minimum=0),
    )


def _split(
    x: np.ndarray, y: np.ndarray, y_is_labels: bool, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random half/half split; standardise continuous columns with the training half's statistics."""
    n_samples = len(x)
    if n_samples < 4:
        raise ValueError(f"the neural estimators need at least 4 samples (2 to train, 2 to evaluate), got N={n_samples}")
    order = np.random.default_rng(seed).permutation(n_samples)
    train, test = order[: n_samples // 2], order[n_samples // 2 :]

    def standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = values[train].mean(axis=0)
        scale = values[train].std(axis=0)
        scale[scale == 0] = 1.0  # a constant column stays constant instead of 0/0
        return (values[train] - mean) / scale, (values[test] - mean) / scale

    x_train, x_test = standardise(x)
    as_float = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    if y_is_labels:
        y_train = torch.as_tensor(y[train], dtype=torch.int64, device=device)
        y_test = torch.as_tensor(y[test], dtype=torch.int64, device=device)
    else:
        y_train, y_test = (as_float(a) for a in standardise(y))
    return as_float(x_train), y_train, as_float(x_test), y_test


def _mlp(in_features: int, hidden: int, layers: int, out_features: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    width = in_features
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    modules.append(nn.Linear(width, out_features))
    return nn.Sequential(*modules)


def _seeded(seed: int, build: Any) -> Any:
    """Build modules under a forked CPU RNG seeded with ``seed``: deterministic, global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _batches(n_rows: int, batch_size: int, steps: int, seed: int, device: torch.device):
    """Yield ``steps`` index batches, sampled without replacement within passes over the rows."""
    generator = torch.Generator().manual_seed(seed + 1)
    size = min(batch_size, n_rows)
    order = torch.randperm(n_rows, generator=generator)
    position = 0
    for _ in range(steps):
        if position + size > n_rows:
            order = torch.randperm(n_rows, generator=generator)
            position = 0
        yield order[position : position + size].to(device)
        position += size


# ----------------------------------------------------------------------------------------- DoE


def _log_density(y: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, parametrization: str) -> torch.Tensor:
    """Sum over dimensions of the log density of y (N x d) under per-dimension Gaussian/logistic."""
    z = (y - mean) * torch.exp(-log_scale)
    if parametrization == "gaussian":
        per_dim = -0.5 * z * z - log_scale - 0.5 * _LOG_2PI
    else:
        # logistic density exp(-z) / (s (1 + exp(-z))^2), written without overflow
        per_dim = -z - 2.0 * nn.functional.softplus(-z) - log_scale
    return per_dim.sum(dim=1)


class _MarginalDensity(nn.Module):
    """q(y): one Gaussian or logistic per dimension with learned location and log-scale."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def log_prob(self, y: torch.Tensor, parametrization: str) -> torch.Tensor:
        return _log_density(y, self.mean, self.log_scale, parametrization)


class _ConditionalDensity(nn.Module):
    """q(y|x): an MLP giving the location and log-scale of each dimension of y."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = _mlp(x_dim, hidden, layers, 2 * y_dim)

    def log_prob(self, x: torch.Tensor, y: torch.Tensor, parametrization: str) -> torch.Tensor:
        mean, log_scale = self.net(x).chunk(2, dim=1)
        return _log_density(y, mean, log_scale, parametrization)


# A column whose spread is below this fraction of its magnitude varies at the level of round-off
# (float64 keeps ~16 digits, float32 ~7): its "density" is that of the rounding, not of Y.
NEAR_CONSTANT_SPREAD = 1e-9


def _warn_near_constant_columns(y: np.ndarray) -> None:
    """Warn in one line when a column of y (N x d_y) varies only at the level of round-off."""
    spread = y.max(axis=0) - y.min(axis=0)
    magnitude = np.abs(y).max(axis=0)
    near = np.flatnonzero(spread < NEAR_CONSTANT_SPREAD * magnitude)
    if len(near):
        warnings.warn(
            f"doe_mi: y column(s) {near.tolist()} vary by less than {NEAR_CONSTANT_SPREAD:g} of their magnitude "
            "(round-off of a constant?), so DoE's densities model the rounding and the estimate is arbitrary; "
            "drop those columns, or subtract their mean in float64 before converting if the variation is real",
            OutsideMeasuredRegimeWarning,
            stacklevel=3,
        )


def _refuse_divergence(estimate: float, lr: float) -> float:
    """The estimate, or a one-line ValueError naming lr when training ran to NaN or inf."""
    if not math.isfinite(estimate):
        raise ValueError(
            f"doe_mi: training diverged (the estimate is {estimate}) with lr={lr:g}; use a smaller lr (the default is 1e-3)"
        )
    return estimate


def _refuse_constant_columns(y: np.ndarray) -> None:
    """A constant column of y has no density: both cross-entropies run to -inf as the fitted
    scale shrinks, and their difference is whatever the training stopped at."""
    constant = np.flatnonzero(y.max(axis=0) == y.min(axis=0))
    if len(constant) == y.shape[1]:
        raise ValueError(
            "y has zero variance (it is constant), so DoE's densities are undefined and its estimate arbitrary; "
            "I(X; Y) of a constant Y is 0: there is nothing to estimate"
        )
    if len(constant):
        raise ValueError(
            f"y has zero variance in column(s) {constant.tolist()}, so DoE's densities are undefined and its estimate "
            "arbitrary; drop those columns of y (a constant carries no information)"
        )


def doe_estimate(
    x: Any,
    y: Any,
    *,
    parametrization: str = "gaussian",
    steps: int = 1000,
    batch_size: int = 128,
    hidden: int = 64,
    layers: int = 2,
    lr: float = 1e-3,
    seed: int = 0,
    device: Any = None,
    y_discrete: bool | None = None,
) -> MIEstimate:
    """Difference-of-entropies estimate (McAllester & Stratos 2020) of I(X; Y) in nats.

    Algorithm: ``I = H(Y) - H(Y|X)``, where H(Y) is replaced by the cross-entropy
    ``-E log q(y)`` of a marginal model (per-dimension Gaussian or logistic with learned
    location and scale) and H(Y|X) by ``-E log q(y|x)`` of a conditional model (an MLP from x to
    the location and log-scale of each dimension of y). Both are trained together with Adam on
    the sum of the two cross-entropies over the training half and evaluated on the held-out half.
    For class labels y, q(y) is a categorical distribution with learned logits and q(y|x) a
    softmax classifier (the discrete form of the same estimator; ``parametrization`` is unused).

    Args:
        x: array or tensor, N x d_x (1-D = one column). y: N x d_y, or N integer class labels.
        parametrization: 'gaussian' or 'logistic' (per-dimension density of both models).
        steps, batch_size, hidden, layers, lr: Adam steps, mini-batch size, MLP width and number
            of hidden layers, learning rate.
        seed: fixes the split, the initialisation and the mini-batches. device: None = CUDA if
            available, else CPU.
        y_discrete: True: labels; False: continuous; None: one-column integer/boolean y is labels.

    Returns:
        :class:`~infodrop.mi.estimate.MIEstimate`: the estimate in nats (held-out half) and its
        standard error (spread of the held-out per-sample terms over sqrt of their number).

    Assumptions and bias: each cross-entropy is an upper bound on its entropy in expectation,
    tight when the model family contains the true density; the difference is neither an upper
    nor a lower bound. With well-specified models it is nearly unbiased; with a mis-specified
    marginal (e.g. a multimodal Y fitted by one Gaussian) H(Y) is overestimated and so is I.
    Unlike lower bounds it is not capped at O(log N) (McAllester & Stratos, Sec. 5). Both models
    are products over the coordinates of y, so correlated coordinates are mis-specified: the
    marginal's cross-entropy exceeds H(Y) by at least the total correlation TC(Y), the
    conditional's exceeds H(Y|X) by TC(Y|X), and the estimate is too high by about
    TC(Y) - TC(Y|X). A constant column of y has no density and is refused (ValueError naming y);
    a column that varies by less than 1e-9 of its magnitude (round-off) is warned about, and a
    training run that diverges to NaN or inf (too large an ``lr``) is refused naming lr.

    Measured regime (``benchmarks/baseline_regimes.py``, table in ``docs/baselines.md``; Gaussian
    problems with closed-form MI, N = 10^4, 3 seeds, defaults; Gaussian and logistic alike):
    within 20 % of the truth up to 10 + 10 dimensions when the coordinates of y are uncorrelated
    (-11 % to -0 % for independent pairs, I up to 8.3 nats; -19 % for one correlated pair among
    10 + 10), and with class labels up to 20-D x (-12 %). Too high when the coordinates of y are
    correlated: +27 % at 2 + 2 equicorrelated (c = 0.5) coordinates, +124 % at 5 + 5 (the BMI
    benchmark found 1.20 against 0.59 there), +236 % at 10 + 10. Too low from 20 + 20 on (-56 %
    for one correlated pair; -99 % for labels at 50-D x): the conditional model fits noise
    coordinates. It warns once (:class:`~infodrop.mi.regimes.OutsideMeasuredRegimeWarning`)
    when d_x or d_y exceeds 10 (d_x exceeds 20 with labels), or when the Gaussian total
    correlation of y, -1/2 log det(corr(y)), exceeds 20 % of the estimate (and 0.02 nats).

    Cost: O(steps * batch_size * hidden * (d_x + hidden * layers + d_y)) time for training,
    O(N (d_x + d_y)) memory for the data plus the model.
    """
    if parametrization not in ("gaussian", "logistic"):
        raise ValueError(f"parametrization must be 'gaussian' or 'logistic', got {parametrization!r}")
    steps, batch_size, hidden, layers, lr, seed = _check_training(steps, batch_size, hidden, layers, lr, seed)
    x_matrix, y_values, y_is_labels = _as_pair(x, y, y_discrete=y_discrete)
    if not y_is_labels:
        _refuse_constant_columns(y_values)
        _warn_near_constant_columns(y_values)
    if y_is_labels:
        # classes as 0..C-1, the indices of the logits
        _, y_values = np.unique(y_values, return_inverse=True)
        y_values = y_values.reshape(-1)
        n_classes = int(y_values.max()) + 1
    device = resolve_device(device)
    x_train, y_train, x_test, y_test = _split(x_matrix, y_values, y_is_labels, seed, device)

    if y_is_labels:

        def build() -> nn.ModuleDict:
            return nn.ModuleDict(
                {"marginal": nn.Linear(1, n_classes, bias=False), "conditional": _mlp(x_train.shape[1], hidden, layers, n_classes)}
            )

        def negative_logs(model: nn.ModuleDict, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            marginal_logits = model["marginal"].weight[:, 0].expand(len(yb), n_classes)
            return (
                nn.functional.cross_entropy(marginal_logits, yb, reduction="none"),
                nn.functional.cross_entropy(model["conditional"](xb), yb, reduction="none"),
            )

    else:

        def build() -> nn.ModuleDict:
            return nn.ModuleDict(
                {
                    "marginal": _MarginalDensity(y_train.shape[1]),
                    "conditional": _ConditionalDensity(x_train.shape[1], y_train.shape[1], hidden, layers),
                }
            )

        def negative_logs(model: nn.ModuleDict, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return (
                -model["marginal"].log_prob(yb, parametrization),
                -model["conditional"].log_prob(xb, yb, parametrization),
            )

    model = _seeded(seed, build).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for index in _batches(len(x_train), batch_size, steps, seed, device):
        marginal, conditional = negative_logs(model, x_train[index], y_train[index])
        loss = marginal.mean() + conditional.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        marginal, conditional = negative_logs(model, x_test, y_test)
        # H(Y) - H(Y|X) as one mean of per-sample differences, accumulated in float64
        estimate = mean_estimate(marginal.double() - conditional.double())
    _refuse_divergence(estimate.value, lr)
    warn_doe_regime(x_matrix.shape[1], None if y_is_labels else y_values, estimate.value)
    return estimate


doe_mi = returns_value(doe_estimate, "doe_mi")


# ----------------------------------------------------------------------------- critics: MINE, InfoNCE


class _ConcatCritic(nn.Module):
    """T(x, y) = MLP([x, y]); ``pairwise`` scores every x against every y (B x B)."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = _mlp(x_dim + y_dim, hidden, layers, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, y], dim=1)).squeeze(1)

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows, cols = len(x), len(y)
        pairs = torch.cat([x[:, None, :].expand(rows, cols, -1), y[None, :, :].expand(rows, cols, -1)], dim=2)
        return self.net(pairs).squeeze(2)


class _SeparableCritic(nn.Module):
    """T(x, y) = f(x) . g(y) with two MLPs to ``hidden``-dimensional embeddings; B x B scores
    cost one matrix product instead of B^2 network evaluations."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.f = _mlp(x_dim, hidden, layers, hidden)
        self.g = _mlp(y_dim, hidden, layers, hidden)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.f(x) * self.g(y)).sum(dim=1)

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.f(x) @ self.g(y).T


_CRITICS = {"concat": _ConcatCritic, "separable": _SeparableCritic}


def _make_critic(critic: str, x_dim: int, y_dim: int, hidden: int, layers: int, seed: int, device: torch.device) -> nn.Module:
    return _seeded(seed, lambda: _CRITICS[critic](x_dim, y_dim, hidden, layers)).to(device)


def _check_critic(critic: Any) -> str:
    if critic not in _CRITICS:
        raise ValueError(f"critic must be one of {tuple(_CRITICS)}, got {critic!r}")
    return critic


def _continuous_only(name: str, y_is_labels: bool) -> None:
    if y_is_labels:
        raise ValueError(
            f"{name} needs continuous y (N x d_y floats) but got class labels (a one-column integer y "
            "is read as labels); for labels use doe_mi, ksg_mi, edge_mi or binning_mi; to treat the "
            "integers as numbers, or a one-hot float encoding as y, pass y_discrete=False"
        )


def _critic_setup(
    name: str, x: Any, y: Any, y_discrete: bool | None, critic: str, hidden: int, layers: int, lr: float,
    seed: int, device: Any,
) -> tuple[nn.Module, torch.optim.Optimizer, tuple[torch.Tensor, ...], torch.device]:
    """The critic bounds' common start: x and y checked as a continuous pair (``name`` is the
    estimator refusing labels), split into (x_train, y_train, x_test, y_test) on the device, and a
    fresh critic with its Adam optimizer."""
    x_matrix, y_values, y_is_labels = _as_pair(x, y, y_discrete=y_discrete)
    _continuous_only(name, y_is_labels)
    device = resolve_device(device)
    halves = _split(x_matrix, y_values, False, seed, device)
    network = _make_critic(critic, halves[0].shape[1], halves[1].shape[1], hidden, layers, seed, device)
    return network, torch.optim.Adam(network.parameters(), lr=lr), halves, device


def mine_mi(
    x: Any,
    y: Any,
    *,
    # the critic's training, as in doe_mi
    steps: int = 1000, batch_size: int = 128, hidden: int = 64, layers: int = 2, lr: float = 1e-3,
    ema_rate: float = 0.01,
    eval_shuffles: int = 10,
    critic: str = "concat",
    seed: int = 0,
    device: Any = None,
    y_discrete: bool | None = None,
) -> float:
    """MINE (Belghazi et al. 2018): the Donsker-Varadhan lower bound on I(X; Y), in nats.

    Algorithm: a critic T(x, y) (MLP on the concatenation) maximises
    ``E_P[T] - log E_{P_X P_Y}[exp T]`` with Adam; in each mini-batch the product of marginals is
    sampled by shuffling y. The gradient of the log term, ``E_Q[exp(T) grad T] / E_Q[exp T]``, is
    biased on a mini-batch; MINE replaces the denominator by an exponential moving average
    (rate ``ema_rate``) of the mini-batch means of exp T (Belghazi et al., Sec. 3.2), kept in
    log space for stability. The reported value is the bound on the held-out half, with
    E_P[T] over its pairs and E_Q[exp T] over ``eval_shuffles`` re-pairings x_i with y_(i+s)
    (distinct shifts s, so no true pair is used).

    Args:
        x: N x d_x, y: N x d_y (continuous; class labels are not supported and a one-column
            integer y raises, unless ``y_discrete=False`` says to treat its values as numbers;
            a one-hot float encoding of labels also works).
        y_discrete: None (default): a one-column integer/boolean y is labels (and refused);
            False: y is continuous whatever its dtype.
        steps, batch_size, hidden, layers, lr: training settings as in :func:`doe_mi`.
        ema_rate: weight of the newest mini-batch in the moving average, in (0, 1].
        eval_shuffles: number of re-pairings of the held-out half for the product of marginals.
        critic: 'concat' (an MLP on [x, y], the default) or 'separable' (f(x) . g(y), two MLPs
            to ``hidden``-dimensional embeddings; much cheaper for InfoNCE's B x B scores).
        seed, device: as in :func:`doe_mi`.

    Returns:
        The held-out DV bound in nats.

    Assumptions and bias: a lower bound up to the finite-sample error of the held-out
    averages (log of a mean is biased low, which biases the bound slightly high). As for all
    such lower bounds, a good estimate of a large I needs of order exp(I) samples (McAllester &
    Stratos 2020), so large MI is underestimated; the DV objective has high variance.

    Cost: O(steps * batch_size * hidden * (d_x + d_y + hidden * layers)) for training;
    evaluation O(eval_shuffles * N * ...). Memory O(N (d_x + d_y)).
    """
    steps, batch_size, hidden, layers, lr, seed = _check_training(steps, batch_size, hidden, layers, lr, seed)
    ema_rate = check_positive(ema_rate, "ema_rate")
    if ema_rate > 1:
        raise ValueError(f"ema_rate must lie in (0, 1], got {ema_rate!r}")
    eval_shuffles = check_int(eval_shuffles, "eval_shuffles", minimum=1)
    critic = _check_critic(critic)
    network, optimizer, (x_train, y_train, x_test, y_test), device = _critic_setup(
        "mine_mi", x, y, y_discrete, critic, hidden, layers, lr, seed, device)
    if eval_shuffles > len(x_test) - 1:
        raise ValueError(f"eval_shuffles must be below the held-out size {len(x_test)}, got {eval_shuffles}")

    shuffler = torch.Generator().manual_seed(seed + 2)
    log_average = None  # log of the moving average of E_Q[exp T]
    log_rate, log_keep = math.log(ema_rate), math.log1p(-ema_rate) if ema_rate < 1 else -math.inf
    for index in _batches(len(x_train), batch_size, steps, seed, device):
        xb, yb = x_train[index], y_train[index]
        shuffled = yb[torch.randperm(len(yb), generator=shuffler).to(device)]
        joint = network(xb, yb)
        marginal = network(xb, shuffled)
        batch_log_mean = torch.logsumexp(marginal, 0) - math.log(len(marginal))
        with torch.no_grad():
            if log_average is None:
                log_average = batch_log_mean.detach()
            else:
                log_average = torch.logaddexp(log_keep + log_average, log_rate + batch_log_mean.detach())
        # d/dtheta of this surrogate is E_P[grad T] - E_Q[exp(T) grad T] / moving average
        surrogate = joint.mean() - torch.exp(batch_log_mean - log_average)
        optimizer.zero_grad(set_to_none=True)
        (-surrogate).backward()
        optimizer.step()

    with torch.no_grad():
        n_test = len(x_test)
        joint_mean = network(x_test, y_test).double().mean()
        shifts = torch.randperm(n_test - 1, generator=shuffler)[:eval_shuffles] + 1
        scores = torch.cat([network(x_test, torch.roll(y_test, int(s), 0)).double() for s in shifts])
        return float(joint_mean - (torch.logsumexp(scores, 0) - math.log(len(scores))))


def infonce_estimate(
    x: Any,
    y: Any,
    *,
    # the critic's training, as in doe_mi
    steps: int = 1000, batch_size: int = 128, hidden: int = 64, layers: int = 2, lr: float = 1e-3,
    critic: str = "concat",
    seed: int = 0,
    device: Any = None,
    y_discrete: bool | None = None,
) -> MIEstimate:
    """InfoNCE lower bound (van den Oord et al. 2018) on I(X; Y), in nats; never above log(batch_size).

    Algorithm: for a batch of B pairs and a critic T (MLP on the concatenation), the bound is
    ``(1/B) sum_i [ T(x_i, y_i) - log( (1/B) sum_j exp T(x_i, y_j) ) ]``, maximised with Adam on
    the training half. The reported value is the same bound averaged over disjoint batches of
    size B of the held-out half (one batch of all of it when it has fewer than B samples, in
    which case the cap is log of that size).

    Args: as :func:`mine_mi` (no ``ema_rate``, ``eval_shuffles``), ``critic`` included.
        Class labels are not supported.

    Returns:
        :class:`~infodrop.mi.estimate.MIEstimate`: the held-out bound in nats, at most
        log(min(batch_size, held-out size)), and its standard error over the held-out batches
        (None with one batch).

    Assumptions and bias: a lower bound in expectation, and capped: each term is
    ``log( exp T_ii / mean_j exp T_ij ) <= log B`` because the mean includes j = i. So any I much
    above log B is underestimated, however good the critic (Poole et al. 2019); low variance.

    Cost: with the concat critic O(steps * B^2 * hidden * (d_x + d_y + hidden * layers)) for
    training (all B x B pairs go through the network), O(B^2 (d_x + d_y + hidden)) memory per
    step; with the separable critic O(steps * B * hidden * (d + hidden * layers) + steps * B^2 * hidden).
    """
    steps, batch_size, hidden, layers, lr, seed = _check_training(steps, batch_size, hidden, layers, lr, seed)
    critic = _check_critic(critic)
    network, optimizer, (x_train, y_train, x_test, y_test), _ = _critic_setup(
        "infonce_mi", x, y, y_discrete, critic, hidden, layers, lr, seed, device)

    def bound(scores: torch.Tensor) -> torch.Tensor:
        return (torch.diagonal(scores) - torch.logsumexp(scores, dim=1)).mean() + math.log(len(scores))

    for index in _batches(len(x_train), batch_size, steps, seed, device):
        loss = -bound(network.pairwise(x_train[index], y_train[index]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        n_test = len(x_test)
        size = min(batch_size, n_test)
        values = [
            bound(network.pairwise(x_test[start : start + size], y_test[start : start + size]).double())
            for start in range(0, n_test - size + 1, size)
        ]
        return mean_estimate(torch.stack(values))


infonce_mi = returns_value(infonce_estimate, "infonce_mi")
