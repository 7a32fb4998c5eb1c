"""The blocked log-sum-exp pass of the Gaussian-dropout mixture: the CPU path at the GEMM's pace.

The h(Z) pass of :mod:`infodrop.mi.mixture` needs, for every sample z_r of Z (M = N * S rows)
and the N components j,

    L_r = log sum_{j in A_r} exp(s_rj),   s_rj = log N_j(z_r) - shift,

over the allowed columns A_r (j != the input that drew z_r, the same zero pattern), and with
labels the same sum over the columns of the row's own class. The log-densities of a block of
rows are one matrix product (see mixture.py): [z'^2, z', 1] (rows x (2d + 1)) times
[-r'^2 / (2 variance), r' / variance, bias]^T, with the bias folded into the product as a
column of ones (no copy of the bias into the tile before each product).

What makes it fast on one CPU core (benchmarks/bench_mixture.py, N = 4,000, d = 32, S = 10):

* float32 products and exponentials; the row sums merged across column tiles in float64, the
  component that drew z added exactly in float64 by the caller;
* base-2 units: the weights carry a factor log2(e), so each tile needs exp2, which torch
  evaluates about 3x faster than exp (0.3 vs 0.9 ns per float32 on AVX-512);
* per tile row: one max pass, then subtract-clamp-exp2 in place and one sum: the cache-sized
  tile (BLOCK_ROWS rows x up to TILE_ELEMENTS / BLOCK_ROWS columns) is produced by the product
  and read four times while it is still in cache, never copied;
* class sums without a product per class: the columns are sorted by class once and the rows of
  a chunk by class (stable), so a block's own-class columns are one contiguous slice per run of
  rows of one class; that slice gets its own maximum, so a class sum far below the row's
  largest term keeps its precision;
* few Python iterations: row chunks of CHUNK_ELEMENTS / d samples, blocks of BLOCK_ROWS rows against all
  N columns when they fit the tile.

Exponents are clamped at EXP2_FLOOR before exp2: below it exp2 leaves its fast path (2x slower
per element) for subnormal results. A clamped term adds 2^floor relative to the row's (or the
class slice's) largest term, so a row's sum is off by at most N * 2^-126 ~ 1e-34 relative in
float32; rows (or slices) with no allowed column are set to -inf explicitly.

Rounding (float32, u = 2^-24, K = 2d + 1): the product gives each s_rj with an error of at most
about (K + 2) u sum_k |left_rk w_kj| (inputs rounded to float32, the K-term sum); the units are
rescaled by powers of two (exactly) so that z' = z / a_k and r' = a_k / f_jk stay near 1, and
for the components that carry the mass (z_k r_jk = 1 + sqrt(variance) eps) the sum is about
d (1.5 + 2 sqrt(variance)|eps|) / variance + |bias|. The log-sum-exp moves by no more than the
largest error among the terms that carry its mass, plus (log2(N) + 4) u from exp2 and the sums.
So the per-row bound grows as d^2 / variance: ~2e-3 nats at d = 32 and variance 0.1, ~0.3 at
d = 128 and variance 0.01. Actual errors are far smaller (the K rounding errors partly cancel,
and h(Z) averages rows in which the exact own term carries most of the mass): see mixture.py for
the measured differences of h(Z), I(X;Z), I(Z;Y) and the leave-one-out bound from float64.
float64 inputs run the same code in float64 (~1e-13 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["BlockedColumns", "blocked_columns", "chunk_rows", "blocked_left", "blocked_logsumexp", "float32_safe"]

LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)
# Rows per block: a (BLOCK_ROWS x (2d+1)) x ((2d+1) x columns) product runs at the full GEMM rate
# from about 64 rows on, and more rows mean fewer Python iterations per pair.
BLOCK_ROWS = 128
# Elements of one float32 tile: 2^19 = 2 MiB sits in L2 plus L3 on current CPUs; the passes over
# it after the product then cost 0.05-0.1 ns per element each (measured, one Zen 4 core).
TILE_ELEMENTS = 1 << 19
# Samples of Z drawn, sorted by class and scored together: CHUNK_ELEMENTS / d rows (4,096 at
# d = 32; rounded to whole inputs), so that the chunk's float64 noise, samples and [z'^2, z', 1]
# stay at a few MiB whatever d; longer chunks give longer runs of one class.
CHUNK_ELEMENTS = 1 << 17


def chunk_rows(d: int) -> int:
    """Rows of Z per chunk of the blocked pass for d units (at least BLOCK_ROWS)."""
    return max(BLOCK_ROWS, CHUNK_ELEMENTS // max(1, d))

# Lowest base-2 exponent passed to exp2 (the smallest normal number of each dtype).
EXP2_FLOOR = {torch.float32: -126.0, torch.float64: -1022.0}
# Stand-in maximum of a row (or class slice) with no allowed column, finite so that empty rows
# need no test per tile: results below EMPTY are empty sums, -inf. (A sum whose largest term is
# below 2^EMPTY_TOP, exp(-7e29), counts as empty too: it is 0 in float64 anyway.)
EMPTY_TOP = -1e30
EMPTY = 0.5 * EMPTY_TOP
# float32 keeps (z')^2, (r')^2 / variance and their products far from overflow (3.4e38) below this.
FLOAT32_LIMIT = 1e15


@dataclass(frozen=True)
class BlockedColumns:
    """The N components as the blocked pass reads them (all on one device).

    weights: (2d+1) x N in the block dtype, log2 units, columns in class order.
    position: N int64, the column of component i. unit_scale: d float64 powers of two, a_k.
    pattern: N pattern ids in column order, or None when there is one pattern.
    class_start: C + 1 column offsets of the classes (python ints), or None without labels.
    """

    weights: torch.Tensor
    position: torch.Tensor
    unit_scale: torch.Tensor
    pattern: torch.Tensor | None
    class_start: list[int] | None

    @property
    def n(self) -> int:
        return int(self.weights.shape[1])


def _unit_scale(features: torch.Tensor) -> torch.Tensor:
    """a_k = 2^round(mean log2 |f_jk|) over the nonzero f_jk of unit k (1 for an all-zero unit):
    dividing z_k and multiplying r_jk by a power of two is exact and centres both near 1."""
    nonzero = features != 0
    logs = torch.where(nonzero, features.abs().clamp(min=1e-300).log2(), torch.zeros_like(features))
    mean = logs.sum(0) / nonzero.sum(0).clamp(min=1)
    return torch.exp2(mean.round())


def float32_safe(features: torch.Tensor, variance: float) -> bool:
    """Whether float32 blocks hold this problem without overflow: after the unit scaling, |z'|
    (with 10 standard deviations of noise) and |r'| / sqrt(variance) stay below FLOAT32_LIMIT."""
    scaled = features / _unit_scale(features)
    nonzero = scaled != 0
    if not bool(nonzero.any()):
        return True
    values = scaled.abs()[nonzero]
    largest = float(values.max()) * (1 + 10 * math.sqrt(variance))
    smallest = float(values.min()) * math.sqrt(variance)
    return largest < FLOAT32_LIMIT and 1 / smallest < FLOAT32_LIMIT


def blocked_columns(inverse: torch.Tensor, features: torch.Tensor, bias: torch.Tensor, variance: float,
                    pattern: torch.Tensor | None, labels: torch.Tensor | None, dtype: torch.dtype) -> BlockedColumns:
    """Build :class:`BlockedColumns` from the float64 N x d inverse features r = 1/f (0 at zeros),
    the features, the shifted float64 bias (N, nats), the pattern ids (None: one pattern) and the
    dense labels 0..C-1 (None: no class sums)."""
    scale = _unit_scale(features)
    r = inverse * scale
    weights = torch.cat([r.square() * (-0.5 / variance), r / variance, bias[:, None]], dim=1) * LOG2E
    n = inverse.shape[0]
    order = torch.arange(n, device=inverse.device)
    class_start = None
    if labels is not None:
        order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels)
        class_start = [0] + torch.cumsum(counts, 0).tolist()
    position = torch.empty_like(order)
    position[order] = torch.arange(n, device=inverse.device)
    return BlockedColumns(
        weights=weights[order].t().contiguous().to(dtype),
        position=position,
        unit_scale=scale,
        pattern=pattern[order] if pattern is not None else None,
        class_start=class_start,
    )


def blocked_left(columns: BlockedColumns, z: torch.Tensor) -> torch.Tensor:
    """[z'^2, z', 1] for float64 samples z (rows x d), z' = z / a_k, in the block dtype."""
    scaled = z / columns.unit_scale
    ones = torch.ones(z.shape[0], 1, dtype=z.dtype, device=z.device)
    return torch.cat([scaled.square(), scaled, ones], dim=1).to(columns.weights.dtype)


class _RowSums:
    """log2 sum_j 2^value_rj for m rows, filled block by block: the row maxima and the sums of
    2^(value - maximum) in the block dtype when one tile spans all columns (the float64 log is
    taken once, for all rows, at the end), else merged across column tiles in float64. A row with
    nothing finite gets the maximum EMPTY_TOP, so it needs no test per tile and adds nothing when
    merged; :meth:`nats` turns it into -inf."""

    def __init__(self, m: int, dtype: torch.dtype, device: torch.device, merged: bool):
        self.top = torch.full((m,), EMPTY_TOP, dtype=dtype, device=device)
        self.total = torch.zeros(m, dtype=dtype, device=device)
        self.log2 = torch.full((m,), float("-inf"), dtype=torch.float64, device=device) if merged else None

    def add(self, values: torch.Tensor, r0: int, r1: int, scratch: torch.Tensor | None = None) -> None:
        """Rows r0..r1-1 of ``values`` (overwritten unless ``scratch``, as many elements, is given)."""
        top, total = self.top[r0:r1], self.total[r0:r1]
        torch.amax(values, dim=1, out=top).clamp_(min=EMPTY_TOP)
        if scratch is None:
            shifted = values.sub_(top[:, None])
        else:
            shifted = torch.sub(values, top[:, None], out=scratch.view(values.shape))
        torch.sum(shifted.clamp_(min=EXP2_FLOOR[values.dtype]).exp2_(), dim=1, out=total)
        if self.log2 is not None:
            part = total.to(torch.float64).log2_().add_(top)
            torch.logaddexp2(self.log2[r0:r1], part, out=self.log2[r0:r1])

    def nats(self) -> torch.Tensor:
        """log sum_j exp(value_rj / log2(e)) per row in nats, float64, -inf for an empty row."""
        log2 = self.log2 if self.log2 is not None else self.total.to(torch.float64).log2_().add_(self.top)
        return log2.masked_fill_(log2 < EMPTY, float("-inf")).mul_(LN2)


def _class_runs(labels: torch.Tensor) -> list[tuple[int, int, int]]:
    """(first row, stop row, class) of each run of equal labels in rows sorted by label."""
    classes, counts = torch.unique_consecutive(labels, return_counts=True)
    stops = torch.cumsum(counts, 0).tolist()
    return [(stop - count, stop, label) for stop, count, label in zip(stops, counts.tolist(), classes.tolist())]


def _score_block(columns, left, own_column, row_pattern, runs, width, buffer, scratch, row_index, r0, sums, class_sums):
    """Add the sums of rows r0.. (``left``: their [z'^2, z', 1]) over all columns to ``sums`` and
    over their own class to ``class_sums``; ``runs``: (first, stop, class) of the block's rows,
    sorted by class, relative to r0; ``own_column``: their own components' columns; ``row_index``:
    0, 1, ... (at least as many as rows)."""
    rows, n = left.shape[0], columns.n
    for c0 in range(0, n, width):
        c1 = min(n, c0 + width)
        tile = torch.mm(left, columns.weights[:, c0:c1], out=buffer[: rows * (c1 - c0)].view(rows, c1 - c0))
        # The component that drew the row is added exactly by the caller: take it out here.
        if width < n:
            hit = ((own_column >= c0) & (own_column < c1)).nonzero()[:, 0]
            tile[hit, own_column[hit] - c0] = float("-inf")
        else:
            tile[row_index[:rows], own_column] = float("-inf")
        if row_pattern is not None:
            tile.masked_fill_(row_pattern[:, None] != columns.pattern[None, c0:c1], float("-inf"))
        for a, b, label in runs:
            s0, s1 = max(c0, columns.class_start[label]), min(c1, columns.class_start[label + 1])
            if s0 < s1:
                class_sums.add(tile[a:b, s0 - c0 : s1 - c0], r0 + a, r0 + b, scratch[: (b - a) * (s1 - s0)])
        sums.add(tile, r0, r0 + rows)


def _block_runs(runs: list[tuple[int, int, int]], r0: int, r1: int) -> list[tuple[int, int, int]]:
    """The chunk's class runs cut to rows r0..r1-1, relative to r0."""
    return [(max(a, r0) - r0, min(b, r1) - r0, label) for a, b, label in runs if a < r1 and b > r0]


def blocked_logsumexp(columns: BlockedColumns, left: torch.Tensor, own: torch.Tensor, *,
                      row_pattern: torch.Tensor | None = None, row_labels: torch.Tensor | None = None,
                      block_rows: int = BLOCK_ROWS) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row log-sum-exp over the allowed columns, in nats (float64, -inf when none is allowed).

    left: M x (2d + 1) rows from :func:`blocked_left`; own: M int64, the component that drew each
    row (left out of its sums); row_pattern: M pattern ids (with columns.pattern); row_labels: M
    labels (with columns.class_start), then also the sum over the row's own class. block_rows:
    rows per product (results do not depend on it). Returns (log_rest, log_rest_class or None).
    """
    m, device = left.shape[0], left.device
    order = None
    if row_labels is not None:
        order = torch.argsort(row_labels, stable=True)
        left, own, row_labels = left[order], own[order], row_labels[order]
        row_pattern = row_pattern[order] if row_pattern is not None else None
    own_column = columns.position[own]
    block_rows = max(1, min(block_rows, m))
    # The column tile depends on N only, so a row's sums do not depend on how rows are blocked.
    width = max(1, min(columns.n, TILE_ELEMENTS // BLOCK_ROWS))
    buffer = torch.empty(block_rows * width, dtype=left.dtype, device=device)
    scratch = torch.empty_like(buffer) if row_labels is not None else None
    sums = _RowSums(m, left.dtype, device, merged=width < columns.n)
    class_sums = _RowSums(m, left.dtype, device, merged=width < columns.n) if row_labels is not None else None
    runs = _class_runs(row_labels) if row_labels is not None else []
    row_index = torch.arange(block_rows, device=device)
    for r0 in range(0, m, block_rows):
        r1 = min(m, r0 + block_rows)
        _score_block(columns, left[r0:r1], own_column[r0:r1], row_pattern[r0:r1] if row_pattern is not None else None,
                     _block_runs(runs, r0, r1), width, buffer, scratch, row_index, r0, sums, class_sums)
    results = [part.nats() for part in (sums, class_sums) if part is not None]
    if order is not None:
        results = [torch.empty_like(part).index_copy_(0, order, part) for part in results]
    return results[0], results[1] if class_sums is not None else None
