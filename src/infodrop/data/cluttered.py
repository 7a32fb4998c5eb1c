"""Cluttered MNIST: a re-implementation of DeepMind's ``mnist-cluttered`` generator
(https://github.com/deepmind/mnist-cluttered, ``mnist_cluttered.lua``), which Achille & Soatto
used for the 96 x 96 Cluttered MNIST experiment of Information Dropout.

Each example is a blank canvas on which ``distractors`` square crops (``distractor_size`` on a
side, from random positions of other random digits) land at uniformly random positions, and then
one whole digit lands at a uniformly random position fully inside the canvas; its label is the
example's label. As in the Lua code, the digits are taken in the order of a random permutation
(a fresh one each time the source set is exhausted), and distractor crops may overlap the digit.

Combining: the Lua code adds the patches and clips at 1. By default we take the pixelwise
maximum instead (``combine='max'``), which also keeps values in [0, 1] and keeps each patch's
strokes unchanged where it is brightest; ``combine='add'`` reproduces the Lua rule exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from infodrop.checks import check_int
from infodrop.io import remove_temporaries, save_npz

from .errors import data_error
from .idx import load_idx_folder
from .npzfiles import read_image_npz

CLUTTERED_PREPARE_HINT = "run `infodrop cluttered prepare with source=PATH/TO/MNIST_IDX_FOLDER`"
CLUTTERED_FILES = {"train": "cluttered-train.npz", "valid": "cluttered-valid.npz", "test": "cluttered-test.npz"}
_RENDER_CHUNK = 2048


class ClutteredData(NamedTuple):
    """What ``generate_cluttered`` returns.

    images: float32 N x 1 x canvas x canvas in [0, 1]; labels: int64 N; positions: int64 N x 2,
    the (row, column) of the digit's top-left corner on the canvas; sources: int64 N, the index
    of the digit in the source images; distractor_positions: int64 N x distractors x 2, the
    top-left corners of the distractor crops on the canvas.
    """

    images: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    sources: np.ndarray
    distractor_positions: np.ndarray


class _Layout(NamedTuple):
    digit: np.ndarray  # (count,) source index of the labelled digit
    position: np.ndarray  # (count, 2) top-left corner of the digit on the canvas
    source: np.ndarray  # (count, distractors) source index of each distractor
    crop: np.ndarray  # (count, distractors, 2) top-left corner of the crop inside its source
    target: np.ndarray  # (count, distractors, 2) top-left corner of the crop on the canvas


def _check_source(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"images must be single-channel N x 1 x H x W (or N x H x W), got shape {images.shape}")
        images = images[:, 0]
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"images must have shape N x 1 x H x W or N x H x W with N >= 1, got {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}; divide uint8 digits by 255")
    images = images.astype(np.float32, copy=False)
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError("images must be finite and lie in [0, 1]; rescale them (e.g. uint8 / 255) before calling")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} of shape {labels.shape}")
    return images, labels.astype(np.int64)


def _draw_layout(rng: np.random.Generator, count: int, sources: int, digit_shape: tuple[int, int], canvas: int, distractors: int, size: int) -> _Layout:
    height, width = digit_shape
    rounds = -(-count // sources)
    digit = np.concatenate([rng.permutation(sources) for _ in range(rounds)])[:count]
    position = np.stack([rng.integers(0, canvas - height + 1, count), rng.integers(0, canvas - width + 1, count)], axis=1)
    if sources > 1:
        # Draw among the other sources: skip over the labelled digit's own index.
        source = rng.integers(0, sources - 1, (count, distractors))
        source += source >= digit[:, None]
    else:
        source = np.zeros((count, distractors), dtype=np.int64)
    crop = np.stack([rng.integers(0, height - size + 1, (count, distractors)), rng.integers(0, width - size + 1, (count, distractors))], axis=2)
    target = np.stack([rng.integers(0, canvas - size + 1, (count, distractors)) for _ in range(2)], axis=2)
    return _Layout(digit, position.astype(np.int64), source.astype(np.int64), crop.astype(np.int64), target.astype(np.int64))


def _paste(canvas: np.ndarray, patches: np.ndarray, corner: np.ndarray, combine: str) -> None:
    """Combine patches (B x h x w) into canvas (B x S x S) with top-left corners corner (B x 2)."""
    batch, height, width = patches.shape
    rows = corner[:, 0:1] + np.arange(height)
    cols = corner[:, 1:2] + np.arange(width)
    index = (np.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :])
    if combine == "max":
        canvas[index] = np.maximum(canvas[index], patches)
    else:
        canvas[index] = np.minimum(canvas[index] + patches, np.float32(1.0))


def _render(images: np.ndarray, layout: _Layout, start: int, stop: int, canvas: int, size: int, combine: str) -> np.ndarray:
    batch = stop - start
    out = np.zeros((batch, canvas, canvas), dtype=np.float32)
    offsets = np.arange(size)
    for k in range(layout.source.shape[1]):
        source = layout.source[start:stop, k]
        crop = layout.crop[start:stop, k]
        rows = crop[:, 0:1] + offsets
        cols = crop[:, 1:2] + offsets
        patches = images[source[:, None, None], rows[:, :, None], cols[:, None, :]]
        _paste(out, patches, layout.target[start:stop, k], combine)
    _paste(out, images[layout.digit[start:stop]], layout.position[start:stop], combine)
    return out


def _check_options(canvas: int, distractors: int, distractor_size: int, digit_shape: tuple[int, int], combine: str) -> None:
    check_int(canvas, "canvas", minimum=1)
    check_int(distractors, "distractors", minimum=0)
    check_int(distractor_size, "distractor_size", minimum=1)
    if digit_shape[0] > canvas or digit_shape[1] > canvas:
        raise ValueError(f"canvas={canvas} is smaller than the digits ({digit_shape[0]} x {digit_shape[1]}); use canvas >= {max(digit_shape)}")
    if distractor_size > min(digit_shape):
        raise ValueError(f"distractor_size={distractor_size} exceeds the digit size {digit_shape}; crops are taken from digits, use distractor_size <= {min(digit_shape)}")
    if combine not in ("max", "add"):
        raise ValueError(f"combine={combine!r}; use 'max' (pixelwise maximum) or 'add' (sum clipped at 1, as the Lua code)")


def _seed_of(seed: int | np.random.SeedSequence) -> int | np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return check_int(seed, "seed", minimum=0)


def generate_cluttered(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    count: int | None = None,
    canvas: int = 96,
    distractors: int = 8,
    distractor_size: int = 8,
    seed: int | np.random.SeedSequence,
    combine: str = "max",
) -> ClutteredData:
    """Generate ``count`` Cluttered MNIST examples from source digits.

    images: float N x 1 x h x w (or N x h x w) in [0, 1]; labels: int N. ``count`` defaults to N
    (each source digit used once). Returns ``ClutteredData(images, labels, positions, sources,
    distractor_positions)``: images float32 count x 1 x canvas x canvas in [0, 1], labels int64,
    positions int64 count x 2 (row, column of the digit's top-left corner), and the layout
    (see ClutteredData). The same seed gives the same data.
    """
    return _generate(images, labels, count=count, canvas=canvas, distractors=distractors, distractor_size=distractor_size, seed=seed, combine=combine, as_bytes=False)


def _generate(images, labels, *, count, canvas, distractors, distractor_size, seed, combine, as_bytes: bool) -> ClutteredData:
    images, labels = _check_source(images, labels)
    count = len(images) if count is None else check_int(count, "count", minimum=1)
    _check_options(canvas, distractors, distractor_size, images.shape[1:], combine)
    rng = np.random.default_rng(_seed_of(seed))
    layout = _draw_layout(rng, count, len(images), images.shape[1:], canvas, distractors, distractor_size)
    out = np.empty((count, 1, canvas, canvas), dtype=np.uint8 if as_bytes else np.float32)
    for start in range(0, count, _RENDER_CHUNK):
        stop = min(start + _RENDER_CHUNK, count)
        rendered = _render(images, layout, start, stop, canvas, distractor_size, combine)
        out[start:stop, 0] = _to_uint8(rendered) if as_bytes else rendered
    return ClutteredData(out, labels[layout.digit], layout.position, layout.digit, layout.target)


def _to_uint8(images: np.ndarray) -> np.ndarray:
    # Digits read from IDX files are k / 255; max and clipped sums of such values stay on that
    # grid, so storing bytes is lossless and the files are 4 x smaller.
    return np.rint(images * np.float32(255.0)).astype(np.uint8)


def prepare_cluttered(
    source: str | os.PathLike,
    out_dir: str | os.PathLike = "datasets",
    *,
    train_count: int = 50000,
    valid_count: int = 10000,
    test_count: int = 10000,
    canvas: int = 96,
    distractors: int = 8,
    distractor_size: int = 8,
    seed: int = 0,
    combine: str = "max",
    valid_fraction: float = 1 / 6,
    hint: str | None = CLUTTERED_PREPARE_HINT,
) -> dict[str, Path]:
    """Generate Cluttered MNIST from an IDX folder (MNIST or Fashion-MNIST) and write
    ``cluttered-train.npz``, ``cluttered-valid.npz`` and ``cluttered-test.npz`` in ``out_dir``.

    Train and valid digits (and their distractors) come from the IDX training split, divided
    into disjoint source sets by a seeded permutation (``valid_fraction`` of the digits, 10000 of
    MNIST's 60000, go to valid), so no validation digit is seen in training; test digits come
    from the IDX test split. Each file holds ``images`` (uint8 N x 1 x canvas x canvas, pixel
    * 255; ``load_cluttered_npz`` returns float32 in [0, 1]), ``labels`` (int64 N) and
    ``positions`` (int64 N x 2). Returns ``{'train': path, 'valid': path, 'test': path}``.
    Temp files of these three that a killed earlier ``prepare`` left are deleted first.
    """
    for name in CLUTTERED_FILES.values():
        remove_temporaries(out_dir, of=name)
    counts = {
        "train": check_int(train_count, "train_count", minimum=1),
        "valid": check_int(valid_count, "valid_count", minimum=1),
        "test": check_int(test_count, "test_count", minimum=1),
    }
    seed = check_int(seed, "seed", minimum=0)
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must lie in (0, 1), got {valid_fraction!r}")
    splits = load_idx_folder(source, hint=hint)
    digit_shape = splits["train"][0].shape[2:]
    _check_options(canvas, distractors, distractor_size, digit_shape, combine)
    split_seed, *render_seeds = np.random.SeedSequence(seed).spawn(4)
    train_images, train_labels = splits["train"]
    held_out = max(1, int(round(valid_fraction * len(train_images))))
    if held_out >= len(train_images):
        raise data_error(Path(source), f"the training split has only {len(train_images)} digits, too few to hold out a validation set", hint)
    order = np.random.default_rng(split_seed).permutation(len(train_images))
    pools = {
        "train": (train_images[order[held_out:]], train_labels[order[held_out:]]),
        "valid": (train_images[order[:held_out]], train_labels[order[:held_out]]),
        "test": splits["test"],
    }
    written: dict[str, Path] = {}
    for (split, (images, labels)), split_seed_sequence in zip(pools.items(), render_seeds):
        # Rendered straight to bytes chunk by chunk: 50000 float32 canvases would take 1.8 GB.
        data = _generate(
            images, labels, count=counts[split], canvas=canvas, distractors=distractors,
            distractor_size=distractor_size, seed=split_seed_sequence, combine=combine, as_bytes=True,
        )
        written[split] = save_npz(Path(out_dir) / CLUTTERED_FILES[split], images=data.images, labels=data.labels, positions=data.positions)
    return written


def load_cluttered_npz(
    path: str | os.PathLike, *, with_positions: bool = False, hint: str | None = CLUTTERED_PREPARE_HINT
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Load a Cluttered MNIST npz: images float32 N x 1 x H x W in [0, 1], labels int64 N
    (and, with ``with_positions``, positions int64 N x 2, or None when the file has none).

    Two layouts are recognised:
    - ours (``prepare_cluttered``): ``images`` (uint8 or float) N x 1 x H x W, ``labels``,
      ``positions``;
    - the original authors' (``cluttered.py`` reads ``data`` and ``labels`` and reshapes data to
      N x 96 x 96 x 1; the labels are fed as one-hot rows): ``data`` N x H x W x 1, N x H x W or
      flat N x H*W, and ``labels`` one-hot or integer.
    Anything else raises DataError naming the keys found.
    """
    path = Path(path)
    # Any square canvas (prepare's canvas= sets it; the network ends in a global mean), 10 digits.
    arrays, images, labels = read_image_npz(path, hint, channels=1, original="original cluttered.py", classes=10)
    if not with_positions:
        return images, labels
    positions = arrays.get("positions")
    if positions is not None and (positions.shape != (len(images), 2) or not np.issubdtype(positions.dtype, np.integer)):
        raise data_error(path, f"array 'positions' has shape {positions.shape} and dtype {positions.dtype}; expected integers N x 2", hint)
    return images, labels, None if positions is None else positions.astype(np.int64)


__all__ = ["CLUTTERED_FILES", "CLUTTERED_PREPARE_HINT", "ClutteredData", "generate_cluttered", "load_cluttered_npz", "prepare_cluttered"]
