"""Where the engine's batches come from, and how the progress bar learns the running loss.

Two sources give the same training batches in the same order for the same seed:

- a :class:`~torch.utils.data.DataLoader` over any map-style dataset: each batch is collated on
  the host and copied to the device (from pinned memory, without blocking, on CUDA);
- :class:`DeviceTensors`: the dataset's two tensors kept on the device, each batch gathered there
  by index. The indices come from :func:`index_loader`, a DataLoader over ``range(N)`` built with
  the data loader's own sampler, generator and ``drop_last``, so it draws the same permutation
  from the same generator (and leaves the generator in the state the checkpoint stores).

Keeping the data on the device removes from every step the host-side collation of
``batch_size`` samples, the copy into pinned memory and the host-to-device copy; one copy of the
epoch's indices remains. :func:`place_on_device` decides, with the rule in its docstring.

:class:`LastKnown` gives a progress bar the epoch's running values without making the host wait
for the device: a copy is started every few steps and shown once it has arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

__all__ = ["DEVICE_DATA_FRACTION", "DeviceTensors", "LastKnown", "datasets_to_place", "epoch_indices", "evaluation_batches",
           "free_device_memory", "index_loader", "place_on_device"]

# The share of the device's free memory that data sets kept on it may take: the rest stays for
# the activations, the optimiser state and other jobs on the same device (a sweep with
# jobs_per_device > 1 starts several trainings on one GPU).
DEVICE_DATA_FRACTION = 0.25


@dataclass(frozen=True)
class DeviceTensors:
    """A data set as two tensors on one device: ``inputs`` N x ..., ``labels`` N."""

    inputs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def nbytes(self) -> int:
        return _nbytes(self.inputs) + _nbytes(self.labels)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _tensor_pair(dataset: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (inputs, labels) tensors of a TensorDataset of two equally long tensors, else None."""
    if not isinstance(dataset, TensorDataset) or len(dataset.tensors) != 2:
        return None
    inputs, labels = dataset.tensors
    if inputs.shape[0] != labels.shape[0]:
        return None
    return inputs, labels


def free_device_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` as its driver reports them; None where torch cannot tell (CPU,
    and accelerators other than CUDA)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def place_on_device(datasets: dict[str, Any], device: torch.device, requested: bool | None) -> dict[str, DeviceTensors | None]:
    """Keep on ``device`` those of ``datasets`` (name -> dataset) that :func:`datasets_to_place`
    picks; returns name -> :class:`DeviceTensors` (None where the DataLoader stays). On the CPU
    the tensors are the data set's own (no copy)."""
    chosen = datasets_to_place(datasets, device, requested)
    placed: dict[str, DeviceTensors | None] = {}
    for name, dataset in datasets.items():
        pair = _tensor_pair(dataset) if name in chosen else None
        placed[name] = None if pair is None else DeviceTensors(pair[0].to(device), pair[1].to(device))
    return placed


def datasets_to_place(datasets: dict[str, Any], device: torch.device, requested: bool | None) -> list[str]:
    """The names of ``datasets`` (name -> dataset, in order of preference) to keep on ``device``.

    - ``requested=False``: none.
    - ``requested=None`` (automatic): on CUDA, every TensorDataset of (inputs, labels) whose
      bytes, added to those of the data sets placed before it, stay within
      ``DEVICE_DATA_FRACTION`` of the free device memory measured now; on any other device none
      (on the CPU the tensors already are where the model computes; other accelerators do not
      report their free memory).
    - ``requested=True``: every data set, on any device, CPU included; one that is not a
      TensorDataset of (inputs, labels), or does not fit by the rule above on CUDA, is a
      ValueError naming it.
    """
    if requested is False or (requested is None and device.type != "cuda"):
        return []
    free = free_device_memory(device)
    budget = None if free is None else int(DEVICE_DATA_FRACTION * free)
    used, chosen = 0, []
    for name, dataset in datasets.items():
        pair = _tensor_pair(dataset)
        if pair is None:
            if requested:
                raise ValueError(
                    f"data_on_device=True needs {name} as a TensorDataset(inputs, labels), got {type(dataset).__name__}; "
                    "pass one or set data_on_device=None"
                )
            continue
        size = _nbytes(pair[0]) + _nbytes(pair[1])
        if budget is not None and used + size > budget:
            if requested:
                raise ValueError(
                    f"data_on_device=True but {name} needs {size / 2**20:.1f} MiB on {device} and only "
                    f"{(budget - used) / 2**20:.1f} MiB ({DEVICE_DATA_FRACTION:g} of the free memory) are left; "
                    "set data_on_device=None or False"
                )
            continue
        used += size
        chosen.append(name)
    return chosen


def index_loader(size: int, batch_size: int, *, sampler: Sampler | None, generator: torch.Generator, drop_last: bool) -> DataLoader:
    """A DataLoader of index batches (int64 tensors) over ``range(size)``, built like the data
    loader of the same arguments: iterating it consumes ``generator`` and yields the indices that
    loader's batches would hold, in its order."""
    return DataLoader(range(size), batch_size=batch_size, shuffle=sampler is None, sampler=sampler, generator=generator,
                      drop_last=drop_last)


def epoch_indices(loader: DataLoader, device: torch.device) -> list[torch.Tensor]:
    """One epoch of ``loader``'s index batches on ``device``, sent in one copy."""
    batches = list(loader)
    if not batches:
        return []
    flat = torch.cat(batches)
    if device.type == "cuda":
        flat = flat.pin_memory()
    return list(flat.to(device, non_blocking=True).split([len(batch) for batch in batches]))


def evaluation_batches(data: Dataset | DeviceTensors, batch_size: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) batches of ``data`` in order, on ``device``: slices of device tensors, or a
    DataLoader's batches (pinned and copied without blocking on CUDA)."""
    if isinstance(data, DeviceTensors):
        # A DataLoader iterator draws a base seed from torch's global CPU generator, which the
        # dropout noise of a CPU model also draws from; the same draw keeps the noise the same.
        torch.empty((), dtype=torch.int64).random_()
        for start in range(0, len(data), batch_size):
            yield data.inputs[start:start + batch_size], data.labels[start:start + batch_size]
        return
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda")
    for inputs, labels in loader:
        yield inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)


class LastKnown:
    """Values of a small device tensor that have reached the host, for display.

    ``post(values)`` starts a copy of ``values`` to the host and returns at once; ``poll()``
    returns the most recent posted values whose copy has completed since the last poll, as a
    list of floats, else None. On CUDA the copy goes to pinned memory behind an event that
    ``poll`` only queries, so neither call waits for the device; on the CPU the copy is
    immediate. On other accelerators nothing is copied and ``poll`` always returns None.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self._pending: tuple[torch.Tensor, Any] | None = None

    def post(self, values: torch.Tensor) -> None:
        if self.device.type == "cuda":
            host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            host.copy_(values.detach(), non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending = (host, event)
        elif self.device.type == "cpu":
            self._pending = (values.detach().clone(), None)

    def poll(self) -> list[float] | None:
        if self._pending is None:
            return None
        host, event = self._pending
        if event is not None and not event.query():
            return None
        self._pending = None
        return host.tolist()
