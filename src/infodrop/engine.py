"""The training loop shared by every experiment.

One loop, readable top to bottom (in the spirit of nanoGPT's ``train.py``): :func:`fit` trains a
model with a per-epoch learning-rate schedule, evaluates it on the test set after every epoch,
logs one line of metrics per epoch to ``metrics.jsonl`` of a :class:`Run` folder, and saves a
checkpoint that is a plain dict::

    {'model': state_dict, 'optimizer': ..., 'scheduler': ..., 'epoch': last completed epoch,
     'config': dict, 'metrics': that epoch's metrics, 'rng': [per-rank generator states]}

saved atomically (``infodrop.io.save_torch``) and read back with ``weights_only=True``. If the
checkpoint exists when :func:`fit` starts, training resumes after its epoch, with every random
generator restored, so an interrupted-and-resumed run ends with the same weights as one that ran
straight through.

Distributed data parallel is switched on by the environment that ``torchrun`` sets (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``): the same command runs on one device or on many. Only rank 0
writes files, prints and runs epoch hooks; the epoch's metrics are summed over all ranks.

:func:`recompute_batchnorm` is the original code's "dry run" (Achille & Soatto, ``cifar.py``):
batch-norm statistics gathered with dropout noise on are wrong once the noise is off, so they are
recomputed on the training set with the noise off before testing.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import gc
import json
import math
import os
import platform
import random
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

import infodrop
from infodrop.checks import check_int, resolve_device
from infodrop.io import append_line, save_torch, write_json, write_text

__all__ = ["fit", "evaluate", "recompute_batchnorm", "set_seed", "load_checkpoint", "Run", "ddp_info", "check_local_rank_has_a_gpu", "keep_freed_memory"]

# Names fit puts in every metrics line; loss parts and hook results may not reuse them.
ENGINE_KEYS = ("epoch", "loss", "train_error", "test_error", "test_loss", "lr", "seconds")
STATUSES = ("completed", "interrupted", "failed")

# Rank 0 may spend a long time in epoch hooks (mutual-information estimates) while the other
# ranks wait in the next collective; torch's default collective timeout (10 min) is too short.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(hours=2)


# --------------------------------------------------------------------------- seeds and ranks


def set_seed(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device),
    and make torch choose deterministic algorithms (warning, not failing, where none exists).

    ``seed`` is an integer in [0, 2**32 - 1] (numpy's range).
    """
    seed = check_int(seed, "seed", minimum=0)
    if seed >= 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1] (numpy's range), got {seed}")
    # cuBLAS is only deterministic with a fixed workspace; it reads this when CUDA starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device as well
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def _derived_seed(seed: int, rank: int, stream: int) -> int:
    """A 32-bit seed for one named stream of one rank, well mixed so that it is not ``seed``
    itself: the dropout noise must not replay the draws that initialised the weights."""
    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1)[0])


def ddp_info() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the environment torchrun sets; ``(0, 0, 1)`` without it."""
    if "RANK" not in os.environ:
        return 0, 0, 1

    def read(name: str, default: int) -> int:
        text = os.environ.get(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"environment variable {name}={text!r} is not an integer; launch with torchrun") from None

    rank = read("RANK", 0)
    world_size = read("WORLD_SIZE", 1)
    local_rank = read("LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(
            f"inconsistent torchrun environment RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world_size}; "
            "need 0 <= RANK < WORLD_SIZE"
        )
    return rank, local_rank, world_size


# --------------------------------------------------------------------------- run folder


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _jsonable(value: Any, name: str) -> Any:
    """Plain JSON types from numbers, numpy scalars, one-element tensors, lists and dicts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.ndarray) or isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, f"{name}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{name}[{index}]") for index, item in enumerate(value)]
    raise ValueError(f"{name} has a value of type {type(value).__name__} that cannot be written as JSON; pass a number or string")


def _plain_config(config: Any) -> dict | None:
    """The config as a plain dict of str/int/float/bool/None/lists/dicts (what ``weights_only`` loads)."""
    if config is None:
        return None
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            config = OmegaConf.to_container(config, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a dict, dataclass or OmegaConf DictConfig, got {type(config).__name__}")

    def plain(value: Any, name: str) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, enum.Enum):
            return value.name
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, Mapping):
            return {str(key): plain(item, f"{name}.{key}") for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item, f"{name}[{index}]") for index, item in enumerate(value)]
        raise ValueError(f"config entry {name} has type {type(value).__name__}; use numbers, strings, lists and dicts")

    return {str(key): plain(value, str(key)) for key, value in config.items()}


def _config_yaml(config: Any) -> str:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(config, DictConfig):
        return OmegaConf.to_yaml(config)
    return OmegaConf.to_yaml(OmegaConf.create(_plain_config(config)))


class Run:
    """A run folder ``runs/<experiment>/<run name>/`` holding

    - ``config.yaml``: the configuration (written when ``config`` is given),
    - ``metrics.jsonl``: one JSON line per :meth:`log` call (one per epoch from :func:`fit`),
    - ``result.json``: written by :meth:`finish` (status, times, results, host, versions, device),
    - ``tensorboard/``: the same scalars, when the optional ``tensorboard`` package is installed.

    Off rank 0 of a distributed run every method is a no-op, so all ranks may hold a Run.
    """

    def __init__(self, folder: Path | str, *, config: Any = None):
        self.folder = Path(folder)
        self.rank = ddp_info()[0]
        self.device: str | None = None  # fit() records the device it trained on
        self.world_size = ddp_info()[2]
        self.start_time = _utc_now()
        self._tensorboard: Any = None
        self._tensorboard_tried = False
        if self.rank != 0:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if config is not None:
            write_text(self.folder / "config.yaml", _config_yaml(config))

    @property
    def metrics_path(self) -> Path:
        return self.folder / "metrics.jsonl"

    @property
    def result_path(self) -> Path:
        return self.folder / "result.json"

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r})"

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Append ``metrics`` as one JSON line to ``metrics.jsonl`` (atomically) and, when
        TensorBoard is installed, write its numbers as scalars at step ``metrics['epoch']``."""
        if self.rank != 0:
            return
        if not isinstance(metrics, Mapping):
            raise ValueError(f"metrics must be a dict of name -> value, got {type(metrics).__name__}")
        line = _jsonable(dict(metrics), "metrics")
        append_line(self.metrics_path, json.dumps(line))
        writer = self._writer()
        if writer is not None:
            step = line.get("epoch")
            for key, value in line.items():
                if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    writer.add_scalar(key, value, global_step=step)
            writer.flush()

    def _writer(self) -> Any:
        if not self._tensorboard_tried:
            self._tensorboard_tried = True
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                return None
            self._tensorboard = SummaryWriter(log_dir=str(self.folder / "tensorboard"))
        return self._tensorboard

    def history(self) -> list[dict]:
        """The lines of ``metrics.jsonl`` as dicts (empty when nothing was logged)."""
        if not self.metrics_path.exists():
            return []
        lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def rewind(self, epoch: int) -> None:
        """Drop the lines logged for epochs after ``epoch``: a run killed between a checkpoint and
        the next one resumes from the checkpoint and logs those epochs again."""
        if self.rank != 0 or not self.metrics_path.exists():
            return
        kept = [line for line in self.history() if not (isinstance(line.get("epoch"), int) and line["epoch"] > epoch)]
        write_text(self.metrics_path, "".join(json.dumps(line) + "\n" for line in kept))

    def finish(self, status: str, **results: Any) -> None:
        """Write ``result.json``: ``status`` ('completed', 'interrupted' or 'failed'), start and end
        time (ISO 8601 UTC), ``results`` (final errors and the like), host, package, torch and
        python versions, device and world size. May be called again to add results."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if self.rank != 0:
            return
        record = {
            "status": status,
            "start_time": self.start_time,
            "end_time": _utc_now(),
            "results": _jsonable(results, "results"),
            "host": socket.gethostname(),
            "infodrop_version": infodrop.__version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "device": self.device if self.device is not None else str(resolve_device(None)),
            "world_size": self.world_size,
        }
        write_json(self.result_path, record)
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
            self._tensorboard_tried = False


# --------------------------------------------------------------------------- checkpoints


def load_checkpoint(path: Path | str) -> dict:
    """Load a checkpoint dict on the CPU with ``weights_only=True``.

    A missing, truncated or otherwise unreadable file raises ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist; check the path or train first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"checkpoint {path} could not be read ({type(error).__name__}: {error}); "
            "it is corrupt or not a torch checkpoint: delete it to train from scratch"
        ) from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, not a checkpoint dict; delete it")
    return state


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temp files ``infodrop.io.atomic_path`` leaves when a process dies mid-write."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def _cpu_copy(value: Any) -> Any:
    """A deep copy with every tensor copied to the CPU (states keep changing while training goes on)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        items = {key: _cpu_copy(item) for key, item in value.items()}
        if isinstance(value, (collections.OrderedDict, collections.Counter)):
            return type(value)(items)
        return items
    if isinstance(value, list):
        return [_cpu_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_cpu_copy(item) for item in value)
    return value


def _rng_state(loader_generator: torch.Generator, augment_generator: torch.Generator) -> dict:
    """Every random state of this process as tensors, lists and numbers (loadable with weights_only)."""
    version, internal, gauss_next = random.getstate()
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_generator.get_state(),
        "augment": augment_generator.get_state(),
    }


def _set_rng_state(state: dict, loader_generator: torch.Generator, augment_generator: torch.Generator) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    loader_generator.set_state(state["loader"])
    augment_generator.set_state(state["augment"])


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, Mapping):
        return {prefix: config} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _check_same_config(stored: Any, config: dict | None, path: Path) -> None:
    if config is None:
        return
    old, new = _flatten(stored or {}), _flatten(config)
    missing = object()
    differing = sorted(key for key in old.keys() | new.keys() if old.get(key, missing) != new.get(key, missing))
    if differing:
        details = ", ".join(f"{key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}" for key in differing)
        raise ValueError(
            f"checkpoint {path} was trained with a different config ({details}); "
            "use another checkpoint path for this config or delete the checkpoint"
        )


# --------------------------------------------------------------------------- evaluation


def _check_dataset(dataset: Any, name: str) -> int:
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise ValueError(f"{name} must be a map-style torch Dataset (with __len__ and __getitem__), got {type(dataset).__name__}")
    size = len(dataset)
    if size == 0:
        raise ValueError(f"{name} is empty; pass at least one (image, label) sample")
    first = dataset[0]
    if not (isinstance(first, (tuple, list)) and len(first) == 2 and isinstance(first[0], torch.Tensor)):
        raise ValueError(f"{name}[0] must be an (input tensor, label) pair, e.g. from a TensorDataset(images, labels)")
    return size


def _evaluation_sums(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device) -> torch.Tensor:
    """Float64 tensor [summed cross-entropy (nats), number of errors, number of samples]."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda")
    with torch.no_grad():
        for inputs, targets in loader:
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            logits = model(inputs)
            totals[0] += F.cross_entropy(logits.float(), targets, reduction="sum").double()
            totals[1] += (logits.argmax(dim=1) != targets).sum()
            totals[2] += targets.shape[0]
    return totals


def evaluate(model: nn.Module, dataset: Dataset, *, batch_size: int = 256, device: Any = None) -> dict:
    """Classification error of ``model`` on ``dataset`` with the noise off (``model.eval()``, no grad).

    The model is moved to ``device`` (None: CUDA if available, else CPU) and left in eval mode.
    Returns ``{'error': fraction wrong, 'loss': mean cross-entropy in nats, 'accuracy': 1 - error}``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_dataset(dataset, "dataset")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = resolve_device(device)
    model.to(device)
    loss_sum, errors, count = _evaluation_sums(model, dataset, batch_size, device).tolist()
    return {"error": errors / count, "loss": loss_sum / count, "accuracy": 1.0 - errors / count}


def recompute_batchnorm(model: nn.Module, dataset: Dataset, *, batch_size: int, device: Any = None) -> None:
    """Recompute every batch-norm layer's running mean and variance on ``dataset`` with the
    dropout noise off: the original code's "dry run" before testing.

    Statistics collected while training see noisy activations; at test time the noise is off, so
    they no longer match. The running statistics are reset, each layer's momentum is set to None
    (a cumulative average: every batch weighs the same) and ``dataset`` is passed through once
    in batches of ``batch_size`` (unshuffled, no gradients) with the model in ``eval()`` except
    the batch-norm layers in ``train()``, so dropout layers add no noise. The momenta are then
    restored and the whole model is left in ``eval()``. (The TensorFlow original kept its decay
    of 0.9 during the dry run, which weighs the last batches most; the cumulative average is
    the plain mean over the pass.) A model without batch-norm layers is left unchanged.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_dataset(dataset, "dataset")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = resolve_device(device)
    norms = [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    ]
    if not norms:
        return
    momenta = [module.momentum for module in norms]
    model.to(device)
    model.eval()
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
        module.train()
    try:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda")
        with torch.no_grad():
            for inputs, _ in loader:
                model(inputs.to(device, non_blocking=True))
    finally:
        for module, momentum in zip(norms, momenta):
            module.momentum = momentum
        model.eval()


# --------------------------------------------------------------------------- training


def _cross_entropy(model: nn.Module, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict]:
    loss = F.cross_entropy(logits, targets)
    return loss, {"cross_entropy": loss.detach()}


def _as_float64(value: Any, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, dtype=torch.float64).reshape(())
    return torch.tensor(float(value), dtype=torch.float64, device=device)


# glibc's thresholds (bytes) above which freed memory goes back to the OS; see keep_freed_memory.
MALLOC_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
_malloc_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks of up to MALLOC_THRESHOLD (1 GiB) in the heap for reuse.

    By default glibc serves every block above 32 MiB with a fresh mmap and returns it at free, and
    trims the heap top above 128 KiB, so a CPU training step, which allocates and frees the same
    activation buffers every time, pays page faults for all of them: All-CNN-96 at batch 128 and a
    quarter of the filters took 0.97 s per step, of which 0.77 s system time (340,000 minor page
    faults per step); with the thresholds raised, 0.48 s. The price: up to 1 GiB of freed memory
    stays with the process. Called by :func:`fit` (once per process); a no-op that returns False
    off glibc, or when the environment sets ``INFODROP_MALLOC=default``.
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if os.environ.get("INFODROP_MALLOC", "") == "default" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Both: in that measurement the mmap threshold alone gave 0.68 s per step, the trim threshold
    # alone 1.43 s (slower than glibc's defaults).
    _malloc_tuned = bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, MALLOC_THRESHOLD))
    return _malloc_tuned


def check_local_rank_has_a_gpu(local_rank: int) -> None:
    """Under torchrun each process of a node takes GPU ``LOCAL_RANK``; refuse clearly when the node
    has fewer GPUs than processes (CUDA's own message is "invalid device ordinal")."""
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ValueError(
            f"torchrun started process LOCAL_RANK={local_rank} but this machine has {count} GPU(s), one per "
            f"process; use torchrun --nproc_per_node={count} (or fewer), or train on CPU processes with device=cpu"
        )


def fit(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    *,
    epochs: int,
    batch_size: int,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    make_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]] | None = None,
    run: Run | None = None,
    checkpoint_path: Path | str | None = None,
    checkpoint_every: int = 10,
    config: Any = None,
    epoch_hooks: Sequence[Callable[[int, nn.Module], dict | None]] = (),
    batch_transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    seed: int = 0,
    device: Any = None,
    progress: bool = True,
    eval_batch_size: int | None = None,
    drop_last: bool = True,
    num_workers: int = 0,
    finish_run: bool = True,
) -> dict:
    """Train ``model`` for ``epochs`` epochs of minibatch SGD (or whatever ``make_optimizer`` builds).

    Each epoch: shuffle ``train_set`` (seeded generator), for every batch apply ``batch_transform``
    (on the device, with its own seeded generator), compute ``loss(model, logits, targets) ->
    (loss, parts)`` (default cross-entropy, parts ``{'cross_entropy': ...}``), step the optimizer;
    then step the scheduler once, evaluate on ``test_set`` with the noise off, run the epoch hooks
    ``hook(epoch, model)`` (rank 0 only, unwrapped model in eval mode; the dicts they return join
    the epoch's metrics), log the metrics, checkpoint. ``make_optimizer`` and ``loss`` also get
    the unwrapped model, so ``kl_divergence(model)`` works under DDP too.

    Metrics of an epoch (nats for losses, fractions for errors):
    ``epoch``; ``loss`` and each loss part, averaged over the epoch's training samples as they
    were trained on (noise on, weights changing through the epoch, as the original code reports
    them); ``train_error`` likewise; ``test_error`` and ``test_loss`` (cross-entropy) with the
    noise off; ``lr`` (the first parameter group's learning rate during the epoch); ``seconds``.

    Checkpoints go to ``checkpoint_path`` every ``checkpoint_every`` epochs and after the last
    one; on KeyboardInterrupt the last completed epoch is saved (if not already) and the
    interrupt re-raised (a CPU copy of the last completed epoch's state is kept in memory for
    this). If the checkpoint exists, training resumes after its epoch, with the random states of
    every rank restored, and the run's ``metrics.jsonl`` is cut back to that epoch; a stored config
    that differs from ``config`` raises ValueError naming the differing keys. A leftover temp
    file of a write killed half-way is deleted; the complete checkpoint it would have replaced
    is used.

    On rank 0 each epoch's metrics are printed as one line; ``progress`` adds a tqdm bar over
    the batches. ``drop_last`` (default True, as the original's minibatch iterator) skips a last partial
    training batch, which also spares batch norm a batch of one. Returns the last epoch's metrics.
    Finishes ``run`` ('completed', 'interrupted' or 'failed') unless ``finish_run`` is False.
    """
    # ---- validation at the door
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    eval_batch_size = batch_size if eval_batch_size is None else check_int(eval_batch_size, "eval_batch_size", minimum=1)
    num_workers = check_int(num_workers, "num_workers", minimum=0)
    seed = check_int(seed, "seed", minimum=0)
    train_size = _check_dataset(train_set, "train_set")
    _check_dataset(test_set, "test_set")
    if not callable(make_optimizer):
        raise ValueError("make_optimizer must be a callable model -> torch.optim.Optimizer, e.g. lambda m: torch.optim.SGD(m.parameters(), lr=0.05)")
    if make_scheduler is not None and not callable(make_scheduler):
        raise ValueError("make_scheduler must be None or a callable optimizer -> LR scheduler")
    if loss is not None and not callable(loss):
        raise ValueError("loss must be None or a callable (model, logits, targets) -> (loss, parts)")
    if batch_transform is not None and not callable(batch_transform):
        raise ValueError("batch_transform must be None or a callable (batch, generator) -> batch")
    hooks = list(epoch_hooks)
    for index, hook in enumerate(hooks):
        if not callable(hook):
            raise ValueError(f"epoch_hooks[{index}] is not callable; pass functions hook(epoch, model) -> dict | None")
    if run is not None and not isinstance(run, Run):
        raise ValueError(f"run must be an infodrop.engine.Run or None, got {type(run).__name__}")
    config = _plain_config(config)
    checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
    loss_fn = _cross_entropy if loss is None else loss

    # ---- processes and device
    keep_freed_memory()
    rank, local_rank, world_size = ddp_info()
    distributed = "RANK" in os.environ
    per_rank = -(-train_size // world_size)
    if drop_last and per_rank < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {per_rank} training samples per process, so with "
            "drop_last=True there is no batch to train on; lower batch_size"
        )
    if device is None and distributed and torch.cuda.is_available():
        check_local_rank_has_a_gpu(local_rank)
        device = f"cuda:{local_rank}"
    device = resolve_device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    started_group = False
    if distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=PROCESS_GROUP_TIMEOUT)
        started_group = True
    main = rank == 0
    if run is not None:
        run.device = str(device)

    try:
        # ---- model, optimiser, data
        set_seed(_derived_seed(seed, rank, 0))
        model.to(device)
        optimizer = make_optimizer(model)
        scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
        loader_generator = torch.Generator().manual_seed(seed)
        augment_generator = torch.Generator(device=device).manual_seed(_derived_seed(seed, rank, 1))
        sampler = (
            DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
            if distributed
            else None
        )
        train_loader = DataLoader(
            train_set,
            batch_size=batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=loader_generator,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
        )
        # Each rank tests a disjoint slice; the sums are added up below (no padded duplicates).
        test_slice = Subset(test_set, range(rank, len(test_set), world_size)) if distributed else test_set

        # ---- resume
        start_epoch, metrics, last_state, saved_epoch = 1, {}, None, None
        if checkpoint_path is not None:
            if main:
                _remove_stale_temporaries(checkpoint_path)
            if checkpoint_path.exists():
                state = load_checkpoint(checkpoint_path)
                missing = [key for key in ("model", "optimizer", "epoch", "rng") if key not in state]
                if missing:
                    raise ValueError(f"checkpoint {checkpoint_path} lacks {missing}; it was not written by fit(): delete it")
                _check_same_config(state.get("config"), config, checkpoint_path)
                if state["epoch"] > epochs:
                    raise ValueError(
                        f"checkpoint {checkpoint_path} is at epoch {state['epoch']}, past epochs={epochs}; "
                        "raise epochs or use another checkpoint path"
                    )
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                if scheduler is not None and state.get("scheduler") is not None:
                    scheduler.load_state_dict(state["scheduler"])
                if len(state["rng"]) == world_size:
                    _set_rng_state(state["rng"][rank], loader_generator, augment_generator)
                elif main:
                    tqdm.write(
                        f"note: {checkpoint_path} was written by {len(state['rng'])} processes, this run has "
                        f"{world_size}; random streams restart, so results differ from an uninterrupted run"
                    )
                start_epoch, metrics = state["epoch"] + 1, dict(state.get("metrics") or {})
                last_state, saved_epoch = state, state["epoch"]
                if main:
                    tqdm.write(f"resuming from {checkpoint_path} after epoch {state['epoch']}")
            if run is not None:
                # Lines of epochs after the checkpoint (or of a first attempt killed before any
                # checkpoint) are logged again by this run.
                run.rewind(start_epoch - 1)
        net = model
        if distributed:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    except BaseException:
        if started_group:
            dist.destroy_process_group()
        raise

    status, results, logged = "failed", {}, dict(metrics)
    try:
        for epoch in range(start_epoch, epochs + 1):
            started = time.perf_counter()
            if sampler is not None:
                sampler.set_epoch(epoch)
            net.train()
            lr = float(optimizer.param_groups[0]["lr"])
            # Sums over the epoch's samples, kept on the device to avoid a sync per batch.
            sums: dict[str, torch.Tensor] = {}
            errors = torch.zeros((), dtype=torch.float64, device=device)
            count = 0
            bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not (progress and main), dynamic_ncols=True)
            for step, (inputs, targets) in enumerate(bar):
                inputs = inputs.to(device, non_blocking=True)
                targets = targets.to(device, non_blocking=True)
                if batch_transform is not None:
                    inputs = batch_transform(inputs, augment_generator)
                logits = net(inputs)
                value, parts = loss_fn(model, logits, targets)
                if not isinstance(parts, Mapping):
                    raise ValueError(f"loss must return (loss tensor, dict of parts), got parts of type {type(parts).__name__}")
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()

                size = targets.shape[0]
                count += size
                for name, part in (("loss", value), *parts.items()):
                    sums[name] = sums.get(name, 0.0) + _as_float64(part, device) * size
                errors += (logits.detach().argmax(dim=1) != targets).sum()
                if not bar.disable and (step % 10 == 0 or step == len(train_loader) - 1):
                    bar.set_postfix(loss=f"{float(sums['loss']) / count:.4f}", error=f"{float(errors) / count:.4f}")
            bar.close()
            if scheduler is not None:
                scheduler.step()
            if distributed:
                # Each rank's last forward updated its batch-norm statistics from its own batch;
                # take rank 0's so that every rank tests, and rank 0 saves, the same model.
                for buffer in model.buffers():
                    dist.broadcast(buffer, src=0)

            names = list(sums)
            clash = [name for name in names[1:] if name in ENGINE_KEYS]
            if clash:
                raise ValueError(f"loss parts {clash} reuse names of fit's own metrics {ENGINE_KEYS}; rename them")
            totals = torch.stack([*(sums[name] for name in names), errors, _as_float64(count, device)])
            tests = _evaluation_sums(model, test_slice, eval_batch_size, device)
            if distributed:
                dist.all_reduce(totals)
                dist.all_reduce(tests)
            totals, tests = totals.tolist(), tests.tolist()
            metrics = {"epoch": epoch}
            metrics.update({name: totals[index] / totals[-1] for index, name in enumerate(names)})
            metrics.update(
                train_error=totals[-2] / totals[-1],
                test_error=tests[1] / tests[2],
                test_loss=tests[0] / tests[2],
                lr=lr,
            )
            if not math.isfinite(metrics["loss"]):
                raise FloatingPointError(
                    f"the training loss is {metrics['loss']} at epoch {epoch}; lower the learning rate or check the inputs"
                )

            if main:
                for hook in hooks:
                    extra = hook(epoch, model)
                    if extra is None:
                        continue
                    if not isinstance(extra, Mapping):
                        raise ValueError(f"epoch hook {hook!r} returned {type(extra).__name__}; return a dict or None")
                    clash = [key for key in extra if key in metrics]
                    if clash:
                        raise ValueError(f"epoch hook {hook!r} returned keys {clash} that are already metrics; rename them")
                    metrics.update(extra)
            metrics["seconds"] = time.perf_counter() - started
            if main:
                logged = dict(metrics)
                if run is not None:
                    run.log(metrics)
                # One line per epoch even without the bar: it is the log of a batch job.
                shown = ", ".join(f"{key} {value:.4g}" for key, value in metrics.items() if isinstance(value, float))
                tqdm.write(f"epoch {epoch}/{epochs}: {shown}")

            if checkpoint_path is not None:
                # Kept in memory each epoch so that a KeyboardInterrupt mid-epoch can save the last
                # completed epoch, which resumes exactly (a half-trained epoch would not).
                rng = _rng_state(loader_generator, augment_generator)
                if distributed:
                    gathered: list[Any] = [None] * world_size
                    dist.all_gather_object(gathered, rng)
                    rng = gathered
                else:
                    rng = [rng]
            if checkpoint_path is not None and main:
                last_state = {
                    "model": _cpu_copy(model.state_dict()),
                    "optimizer": _cpu_copy(optimizer.state_dict()),
                    "scheduler": _cpu_copy(scheduler.state_dict()) if scheduler is not None else None,
                    "epoch": epoch,
                    "config": config,
                    "metrics": _jsonable(metrics, "metrics"),
                    "rng": rng,
                }
                if epoch % checkpoint_every == 0 or epoch == epochs:
                    save_torch(last_state, checkpoint_path)
                    saved_epoch = epoch
        status, results = "completed", dict(metrics)
        if distributed:
            # No rank tears the process group down while another still uses it.
            dist.barrier()
        return dict(metrics)
    except KeyboardInterrupt:
        status, results = "interrupted", logged
        if main and last_state is not None and saved_epoch != last_state["epoch"]:
            save_torch(last_state, checkpoint_path)
            tqdm.write(f"interrupted: saved epoch {last_state['epoch']} to {checkpoint_path}")
        raise
    except Exception as error:
        results = {"error": f"{type(error).__name__}: {error}", "last_metrics": logged}
        raise
    finally:
        if run is not None and finish_run:
            run.finish(status, **results)
        if started_group:
            # DDP's reducer must be freed while its process group still exists: freed after
            # destroy_process_group it can block the process at exit.
            net = None
            gc.collect()
            dist.destroy_process_group()
