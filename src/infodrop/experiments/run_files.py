"""A command's hold on its run, and the trained weights it reads back.

:func:`holding_run` is the first thing every command of a run does (train, test, plot,
correlation, binary): it takes the run's lock (:class:`infodrop.io.RunLock` on
``runs/<experiment>/<name>/``) for the command's whole lifetime, before any data is read, so a
second process of the same run exits at once with a message naming the run and the process that
holds it; then, as the one writer, it deletes the temp files a killed writer of this run left
(in its run and plot folders, and those of its checkpoint in the shared models folder). Only rank
0 of a torchrun job writes, so only rank 0 locks.

:func:`load_weights` loads a checkpoint into a network for a command that uses a trained run,
verified (:func:`infodrop.io.load_checkpoint`), and turns every way it can fail into one line
that names the file (and the config entry that gave it) and what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

from torch import nn

from infodrop.distributed import is_main_process
from infodrop.experiments.naming import RunPaths
from infodrop.io import RunLock, checkpoint_exists, load_checkpoint, previous_path, remove_temporaries, resume_checkpoint

__all__ = ["holding_run", "load_weights"]


@contextlib.contextmanager
def holding_run(paths: RunPaths, experiment: str) -> Iterator[None]:
    """Hold the lock of the run at ``paths`` (named ``<experiment>/<run name>`` in messages) for
    the block, after removing the temp files its killed writers left (see the module docstring)."""
    if not is_main_process():
        yield
        return
    with RunLock(paths.run_dir, name=f"{experiment}/{paths.name}"):
        remove_temporaries(paths.run_dir, recursive=True)
        remove_temporaries(paths.plots_dir, recursive=True)
        for checkpoint in (paths.model_file, previous_path(paths.model_file)):
            remove_temporaries(checkpoint.parent, of=checkpoint.name)
        yield


def load_weights(
    model: nn.Module, checkpoint: str | Path, *, source: str, dropout: str | None = None, previous: bool = False
) -> dict:
    """Load the ``'model'`` weights of the checkpoint file into ``model``; returns the checkpoint.

    Args:
        checkpoint: the file.
        source: how the messages name where the file came from, e.g. ``binary_checkpoint=<file>``
            or ``run cifar/<name>``.
        dropout: when given, the dropout kind the checkpoint's stored config must have (a
            Gaussian-dropout network is not a binary-dropout one, though their weights have the
            same names and shapes).
        previous: a run's own checkpoint: when it is damaged or missing, use the previous one
            (``<name>.prev.pt``) with a one-line warning, as training does when it resumes
            (:func:`infodrop.io.resume_checkpoint`). A file the user names is used as it is.

    Raises ValueError (one line naming ``source`` and the fix) when the file is missing,
    damaged, not a training checkpoint, of another dropout kind, or of another network.
    """
    path = Path(checkpoint)
    if not (checkpoint_exists(path) if previous else path.is_file()):
        raise ValueError(f"{source}: {path} does not exist; check the path, or train the run first")
    try:
        if previous:
            state, path = resume_checkpoint(path)  # type: ignore[misc]  # it exists: never None
        else:
            state = load_checkpoint(path)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    weights, config = state.get("model"), state.get("config")
    if not isinstance(weights, Mapping):
        raise ValueError(f"{source}: {path} holds no 'model' weights; give a checkpoint written by `infodrop ... train`")
    if dropout is not None:
        stored = config.get("dropout") if isinstance(config, Mapping) else None
        if stored is None:
            raise ValueError(
                f"{source}: {path} does not record its dropout kind (no config); give a checkpoint written by "
                f"`infodrop ... train with dropout={dropout}`"
            )
        if stored != dropout:
            raise ValueError(
                f"{source}: {path} holds a {stored}-dropout network, not a {dropout}-dropout one; give the checkpoint "
                f"of a run trained with dropout={dropout}"
            )
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        details = str(error).strip().splitlines()
        detail = details[1].strip() if len(details) > 1 else (details[0] if details else "")
        raise ValueError(
            f"{source}: {path} holds another network than this config builds ({detail[:200]}); "
            "use the same model settings it was trained with"
        ) from None
    return state
