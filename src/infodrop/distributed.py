"""The torchrun environment and the one owner of the process group.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; with them the same command runs on
one device or on many (as nanoGPT's ``train.py``). Everything that asks "am I distributed, which
rank, which GPU" reads it through this module, and :func:`process_group` is the only code that
starts or ends a ``torch.distributed`` process group: :func:`infodrop.engine.fit` holds one for a
training run, and the command line holds one for all the jobs of a command, so a sweep reuses the
group instead of re-creating it for every job on the same rendezvous port (which can hang). An
inner holder finds the group already there and leaves it alone.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
from typing import Any, Iterator

import torch
import torch.distributed as dist

from infodrop.checks import resolve_device

__all__ = [
    "PROCESS_GROUP_TIMEOUT",
    "check_local_rank_has_a_gpu",
    "ddp_info",
    "is_distributed",
    "is_main_process",
    "process_group",
    "training_device",
]

# Rank 0 may spend a long time in epoch hooks (mutual-information estimates) while the other
# ranks wait in the next collective; torch's default collective timeout (10 min) is too short.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(hours=2)


def is_distributed() -> bool:
    """True under torchrun (``RANK`` is set), whatever the number of processes."""
    return "RANK" in os.environ


def ddp_info() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the environment torchrun sets; ``(0, 0, 1)`` without it."""
    if not is_distributed():
        return 0, 0, 1

    def read(name: str, default: int) -> int:
        text = os.environ.get(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"environment variable {name}={text!r} is not an integer; launch with torchrun") from None

    rank = read("RANK", 0)
    world_size = read("WORLD_SIZE", 1)
    local_rank = read("LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(
            f"inconsistent torchrun environment RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world_size}; "
            "need 0 <= RANK < WORLD_SIZE"
        )
    return rank, local_rank, world_size


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or the only process: the one that prints and writes files."""
    return ddp_info()[0] == 0


def check_local_rank_has_a_gpu(local_rank: int) -> None:
    """Under torchrun each process of a node takes GPU ``LOCAL_RANK``; refuse clearly when the node
    has fewer GPUs than processes (CUDA's own message is "invalid device ordinal")."""
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ValueError(
            f"torchrun started process LOCAL_RANK={local_rank} but this machine has {count} GPU(s), one per "
            f"process; use torchrun --nproc_per_node={count} (or fewer), or train on CPU processes with device=cpu"
        )


def training_device(device: Any = None) -> torch.device:
    """The device this process trains on, made the current CUDA device when it is a GPU.

    ``device=None`` means CUDA if available, else the CPU; under torchrun with CUDA it is GPU
    ``LOCAL_RANK`` (refused by name when the node has too few GPUs).
    """
    if device is None and is_distributed() and torch.cuda.is_available():
        local_rank = ddp_info()[1]
        check_local_rank_has_a_gpu(local_rank)
        device = f"cuda:{local_rank}"
    device = resolve_device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


@contextlib.contextmanager
def process_group(*, cuda: bool) -> Iterator[bool]:
    """Hold a process group for the block under torchrun; a no-op without torchrun.

    Starts one (NCCL when ``cuda``, one GPU per process, else gloo) unless one exists already,
    and destroys it at the end only if it started it. Yields whether it started the group. A
    holder of DDP models must drop them before the block ends: a DDP reducer freed after the
    group is destroyed can block the process at exit.
    """
    started = False
    if is_distributed() and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=PROCESS_GROUP_TIMEOUT)
        started = True
    try:
        yield started
    finally:
        if started and dist.is_initialized():
            gc.collect()  # reducers of dropped DDP wrappers go while the group still exists
            dist.destroy_process_group()
