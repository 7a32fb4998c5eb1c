"""Figures that are not plane figures: the KL heat maps of information dropout (Achille & Soatto,
TPAMI 2018, Section 8, Fig. 3). Values are in nats.

The public plane figures live in :mod:`infodrop.plane.figures` and are importable from here too,
as the README calls them (``infodrop.plots.plot_information_plane``); the toy problem's figures
live beside the toy experiment (:mod:`infodrop.experiments.toy_figures`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infodrop.io import atomic_path
from infodrop.plane.figures import (
    plot_bin_sweep,
    plot_binning_planes,
    plot_information_plane,
    plot_plane_comparison,
    plot_plane_figures,
    plot_subset_planes,
)
from infodrop.plane.panels import agg_figure

__all__ = ["CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "plot_bin_sweep", "plot_binning_planes", "plot_information_plane",
           "plot_kl_maps", "plot_kl_maps_file", "plot_plane_comparison", "plot_plane_figures", "plot_subset_planes"]

# Where in the image information dropout lets information through.

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _display(picture: np.ndarray) -> tuple[np.ndarray, str | None]:
    """One C x H x W image as imshow wants it (H x W grey or H x W x 3, scaled to [0, 1])."""
    picture = picture.transpose(1, 2, 0)
    low, high = picture.min(), picture.max()
    picture = (picture - low) / (high - low) if high > low else np.zeros_like(picture)
    return (picture[:, :, 0], "gray") if picture.shape[2] == 1 else (picture, None)


def _check_kl_inputs(images: np.ndarray, labels: np.ndarray, maps: list, raw_images: Any,
                     class_names: Sequence[str] | None) -> np.ndarray | None:
    """Validate plot_kl_maps' arguments at the door; returns the unwhitened images or None."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape N x C x H x W with C = 1 or 3, got {images.shape}")
    if len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries for {len(images)} images; pass one label per image")
    for index, kl_map in enumerate(maps):
        if kl_map.ndim != 3 or len(kl_map) != len(images):
            raise ValueError(f"kl_maps[{index}] must have shape N x h x w with N = {len(images)}, got {kl_map.shape}")
    if class_names is not None and (isinstance(class_names, str) or any(int(label) >= len(class_names) for label in labels)):
        raise ValueError(f"class_names must name every label (0..{int(np.max(labels))}); got {class_names!r}")
    if raw_images is None:
        return None
    raw = np.asarray(raw_images, dtype=np.float32)
    if raw.ndim != 4 or len(raw) != len(images) or raw.shape[1] not in (1, 3):
        raise ValueError(f"raw_images must have shape N x C x H x W with N = {len(images)}, got {raw.shape}")
    return raw


def plot_kl_maps(
    images: Any,
    labels: Sequence[int],
    kl_maps: Sequence[Any],
    out_dir: str | os.PathLike,
    *,
    prefix: str = "kl",
    class_names: Sequence[str] | None = None,
    shared_scale: bool = False,
    raw_images: Any = None,
) -> list[Path]:
    """One PNG ``<out_dir>/<prefix>_<j>.png`` per image j: the input beside one heat map per layer.

    ``images``: N x C x H x W, what the network sees (C = 1 grey, 3 colour; scaled to [0, 1] per
    image for display); ``labels``: N integer classes, shown by name with ``class_names``;
    ``kl_maps``: one array per information-dropout layer, N x h x w, the per-location KL
    ``InformationDropout.kl_map`` (nats summed over channels at each location). ``raw_images``:
    the same images before whitening (N x C x H x W), drawn first when given, so that a reader
    sees the object as well as the whitened input. Colour scales are per panel, or one scale for
    every layer of an image with ``shared_scale`` (then the layers' KL can be compared; the
    original subtracts each layer's minimum, which changes nothing under a per-panel scale).
    Returns the paths written.
    """
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    maps = [np.asarray(kl_map, dtype=np.float32) for kl_map in kl_maps]
    raw = _check_kl_inputs(images, labels, maps, raw_images, class_names)
    out_dir = Path(out_dir)
    written = []
    pictures = ([(raw, "image")] if raw is not None else []) + [
        (images, "whitened input (what the network sees)" if raw is not None else "input")]
    for j in range(len(images)):
        figure = agg_figure(figsize=(2.6 * (len(pictures) + len(maps)), 3.0), layout="constrained")
        axes = figure.subplots(1, len(pictures) + len(maps), squeeze=False)[0]
        name = class_names[int(labels[j])] if class_names is not None else f"label {int(labels[j])}"
        for ax, (source, title) in zip(axes, pictures):
            shown, cmap = _display(source[j])
            ax.imshow(shown, cmap=cmap, interpolation="none")
            ax.set_title(f"{title}\n{name}", fontsize=8)
        # One colour scale for every layer: from 0 (no information let through) to the largest value.
        top = max(float(kl_map[j].max()) for kl_map in maps) if shared_scale and maps else None
        for i, kl_map in enumerate(maps):
            ax = axes[len(pictures) + i]
            shown = ax.imshow(kl_map[j], cmap="Blues", interpolation="none",
                              vmin=0.0 if shared_scale else None, vmax=top)
            ax.set_title(f"KL, dropout layer {i + 1}", fontsize=8)
            if not shared_scale:
                bar = figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
                bar.set_label("KL per location [nats]", fontsize=8)
        if shared_scale and maps:
            # one bar beside all the maps, which it shrinks alike, so that they keep one size
            bar = figure.colorbar(shown, ax=list(axes[len(pictures):]), fraction=0.046, pad=0.02)
            bar.set_label("KL per location [nats], all layers", fontsize=8)
        for ax in axes:
            ax.axis("off")
        target = out_dir / f"{prefix}_{j}.png"
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
        written.append(target)
    return written


def plot_kl_maps_file(path: str | os.PathLike, out_dir: str | os.PathLike, **options: Any) -> list[Path]:
    """:func:`plot_kl_maps` from the ``kl_maps.npz`` that ``infodrop cifar plot`` and ``infodrop
    cluttered plot`` write beside their figures (``images``, ``labels``, ``kl_0``, ``kl_1``, ...;
    optionally ``raw_images``); ``options`` as for plot_kl_maps."""
    from infodrop.io import load_npz

    arrays = load_npz(path)
    maps = [arrays[f"kl_{index}"] for index in range(sum(key.startswith("kl_") for key in arrays))]
    if "raw_images" in arrays:
        options.setdefault("raw_images", arrays["raw_images"])
    return plot_kl_maps(arrays["images"], arrays["labels"], maps, out_dir, **options)
