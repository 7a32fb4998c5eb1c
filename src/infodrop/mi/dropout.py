"""Mutual information of Gaussian-dropout representations (Adilova, Geiger & Fischer, ICLR 2023,
Section 4, Algorithm 1), with bounds.

Z = f(X) * D, D ~ N(1, variance * I), f deterministic, X given by samples x_1..x_N. Then

    I(X;Z) = h(Z) - h(Z|X),
    h(Z|X) = (1/N) sum_i sum_k 1/2 log(2 pi e variance f_k(x_i)^2)       (closed form),
    h(Z)   = entropy of the mixture (1/N) sum_i N(f(x_i), variance diag(f(x_i)^2))   (Monte Carlo).

Note the variance: the noise of unit k has standard deviation sqrt(variance) |f_k| and variance
variance * f_k^2 (the reference code mixed the two). See :mod:`infodrop.mi.mixture` for the
numerical scheme and the treatment of exactly-zero units (ReLU), :mod:`infodrop.mi.bounds` for
the Kolchinsky-Tracey pairwise bounds and the Ledoit-Wolf Gaussian upper bound.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

import torch

from infodrop.checks import as_labels, as_matrix, check_int, check_positive, resolve_device
from infodrop.mi.band import xz_band, zy_band
from infodrop.mi.bounds import gaussian_upper_bound, pairwise_bounds
from infodrop.mi.cost import mixture_cost
from infodrop.mi.dropout_result import Diagnostics, GaussianDropoutMI, MixtureBand, MixtureBounds, PointEstimate
from infodrop.mi.mixture import (
    MixturePass,
    available_memory,
    controlled_mean,
    default_chunk_rows,
    mixture_memory,
    mixture_pass,
    pattern_entropy,
    prepare_components,
)
from infodrop.mi.mixture import resolve_dtype as _resolve_dtype
from infodrop.mi.options import MixtureOptions, merge_options
from infodrop.mi.shard import Shard, check_distributed, gather_rows, input_range

__all__ = ["GaussianDropoutMI", "MixtureOptions", "gaussian_dropout_mi", "mixture_entropy"]


# From this many sample-component pairs on (a minute or more on a CPU) the call prints the cost
# line that the information plane prints, so that a long call says what it is doing.
COST_LINE_PAIRS = 10**10


def _gigabytes(count: int) -> str:
    return f"{count / 1e9:.1f} GB"


def _check_memory(n: int, d: int, noise_samples: int, n_classes: int, chunk_rows: int, world: int, device: torch.device) -> None:
    """Refuse, in one line naming noise_samples, a call whose estimated peak memory
    (:func:`~infodrop.mi.mixture.mixture_memory`) exceeds what the device has free."""
    needed = mixture_memory(n, d, noise_samples, n_classes=n_classes, chunk_rows=chunk_rows, world_size=world, device=device)
    free = available_memory(device)
    if free is None or needed <= free:
        return

    def fits(samples: int) -> bool:  # with that many samples' own (default) chunk, which holds whole inputs
        return mixture_memory(n, d, samples, n_classes=n_classes, world_size=world, device=device) <= free

    low, high = 0, noise_samples  # the most noise samples that fit: bisection on a monotone count
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    fitting = low
    fix = f"lower noise_samples to at most {fitting:,}, or pass fewer inputs" if fitting >= 1 else "pass fewer inputs"
    raise ValueError(
        f"gaussian_dropout_mi: N={n:,} inputs x noise_samples={noise_samples:,} need about {_gigabytes(needed)} on "
        f"{device}, more than the {_gigabytes(free)} available; {fix}"
    )


def _announce_cost(n: int, d: int, noise_samples: int, n_classes: int, bounds: bool, world: int, device: torch.device,
                   dtype: torch.dtype, shard: Shard | None) -> None:
    """Print the cost line (pairs, without the calibration's timing) for a large call, on rank 0."""
    if n * noise_samples * n < COST_LINE_PAIRS or (shard is not None and shard.rank != 0):
        return
    cost = mixture_cost(n, d, noise_samples, bounds=bounds, n_classes=n_classes, world_size=world, device=device, dtype=dtype)
    print(f"gaussian_dropout_mi: {cost}", file=sys.stderr, flush=True)


def _chunk_rows(chunk_size: int | None, n: int, noise_samples: int, device: torch.device) -> int:
    """Rows of Z per chunk: ``chunk_size`` or the device's default, rounded down to a multiple of
    noise_samples (at least noise_samples), so a chunk holds whole inputs."""
    rows = chunk_size if chunk_size is not None else default_chunk_rows(n, noise_samples, device)
    return max(noise_samples, rows - rows % noise_samples)


# Features beyond this magnitude leave too little room in float64 (max 1.8e308) for their squares
# times the variance, summed over units: the bounds turn inf and the estimate drifts (measured:
# exact at 1e150, wrong from 1e154 at d = 4).
MAX_FEATURE_MAGNITUDE = 1e100


def _check_magnitude(f: torch.Tensor) -> None:
    largest = float(f.abs().max()) if f.numel() else 0.0
    if largest > MAX_FEATURE_MAGNITUDE:
        raise ValueError(
            f"features reach {largest:.3g} in magnitude, beyond {MAX_FEATURE_MAGNITUDE:g}, where their squares overflow "
            f"float64 and the numbers turn wrong; divide features by {largest:.3g} first (I(X;Z) does not change when "
            "f is scaled; h(Z) and h(Z|X) shift by d * log(scale))"
        )


def _validate(features, variance, labels, noise_samples, seed, chunk_size, device):
    dev = resolve_device(device)
    variance = check_positive(variance, "variance")
    noise_samples = check_int(noise_samples, "noise_samples", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    f = as_matrix(features, "features", dtype=torch.float64, device=dev)
    _check_magnitude(f)
    label_tensor = None
    if labels is not None:
        label_tensor = as_labels(labels, "labels", f.shape[0])
        # Dense class indices 0..C-1 so that one-hot sums stay small.
        _, label_tensor = torch.unique(label_tensor, return_inverse=True)
        label_tensor = label_tensor.to(dev)
    return f, variance, label_tensor, noise_samples, seed, chunk_size, dev


def _zy_terms(passes: MixturePass, comp, labels, h_z: float, noise_samples: int):
    """(i_zy, its Monte Carlo stderr, h(Z|Y), the I(Z;Y) band) from the class terms of the pass;
    all None without labels."""
    if passes.neg_log_class is None:
        return None, None, None, None
    difference = passes.neg_log_p - passes.neg_log_class
    mi_zy = controlled_mean(difference, passes.neg_log_self, comp.entropy, noise_samples)
    return mi_zy.value, mi_zy.stderr_mc, h_z - mi_zy.value, zy_band(passes, labels, comp.n, noise_samples)


def _pair_bounds(comp, labels, chunk_inputs: int, shard: Shard | None, bounds: bool):
    """(h_z_bounds, i_xz_bounds, i_zy_bounds) from the pairwise bounds (None when ``bounds`` is
    False; i_zy_bounds also None without labels)."""
    if not bounds:
        return None, None, None
    pair = pairwise_bounds(comp, labels=labels, chunk_rows=max(1, chunk_inputs), shard=shard)
    h_z_given_x = float(comp.entropy.mean())
    i_zy_bounds = None
    if labels is not None:
        i_zy_bounds = (pair["h_lower"] - pair["h_given_y_upper"], pair["h_upper"] - pair["h_given_y_lower"])
    return (pair["h_lower"], pair["h_upper"]), (pair["h_lower"] - h_z_given_x, pair["h_upper"] - h_z_given_x), i_zy_bounds


def gaussian_dropout_mi(
    features: Any,
    variance: float,
    *,
    labels: Any = None,
    noise_samples: int = 10,
    seed: int = 0,
    chunk_size: int | None = None,
    device: Any = None,
    bounds: bool = True,
    dtype: Any = None,
    distributed: bool = False,
    backend: str = "auto",
    options: MixtureOptions | None = None,
) -> GaussianDropoutMI:
    """Estimate I(X;Z) (and I(Z;Y)) for Z = f(X) * D, D ~ N(1, variance I), in nats.

    The point estimate is Algorithm 1 of Adilova et al. (ICLR 2023): i_xz = h(Z) - h(Z|X) with
    h(Z|X) in closed form and h(Z) the Monte Carlo entropy of the N-component mixture. Beside it
    the result carries a band [i_xz_lower, i_xz_upper] on I(X;Z) of the input distribution
    (multi-sample lower bound, leave-one-out upper bound, 2 standard errors each; coverage
    >= 0.954), log N (the ceiling of the lower estimate) and ``saturated`` (the estimate moves
    less than half as much as the truth, so it measures N rather than the network); with labels
    the same for I(Z;Y), whose ceiling is H(Y). See :mod:`infodrop.mi.band` for the derivations.

    Args:
        features: the noiseless representation f(x_i) of N inputs, N x d (array or tensor;
            1-D means d = 1). Finite; exact zeros (ReLU) are handled by conditioning on the zero
            pattern (Theorem 3.3 / Appendix A.4 of Adilova et al.; see infodrop.mi.mixture).
        variance: the Gaussian-dropout variance (> 0); from a binary rate p use p / (1 - p).
        labels: optional N discrete class labels for I(Z;Y).
        noise_samples: samples of Z drawn per input (>= 1; >= 2 for a within-input stderr).
        seed: seed of the noise (>= 0); same seed, same device -> same numbers, whatever
            chunk_size and whatever the number of ranks.
        chunk_size: rows of Z scored together against all N components, which are visited in
            column tiles of about 2^19 / chunk_size (log-sum-exp accumulated online); rounded
            down to a multiple of noise_samples, at least noise_samples. Memory beyond the
            N x d inputs is O(chunk_size * tile) plus O(N * noise_samples) per-sample results,
            never O(N^2). Default: 256 rows (a 4 MiB float64 tile, cache-sized on CPUs).
            The result does not depend on it (to rounding).
        device: None -> CUDA if available else CPU.
        bounds: compute the pairwise bounds (i_xz_bounds, h_z_bounds, i_zy_bounds). The
            Bhattacharyya bound costs O(N^2 d) elementwise work (does not reduce to matrix
            products); set False to skip it for large N on a CPU.
        dtype: the block of log-densities: 'float64' (~1e-12 relative), 'float32' (faster;
            an error growing as d/variance per log-density, see infodrop.mi.blocked_mixture) or
            None: float32 through the blocked CPU path on a CPU (I(X;Z) and I(Z;Y) within
            ~3e-8 nats of float64, the leave-one-out bound within 4e-7 at d = 32 and variance
            0.1, growing to 2e-4 at d = 128 and 0.01: infodrop.mi.mixture; raised to float64
            where float32 cannot hold the features), float64 elsewhere.
        distributed: split the work over an initialised torch.distributed process group
            (gloo for CPU tensors, NCCL for CUDA; every rank passes the same features, labels
            and arguments). Rank r of W scores the samples of Z of about N/W inputs against all
            N components, the pairwise bounds are split likewise, and the per-sample results and
            partial log-sum-exp statistics are combined in float64, so every rank returns the
            same numbers as one process computing everything (to rounding; the noise of input i
            depends only on seed and i). The Ledoit-Wolf Gaussian bound (O(N S d^2)) is computed
            on every rank. ValueError when no process group is initialised.
        backend: 'auto' (default: the fused Triton kernel for float32 on CUDA when triton is
            installed, the blocked path on a CPU, else torch), 'blocked'
            (infodrop.mi.blocked_mixture), 'torch' or 'triton' (infodrop.mi.triton_mixture); the
            h(Z) and class sums only, the bounds always use torch.
        options: chunk_size, device, dtype, backend and distributed as one
            :class:`~infodrop.mi.options.MixtureOptions`; a value set there and again as a
            keyword raises ValueError.

    Returns:
        :class:`GaussianDropoutMI` (parts estimate, band, bounds, diagnostics; every field also
        under its flat name).
    """
    chunk_size, device, dtype, backend, distributed = dataclasses.astuple(
        merge_options(options, chunk_size=chunk_size, device=device, dtype=dtype, backend=backend, distributed=distributed)
    )
    f, variance, label_tensor, noise_samples, seed, chunk_size, dev = _validate(
        features, variance, labels, noise_samples, seed, chunk_size, device
    )
    shard = check_distributed(distributed)
    block_dtype = _resolve_dtype(dtype, dev, backend)
    comp = prepare_components(f, variance)
    n, d = comp.n, comp.d
    chunk_rows = _chunk_rows(chunk_size, n, noise_samples, dev)
    n_classes = 0 if label_tensor is None else int(label_tensor.max()) + 1
    world = 1 if shard is None else shard.world
    _check_memory(n, d, noise_samples, n_classes, chunk_rows, world, dev)
    _announce_cost(n, d, noise_samples, n_classes, bounds, world, dev, block_dtype, shard)

    passes = _sharded_pass(comp, noise_samples, seed, chunk_rows, label_tensor, block_dtype, shard, backend)
    h_z_given_x = float(comp.entropy.mean())
    h_z = controlled_mean(passes.neg_log_p, passes.neg_log_self, comp.entropy, noise_samples)
    loo = controlled_mean(passes.neg_log_loo, passes.neg_log_self, comp.entropy, noise_samples)
    i_xz_loo = loo.value - h_z_given_x if math.isfinite(loo.value) else None
    band = xz_band(passes, n, noise_samples)

    i_zy, i_zy_stderr, h_z_given_y, zy = _zy_terms(passes, comp, label_tensor, h_z.value, noise_samples)
    gaussian_upper = gaussian_upper_bound(comp, noise_samples, seed, chunk_rows=chunk_rows)
    h_z_bounds, i_xz_bounds, i_zy_bounds = _pair_bounds(comp, label_tensor, chunk_rows // noise_samples, shard, bounds)

    estimate = PointEstimate(
        i_xz=h_z.value - h_z_given_x, h_z=h_z.value, h_z_given_x=h_z_given_x, i_xz_loo=i_xz_loo,
        i_xz_stderr=h_z.stderr_mc, i_xz_stderr_data=h_z.stderr_data,
        i_zy=i_zy, h_z_given_y=h_z_given_y, i_zy_stderr=i_zy_stderr,
    )
    mixture_band = MixtureBand(
        i_xz_lower=band.lower, i_xz_upper=band.upper, log_n=math.log(n),
        i_xz_sensitivity=band.sensitivity, saturated=band.saturated,
        i_zy_lower=None if zy is None else zy.lower, i_zy_upper=None if zy is None else zy.upper,
        h_y=None if zy is None else zy.h_y, i_zy_saturated=None if zy is None else zy.saturated,
        i_xz_terms=None if band.lower_terms is None else band.lower_terms.numpy(),
    )
    mixture_bounds = MixtureBounds(
        h_z_gaussian_upper=gaussian_upper, h_z_bounds=h_z_bounds, i_xz_bounds=i_xz_bounds, i_zy_bounds=i_zy_bounds,
    )
    diagnostics = Diagnostics(
        h_pattern=pattern_entropy(comp), n_patterns=comp.n_patterns,
        n_samples=n, n_units=d, noise_samples=noise_samples, variance=variance,
    )
    return GaussianDropoutMI(estimate=estimate, band=mixture_band, bounds=mixture_bounds, diagnostics=diagnostics)


def _sharded_pass(comp, noise_samples, seed, chunk_rows, labels, dtype, shard: Shard | None, backend: str = "auto") -> MixturePass:
    """The mixture pass over all N * S samples of Z; with a shard, this rank scores its inputs'
    samples and the per-sample columns are assembled on every rank (infodrop.mi.shard)."""
    start, stop = input_range(comp.n, shard)
    if shard is None:
        return mixture_pass(
            comp, noise_samples, seed, chunk_rows=chunk_rows, labels=labels, leave_one_out=True, dtype=dtype,
            backend=backend,
        )
    names = ["neg_log_p", "neg_log_self", "neg_log_loo"]
    if labels is not None:
        names += ["neg_log_class", "neg_log_class_loo"]
    if stop > start:
        local = mixture_pass(
            comp,
            noise_samples,
            seed,
            chunk_rows=chunk_rows,
            labels=labels,
            leave_one_out=True,
            dtype=dtype,
            inputs=(start, stop),
            backend=backend,
        )
        columns = {name: getattr(local, name) for name in names}
    else:  # more ranks than inputs: this rank contributes nothing
        empty = torch.zeros(0, dtype=torch.float64, device=comp.features.device)
        columns = {name: empty for name in names}
    total, first = comp.n * noise_samples, start * noise_samples
    full = {name: gather_rows(column, first, total) for name, column in columns.items()}
    return MixturePass(
        neg_log_p=full["neg_log_p"],
        neg_log_self=full["neg_log_self"],
        neg_log_loo=full["neg_log_loo"],
        neg_log_class=full.get("neg_log_class"),
        neg_log_class_loo=full.get("neg_log_class_loo"),
    )


def mixture_entropy(
    features: Any,
    variance: float,
    *,
    noise_samples: int = 10,
    seed: int = 0,
    chunk_size: int | None = None,
    device: Any = None,
    dtype: Any = None,
    backend: str = "auto",
    options: MixtureOptions | None = None,
) -> tuple[float, float]:
    """Only the Monte Carlo h(Z) of the Gaussian-dropout mixture: (estimate, MC stderr), nats.

    The same computation as ``gaussian_dropout_mi(...).h_z`` without the leave-one-out,
    class-conditional, Gaussian and pairwise extras (what benchmarks/bench_mixture.py times);
    ``options`` as there (one process: ``distributed`` must stay False).
    """
    chunk_size, device, dtype, backend, distributed = dataclasses.astuple(
        merge_options(options, chunk_size=chunk_size, device=device, dtype=dtype, backend=backend)
    )
    if distributed:
        raise ValueError("mixture_entropy runs in one process; use gaussian_dropout_mi for distributed=True")
    f, variance, _, noise_samples, seed, chunk_size, dev = _validate(
        features, variance, None, noise_samples, seed, chunk_size, device
    )
    comp = prepare_components(f, variance)
    chunk_rows = _chunk_rows(chunk_size, comp.n, noise_samples, dev)
    passes = mixture_pass(
        comp, noise_samples, seed, chunk_rows=chunk_rows, leave_one_out=False, dtype=_resolve_dtype(dtype, dev, backend), backend=backend
    )
    result = controlled_mean(passes.neg_log_p, passes.neg_log_self, comp.entropy, noise_samples)
    return result.value, result.stderr_mc
