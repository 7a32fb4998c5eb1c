"""Information planes of dropout networks on MNIST-like data (Adilova, Geiger & Fischer, ICLR 2023,
Section 5, Figs. 1, 5, 11, 12, 14, 15; the reference code's ``mi_mnist_dropout.py``).

Networks: the fully connected 784-512-128-32-10 softplus network (``model=fc``) with dropout on the
32-unit layer, or LeNet (``model=lenet``) with dropout on its penultimate (84-unit) layer. Dropout
kinds: ``gaussian`` (multiplicative N(1, variance) noise), ``information`` (log-normal prior with
softplus; the KL term weighted by beta / N_train, as the reference code) and ``binary``.
Training defaults are the reference code's: SGD lr 0.1, momentum 0.9, weight decay 1e-3, cosine
schedule, batch 256, 200 epochs; the plane is recorded every ``plane_every`` (2) epochs.

Data (``dataset``): ``mnist`` = the IDX files in ``data_dir``; ``fashion`` = Fashion-MNIST from the
Debian package (/usr/share/datasets/fashion-mnist); ``digits`` = scikit-learn's 8 x 8 digits (no
download; the FC net then has 64 inputs, LeNet sees them upsampled to 28 x 28); ``auto`` = the
first of these that is available.

Commands:

- ``train``, ``plot``: the plane recipe (:mod:`infodrop.experiments.plane_recipe`): trains and
  records the information plane at the first dropout layer through the engine's epoch hook,
  ``runs/mnist/<run name>/plane.json`` (and ``plane.csv``), then plots it; ``plot`` re-reads the
  JSON and writes the figures to ``plots/mnist/<run name>/``.
- ``binary``: the consequence of Theorems 3.1/3.2. A binary-dropout network and a Gaussian-dropout
  one are trained (``binary_epochs``) or loaded (``binary_checkpoint``, ``gaussian_checkpoint``);
  the binning estimate of I(X;Z) for binary dropout keeps growing as the bins shrink (the true MI
  is infinite), while our mixture estimate for Gaussian dropout does not depend on bins at all.
  Writes a CSV and a plot of I(X;Z) against the bin count.

``demo()`` is ``infodrop demo``: a few-minute CPU run on data that needs no download.
All information values are in nats.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional

import numpy as np
from torch import nn

from infodrop.checks import check_int
from infodrop.data import DataError, fashion_mnist_folder, load_digits_8x8, load_idx_folder
from infodrop.data import split as train_test_split
from infodrop.experiments import plane_recipe
from infodrop.experiments.config import check_choice, entry, to_plain
from infodrop.experiments.datasets import take
from infodrop.experiments.entries import CosineSGD, Machine, RunFiles, Subsets, UnitSubsetPlane, in_order
from infodrop.experiments.naming import RunPaths, run_paths
from infodrop.experiments.plane_recipe import PlaneExperiment
from infodrop.experiments.run_files import holding_run, load_weights
from infodrop.experiments.session import compose
from infodrop.io import write_text
from infodrop.mi import binning_mi, gaussian_dropout_mi
from infodrop.models import LeNet, MLP
from infodrop.plane import InformationPlane
from infodrop.plots import plot_bin_sweep

__all__ = ["COMMANDS", "Config", "EXPERIMENT", "NAMED_CONFIGS", "binary", "build_model", "demo", "load_data", "plot", "train", "validate"]

DATASETS = ("auto", "mnist", "fashion", "digits")


@dataclass
class Network:
    """The mnist entries that come before the shared groups in the field order (and run names)."""

    model: str = entry("fc", "network: fc (784-512-128-32-10, softplus) or lenet")
    dropout: str = entry("gaussian", "dropout on the penultimate layer: gaussian, information or binary")
    variance: float = entry(0.25, "Gaussian dropout variance (0.25 = p/(1-p) at the reference code's rate p = 0.2)")
    dropout_rate: float = entry(0.2, "binary dropout: drop rate")
    beta: float = entry(3.0, "information dropout: weight of the KL term, divided by the training-set size (reference code)")
    max_alpha: float = entry(0.7, "information dropout: largest noise scale alpha")
    activation: str = entry("softplus", "activation of the hidden layers: softplus (paper) or relu")
    dataset: str = entry("auto", "mnist (IDX files in data_dir), fashion (Debian Fashion-MNIST), digits (sklearn 8x8) or auto")
    data_dir: str = entry("datasets/mnist", "folder with the MNIST IDX files (dataset=mnist)", in_run_name=False)


@dataclass
class Config(*in_order(Network, Subsets, CosineSGD, UnitSubsetPlane, Machine, RunFiles)):
    """Configuration of the MNIST / Fashion-MNIST planes of ICLR 2023 (FC network and LeNet)."""

    binary_bins: List[int] = entry([2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], "binary: bin counts of the sweep", in_run_name=False)
    binary_epochs: int = entry(10, "binary: epochs for each of the two networks when no checkpoint is given", in_run_name=False)
    binary_samples: int = entry(1000, "binary: training inputs used for the estimates", in_run_name=False)
    binary_draws: int = entry(10, "binary: MC-dropout samples of Z per input", in_run_name=False)
    binary_checkpoint: Optional[str] = entry(None, "binary: checkpoint of a trained binary-dropout network (else train one)", in_run_name=False)
    gaussian_checkpoint: Optional[str] = entry(None, "binary: checkpoint of a trained Gaussian-dropout network (else train one)", in_run_name=False)
    plane_test: bool = entry(True, "record the plane on the test split too (false: the training split only, half the plane's cost)", in_run_name=False)
    # Last in the field order, after seed, as in the run names of the version that added it.
    shuffle_labels: bool = entry(False, "random-label control: train on a fixed random permutation of the training labels (seeded by seed); test labels stay true", added=True)


NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    "lenet": {"model": "lenet"},
    "information": {"dropout": "information", "activation": "softplus"},
    "binary": {"dropout": "binary"},
    "fashion": {"dataset": "fashion"},
    "digits": {"dataset": "digits"},
    # Appendix A.8, Fig. 15: the FC network with a larger Gaussian-dropout variance.
    "high_variance": {"variance": 1.0},
    # A fast check that everything runs (seconds on a CPU).
    "smoke": {"epochs": 2, "train_subset": 512, "test_subset": 256, "plane_samples": 256, "plane_every": 1,
              "binary_epochs": 1, "binary_samples": 256, "progress": False},
}


def load_data(cfg: Any) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """``({'train': (images, labels), 'test': ...}, dataset name)``; images float32 N x 1 x H x W."""
    choice = cfg.dataset
    if choice == "auto":
        if Path(cfg.data_dir).is_dir():
            choice = "mnist"
        elif fashion_mnist_folder() is not None:
            choice = "fashion"
        else:
            choice = "digits"
    if choice == "mnist":
        if not Path(cfg.data_dir).is_dir():
            raise DataError(
                f"data_dir={cfg.data_dir!r} does not exist; put the MNIST IDX files there "
                "(train-images-idx3-ubyte.gz etc.) or use dataset=fashion / dataset=digits"
            )
        splits = load_idx_folder(cfg.data_dir)
    elif choice == "fashion":
        folder = fashion_mnist_folder()
        if folder is None:
            raise DataError("dataset=fashion needs Fashion-MNIST in /usr/share/datasets/fashion-mnist; use dataset=digits")
        splits = load_idx_folder(folder)
    else:
        images, labels = load_digits_8x8()
        splits = train_test_split(images, labels, test_fraction=0.2, seed=0)
    splits = {"train": take(splits["train"], cfg.train_subset, "train_subset"),
              "test": take(splits["test"], cfg.test_subset, "test_subset")}
    if getattr(cfg, "shuffle_labels", False):
        splits["train"] = shuffled_labels(splits["train"], cfg.seed)
    return splits, choice


def shuffled_labels(split: tuple[np.ndarray, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The random-label control (Zhang et al., ICLR 2017): the same images with a random
    permutation of their labels (so the class frequencies stay), fixed by ``seed``. Nothing is
    left to generalise: the network can only memorise."""
    images, labels = split
    order = np.random.default_rng([int(seed), 0x5EED]).permutation(len(labels))
    return images, np.asarray(labels)[order]


def network(cfg: Any, image_shape: tuple[int, ...]) -> nn.Module:
    """The network of ``cfg.model`` for images of shape C x H x W (not seeded: see :func:`build_model`)."""
    options = dict(activation=cfg.activation, dropout=cfg.dropout, variance=cfg.variance,
                   dropout_rate=cfg.dropout_rate, max_alpha=cfg.max_alpha)
    if cfg.model == "fc":
        return MLP(in_features=int(np.prod(image_shape)), hidden=(512, 128, 32), num_classes=10, **options)
    side = image_shape[-1]
    model = LeNet(in_channels=image_shape[0], image_size=max(side, 28), num_classes=10, **options)
    if side < 28:
        # LeNet's two 5x5 convolutions and pools need at least 16 pixels; small images are upsampled.
        return nn.Sequential(nn.Upsample(size=(28, 28), mode="bilinear", align_corners=False), model)
    return model


def _describe(cfg: Any) -> str:
    return f"{cfg.model} with {cfg.dropout} dropout"


EXPERIMENT = PlaneExperiment(name="mnist", config=Config, load_data=load_data, network=network, describe=_describe,
                             image_shape=(1, 28, 28))


def build_model(cfg: Any, image_shape: tuple[int, ...]) -> nn.Module:
    """The network of ``cfg.model`` for images of shape C x H x W, initialised from ``cfg.seed``."""
    return plane_recipe.build_model(cfg, EXPERIMENT, image_shape)


def validate(cfg: Any) -> None:
    """Raise ValueError naming the entry for a value the commands cannot use."""
    check_choice(cfg.model, "model", ("fc", "lenet"))
    check_choice(cfg.dataset, "dataset", DATASETS)
    plane_recipe.validate(cfg, EXPERIMENT)
    for name in ("binary_epochs", "binary_draws"):
        check_int(cfg[name], name, minimum=1)
    check_int(cfg.binary_samples, "binary_samples", minimum=2)
    if len(cfg.binary_bins) == 0:
        raise ValueError("binary_bins must list at least one bin count")
    for index, count in enumerate(cfg.binary_bins):
        check_int(count, f"binary_bins[{index}]", minimum=1)
    for name in ("binary_checkpoint", "gaussian_checkpoint"):
        if cfg[name] is not None and not Path(cfg[name]).is_file():
            raise ValueError(f"{name}={cfg[name]}: file not found; give a checkpoint written by `infodrop mnist train`, or leave {name} unset to train one")
    # dropout=information with activation=relu is not refused: the tracker flags the log-uniform
    # KL as "not an MI" (Appendix A.1).


# -------------------------------------------------------------------------------------- commands


def train(cfg: Any) -> dict:
    """Train the network and record its information plane every ``plane_every`` epochs."""
    return plane_recipe.train(cfg, EXPERIMENT)


def plot(cfg: Any) -> list[str]:
    """Re-read ``runs/mnist/<run name>/plane.json`` and write the figures to ``plots/mnist/<run name>/``."""
    return plane_recipe.plot(cfg, EXPERIMENT)


def _network_for(cfg: Any, kind: str, checkpoint: str | None, splits: dict, run_dir: Path) -> nn.Module:
    """The network of ``cfg`` with ``kind`` dropout: loaded from ``checkpoint``, else trained."""
    variant = dataclasses.replace(Config(**to_plain(cfg)), dropout=kind)
    model = build_model(variant, splits["train"][0].shape[1:])
    if checkpoint is not None:
        # Verified, and refused unless it is a training checkpoint of this network with `kind` dropout.
        load_weights(model, checkpoint, source=f"{kind}_checkpoint={checkpoint}", dropout=kind)
        print(f"binary: loaded the {kind}-dropout network from {checkpoint}")
    else:
        print(f"binary: training the {kind}-dropout network for {cfg.binary_epochs} epochs")
        plane_recipe.fit_network(variant, EXPERIMENT, model, splits, epochs=cfg.binary_epochs, run_dir=run_dir / kind, checkpoint=None)
    return model


def _binning_sweep(noisy: np.ndarray, bins: list[int]) -> tuple[list[float], list[float]]:
    """Binning I(X;Z_b) in nats with the input index as X, for each bin count: of the whole
    representation (rows of d units as symbols) and the mean over units of the one-unit values.
    noisy: draws x N x d samples of Z (draws per input)."""
    draws, n, width = noisy.shape
    index = np.tile(np.arange(n, dtype=np.int64), draws)
    flat = noisy.reshape(draws * n, width)
    whole, per_unit = [], []
    for count in bins:
        # The table shows how the value moves with the bins, saturated ones included: no warning per call.
        whole.append(binning_mi(flat, index, bins=count, y_discrete=True, warn_saturated=False))
        per_unit.append(float(np.mean([binning_mi(flat[:, unit], index, bins=count, y_discrete=True, warn_saturated=False)
                                       for unit in range(width)])))
    return whole, per_unit


def binary(cfg: Any) -> dict:
    """The consequence of Theorems 3.1/3.2, measured: binning I(X;Z) against the bin count for a
    binary-dropout and a Gaussian-dropout network, with our bin-free estimate for the latter.

    For each network, ``binary_samples`` training inputs each get ``binary_draws`` MC-dropout
    samples of Z at the dropout layer; the binning estimate is I(X;Z_b) = H(Z_b) - H(Z_b|X)
    (plug-in, X = the input's index), for the whole d-unit Z and averaged over single units.
    With binary dropout I(X;Z) is infinite, so the estimate grows with every refinement of the
    bins until it hits the plug-in ceiling log N; for Gaussian dropout our mixture estimate
    (``gaussian_dropout_mi``) is finite and does not depend on bins. Writes
    ``runs/mnist/<run name>/binary/binary_binning.csv`` and ``plots/mnist/<run name>/binary_binning.*``.
    """
    paths = run_paths(cfg, Config, "mnist")
    with holding_run(paths, "mnist"):
        return _binary(cfg, paths)


def _binary_row(network: str, estimator: str, scope: str, bins: int | None, i_xz: float, lower: float | None,
                upper: float | None, log_n: float) -> dict:
    """One row of the binary-vs-Gaussian sweep (nats), with the panel and curve names its figure uses."""
    label = f"{network} dropout, binning" if estimator == "binning" else f"{network} dropout, ours (mixture)"
    return {"panel": f"{scope} Z", "label": label, "network": network, "estimator": estimator, "scope": scope,
            "bins": bins, "i_xz": i_xz, "lower": lower, "upper": upper, "log_n": log_n}


def binary_rows(csv_rows: list[dict]) -> list[dict]:
    """The figure rows of a ``binary_binning.csv`` read with ``csv.DictReader`` (strings in, numbers
    out; an empty cell is None), so that the figure can be redrawn from the committed CSV."""
    def number(text: str, kind: type) -> Any:
        return None if text in ("", None) else kind(float(text)) if kind is int else kind(text)

    return [_binary_row(row["network"], row["estimator"], row["scope"], number(row["bins"], int),
                        number(row["i_xz"], float), number(row["lower"], float), number(row["upper"], float),
                        number(row["log_n"], float)) for row in csv_rows]


def _binary(cfg: Any, paths: RunPaths) -> dict:
    out_dir = paths.run_dir / "binary"
    splits, dataset = load_data(cfg)
    bins = sorted(int(count) for count in cfg.binary_bins)
    rows: list[dict] = []
    for kind, checkpoint in (("binary", cfg.binary_checkpoint), ("gaussian", cfg.gaussian_checkpoint)):
        model = _network_for(cfg, kind, checkpoint, splits, out_dir)
        plane = InformationPlane(model, splits["train"], None, layer=plane_recipe.tracked_layer(model), estimators=("binning",),
                                 bins=tuple(bins), mc_draws=cfg.binary_draws, max_samples=cfg.binary_samples,
                                 output=out_dir / f"plane_{kind}.json", seed=cfg.seed, device=cfg.device)
        data = plane.samples("train")
        noisy = data.noisy.numpy().astype(np.float64)
        n, width = noisy.shape[1], noisy.shape[2]
        log_n = math.log(n)
        whole, per_unit = _binning_sweep(noisy, bins)
        for count, value_whole, value_unit in zip(bins, whole, per_unit):
            for scope, value in (("whole", value_whole), ("per-unit mean", value_unit)):
                rows.append(_binary_row(kind, "binning", scope, count, value, None, None, log_n))
        if kind == "gaussian":
            features = data.features
            variance = float(plane.layer.variance)
            ours = gaussian_dropout_mi(features, variance, noise_samples=cfg.noise_samples, seed=cfg.seed, device=cfg.device,
                                       bounds=cfg.plane_bounds)
            lower, upper = ours.i_xz_bounds if ours.i_xz_bounds is not None else (None, None)
            rows.append(_binary_row(kind, "mixture", "whole", None, float(ours.i_xz), lower, upper, log_n))
            unit_values = [float(gaussian_dropout_mi(features[:, unit], variance, noise_samples=cfg.noise_samples, seed=cfg.seed,
                                                     device=cfg.device, bounds=False).i_xz) for unit in range(width)]
            rows.append(_binary_row(kind, "mixture", "per-unit mean", None, float(np.mean(unit_values)), None, None, log_n))
    columns = ["network", "estimator", "scope", "bins", "i_xz", "lower", "upper", "log_n"]

    def cell(value: Any) -> str:
        return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)

    lines = [",".join(columns)] + [",".join(cell(row[column]) for column in columns) for row in rows]
    csv_path = write_text(out_dir / "binary_binning.csv", "\n".join(lines) + "\n")
    title = f"{plane_recipe.dataset_name(dataset)}: {cfg.binary_samples} inputs x {cfg.binary_draws} draws"
    figures = plot_bin_sweep(rows, paths.plots_dir, stem="binary_binning", formats=tuple(cfg.plot_formats), title=title)
    print(f"{'network':9s} {'estimator':9s} {'scope':14s} {'bins':>5s} {'I(X;Z) [nats]':>14s}")
    for row in rows:
        shown_bins = "-" if row["bins"] is None else row["bins"]
        print(f"{row['network']:9s} {row['estimator']:9s} {row['scope']:14s} {shown_bins:>5} {row['i_xz']:14.4f}")
    print(f"(plug-in ceiling log N = {rows[0]['log_n']:.4f})\nCSV: {csv_path}\nfigures: {', '.join(str(path) for path in figures)}")
    return {"rows": rows, "csv": str(csv_path), "figures": [str(path) for path in figures]}


COMMANDS: dict[str, Callable[[Any], object]] = {"train": train, "plot": plot, "binary": binary}


# ------------------------------------------------------------------------------------------- demo


def demo(*, overrides: tuple[str, ...] = (), runs_dir: str = "runs", plots_dir: str = "plots") -> dict:
    """``infodrop demo``: the FC Gaussian-dropout network on a Fashion-MNIST subset (or the 8x8
    digits when Fashion-MNIST is not installed), the plane recorded every epoch; prints a summary."""
    if fashion_mnist_folder() is not None:
        data = ["dataset=fashion", "train_subset=10000", "test_subset=2000", "epochs=12", "batch_size=128"]
    else:
        data = ["dataset=digits", "epochs=30", "batch_size=64"]
    # The plane on 1,500 inputs per split without the pairwise bracket keeps each record to well
    # under a second on two cores (the mixture estimate costs O(N^2 noise_samples d)). Variance 4
    # keeps the whole layer below log N = 7.31 (at 0.25 it was pressed against it at 20 of 26
    # points, so the demo's plane measured N, not the network).
    settings = data + ["variance=4.0", "plane_every=1", "plane_samples=1500", "noise_samples=5", "plane_bounds=false",
                       f"runs_dir={runs_dir}", f"plots_dir={plots_dir}", "checkpoint_every=1000"] + list(overrides)
    cfg = compose("mnist", settings)
    paths = RunPaths(name="demo", model_file=Path(cfg.models_dir) / "mnist" / "demo.pt",
                     run_dir=Path(runs_dir) / "mnist" / "demo", plots_dir=Path(plots_dir) / "mnist" / "demo")
    earlier = [path for path in (paths.model_file, paths.run_dir / "plane.json") if path.exists()]
    if earlier:
        print(f"infodrop demo: {paths.run_dir} holds an earlier demo; this one trains again from scratch and overwrites "
              f"it (checkpoint {paths.model_file}, plane, figures in {paths.plots_dir})")
    if paths.model_file.exists():
        paths.model_file.unlink()  # the demo always starts afresh
    started = time.perf_counter()
    result = plane_recipe.train(cfg, EXPERIMENT, paths, print_summary=False)
    elapsed = time.perf_counter() - started
    print(f"\ninfodrop demo: FC softplus network (hidden 512-128-32), Gaussian dropout (variance {cfg.variance}) "
          f"on {plane_recipe.dataset_name(result['dataset'])}, {cfg.epochs} epochs in {elapsed:.0f} s")
    print(result["summary"])
    return result
