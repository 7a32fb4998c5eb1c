"""Seeds: the global generators of a process, the streams derived from one seed, and the draw
that keeps a seed's batch order what it was in earlier versions.

A training run has one ``seed`` (an integer in [0, 2**32 - 1]); :func:`derived_seed` gives each
rank and each use (initialisation and noise, augmentation) a stream of its own, so the dropout
noise never replays the draws that initialised the weights.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader

from infodrop.checks import check_seed

__all__ = ["derived_seed", "draw_unused_base_seed", "set_seed"]


def set_seed(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device),
    and make torch choose deterministic algorithms (warning, not failing, where none exists).

    ``seed`` is an integer in [0, 2**32 - 1] (numpy's range).
    """
    seed = check_seed(seed, "seed")
    # cuBLAS is only deterministic with a fixed workspace; it reads this when CUDA starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device as well
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def derived_seed(seed: int, rank: int, stream: int) -> int:
    """A 32-bit seed for one named stream of one rank, well mixed so that it is not ``seed``
    itself: the dropout noise must not replay the draws that initialised the weights."""
    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1)[0])


def draw_unused_base_seed(loader: DataLoader) -> None:
    """Draw from the loader's generator the number an unused iterator of it drew in earlier versions.

    Every DataLoader iterator draws one int64 base seed from the loader's generator as it is
    created. Until the epoch loop stopped handing the loader to tqdm.auto's bar, that bar
    (tqdm.asyncio) created an iterator at construction that was never used, besides the one the
    loop read: two draws per epoch before the permutation. The extra draw is kept, without the
    iterator (which with ``num_workers > 0`` started worker processes), so that a seed still
    gives the batch order, and the checkpointed generator state, that it gave before.
    """
    torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
