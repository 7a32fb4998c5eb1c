"""Splitting the mixture estimate over the ranks of a torch.distributed process group.

The expensive part of :func:`infodrop.mi.gaussian_dropout_mi` scores the M = N * S samples of Z
against all N components. Rows are independent, so rank r of W scores the samples of a
contiguous range of inputs (:func:`input_range`) against all components, and the per-row results
are assembled on every rank by a float64 sum all_reduce of zero-padded full-length vectors
(:func:`gather_rows`): each entry has exactly one nonzero contribution, so the sum is exact and
every rank holds the same bits as one process that scored all rows. The noise of input i depends
only on the seed and i (infodrop.mi.mixture.NoiseSource), so the split does not change it.

The Kolchinsky-Tracey bounds visit pairs of components; their partial log-sum-exp statistics
(running maximum and sum of exp(value - maximum) per row) are merged with a MAX and a SUM
all_reduce (:func:`merge_logsumexp`), which agrees with one process to rounding.

Works with any backend whose tensors live on the estimator's device: gloo for CPU tensors,
NCCL for CUDA tensors (the caller sets the rank's CUDA device, as under torchrun).
"""

from __future__ import annotations

import torch

__all__ = ["Shard", "check_distributed", "input_range", "gather_rows", "all_sum", "merge_logsumexp"]


class Shard:
    """This process's place in the group: rank and world size."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    def __repr__(self) -> str:
        return f"Shard(rank={self.rank}, world={self.world})"


def check_distributed(distributed: bool) -> Shard | None:
    """Return the :class:`Shard` for ``distributed=True`` (None for False); ValueError naming
    ``distributed`` when no process group is initialised."""
    if not isinstance(distributed, bool):
        raise ValueError(f"distributed must be True or False, got {distributed!r}")
    if not distributed:
        return None
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "distributed=True needs an initialised torch.distributed process group "
            "(torch.distributed.init_process_group, e.g. under torchrun); pass distributed=False otherwise"
        )
    return Shard(dist.get_rank(), dist.get_world_size())


def input_range(n: int, shard: Shard | None) -> tuple[int, int]:
    """Contiguous inputs [start, stop) of this rank: sizes differ by at most one."""
    if shard is None:
        return 0, n
    base, extra = divmod(n, shard.world)
    start = shard.rank * base + min(shard.rank, extra)
    return start, start + base + (1 if shard.rank < extra else 0)


def gather_rows(local: torch.Tensor, start: int, total: int) -> torch.Tensor:
    """The full float64 vector of ``total`` rows from each rank's rows start..start+len-1."""
    full = torch.zeros(total, dtype=torch.float64, device=local.device)
    full[start : start + local.shape[0]] = local
    torch.distributed.all_reduce(full, op=torch.distributed.ReduceOp.SUM)
    return full


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over the ranks (in place; returned for convenience)."""
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor


def merge_logsumexp(top: torch.Tensor, sums: list[torch.Tensor]) -> None:
    """Merge online log-sum-exp states over the ranks, in place.

    top: R running maxima (-inf where a rank saw nothing); sums: tensors whose first dimension
    is R, each holding sums of exp(value - top). Afterwards every rank holds the global maximum
    and the sums rescaled to it and added: sum_r s_r exp(top_r - top).
    """
    dist = torch.distributed
    global_top = top.clone()
    dist.all_reduce(global_top, op=dist.ReduceOp.MAX)
    finite = torch.isfinite(global_top)
    safe_global = torch.where(finite, global_top, torch.zeros_like(global_top))
    safe_local = torch.where(torch.isfinite(top), top, safe_global)
    scale = torch.exp(safe_local - safe_global)
    for tensor in sums:
        tensor.mul_(scale.reshape(-1, *([1] * (tensor.ndim - 1))))
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    top.copy_(global_top)
