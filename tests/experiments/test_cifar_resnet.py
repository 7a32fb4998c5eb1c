"""The CIFAR-10 ResNet-18 information-plane experiment (Adilova, Geiger & Fischer, ICLR 2023, Fig. 6)
end to end on a few random images in the prepared-npz format."""

from __future__ import annotations

import numpy as np
import pytest

from infodrop.experiments.session import ConfigError, run_command
from infodrop.io import save_npz
from infodrop.plane import InformationPlane


def _folders(tmp_path) -> list[str]:
    return [f"models_dir={tmp_path / 'models'}", f"runs_dir={tmp_path / 'runs'}", f"plots_dir={tmp_path / 'plots'}",
            f"data_dir={tmp_path / 'datasets'}"]


def _fake_cifar(folder, train: int = 16, test: int = 8) -> None:
    rng = np.random.default_rng(0)
    for name, count in (("train", train), ("test", test)):
        images = rng.standard_normal((count, 3, 32, 32)).astype(np.float32)
        save_npz(folder / f"cifar10-{name}.npz", images=images, labels=(np.arange(count) % 10).astype(np.int64))


@pytest.mark.end_to_end
def test_train_records_the_bottleneck_plane_with_augmentation_and_plot_rereads_it(tmp_path):
    _fake_cifar(tmp_path / "datasets")
    overrides = ["epochs=1", "batch_size=8", "plane_samples=0", "noise_samples=2", "bins=[4]", "progress=false", "plot_formats=[png]"] + _folders(tmp_path)
    result = run_command("cifar_resnet", "train", overrides)[0]
    document = InformationPlane.load(result["plane"])
    assert [record["epoch"] for record in document["records"]] == [0, 1]
    assert document["dropout_kind"] == "gaussian" and document["variance"] == pytest.approx(2 / 3)
    assert document["sample_counts"] == {"train": 16, "test": 8}
    auto = document["records"][-1]["test"]["auto"]
    # I(X;Z) of 8 inputs is at most log 8 (up to the Monte Carlo error of h(Z): 4 standard errors).
    assert 0 < auto["i_xz"] <= np.log(8) + 4 * auto["i_xz_stderr"]
    lower, upper = auto["i_xz_bounds"]
    # The pairwise bracket holds the exact mixture entropy; the MC estimate within 4 standard errors.
    assert lower - 4 * auto["i_xz_stderr"] <= auto["i_xz"] <= upper + 4 * auto["i_xz_stderr"]
    printed = run_command("cifar_resnet", "plot", overrides)[0]
    assert any(path.endswith("plane_auto.png") for path in printed)


def test_missing_data_names_the_prepare_command(tmp_path):
    with pytest.raises(ConfigError, match="infodrop cifar prepare"):
        run_command("cifar_resnet", "train", ["progress=false"] + _folders(tmp_path))


def test_plot_without_a_recorded_plane_says_to_train_first(tmp_path):
    with pytest.raises(ConfigError, match="record a plane first"):
        run_command("cifar_resnet", "plot", _folders(tmp_path))
