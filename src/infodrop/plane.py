"""Information-plane tracker: I(X;Z) and I(Z;Y) of one dropout layer's representation Z, epoch
by epoch, on the training and the test set (Adilova, Geiger & Fischer, ICLR 2023, Section 5 and
Appendix A.8).

Z is the representation at ONE dropout layer, by default the first continuous-dropout layer of
the model (Sec. 5: the part of the network before it is deterministic, so Z | X is known in closed
form). At each recorded epoch the tracker runs the data through the model in evaluation mode
without gradients and captures, at that layer,

- the noiseless representation f(x) (the layer's input for Gaussian/binary dropout, the layer's
  ``.features`` for information dropout, with its ``.alpha`` and per-sample ``.kl``), and
- ``mc_draws`` noisy samples z ~ p(z | x) per input, drawn with MC dropout (noise switched on at
  inference, ``infodrop.nn.set_mc``; Appendix A.8), together with the network's MC predictions.

and computes, for each split and each estimator:

``'auto'`` (the estimator that suits the dropout kind)
    Gaussian dropout: the mixture estimator ``infodrop.mi.gaussian_dropout_mi`` (Sec. 4,
    Algorithm 1) with its pairwise bracket, for I(X;Z) and I(Z;Y).
    Information dropout: the variational upper bound I(X;Z) <= E_x KL(p(z|x) || prior), in closed
    form for the log-normal prior (softplus networks); for the log-uniform prior (ReLU) the KL is
    defined only up to a constant and is recorded with ``"is_mi": false`` (Appendix A.1).
    I(Z;Y) >= H(Y) - cross-entropy of the MC predictions (the variational lower bound that the
    training loss uses).
    Binary dropout: none (Theorems 3.1/3.2: I(X;Z) is infinite); only binning is available.
``'binning'``
    The plug-in estimate on the binned noisy samples Z (``infodrop.mi.binning_mi``) for every bin
    count in ``bins``: I(X;Z_b) with the sample index as X (= H(Z_b) - H(Z_b|X)) and I(Z_b;Y).

Every record is appended to ``output`` (JSON, written atomically) right away, together with the
configuration, the estimator names, the sample counts, the layer name and the dropout kind, so a
run that stops keeps everything recorded so far. The records are typed
(:mod:`infodrop.plane_record`: :class:`PlaneDocument`, :class:`PlaneRecord`, ...);
:meth:`InformationPlane.to_document` and :meth:`PlaneDocument.load` give them, while
:meth:`InformationPlane.record`, :meth:`InformationPlane.load` and ``.records`` give their JSON form. Only one split's representations are held in
memory at a time. All values are in nats.

Sample size. From N inputs, neither the plain mixture estimate nor a plug-in binning estimate of
I(X;Z) can exceed log N; a well-trained layer often sits near that ceiling, so the records also
keep ``i_xz_loo`` (the leave-one-out mixture value: over draws of the N inputs
E[i_xz] <= I(X;Z) <= E[i_xz_loo]) and the Monte Carlo standard errors. The mixture estimator costs
O(N^2 noise_samples d) per split (plus O(N^2 d) for the pairwise bracket, ``bounds=True``), so on a
CPU ``max_samples`` of a few thousand keeps a record to seconds. Before the first record the
tracker prints one line with the cost: the pairs (sample of Z, mixture component) it will score
per record and the time that takes on the device in use, from a short calibration there
(:meth:`InformationPlane.cost`).

Bands and saturation. Every point of every record carries

- ``i_xz``, ``i_xz_lower``, ``i_xz_upper`` (and ``i_zy``, ``i_zy_lower``, ``i_zy_upper``): the
  estimate and its band, in nats. For the mixture estimator the band is the estimator's own
  (``GaussianDropoutMI``: a lower and an upper estimate of I(X;Z) for the continuous input
  distribution with their Monte Carlo and data standard errors). For information dropout it is
  the KL bound +- ``BAND_Z`` standard errors of its mean over the N inputs (and likewise for the
  cross-entropy bound on I(Z;Y)): the band of the *bound* as an estimate of its population
  value, not of the gap between bound and mutual information. Binning has no band (None).
- ``log_n`` = log N, the most a plain mixture or plug-in estimate of I(X;Z) from N inputs can give,
  and ``saturated`` (bool): the value is pressed against that ceiling and measures the sample size,
  not the network; read such a point as "at least about log N". Mixture: the estimator's own
  criterion (``GaussianDropoutMI.saturated``). Binning: the Good-Turing coverage of the binned
  samples of Z (``infodrop.mi.binning_coverage``, recorded as ``coverage``) is below 1/2, i.e. more
  than half of the samples sit in a cell of their own, so the histogram has not seen the
  distribution of Z_b and its entropy is set by N. Information dropout: always False: the KL is an
  upper bound computed in closed form per input and is not capped at log N.

Sub-representations (``subsets``, Gaussian dropout only). For each size k the tracker estimates
I(X;Z_S) over random subsets S of k units (``infodrop.mi.unit_subset_mi``) and records the mean,
the standard deviation over subsets and the values under ``"subsets"``. By data processing
I(X;Z_S) <= I(X;Z), and for small k it stays below log N, so its dynamics show where the whole
layer's estimate is saturated.

Several processes. With ``distributed`` (default: whenever ``torch.distributed`` is initialised
with more than one process) every rank must call :meth:`record` for the same epoch: the ranks
share the mixture estimator's samples of Z (``gaussian_dropout_mi(..., distributed=True)``), get
the same numbers, and rank 0 alone writes the files.
"""

from __future__ import annotations

import contextlib
import csv as _csv
import io as _io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from infodrop.checks import as_labels, check_int, check_seed, resolve_device
from infodrop.io import save_npz, write_text
from infodrop.io.paths import check_output_file
from infodrop.mi import (
    # Binning: below this Good-Turing coverage most samples of Z_b sit in a cell of their own
    # (the rule is binning_mi's, which warns by it).
    SATURATION_COVERAGE,
    binning_coverage,
    binning_mi,
    gaussian_dropout_mi,
    information_dropout_izy_lower,
    information_dropout_mi,
    mixture_cost,
    unit_subset_mi,
)
from infodrop.nn import GaussianDropout, InformationDropout, continuous_dropout_layers, refreshed_batch_norm, set_mc
from infodrop.plane_record import (
    PLANE_FORMAT,
    BinningPoint,
    MixtureEstimate,
    PlaneDocument,
    PlaneRecord,
    SplitRecord,
    SubsetPoint,
    VariationalEstimate,
    load_terms,
    terms_key,
    terms_path,
)
from infodrop.plane_record import __all__ as _RECORD_NAMES

# The plane file's record types (infodrop.plane_record) are public names of this module too.
__all__ = [
    *_RECORD_NAMES,
    "InformationPlane",
    "InformationPlaneCallback",
    "records_to_csv",
    "representation_width",
    "saturation_counts",
    "saturation_summary",
]

_KNOWN_ESTIMATORS = ("auto", "binning")
# Half-width of the information-dropout bands in standard errors of the mean (about 95% for a
# normal sampling distribution of the mean; the mixture estimator's bands use the same 2).
BAND_Z = 2.0


# ------------------------------------------------------------------------------- layer handling


def _dropout_kind(module: nn.Module) -> str:
    """'gaussian', 'information' or 'binary' for a dropout module; ValueError for anything else."""
    if isinstance(module, GaussianDropout):
        return "gaussian"
    if isinstance(module, InformationDropout):
        return "information"
    if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
        return "binary"
    raise ValueError(
        f"layer must be a GaussianDropout, InformationDropout or torch.nn.Dropout module, got "
        f"{type(module).__name__}; pass the name of a dropout layer (see model.named_modules())"
    )


def _resolve_layer(model: nn.Module, layer: Any) -> tuple[str, nn.Module]:
    """(name, module) of the layer to track: the first continuous-dropout layer when ``layer`` is None."""
    if layer is None:
        found = list(continuous_dropout_layers(model))
        if not found:
            raise ValueError(
                "layer=None looks for the first GaussianDropout/InformationDropout layer, but the model "
                "has none; pass layer='<name>' of a torch.nn.Dropout layer to track binary dropout"
            )
        return found[0]
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            names = [name for name, module in model.named_modules() if _is_dropout(module)]
            raise ValueError(f"layer={layer!r} is not a module of the model; dropout layers are {names}")
        module = modules[layer]
        _dropout_kind(module)
        return layer, module
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                _dropout_kind(module)
                return name, module
        raise ValueError("layer is a module that is not part of the model; pass one of model.named_modules()")
    raise ValueError(f"layer must be None, a module name or a module, got {type(layer).__name__}")


def _is_dropout(module: nn.Module) -> bool:
    try:
        _dropout_kind(module)
    except ValueError:
        return False
    return True


# The cost line is printed once per process: a script that builds several trackers (a sweep in one
# process, a comparison of two networks) would otherwise repeat it before each one's first record.
_COST_LINE_PRINTED = False


def _cost_line_printed() -> None:
    global _COST_LINE_PRINTED
    _COST_LINE_PRINTED = True


def _as_dataset(data: Any, name: str) -> Dataset:
    """A Dataset of (input, label) pairs from a Dataset, a DataLoader (its dataset: the tracker
    walks it in order with its own batch size, so the loader's shuffling and batching do not change
    the record) or an (inputs, labels) pair of arrays."""
    if isinstance(data, DataLoader):
        if not isinstance(data.dataset, Dataset) or not hasattr(data.dataset, "__len__"):
            raise ValueError(f"{name}: the DataLoader's dataset must be a sized map-style Dataset of (input, label) pairs")
        data = data.dataset
    if isinstance(data, Dataset):
        if not hasattr(data, "__len__"):
            raise ValueError(f"{name} must be a sized Dataset (with __len__)")
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        if not isinstance(data[1], torch.Tensor) and np.asarray(data[1]).dtype.kind not in "biuf":
            as_labels(data[1], f"{name} labels", len(data[1]))  # raises the one-line message for class names
        inputs, labels = (torch.as_tensor(np.asarray(part)) if not isinstance(part, torch.Tensor) else part for part in data)
        if inputs.shape[0] != labels.shape[0]:
            raise ValueError(f"{name}: inputs have {inputs.shape[0]} rows but labels {labels.shape[0]}; pass one label per input")
        if labels.ndim != 1 or labels.is_floating_point():
            raise ValueError(f"{name}: labels must be a 1-D integer array, got shape {tuple(labels.shape)} dtype {labels.dtype}")
        return TensorDataset(inputs.float(), labels.long())
    raise ValueError(f"{name} must be a torch Dataset or DataLoader of (input, label) pairs, or a tuple (inputs, labels)")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _pair(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _band(value: float, stderr: float | None) -> tuple[float | None, float | None]:
    """value -+ BAND_Z standard errors, or (None, None) without a standard error."""
    if stderr is None:
        return None, None
    return value - BAND_Z * stderr, value + BAND_Z * stderr


def _entropy_of_labels(labels: np.ndarray) -> float:
    """Plug-in entropy H(Y) in nats of integer labels."""
    counts = np.bincount(labels).astype(np.float64)
    counts = counts[counts > 0]
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


class _Capture:
    """Forward hooks on the tracked layer: its input (noiseless f(x)) and its output (noisy Z)."""

    def __init__(self, module: nn.Module, kind: str) -> None:
        self.module = module
        self.kind = kind
        self.inputs: torch.Tensor | None = None
        self.outputs: torch.Tensor | None = None
        self._handles = [
            module.register_forward_pre_hook(self._pre),
            module.register_forward_hook(self._post),
        ]

    def _pre(self, module: nn.Module, args: tuple) -> None:
        self.inputs = args[0].detach() if args else None

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.outputs = output.detach() if isinstance(output, torch.Tensor) else None

    def noiseless(self) -> torch.Tensor:
        if self.kind == "information":
            return self.module.features
        return self.inputs

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(tensor.shape[0], -1)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2g} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _group_size() -> int:
    """Processes of the initialised torch.distributed group; 0 when none is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0
    return dist.get_world_size()


def _is_writer() -> bool:
    """Rank 0 of an initialised process group, or the only process."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def representation_width(model: nn.Module, data: Any, layer: Any = None) -> int:
    """Width d of the representation at ``layer`` (as :class:`InformationPlane` resolves it: None =
    the first continuous-dropout layer, a name or a module) for the inputs of ``data`` (a Dataset
    or an (inputs, labels) pair), from one forward pass of two inputs."""
    _, module = _resolve_layer(model, layer)
    return tracked_units(model, module, _dropout_kind(module), _as_dataset(data, "data"))


@torch.no_grad()
def tracked_units(model: nn.Module, layer: nn.Module, kind: str, dataset: Dataset) -> int:
    """Width d of the representation Z at ``layer`` (units per input, conv maps flattened), from one
    forward pass of the first two inputs of ``dataset`` in evaluation mode. The model's modes and
    the global random state are left as they were."""
    inputs = torch.stack([torch.as_tensor(dataset[index][0]) for index in range(min(2, len(dataset)))])
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    modes = {module: module.training for module in model.modules()}
    capture = _Capture(layer, kind)
    try:
        model.eval()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            model(inputs.to(device))
        if capture.inputs is None:
            raise ValueError("the tracked layer was not called in the model's forward pass; pass a layer that forward uses")
        return int(_flat(capture.noiseless()).shape[1])
    finally:
        capture.close()
        for module, mode in modes.items():
            module.training = mode


# ------------------------------------------------------------------------------------- tracker


class InformationPlane:
    """Record the information plane of one dropout layer during training.

    Args:
        model: the network (``forward`` returns logits N x classes).
        train_data, test_data: a torch Dataset of (input, label) pairs, or a pair (inputs, labels)
            of arrays; ``test_data`` may be None (training set only).
        layer: the tracked layer: None = the first GaussianDropout/InformationDropout layer, or a
            module name (``model.named_modules()``) or the module itself; a ``torch.nn.Dropout`` is
            accepted (binary dropout: binning only).
        estimators: any of ``'auto'`` (mixture estimator for Gaussian dropout, variational bounds
            for information dropout) and ``'binning'``.
        bins: bin counts for the binning estimator (equal-width bins over the global range of Z).
        noise_samples: noise draws per input inside the Gaussian mixture estimator.
        mc_draws: MC-dropout samples of Z per input for binning and for the MC predictions
            (cross-entropy of information dropout); 1 gives the classic binning H(Z_b).
        output: the JSON file the records go to (rewritten atomically after every record).
        csv: optional CSV file with one row per (epoch, split, estimator, bins).
        max_samples: use at most this many inputs per split (a fixed random subset, chosen once
            from ``seed``); None = all. The mixture estimator costs O(N^2 noise_samples d).
        batch_size: batch size of the forward passes.
        seed: seeds the subset, the MC noise and the estimators' noise; the training RNG state is
            left untouched (recording does not change the training run).
        device: device for the estimators (None = CUDA if available, else CPU). The forward
            passes run on the model's own device.
        append: keep the records already in ``output`` (resuming a run); records of an epoch that
            is recorded again are replaced.
        bounds: compute the pairwise bracket of the mixture estimator (O(N^2 d) elementwise work).
        subsets: sizes k of the random unit subsets whose I(X;Z_S) is recorded (Gaussian dropout;
            each k from 1 to the layer's width); empty = none. Each size costs ``subset_draws``
            mixture estimates.
        subset_draws: random subsets per size (>= 2 for a spread).
        distributed: share the mixture estimation over the processes of an initialised
            ``torch.distributed`` group (every rank calls :meth:`record`); None = when one with
            more than one process is initialised.
        dataset: name of the data set, kept in the file for the figures' titles.
        announce_cost: print the cost line before the first record (once per process: the first
            tracker that records prints it; :meth:`cost_line` gives it for any tracker).
        refresh_batch_norm: before each record, re-estimate the batch-norm statistics on the
            training split's inputs with the dropout noise on (the plane reads the noisy Z), and restore the training
            statistics after it (:func:`infodrop.nn.refreshed_batch_norm`): the running averages
            of noisy activations can make the network predict worse than the label frequencies,
            so that I(Z;Y) >= H(Y) - cross-entropy reads negative. No effect without batch norm.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Any,
        test_data: Any = None,
        *,
        layer: Any = None,
        estimators: Sequence[str] = ("auto", "binning"),
        bins: Sequence[int] = (10, 30, 100),
        noise_samples: int = 10,
        mc_draws: int = 1,
        output: str | os.PathLike = "plane.json",
        csv: str | os.PathLike | None = None,
        max_samples: int | None = None,
        batch_size: int = 512,
        seed: int = 0,
        device: Any = None,
        append: bool = False,
        bounds: bool = True,
        subsets: Sequence[int] = (),
        subset_draws: int = 8,
        distributed: bool | None = None,
        dataset: str | None = None,
        announce_cost: bool = True,
        refresh_batch_norm: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(estimators, str):
            estimators = (estimators,)
        estimators = tuple(estimators)
        if not estimators or any(name not in _KNOWN_ESTIMATORS for name in estimators):
            raise ValueError(f"estimators must be a non-empty subset of {_KNOWN_ESTIMATORS}, got {estimators!r}")
        if isinstance(bins, int):
            bins = (bins,)
        self.bins = tuple(check_int(b, "bins", minimum=1) for b in bins)
        if "binning" in estimators and not self.bins:
            raise ValueError("bins is empty but estimators include 'binning'; pass bin counts, e.g. bins=(10, 30, 100)")
        self.noise_samples = check_int(noise_samples, "noise_samples")
        self.mc_draws = check_int(mc_draws, "mc_draws")
        self.batch_size = check_int(batch_size, "batch_size")
        self.seed = check_seed(seed, "seed")
        if max_samples is not None:
            max_samples = check_int(max_samples, "max_samples", minimum=2)
        self.max_samples = max_samples
        self.device = resolve_device(device)
        if not isinstance(bounds, bool):
            raise ValueError(f"bounds must be True or False, got {bounds!r}")
        self.bounds = bounds
        if isinstance(subsets, (int, np.integer)):
            subsets = (subsets,)
        self.subsets = tuple(sorted({check_int(k, "subsets", minimum=1) for k in subsets}))
        self.subset_draws = check_int(subset_draws, "subset_draws")
        if distributed is None:
            distributed = _group_size() > 1
        elif not isinstance(distributed, bool):
            raise ValueError(f"distributed must be None, True or False, got {distributed!r}")
        elif distributed and _group_size() == 0:
            raise ValueError("distributed=True needs an initialised torch.distributed process group (torchrun); pass distributed=False")
        self.distributed = distributed
        if dataset is not None and not isinstance(dataset, str):
            raise ValueError(f"dataset must be a name (str) or None, got {type(dataset).__name__}")
        self.dataset = dataset
        self.announce_cost = bool(announce_cost)
        if not isinstance(refresh_batch_norm, bool):
            raise ValueError(f"refresh_batch_norm must be True or False, got {refresh_batch_norm!r}")
        self.refresh_batch_norm = refresh_batch_norm


        self.model = model
        self.layer_name, self.layer = _resolve_layer(model, layer)
        self.kind = _dropout_kind(self.layer)
        if self.kind == "binary" and "auto" in estimators:
            # Theorems 3.1/3.2: binary dropout leaves I(X;Z) infinite, so there is no 'auto' estimate.
            estimators = tuple(name for name in estimators if name != "auto")
            if not estimators:
                raise ValueError("binary dropout has no 'auto' estimator (I(X;Z) is infinite); use estimators=('binning',)")
        self.estimators = estimators

        self.splits: dict[str, Dataset] = {}
        self.sample_counts: dict[str, int] = {}
        for split, data in (("train", train_data), ("test", test_data)):
            if data is None:
                continue
            dataset = _as_dataset(data, f"{split}_data")
            size = len(dataset)
            if size < 2:
                raise ValueError(f"{split}_data has {size} samples; the estimators need at least 2")
            if max_samples is not None and size > max_samples:
                rng = np.random.default_rng(self.seed + (0 if split == "train" else 1))
                indices = np.sort(rng.choice(size, size=max_samples, replace=False))
                dataset = Subset(dataset, indices.tolist())
            self.splits[split] = dataset
            self.sample_counts[split] = len(dataset)
        if "train" not in self.splits:
            raise ValueError("train_data is required")
        self.units = tracked_units(model, self.layer, self.kind, self.splits["train"])
        if self.subsets:
            if self.kind != "gaussian":
                raise ValueError(
                    f"subsets={list(self.subsets)} needs a Gaussian-dropout layer (the mixture estimator); layer "
                    f"{self.layer_name!r} has {self.kind} dropout; pass subsets=()"
                )
            too_large = [k for k in self.subsets if k > self.units]
            if too_large:
                raise ValueError(
                    f"subsets={list(self.subsets)}: {too_large} exceed the {self.units} units of layer "
                    f"{self.layer_name!r}; use sizes from 1 to {self.units}"
                )


        # Checked now, not when the first record is written after minutes of estimating.
        self.output = check_output_file(output, "output")
        self.csv = check_output_file(csv, "csv") if csv is not None else None
        self._announced = False
        self._records: list[PlaneRecord] = []
        # Per-input terms of the mixture estimates by terms_key, saved beside the plane file.
        self._terms: dict[str, np.ndarray] = {}
        self._pending_terms: dict[tuple[int | None, int], np.ndarray | None] = {}  # (subset k, index) of this split
        if append and self.output.exists():
            self._records = list(PlaneDocument.load(self.output).records)
            self._terms = load_terms(self.output)

    # ---------------------------------------------------------------------------- description

    def estimator_names(self) -> dict[str, str]:
        """What each estimator key means for this layer's dropout kind."""
        names = {}
        if "auto" in self.estimators:
            if self.kind == "gaussian":
                names["auto"] = "gaussian-mixture"
            else:
                names["auto"] = "variational" if self._prior() == "log-normal" else "variational-kl (log-uniform prior: not an MI)"
        if "binning" in self.estimators:
            names["binning"] = "binning"
        return names

    def _prior(self) -> str | None:
        return getattr(self.layer, "prior", None) if self.kind == "information" else None

    def _variance(self) -> float | None:
        if self.kind != "gaussian":
            return None
        return float(self.layer.variance)

    def config(self) -> dict:
        return {
            "estimators": list(self.estimators),
            "bins": list(self.bins),
            "noise_samples": self.noise_samples,
            "mc_draws": self.mc_draws,
            "max_samples": self.max_samples,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "bounds": self.bounds,
            "subsets": list(self.subsets),
            "subset_draws": self.subset_draws,
            "distributed": self.distributed,
        }

    def to_document(self) -> PlaneDocument:
        """Everything the JSON file holds, typed: metadata and the records so far."""
        return PlaneDocument(
            records=list(self._records),
            layer=self.layer_name,
            dropout_kind=self.kind,
            variance=self._variance(),
            prior=self._prior(),
            estimators=self.estimator_names(),
            sample_counts=dict(self.sample_counts),
            config=self.config(),
            dataset=self.dataset,
            layer_units=self.units,
        )

    def document(self) -> dict:
        """The JSON form of :meth:`to_document`, as written to ``output``."""
        return self.to_document().to_json()

    @property
    def records(self) -> list[dict]:
        """The JSON form of the records so far, by epoch."""
        return [record.to_json() for record in self._records]

    # ------------------------------------------------------------------------------ recording

    def hook(self, epoch: int, model: nn.Module | None = None) -> dict:
        """Engine epoch hook ``hook(epoch, model) -> dict``: record every epoch; returns the flat
        numbers of the record for the epoch's metrics line (:meth:`PlaneRecord.summary`)."""
        return self.record_typed(epoch).summary()

    def as_hook(self, every: int = 1, *, last: int | None = None, first: int = 1) -> Callable[[int, nn.Module], dict | None]:
        """An engine epoch hook that records at epoch ``first`` (the engine's first epoch, 1: the
        early rise of I(X;Z)), when ``epoch % every == 0``, and at ``last`` (the final epoch) when
        given; other epochs return None. The schedule depends on the epoch alone, so a run
        resumed from a checkpoint records the epochs an uninterrupted run would. With
        ``distributed`` the hook is marked ``all_ranks`` so that the engine calls it on every rank."""
        every = check_int(every, "every")
        first = check_int(first, "first", minimum=0)

        def hook(epoch: int, model: nn.Module | None = None) -> dict | None:
            if epoch == first or epoch % every == 0 or (last is not None and epoch == last):
                return self.hook(epoch, model)
            return None

        hook.all_ranks = self.distributed
        return hook

    def record(self, epoch: int) -> dict:
        """Estimate the plane at this epoch on every split, append it to the records, save, and
        return the record's JSON form ``{"epoch", "train": {...}, "test": {...}}`` (values in nats)."""
        return self.record_typed(epoch).to_json()

    def record_typed(self, epoch: int) -> PlaneRecord:
        """:meth:`record`, returning the typed :class:`PlaneRecord`."""
        epoch = check_int(epoch, "epoch", minimum=0)
        with self._evaluation_statistics():
            splits = self._estimate_splits(epoch)
        record = PlaneRecord(epoch=epoch, **splits)
        self._records = [old for old in self._records if old.epoch != epoch] + [record]
        self._records.sort(key=lambda item: item.epoch)
        if _is_writer():
            self.save()
        return record

    def _evaluation_statistics(self) -> Any:
        """The batch-norm statistics the record evaluates with: refreshed on the training inputs
        with the dropout noise on when ``refresh_batch_norm``, else the training run's own."""
        if not self.refresh_batch_norm:
            return contextlib.nullcontext(0)
        try:
            device = next(self.model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        loader = DataLoader(self.splits["train"], batch_size=self.batch_size, shuffle=False)
        # noisy statistics: the plane reads the noisy Z, so the layers after it are normalised as in training
        return refreshed_batch_norm(self.model, (inputs.to(device) for inputs, _ in loader), noise=True)

    def _estimate_splits(self, epoch: int) -> dict[str, SplitRecord]:
        splits: dict[str, SplitRecord] = {}
        for split_index, (split, dataset) in enumerate(self.splits.items()):
            # One split's representations at a time: collected, estimated, released.
            captured = self._collect(dataset, epoch, split_index)
            if self.announce_cost and not self._announced:
                self._announced = True
                if _is_writer() and not _COST_LINE_PRINTED:
                    _cost_line_printed()
                    print(self.cost_line(n_classes=len(np.unique(captured["labels"]))), flush=True)
            splits[split] = self._estimate(captured)
            for (subset, index), terms in self._pending_terms.items():
                if terms is not None:
                    self._terms[terms_key(epoch, split, subset, index)] = terms
            self._pending_terms = {}
            del captured
        return splits

    # --------------------------------------------------------------------------------- cost

    def pairs_per_record(self) -> int:
        """Pairs (sample of Z, mixture component) the mixture estimator scores in one record:
        N^2 * noise_samples per split for the whole layer, and as many again for each of the
        ``subset_draws`` subsets of each size in ``subsets``. 0 without a mixture estimate."""
        if self.kind != "gaussian" or "auto" not in self.estimators:
            return 0
        estimates = 1 + len(self.subsets) * self.subset_draws
        return sum(n * n * self.noise_samples * estimates for n in self.sample_counts.values())

    def cost(self, n_classes: int = 0) -> dict:
        """Expected cost of one record on ``self.device``: ``{"pairs", "bound_pairs", "seconds",
        "device", "processes", "pairs_per_second"}``, from :func:`infodrop.mi.mixture_cost` with
        a short calibration pass on the device (the whole layer at its width with this tracker's
        options, each subset size at its own width; the subset estimates are not shared over
        processes). ``seconds`` is None without a mixture estimate."""
        processes = max(1, _group_size()) if self.distributed else 1
        out = {"pairs": self.pairs_per_record(), "bound_pairs": 0, "seconds": None, "device": str(self.device),
               "processes": processes, "pairs_per_second": None}
        if out["pairs"] == 0:
            return out
        seconds = 0.0
        largest = max(self.sample_counts.values())
        for n in self.sample_counts.values():
            whole = mixture_cost(n, self.units, self.noise_samples, bounds=self.bounds, n_classes=n_classes,
                                 world_size=processes, device=self.device, calibrate=True)
            seconds += whole.seconds
            out["bound_pairs"] += whole.bound_pairs
            out["pairs_per_second"] = out["pairs_per_second"] or whole.pairs_per_second
        for k in self.subsets:
            # The subset pass has no bounds, so its time is linear in the pairs: calibrate once.
            part = mixture_cost(largest, k, self.noise_samples, n_classes=n_classes, device=self.device, calibrate=True)
            pairs = sum(n * n * self.noise_samples for n in self.sample_counts.values())
            seconds += self.subset_draws * pairs / part.pairs_per_second
        out["seconds"] = seconds
        return out

    def cost_line(self, n_classes: int = 0) -> str:
        """The one line printed before the first record: pairs and expected time per record."""
        counts = " + ".join(f"{n} {split}" for split, n in self.sample_counts.items())
        if self.pairs_per_record() == 0:
            return (f"plane cost: no mixture estimate ({self.kind} dropout, estimators {list(self.estimators)}); "
                    f"each record is O(N) on {counts} inputs")
        cost = self.cost(n_classes)
        bound = f" + {cost['bound_pairs']:.3g} pairs of the pairwise bracket" if cost["bound_pairs"] else ""
        subsets = f", {len(self.subsets)} subset sizes x {self.subset_draws} subsets" if self.subsets else ""
        shared = f", shared by {cost['processes']} processes" if cost["processes"] > 1 else ""
        return (f"plane cost: {cost['pairs']:.3g} pairs{bound} per record ({counts} inputs, {self.noise_samples} noise "
                f"samples{subsets}{shared}), about {_duration(cost['seconds'])} per record on {cost['device']} "
                f"(calibrated at {cost['pairs_per_second']:.3g} pairs/s)")

    def samples(self, split: str = "train", *, epoch: int = 0) -> dict:
        """The representations one record would use, without estimating anything: ``features``
        (noiseless f(x), N x d), ``noisy`` (MC-dropout samples of Z, mc_draws x N x d), ``labels``
        (N), ``log_probs`` (mc_draws x N, log q(y_i|z)), ``alpha``/``kl`` (information dropout).
        ``epoch`` only seeds the noise, as in :meth:`record`."""
        if split not in self.splits:
            raise ValueError(f"split must be one of {list(self.splits)}, got {split!r}")
        epoch = check_int(epoch, "epoch", minimum=0)
        return self._collect(self.splits[split], epoch, list(self.splits).index(split))

    def save(self) -> Path:
        """Write the plane file (and the CSV, and the per-input terms beside them), atomically."""
        self.to_document().save(self.output)
        if self._terms:
            save_npz(terms_path(self.output), **self._terms)
        if self.csv is not None:
            write_text(self.csv, self.to_csv())
        return self.output

    @torch.no_grad()
    def _collect(self, dataset: Dataset, epoch: int, split_index: int) -> dict:
        model = self.model
        modes = {module: module.training for module in model.modules()}
        mc_flags = {
            module: module.mc for module in model.modules() if isinstance(module, (GaussianDropout, InformationDropout))
        }
        try:
            parameter = next(model.parameters())
            model_device = parameter.device
        except StopIteration:
            model_device = torch.device("cpu")
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
        capture = _Capture(self.layer, self.kind)
        features, alphas, kls, labels, noisy, log_probs, correct = [], [], [], [], [], [], 0
        fork_devices = [model_device] if model_device.type == "cuda" else []
        try:
            model.eval()
            # MC dropout at inference (Appendix A.8): noise on, everything else in eval mode.
            set_mc(model, True)
            if self.kind == "binary":
                self.layer.train()
            with torch.random.fork_rng(devices=fork_devices):
                torch.manual_seed(self.seed * 1_000_003 + epoch * 2 + split_index)
                for draw in range(self.mc_draws):
                    draw_z, draw_log_probs = [], []
                    for inputs, targets in loader:
                        if not isinstance(targets, torch.Tensor):
                            raise ValueError(f"the labels of the tracked data must be integer class labels, got "
                                             f"{type(targets).__name__} of {type(targets[0]).__name__}; map class names to 0..C-1")
                        inputs = inputs.to(model_device)
                        logits = model(inputs)
                        if capture.outputs is None or capture.inputs is None:
                            raise RuntimeError(f"the tracked layer {self.layer_name!r} was not called in the forward pass")
                        draw_z.append(_flat(capture.outputs).float().cpu())
                        draw_log_probs.append(torch.log_softmax(logits.float(), dim=1).gather(1, targets.to(model_device).long().view(-1, 1)).view(-1).cpu())
                        if draw == 0:
                            features.append(_flat(capture.noiseless()).float().cpu())
                            labels.append(targets.long().cpu())
                            correct += int((logits.argmax(dim=1).cpu() == targets.cpu()).sum())
                            if self.kind == "information":
                                alphas.append(_flat(self.layer.alpha).float().cpu())
                                kls.append(self.layer.kl.reshape(-1).double().cpu())
                        capture.inputs = capture.outputs = None
                    noisy.append(torch.cat(draw_z))
                    log_probs.append(torch.cat(draw_log_probs))
        finally:
            capture.close()
            for module, flag in mc_flags.items():
                module.mc = flag
            for module, mode in modes.items():
                module.training = mode
        label_tensor = torch.cat(labels)
        return {
            "features": torch.cat(features),
            "labels": label_tensor.numpy(),
            "noisy": torch.stack(noisy),  # draws x N x d
            "log_probs": torch.stack(log_probs).double(),  # draws x N: log q(y_i | z)
            "alpha": torch.cat(alphas) if alphas else None,
            "kl": torch.cat(kls) if kls else None,
            "mc_accuracy": correct / len(label_tensor),
        }

    def _estimate(self, captured: dict) -> SplitRecord:
        labels = captured["labels"]
        auto = None
        if "auto" in self.estimators:
            auto = self._estimate_gaussian(captured) if self.kind == "gaussian" else self._estimate_information(captured)
        return SplitRecord(
            n=len(labels),
            mc_accuracy=captured["mc_accuracy"],
            cross_entropy=float(-captured["log_probs"].mean()),
            h_y=_entropy_of_labels(labels),
            auto=auto,
            binning=self._estimate_binning(captured) if "binning" in self.estimators else None,
            subsets=self._estimate_subsets(captured) if self.subsets else None,
        )

    def _estimate_gaussian(self, captured: dict) -> MixtureEstimate:
        """The mixture estimator (Sec. 4, Algorithm 1) with its band, ceiling and saturation flags."""
        estimate = gaussian_dropout_mi(
            captured["features"],
            self._variance(),
            labels=captured["labels"],
            noise_samples=self.noise_samples,
            seed=self.seed,
            device=self.device,
            bounds=self.bounds,
            distributed=self.distributed,
        )
        self._pending_terms[(None, 0)] = estimate.i_xz_terms
        return MixtureEstimate(
            i_xz=float(estimate.i_xz),
            i_zy=_number(estimate.i_zy),
            i_xz_bounds=_pair(estimate.i_xz_bounds),
            i_zy_bounds=_pair(estimate.i_zy_bounds),
            i_xz_loo=_number(estimate.i_xz_loo),
            i_xz_stderr=_number(estimate.i_xz_stderr),
            i_zy_stderr=_number(estimate.i_zy_stderr),
            h_z=float(estimate.h_z),
            h_z_given_x=float(estimate.h_z_given_x),
            h_z_gaussian_upper=_number(estimate.h_z_gaussian_upper),
            is_mi=True,
            i_xz_lower=float(estimate.i_xz_lower),
            i_xz_upper=float(estimate.i_xz_upper),
            i_zy_lower=_number(estimate.i_zy_lower),
            i_zy_upper=_number(estimate.i_zy_upper),
            log_n=float(estimate.log_n),
            saturated=bool(estimate.saturated),
            i_xz_sensitivity=float(estimate.i_xz_sensitivity),
            i_zy_saturated=None if estimate.i_zy_saturated is None else bool(estimate.i_zy_saturated),
        )

    def _estimate_information(self, captured: dict) -> VariationalEstimate:
        """The variational bounds of Achille & Soatto that training optimises, with the band of
        each bound: +- BAND_Z standard errors of its mean over the N inputs."""
        prior = self._prior()
        options = {"prior": prior}
        if prior == "log-normal":
            options.update(mu=float(self.layer.mu1.detach()), sigma=abs(float(self.layer.sigma1.detach())))
        upper = information_dropout_mi(captured["features"], captured["alpha"], **options)
        # Per-input cross-entropy of the MC predictions, averaged over the draws.
        lower = information_dropout_izy_lower(captured["labels"], -captured["log_probs"].mean(dim=0))
        xz_band = _band(upper.value, upper.stderr)
        zy_band = _band(lower.value, lower.stderr)
        return VariationalEstimate(
            i_xz=upper.value,
            i_zy=lower.value,
            i_xz_kind=upper.kind,
            i_zy_kind=lower.kind,
            is_mi=bool(upper.is_mutual_information),
            kl_training=float(captured["kl"].mean()),
            n_clamped=upper.n_clamped,
            note=None if upper.is_mutual_information else (
                "log-uniform prior (ReLU): the KL is known only up to a constant; not an MI value (Appendix A.1)"
            ),
            i_xz_lower=xz_band[0],
            i_xz_upper=xz_band[1],
            i_zy_lower=zy_band[0],
            i_zy_upper=zy_band[1],
            i_xz_stderr=upper.stderr,
            i_zy_stderr=lower.stderr,
            log_n=math.log(upper.n_samples),
            # The KL is computed in closed form per input, not from a mixture of N components:
            # nothing caps it at log N.
            saturated=False,
        )

    def _estimate_binning(self, captured: dict) -> dict[str, BinningPoint]:
        noisy = captured["noisy"]  # draws x N x d
        draws, n, width = noisy.shape
        z = noisy.reshape(draws * n, width).numpy().astype(np.float64)
        index = np.tile(np.arange(n, dtype=np.int64), draws)
        labels = np.tile(captured["labels"], draws)
        span = float(z.max() - z.min())
        out = {}
        for b in self.bins:
            coverage = binning_coverage(z, bins=b)
            out[str(b)] = BinningPoint(
                # The record carries the flag itself (below), so binning_mi need not warn.
                i_xz=binning_mi(z, index, bins=b, y_discrete=True, warn_saturated=False),
                i_zy=binning_mi(z, labels, bins=b, y_discrete=True, warn_saturated=False),
                bin_size=span / b,
                # With the input's index as X the plug-in I(X;Z_b) <= H(X) = log N.
                log_n=math.log(n),
                coverage=coverage,
                saturated=coverage < SATURATION_COVERAGE,
            )
        return out

    def _estimate_subsets(self, captured: dict) -> dict[str, SubsetPoint]:
        """I(X;Z_S) and I(Z_S;Y) over random subsets S of k units, for each k in ``subsets`` (nats):
        the mean, the standard deviation over subsets and each subset's value, band and flag.
        ``saturated`` of the point is True when any of its subsets is saturated."""
        out = {}
        for k in self.subsets:
            # Every rank computes the (small) subset estimates itself; they agree, as they use the
            # same features and seeds.
            result = unit_subset_mi(captured["features"], self._variance(), k, subsets=self.subset_draws,
                                    noise_samples=self.noise_samples, seed=self.seed, device=self.device,
                                    labels=captured["labels"])
            for index, terms in enumerate(result.terms or ()):
                self._pending_terms[(k, index)] = terms
            out[str(k)] = SubsetPoint(
                k=k,
                mean=float(result.mean),
                std=float(result.std),
                values=[float(value) for value in result.values],
                i_zy=_number(result.i_zy_mean),
                i_zy_std=_number(result.i_zy_std),
                i_zy_values=[float(value) for value in result.i_zy_values],
                lower=[float(value) for value in result.lower],
                upper=[float(value) for value in result.upper],
                units=[[int(unit) for unit in subset] for subset in result.subsets],
                log_n=math.log(len(captured["labels"])),
                saturated=result.saturated,
                saturated_subsets=list(result.saturated_subsets),
                sensitivity=[float(value) for value in result.sensitivity],
            )
        return out

    # -------------------------------------------------------------------------------- reading

    def to_csv(self) -> str:
        return records_to_csv(self.to_document())

    @staticmethod
    def load(path: str | os.PathLike) -> dict:
        """Read a plane JSON file; returns its JSON form (``"records"`` plus the metadata), checked
        by :meth:`PlaneDocument.load` (which returns the typed document)."""
        return PlaneDocument.load(path).to_json()


CSV_COLUMNS = ["epoch", "split", "estimator", "bins", "k", "i_xz", "i_zy", "i_xz_lower", "i_xz_upper", "i_zy_lower",
               "i_zy_upper", "log_n", "saturated", "i_xz_std", "i_xz_bounds_lower", "i_xz_bounds_upper",
               "i_zy_bounds_lower", "i_zy_bounds_upper", "sensitivity"]


def records_to_csv(document: PlaneDocument | dict) -> str:
    """One CSV row per (epoch, split, estimator, bins or subset size k), columns ``CSV_COLUMNS``:
    the estimates, their band (``i_xz_lower``..``i_zy_upper``), ``log_n`` and ``saturated``, the
    spread over subsets (``i_xz_std``) and the pairwise bracket of the mixture
    (``i_xz_bounds_*``, ``i_zy_bounds_*``) and ``sensitivity``, how many nats the mixture
    estimate moves per nat of true change (1: it follows the truth; below 1/2: saturated; the
    mean over the subsets for a subset size); empty where a value does not exist or was not
    recorded (files written before bands were recorded)."""
    if isinstance(document, dict):
        document = PlaneDocument.from_json(document)
    buffer = _io.StringIO()
    writer = _csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="")
    writer.writeheader()

    def row(**values: Any) -> None:
        writer.writerow({key: ("" if value is None else value) for key, value in values.items()})

    for record in document.records:
        for split, values in record.splits().items():
            auto = values.auto
            if auto is not None:
                xz = getattr(auto, "i_xz_bounds", None) or (None, None)
                zy = getattr(auto, "i_zy_bounds", None) or (None, None)
                row(epoch=record.epoch, split=split, estimator="auto", i_xz=auto.i_xz, i_zy=auto.i_zy,
                    **{key: getattr(auto, key) for key in ("i_xz_lower", "i_xz_upper", "i_zy_lower", "i_zy_upper", "log_n", "saturated")},
                    i_xz_bounds_lower=xz[0], i_xz_bounds_upper=xz[1], i_zy_bounds_lower=zy[0], i_zy_bounds_upper=zy[1],
                    sensitivity=getattr(auto, "i_xz_sensitivity", None))
            for b, point in (values.binning or {}).items():
                row(epoch=record.epoch, split=split, estimator="binning", bins=b, i_xz=point.i_xz, i_zy=point.i_zy,
                    log_n=point.log_n, saturated=point.saturated)
            for k, point in (values.subsets or {}).items():
                row(epoch=record.epoch, split=split, estimator="subsets", k=k, i_xz=point.mean, i_zy=point.i_zy,
                    i_xz_std=point.std, log_n=point.log_n, saturated=point.saturated,
                    sensitivity=float(np.mean(point.sensitivity)) if point.sensitivity else None)
    return buffer.getvalue()


# ------------------------------------------------------------------------------- saturation


def _saturation_flags(document: PlaneDocument) -> dict[str, list[tuple[str, bool | None]]]:
    """For each estimator (``auto``, ``binning <b> bins``): one (split, saturated) per recorded point;
    saturated is None in files written before it was recorded."""
    points: dict[str, list[tuple[str, bool | None]]] = {}
    for record in document.sorted_records():
        for split, values in record.splits().items():
            if values.auto is not None:
                points.setdefault("auto", []).append((split, getattr(values.auto, "saturated", None)))
            for b, point in sorted((values.binning or {}).items(), key=lambda item: int(item[0])):
                points.setdefault(f"binning {b} bins", []).append((split, point.saturated))
    return points


def saturation_counts(document: PlaneDocument | dict) -> dict[str, dict[str, int]]:
    """How many recorded points are saturated, per estimator and split:
    ``{estimator: {"saturated", "points", "unknown", "train", "train_points", ...}}`` (``unknown``
    counts points of files written before saturation was recorded)."""
    if isinstance(document, dict):
        document = PlaneDocument.from_json(document)
    counts: dict[str, dict[str, int]] = {}
    for name, points in _saturation_flags(document).items():
        entry = {"saturated": 0, "points": len(points), "unknown": 0}
        for split, flag in points:
            entry.setdefault(split, 0)
            entry[f"{split}_points"] = entry.get(f"{split}_points", 0) + 1
            if flag is None:
                entry["unknown"] += 1
            elif flag:
                entry["saturated"] += 1
                entry[split] += 1
        counts[name] = entry
    return counts


def saturation_summary(document: PlaneDocument | dict) -> list[str]:
    """Sentences for a run's summary: how many recorded points are saturated (pressed against
    log N, so they measure the sample size and read "at least about log N"), per estimator."""
    if isinstance(document, dict):
        document = PlaneDocument.from_json(document)
    counts = saturation_counts(document)
    if not counts:
        return ["saturation: no points recorded"]
    auto_name = document.estimators.get("auto", "auto")
    lines = []
    for name, entry in counts.items():
        label = auto_name if name == "auto" else name
        if entry["unknown"] == entry["points"]:
            lines.append(f"{label}: saturation not recorded (file written before it was)")
            continue
        splits = ", ".join(f"{split} {entry[split]}/{entry[f'{split}_points']}" for split in ("train", "test") if f"{split}_points" in entry)
        known = entry["points"] - entry["unknown"]
        if entry["saturated"] == 0:
            verdict = "none is pressed against log N"
        elif entry["saturated"] == known:
            verdict = "all are pressed against log N: they measure the sample size, not the network"
        else:
            verdict = "those are pressed against log N and read only as 'at least about log N'"
        lines.append(f"{label}: {entry['saturated']} of {known} recorded points saturated ({splits}); {verdict}")
    closest = _closest_to_saturation(document)
    if closest is not None:
        lines.append(closest)
    return lines


def _closest_to_saturation(document: PlaneDocument) -> str | None:
    """The unsaturated mixture point with the lowest sensitivity, in words: 'not saturated' does
    not mean unbiased, and a point that moves 0.7 nats per nat of truth reads low."""
    points = [(record.epoch, split, values.auto.i_xz_sensitivity)
              for record in document.sorted_records() for split, values in record.splits().items()
              if isinstance(values.auto, MixtureEstimate) and values.auto.i_xz_sensitivity is not None
              and not values.auto.saturated]
    if not points:
        return None
    epoch, split, sensitivity = min(points, key=lambda point: point[2])
    return (f"sensitivity of the unsaturated mixture points (nats moved per nat of true change, 1 = follows the truth, "
            f"< 0.5 = saturated): lowest {sensitivity:.2f} ({split}, epoch {epoch}); not saturated does not mean "
            f"unbiased: points well below 1 can still read several percent low")


def __getattr__(name: str) -> Any:
    # The Lightning callback is imported on first use: importing lightning takes seconds, and
    # infodrop.plane must import without it.
    if name == "InformationPlaneCallback":
        from infodrop.plane_callback import InformationPlaneCallback

        return InformationPlaneCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
