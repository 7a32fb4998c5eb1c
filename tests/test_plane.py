"""The information-plane tracker (Adilova, Geiger & Fischer, ICLR 2023, Section 5, Appendix A.8)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from infodrop.nn import GaussianDropout, InformationDropout
from infodrop.plane import InformationPlane


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian blobs in 6 dimensions: a data set a tiny network fits in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0, 0], [0, 0, 2.0, 0, 0, 0]])
    inputs = centres[labels] + 0.5 * torch.randn(n, 6, generator=generator)
    return inputs, labels


class GaussianNet(nn.Module):
    def __init__(self, variance: float = 0.3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 8), nn.Softplus())
        self.drop = GaussianDropout(variance)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.body(x)))


class InformationNet(nn.Module):
    def __init__(self, activation: str = "softplus") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.drop = InformationDropout.linear(6, 8, activation=activation)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(x))


class BinaryNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 8), nn.Softplus())
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.body(x)))


def _train_steps(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, steps: int = 5) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()


@pytest.fixture()
def data():
    return _blobs(120, seed=1), _blobs(60, seed=2)


def test_manual_record_saves_both_planes_for_train_and_test_after_every_epoch(tmp_path, data):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, bins=(4, 16), noise_samples=3, output=tmp_path / "plane.json",
                             csv=tmp_path / "plane.csv", device="cpu")
    for epoch in range(2):
        _train_steps(model, *train)
        plane.record(epoch)
        saved = json.loads((tmp_path / "plane.json").read_text())
        assert [record["epoch"] for record in saved["records"]] == list(range(epoch + 1))
    assert saved["layer"] == "drop" and saved["dropout_kind"] == "gaussian"
    assert saved["variance"] == pytest.approx(0.3)
    assert saved["sample_counts"] == {"train": 120, "test": 60}
    assert saved["estimators"] == {"auto": "gaussian-mixture", "binning": "binning"}
    assert saved["config"]["bins"] == [4, 16]
    for record in saved["records"]:
        for split in ("train", "test"):
            auto = record[split]["auto"]
            lower, upper = auto["i_xz_bounds"]
            tolerance = 4 * auto["i_xz_stderr"]  # Monte Carlo error of h(Z): 4 standard errors
            # The pairwise bracket (Kolchinsky & Tracey) holds the exact mixture value; the MC estimate
            # lies in it up to its Monte Carlo error.
            assert lower - tolerance <= auto["i_xz"] <= upper + tolerance
            # I(X;Z) of N inputs never exceeds log N; I(Z;Y) never exceeds H(Y) = log 3 here.
            assert 0 < auto["i_xz"] <= math.log(record[split]["n"]) + tolerance
            assert auto["i_zy"] <= math.log(3) + 4 * auto["i_zy_stderr"]
            assert set(record[split]["binning"]) == {"4", "16"}
    rows = (tmp_path / "plane.csv").read_text().splitlines()
    # 2 epochs x 2 splits x (1 auto + 2 bin counts) rows below the header.
    assert len(rows) == 1 + 2 * 2 * 3


def test_engine_hook_records_every_k_epochs(tmp_path, data):
    from infodrop.engine import Reporting, Training, fit

    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, estimators=("auto",), noise_samples=2,
                             output=tmp_path / "plane.json", device="cpu")
    fit(
        model,
        TensorDataset(*train),
        TensorDataset(*test),
        Training(epochs=4, batch_size=40, make_optimizer=lambda network: torch.optim.SGD(network.parameters(), lr=0.1)),
        reporting=Reporting(epoch_hooks=[plane.as_hook(every=2)], progress=False),
        device="cpu",
    )
    recorded = [record["epoch"] for record in InformationPlane.load(tmp_path / "plane.json")["records"]]
    # The engine counts epochs from 1; epoch 1 is always recorded (the early rise of I(X;Z)),
    # then every 2nd.
    assert recorded == [1, 2, 4]


def test_mc_dropout_samples_of_z_are_noisy_and_the_noiseless_representation_is_not(tmp_path, data):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, mc_draws=2, output=tmp_path / "plane.json", device="cpu")
    model.train()
    captured = plane._collect(plane.splits["test"], epoch=0, split_index=1)
    noisy, features = captured["noisy"], captured["features"]
    # Two MC draws of Z differ (noise is on at inference, Appendix A.8) ...
    assert not torch.allclose(noisy[0], noisy[1])
    # ... and scatter around f(x) with the dropout's relative spread: Var(z/f) = variance = 0.3.
    ratio = (noisy / features).flatten()
    assert ratio.var().item() == pytest.approx(0.3, rel=0.25)  # 2 x 60 x 8 = 960 draws: s.e. of a variance ~ 5%
    # The noiseless f(x) is the evaluation-mode representation, without noise.
    with torch.no_grad():
        expected = model.body(test[0])
    torch.testing.assert_close(features, expected)
    # Recording restores the modes it found: training mode on, MC mode off.
    assert model.training and model.drop.training and not model.drop.mc
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(test[0]), model(test[0]))


def test_recording_does_not_disturb_the_training_random_stream(tmp_path, data):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, estimators=("binning",), bins=(4,), output=tmp_path / "p.json")
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    plane.record(0)
    torch.testing.assert_close(torch.rand(3), expected)


def test_same_seed_gives_the_same_plane(tmp_path, data):
    (train, test), model = data, GaussianNet()
    first = InformationPlane(model, train, test, noise_samples=2, mc_draws=2, output=tmp_path / "a.json", device="cpu").record(0)
    second = InformationPlane(model, train, test, noise_samples=2, mc_draws=2, output=tmp_path / "b.json", device="cpu").record(0)
    assert first == second


def test_information_dropout_plane_uses_the_variational_bounds(tmp_path, data):
    (train, test), model = data, InformationNet("softplus")
    plane = InformationPlane(model, train, test, estimators=("auto",), output=tmp_path / "plane.json")
    record = plane.record(0)
    model.eval()
    with torch.no_grad():
        model(train[0])
    auto = record["train"]["auto"]
    # I(X;Z) <= E_x KL(p(z|x) || prior): the mean of the layer's per-sample KL.
    assert auto["i_xz"] == pytest.approx(float(model.drop.kl.mean()), rel=1e-4)  # float32 layer vs float64 estimator
    assert auto["is_mi"] is True
    # I(Z;Y) >= H(Y) - cross-entropy of the MC predictions.
    assert auto["i_zy"] == pytest.approx(record["train"]["h_y"] - record["train"]["cross_entropy"])
    assert plane.document()["estimators"]["auto"] == "variational"


def test_information_dropout_with_relu_is_flagged_not_an_mi(tmp_path, data):
    (train, test), model = data, InformationNet("relu")
    record = InformationPlane(model, train, test, estimators=("auto",), output=tmp_path / "plane.json").record(0)
    assert record["train"]["auto"]["is_mi"] is False
    assert "not an MI" in record["train"]["auto"]["note"]


def test_binary_dropout_layer_gets_binning_only(tmp_path, data):
    (train, test), model = data, BinaryNet()
    with pytest.raises(ValueError, match="layer=None"):
        InformationPlane(model, train, test, output=tmp_path / "plane.json")
    plane = InformationPlane(model, train, test, layer="drop", bins=(4,), mc_draws=2, output=tmp_path / "plane.json")
    record = plane.record(0)
    assert plane.kind == "binary" and plane.estimators == ("binning",)
    assert "auto" not in record["train"] and record["train"]["binning"]["4"]["i_xz"] > 0


def test_plane_round_trips_through_json_and_append_replaces_a_recorded_epoch(tmp_path, data):
    (train, test), model = data, GaussianNet()
    path = tmp_path / "plane.json"
    plane = InformationPlane(model, train, None, estimators=("binning",), bins=(3,), output=path)
    plane.record(0)
    plane.record(1)
    loaded = InformationPlane.load(path)
    assert loaded["records"] == json.loads(json.dumps(plane.records))
    resumed = InformationPlane(model, train, None, estimators=("binning",), bins=(3,), output=path, append=True)
    resumed.record(1)
    resumed.record(2)
    assert [record["epoch"] for record in InformationPlane.load(path)["records"]] == [0, 1, 2]


def test_max_samples_fixes_one_random_subset_per_split(tmp_path, data):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, estimators=("binning",), max_samples=50, output=tmp_path / "p.json")
    assert plane.sample_counts == {"train": 50, "test": 50}
    assert plane.record(0)["train"]["n"] == 50


def test_layer_can_be_named_or_given_as_a_module(tmp_path, data):
    (train, test), model = data, GaussianNet()
    by_name = InformationPlane(model, train, test, layer="drop", output=tmp_path / "a.json")
    by_module = InformationPlane(model, train, test, layer=model.drop, output=tmp_path / "b.json")
    assert by_name.layer is by_module.layer is model.drop and by_module.layer_name == "drop"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"layer": "head"}, "layer must be a GaussianDropout"),
        ({"layer": "nope"}, "is not a module of the model"),
        ({"estimators": ("auto", "ksg")}, "estimators must be"),
        ({"bins": (0,)}, "bins"),
        ({"mc_draws": 0}, "mc_draws"),
        ({"max_samples": 1}, "max_samples"),
    ],
)
def test_bad_arguments_are_refused_at_the_door(tmp_path, data, options, message):
    (train, test), model = data, GaussianNet()
    with pytest.raises(ValueError, match=message):
        InformationPlane(model, train, test, output=tmp_path / "p.json", **options)


def test_load_refuses_a_file_that_is_not_a_plane(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"records": []}))
    with pytest.raises(ValueError, match="not an information-plane file"):
        InformationPlane.load(path)
    with pytest.raises(ValueError, match="does not exist"):
        InformationPlane.load(tmp_path / "missing.json")


def test_numpy_pairs_are_accepted_as_data(tmp_path, data):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, (train[0].numpy(), train[1].numpy()), (test[0].numpy(), test[1].numpy()),
                             estimators=("binning",), bins=(4,), output=tmp_path / "p.json")
    assert plane.record(0)["test"]["n"] == 60
    assert np.isfinite(plane.records[0]["test"]["binning"]["4"]["i_zy"])


def test_records_are_typed_and_their_json_form_is_what_the_file_holds(tmp_path, data):
    from infodrop.plane import MixtureEstimate, PlaneDocument, PlaneRecord

    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, bins=(4,), noise_samples=2, output=tmp_path / "plane.json", device="cpu")
    record = plane.record_typed(0)
    assert isinstance(record, PlaneRecord) and isinstance(record.train.auto, MixtureEstimate)
    assert record.train.binning["4"].i_xz == plane.records[0]["train"]["binning"]["4"]["i_xz"]
    document = PlaneDocument.load(tmp_path / "plane.json")
    assert document == plane.to_document()
    assert document.to_json() == json.loads((tmp_path / "plane.json").read_text())


def test_information_dropout_records_round_trip_as_variational_estimates(tmp_path, data):
    from infodrop.plane import PlaneDocument, VariationalEstimate

    (train, test), model = data, InformationNet("softplus")
    InformationPlane(model, train, test, estimators=("auto",), output=tmp_path / "plane.json").record(0)
    document = PlaneDocument.load(tmp_path / "plane.json")
    auto = document.records[0].train.auto
    assert isinstance(auto, VariationalEstimate) and auto.is_mi and auto.i_xz_kind
    assert document.to_json() == json.loads((tmp_path / "plane.json").read_text())


@pytest.mark.parametrize(
    "change, entry",
    [
        (lambda doc: doc["records"][0].pop("epoch"), "records[0] lacks 'epoch'"),
        (lambda doc: doc["records"][0]["train"]["auto"].update(i_xz="high"), "records[0].train.auto.i_xz must be a number"),
        (lambda doc: doc["records"][0]["train"]["binning"]["4"].pop("i_zy"), "records[0].train.binning.4 lacks 'i_zy'"),
        (lambda doc: doc["records"][0]["train"].update(auto=[1, 2]), "records[0].train.auto must be an object"),
        (lambda doc: doc["records"][0]["train"]["auto"].update(i_xz_bounds=[0.1]), "i_xz_bounds must be a pair"),
    ],
)
def test_a_plane_file_of_the_wrong_structure_is_refused_in_one_line_naming_it(tmp_path, data, change, entry):
    (train, test), model = data, GaussianNet()
    path = tmp_path / "plane.json"
    InformationPlane(model, train, test, bins=(4,), noise_samples=2, output=path, device="cpu").record(0)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError) as error:
        InformationPlane.load(path)
    message = str(error.value)
    assert str(path) in message and entry in message and len(message.splitlines()) == 1


def test_keys_a_newer_version_wrote_survive_an_append_by_this_one(tmp_path, data):
    (train, test), model = data, GaussianNet()
    path = tmp_path / "plane.json"
    InformationPlane(model, train, test, bins=(4,), noise_samples=2, output=path, device="cpu").record(0)
    document = json.loads(path.read_text())
    document["records"][0]["train"]["auto"]["a_newer_bound"] = 1.25
    document["records"][0]["subsets"] = {"k": [1, 2]}
    path.write_text(json.dumps(document))
    InformationPlane(model, train, test, bins=(4,), noise_samples=2, output=path, device="cpu", append=True).record(1)
    first = InformationPlane.load(path)["records"][0]
    assert first["train"]["auto"]["a_newer_bound"] == 1.25 and first["subsets"] == {"k": [1, 2]}


# ------------------------------------------------------------------ bands, ceilings and saturation (issue 9)


def test_binning_points_record_log_n_and_are_saturated_when_most_samples_sit_in_a_cell_of_their_own(tmp_path, data):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, estimators=("binning",), bins=(1, 10_000), output=tmp_path / "p.json")
    point = plane.record(0)["train"]["binning"]
    # One bin: every sample in the same cell, I(X;Z_b) = 0, full coverage.
    assert point["1"]["i_xz"] == 0.0 and point["1"]["coverage"] == 1.0 and point["1"]["saturated"] is False
    # 10,000 bins per unit over 8 units: every input has a cell of its own, so the plug-in value is
    # exactly log N and measures the 120 inputs, not the network.
    assert point["10000"]["log_n"] == pytest.approx(math.log(120))
    assert point["10000"]["i_xz"] == pytest.approx(math.log(120))
    assert point["10000"]["coverage"] == 0.0 and point["10000"]["saturated"] is True


def test_information_dropout_band_is_two_standard_errors_of_the_mean_kl_and_never_saturated(tmp_path, data):
    (train, test), model = data, InformationNet("softplus")
    record = InformationPlane(model, train, test, estimators=("auto",), output=tmp_path / "p.json").record(0)
    auto = record["train"]["auto"]
    model.eval()
    with torch.no_grad():
        model(train[0])
    kl = model.drop.kl.double()
    stderr = float(kl.std() / math.sqrt(len(kl)))
    assert auto["i_xz_stderr"] == pytest.approx(stderr, rel=1e-4)  # float32 layer vs float64 estimator
    assert auto["i_xz_lower"] == pytest.approx(auto["i_xz"] - 2 * auto["i_xz_stderr"], abs=1e-12)
    assert auto["i_xz_upper"] == pytest.approx(auto["i_xz"] + 2 * auto["i_xz_stderr"], abs=1e-12)
    assert auto["i_zy_lower"] < auto["i_zy"] < auto["i_zy_upper"]
    # The KL is a closed-form bound per input, not a mixture of N components: nothing caps it at log N.
    assert auto["log_n"] == pytest.approx(math.log(120)) and auto["saturated"] is False


def test_subset_sizes_larger_than_the_layer_are_refused_naming_subsets(tmp_path, data):
    (train, test), model = data, GaussianNet()
    with pytest.raises(ValueError, match=r"subsets=\[1, 9\]: \[9\] exceed the 8 units of layer 'drop'"):
        InformationPlane(model, train, test, subsets=(1, 9), output=tmp_path / "p.json")
    with pytest.raises(ValueError, match="subsets"):
        InformationPlane(model, train, test, subsets=(0,), output=tmp_path / "p.json")
    with pytest.raises(ValueError, match="needs a Gaussian-dropout layer"):
        InformationPlane(InformationNet(), train, test, subsets=(1,), output=tmp_path / "p.json")


def test_the_tracker_knows_the_width_of_the_tracked_layer(tmp_path, data):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, estimators=("binning",), output=tmp_path / "p.json")
    assert plane.units == 8 and plane.document()["layer_units"] == 8 and plane.document()["units"] == "nats"


def test_distributed_without_a_process_group_is_refused(tmp_path, data):
    (train, test), model = data, GaussianNet()
    with pytest.raises(ValueError, match="distributed=True needs an initialised"):
        InformationPlane(model, train, test, distributed=True, output=tmp_path / "p.json")
    assert InformationPlane(model, train, test, output=tmp_path / "p.json").distributed is False


def _old_document() -> dict:
    """A plane file as the tracker wrote it before bands and saturation were recorded."""
    record = {"epoch": 0}
    for split in ("train", "test"):
        record[split] = {"n": 100, "mc_accuracy": 0.5, "cross_entropy": 1.0, "h_y": 1.09,
                         "auto": {"i_xz": 4.0, "i_zy": 0.5, "i_xz_bounds": [3.5, 4.4], "i_zy_bounds": [0.4, 0.6],
                                  "i_xz_stderr": 0.01, "is_mi": True},
                         "binning": {"10": {"i_xz": 4.6, "i_zy": 1.0, "bin_size": 0.1}}}
    return {"format": "infodrop.plane/1", "units": "nats", "layer": "drop", "dropout_kind": "gaussian", "variance": 0.3,
            "prior": None, "estimators": {"auto": "gaussian-mixture", "binning": "binning"},
            "sample_counts": {"train": 100, "test": 100}, "config": {}, "records": [record]}


def test_plane_files_written_before_bands_still_read_summarise_and_convert(tmp_path):
    from infodrop.io import write_json
    from infodrop.plane import records_to_csv, saturation_summary

    path = write_json(tmp_path / "old.json", _old_document())
    document = InformationPlane.load(path)
    assert saturation_summary(document) == [
        "gaussian-mixture: saturation not recorded (file written before it was)",
        "binning 10 bins: saturation not recorded (file written before it was)",
    ]
    rows = list(__import__("csv").DictReader(records_to_csv(document).splitlines()))
    assert rows[0]["i_xz_bounds_lower"] == "3.5" and rows[0]["i_xz_lower"] == "" and rows[0]["saturated"] == ""


def test_saturation_summary_counts_the_saturated_points_in_words():
    from infodrop.plane import saturation_counts, saturation_summary

    document = _old_document()
    document["records"] = [json.loads(json.dumps(document["records"][0])) for _ in range(3)]
    for epoch, record in enumerate(document["records"]):
        record["epoch"] = epoch
        for split in ("train", "test"):
            record[split]["auto"]["saturated"] = epoch >= 1 and split == "train"
            record[split]["binning"]["10"]["saturated"] = True
    counts = saturation_counts(document)
    assert counts["auto"]["saturated"] == 2 and counts["auto"]["points"] == 6 and counts["auto"]["train"] == 2
    assert saturation_summary(document) == [
        "gaussian-mixture: 2 of 6 recorded points saturated (train 2/3, test 0/3); "
        "those are pressed against log N and read only as 'at least about log N'",
        "binning 10 bins: 6 of 6 recorded points saturated (train 3/3, test 3/3); "
        "all are pressed against log N: they measure the sample size, not the network",
    ]


def test_every_mixture_point_carries_the_estimators_band_ceiling_and_saturation_flag(tmp_path, data):
    from infodrop.mi import gaussian_dropout_mi

    (train, test), model = data, GaussianNet()
    _train_steps(model, *train)
    plane = InformationPlane(model, train, test, estimators=("auto",), noise_samples=3, output=tmp_path / "p.json", device="cpu")
    record = plane.record(2)
    for split_index, split in enumerate(("train", "test")):
        auto = record[split]["auto"]
        captured = plane.samples(split, epoch=2)
        # The record is the estimator's own result on the captured representation, field by field.
        direct = gaussian_dropout_mi(captured["features"], 0.3, labels=captured["labels"], noise_samples=3, seed=0, device="cpu")
        for field in ("i_xz", "i_xz_lower", "i_xz_upper", "log_n", "saturated", "i_zy", "i_zy_lower", "i_zy_upper"):
            assert auto[field] == getattr(direct, field), field
        assert auto["log_n"] == pytest.approx(math.log(record[split]["n"]))
        assert auto["i_xz_lower"] <= auto["i_xz_upper"] and auto["i_zy_lower"] <= auto["i_zy_upper"]
    saved = InformationPlane.load(tmp_path / "p.json")["records"][0]["train"]["auto"]
    assert {"i_xz", "i_xz_lower", "i_xz_upper", "log_n", "saturated"} <= set(saved)


def test_subset_planes_record_the_mean_spread_and_values_of_each_size(tmp_path, data):
    from infodrop.mi import unit_subset_mi

    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, estimators=("auto",), noise_samples=2, subsets=(4, 1), subset_draws=3,
                             output=tmp_path / "p.json", csv=tmp_path / "p.csv", device="cpu")
    record = plane.record(0)
    assert plane.config()["subsets"] == [1, 4]
    captured = plane.samples("test", epoch=0)
    for k in (1, 4):
        point = record["test"]["subsets"][str(k)]
        direct = unit_subset_mi(captured["features"], 0.3, k, subsets=3, noise_samples=2, seed=0, device="cpu",
                                labels=captured["labels"])
        assert point["mean"] == direct.mean and point["std"] == direct.std and point["values"] == list(direct.values)
        assert point["i_zy"] == direct.i_zy_mean and len(point["units"]) == 3 and all(len(s) == k for s in point["units"])
        # By data processing a subset carries no more than the layer (4 Monte Carlo standard errors).
        assert point["mean"] <= record["test"]["auto"]["i_xz"] + 4 * record["test"]["auto"]["i_xz_stderr"]
    rows = [row for row in (tmp_path / "p.csv").read_text().splitlines() if ",subsets," in row]
    assert len(rows) == 2 * 2  # two splits x two sizes


def test_the_cost_line_is_printed_once_before_the_first_record(tmp_path, data, capsys):
    (train, test), model = data, GaussianNet()
    plane = InformationPlane(model, train, test, estimators=("auto",), noise_samples=3, subsets=(2,), subset_draws=2,
                             output=tmp_path / "p.json", device="cpu")
    # Pairs (sample of Z, component) per record: N^2 * S per split, once for the layer and once per subset.
    assert plane.pairs_per_record() == (120**2 + 60**2) * 3 * (1 + 2)
    plane.record(0)
    plane.record(1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("plane cost:")]
    assert len(lines) == 1
    assert f"{plane.pairs_per_record():.3g} pairs + " in lines[0] and "per record" in lines[0] and "on cpu" in lines[0]
    # A second tracker in the same process records without repeating it.
    again = InformationPlane(model, train, test, estimators=("auto",), noise_samples=3, output=tmp_path / "q.json", device="cpu")
    again.record(0)
    assert "plane cost:" not in capsys.readouterr().out
    cost = plane.cost(n_classes=3)
    assert cost["pairs"] == plane.pairs_per_record() and 0 < cost["seconds"] < math.inf
    # The pairwise bracket visits every pair of components once more: N^2 per split.
    assert cost["bound_pairs"] == 120**2 + 60**2


def test_bands_and_subset_planes_round_trip_through_the_typed_records(tmp_path, data):
    from infodrop.plane import MixtureEstimate, PlaneDocument, SubsetPoint

    (train, test), model = data, GaussianNet()
    path = tmp_path / "plane.json"
    InformationPlane(model, train, test, bins=(4,), noise_samples=2, subsets=(2,), subset_draws=2, output=path,
                     dataset="three blobs", device="cpu").record(0)
    document = PlaneDocument.load(path)
    split = document.records[0].train
    assert isinstance(split.auto, MixtureEstimate) and isinstance(split.auto.saturated, bool)
    assert isinstance(split.subsets["2"], SubsetPoint) and split.subsets["2"].units and split.binning["4"].coverage is not None
    assert document.dataset == "three blobs" and document.layer_units == 8
    assert document.to_json() == json.loads(path.read_text())


def test_the_per_input_terms_are_saved_beside_the_plane_and_their_mean_is_the_lower_estimate(tmp_path, data):
    """The tracker keeps, per epoch and split, the N per-input terms of the mixture estimate
    (and of each unit subset), so that two epochs can be compared input by input; a resumed
    tracker keeps the terms of the epochs recorded before."""
    from infodrop.io import load_npz
    from infodrop.plane_record import terms_key, terms_path

    (train, test), model = data, GaussianNet()
    path = tmp_path / "plane.json"
    plane = InformationPlane(model, train, test, estimators=("auto",), noise_samples=3, subsets=(2,), subset_draws=2,
                             output=path, csv=tmp_path / "plane.csv", device="cpu")
    record = plane.record_typed(0)
    terms = load_npz(terms_path(path))
    auto = record.train.auto
    first = terms[terms_key(0, "train")]
    assert first.shape == (120,) and terms[terms_key(0, "test")].shape == (60,)
    assert first.mean() - 2 * first.std(ddof=1) / math.sqrt(120) == pytest.approx(auto.i_xz_lower, rel=1e-9, abs=1e-12)
    assert terms_key(0, "train", 2, 1) in terms
    assert "sensitivity" in (tmp_path / "plane.csv").read_text().splitlines()[0]
    resumed = InformationPlane(model, train, test, estimators=("auto",), noise_samples=3, subsets=(2,), subset_draws=2,
                               output=path, device="cpu", append=True)
    _train_steps(model, *train)
    resumed.record(1)
    both = load_npz(terms_path(path))
    assert np.array_equal(both[terms_key(0, "train")], first) and terms_key(1, "train") in both


class NormedNet(nn.Module):
    """Gaussian dropout followed by batch norm, as in the fullCNN of Fig. 7."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 8), nn.Softplus())
        self.drop = GaussianDropout(1.0)
        self.norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.drop(self.body(x))))


def test_refreshed_batch_norm_holds_the_noise_off_statistics_inside_and_restores_training_after(data):
    from infodrop.nn import refreshed_batch_norm

    (train, _), model = data, NormedNet()
    _train_steps(model, *train, steps=20)
    before = (model.norm.running_mean.clone(), model.norm.running_var.clone(), model.norm.num_batches_tracked.clone())
    model.train()
    with refreshed_batch_norm(model, [train[0][:60], train[0][60:]]) as count:
        assert count == 1 and not model.training
        hidden = model.body(train[0])  # the noise-off input of the batch norm
        halves = [hidden[:60], hidden[60:]]
        assert torch.allclose(model.norm.running_mean, torch.stack([h.mean(0) for h in halves]).mean(0), atol=1e-6)
        assert torch.allclose(model.norm.running_var, torch.stack([h.var(0) for h in halves]).mean(0), atol=1e-6)
    assert model.training and model.norm.momentum == 0.1
    for saved, now in zip(before, (model.norm.running_mean, model.norm.running_var, model.norm.num_batches_tracked)):
        assert torch.equal(saved, now)


def test_refreshed_batch_norm_with_noise_holds_the_statistics_of_the_noisy_representation(data):
    """The plane reads the noisy Z, so its refresh normalises with statistics of noisy inputs: for
    multiplicative N(1, v) noise on h, E[z] = E[h] and Var[z] = Var[h] + v E[h^2]."""
    from infodrop.nn import refreshed_batch_norm

    (train, _), model = data, NormedNet()
    _train_steps(model, *train, steps=20)
    torch.manual_seed(0)
    inputs = torch.as_tensor(train[0]).float().repeat(50, 1)  # 6,000 noisy draws of the 120 inputs
    with refreshed_batch_norm(model, [inputs], noise=True):
        hidden = model.body(torch.as_tensor(train[0]).float())
        mean, square = hidden.mean(0), (hidden ** 2).mean(0)
        expected_var = hidden.var(0, unbiased=False) + model.drop.variance * square
        # Monte Carlo error over 6,000 draws: a few percent of the variance (noise variance 1.0)
        assert torch.allclose(model.norm.running_var, expected_var, rtol=0.1)
        assert torch.allclose(model.norm.running_mean, mean, atol=0.1 * float(square.sqrt().max()))
        assert not model.drop.mc  # the refresh's noise ends with the refresh
    with refreshed_batch_norm(model, [inputs], noise=False):
        n = len(inputs)  # batch norm keeps the unbiased variance of its batch
        assert torch.allclose(model.norm.running_var, hidden.var(0, unbiased=False) * n / (n - 1), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="noise must be True or False"):
        with refreshed_batch_norm(model, [inputs], noise="yes"):
            pass


def test_a_plane_with_refreshed_batch_norm_reads_i_zy_from_statistics_of_the_current_weights(tmp_path, data):
    """Running statistics that do not fit the weights (here: spoiled on purpose) make the MC
    predictions worse than the label frequencies, so H(Y) - cross-entropy is negative; the
    refreshed statistics give the network's own accuracy back, and training's are untouched."""
    (train, test), model = data, NormedNet()
    _train_steps(model, *train, steps=40)
    model.norm.running_mean.add_(5.0)
    model.norm.running_var.mul_(0.01)
    spoiled = model.norm.running_mean.clone()
    options = dict(estimators=("auto",), noise_samples=2, device="cpu", announce_cost=False)
    stale = InformationPlane(model, train, test, output=tmp_path / "a.json", **options).record_typed(1)
    fresh = InformationPlane(model, train, test, output=tmp_path / "b.json", refresh_batch_norm=True, **options).record_typed(1)
    assert stale.train.h_y - stale.train.cross_entropy < 0
    assert fresh.train.h_y - fresh.train.cross_entropy > 0.3
    assert fresh.train.mc_accuracy > stale.train.mc_accuracy
    assert torch.equal(model.norm.running_mean, spoiled)


def test_a_dataloader_is_accepted_as_the_tracker_data_and_gives_the_same_record(tmp_path, data):
    from torch.utils.data import DataLoader, TensorDataset

    (train, test), model = data, GaussianNet()
    arrays = InformationPlane(model, train, test, estimators=("auto",), noise_samples=3, output=tmp_path / "a.json", device="cpu")
    # A shuffling loader: the tracker walks its dataset in order with its own batch size.
    loaders = [DataLoader(TensorDataset(torch.as_tensor(x).float(), torch.as_tensor(y).long()), batch_size=7, shuffle=True)
               for x, y in (train, test)]
    loaded = InformationPlane(model, *loaders, estimators=("auto",), noise_samples=3, output=tmp_path / "b.json", device="cpu")
    assert arrays.record(0)["train"]["auto"]["i_xz"] == loaded.record(0)["train"]["auto"]["i_xz"]


def test_class_names_as_labels_are_refused_in_one_line_naming_the_fix(tmp_path, data):
    (train, test), model = data, GaussianNet()
    names = np.array(["cat", "dog", "bird"])[np.asarray(train[1]) % 3]
    with pytest.raises(ValueError, match=r"train_data labels must be integer class labels 0..C-1, got <U\d+ values such as 'cat'"):
        InformationPlane(model, (train[0], names), None, output=tmp_path / "p.json")
    from infodrop.mi import gaussian_dropout_mi

    with pytest.raises(ValueError, match="return_inverse"):
        gaussian_dropout_mi(np.ones((4, 2)), 0.25, labels=["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="variance must be a number, got the text '0.25'; pass variance=0.25 without quotes"):
        gaussian_dropout_mi(np.ones((4, 2)), "0.25")
