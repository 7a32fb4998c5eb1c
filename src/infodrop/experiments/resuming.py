"""When a run may continue the checkpoint of its name, and refusals that name the entries to set.

A run's checkpoint is ``models/<experiment>/<run name>.pt``, and ``epochs`` is not in the run
name (tests/experiments/test_run_names.py pins the names). Whether a run with another ``epochs``
continues that checkpoint follows from its learning-rate schedule, so that a continued run always
records what an uninterrupted run of the same command would:

- step schedule (``cifar``, ``cluttered``: the rate drops at fixed milestone epochs): the rate of
  an epoch does not depend on ``epochs``, so the first k epochs of a longer run are the k epochs
  of the shorter one and a longer run continues the checkpoint. A checkpoint past ``epochs`` is
  refused.
- cosine schedule (``mnist``, ``cifar_resnet``: lr_t = lr (1 + cos(pi t / epochs)) / 2): every
  epoch's rate depends on ``epochs``, so a run with another ``epochs`` is another run, and the
  checkpoint of a different length is refused.

The refusals say which entry to set: ``epochs`` to continue the stored run, or
``models_dir`` to train the new length beside it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from infodrop.io import RecoveredFileWarning, checkpoint_exists, resume_checkpoint

__all__ = ["check_continuation"]

SCHEDULES = ("step", "cosine")


def check_continuation(path: Path, epochs: int, *, schedule: str) -> int:
    """The epoch the checkpoint at ``path`` holds (0 without one), after checking that a run of
    ``epochs`` epochs with this ``schedule`` ('step' or 'cosine') may continue it; raises a
    one-line ValueError naming ``epochs`` and ``models_dir`` otherwise."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    path = Path(path)
    if not checkpoint_exists(path):
        return 0
    # The checkpoint training will resume from: the latest, or the previous one when the latest is
    # damaged (the engine warns about that when it resumes; no second warning here).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveredFileWarning)
        stored, path = resume_checkpoint(path)
    reached = int(stored.get("epoch", 0))
    beside = f"models_dir=<another folder> to train the {epochs}-epoch run beside it (or delete {path})"
    if schedule == "cosine":
        length = (stored.get("config") or {}).get("epochs")
        if length is not None and int(length) != epochs:
            raise ValueError(
                f"{path} holds a run of epochs={length} (at epoch {reached}), and the cosine schedule spans all the "
                f"epochs, so epochs={epochs} is another run: set epochs={length} to continue that run, or {beside}"
            )
    if reached > epochs:
        raise ValueError(
            f"{path} holds {reached} epochs, more than epochs={epochs}: set epochs={reached} or more to continue it, or {beside}"
        )
    return reached
