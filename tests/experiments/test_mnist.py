"""The MNIST information-plane experiment (Adilova, Geiger & Fischer, ICLR 2023, Section 5) end to
end on scikit-learn's 8 x 8 digits (bundled, no download), in seconds."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from infodrop.experiments.session import ConfigError, run_command
from infodrop.plane import InformationPlane


def _folders(tmp_path) -> list[str]:
    return [f"models_dir={tmp_path / 'models'}", f"runs_dir={tmp_path / 'runs'}", f"plots_dir={tmp_path / 'plots'}"]


TINY = ["dataset=digits", "train_subset=400", "test_subset=120", "batch_size=64", "plane_samples=100",
        "noise_samples=2", "bins=[4,16]", "progress=false", "plot_formats=[png]"]


@pytest.mark.end_to_end
def test_train_records_the_plane_every_k_epochs_and_plot_rereads_it(tmp_path):
    overrides = TINY + ["epochs=4", "plane_every=3"] + _folders(tmp_path)
    result = run_command("mnist", "train", overrides)[0]
    document = InformationPlane.load(result["plane"])
    # Epoch 0 is the initialisation, 1 the first epoch the hook sees, then every 3rd and the last.
    assert [record["epoch"] for record in document["records"]] == [0, 1, 3, 4]
    assert document["dropout_kind"] == "gaussian" and document["layer"] == "layers.2.2"
    assert document["sample_counts"] == {"train": 100, "test": 100}
    assert 0.0 <= result["history"]["test_error"] <= 1.0
    plot_dir = tmp_path / "plots" / "mnist"
    for path in plot_dir.rglob("*.png"):
        path.unlink()
    printed = run_command("mnist", "plot", overrides)[0]
    assert sorted(Path(p).name for p in printed) == ["plane_auto.png", "plane_binning.png", "plane_binning_bins.png",
                                                     "plane_side_by_side.png"]
    assert all(Path(p).exists() for p in printed)


@pytest.mark.end_to_end
def test_rerun_with_other_bookkeeping_entries_resumes_but_another_length_is_refused(tmp_path):
    overrides = TINY + ["epochs=1", "estimators=[binning]"] + _folders(tmp_path)
    run_command("mnist", "train", overrides)
    # plane and output settings do not define the model: the finished run is found and kept.
    again = run_command("mnist", "train", overrides + ["plane_every=5", "bins=[8]"])[0]
    assert again["history"]["epoch"] == 1
    # The cosine schedule depends on the number of epochs, so a longer run is another run.
    with pytest.raises(ValueError, match="epochs"):
        run_command("mnist", "train", overrides + ["epochs=2"])


@pytest.mark.end_to_end
def test_lenet_with_information_dropout_records_the_variational_plane(tmp_path):
    overrides = TINY + ["model=lenet", "dropout=information", "epochs=1", "estimators=[auto]"] + _folders(tmp_path)
    result = run_command("mnist", "train", overrides)[0]
    document = InformationPlane.load(result["plane"])
    assert document["dropout_kind"] == "information" and document["estimators"] == {"auto": "variational"}
    last = document["records"][-1]["test"]["auto"]
    # The variational I(Z;Y) >= H(Y) - CE can be negative early on but never exceeds H(Y) <= log 10.
    assert last["is_mi"] and last["i_zy"] <= math.log(10) + 1e-9 and last["i_xz"] > 0


@pytest.mark.end_to_end
def test_binary_dropout_binning_estimate_grows_as_bins_shrink(tmp_path):
    """Theorems 3.1/3.2: with binary dropout I(X;Z) is infinite, so the binning estimate keeps
    growing as the bins shrink (up to the plug-in ceiling log N); our Gaussian-dropout estimate
    does not depend on bins."""
    overrides = ["dataset=digits", "train_subset=400", "test_subset=100", "batch_size=64", "binary_epochs=1",
                 "binary_samples=200", "binary_draws=4", "binary_bins=[4,16,64,256,1024]", "noise_samples=2",
                 "progress=false", "plot_formats=[png]"] + _folders(tmp_path)
    result = run_command("mnist", "binary", overrides)[0]
    binary = sorted((row for row in result["rows"] if row["network"] == "binary" and row["scope"] == "per-unit mean"),
                    key=lambda row: row["bins"])
    values = [row["i_xz"] for row in binary]
    # Doubling the bin count refines the partition, and the plug-in MI is the exact MI of the
    # empirical distribution, so by data processing it never decreases; 1e-9 allows round-off.
    assert all(later >= earlier - 1e-9 for earlier, later in zip(values, values[1:]))
    assert values[-1] > values[0] + 1.0
    assert values[-1] <= math.log(200) + 1e-9
    ours = [row for row in result["rows"] if row["estimator"] == "mixture"]
    assert {row["scope"] for row in ours} == {"whole", "per-unit mean"}
    whole = next(row for row in ours if row["scope"] == "whole")
    assert whole["lower"] <= whole["upper"] and math.isfinite(whole["i_xz"])
    with open(result["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result["rows"]) and {row["network"] for row in rows} == {"binary", "gaussian"}
    assert [Path(path).name for path in result["figures"]] == ["binary_binning.png"]


@pytest.mark.end_to_end
def test_demo_prints_a_one_screen_summary(tmp_path, capsys, monkeypatch):
    from infodrop.experiments.mnist import demo

    monkeypatch.chdir(tmp_path)
    result = demo(overrides=("dataset=digits", "epochs=1", "train_subset=300", "test_subset=100", "plane_samples=80",
                             "progress=false", "plot_formats=[png]"))
    printed = capsys.readouterr().out
    assert "test error " in printed and "(accuracy " in printed and "train I(X;Z)" in printed and "plane JSON:" in printed
    # The summary says in words how many recorded points are saturated, once.
    assert printed.count("recorded points saturated") == 4  # the mixture and the three bin counts
    assert "gaussian-mixture: " in printed and printed.count("saturation (pressed against log N") == 1
    records = json.loads((tmp_path / "runs" / "mnist" / "demo" / "plane.json").read_text())["records"]
    assert [record["epoch"] for record in records] == [0, 1]
    assert (tmp_path / "plots" / "mnist" / "demo" / "plane_side_by_side.png").exists()


@pytest.mark.parametrize(
    "override, message",
    [("model=resnet", "model"), ("dropout=none", "dropout"), ("plane_every=0", "plane_every"),
     ("bins=[]", "bins"), ("estimators=[ksg]", "estimators"), ("dataset=cifar", "dataset")],
)
def test_bad_config_values_are_refused_naming_the_entry(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run_command("mnist", "train", [override] + _folders(tmp_path))


def test_missing_mnist_folder_names_the_alternatives(tmp_path):
    with pytest.raises(ConfigError, match="dataset=fashion"):
        run_command("mnist", "train", ["dataset=mnist", f"data_dir={tmp_path / 'nothing'}"] + _folders(tmp_path))


def test_the_tracked_layer_is_the_first_continuous_dropout_else_the_first_binary_one():
    from infodrop.experiments import mnist, plane_recipe
    from infodrop.experiments.session import compose

    gaussian = mnist.build_model(compose("mnist", ["lenet"]), (1, 28, 28))
    binary = mnist.build_model(compose("mnist", ["lenet", "binary"]), (1, 28, 28))
    assert plane_recipe.tracked_layer(gaussian) == "fc2.2"
    assert plane_recipe.tracked_layer(binary) == "fc2.2"
    assert isinstance(dict(binary.named_modules())["fc2.2"], torch.nn.Dropout)


# ---------------------------------------------------------------- bands, saturation and sub-representations (issue 9)


@pytest.mark.end_to_end
def test_train_records_bands_saturation_and_subset_planes_and_says_how_many_points_are_saturated(tmp_path, capsys):
    overrides = TINY + ["epochs=2", "plane_every=1", "plane_subsets=[1,4]", "subset_draws=2"] + _folders(tmp_path)
    result = run_command("mnist", "train", overrides)[0]
    printed = capsys.readouterr().out
    document = InformationPlane.load(result["plane"])
    assert document["dataset"] == "8x8 digits (scikit-learn)" and document["layer_units"] == 32
    for record in document["records"]:
        for split in ("train", "test"):
            auto = record[split]["auto"]
            assert {"i_xz", "i_xz_lower", "i_xz_upper", "log_n", "saturated", "i_zy_lower", "i_zy_upper"} <= set(auto)
            assert auto["log_n"] == pytest.approx(math.log(100))
            assert set(record[split]["subsets"]) == {"1", "4"} and len(record[split]["subsets"]["4"]["values"]) == 2
            assert all("saturated" in point and "log_n" in point for point in record[split]["binning"].values())
    assert sorted(Path(path).name for path in result["figures"]) == [
        "plane_auto.png", "plane_binning.png", "plane_binning_bins.png", "plane_side_by_side.png", "plane_subsets.png"]
    # One cost line before the first record, and the end-of-run summary in words.
    assert sum(line.startswith("plane cost:") for line in printed.splitlines()) == 1
    saturated = sum(record[split]["auto"]["saturated"] for record in document["records"] for split in ("train", "test"))
    assert f"gaussian-mixture: {saturated} of 6 recorded points saturated" in printed


def test_a_subset_size_larger_than_the_layer_is_refused_naming_plane_subsets(tmp_path):
    with pytest.raises(ConfigError, match=r"plane_subsets=\[1, 40\]: \[40\] exceed the 32 units of the tracked layer"):
        run_command("mnist", "train", TINY + ["epochs=1", "plane_subsets=[1,40]"] + _folders(tmp_path))
    with pytest.raises(ConfigError, match="plane_subsets=.*needs dropout=gaussian"):
        run_command("mnist", "train", TINY + ["epochs=1", "dropout=information", "plane_subsets=[1]"] + _folders(tmp_path))
    with pytest.raises(ConfigError, match=r"plane_subsets\[0\]"):
        run_command("mnist", "train", TINY + ["epochs=1", "plane_subsets=[0]"] + _folders(tmp_path))


@pytest.mark.end_to_end
def test_information_dropout_planes_at_several_beta_take_one_command(tmp_path, monkeypatch):
    """Achille & Soatto's trade-off in one sweep: one run, plane and figure per beta; the KL bound is
    not capped at log N (never saturated) and carries its band."""
    from infodrop import cli

    monkeypatch.chdir(tmp_path)
    # The variational plane alone (estimators=[auto]): one figure per run, the one this is about.
    status = cli.main(["mnist", "train", "--multirun", "with", "information", "beta=0.5,50", "epochs=1", *TINY,
                       "estimators=[auto]"])
    assert status == 0
    planes = sorted((tmp_path / "runs" / "mnist").glob("*/plane.json"))
    assert [path.parent.name.split(",")[1] for path in planes] == ["beta=0.5", "beta=50.0"]
    for path in planes:
        auto = InformationPlane.load(path)["records"][-1]["train"]["auto"]
        assert auto["saturated"] is False and auto["i_xz_lower"] < auto["i_xz"] < auto["i_xz_upper"]
        assert (tmp_path / "plots" / "mnist" / path.parent.name / "plane_auto.png").exists()


@pytest.mark.end_to_end
def test_train_under_torchrun_with_two_cpu_processes_shares_the_plane_estimate(tmp_path):
    """Every rank records (the mixture estimate's samples of Z are split over the two processes),
    rank 0 alone writes and prints: one cost line, every epoch once."""
    import subprocess
    import sys

    from tests._subprocess import subprocess_env

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "infodrop.cli",
               "mnist", "train", "with", "epochs=2", "plane_every=1", "device=cpu", "plane_subsets=[2]", "subset_draws=2",
               *TINY]
    process = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    (path,) = (tmp_path / "runs" / "mnist").glob("*/plane.json")
    document = InformationPlane.load(path)
    assert document["config"]["distributed"] is True
    assert [record["epoch"] for record in document["records"]] == [0, 1, 2]
    assert process.stdout.count("plane cost:") == 1 and "shared by 2 processes" in process.stdout
    assert process.stdout.count("recorded points saturated") == 3  # the mixture and two bin counts, printed once


@pytest.mark.end_to_end
def test_plane_samples_zero_estimates_on_every_input_of_both_splits(tmp_path):
    overrides = TINY + ["epochs=1", "plane_samples=0", "train_subset=300", "estimators=[auto]"] + _folders(tmp_path)
    document = InformationPlane.load(run_command("mnist", "train", overrides)[0]["plane"])
    assert document["sample_counts"] == {"train": 300, "test": 120} and document["config"]["max_samples"] is None
    assert document["records"][-1]["train"]["auto"]["log_n"] == pytest.approx(math.log(300))


def test_the_summary_says_what_a_negative_estimate_means(tmp_path):
    from infodrop.experiments.plane_recipe import summary
    from infodrop.io import write_json

    records = [{"epoch": epoch, "train": {"n": 100, "auto": {"i_xz": xz, "i_zy": zy, "is_mi": True}}}
               for epoch, (xz, zy) in enumerate([(0.01, -0.002), (3.0, 1.2)])]
    plane = write_json(tmp_path / "plane.json", {"format": "infodrop.plane/1", "units": "nats", "layer": "drop",
                                                 "dropout_kind": "gaussian", "estimators": {"auto": "gaussian-mixture"},
                                                 "sample_counts": {"train": 100}, "records": records})
    text = summary({"history": {"test_error": 0.1, "epoch": 1}, "plane": str(plane), "figures": []}, epochs=1,
                   plots_dir=tmp_path)
    assert "1 recorded estimate(s) are negative (down to -0.002 nats)" in text and "read them as 0" in text
