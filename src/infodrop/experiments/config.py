"""Config fields and the checks of entries that only the experiments know.

Each experiment's ``Config`` is a dataclass whose fields are made with :func:`entry`: a default,
a one-line help and whether the entry enters the run name. Entries that the networks take as
arguments (dropout kind, activations, widths, noise scales) are checked by the networks' own
constructors, run on the meta device by :func:`check_model` (no memory, no random draws), so
each rule has one home; this module checks the rest (learning rates, subsets, milestones, ...).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import types
import typing
from dataclasses import field
from typing import Any, Callable, Sequence

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from infodrop.checks import check_in_range, check_int

__all__ = [
    "ConfigError",
    "check_choice",
    "check_keep_prob",
    "check_milestones",
    "check_model",
    "check_subset",
    "entry",
    "override_value",
    "to_plain",
    "wrong_type_message",
]


class ConfigError(ValueError):
    """A configuration or command-line mistake; the CLI prints its one-line message and exits 2."""


def entry(default: Any, help: str, *, in_run_name: bool = True, added: bool = False) -> Any:
    """A ``Config`` field with its one-line help; ``in_run_name=False`` keeps it out of run names.
    ``added=True`` marks an entry added after checkpoints were written: at its default it is left
    out of the config a checkpoint stores, so the checkpoints of earlier versions still resume."""
    metadata = {"help": help, "in_run_name": in_run_name, "added": added}
    if isinstance(default, (list, dict)):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=metadata)
    return field(default=default, metadata=metadata)


def to_plain(cfg: Any) -> dict[str, Any]:
    """The composed config as a plain dict (lists and scalars only), for logs and checkpoints."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    return dict(cfg)


def override_value(value: Any) -> str:
    """Write a Python value in Hydra's override grammar (``true``, ``[40,80]``, ``null``, ``'a b'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./\-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_KINDS = {bool: ("true or false", "true/false values"), int: ("an integer", "integers"),
          float: ("a number", "numbers"), str: ("a string", "strings")}


def _shown(value: Any) -> str:
    """A value as the user typed it: strings quoted, the rest in the override grammar."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    return repr(value) if isinstance(value, str) else override_value(value)


def _expected(kind: Any, name: str, default: Any) -> str | None:
    """What an entry of type ``kind`` takes, in words ("an integer", "a list of numbers, e.g. ...")."""
    options = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in options:
        inner = [option for option in options if option is not type(None)]
        if inner == [bool]:
            return "true, false or null"
        words = _expected(inner[0], name, default) if len(inner) == 1 else None
        return f"{words} or null" if words else None
    if kind in _KINDS:
        return _KINDS[kind][0]
    if typing.get_origin(kind) in (list, typing.List) and options and options[0] in _KINDS:
        example = override_value(list(default)) if default else "[...]"
        return f"a list of {_KINDS[options[0]][1]}, e.g. {name}={example}"
    return None


def wrong_type_message(key: str, value: Any, config_class: type) -> str | None:
    """The refusal of a value that does not convert to its entry's type, in the words of the
    entry's type: ``epochs must be an integer, got 'abc'``, ``bins[0] must be an integer, got 1.5``,
    ``bins must be a list of integers, e.g. bins=[10,30,100], got 5``. ``key`` is the entry (or a
    list element, ``bins[0]``) as OmegaConf names it; None when it is not an entry of
    ``config_class`` or its type has no such words."""
    name, bracket, _ = key.partition("[")
    fields = {spec.name: spec for spec in dataclasses.fields(config_class)}
    if name not in fields:
        return None
    kind = typing.get_type_hints(config_class)[name]
    if bracket:  # an element of a list entry
        options = typing.get_args(kind)
        if typing.get_origin(kind) not in (list, typing.List) or not options:
            return None
        kind = options[0]
    spec = fields[name]
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    expected = _expected(kind, name, default)
    return f"{key} must be {expected}, got {_shown(value)}" if expected else None


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError naming the entry."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; use one of: {', '.join(map(str, choices))}")
    return value


def check_subset(value: Any, name: str) -> int:
    """Subset sizes: 0 means the whole split, otherwise a positive number of samples."""
    return check_int(value, name, minimum=0)


# No training set of these experiments comes near this many images, and no device holds a batch
# of them: a larger batch_size is a typo, refused before any data is read.
MAX_BATCH_SIZE = 2**24


def check_batch_size(batch_size: Any, train_subset: Any) -> int:
    """batch_size: an integer in [1, 2**24], at most ``train_subset`` when that is given (> 0),
    since training drops a last partial batch and would have none to train on."""
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if batch_size > MAX_BATCH_SIZE:
        raise ValueError(f"batch_size={batch_size} is more images than any training set here holds; use a batch_size such as 128")
    if isinstance(train_subset, int) and 0 < train_subset < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds train_subset={train_subset}, so there is no full batch to train on; "
            "lower batch_size or raise train_subset"
        )
    return batch_size


def check_keep_prob(value: Any, name: str) -> float:
    """Keep probabilities, as the original code names them: in (0, 1] (1 keeps everything)."""
    return check_in_range(value, name, 0.0, 1.0)


def check_milestones(value: Sequence[int], name: str) -> list[int]:
    """Learning-rate milestones: increasing epochs >= 1 (an empty list means a constant rate)."""
    epochs = [check_int(v, f"{name}[{i}]", minimum=1) for i, v in enumerate(value)]
    if any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise ValueError(f"{name} must be strictly increasing epochs, got {epochs}")
    return epochs


def check_model(build: Callable[[], torch.nn.Module]) -> None:
    """Run a network's own door checks on the config's entries: ``build()`` constructs it on the
    meta device, which allocates nothing and draws no random numbers, so a bad entry is refused
    (by the network's one-line ValueError naming it) before any data is read."""
    with torch.device("meta"):
        build()
