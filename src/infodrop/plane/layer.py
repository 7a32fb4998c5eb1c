"""The tracked layer of an information plane: which module it is, its dropout kind and width, and
what it computes for a split of the data (Adilova, Geiger & Fischer, ICLR 2023, Sec. 5 and
Appendix A.8).

Z is the representation at ONE dropout layer, by default the first continuous-dropout layer of
the model (the part of the network before it is deterministic, so Z | X is known in closed form).
:func:`collect` runs a split through the model in evaluation mode without gradients and captures,
through forward hooks on that layer, the noiseless f(x) (the layer's input for Gaussian/binary
dropout, its ``.features`` for information dropout, with ``.alpha`` and the per-sample ``.kl``) and
``mc_draws`` noisy samples z ~ p(z | x) per input, drawn with MC dropout (noise on at inference,
:func:`infodrop.nn.set_mc`), with the network's MC predictions: a :class:`Representations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from infodrop.checks import as_labels
from infodrop.nn import GaussianDropout, InformationDropout, continuous_dropout_layers, set_mc

__all__ = ["Capture", "Representations", "as_dataset", "collect", "dropout_kind", "model_device", "representation_width",
           "resolve_layer", "subsample", "tracked_units"]


def dropout_kind(module: nn.Module) -> str:
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


def _is_dropout(module: nn.Module) -> bool:
    try:
        dropout_kind(module)
    except ValueError:
        return False
    return True


def resolve_layer(model: nn.Module, layer: Any) -> tuple[str, nn.Module]:
    """(name, module) of the layer to track: the first continuous-dropout layer when ``layer`` is
    None, else the module of that name, or that module of the model."""
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
        dropout_kind(modules[layer])
        return layer, modules[layer]
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                dropout_kind(module)
                return name, module
        raise ValueError("layer is a module that is not part of the model; pass one of model.named_modules()")
    raise ValueError(f"layer must be None, a module name or a module, got {type(layer).__name__}")


def as_dataset(data: Any, name: str) -> Dataset:
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


def subsample(dataset: Dataset, max_samples: int | None, seed: int, name: str) -> Dataset:
    """At most ``max_samples`` inputs of ``dataset``: a fixed random subset, in order, chosen from
    ``seed`` (None = all). ``name`` names the data in the error for fewer than 2 inputs."""
    size = len(dataset)
    if size < 2:
        raise ValueError(f"{name} has {size} samples; the estimators need at least 2")
    if max_samples is None or size <= max_samples:
        return dataset
    indices = np.sort(np.random.default_rng(seed).choice(size, size=max_samples, replace=False))
    return Subset(dataset, indices.tolist())


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (CPU for a model without any)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(tensor.shape[0], -1)


class Capture:
    """Forward hooks on the tracked layer: its input (noiseless f(x)) and its output (noisy Z)."""

    def __init__(self, module: nn.Module, kind: str) -> None:
        self.module = module
        self.kind = kind
        self.inputs: torch.Tensor | None = None
        self.outputs: torch.Tensor | None = None
        self._handles = [module.register_forward_pre_hook(self._pre), module.register_forward_hook(self._post)]

    def _pre(self, module: nn.Module, args: tuple) -> None:
        self.inputs = args[0].detach() if args else None

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.outputs = output.detach() if isinstance(output, torch.Tensor) else None

    def noiseless(self) -> torch.Tensor:
        """f(x), one row per input (conv maps flattened)."""
        return _flat(self.module.features if self.kind == "information" else self.inputs)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


class _KeptModes:
    """Restores every module's training flag and the dropout layers' ``mc`` flag on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.modes = {module: module.training for module in model.modules()}
        self.mc = {module: module.mc for module in model.modules() if isinstance(module, (GaussianDropout, InformationDropout))}

    def __enter__(self) -> "_KeptModes":
        return self

    def __exit__(self, *exc: Any) -> None:
        for module, flag in self.mc.items():
            module.mc = flag
        for module, mode in self.modes.items():
            module.training = mode


@torch.no_grad()
def tracked_units(model: nn.Module, layer: nn.Module, kind: str, dataset: Dataset) -> int:
    """Width d of the representation Z at ``layer`` (units per input, conv maps flattened), from one
    forward pass of the first two inputs of ``dataset`` in evaluation mode. The model's modes and
    the global random state are left as they were."""
    inputs = torch.stack([torch.as_tensor(dataset[index][0]) for index in range(min(2, len(dataset)))])
    device = model_device(model)
    capture = Capture(layer, kind)
    try:
        with _KeptModes(model), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            model.eval()
            model(inputs.to(device))
            if capture.inputs is None:
                raise ValueError("the tracked layer was not called in the model's forward pass; pass a layer that forward uses")
            return int(capture.noiseless().shape[1])
    finally:
        capture.close()


def representation_width(model: nn.Module, data: Any, layer: Any = None) -> int:
    """Width d of the representation at ``layer`` (as :class:`~infodrop.plane.InformationPlane`
    resolves it: None = the first continuous-dropout layer, a name or a module) for the inputs of
    ``data`` (a Dataset or an (inputs, labels) pair), from one forward pass of two inputs."""
    _, module = resolve_layer(model, layer)
    return tracked_units(model, module, dropout_kind(module), as_dataset(data, "data"))


@dataclass
class Representations:
    """One split's representations at the tracked layer, as one record uses them (N inputs, d
    units, D = mc_draws): ``features`` f(x) (N x d), ``noisy`` MC-dropout samples of Z
    (D x N x d), ``labels`` (N, int), ``log_probs`` log q(y_i | z) of the MC predictions (D x N,
    float64), ``alpha`` (N x d) and per-sample ``kl`` (N, float64) for information dropout (else
    None), and ``mc_accuracy`` of the first draw's predictions."""

    features: torch.Tensor
    noisy: torch.Tensor
    labels: np.ndarray
    log_probs: torch.Tensor
    alpha: torch.Tensor | None
    kl: torch.Tensor | None
    mc_accuracy: float


@torch.no_grad()
def collect(model: nn.Module, layer: nn.Module, kind: str, dataset: Dataset, *, mc_draws: int, batch_size: int,
            seed: int, layer_name: str = "layer") -> Representations:
    """Run ``dataset`` through ``model`` ``mc_draws`` times with MC dropout (noise on, everything
    else in eval mode; Appendix A.8) and capture the tracked ``layer`` (of dropout ``kind``).
    ``seed`` seeds the noise; the training RNG state, the modes and the ``mc`` flags are left as
    they were."""
    device = model_device(model)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    capture = Capture(layer, kind)
    first: dict[str, list] = {"features": [], "labels": [], "alpha": [], "kl": []}
    noisy, log_probs, correct = [], [], 0
    try:
        with _KeptModes(model), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            model.eval()
            set_mc(model, True)
            if kind == "binary":
                layer.train()
            torch.manual_seed(seed)
            for draw in range(mc_draws):
                draw_z, draw_log_probs = [], []
                for inputs, targets in loader:
                    if not isinstance(targets, torch.Tensor):
                        raise ValueError(f"the labels of the tracked data must be integer class labels, got "
                                         f"{type(targets).__name__} of {type(targets[0]).__name__}; map class names to 0..C-1")
                    logits = model(inputs.to(device))
                    if capture.outputs is None or capture.inputs is None:
                        raise RuntimeError(f"the tracked layer {layer_name!r} was not called in the forward pass")
                    draw_z.append(_flat(capture.outputs).float().cpu())
                    picked = torch.log_softmax(logits.float(), dim=1).gather(1, targets.to(device).long().view(-1, 1))
                    draw_log_probs.append(picked.view(-1).cpu())
                    if draw == 0:
                        correct += int((logits.argmax(dim=1).cpu() == targets.cpu()).sum())
                        _keep_first(first, capture, layer, kind, targets)
                    capture.inputs = capture.outputs = None
                noisy.append(torch.cat(draw_z))
                log_probs.append(torch.cat(draw_log_probs))
    finally:
        capture.close()
    labels = torch.cat(first["labels"])
    return Representations(
        features=torch.cat(first["features"]),
        noisy=torch.stack(noisy),
        labels=labels.numpy(),
        log_probs=torch.stack(log_probs).double(),
        alpha=torch.cat(first["alpha"]) if first["alpha"] else None,
        kl=torch.cat(first["kl"]) if first["kl"] else None,
        mc_accuracy=correct / len(labels),
    )


def _keep_first(first: dict[str, list], capture: Capture, layer: nn.Module, kind: str, targets: torch.Tensor) -> None:
    """The first draw's noiseless features, labels and (information dropout) alpha and KL of a batch."""
    first["features"].append(capture.noiseless().float().cpu())
    first["labels"].append(targets.long().cpu())
    if kind == "information":
        first["alpha"].append(_flat(layer.alpha).float().cpu())
        first["kl"].append(layer.kl.reshape(-1).double().cpu())
