"""Sweeps: `infodrop EXP COMMAND --multirun with key=a,b` runs one job per value through Hydra's
BasicSweeper and BasicLauncher, each an ordinary run with its own name, checkpoint and record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infodrop import cli
from infodrop.io import save_npz


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """Prepared-format CIFAR files (already 'whitened': random normals), 10 train, 5 test images."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("test", 5)):
        images = rng.normal(size=(count, 3, 32, 32)).astype(np.float32)
        save_npz(tmp_path / "datasets" / f"cifar10-{split}.npz", images=images, labels=rng.integers(0, 10, count))
    return tmp_path


@pytest.mark.end_to_end
def test_multirun_over_two_beta_values_trains_two_runs(tiny_cifar):
    status = cli.main(
        ["cifar", "train", "--multirun", "with", "beta=0.5,1", "epochs=1", "filter_percentage=0.05", "batch_size=5", "progress=false"]
    )
    assert status == 0
    runs = sorted(p.name for p in (tiny_cifar / "runs" / "cifar").iterdir() if p.name != "multirun")
    assert runs == ["beta=0.5,filter_percentage=0.05,batch_size=5", "beta=1.0,filter_percentage=0.05,batch_size=5"]
    for name in runs:
        assert (tiny_cifar / "models" / "cifar" / f"{name}.pt").is_file()
        assert json.loads((tiny_cifar / "runs" / "cifar" / name / "result.json").read_text())["status"] == "completed"
        assert f"beta: {name.split(',')[0].split('=')[1]}" in (tiny_cifar / "runs" / "cifar" / name / "config.yaml").read_text()
    # Hydra writes only its sweep record, under runs/cifar/multirun/; nothing in the working directory.
    (sweep,) = (tiny_cifar / "runs" / "cifar" / "multirun").iterdir()
    assert [p.name for p in sweep.iterdir()] == ["multirun.yaml"]
    assert sorted(p.name for p in tiny_cifar.iterdir()) == ["datasets", "models", "runs"]


def test_multirun_over_named_configs_and_values_takes_the_product(tiny_cifar, capsys):
    assert cli.main(["cifar", "print_config", "-m", "with", "fullcnn", "beta=3,20", "filter_percentage=1.0,0.25"]) == 0
    names = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("Run name:")]
    assert len(names) == 4 and len(set(names)) == 4
    assert all("single_dropout=True" in name for name in names)


def test_a_command_may_compose_configs_while_a_sweep_runs(tmp_path, monkeypatch):
    from infodrop.experiments import cifar, session

    monkeypatch.chdir(tmp_path)

    def peek(cfg):
        # Another composition inside a job must leave the running sweep's Hydra state intact.
        return cfg.beta, session.compose("cifar", ["fullcnn"]).max_alpha

    monkeypatch.setitem(cifar.COMMANDS, "peek", peek)
    results = session.run_command("cifar", "peek", ["beta=0.5,1,2"], multirun=True)
    assert results == [(0.5, 0.95), (1.0, 0.95), (2.0, 0.95)]


def test_a_refused_job_of_a_sweep_is_reported_with_its_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = cli.main(["cifar", "train", "-m", "with", "beta=0.5,1", "progress=false"])
    err = capsys.readouterr().err
    assert status == 2 and "job beta=0.5" in err and "infodrop cifar prepare" in err


# ----------------------------------------------------------------------------- jobs_per_device

TINY = ["epochs=2", "filter_percentage=0.05", "batch_size=5"]


def _checkpoint_weights(folder, name):
    from infodrop.checkpoints import load_checkpoint

    return load_checkpoint(folder / "models" / "cifar" / f"{name}.pt")["model"]


def _results(folder, name):
    results = json.loads((folder / "runs" / "cifar" / name / "result.json").read_text())["results"]
    return {key: value for key, value in results.items() if key != "seconds"}


@pytest.mark.end_to_end
def test_two_jobs_at_once_train_what_a_sequential_sweep_trains(tiny_cifar, capfd, monkeypatch):
    import shutil

    import torch

    names = ["beta=0.5,filter_percentage=0.05,batch_size=5", "beta=1.0,filter_percentage=0.05,batch_size=5"]
    sequential = tiny_cifar / "sequential"
    sequential.mkdir()
    shutil.copytree(tiny_cifar / "datasets", sequential / "datasets")
    assert cli.main(["cifar", "train", "--multirun", "with", "beta=0.5,1", "jobs_per_device=2", *TINY]) == 0
    out = capfd.readouterr().out
    monkeypatch.chdir(sequential)
    assert cli.main(["cifar", "train", "--multirun", "with", "beta=0.5,1", "progress=false", *TINY]) == 0

    for name in names:  # both run folders complete, with the numbers of the sequential sweep
        record = json.loads((tiny_cifar / "runs" / "cifar" / name / "result.json").read_text())
        assert record["status"] == "completed" and record["results"]["epoch"] == 2
        assert len((tiny_cifar / "runs" / "cifar" / name / "metrics.jsonl").read_text().splitlines()) == 2
        assert _results(tiny_cifar, name) == _results(sequential, name)
        parallel_weights, sequential_weights = _checkpoint_weights(tiny_cifar, name), _checkpoint_weights(sequential, name)
        assert all(torch.equal(parallel_weights[key], sequential_weights[key]) for key in sequential_weights)
    # Each job's lines carry its swept setting; the progress bars' redraws are left out.
    lines = out.splitlines()
    assert any(line.startswith("[beta=0.5] epoch 2/2: loss") for line in lines)
    assert any(line.startswith("[beta=1] epoch 2/2: loss") for line in lines)
    assert all(line.startswith(("[beta=0.5] ", "[beta=1] ")) for line in lines)


@pytest.mark.end_to_end
def test_a_failed_job_of_a_parallel_sweep_is_named_and_the_other_completes(tiny_cifar, capfd):
    status = cli.main(["cifar", "train", "--multirun", "with", "lr=0.05,1e20", "jobs_per_device=2", "progress=false", *TINY])
    err = capfd.readouterr().err
    assert status == 1
    # Divergence is a one-line refusal (issue 11): named with its job, no trace.
    assert "infodrop: error: 1 of 2 jobs failed: job lr=1e+20: training diverged at epoch 1 (training loss nan); lower lr" in err
    assert "Traceback" not in err
    record = json.loads((tiny_cifar / "runs" / "cifar" / "filter_percentage=0.05,batch_size=5" / "result.json").read_text())
    assert record["status"] == "completed"


def test_jobs_per_device_is_one_value_for_a_sweep_and_at_least_one(tiny_cifar, capsys):
    assert cli.main(["cifar", "train", "-m", "with", "jobs_per_device=1,2", "progress=false", *TINY]) == 2
    assert "jobs_per_device must be one value for the whole sweep" in capsys.readouterr().err
    assert cli.main(["cifar", "train", "-m", "with", "beta=1,2", "jobs_per_device=0", "progress=false", *TINY]) == 2
    assert "jobs_per_device must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tiny_cifar / "models").exists()  # refused before any job trained


@pytest.mark.end_to_end
def test_compile_true_hands_the_network_to_torch_compile(tiny_cifar, monkeypatch):
    import torch

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **options: compiled.append(type(module).__name__) or module)
    assert cli.main(["cifar", "train", "with", "compile=true", "epochs=1", "filter_percentage=0.05", "batch_size=5", "progress=false"]) == 0
    assert compiled == ["AllCNN32"]
