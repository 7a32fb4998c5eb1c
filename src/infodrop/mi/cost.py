"""What a Gaussian-dropout mixture estimate will cost, before running it.

:func:`infodrop.mi.gaussian_dropout_mi` scores M = N * S samples of Z against all N components:
N^2 S pairs, each two short dot products (4d FLOPs) and one exponential. The pairwise bounds
visit N^2 component pairs once more (the Bhattacharyya half costs O(d) elementwise work per
pair). :func:`mixture_cost` counts the pairs exactly and, with ``calibrate=True``, times one
short pass of the same code on the device (random features of the same width d, full-width
column tiles) and extrapolates linearly in the number of pairs. It is an estimate, not a
promise: on a CPU shared with other work the rate changes with the load, and the O(N S d^2)
Gaussian bound, the transfer of the features and start-up are not counted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from infodrop.checks import check_int, resolve_device
from infodrop.mi.bounds import pairwise_bounds
from infodrop.mi.mixture import TILE_ELEMENTS, default_chunk_rows, mixture_pass, prepare_components
from infodrop.mi.mixture import resolve_dtype as _resolve_dtype

__all__ = ["MixtureCost", "mixture_cost"]

# Pairs timed by a calibration pass: ~0.1-0.3 s on one CPU core at d = 32, ~0.1 s on a GPU.
CALIBRATION_PAIRS = {"cpu": 1 << 23, "cuda": 1 << 32}
# Components in the calibration (enough for full-width column tiles on each device).
CALIBRATION_COMPONENTS = {"cpu": 4096, "cuda": 65536}
BOUND_CALIBRATION_COMPONENTS = {"cpu": 1536, "cuda": 8192}


@dataclass(frozen=True)
class MixtureCost:
    """Pairs and expected seconds of one gaussian_dropout_mi call.

    pairs: N * S * N samples-by-components of the Monte Carlo pass (all ranks together).
    bound_pairs: N * N component pairs of the pairwise bounds (0 with bounds=False).
    seconds: expected wall time of the call per rank (pairs / world_size / rate), None without
    calibration. pairs_per_second: the calibrated rate of the Monte Carlo pass;
    bound_pairs_per_second: of the Bhattacharyya pass, per pair it evaluates (each unordered
    pair of blocks once, about N^2 / 2); None without calibration or bounds.
    """

    n: int
    d: int
    noise_samples: int
    world_size: int
    device: str
    dtype: str
    pairs: int
    bound_pairs: int
    seconds: float | None = None
    pairs_per_second: float | None = None
    bound_pairs_per_second: float | None = None

    def __str__(self) -> str:
        text = (
            f"mixture estimate: N={self.n:,} inputs x S={self.noise_samples} samples x N components, "
            f"d={self.d}: {self.pairs:.2e} pairs"
        )
        if self.bound_pairs:
            text += f" + {self.bound_pairs:.2e} bound pairs"
        if self.world_size > 1:
            text += f" over {self.world_size} ranks"
        if self.seconds is not None:
            text += (
                f"; expected ~{format_duration(self.seconds)} on {self.device} ({self.dtype}), "
                f"calibrated at {self.pairs_per_second:.2e} pairs/s"
            )
        return text


def format_duration(
    seconds: float, *, seconds_below: float = 120.0, minutes_below: float = 7200.0, seconds_spec: str = ".1f"
) -> str:
    """A duration for people: seconds (``seconds_spec``) below ``seconds_below``, minutes below
    ``minutes_below``, else hours. The defaults are the cost line's; the plane report passes its own."""
    if seconds < seconds_below:
        return f"{seconds:{seconds_spec}} s"
    if seconds < minutes_below:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _bound_work(n: int, d: int) -> float:
    """Pairs that the Bhattacharyya half of pairwise_bounds evaluates: each unordered pair of
    square blocks of side s once, n (n + s) / 2 in all; it dominates the KL half."""
    side = max(1, min(n, int(math.sqrt(TILE_ELEMENTS / d))))
    return n * (n + side) / 2


def _timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def mixture_cost(
    n: int,
    d: int,
    noise_samples: int = 10,
    *,
    bounds: bool = False,
    n_classes: int = 0,
    world_size: int = 1,
    device: Any = None,
    dtype: Any = None,
    calibrate: bool = False,
) -> MixtureCost:
    """Pairs (exact) and, with ``calibrate``, expected seconds of
    ``gaussian_dropout_mi(features of shape n x d, noise_samples=..., bounds=..., labels with
    n_classes classes, device=..., dtype=...)`` split over ``world_size`` ranks.

    The calibration runs the mixture pass for a few hundred to a few thousand inputs against up
    to 4,096 (CPU) or 65,536 (GPU) components with random features of width d, after one
    untimed warm-up, and the pairwise bounds on up to 768 / 8,192 components when ``bounds``.
    """
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=1)
    noise_samples = check_int(noise_samples, "noise_samples", minimum=1)
    n_classes = check_int(n_classes, "n_classes", minimum=0)
    world_size = check_int(world_size, "world_size", minimum=1)
    if not isinstance(bounds, bool) or not isinstance(calibrate, bool):
        raise ValueError(f"bounds and calibrate must be True or False, got {bounds!r} and {calibrate!r}")
    dev = resolve_device(device)
    block_dtype = _resolve_dtype(dtype, dev)
    pairs = n * noise_samples * n
    bound_pairs = n * n if bounds else 0
    cost = dict(
        n=n, d=d, noise_samples=noise_samples, world_size=world_size, device=str(dev),
        dtype=str(block_dtype).replace("torch.", ""), pairs=pairs, bound_pairs=bound_pairs,
    )
    if not calibrate:
        return MixtureCost(**cost)
    kind = "cuda" if dev.type == "cuda" else "cpu"
    generator = torch.Generator(device=dev).manual_seed(0)
    components = min(n, CALIBRATION_COMPONENTS[kind])
    features = 1.0 + 0.5 * torch.randn(components, d, generator=generator, dtype=torch.float64, device=dev)
    comp = prepare_components(features, 0.5)
    labels = None
    if n_classes:
        labels = torch.arange(components, device=dev) % n_classes
    chunk_rows = default_chunk_rows(n, noise_samples, dev)
    inputs = max(1, min(components, CALIBRATION_PAIRS[kind] // (noise_samples * components)))

    def run(count: int) -> None:
        mixture_pass(comp, noise_samples, 0, chunk_rows=chunk_rows, labels=labels, dtype=block_dtype, inputs=(0, count))

    run(max(1, min(inputs, chunk_rows // noise_samples)))  # warm-up: allocator, kernels, BLAS threads
    rate = inputs * noise_samples * components / _timed(lambda: run(inputs), dev)
    seconds = pairs / world_size / rate
    bound_rate = None
    if bounds:
        bound_components = min(n, BOUND_CALIBRATION_COMPONENTS[kind])
        small = prepare_components(features[:bound_components], 0.5)
        rows = max(1, chunk_rows // noise_samples)
        small_labels = None if labels is None else labels[:bound_components]
        pairwise_bounds(prepare_components(features[:64], 0.5), chunk_rows=rows)  # warm-up
        elapsed = _timed(lambda: pairwise_bounds(small, labels=small_labels, chunk_rows=rows), dev)
        bound_rate = _bound_work(bound_components, d) / elapsed
        seconds += _bound_work(n, d) / world_size / bound_rate
    return MixtureCost(**cost, seconds=seconds, pairs_per_second=rate, bound_pairs_per_second=bound_rate)
