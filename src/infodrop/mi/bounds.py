"""Bounds on the entropy of the Gaussian-dropout mixture.

Pairwise-distance bounds (Kolchinsky & Tracey, "Estimating Mixture Entropy with Pairwise
Distances", Entropy 2017). For a mixture sum_i c_i p_i and a divergence D,

    H_D = sum_i c_i H(p_i) - sum_i c_i log sum_j c_j exp(-D(p_i || p_j))

is an upper bound on the mixture entropy with D = KL and a lower bound with D = the
Bhattacharyya distance. For the components p_i = N(f_i, variance diag(f_i^2)) both have closed
forms per unit in the ratio q = f_ik / f_jk:

    KL(p_i || p_j)   = 1/2 sum_k [ q^2 (1 + 1/variance) - 2 q / variance + 1/variance - 1 - log q^2 ]
    D_B(p_i, p_j)    = sum_k [ (1/(4 variance)) (1 - 2 q / (1 + q^2)) + 1/2 log((1 + q^2) / (2 |q|)) ]

KL separates into two matrix products (like the Monte Carlo pass); Bhattacharyya does not and
costs O(N^2 d) elementwise work, in bounded blocks. Components whose zero patterns differ have
disjoint supports, so D = +inf between them (see infodrop.mi.mixture on zero units).

Gaussian upper bound: h(Z) <= 1/2 log det(2 pi e Sigma_Z). Sigma_Z is estimated from the Z
samples with the Ledoit-Wolf shrinkage estimator (Ledoit & Wolf, "A well-conditioned estimator
for large-dimensional covariance matrices", J. Multivar. Anal. 2004), implemented here in torch
with the same conventions as ``sklearn.covariance.LedoitWolf`` (centred, ddof 0, shrinkage
towards mu * I with mu = trace / d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from infodrop.mi.mixture import (
    DEFAULT_CHUNK_ROWS,
    TILE_ELEMENTS,
    Components,
    NoiseSource,
    OnlineLogSumExp,
    column_tile,
    samples_from_noise,
)
from infodrop.mi.shard import Shard, all_sum, merge_logsumexp

def _finish_rows(
    acc: OnlineLogSumExp, comp: Components, rows: torch.Tensor, labels: torch.Tensor | None, class_counts
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log (1/N) sum_j exp(-D_ij) and log (1/n_y) sum_{j: y_j = y_i} exp(-D_ij) per row, with the
    diagonal term exp(-D_ii) = 1 added exactly (it was masked out of the tiles)."""
    zero = torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device)
    total = torch.logaddexp(acc.log_total(), zero) - math.log(comp.n)
    by_class = None
    if labels is not None:
        own = labels[rows]
        by_class = torch.logaddexp(acc.log_class(own), zero) - class_counts[own].log()
    return total, by_class


def _mask_tile(tile: torch.Tensor, comp: Components, rows: torch.Tensor, c0: int, c1: int) -> None:
    """Different zero patterns -> disjoint supports -> D = inf; the diagonal is handled apart."""
    if comp.n_patterns > 1:
        tile.masked_fill_(comp.pattern[rows][:, None] != comp.pattern[None, c0:c1], float("-inf"))
    inside = (rows >= c0) & (rows < c1)
    if bool(inside.any()):
        index = torch.arange(rows.shape[0], device=rows.device)
        tile[index[inside], rows[inside] - c0] = float("-inf")


def pairwise_bounds(
    comp: Components,
    *,
    labels: torch.Tensor | None = None,
    chunk_rows: int | None = None,
    pair_block: int | None = None,
    shard: Shard | None = None,
) -> dict[str, float]:
    """Kolchinsky-Tracey bounds on h(Z) of the N-component mixture (and on h(Z|Y)).

    KL: components are processed chunk_rows at a time against column tiles of all N components.
    Bhattacharyya: square blocks of pair_block components (default: sqrt(TILE_ELEMENTS / d)),
    each unordered pair of blocks once.
    Returns a dict with float nats: 'h_lower' (Bhattacharyya), 'h_upper' (KL) and, with labels
    (N int64 class indices), 'h_given_y_lower' and 'h_given_y_upper' for the class-conditional
    mixtures weighted by p(y) = n_y / N.
    shard: split the work over a torch.distributed group (infodrop.mi.shard): rank r takes the
    KL row chunks and the Bhattacharyya block pairs whose index is r modulo the world size;
    per-row results are summed and the partial log-sum-exp states merged, so every rank
    returns the same numbers (equal to one process's to rounding).
    """
    classes = _Classes.of(labels)
    mine = (lambda index: True) if shard is None else (lambda index: index % shard.world == shard.rank)
    upper, upper_c = _kl_rows(comp, classes, chunk_rows, mine, shard)
    lower, lower_c = _bhattacharyya_rows(comp, classes, pair_block, mine, shard)
    mean_entropy = float(comp.entropy.mean())
    out = {"h_upper": mean_entropy - float(upper.mean()), "h_lower": mean_entropy - float(lower.mean())}
    if labels is not None:
        out["h_given_y_upper"] = mean_entropy - float(upper_c.mean())
        out["h_given_y_lower"] = mean_entropy - float(lower_c.mean())
    return out


@dataclass(frozen=True)
class _Classes:
    """The labels (N class indices, or None), their one-hot matrix (N x C, float64) and counts."""

    labels: torch.Tensor | None
    onehot: torch.Tensor | None
    counts: torch.Tensor | None
    n_classes: int

    @classmethod
    def of(cls, labels: torch.Tensor | None) -> "_Classes":
        if labels is None:
            return cls(None, None, None, 0)
        n_classes = int(labels.max()) + 1
        onehot = torch.nn.functional.one_hot(labels, n_classes).to(torch.float64)
        return cls(labels, onehot, onehot.sum(0), n_classes)

    def columns(self, c0: int, c1: int) -> torch.Tensor | None:
        return self.onehot[c0:c1] if self.onehot is not None else None


def _kl_rows(comp: Components, classes: _Classes, chunk_rows: int | None, mine: Callable[[int], bool],
             shard: Shard | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per component i: log (1/N) sum_j exp(-KL(p_i || p_j)) and its class-conditional form
    (None without labels), from row chunks against column tiles, summed over the ranks."""
    n, v, device = comp.n, comp.variance, comp.features.device
    f, r, sum_la = comp.features, comp.inverse, comp.log_abs.sum(1)
    chunk_rows = min(DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows, n)
    # KL via products: -D_ij = [f_i^2, f_i] . [-(1+1/v)/2 r_j^2, r_j/v] + row_i + col_j.
    kl_right = torch.cat([r.square() * (-0.5 * (1 + 1 / v)), r * (1 / v)], dim=1).t().contiguous()
    kl_left = torch.cat([f.square(), f], dim=1)
    kl_row = sum_la - 0.5 * comp.nonzero * (1 / v - 1)
    kl_col = -sum_la
    kl_cols = column_tile(chunk_rows, n)
    upper = torch.zeros(n, dtype=torch.float64, device=device)
    upper_c = torch.zeros(n, dtype=torch.float64, device=device) if classes.labels is not None else None
    for index, start in enumerate(range(0, n, chunk_rows)):
        if not mine(index):
            continue
        stop = min(n, start + chunk_rows)
        rows = torch.arange(start, stop, device=device)
        acc = OnlineLogSumExp(stop - start, classes.n_classes, device)
        for c0 in range(0, n, kl_cols):
            c1 = min(n, c0 + kl_cols)
            tile = torch.addmm(kl_col[c0:c1], kl_left[start:stop], kl_right[:, c0:c1])
            tile.add_(kl_row[start:stop, None])
            _mask_tile(tile, comp, rows, c0, c1)
            acc.update(tile, classes.columns(c0, c1))
        total, by_class = _finish_rows(acc, comp, rows, classes.labels, classes.counts)
        upper[start:stop] = total
        if by_class is not None:
            upper_c[start:stop] = by_class
    if shard is not None:
        all_sum(upper)
        if upper_c is not None:
            all_sum(upper_c)
    return upper, upper_c


def _bhattacharyya_rows(comp: Components, classes: _Classes, pair_block: int | None, mine: Callable[[int], bool],
                        shard: Shard | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per component i: log (1/N) sum_j exp(-D_B(p_i, p_j)) and its class-conditional form (None
    without labels). D_B is symmetric: each unordered pair of square blocks is computed once and
    feeds the online log-sum-exp of both its row block and (transposed) its column block."""
    n, d, v, device = comp.n, comp.d, comp.variance, comp.features.device
    sum_la = comp.log_abs.sum(1)
    # -D_ij = -sum_k g(q_ijk) + row_i + col_j (see _bhattacharyya_tile).
    b_row = -comp.nonzero * (0.25 / v - 0.5 * math.log(2)) + 0.5 * sum_la
    b_col = -0.5 * sum_la
    side = pair_block if pair_block is not None else int(math.sqrt(TILE_ELEMENTS / max(1, d)))
    side = max(1, min(n, side))
    starts = list(range(0, n, side))
    f_t, r_t = comp.features.t().contiguous(), comp.inverse.t().contiguous()
    work = _BhattacharyyaWorkspace(d, side, side, device)
    accs = [OnlineLogSumExp(min(n, a + side) - a, classes.n_classes, device) for a in starts]
    pair_index = -1
    for bi, a0 in enumerate(starts):
        a1 = min(n, a0 + side)
        rows_a = torch.arange(a0, a1, device=device)
        for bj in range(bi, len(starts)):
            pair_index += 1
            if not mine(pair_index):
                continue
            c0 = starts[bj]
            c1 = min(n, c0 + side)
            tile = _bhattacharyya_tile(f_t[:, a0:a1], r_t[:, c0:c1], v, work)
            tile.neg_().add_(b_row[a0:a1, None]).add_(b_col[None, c0:c1])
            mirrored = tile.t().clone() if bj != bi else None
            _mask_tile(tile, comp, rows_a, c0, c1)
            accs[bi].update(tile, classes.columns(c0, c1))
            if mirrored is not None:
                _mask_tile(mirrored, comp, torch.arange(c0, c1, device=device), a0, a1)
                accs[bj].update(mirrored, classes.columns(a0, a1))
    if shard is not None:
        _merge_accumulators(accs)
    finished = [_finish_rows(acc, comp, torch.arange(a0, min(n, a0 + side), device=device), classes.labels, classes.counts)
                for a0, acc in zip(starts, accs)]
    lower = torch.cat([total for total, _ in finished])
    lower_c = torch.cat([by_class for _, by_class in finished]) if classes.labels is not None else None
    return lower, lower_c


def _merge_accumulators(accs: list[OnlineLogSumExp]) -> None:
    """Merge the ranks' partial states of all row blocks with one MAX and one SUM per kind."""
    sizes = [acc.top.shape[0] for acc in accs]
    top = torch.cat([acc.top for acc in accs])
    total = torch.cat([acc.total for acc in accs])
    sums = [total]
    by_class = None
    if accs[0].by_class is not None:
        by_class = torch.cat([acc.by_class for acc in accs])
        sums.append(by_class)
    merge_logsumexp(top, sums)
    for acc, part_top, part_total, part_class in zip(
        accs, top.split(sizes), total.split(sizes), by_class.split(sizes) if by_class is not None else [None] * len(accs)
    ):
        acc.top, acc.total = part_top, part_total
        if part_class is not None:
            acc.by_class = part_class


class _BhattacharyyaWorkspace:
    """Three preallocated d x rows x cols buffers: fresh multi-MiB temporaries per tile cost page
    faults that made the tile several times slower on CPU."""

    def __init__(self, d: int, rows: int, cols: int, device: torch.device):
        size = d * rows * cols
        self.buffers = [torch.empty(size, dtype=torch.float64, device=device) for _ in range(3)]

    def views(self, d: int, rows: int, cols: int) -> list[torch.Tensor]:
        return [b[: d * rows * cols].view(d, rows, cols) for b in self.buffers]


def _bhattacharyya_tile(f_rows_t: torch.Tensor, r_cols_t: torch.Tensor, v: float, work: _BhattacharyyaWorkspace) -> torch.Tensor:
    """sum_k g(q_ijk) for q = f_ik / f_jk: rows x cols float64 (f_rows_t: d x rows, r_cols_t: d x cols).

    Per unit D_B = g(q) + 1/(4v) - (1/2) log 2 - (1/2)(log|f_ik| - log|f_jk|), with
    g(q) = (1/2) log1p(q^2) - q / (2 v (1 + q^2)); units that are zero in both (same pattern)
    have q = 0 under the convention 1/0 := 0 and g(0) = 0, so only nonzero units enter the
    constant (b_row, b_col in pairwise_bounds). Unit-major layout: the sum over units adds
    contiguous planes.
    """
    d, rows = f_rows_t.shape
    cols = r_cols_t.shape[1]
    q, q2, g = work.views(d, rows, cols)
    torch.mul(f_rows_t[:, :, None], r_cols_t[:, None, :], out=q)
    torch.mul(q, q, out=q2)
    torch.log1p(q2, out=g)
    q.div_(q2.add_(1.0))
    g.sub_(q, alpha=1.0 / v)
    return g.sum(0).mul_(0.5)


def ledoit_wolf(samples: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Ledoit-Wolf shrunk covariance of ``samples`` (n x p): returns (p x p covariance, shrinkage).

    Same estimator as ``sklearn.covariance.LedoitWolf().fit(samples)`` (samples centred by their
    mean, empirical covariance with 1/n, target mu * I with mu = trace / p).
    """
    x = samples.to(torch.float64)
    stats = _LedoitWolfStats(x.shape[1], x.device)
    stats.add(x - x.mean(0))
    return stats.finish()


class _LedoitWolfStats:
    """Streaming sums for Ledoit-Wolf on data shifted by a fixed vector c (y = z - c).

    With x = y - delta, delta = mean(y), all sums needed by Ledoit-Wolf follow from
    sum y, sum y y^T, sum |y|^4 and sum |y|^2 y, so one pass over the data suffices; choosing c
    close to the mean (the mixture mean) keeps delta small and the correction well conditioned.
    """

    def __init__(self, p: int, device: torch.device):
        self.count = 0
        self.sum_y = torch.zeros(p, dtype=torch.float64, device=device)
        self.sum_yy = torch.zeros(p, p, dtype=torch.float64, device=device)
        self.sum_y4 = 0.0
        self.sum_y2y = torch.zeros(p, dtype=torch.float64, device=device)

    def add(self, y: torch.Tensor) -> None:
        sq = y.square().sum(1)
        self.count += y.shape[0]
        self.sum_y += y.sum(0)
        self.sum_yy += y.t() @ y
        self.sum_y4 += float(sq.square().sum())
        self.sum_y2y += sq @ y

    def finish(self) -> tuple[torch.Tensor, float]:
        n = self.count
        p = self.sum_y.shape[0]
        delta = self.sum_y / n
        c = float(delta @ delta)
        scatter = self.sum_yy - n * torch.outer(delta, delta)  # sum x x^T
        emp_cov = scatter / n
        # sum_k |x_k|^4 with x = y - delta, expanded in the accumulated sums.
        sum_a = float(torch.trace(self.sum_yy))
        b2 = float(delta @ self.sum_yy @ delta)
        sum_x4 = self.sum_y4 + 4 * b2 + n * c * c - 4 * float(self.sum_y2y @ delta) + 2 * c * sum_a - 4 * n * c * c
        mu = float(torch.trace(emp_cov)) / p
        delta_sq = float(emp_cov.square().sum())  # |S|_F^2
        # Ledoit & Wolf (2004) Lemma 3.3-3.4, in sklearn's normalisation.
        beta_ = (sum_x4 / n - delta_sq) / (p * n)
        dist = (delta_sq - 2 * mu * float(torch.trace(emp_cov)) + p * mu * mu) / p
        beta_ = min(beta_, dist)
        shrinkage = 0.0 if dist == 0 else beta_ / dist
        shrunk = (1 - shrinkage) * emp_cov
        shrunk.diagonal().add_(shrinkage * mu)
        return shrunk, shrinkage


def gaussian_entropy(cov: torch.Tensor) -> float:
    """Entropy (nats) of a Gaussian with covariance ``cov`` (p x p); -inf for a singular or
    indefinite matrix (the caller decides what to report)."""
    p = cov.shape[0]
    sign, logdet = torch.linalg.slogdet(cov)
    if float(sign) <= 0:
        return float("-inf")
    return 0.5 * p * math.log(2 * math.pi * math.e) + 0.5 * float(logdet)


def gaussian_upper_bound(comp: Components, noise_samples: int, seed: int, *, chunk_rows: int) -> float | None:
    """Entropy of a Gaussian with the Ledoit-Wolf covariance of the Z samples (nats).

    With several zero patterns: H(B) + sum_b p(b) U_b, where U_b is the Ledoit-Wolf Gaussian
    entropy of the samples of pattern b on its nonzero units, or the exact component entropy
    when only one input has pattern b (its conditional law is that Gaussian). Returns None when
    a covariance is singular (too few samples for some pattern).
    """
    n, d, s = comp.n, comp.d, noise_samples
    device = comp.features.device
    noise = NoiseSource(n, d, s, seed, device)
    per_chunk = max(1, chunk_rows // s)
    if comp.n_patterns == 1:
        stats = _LedoitWolfStats(d, device)
        shift = comp.features.mean(0)
        for start in range(0, n, per_chunk):
            stop = min(n, start + per_chunk)
            z = samples_from_noise(comp, start, stop, noise.eps(start, stop), s)
            stats.add(z - shift)
        cov, _ = stats.finish()
        h = gaussian_entropy(cov)
        return h if math.isfinite(h) else None
    counts = comp.pattern_counts
    p_b = counts.to(torch.float64) / n
    h_pattern = float(-(p_b * p_b.log()).sum())
    total = 0.0
    singles = counts[comp.pattern] == 1
    total += float(comp.entropy[singles].sum()) / n
    shared = torch.nonzero(~singles)[:, 0]
    if shared.numel():
        # Materialise Z only for inputs whose pattern is shared, grouped by pattern.
        zs = []
        for start in range(0, n, per_chunk):
            stop = min(n, start + per_chunk)
            keep = ~singles[start:stop]
            if not bool(keep.any()):
                continue
            z = samples_from_noise(comp, start, stop, noise.eps(start, stop), s)
            zs.append(z[keep.repeat_interleave(s)])
        z_shared = torch.cat(zs)
        pattern_rows = comp.pattern[shared].repeat_interleave(s)
        for b in torch.unique(pattern_rows).tolist():
            rows = z_shared[pattern_rows == b]
            first = int(torch.nonzero(comp.pattern == b)[0, 0])
            units = comp.features[first] != 0
            if int(units.sum()) == 0:
                continue  # all-zero pattern: a point mass, entropy 0 on the 0-dimensional stratum
            cov, _ = ledoit_wolf(rows[:, units])
            h = gaussian_entropy(cov)
            if not math.isfinite(h):
                return None
            total += float(counts[b]) / n * h
    return h_pattern + total
