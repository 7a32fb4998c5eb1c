"""Checkpoints and plane files written before the experiments layer was reshaped (commit 0c3f52d,
tests/data/checkpoints/README.md) are still found under their run names and resumed: the same
config continues after the stored epoch instead of starting over or being refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from infodrop.engine import load_checkpoint
from infodrop.experiments.session import run_command
from infodrop.io import save_npz
from infodrop.plane import InformationPlane, PlaneDocument
from infodrop.plots import plot_plane_figures

OLD = Path(__file__).resolve().parents[1] / "data" / "checkpoints"

MNIST = ["model=lenet", "dataset=digits", "train_subset=200", "test_subset=100", "batch_size=50", "epochs=2",
         "checkpoint_every=1", "plane_samples=50", "noise_samples=2", "bins=[4]", "plot_formats=[png]", "progress=false"]
MNIST_NAME = "model=lenet,dataset=digits,train_subset=200,test_subset=100,batch_size=50"
CIFAR = ["filter_percentage=0.05", "batch_size=5", "progress=false"]
CIFAR_NAME = "filter_percentage=0.05,batch_size=5"


pytestmark = pytest.mark.usefixtures("one_thread")


def _folders(tmp_path: Path) -> list[str]:
    return [f"models_dir={tmp_path / 'models'}", f"runs_dir={tmp_path / 'runs'}", f"plots_dir={tmp_path / 'plots'}"]


def _write_cifar_npz(folder: Path) -> None:
    """The prepared-format files the old cifar checkpoint was trained on: 10 and 5 random images."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("test", 5)):
        save_npz(folder / f"cifar10-{split}.npz", images=rng.normal(size=(count, 3, 32, 32)).astype(np.float32),
                 labels=rng.integers(0, 10, count))


def _epochs_logged(run_dir: Path) -> list[int]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line["epoch"] for line in lines if "epoch" in line]


def test_an_old_mnist_checkpoint_at_epoch_1_of_2_resumes_and_trains_epoch_2(tmp_path, capsys):
    checkpoint = tmp_path / "models" / "mnist" / f"{MNIST_NAME}.pt"
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(OLD / "mnist_epoch1_of_2.pt", checkpoint)
    stored = load_checkpoint(checkpoint)

    result = run_command("mnist", "train", MNIST + _folders(tmp_path))[0]

    assert f"resuming from {checkpoint} after epoch 1" in capsys.readouterr().out
    assert result["history"]["epoch"] == 2
    assert _epochs_logged(tmp_path / "runs" / "mnist" / MNIST_NAME) == [2]
    state = load_checkpoint(checkpoint)
    assert state["epoch"] == 2 and state["config"] == stored["config"]
    assert not all(torch.equal(state["model"][key], stored["model"][key]) for key in stored["model"])
    assert [record["epoch"] for record in InformationPlane.load(result["plane"])["records"]] == [2]


def test_an_old_cifar_checkpoint_resumes_when_the_run_is_made_longer(tmp_path, capsys):
    _write_cifar_npz(tmp_path / "datasets")
    checkpoint = tmp_path / "models" / "cifar" / f"{CIFAR_NAME}.pt"
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(OLD / "cifar_epoch1.pt", checkpoint)

    result = run_command("cifar", "train", CIFAR + ["epochs=2", f"data_dir={tmp_path / 'datasets'}"] + _folders(tmp_path))[0]

    assert f"resuming from {checkpoint} after epoch 1" in capsys.readouterr().out
    assert result["epoch"] == 2
    assert _epochs_logged(tmp_path / "runs" / "cifar" / CIFAR_NAME) == [2]
    assert load_checkpoint(checkpoint)["epoch"] == 2


def test_an_old_plane_file_is_read_and_plotted(tmp_path):
    # The typed records write back exactly the JSON they were read from.
    assert PlaneDocument.load(OLD / "mnist_plane.json").to_json() == json.loads((OLD / "mnist_plane.json").read_text())
    document = InformationPlane.load(OLD / "mnist_plane.json")
    assert [record["epoch"] for record in document["records"]] == [0, 1, 2]
    assert document["layer"] == "1.fc2.2" and document["sample_counts"] == {"train": 50, "test": 50}
    figures = plot_plane_figures(OLD / "mnist_plane.json", tmp_path, formats=("png",))
    assert sorted(path.name for path in figures) == ["plane_auto.png", "plane_binning.png", "plane_binning_bins.png",
                                                    "plane_side_by_side.png"]
