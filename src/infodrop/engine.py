"""The training loop shared by every experiment.

One loop, readable top to bottom (in the spirit of nanoGPT's ``train.py``). :func:`fit` takes the
model, the two datasets and three small groups of options:

- :class:`Training`: epochs, batch size, optimiser and schedule factories, loss, augmentation, seed;
- :class:`Checkpointing`: where the checkpoint goes, how often, and the config it must match;
- :class:`Reporting`: the :class:`~infodrop.runs.Run` folder, epoch hooks and the progress bar.

and runs four phases on a :class:`TrainingState`: *start* (model on its device, optimiser,
seeded generators, loaders), *resume* (from the checkpoint when it exists), then per epoch *train
one epoch*, *evaluate* (test set, noise off; epoch hooks; one line of metrics) and *checkpoint*.

At the device's pace: on CUDA the data sets stay on the device when they fit and batches are
gathered there in the DataLoader's own order (:mod:`infodrop.batches`); the loop accumulates the
epoch's sums on the device and reads them once per epoch, so the host never waits for a step;
testing runs in batches of at least 1,024 off the CPU; ``Training(compile=True)`` opts into
``torch.compile``. On the CPU the batches and results are those of the plain DataLoader loop.

The checkpoint is a plain dict (:mod:`infodrop.checkpoints`) saved atomically with its SHA-256,
the previous good one kept beside it, and read back with ``weights_only=True`` and verified.
When it exists as :func:`fit` starts, training resumes after its epoch with every random
generator restored, so an interrupted-and-resumed run ends with the same weights as one that
ran straight through; a damaged checkpoint falls back to the previous one with a warning.

Ctrl-C and SIGTERM (SLURM, docker, systemd; :mod:`infodrop.signals`) save the last complete
epoch and mark the run 'interrupted' or 'terminated'. A loss or weights that stop being finite
raise :class:`~infodrop.epoch_metrics.TrainingDiverged` ("training diverged at epoch N; lower lr").

Distributed data parallel is switched on by the environment that ``torchrun`` sets (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``; :mod:`infodrop.distributed`, which also owns the process group):
the same command runs on one device or on many. Only rank 0 writes files, prints and runs epoch
hooks; the epoch's metrics are summed over all ranks.

Seeds (:mod:`infodrop.seeding`), glibc's memory thresholds (:mod:`infodrop.runtime`), testing with
the noise off (:mod:`infodrop.evaluation`) and the epoch's metrics (:mod:`infodrop.epoch_metrics`)
are modules of their own; this one keeps the loop.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from infodrop.batches import DeviceTensors, LastKnown, epoch_indices, index_loader, place_on_device
from infodrop.checkpoints import check_same_config, cpu_copy, remove_stale_temporaries, rng_state, set_rng_state
from infodrop.checks import check_int, check_seed
from infodrop.distributed import ddp_info, is_distributed, process_group, training_device
from infodrop.epoch_metrics import EpochHook, check_finite, epoch_metrics, hook_results
from infodrop.evaluation import check_dataset, evaluation_sums
from infodrop.io import resume_checkpoint, save_checkpoint
from infodrop.runs import Run, jsonable, plain_config
from infodrop.runtime import keep_freed_memory
from infodrop.seeding import derived_seed, draw_unused_base_seed, set_seed
from infodrop.signals import Terminated, sigterm_raises

# Not used here: kept importable from infodrop.engine for the golden test of old checkpoints
# (tests/experiments/test_old_checkpoints.py, unedited by contract). Import it from
# infodrop.checkpoints, its home.
from infodrop.checkpoints import load_checkpoint  # noqa: F401,E402

__all__ = ["Checkpointing", "Reporting", "Training", "TrainingState", "fit"]

# torch.compile's modes; 'reduce-overhead' records CUDA graphs.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Smallest default evaluation batch off the CPU (Training.eval_batch_size).
EVAL_BATCH_SIZE = 1024
# The progress bar shows the running loss and error every this many steps.
PROGRESS_EVERY = 10

Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, Mapping[str, Any]]"]


# --------------------------------------------------------------------------- options


def _cross_entropy(model: nn.Module, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict]:
    loss = F.cross_entropy(logits, targets)
    return loss, {"cross_entropy": loss.detach()}


@dataclass(frozen=True)
class Training:
    """How to train: what one epoch does and how many there are.

    - ``epochs``, ``batch_size``: integers >= 1; ``batch_size`` is per process under torchrun.
    - ``make_optimizer(model)`` and ``make_scheduler(optimizer)`` build them once the model is on
      its device (the unwrapped model, also under DDP); the scheduler is stepped once per epoch.
    - ``loss(model, logits, targets) -> (loss, parts)``: ``parts`` a dict of named 0-dim tensors
      (nats) averaged into the epoch's metrics; None is the cross-entropy, parts
      ``{'cross_entropy': ...}``. It gets the unwrapped model, so ``kl_divergence(model)`` works.
    - ``batch_transform(batch, generator) -> batch``: augmentation of each training batch on the
      device, with a seeded generator of that device that the checkpoint carries.
    - ``seed``: weights (through :func:`set_seed`), batch order, augmentation and noise.
    - ``eval_batch_size``: None is ``batch_size`` on the CPU and at least ``EVAL_BATCH_SIZE``
      (1,024) on other devices, where a training-sized batch leaves most of the device idle.
      (Testing changes no weights, so the batch size only moves the test loss in its last bits.)
    - ``drop_last`` (skip a last partial training batch, as the original's minibatch iterator;
      it also spares batch norm a batch of one), ``num_workers`` of the training loader.
    - ``data_on_device``: keep the training and test tensors on the device and gather batches
      there (:mod:`infodrop.batches`): None decides by the memory rule of
      :func:`infodrop.batches.place_on_device` (on CUDA when they fit in a quarter of the free
      memory; never on the CPU, where they already are), True forces it (a ValueError when a
      data set is not a TensorDataset or does not fit), False keeps the DataLoader. Either way
      the batches, their order and the results are the same for the same seed.
    - ``compile``: False (default) runs the model eagerly; True wraps it in ``torch.compile``; a
      string is torch.compile's mode ('default', 'reduce-overhead' (CUDA graphs),
      'max-autotune', 'max-autotune-no-cudagraphs'). Compiled kernels round differently from
      eager ones, so a compiled run is deterministic but not bit-identical to an eager one. The
      model is compiled for training; testing runs it eagerly.
    """

    epochs: int
    batch_size: int
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    make_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None
    loss: Loss | None = None
    batch_transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    seed: int = 0
    eval_batch_size: int | None = None
    drop_last: bool = True
    num_workers: int = 0
    data_on_device: bool | None = None
    compile: bool | str = False

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: the checked values replace the given ones once, here
        set_field(self, "epochs", check_int(self.epochs, "epochs", minimum=1))
        set_field(self, "batch_size", check_int(self.batch_size, "batch_size", minimum=1))
        if self.eval_batch_size is not None:
            set_field(self, "eval_batch_size", check_int(self.eval_batch_size, "eval_batch_size", minimum=1))
        set_field(self, "num_workers", check_int(self.num_workers, "num_workers", minimum=0))
        set_field(self, "seed", check_seed(self.seed, "seed"))
        if not callable(self.make_optimizer):
            raise ValueError(
                "make_optimizer must be a callable model -> torch.optim.Optimizer, e.g. lambda m: torch.optim.SGD(m.parameters(), lr=0.05)"
            )
        if self.make_scheduler is not None and not callable(self.make_scheduler):
            raise ValueError("make_scheduler must be None or a callable optimizer -> LR scheduler")
        if self.loss is not None and not callable(self.loss):
            raise ValueError("loss must be None or a callable (model, logits, targets) -> (loss, parts)")
        if self.batch_transform is not None and not callable(self.batch_transform):
            raise ValueError("batch_transform must be None or a callable (batch, generator) -> batch")
        if self.data_on_device not in (None, True, False):
            raise ValueError(f"data_on_device must be None (automatic), True or False, got {self.data_on_device!r}")
        if not (isinstance(self.compile, bool) or self.compile in COMPILE_MODES):
            raise ValueError(f"compile must be True, False or one of torch.compile's modes {COMPILE_MODES}, got {self.compile!r}")

    @property
    def loss_function(self) -> Loss:
        return _cross_entropy if self.loss is None else self.loss

    def test_batch_size(self, device: torch.device) -> int:
        """The evaluation batch size on ``device`` (see ``eval_batch_size``)."""
        if self.eval_batch_size is not None:
            return self.eval_batch_size
        return self.batch_size if device.type == "cpu" else max(self.batch_size, EVAL_BATCH_SIZE)


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often the training state is saved, and what it must have been trained with.

    - ``path``: the checkpoint file (None: no checkpoints, no resume). Written every ``every``
      epochs and after the last one, and on Ctrl-C or SIGTERM for the last completed epoch;
      the one before is kept as ``<name>.prev.pt``.
    - ``config``: a dict (or dataclass, or OmegaConf config) stored in the checkpoint; resuming a
      checkpoint whose stored config differs raises ValueError naming the differing keys.
    """

    path: Path | str | None = None
    every: int = 10
    config: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", None if self.path is None else Path(self.path))
        object.__setattr__(self, "every", check_int(self.every, "Checkpointing.every", minimum=1))
        object.__setattr__(self, "config", plain_config(self.config))


@dataclass(frozen=True)
class Reporting:
    """What is told about the run, on rank 0.

    - ``run``: the :class:`~infodrop.runs.Run` folder that gets ``metrics.jsonl`` (one line per
      epoch) and ``result.json`` ('completed', 'interrupted', 'terminated' or 'failed'; not written when
      ``finish_run`` is False, for a caller that adds results first).
    - ``epoch_hooks``: callables ``hook(epoch, model) -> dict | None`` run after each epoch's
      evaluation with the unwrapped model in eval mode; their dicts join the epoch's metrics.
      They run on rank 0 only, except a hook with the attribute ``all_ranks = True``, which runs
      on every rank (it does collective work, e.g. the information-plane tracker sharing its
      estimate over the ranks); rank 0's dict is the one logged.
    - ``progress``: a tqdm bar over the batches; None (the default) draws it only when stderr is
      a terminal, so a log file gets no carriage-return updates. The epoch line is printed either way.
    """

    run: Run | None = None
    epoch_hooks: Sequence[EpochHook] = ()
    progress: bool | None = None
    finish_run: bool = True

    def __post_init__(self) -> None:
        if self.run is not None and not isinstance(self.run, Run):
            raise ValueError(f"run must be an infodrop.runs.Run or None, got {type(self.run).__name__}")
        hooks = tuple(self.epoch_hooks)
        for index, hook in enumerate(hooks):
            if not callable(hook):
                raise ValueError(f"epoch_hooks[{index}] is not callable; pass functions hook(epoch, model) -> dict | None")
        object.__setattr__(self, "epoch_hooks", hooks)


@dataclass
class TrainingState:
    """What changes while training, and what a checkpoint restores."""

    model: nn.Module
    net: nn.Module  # the model, or its DDP wrapper under torchrun: what the batches go through
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader_generator: torch.Generator  # batch order
    augment_generator: torch.Generator  # batch_transform, on the training device
    epoch: int = 0  # the last completed epoch
    metrics: dict = field(default_factory=dict)  # that epoch's metrics
    snapshot: dict | None = None  # rank 0: that epoch's checkpoint dict, kept for a Ctrl-C save
    saved_epoch: int | None = None  # the epoch of the checkpoint on disk


@dataclass(frozen=True)
class _Place:
    """This process: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    distributed: bool
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class _Data:
    train_loader: DataLoader  # the training batches; with train_tensors, their indices
    sampler: DistributedSampler | None  # under torchrun: this rank's share, reshuffled per epoch
    test_set: Dataset | DeviceTensors  # under torchrun: this rank's disjoint slice
    train_tensors: DeviceTensors | None = None  # the training set kept on the device


# --------------------------------------------------------------------------- training


def _as_float64(value: Any, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, dtype=torch.float64).reshape(())
    return torch.tensor(float(value), dtype=torch.float64, device=device)


def fit(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    training: Training,
    *,
    checkpointing: Checkpointing | None = None,
    reporting: Reporting | None = None,
    device: Any = None,
) -> dict:
    """Train ``model`` on ``train_set`` as ``training`` says, testing on ``test_set`` after each epoch.

    Each epoch: shuffle ``train_set`` (seeded generator), for every batch apply the batch
    transform, compute the loss, step the optimizer; step the scheduler once; evaluate on
    ``test_set`` with the noise off; run the epoch hooks; log and print one line of metrics;
    checkpoint. ``device=None`` is CUDA if available (GPU ``LOCAL_RANK`` under torchrun), else CPU.

    Metrics of an epoch (nats for losses, fractions for errors): ``epoch``; ``loss`` and each loss
    part, averaged over the epoch's training samples as they were trained on (noise on, weights
    changing through the epoch, as the original code reports them); ``train_error`` likewise;
    ``test_error`` and ``test_loss`` (cross-entropy) with the noise off; ``lr`` (the first
    parameter group's learning rate during the epoch); ``seconds``; and the hooks' numbers.

    Resume: if the checkpoint exists, training continues after its epoch with the random states
    of every rank restored, and the run's ``metrics.jsonl`` is cut back to that epoch; a leftover
    temp file of a write killed half-way is deleted (the complete checkpoint it would have
    replaced is used), and a damaged checkpoint (its SHA-256 does not match, or it holds NaN)
    falls back to the previous good one, ``<name>.prev.pt``, with a
    :class:`~infodrop.io.RecoveredFileWarning`. On KeyboardInterrupt, and on SIGTERM (raised as
    :class:`~infodrop.signals.Terminated`, a KeyboardInterrupt), the last completed epoch is
    saved (if not already; a CPU copy of it is kept in memory for this), the run is marked
    'interrupted' or 'terminated', and the exception re-raised. A non-finite training or test
    loss, or non-finite weights, raise :class:`~infodrop.epoch_metrics.TrainingDiverged` naming the epoch before the
    epoch's hooks and checkpoint run. Returns the last epoch's metrics (the stored ones when the
    checkpoint is already at ``epochs``).
    """
    checkpointing = Checkpointing() if checkpointing is None else checkpointing
    reporting = Reporting() if reporting is None else reporting
    train_size = _check_arguments(model, train_set, test_set, training, checkpointing, reporting)
    keep_freed_memory()
    rank, _, world_size = ddp_info()
    per_process = -(-train_size // world_size)
    if training.drop_last and per_process < training.batch_size:
        raise ValueError(
            f"batch_size={training.batch_size} exceeds the {per_process} training samples per process, so with "
            "drop_last=True there is no batch to train on; lower batch_size"
        )
    place = _Place(rank, world_size, is_distributed(), training_device(device))
    if reporting.run is not None:
        reporting.run.device = str(place.device)
        reporting.run.start()  # a status from the start; finish replaces it however the run ends

    with sigterm_raises(), process_group(cuda=place.device.type == "cuda"):
        state, data = _start(model, train_set, test_set, training, place)
        if checkpointing.path is not None:
            _resume(state, checkpointing, training.epochs, place, reporting.run)
        if place.distributed:
            device_ids = [place.device.index] if place.device.type == "cuda" else None
            state.net = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        if training.compile:
            state.net = torch.compile(state.net, mode=None if training.compile is True else training.compile)
        try:
            return _train(state, data, training, checkpointing, reporting, place)
        finally:
            # DDP's reducer must be freed while its process group still exists: freed after
            # destroy_process_group it can block the process at exit.
            state.net = model


def _check_arguments(model: Any, train_set: Any, test_set: Any, training: Any, checkpointing: Any, reporting: Any) -> int:
    """Validation at the door of :func:`fit`; returns the number of training samples."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for value, kind in ((training, Training), (checkpointing, Checkpointing), (reporting, Reporting)):
        if not isinstance(value, kind):
            raise ValueError(f"{kind.__name__.lower()} must be an infodrop.engine.{kind.__name__}, got {type(value).__name__}")
    train_size = check_dataset(train_set, "train_set")
    check_dataset(test_set, "test_set")
    return train_size


def _start(model: nn.Module, train_set: Dataset, test_set: Dataset, training: Training, place: _Place) -> tuple[TrainingState, _Data]:
    """Phase 1: seed this rank, put the model on its device, build optimiser, schedule, generators, loaders."""
    set_seed(derived_seed(training.seed, place.rank, 0))
    model.to(place.device)
    optimizer = training.make_optimizer(model)
    scheduler = training.make_scheduler(optimizer) if training.make_scheduler is not None else None
    loader_generator = torch.Generator().manual_seed(training.seed)
    augment_generator = torch.Generator(device=place.device).manual_seed(derived_seed(training.seed, place.rank, 1))
    sampler = None
    if place.distributed:
        sampler = DistributedSampler(train_set, num_replicas=place.world_size, rank=place.rank, shuffle=True, seed=training.seed)
    # Each rank tests a disjoint slice; the sums are added up over the ranks (no padded duplicates).
    test_slice = Subset(test_set, range(place.rank, len(test_set), place.world_size)) if place.distributed else test_set
    if place.distributed and isinstance(test_set, TensorDataset):
        test_slice = TensorDataset(*(tensor[place.rank::place.world_size].contiguous() for tensor in test_set.tensors))
    on_device = place_on_device({"train_set": train_set, "test_set": test_slice}, place.device, training.data_on_device)
    if on_device["train_set"] is not None:
        # Only the indices are loaded: same sampler, generator and drop_last, so the same order.
        train_loader = index_loader(len(train_set), training.batch_size, sampler=sampler, generator=loader_generator,
                                    drop_last=training.drop_last)
    else:
        train_loader = DataLoader(
            train_set,
            batch_size=training.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=loader_generator,
            drop_last=training.drop_last,
            num_workers=training.num_workers,
            pin_memory=place.device.type == "cuda",
        )
    state = TrainingState(model, model, optimizer, scheduler, loader_generator, augment_generator)
    test_data = test_slice if on_device["test_set"] is None else on_device["test_set"]
    return state, _Data(train_loader, sampler, test_data, on_device["train_set"])


def _resume(state: TrainingState, checkpointing: Checkpointing, epochs: int, place: _Place, run: Run | None) -> None:
    """Phase 2: continue after the epoch of an existing checkpoint (same config, every random state).

    The latest checkpoint when it verifies, else the previous good one (with a warning); the
    temp files of a save that was killed are deleted first.
    """
    path = checkpointing.path
    if place.main:
        remove_stale_temporaries(path)
    found = resume_checkpoint(path)
    if found is not None:
        stored, used = found
        missing = [key for key in ("model", "optimizer", "epoch", "rng") if key not in stored]
        if missing:
            raise ValueError(f"checkpoint {used} lacks {missing}; it was not written by fit(): delete it")
        check_same_config(stored.get("config"), checkpointing.config, used)
        if stored["epoch"] > epochs:
            raise ValueError(f"checkpoint {used} is at epoch {stored['epoch']}, past epochs={epochs}; raise epochs or use another checkpoint path")
        state.model.load_state_dict(stored["model"])
        state.optimizer.load_state_dict(stored["optimizer"])
        if state.scheduler is not None and stored.get("scheduler") is not None:
            state.scheduler.load_state_dict(stored["scheduler"])
        if len(stored["rng"]) == place.world_size:
            set_rng_state(stored["rng"][place.rank], state.loader_generator, state.augment_generator)
        elif place.main:
            tqdm.write(
                f"note: {used} was written by {len(stored['rng'])} processes, this run has {place.world_size}; "
                "random streams restart, so results differ from an uninterrupted run"
            )
        state.epoch, state.metrics = stored["epoch"], dict(stored.get("metrics") or {})
        # A fallback's epoch is not what the latest file holds: the next save must write it again.
        state.snapshot, state.saved_epoch = stored, stored["epoch"] if used == path else None
        if place.main and stored["epoch"] == epochs:
            tqdm.write(f"{used} holds all {epochs} epochs of this run: nothing left to train")
        elif place.main:
            tqdm.write(f"resuming from {used} after epoch {stored['epoch']}")
    if run is not None:
        # Lines of epochs after the checkpoint (or of a first attempt killed before any
        # checkpoint) are logged again by this run.
        run.rewind(state.epoch)


def _train(state: TrainingState, data: _Data, training: Training, checkpointing: Checkpointing, reporting: Reporting,
           place: _Place) -> dict:
    """Phases 3 to 5 for every remaining epoch; the run's result is written however it ends."""
    run = reporting.run
    status, results, logged = "failed", {}, dict(state.metrics)
    try:
        for epoch in range(state.epoch + 1, training.epochs + 1):
            started = time.perf_counter()
            lr, sums, errors, count = _train_one_epoch(state, data, training, place, epoch, progress=reporting.progress)
            tests = evaluation_sums(state.model, data.test_set, training.test_batch_size(place.device), place.device)
            metrics = epoch_metrics(epoch, lr, sums, errors, count, tests, distributed=place.distributed)
            check_finite(epoch, metrics, state.model)
            main = place.main
            extras = hook_results(reporting.epoch_hooks, epoch, state.model, metrics, main=main)
            if main:
                metrics.update(extras)
            metrics["seconds"] = time.perf_counter() - started
            if main and run is not None:
                # Logged before the snapshot: a resume drops lines after the checkpoint's epoch
                # and logs them again, so the log never misses an epoch the checkpoint holds.
                run.log(metrics)
            state.epoch, state.metrics = epoch, metrics
            if checkpointing.path is not None:
                _checkpoint(state, checkpointing, training.epochs, place)
            if main:
                logged = dict(metrics)
                # One line per epoch even without the bar: it is the log of a batch job. Printed
                # after the snapshot, so a Ctrl-C or SIGTERM right after the line saves its epoch.
                shown = ", ".join(f"{key} {value:.4g}" for key, value in metrics.items() if isinstance(value, float))
                tqdm.write(f"epoch {epoch}/{training.epochs}: {shown}")
        status, results = "completed", dict(state.metrics)
        if place.distributed:
            dist.barrier()  # no rank tears the process group down while another still uses it
        return dict(state.metrics)
    except KeyboardInterrupt as interruption:  # Ctrl-C, or SIGTERM as Terminated
        status, results = ("terminated" if isinstance(interruption, Terminated) else "interrupted"), logged
        if place.main and state.snapshot is not None and state.saved_epoch != state.snapshot["epoch"]:
            save_checkpoint(state.snapshot, checkpointing.path)
            state.saved_epoch = state.snapshot["epoch"]
            tqdm.write(f"{status}: saved epoch {state.snapshot['epoch']} to {checkpointing.path}")
        raise
    except Exception as error:
        results = {"error": f"{type(error).__name__}: {error}", "last_metrics": logged}
        raise
    finally:
        if run is not None and reporting.finish_run:
            run.finish(status, **results)


def _train_one_epoch(state: TrainingState, data: _Data, training: Training, place: _Place, epoch: int, *,
                     progress: bool | None) -> tuple[float, dict[str, torch.Tensor], torch.Tensor, int]:
    """Phase 3: one pass over this process's training batches, then one scheduler step.

    Returns the learning rate of the epoch, the loss and each part summed over the samples
    (float64 tensors on the device), the number of errors (likewise) and of samples. Nothing in
    the loop reads a value from the device, so the host queues the steps without waiting for
    them; the progress bar shows values copied a few steps earlier (:class:`LastKnown`).
    """
    if data.sampler is not None:
        data.sampler.set_epoch(epoch)
    draw_unused_base_seed(data.train_loader)
    state.net.train()
    lr = float(state.optimizer.param_groups[0]["lr"])
    loss_function = training.loss_function
    names: list[str] | None = None
    totals = torch.zeros((), dtype=torch.float64, device=place.device)  # loss and parts, times batch sizes
    errors = torch.zeros((), dtype=torch.float64, device=place.device)
    count = 0
    steps = len(data.train_loader)
    # tqdm's disable=None turns the bar off when its stream (stderr) is not a terminal.
    disable = True if not place.main else None if progress is None else not progress
    bar = tqdm(total=steps, desc=f"epoch {epoch}/{training.epochs}", leave=False, disable=disable, dynamic_ncols=True)
    shown = LastKnown(place.device)
    for step, (inputs, targets) in enumerate(_training_batches(data, place.device)):
        if training.batch_transform is not None:
            inputs = training.batch_transform(inputs, state.augment_generator)
        logits = state.net(inputs)
        value, parts = loss_function(state.model, logits, targets)
        if not isinstance(parts, Mapping):
            raise ValueError(f"loss must return (loss tensor, dict of parts), got parts of type {type(parts).__name__}")
        state.optimizer.zero_grad(set_to_none=True)
        value.backward()
        state.optimizer.step()

        size = targets.shape[0]
        count += size
        if names is None:
            names = ["loss", *parts]
        elif list(parts) != names[1:]:
            raise ValueError(f"loss returned parts {list(parts)} after {names[1:]}; return the same parts for every batch")
        totals = totals + torch.stack([_as_float64(part, place.device) for part in (value, *parts.values())]) * size
        errors += (logits.detach().argmax(dim=1) != targets).sum()
        if not bar.disable:
            if step % PROGRESS_EVERY == 0 or step == steps - 1:
                shown.post(torch.stack([totals[0], errors]) / count)
            known = shown.poll()
            if known is not None:
                bar.set_postfix(loss=f"{known[0]:.4f}", error=f"{known[1]:.4f}", refresh=False)
            bar.update(1)
    bar.close()
    if state.scheduler is not None:
        state.scheduler.step()
    if place.distributed:
        # Each rank's last forward updated its batch-norm statistics from its own batch;
        # take rank 0's so that every rank tests, and rank 0 saves, the same model.
        for buffer in state.model.buffers():
            dist.broadcast(buffer, src=0)
    sums = {name: totals[index] for index, name in enumerate(names or ["loss"])}
    return lr, sums, errors, count


def _training_batches(data: _Data, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This epoch's (inputs, labels) batches on ``device``: gathered from the tensors kept there,
    or the DataLoader's batches copied without blocking (from pinned memory on CUDA)."""
    if data.train_tensors is not None:
        for indices in epoch_indices(data.train_loader, device):
            yield data.train_tensors.inputs.index_select(0, indices), data.train_tensors.labels.index_select(0, indices)
        return
    for inputs, targets in data.train_loader:
        yield inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


def _checkpoint(state: TrainingState, checkpointing: Checkpointing, epochs: int, place: _Place) -> None:
    """Phase 5: keep the completed epoch as a checkpoint dict in memory (rank 0) and write it every
    ``checkpointing.every`` epochs and after the last one.

    Kept in memory each epoch so that a KeyboardInterrupt mid-epoch can save the last completed
    epoch, which resumes exactly (a half-trained epoch would not). Every rank's random state goes
    in (a collective, so every rank calls this).
    """
    rng = rng_state(state.loader_generator, state.augment_generator)
    if place.distributed:
        gathered: list[Any] = [None] * place.world_size
        dist.all_gather_object(gathered, rng)
        rngs = gathered
    else:
        rngs = [rng]
    if not place.main:
        return
    state.snapshot = {
        "model": cpu_copy(state.model.state_dict()),
        "optimizer": cpu_copy(state.optimizer.state_dict()),
        "scheduler": cpu_copy(state.scheduler.state_dict()) if state.scheduler is not None else None,
        "epoch": state.epoch,
        "config": checkpointing.config,
        "metrics": jsonable(state.metrics, "metrics"),
        "rng": rngs,
    }
    if state.epoch % checkpointing.every == 0 or state.epoch == epochs:
        save_checkpoint(state.snapshot, checkpointing.path)
        state.saved_epoch = state.epoch
