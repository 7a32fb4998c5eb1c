"""The plane recipe: train a network while recording the information plane of its dropout layer,
and plot it (Adilova, Geiger & Fischer, ICLR 2023, Section 5; the reference code's
``mi_mnist_dropout.py`` and ``mi_cifar_dropout.py``).

An experiment (``mnist``, ``cifar_resnet``) hands a :class:`PlaneExperiment` (its name,
``Config``, data loader, network and augmentation) to these commands:

- :func:`train`: the reference code's training (SGD with momentum and weight decay, a cosine
  schedule over the epochs; for information dropout the KL term weighted by beta / N_train),
  checkpointed at ``models/<experiment>/<run>.pt`` and resumed from it, while
  :class:`infodrop.plane.InformationPlane` records the plane of the tracked layer at the
  initialisation and every ``plane_every`` epochs to ``runs/<experiment>/<run>/plane.json``
  (and ``plane.csv``); then the figures and :func:`summary` (test error, the plane at its start,
  peak and end, the files). Run again when finished, it trains nothing and prints the summary
  again; a run of another length is refused (the cosine schedule spans all the epochs:
  :mod:`infodrop.experiments.resuming`).
- :func:`plot`: the figures again from ``plane.json``, to ``plots/<experiment>/<run>/``.

The tracked layer is the first continuous-dropout layer (Gaussian or information dropout), else
the first binary dropout layer (binning only: Theorems 3.1/3.2). All information values are in
nats.

The classifier recipe's experiments (``cifar``: the fullCNN study of Fig. 7,
``infodrop cifar train with fullcnn softplus ...``) record their plane through the same path:
:func:`check_plane_entries` at the door, :func:`start_plane` (the tracker and its epoch hook) and
:func:`draw_plane` (the figures and the saturation counts). An experiment's plane entries become
one :class:`~infodrop.plane.PlaneSettings` (:func:`plane_settings`), which owns their rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from infodrop.checks import check_in_range, check_int, check_positive, check_seed
from infodrop.data import as_tensor_dataset
from infodrop.distributed import is_main_process
from infodrop.engine import Checkpointing, Reporting, Training, fit
from infodrop.experiments.config import check_batch_size, check_choice, check_model, check_subset, to_plain
from infodrop.experiments.datasets import Split
from infodrop.experiments.naming import RunPaths, model_config, run_paths
from infodrop.experiments.resuming import check_continuation
from infodrop.experiments.run_files import holding_run
from infodrop.io import checkpoint_exists
from infodrop.losses import information_loss
from infodrop.nn import continuous_dropout_layers
from infodrop.plane import InformationPlane, PlaneDocument, PlaneSettings, saturation_summary
from infodrop.plane.figures import plot_plane_figures
from infodrop.runs import Run

__all__ = ["PlaneExperiment", "build_model", "check_plane_entries", "dataset_name", "draw_plane", "fit_network",
           "plane_settings", "plot", "start_plane", "summary", "tracked_layer", "train", "validate"]

DROPOUT_KINDS = ("gaussian", "information", "binary")  # a plane needs a dropout layer
# The config entry of each PlaneSettings field whose entry has another name: errors name the entry.
ENTRY_NAMES = {"max_samples": "plane_samples", "subsets": "plane_subsets", "bounds": "plane_bounds",
               "refresh_batch_norm": "plane_bn_refresh", "formats": "plot_formats"}

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _no_augmentation(cfg: Any) -> BatchTransform | None:
    return None


@dataclass(frozen=True)
class PlaneExperiment:
    """What the plane recipe needs to know about one experiment."""

    name: str  # the experiment's folder under models/, runs/ and plots/
    config: type  # its Config dataclass (run names)
    load_data: Callable[[Any], tuple[dict[str, Split], str]]  # cfg -> ({'train': ..., 'test': ...}, data set used)
    network: Callable[[Any, tuple[int, ...]], nn.Module]  # (cfg, image shape C x H x W) -> the network, unseeded
    describe: Callable[[Any], str]  # cfg -> "lenet with gaussian dropout", for the first line printed
    image_shape: tuple[int, ...]  # the input shape the network's entries are checked with before any data is read
    augmentation: Callable[[Any], BatchTransform | None] = _no_augmentation  # cfg -> the engine's batch_transform
    plane_batch_size: int = 512  # batch of the plane's forward passes


def build_model(cfg: Any, experiment: PlaneExperiment, image_shape: Sequence[int]) -> nn.Module:
    """The experiment's network for images of ``image_shape``, initialised from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    return experiment.network(cfg, tuple(image_shape))


def plane_settings(cfg: Any, *, batch_size: int) -> PlaneSettings:
    """The :class:`PlaneSettings` of an experiment's plane entries (``estimators``, ``bins``,
    ``noise_samples``, ``mc_draws``, ``plane_samples``, ``seed``, ``plane_bounds``, ``plot_formats``,
    and where the Config has them ``plane_subsets``, ``subset_draws``, ``plane_bn_refresh``), with
    the tracker's forward passes in batches of ``batch_size``; ValueError naming the entry."""
    return PlaneSettings(
        estimators=tuple(cfg.estimators), bins=tuple(cfg.bins), noise_samples=cfg.noise_samples, mc_draws=cfg.mc_draws,
        max_samples=cfg.plane_samples, batch_size=batch_size, seed=cfg.seed, bounds=cfg.plane_bounds,
        subsets=tuple(getattr(cfg, "plane_subsets", ())), subset_draws=getattr(cfg, "subset_draws", 8),
        refresh_batch_norm=getattr(cfg, "plane_bn_refresh", False), formats=tuple(cfg.plot_formats), names=ENTRY_NAMES,
    )


def check_plane_entries(cfg: Any, *, batch_size: int, dropout: str | None = None, every_minimum: int = 1) -> PlaneSettings:
    """Refuse plane entries before any work: ``plane_every`` (at least ``every_minimum``; 0 = no
    plane where that is allowed), the settings (:func:`plane_settings`) and, when the network's
    ``dropout`` kind is known from the config, what that kind cannot measure."""
    check_int(cfg.plane_every, "plane_every", minimum=every_minimum)
    settings = plane_settings(cfg, batch_size=batch_size)
    if dropout is not None:
        settings.check_kind(dropout, "the network")
    return settings


def validate(cfg: Any, experiment: PlaneExperiment) -> None:
    """Refuse bad training and plane entries before any work (ValueError naming the entry); the
    network's own entries are checked by its constructor."""
    check_choice(cfg.dropout, "dropout", DROPOUT_KINDS)
    check_positive(cfg.beta, "beta", allow_zero=True)
    check_subset(cfg.train_subset, "train_subset")
    check_subset(cfg.test_subset, "test_subset")
    check_batch_size(cfg.batch_size, cfg.train_subset)
    for name in ("epochs", "checkpoint_every"):
        check_int(cfg[name], name, minimum=1)
    check_seed(cfg.seed, "seed")
    check_plane_entries(cfg, batch_size=experiment.plane_batch_size, dropout=cfg.dropout)
    check_positive(cfg.lr, "lr")
    check_in_range(cfg.momentum, "momentum", 0.0, 1.0, low_open=False, high_open=True)
    check_positive(cfg.weight_decay, "weight_decay", allow_zero=True)
    check_model(lambda: experiment.network(cfg, experiment.image_shape))


def tracked_layer(model: nn.Module) -> str | None:
    """Name of the layer whose plane is recorded: the first continuous-dropout layer, else the
    first binary dropout layer (None when the model has neither)."""
    found = continuous_dropout_layers(model)
    if found:
        return found[0][0]
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout):
            return name
    return None


def fit_network(cfg: Any, experiment: PlaneExperiment, model: nn.Module, splits: dict[str, Split], *, epochs: int,
                run_dir: Path | None, checkpoint: Path | None, hooks: Sequence[Callable] = ()) -> dict:
    """Train as the reference code: SGD (``lr``, ``momentum``, ``weight_decay``), a cosine schedule
    over ``epochs``, the experiment's augmentation; for information dropout the loss adds
    beta * KL / N_train (the weight decay stays in SGD, as in the reference PyTorch code), else
    the cross-entropy. Returns the engine's last metrics."""
    train_set = as_tensor_dataset(*splits["train"])
    test_set = as_tensor_dataset(*splits["test"])
    loss = information_loss(beta=cfg.beta, train_size=len(train_set), weight_decay=0.0) if cfg.dropout == "information" else None
    return fit(
        model,
        train_set,
        test_set,
        Training(
            epochs=epochs,
            batch_size=cfg.batch_size,
            make_optimizer=lambda network: torch.optim.SGD(network.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
            make_scheduler=lambda optimizer: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs),
            loss=loss,
            batch_transform=experiment.augmentation(cfg),
            seed=cfg.seed,
            compile=cfg.compile,
        ),
        # The checkpoint is tied to what defines the model, plus epochs: the cosine schedule depends
        # on them, so a resumed run with another length would not be the run its name claims.
        checkpointing=Checkpointing(path=checkpoint, every=cfg.checkpoint_every,
                                    config=dict(model_config(cfg, experiment.config), epochs=epochs)),
        reporting=Reporting(run=Run(run_dir, config=to_plain(cfg)) if run_dir is not None else None, epoch_hooks=hooks,
                            progress=cfg.progress),
        device=cfg.device,
    )


def train(cfg: Any, experiment: PlaneExperiment, paths: RunPaths | None = None, *, print_summary: bool = True) -> dict:
    """Train the network and record its information plane every ``plane_every`` epochs; then the
    figures and, with ``print_summary``, the :func:`summary`.

    Returns ``{'history': last metrics, 'plane': plane.json path, 'figures': paths, 'dataset': name,
    'summary': text}``. ``paths`` overrides where the run's artefacts go (the demo's fixed ``demo``
    run). The run is held (its lock) from the start: a second process of it exits before reading
    any data.
    """
    paths = run_paths(cfg, experiment.config, experiment.name) if paths is None else paths
    with holding_run(paths, experiment.name):
        # A run of another length is refused before any data is read.
        check_continuation(paths.model_file, cfg.epochs, schedule="cosine")
        return _train(cfg, experiment, paths, print_summary=print_summary)


def _train(cfg: Any, experiment: PlaneExperiment, paths: RunPaths, *, print_summary: bool) -> dict:
    splits, dataset = experiment.load_data(cfg)
    model = build_model(cfg, experiment, splits["train"][0].shape[1:])
    heading = (f"{experiment.name}: {experiment.describe(cfg)} on {dataset} "
               f"({len(splits['train'][1])} train / {len(splits['test'][1])} test images); ")
    hook = start_plane(cfg, model, splits["train"], splits["test"], paths, dataset=dataset,
                       batch_size=experiment.plane_batch_size, layer=tracked_layer(model), heading=heading)
    history = fit_network(cfg, experiment, model, splits, epochs=cfg.epochs, run_dir=paths.run_dir,
                          checkpoint=paths.model_file, hooks=(hook,))
    main = is_main_process()
    figures = _figures(cfg, paths) if main else []
    result = {"history": history, "plane": str(paths.run_dir / "plane.json"), "figures": [str(path) for path in figures],
              "dataset": dataset}
    result["summary"] = summary(result, epochs=cfg.epochs, plots_dir=paths.plots_dir) if main else ""
    if print_summary and main:
        print(result["summary"])
    return result


def start_plane(cfg: Any, model: nn.Module, train: Split, test: Split, paths: RunPaths, *, dataset: str,
                batch_size: int, layer: str | None = None, heading: str = "") -> Callable[[int, nn.Module], dict | None]:
    """The tracker the config asks for on ``layer`` of ``model`` (None: the first continuous-dropout
    layer), writing ``runs/<experiment>/<run>/plane.json`` and its CSV twin; prints where (after
    ``heading``), records the initialisation, the start of the trajectory, unless the run resumes
    from its checkpoint (whose earlier points the file keeps), and returns the engine epoch hook
    that records at the first epoch, every ``plane_every`` epochs and at the last.

    A resumed run records what an uninterrupted one would: the hook's schedule depends on the
    epoch alone (points after the checkpoint are recorded again, identically)."""
    plane_file = paths.run_dir / "plane.json"
    resuming = checkpoint_exists(paths.model_file)  # the latest checkpoint, or the previous one
    plane = InformationPlane(
        model, train, test if getattr(cfg, "plane_test", True) else None, plane_settings(cfg, batch_size=batch_size),
        output=plane_file, csv=plane_file.with_suffix(".csv"), layer=layer, device=cfg.device, append=resuming,
        dataset=dataset_name(dataset),
    )
    main = is_main_process()
    if main:
        print(f"{heading}plane at layer {plane.layer_name!r} on {plane.sample_counts} inputs -> {plane_file}", flush=True)
    # The epoch hooks run on rank 0 only, unless the ranks share the estimate (under torchrun),
    # when every rank records.
    if not resuming and (main or plane.distributed):
        plane.record(0)
    return plane.as_hook(every=cfg.plane_every, last=cfg.epochs)


def draw_plane(cfg: Any, paths: RunPaths) -> list[Path]:
    """The plane figures of a classifier run, then its plane file and saturation counts in words
    (rank 0; other ranks draw nothing)."""
    if not is_main_process():
        return []
    plane_file = paths.run_dir / "plane.json"
    figures = _figures(cfg, paths)
    document = PlaneDocument.load(plane_file)
    lines = [f"plane: {plane_file} ({len(document.records)} records, nats)", _SATURATION_HEADING]
    lines += [f"  {line}" for line in saturation_summary(document)]
    lines += ["figures:"] + [f"  {path}" for path in figures if str(path).endswith(".png")]
    print("\n".join(lines))
    return figures


_SATURATION_HEADING = "saturation (pressed against log N, the point measures N, not the network):"


def _negative_note(document: PlaneDocument) -> list[str]:
    """A line saying what a negative estimate means, when the trajectories hold one (mutual
    information is >= 0; an estimate of about -0.002 nats is the estimator's noise around 0)."""
    values = [value for split in ("train", "test") for key in ("i_xz", "i_zy") for value in document.trajectory(split, key)]
    negative = [value for value in values if value < 0]
    if not negative:
        return []
    return [f"  note: {len(negative)} recorded estimate(s) are negative (down to {min(negative):.3g} nats): mutual information "
            "is >= 0, so read them as 0 within the estimator's noise"]


def summary(result: dict, *, epochs: int, plots_dir: Path) -> str:
    """What a finished run of :func:`train` gives, on one screen: the test error of the last epoch
    (noise off), the plane of the tracked layer at its start, peak and end (nats), how many of its
    points are saturated (in words), the plane file and the figures (PNG), and the call that re-plots them. ``result`` is what :func:`train` returns."""
    history, plane_file = result["history"], result["plane"]
    document = PlaneDocument.load(plane_file)
    error = history.get("test_error")
    shown = "n/a" if error is None else f"{100 * error:.2f}% (accuracy {100 * (1 - error):.2f}%)"
    lines = [f"test error {shown} after epoch {history.get('epoch')} of {epochs}"]
    counts = f"{document.sample_counts.get('train')} train / {document.sample_counts.get('test')} test inputs, nats"
    if document.dropout_kind == "gaussian":
        counts += f"; the plain mixture estimate of I(X;Z) cannot exceed log N = {document.log_n('train'):.2f}"
    elif document.dropout_kind == "information":
        counts += "; variational bounds: the KL for I(X;Z), H(Y) - cross-entropy for I(Z;Y)"
    rows = []
    for split in ("train", "test"):
        for key, name in (("i_xz", "I(X;Z)"), ("i_zy", "I(Z;Y)")):
            values = document.trajectory(split, key)
            if values:
                rows.append(f"  {split + ' ' + name:14s} {values[0]:8.3f} {max(values):8.3f} {values[-1]:8.3f}")
    if rows:
        lines += [f"information plane at layer {document.layer!r} ({counts}):", f"  {'':14s} {'start':>8s} {'peak':>8s} {'end':>8s}"]
        lines += rows
        lines += _negative_note(document)
    else:
        lines.append(f"information plane at layer {document.layer!r} ({counts}): binning only, see the figures")
    lines.append(_SATURATION_HEADING)
    lines += [f"  {line}" for line in saturation_summary(document)]
    shown_figures = [path for path in result["figures"] if path.endswith(".png")] or result["figures"]
    lines += [f"plane JSON: {plane_file}", "figures:"] + [f"  {path}" for path in shown_figures]
    lines.append(f"re-plot in Python: infodrop.plots.plot_information_plane({plane_file!r}, {str(plots_dir)!r})")
    return "\n".join(lines)


DATASET_NAMES = {"fashion": "Fashion-MNIST", "mnist": "MNIST", "digits": "8x8 digits (scikit-learn)",
                 "cifar10": "CIFAR-10-format npz files"}


def dataset_name(dataset: str) -> str:
    """The name a figure's title gives the data set an experiment's ``load_data`` reports."""
    return DATASET_NAMES.get(dataset, dataset)


def _figures(cfg: Any, paths: RunPaths) -> list[Path]:
    # The data set, layer and N come from the plane file (the second title line): the experiment's
    # name alone would call a Fashion-MNIST run "mnist".
    return plot_plane_figures(paths.run_dir / "plane.json", paths.plots_dir, formats=tuple(cfg.plot_formats),
                              title=f"run {paths.name}")


def plot(cfg: Any, experiment: PlaneExperiment) -> list[str]:
    """Re-read ``runs/<experiment>/<run>/plane.json`` and write the figures to ``plots/<experiment>/<run>/``."""
    paths = run_paths(cfg, experiment.config, experiment.name)
    with holding_run(paths, experiment.name):
        figures = _figures(cfg, paths)
    for path in figures:
        print(path)
    return [str(path) for path in figures]
