"""One checkpoint rule per learning-rate schedule: a run continues a checkpoint exactly when it
would record what an uninterrupted run of the same command records."""

from __future__ import annotations

import pytest
import torch

from infodrop.experiments.resuming import check_continuation
from infodrop.io import save_torch


def _rates(schedule: str, epochs: int) -> list[float]:
    """The learning rate of each epoch, as the recipes build their schedules."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    if schedule == "step":
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_step_rates_of_a_short_run_are_the_first_epochs_of_a_longer_run_and_cosine_rates_are_not():
    assert _rates("step", 6)[:3] == _rates("step", 3)
    assert _rates("cosine", 6)[:3] != pytest.approx(_rates("cosine", 3))


def _checkpoint(tmp_path, epoch: int, epochs: int | None = None):
    config = {"beta": 3.0} if epochs is None else {"beta": 3.0, "epochs": epochs}
    return save_torch({"model": {}, "optimizer": {}, "epoch": epoch, "rng": [], "config": config}, tmp_path / "run.pt")


def test_without_a_checkpoint_the_run_starts_at_epoch_0(tmp_path):
    assert check_continuation(tmp_path / "none.pt", 5, schedule="cosine") == 0


def test_a_longer_step_run_continues_the_checkpoint(tmp_path):
    path = _checkpoint(tmp_path, epoch=2)
    assert check_continuation(path, 5, schedule="step") == 2
    assert check_continuation(path, 2, schedule="step") == 2  # finished: nothing left to train


def test_a_step_run_shorter_than_its_checkpoint_is_refused_naming_the_entries(tmp_path):
    path = _checkpoint(tmp_path, epoch=4)
    with pytest.raises(ValueError, match="set epochs=4 or more") as refused:
        check_continuation(path, 3, schedule="step")
    assert "models_dir=" in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_a_cosine_run_continues_only_a_checkpoint_of_its_own_length(tmp_path):
    path = _checkpoint(tmp_path, epoch=1, epochs=3)
    assert check_continuation(path, 3, schedule="cosine") == 1
    for other in (2, 4):
        with pytest.raises(ValueError, match="set epochs=3 to continue that run") as refused:
            check_continuation(path, other, schedule="cosine")
        assert f"models_dir=<another folder> to train the {other}-epoch run" in str(refused.value)


def test_an_unknown_schedule_is_refused(tmp_path):
    with pytest.raises(ValueError, match="schedule"):
        check_continuation(tmp_path / "none.pt", 3, schedule="linear")
