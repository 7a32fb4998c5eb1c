"""Reading an experiment's data: subsets of a split, and the one-line error for a missing file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from infodrop.data import DataError

__all__ = ["Split", "prepare_hint", "require_files", "take"]

Split = tuple  # (images float32 N x C x H x W, labels int64 N), numpy


def require_files(paths: Iterable[Path], hint: str) -> None:
    """Raise DataError naming the first missing file and the command that makes it."""
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{path}: file not found; {hint}")


def prepare_hint(cfg: Any, experiment: str, source: str) -> str:
    """The sentence that tells which ``prepare`` command writes the data files ``cfg`` reads."""
    extra = "" if cfg.data_dir == "datasets" else f" data_dir={cfg.data_dir}"
    return f"run `infodrop {experiment} prepare with source={source}{extra}` first"


def take(split: tuple[Any, Any], count: int, name: str) -> tuple[Any, Any]:
    """The first ``count`` samples of a split (all of them for 0); more than there are is an error."""
    images, labels = split[0], split[1]
    if count == 0:
        return images, labels
    if count > len(images):
        raise ValueError(f"{name}={count} but the file has only {len(images)} samples; use {name} <= {len(images)} or 0 for all")
    return images[:count], labels[:count]
