"""The Cluttered MNIST experiment end to end through the CLI, from tiny synthetic IDX files."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

from infodrop import cli
from infodrop.data import write_idx
from infodrop.experiments import cluttered
from infodrop.experiments.naming import run_name
from infodrop.experiments.session import compose

# A 32 x 32 canvas keeps AllCNN96 tiny (32 -> 16 -> 8 -> 4 -> 2); 0.1 of the filters: 3 to 19.
GENERATOR = ["canvas=32", "distractors=2", "train_count=10", "valid_count=4", "test_count=10", "generator_seed=1"]
SMALL = ["filter_percentage=0.1", "batch_size=5", "progress=false"]
NAME = "filter_percentage=0.1,batch_size=5"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with tiny IDX files, the generated dataset and one trained run."""
    folder = tmp_path_factory.mktemp("cluttered")
    rng = np.random.default_rng(0)
    idx = folder / "idx"
    for prefix, count in (("train", 24), ("t10k", 10)):
        write_idx(idx / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(idx / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count).astype(np.uint8))
    with contextlib.chdir(folder):
        assert cli.main(["cluttered", "prepare", "with", "source=idx", *GENERATOR]) == 0
        assert cli.main(["cluttered", "train", "with", "epochs=1", *SMALL]) == 0
    return folder


@pytest.mark.end_to_end
def test_prepare_generates_the_three_splits_with_the_generator_settings(inside):
    for split, count in (("train", 10), ("valid", 4), ("test", 10)):
        data = np.load(inside / "datasets" / f"cluttered-{split}.npz")
        assert data["images"].shape == (count, 1, 32, 32)


@pytest.mark.end_to_end
def test_train_saves_the_model_and_the_run_record(inside):
    assert (inside / "models" / "cluttered" / f"{NAME}.pt").is_file()
    result = json.loads((inside / "runs" / "cluttered" / NAME / "result.json").read_text())
    assert result["status"] == "completed" and 0.0 <= result["results"]["test_error"] <= 1.0


@pytest.mark.end_to_end
def test_generator_settings_do_not_change_the_run_name(inside):
    cfg = compose("cluttered", [*GENERATOR, *SMALL])
    assert run_name(cfg, cluttered.Config) == NAME


@pytest.mark.end_to_end
def test_test_reports_the_test_error(inside, capsys):
    assert cli.main(["cluttered", "test", "with", *SMALL]) == 0
    assert "Test error:" in capsys.readouterr().out
    assert (inside / "runs" / "cluttered" / NAME / "test.json").is_file()


@pytest.mark.end_to_end
def test_plot_draws_one_figure_per_image_with_every_dropout_layer(inside):
    assert cli.main(["cluttered", "plot", "with", "plot_images=2", *SMALL]) == 0
    files = sorted((inside / "plots" / "cluttered" / NAME).glob("*.png"))
    assert [f.name for f in files] == ["kl_0.png", "kl_1.png"]


@pytest.mark.end_to_end
def test_plot_refuses_networks_without_information_dropout(inside, capsys):
    status = cli.main(["cluttered", "plot", "with", "dropout=binary", *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and "dropout=information" in err


def test_train_without_data_names_the_prepare_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = cli.main(["cluttered", "train", "with", *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and "datasets/cluttered-train.npz" in err
    assert "infodrop cluttered prepare with source=" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "setting, entry",
    [("distractor_size=40", "distractor_size"), ("combine=sum", "combine"), ("max_alpha=1.01", "max_alpha"), ("beta=-1", "beta")],
)
def test_bad_values_are_refused_naming_the_entry(tmp_path, monkeypatch, capsys, setting, entry):
    monkeypatch.chdir(tmp_path)
    status = cli.main(["cluttered", "prepare", "with", "source=idx", *GENERATOR, setting])
    err = capsys.readouterr().err
    assert status == 2 and entry in err
    assert list(tmp_path.iterdir()) == []


def test_defaults_are_the_original_cluttered_py():
    cfg = compose("cluttered")
    assert (cfg.batch_size, cfg.lr, list(cfg.lr_milestones), cfg.lr_decay, cfg.epochs) == (128, 0.01, [30, 60], 0.1, 80)
    assert (cfg.beta, cfg.max_alpha, cfg.weight_decay, cfg.initial_keep_prob) == (0.5, 1.0, 0.0, 1.0)
    assert (cfg.canvas, cfg.distractors, cfg.distractor_size) == (96, 8, 8)
