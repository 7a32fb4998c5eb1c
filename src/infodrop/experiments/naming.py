"""Run names and the folders of a run's artefacts.

A run is named after the entries whose values differ from the defaults, in the order of the
``Config`` fields, e.g. ``dropout=binary,filter_percentage=0.25`` (``default`` when none differs),
like the original code's sacred names. Entries that cannot change the trained model (folders,
``epochs``, progress bars, the device, plot and prepare settings) are made with
``entry(..., in_run_name=False)`` and left out. ``epochs`` is left out on purpose: where the
learning-rate schedule is fixed by its milestones, a run trained for more epochs continues the
checkpoint of a shorter one instead of starting over; where a cosine schedule spans all the epochs,
a run of another length is refused, naming the entries to set (:mod:`infodrop.experiments.resuming`). A run's artefacts live at
``models/<experiment>/<name>.pt``, ``runs/<experiment>/<name>/`` and ``plots/<experiment>/<name>/``
(the experiment folder keeps, say, the ``cifar`` and ``cluttered`` defaults apart).

These names are a contract with the files of earlier versions: tests/experiments/test_run_names.py
pins them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import ListConfig

from infodrop.experiments.config import to_plain

__all__ = ["RunPaths", "model_config", "run_name", "run_paths"]

# Longer names are cut and completed with a hash of the full name, so that they stay unique.
MAX_NAME = 200


def _in_name(config_class: type) -> list[dataclasses.Field]:
    return [spec for spec in dataclasses.fields(config_class) if spec.metadata.get("in_run_name", True)]


def _name_value(value: Any) -> str:
    if isinstance(value, (list, tuple, ListConfig)):
        return "-".join(_name_value(v) for v in value) or "none"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def run_name(cfg: Any, config_class: type) -> str:
    """``key=value`` pairs of the model-relevant entries of ``cfg`` that differ from the defaults
    of ``config_class``.

    Joined by commas in field order; characters other than letters, digits and ``._=,-`` become
    ``_``; ``default`` when nothing differs.
    """
    defaults = dataclasses.asdict(config_class())
    parts = []
    for spec in _in_name(config_class):
        value = cfg[spec.name]
        if isinstance(value, ListConfig):
            value = list(value)
        if value != defaults[spec.name]:
            parts.append(f"{spec.name}={_name_value(value)}")
    if not parts:
        return "default"
    name = re.sub(r"[^A-Za-z0-9._=,\-]", "_", ",".join(parts))
    if len(name) > MAX_NAME:
        name = name[: MAX_NAME - 20] + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def model_config(cfg: Any, config_class: type) -> dict[str, Any]:
    """The entries that define the trained model (those that enter the run name), as plain values:
    what a checkpoint stores and a resumed run must match."""
    plain = to_plain(cfg)
    return {spec.name: plain[spec.name] for spec in _in_name(config_class)
            if not (spec.metadata.get("added") and plain[spec.name] == spec.default)}


@dataclass(frozen=True)
class RunPaths:
    """Where a run's artefacts live, all relative to the working directory by default."""

    name: str
    model_file: Path
    run_dir: Path
    plots_dir: Path


def run_paths(cfg: Any, config_class: type, experiment: str) -> RunPaths:
    """``models/<experiment>/<name>.pt``, ``runs/<experiment>/<name>/``, ``plots/<experiment>/<name>/``."""
    name = run_name(cfg, config_class)
    return RunPaths(
        name=name,
        model_file=Path(cfg.models_dir) / experiment / f"{name}.pt",
        run_dir=Path(cfg.runs_dir) / experiment / name,
        plots_dir=Path(cfg.plots_dir) / experiment / name,
    )
