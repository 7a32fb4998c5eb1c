"""Information-plane tracker: I(X;Z) and I(Z;Y) of one dropout layer's representation Z, epoch
by epoch, on the training and the test set (Adilova, Geiger & Fischer, ICLR 2023, Section 5 and
Appendix A.8). Values are in nats.

:class:`InformationPlane` resolves the tracked layer (:mod:`~infodrop.plane.layer`), and at each
recorded epoch collects one split's representations at a time, hands them to the estimators its
:class:`~infodrop.plane.settings.PlaneSettings` ask for (:mod:`~infodrop.plane.estimators`) and
appends the typed :class:`~infodrop.plane.record.PlaneRecord` to ``output`` (JSON, written
atomically, with the CSV twin and the per-input terms beside it) right away, so a run that stops
keeps everything recorded so far. Before the first record it prints the one cost line
(:func:`infodrop.plane.report.cost_line`).

Several processes. With ``distributed`` (default: whenever ``torch.distributed`` is initialised
with more than one process) every rank must call :meth:`InformationPlane.record` for the same
epoch: the ranks share the mixture estimator's samples of Z (``gaussian_dropout_mi(...,
distributed=True)``), get the same numbers, and rank 0 alone writes the files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from infodrop.checks import check_int, resolve_device
from infodrop.distributed import is_main_process
from infodrop.io import save_npz, write_text
from infodrop.io.paths import check_output_file
from infodrop.nn import refreshed_batch_norm
from infodrop.plane.estimators import Tracked, estimators_for
from infodrop.plane.layer import (
    Representations,
    as_dataset,
    collect,
    dropout_kind,
    model_device,
    resolve_layer,
    subsample,
    tracked_units,
)
from infodrop.plane.record import PlaneDocument, PlaneRecord, SplitRecord, load_terms, terms_key, terms_path
from infodrop.plane.report import announce_cost, cost_line, pairs_per_record, plane_cost, records_to_csv
from infodrop.plane.settings import PlaneSettings, settings_from

__all__ = ["InformationPlane"]


def _group_size() -> int:
    """Processes of the initialised torch.distributed group; 0 when none is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0
    return dist.get_world_size()


def _entropy_of_labels(labels: np.ndarray) -> float:
    """Plug-in entropy H(Y) in nats of integer labels."""
    counts = np.bincount(labels).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _check_distributed(distributed: Any) -> bool:
    if distributed is None:
        return _group_size() > 1
    if not isinstance(distributed, bool):
        raise ValueError(f"distributed must be None, True or False, got {distributed!r}")
    if distributed and _group_size() == 0:
        raise ValueError("distributed=True needs an initialised torch.distributed process group (torchrun); pass distributed=False")
    return distributed


class InformationPlane:
    """Record the information plane of one dropout layer during training.

    Args:
        model: the network (``forward`` returns logits N x classes).
        train_data, test_data: a torch Dataset (or DataLoader) of (input, label) pairs, or a pair
            (inputs, labels) of arrays; ``test_data`` may be None (training set only).
        settings: a :class:`~infodrop.plane.settings.PlaneSettings` (estimators, bins, noise
            samples, MC draws, max_samples, batch size, seed, bounds, subsets, subset draws,
            batch-norm refresh); or give those as keywords (``estimators=("auto",)``, ...).
        output: the JSON file the records go to (rewritten atomically after every record).
        layer: the tracked layer: None = the first GaussianDropout/InformationDropout layer, or a
            module name (``model.named_modules()``) or the module itself; a ``torch.nn.Dropout`` is
            accepted (binary dropout: binning only).
        csv: optional CSV file with one row per (epoch, split, estimator, bins).
        device: device for the estimators (None = CUDA if available, else CPU). The forward
            passes run on the model's own device.
        append: keep the records already in ``output`` (resuming a run); records of an epoch that
            is recorded again are replaced.
        distributed: share the mixture estimation over the processes of an initialised
            ``torch.distributed`` group (every rank calls :meth:`record`); None = when one with
            more than one process is initialised.
        dataset: name of the data set, kept in the file for the figures' titles.
        announce_cost: print the cost line before the first record (once per process).
    """

    def __init__(self, model: nn.Module, train_data: Any, test_data: Any = None, settings: PlaneSettings | None = None,
                 *, output: str | os.PathLike = "plane.json", layer: Any = None, csv: str | os.PathLike | None = None,
                 device: Any = None, append: bool = False, distributed: bool | None = None, dataset: str | None = None,
                 announce_cost: bool = True, **options: Any) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        settings = settings_from(options, settings)
        if dataset is not None and not isinstance(dataset, str):
            raise ValueError(f"dataset must be a name (str) or None, got {type(dataset).__name__}")
        self.model, self.dataset, self.announce_cost = model, dataset, bool(announce_cost)
        self.device = resolve_device(device)
        self.distributed = _check_distributed(distributed)
        self.layer_name, self.layer = resolve_layer(model, layer)
        self.kind = dropout_kind(self.layer)
        settings.check_kind(self.kind, f"layer {self.layer_name!r}")
        self.splits: dict[str, Dataset] = {}
        for index, (split, data) in enumerate((("train", train_data), ("test", test_data))):
            if data is not None:
                # Each split's subset of inputs is fixed by the seed, once.
                self.splits[split] = subsample(as_dataset(data, f"{split}_data"), settings.max_samples,
                                               settings.seed + index, f"{split}_data")
        if "train" not in self.splits:
            raise ValueError("train_data is required")
        self.sample_counts = {split: len(dataset) for split, dataset in self.splits.items()}
        self.units = tracked_units(model, self.layer, self.kind, self.splits["train"])
        self.settings = settings.for_layer(self.kind, self.units, self.layer_name)
        self._estimators = estimators_for(Tracked(self.layer, self.kind, self.settings, self.device, self.distributed))
        # Checked now, not when the first record is written after minutes of estimating.
        self.output = check_output_file(output, "output")
        self.csv = check_output_file(csv, "csv") if csv is not None else None
        self._announced = False
        self._records: list[PlaneRecord] = []
        # Per-input terms of the mixture estimates by terms_key, saved beside the plane file.
        self._terms: dict[str, np.ndarray] = {}
        if append and self.output.exists():
            self._records = list(PlaneDocument.load(self.output).records)
            self._terms = load_terms(self.output)

    # ---------------------------------------------------------------------------- description

    @property
    def estimators(self) -> tuple[str, ...]:
        """The estimator keys recorded for this layer (binary dropout: binning only)."""
        return self.settings.estimators

    def document(self) -> PlaneDocument:
        """Everything the plane file holds, typed: the layer, the settings and the records so far."""
        names = {key: estimator.name for key, estimator in self._estimators.items() if key != "subsets"}
        tracked = Tracked(self.layer, self.kind, self.settings, self.device)
        return PlaneDocument(
            records=list(self._records),
            layer=self.layer_name,
            dropout_kind=self.kind,
            variance=tracked.variance,
            prior=tracked.prior,
            estimators=names,
            sample_counts=dict(self.sample_counts),
            config={**self.settings.to_json(), "distributed": self.distributed},
            dataset=self.dataset,
            layer_units=self.units,
        )

    # Read a plane file: the typed document (item access gives its JSON form).
    load = staticmethod(PlaneDocument.load)

    # ------------------------------------------------------------------------------ recording

    def as_hook(self, every: int = 1, *, last: int | None = None, first: int = 1) -> Callable[[int, nn.Module], dict | None]:
        """The engine epoch hook ``hook(epoch, model) -> dict | None``: records at epoch ``first``
        (the engine's first epoch, 1: the early rise of I(X;Z)), when ``epoch % every == 0``, and
        at ``last`` (the final epoch) when given, and returns the record's flat numbers for the
        epoch's metrics line (:meth:`PlaneRecord.summary`); other epochs return None. The schedule
        depends on the epoch alone, so a run resumed from a checkpoint records the epochs an
        uninterrupted run would. With ``distributed`` the hook is marked ``all_ranks`` so that the
        engine calls it on every rank."""
        every = check_int(every, "every")
        first = check_int(first, "first", minimum=0)

        def hook(epoch: int, model: nn.Module | None = None) -> dict | None:
            if epoch == first or epoch % every == 0 or (last is not None and epoch == last):
                return self.record(epoch).summary()
            return None

        hook.all_ranks = self.distributed
        return hook

    def record(self, epoch: int) -> PlaneRecord:
        """Estimate the plane at this epoch on every split, add it to the records (replacing one of
        the same epoch), save, and return it (values in nats)."""
        epoch = check_int(epoch, "epoch", minimum=0)
        with self._evaluation_statistics():
            splits = {split: self._estimate_split(split, epoch) for split in self.splits}
        record = PlaneRecord(epoch=epoch, **splits)
        self._records = sorted([old for old in self._records if old.epoch != epoch] + [record], key=lambda item: item.epoch)
        if is_main_process():
            self.save()
        return record

    def _evaluation_statistics(self) -> Any:
        """The batch-norm statistics the record evaluates with: refreshed on the training inputs
        with the dropout noise on when ``refresh_batch_norm``, else the training run's own."""
        if not self.settings.refresh_batch_norm:
            return contextlib.nullcontext(0)
        device = model_device(self.model)
        loader = DataLoader(self.splits["train"], batch_size=self.settings.batch_size, shuffle=False)
        # noisy statistics: the plane reads the noisy Z, so the layers after it are normalised as in training
        return refreshed_batch_norm(self.model, (inputs.to(device) for inputs, _ in loader), noise=True)

    def _estimate_split(self, split: str, epoch: int) -> SplitRecord:
        # One split's representations at a time: collected, estimated, released.
        representations = self.samples(split, epoch=epoch)
        if self.announce_cost and not self._announced:
            self._announced = True
            if is_main_process():
                announce_cost(lambda: self.cost_line(n_classes=len(np.unique(representations.labels))))
        points = {}
        for key, estimator in self._estimators.items():
            estimated = estimator.estimate(representations)
            points[key] = estimated.points
            for (subset, index), terms in estimated.terms.items():
                if terms is not None:
                    self._terms[terms_key(epoch, split, subset, index)] = terms
        return SplitRecord(
            n=len(representations.labels),
            mc_accuracy=representations.mc_accuracy,
            cross_entropy=float(-representations.log_probs.mean()),
            h_y=_entropy_of_labels(representations.labels),
            **points,
        )

    def samples(self, split: str = "train", *, epoch: int = 0) -> Representations:
        """The representations one record would use at ``epoch`` (which seeds the noise), without
        estimating anything (:class:`~infodrop.plane.layer.Representations`)."""
        if split not in self.splits:
            raise ValueError(f"split must be one of {list(self.splits)}, got {split!r}")
        epoch = check_int(epoch, "epoch", minimum=0)
        settings = self.settings
        return collect(self.model, self.layer, self.kind, self.splits[split], mc_draws=settings.mc_draws,
                       batch_size=settings.batch_size, layer_name=self.layer_name,
                       seed=settings.seed * 1_000_003 + epoch * 2 + list(self.splits).index(split))

    def save(self) -> Path:
        """Write the plane file (and the CSV, and the per-input terms beside them), atomically."""
        document = self.document()
        document.save(self.output)
        if self._terms:
            save_npz(terms_path(self.output), **self._terms)
        if self.csv is not None:
            write_text(self.csv, records_to_csv(document))
        return self.output

    # --------------------------------------------------------------------------------- cost

    def _processes(self) -> int:
        return max(1, _group_size()) if self.distributed else 1

    def pairs_per_record(self) -> int:
        """Pairs the mixture estimator scores per record (:func:`infodrop.plane.report.pairs_per_record`)."""
        return pairs_per_record(self.settings, self.kind, self.sample_counts)

    def cost(self, n_classes: int = 0) -> dict:
        """Expected cost of one record on this tracker's device (:func:`infodrop.plane.report.plane_cost`)."""
        return plane_cost(self.settings, self.kind, self.sample_counts, self.units, device=self.device,
                          processes=self._processes(), n_classes=n_classes)

    def cost_line(self, n_classes: int = 0) -> str:
        """The one line printed before the first record (:func:`infodrop.plane.report.cost_line`)."""
        return cost_line(self.settings, self.kind, self.sample_counts, self.units, device=self.device,
                         processes=self._processes(), n_classes=n_classes)
