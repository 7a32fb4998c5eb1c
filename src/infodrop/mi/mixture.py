"""Monte Carlo entropy of the Gaussian mixture that Gaussian dropout induces.

Gaussian dropout multiplies a deterministic representation f(x) in R^d by noise
D ~ N(1, variance * I), so given the N inputs x_1..x_N the representation Z = f(X) * D is the
mixture

    p_N(z) = (1/N) sum_j N(z; f_j, variance * diag(f_j^2)),        f_j = f(x_j),

(Adilova, Geiger & Fischer, ICLR 2023, Section 4 and Algorithm 1). This module draws
``noise_samples`` samples of Z per input and evaluates -log p_N(z) against ALL N components,
in chunks of rows against tiles of columns with an online log-sum-exp, so memory stays at
O(chunk_size * tile), never O(N^2).

Log-densities as one matrix product
-----------------------------------
With r_jk = 1 / f_jk the quadratic form of component j at z is

    Q_j(z) = sum_k (z_k - f_jk)^2 / (variance f_jk^2) = (1/variance) sum_k (z_k r_jk - 1)^2
           = (1/variance) [ sum_k z_k^2 r_jk^2 - 2 sum_k z_k r_jk + d ],

so for a block of rows the log-densities are one (rows x 2d)(2d x N) product of [z^2, z]
against [-r^2/(2 variance), r/variance], plus a per-component bias, then a log-sum-exp.

Numerical scheme (float32 or float64, and why it is safe across scales)
-----------------------------------------------------------------------
The expansion is written in the scale-free variable z_k r_jk, which is 1 + sqrt(variance)*eps
for the component that drew z: a unit whose f spans 1e-3 or 1e3 contributes an O(1) term, so
the spread of f across units and inputs causes no cancellation by itself. The cancellation
that remains is 2d terms of size ~1/variance summing to ~d: a relative rounding error of
~eps_machine * d / variance per log-density: up to ~1e-3 nats in float32 for variance 0.01 and
d = 128 (5e-5 measured at d = 8 with f over 1e-3..1e3, tests/mi/test_dropout_numerics.py), but
~1e-12 in float64. In both precisions the log-density of the component that drew z (usually
the largest term of the sum) is NOT taken from the product but computed exactly in float64
from the noise itself: log N_i(z) = c_i - sum_k eps_k^2 / 2.
The block's log-sum-exp is taken over the other components and merged with that exact term
by ``logaddexp``; sums are accumulated in float64.

Defaults. On a CPU the blocks are float32 through :mod:`infodrop.mi.blocked_mixture` (the
bound on each row's error is stated there; it grows as d / variance). Measured against the
float64 pass on the same noise (gaussian_dropout_mi, N = 500-1,000, S = 4, softplus features):
I(X;Z) and I(Z;Y) within 3e-8 nats (d = 16, variance 0.2; d = 8, variance 1), and exactly equal
where the estimate is saturated (the exact own term carries each row); the leave-one-out bound,
whose rows lack that term, within 4e-7 nats at d = 32 and variance 0.1, 8e-6 at d = 64 and 0.02,
2e-4 at d = 128 and 0.01. At N = 4,000, d = 32, variance 0.1, S = 10 (benchmarks/bench_mixture.py)
h(Z) agrees to ~1e-12 nats. All of these lie far below the Monte Carlo standard errors. Where
float32 cannot hold the features (|f| beyond ~1e15 relative to a unit's typical scale) the pass
runs in float64. dtype='float64' keeps ~1e-12 everywhere at about 2x the time; on GPUs the
default stays float64 (pass dtype='float32' for the fused kernel).

Estimator, its error and its finite-N bias
------------------------------------------
-log p_N(z) is averaged over the S samples drawn from each of the N components (stratified), with
-log N_i(z) - H(p_i) (mean exactly zero) as a control variate (:func:`controlled_mean`); for a
single input the estimate is then exact (I(X;Z) = 0). The standard error given the inputs comes
from the within-input spread. As an estimate of the population h(Z), E[h(p_N)] <= h(Z) (entropy
is concave and E p_N = p), while the leave-one-out density p_{N,-i} gives E[-log p_{N,-i}(z)] >= h(Z)
(Jensen); both are computed in the same pass and bracket the finite-N bias.

Zero units (ReLU)
-----------------
A unit with f_k(x) = 0 gives Z_k = 0 exactly, so the component is degenerate. Following the
proof of Theorem 3.3 (Appendix A.4) we condition on the pattern B = 1[f(X) != 0], which is a
function of Z: I(X;Z) = H(B) + sum_b p(b) I(X; Z_b | B = b). Equivalently, entropies are taken
with respect to the sum over patterns of Lebesgue measure on the nonzero coordinates: a
component only has density at samples with its own pattern, a zero unit contributes nothing
to a component's entropy, and h(Z) = H(B) + sum_b p(b) h(Z_b | B = b). In the block this is a
mask (-inf between different patterns), applied only when more than one pattern occurs.
With ReLU features of many units nearly every input has its own pattern; then I(X;Z) is close
to the plug-in H(B) <= log N, which is what the data can say.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from infodrop.mi.blocked_mixture import (
    BLOCK_ROWS,
    blocked_columns,
    blocked_left,
    blocked_logsumexp,
    chunk_rows as blocked_chunk_rows,
    float32_safe,
)
from infodrop.mi.triton_mixture import fused_logsumexp, use_triton_kernel

# Elements of one rows x columns tile of log-densities: 2^19 float64 = 4 MiB stays in a CPU's
# last-level cache (fresh 64 MiB blocks were several times slower per pair, page faults and
# cache misses included) and is still a large enough GEMM for a GPU.
TILE_ELEMENTS = 1 << 19
# On a GPU each kernel launch costs microseconds whatever its size, so tiles are as large as
# memory comfortably allows: 2^25 float64 = 256 MiB per tile buffer.
CUDA_TILE_ELEMENTS = 1 << 25
# Lowest exponent passed to exp (see OnlineLogSumExp.update).
EXP_FLOOR = {torch.float64: -600.0, torch.float32: -80.0}
# Default rows of Z per chunk (before rounding to a multiple of noise_samples), CPU and GPU.
DEFAULT_CHUNK_ROWS = 256
CUDA_CHUNK_ROWS = 4096
# Inputs per independently seeded noise block: the noise of input i depends only on the seed
# and i, never on chunk_size.
NOISE_BLOCK = 512


@dataclass(frozen=True)
class Components:
    """Per-component quantities of the mixture, computed once (all tensors on one device).

    features: N x d float64, f_j. inverse: N x d, 1/f_jk (0 where f_jk == 0).
    log_abs: N x d, log|f_jk| (0 where f_jk == 0). nonzero: N, number of nonzero units.
    pattern: N int64, id of the zero pattern; n_patterns: number of distinct patterns.
    log_norm: N, c_j = -(nnz_j/2) log(2 pi variance) - sum_k log|f_jk|.
    entropy: N, H(p_j) = nnz_j/2 log(2 pi e variance) + sum_k log|f_jk| (nats).
    """

    features: torch.Tensor
    inverse: torch.Tensor
    log_abs: torch.Tensor
    nonzero: torch.Tensor
    pattern: torch.Tensor
    n_patterns: int
    pattern_counts: torch.Tensor
    log_norm: torch.Tensor
    entropy: torch.Tensor
    variance: float

    @property
    def n(self) -> int:
        return int(self.features.shape[0])

    @property
    def d(self) -> int:
        return int(self.features.shape[1])


def prepare_components(features: torch.Tensor, variance: float) -> Components:
    """Build :class:`Components` from validated float64 features (N x d) and the variance."""
    nonzero_mask = features != 0
    safe = torch.where(nonzero_mask, features, torch.ones_like(features))
    inverse = torch.where(nonzero_mask, 1.0 / safe, torch.zeros_like(features))
    log_abs = torch.where(nonzero_mask, safe.abs().log(), torch.zeros_like(features))
    nonzero = nonzero_mask.sum(1).to(torch.float64)
    sum_log_abs = log_abs.sum(1)
    if bool(nonzero_mask.all()):
        pattern = torch.zeros(features.shape[0], dtype=torch.int64, device=features.device)
        counts = torch.tensor([features.shape[0]], dtype=torch.int64, device=features.device)
    else:
        _, pattern, counts = torch.unique(nonzero_mask, dim=0, return_inverse=True, return_counts=True)
    log_norm = -0.5 * nonzero * math.log(2 * math.pi * variance) - sum_log_abs
    entropy = 0.5 * nonzero * math.log(2 * math.pi * math.e * variance) + sum_log_abs
    return Components(
        features=features,
        inverse=inverse,
        log_abs=log_abs,
        nonzero=nonzero,
        pattern=pattern,
        n_patterns=int(counts.numel()),
        pattern_counts=counts,
        log_norm=log_norm,
        entropy=entropy,
        variance=float(variance),
    )


def pattern_entropy(comp: Components) -> float:
    """Plug-in entropy H(B) of the zero pattern over the N inputs (nats; 0 for one pattern)."""
    p = comp.pattern_counts.to(torch.float64) / comp.n
    return float(-(p * p.log()).sum())


def _on_cuda(device: torch.device | str | None) -> bool:
    return device is not None and torch.device(device).type == "cuda"


def resolve_dtype(dtype: Any, device: Any = None, backend: str = "auto") -> torch.dtype:
    """The dtype of the log-density blocks: 'float64', 'float32' or None, the default: float32
    when ``device`` is a CPU and ``backend`` is 'auto' or 'blocked' (the blocked path, whose
    float32 error the module docstring states), float64 otherwise."""
    if dtype is None:
        cpu = device is not None and torch.device(device).type == "cpu"
        return torch.float32 if cpu and backend in ("auto", "blocked") else torch.float64
    if dtype in (torch.float64, "float64", "double"):
        return torch.float64
    if dtype in (torch.float32, "float32", "float"):
        return torch.float32
    raise ValueError(f"dtype must be None, 'float64' or 'float32' (or the torch dtypes), got {dtype!r}")


# Float64 vectors of M = N * S rows that a pass keeps (neg_log_p, neg_log_self, neg_log_loo; two
# more with labels), plus one for the concatenation of the chunks' pieces at the end.
_ROW_VECTORS, _ROW_VECTORS_WITH_LABELS = 4, 6


def mixture_memory(n: int, d: int, noise_samples: int, *, n_classes: int = 0, chunk_rows: int | None = None,
                   world_size: int = 1, device: Any = None) -> int:
    """Bytes one gaussian_dropout_mi call holds at its peak on one rank (an estimate, within a
    factor of about 2): the per-sample vectors of its share of the M = N * S rows of Z, one
    chunk's (rows x N) log-density blocks, and the N x d features with their derived arrays."""
    rows = -(-n * noise_samples // world_size)
    chunk = default_chunk_rows(n, noise_samples, device) if chunk_rows is None else chunk_rows
    per_row = (_ROW_VECTORS_WITH_LABELS if n_classes else _ROW_VECTORS) * 8 + 8 * n_classes
    # A chunk: its (rows x column tile) blocks, a few of them alive at once, and its rows of Z.
    block = chunk * column_tile(chunk, n, device=device)
    return rows * per_row + 3 * 8 * block + 4 * 8 * chunk * d + 6 * 8 * n * d


def available_memory(device: Any) -> int | None:
    """Bytes that can still be allocated on ``device``: free CUDA memory plus what torch's
    allocator holds unused; on the CPU, the kernel's MemAvailable. None when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_chunk_rows(n_components: int, noise_samples: int, device: torch.device | str | None = None) -> int:
    """Rows of Z per chunk: DEFAULT_CHUNK_ROWS (CUDA_CHUNK_ROWS on a GPU), but no more than the
    N * S rows that exist, rounded down to a multiple of noise_samples (at least noise_samples)."""
    rows = min(CUDA_CHUNK_ROWS if _on_cuda(device) else DEFAULT_CHUNK_ROWS, n_components * noise_samples)
    return max(noise_samples, rows - rows % noise_samples)


def _block_seed(seed: int, block: int) -> int:
    state = np.random.SeedSequence([int(seed), int(block)]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


class NoiseSource:
    """Standard normal noise eps (rows ordered input-major: row i*S + s) drawn in fixed blocks
    of NOISE_BLOCK inputs, each from its own generator seeded by (seed, block index), so that the
    noise of an input depends only on the seed and its index."""

    def __init__(self, n: int, d: int, noise_samples: int, seed: int, device: torch.device):
        self.n, self.d, self.s, self.seed, self.device = n, d, noise_samples, seed, device
        self._cache: tuple[int, torch.Tensor] | None = None

    def _block(self, b: int) -> torch.Tensor:
        if self._cache is not None and self._cache[0] == b:
            return self._cache[1]
        start = b * NOISE_BLOCK
        count = min(NOISE_BLOCK, self.n - start)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(_block_seed(self.seed, b))
        eps = torch.randn(count * self.s, self.d, generator=generator, dtype=torch.float64, device=self.device)
        self._cache = (b, eps)
        return eps

    def eps(self, start: int, stop: int) -> torch.Tensor:
        """Noise of inputs start..stop-1: ((stop-start)*S) x d float64."""
        parts = []
        for b in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
            lo = max(start, b * NOISE_BLOCK) - b * NOISE_BLOCK
            hi = min(stop, (b + 1) * NOISE_BLOCK) - b * NOISE_BLOCK
            parts.append(self._block(b)[lo * self.s : hi * self.s])
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def samples_from_noise(comp: Components, start: int, stop: int, eps: torch.Tensor, s: int) -> torch.Tensor:
    """Z = f_i * (1 + sqrt(variance) eps) for the rows of inputs start..stop-1."""
    f = comp.features[start:stop].repeat_interleave(s, dim=0)
    return f * (1.0 + math.sqrt(comp.variance) * eps)


class OnlineLogSumExp:
    """Log-sum-exp over column tiles, one row at a time: keeps a running max and a running sum
    of exp(value - max) in float64 (and optionally per-class sums), so a row of N log-densities
    is never held at once. ``update`` overwrites the tile it is given."""

    def __init__(self, rows: int, n_classes: int, device: torch.device):
        self.top = torch.full((rows,), float("-inf"), dtype=torch.float64, device=device)
        self.total = torch.zeros(rows, dtype=torch.float64, device=device)
        self.by_class = torch.zeros(rows, n_classes, dtype=torch.float64, device=device) if n_classes else None

    def update(self, tile: torch.Tensor, onehot: torch.Tensor | None = None) -> None:
        tile_top = tile.amax(dim=1).to(torch.float64)
        new_top = torch.maximum(self.top, tile_top)
        safe = torch.where(torch.isfinite(new_top), new_top, torch.zeros_like(new_top))
        scale = torch.exp(self.top - safe)
        # exp of inputs that underflow (or land in the subnormal range) takes a slow path that
        # costs 5-15x a normal exp; raising them to a floor where exp is still a normal number
        # changes each row's sum by at most N * exp(floor) relative to its largest term (1):
        # 1e-256 in float64, 1e-30 in float32, below the rounding of the sum. (A class sum is
        # affected only if its own terms, the exact self term included, are all below
        # exp(floor) times the row's largest term: exp(-600) in float64, exp(-80) in float32.)
        floor = EXP_FLOOR[tile.dtype]
        # The floor must not revive masked entries (-inf: another zero pattern, the own column):
        # a class sum can consist of nothing else, and exp(floor) would turn its exact zero into
        # a finite log far below the row's top. The total is protected by its largest term.
        masked = torch.isneginf(tile) if self.by_class is not None else None
        tile.sub_(safe.to(tile.dtype)[:, None]).clamp_(min=floor).exp_()
        if masked is not None:
            tile.masked_fill_(masked, 0.0)
        empty = ~torch.isfinite(tile_top)
        # Rows with nothing in this tile (masked out) add exactly nothing. On a GPU, asking
        # whether there are any would stall the stream at every tile; the fill is cheaper.
        if tile.is_cuda:
            tile.masked_fill_(empty[:, None], 0.0)
        elif bool(empty.any()):
            tile[empty] = 0.0
        self.total.mul_(scale).add_(tile.sum(dim=1, dtype=torch.float64))
        if self.by_class is not None:
            self.by_class.mul_(scale[:, None]).add_((tile @ onehot).to(torch.float64))
        self.top = new_top

    def _safe_top(self) -> torch.Tensor:
        return torch.where(torch.isfinite(self.top), self.top, torch.zeros_like(self.top))

    def log_total(self) -> torch.Tensor:
        """log sum_j exp(value_j) per row (-inf for a row with no finite value)."""
        return self.total.log() + self._safe_top()

    def log_class(self, own_class: torch.Tensor) -> torch.Tensor:
        """log sum over the columns of the row's own class."""
        return self.by_class.gather(1, own_class[:, None])[:, 0].log() + self._safe_top()


def column_tile(rows: int, n: int, width: int = 1, device: torch.device | str | None = None) -> int:
    """Columns per tile so that rows x columns x width stays near TILE_ELEMENTS (CUDA_TILE_ELEMENTS
    on a GPU)."""
    elements = CUDA_TILE_ELEMENTS if _on_cuda(device) else TILE_ELEMENTS
    return max(1, min(n, elements // max(1, rows * width)))


@dataclass
class MixturePass:
    """Per-row results of one pass over all samples of Z (rows input-major, M = N*S).

    neg_log_p: -log p_N(z) (nats). neg_log_self: -log N_i(z) for the input i that drew z
    (exact). neg_log_loo: -log p_{N, -i}(z), the mixture without component i (+inf where no other
    component shares the pattern). neg_log_class: -log p_N(z | Y = y_i) or None.
    neg_log_class_loo: -log of the class-conditional mixture without component i,
    log(max(n_y - 1, 1)) - log sum_{j != i, y_j = y_i} N_j(z) (+inf where no such component
    shares the pattern), or None; with neg_log_loo it gives the leave-one-out class posterior.
    """

    neg_log_p: torch.Tensor
    neg_log_self: torch.Tensor
    neg_log_loo: torch.Tensor | None
    neg_log_class: torch.Tensor | None
    neg_log_class_loo: torch.Tensor | None = None


def resolve_backend(backend: str, device: torch.device | str, dtype: torch.dtype) -> str:
    """The path that computes the sums: 'triton' (the fused kernel, see
    :func:`infodrop.mi.triton_mixture.use_triton_kernel`), 'blocked' (asked for, or 'auto' on a
    CPU: :mod:`infodrop.mi.blocked_mixture`) or 'torch' (the column tiles below; 'auto' on a GPU
    without the kernel)."""
    if use_triton_kernel(backend, device, dtype):
        return "triton"
    if backend == "blocked" or (backend == "auto" and torch.device(device).type == "cpu"):
        return "blocked"
    return "torch"


def _tile_logsumexp(comp: Components, left: torch.Tensor, weights_t: torch.Tensor, bias: torch.Tensor,
                    own: torch.Tensor, start: int, stop: int, s: int, labels: torch.Tensor | None,
                    onehot: torch.Tensor | None, buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """backend='torch': log sum_{j != i} N_j(z) (and over the own class) with an online
    log-sum-exp over column tiles of ``buffer``'s width (nats, without the shift)."""
    n, device, rows, cols = comp.n, left.device, left.shape[0], buffer.shape[1]
    own_pattern = comp.pattern[own][:, None] if comp.n_patterns > 1 else None
    acc = OnlineLogSumExp(rows, 0 if onehot is None else onehot.shape[1], device)
    for c0 in range(0, n, cols):
        c1 = min(n, c0 + cols)
        tile = torch.addmm(bias[c0:c1], left, weights_t[:, c0:c1], out=buffer[:rows, : c1 - c0])
        if own_pattern is not None:
            tile.masked_fill_(own_pattern != comp.pattern[None, c0:c1], float("-inf"))
        # The component that drew a row is added exactly (log_self), so it is taken out of
        # the tile: rows of inputs i0..i1-1 meet their own column here (host arithmetic, so
        # a GPU never waits for a mask to be counted).
        i0, i1 = max(start, c0), min(stop, c1)
        if i0 < i1:
            rows_here = torch.arange((i0 - start) * s, (i1 - start) * s, device=device)
            tile[rows_here, own[rows_here] - c0] = float("-inf")
        acc.update(tile, onehot[c0:c1] if onehot is not None else None)
    return acc.log_total(), acc.log_class(labels[own]) if onehot is not None else None


def _rest_scorer(kind: str, comp: Components, bias: torch.Tensor, labels: torch.Tensor | None,
                 dtype: torch.dtype, rows: int, kernel_options: dict | None):
    """A function (z, own, start, stop) -> (log_rest, log_rest_class or None): per row of z
    (float64 samples drawn by inputs start..stop-1, ``own`` their inputs), log sum_{j != i}
    N_j(z) - shift over the allowed components and over those of the row's class (nats)."""
    device, v, multi = comp.features.device, comp.variance, comp.n_patterns > 1
    if kind == "blocked":
        columns = blocked_columns(comp.inverse, comp.features, bias, v, comp.pattern if multi else None, labels, dtype)

        def blocked(z, own, start, stop):
            return blocked_logsumexp(columns, blocked_left(columns, z), own, row_pattern=comp.pattern[own] if multi else None,
                                     row_labels=labels[own] if labels is not None else None, block_rows=min(rows, BLOCK_ROWS))
        return blocked
    weights_t = torch.cat([comp.inverse.square() * (-0.5 / v), comp.inverse * (1.0 / v)], dim=1).t().to(dtype)
    bias = bias.to(dtype)
    onehot = None if labels is None else torch.nn.functional.one_hot(labels, int(labels.max()) + 1).to(dtype)
    buffer = None if kind == "triton" else torch.empty(rows, column_tile(rows, comp.n, device=device), dtype=dtype, device=device)

    def tiles(z, own, start, stop):
        zc = z.to(dtype)
        left = torch.cat([zc.square(), zc], dim=1)
        if kind == "torch":
            return _tile_logsumexp(comp, left, weights_t, bias, own, start, stop, z.shape[0] // (stop - start),
                                   labels, onehot, buffer)
        return fused_logsumexp(
            left, weights_t, bias, exclude=own,
            row_groups=comp.pattern[own] if multi else None, col_groups=comp.pattern if multi else None,
            row_labels=labels[own] if labels is not None else None, col_labels=labels, **(kernel_options or {}),
        )
    return tiles


def mixture_pass(
    comp: Components,
    noise_samples: int,
    seed: int,
    *,
    chunk_rows: int | None = None,
    labels: torch.Tensor | None = None,
    leave_one_out: bool = True,
    dtype: torch.dtype = torch.float64,
    inputs: tuple[int, int] | None = None,
    backend: str = "auto",
    kernel_options: dict | None = None,
) -> MixturePass:
    """Evaluate the mixture log-density at every sample of Z (see the module docstring).

    Rows of Z are processed chunk_rows at a time against column tiles of the N components
    (log-sum-exp accumulated online), so memory is O(chunk_rows * tile), independent of N^2.
    labels: N int64 class indices 0..C-1 (on comp's device) for the class-conditional mixtures
    p_N(z | y) = (1/n_y) sum_{j: y_j = y} N(z; f_j, ...). Returns a :class:`MixturePass`
    (all float64, length M = N * noise_samples). ``inputs=(start, stop)`` scores only the
    samples drawn for those inputs (still against all N components; for benchmarks).
    ``backend``: 'blocked' (:mod:`infodrop.mi.blocked_mixture`: float32 or float64 blocks at
    the GEMM's pace on a CPU; it draws and sorts at least its chunk_rows(d) samples at a time and
    uses chunk_rows only to cap its BLOCK_ROWS rows per product), 'torch' (the column tiles of
    :func:`_tile_logsumexp`), 'triton' (the fused kernel of :mod:`infodrop.mi.triton_mixture`)
    or 'auto' (the kernel for float32 on CUDA when triton is installed, 'blocked' on a CPU,
    else 'torch'); all compute the same sums. With 'blocked', float32 is raised to float64 when
    float32 cannot hold the problem (:func:`infodrop.mi.blocked_mixture.float32_safe`).
    ``kernel_options``: keyword arguments for :func:`infodrop.mi.triton_mixture.fused_logsumexp`
    (config, precision, splits; benchmarks).
    """
    n, s = comp.n, noise_samples
    first, last = inputs if inputs is not None else (0, n)
    device = comp.features.device
    if chunk_rows is None:
        chunk_rows = default_chunk_rows(n, s, device)
    kind = resolve_backend(backend, device, dtype)
    if kind == "blocked" and dtype == torch.float32 and not float32_safe(comp.features, comp.variance):
        dtype = torch.float64
    # Shift the per-component bias by a global constant so that float32 tiles keep their
    # precision for the differences that matter; it is added back in float64.
    bias64 = comp.log_norm - 0.5 * comp.nonzero / comp.variance
    shift = float(bias64.mean())
    rest = _rest_scorer(kind, comp, bias64 - shift, labels, dtype, chunk_rows, kernel_options)
    # The blocked path sorts a chunk's rows by class: larger chunks give longer runs per class.
    per_chunk = max(1, (max(chunk_rows, blocked_chunk_rows(comp.d)) if kind == "blocked" else chunk_rows) // s)
    noise = NoiseSource(n, comp.d, s, seed, device)
    nonzero_mask = comp.features != 0
    counts = None if labels is None else torch.bincount(labels).to(torch.float64)
    parts: list[MixturePass] = []
    for start in range(first, last, per_chunk):
        stop = min(last, start + per_chunk)
        eps = noise.eps(start, stop)
        own = torch.arange(start, stop, device=device).repeat_interleave(s)
        # Exact log-density of the component that drew z: its quadratic form is sum eps^2.
        log_self = comp.log_norm[own] - 0.5 * torch.where(nonzero_mask[own], eps.square(), torch.zeros_like(eps)).sum(1)
        log_rest, log_rest_class = rest(samples_from_noise(comp, start, stop, eps, s), own, start, stop)
        own_counts = None if counts is None else counts[labels[own]]
        parts.append(_chunk_terms(log_rest + shift, None if log_rest_class is None else log_rest_class + shift,
                                  log_self, n, own_counts, leave_one_out))
    return _concatenate(parts)


def _chunk_terms(log_rest: torch.Tensor, log_rest_class: torch.Tensor | None, log_self: torch.Tensor, n: int,
                 own_counts: torch.Tensor | None, leave_one_out: bool) -> MixturePass:
    """The per-row results of one chunk from log sum_{j != i} N_j(z) (and over the own class,
    whose sizes are ``own_counts``) and the exact log N_i(z)."""
    with_class = log_rest_class is not None
    return MixturePass(
        neg_log_p=math.log(n) - torch.logaddexp(log_rest, log_self),
        neg_log_self=-log_self,
        neg_log_loo=math.log(max(n - 1, 1)) - log_rest if leave_one_out else None,
        neg_log_class=own_counts.log() - torch.logaddexp(log_rest_class, log_self) if with_class else None,
        neg_log_class_loo=(own_counts - 1).clamp(min=1).log() - log_rest_class if with_class else None,
    )


def _concatenate(parts: list[MixturePass]) -> MixturePass:
    """One :class:`MixturePass` from the chunks' pieces, in order."""
    def joined(name: str) -> torch.Tensor | None:
        pieces = [getattr(part, name) for part in parts]
        return None if pieces[0] is None else torch.cat(pieces)

    return MixturePass(*(joined(name) for name in
                         ("neg_log_p", "neg_log_self", "neg_log_loo", "neg_log_class", "neg_log_class_loo")))


@dataclass(frozen=True)
class ControlledMean:
    """A Monte Carlo mean with the exactly known E[-log N_i(z)] = H_i as control variate.

    value: the estimate (nats); stderr_mc: its standard error given the N inputs (noise only);
    stderr_data: the standard error when the N inputs are themselves a sample (spread of the
    per-input terms minus H_i, divided by sqrt(N)); per_input: per-input means (N).
    """

    value: float
    stderr_mc: float
    stderr_data: float
    per_input: torch.Tensor


def controlled_mean(values: torch.Tensor, neg_log_self: torch.Tensor, entropy: torch.Tensor, s: int) -> ControlledMean:
    """Stratified MC mean of ``values`` (M = N*S rows, S per input) with control variate.

    The control is c = -log N_i(z) - H_i, whose mean is exactly zero; the estimate is
    mean(values - beta * c) with beta the pooled within-input regression slope (beta = 1 makes a
    single-input mixture exact; the estimated beta keeps the variance no worse than without;
    estimating it from the same rows adds a bias of order 1/M, far below the standard error).
    """
    n = entropy.shape[0]
    vals = values.reshape(n, s)
    control = neg_log_self.reshape(n, s) - entropy[:, None]
    finite = bool(torch.isfinite(vals).all())
    if not finite:
        return ControlledMean(float("inf"), float("nan"), float("nan"), vals.mean(1))
    if s > 1:
        vc = vals - vals.mean(1, keepdim=True)
        cc = control - control.mean(1, keepdim=True)
    else:
        vc = vals - vals.mean()
        cc = control - control.mean()
    var_c = float(cc.square().sum())
    beta = float((vc * cc).sum()) / var_c if var_c > 0 else 0.0
    adjusted = vals - beta * control
    per_input = adjusted.mean(1)
    value = float(per_input.mean())
    if s > 1:
        within = adjusted.var(dim=1, unbiased=True)
        stderr_mc = math.sqrt(float(within.sum()) / s) / n
    else:
        # No within-input spread to measure: fall back to the spread over all rows, which also
        # contains the between-input variation and therefore overstates the noise.
        stderr_mc = float(adjusted.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0
    pointwise = per_input - entropy
    stderr_data = float(pointwise.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0
    return ControlledMean(value, stderr_mc, stderr_data, per_input)
