"""Experiments: one small module per experiment, handed to two shared recipes.

Every experiment module (``cifar``, ``cluttered``, ``mnist``, ``cifar_resnet``, ``toy``) exposes

- ``Config``: a dataclass whose fields carry ``metadata={"help": "one line"}``; defaults are
  the paper's values;
- ``NAMED_CONFIGS``: presets, the bare words after ``with`` on the command line;
- ``validate(cfg)``: raises ``ValueError`` naming the entry for a bad value;
- ``COMMANDS``: command name -> function of the composed, read-only config.

The model and data builders of ``cifar`` and ``cluttered`` go to the classifier recipe
(:mod:`~infodrop.experiments.classifier_recipe`: train, test, plot, correlation), those of
``mnist`` and ``cifar_resnet`` to the plane recipe (:mod:`~infodrop.experiments.plane_recipe`:
train with an information plane, plot). The Hydra and torchrun session is
:mod:`~infodrop.experiments.session`, run names and folders :mod:`~infodrop.experiments.naming`,
``print_config`` :mod:`~infodrop.experiments.printing`, config fields and the checks of
experiment-only entries :mod:`~infodrop.experiments.config`. This package is the only place in
infodrop that knows about Hydra and OmegaConf. Experiment modules are imported lazily, so a
missing or heavy experiment never slows down or breaks the others.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

EXPERIMENT_NAMES = ("cifar", "cluttered", "mnist", "cifar_resnet", "toy", "study")


def load_experiment(name: str) -> ModuleType | None:
    """Import ``infodrop.experiments.<name>``; ``None`` when that module does not exist.

    An experiment module that exists but fails to import raises its own error: hiding it
    would turn a bug into a confusing "unknown experiment".
    """
    if name not in EXPERIMENT_NAMES:
        return None
    module_name = f"{__name__}.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise


def available_experiments() -> list[str]:
    """Names of the experiment modules present in this installation, in the canonical order."""
    found = []
    for name in EXPERIMENT_NAMES:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            found.append(name)
    return found


__all__ = ["EXPERIMENT_NAMES", "available_experiments", "load_experiment"]
