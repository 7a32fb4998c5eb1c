"""The tracker as a PyTorch Lightning callback (the optional ``lightning`` extra): the ICLR 2023
paper's code trains with Lightning, and a Lightning user records the same plane file."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from tests._subprocess import subprocess_env


def test_importing_infodrop_plane_does_not_import_lightning():
    code = "import sys, infodrop.plane; assert 'lightning' not in sys.modules, 'lightning was imported'"
    process = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True)
    assert process.returncode == 0, process.stderr


def test_without_lightning_the_callback_name_exists_and_says_how_to_install_it(monkeypatch):
    import infodrop.plane.lightning as module

    # A None entry in sys.modules makes `import lightning.pytorch` raise ImportError.
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    try:
        reloaded = importlib.reload(module)
        from infodrop.plane import InformationPlaneCallback

        assert InformationPlaneCallback is reloaded.InformationPlaneCallback
        with pytest.raises(ImportError, match=r'pip install -e "\.\[lightning\]"'):
            InformationPlaneCallback(([0.0], [0]))
    finally:
        monkeypatch.undo()
        importlib.reload(module)


@pytest.mark.end_to_end
def test_a_two_epoch_lightning_fit_on_the_digits_writes_the_plane_of_every_epoch(tmp_path):
    lightning = pytest.importorskip("lightning", reason='the lightning extra is not installed (pip install -e ".[lightning]")')
    from infodrop.data import load_digits_8x8, split
    from infodrop.nn import GaussianDropout
    from infodrop.plane import InformationPlane, InformationPlaneCallback

    images, labels = load_digits_8x8()
    parts = split(images.reshape(len(images), -1), labels, test_fraction=0.2, seed=0)
    train, test = parts["train"], parts["test"]

    class Digits(lightning.pytorch.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(64, 32), nn.Softplus())
            self.drop = GaussianDropout(0.25)
            self.head = nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.drop(self.body(x)))

        def training_step(self, batch, index):
            inputs, targets = batch
            return nn.functional.cross_entropy(self(inputs), targets)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.as_tensor(train[0]), torch.as_tensor(train[1])), batch_size=64, shuffle=True
    )
    callback = InformationPlaneCallback(train, test, output=tmp_path / "plane.json", max_samples=200, noise_samples=2,
                                        bins=(10,), device="cpu")
    trainer = lightning.pytorch.Trainer(max_epochs=2, accelerator="cpu", devices=1, callbacks=[callback], logger=False,
                                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                        default_root_dir=tmp_path)
    trainer.fit(Digits(), loader)

    document = InformationPlane.load(tmp_path / "plane.json")
    assert [record["epoch"] for record in document["records"]] == [0, 1, 2]
    assert document["layer"] == "drop" and document["dropout_kind"] == "gaussian" and document["layer_units"] == 32
    assert document["sample_counts"] == {"train": 200, "test": 200}
    for record in document["records"]:
        for split_name in ("train", "test"):
            auto = record[split_name]["auto"]
            for field in ("i_xz", "i_xz_lower", "i_xz_upper", "log_n", "saturated", "i_zy", "i_zy_lower", "i_zy_upper"):
                assert field in auto, field
            assert auto["i_xz_lower"] <= auto["i_xz_upper"] and auto["log_n"] == pytest.approx(np.log(200))
            assert isinstance(auto["saturated"], bool)
            assert set(record[split_name]["binning"]) == {"10"}
    # The file is the tracker's format, written atomically: it reads as plain JSON too.
    assert json.loads((tmp_path / "plane.json").read_text())["format"] == document["format"]
