"""The CIFAR-10 experiment end to end through the CLI, on tiny synthetic CIFAR-format batches,
and the total-correlation estimate of Achille & Soatto's ``correlation`` command."""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from infodrop import cli
from infodrop.experiments import cifar
from infodrop.experiments.naming import run_name
from infodrop.experiments.session import compose
from infodrop.nn import InformationDropout
from tests._subprocess import subprocess_env

# Tiny everything: 4 filters in the first block, 10 training and 10 test images, 2 batches/epoch.
SMALL = ["filter_percentage=0.05", "batch_size=5", "progress=false"]
RELU_NAME = "filter_percentage=0.05,batch_size=5"
# With 10 training images beta * KL / N_train is large; a gentler setting keeps softplus finite.
SOFTPLUS = ["softplus", "beta=0.1", "lr=0.01"]
SOFTPLUS_NAME = "activations=softplus,lognorm_prior=True,beta=0.1,filter_percentage=0.05,batch_size=5,lr=0.01"


def _random_batch(rng: np.random.Generator):
    """Uniform random pixels and labels: the format, no signal."""
    return lambda count: (rng.integers(0, 256, (count, 3072), dtype=np.uint8), rng.integers(0, 10, count))


def _write_batches(folder: Path, make_batch, *, per_batch: int = 2, test_count: int = 10) -> None:
    """cifar-10-batches-py with five training batches of ``per_batch`` images and a test batch;
    ``make_batch(count)`` gives the uint8 count x 3072 pixels and the labels of one batch."""
    folder.mkdir()
    for name, count in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test_count)]:
        data, labels = make_batch(count)
        batch = {b"data": data, b"labels": [int(v) for v in labels]}
        (folder / name).write_bytes(pickle.dumps(batch))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with prepared data and two trained runs (relu, softplus)."""
    folder = tmp_path_factory.mktemp("cifar")
    with contextlib.chdir(folder):
        _write_batches(folder / "cifar-10-batches-py", _random_batch(np.random.default_rng(0)))
        assert cli.main(["cifar", "prepare", "with", "source=cifar-10-batches-py"]) == 0
        assert cli.main(["cifar", "train", "with", "epochs=1", *SMALL]) == 0
        assert cli.main(["cifar", "train", "with", *SOFTPLUS, "epochs=1", *SMALL]) == 0
    return folder


@pytest.mark.end_to_end
def test_prepare_writes_whitened_npz_files(inside):
    data = np.load(inside / "datasets" / "cifar10-train.npz")
    assert data["images"].shape == (10, 3, 32, 32) and data["labels"].shape == (10,)
    assert (inside / "datasets" / "cifar10-test.npz").is_file()


@pytest.mark.end_to_end
def test_train_saves_the_model_under_the_run_name_and_records_the_run(inside):
    assert (inside / "models" / "cifar" / f"{RELU_NAME}.pt").is_file()
    run = inside / "runs" / "cifar" / RELU_NAME
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1]
    assert {"cross_entropy", "kl", "l2", "test_error"} <= set(lines[0])
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    assert "beta: 3.0" in (run / "config.yaml").read_text()


@pytest.mark.end_to_end
def test_train_resumes_from_its_checkpoint(inside, capsys):
    # epochs is not part of the run name: a longer run continues the shorter one's checkpoint.
    assert cli.main(["cifar", "train", "with", *SOFTPLUS, "epochs=2", *SMALL]) == 0
    lines = (inside / "runs" / "cifar" / SOFTPLUS_NAME / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines if "epoch" in json.loads(line)] == [1, 2]
    state = torch.load(inside / "models" / "cifar" / f"{SOFTPLUS_NAME}.pt", weights_only=True)
    assert state["epoch"] == 2


@pytest.mark.end_to_end
def test_test_reports_the_test_error_of_the_same_run(inside, capsys):
    assert cli.main(["cifar", "test", "with", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "Test error:" in out and RELU_NAME in out
    record = json.loads((inside / "runs" / "cifar" / RELU_NAME / "test.json").read_text())
    assert 0.0 <= record["test_error"] <= 1.0


@pytest.mark.end_to_end
def test_test_without_a_trained_model_says_to_train(inside, capsys):
    status = cli.main(["cifar", "test", "with", "beta=1", *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and "infodrop cifar train" in err and "Traceback" not in err


@pytest.mark.end_to_end
def test_correlation_of_softplus_network_is_a_finite_positive_number(inside, capsys):
    assert cli.main(["cifar", "correlation", "with", *SOFTPLUS, "correlation_mode=channels", *SMALL]) == 0
    out = capsys.readouterr().out
    value = float(out.split("Total correlation:")[1].split()[0])
    # A Gaussian's total correlation is a KL divergence: >= 0, and finite for full-rank data.
    assert 0.0 <= value < float("inf")


@pytest.mark.end_to_end
def test_correlation_over_all_units_refuses_fewer_samples_than_units(inside, capsys):
    # 9 channels x 8 x 8 locations = 576 variables from 10 test images: singular covariance.
    status = cli.main(["cifar", "correlation", "with", *SOFTPLUS, *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and "singular" in err and "correlation_mode=channels" in err


@pytest.mark.end_to_end
def test_correlation_refuses_relu_and_points_to_softplus(inside, capsys):
    status = cli.main(["cifar", "correlation", "with", *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and "softplus" in err and "Traceback" not in err


@pytest.mark.end_to_end
def test_plot_draws_kl_heat_maps_for_five_test_images(inside):
    assert cli.main(["cifar", "plot", "with", *SMALL]) == 0
    files = sorted((inside / "plots" / "cifar" / RELU_NAME).glob("*.png"))
    assert [f.name for f in files] == [f"kl_{j}.png" for j in range(5)]
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)
    # The arrays behind them, with the unwhitened pixels that prepare kept, for a redraw.
    from infodrop.io import load_npz

    arrays = load_npz(inside / "plots" / "cifar" / RELU_NAME / "kl_maps.npz")
    assert arrays["raw_images"].shape == arrays["images"].shape == (5, 3, 32, 32) and "kl_0" in arrays


def test_train_without_data_names_the_file_and_the_prepare_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = cli.main(["cifar", "train", "with", "data_dir=elsewhere", *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "elsewhere/cifar10-train.npz" in err
    assert "infodrop cifar prepare with source=PATH/cifar-10-batches-py data_dir=elsewhere" in err
    assert not (tmp_path / "models").exists()


def test_fullcnn_preset_is_the_iclr_2023_setup():
    cfg = compose("cifar", ["single_dropout=true", "max_alpha=0.95", "lr_milestones=[40,80,120]", "plane_every=1"])
    assert cfg == compose("cifar", ["fullcnn"])
    assert (cfg.batch_size, cfg.lr, cfg.epochs, cfg.lr_decay) == (100, 0.05, 200, 0.1)
    layers = [m for m in cifar.build_model(cfg).modules() if isinstance(m, InformationDropout)]
    assert len(layers) == 1


def test_defaults_are_the_original_cifar_py():
    cfg = compose("cifar")
    assert (cfg.batch_size, cfg.lr, list(cfg.lr_milestones), cfg.lr_decay, cfg.epochs) == (100, 0.05, [80, 120, 160], 0.1, 200)
    assert (cfg.beta, cfg.max_alpha, cfg.weight_decay, cfg.momentum) == (3.0, 0.7, 0.001, 0.9)
    assert (cfg.dropout, cfg.activations, cfg.lognorm_prior, cfg.filter_percentage) == ("information", "relu", False, 1.0)
    assert (cfg.keep_prob, cfg.initial_keep_prob) == (0.5, 0.8)


@pytest.mark.end_to_end
def test_short_cifar_format_run_on_learnable_synthetic_data_lowers_the_loss(tmp_path, monkeypatch):
    # Each class has its own mean colour under pixel noise: a signal that survives the per-image
    # standardisation and ZCA whitening of prepare and the global pooling of All-CNN.
    # 200 training images, 10 batches per epoch, the original's lr, beta and weight decay.
    rng = np.random.default_rng(1)
    colours = rng.uniform(40, 215, (10, 3))

    def coloured_batch(count):
        labels = rng.integers(0, 10, count)
        images = colours[labels][:, :, None] + rng.normal(0.0, 30.0, (count, 3, 1024))
        return np.clip(images, 0, 255).astype(np.uint8).reshape(count, 3072), labels

    folder = tmp_path / "cifar-10-batches-py"
    _write_batches(folder, coloured_batch, per_batch=40, test_count=50)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["cifar", "prepare", "with", f"source={folder}"]) == 0
    assert cli.main(["cifar", "train", "with", "filter_percentage=0.1", "batch_size=20", "epochs=5", "progress=false"]) == 0
    lines = [json.loads(line) for line in
             (tmp_path / "runs" / "cifar" / "filter_percentage=0.1,batch_size=20" / "metrics.jsonl").read_text().splitlines()]
    cross_entropy = [line["cross_entropy"] for line in lines]
    # An epoch's mean cross-entropy at chance is log 10 = 2.30 nats and wobbles by a few 0.01 from
    # batch to batch; a drop of 10% (0.23 nats) is learning, not noise.
    assert cross_entropy[-1] < 0.9 * cross_entropy[0], cross_entropy
    assert lines[-1]["loss"] < lines[0]["loss"]


@pytest.mark.end_to_end
def test_the_same_train_command_runs_under_torchrun_with_two_cpu_processes(workdir, tmp_path):
    shutil.copytree(workdir / "datasets", tmp_path / "datasets")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "infodrop.cli", "cifar", "train", "with", "epochs=2", "device=cpu", *SMALL]
    process = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    run = tmp_path / "runs" / "cifar" / RELU_NAME
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["world_size"] == 2
    # Rank 0 alone writes: one line per epoch, one checkpoint.
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert (tmp_path / "models" / "cifar" / f"{RELU_NAME}.pt").is_file()


@pytest.mark.end_to_end
def test_fullcnn_train_records_the_information_plane_of_its_one_dropout_layer(inside, capsys):
    # Fig. 7: the plane of the information-dropout layer after the third convolution, every epoch.
    overrides = ["fullcnn", *SOFTPLUS, "epochs=2", "plane_samples=0", "bins=[4]", "plot_formats=[png]", *SMALL]
    assert cli.main(["cifar", "train", "with", *overrides]) == 0
    name = run_name(compose("cifar", overrides), cifar.Config)
    document = json.loads((inside / "runs" / "cifar" / name / "plane.json").read_text())
    assert document["layer"] == "blocks.0.2" and document["dropout_kind"] == "information"
    assert document["prior"] == "log-normal" and document["sample_counts"] == {"train": 10, "test": 10}
    assert [record["epoch"] for record in document["records"]] == [0, 1, 2]
    for record in document["records"]:
        for split in ("train", "test"):
            auto = record[split]["auto"]
            # The variational bound E_x KL(p(z|x) || prior) of a log-normal prior is an MI bound:
            # a KL (>= 0) summed over the 4 channels x 16 x 16 locations, not capped at log N.
            assert auto["is_mi"] and auto["i_xz_kind"] == "kl-upper-bound-on-i_xz"
            assert 0.0 <= auto["i_xz"] < float("inf")
            # Its band is the bound's own (2 standard errors of the mean over the inputs), and it
            # is never pressed against log N.
            assert auto["i_xz_lower"] <= auto["i_xz"] <= auto["i_xz_upper"] and auto["saturated"] is False
            # H(Y) - CE is a lower bound on I(Z;Y), which never exceeds H(Y).
            assert auto["i_zy"] <= record[split]["h_y"] + 1e-12
            # Binning with the input's index as X is capped by H(X) = log N.
            assert 0.0 <= record[split]["binning"]["4"]["i_xz"] <= math.log(10) + 1e-9
    figures = sorted(path.name for path in (inside / "plots" / "cifar" / name).glob("plane_*.png"))
    assert "plane_auto.png" in figures and "plane_binning.png" in figures
    assert "saturation (pressed against log N" in capsys.readouterr().out


@pytest.mark.end_to_end
def test_cifar_train_without_plane_every_records_no_plane(inside):
    assert not (inside / "runs" / "cifar" / RELU_NAME / "plane.json").exists()


@pytest.mark.end_to_end
@pytest.mark.parametrize("override, entry", [("plane_samples=1", "plane_samples"), ("plane_every=-1", "plane_every"),
                                             ("estimators=[kde]", "estimators"), ("bins=[0]", "bins[0]")])
def test_bad_plane_entries_are_refused_naming_the_entry(inside, capsys, override, entry):
    status = cli.main(["cifar", "train", "with", "fullcnn", override, *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and entry in err and "Traceback" not in err
