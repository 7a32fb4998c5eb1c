"""Run folders: the record of one training run, written by rank 0 only.

``runs/<experiment>/<run name>/`` holds ``config.yaml`` (the configuration), ``metrics.jsonl`` (one
JSON line per epoch), ``result.json`` (status, times, results, host and versions) and, when the
optional ``tensorboard`` package is installed, ``tensorboard/`` with the same scalars. Every file
is written atomically (:mod:`infodrop.io`).

A run has one writer: a :class:`Run` takes the run's lock (:class:`infodrop.io.RunLock`, the file
``.lock`` in the folder) before it writes anything and holds it until :meth:`Run.close` (or until
it is garbage collected, or the process ends in any way); a second process gets
:class:`infodrop.io.RunLockedError` naming the run and the process that holds it. Holding the
lock, it deletes the temp files a killed writer left in the folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import platform
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import infodrop
from infodrop.checks import resolve_device
from infodrop.distributed import ddp_info
from infodrop.io import RunLock, append_jsonl, read_jsonl, remove_temporaries, write_json, write_jsonl, write_text

__all__ = ["Run", "STATUSES", "RUNNING", "jsonable", "plain_config"]

# "terminated": stopped by SIGTERM (SLURM, docker, systemd), "interrupted": by Ctrl-C; both saved
# their last complete epoch and resume with the same command.
STATUSES = ("completed", "interrupted", "terminated", "failed")
# The status result.json holds while a run trains (Run.start); a file that still says so after
# the process is gone belongs to a run that was killed (kill -9, power loss).
RUNNING = "running"


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def jsonable(value: Any, name: str) -> Any:
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
        return {str(key): jsonable(item, f"{name}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item, f"{name}[{index}]") for index, item in enumerate(value)]
    raise ValueError(f"{name} has a value of type {type(value).__name__} that cannot be written as JSON; pass a number or string")


def plain_config(config: Any) -> dict | None:
    """The config as a plain dict of str/int/float/bool/None/lists/dicts (what ``weights_only`` loads).

    Accepts a dict, a dataclass instance or any other mapping, an OmegaConf ``DictConfig`` included
    (a mapping whose lists are sequences), so this module needs no OmegaConf.
    """
    if config is None:
        return None
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
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            return [plain(item, f"{name}[{index}]") for index, item in enumerate(value)]
        raise ValueError(f"config entry {name} has type {type(value).__name__}; use numbers, strings, lists and dicts")

    return {str(key): plain(value, str(key)) for key, value in config.items()}


class Run:
    """A run folder ``runs/<experiment>/<run name>/`` holding

    - ``config.yaml``: the configuration (written when ``config`` is given),
    - ``metrics.jsonl``: one JSON line per :meth:`log` call (one per epoch from ``fit``),
    - ``result.json``: written by :meth:`finish` (status, times, results, host, versions, device),
    - ``tensorboard/``: the same scalars, when the optional ``tensorboard`` package is installed.

    Creating a Run takes the run's lock (see the module docstring; ``name`` is how its messages
    call the run, by default the folder); :meth:`close`, or ``with Run(...) as run:``, gives it
    back. Off rank 0 of a distributed run every method is a no-op, so all ranks may hold a Run.
    """

    def __init__(self, folder: Path | str, *, config: Any = None, name: str | None = None):
        self.folder = Path(folder)
        self.rank = ddp_info()[0]
        self.device: str | None = None  # fit() records the device it trained on
        self.world_size = ddp_info()[2]
        self.start_time = _utc_now()
        self._tensorboard: Any = None
        self._tensorboard_tried = False
        self._lock: RunLock | None = None
        if self.rank != 0:
            return
        self._lock = RunLock(self.folder, name=name).acquire()
        remove_temporaries(self.folder, recursive=True)
        if config is not None:
            text = yaml.safe_dump(plain_config(config), default_flow_style=False, allow_unicode=True, sort_keys=False)
            write_text(self.folder / "config.yaml", text)

    @property
    def metrics_path(self) -> Path:
        return self.folder / "metrics.jsonl"

    @property
    def result_path(self) -> Path:
        return self.folder / "result.json"

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r})"

    def close(self) -> None:
        """Give the run's lock back (the files stay); safe to call twice."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # A Run dropped without close() must not keep its run locked for the rest of the process.
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Append ``metrics`` as one JSON line to ``metrics.jsonl`` (atomically) and, when
        TensorBoard is installed, write its numbers as scalars at step ``metrics['epoch']``."""
        if self.rank != 0:
            return
        if not isinstance(metrics, Mapping):
            raise ValueError(f"metrics must be a dict of name -> value, got {type(metrics).__name__}")
        line = jsonable(dict(metrics), "metrics")
        append_jsonl(self.metrics_path, line)
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
        """The lines of ``metrics.jsonl`` as dicts (empty when nothing was logged). A cut-off last
        line is dropped with a warning naming the file (:func:`infodrop.io.read_jsonl`)."""
        return read_jsonl(self.metrics_path)

    def rewind(self, epoch: int) -> None:
        """Drop the lines logged for epochs after ``epoch``: a run killed between a checkpoint and
        the next one resumes from the checkpoint and logs those epochs again."""
        if self.rank != 0 or not self.metrics_path.exists():
            return
        kept = [line for line in self.history() if not (isinstance(line.get("epoch"), int) and line["epoch"] > epoch)]
        write_jsonl(self.metrics_path, kept)

    def start(self) -> None:
        """Write ``result.json`` with status ``'running'``, the process id, host and start time
        (ISO 8601 UTC), so that a run killed before :meth:`finish` still says what it was and
        who ran it. :meth:`finish` replaces it."""
        if self.rank != 0:
            return
        record = {
            "status": RUNNING,
            "start_time": self.start_time,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "infodrop_version": infodrop.__version__,
            "world_size": self.world_size,
        }
        write_json(self.result_path, record)

    def finish(self, status: str, **results: Any) -> None:
        """Write ``result.json``: ``status`` ('completed', 'interrupted', 'terminated' or 'failed'), start and end
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
            "results": jsonable(results, "results"),
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
